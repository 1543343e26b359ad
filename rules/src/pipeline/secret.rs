//! Secret references in connector settings: `${env:NAME}` and `${file:PATH}` inside string values, resolved
//! through the caller's lookups (this crate does no I/O), with the as-written form kept for display.

use std::fmt;
use std::path::Path;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::diagnostic::Problem;
use super::path::JsonPath;

/// A value whose secret references have been resolved, together with its redacted form: the value as written,
/// where each secret still reads `${env:NAME}` or `${file:PATH}`. `Debug` and `Serialize` show only the redacted
/// form, so logging or returning it from an API never reveals a secret.
#[derive(Clone, PartialEq)]
pub struct Resolved<T> {
    value: T,
    redacted: T,
    has_secrets: bool,
}

impl<T> Resolved<T> {
    /// The value with secrets filled in: what a connector or a connection pool is given.
    pub fn expose(&self) -> &T {
        &self.value
    }

    /// The value as written in the pipeline file, safe to display.
    pub fn redacted(&self) -> &T {
        &self.redacted
    }

    /// Whether any secret reference was resolved.
    pub fn has_secrets(&self) -> bool {
        self.has_secrets
    }
}

impl<T: fmt::Debug> fmt::Debug for Resolved<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.redacted.fmt(f)
    }
}

impl<T: Serialize> Serialize for Resolved<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.redacted.serialize(serializer)
    }
}

/// The caller's lookups for secret references.
pub(crate) struct Lookups<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub read_file: &'a dyn Fn(&Path) -> Result<String, String>,
    /// The pipeline file's folder, against which relative `${file:…}` paths are resolved.
    pub base_dir: &'a Path,
}

/// Resolves every string inside `value`; problems are reported with the path of the string that has them.
pub(crate) fn resolve_value(
    value: &Value,
    path: &JsonPath,
    lookups: &Lookups<'_>,
    problems: &mut Vec<(JsonPath, Problem)>,
) -> Resolved<Value> {
    let mut has_secrets = false;
    let resolved = walk(value, path, lookups, problems, &mut has_secrets);
    Resolved {
        value: resolved,
        redacted: value.clone(),
        has_secrets,
    }
}

/// Resolves one string.
pub(crate) fn resolve_string(
    text: &str,
    path: &JsonPath,
    lookups: &Lookups<'_>,
    problems: &mut Vec<(JsonPath, Problem)>,
) -> Resolved<String> {
    let mut has_secrets = false;
    let value = resolve_text(text, path, lookups, problems, &mut has_secrets);
    Resolved {
        value,
        redacted: text.to_owned(),
        has_secrets,
    }
}

fn walk(
    value: &Value,
    path: &JsonPath,
    lookups: &Lookups<'_>,
    problems: &mut Vec<(JsonPath, Problem)>,
    has_secrets: &mut bool,
) -> Value {
    match value {
        Value::String(text) => {
            Value::String(resolve_text(text, path, lookups, problems, has_secrets))
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| walk(item, &path.index(i), lookups, problems, has_secrets))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    (
                        key.clone(),
                        walk(
                            item,
                            &path.key(key.as_str()),
                            lookups,
                            problems,
                            has_secrets,
                        ),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn resolve_text(
    text: &str,
    path: &JsonPath,
    lookups: &Lookups<'_>,
    problems: &mut Vec<(JsonPath, Problem)>,
    has_secrets: &mut bool,
) -> String {
    if !text.contains('$') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if rest.starts_with("${") {
            let Some(end) = rest.find('}') else {
                problems.push((
                    path.clone(),
                    Problem::SecretReference {
                        reference: rest.to_owned(),
                    },
                ));
                return out;
            };
            let reference = &rest[..=end];
            match resolve_reference(&rest[2..end], lookups) {
                Ok(secret) => {
                    *has_secrets = true;
                    out.push_str(&secret);
                }
                Err(problem) => {
                    let problem = problem.unwrap_or_else(|| Problem::SecretReference {
                        reference: reference.to_owned(),
                    });
                    problems.push((path.clone(), problem));
                }
            }
            rest = &rest[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Resolves `env:NAME` or `file:PATH`; `Err(None)` means the reference itself is malformed.
fn resolve_reference(inner: &str, lookups: &Lookups<'_>) -> Result<String, Option<Problem>> {
    if let Some(name) = inner.strip_prefix("env:") {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(None);
        }
        return (lookups.env)(name).ok_or_else(|| {
            Some(Problem::MissingEnv {
                name: name.to_owned(),
            })
        });
    }
    if let Some(file) = inner.strip_prefix("file:") {
        if file.is_empty() {
            return Err(None);
        }
        let full = lookups.base_dir.join(file);
        return match (lookups.read_file)(&full) {
            // Secret files conventionally end with a newline that is not part of the secret.
            Ok(content) => Ok(content.trim_end_matches(['\n', '\r']).to_owned()),
            Err(reason) => Err(Some(Problem::SecretFile {
                path: full.display().to_string(),
                reason,
            })),
        };
    }
    Err(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookups_env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_owned())
    }

    fn read(path: &Path) -> Result<String, String> {
        if path == Path::new("conf/key.txt") {
            Ok("filekey\n".to_owned())
        } else {
            Err("not found".to_owned())
        }
    }

    fn lookups() -> Lookups<'static> {
        Lookups {
            env: &lookups_env,
            read_file: &read,
            base_dir: Path::new("conf"),
        }
    }

    #[test]
    fn resolves_env_and_file_references_and_keeps_the_written_form() {
        let config = json!({"auth": {"header": "Bearer ${env:TOKEN}", "key": "${file:key.txt}"},
                            "list": ["$${env:TOKEN} is literal", "cost: $5"], "n": 1});
        let mut problems = Vec::new();
        let resolved = resolve_value(&config, &JsonPath::root(), &lookups(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(resolved.has_secrets());
        assert_eq!(
            resolved.expose(),
            &json!({"auth": {"header": "Bearer s3cret", "key": "filekey"},
                    "list": ["${env:TOKEN} is literal", "cost: $5"], "n": 1})
        );
        assert_eq!(resolved.redacted(), &config);
        assert!(!format!("{resolved:?}").contains("s3cret"));
        assert!(!serde_json::to_string(&resolved).unwrap().contains("s3cret"));
    }

    #[test]
    fn reports_each_bad_reference_at_its_path() {
        let config = json!({"a": "${env:NOPE}", "b": ["${file:missing}"], "c": "${vault:x}", "d": "${env:TOKEN"});
        let mut problems = Vec::new();
        resolve_value(&config, &JsonPath::root(), &lookups(), &mut problems);
        let messages: Vec<String> = problems
            .iter()
            .map(|(path, problem)| format!("{path}: {problem}"))
            .collect();
        assert_eq!(
            messages,
            [
                "$.a: environment variable `NOPE` is not set (referenced as `${env:NOPE}`)",
                "$.b[0]: secret file `conf/missing` cannot be read: not found",
                "$.c: invalid secret reference `${vault:x}`: expected `${env:NAME}` or `${file:PATH}` (write `$${` for a literal `${`)",
                "$.d: invalid secret reference `${env:TOKEN`: expected `${env:NAME}` or `${file:PATH}` (write `$${` for a literal `${`)",
            ]
        );
    }
}
