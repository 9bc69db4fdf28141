use std::path::PathBuf;

use crate::Table;

/// Result of the storage crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the storage crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be opened or created.
    #[error("opening the database at {path}: {reason}")]
    Open {
        /// Its folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The database was written by another schema version of Lockstep.
    #[error(
        "the database at {path} has schema version {found}, this build reads version {expected}: \
         use a build of the matching version, or move the folder away to start empty"
    )]
    SchemaVersion {
        /// Its folder.
        path: PathBuf,
        /// The version stored there.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// A read or write failed in RocksDB.
    #[error("database {op} on table {table}: {reason}", table = table.name())]
    Backend {
        /// What was being done.
        op: &'static str,
        /// On which table.
        table: Table,
        /// RocksDB's message.
        reason: String,
    },
    /// A value could not be encoded.
    #[error("encoding a value for table {table}: {reason}", table = table.name())]
    Encode {
        /// The table.
        table: Table,
        /// Why.
        reason: String,
    },
    /// A stored value does not decode as the expected type.
    #[error("value at {table}/{key} does not decode: {reason}", table = table.name())]
    Decode {
        /// The table.
        table: Table,
        /// The key, hex.
        key: String,
        /// Why.
        reason: String,
    },
}
