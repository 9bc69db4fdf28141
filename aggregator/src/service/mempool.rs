//! Transactions users submit to the builder (`POST /v1/transactions`), kept in the store's
//! `mempool` table by id (u64 big-endian, so scans run in arrival order) with their outcome.
//!
//! A transaction is `pending` until the builder runs it in a slot. It is then `included`
//! (with its slot and outcome; a call that reverted is still included, and its nonce counts)
//! or `refused` (with the reason: a wrong nonce, a value above the balance, …). The builder
//! records outcomes in the same atomic write that opens the slot, so a crash never leaves a
//! transaction both in a slot and pending.

use lockstep_api::HexBytes;
use lockstep_rollup_api::CallOutcome;
use lockstep_storage::{Batch, Error as StorageError, Records, Store, Table};

pub use lockstep_api::{TxRecord, TxState, TxSubmission};

/// `record` after the builder ran it in `slot` with `outcome`.
pub fn included(
    record: &TxRecord,
    slot: u64,
    outcome: &CallOutcome,
    cross_calls: usize,
) -> TxRecord {
    TxRecord {
        state: TxState::Included {
            slot,
            success: outcome.success,
            data: HexBytes(outcome.data.clone()),
            cross_calls,
        },
        ..record.clone()
    }
}

/// `record` after the builder refused it in `slot`.
pub fn refused(record: &TxRecord, slot: u64, reason: String) -> TxRecord {
    TxRecord {
        state: TxState::Refused { slot, reason },
        ..record.clone()
    }
}

/// The mempool table over any [`Store`].
#[derive(Debug, Clone)]
pub struct Mempool<S> {
    store: S,
}

impl<S: Store> Mempool<S> {
    /// The mempool in `store`.
    pub const fn new(store: S) -> Self {
        Self { store }
    }

    /// A transaction by id.
    pub fn get(&self, id: u64) -> Result<Option<TxRecord>, StorageError> {
        self.store.get_json(Table::Mempool, &id.to_be_bytes())
    }

    /// Every transaction, oldest first.
    fn all(&self) -> Result<Vec<TxRecord>, StorageError> {
        Ok(self
            .store
            .scan_json::<TxRecord>(Table::Mempool, &[])?
            .into_iter()
            .map(|(_, record)| record)
            .collect())
    }

    /// Up to `limit` pending transactions, oldest first.
    ///
    /// Like the slot listings it scans the table; pruning old outcomes is left to operators
    /// for now.
    pub fn pending(&self, limit: usize) -> Result<Vec<TxRecord>, StorageError> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|r| r.state == TxState::Pending)
            .take(limit)
            .collect())
    }

    /// Records a new pending transaction with the next id; refuses when `max_pending` wait.
    /// Only the service's writer task calls this.
    pub fn submit(
        &self,
        submission: TxSubmission,
        received_ms: u64,
        max_pending: usize,
    ) -> Result<Result<TxRecord, MempoolFull>, StorageError> {
        let all = self.all()?;
        let pending = all.iter().filter(|r| r.state == TxState::Pending).count();
        if pending >= max_pending {
            return Ok(Err(MempoolFull(max_pending)));
        }
        let record = TxRecord {
            id: all.last().map_or(1, |r| r.id + 1),
            rollup_id: submission.rollup_id,
            tx: submission.tx,
            received_ms,
            state: TxState::Pending,
        };
        let mut batch = Batch::default();
        batch.put_json(Table::Mempool, &record.id.to_be_bytes(), &record)?;
        self.store.write(batch)?;
        Ok(Ok(record))
    }

    /// Adds the writes of `records` (new outcomes) to `batch`.
    pub fn record_outcomes(batch: &mut Batch, records: &[TxRecord]) -> Result<(), StorageError> {
        for record in records {
            batch.put_json(Table::Mempool, &record.id.to_be_bytes(), record)?;
        }
        Ok(())
    }

    /// Writes outcomes on their own (a slot in which every transaction was refused).
    pub fn write_outcomes(&self, records: &[TxRecord]) -> Result<(), StorageError> {
        let mut batch = Batch::default();
        Self::record_outcomes(&mut batch, records)?;
        self.store.write(batch)
    }
}

/// The mempool holds as many pending transactions as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the mempool is full ({0} transactions pending); try again after the next slot")]
pub struct MempoolFull(pub usize);
