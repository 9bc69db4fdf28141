/// Why a rollup (or the cluster) did not execute a transaction or a call.
///
/// An app that reverts is not an error: it is an outcome ([`crate::CallOutcome`] with
/// `success = false`) and the transaction is still included. An error means nothing of the
/// transaction stays anywhere. The variants are few on purpose: a builder needs to know whom to
/// blame and whether to try again, not each rollup's reasons, which travel as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RollupError {
    /// Refused in the rollup's current state (a nonce, a balance): the same transaction may be
    /// accepted later.
    #[error("{reason}")]
    Refused {
        /// The rollup that refused.
        rollup: u32,
        /// Its reason.
        reason: String,
    },
    /// The slot is full for the rollup (entries, block steps, its circuit's capacity): the same
    /// transaction may fit a later slot.
    #[error("{reason}")]
    Full {
        /// The rollup that is full.
        rollup: u32,
        /// What ran out.
        reason: String,
    },
    /// Malformed or out of range: never accepted.
    #[error("{reason}")]
    Invalid {
        /// The rollup that found it invalid.
        rollup: u32,
        /// What is wrong.
        reason: String,
    },
    /// No rollup with this id takes part in the cluster.
    #[error("unknown rollup {0}")]
    UnknownRollup(u32),
    /// The committed flags of a transaction's cross-rollup calls did not settle: its execution
    /// depends on state changes that a revert elsewhere discards (see [`crate::Cluster`]).
    #[error("transaction refused: {0}")]
    InconsistentRevert(String),
    /// The sealed blocks' entries do not balance: some rollup recorded a call the other side
    /// did not. A bug of a rollup implementation, never of a transaction.
    #[error("the slot's entries do not balance: {0}")]
    Unbalanced(String),
    /// The rollup failed on its own (a broken invariant, a bug): not the input's fault.
    #[error("rollup {rollup} failed: {reason}")]
    Internal {
        /// The rollup that failed.
        rollup: u32,
        /// What failed.
        reason: String,
    },
}

impl RollupError {
    /// Whether the same request could succeed later unchanged: refusals that depend on state
    /// and a full slot are retryable; malformed input, unknown rollups and failures are not.
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::Refused { .. } | Self::Full { .. })
    }

    /// The rollup the error is about, where it is about one.
    pub const fn rollup(&self) -> Option<u32> {
        match self {
            Self::Refused { rollup, .. }
            | Self::Full { rollup, .. }
            | Self::Invalid { rollup, .. }
            | Self::Internal { rollup, .. } => Some(*rollup),
            Self::UnknownRollup(rollup) => Some(*rollup),
            Self::InconsistentRevert(_) | Self::Unbalanced(_) => None,
        }
    }
}

/// Result alias of the rollup interface.
pub type Result<T, E = RollupError> = std::result::Result<T, E>;
