//! In-memory [`Store`] for tests: the same semantics as RocksDB, nothing on disk.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard},
};

use crate::{Batch, Op, Result, Store, Table};

type Tables = BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A [`Store`] held in memory; a batch is applied under one lock, so readers see all of it or
/// none of it.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        // Nothing panics while holding the lock, so a poisoned lock still guards consistent
        // data.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        Ok(self
            .lock()
            .get(&table)
            .map(|t| {
                t.range(prefix.to_vec()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn write(&self, batch: Batch) -> Result<()> {
        // Nothing below can fail, and readers wait for the lock: all of the batch or none.
        let mut tables = self.lock();
        for op in batch.ops() {
            match op {
                Op::Put { table, key, value } => {
                    tables
                        .entry(*table)
                        .or_default()
                        .insert(key.clone(), value.clone());
                }
                Op::Delete { table, key } => {
                    if let Some(t) = tables.get_mut(table) {
                        t.remove(key);
                    }
                }
            }
        }
        Ok(())
    }
}
