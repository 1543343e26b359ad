//! `busbar connectors list|status|pause|resume|stop|restart`: the connectors of a running `busbar serve`, through
//! its API (as Kafka Connect's REST API is used with curl, but shorter).

use std::process::ExitCode;


use crate::api_client::ApiClient;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// The HTTP address of the running `busbar serve`.
    #[arg(long, global = true, env = "BUSBAR_API", default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Bearer token of the API, if the server requires one.
    #[arg(long, global = true, env = "BUSBAR_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Every source and target of every pipeline, with its state.
    List,
    /// One connector's state and its instances' restarts and last failure.
    Status { name: String },
    /// Pause: a target's deliveries wait (events park on the bus), a webhook answers 503, a poll stops.
    Pause { name: String },
    /// Resume a paused or stopped connector.
    Resume { name: String },
    /// Stop: paused, and its instances closed to free their memory.
    Stop { name: String },
    /// Restart the connector's instances now.
    Restart { name: String },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(connectors(args))
}

async fn connectors(args: Args) -> anyhow::Result<ExitCode> {
    let (method, path) = match &args.command {
        Command::List => (reqwest::Method::GET, "/connectors".to_owned()),
        Command::Status { name } => (reqwest::Method::GET, format!("/connectors/{name}/status")),
        Command::Pause { name } => (reqwest::Method::PUT, format!("/connectors/{name}/pause")),
        Command::Resume { name } => (reqwest::Method::PUT, format!("/connectors/{name}/resume")),
        Command::Stop { name } => (reqwest::Method::PUT, format!("/connectors/{name}/stop")),
        Command::Restart { name } => (reqwest::Method::POST, format!("/connectors/{name}/restart")),
    };
    let api = ApiClient::new(&args.api, args.api_token.clone())?;
    let body = match api.call(method, &path, None).await? {
        Ok(body) => body,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&body)?),
        Output::Table => match &args.command {
            Command::List => {
                let rows = body.as_array().cloned().unwrap_or_default();
                let width = rows.iter().map(|r| r["name"].as_str().unwrap_or("").len()).max().unwrap_or(4).max(4);
                println!("{:<width$}  {:<6}  {:<8}  CONNECTOR", "NAME", "TYPE", "STATE");
                for r in rows {
                    println!(
                        "{:<width$}  {:<6}  {:<8}  {}",
                        r["name"].as_str().unwrap_or(""),
                        r["type"].as_str().unwrap_or(""),
                        r["state"].as_str().unwrap_or(""),
                        r["connector"].as_str().unwrap_or("")
                    );
                }
            }
            _ => {
                println!("{} {} ({})", body["name"].as_str().unwrap_or(""), body["state"].as_str().unwrap_or(""), body["type"].as_str().unwrap_or(""));
                for task in body["tasks"].as_array().cloned().unwrap_or_default() {
                    let failure = task["last_failure"]["message"].as_str().or(task["last_failure"]["kind"].as_str()).unwrap_or("-");
                    println!(
                        "  {}: {} restarts={} consecutive_failures={} memory={}B last_failure={}",
                        task["name"].as_str().unwrap_or(""),
                        task["state"].as_str().unwrap_or(""),
                        task["restarts"],
                        task["consecutive_failures"],
                        task["memory_bytes"],
                        failure.lines().next().unwrap_or("-")
                    );
                }
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
