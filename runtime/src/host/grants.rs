//! What a pipeline grants one connector instance. Everything not listed is denied.

use serde::{Deserialize, Serialize};

/// Capabilities granted to one connector instance (the `grants` object of a pipeline entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Hosts the connector may reach with outgoing HTTP: `example.com` (any port), `example.com:8443`, or
    /// `*.example.com` (any subdomain).
    pub http: Vec<String>,
    /// Names of the SQL connections (declared by the pipeline) the connector may open.
    pub sql: Vec<String>,
    /// Whether the connector gets its key-value state store.
    pub state: bool,
}

impl Grants {
    /// Whether outgoing HTTP to `host` (and `port`, if the URI has one) is granted.
    pub fn allows_http(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.http.iter().any(|grant| {
            let grant = grant.to_ascii_lowercase();
            let (g_host, g_port) = match grant.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.ends_with(']') => match p.parse::<u16>() {
                    Ok(p) => (h.trim_start_matches('[').trim_end_matches(']').to_owned(), Some(p)),
                    Err(_) => (grant.clone(), None),
                },
                _ => (grant.clone(), None),
            };
            let host_ok = match g_host.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => host == g_host,
            };
            host_ok && (g_port.is_none() || g_port == port)
        })
    }

    pub fn allows_sql(&self, name: &str) -> bool {
        self.sql.iter().any(|n| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_grants_match_host_port_and_wildcards() {
        let g = Grants {
            http: vec!["api.example.com".into(), "127.0.0.1:8080".into(), "*.hooks.io".into()],
            ..Grants::default()
        };
        assert!(g.allows_http("api.example.com", None));
        assert!(g.allows_http("API.example.com", Some(443)));
        assert!(g.allows_http("127.0.0.1", Some(8080)));
        assert!(!g.allows_http("127.0.0.1", Some(8081)));
        assert!(g.allows_http("a.hooks.io", None));
        assert!(!g.allows_http("hooks.io", None));
        assert!(!g.allows_http("evil-example.com", None));
        assert!(!Grants::default().allows_http("api.example.com", None));
    }
}
