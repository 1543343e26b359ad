//! Signature checks on the raw request body: GitHub, Stripe, Slack and generic HMAC. Every comparison of a
//! received signature with the expected one goes through `Mac::verify_slice`, which is constant-time.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};

use crate::config::{Algorithm, Encoding, Verify};

/// Why a request failed verification; the text goes into the 401 body and the dead-letter record.
pub type Reason = String;

/// Checks `body` against the headers as `verify` says. `now` is the wall clock in Unix seconds.
pub fn check(
    verify: &Verify,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    now: i64,
) -> Result<(), Reason> {
    match verify {
        Verify::Github { secret } => {
            let sig = header("x-hub-signature-256").ok_or("missing X-Hub-Signature-256 header")?;
            let hex_sig = sig
                .strip_prefix("sha256=")
                .ok_or("X-Hub-Signature-256 must look like sha256=<hex digest>")?;
            let given =
                hex::decode(hex_sig.trim()).map_err(|_| "X-Hub-Signature-256 is not hex")?;
            verify_mac(Algorithm::Sha256, secret.as_bytes(), &[body], &given)
                .map_err(|()| "X-Hub-Signature-256 does not match the body".to_owned())
        }
        Verify::Stripe { secret, tolerance } => {
            let sig = header("stripe-signature").ok_or("missing Stripe-Signature header")?;
            let mut timestamp = None;
            let mut candidates = Vec::new();
            for part in sig.split(',') {
                match part.trim().split_once('=') {
                    Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
                    Some(("v1", v)) => candidates.push(v.to_owned()),
                    _ => {}
                }
            }
            let t = timestamp.ok_or("Stripe-Signature has no t=<unix seconds> timestamp")?;
            if candidates.is_empty() {
                return Err("Stripe-Signature has no v1 signature".into());
            }
            check_age(t, now, *tolerance, "Stripe-Signature")?;
            let prefix = format!("{t}.");
            let ok = candidates.iter().any(|c| {
                hex::decode(c).is_ok_and(|given| {
                    verify_mac(
                        Algorithm::Sha256,
                        secret.as_bytes(),
                        &[prefix.as_bytes(), body],
                        &given,
                    )
                    .is_ok()
                })
            });
            if ok {
                Ok(())
            } else {
                Err("Stripe-Signature does not match the body".into())
            }
        }
        Verify::Slack { secret, tolerance } => {
            let ts = header("x-slack-request-timestamp")
                .ok_or("missing X-Slack-Request-Timestamp header")?;
            let t: i64 = ts
                .trim()
                .parse()
                .map_err(|_| "X-Slack-Request-Timestamp is not a Unix time in seconds")?;
            let sig = header("x-slack-signature").ok_or("missing X-Slack-Signature header")?;
            let hex_sig = sig
                .strip_prefix("v0=")
                .ok_or("X-Slack-Signature must look like v0=<hex digest>")?;
            let given = hex::decode(hex_sig.trim()).map_err(|_| "X-Slack-Signature is not hex")?;
            check_age(t, now, *tolerance, "X-Slack-Request-Timestamp")?;
            let base = format!("v0:{}:", ts.trim());
            verify_mac(
                Algorithm::Sha256,
                secret.as_bytes(),
                &[base.as_bytes(), body],
                &given,
            )
            .map_err(|()| "X-Slack-Signature does not match the body".to_owned())
        }
        Verify::Hmac {
            secret,
            header: name,
            algorithm,
            encoding,
            prefix,
        } => {
            let sig = header(&name.to_ascii_lowercase())
                .ok_or_else(|| format!("missing {name} header"))?;
            let sig = sig.trim();
            let encoded = match prefix {
                Some(p) => sig
                    .strip_prefix(p.as_str())
                    .ok_or_else(|| format!("{name} must start with {p:?}"))?,
                None => sig,
            };
            let given = match encoding {
                Encoding::Hex => hex::decode(encoded).map_err(|_| format!("{name} is not hex"))?,
                Encoding::Base64 => base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| format!("{name} is not base64"))?,
            };
            verify_mac(*algorithm, secret.as_bytes(), &[body], &given)
                .map_err(|()| format!("{name} does not match the body"))
        }
    }
}

fn check_age(t: i64, now: i64, tolerance: u64, what: &str) -> Result<(), Reason> {
    let age = now - t;
    if age.unsigned_abs() > tolerance {
        return Err(format!(
            "{what} timestamp {t} is {age} s away from now, outside the tolerance of {tolerance} s (stale or replayed)"
        ));
    }
    Ok(())
}

/// Computes the HMAC of the concatenated `parts` and compares it with `given` in constant time.
fn verify_mac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]], given: &[u8]) -> Result<(), ()> {
    match algorithm {
        Algorithm::Sha256 => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).map_err(|_| ())?;
            parts.iter().for_each(|p| mac.update(p));
            mac.verify_slice(given).map_err(|_| ())
        }
        Algorithm::Sha1 => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).map_err(|_| ())?;
            parts.iter().for_each(|p| mac.update(p));
            mac.verify_slice(given).map_err(|_| ())
        }
    }
}
