//! Transactions users submit to the builder (`POST /v1/transactions`), kept in the store's
//! `mempool` table by id (u64 big-endian, so scans run in arrival order) with their outcome.
//!
//! A transaction is `pending` until the builder runs it in a slot. It is then `included`
//! (with its slot and outcome; a call that reverted is still included, and its nonce counts)
//! or `refused` (with the reason: a wrong nonce, a value above the balance, …). The builder
//! records outcomes in the same atomic write that opens the slot, so a crash never leaves a
//! transaction both in a slot and pending.

use alloy::primitives::Bytes;
use lockstep_rollup_api::CallOutcome;
use lockstep_storage::{Batch, Error as StorageError, Records, Store, Table};
use serde::{Deserialize, Serialize};

/// A transaction as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxSubmission {
    /// The rollup it runs on.
    pub rollup_id: u32,
    /// The transaction in the rollup's own encoding (`0x` and hex in JSON); the rollup decodes
    /// it when the builder runs it.
    pub tx: Bytes,
}

/// Where a transaction is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TxState {
    /// Waiting for the next slot.
    Pending,
    /// Run in `slot`.
    Included {
        /// The slot.
        slot: u64,
        /// Whether its call succeeded (a reverted call is still included).
        success: bool,
        /// The call's return or revert data (`0x` and hex in JSON).
        data: Bytes,
        /// Cross-rollup calls it made.
        cross_calls: usize,
    },
    /// Not included.
    Refused {
        /// The slot the builder tried it in.
        slot: u64,
        /// Why.
        reason: String,
    },
}

/// A submitted transaction and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    /// Its id, in arrival order from 1.
    pub id: u64,
    /// The rollup it runs on.
    pub rollup_id: u32,
    /// The transaction, in the rollup's own encoding.
    pub tx: Bytes,
    /// When it arrived (ms since the Unix epoch).
    pub received_ms: u64,
    /// Where it is.
    #[serde(flatten)]
    pub state: TxState,
}

impl TxRecord {
    /// The record after the builder ran it in `slot` with `outcome`.
    pub fn included(&self, slot: u64, outcome: &CallOutcome, cross_calls: usize) -> Self {
        Self {
            state: TxState::Included {
                slot,
                success: outcome.success,
                data: Bytes::copy_from_slice(&outcome.data),
                cross_calls,
            },
            ..self.clone()
        }
    }

    /// The record after the builder refused it in `slot`.
    pub fn refused(&self, slot: u64, reason: String) -> Self {
        Self {
            state: TxState::Refused { slot, reason },
            ..self.clone()
        }
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
