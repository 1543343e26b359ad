//! Authentication headers: HTTP Basic, an API key header, or an OAuth 2.0 client-credentials bearer token that
//! is cached until shortly before it expires and fetched again after a 401.

use std::time::{Duration, Instant};

use base64::Engine as _;
use busbar_connector_sdk::Outcome;

use crate::client;
use crate::config::{Auth, ClientAuth};

/// Refresh a token this long before the endpoint said it expires, so it never expires mid-request.
const EARLY_REFRESH: Duration = Duration::from_secs(30);

pub struct Authenticator {
    auth: Auth,
    token: Option<(String, Instant)>,
}

impl Authenticator {
    pub fn new(auth: Auth) -> Self {
        Authenticator { auth, token: None }
    }

    /// The header to send, and whether it carries a token fetched just now. An error is the record's outcome.
    pub fn header(&mut self, timeout_ms: u64) -> Result<(String, Vec<u8>, bool), Outcome> {
        match &self.auth {
            Auth::Basic { username, password } => {
                let raw = format!("{username}:{password}");
                let value = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                );
                Ok(("authorization".into(), value.into_bytes(), false))
            }
            Auth::ApiKey { header, value } => {
                Ok((header.clone(), value.clone().into_bytes(), false))
            }
            Auth::OauthClientCredentials { .. } => {
                let mut fresh = false;
                if self
                    .token
                    .as_ref()
                    .is_none_or(|(_, until)| Instant::now() >= *until)
                {
                    self.token = Some(self.fetch(timeout_ms)?);
                    fresh = true;
                }
                let (token, _) = self.token.as_ref().expect("token just set");
                Ok((
                    "authorization".into(),
                    format!("Bearer {token}").into_bytes(),
                    fresh,
                ))
            }
        }
    }

    /// Forgets a cached token; false when there is none to forget (not OAuth).
    pub fn invalidate(&mut self) -> bool {
        matches!(self.auth, Auth::OauthClientCredentials { .. }) && self.token.take().is_some()
    }

    fn fetch(&self, timeout_ms: u64) -> Result<(String, Instant), Outcome> {
        let Auth::OauthClientCredentials {
            token_url,
            client_id,
            client_secret,
            scope,
            params,
            client_auth,
        } = &self.auth
        else {
            unreachable!("fetch is only called for OAuth")
        };
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = scope {
            form.append_pair("scope", scope);
        }
        for (k, v) in params {
            form.append_pair(k, v);
        }
        let mut headers = vec![
            (
                "content-type".to_owned(),
                b"application/x-www-form-urlencoded".to_vec(),
            ),
            ("accept".to_owned(), b"application/json".to_vec()),
        ];
        match client_auth {
            ClientAuth::Basic => {
                // RFC 6749 2.3.1: id and secret are form-encoded before they are joined.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let raw = format!("{}:{}", enc(client_id), enc(client_secret));
                let value = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                );
                headers.push(("authorization".to_owned(), value.into_bytes()));
            }
            ClientAuth::Body => {
                form.append_pair("client_id", client_id);
                form.append_pair("client_secret", client_secret);
            }
        }
        let body = form.finish();
        let what = format!("OAuth token request to {token_url}");
        let response = client::send("POST", token_url, &headers, body.as_bytes(), timeout_ms)
            .map_err(|f| match f {
                client::Failure::Transient(m) => Outcome::Retryable(format!("{what}: {m}")),
                client::Failure::Fatal(m) => Outcome::Fatal(format!("{what}: {m}")),
            })?;
        let text = String::from_utf8_lossy(&response.body);
        if response.status == 429 || response.status >= 500 {
            return Err(Outcome::Retryable(format!(
                "{what} answered {}: {text}",
                response.status
            )));
        }
        if !(200..300).contains(&response.status) {
            return Err(Outcome::Fatal(format!(
                "{what} answered {} (check client-id/client-secret): {text}",
                response.status
            )));
        }
        let json: serde_json::Value = serde_json::from_slice(&response.body).map_err(|e| {
            Outcome::Fatal(format!("{what}: the response is not JSON ({e}): {text}"))
        })?;
        let token = json["access_token"].as_str().ok_or_else(|| {
            Outcome::Fatal(format!("{what}: the response has no access_token: {text}"))
        })?;
        let lifetime = Duration::from_secs(json["expires_in"].as_u64().unwrap_or(3600));
        let until = Instant::now() + lifetime.saturating_sub(EARLY_REFRESH.min(lifetime / 2));
        busbar_connector_sdk::log::debug(&format!(
            "fetched an OAuth token valid for {} s",
            lifetime.as_secs()
        ));
        Ok((token.to_owned(), until))
    }
}
