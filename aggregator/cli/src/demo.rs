//! `lockstep demo`: the local end-to-end job.
//!
//! Starts anvil, deploys `LockstepSettlement` with the aggregation verifiers it needs, registers
//! three reference app-rollups, starts the aggregator (API, writer and pipeline, as
//! `lockstep aggregator run` does), and then, slot after slot, does what a cluster does:
//!
//! 1. **simulate**: the builder executes the slot's cross-rollup transactions synchronously on
//!    the rollups' executors and seals one block per rollup (entries checked to balance);
//! 2. **open**: the blocks go to the aggregator (`POST /v1/slots`), which lays them out in the
//!    slot's blob and fixes each rollup's DA commitment;
//! 3. **prove**: each rollup's adapter ([`crate::adapter`], what `lockstep adapter run` runs)
//!    fetches its block, replays it on its own copy of the rollup's state, proves it and
//!    submits the proof (`POST /v1/proofs`);
//! 4. **aggregate** and **post**: the aggregator's pipeline folds the proofs into one and settles
//!    the slot on L1 in one type-3 transaction.
//!
//! Every proof is real. The rollup proofs are made with the reference rollup's **STF circuit**
//! ([`DEMO_STF`]: k = 20, trees of depth 32): each proves its block's state transition, calls
//! and entries. `--circuit test-rollup` swaps in the test-rollup circuit, which proves only the
//! public inputs, for a quicker run; every slot line then says so.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::Path,
    rc::Rc,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    primitives::{B256, U256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use eyre::{bail, ensure, eyre, Context, Result};
use lockstep_circuits::{
    entry::{Address, Domain},
    keys::KeyStore,
    progress::Progress,
    testing,
};
use lockstep_contracts::{
    bindings::LockstepSettlement,
    deploy::{deploy_all, DeployConfig},
    devnet::{Devnet, DevnetConfig, DEV_PRIVATE_KEY},
    settlement::{self, SidecarFormat},
    verifier::dev_mode_verifier_code,
};
use lockstep_reference_rollup::{
    abi::{CallData, Method},
    block::Tx,
    circuit::{StfCapacity, StfConfig},
    sample::{
        self, ALICE, BOB, CAROL, ETH, THREE_TO_COUNTER_2, TO_AMM_2, TO_COUNTER_2, TO_FORWARDER_2,
        TO_REVERTER_2,
    },
    CallOutcome, Genesis, ReferenceRollup,
};
use lockstep_rollup_api::{Cluster, SealedBlock};
use lockstep_storage::RocksStore;
use serde::Serialize;

use tracing::info;

use lockstep_aggregator::{
    client::{slot_opening, ApiClient},
    l1::{fr_to_u256, u256_to_fr},
    service::{
        self,
        intake::{fr_hex, RegisteredRollup, Registry},
        pipeline::{aggregation_verifier_code, AggregationProver, L1Poster},
        prover::{check_dev_chain, MockAggregationProver},
        slots::SlotState,
        Parts,
    },
};

use lockstep_circuits::vk_file::VkFile;
use lockstep_reference_rollup::{
    deployment::DeploymentFile, Deployment, ReferenceProver, ReferenceReplica, StfProver,
};
use lockstep_rollup_adapter::{Adapter, DevModeProver};
use lockstep_rollup_api::TestRollupProver;

use crate::cli::{DemoArgs, DemoCircuit};

/// The demo rollups' STF circuit: trees of the default depth (32), and a block capacity that
/// holds the busiest block of the schedule (20 rows, 5 tape steps, 10 keys, 35 scratch cells)
/// at k = 20. (Before the common shape's second phase and keys derived once per key, this
/// capacity needed k = 21 at depth 32, and the demo ran at depth 16.)
pub const DEMO_STF: StfConfig = StfConfig {
    k: 20,
    depth: 32,
    capacity: StfCapacity {
        rows: 24,
        tape: 6,
        keys: 12,
        scratch: 48,
    },
    lookup_bits: None,
};

/// The demo cluster: the sample's three rollups ([`sample`]) at [`DEMO_STF`]'s depth.
fn geneses() -> [Genesis; 3] {
    sample::geneses(DEMO_STF.depth)
}

/// One user transaction of the workload.
struct Workload {
    what: &'static str,
    rollup: u32,
    from: Address,
    to: Address,
    value: u128,
    data: CallData,
}

impl Workload {
    /// The transaction, with its sender's next nonce on `rollups` (indexed by id − 1).
    fn tx(&self, rollups: &[Rc<ReferenceRollup>]) -> Result<Tx> {
        Ok(Tx {
            from: self.from,
            nonce: rollups[self.rollup as usize - 1].account(&self.from)?.nonce,
            to: self.to,
            value: self.value,
            data: self.data,
        })
    }
}

/// The slots the demo runs: which rollups take part, and what they do.
fn schedule(all_rollups: bool) -> Vec<(Vec<u32>, Vec<Workload>)> {
    let w = |what, rollup, from, to, value, data| Workload {
        what,
        rollup,
        from,
        to,
        value,
        data,
    };
    let counter_from_3 = || {
        w(
            "counter 3→2",
            3,
            CAROL,
            THREE_TO_COUNTER_2,
            0,
            CallData::forward(Method::Increment, Method::Transfer, 0),
        )
    };
    let mut slots = vec![
        (
            vec![1, 2],
            vec![
                w(
                    "swap with value 1→2 (2 ETH into the AMM)",
                    1,
                    ALICE,
                    TO_AMM_2,
                    2 * ETH,
                    CallData::forward(Method::Swap, Method::Transfer, 1),
                ),
                w(
                    "counter 1→2",
                    1,
                    BOB,
                    TO_COUNTER_2,
                    0,
                    CallData::forward(Method::Increment, Method::Transfer, 0),
                ),
            ],
        ),
        (
            vec![1, 2],
            vec![
                w(
                    "reentrant call 1→2→1",
                    1,
                    ALICE,
                    TO_FORWARDER_2,
                    0,
                    CallData::forward(Method::Forward, Method::Increment, 0),
                ),
                w(
                    "callee reverts (1→2 reverter), caller handles it",
                    1,
                    BOB,
                    TO_REVERTER_2,
                    0,
                    CallData::forward(Method::Fail, Method::Transfer, 0),
                ),
            ],
        ),
        (vec![2, 3], vec![counter_from_3()]),
    ];
    if all_rollups {
        for (rollups, work) in &mut slots {
            *rollups = vec![1, 2, 3];
            if !work.iter().any(|w| w.rollup == 3) {
                work.push(counter_from_3());
            }
        }
    }
    slots
}

/// Per-slot timings and results, as `demo-report.json` records them.
#[derive(Debug, Clone, Serialize)]
struct SlotReport {
    slot: u64,
    rollups: Vec<u32>,
    transactions: usize,
    entries_matched: usize,
    simulate_seconds: f64,
    open_seconds: f64,
    prove_seconds: BTreeMap<u32, f64>,
    aggregate_seconds: f64,
    post_seconds: f64,
    total_seconds: f64,
    tx: String,
    l1_block: u64,
    gas_used: u64,
    post_roots: BTreeMap<u32, String>,
}

/// Runs the demo; the devnet is stopped whether it succeeds, fails or is interrupted.
pub async fn run(args: DemoArgs) -> Result<()> {
    if args.dev {
        lockstep_aggregator::dev::enable();
        check_dev_chain(args.chain_id, None)?;
    }
    std::fs::create_dir_all(&args.out)
        .wrap_err_with(|| format!("creating output folder {}", args.out.display()))?;
    let out = args.out.canonicalize()?;
    let config = DevnetConfig {
        anvil: args.anvil.clone(),
        chain_id: args.chain_id,
        log: Some(out.join("anvil.log")),
        ..DevnetConfig::default()
    };

    let started = Instant::now();
    let devnet = Devnet::spawn(config)
        .await
        .wrap_err("starting the L1 devnet")?;
    lockstep_aggregator::say!(
        "L1 devnet   anvil pid {} on {} (chain id {}), log {}",
        devnet.pid(),
        devnet.url(),
        devnet.chain_id(),
        devnet.log_path().display()
    );

    // Ctrl-C or SIGTERM ends the demo early; returning drops `devnet`, which stops anvil.
    tokio::select! {
        res = cluster(&devnet, &out, &args) => res?,
        signal = lockstep_aggregator::shutdown_signal() => eyre::bail!("interrupted by {signal}"),
    }
    lockstep_aggregator::say!(
        "done in {:.1} s; stopping anvil (pid {})",
        started.elapsed().as_secs_f64(),
        devnet.pid()
    );
    Ok(())
}

async fn cluster(devnet: &Devnet, out: &Path, args: &DemoArgs) -> Result<()> {
    let mut slots = schedule(args.all_rollups);
    if let Some(n) = args.slots {
        ensure!(n >= 1, "--slots must be at least 1");
        slots.truncate(n);
    }
    let keys_dir = match &args.keys {
        Some(dir) => dir.clone(),
        None => testing::persistent_key_store()?.root().to_owned(),
    };
    let keys = KeyStore::open(&keys_dir)?;
    lockstep_aggregator::say!("keys        {}", keys.root().display());

    // Keys: the rollup circuit's, then one aggregation key per slot size (made once, cached).
    let t = Instant::now();
    let (prover, circuit_name): (ReferenceProver, _) = match args.circuit {
        DemoCircuit::TestRollup => (
            Arc::new(tokio::task::block_in_place(|| {
                TestRollupProver::load(&keys)
            })?),
            "test-rollup",
        ),
        DemoCircuit::Stf => {
            lockstep_aggregator::say!(
                "rollup key  STF circuit, k = {}, trees of depth {}, capacity {:?}: loading, or \
                 making it once (minutes; the SRS too if missing)",
                DEMO_STF.k,
                DEMO_STF.depth,
                DEMO_STF.capacity
            );
            let stf = tokio::task::block_in_place(|| -> Result<StfProver> {
                keys.load_or_generate_unsafe_test_srs(DEMO_STF.k)?;
                Ok(StfProver::load(&keys, DEMO_STF)?)
            })?;
            (Arc::new(stf), "stf")
        }
    };
    let label = match (args.dev, args.circuit) {
        (true, _) => format!(
            "DEV MODE: nothing proven (blocks checked by MockProver against the {} circuit, \
             aggregations checked natively, L1 verifier a stand-in)",
            circuit_name
        ),
        (false, DemoCircuit::TestRollup) => {
            "rollup proofs: TEST-ROLLUP circuit (public inputs only, STF not proven)".to_owned()
        }
        (false, DemoCircuit::Stf) => {
            format!("rollup proofs: STF circuit (k = {})", DEMO_STF.k)
        }
    };
    lockstep_aggregator::say!(
        "rollup key  {} circuit, k = {}, ready in {:.1} s",
        circuit_name,
        halo2_base::halo2_proofs::poly::commitment::Params::k(prover.params()),
        t.elapsed().as_secs_f64()
    );
    let rollup_params = Arc::new(prover.params().clone());
    let vk = prover.vk().clone();
    let geneses = geneses();
    let registry = Arc::new(Registry {
        domain: Domain::default(),
        rollups: geneses
            .iter()
            .map(|g| {
                let id = g.rollup_id;
                let registered = RegisteredRollup::new(id, vk.clone(), rollup_params.clone())
                    .with_label(prover.label());
                (id, registered)
            })
            .collect(),
    });
    let prover_k = None;
    let sizes: std::collections::BTreeSet<usize> = slots.iter().map(|(r, _)| r.len()).collect();
    let mut verifiers = Vec::new();
    for &n in &sizes {
        if args.dev {
            lockstep_aggregator::say!(
                "verifier    for {n} rollups: DevModeVerifier (dev mode: accepts the marker)"
            );
            verifiers.push((n as u32, dev_mode_verifier_code()));
            continue;
        }
        let probe = AggregationProver::new(KeyStore::open(&keys_dir)?, registry.clone(), prover_k);
        let config = probe.config(n);
        lockstep_aggregator::say!(
            "aggregation key for {n} rollups (k = {}): loading, or making it once (minutes; \
             the SRS too if missing)",
            config.k
        );
        let t = Instant::now();
        let code = tokio::task::block_in_place(|| -> Result<Vec<u8>> {
            let params = keys.load_or_generate_unsafe_test_srs(config.k)?;
            aggregation_verifier_code(&keys, &params, &config, &rollup_params, &vk)
        })?;
        lockstep_aggregator::say!(
            "            ready in {:.1} s; verifier {} bytes of creation code",
            t.elapsed().as_secs_f64(),
            code.len()
        );
        verifiers.push((n as u32, code));
    }

    // L1: the contract, the three rollups (genesis roots, the rollup circuit's vk digest) and
    // the ETH backing their genesis balances.
    let provider = devnet.provider();
    let deployment = deploy_all(
        &provider,
        &DeployConfig {
            // Proving a slot takes minutes here: give slots two hours to settle.
            max_slot_age: 600,
            verifiers,
            ..DeployConfig::default()
        },
    )
    .await
    .wrap_err("deploying contracts")?;
    lockstep_aggregator::say!(
        "deployed    LockstepSettlement at {} (block {}, {} gas with the verifiers)",
        deployment.settlement,
        deployment.deployed_at_block,
        deployment.gas_used
    );
    deployment.write_to(&out.join("deployment.json"))?;
    let domain = Domain {
        chain_id: deployment.chain_id,
        registry: Address(deployment.settlement.0 .0),
    };
    let registry = Arc::new(Registry {
        domain,
        rollups: registry.rollups.clone(),
    });
    let contract = LockstepSettlement::new(deployment.settlement, provider.clone());
    let digest = registry.rollups[&1].vk_digest;
    let rollups: Vec<Rc<ReferenceRollup>> = geneses
        .iter()
        .map(|g| ReferenceRollup::new(g).map(Rc::new))
        .collect::<Result<_, _>>()?;
    for (genesis, rollup) in geneses.iter().zip(&rollups) {
        let id = genesis.rollup_id;
        let backing: u128 = genesis.accounts.iter().map(|a| a.balance).sum::<u128>()
            + genesis.apps.iter().map(|a| a.balance).sum::<u128>();
        confirm(
            contract.createRollup(
                devnet.dev_address(),
                B256::from(fr_to_u256(digest)),
                B256::from(fr_to_u256(rollup.root())),
                false,
                false,
            ),
            "createRollup",
        )
        .await?;
        confirm(
            contract
                .deposit(id, devnet.dev_address())
                .value(U256::from(backing)),
            "deposit",
        )
        .await?;
        lockstep_aggregator::say!(
            "rollup {id}    registered: genesis root {}, vk digest {}, {} ETH deposited",
            fr_hex(&rollup.root()),
            fr_hex(&digest),
            backing / ETH
        );
    }

    // The aggregator, as `lockstep aggregator run` runs it, on a loopback port.
    let data_dir = out.join("aggregator-data");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)?;
    }
    let store = Arc::new(RocksStore::open(&data_dir)?);
    let signer: PrivateKeySigner = DEV_PRIVATE_KEY.parse()?;
    let launched = service::launch(Parts {
        store,
        registry: registry.clone(),
        prover: if args.dev {
            Arc::new(MockAggregationProver::new(registry.clone()))
        } else {
            Arc::new(AggregationProver::new(
                KeyStore::open(&keys_dir)?,
                registry.clone(),
                prover_k,
            ))
        },
        l1: Some(L1Poster {
            provider: ProviderBuilder::new()
                .disable_recommended_fillers()
                .connect_http(devnet.url())
                .erased(),
            wallet: EthereumWallet::from(signer),
            settlement: deployment.settlement,
            sidecar: SidecarFormat::default(),
            poll: Duration::from_millis(250),
            resend_after: Duration::from_secs(60),
        }),
        pause_at: None,
        metrics: None,
        max_body_bytes: service::api::DEFAULT_MAX_BODY_BYTES,
        // The demo is the builder: it runs its own cluster and opens slots over HTTP.
        builder: None,
    })?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, launched.router).await });
    lockstep_aggregator::say!("aggregator  http://{addr} (data in {})", data_dir.display());

    // One adapter per rollup, as `lockstep adapter run` runs it: its own copy of the rollup's
    // state, its blocks kept in its own folder. The geneses are written out so that the same
    // adapters can be run by hand.
    let mut adapters = BTreeMap::new();
    for genesis in &geneses {
        let id = genesis.rollup_id;
        let genesis_path = out.join(format!("genesis-{id}.json"));
        std::fs::write(&genesis_path, serde_json::to_vec_pretty(genesis)?)?;
        write_rollup_files(out, genesis, &prover, args.circuit)?;
        let dir = out.join(format!("adapter-data/rollup-{id}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let adapter_prover: ReferenceProver = if args.dev {
            Arc::new(DevModeProver(prover.clone()))
        } else {
            prover.clone()
        };
        let adapter = Adapter::open(
            ReferenceReplica::new(genesis)?,
            ApiClient::local(addr),
            &dir,
            adapter_prover,
        )
        .await
        .wrap_err_with(|| format!("opening rollup {id}'s adapter"))?;
        adapters.insert(id, adapter);
    }
    lockstep_aggregator::say!(
        "adapters    rollups {:?}: genesis, deployment (rollup-<id>.toml) and key \
         (rollup-<id>.vk.json) files and kept blocks in {}",
        adapters.keys().collect::<Vec<_>>(),
        out.display()
    );

    let mut reports = Vec::new();
    let mut previous: Option<u64> = None;
    for (index, (members, work)) in slots.iter().enumerate() {
        let slot = next_slot(&contract, previous).await?;
        lockstep_aggregator::say!(
            "\n── slot {slot} ({}/{}) · rollups {members:?} · {label}",
            index + 1,
            slots.len()
        );
        let report = run_slot(slot, members, work, &rollups, domain, addr, &mut adapters).await?;
        // L1 holds the new roots.
        for (id, root) in &report.post_roots {
            let (l1_root, eth) =
                settlement::rollup_state(&provider, deployment.settlement, *id).await?;
            ensure!(
                u256_to_fr(l1_root).map(|r| fr_hex(&r)).as_deref() == Some(root.as_str()),
                "rollup {id}: L1 root differs from the sealed block's post root"
            );
            lockstep_aggregator::say!("  rollup {id}  L1 root {root}, ETH on L1 {eth} wei");
        }
        previous = Some(slot);
        reports.push(report);
    }
    launched.pipeline.abort();
    server.abort();

    lockstep_aggregator::say!("\nper-slot latency (seconds) · {label}");
    lockstep_aggregator::say!(
        "{:>6} {:>8} {:>8} {:>6} {:>22} {:>10} {:>7} {:>8} {:>9}",
        "slot",
        "rollups",
        "simulate",
        "open",
        "prove (per rollup)",
        "aggregate",
        "post",
        "total",
        "gas"
    );
    for r in &reports {
        let proofs: Vec<String> = r
            .prove_seconds
            .values()
            .map(|s| format!("{s:.1}"))
            .collect();
        lockstep_aggregator::say!(
            "{:>6} {:>8} {:>8.2} {:>6.2} {:>22} {:>10.1} {:>7.1} {:>8.1} {:>9}",
            r.slot,
            r.rollups.len(),
            r.simulate_seconds,
            r.open_seconds,
            proofs.join(" + "),
            r.aggregate_seconds,
            r.post_seconds,
            r.total_seconds,
            r.gas_used
        );
    }
    let path = out.join("demo-report.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&reports)?)?;
    lockstep_aggregator::say!("wrote       {}", path.display());
    Ok(())
}

/// Simulates, opens, proves and waits for one slot to settle.
/// Writes rollup `genesis`'s deployment file (`rollup-<id>.toml`, next to its genesis file)
/// and its verifying-key file (`rollup-<id>.vk.json`), so that the demo's rollups can be run by
/// hand: `lockstep adapter run --rollup`, `lockstep keys export-vk`, `[[rollups]] vk = …` and
/// `[builder] rollups = […]` in an aggregator's config.
fn write_rollup_files(
    out: &Path,
    genesis: &Genesis,
    prover: &ReferenceProver,
    circuit: DemoCircuit,
) -> Result<()> {
    let id = genesis.rollup_id;
    let stf = match circuit {
        DemoCircuit::TestRollup => None,
        DemoCircuit::Stf => Some(DEMO_STF),
    };
    let file = DeploymentFile {
        genesis: format!("genesis-{id}.json").into(),
        stf,
    };
    let path = out.join(format!("rollup-{id}.toml"));
    std::fs::write(&path, toml::to_string(&file)?)
        .wrap_err_with(|| format!("writing {}", path.display()))?;
    let deployment = Deployment::read(&path)?;
    VkFile::new(deployment.circuit_label(), prover.params(), prover.vk())?
        .write(&out.join(format!("rollup-{id}.vk.json")))?;
    Ok(())
}

async fn run_slot(
    slot: u64,
    members: &[u32],
    work: &[Workload],
    rollups: &[Rc<ReferenceRollup>],
    domain: Domain,
    addr: SocketAddr,
    adapters: &mut BTreeMap<u32, Adapter<ReferenceReplica>>,
) -> Result<SlotReport> {
    let started = Instant::now();

    // 1. Simulate: the builder executes the slot synchronously across its rollups.
    let mut cluster = Cluster::new(domain);
    for id in members {
        cluster.add(Box::new(rollups[*id as usize - 1].clone()))?;
    }
    cluster.begin_slot(slot)?;
    for w in work {
        let tx = w.tx(rollups)?;
        let receipt = cluster
            .submit(w.rollup, &tx.encode())
            .wrap_err_with(|| format!("transaction {:?}", w.what))?;
        let outcome = CallOutcome::from_api(&receipt.outcome)?;
        lockstep_aggregator::say!(
            "  tx        {}: {} with word {} ({} cross-rollup call{}, {} run{})",
            w.what,
            if outcome.success { "ok" } else { "reverted" },
            outcome.word,
            receipt.cross_calls,
            plural(receipt.cross_calls),
            receipt.executions,
            plural(receipt.executions),
        );
    }
    let blocks: Vec<SealedBlock> = cluster.seal()?;
    let simulate_seconds = started.elapsed().as_secs_f64();
    let entries_matched: usize = blocks.iter().map(|b| b.assumed.len()).sum();
    lockstep_aggregator::say!(
        "  simulate  {} blocks sealed, {entries_matched} cross-rollup call{} matched (assumed = served) in {simulate_seconds:.2} s",
        blocks.len(),
        plural(entries_matched)
    );

    // 2. Open the slot: the aggregator lays the blocks out in the blob.
    let t = Instant::now();
    let opened = ApiClient::local(addr)
        .open_slot(&slot_opening(slot, &blocks))
        .await
        .wrap_err_with(|| format!("opening slot {slot}"))?;
    let open_seconds = t.elapsed().as_secs_f64();
    let bytes: usize = blocks.iter().map(|b| b.data.len()).sum();
    lockstep_aggregator::say!(
        "  open      {bytes} bytes of block data in {} blob(s), DA commitments fixed",
        opened.versioned_hashes.len()
    );

    // 3. Every rollup's adapter replays its block on its own state, proves it and submits.
    let mut prove_seconds = BTreeMap::new();
    for block in &blocks {
        let id = block.header.rollup_id;
        let adapter = adapters
            .get_mut(&id)
            .ok_or_else(|| eyre!("no adapter for rollup {id}"))?;
        let submitted = adapter
            .step()
            .await
            .wrap_err_with(|| format!("rollup {id}'s adapter"))?;
        let done = submitted
            .iter()
            .find(|s| s.slot == slot)
            .ok_or_else(|| eyre!("rollup {id}'s adapter did not prove slot {slot}"))?;
        ensure!(
            adapter.head_root() == block.header.post_root,
            "rollup {id}'s adapter replayed to another root than the builder sealed"
        );
        let steps = lockstep_reference_rollup::block::Block::decode(&block.data)?
            .steps
            .len();
        lockstep_aggregator::say!(
            "  prove     rollup {id}: adapter replayed its block of {} step{} to the sealed root, {} assumed / {} served, {} in {:.1} s, {} ({})",
            steps,
            plural(steps),
            block.assumed.len(),
            block.served.len(),
            if lockstep_aggregator::dev::enabled() {
                "checked by MockProver (not proven)"
            } else {
                "proved"
            },
            done.prove_seconds,
            done.outcome,
            done.slot_state
        );
        prove_seconds.insert(id, done.prove_seconds);
    }

    // 4. The pipeline aggregates and settles.
    if lockstep_aggregator::dev::enabled() {
        lockstep_aggregator::say!(
            "  aggregate checking the aggregation of {} rollups natively (dev mode: not proven)…",
            blocks.len()
        );
    } else {
        lockstep_aggregator::say!(
            "  aggregate proving the aggregation of {} rollups (minutes)…",
            blocks.len()
        );
    }
    // One progress line per state the slot waits in; the proof's own line has the estimate.
    let mut last_state = String::new();
    let mut waiting: Option<Progress> = None;
    let client = ApiClient::local(addr);
    let settled = loop {
        let body = client
            .slot(slot)
            .await
            .wrap_err_with(|| format!("reading slot {slot}"))?;
        let state = body.record.state.name().to_owned();
        if let SlotState::Failed { stage, reason } = &body.record.state {
            bail!("slot {slot} failed in {stage}: {reason}");
        }
        if state != last_state {
            info!(slot, state, "slot state");
            if let Some(previous) = waiting.take() {
                previous.finish();
            }
            if state != "settled" {
                waiting = Some(Progress::start(format!("slot {slot}: {state}"), None, None));
            }
            last_state = state.clone();
        }
        if state == "settled" {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let at = |state: &str| {
        settled
            .record
            .history
            .iter()
            .find(|t| t.state == state)
            .map_or(0, |t| t.at_ms)
    };
    let SlotState::Settled {
        tx,
        block: l1_block,
        gas_used,
    } = settled.record.state.clone()
    else {
        bail!(
            "slot {slot} is {}, not settled",
            settled.record.state.name()
        );
    };
    let aggregate_seconds = (at("posting").saturating_sub(at("aggregating"))) as f64 / 1000.0;
    let post_seconds = (at("settled").saturating_sub(at("posting"))) as f64 / 1000.0;
    let report = SlotReport {
        slot,
        rollups: members.to_vec(),
        transactions: work.len(),
        entries_matched,
        simulate_seconds,
        open_seconds,
        prove_seconds,
        aggregate_seconds,
        post_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
        tx,
        l1_block,
        gas_used,
        post_roots: blocks
            .iter()
            .map(|b| (b.header.rollup_id, fr_hex(&b.header.post_root)))
            .collect(),
    };
    lockstep_aggregator::say!(
        "  aggregate {:.1} s, {} bytes of proof",
        aggregate_seconds,
        settled.aggregation.as_ref().map_or(0, |a| a.proof_bytes)
    );
    lockstep_aggregator::say!(
        "  settled   tx {} in L1 block {}, {} gas, posted in {post_seconds:.1} s; slot done in {:.1} s",
        report.tx, report.l1_block, report.gas_used, report.total_seconds
    );
    Ok(report)
}

const fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The first L1 slot after `previous` (slots are 12 s of L1 time).
async fn next_slot(
    contract: &LockstepSettlement::LockstepSettlementInstance<alloy::providers::DynProvider>,
    previous: Option<u64>,
) -> Result<u64> {
    let mut waiting: Option<Progress> = None;
    loop {
        let current = contract.currentSlot().call().await?;
        if previous.is_none_or(|p| current > p) {
            if let Some(waiting) = waiting {
                waiting.finish();
            }
            return Ok(current);
        }
        // At most one L1 slot.
        if waiting.is_none() {
            waiting = Some(Progress::start(
                "waiting for the next L1 slot",
                None,
                Some(Duration::from_secs(12)),
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Sends a contract call and requires a successful receipt.
async fn confirm<P, D>(call: alloy::contract::CallBuilder<P, D>, what: &str) -> Result<()>
where
    P: Provider,
    D: alloy::contract::CallDecoder,
{
    let receipt = call
        .send()
        .await
        .wrap_err_with(|| format!("sending {what}"))?
        .get_receipt()
        .await
        .wrap_err_with(|| format!("waiting for {what}"))?;
    ensure!(
        receipt.status(),
        "{what} reverted ({})",
        receipt.transaction_hash
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockstep_reference_rollup::{block::Block, machine};

    /// Every block of the demo's schedule, with its pre state: the slots in order, over the
    /// rollups' states as each slot leaves them.
    fn scheduled_blocks(
        all_rollups: bool,
    ) -> Vec<(lockstep_reference_rollup::state::State, Block)> {
        let rollups: Vec<Rc<ReferenceRollup>> = geneses()
            .iter()
            .map(|g| ReferenceRollup::new(g).map(Rc::new).unwrap())
            .collect();
        let mut blocks = Vec::new();
        for (index, (members, work)) in schedule(all_rollups).iter().enumerate() {
            let pre: BTreeMap<u32, _> = members
                .iter()
                .map(|&id| (id, rollups[id as usize - 1].state()))
                .collect();
            let mut cluster = Cluster::new(Domain::default());
            for id in members {
                cluster
                    .add(Box::new(rollups[*id as usize - 1].clone()))
                    .unwrap();
            }
            cluster.begin_slot(index as u64 + 1).unwrap();
            for w in work {
                cluster
                    .submit(w.rollup, &w.tx(&rollups).unwrap().encode())
                    .unwrap();
            }
            for sealed in cluster.seal().unwrap() {
                let block = Block::decode(&sealed.data).unwrap();
                blocks.push((pre[&sealed.header.rollup_id].clone(), block));
            }
        }
        blocks
    }

    #[test]
    fn the_demo_stf_deployment_holds_every_block_of_the_schedule() {
        let mut most = lockstep_reference_rollup::circuit::StfCapacity {
            rows: 0,
            tape: 0,
            keys: 0,
            scratch: 0,
        };
        for all in [false, true] {
            for (pre, block) in scheduled_blocks(all) {
                assert_eq!(pre.tree().depth(), DEMO_STF.depth);
                let need = machine::run(&pre, Domain::default(), &block)
                    .unwrap()
                    .stats()
                    .capacity();
                most.rows = most.rows.max(need.rows);
                most.tape = most.tape.max(need.tape);
                most.keys = most.keys.max(need.keys);
                most.scratch = most.scratch.max(need.scratch);
            }
        }
        let c = DEMO_STF.capacity;
        assert!(
            most.rows <= c.rows
                && most.tape <= c.tape
                && most.keys <= c.keys
                && most.scratch <= c.scratch,
            "the schedule needs {most:?}, the demo's STF circuit holds {c:?}"
        );
        // The busiest block (the reentrant call and the failing callee) is most of it.
        assert!(most.rows * 5 >= c.rows * 4, "{most:?} in {c:?}: oversized");
        // And the circuit of that capacity fits its k.
        let mut builder = DEMO_STF
            .circuit(
                halo2_base::gates::circuit::CircuitBuilderStage::Mock,
                None,
                &DEMO_STF.keygen_witness().unwrap(),
            )
            .unwrap();
        builder.clear();
    }
}
