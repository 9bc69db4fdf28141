//! The adapter daemon of a Lockstep rollup, generic over the rollup interface: any rollup that
//! implements [`RollupReplica`] (its state, which applies sealed blocks) and brings a
//! [`RollupProver`] (its circuit) runs behind the same adapter.
//!
//! An adapter holds its rollup's state. For every slot that waits for its proof it:
//! 1. fetches its block from the aggregator (`GET /v1/slots/{slot}/blocks/{id}`), the block the
//!    builder sealed and laid out in the slot's blob;
//! 2. applies the block to its state, once ([`RollupReplica::apply_block`]): the block must
//!    start at the adapter's head root and re-execute to what it claims; the application
//!    records the witness the proof needs;
//! 3. keeps the block in its data folder (`blocks/<slot>.lkb`), so its state survives restarts;
//! 4. proves the block with that witness and submits the proof (`POST /v1/proofs`).
//!
//! **Joining late.** An adapter whose head is behind the slot it is asked for (a fresh data
//! folder, or lost blocks) first fetches, applies and keeps the rollup's earlier blocks from the
//! aggregator ([`Adapter::catch_up`]).
//!
//! **Crash safety.** A block is written to disk before its proof is submitted. A restart
//! applies every kept block. A slot that still waits for a proof the adapter already applied
//! (a crash between steps 3 and 4) is proven again from the state before it. A proof the
//! aggregator already holds (`409 duplicate`) counts as submitted.
//!
//! **Its circuit.** At open the adapter checks its prover's vk digest against the one the
//! aggregator registered the rollup with (`GET /v1/rollups/{id}`, from the rollup's key file),
//! so a mismatched circuit, deployment or SRS stops before proving anything.
//!
//! **Dev mode.** [`DevModeProver`] checks each block with `MockProver` and submits the
//! [`DEV_MODE_PROOF`] marker, which only an aggregator in dev mode accepts.
//!
//! **Not handled yet.** A slot that fails after the adapter applied its block leaves the
//! adapter ahead of L1: the builder and the adapters then need to go back to the settled root,
//! which is an operator's job today (stop the adapter, delete the blocks after the settled
//! slot from its folder, restart).

use std::{
    collections::BTreeMap,
    future::Future,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use eyre::{bail, ensure, eyre, Result, WrapErr};
use halo2_base::{
    gates::{
        circuit::{BaseCircuitParams, CircuitBuilderStage},
        flex_gate::MultiPhaseThreadBreakPoints,
    },
    halo2_proofs::{
        halo2curves::bn256::{Bn256, G1Affine},
        plonk::VerifyingKey,
        poly::kzg::commitment::ParamsKZG,
    },
};
use lockstep_api::{ApiClient, BlockData, ProofSubmission, DEV_MODE_PROOF};
use lockstep_circuits::{
    entry::Domain,
    fr_text::{fr_hex, parse_fr_hex},
    keys::CircuitKey,
    shape::RollupCircuit,
    Fr,
};
use lockstep_rollup_api::{ProvingJob, RollupProver, RollupReplica};
use tracing::{info, warn};

/// Wait after a failed round of [`Adapter::run`].
pub const RETRY: Duration = Duration::from_secs(10);

/// **DEV MODE, proves nothing**: checks each block against the wrapped prover's circuit with
/// halo2's `MockProver`, and submits the dev-mode marker ([`DEV_MODE_PROOF`]) instead of a
/// proof, which only an aggregator in dev mode accepts.
#[derive(Debug, Clone)]
pub struct DevModeProver<P>(pub P);

impl<W, P: RollupProver<W>> RollupProver<W> for DevModeProver<P> {
    fn label(&self) -> String {
        format!(
            "DEV MODE: NOT proven, checked by MockProver against the {}",
            self.0.label()
        )
    }

    fn params(&self) -> &ParamsKZG<Bn256> {
        self.0.params()
    }

    fn key(&self) -> &CircuitKey<BaseCircuitParams> {
        self.0.key()
    }

    fn circuit(
        &self,
        stage: CircuitBuilderStage,
        break_points: Option<MultiPhaseThreadBreakPoints>,
        job: &ProvingJob<W>,
    ) -> lockstep_rollup_api::Result<RollupCircuit> {
        self.0.circuit(stage, break_points, job)
    }

    fn vk(&self) -> &VerifyingKey<G1Affine> {
        self.0.vk()
    }

    fn vk_digest(&self) -> Fr {
        self.0.vk_digest()
    }

    fn prove(&self, job: &ProvingJob<W>) -> lockstep_rollup_api::Result<Vec<u8>> {
        self.0.check(job)?;
        Ok(DEV_MODE_PROOF.to_vec())
    }

    fn check(&self, job: &ProvingJob<W>) -> lockstep_rollup_api::Result<()> {
        self.0.check(job)
    }
}

/// The `POST /v1/proofs` body of `job` with `proof`.
pub fn submission<W>(job: &ProvingJob<W>, proof: &[u8]) -> Result<ProofSubmission> {
    Ok(ProofSubmission {
        slot: job.sealed.header.slot,
        rollup_id: job.sealed.header.rollup_id,
        instances: job.instances()?.iter().map(fr_hex).collect(),
        proof: format!("0x{}", hex::encode(proof)),
    })
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

/// The prover an adapter of replica `R` proves with.
pub type SharedProver<R> = Arc<dyn RollupProver<<R as RollupReplica>::Witness>>;

/// One rollup's adapter.
pub struct Adapter<R: RollupReplica> {
    domain: Domain,
    dir: PathBuf,
    client: ApiClient,
    prover: SharedProver<R>,
    /// The state after every kept block.
    head: R,
    /// The newest kept block's slot and the state before it.
    previous: Option<(u64, R)>,
}

impl<R: RollupReplica> std::fmt::Debug for Adapter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("rollup", &self.head.id())
            .field("dir", &self.dir)
            .field("aggregator", &self.client.base())
            .field("prover", &self.prover.label())
            .finish_non_exhaustive()
    }
}

impl<R: RollupReplica> Adapter<R> {
    /// Opens the adapter of `genesis`'s rollup (the replica at its genesis state): reads the
    /// deployment domain from the aggregator behind `client`, checks that the rollup is
    /// registered there with `prover`'s vk digest, and applies the blocks kept in `dir`.
    pub async fn open(
        genesis: R,
        client: ApiClient,
        dir: impl Into<PathBuf>,
        prover: SharedProver<R>,
    ) -> Result<Self> {
        let dir = dir.into();
        let health = client.health().await?;
        let id = genesis.id();
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
             adapter proves with the {} (vk digest {}): another circuit, deployment or SRS",
            fr_hex(&digest),
            prover.label(),
            fr_hex(&mine)
        );
        std::fs::create_dir_all(dir.join("blocks"))
            .wrap_err_with(|| format!("creating {}", dir.display()))?;
        let mut adapter = Self {
            head: genesis,
            domain,
            dir,
            client,
            prover,
            previous: None,
        };
        let kept = adapter.kept_blocks()?;
        let count = kept.len();
        for (slot, data) in kept {
            let before = adapter.head.clone();
            adapter.head.apply_block(domain, &data).wrap_err_with(|| {
                format!(
                    "replaying kept block {} (the data folder does not follow from the \
                         genesis)",
                    adapter.block_path(slot).display()
                )
            })?;
            adapter.previous = Some((slot, before));
        }
        info!(
            rollup = id,
            root = %fr_hex(&adapter.head_root()),
            kept = count,
            "adapter open"
        );
        Ok(adapter)
    }

    /// The rollup.
    pub fn rollup_id(&self) -> u32 {
        self.head.id()
    }

    /// The deployment domain the aggregator serves.
    pub const fn domain(&self) -> Domain {
        self.domain
    }

    /// What its proofs are, as every log line says.
    pub fn prover_label(&self) -> String {
        self.prover.label()
    }

    /// The state root after every kept block.
    pub fn head_root(&self) -> Fr {
        self.head.state_root()
    }

    /// The state after every kept block.
    pub const fn head(&self) -> &R {
        &self.head
    }

    /// Proves and submits every slot waiting for this rollup's proof, oldest first; stops at
    /// the first slot that fails (later ones build on it).
    pub async fn step(&mut self) -> Result<Vec<Submitted>> {
        let id = self.rollup_id();
        let waiting = self.client.rollup(id).await?.slots_waiting_for_proof;
        let mut done = Vec::new();
        for slot in waiting {
            let job = self.prepare(slot).await?;
            done.push(self.submit(job).await?);
        }
        Ok(done)
    }

    /// Fetches `slot`'s block, applies it to the head state (or, if it is the newest kept
    /// block, to the state before it) and keeps it on disk: the proving job.
    pub async fn prepare(&mut self, slot: u64) -> Result<ProvingJob<R::Witness>> {
        let id = self.rollup_id();
        let (body, data) = self.fetch_block(slot).await?;
        let field = |name: &str, text: &str| -> Result<Fr> {
            parse_fr_hex(text).ok_or_else(|| eyre!("slot {slot}'s block: bad {name} {text:?}"))
        };
        let pre_root = field("pre_root", &body.pre_root)?;
        let da_commitment = field("da_commitment", &body.da_commitment)?;
        let header = self
            .head
            .header(&data)
            .wrap_err_with(|| format!("slot {slot}'s block"))?;
        ensure!(
            header.rollup_id == id && header.slot == slot && header.pre_root == pre_root,
            "slot {slot}'s block is for rollup {} slot {} from root {}, not what the slot lists",
            header.rollup_id,
            header.slot,
            fr_hex(&header.pre_root)
        );
        let again = match &self.previous {
            Some((kept, before)) if *kept == slot && before.state_root() == pre_root => {
                Some(before.clone())
            }
            _ => None,
        };
        if again.is_none() && pre_root != self.head_root() {
            // A fresh data folder, or blocks lost: take the earlier blocks from the aggregator.
            self.catch_up(slot).await?;
        }
        let (sealed, witness) = match again {
            Some(mut before) => {
                info!(
                    rollup = id,
                    slot, "block kept before a restart: proving it again"
                );
                before.apply_block(self.domain, &data)?
            }
            None => {
                if pre_root != self.head_root() {
                    bail!(
                        "slot {slot}'s block for rollup {id} starts at root {}, but this rollup \
                         is at {} (is an earlier slot missing, or did one fail?)",
                        fr_hex(&pre_root),
                        fr_hex(&self.head_root())
                    );
                }
                let mut after = self.head.clone();
                let applied = after.apply_block(self.domain, &data)?;
                self.keep(slot, &data)?;
                self.previous = Some((slot, std::mem::replace(&mut self.head, after)));
                applied
            }
        };
        Ok(ProvingJob {
            sealed,
            da_commitment,
            witness,
        })
    }

    /// Brings the adapter up to just before `slot`: fetches, applies and keeps the blocks of
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
            let header = self.head.header(&data)?;
            ensure!(
                header.pre_root == self.head_root(),
                "catching up: slot {earlier_slot}'s block for rollup {id} starts at {}, but this \
                 rollup is at {}",
                fr_hex(&header.pre_root),
                fr_hex(&self.head_root())
            );
            let mut after = self.head.clone();
            after.apply_block(self.domain, &data)?;
            self.keep(earlier_slot, &data)?;
            self.previous = Some((earlier_slot, std::mem::replace(&mut self.head, after)));
            info!(
                rollup = id,
                slot = earlier_slot,
                "caught up: applied and kept an earlier block"
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
    pub async fn submit(&self, job: ProvingJob<R::Witness>) -> Result<Submitted> {
        let (id, slot) = (self.rollup_id(), job.sealed.header.slot);
        let label = self.prover.label();
        info!(
            rollup = id,
            slot,
            steps = job.sealed.steps,
            assumed = job.sealed.assumed.len(),
            served = job.sealed.served.len(),
            "block applied; proving ({label})"
        );
        let started = Instant::now();
        let prover = self.prover.clone();
        let span = tracing::info_span!("prove", rollup = id, slot);
        let body = tokio::task::spawn_blocking(move || {
            span.in_scope(|| -> Result<ProofSubmission> {
                let proof = prover.prove(&job)?;
                submission(&job, &proof)
            })
        })
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

    /// Proves waiting slots every `poll` until `shutdown` resolves; after a failed round (a
    /// block that does not follow, the aggregator away) it waits at least [`RETRY`], so one
    /// bad slot does not fill the log.
    pub async fn run(&mut self, poll: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let wait = tokio::select! {
                () = &mut shutdown => {
                    info!(rollup = self.rollup_id(), "stopping the adapter");
                    return;
                }
                result = self.step() => match result {
                    Ok(_) => poll,
                    Err(err) => {
                        warn!("{err:#}; trying again in {} s", RETRY.max(poll).as_secs());
                        RETRY.max(poll)
                    }
                },
            };
            tokio::select! {
                () = &mut shutdown => {
                    info!(rollup = self.rollup_id(), "stopping the adapter");
                    return;
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
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

    /// The kept blocks' bytes, by slot.
    fn kept_blocks(&self) -> Result<BTreeMap<u64, Vec<u8>>> {
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
            blocks.insert(slot, data);
        }
        Ok(blocks)
    }
}
