//! The service's builder: it runs the transactions users submit (`POST /v1/transactions`) on
//! the rollups it holds (any [`SyncRollup`]s, made by a [`RollupFactory`]), slot by slot, and
//! opens each slot with the blocks it sealed, as an outside builder would with
//! `POST /v1/slots`.
//!
//! Every `slot_ms` (when transactions wait) it:
//! 1. takes the oldest pending transactions (at most `max_txs_per_slot`);
//! 2. picks the slot: L1's current slot (`currentSlot()` of the settlement contract) when it
//!    is newer than every opened slot, or, without L1, the next number;
//! 3. runs them in arrival order on a [`Cluster`] of its rollups: calls across rollups run at
//!    once and return their results ([`lockstep_rollup_api::Cluster`]). A transaction the rules
//!    refuse (a wrong nonce, a value above the balance, an unknown rollup) is refused and leaves
//!    no trace;
//! 4. keeps only as many of them as fit: after each transaction every rollup says whether its
//!    block still fits what its prover can prove ([`SyncRollup::fits`]; the reference rollup
//!    sizes it against its STF circuit's capacity, the `[stf]` section of its deployment file),
//!    and one that does not fit is undone. The first such transaction ends the slot: it and the
//!    rest wait for the next one, and one that does not fit even alone is refused. Each
//!    transaction runs once;
//! 5. seals the blocks, lays out the slot's blobs and records the slot, its blocks and every
//!    transaction's outcome in **one atomic write**. A rollup with no transaction in the slot
//!    has no block in it.
//!
//! **State.** The builder's rollup states are the geneses with every opened slot's blocks
//! applied in slot order ([`SyncRollup::apply_block`]), its own and any an outside builder
//! opened. On start it replays them from the store. A slot that fails after its blocks were
//! applied makes the builder replay from the geneses again, skipping failed slots. Blocks that
//! do not apply (one that does not start at the rollup's state) are skipped with a warning; L1
//! will refuse their slots too. A slot is simulated on forks of the rollups
//! ([`SyncRollup::fork`]), kept only when the slot opens.
//!
//! The rollups live on one thread (a rollup is single-threaded, like the EVM it stands for),
//! which talks to the async service through its handle.

use std::{
    collections::{BTreeMap, BTreeSet},
    rc::Rc,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use alloy::providers::DynProvider;
use eyre::{eyre, Result, WrapErr};
use lockstep_circuits::{entry::Domain, Fr};
use lockstep_contracts::bindings::LockstepSettlement;
use lockstep_rollup_api::{Cluster, RollupError, RollupFactory, SealedBlock, SyncRollup};
use lockstep_storage::Store;
use tracing::{info, warn};

use super::{
    mempool::{self, Mempool, TxRecord},
    pipeline,
    slots::{SlotState, Slots},
    AggregatorHandle,
};

/// Where slot numbers come from.
#[derive(Debug, Clone)]
pub enum SlotClock {
    /// L1's current slot, from the settlement contract.
    L1 {
        /// An L1 node.
        provider: DynProvider,
        /// The settlement contract.
        settlement: alloy::primitives::Address,
    },
    /// One more than the newest opened slot (no L1: tests and dry runs).
    Next,
}

/// What the builder needs.
#[derive(Debug, Clone)]
pub struct BuilderParts {
    /// The rollups it runs, made at their geneses (each refuses to seal a block its prover
    /// cannot prove: a slot holds only as many transactions as every block can prove).
    pub rollups: Arc<dyn RollupFactory>,
    /// Where slot numbers come from.
    pub clock: SlotClock,
    /// How often to seal a slot when transactions wait.
    pub every: Duration,
    /// Most transactions in one slot.
    pub max_txs: usize,
    /// Most transactions waiting (`POST /v1/transactions` refuses more).
    pub max_pending: usize,
}

/// A running builder thread.
#[derive(Debug)]
pub struct BuilderTask {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BuilderTask {
    /// Asks the builder to stop after its current slot and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The builder over a store, the writer's handle and its parts.
#[derive(Debug)]
pub struct Builder<S> {
    store: S,
    handle: AggregatorHandle,
    domain: Domain,
    parts: BuilderParts,
}

/// A slot's transactions run on forks of the rollups.
struct Simulated {
    rollups: BTreeMap<u32, Rc<dyn SyncRollup>>,
    outcomes: Vec<TxRecord>,
    sealed: Vec<SealedBlock>,
}

/// The rollups and which opened slots their states include.
struct Applied {
    rollups: BTreeMap<u32, Rc<dyn SyncRollup>>,
    /// Newest slot whose blocks were considered.
    up_to: Option<u64>,
    /// Applied slots not settled yet: if one fails, the states are rebuilt.
    unsettled: BTreeSet<u64>,
}

impl<S: Store + Clone + Send + Sync + 'static> Builder<S> {
    /// A builder for `domain`.
    pub const fn new(
        store: S,
        handle: AggregatorHandle,
        domain: Domain,
        parts: BuilderParts,
    ) -> Self {
        Self {
            store,
            handle,
            domain,
            parts,
        }
    }

    /// Starts the builder on its own thread; it calls into the service through `runtime`.
    pub fn spawn(self, runtime: tokio::runtime::Handle) -> Result<BuilderTask> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lockstep-builder".into())
            .spawn(move || self.run(&runtime, &flag))
            .wrap_err("starting the builder thread")?;
        Ok(BuilderTask {
            stop,
            thread: Some(thread),
        })
    }

    fn run(self, runtime: &tokio::runtime::Handle, stop: &AtomicBool) {
        let mut applied = match self.replay() {
            Ok(applied) => applied,
            Err(err) => {
                warn!("builder stopped: replaying the opened slots failed: {err:#}");
                return;
            }
        };
        info!(
            rollups = ?applied.rollups.keys().collect::<Vec<_>>(),
            up_to = ?applied.up_to,
            "builder ready"
        );
        while !stop.load(Ordering::SeqCst) {
            sleep_unless(stop, self.parts.every);
            if stop.load(Ordering::SeqCst) {
                break;
            }
            match self.build_once(runtime, &mut applied) {
                Ok(Some(slot)) => info!(slot, "builder opened a slot"),
                Ok(None) => {}
                Err(err) => warn!("builder: {err:#}; trying again next round"),
            }
        }
        info!("builder stopped");
    }

    /// The geneses with every opened, non-failed slot's blocks applied.
    fn replay(&self) -> Result<Applied> {
        let rollups = self
            .parts
            .rollups
            .genesis()
            .wrap_err("making the rollups at genesis")?
            .into_iter()
            .map(|rollup| (rollup.id(), Rc::from(rollup)))
            .collect();
        let mut applied = Applied {
            rollups,
            up_to: None,
            unsettled: BTreeSet::new(),
        };
        self.catch_up(&mut applied)?;
        Ok(applied)
    }

    /// Applies the blocks of slots opened since `applied.up_to`; rebuilds from the geneses if
    /// an applied slot failed.
    fn catch_up(&self, applied: &mut Applied) -> Result<()> {
        let slots = Slots::new(self.store.clone());
        let mut failed = false;
        let unsettled: Vec<u64> = applied.unsettled.iter().copied().collect();
        for slot in unsettled {
            match slots.get(slot)?.map(|r| r.state) {
                Some(SlotState::Settled { .. }) => {
                    applied.unsettled.remove(&slot);
                }
                Some(SlotState::Failed { .. }) => failed = true,
                _ => {}
            }
        }
        if failed {
            warn!("a slot the builder applied failed: replaying from the geneses, skipping failed slots");
            *applied = self.replay()?;
            return Ok(());
        }
        let after = applied.up_to.map_or(0, |s| s + 1);
        for record in slots.recent(usize::MAX)?.into_iter().rev() {
            if record.slot < after {
                continue;
            }
            applied.up_to = Some(record.slot);
            if matches!(record.state, SlotState::Failed { .. }) {
                continue;
            }
            let mut used = false;
            for (id, data) in slots.blocks(record.slot)? {
                let Some(rollup) = applied.rollups.get(&id) else {
                    continue;
                };
                if let Err(err) = rollup.apply_block(self.domain, &data) {
                    warn!(
                        slot = record.slot,
                        rollup = id,
                        "skipping a block that does not apply to the rollup's state: {err}"
                    );
                    continue;
                }
                used = true;
            }
            if used && !record.state.is_final() {
                applied.unsettled.insert(record.slot);
            }
        }
        Ok(())
    }

    /// Runs `txs` in arrival order in `slot` on a cluster of forks of `applied`'s rollups, and
    /// seals every rollup's block. Each transaction runs once: the first that a rollup's block
    /// cannot hold ([`RollupError::Full`]) ends the slot, and it and the rest wait for the next
    /// one; if nothing was included before it, it does not fit even alone and is refused.
    fn simulate(&self, applied: &Applied, slot: u64, txs: &[TxRecord]) -> Result<Simulated> {
        let rollups: BTreeMap<u32, Rc<dyn SyncRollup>> = applied
            .rollups
            .iter()
            .map(|(&id, rollup)| (id, Rc::from(rollup.fork())))
            .collect();
        let mut cluster = Cluster::new(self.domain);
        for rollup in rollups.values() {
            cluster.add(Box::new(rollup.clone()))?;
        }
        cluster.begin_slot(slot)?;
        let mut outcomes: Vec<TxRecord> = Vec::with_capacity(txs.len());
        let mut included = 0;
        for (index, record) in txs.iter().enumerate() {
            if !rollups.contains_key(&record.rollup_id) {
                let why = format!(
                    "rollup {} is not built by this aggregator",
                    record.rollup_id
                );
                outcomes.push(mempool::refused(record, slot, why));
                continue;
            }
            let outcome = match cluster.submit(record.rollup_id, &record.tx.0) {
                Ok(receipt) => {
                    included += 1;
                    mempool::included(record, slot, &receipt.outcome, receipt.cross_calls)
                }
                Err(RollupError::Full { reason, .. }) if included > 0 => {
                    info!(
                        slot,
                        waiting = txs.len() - index,
                        "builder: the slot is full for a rollup's prover ({reason}); the rest waits"
                    );
                    break;
                }
                Err(RollupError::Full { reason, .. }) => {
                    warn!(
                        slot,
                        tx = record.id,
                        "builder: {reason}; refusing the transaction"
                    );
                    mempool::refused(record, slot, format!("{reason} (even alone in a slot)"))
                }
                Err(err) => mempool::refused(record, slot, err.to_string()),
            };
            outcomes.push(outcome);
        }
        let sealed = cluster
            .seal()
            .wrap_err_with(|| format!("sealing slot {slot}"))?;
        Ok(Simulated {
            rollups,
            outcomes,
            sealed,
        })
    }

    /// Runs the oldest pending transactions in a new slot; returns the slot it opened.
    fn build_once(
        &self,
        runtime: &tokio::runtime::Handle,
        applied: &mut Applied,
    ) -> Result<Option<u64>> {
        let pending = Mempool::new(self.store.clone()).pending(self.parts.max_txs)?;
        if pending.is_empty() {
            return Ok(None);
        }
        self.catch_up(applied)?;
        let slots = Slots::new(self.store.clone());
        let latest = slots.latest()?;
        let slot = match &self.parts.clock {
            SlotClock::Next => latest.map_or(1, |s| s + 1),
            SlotClock::L1 {
                provider,
                settlement,
            } => {
                let contract = LockstepSettlement::new(*settlement, provider.clone());
                let current = runtime
                    .block_on(async { contract.currentSlot().call().await })
                    .wrap_err("reading L1's current slot")?;
                if latest.is_some_and(|l| current <= l) {
                    // L1 has not moved past the newest opened slot yet.
                    return Ok(None);
                }
                current
            }
        };

        let _span = tracing::info_span!("build", slot).entered();
        let Simulated {
            rollups,
            outcomes,
            sealed,
        } = self.simulate(applied, slot, &pending)?;
        let pending_len = outcomes.len();
        let mut blocks = BTreeMap::new();
        let mut pre_roots: BTreeMap<u32, Fr> = BTreeMap::new();
        for block in &sealed {
            if block.is_empty() {
                continue;
            }
            blocks.insert(block.header.rollup_id, block.data.clone());
            pre_roots.insert(block.header.rollup_id, block.header.pre_root);
        }
        let included = outcomes
            .iter()
            .filter(|o| matches!(o.state, super::mempool::TxState::Included { .. }))
            .count();
        if blocks.is_empty() {
            runtime
                .block_on(self.handle.record_outcomes(outcomes))
                .map_err(|e| eyre!(e))??;
            info!(
                slot,
                refused = pending_len,
                "builder: every waiting transaction was refused"
            );
            return Ok(None);
        }
        let record = pipeline::slot_record(slot, &blocks, &pre_roots).map_err(|e| eyre!(e))?;
        runtime
            .block_on(
                self.handle
                    .create_built_slot(record, blocks.clone(), outcomes),
            )
            .map_err(|e| eyre!(e))?
            .wrap_err_with(|| format!("opening slot {slot}"))?;
        for id in blocks.keys() {
            applied.rollups.insert(*id, rollups[id].clone());
        }
        applied.up_to = Some(slot);
        applied.unsettled.insert(slot);
        info!(
            slot,
            included,
            refused = pending_len - included,
            rollups = ?blocks.keys().collect::<Vec<_>>(),
            "builder sealed a slot"
        );
        Ok(Some(slot))
    }
}

/// Sleeps for `total`, waking early when `stop` is set.
fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(50);
    let mut left = total;
    while !left.is_zero() && !stop.load(Ordering::SeqCst) {
        let nap = left.min(step);
        std::thread::sleep(nap);
        left -= nap;
    }
}
