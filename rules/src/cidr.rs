//! `cidr` values: an IPv4 or IPv6 block (`10.0.0.0/24`, `2001:db8::/32`) or a single address. Event values
//! are parsed with the standard library, so every valid spelling (`2001:0DB8:0:...`) is recognised.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Cidr {
    V4 { net: u32, len: u8 },
    V6 { net: u128, len: u8 },
}

impl Cidr {
    pub(crate) fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| {
            format!("{text:?} is not a CIDR block: {addr:?} is not an IPv4 or IPv6 address")
        })?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max && !l.starts_with('+') => n,
                _ => {
                    return Err(format!(
                        "{text:?} is not a CIDR block: prefix length must be 0..={max}"
                    ));
                }
            },
        };
        Ok(match ip {
            IpAddr::V4(a) => Cidr::V4 {
                net: mask32(u32::from(a), len),
                len,
            },
            IpAddr::V6(a) => Cidr::V6 {
                net: mask128(u128::from(a), len),
                len,
            },
        })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (Cidr::V4 { net, len }, IpAddr::V4(a)) => mask32(u32::from(a), len) == net,
            (Cidr::V6 { net, len }, IpAddr::V6(a)) => mask128(u128::from(a), len) == net,
            _ => false,
        }
    }
}

pub(crate) fn mask32(a: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(len)))
    }
}

pub(crate) fn mask128(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/24", "10.0.0.255", true),
            ("10.0.0.0/24", "10.0.1.0", false),
            ("172.16.0.0/12", "172.31.255.1", true),
            ("192.168.1.0/31", "192.168.1.1", true),
            ("0.0.0.0/0", "8.8.8.8", true),
            (
                "2001:db8::/32",
                "2001:0DB8:0000:0000:0000:0000:0000:0001",
                true,
            ),
            ("2001:db8::/32", "2001:db9::1", false),
            ("10.0.0.1", "10.0.0.1", true),
            ("10.0.0.0/8", "::ffff:10.0.0.1", false),
        ];
        for (block, ip, expected) in cases {
            let c = Cidr::parse(block).unwrap();
            assert_eq!(c.contains(ip.parse().unwrap()), *expected, "{block} {ip}");
        }
        for bad in [
            "xx.11.xx/8",
            "300.0.0.0/8",
            "10.0.0.0/33",
            "10.0.0.0/",
            "::/129",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
