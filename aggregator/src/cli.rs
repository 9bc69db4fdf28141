//! The `lockstep` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Lockstep: synchronous composability across rollups, settled on Ethereum with one
/// aggregated proof per slot.
#[derive(Debug, Parser)]
#[command(name = "lockstep", version, propagate_version = true)]
pub struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `lockstep_aggregator=debug`.
    #[arg(long, global = true, env = "LOCKSTEP_LOG", default_value = "info")]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local end-to-end job: devnet, deployment, and a report of what happened.
    Demo(DemoArgs),
}

/// Arguments of `lockstep demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Folder for the demo's outputs (deployment file, anvil log). Created if missing.
    #[arg(long, env = "LOCKSTEP_DEMO_OUT", default_value = "demo-out")]
    pub out: PathBuf,
    /// The anvil binary (default: `anvil` on PATH).
    #[arg(long, env = "LOCKSTEP_ANVIL", default_value = "anvil")]
    pub anvil: PathBuf,
    /// Chain id for the devnet.
    #[arg(long, default_value_t = 31337)]
    pub chain_id: u64,
}
