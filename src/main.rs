//! The `busbar` binary: command-line parsing and the composition root. Each subcommand lives in its own module
//! and is the only place where the library crates are wired together.

mod api_client;
mod broker;
mod cli;
mod connector;
mod connectors;
mod replay;
mod rules;
mod schema;
mod serve;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "busbar", version, about = "Integration hub: Kafka-compatible broker, WASM connectors, event rules")]
struct Cli {
    /// Log filter (tracing env-filter syntax), e.g. `info` or `busbar_broker=debug`.
    #[arg(long, global = true, env = "BUSBAR_LOG", default_value = "info")]
    log: String,
    /// Log format.
    #[arg(long, global = true, env = "BUSBAR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run pipelines: the embedded broker, connectors, rules and targets, and the HTTP listener.
    Serve(serve::Args),
    /// Run the Kafka-compatible broker on its own.
    Broker(broker::Args),
    /// Test, transform and benchmark event rules.
    #[command(subcommand)]
    Rules(rules::Command),
    /// Inspect, test and scaffold WebAssembly connectors.
    #[command(subcommand)]
    Connector(connector::Command),
    /// Re-deliver a time window of a pipeline's bus to one rule's targets (talks to a running `busbar serve`).
    Replay(replay::Args),
    /// Check pipeline files without starting anything (exit code 2 on any problem).
    Validate(validate::Args),
    /// Print JSON Schemas of busbar's files.
    #[command(subcommand)]
    Schema(schema::Command),
    /// Connectors of a running `busbar serve`: list, status, pause, resume, stop, restart.
    Connectors(connectors::Args),
    /// Topics on any Kafka-compatible broker: list, create, describe, alter, delete.
    Topics(cli::topics::Args),
    /// Write records to a topic: lines of stdin or a file (with keys and headers), or one whole file.
    Produce(cli::produce::Args),
    /// Print a topic's records: from earliest, latest, an offset or a time; alone or in a consumer group.
    Consume(cli::consume::Args),
    /// Consumer groups: list, describe (lag per partition), reset offsets.
    Groups(cli::groups::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log, cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Broker(args) => broker::run(args),
        Command::Rules(cmd) => rules::run(cmd),
        Command::Connector(cmd) => connector::run(cmd),
        Command::Replay(args) => replay::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Schema(cmd) => schema::run(cmd),
        Command::Connectors(args) => connectors::run(args),
        Command::Topics(args) => cli::topics::run(args),
        Command::Produce(args) => cli::produce::run(args),
        Command::Consume(args) => cli::consume::run(args),
        Command::Groups(args) => cli::groups::run(args),
        Command::Completions { shell } => cli::completions(shell, <Cli as clap::CommandFactory>::command()),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn init_tracing(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
