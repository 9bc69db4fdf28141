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

/// Arguments of `lockstep aggregator run`.
#[derive(Debug, Clone, Args)]
pub struct AggregatorRunArgs {
    /// TOML configuration file (every field optional; see docs/api.md).
    #[arg(long, env = "LOCKSTEP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides `listen`).
    #[arg(long, env = "LOCKSTEP_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// RocksDB folder (overrides `data_dir`).
    #[arg(long, env = "LOCKSTEP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Key folder (overrides `keys_dir`).
    #[arg(long, env = "LOCKSTEP_KEYS")]
    pub keys: Option<PathBuf>,
    /// DEV MODE, proves nothing: slots are aggregated by a stand-in that checks the public
    /// inputs natively and posts a marker instead of a proof, which only the `DevModeVerifier`
    /// stand-in on L1 accepts. Refused unless the domain and the L1 node are a local
    /// development chain (chain id 31337). Every line the service prints says so.
    #[arg(long)]
    pub dev: bool,
}

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
    /// The rollup's genesis (JSON: rollup_id, tree_depth, max_steps, accounts, apps).
    #[arg(long)]
    pub genesis: PathBuf,
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
    /// registered circuit and submitted with a marker instead of a proof, which only an
    /// aggregator run with `--dev` accepts. Refused unless the aggregator's domain is a local
    /// development chain (chain id 31337). Every line the adapter prints says so.
    #[arg(long)]
    pub dev: bool,
}

/// Arguments of `lockstep status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The aggregator's HTTP API.
    #[arg(
        long,
        env = "LOCKSTEP_AGGREGATOR",
        default_value = "http://127.0.0.1:7420"
    )]
    pub aggregator: String,
    /// How many of the newest slots to show.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub slots: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

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

/// Arguments of `lockstep bench rollup`.
#[derive(Debug, Clone, Args)]
pub struct BenchRollupArgs {
    /// Transactions per block, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub txs: Vec<usize>,
    /// Depth of the state tree.
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub depth: usize,
    /// What the blocks do: local transactions, or calls to another rollup.
    #[arg(long, value_enum, default_value = "local")]
    pub workload: crate::bench::rollup::Workload,
    /// Only size the circuit (rows, keys, advice cells, k): no keygen, no proof.
    #[arg(long)]
    pub size_only: bool,
    /// Key store folder (SRS files; the UNSAFE test SRS unless a real one was imported).
    #[arg(long, env = "LOCKSTEP_KEYS", default_value = "keys")]
    pub keys: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `lockstep bench settle`.
#[derive(Debug, Clone, Args)]
pub struct BenchSettleArgs {
    /// Numbers of rollups to settle, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub rollups: Vec<usize>,
    /// Bytes of stand-in proof in each call (a real two-rollup proof has 2,912).
    #[arg(long, default_value_t = 0)]
    pub proof_bytes: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `lockstep bench aggregate`.
#[derive(Debug, Clone, Args)]
pub struct BenchAggregateArgs {
    /// Rollup snarks to aggregate.
    #[arg(long, default_value_t = 2)]
    pub rollups: usize,
    /// Aggregation circuit degree (default: 21 for up to 2 rollups, else 22).
    #[arg(long)]
    pub k: Option<u32>,
    /// Key store folder (SRS files and the rollup key are cached there; the SRS is the UNSAFE
    /// test SRS unless a real one was imported).
    #[arg(long, env = "LOCKSTEP_KEYS", default_value = "keys")]
    pub keys: PathBuf,
    /// Which kind runs first (both always run): swap them to see what order costs.
    #[arg(long, value_delimiter = ',', default_value = "lockstep,stock")]
    pub kinds: Vec<BenchKind>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// An aggregation kind on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchKind {
    /// Lockstep's aggregation: accumulator, layout checks, vk digests.
    Lockstep,
    /// snark-verifier-sdk's stock `AggregationCircuit`.
    Stock,
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
    pub circuit: crate::service::config::RollupCircuit,
    /// DEV MODE, proves nothing: every block is checked with halo2's MockProver instead of
    /// proven, every aggregation by a native stand-in, and L1 settles through the
    /// `DevModeVerifier` stand-in. For a quick look at the whole pipeline; never a measure of
    /// proving. Every line the demo prints says so. Needs the devnet's chain id 31337.
    #[arg(long)]
    pub dev: bool,
}
