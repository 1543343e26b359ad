//! A loaded connector: its compiled component, which world it implements, and what its `describe()` said.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use wasmtime::component::Component;

use super::bindings::sink::SinkPre;
use super::bindings::source::SourcePre;
use super::bindings::types::{Capability, Description, Kind};
use super::cache::CacheOutcome;
use crate::Error;

/// How a pipeline names a connector: `builtin:<name>` or a path to a `.wasm` component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorRef {
    Builtin(String),
    Path(PathBuf),
}

impl FromStr for ConnectorRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if let Some(name) = s.strip_prefix("builtin:") {
            if name.is_empty() {
                return Err(Error::BadReference { reference: s.to_owned() });
            }
            return Ok(ConnectorRef::Builtin(name.to_owned()));
        }
        if s.is_empty() || s.contains(':') && !s.contains('/') && !s.contains('\\') {
            return Err(Error::BadReference { reference: s.to_owned() });
        }
        Ok(ConnectorRef::Path(PathBuf::from(s)))
    }
}

impl fmt::Display for ConnectorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectorRef::Builtin(name) => write!(f, "builtin:{name}"),
            ConnectorRef::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Which typed world the component implements, ready to instantiate.
#[derive(Clone)]
pub(crate) enum Pre {
    Sink(SinkPre<super::ctx::HostState>),
    Source(SourcePre<super::ctx::HostState>),
}

/// A connector component, compiled and described, ready to be opened any number of times.
pub struct Connector {
    pub(crate) reference: ConnectorRef,
    pub(crate) component: Component,
    pub(crate) pre: Pre,
    pub(crate) description: Description,
    pub(crate) schema: Arc<jsonschema::Validator>,
    pub(crate) cache: CacheOutcome,
}

impl Connector {
    pub fn reference(&self) -> &ConnectorRef {
        &self.reference
    }
    pub fn description(&self) -> &Description {
        &self.description
    }
    pub fn kind(&self) -> Kind {
        self.description.kind
    }
    /// The world the component targets: `sink` or `source`.
    pub fn world(&self) -> &'static str {
        match self.pre {
            Pre::Sink(_) => "sink",
            Pre::Source(_) => "source",
        }
    }
    /// Whether the compiled code came from the on-disk cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }
    pub fn component(&self) -> &Component {
        &self.component
    }
    /// What the component imports: each interface with the functions and resources in it.
    pub fn imports(&self) -> Vec<WorldItem> {
        let engine = self.component.engine();
        world_items(self.component.component_type().imports(engine).map(|(n, i)| (n.to_owned(), i.ty)), engine)
    }

    /// What the component exports.
    pub fn exports(&self) -> Vec<WorldItem> {
        let engine = self.component.engine();
        world_items(self.component.component_type().exports(engine).map(|(n, i)| (n.to_owned(), i.ty)), engine)
    }

    /// The config schema as JSON.
    pub fn config_schema(&self) -> serde_json::Value {
        serde_json::from_str(&self.description.config_schema).unwrap_or(serde_json::Value::Null)
    }

    /// Checks `config` against the connector's schema; the error names the JSON path and what was expected.
    pub fn validate_config(&self, config: &serde_json::Value) -> Result<(), Error> {
        let errors: Vec<String> = self
            .schema
            .iter_errors(config)
            .map(|e| {
                let path = e.instance_path().to_string();
                format!("{}: {e}", if path.is_empty() { "/".to_owned() } else { path })
            })
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        let first = self.schema.iter_errors(config).next().map(|e| e.instance_path().to_string()).unwrap_or_default();
        Err(Error::ConfigRejected {
            connector: self.description.name.clone(),
            path: if first.is_empty() { "/".into() } else { first },
            message: errors.join("; "),
        })
    }
}

/// One import or export of a component: an interface with its functions (including resource methods, as
/// `[method]resource.name`) and the types and resources it defines, or a single function.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorldItem {
    pub name: String,
    pub functions: Vec<String>,
    pub types: Vec<String>,
}

fn world_items(
    items: impl Iterator<Item = (String, wasmtime::component::types::ComponentItem)>,
    engine: &wasmtime::Engine,
) -> Vec<WorldItem> {
    use wasmtime::component::types::ComponentItem;
    items
        .map(|(name, item)| match item {
            ComponentItem::ComponentInstance(instance) => {
                let (mut functions, mut types) = (Vec::new(), Vec::new());
                for (n, item) in instance.exports(engine) {
                    match item.ty {
                        ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_) => functions.push(n.to_owned()),
                        _ => types.push(n.to_owned()),
                    }
                }
                WorldItem { name, functions, types }
            }
            _ => WorldItem { name, functions: Vec::new(), types: Vec::new() },
        })
        .collect()
}

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Sink => "sink",
        Kind::PullSource => "pull source",
        Kind::PushSource => "push source",
    }
}

pub fn capability_name(c: Capability) -> &'static str {
    match c {
        Capability::Http => "http",
        Capability::Sql => "sql",
        Capability::State => "state",
    }
}
