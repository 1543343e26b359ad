//! What is wrong with a pipeline file, and where: every problem carries the file, line and column, and the JSON
//! path of the value at fault.

use std::fmt;

use super::path::JsonPath;
use super::span::Position;

/// A place in a pipeline file, printed `file:line:column`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file's name as it was given to [`check`](super::check).
    pub file: String,
    /// Line and column of the key or value at fault.
    pub position: Position,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.file, self.position.line, self.position.column
        )
    }
}

/// One kind of problem in a pipeline file. The message says what is wrong and what would be right.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Problem {
    /// The file is not JSON.
    #[error("invalid JSON: {message}")]
    Syntax {
        /// `serde_json`'s description, without its position.
        message: String,
    },
    /// A value has the wrong type, a field is unknown or missing, or a value is out of its range.
    #[error("{message}")]
    Shape {
        /// What was found and what was expected.
        message: String,
    },
    /// An object has the same key twice.
    #[error("duplicate key `{key}`: it is already defined at line {}, column {}", first.line, first.column)]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Where the key was first written.
        first: Position,
    },
    /// Two things of one kind share a name.
    #[error("duplicate {kind} name `{name}`: it is already defined at {first}")]
    DuplicateName {
        /// `pipeline`, `rule` or `target`.
        kind: &'static str,
        /// The repeated name.
        name: String,
        /// Where the name was first defined.
        first: Location,
    },
    /// A name uses characters outside the allowed set.
    #[error("invalid {kind} name `{name}`: expected 1 to {max} letters, digits, `.`, `_` or `-`")]
    InvalidName {
        /// `pipeline`, `connection`, `source`, `rule`, `target` or `topic`.
        kind: &'static str,
        /// The name as written.
        name: String,
        /// The longest name allowed.
        max: usize,
    },
    /// A `builtin:` connector that busbar does not ship, or a reference that is neither built in nor a file.
    #[error(
        "unknown connector `{connector}`: expected `builtin:<name>` with a name from {builtins}, or the path to a `.wasm` component"
    )]
    UnknownConnector {
        /// The reference as written.
        connector: String,
        /// The built-in connectors' names, listed for the message.
        builtins: String,
    },
    /// A `.wasm` connector path that does not lead to a readable file.
    #[error("connector component `{path}` cannot be used: {reason}")]
    ConnectorFile {
        /// The path, resolved against the pipeline file's folder.
        path: String,
        /// Why (from the host), such as "No such file or directory".
        reason: String,
    },
    /// The rule's event pattern is not valid; the path points inside the pattern.
    #[error("invalid event pattern: {message}")]
    Pattern {
        /// The pattern parser's message.
        message: String,
    },
    /// The target's input transformer (or input path) is not valid.
    #[error("invalid input transformer: {message}")]
    InputTransformer {
        /// The transformer's message.
        message: String,
    },
    /// `grants.sql` names a connection that `connections` does not declare.
    #[error("grant of undeclared connection `{name}`: declared connections are {declared}")]
    UndeclaredConnection {
        /// The connection named in the grant.
        name: String,
        /// The declared connection names, listed for the message (or "none").
        declared: String,
    },
    /// A connector's `config.connection` names a connection it was not granted.
    #[error("connection `{name}` is not granted to this connector: add it to `grants.sql`")]
    ConnectionNotGranted {
        /// The connection named in the config.
        name: String,
    },
    /// `${env:NAME}` names a variable that is not set.
    #[error("environment variable `{name}` is not set (referenced as `${{env:{name}}}`)")]
    MissingEnv {
        /// The variable's name.
        name: String,
    },
    /// `${file:PATH}` names a file that cannot be read.
    #[error("secret file `{path}` cannot be read: {reason}")]
    SecretFile {
        /// The path, resolved against the pipeline file's folder.
        path: String,
        /// Why (from the host).
        reason: String,
    },
    /// A `${…}` that is not a valid secret reference.
    #[error(
        "invalid secret reference `{reference}`: expected `${{env:NAME}}` or `${{file:PATH}}` (write `$${{` for a literal `${{`)"
    )]
    SecretReference {
        /// The reference as written.
        reference: String,
    },
    /// Two webhook sources would answer on the same URL path.
    #[error(
        "webhook path `{path}` is already used by source `{source_name}` of pipeline `{pipeline}` at {first}"
    )]
    DuplicateWebhookPath {
        /// The URL path.
        path: String,
        /// The pipeline of the source that has the path first.
        pipeline: String,
        /// The source that has the path first.
        source_name: String,
        /// Where that source is defined.
        first: Location,
    },
    /// Any other value that is well-formed JSON of the right type but not acceptable.
    #[error("{message}")]
    Invalid {
        /// What is wrong and what would be right.
        message: String,
    },
}

/// One problem, located.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Where the problem is.
    pub location: Location,
    /// The JSON path of the value at fault; `None` for JSON syntax errors.
    pub path: Option<JsonPath>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Diagnostic {
    /// `file:line:column: $.json.path: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location)?;
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        write!(f, "{}", self.problem)
    }
}

/// Every problem found in a set of pipeline files; nothing may start while there is one.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct LoadError {
    /// The problems, in file order, then by position.
    pub diagnostics: Vec<Diagnostic>,
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("\n")
}
