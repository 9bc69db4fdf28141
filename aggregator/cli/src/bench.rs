//! `lockstep bench aggregate`: the cost of Lockstep's aggregation against snark-verifier-sdk's
//! stock aggregation over the same rollup snarks, on this machine.
//!
//! For each kind it measures keygen seconds and peak memory, EVM-proof seconds and peak memory,
//! proof size, the generated verifier's runtime size and the gas of one verification on anvil.
//! [`settle`] is `lockstep bench settle`, the gas of settlement around the proof check;
//! [`rollup`] is `lockstep bench rollup`, proving a reference rollup block.

pub mod rollup;
pub mod settle;

use std::{path::PathBuf, time::Instant};

use eyre::{ensure, Context, Result};
use halo2_base::gates::circuit::CircuitBuilderStage;
use lockstep_circuits::{
    aggregation::{
        self, evm_calldata, evm_verifier_source, prove_for_evm, AggregationConfig, AggregationKind,
    },
    entry::{Address, Domain},
    keys::{keygen, KeyStore},
    layout::NUM_INSTANCES,
    test_rollup::TEST_ROLLUP_K,
    testing,
};
use lockstep_contracts::{
    devnet::{Devnet, DevnetConfig},
    verifier,
};
use serde::Serialize;
use snark_verifier_sdk::{halo2::gen_dummy_snark_from_vk, CircuitExt, Snark, SHPLONK};
use tracing::info;

/// Arguments of `lockstep bench aggregate`.
#[derive(Debug, Clone, clap::Args)]
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

/// Results for one aggregation kind.
#[derive(Debug, Clone, Serialize)]
pub struct KindResult {
    /// `lockstep` or `stock`.
    pub kind: AggregationKind,
    /// Advice cells of the circuit.
    pub advice_cells: usize,
    /// Advice columns at this k.
    pub advice_columns: usize,
    /// Public inputs.
    pub instances: usize,
    /// Keygen wall-clock seconds.
    pub keygen_seconds: f64,
    /// Peak resident memory during keygen, bytes.
    pub keygen_peak_rss_bytes: u64,
    /// EVM-proof wall-clock seconds (witness generation included).
    pub proving_seconds: f64,
    /// Peak resident memory during proving, bytes.
    pub proving_peak_rss_bytes: u64,
    /// Proof size, bytes.
    pub proof_bytes: usize,
    /// Runtime code of the generated verifier, bytes.
    pub verifier_runtime_bytes: usize,
    /// Whether that is within EIP-170's 24,576 bytes (deployable on Ethereum).
    pub verifier_fits_eip170: bool,
    /// Gas of one verification transaction (21,000 base and calldata included).
    pub verify_gas: u64,
}

/// The whole benchmark report.
#[derive(Debug, Clone, Serialize)]
pub struct AggregateReport {
    /// Rollup snarks aggregated.
    pub rollups: usize,
    /// Aggregation circuit degree.
    pub k: u32,
    /// The rollup circuit's degree.
    pub rollup_k: u32,
    /// CPU cores available.
    pub cores: usize,
    /// Ours, then stock.
    pub results: Vec<KindResult>,
    /// ours / stock for cells, keygen seconds, proving seconds, verify gas.
    pub ratio: Ratios,
}

/// ours / stock.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    /// Advice cells.
    pub advice_cells: f64,
    /// Keygen seconds.
    pub keygen_seconds: f64,
    /// Proving seconds.
    pub proving_seconds: f64,
    /// Verification gas.
    pub verify_gas: f64,
}

/// Resets the kernel's peak-RSS counter of this process (Linux `clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory of this process since the last reset, bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

const DOMAIN: Domain = Domain {
    chain_id: 31337,
    registry: Address([0x42; 20]),
};

/// Runs `lockstep bench aggregate`.
pub async fn aggregate(args: BenchAggregateArgs) -> Result<AggregateReport> {
    ensure!(args.rollups >= 1, "--rollups must be at least 1");
    let store = KeyStore::open(&args.keys)?;
    let witnesses = testing::ring(DOMAIN, 1, args.rollups as u32);
    let (inner_params, inner) = testing::test_rollup_key(&store)?;
    info!(rollups = args.rollups, "proving rollup snarks");
    let snarks = witnesses
        .iter()
        .map(|w| testing::prove_test_rollup(&inner_params, &inner, w))
        .collect::<lockstep_circuits::Result<Vec<Snark>>>()?;

    let k = args.k.unwrap_or(if args.rollups <= 2 { 21 } else { 22 });
    let params = store.load_or_generate_unsafe_test_srs(k)?;
    let config = AggregationConfig::new(args.rollups, k);
    // No EIP-170 limit on this anvil: a verifier over the limit is still measured, and
    // reported as not fitting.
    let devnet = Devnet::spawn(DevnetConfig {
        extra_args: vec!["--disable-code-size-limit".into()],
        ..DevnetConfig::default()
    })
    .await
    .wrap_err("starting anvil")?;
    let provider = devnet.provider();

    let mut results = Vec::new();
    ensure!(
        args.kinds.len() == 2 && args.kinds[0] != args.kinds[1],
        "--kinds names both kinds once, in the order to run them"
    );
    for kind in args.kinds.iter().map(|k| match k {
        BenchKind::Lockstep => AggregationKind::Lockstep,
        BenchKind::Stock => AggregationKind::Stock,
    }) {
        info!(?kind, k, "keygen");
        let dummies: Vec<Snark> = (0..args.rollups)
            .map(|_| {
                gen_dummy_snark_from_vk::<SHPLONK>(
                    &inner_params,
                    inner.pk.get_vk(),
                    vec![NUM_INSTANCES],
                    None,
                )
            })
            .collect();
        reset_peak_rss();
        let started = Instant::now();
        let keygen_circuit = aggregation::build(
            CircuitBuilderStage::Keygen,
            &config,
            kind,
            None,
            None,
            &params,
            dummies,
        )?;
        let advice_cells = aggregation::advice_cells(&keygen_circuit.builder);
        let circuit_params = keygen_circuit.builder.config_params.clone();
        let pk = keygen("aggregation", &params, &keygen_circuit).map_err(|e| eyre::eyre!(e))?;
        let keygen_seconds = started.elapsed().as_secs_f64();
        let keygen_peak_rss_bytes = peak_rss();
        let break_points = keygen_circuit.break_points();
        let agg_params = (&circuit_params)
            .try_into()
            .map_err(|_| eyre::eyre!("aggregation params"))?;
        drop(keygen_circuit);

        info!(?kind, "proving");
        reset_peak_rss();
        let started = Instant::now();
        let circuit = aggregation::build(
            CircuitBuilderStage::Prover,
            &config,
            kind,
            Some(agg_params),
            Some(break_points),
            &params,
            snarks.clone(),
        )?;
        let num_instances = circuit.num_instance()[0];
        let (instances, proof) = prove_for_evm(&params, &pk, circuit)?;
        let proving_seconds = started.elapsed().as_secs_f64();
        let proving_peak_rss_bytes = peak_rss();

        info!(?kind, "verifier");
        let source = evm_verifier_source(&params, pk.get_vk(), num_instances);
        let code = verifier::compile(&source, &verifier::default_solc())?;
        let deployed = verifier::deploy(&provider, code).await?;
        let verification = verifier::verify(
            &provider,
            deployed.address,
            evm_calldata(&instances, &proof),
        )
        .await?;
        ensure!(
            verification.accepted,
            "{kind:?}: the EVM verifier rejected the proof"
        );
        let result = KindResult {
            kind,
            advice_cells,
            advice_columns: circuit_params.num_advice_per_phase.iter().sum(),
            instances: num_instances,
            keygen_seconds,
            keygen_peak_rss_bytes,
            proving_seconds,
            proving_peak_rss_bytes,
            proof_bytes: proof.len(),
            verifier_runtime_bytes: deployed.runtime_size,
            verifier_fits_eip170: deployed.runtime_size <= verifier::MAX_RUNTIME_CODE_SIZE,
            verify_gas: verification.gas_used,
        };
        info!(?result, "done");
        results.push(result);
    }
    results.sort_by_key(|r| r.kind != AggregationKind::Lockstep);
    let (ours, stock) = (&results[0], &results[1]);
    let ratio = Ratios {
        advice_cells: ours.advice_cells as f64 / stock.advice_cells as f64,
        keygen_seconds: ours.keygen_seconds / stock.keygen_seconds,
        proving_seconds: ours.proving_seconds / stock.proving_seconds,
        verify_gas: ours.verify_gas as f64 / stock.verify_gas as f64,
    };
    Ok(AggregateReport {
        rollups: args.rollups,
        k,
        rollup_k: TEST_ROLLUP_K,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        results,
        ratio,
    })
}

/// Prints a benchmark report as pretty JSON on stdout (the only thing there with `--json`).
pub(crate) fn print_json<T: serde::Serialize>(report: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(report).expect("serializable")
    );
}

/// Prints a report as JSON or as a table.
pub fn print(report: &AggregateReport, json: bool) {
    if json {
        return print_json(report);
    }
    println!(
        "aggregate {} rollup(s) at k = {} (rollup k = {}), {} cores",
        report.rollups, report.k, report.rollup_k, report.cores
    );
    println!(
        "{:<9} {:>12} {:>5} {:>10} {:>9} {:>10} {:>9} {:>7} {:>9} {:>9}",
        "kind",
        "advice",
        "cols",
        "keygen s",
        "keygen GB",
        "prove s",
        "prove GB",
        "proof B",
        "verifier B",
        "gas"
    );
    for r in &report.results {
        println!(
            "{:<9} {:>12} {:>5} {:>10.1} {:>9.2} {:>10.1} {:>9.2} {:>7} {:>9} {:>9}",
            format!("{:?}", r.kind).to_lowercase(),
            r.advice_cells,
            r.advice_columns,
            r.keygen_seconds,
            r.keygen_peak_rss_bytes as f64 / 1e9,
            r.proving_seconds,
            r.proving_peak_rss_bytes as f64 / 1e9,
            r.proof_bytes,
            format!(
                "{}{}",
                r.verifier_runtime_bytes,
                if r.verifier_fits_eip170 { "" } else { "*" }
            ),
            r.verify_gas
        );
    }
    if report.results.iter().any(|r| !r.verifier_fits_eip170) {
        println!("* over EIP-170's 24,576 bytes: not deployable on Ethereum (measured without the limit)");
    }
    let q = &report.ratio;
    println!(
        "ours/stock: cells {:.3}, keygen {:.3}, proving {:.3}, gas {:.3}",
        q.advice_cells, q.keygen_seconds, q.proving_seconds, q.verify_gas
    );
}
