//! [`SyncRollup`], what a rollup implements, and [`SealedBlock`], what it produces per slot.

use lockstep_circuits::{
    entry::{Domain, Entry},
    layout::{PublicInputsWitness, RollupPublicInputs, UnplacedHeader},
    Fr,
};

use crate::{CallOutcome, CallRouter, IncomingCall, Result};

/// What one rollup produced for one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlock {
    /// Its header: the slot, the rollup, the roots before and after, the ETH delta. The DA
    /// commitment comes when the builder places `data` in the slot's blob ([`Self::witness`]).
    pub header: UnplacedHeader,
    /// The encoded block, in the rollup's own format (what goes into the blob and what its
    /// prover proves).
    pub data: Vec<u8>,
    /// Steps the block holds (transactions, served calls, call results, in the rollup's own
    /// terms): 0 when nothing happened on the rollup in the slot.
    pub steps: usize,
    /// Calls it made, with the results it used.
    pub assumed: Vec<Entry>,
    /// Calls it served, with the results it produced.
    pub served: Vec<Entry>,
}

impl SealedBlock {
    /// Whether nothing happened on the rollup in the slot (a builder leaves such a block out).
    pub const fn is_empty(&self) -> bool {
        self.steps == 0
    }

    /// The public inputs its proof exposes, given the DA commitment of `data` in the blob.
    pub fn witness(&self, da_commitment: Fr) -> PublicInputsWitness {
        PublicInputsWitness {
            header: self.header.with_da(da_commitment),
            assumed: self.assumed.clone(),
            served: self.served.clone(),
            assumed_count: None,
            served_count: None,
        }
    }

    /// The entry-hash lists, as [`lockstep_circuits::accumulator::check_balanced`] takes them
    /// (the DA commitment is left 0: balance does not depend on it).
    pub fn public_inputs(&self) -> RollupPublicInputs {
        self.witness(Fr::zero()).public_inputs()
    }
}

/// A rollup that takes part in synchronous execution: what a rollup team implements so that a
/// builder can run its transactions together with other rollups' in one slot.
///
/// Execution is one call tree across rollups in one total order. A rollup that reaches a call
/// into another rollup hands it to the [`CallRouter`], which runs it on the destination *now*
/// ([`Self::serve`]) and returns the result. Calls nest and re-enter (A → B → A), so every
/// method takes `&self`: an implementation keeps its state behind interior mutability and never
/// holds a borrow across a router call.
///
/// Everything crosses this trait in protocol terms: transactions and blocks are bytes in the
/// rollup's own encoding, call and return data are bytes, values are 256-bit words, roots and
/// entries are the common public-input layout's. The entries a rollup records are the ones its
/// circuit exposes, with data fields formed by [`lockstep_circuits::entry::data_field`].
pub trait SyncRollup {
    /// The rollup's id (registered on L1; never 0, which is L1 itself).
    fn id(&self) -> u32;

    /// The root of its current state (with an open slot: the state so far).
    fn state_root(&self) -> Fr;

    /// A copy of the rollup at its current state, with no open slot, to simulate on: the
    /// builder runs a slot on copies and keeps them only if the slot opens.
    fn fork(&self) -> Box<dyn SyncRollup>;

    /// Applies a block sealed elsewhere (by this rollup's code, e.g. another builder's) to the
    /// current state: the block must start at [`Self::state_root`]. Fails with a slot open.
    fn apply_block(&self, domain: Domain, data: &[u8]) -> Result<()>;

    /// Starts a block for `slot`. Fails if a block is open.
    fn begin_slot(&self, domain: Domain, slot: u64) -> Result<()>;

    /// Marks the start of a transaction: everything after it can be undone with
    /// [`Self::abort_tx`] until [`Self::commit_tx`].
    fn begin_tx(&self);

    /// Keeps everything done since [`Self::begin_tx`].
    fn commit_tx(&self);

    /// Undoes everything done since [`Self::begin_tx`]: state, block steps, entries.
    fn abort_tx(&self);

    /// Executes a user transaction, in the rollup's own transaction encoding. `Err` means it
    /// was refused (nothing of it stays after [`Self::abort_tx`]); a revert is `Ok` with
    /// `success = false`.
    fn execute_tx(&self, tx: &[u8], router: &dyn CallRouter) -> Result<CallOutcome>;

    /// Serves a call from another rollup, now.
    fn serve(&self, call: &IncomingCall, router: &dyn CallRouter) -> Result<CallOutcome>;

    /// The committed flag this rollup ended up recording for its outgoing call `seq`.
    fn assumed_committed(&self, seq: u32) -> Option<bool>;

    /// Whether the open block, with the transaction under way, still fits what the rollup's
    /// prover can prove: [`crate::RollupError::Full`] when it does not. [`crate::Cluster`] asks
    /// after every transaction and undoes one that does not fit, so a builder never seals a
    /// block nobody can prove. A rollup with no such limit, or one that checks it as it
    /// executes, answers `Ok`. It is asked once per transaction: make it cost what the
    /// transaction added, not what the block holds.
    fn fits(&self) -> Result<()>;

    /// Closes the slot's block and goes on from its post state. Fails with
    /// [`crate::RollupError::Full`] when the block does not fit what the rollup's prover can
    /// prove.
    fn seal(&self) -> Result<SealedBlock>;
}

/// How a builder makes the rollups it runs, at their genesis state.
///
/// Rollups are single-threaded (like the EVMs they stand for); a factory is `Send + Sync`, so a
/// builder can hold one and make its rollups on its own thread, again whenever it must rebuild
/// their states from genesis.
pub trait RollupFactory: Send + Sync + std::fmt::Debug {
    /// The ids of the rollups it makes.
    fn ids(&self) -> Vec<u32>;

    /// Every rollup at its genesis state, with no open slot.
    fn genesis(&self) -> Result<Vec<Box<dyn SyncRollup>>>;
}

/// A shared rollup takes part as itself, so its owner can keep a handle to read its state.
impl<T: SyncRollup + ?Sized> SyncRollup for std::rc::Rc<T> {
    fn id(&self) -> u32 {
        (**self).id()
    }

    fn state_root(&self) -> Fr {
        (**self).state_root()
    }

    fn fork(&self) -> Box<dyn SyncRollup> {
        (**self).fork()
    }

    fn apply_block(&self, domain: Domain, data: &[u8]) -> Result<()> {
        (**self).apply_block(domain, data)
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

    fn execute_tx(&self, tx: &[u8], router: &dyn CallRouter) -> Result<CallOutcome> {
        (**self).execute_tx(tx, router)
    }

    fn serve(&self, call: &IncomingCall, router: &dyn CallRouter) -> Result<CallOutcome> {
        (**self).serve(call, router)
    }

    fn assumed_committed(&self, seq: u32) -> Option<bool> {
        (**self).assumed_committed(seq)
    }

    fn fits(&self) -> Result<()> {
        (**self).fits()
    }

    fn seal(&self) -> Result<SealedBlock> {
        (**self).seal()
    }
}
