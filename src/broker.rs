//! `busbar broker`: the Kafka-compatible broker on its own.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the broker subcommand is being built")
}
