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
    /// Manage SRS files and circuit keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// `lockstep keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate an UNSAFE SRS from a fixed public seed (tests and local demos only: anyone can
    /// forge proofs against it).
    UnsafeTestSrs(UnsafeTestSrsArgs),
    /// Check an SRS file (standard halo2 KZG format) and copy it into the key store.
    ImportSrs(ImportSrsArgs),
}

/// Arguments of `lockstep keys unsafe-test-srs`.
#[derive(Debug, Clone, Args)]
pub struct UnsafeTestSrsArgs {
    /// log2 of the number of rows the SRS supports.
    #[arg(long)]
    pub k: u32,
    /// Key store folder.
    #[arg(long, env = "LOCKSTEP_KEYS", default_value = "keys")]
    pub keys: PathBuf,
}

/// Arguments of `lockstep keys import-srs`.
#[derive(Debug, Clone, Args)]
pub struct ImportSrsArgs {
    /// The SRS file to import.
    pub file: PathBuf,
    /// Key store folder.
    #[arg(long, env = "LOCKSTEP_KEYS", default_value = "keys")]
    pub keys: PathBuf,
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
