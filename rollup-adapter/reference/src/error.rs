/// Errors of the reference rollup.
///
/// An app that reverts is not an error: it is an outcome ([`crate::CallOutcome`] with
/// `success = false`) and the transaction is still included. These errors mean that the
/// transaction, call or block cannot be executed at all; the executor then leaves its state as
/// it was before the failed operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A block's binary encoding is malformed.
    #[error("malformed block at byte {offset}: {reason}")]
    MalformedBlock {
        /// Byte offset where decoding stopped.
        offset: usize,
        /// What was wrong there.
        reason: String,
    },
    /// A transaction was refused before execution (bad nonce, unaffordable value, unknown
    /// sender). Nothing was included.
    #[error("transaction refused: {0}")]
    Refused(String),
    /// Two state keys fall on the same leaf of the tree; the operation touching the second one
    /// is refused (raise the tree depth to make this rarer).
    #[error("state key {key} collides with key {occupant} at leaf {index} (tree depth {depth})")]
    KeyCollision {
        /// The key that was accessed (hex).
        key: String,
        /// The key that holds the leaf (hex).
        occupant: String,
        /// The leaf index.
        index: u64,
        /// The tree depth.
        depth: usize,
    },
    /// A value is outside the range the reference rollup allows.
    #[error("{what} = {value} is out of range: {expected}")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value, printed.
        value: String,
        /// The allowed range.
        expected: &'static str,
    },
    /// Calls nest deeper than [`crate::executor::MAX_CALL_DEPTH`] frames.
    #[error("call depth {depth} exceeds the maximum of {max}")]
    CallTooDeep {
        /// The depth that was reached.
        depth: usize,
        /// The maximum.
        max: usize,
    },
    /// A rollup would record more entries on one side than the public-input layout holds.
    #[error("rollup {rollup}: more than {max} {side} entries in one slot")]
    TooManyEntries {
        /// The rollup.
        rollup: u32,
        /// `assumed` or `served`.
        side: &'static str,
        /// The layout's capacity per side.
        max: usize,
    },
    /// A block would hold more steps than the rollup's circuit proves.
    #[error("rollup {rollup}: more than {max} steps in one block")]
    TooManySteps {
        /// The rollup.
        rollup: u32,
        /// The maximum.
        max: usize,
    },
    /// A call targets a rollup that is not part of the cluster.
    #[error("unknown rollup {0}")]
    UnknownRollup(u32),
    /// Replaying a block found a step other than the one execution needs next.
    #[error("block replay of rollup {rollup}, step {step}: {reason}")]
    Replay {
        /// The rollup.
        rollup: u32,
        /// Index of the offending step (or the step count when the block ended early).
        step: usize,
        /// What was expected and found.
        reason: String,
    },
    /// The STF step machine's rows do not follow the block (see [`crate::machine`]).
    #[error("step machine, row {row}: {reason}")]
    Machine {
        /// Index of the offending row (or the row count when the rows end early).
        row: usize,
        /// What the row should have been.
        reason: String,
    },
    /// A transaction's cross-rollup calls cannot be given consistent committed flags: its
    /// execution depends on state changes that a revert elsewhere discards.
    #[error("transaction refused: {0}")]
    InconsistentRevert(String),
    /// A genesis configuration is invalid.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// Public inputs could not be formed, or the circuit refused its witness.
    #[error(transparent)]
    Circuits(#[from] lockstep_circuits::Error),
    /// Another rollup, or the cluster, refused a call this rollup made.
    #[error(transparent)]
    Cluster(lockstep_rollup_api::RollupError),
}

impl Error {
    /// Whether the same request could succeed later unchanged. Refusals that depend on state
    /// (nonce, balance, entry capacity of the slot) are retryable in a later slot; malformed
    /// input never is.
    pub const fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Refused(_) | Self::TooManyEntries { .. } | Self::TooManySteps { .. }
        )
    }
}

impl Error {
    /// The error in the protocol's terms, as the cluster sees it from rollup `rollup`; its text
    /// is this error's.
    pub fn into_api(self, rollup: u32) -> lockstep_rollup_api::RollupError {
        use lockstep_rollup_api::RollupError as E;
        let reason = self.to_string();
        match self {
            Self::Cluster(error) => error,
            Self::UnknownRollup(id) => E::UnknownRollup(id),
            Self::InconsistentRevert(why) => E::InconsistentRevert(why),
            Self::Refused(_) => E::Refused { rollup, reason },
            Self::TooManyEntries { .. } | Self::TooManySteps { .. } => E::Full { rollup, reason },
            Self::MalformedBlock { .. }
            | Self::KeyCollision { .. }
            | Self::OutOfRange { .. }
            | Self::CallTooDeep { .. }
            | Self::Genesis(_) => E::Invalid { rollup, reason },
            Self::Replay { .. } | Self::Machine { .. } | Self::Circuits(_) => {
                E::Internal { rollup, reason }
            }
        }
    }
}

/// Result alias of the reference rollup.
pub type Result<T, E = Error> = std::result::Result<T, E>;
