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
    /// Run the local end-to-end job: devnet, deployment, aggregator, three reference rollups
    /// and cross-rollup workloads settled slot by slot with real proofs, and a report.
    Demo(DemoArgs),
    /// The aggregator service.
    #[command(subcommand)]
    Aggregator(AggregatorCommand),
    /// A reference rollup's adapter: replays, proves and submits its blocks.
    #[command(subcommand)]
    Adapter(AdapterCommand),
    /// Show a running aggregator at a glance: health, rollups and the newest slots.
    Status(StatusArgs),
    /// Manage SRS files and circuit keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Measure proving costs on this machine.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `lockstep aggregator …`
#[derive(Debug, Subcommand)]
pub enum AggregatorCommand {
    /// Serve the HTTP API (slot opening, proof intake, slot and rollup status, health,
    /// metrics) and run the slot pipeline (aggregation, settlement on L1) until SIGINT or
    /// SIGTERM. Configuration: a TOML file, then these flags on top.
    Run(AggregatorRunArgs),
}

pub use lockstep_aggregator::service::run::AggregatorRunArgs;

/// `lockstep adapter …`
#[derive(Debug, Subcommand)]
pub enum AdapterCommand {
    /// Run a reference rollup's adapter against an aggregator: for every slot waiting for the
    /// rollup's proof, fetch its block, replay it on the rollup's state (kept in the data
    /// folder), prove it and submit the proof. Until SIGINT or SIGTERM.
    Run(AdapterRunArgs),
}

/// Arguments of `lockstep adapter run`.
#[derive(Debug, Clone, Args)]
pub struct AdapterRunArgs {
    /// The rollup's deployment file (TOML: `genesis = "…json"` and, for the STF circuit,
    /// `[stf]` with k, depth and capacity; `lockstep_reference_rollup::deployment`).
    #[arg(long)]
    pub rollup: PathBuf,
    /// The aggregator's HTTP API.
    #[arg(
        long,
        env = "LOCKSTEP_AGGREGATOR",
        default_value = "http://127.0.0.1:7420"
    )]
    pub aggregator: String,
    /// Where the rollup's blocks are kept (default `adapter-data/rollup-<id>`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Key folder (SRS and proving keys).
    #[arg(long, env = "LOCKSTEP_KEYS", default_value = "keys")]
    pub keys: PathBuf,
    /// How often to ask for waiting slots, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    /// Prove what waits now, then exit.
    #[arg(long)]
    pub once: bool,
    /// DEV MODE, proves nothing: each block is checked with halo2's MockProver against the
    /// deployment's circuit and submitted with a marker instead of a proof, which only an
    /// aggregator run with `--dev` accepts. Refused unless the aggregator's domain is a local
    /// development chain (chain id 31337). Every line the adapter prints says so.
    #[arg(long)]
    pub dev: bool,
}

pub use lockstep_aggregator::status::StatusArgs;

pub use crate::bench::{
    rollup::BenchRollupArgs, settle::BenchSettleArgs, BenchAggregateArgs, BenchKind,
};

/// `lockstep bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Lockstep's aggregation against snark-verifier-sdk's stock aggregation over the same
    /// rollup snarks: keygen and proving time and memory, proof size, verifier size and gas.
    Aggregate(BenchAggregateArgs),
    /// Gas of `LockstepSettlement.settle` around the proof check (accept-all stand-in
    /// verifier) for each number of rollups, as type-3 transactions on a local anvil.
    Settle(BenchSettleArgs),
    /// Proving a reference rollup block with the STF circuit: rows, cells, k, keygen and
    /// proving time and peak memory for each number of transactions.
    Rollup(BenchRollupArgs),
}

/// `lockstep keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate an UNSAFE SRS from a fixed public seed (tests and local demos only: anyone can
    /// forge proofs against it).
    UnsafeTestSrs(UnsafeTestSrsArgs),
    /// Check an SRS file (standard halo2 KZG format) and copy it into the key store.
    ImportSrs(ImportSrsArgs),
    /// Write a rollup's verifying-key file: what a cluster's aggregator registers it by
    /// (`[[rollups]] vk = …`), and whose digest L1's registry must hold.
    ExportVk(ExportVkArgs),
}

/// Arguments of `lockstep keys export-vk`.
#[derive(Debug, Clone, Args)]
pub struct ExportVkArgs {
    /// The rollup's deployment file (its `[stf]` section picks the STF circuit; without one,
    /// the test-rollup circuit).
    #[arg(long)]
    pub rollup: PathBuf,
    /// Where to write the verifying-key file (JSON, `lockstep_circuits::vk_file`).
    #[arg(long)]
    pub out: PathBuf,
    /// Key store folder (the SRS of the circuit's k must be there; keygen runs on first use).
    #[arg(long, env = "LOCKSTEP_KEYS", default_value = "keys")]
    pub keys: PathBuf,
}

/// The rollup circuit the demo proves with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoCircuit {
    /// The test rollup: public inputs only (k = 17).
    TestRollup,
    /// The reference rollup's STF circuit.
    Stf,
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
    /// Folder for the demo's outputs (deployment file, anvil log, aggregator data,
    /// `demo-report.json`). Created if missing.
    #[arg(long, env = "LOCKSTEP_DEMO_OUT", default_value = "demo-out")]
    pub out: PathBuf,
    /// The anvil binary (default: `anvil` on PATH).
    #[arg(long, env = "LOCKSTEP_ANVIL", default_value = "anvil")]
    pub anvil: PathBuf,
    /// Chain id for the devnet.
    #[arg(long, default_value_t = 31337)]
    pub chain_id: u64,
    /// Key store (SRS files, circuit keys); default: the one the tests share,
    /// `~/.cache/lockstep/test-keys` (or `$LOCKSTEP_TEST_KEYS`), so keys are made once.
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Run only the first N slots of the workload (default: all 3).
    #[arg(long)]
    pub slots: Option<usize>,
    /// Make all three rollups take part in every slot (aggregations of 3 proofs, k = 22)
    /// instead of the two each workload touches (k = 21).
    #[arg(long)]
    pub all_rollups: bool,
    /// The rollup circuit: `stf` proves every block's state transition (k = 20, minutes per
    /// block); `test-rollup` proves only the public inputs (k = 17, seconds), a quicker run
    /// that every line labels as such.
    #[arg(long, value_enum, default_value = "stf")]
    pub circuit: DemoCircuit,
    /// DEV MODE, proves nothing: every block is checked with halo2's MockProver instead of
    /// proven, every aggregation by a native stand-in, and L1 settles through the
    /// `DevModeVerifier` stand-in. For a quick look at the whole pipeline; never a measure of
    /// proving. Every line the demo prints says so. Needs the devnet's chain id 31337.
    #[arg(long)]
    pub dev: bool,
}
