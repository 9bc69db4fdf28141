/// Errors of the circuits crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A public-input vector does not follow the layout.
    #[error("malformed public inputs: {0}")]
    MalformedInstances(String),
    /// More entries than the layout has room for.
    #[error("{side} list has {len} entries, the layout holds at most {max}")]
    TooManyEntries {
        /// `assumed` or `served`.
        side: &'static str,
        /// How many were given.
        len: usize,
        /// The layout's capacity per side.
        max: usize,
    },
    /// An entry does not belong in this rollup's lists.
    #[error("entry {index} of the {side} list: {reason}")]
    ForeignEntry {
        /// `assumed` or `served`.
        side: &'static str,
        /// Its position.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A circuit needs more columns than the common shape has at its `k`.
    #[error("circuit does not fit the common shape at k = {k}: it needs {needed}; raise k")]
    CircuitTooLarge {
        /// The circuit's k.
        k: u32,
        /// What it needs.
        needed: String,
    },
    /// The slot's entries do not balance: an entry hash was assumed more (or fewer) times
    /// than it was served.
    #[error("entries do not balance: entry {hash} assumed {surplus:+} more times than served")]
    Unbalanced {
        /// The entry hash (hex, big-endian).
        hash: String,
        /// Assumed count minus served count.
        surplus: i64,
    },
    /// A proof could not be made or does not verify.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// A key or SRS file is missing, unreadable or does not match.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A state trace or its key table is inconsistent (found natively, before proving).
    #[error("{what} {index} of the state trace: {reason}")]
    BadTrace {
        /// `op` or `key row`.
        what: &'static str,
        /// Its position.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A value does not fit the bits the layout gives it.
    #[error("{what} = {value} is out of range: {expected}")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value, printed.
        value: String,
        /// The range it must be in.
        expected: &'static str,
    },
}

/// Result alias of the circuits crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
