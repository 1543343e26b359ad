//! `busbar connector` subcommands: `inspect` a component, `test` it with the compliance harness, scaffold a
//! `new` connector project in Rust, JavaScript or Python.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use busbar_runtime::host::compliance::{self, Harness};
use busbar_runtime::host::{Connector, ConnectorRef, Event, Grants, Limits, Runtime, RuntimeConfig};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Show a connector's world, exports, imports, declared config schema and the grants it asks for.
    Inspect(InspectArgs),
    /// Run the compliance harness (the same checks for every connector, in any language).
    Test(TestArgs),
    /// Scaffold a working connector project.
    New(NewArgs),
}

#[derive(clap::Args)]
pub struct CacheArgs {
    /// Where compiled components are cached, so the next start does not recompile.
    #[arg(long, env = "BUSBAR_CACHE_DIR", default_value = "busbar-data/cache/components")]
    cache_dir: PathBuf,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// The component (`path/to/connector.wasm`) or a built-in (`builtin:<name>`).
    connector: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(clap::Args)]
pub struct TestArgs {
    /// The component (`path/to/connector.wasm`) or a built-in (`builtin:<name>`).
    connector: String,
    /// The connector's config: inline JSON, or `@file.json`.
    #[arg(long, default_value = "{}")]
    config: String,
    /// Grants, as JSON: `{"http": ["api.example.com"], "sql": ["db"], "state": true}`; inline or `@file.json`.
    #[arg(long, default_value = "{}")]
    grants: String,
    /// SQL connections the grants may name: `name=url`, repeatable.
    #[arg(long = "connection", value_name = "NAME=URL")]
    connections: Vec<String>,
    /// Events to write (JSON lines: envelope objects with `detail`, or any JSON value as the payload).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Memory cap per instance, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// Deadline per call, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Js,
    Python,
}

#[derive(clap::Args)]
pub struct NewArgs {
    /// Language of the new connector.
    #[arg(long, value_enum)]
    lang: Lang,
    /// Name of the connector (and of the directory created).
    name: String,
    /// Directory to create the project in (default: ./<name>).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::New(args) => new(args),
        Command::Inspect(args) => tokio_runtime()?.block_on(inspect(args)),
        Command::Test(args) => tokio_runtime()?.block_on(test(args)),
    }
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

async fn load(reference: &str, cache: &CacheArgs, config: RuntimeConfig) -> anyhow::Result<(Runtime, std::sync::Arc<Connector>)> {
    let reference: ConnectorRef = reference.parse()?;
    let runtime = Runtime::new(RuntimeConfig { cache_dir: Some(cache.cache_dir.clone()), ..config })?;
    let connector = runtime.load(&reference).await?;
    Ok((runtime, connector))
}

async fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let (runtime, connector) = load(&args.connector, &args.cache, RuntimeConfig::default()).await?;
    let _ = runtime;
    let imports = serde_json::to_value(connector.imports())?;
    let exports = serde_json::to_value(connector.exports())?;
    let d = connector.description();
    let needs: Vec<&str> = d.needs.iter().map(|c| busbar_runtime::host::connector::capability_name(*c)).collect();
    let report = serde_json::json!({
        "connector": connector.reference().to_string(),
        "name": d.name,
        "version": d.version,
        "kind": busbar_runtime::host::connector::kind_name(d.kind),
        "world": format!("busbar:connector/{}@0.1.0", connector.world()),
        "summary": d.summary,
        "needs": needs,
        "config_schema": connector.config_schema(),
        "exports": exports,
        "imports": imports,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} {} — {}", d.name, d.version, d.summary);
    println!("kind:    {}", report["kind"].as_str().unwrap_or_default());
    println!("world:   {}", report["world"].as_str().unwrap_or_default());
    println!("needs:   {}", if needs.is_empty() { "nothing".to_owned() } else { needs.join(", ") });
    for (title, items) in [("exports", &report["exports"]), ("imports", &report["imports"])] {
        println!("{title}:");
        for item in items.as_array().into_iter().flatten() {
            let names = |field: &str| -> Vec<&str> {
                item[field].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect()
            };
            let (functions, types) = (names("functions"), names("types"));
            let name = item["name"].as_str().unwrap_or_default();
            let mut line = format!("  {name}");
            // Standard WASI interfaces are long and well known: their size here, every name in --json.
            if title == "imports" && name.starts_with("wasi:") {
                println!("{line} ({} functions, {} types)", functions.len(), types.len());
                continue;
            }
            if !functions.is_empty() {
                line += &format!(": {}", functions.join(", "));
            }
            if !types.is_empty() {
                line += &format!(" (types: {})", types.join(", "));
            }
            println!("{line}");
        }
    }
    println!("config schema:\n{}", serde_json::to_string_pretty(&report["config_schema"])?);
    Ok(ExitCode::SUCCESS)
}

/// Inline JSON, or the contents of a file when the argument starts with `@`.
fn json_arg(what: &str, arg: &str) -> anyhow::Result<serde_json::Value> {
    let (text, origin) = match arg.strip_prefix('@') {
        Some(path) => (std::fs::read_to_string(path).with_context(|| format!("reading {what} file {path}"))?, path),
        None => (arg.to_owned(), "the command line"),
    };
    serde_json::from_str(&text).with_context(|| format!("{what} from {origin} is not valid JSON"))
}

fn read_events(path: &Path) -> anyhow::Result<Vec<Event>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a JSON value", path.display(), i + 1))?;
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let payload = match value.get("detail") {
            Some(detail) => serde_json::to_vec(detail)?,
            None => line.as_bytes().to_vec(),
        };
        events.push(Event {
            id: field("id"),
            source: field("source"),
            detail_type: field("detail-type"),
            time: field("time"),
            key: value.get("key").and_then(|k| k.as_str()).map(|k| k.as_bytes().to_vec()),
            headers: Vec::new(),
            payload,
        });
    }
    Ok(events)
}

async fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let config = json_arg("--config", &args.config)?;
    let grants: Grants = serde_json::from_value(json_arg("--grants", &args.grants)?)
        .context("--grants: expected {\"http\": [hosts], \"sql\": [names], \"state\": true|false}")?;
    let mut connections = std::collections::HashMap::new();
    for c in &args.connections {
        let (name, url) =
            c.split_once('=').with_context(|| format!("--connection {c:?}: expected NAME=URL"))?;
        connections.insert(name.to_owned(), url.to_owned());
    }
    let input = match &args.input {
        Some(path) => read_events(path)?,
        None => Vec::new(),
    };
    let (runtime, connector) =
        load(&args.connector, &args.cache, RuntimeConfig { connections, ..RuntimeConfig::default() }).await?;
    // A config that breaks the connector's own schema is a mistake in the command, not in the connector.
    connector.validate_config(&config).context("--config does not fit the connector's config schema")?;
    let limits = Limits { memory_bytes: args.memory_mib << 20, call_timeout_ms: args.timeout_ms, ..Limits::default() };
    let report = compliance::run(&runtime, connector, Harness { config, grants, limits, input }).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("compliance of {}", report.connector);
        for check in &report.checks {
            println!("  {} {}: {}", if check.passed { "PASS" } else { "FAIL" }, check.name, check.detail);
        }
        println!("{}", if report.passed() { "all checks passed" } else { "some checks FAILED" });
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The WIT files a new project needs, embedded from the repository's `wit/`.
const WIT_FILES: &[(&str, &str)] = &[
    ("wit/connector.wit", include_str!("../wit/connector.wit")),
    ("wit/deps/cli.wit", include_str!("../wit/deps/cli.wit")),
    ("wit/deps/clocks.wit", include_str!("../wit/deps/clocks.wit")),
    ("wit/deps/filesystem.wit", include_str!("../wit/deps/filesystem.wit")),
    ("wit/deps/http.wit", include_str!("../wit/deps/http.wit")),
    ("wit/deps/io.wit", include_str!("../wit/deps/io.wit")),
    ("wit/deps/random.wit", include_str!("../wit/deps/random.wit")),
    ("wit/deps/sockets.wit", include_str!("../wit/deps/sockets.wit")),
];

fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        bail!("connector name {name:?}: use lowercase letters, digits and '-' (e.g. my-sink)");
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} already exists and is not empty; choose another --dir", dir.display());
    }
    let snake = name.replace('-', "_");
    let files: Vec<(&str, String)> = match args.lang {
        Lang::Rust => vec![
            ("Cargo.toml", include_str!("../examples/connectors/rust-sink/template/Cargo.toml.in").to_owned()),
            ("src/lib.rs", include_str!("../examples/connectors/rust-sink/template/lib.rs.in").to_owned()),
            ("build.sh", include_str!("../examples/connectors/rust-sink/template/build.sh.in").to_owned()),
        ],
        Lang::Js => vec![
            ("sink.js", include_str!("../examples/connectors/js-sink/sink.js").to_owned()),
            ("componentize.mjs", include_str!("../examples/connectors/js-sink/componentize.mjs").to_owned()),
            ("package.json", include_str!("../examples/connectors/js-sink/package.json").to_owned()),
            ("build.sh", include_str!("../examples/connectors/js-sink/build.sh").to_owned()),
        ],
        Lang::Python => vec![
            ("app.py", include_str!("../examples/connectors/python-source/app.py").to_owned()),
            ("build.sh", include_str!("../examples/connectors/python-source/build.sh").to_owned()),
        ],
    };
    // The JavaScript and Python projects are copies of the examples: they take the new name in describe() and
    // in the file they build.
    let renames: &[(&str, &str)] = match args.lang {
        Lang::Rust => &[],
        Lang::Js => &[("js_sink.wasm", "{{name}}.wasm"), ("'js-http-sink'", "'{{name}}'"), ("\"busbar-js-sink\"", "\"{{name}}\"")],
        Lang::Python => &[("python_source.wasm", "{{name}}.wasm"), ("\"python-http-source\"", "\"{{name}}\"")],
    };
    for (path, text) in files.iter().map(|(p, t)| (*p, t.as_str())).chain(WIT_FILES.iter().copied()) {
        let text = renames.iter().fold(text.to_owned(), |text, (from, to)| text.replace(from, to));
        let text = text.replace("{{name}}", name).replace("{{snake_name}}", &snake);
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().expect("file in a directory"))?;
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
        if path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    println!("created {} ({}): run ./build.sh there, then `busbar connector test {}/{}.wasm`", dir.display(),
        match args.lang { Lang::Rust => "Rust", Lang::Js => "JavaScript", Lang::Python => "Python" },
        dir.display(), name);
    Ok(ExitCode::SUCCESS)
}
