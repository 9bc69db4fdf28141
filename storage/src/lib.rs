//! Persistence for the Lockstep aggregator: storage traits, a RocksDB implementation and an
//! in-memory one for tests.
//!
//! The layer knows tables, keys and atomic batches, not protocol rules. [`Store`] is the raw
//! interface (bytes in named tables, all-or-nothing batches); [`Records`] stores typed values
//! as JSON on top of any `Store`.
//!
//! ```
//! use lockstep_storage::{Batch, MemoryStore, Records, Store, Table};
//!
//! let store = MemoryStore::default();
//! let mut batch = Batch::default();
//! batch.put_json(Table::Slots, &7u64.to_be_bytes(), &"collecting")?;
//! batch.put(Table::Meta, b"note", b"hello");
//! store.write(batch)?;
//! let stage: Option<String> = store.get_json(Table::Slots, &7u64.to_be_bytes())?;
//! assert_eq!(stage.as_deref(), Some("collecting"));
//! # Ok::<(), lockstep_storage::Error>(())
//! ```

mod error;
mod memory;
mod rocks;

pub use error::{Error, Result};
pub use memory::MemoryStore;
pub use rocks::RocksStore;

use serde::{de::DeserializeOwned, Serialize};

/// Version of the on-disk layout (tables and encodings). A database written under another
/// version is refused at open rather than misread.
pub const SCHEMA_VERSION: u32 = 2;

/// Key in [`Table::Meta`] holding the schema version (4 bytes, big-endian).
pub const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";

/// The tables the aggregator keeps (RocksDB column families).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Slot state machine records, keyed by slot (u64 big-endian, so scans run in slot order).
    Slots,
    /// Per-rollup proofs and block data received for a slot, keyed by slot ‖ rollup id.
    Proofs,
    /// Settlement transactions posted (or about to be), keyed by slot.
    Posts,
    /// Transactions submitted to the service's builder, by id, with their outcomes.
    Mempool,
    /// Every rollup's block data for a slot (what the slot's blobs carry), keyed by
    /// slot ‖ rollup id.
    Blocks,
    /// Schema version and other bookkeeping.
    Meta,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Self; 6] = [
        Self::Slots,
        Self::Proofs,
        Self::Posts,
        Self::Mempool,
        Self::Blocks,
        Self::Meta,
    ];

    /// The column family name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Slots => "slots",
            Self::Proofs => "proofs",
            Self::Posts => "posts",
            Self::Mempool => "mempool",
            Self::Blocks => "blocks",
            Self::Meta => "meta",
        }
    }
}

/// One write in a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Set `key` to `value`.
    Put {
        /// Table.
        table: Table,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Remove `key` (no error if absent).
    Delete {
        /// Table.
        table: Table,
        /// Key.
        key: Vec<u8>,
    },
}

/// Writes applied together or not at all, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    /// Adds a put.
    pub fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> &mut Self {
        self.ops.push(Op::Put {
            table,
            key: key.to_vec(),
            value: value.to_vec(),
        });
        self
    }

    /// Adds a put of `value` as JSON.
    pub fn put_json<T: Serialize + ?Sized>(
        &mut self,
        table: Table,
        key: &[u8],
        value: &T,
    ) -> Result<&mut Self> {
        let value = serde_json::to_vec(value).map_err(|err| Error::Encode {
            table,
            reason: err.to_string(),
        })?;
        self.ops.push(Op::Put {
            table,
            key: key.to_vec(),
            value,
        });
        Ok(self)
    }

    /// Adds a delete.
    pub fn delete(&mut self, table: Table, key: &[u8]) -> &mut Self {
        self.ops.push(Op::Delete {
            table,
            key: key.to_vec(),
        });
        self
    }

    /// The writes, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether the batch holds no write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Raw storage: byte keys and values in [`Table`]s, written in atomic [`Batch`]es.
///
/// Implementations are shared between tasks (`Send + Sync`); a batch is durable when `write`
/// returns (RocksDB: written to the WAL and synced).
pub trait Store: Send + Sync {
    /// The value at `key`, if any.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Applies every write of `batch`, or none.
    fn write(&self, batch: Batch) -> Result<()>;
}

/// A shared store is a store: services hand one `Arc` to every reader and writer.
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(table, key)
    }

    fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        (**self).scan_prefix(table, prefix)
    }

    fn write(&self, batch: Batch) -> Result<()> {
        (**self).write(batch)
    }
}

/// Typed access on top of any [`Store`]: values as JSON.
pub trait Records: Store {
    /// The value at `key` decoded from JSON; a value that does not decode is an error naming
    /// the table and key, never a silent `None`.
    fn get_json<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> Result<Option<T>> {
        self.get(table, key)?
            .map(|bytes| decode(table, key, &bytes))
            .transpose()
    }

    /// Every value under `prefix`, decoded, in key order.
    fn scan_json<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, T)>> {
        self.scan_prefix(table, prefix)?
            .into_iter()
            .map(|(key, bytes)| {
                let value = decode(table, &key, &bytes)?;
                Ok((key, value))
            })
            .collect()
    }

    /// Puts one value as JSON.
    fn put_json<T: Serialize + ?Sized>(&self, table: Table, key: &[u8], value: &T) -> Result<()> {
        let mut batch = Batch::default();
        batch.put_json(table, key, value)?;
        self.write(batch)
    }
}

impl<S: Store + ?Sized> Records for S {}

fn decode<T: DeserializeOwned>(table: Table, key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|err| Error::Decode {
        table,
        key: hex_key(key),
        reason: err.to_string(),
    })
}

pub(crate) fn hex_key(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Key of a slot: its number, big-endian (so keys sort like slots).
pub fn slot_key(slot: u64) -> [u8; 8] {
    slot.to_be_bytes()
}

/// Key of one rollup's record within a slot: slot ‖ rollup id, both big-endian; every record of
/// a slot shares the prefix [`slot_key`].
pub fn slot_rollup_key(slot: u64, rollup_id: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&slot.to_be_bytes());
    key[8..].copy_from_slice(&rollup_id.to_be_bytes());
    key
}
