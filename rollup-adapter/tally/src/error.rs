/// Why the tally rollup refused a call, a block or a witness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A block's encoding is malformed.
    #[error("malformed tally block at byte {offset}: {reason}")]
    MalformedBlock {
        /// Where decoding stopped.
        offset: usize,
        /// What was wrong there.
        reason: String,
    },
    /// A call the tally rollup cannot serve (another target, a value above the maximum).
    #[error("{0}")]
    Refused(String),
    /// A block does not follow from the state it is applied to.
    #[error("{0}")]
    Replay(String),
    /// The circuit refused its witness, or keys and proofs failed.
    #[error(transparent)]
    Circuits(#[from] lockstep_circuits::Error),
}

/// Result alias of the tally rollup.
pub type Result<T, E = Error> = std::result::Result<T, E>;
