//! `lockstep adapter run`: a reference rollup's adapter, as a daemon and as a library.
//!
//! An adapter holds its rollup's state. For every slot that waits for its proof it:
//! 1. fetches its block from the aggregator (`GET /v1/slots/{slot}/blocks/{id}`), the block the
//!    builder sealed and laid out in the slot's blob;
//! 2. replays the block on its own state ([`ReferenceRollup::transition`]): the block must start
//!    at the adapter's head root and re-execute to the post root it claims;
//! 3. keeps the block in its data folder (`blocks/<slot>.lkb`), so its state survives restarts;
//! 4. proves the block and submits the proof (`POST /v1/proofs`).
//!
//! **Joining late.** An adapter whose head is behind the slot it is asked for (a fresh data
//! folder, or lost blocks) first fetches, replays and keeps the rollup's earlier blocks from the
//! aggregator ([`Adapter::catch_up`]).
//!
//! **Crash safety.** A block is written to disk before its proof is submitted. A restart
//! replays every kept block. A slot that still waits for a proof the adapter already applied
//! (a crash between steps 3 and 4) is proven again from the state before it. A proof the
//! aggregator already holds (`409 duplicate`) counts as submitted.
//!
//! **What it proves with.** The circuit of its deployment file (`--rollup`,
//! `lockstep_reference_rollup::deployment`): the reference rollup's **STF circuit** (`[stf]`),
//! whose key it derives from the deployment (`k`, tree depth, capacity); or, without `[stf]`,
//! the **test-rollup circuit**, which proves the block's public inputs and no state transition,
//! and is named in every line logged about such a proof. At open it checks its key's digest
//! against the one the aggregator registered the rollup with (`GET /v1/rollups/{id}`, from the
//! rollup's key file), so a mismatched deployment stops before proving anything.
//!
//! **Not handled yet.** A slot that fails after the adapter applied its block leaves the
//! adapter ahead of L1: the builder and the adapters then need to go back to the settled root,
//! which is an operator's job today (stop the adapter, delete the blocks after the settled
//! slot from its folder, restart).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use eyre::{bail, ensure, eyre, Result, WrapErr};
use halo2_base::{
    gates::circuit::{builder::BaseCircuitBuilder, BaseCircuitParams, CircuitBuilderStage},
    halo2_proofs::{halo2curves::bn256::Bn256, poly::kzg::commitment::ParamsKZG},
};
use lockstep_circuits::{
    aggregation::vk_digest,
    entry::Domain,
    keys::{CircuitKey, KeyStore},
    layout::NUM_INSTANCES,
    prover, test_rollup, testing, Fr,
};
use lockstep_reference_rollup::{
    block::{fr_hex, parse_fr_hex, Block},
    circuit::{self as stf, StfConfig},
    executor::Genesis,
    machine,
    state::State,
    Deployment, ReferenceRollup,
};
use lockstep_rollup_api::SealedBlock;

use tracing::{info, warn};

use lockstep_aggregator::{
    client::ApiClient,
    service::prover::{check_dev_chain, DEV_MODE_PROOF},
};
use lockstep_api::{BlockData, ProofSubmission};

use crate::cli::AdapterRunArgs;

/// Wait after a failed round of `lockstep adapter run`.
const RETRY: Duration = Duration::from_secs(10);

/// Label of every proof made with the test-rollup circuit.
pub const PROOF_LABEL: &str = "test-rollup circuit: public inputs only, STF not proven";

/// Proves a rollup's blocks with the circuit the aggregator registered the rollup with.
#[derive(Clone)]
pub enum BlockProver {
    /// The test-rollup circuit: the block's public inputs, no state transition.
    TestRollup {
        /// Its SRS.
        params: Arc<ParamsKZG<Bn256>>,
        /// Its key.
        key: Arc<CircuitKey<BaseCircuitParams>>,
    },
    /// The reference rollup's STF circuit of one deployment.
    Stf {
        /// The deployment.
        config: StfConfig,
        /// The SRS of `config.k`.
        params: Arc<ParamsKZG<Bn256>>,
        /// Its key.
        key: Arc<CircuitKey<BaseCircuitParams>>,
    },
    /// **DEV MODE, proves nothing**: each block is checked against the wrapped prover's
    /// circuit with halo2's MockProver, and the submission carries the dev-mode marker
    /// ([`DEV_MODE_PROOF`]) instead of a proof, which only an aggregator in dev mode accepts.
    DevMode(Box<Self>),
}

impl std::fmt::Debug for BlockProver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockProver")
            .field("circuit", &self.circuit_name())
            .field("dev_mode", &matches!(self, Self::DevMode(_)))
            .finish_non_exhaustive()
    }
}

impl BlockProver {
    /// The test-rollup circuit's prover with the SRS and key from `keys` (made and cached on
    /// first use).
    pub fn test_rollup(keys: &KeyStore) -> Result<Self> {
        let (params, key) =
            testing::test_rollup_key(keys).wrap_err("loading the test rollup's key")?;
        Ok(Self::new(Arc::new(params), Arc::new(key)))
    }

    /// A test-rollup prover over a loaded SRS and key.
    pub const fn new(
        params: Arc<ParamsKZG<Bn256>>,
        key: Arc<CircuitKey<BaseCircuitParams>>,
    ) -> Self {
        Self::TestRollup { params, key }
    }

    /// The STF circuit's prover for `config`: the SRS of `config.k` from `keys` (it must be
    /// there), the proving key from its cache or made by keygen (minutes) and cached.
    pub fn stf(keys: &KeyStore, config: StfConfig) -> Result<Self> {
        let params = keys.load_srs(config.k)?;
        let key = config
            .proving_key(keys, &params)
            .wrap_err("loading the STF circuit's key")?;
        Ok(Self::Stf {
            config,
            params: Arc::new(params),
            key: Arc::new(key),
        })
    }

    /// The prover of a rollup deployed with `stf` (`None`: the test-rollup circuit).
    pub fn for_circuit(keys: &KeyStore, stf: Option<StfConfig>) -> Result<Self> {
        match stf {
            Some(config) => Self::stf(keys, config),
            None => Self::test_rollup(keys),
        }
    }

    /// The circuit's name, as the API spells it.
    pub fn circuit_name(&self) -> &'static str {
        match self {
            Self::TestRollup { .. } => "test-rollup",
            Self::Stf { .. } => "stf",
            Self::DevMode(inner) => inner.circuit_name(),
        }
    }

    /// What every log line about a proof says it proves.
    pub fn label(&self) -> String {
        match self {
            Self::TestRollup { .. } => PROOF_LABEL.to_owned(),
            Self::Stf { config, .. } => format!("STF circuit, k = {}", config.k),
            Self::DevMode(inner) => format!(
                "DEV MODE: NOT proven, checked by MockProver against the {}",
                inner.label()
            ),
        }
    }

    /// The circuit's SRS.
    pub fn params(&self) -> &Arc<ParamsKZG<Bn256>> {
        match self {
            Self::TestRollup { params, .. } | Self::Stf { params, .. } => params,
            Self::DevMode(inner) => inner.params(),
        }
    }

    /// The circuit's proving key.
    pub fn key(&self) -> &Arc<CircuitKey<BaseCircuitParams>> {
        match self {
            Self::TestRollup { key, .. } | Self::Stf { key, .. } => key,
            Self::DevMode(inner) => inner.key(),
        }
    }

    /// The STF deployment it proves (`None`: the test-rollup circuit).
    pub fn stf_config(&self) -> Option<StfConfig> {
        match self {
            Self::TestRollup { .. } => None,
            Self::Stf { config, .. } => Some(*config),
            Self::DevMode(inner) => inner.stf_config(),
        }
    }

    /// The digest of the verifying key, as the aggregation exposes it and L1 registers it.
    pub fn vk_digest(&self) -> Fr {
        vk_digest(&prover::protocol(
            self.params(),
            self.key().pk.get_vk(),
            NUM_INSTANCES,
        ))
    }

    /// Proves `prepared`'s block with its DA commitment (in dev mode: checks it with
    /// MockProver); returns the `POST /v1/proofs` body. Blocking (tens of seconds for the test
    /// rollup, minutes for the STF circuit).
    pub fn prove(&self, prepared: &PreparedSlot, domain: Domain) -> Result<ProofSubmission> {
        let sealed = &prepared.sealed;
        let expected = sealed
            .witness(domain, prepared.da_commitment)
            .public_inputs()
            .to_instances()?;
        let proof = match self {
            Self::DevMode(inner) => {
                let (k, circuit) = inner.circuit(CircuitBuilderStage::Mock, prepared, domain)?;
                prover::mock_check(k, &circuit, expected.clone()).wrap_err_with(|| {
                    format!("slot {}: the block fails its circuit", sealed.slot)
                })?;
                DEV_MODE_PROOF.to_vec()
            }
            Self::TestRollup { params, key } | Self::Stf { params, key, .. } => {
                let (_, circuit) = self.circuit(CircuitBuilderStage::Prover, prepared, domain)?;
                let snark = prover::prove(params, &key.pk, circuit)?;
                ensure!(
                    snark.instances == vec![expected.clone()],
                    "slot {}: the proof exposes other public inputs than the block the builder \
                     sealed",
                    sealed.slot
                );
                snark.proof
            }
        };
        Ok(ProofSubmission {
            slot: sealed.slot,
            rollup_id: sealed.rollup_id,
            instances: expected.iter().map(fr_hex).collect(),
            proof: format!("0x{}", hex::encode(&proof)),
        })
    }

    /// The circuit of `prepared`'s block at `stage` (`Prover` with the key's break points, or
    /// `Mock`), and its `k`. The STF circuit first runs the block on the step machine and
    /// checks that it fits the deployment.
    fn circuit(
        &self,
        stage: CircuitBuilderStage,
        prepared: &PreparedSlot,
        domain: Domain,
    ) -> Result<(u32, BaseCircuitBuilder<Fr>)> {
        let sealed = &prepared.sealed;
        let break_points = |key: &CircuitKey<BaseCircuitParams>| {
            (stage == CircuitBuilderStage::Prover).then(|| key.meta.break_points.clone())
        };
        Ok(match self {
            Self::TestRollup { key, .. } => {
                let k = test_rollup::TEST_ROLLUP_K;
                let witness = sealed.witness(domain, prepared.da_commitment);
                (
                    k,
                    test_rollup::build(stage, k, break_points(key), &witness)?,
                )
            }
            Self::Stf { config, key, .. } => {
                ensure!(
                    prepared.pre.depth() == config.depth,
                    "slot {}: the rollup's state tree has depth {}, the STF deployment {}",
                    sealed.slot,
                    prepared.pre.depth(),
                    config.depth
                );
                let run = machine::run(&prepared.pre, domain, &prepared.block)
                    .wrap_err("running the block on the step machine")?;
                run.stats()
                    .check_fits(&config.capacity)
                    .map_err(|why| eyre!("slot {}: {why}", sealed.slot))?;
                let witness = run.stf_witness(
                    &prepared.pre,
                    &prepared.block,
                    domain,
                    prepared.da_commitment,
                    config.capacity,
                )?;
                (
                    config.k,
                    stf::circuit(
                        stage,
                        config.k,
                        break_points(key),
                        config.capacity,
                        &witness,
                    )?,
                )
            }
            Self::DevMode(inner) => inner.circuit(stage, prepared, domain)?,
        })
    }
}

/// A slot's block, replayed and kept, ready to prove.
#[derive(Debug, Clone)]
pub struct PreparedSlot {
    /// What the block produced.
    pub sealed: SealedBlock,
    /// The DA commitment its proof exposes.
    pub da_commitment: Fr,
    /// The block.
    pub block: Block,
    /// The rollup's state before it.
    pub pre: State,
}

/// The key `id` is registered with at the aggregator behind `client`
/// (`GET /v1/rollups/{id}`): its label and its vk digest.
pub async fn registered_key(client: &ApiClient, id: u32) -> Result<(String, Fr)> {
    let rollup = client.rollup(id).await?;
    let digest = parse_fr_hex(&rollup.vk_digest).ok_or_else(|| {
        eyre!(
            "rollup {id}: vk digest {:?} is not a field element",
            rollup.vk_digest
        )
    })?;
    Ok((rollup.label, digest))
}

/// What happened to one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// The slot.
    pub slot: u64,
    /// `accepted` (202) or `duplicate` (the aggregator already had it).
    pub outcome: &'static str,
    /// The slot's state after the submission, as the aggregator reported it.
    pub slot_state: String,
    /// Proving time.
    pub prove_seconds: f64,
}

/// One reference rollup's adapter.
#[derive(Debug)]
pub struct Adapter {
    genesis: Genesis,
    domain: Domain,
    dir: PathBuf,
    client: ApiClient,
    prover: BlockProver,
    /// The state after every kept block.
    head: State,
    /// The newest kept block's slot and the state before it.
    previous: Option<(u64, State)>,
}

impl Adapter {
    /// Opens the adapter of `genesis`'s rollup: reads the deployment domain from the
    /// aggregator behind `client`, checks that the rollup is registered there, and replays the
    /// blocks kept in `dir`.
    pub async fn open(
        genesis: Genesis,
        client: ApiClient,
        dir: impl Into<PathBuf>,
        prover: BlockProver,
    ) -> Result<Self> {
        let dir = dir.into();
        let health = client.health().await?;
        let id = genesis.rollup_id;
        ensure!(
            health.rollups.contains(&id),
            "rollup {id} is not registered at the aggregator {} (it serves {:?})",
            client.base(),
            health.rollups
        );
        let domain = Domain {
            chain_id: health.domain.chain_id,
            registry: health.domain.registry.parse().map_err(|e: String| {
                eyre!(
                    "the aggregator's domain registry {:?}: {e}",
                    health.domain.registry
                )
            })?,
        };
        let (label, digest) = registered_key(&client, id).await?;
        let mine = prover.vk_digest();
        ensure!(
            digest == mine,
            "rollup {id} is registered at the aggregator with vk digest {} ({label}), but this \
             adapter proves with the {} circuit (vk digest {}): another circuit, deployment or \
             SRS",
            fr_hex(&digest),
            prover.circuit_name(),
            fr_hex(&mine)
        );
        std::fs::create_dir_all(dir.join("blocks"))
            .wrap_err_with(|| format!("creating {}", dir.display()))?;
        let mut adapter = Self {
            head: genesis.state()?,
            genesis,
            domain,
            dir,
            client,
            prover,
            previous: None,
        };
        let kept = adapter.kept_blocks()?;
        let count = kept.len();
        for (slot, block) in kept {
            let state = adapter.head.clone();
            let transition = adapter.replay(state.clone(), &block).wrap_err_with(|| {
                format!(
                    "replaying kept block {} (the data folder does not follow from the genesis)",
                    adapter.block_path(slot).display()
                )
            })?;
            adapter.previous = Some((slot, state));
            adapter.head = transition.post_state;
        }
        info!(
            rollup = id,
            root = %fr_hex(&adapter.head.root()),
            kept = count,
            "adapter open"
        );
        Ok(adapter)
    }

    /// The rollup.
    pub const fn rollup_id(&self) -> u32 {
        self.genesis.rollup_id
    }

    /// The state root after every kept block.
    pub fn head_root(&self) -> Fr {
        self.head.root()
    }

    /// The state after every kept block.
    pub const fn head(&self) -> &State {
        &self.head
    }

    /// Proves and submits every slot waiting for this rollup's proof, oldest first; stops at
    /// the first slot that fails (later ones build on it).
    pub async fn step(&mut self) -> Result<Vec<Submitted>> {
        let id = self.rollup_id();
        let waiting = self.client.rollup(id).await?.slots_waiting_for_proof;
        let mut done = Vec::new();
        for slot in waiting {
            let prepared = self.prepare(slot).await?;
            done.push(self.submit(&prepared).await?);
        }
        Ok(done)
    }

    /// Fetches `slot`'s block, replays it on the head state (or, if it is the newest kept
    /// block, on the state before it) and keeps it on disk.
    pub async fn prepare(&mut self, slot: u64) -> Result<PreparedSlot> {
        let id = self.rollup_id();
        let (body, data) = self.fetch_block(slot).await?;
        let field = |name: &str, text: &str| -> Result<Fr> {
            parse_fr_hex(text).ok_or_else(|| eyre!("slot {slot}'s block: bad {name} {text:?}"))
        };
        let pre_root = field("pre_root", &body.pre_root)?;
        let da_commitment = field("da_commitment", &body.da_commitment)?;
        let block = Block::decode(&data).wrap_err_with(|| format!("slot {slot}'s block"))?;
        ensure!(
            block.rollup_id == id && block.slot == slot && block.pre_root == pre_root,
            "slot {slot}'s block is for rollup {} slot {} from root {}, not what the slot lists",
            block.rollup_id,
            block.slot,
            fr_hex(&block.pre_root)
        );
        let again = match &self.previous {
            Some((kept, before)) if *kept == slot && before.root() == pre_root => {
                Some(before.clone())
            }
            _ => None,
        };
        if again.is_none() && pre_root != self.head.root() {
            // A fresh data folder, or blocks lost: take the earlier blocks from the aggregator.
            self.catch_up(slot).await?;
        }
        let base = match again {
            Some(before) => {
                info!(
                    rollup = id,
                    slot, "block kept before a restart: proving it again"
                );
                before
            }
            None => {
                if pre_root != self.head.root() {
                    bail!(
                        "slot {slot}'s block for rollup {id} starts at root {}, but this rollup \
                         is at {} (is an earlier slot missing, or did one fail?)",
                        fr_hex(&pre_root),
                        fr_hex(&self.head.root())
                    );
                }
                self.head.clone()
            }
        };
        let transition = self.replay(base.clone(), &block)?;
        if self.previous.as_ref().is_none_or(|(kept, _)| *kept != slot) {
            self.keep(slot, &data)?;
            self.previous = Some((slot, base.clone()));
            self.head = transition.post_state;
        }
        Ok(PreparedSlot {
            sealed: transition.sealed,
            da_commitment,
            block,
            pre: base,
        })
    }

    /// Brings the adapter up to just before `slot`: fetches, replays and keeps the blocks of
    /// the earlier slots that hold this rollup, that have not failed and that are newer than
    /// its newest kept block (among the aggregator's newest 1,000 slots). What a fresh data
    /// folder needs to join a rollup that already has blocks. Returns how many it applied.
    pub async fn catch_up(&mut self, slot: u64) -> Result<usize> {
        let id = self.rollup_id();
        let listed = self.client.slots(1000).await?;
        let after = self.previous.as_ref().map(|(kept, _)| *kept);
        let mut earlier: Vec<u64> = listed
            .slots
            .iter()
            .filter(|s| s.state != "failed" && s.rollups.contains(&id))
            .map(|s| s.slot)
            .filter(|&s| s < slot && after.is_none_or(|kept| s > kept))
            .collect();
        earlier.sort_unstable();
        for &earlier_slot in &earlier {
            let (_, data) = self.fetch_block(earlier_slot).await?;
            let block = Block::decode(&data)?;
            ensure!(
                block.pre_root == self.head.root(),
                "catching up: slot {earlier_slot}'s block for rollup {id} starts at {}, but this \
                 rollup is at {}",
                fr_hex(&block.pre_root),
                fr_hex(&self.head.root())
            );
            let base = self.head.clone();
            let transition = self.replay(base.clone(), &block)?;
            self.keep(earlier_slot, &data)?;
            self.previous = Some((earlier_slot, base));
            self.head = transition.post_state;
            info!(
                rollup = id,
                slot = earlier_slot,
                "caught up: replayed and kept an earlier block"
            );
        }
        Ok(earlier.len())
    }

    /// `slot`'s block for this rollup: the aggregator's answer and the block's bytes.
    async fn fetch_block(&self, slot: u64) -> Result<(BlockData, Vec<u8>)> {
        let body = self.client.block(slot, self.rollup_id()).await?;
        let data = body.data.0.clone();
        Ok((body, data))
    }

    /// Proves a prepared slot and submits the proof.
    pub async fn submit(&self, prepared: &PreparedSlot) -> Result<Submitted> {
        let (id, slot) = (self.rollup_id(), prepared.sealed.slot);
        let label = self.prover.label();
        info!(
            rollup = id,
            slot,
            steps = prepared.block.steps.len(),
            assumed = prepared.sealed.assumed.len(),
            served = prepared.sealed.served.len(),
            "block replayed; proving ({label})"
        );
        let started = Instant::now();
        let prover = self.prover.clone();
        let (job, domain) = (prepared.clone(), self.domain);
        let span = tracing::info_span!("prove", rollup = id, slot);
        let body =
            tokio::task::spawn_blocking(move || span.in_scope(|| prover.prove(&job, domain)))
                .await
                .wrap_err("the proving thread")??;
        let prove_seconds = started.elapsed().as_secs_f64();
        let (outcome, slot_state) = match self.client.submit_proof(&body).await {
            Ok(accepted) => ("accepted", accepted.state),
            Err(err) if err.refusal() == Some((409, "duplicate")) => {
                ("duplicate", "proving".to_owned())
            }
            Err(err) => bail!("slot {slot}: the proof of rollup {id} was refused: {err}"),
        };
        info!(
            rollup = id,
            slot,
            seconds = format!("{prove_seconds:.1}"),
            outcome,
            "proof submitted ({label})"
        );
        Ok(Submitted {
            slot,
            outcome,
            slot_state,
            prove_seconds,
        })
    }

    fn replay(&self, state: State, block: &Block) -> Result<lockstep_reference_rollup::Transition> {
        Ok(ReferenceRollup::transition(
            state,
            self.genesis.max_steps,
            self.domain,
            block,
        )?)
    }

    fn block_path(&self, slot: u64) -> PathBuf {
        self.dir.join("blocks").join(format!("{slot:020}.lkb"))
    }

    /// Writes a block file atomically (a temporary file, synced, then renamed).
    fn keep(&self, slot: u64, data: &[u8]) -> Result<()> {
        let path = self.block_path(slot);
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(data)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().wrap_err_with(|| format!("keeping {}", path.display()))
    }

    /// The kept blocks, by slot.
    fn kept_blocks(&self) -> Result<BTreeMap<u64, Block>> {
        let mut blocks = BTreeMap::new();
        let folder = self.dir.join("blocks");
        for entry in
            std::fs::read_dir(&folder).wrap_err_with(|| format!("reading {}", folder.display()))?
        {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("lkb") {
                continue;
            }
            let slot: u64 = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| eyre!("{}: not a <slot>.lkb block file", path.display()))?;
            let data =
                std::fs::read(&path).wrap_err_with(|| format!("reading {}", path.display()))?;
            let block = Block::decode(&data).wrap_err_with(|| format!("{}", path.display()))?;
            blocks.insert(slot, block);
        }
        Ok(blocks)
    }
}

/// Runs `lockstep adapter run`: opens the adapter (waiting for the aggregator to answer), then
/// proves waiting slots every `--poll-ms` until SIGINT or SIGTERM (or once, with `--once`).
pub async fn run(args: AdapterRunArgs) -> Result<()> {
    if args.dev {
        // First, so that every line, the key loading's included, carries the dev label. The
        // chain is checked once the aggregator has said which domain it serves (below).
        lockstep_aggregator::dev::enable();
    }
    let deployment = Deployment::read(&args.rollup)?;
    let genesis = deployment.genesis.clone();
    let id = genesis.rollup_id;
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("adapter-data/rollup-{id}")));
    let keys = Arc::new(
        KeyStore::open(&args.keys)
            .wrap_err_with(|| format!("opening key folder {}", args.keys.display()))?,
    );
    let client = ApiClient::new(&args.aggregator);
    let poll = Duration::from_millis(args.poll_ms);
    // The circuit is the deployment's; its key is checked against the vk digest the aggregator
    // registered the rollup with at open.
    let mut prover: Option<BlockProver> = None;
    let mut adapter = loop {
        let attempt = async {
            let prover = match &prover {
                Some(prover) => prover.clone(),
                None => {
                    let stf = deployment.stf;
                    info!(
                        circuit = %deployment.circuit_label(),
                        "loading the rollup circuit's key (keygen on first use: minutes for \
                         the STF circuit)"
                    );
                    let keys = keys.clone();
                    let mut loaded =
                        tokio::task::spawn_blocking(move || BlockProver::for_circuit(&keys, stf))
                            .await??;
                    if args.dev {
                        loaded = BlockProver::DevMode(Box::new(loaded));
                    }
                    prover = Some(loaded.clone());
                    loaded
                }
            };
            Adapter::open(genesis.clone(), client.clone(), &dir, prover).await
        };
        match attempt.await {
            Ok(adapter) => break adapter,
            Err(err) if args.once => return Err(err),
            Err(err) => {
                warn!("{err:#}; retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    if args.dev {
        check_dev_chain(adapter.domain.chain_id, None)?;
    }
    let label = adapter.prover.label();
    lockstep_aggregator::say!(
        "adapter of rollup {id}: state root {}, data in {}, aggregator {}; proofs: {label}",
        fr_hex(&adapter.head_root()),
        dir.display(),
        client.base()
    );
    if args.once {
        let done = adapter.step().await?;
        lockstep_aggregator::say!("{} slot(s) proven and submitted", done.len());
        return Ok(());
    }
    let shutdown = lockstep_aggregator::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        // After a failure (a block that does not follow, the aggregator away), wait longer
        // before the next try, so one bad slot does not fill the log.
        let wait = tokio::select! {
            signal = &mut shutdown => {
                info!(signal, "stopping the adapter");
                return Ok(());
            }
            result = adapter.step() => match result {
                Ok(_) => poll,
                Err(err) => {
                    warn!("{err:#}; trying again in {} s", RETRY.as_secs());
                    RETRY.max(poll)
                }
            },
        };
        tokio::time::sleep(wait).await;
    }
}
