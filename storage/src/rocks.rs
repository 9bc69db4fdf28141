//! The RocksDB [`Store`]: one column family per [`Table`], synced atomic write batches, and a
//! schema version checked at open.

use std::path::{Path, PathBuf};

use rocksdb::{
    ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode, Options, WriteBatch,
    WriteOptions, DB,
};

use crate::{Batch, Error, Op, Result, Store, Table, SCHEMA_VERSION, SCHEMA_VERSION_KEY};

/// A [`Store`] in a RocksDB folder.
pub struct RocksStore {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RocksStore {
    /// Opens the database at `path`, creating it (and its tables) if it does not exist.
    ///
    /// A database written under another [`SCHEMA_VERSION`] is refused with
    /// [`Error::SchemaVersion`], and nothing in it is changed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let open_err = |reason: String| Error::Open {
            path: path.clone(),
            reason,
        };
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        // RocksDB must open every column family a database has: add any unknown ones (a newer
        // schema's) so the version check below can say what is wrong.
        let mut names: Vec<String> = Table::ALL.iter().map(|t| t.name().to_string()).collect();
        if let Ok(existing) = DB::list_cf(&opts, &path) {
            for name in existing {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let cfs = names.iter().map(|name| {
            let mut cf = Options::default();
            cf.set_compression_type(DBCompressionType::Lz4);
            ColumnFamilyDescriptor::new(name, cf)
        });
        let db = DB::open_cf_descriptors(&opts, &path, cfs).map_err(|e| open_err(e.to_string()))?;
        let store = Self { db, path };
        store.check_schema()?;
        Ok(store)
    }

    /// The database folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_schema(&self) -> Result<()> {
        match self.get(Table::Meta, SCHEMA_VERSION_KEY)? {
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_be_bytes)
                    .map_err(|_| Error::Open {
                        path: self.path.clone(),
                        reason: format!(
                            "the schema version record holds {} bytes, not 4: not a Lockstep \
                             database, or a damaged one",
                            bytes.len()
                        ),
                    })?;
                if found != SCHEMA_VERSION {
                    return Err(Error::SchemaVersion {
                        path: self.path.clone(),
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
                Ok(())
            }
            None => {
                // A new database, or one with data but no version: only the first is ours.
                for table in Table::ALL {
                    if !self.scan_prefix(table, &[])?.is_empty() {
                        return Err(Error::Open {
                            path: self.path.clone(),
                            reason: format!(
                                "table {} holds data but the database has no schema version: \
                                 not a Lockstep database",
                                table.name()
                            ),
                        });
                    }
                }
                let mut batch = Batch::default();
                batch.put(
                    Table::Meta,
                    SCHEMA_VERSION_KEY,
                    &SCHEMA_VERSION.to_be_bytes(),
                );
                self.write(batch)
            }
        }
    }

    fn cf(&self, table: Table) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(table.name())
            .expect("every table's column family is opened in `open`")
    }
}

fn backend(op: &'static str, table: Table) -> impl FnOnce(rocksdb::Error) -> Error {
    move |err| Error::Backend {
        op,
        table,
        reason: err.to_string(),
    }
}

impl Store for RocksStore {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db
            .get_cf(self.cf(table), key)
            .map_err(backend("read", table))
    }

    fn scan_prefix(&self, table: Table, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(
            self.cf(table),
            IteratorMode::From(prefix, Direction::Forward),
        ) {
            let (key, value) = item.map_err(backend("scan", table))?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.into_vec(), value.into_vec()));
        }
        Ok(out)
    }

    fn write(&self, batch: Batch) -> Result<()> {
        let mut wb = WriteBatch::default();
        let mut last = Table::Meta;
        for op in batch.ops() {
            match op {
                Op::Put { table, key, value } => {
                    wb.put_cf(self.cf(*table), key, value);
                    last = *table;
                }
                Op::Delete { table, key } => {
                    wb.delete_cf(self.cf(*table), key);
                    last = *table;
                }
            }
        }
        let mut opts = WriteOptions::default();
        // Durable when `write` returns: a crash right after loses nothing that was confirmed.
        opts.set_sync(true);
        self.db.write_opt(wb, &opts).map_err(backend("write", last))
    }
}
