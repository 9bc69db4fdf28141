//! Slots: the aggregator's unit of work, and the state machine it keeps for each in storage.
//!
//! ```text
//! collecting ─▶ proving ─▶ aggregating ─▶ posting ─▶ settled
//!      └───────────┴────────────┴────────────┴──────▶ failed (with the stage and the reason)
//! ```
//! - **collecting**: the builder accepts transactions for the slot.
//! - **proving**: the blocks are sealed and laid out in the slot's blob, so every rollup's DA
//!   commitment is fixed; the aggregator waits for one proof per rollup.
//! - **aggregating**: every proof is in; the aggregation proof is being made.
//! - **posting**: the aggregation proof is stored; the settlement transaction is being sent or
//!   was sent before a crash (its hash is in the posts table, so a restart looks for it on L1
//!   before sending anything).
//! - **settled** and **failed** are final.
//!
//! Every change is one atomic write batch: a proof and the move to `aggregating` that it
//! completes land together or not at all.

use std::{collections::BTreeMap, time::SystemTime};

use lockstep_storage::{slot_key, slot_rollup_key, Batch, Records, Store, Table};
use serde::{Deserialize, Serialize};

pub use lockstep_api::{RollupSlot, SlotRecord, SlotState, Transition};

/// A rollup proof as received and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredProof {
    /// Public inputs (hex field elements, big-endian), in the layout's order.
    pub instances: Vec<String>,
    /// The proof bytes (hex).
    pub proof: String,
    /// When it was accepted, in milliseconds since the Unix epoch.
    pub received_at_ms: u64,
}

/// A slot's aggregation proof, stored when the slot moves to `posting`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAggregate {
    /// The aggregation's public inputs (hex field elements, big-endian).
    pub instances: Vec<String>,
    /// The proof bytes (hex).
    pub proof: String,
    /// Seconds the proof took (witness generation included).
    pub proving_seconds: f64,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub proved_at_ms: u64,
}

/// A settlement transaction, signed and stored *before* it is sent, so that a restart looks
/// for it on L1 (and sends the very same bytes again) instead of signing a second one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedTx {
    /// Transaction hash (hex).
    pub hash: String,
    /// The signed transaction in its network encoding, blobs included (hex).
    pub raw: String,
    /// Sender nonce.
    pub nonce: u64,
    /// When it was signed, in milliseconds since the Unix epoch.
    pub signed_at_ms: u64,
}

/// What the `posts` table holds for a slot in `posting`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostRecord {
    /// The aggregation proof.
    pub aggregate: StoredAggregate,
    /// The settlement transaction, once signed.
    pub tx: Option<PostedTx>,
}

/// Why a slot operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    /// No record of the slot.
    #[error("slot {0} is unknown")]
    UnknownSlot(u64),
    /// The slot already exists.
    #[error("slot {0} already exists")]
    Exists(u64),
    /// The slot is not in a state that allows the operation.
    #[error("slot {slot} is {state}: {what} needs it {needed}")]
    WrongState {
        /// The slot.
        slot: u64,
        /// Its state.
        state: &'static str,
        /// What was attempted.
        what: &'static str,
        /// The state it needs.
        needed: &'static str,
    },
    /// The rollup does not take part in the slot.
    #[error("rollup {rollup} has no block in slot {slot}")]
    NotInSlot {
        /// The slot.
        slot: u64,
        /// The rollup.
        rollup: u32,
    },
    /// A proof for this rollup and slot was already accepted.
    #[error("slot {slot} already has a proof from rollup {rollup}")]
    Duplicate {
        /// The slot.
        slot: u64,
        /// The rollup.
        rollup: u32,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] lockstep_storage::Error),
}

/// The slots table and its proofs, over any [`Store`].
///
/// Not synchronised: one writer (the aggregator service's task) owns it; readers may share
/// the store.
#[derive(Debug)]
pub struct Slots<S> {
    store: S,
}

impl<S: Store> Slots<S> {
    /// Slots kept in `store`.
    pub const fn new(store: S) -> Self {
        Self { store }
    }

    /// The underlying store.
    pub const fn store(&self) -> &S {
        &self.store
    }

    /// A slot's record.
    pub fn get(&self, slot: u64) -> Result<Option<SlotRecord>, SlotError> {
        Ok(self.store.get_json(Table::Slots, &slot_key(slot))?)
    }

    /// Records a new slot; refuses one that exists.
    pub fn create(&self, record: &SlotRecord) -> Result<(), SlotError> {
        self.create_with_blocks(record, &BTreeMap::new())
    }

    /// Records a new slot and its rollups' block data in one atomic write; refuses a slot that
    /// exists.
    pub fn create_with_blocks(
        &self,
        record: &SlotRecord,
        blocks: &BTreeMap<u32, Vec<u8>>,
    ) -> Result<(), SlotError> {
        self.create_built(record, blocks, &[])
    }

    /// [`Self::create_with_blocks`] that also records the outcomes of the builder's
    /// transactions (`super::mempool`), all in one atomic write.
    pub fn create_built(
        &self,
        record: &SlotRecord,
        blocks: &BTreeMap<u32, Vec<u8>>,
        outcomes: &[super::mempool::TxRecord],
    ) -> Result<(), SlotError> {
        if self.get(record.slot)?.is_some() {
            return Err(SlotError::Exists(record.slot));
        }
        let mut batch = Batch::default();
        batch.put_json(Table::Slots, &slot_key(record.slot), record)?;
        for (&rollup, data) in blocks {
            if !record.rollups.contains_key(&rollup) {
                return Err(SlotError::NotInSlot {
                    slot: record.slot,
                    rollup,
                });
            }
            batch.put(
                Table::Blocks,
                &slot_rollup_key(record.slot, rollup),
                data.as_slice(),
            );
        }
        super::mempool::Mempool::<S>::record_outcomes(&mut batch, outcomes)?;
        Ok(self.store.write(batch)?)
    }

    /// The block data of `slot`'s rollups, by rollup id.
    pub fn blocks(&self, slot: u64) -> Result<BTreeMap<u32, Vec<u8>>, SlotError> {
        Ok(self
            .store
            .scan_prefix(Table::Blocks, &slot_key(slot))?
            .into_iter()
            .map(|(key, data)| (rollup_of(&key), data))
            .collect())
    }

    /// Stores `slot`'s aggregation proof and moves it to `posting`, in one atomic write.
    pub fn finish_aggregation(
        &self,
        slot: u64,
        aggregate: &StoredAggregate,
    ) -> Result<SlotRecord, SlotError> {
        let mut record = self.expect_state(slot, &SlotState::Aggregating, "an aggregation")?;
        enter(&mut record, SlotState::Posting);
        let post = PostRecord {
            aggregate: aggregate.clone(),
            tx: None,
        };
        let mut batch = Batch::default();
        batch.put_json(Table::Posts, &slot_key(slot), &post)?;
        batch.put_json(Table::Slots, &slot_key(slot), &record)?;
        self.store.write(batch)?;
        Ok(record)
    }

    /// Stores the signed settlement transaction of a slot in `posting` (before sending it).
    pub fn record_tx(&self, slot: u64, tx: &PostedTx) -> Result<(), SlotError> {
        self.expect_state(slot, &SlotState::Posting, "a settlement transaction")?;
        let mut post = self.post(slot)?.ok_or(SlotError::UnknownSlot(slot))?;
        post.tx = Some(tx.clone());
        Ok(self.store.put_json(Table::Posts, &slot_key(slot), &post)?)
    }

    /// The aggregation proof and settlement transaction of a slot, once it reached `posting`.
    pub fn post(&self, slot: u64) -> Result<Option<PostRecord>, SlotError> {
        Ok(self.store.get_json(Table::Posts, &slot_key(slot))?)
    }

    fn expect_state(
        &self,
        slot: u64,
        needed: &SlotState,
        what: &'static str,
    ) -> Result<SlotRecord, SlotError> {
        let record = self.get(slot)?.ok_or(SlotError::UnknownSlot(slot))?;
        if &record.state != needed {
            return Err(SlotError::WrongState {
                slot,
                state: record.state.name(),
                what,
                needed: needed.name(),
            });
        }
        Ok(record)
    }

    /// Moves a slot to `next`, if the state machine allows it; returns the new record.
    pub fn transition(&self, slot: u64, next: SlotState) -> Result<SlotRecord, SlotError> {
        let mut record = self.get(slot)?.ok_or(SlotError::UnknownSlot(slot))?;
        if !record.state.can_move_to(&next) {
            return Err(SlotError::WrongState {
                slot,
                state: record.state.name(),
                what: "this transition",
                needed: "in an earlier stage",
            });
        }
        enter(&mut record, next);
        self.store
            .put_json(Table::Slots, &slot_key(slot), &record)?;
        Ok(record)
    }

    /// Stores an accepted proof. If it is the slot's last missing proof, the slot moves to
    /// `aggregating` in the same atomic write. Returns the record as it now is.
    pub fn add_proof(
        &self,
        slot: u64,
        rollup: u32,
        proof: &StoredProof,
    ) -> Result<SlotRecord, SlotError> {
        let mut record = self.get(slot)?.ok_or(SlotError::UnknownSlot(slot))?;
        if record.state != SlotState::Proving {
            return Err(SlotError::WrongState {
                slot,
                state: record.state.name(),
                what: "a proof",
                needed: "proving",
            });
        }
        if !record.rollups.contains_key(&rollup) {
            return Err(SlotError::NotInSlot { slot, rollup });
        }
        let key = slot_rollup_key(slot, rollup);
        if self.store.get(Table::Proofs, &key)?.is_some() {
            return Err(SlotError::Duplicate { slot, rollup });
        }
        let received = self.proof_ids(slot)?.len() + 1;
        let mut batch = Batch::default();
        batch.put_json(Table::Proofs, &key, proof)?;
        if received == record.rollups.len() {
            enter(&mut record, SlotState::Aggregating);
            batch.put_json(Table::Slots, &slot_key(slot), &record)?;
        }
        self.store.write(batch)?;
        Ok(record)
    }

    /// The ids of the rollups whose proofs for `slot` are in.
    pub fn proof_ids(&self, slot: u64) -> Result<Vec<u32>, SlotError> {
        Ok(self
            .store
            .scan_prefix(Table::Proofs, &slot_key(slot))?
            .into_iter()
            .map(|(key, _)| rollup_of(&key))
            .collect())
    }

    /// The proofs for `slot`, by rollup id.
    pub fn proofs(&self, slot: u64) -> Result<BTreeMap<u32, StoredProof>, SlotError> {
        Ok(self
            .store
            .scan_json::<StoredProof>(Table::Proofs, &slot_key(slot))?
            .into_iter()
            .map(|(key, proof)| (rollup_of(&key), proof))
            .collect())
    }

    /// The newest slot recorded, if any.
    pub fn latest(&self) -> Result<Option<u64>, SlotError> {
        // Keys are big-endian slot numbers: the last one in a scan is the newest.
        Ok(self
            .store
            .scan_prefix(Table::Slots, &[])?
            .last()
            .map(|(key, _)| u64::from_be_bytes(key[..8].try_into().expect("8-byte key"))))
    }

    /// The newest `limit` slots, newest first.
    ///
    /// Like [`Self::latest`] it scans the table: fine for the thousands of slots a service
    /// keeps; a reverse iterator in [`Store`] is the fix when that grows.
    pub fn recent(&self, limit: usize) -> Result<Vec<SlotRecord>, SlotError> {
        let mut records = self.store.scan_json::<SlotRecord>(Table::Slots, &[])?;
        let keep = records.len().saturating_sub(limit);
        Ok(records
            .drain(keep..)
            .rev()
            .map(|(_, record)| record)
            .collect())
    }

    /// Every slot not yet settled or failed, oldest first: what a restarted service resumes.
    pub fn unfinished(&self) -> Result<Vec<SlotRecord>, SlotError> {
        Ok(self
            .store
            .scan_json::<SlotRecord>(Table::Slots, &[])?
            .into_iter()
            .map(|(_, record)| record)
            .filter(|record| !record.state.is_final())
            .collect())
    }
}

/// The rollup id of a `slot ‖ rollup` key.
fn rollup_of(key: &[u8]) -> u32 {
    u32::from_be_bytes(key[8..12].try_into().expect("12-byte key"))
}

fn enter(record: &mut SlotRecord, next: SlotState) {
    record.history.push(Transition {
        state: next.name().into(),
        at_ms: now_ms(),
    });
    record.state = next;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use lockstep_storage::MemoryStore;

    use super::*;

    fn proving(slot: u64, rollups: &[u32]) -> SlotRecord {
        let rollups = rollups
            .iter()
            .map(|&id| {
                (
                    id,
                    RollupSlot {
                        pre_root: "0x01".into(),
                        blob_index: 0,
                        offset: id * 100,
                        length: 100,
                        da_commitment: "0x02".into(),
                    },
                )
            })
            .collect();
        SlotRecord::new(
            slot,
            SlotState::Proving,
            rollups,
            vec!["0x03".into()],
            now_ms(),
        )
    }

    fn proof() -> StoredProof {
        StoredProof {
            instances: vec!["0x00".into()],
            proof: "0xab".into(),
            received_at_ms: 1,
        }
    }

    #[test]
    fn the_last_proof_moves_the_slot_to_aggregating() {
        let slots = Slots::new(MemoryStore::default());
        slots.create(&proving(7, &[1, 2])).unwrap();
        assert!(matches!(
            slots.create(&proving(7, &[1])),
            Err(SlotError::Exists(7))
        ));
        assert_eq!(
            slots.add_proof(7, 2, &proof()).unwrap().state,
            SlotState::Proving
        );
        assert!(matches!(
            slots.add_proof(7, 2, &proof()),
            Err(SlotError::Duplicate { slot: 7, rollup: 2 })
        ));
        assert!(matches!(
            slots.add_proof(7, 3, &proof()),
            Err(SlotError::NotInSlot { rollup: 3, .. })
        ));
        assert!(matches!(
            slots.add_proof(8, 1, &proof()),
            Err(SlotError::UnknownSlot(8))
        ));
        let record = slots.add_proof(7, 1, &proof()).unwrap();
        assert_eq!(record.state, SlotState::Aggregating);
        assert_eq!(slots.get(7).unwrap().unwrap(), record);
        assert_eq!(slots.proof_ids(7).unwrap(), vec![1, 2]);
        let names: Vec<_> = record.history.iter().map(|t| t.state.as_str()).collect();
        assert_eq!(names, ["proving", "aggregating"]);
        // Once aggregating, a late proof is stale.
        assert!(matches!(
            slots.add_proof(7, 1, &proof()),
            Err(SlotError::WrongState {
                state: "aggregating",
                ..
            })
        ));
    }

    #[test]
    fn the_state_machine_only_moves_forward() {
        let slots = Slots::new(MemoryStore::default());
        slots.create(&proving(1, &[1])).unwrap();
        assert!(slots.transition(1, SlotState::Posting).is_err());
        assert!(slots.transition(1, SlotState::Collecting).is_err());
        slots.add_proof(1, 1, &proof()).unwrap();
        slots.transition(1, SlotState::Posting).unwrap();
        let settled = SlotState::Settled {
            tx: "0xaa".into(),
            block: 9,
            gas_used: 500_000,
        };
        slots.transition(1, settled.clone()).unwrap();
        // Final: nothing moves a settled slot, not even a failure.
        let failed = SlotState::Failed {
            stage: "posting".into(),
            reason: "x".into(),
        };
        assert!(slots.transition(1, failed.clone()).is_err());
        assert!(slots.transition(1, settled).is_err());

        slots.create(&proving(2, &[1])).unwrap();
        slots.create(&proving(3, &[1])).unwrap();
        slots.transition(3, failed).unwrap();
        let open: Vec<_> = slots.unfinished().unwrap().iter().map(|r| r.slot).collect();
        assert_eq!(open, vec![2]);
    }

    fn aggregate() -> StoredAggregate {
        StoredAggregate {
            instances: vec!["0x01".into()],
            proof: "0xcd".into(),
            proving_seconds: 1.5,
            proved_at_ms: 2,
        }
    }

    #[test]
    fn blocks_aggregate_and_transaction_are_kept_with_their_slot() {
        let slots = Slots::new(MemoryStore::default());
        let blocks = BTreeMap::from([(1, vec![1, 2, 3]), (2, vec![4])]);
        slots
            .create_with_blocks(&proving(4, &[1, 2]), &blocks)
            .unwrap();
        assert_eq!(slots.blocks(4).unwrap(), blocks);
        // Block data for a rollup outside the slot: nothing is written.
        let stray = BTreeMap::from([(9, vec![9])]);
        assert!(matches!(
            slots.create_with_blocks(&proving(5, &[1]), &stray),
            Err(SlotError::NotInSlot { slot: 5, rollup: 9 })
        ));
        assert!(slots.get(5).unwrap().is_none());

        // An aggregate is only taken in `aggregating`, and moves the slot on with it.
        assert!(matches!(
            slots.finish_aggregation(4, &aggregate()),
            Err(SlotError::WrongState { .. })
        ));
        slots.add_proof(4, 1, &proof()).unwrap();
        slots.add_proof(4, 2, &proof()).unwrap();
        let record = slots.finish_aggregation(4, &aggregate()).unwrap();
        assert_eq!(record.state, SlotState::Posting);
        assert_eq!(slots.get(4).unwrap().unwrap().state, SlotState::Posting);
        assert!(slots.finish_aggregation(4, &aggregate()).is_err());
        let post = slots.post(4).unwrap().unwrap();
        assert_eq!((post.aggregate, post.tx), (aggregate(), None));

        let tx = PostedTx {
            hash: "0x11".into(),
            raw: "0x22".into(),
            nonce: 3,
            signed_at_ms: 4,
        };
        slots.record_tx(4, &tx).unwrap();
        assert_eq!(slots.post(4).unwrap().unwrap().tx, Some(tx.clone()));
        slots
            .transition(
                4,
                SlotState::Settled {
                    tx: tx.hash.clone(),
                    block: 1,
                    gas_used: 2,
                },
            )
            .unwrap();
        assert!(matches!(
            slots.record_tx(4, &tx),
            Err(SlotError::WrongState { .. })
        ));
    }

    #[test]
    fn records_survive_a_reopened_rocksdb() {
        let dir = tempfile::tempdir().unwrap();
        {
            let slots = Slots::new(lockstep_storage::RocksStore::open(dir.path()).unwrap());
            slots.create(&proving(5, &[1, 2])).unwrap();
            slots.add_proof(5, 1, &proof()).unwrap();
        }
        let slots = Slots::new(lockstep_storage::RocksStore::open(dir.path()).unwrap());
        assert_eq!(slots.get(5).unwrap().unwrap().state, SlotState::Proving);
        assert_eq!(slots.proofs(5).unwrap()[&1], proof());
        assert_eq!(slots.unfinished().unwrap().len(), 1);
    }
}
