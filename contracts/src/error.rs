use std::path::PathBuf;

/// Errors of the contracts crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The anvil binary could not be started.
    #[error(
        "cannot start anvil at `{path}`: {source} (run scripts/setup.sh, or set LOCKSTEP_ANVIL)"
    )]
    AnvilSpawn {
        /// The binary that was tried.
        path: PathBuf,
        /// Why spawning failed.
        #[source]
        source: std::io::Error,
    },
    /// anvil started but exited, or did not answer JSON-RPC in time.
    #[error("anvil on port {port} is not ready: {reason} (log: {log})")]
    AnvilNotReady {
        /// The port it was told to listen on.
        port: u16,
        /// What went wrong.
        reason: String,
        /// Where its output went.
        log: PathBuf,
    },
    /// A JSON-RPC call to the L1 node failed.
    #[error("L1 RPC call failed: {0}")]
    Rpc(#[from] alloy::transports::TransportError),
    /// A contract call or deployment failed.
    #[error("contract call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// A transaction was mined but reverted, or its receipt never came.
    #[error("transaction {what} failed: {reason}")]
    Transaction {
        /// Which transaction.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// Reading or writing a deployment file failed.
    #[error("deployment file {path}: {reason}")]
    DeploymentFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The slot's blob payload is too large, or a data reference points outside it.
    #[error("blob payload: {0}")]
    BlobPayload(String),
    /// `LockstepSettlement` refused a settlement; the contract's error, decoded.
    #[error("settlement refused: {0}")]
    SettlementRefused(String),
    /// A deployment setting is unusable.
    #[error("deployment config: {0}")]
    DeployConfig(String),
    /// Compiling Solidity failed.
    #[error("compiling Solidity: {0}")]
    Compile(String),
    /// Local I/O failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether retrying the same operation may succeed (node hiccups, not logic errors).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Rpc(err) => err.as_transport_err().is_some_and(|kind| {
                kind.is_retry_err()
                    || matches!(kind, alloy::transports::TransportErrorKind::BackendGone)
            }),
            Self::AnvilNotReady { .. } => true,
            _ => false,
        }
    }
}

/// Result alias of the contracts crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
