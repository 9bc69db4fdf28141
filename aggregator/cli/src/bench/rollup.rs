//! `lockstep bench rollup`: proving a reference rollup block with the STF circuit, against the
//! number of transactions in the block, on this machine.
//!
//! Two workloads (`--workload`) on the sample cluster
//! ([`lockstep_reference_rollup::sample`]):
//! - `local`: Alice alternately increments rollup 1's counter and sends a wei to Bob;
//! - `cross`: Alice alternately increments a counter on rollup 2 through a forwarder and swaps
//!   1,000 wei on rollup 2's AMM through another, each call with its result and entries; the
//!   caller's block (rollup 1) is measured.
//!
//! For each size it reports the step machine's rows and memory, the circuit's advice cells and
//! the smallest `k` that holds them, keygen and proving seconds and peak memory, and the proof
//! size. Every proof is verified natively and exposes the block's sealed public inputs.

use std::{path::PathBuf, time::Instant};

use eyre::{ensure, eyre, Context, Result};
use halo2_base::gates::circuit::CircuitBuilderStage;
use lockstep_circuits::{
    entry::Domain,
    keys::{keygen, KeyStore},
    prover, shape, Fr,
};
use lockstep_reference_rollup::{
    abi::{CallData, Method},
    block::{Block, Tx},
    circuit as stf, machine,
    sample::{self, ALICE, BOB, COUNTER_1, TO_AMM_2, TO_COUNTER_2},
    ReferenceRollup,
};
use lockstep_rollup_api::{Cluster, SealedBlock};
use serde::Serialize;
use tracing::info;

use super::{peak_rss, print_json, reset_peak_rss};

/// Arguments of `lockstep bench rollup`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchRollupArgs {
    /// Transactions per block, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub txs: Vec<usize>,
    /// Depth of the state tree.
    #[arg(long, default_value_t = 16, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub depth: usize,
    /// What the blocks do: local transactions, or calls to another rollup.
    #[arg(long, value_enum, default_value = "local")]
    pub workload: Workload,
    /// Bits of the range-check table: `k-1` (the largest table that fits the circuit's k, what
    /// an STF deployment takes unless it says otherwise), `default` (the common shape's default,
    /// 10), or a number from 8 to k − 1.
    #[arg(long, default_value = "k-1")]
    pub lookup_bits: TableBits,
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

/// Largest `k` tried for a block.
const MAX_K: u32 = 24;

/// How the range-check table is sized (`--lookup-bits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableBits {
    /// [`shape::DEFAULT_LOOKUP_BITS`].
    Default,
    /// `k − 1`: the largest table at the circuit's `k`.
    KMinusOne,
    /// This many bits.
    Bits(usize),
}

impl TableBits {
    /// The bits at `k`.
    pub const fn at(self, k: u32) -> usize {
        match self {
            Self::Default => shape::DEFAULT_LOOKUP_BITS,
            Self::KMinusOne => k as usize - 1,
            Self::Bits(bits) => bits,
        }
    }
}

impl std::str::FromStr for TableBits {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "default" => Ok(Self::Default),
            "k-1" => Ok(Self::KMinusOne),
            bits => bits
                .parse()
                .map(Self::Bits)
                .map_err(|_| format!("{bits:?}: expected default, k-1 or a number of bits")),
        }
    }
}

/// One block size.
#[derive(Debug, Clone, Serialize)]
pub struct RollupResult {
    /// Transactions (tape steps).
    pub txs: usize,
    /// Step machine rows (one padding row included).
    pub rows: usize,
    /// Memory op slots (`rows × OPS_PER_ROW`).
    pub op_slots: usize,
    /// Distinct state keys (one Merkle opening each).
    pub state_keys: usize,
    /// Distinct scratch cells.
    pub scratch_cells: usize,
    /// Advice cells of the circuit.
    pub advice_cells: usize,
    /// The circuit's degree.
    pub k: u32,
    /// Bits of its range-check table.
    pub lookup_bits: usize,
    /// Keygen and proving, unless `--size-only`.
    pub proved: Option<Proved>,
}

/// What keygen and proving took.
#[derive(Debug, Clone, Serialize)]
pub struct Proved {
    /// Keygen seconds (verifying and proving key).
    pub keygen_seconds: f64,
    /// Peak resident memory during keygen.
    pub keygen_peak_rss_bytes: u64,
    /// Proving seconds (witness generation, proof, native verification).
    pub proving_seconds: f64,
    /// Of which laying the circuit's first phase out over the block (its witness, single
    /// threaded).
    pub witness_seconds: f64,
    /// Peak resident memory during proving.
    pub proving_peak_rss_bytes: u64,
    /// Proof bytes.
    pub proof_bytes: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct RollupReport {
    /// The workload.
    pub workload: Workload,
    /// State tree depth.
    pub tree_depth: usize,
    /// Cores the prover used.
    pub cores: usize,
    /// One result per block size.
    pub results: Vec<RollupResult>,
}

/// What the blocks do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Counter increments and transfers on one rollup.
    Local,
    /// Calls to another rollup's counter and AMM (rollup 1's block is measured).
    Cross,
}

/// Rollup 1's sealed block of `txs` transactions of `workload`, the slot's block of every
/// rollup, and rollup 1's pre state.
fn block(
    txs: usize,
    depth: usize,
    workload: Workload,
) -> Result<(lockstep_reference_rollup::state::State, Block, SealedBlock)> {
    // The sample cluster's rollup 1, and rollup 2 (the callee) for the cross workload.
    let [one, two, _] = sample::geneses(depth);
    let geneses = match workload {
        Workload::Local => vec![one],
        Workload::Cross => vec![one, two],
    };
    let mut cluster = Cluster::new(Domain::default());
    let mut pre = None;
    for mut genesis in geneses {
        // Each transaction of the cross workload is a call and its result.
        genesis.max_steps = 2 * txs.max(1);
        let rollup = ReferenceRollup::new(&genesis)?;
        pre.get_or_insert_with(|| rollup.state());
        cluster.add(Box::new(rollup))?;
    }
    cluster.begin_slot(1)?;
    for nonce in 0..txs as u64 {
        let (to, value, data) = match (workload, nonce % 2) {
            (Workload::Local, 0) => (COUNTER_1, 0, CallData::new(Method::Increment)),
            (Workload::Local, _) => (BOB, 1, CallData::transfer()),
            (Workload::Cross, 0) => (
                TO_COUNTER_2,
                0,
                CallData::forward(Method::Increment, Method::Transfer, 0),
            ),
            (Workload::Cross, _) => (
                TO_AMM_2,
                1_000,
                CallData::forward(Method::Swap, Method::Transfer, 1),
            ),
        };
        let tx = Tx {
            from: ALICE,
            nonce,
            to,
            value,
            data,
        };
        cluster.submit(1, &tx.encode())?;
    }
    let sealed = cluster.seal()?.swap_remove(0);
    let pre = pre.expect("rollup 1");
    Ok((pre, Block::decode(&sealed.data)?, sealed))
}

/// Runs the benchmark.
pub fn run(args: &BenchRollupArgs) -> Result<RollupReport> {
    ensure!(!args.txs.is_empty(), "--txs names at least one block size");
    let store = KeyStore::open(&args.keys)?;
    let mut results = Vec::new();
    for &txs in &args.txs {
        ensure!(txs >= 1, "a block holds at least one transaction");
        let (pre, block, sealed) = block(txs, args.depth, args.workload)?;
        let run = machine::run(&pre, Domain::default(), &block)?;
        let stats = run.stats();
        let capacity = stats.capacity();
        let witness = run.stf_witness(&pre, &block, Domain::default(), Fr::zero(), capacity)?;
        // What the proof must expose: the block the builder sealed.
        let instances = sealed.witness(Fr::zero()).public_inputs().to_instances()?;

        // The smallest k that holds the circuit.
        let (k, advice_cells) = (shape::MIN_K.max(14)..=MAX_K)
            .find_map(|k| {
                let bits = args.lookup_bits.at(k);
                let mut builder =
                    stf::circuit(CircuitBuilderStage::Mock, k, bits, None, capacity, &witness)
                        .ok()?;
                let cells = builder.advice_cells().iter().sum::<usize>();
                // Only measured, never synthesised.
                builder.clear();
                Some((k, cells))
            })
            .ok_or_else(|| eyre!("{txs} transactions do not fit the STF circuit at k ≤ {MAX_K}"))?;
        let lookup_bits = args.lookup_bits.at(k);
        info!(
            txs,
            rows = capacity.rows,
            advice_cells,
            k,
            lookup_bits,
            "STF circuit sized"
        );
        let mut result = RollupResult {
            txs,
            rows: capacity.rows,
            op_slots: capacity.memory().ops,
            state_keys: capacity.keys,
            scratch_cells: capacity.scratch,
            advice_cells,
            k,
            lookup_bits,
            proved: None,
        };
        if args.size_only {
            results.push(result);
            continue;
        }
        let params = store
            .load_or_generate_unsafe_test_srs(k)
            .wrap_err_with(|| format!("SRS for k = {k}"))?;

        info!(txs, k, "keygen");
        reset_peak_rss();
        let started = Instant::now();
        let keygen_circuit = stf::circuit(
            CircuitBuilderStage::Keygen,
            k,
            lookup_bits,
            None,
            capacity,
            &witness,
        )?;
        let pk = keygen("stf", &params, &keygen_circuit).map_err(|e| eyre!(e))?;
        let keygen_seconds = started.elapsed().as_secs_f64();
        let keygen_peak_rss_bytes = peak_rss();
        let break_points = keygen_circuit.break_points();
        drop(keygen_circuit);

        info!(txs, k, "proving");
        reset_peak_rss();
        let started = Instant::now();
        let circuit = stf::circuit(
            CircuitBuilderStage::Prover,
            k,
            lookup_bits,
            Some(break_points),
            capacity,
            &witness,
        )?;
        let witness_seconds = started.elapsed().as_secs_f64();
        let snark = prover::prove(&params, &pk, circuit)?;
        let proving_seconds = started.elapsed().as_secs_f64();
        let proving_peak_rss_bytes = peak_rss();
        ensure!(
            snark.instances == vec![instances],
            "the proof exposes other public inputs than the sealed block's"
        );
        result.proved = Some(Proved {
            keygen_seconds,
            keygen_peak_rss_bytes,
            proving_seconds,
            witness_seconds,
            proving_peak_rss_bytes,
            proof_bytes: snark.proof.len(),
        });
        info!(?result, "done");
        results.push(result);
    }
    Ok(RollupReport {
        workload: args.workload,
        tree_depth: args.depth,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        results,
    })
}

/// Prints the report as JSON or as a table.
pub fn print(report: &RollupReport, json: bool) {
    if json {
        return print_json(report);
    }
    println!(
        "STF circuit, {:?} blocks, tree depth {}, {} cores",
        report.workload, report.tree_depth, report.cores
    );

    println!(
        "{:>4} {:>5} {:>6} {:>5} {:>8} {:>11} {:>3} {:>4} {:>9} {:>9} {:>8} {:>8} {:>7}",
        "txs",
        "rows",
        "slots",
        "keys",
        "scratch",
        "advice",
        "k",
        "bits",
        "keygen s",
        "keygen GB",
        "prove s",
        "prove GB",
        "proof B"
    );
    for r in &report.results {
        let proved = r.proved.as_ref().map_or_else(
            || format!("{:>9} {:>9} {:>8} {:>8} {:>7}", "-", "-", "-", "-", "-"),
            |p| {
                format!(
                    "{:>9.1} {:>9.2} {:>8.1} {:>8.2} {:>7}",
                    p.keygen_seconds,
                    p.keygen_peak_rss_bytes as f64 / 1e9,
                    p.proving_seconds,
                    p.proving_peak_rss_bytes as f64 / 1e9,
                    p.proof_bytes
                )
            },
        );
        println!(
            "{:>4} {:>5} {:>6} {:>5} {:>8} {:>11} {:>3} {:>4} {proved}",
            r.txs,
            r.rows,
            r.op_slots,
            r.state_keys,
            r.scratch_cells,
            r.advice_cells,
            r.k,
            r.lookup_bits,
        );
    }
}
