//! Checks of single values: names, topics, connector references, grants, connection URLs, webhook paths, and
//! secret resolution, each reporting through [`FileCheck`] at the value's JSON path.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::LoadContext;
use super::check::FileCheck;
use super::diagnostic::Problem;
use super::model::ConnectorRef;
use super::path::JsonPath;
use super::secret::{self, Lookups, Resolved};
use super::span::Position;
use super::spec::Grants;

pub(super) const MAX_NAME: usize = 64;
pub(super) const MAX_TOPIC: usize = 249;
const SQL_SCHEMES: [&str; 5] = [
    "postgres://",
    "postgresql://",
    "mysql://",
    "mariadb://",
    "sqlite:",
];
/// Built-in connectors whose `config.connection` names a granted SQL connection.
const SQL_BUILTINS: [&str; 2] = ["sql-poll", "sql"];

/// Records a name, reporting it if already taken in the same scope.
pub(super) fn check_unique<'s>(
    fc: &mut FileCheck<'_>,
    seen: &mut HashMap<&'s str, Position>,
    kind: &'static str,
    name: &'s str,
    path: &JsonPath,
) {
    let position = fc.spans.value(path);
    if let Some(first) = seen.get(name) {
        let first = fc.location(*first);
        fc.at_value(
            path,
            Problem::DuplicateName {
                kind,
                name: name.to_owned(),
                first,
            },
        );
    } else {
        seen.insert(name, position);
    }
}

/// Checks a name; `at_key` for names that are object keys (connections, sources).
pub(super) fn check_name(
    fc: &mut FileCheck<'_>,
    kind: &'static str,
    name: &str,
    path: &JsonPath,
    at_key: bool,
) {
    if is_name(name, MAX_NAME) {
        return;
    }
    let problem = secret_outside_config(name).unwrap_or(Problem::InvalidName {
        kind,
        name: name.to_owned(),
        max: MAX_NAME,
    });
    if at_key {
        fc.at_key(path, problem)
    } else {
        fc.at_value(path, problem)
    }
}

pub(super) fn check_topic(fc: &mut FileCheck<'_>, topic: &str, path: &JsonPath) {
    if !is_name(topic, MAX_TOPIC) || topic == "." || topic == ".." {
        let problem = secret_outside_config(topic).unwrap_or(Problem::InvalidName {
            kind: "topic",
            name: topic.to_owned(),
            max: MAX_TOPIC,
        });
        fc.at_value(path, problem);
    }
}

/// Names and topics are not where secrets go; say so rather than "invalid characters".
fn secret_outside_config(text: &str) -> Option<Problem> {
    text.contains("${").then(|| Problem::Invalid {
        message: format!(
            "`{text}`: secret references are resolved only in `config` values and connection `url`s; \
             write the name itself here"
        ),
    })
}

pub(super) fn is_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub(super) fn check_connector(
    fc: &mut FileCheck<'_>,
    ctx: &LoadContext<'_>,
    base_dir: &Path,
    written: &str,
    path: &JsonPath,
) -> Option<ConnectorRef> {
    if let Some(name) = written.strip_prefix("builtin:") {
        if ctx.builtin_connectors.contains(&name) {
            return Some(ConnectorRef::Builtin(name.to_owned()));
        }
    } else if written.ends_with(".wasm") {
        let file = base_dir.join(written);
        return match (ctx.check_connector_file)(&file) {
            Ok(()) => Some(ConnectorRef::Wasm(file)),
            Err(reason) => {
                fc.at_value(
                    path,
                    Problem::ConnectorFile {
                        path: file.display().to_string(),
                        reason,
                    },
                );
                None
            }
        };
    }
    let builtins = ctx
        .builtin_connectors
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");
    fc.at_value(
        path,
        Problem::UnknownConnector {
            connector: written.to_owned(),
            builtins,
        },
    );
    None
}

pub(super) fn check_grants(
    fc: &mut FileCheck<'_>,
    grants: &Grants,
    path: &JsonPath,
    declared: Option<&[&str]>,
) {
    for (index, host) in grants.http.iter().enumerate() {
        if let Err(message) = check_host(host) {
            fc.at_value(&path.key("http").index(index), invalid(&message));
        }
    }
    if let Some(declared) = declared {
        for (index, name) in grants.sql.iter().enumerate() {
            if !declared.contains(&name.as_str()) {
                let declared = if declared.is_empty() {
                    "none (add it under `connections`)".to_owned()
                } else {
                    declared
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                fc.at_value(
                    &path.key("sql").index(index),
                    Problem::UndeclaredConnection {
                        name: name.clone(),
                        declared,
                    },
                );
            }
        }
    }
    for (index, name) in grants.env.iter().enumerate() {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let message = format!(
                "`{name}` is not an environment variable name: expected letters, digits and `_`, not starting with a digit"
            );
            fc.at_value(&path.key("env").index(index), invalid(&message));
        }
    }
}

/// A granted HTTP host: `host`, `host:port`, `*.domain`, or an IP address (IPv6 in brackets when a port follows).
pub(super) fn check_host(host: &str) -> Result<(), String> {
    if host.contains("://") || host.contains('/') {
        return Err(format!(
            "`{host}` is not a host: grant a host such as `api.example.com` or `api.example.com:8443`, without scheme or path"
        ));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') || name.ends_with(']') => (name, Some(port)),
        _ => (host, None),
    };
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!(
            "`{host}` has an invalid port `{port}`: expected a number from 0 to 65535"
        ));
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let labels = name.strip_prefix("*.").unwrap_or(name);
    let valid = !labels.is_empty()
        && labels.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{host}` is not a host name: expected something like `api.example.com`, `*.example.com` or `10.0.0.5:8080`"
        ))
    }
}

pub(super) fn check_connection_url(
    fc: &mut FileCheck<'_>,
    url: &Resolved<String>,
    path: &JsonPath,
) {
    let resolved = url.expose();
    if SQL_SCHEMES
        .iter()
        .any(|scheme| resolved.starts_with(scheme))
    {
        return;
    }
    // Never print a resolved secret: show only what was written.
    let from = if url.has_secrets() {
        format!(" (`{}` resolves to a URL that does not)", url.redacted())
    } else {
        String::new()
    };
    let message = format!(
        "a connection URL must start with {}{from}",
        SQL_SCHEMES.map(|s| format!("`{s}`")).join(", ")
    );
    fc.at_value(path, invalid(&message));
}

/// For built-in SQL connectors, `config.connection` must be a granted connection.
pub(super) fn check_config_connection(
    fc: &mut FileCheck<'_>,
    connector: Option<&ConnectorRef>,
    config: &Resolved<Value>,
    grants: &Grants,
    path: &JsonPath,
) {
    let Some(ConnectorRef::Builtin(name)) = connector else {
        return;
    };
    if !SQL_BUILTINS.contains(&name.as_str()) {
        return;
    }
    if let Some(Value::String(connection)) = config.expose().get("connection")
        && !grants.sql.contains(connection)
    {
        let problem = Problem::ConnectionNotGranted {
            name: connection.clone(),
        };
        fc.at_value(&path.key("connection"), problem);
    }
}

pub(super) fn webhook_path(
    fc: &mut FileCheck<'_>,
    pipeline: &str,
    source: &str,
    config: &Resolved<Value>,
    path: &JsonPath,
) -> Option<String> {
    match config.expose().get("path") {
        None => Some(format!("/hooks/{pipeline}/{source}")),
        Some(Value::String(url_path))
            if url_path.starts_with("/hooks/") && url_path.len() > "/hooks/".len() =>
        {
            Some(url_path.trim_end_matches('/').to_owned())
        }
        Some(other) => {
            let message = format!(
                "webhook path {other} must be a string starting with `/hooks/`, such as `/hooks/github`"
            );
            fc.at_value(&path.key("path"), invalid(&message));
            None
        }
    }
}

pub(super) fn resolve_config(
    fc: &mut FileCheck<'_>,
    config: &serde_json::Map<String, Value>,
    path: &JsonPath,
    lookups: &Lookups<'_>,
) -> Resolved<Value> {
    let mut problems = Vec::new();
    let resolved =
        secret::resolve_value(&Value::Object(config.clone()), path, lookups, &mut problems);
    for (path, problem) in problems {
        fc.at_value(&path, problem);
    }
    resolved
}

pub(super) fn resolve_string(
    fc: &mut FileCheck<'_>,
    text: &str,
    path: &JsonPath,
    lookups: &Lookups<'_>,
) -> Resolved<String> {
    let mut problems = Vec::new();
    let resolved = secret::resolve_string(text, path, lookups, &mut problems);
    for (path, problem) in problems {
        fc.at_value(&path, problem);
    }
    resolved
}

pub(super) fn invalid(message: &str) -> Problem {
    Problem::Invalid {
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::check_host;

    #[test]
    fn host_grants() {
        for ok in [
            "api.example.com",
            "api.example.com:8443",
            "*.example.com",
            "localhost",
            "127.0.0.1:8080",
            "[::1]:80",
            "::1",
        ] {
            assert_eq!(check_host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "https://api.example.com",
            "api.example.com/x",
            "api..com",
            "*",
            "a.com:99999",
            "exa mple.com",
            "",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }
}
