//! The slot pipeline: `aggregating → posting → settled`.
//!
//! One task takes the slots whose proofs are all in, oldest first (a slot's pre roots are the
//! previous slot's post roots, so L1 must settle them in order), and for each:
//!
//! 1. **aggregating**: folds the stored rollup proofs into one aggregation proof (minutes, on a
//!    blocking thread) and stores it together with the move to `posting`, in one atomic write.
//!    A crash before that write proves again after the restart; nothing else was recorded.
//! 2. **posting**: rebuilds the slot's blobs from the stored block data, checks the claims
//!    against the proof's public inputs, has the settlement call estimated (a refusal, decoded,
//!    fails the slot without spending gas), **signs** the type-3 transaction and **stores** it,
//!    and only then sends it. After a crash the stored transaction is looked for on L1: mined,
//!    it settles the record; not mined, the very same bytes are sent again (same nonce, same
//!    hash), so one slot never gets two settlement transactions from this aggregator, and the
//!    contract refuses a second settlement of a slot anyway (`SlotAlreadySettled`).
//! 3. **settled**: the receipt's transaction, block and gas go into the record.
//!
//! Transient L1 errors are retried with a capped backoff, and so is an aggregation key that
//! cannot be loaded (the slot waits in `aggregating` until the operator fixes it); a refused
//! settlement or a failed aggregation proof moves the slot to `failed` with the stage and the
//! reason.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    primitives::{Address, Bytes, TxHash, B256},
    providers::{DynProvider, Provider},
};
use eyre::{bail, ensure, eyre, Result};
use halo2_base::halo2_proofs::{halo2curves::bn256::Bn256, poly::kzg::commitment::ParamsKZG};
use lockstep_circuits::{
    aggregation::{self, AggregationConfig, AggregationKind},
    keys::KeyStore,
    layout::RollupPublicInputs,
    Fr,
};
use lockstep_contracts::settlement::{self, DataRef, SidecarFormat, SlotData};
use lockstep_storage::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{info, warn, Instrument};

pub use super::prover::{default_aggregation_k, AggregationProver};
use super::{
    intake::{fr_hex, parse_fr},
    prover::{decode_proof, SlotProver},
    slots::{now_ms, PostedTx, SlotRecord, SlotState, Slots, StoredAggregate},
    AggregatorHandle,
};
use crate::l1::{self, RollupL1};

/// How the pipeline reaches L1.
#[derive(Debug, Clone)]
pub struct L1Poster {
    /// A provider for reads, estimates and raw sends (no wallet needed).
    pub provider: DynProvider,
    /// Signs settlement transactions.
    pub wallet: EthereumWallet,
    /// The `LockstepSettlement` contract.
    pub settlement: Address,
    /// The blob sidecar format the node takes.
    pub sidecar: SidecarFormat,
    /// How often to look for a receipt.
    pub poll: Duration,
    /// How long to wait for a receipt before sending the same transaction again.
    pub resend_after: Duration,
}

/// A point at which the pipeline can be made to stop dead, as if the process were killed there
/// (crash tests: `LOCKSTEP_PAUSE_AT`). Never set in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PausePoint {
    /// After the aggregation is made, before it is stored (as if killed mid-aggregation: the
    /// slot is still in `aggregating`).
    Aggregating,
    /// After the aggregation proof is stored (the slot is in `posting`, nothing signed).
    Aggregated,
    /// After the settlement transaction is signed and stored, before it is sent.
    Signed,
    /// After the transaction is sent, before its receipt is looked for.
    Sent,
}

impl std::str::FromStr for PausePoint {
    type Err = eyre::Report;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "aggregating" => Self::Aggregating,
            "aggregated" => Self::Aggregated,
            "signed" => Self::Signed,
            "sent" => Self::Sent,
            other => {
                bail!("unknown pause point {other:?} (aggregating, aggregated, signed or sent)")
            }
        })
    }
}

/// The pipeline task.
pub struct Pipeline<S> {
    slots: Slots<S>,
    handle: AggregatorHandle,
    prover: Arc<dyn SlotProver>,
    l1: Option<L1Poster>,
    ready: mpsc::UnboundedReceiver<u64>,
    pause_at: Option<PausePoint>,
}

/// How a slot's turn through the pipeline ended.
enum Outcome {
    /// It reached a final state, or waits for something outside the pipeline.
    Done,
    /// It stopped at a pause point (crash tests): the pipeline stops too.
    Paused,
}

impl<S: Store + Send + Sync + 'static> Pipeline<S> {
    /// A pipeline over `store` (shared with the service), writing through `handle`, taking the
    /// slots announced on `ready`. Without `l1`, slots stop in `posting`.
    pub fn new(
        store: S,
        handle: AggregatorHandle,
        prover: Arc<dyn SlotProver>,
        l1: Option<L1Poster>,
        ready: mpsc::UnboundedReceiver<u64>,
    ) -> Self {
        Self {
            slots: Slots::new(store),
            handle,
            prover,
            l1,
            ready,
            pause_at: None,
        }
    }

    /// Stops dead at `point` (crash tests only).
    pub fn pause_at(mut self, point: Option<PausePoint>) -> Self {
        self.pause_at = point;
        self
    }

    /// Resumes every unfinished slot past `proving`, then takes announced slots, oldest first,
    /// until every sender of `ready` is gone.
    pub async fn run(mut self) {
        let mut queue = BTreeSet::new();
        match self.slots.unfinished() {
            Ok(records) => queue.extend(
                records
                    .into_iter()
                    .filter(|r| matches!(r.state, SlotState::Aggregating | SlotState::Posting))
                    .map(|r| r.slot),
            ),
            Err(err) => warn!(%err, "cannot list unfinished slots"),
        }
        loop {
            while let Ok(slot) = self.ready.try_recv() {
                queue.insert(slot);
            }
            super::metrics::pipeline_queue(queue.len());
            let Some(slot) = queue.pop_first() else {
                match self.ready.recv().await {
                    Some(slot) => {
                        queue.insert(slot);
                        continue;
                    }
                    None => return,
                }
            };
            // Every line about the slot, the aggregation's and the settlement's included, is in
            // its span.
            let span = tracing::info_span!("slot", slot);
            if let Outcome::Paused = self.advance(slot).instrument(span).await {
                warn!(slot, point = ?self.pause_at, "pipeline paused (crash test)");
                std::future::pending::<()>().await;
            }
        }
    }

    /// Takes `slot` as far as it goes.
    async fn advance(&self, slot: u64) -> Outcome {
        loop {
            let record = match self.slots.get(slot) {
                Ok(Some(record)) => record,
                Ok(None) => return Outcome::Done,
                Err(err) => {
                    warn!(slot, %err, "cannot read the slot; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let step = match record.state {
                SlotState::Aggregating => self.aggregate(&record).await,
                SlotState::Posting => match &self.l1 {
                    Some(l1) => self.post(&record, l1).await,
                    None => {
                        warn!(slot, "no [l1] configured: the slot stays in posting");
                        return Outcome::Done;
                    }
                },
                _ => return Outcome::Done,
            };
            match step {
                Ok(Step::Next) => {}
                Ok(Step::Paused) => return Outcome::Paused,
                Err(Failure { stage, reason }) => {
                    warn!(slot, stage, %reason, "slot failed");
                    super::metrics::slot_failed(stage);
                    let failed = SlotState::Failed {
                        stage: stage.into(),
                        reason,
                    };
                    if let Err(err) = self.write(self.handle.transition(slot, failed).await) {
                        warn!(slot, %err, "cannot record the failure");
                    }
                    return Outcome::Done;
                }
            }
        }
    }

    async fn aggregate(&self, record: &SlotRecord) -> Result<Step, Failure> {
        let slot = record.slot;
        let proofs = self
            .slots
            .proofs(slot)
            .map_err(|e| Failure::aggregating(e.to_string()))?;
        info!(slot, rollups = proofs.len(), "aggregating");
        // A key that cannot be loaded (a missing SRS, an unreadable key folder) is the
        // operator's to fix, not the slot's fault: the slot waits in `aggregating`.
        let mut backoff = Duration::from_secs(5);
        loop {
            let prover = self.prover.clone();
            let rollups = proofs.len();
            match tokio::task::spawn_blocking(move || prover.prepare(rollups)).await {
                Ok(Ok(())) => break,
                Ok(Err(err)) => {
                    warn!(
                        slot,
                        err = format!("{err:#}"),
                        ?backoff,
                        "cannot load the aggregation key; the slot waits"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
                Err(panic) => {
                    return Err(Failure::aggregating(format!(
                        "loading the aggregation key panicked: {panic}"
                    )))
                }
            }
        }
        let started = Instant::now();
        let prover = self.prover.clone();
        let job = tracing::info_span!("aggregation", slot, rollups = proofs.len());
        let proved = tokio::task::spawn_blocking(move || job.in_scope(|| prover.prove(&proofs)))
            .await
            .map_err(|e| Failure::aggregating(format!("the prover panicked: {e}")))?
            .map_err(|e| Failure::aggregating(format!("{e:#}")))?;
        let seconds = started.elapsed().as_secs_f64();
        let (instances, proof) = proved;
        if self.prover.is_dev_mode() {
            info!(slot, "aggregation checked natively, NOT proven (dev mode)");
        } else {
            info!(slot, seconds, bytes = proof.len(), "aggregation proof made");
        }
        if let Step::Paused = self.pause(PausePoint::Aggregating) {
            return Ok(Step::Paused);
        }
        let aggregate = StoredAggregate {
            instances: instances.iter().map(fr_hex).collect(),
            proof: format!("0x{}", hex::encode(&proof)),
            proving_seconds: seconds,
            proved_at_ms: now_ms(),
        };
        self.write(self.handle.finish_aggregation(slot, aggregate).await)
            .map_err(|e| Failure::aggregating(e.to_string()))?;
        Ok(self.pause(PausePoint::Aggregated))
    }

    async fn post(&self, record: &SlotRecord, l1: &L1Poster) -> Result<Step, Failure> {
        let slot = record.slot;
        let mut backoff = Duration::from_millis(500);
        loop {
            match self.try_post(record, l1).await {
                Ok(step) => return Ok(step),
                Err(PostError::Final(reason)) => return Err(Failure::posting(reason)),
                Err(PostError::Retry(err)) => {
                    warn!(
                        slot,
                        err = format!("{err:#}"),
                        ?backoff,
                        "posting failed; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn try_post(&self, record: &SlotRecord, l1: &L1Poster) -> Result<Step, PostError> {
        let slot = record.slot;
        let post = self
            .slots
            .post(slot)
            .map_err(|e| PostError::Retry(e.into()))?
            .ok_or_else(|| PostError::Final("posting without a stored aggregation".into()))?;
        let tx = match post.tx {
            Some(tx) => {
                let hash = parse_hash(&tx.hash).map_err(PostError::Final)?;
                if let Some(receipt) = receipt(l1, hash).await? {
                    info!(slot, %hash, "the stored settlement transaction is mined");
                    return self.settled(slot, &receipt).await;
                }
                let next = settlement::next_slot(&l1.provider, l1.settlement)
                    .await
                    .map_err(|e| PostError::Retry(e.into()))?;
                if next > slot {
                    return Err(PostError::Final(format!(
                        "L1 has settled past slot {slot} (next slot {next}) without transaction \
                         {hash}"
                    )));
                }
                info!(slot, %hash, nonce = tx.nonce, "sending the stored settlement transaction again");
                tx
            }
            None => {
                let tx = self.sign(record, &post.aggregate, l1).await?;
                self.write(self.handle.record_tx(slot, tx.clone()).await)
                    .map_err(PostError::Retry)?;
                info!(slot, hash = %tx.hash, nonce = tx.nonce, "settlement transaction signed and stored");
                if self.pause_at == Some(PausePoint::Signed) {
                    return Ok(Step::Paused);
                }
                tx
            }
        };
        let raw = hex::decode(tx.raw.strip_prefix("0x").unwrap_or(&tx.raw))
            .map_err(|e| PostError::Final(format!("stored transaction is not hex: {e}")))?;
        if let Err(err) = settlement::send_raw(&l1.provider, &raw).await {
            let hash = parse_hash(&tx.hash).map_err(PostError::Final)?;
            if !err.to_string().to_lowercase().contains("nonce too low") {
                return Err(PostError::Retry(err.into()));
            }
            // The nonce went to another transaction of this sender. Ours may have been mined
            // just now: look once more before giving the stored transaction up.
            if let Some(receipt) = receipt(l1, hash).await? {
                return self.settled(slot, &receipt).await;
            }
            warn!(slot, %hash, "the stored transaction's nonce is taken; signing a new one");
            let post = self
                .slots
                .post(slot)
                .map_err(|e| PostError::Retry(e.into()))?
                .ok_or_else(|| PostError::Final("the stored aggregation is gone".into()))?;
            let fresh = self.sign(record, &post.aggregate, l1).await?;
            self.write(self.handle.record_tx(slot, fresh).await)
                .map_err(PostError::Retry)?;
            return Err(PostError::Retry(eyre!(
                "replaced settlement transaction {hash}, whose nonce was taken"
            )));
        }
        if self.pause_at == Some(PausePoint::Sent) {
            return Ok(Step::Paused);
        }
        let hash = parse_hash(&tx.hash).map_err(PostError::Final)?;
        let waiting = lockstep_circuits::progress::Progress::start(
            format!("slot {slot}: waiting for the receipt of {hash}"),
            None,
            None,
        );
        while waiting.elapsed() < l1.resend_after {
            if let Some(receipt) = receipt(l1, hash).await? {
                waiting.finish();
                return self.settled(slot, &receipt).await;
            }
            tokio::time::sleep(l1.poll).await;
        }
        Err(PostError::Retry(eyre!(
            "no receipt for {hash} after {:?}",
            l1.resend_after
        )))
    }

    /// Builds the settlement call from what is stored, has it estimated, and signs it.
    async fn sign(
        &self,
        record: &SlotRecord,
        aggregate: &StoredAggregate,
        l1: &L1Poster,
    ) -> Result<PostedTx, PostError> {
        let slot = record.slot;
        let blocks = self
            .slots
            .blocks(slot)
            .map_err(|e| PostError::Retry(e.into()))?;
        let (data, sidecar) = blob_layout(&blocks, l1.sidecar).map_err(PostError::Final)?;
        let hashes = sidecar.versioned_hashes();
        let stored: Vec<String> = hashes.iter().map(|h| h.to_string()).collect();
        if stored != record.versioned_hashes {
            return Err(PostError::Final(format!(
                "the stored block data gives blobs {stored:?}, the slot was laid out with {:?}",
                record.versioned_hashes
            )));
        }
        let proofs = self
            .slots
            .proofs(slot)
            .map_err(|e| PostError::Retry(e.into()))?;
        let rollups = proofs
            .iter()
            .map(|(id, proof)| {
                let (instances, _) = decode_proof(proof).map_err(|e| format!("{e:#}"))?;
                let public =
                    RollupPublicInputs::from_instances(&instances).map_err(|e| e.to_string())?;
                let data = *data
                    .get(id)
                    .ok_or_else(|| format!("rollup {id} has a proof but no block data"))?;
                Ok(RollupL1 {
                    public,
                    data,
                    withdrawals: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(PostError::Final)?;
        let claims = l1::claims(&rollups, &hashes).map_err(|e| PostError::Final(e.to_string()))?;
        let instances = aggregate
            .instances
            .iter()
            .map(|h| parse_fr(h).ok_or_else(|| format!("aggregate instance {h:?}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(PostError::Final)?;
        let proof = hex::decode(
            aggregate
                .proof
                .strip_prefix("0x")
                .unwrap_or(&aggregate.proof),
        )
        .map_err(|e| PostError::Final(format!("stored aggregation proof: {e}")))?;
        let signed = settlement::sign_settlement(
            &l1.provider,
            &l1.wallet,
            l1.settlement,
            slot,
            claims,
            l1::accumulator_words(&instances),
            Bytes::from(proof),
            sidecar,
        )
        .await
        .map_err(|err| match err {
            lockstep_contracts::Error::SettlementRefused(reason) => {
                PostError::Final(format!("L1 refuses the settlement: {reason}"))
            }
            other => PostError::Retry(other.into()),
        })?;
        Ok(PostedTx {
            hash: signed.hash.to_string(),
            raw: signed.raw.to_string(),
            nonce: signed.nonce,
            signed_at_ms: now_ms(),
        })
    }

    async fn settled(
        &self,
        slot: u64,
        receipt: &alloy::rpc::types::TransactionReceipt,
    ) -> Result<Step, PostError> {
        let settled = settlement::settled_from_receipt(receipt)
            .map_err(|e| PostError::Final(e.to_string()))?;
        super::metrics::settlement_gas(settled.gas_used);
        info!(
            slot,
            tx = %settled.tx,
            block = settled.block,
            gas = settled.gas_used,
            "slot settled"
        );
        let state = SlotState::Settled {
            tx: settled.tx.to_string(),
            block: settled.block,
            gas_used: settled.gas_used,
        };
        self.write(self.handle.transition(slot, state).await)
            .map_err(PostError::Retry)?;
        Ok(Step::Next)
    }

    fn pause(&self, point: PausePoint) -> Step {
        if self.pause_at == Some(point) {
            Step::Paused
        } else {
            Step::Next
        }
    }

    /// Flattens a service reply.
    fn write<T, E: std::error::Error + Send + Sync + 'static>(
        &self,
        reply: Result<Result<T, E>, super::ServiceStopped>,
    ) -> Result<T> {
        Ok(reply??)
    }
}

/// What one stage did.
enum Step {
    /// Moved the slot on; look at it again.
    Next,
    /// Stopped at a pause point.
    Paused,
}

/// A stage that failed for good.
struct Failure {
    stage: &'static str,
    reason: String,
}

impl Failure {
    fn aggregating(reason: String) -> Self {
        Self {
            stage: "aggregating",
            reason,
        }
    }

    fn posting(reason: String) -> Self {
        Self {
            stage: "posting",
            reason,
        }
    }
}

enum PostError {
    /// Will not get better by trying again.
    Final(String),
    /// L1 or storage trouble: try again.
    Retry(eyre::Report),
}

/// A transaction's receipt, if it is mined.
async fn receipt(
    l1: &L1Poster,
    hash: TxHash,
) -> Result<Option<alloy::rpc::types::TransactionReceipt>, PostError> {
    l1.provider
        .get_transaction_receipt(hash)
        .await
        .map_err(|e| PostError::Retry(e.into()))
}

fn parse_hash(hash: &str) -> Result<TxHash, String> {
    hash.parse::<B256>()
        .map_err(|e| format!("stored transaction hash {hash:?}: {e}"))
}

/// The creation code of the L1 verifier of the aggregation `config` over proofs of the rollup
/// circuit with `inner_params` and `inner_vk`: the aggregation key from `keys` (made and
/// cached on first use: minutes), its EVM verifier, compiled. Deployments, the demo and the
/// end-to-end tests make their verifiers with it. Blocking.
pub fn aggregation_verifier_code(
    keys: &KeyStore,
    params: &ParamsKZG<Bn256>,
    config: &AggregationConfig,
    inner_params: &ParamsKZG<Bn256>,
    inner_vk: &halo2_base::halo2_proofs::plonk::VerifyingKey<
        halo2_base::halo2_proofs::halo2curves::bn256::G1Affine,
    >,
) -> Result<Vec<u8>> {
    let key = aggregation::aggregation_key(
        keys,
        params,
        config,
        AggregationKind::Lockstep,
        inner_params,
        inner_vk,
    )?;
    let source = aggregation::evm_verifier_source(params, key.pk.get_vk(), config.num_instances());
    Ok(lockstep_contracts::verifier::compile(
        &source,
        &lockstep_contracts::verifier::default_solc(),
    )?)
}

/// A new slot in `proving` for `blocks` (by rollup id) starting at `pre_roots`: its blobs laid
/// out ([`blob_layout`]) and each rollup's DA commitment computed from its blob's versioned
/// hash, as L1 will. `POST /v1/slots` and the service's builder open slots with it. Blocking
/// (KZG commitments); fails if the data does not fit a slot's blobs.
pub fn slot_record(
    slot: u64,
    blocks: &BTreeMap<u32, Vec<u8>>,
    pre_roots: &BTreeMap<u32, Fr>,
) -> Result<SlotRecord, String> {
    // Versioned hashes depend only on the blobs' KZG commitments, not on the sidecar format:
    // EIP-4844's one proof per blob is the cheaper way to get them (posting builds the sidecar
    // the node wants).
    let (refs, sidecar) = blob_layout(blocks, SidecarFormat::Eip4844)?;
    let hashes = sidecar.versioned_hashes();
    let mut rollups = BTreeMap::new();
    for (&id, at) in &refs {
        let da =
            settlement::da_commitment(hashes[usize::from(at.blob_index)], at.offset, at.length);
        let da = l1::u256_to_fr(da).expect("reduced modulo p");
        let pre_root = pre_roots
            .get(&id)
            .ok_or_else(|| format!("no pre root for rollup {id}"))?;
        rollups.insert(
            id,
            super::slots::RollupSlot {
                pre_root: fr_hex(pre_root),
                blob_index: at.blob_index,
                offset: at.offset,
                length: at.length,
                da_commitment: fr_hex(&da),
            },
        );
    }
    Ok(SlotRecord::new(
        slot,
        SlotState::Proving,
        rollups,
        hashes.iter().map(|h| h.to_string()).collect(),
        super::slots::now_ms(),
    ))
}

/// Lays out a slot's block data in its blobs, in rollup-id order: where each rollup's data
/// sits, and the sidecar. The builder endpoint and the pipeline both use it, so the blobs L1
/// gets are the ones the proofs committed to.
pub fn blob_layout(
    blocks: &BTreeMap<u32, Vec<u8>>,
    format: SidecarFormat,
) -> Result<(BTreeMap<u32, DataRef>, settlement::BlobSidecar), String> {
    let mut payload = SlotData::new();
    let mut refs = BTreeMap::new();
    for (&id, data) in blocks {
        let at = payload.push(data).map_err(|e| e.to_string())?;
        refs.insert(id, at);
    }
    let sidecar = payload.sidecar(format).map_err(|e| e.to_string())?;
    Ok((refs, sidecar))
}

/// Checks the configuration's signer key: `0x` + 64 hex digits.
pub fn parse_signer(key: &str) -> Result<alloy::signers::local::PrivateKeySigner> {
    let signer: alloy::signers::local::PrivateKeySigner = key
        .trim()
        .parse()
        .map_err(|e| eyre!("the L1 signer key is not a private key (0x + 64 hex digits): {e}"))?;
    ensure!(
        signer.address() != Address::ZERO,
        "the L1 signer key is zero"
    );
    Ok(signer)
}
