//! [`Cluster`]: the builder's simulation of one slot across rollups.
//!
//! # Committed flags
//! A call made inside a frame that later reverts is *uncommitted*: the callee executes it (its
//! result still counts) and then discards its own state changes (DESIGN decision 7). Whether a
//! frame reverts is known only when it ends, after the callee has run. The cluster therefore
//! runs a transaction, compares the flag each callee was given with the flag the caller ended
//! up with, and on a difference runs the transaction again from the same state with the final
//! flags given up front. A transaction whose flags still disagree after [`MAX_EXECUTIONS`] runs
//! is refused ([`RollupError::InconsistentRevert`]): its behaviour depends on state changes of a
//! call that is discarded.

use std::{cell::RefCell, collections::HashMap};

use lockstep_circuits::{accumulator::check_balanced, entry::Domain};

use crate::{CallOutcome, CallRouter, OutgoingCall, Result, RollupError, SealedBlock, SyncRollup};

/// How many times [`Cluster::submit`] runs a transaction to settle its committed flags.
pub const MAX_EXECUTIONS: usize = 3;

/// What [`Cluster::submit`] reports for an included transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
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
/// them (any [`SyncRollup`]s, each behind `dyn`) and seals one block per rollup whose entries
/// balance.
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
            .field("rollups", &self.ids())
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
            return Err(RollupError::Invalid {
                rollup: id,
                reason: format!("rollup id {id} is 0 (L1) or already in the cluster"),
            });
        }
        self.rollups.push(rollup);
        Ok(())
    }

    /// The ids of its rollups, in the order they were added.
    pub fn ids(&self) -> Vec<u32> {
        self.rollups.iter().map(|r| r.id()).collect()
    }

    /// The rollup with `id`.
    pub fn rollup(&self, id: u32) -> Result<&dyn SyncRollup> {
        self.rollups
            .iter()
            .find(|r| r.id() == id)
            .map(Box::as_ref)
            .ok_or(RollupError::UnknownRollup(id))
    }

    /// Opens `slot` on every rollup.
    pub fn begin_slot(&mut self, slot: u64) -> Result<()> {
        for rollup in &self.rollups {
            rollup.begin_slot(self.domain, slot)?;
        }
        self.slot = Some(slot);
        Ok(())
    }

    /// Executes a user transaction (in the rollup's own encoding) on rollup `rollup`, with every
    /// cross-rollup call it makes executed at once on its destination, and keeps it only if every
    /// rollup's block still fits its prover ([`SyncRollup::fits`]; else
    /// [`RollupError::Full`]). On `Err` nothing changed anywhere.
    pub fn submit(&self, rollup: u32, tx: &[u8]) -> Result<TxReceipt> {
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
                let recorded = self.rollup(src)?.assumed_committed(seq).ok_or_else(|| {
                    RollupError::Internal {
                        rollup: src,
                        reason: format!("it has no record of its call {seq}"),
                    }
                })?;
                if recorded != given {
                    settled = false;
                    self.hints.borrow_mut().insert((src, seq), recorded);
                }
            }
            if settled {
                if let Err(e) = self.rollups.iter().try_for_each(|r| r.fits()) {
                    self.rollups.iter().for_each(|r| r.abort_tx());
                    return Err(e);
                }
                self.rollups.iter().for_each(|r| r.commit_tx());
                return Ok(TxReceipt {
                    outcome,
                    cross_calls: routed.len(),
                    executions,
                });
            }
            self.rollups.iter().for_each(|r| r.abort_tx());
        }
        Err(RollupError::InconsistentRevert(format!(
            "after {MAX_EXECUTIONS} runs the committed flags of its cross-rollup calls still \
             depend on state changes that a revert discards"
        )))
    }

    /// Seals every rollup's block, checks that each is the rollup's own for this slot and
    /// domain, and that the slot's entries balance.
    pub fn seal(&mut self) -> Result<Vec<SealedBlock>> {
        let blocks = self
            .rollups
            .iter()
            .map(|r| r.seal())
            .collect::<Result<Vec<_>>>()?;
        for (rollup, block) in self.rollups.iter().zip(&blocks) {
            let (id, header) = (rollup.id(), &block.header);
            if header.rollup_id != id
                || Some(header.slot) != self.slot
                || header.domain != self.domain
            {
                return Err(RollupError::Internal {
                    rollup: id,
                    reason: format!(
                        "it sealed a block of rollup {} for slot {} in {:?}, not its own for slot \
                         {:?} in {:?}",
                        header.rollup_id, header.slot, header.domain, self.slot, self.domain
                    ),
                });
            }
        }
        let publics: Vec<_> = blocks.iter().map(SealedBlock::public_inputs).collect();
        check_balanced(&publics).map_err(|e| RollupError::Unbalanced(e.to_string()))?;
        self.slot = None;
        Ok(blocks)
    }
}

impl CallRouter for Cluster {
    fn call(&self, call: &OutgoingCall) -> Result<CallOutcome> {
        if call.dst == call.src {
            return Err(RollupError::Internal {
                rollup: call.src,
                reason: format!("it routed its call {} to itself", call.seq),
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
        dst.serve(&call.incoming(committed), self)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use lockstep_circuits::{
        entry::Address,
        layout::{SlotHeader, UnplacedHeader},
        Fr,
    };

    use super::*;
    use crate::IncomingCall;

    /// A change to a sealed header.
    type Lie = fn(&mut UnplacedHeader);

    /// **Test double**: a rollup that takes no transactions and seals an empty block whose
    /// header `lie` may change.
    #[derive(Clone)]
    struct MislabellingRollup {
        id: u32,
        open: Cell<Option<(Domain, u64)>>,
        lie: Lie,
    }

    impl MislabellingRollup {
        fn boxed(id: u32, lie: Lie) -> Box<dyn SyncRollup> {
            Box::new(Self {
                id,
                open: Cell::new(None),
                lie,
            })
        }

        fn refused(&self) -> RollupError {
            RollupError::Refused {
                rollup: self.id,
                reason: "a test double takes nothing".into(),
            }
        }
    }

    impl SyncRollup for MislabellingRollup {
        fn id(&self) -> u32 {
            self.id
        }

        fn state_root(&self) -> Fr {
            Fr::zero()
        }

        fn fork(&self) -> Box<dyn SyncRollup> {
            Box::new(self.clone())
        }

        fn apply_block(&self, _domain: Domain, _data: &[u8]) -> Result<()> {
            Ok(())
        }

        fn begin_slot(&self, domain: Domain, slot: u64) -> Result<()> {
            self.open.set(Some((domain, slot)));
            Ok(())
        }

        fn begin_tx(&self) {}

        fn commit_tx(&self) {}

        fn abort_tx(&self) {}

        fn execute_tx(&self, _tx: &[u8], _router: &dyn CallRouter) -> Result<CallOutcome> {
            Err(self.refused())
        }

        fn serve(&self, _call: &IncomingCall, _router: &dyn CallRouter) -> Result<CallOutcome> {
            Err(self.refused())
        }

        fn assumed_committed(&self, _seq: u32) -> Option<bool> {
            None
        }

        fn fits(&self) -> Result<()> {
            Ok(())
        }

        fn seal(&self) -> Result<SealedBlock> {
            let (domain, slot) = self.open.take().ok_or_else(|| self.refused())?;
            let mut header = SlotHeader {
                domain,
                slot,
                rollup_id: self.id,
                pre_root: Fr::zero(),
                post_root: Fr::zero(),
                da_commitment: (),
                eth_delta: 0,
                l1_digest: Fr::zero(),
            };
            (self.lie)(&mut header);
            Ok(SealedBlock {
                header,
                data: Vec::new(),
                steps: 0,
                assumed: Vec::new(),
                served: Vec::new(),
            })
        }
    }

    fn seal_with(lie: Lie) -> Result<Vec<SealedBlock>> {
        let mut cluster = Cluster::new(Domain {
            chain_id: 31_337,
            registry: Address([0x5e; 20]),
        });
        cluster.add(MislabellingRollup::boxed(1, |_| {})).unwrap();
        cluster.add(MislabellingRollup::boxed(2, lie)).unwrap();
        cluster.begin_slot(9).unwrap();
        cluster.seal()
    }

    #[test]
    fn a_block_sealed_for_another_rollup_slot_or_domain_is_refused() {
        let blocks = seal_with(|_| {}).unwrap();
        assert_eq!(
            blocks
                .iter()
                .map(|b| b.header.rollup_id)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        let lies: [(&str, Lie); 3] = [
            ("another rollup", |h| h.rollup_id = 1),
            ("another slot", |h| h.slot = 8),
            ("another domain", |h| h.domain.chain_id = 1),
        ];
        for (what, lie) in lies {
            match seal_with(lie) {
                Err(RollupError::Internal { rollup: 2, reason }) => {
                    assert!(reason.contains("not its own"), "{what}: {reason}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }
}
