//! [`TallyRollup`]: the tally rollup as a builder drives it, through the rollup interface.

use std::cell::RefCell;

use lockstep_circuits::{
    entry::{Domain, Entry},
    layout::MAX_ENTRIES,
    Fr,
};
use lockstep_rollup_api::{
    self as api, CallOutcome, CallRouter, IncomingCall, RollupError, RollupFactory, SealedBlock,
    SyncRollup,
};

use crate::{
    block::{check_value, ServedCall, TallyBlock},
    count_word, TallyState, TALLY_APP,
};

#[derive(Debug, Default)]
struct Inner {
    state: TallyState,
    /// The open slot and its domain.
    slot: Option<(Domain, u64)>,
    /// The state the open slot began at.
    pre: TallyState,
    calls: Vec<ServedCall>,
    /// What [`SyncRollup::abort_tx`] restores.
    mark: Option<(TallyState, usize)>,
}

/// The tally rollup's executor.
#[derive(Debug)]
pub struct TallyRollup {
    id: u32,
    inner: RefCell<Inner>,
}

impl TallyRollup {
    /// Rollup `id` at `state`.
    pub fn new(id: u32, state: TallyState) -> Self {
        Self {
            id,
            inner: RefCell::new(Inner {
                state,
                ..Inner::default()
            }),
        }
    }

    /// The current state.
    pub fn state(&self) -> TallyState {
        self.inner.borrow().state
    }

    fn refused(&self, reason: String) -> RollupError {
        RollupError::Refused {
            rollup: self.id,
            reason,
        }
    }

    fn invalid(&self, reason: String) -> RollupError {
        RollupError::Invalid {
            rollup: self.id,
            reason,
        }
    }
}

impl SyncRollup for TallyRollup {
    fn id(&self) -> u32 {
        self.id
    }

    fn state_root(&self) -> Fr {
        self.state().root()
    }

    fn fork(&self) -> Box<dyn SyncRollup> {
        Box::new(Self::new(self.id, self.state()))
    }

    fn apply_block(&self, domain: Domain, data: &[u8]) -> api::Result<()> {
        if let Some((_, slot)) = self.inner.borrow().slot {
            return Err(self.refused(format!("slot {slot} is open; seal it first")));
        }
        let block = TallyBlock::decode(data).map_err(|e| self.invalid(e.to_string()))?;
        let state = self.state();
        if block.rollup_id != self.id || block.pre != state {
            return Err(RollupError::Internal {
                rollup: self.id,
                reason: format!(
                    "the block is rollup {}'s from {:?}; this rollup is {} at {state:?}",
                    block.rollup_id, block.pre, self.id
                ),
            });
        }
        let executed = block
            .execute(domain)
            .map_err(|e| self.invalid(e.to_string()))?;
        self.inner.borrow_mut().state = executed.post;
        Ok(())
    }

    fn begin_slot(&self, domain: Domain, slot: u64) -> api::Result<()> {
        let mut inner = self.inner.borrow_mut();
        if let Some((_, open)) = inner.slot {
            return Err(self.refused(format!("slot {open} is still open")));
        }
        inner.slot = Some((domain, slot));
        inner.pre = inner.state;
        inner.calls.clear();
        Ok(())
    }

    fn begin_tx(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.mark = Some((inner.state, inner.calls.len()));
    }

    fn commit_tx(&self) {
        self.inner.borrow_mut().mark = None;
    }

    fn abort_tx(&self) {
        let mut inner = self.inner.borrow_mut();
        if let Some((state, calls)) = inner.mark.take() {
            inner.state = state;
            inner.calls.truncate(calls);
        }
    }

    fn execute_tx(&self, _tx: &[u8], _router: &dyn CallRouter) -> api::Result<CallOutcome> {
        Err(self.invalid(
            "the tally rollup takes no transactions: it only serves calls from other rollups"
                .into(),
        ))
    }

    fn serve(&self, call: &IncomingCall, _router: &dyn CallRouter) -> api::Result<CallOutcome> {
        if call.target != TALLY_APP {
            return Err(self.invalid(format!(
                "the tally rollup serves only {TALLY_APP}, not {}",
                call.target
            )));
        }
        let value =
            u128::try_from(call.value).map_err(|_| self.invalid("a value above 2^128".into()))?;
        check_value(value).map_err(|e| self.invalid(e.to_string()))?;
        let mut inner = self.inner.borrow_mut();
        if inner.slot.is_none() {
            return Err(self.refused("no open slot".into()));
        }
        if inner.calls.len() >= MAX_ENTRIES {
            return Err(RollupError::Full {
                rollup: self.id,
                reason: format!("more than {MAX_ENTRIES} served calls in one slot"),
            });
        }
        let answer = inner.state.count + 1;
        if call.committed {
            inner.state.count = answer;
            inner.state.balance += value;
        }
        inner.calls.push(ServedCall {
            src: call.src,
            seq: call.seq,
            caller: call.caller,
            value,
            committed: call.committed,
            data: call.data.clone(),
        });
        Ok(CallOutcome::ok(count_word(answer)))
    }

    fn assumed_committed(&self, _seq: u32) -> Option<bool> {
        None
    }

    /// Its circuit holds a slot's every entry: [`SyncRollup::serve`] refuses one more.
    fn fits(&self) -> api::Result<()> {
        Ok(())
    }

    fn seal(&self) -> api::Result<SealedBlock> {
        let mut inner = self.inner.borrow_mut();
        let Some((domain, slot)) = inner.slot else {
            return Err(self.refused("no open slot to seal".into()));
        };
        let block = TallyBlock {
            rollup_id: self.id,
            slot,
            pre: inner.pre,
            calls: std::mem::take(&mut inner.calls),
        };
        let executed = block.execute(domain).map_err(|e| RollupError::Internal {
            rollup: self.id,
            reason: e.to_string(),
        })?;
        if executed.post != inner.state {
            return Err(RollupError::Internal {
                rollup: self.id,
                reason: format!(
                    "the block executes to {:?}, the rollup is at {:?}",
                    executed.post, inner.state
                ),
            });
        }
        inner.slot = None;
        inner.mark = None;
        Ok(SealedBlock {
            header: block.header(domain, &executed),
            data: block.encode(),
            steps: block.calls.len(),
            assumed: Vec::<Entry>::new(),
            served: executed.served,
        })
    }
}

/// Tally rollups at their genesis states, for a builder.
#[derive(Debug, Clone, Default)]
pub struct TallyRollups {
    /// Each rollup's id and genesis state.
    pub geneses: Vec<(u32, TallyState)>,
}

impl RollupFactory for TallyRollups {
    fn ids(&self) -> Vec<u32> {
        self.geneses.iter().map(|(id, _)| *id).collect()
    }

    fn genesis(&self) -> api::Result<Vec<Box<dyn SyncRollup>>> {
        Ok(self
            .geneses
            .iter()
            .map(|&(id, state)| Box::new(TallyRollup::new(id, state)) as Box<dyn SyncRollup>)
            .collect())
    }
}
