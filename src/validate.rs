//! `busbar validate FILE…`: checks pipeline files the way `serve` does before starting anything, and prints
//! every problem as `file:line:column: $.json.path: message`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use busbar_rules::PatternOptions;
use busbar_rules::pipeline::{self, LoadContext, SourceFile};

/// The connectors shipped in the binary, referenced as `builtin:<name>`: the runtime's WebAssembly built-ins
/// plus `topic`, which the host runs natively because only it can reach the bus.
pub static BUILTIN_CONNECTORS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut names = busbar_runtime::host::Runtime::builtin_names();
    names.push("topic");
    names
});

#[derive(clap::Args)]
pub struct Args {
    /// Pipeline files to check together (names must be unique across them).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Reject busbar's pattern extensions (`$and`, `regex`…), so that every rule also works on Amazon
    /// EventBridge.
    #[arg(long)]
    strict_eventbridge: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut unreadable = false;
    let mut texts = Vec::new();
    for file in &args.files {
        match std::fs::read_to_string(file) {
            Ok(text) => texts.push((file.display().to_string(), text)),
            Err(err) => {
                eprintln!("{}: cannot read the file: {err}", file.display());
                unreadable = true;
            }
        }
    }
    let sources: Vec<SourceFile<'_>> = texts
        .iter()
        .map(|(name, text)| SourceFile {
            name: name.as_str(),
            text: text.as_str(),
        })
        .collect();
    let options = PatternOptions {
        strict_eventbridge: args.strict_eventbridge,
    };
    let checked = pipeline::check(&sources, &context(options));

    for diagnostic in &checked.diagnostics {
        eprintln!("{diagnostic}");
    }
    for pipeline in &checked.pipelines {
        println!(
            "ok: {} ({}: {} sources, {} rules, {} targets)",
            pipeline.file,
            pipeline.name,
            pipeline.sources.len(),
            pipeline.rules.len(),
            pipeline.target_count()
        );
    }
    if unreadable || !checked.diagnostics.is_empty() {
        let files = checked
            .diagnostics
            .iter()
            .map(|d| d.location.file.as_str())
            .collect::<std::collections::BTreeSet<_>>();
        eprintln!(
            "{} problem(s) in {} file(s)",
            checked.diagnostics.len(),
            files.len() + usize::from(unreadable)
        );
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// The checking context of this process: the real environment and file system.
pub fn context(pattern_options: PatternOptions) -> LoadContext<'static> {
    LoadContext {
        builtin_connectors: BUILTIN_CONNECTORS.as_slice(),
        pattern_options,
        env: &env_var,
        read_file: &read_file,
        check_connector_file: &check_connector_file,
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn read_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|err| err.to_string())
}

fn check_connector_file(path: &Path) -> Result<(), String> {
    let metadata = std::fs::metadata(path).map_err(|err| err.to_string())?;
    if !metadata.is_file() {
        return Err("not a file".to_owned());
    }
    // Opening proves it is readable, which `metadata` alone does not.
    std::fs::File::open(path)
        .map(|_| ())
        .map_err(|err| err.to_string())
}
