//! The interface a rollup implements to take part in synchronous cross-rollup execution, and
//! the builder's [`Cluster`] that drives it.
//!
//! Execution is one call tree across rollups in one total order. A rollup that reaches a call
//! into another rollup hands it to the [`CallRouter`], which runs it on the destination
//! *now* ([`SyncRollup::serve`]) and returns the result to the caller. Calls nest and re-enter
//! (A → B → A), so every method takes `&self`: an implementation keeps its state behind
//! interior mutability and never holds a borrow across a router call.
//!
//! # Committed flags
//! A call made inside a frame that later reverts is *uncommitted*: the callee executes it (its
//! result still counts) and then discards its own state changes (DESIGN decision 7). Whether a
//! frame reverts is known only when it ends, after the callee has run. The cluster therefore
//! runs a transaction, compares the flag each callee was given with the flag the caller ended
//! up with, and on a difference runs the transaction again from the same state with the final
//! flags given up front. A transaction whose flags still disagree after
//! [`MAX_EXECUTIONS`] runs is refused ([`Error::InconsistentRevert`]): its behaviour depends on
//! state changes of a call that is discarded.

use std::{cell::RefCell, collections::HashMap};

use lockstep_circuits::{
    accumulator::check_balanced,
    entry::{Address, Domain, Entry},
    layout::{PublicInputsWitness, RollupPublicInputs},
    Fr,
};

use crate::{
    abi::CallData,
    block::{IncomingCall, Tx},
    Error, Result,
};

/// How many times [`Cluster::submit`] runs a transaction to settle its committed flags.
pub const MAX_EXECUTIONS: usize = 3;

/// What a call (or a transaction's top-level call) returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallOutcome {
    /// Whether it returned normally (false: it reverted).
    pub success: bool,
    /// Its return (or revert) word.
    pub word: u128,
}

impl CallOutcome {
    /// A normal return.
    pub const fn ok(word: u128) -> Self {
        Self {
            success: true,
            word,
        }
    }

    /// A revert.
    pub const fn revert(word: u128) -> Self {
        Self {
            success: false,
            word,
        }
    }
}

/// A call leaving its rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingCall {
    /// Calling rollup.
    pub src: u32,
    /// The caller's sequence number for the call, unique in its slot.
    pub seq: u32,
    /// Called rollup.
    pub dst: u32,
    /// Calling app.
    pub caller: Address,
    /// Called app (or account).
    pub target: Address,
    /// Value carried (already debited from the caller).
    pub value: u128,
    /// What to call.
    pub data: CallData,
    /// Whether the caller knows of no enclosing frame that discards this call (false inside a
    /// served call that was itself uncommitted).
    pub committed: bool,
}

/// Runs cross-rollup calls on their destination.
pub trait CallRouter {
    /// Executes `call` on `call.dst` now and returns its outcome.
    fn call(&self, call: &OutgoingCall) -> Result<CallOutcome>;
}

/// What one rollup produced for one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlock {
    /// The rollup.
    pub rollup_id: u32,
    /// The slot.
    pub slot: u64,
    /// The encoded block (what goes into the blob).
    pub data: Vec<u8>,
    /// State root before the block.
    pub pre_root: Fr,
    /// State root after it.
    pub post_root: Fr,
    /// Net ETH that entered the rollup through committed, successful calls (negative: left).
    pub eth_delta: i128,
    /// Calls it made, with the results it used.
    pub assumed: Vec<Entry>,
    /// Calls it served, with the results it produced.
    pub served: Vec<Entry>,
}

impl SealedBlock {
    /// The public inputs its proof exposes, given the DA commitment of `data` in the blob.
    pub fn witness(&self, domain: Domain, da_commitment: Fr) -> PublicInputsWitness {
        PublicInputsWitness {
            domain,
            slot: self.slot,
            rollup_id: self.rollup_id,
            pre_root: self.pre_root,
            post_root: self.post_root,
            da_commitment,
            eth_delta: self.eth_delta,
            l1_digest: Fr::zero(),
            assumed: self.assumed.clone(),
            served: self.served.clone(),
            assumed_count: None,
            served_count: None,
        }
    }

    /// The entry-hash lists, as [`check_balanced`] takes them (the DA commitment is left 0:
    /// balance does not depend on it).
    pub fn public_inputs(&self, domain: Domain) -> RollupPublicInputs {
        self.witness(domain, Fr::zero()).public_inputs()
    }
}

/// A rollup that takes part in synchronous execution.
///
/// The reference app-rollup ([`crate::ReferenceRollup`]) implements it; any other rollup
/// whose circuit has the common shape can join a [`Cluster`] by implementing it.
pub trait SyncRollup {
    /// The rollup's id (registered on L1; never 0, which is L1 itself).
    fn id(&self) -> u32;

    /// Starts a block for `slot`. Fails if a block is open.
    fn begin_slot(&self, domain: Domain, slot: u64) -> Result<()>;

    /// Marks the start of a transaction: everything after it can be undone with
    /// [`Self::abort_tx`] until [`Self::commit_tx`].
    fn begin_tx(&self);

    /// Keeps everything done since [`Self::begin_tx`].
    fn commit_tx(&self);

    /// Undoes everything done since [`Self::begin_tx`]: state, block steps, entries.
    fn abort_tx(&self);

    /// Executes a user transaction. `Err` means it was refused (nothing of it stays after
    /// [`Self::abort_tx`]); a revert is `Ok` with `success = false`.
    fn execute_tx(&self, tx: &Tx, router: &dyn CallRouter) -> Result<CallOutcome>;

    /// Serves a call from another rollup, now.
    fn serve(&self, call: &IncomingCall, router: &dyn CallRouter) -> Result<CallOutcome>;

    /// The committed flag this rollup ended up recording for its outgoing call `seq`.
    fn assumed_committed(&self, seq: u32) -> Option<bool>;

    /// Closes the slot's block and starts from its post state.
    fn seal(&self) -> Result<SealedBlock>;
}

/// What [`Cluster::submit`] reports for an included transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxReceipt {
    /// The top-level call's outcome (a revert is still included).
    pub outcome: CallOutcome,
    /// Cross-rollup calls it made, at any depth.
    pub cross_calls: usize,
    /// How many runs it took to settle the committed flags (1 unless a frame with
    /// cross-rollup calls reverted).
    pub executions: usize,
}

/// The builder's view of the rollups of a slot: executes transactions synchronously across
/// them and seals one block per rollup whose entries balance.
pub struct Cluster {
    domain: Domain,
    slot: Option<u64>,
    rollups: Vec<Box<dyn SyncRollup>>,
    /// Committed flags to hand callees, by (src, seq), learnt from an earlier run.
    hints: RefCell<HashMap<(u32, u32), bool>>,
    /// Calls routed in the current run: (src, seq, flag the callee was given).
    routed: RefCell<Vec<(u32, u32, bool)>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("domain", &self.domain)
            .field("slot", &self.slot)
            .field(
                "rollups",
                &self.rollups.iter().map(|r| r.id()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Cluster {
    /// An empty cluster in `domain`.
    pub fn new(domain: Domain) -> Self {
        Self {
            domain,
            slot: None,
            rollups: Vec::new(),
            hints: RefCell::default(),
            routed: RefCell::default(),
        }
    }

    /// Adds a rollup; fails on id 0 or a duplicate id.
    pub fn add(&mut self, rollup: Box<dyn SyncRollup>) -> Result<()> {
        let id = rollup.id();
        if id == 0 || self.rollups.iter().any(|r| r.id() == id) {
            return Err(Error::Genesis(format!(
                "rollup id {id} is 0 (L1) or already in the cluster"
            )));
        }
        self.rollups.push(rollup);
        Ok(())
    }

    /// The rollup with `id`.
    pub fn rollup(&self, id: u32) -> Result<&dyn SyncRollup> {
        self.rollups
            .iter()
            .find(|r| r.id() == id)
            .map(Box::as_ref)
            .ok_or(Error::UnknownRollup(id))
    }

    /// Opens `slot` on every rollup.
    pub fn begin_slot(&mut self, slot: u64) -> Result<()> {
        for rollup in &self.rollups {
            rollup.begin_slot(self.domain, slot)?;
        }
        self.slot = Some(slot);
        Ok(())
    }

    /// Executes a user transaction on rollup `rollup`, with every cross-rollup call it makes
    /// executed at once on its destination. On `Err` nothing changed anywhere.
    pub fn submit(&self, rollup: u32, tx: &Tx) -> Result<TxReceipt> {
        let origin = self.rollup(rollup)?;
        self.hints.borrow_mut().clear();
        for executions in 1..=MAX_EXECUTIONS {
            self.routed.borrow_mut().clear();
            self.rollups.iter().for_each(|r| r.begin_tx());
            let outcome = match origin.execute_tx(tx, self) {
                Ok(outcome) => outcome,
                Err(e) => {
                    self.rollups.iter().for_each(|r| r.abort_tx());
                    return Err(e);
                }
            };
            let routed = self.routed.borrow().clone();
            let mut settled = true;
            for &(src, seq, given) in &routed {
                let recorded =
                    self.rollup(src)?
                        .assumed_committed(seq)
                        .ok_or_else(|| Error::Replay {
                            rollup: src,
                            step: seq as usize,
                            reason: "the caller has no record of a call it made".into(),
                        })?;
                if recorded != given {
                    settled = false;
                    self.hints.borrow_mut().insert((src, seq), recorded);
                }
            }
            if settled {
                self.rollups.iter().for_each(|r| r.commit_tx());
                return Ok(TxReceipt {
                    outcome,
                    cross_calls: routed.len(),
                    executions,
                });
            }
            self.rollups.iter().for_each(|r| r.abort_tx());
        }
        Err(Error::InconsistentRevert(format!(
            "after {MAX_EXECUTIONS} runs the committed flags of its cross-rollup calls still \
             depend on state changes that a revert discards"
        )))
    }

    /// Seals every rollup's block and checks that the slot's entries balance.
    pub fn seal(&mut self) -> Result<Vec<SealedBlock>> {
        let blocks = self
            .rollups
            .iter()
            .map(|r| r.seal())
            .collect::<Result<Vec<_>>>()?;
        let publics: Vec<_> = blocks
            .iter()
            .map(|b| b.public_inputs(self.domain))
            .collect();
        check_balanced(&publics)?;
        self.slot = None;
        Ok(blocks)
    }
}

impl CallRouter for Cluster {
    fn call(&self, call: &OutgoingCall) -> Result<CallOutcome> {
        if call.dst == call.src {
            return Err(Error::Replay {
                rollup: call.src,
                step: call.seq as usize,
                reason: "a rollup routed a call to itself".into(),
            });
        }
        let dst = self.rollup(call.dst)?;
        let hint = self
            .hints
            .borrow()
            .get(&(call.src, call.seq))
            .copied()
            .unwrap_or(true);
        let committed = call.committed && hint;
        self.routed
            .borrow_mut()
            .push((call.src, call.seq, committed));
        dst.serve(
            &IncomingCall {
                src: call.src,
                seq: call.seq,
                caller: call.caller,
                target: call.target,
                value: call.value,
                data: call.data,
                committed,
            },
            self,
        )
    }
}

/// A shared rollup takes part as itself, so its owner can keep a handle to read its state.
impl<T: SyncRollup + ?Sized> SyncRollup for std::rc::Rc<T> {
    fn id(&self) -> u32 {
        (**self).id()
    }

    fn begin_slot(&self, domain: Domain, slot: u64) -> Result<()> {
        (**self).begin_slot(domain, slot)
    }

    fn begin_tx(&self) {
        (**self).begin_tx();
    }

    fn commit_tx(&self) {
        (**self).commit_tx();
    }

    fn abort_tx(&self) {
        (**self).abort_tx();
    }

    fn execute_tx(&self, tx: &Tx, router: &dyn CallRouter) -> Result<CallOutcome> {
        (**self).execute_tx(tx, router)
    }

    fn serve(&self, call: &IncomingCall, router: &dyn CallRouter) -> Result<CallOutcome> {
        (**self).serve(call, router)
    }

    fn assumed_committed(&self, seq: u32) -> Option<bool> {
        (**self).assumed_committed(seq)
    }

    fn seal(&self) -> Result<SealedBlock> {
        (**self).seal()
    }
}
