//! `busbar schema pipeline`: prints the JSON Schema of pipeline files, for editors and CI checks.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// The JSON Schema (draft 2020-12) of pipeline files.
    Pipeline,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Pipeline => {
            let schema = busbar_rules::pipeline::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
