//! `busbar replay`: asks a running `busbar serve` to re-deliver a time window of a pipeline's bus to one rule's
//! targets, and follows it with a progress bar.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::api_client::ApiClient;

#[derive(clap::Args)]
pub struct Args {
    /// The pipeline whose bus is replayed.
    #[arg(long)]
    pipeline: String,
    /// The rule whose targets get the replayed events; only events matching its pattern are sent.
    #[arg(long)]
    rule: String,
    /// Only this target of the rule (default: all of its targets).
    #[arg(long)]
    target: Option<String>,
    /// Window start: an RFC 3339 time (2026-11-21T10:00:00Z), Unix milliseconds, or a duration ago (90m, 2h, 1d).
    #[arg(long, value_parser = parse_time)]
    from: i64,
    /// Window end (exclusive), same forms as --from; default: everything on the bus when the replay starts.
    #[arg(long, value_parser = parse_time)]
    to: Option<i64>,
    /// The HTTP address of the running `busbar serve`.
    #[arg(long, env = "BUSBAR_API", default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Bearer token of the API, if the server requires one.
    #[arg(long, env = "BUSBAR_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
}

/// An absolute time in Unix milliseconds, from RFC 3339, Unix milliseconds or a duration before now.
fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = crate::cli::time::parse_timestamp(text) {
        return Ok(ms);
    }
    match crate::cli::time::parse_duration(text.trim_start_matches('-')) {
        Ok(ago) => Ok(crate::cli::time::now_millis() - ago.as_millis() as i64),
        Err(_) => Err(format!(
            "{text:?} is not a time: use RFC 3339 (2026-11-21T10:00:00Z), Unix milliseconds, or a duration ago (90m, 2h)"
        )),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(replay(args))
}

async fn replay(args: Args) -> anyhow::Result<ExitCode> {
    let api = ApiClient::new(&args.api, args.api_token.clone())?;
    let body = json!({ "pipeline": args.pipeline, "rule": args.rule, "target": args.target, "from": args.from, "to": args.to });
    let answer = match api.call(reqwest::Method::POST, "/replay", Some(&body)).await? {
        Ok(answer) => answer,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(2));
        }
    };
    let id = answer["id"].as_u64().context("the server's answer has no replay id")?;

    let bar = if console_is_interactive() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} records {msg}")
                .expect("valid template"),
        );
        Some(bar)
    } else {
        None
    };
    let progress = loop {
        let progress = match api.call(reqwest::Method::GET, &format!("/replay/{id}"), None).await? {
            Ok(answer) => answer["progress"].clone(),
            Err(message) => anyhow::bail!("replay {id}: {message}"),
        };
        if let Some(bar) = &bar {
            bar.set_length(progress["total"].as_u64().unwrap_or(0));
            bar.set_position(progress["scanned"].as_u64().unwrap_or(0));
            bar.set_message(format!("{} matched", progress["matched"].as_u64().unwrap_or(0)));
        }
        if progress["done"].as_bool() == Some(true) {
            break progress;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(error) = progress["error"].as_str() {
        eprintln!("error: replay {id} stopped: {error}");
        return Ok(ExitCode::from(1));
    }
    println!(
        "replayed {}/{}: {} records in the window, {} matched, {} events queued to {}",
        args.pipeline,
        args.rule,
        progress["scanned"],
        progress["matched"],
        progress["queued"],
        args.target.as_deref().map(|t| format!("target {t}")).unwrap_or_else(|| "the rule's targets".to_owned())
    );
    Ok(ExitCode::SUCCESS)
}

fn console_is_interactive() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal()
}
