//! The reference rollup's typed view of cross-rollup calls (compact [`CallData`], 128-bit values
//! and return words), and its translation to and from the protocol's
//! ([`lockstep_rollup_api`]: bytes and 256-bit values).
//!
//! The executor runs on these types; [`crate::ReferenceRollup`]'s
//! [`SyncRollup`](lockstep_rollup_api::SyncRollup) implementation converts at the boundary. Its
//! calldata is the 19 bytes of [`CallData::to_bytes`] and its return data the 16 big-endian
//! bytes of the word, so the entries' data fields ([`lockstep_rollup_api::data_field`]) are the
//! compact data zero-padded on the left, as the STF circuit forms them.

use lockstep_circuits::entry::Address;
use lockstep_rollup_api as api;

use crate::{abi::CallData, block::IncomingCall, Error, Result};

/// What a call (or a transaction's top-level call) returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallOutcome {
    /// Whether it returned normally (false: it reverted).
    pub success: bool,
    /// Its return (or revert) word.
    pub word: u128,
}

impl CallOutcome {
    /// A normal return.
    pub const fn ok(word: u128) -> Self {
        Self {
            success: true,
            word,
        }
    }

    /// A revert.
    pub const fn revert(word: u128) -> Self {
        Self {
            success: false,
            word,
        }
    }

    /// As the protocol carries it: the word's 16 big-endian bytes.
    pub fn to_api(self) -> api::CallOutcome {
        api::CallOutcome {
            success: self.success,
            data: self.word.to_be_bytes().to_vec(),
        }
    }

    /// An outcome from another rollup: its data must be a number below 2^128 (at most 32
    /// bytes, compared as a big-endian number like the entries' data fields).
    pub fn from_api(outcome: &api::CallOutcome) -> Result<Self> {
        Ok(Self {
            success: outcome.success,
            word: word_of(&outcome.data, "return data")?,
        })
    }
}

/// A big-endian number of at most 32 bytes that fits 128 bits.
pub(crate) fn word_of(data: &[u8], what: &'static str) -> Result<u128> {
    let out_of_range = || Error::OutOfRange {
        what,
        value: format!("0x{}", hex::encode(data)),
        expected: "a big-endian number below 2^128 of at most 32 bytes",
    };
    if data.len() > 32 {
        return Err(out_of_range());
    }
    let (high, low) = data.split_at(data.len().saturating_sub(16));
    if high.iter().any(|b| *b != 0) {
        return Err(out_of_range());
    }
    let mut bytes = [0u8; 16];
    bytes[16 - low.len()..].copy_from_slice(low);
    Ok(u128::from_be_bytes(bytes))
}

/// A value as a 256-bit word.
pub(crate) fn value_word(value: u128) -> api::U256 {
    api::U256::from(value)
}

/// A 256-bit value the reference rollup can hold (at most [`crate::abi::MAX_VALUE`]).
pub(crate) fn value_of(value: api::U256, what: &'static str) -> Result<u128> {
    let value = u128::try_from(value)
        .ok()
        .filter(|v| *v <= crate::abi::MAX_VALUE);
    value.ok_or_else(|| Error::OutOfRange {
        what,
        value: value.map_or_else(|| "above 2^128".into(), |v| v.to_string()),
        expected: "at most MAX_VALUE (2^96 − 1)",
    })
}

/// A call leaving the rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingCall {
    /// Calling rollup.
    pub src: u32,
    /// The caller's sequence number for the call, unique in its slot.
    pub seq: u32,
    /// Called rollup.
    pub dst: u32,
    /// Calling app.
    pub caller: Address,
    /// Called app (or account).
    pub target: Address,
    /// Value carried (already debited from the caller).
    pub value: u128,
    /// What to call.
    pub data: CallData,
    /// Whether the caller knows of no enclosing frame that discards this call.
    pub committed: bool,
}

impl OutgoingCall {
    /// As the protocol carries it.
    pub fn to_api(&self) -> api::OutgoingCall {
        api::OutgoingCall {
            src: self.src,
            seq: self.seq,
            dst: self.dst,
            caller: self.caller,
            target: self.target,
            value: value_word(self.value),
            data: self.data.to_bytes().to_vec(),
            committed: self.committed,
        }
    }
}

impl IncomingCall {
    /// A call another rollup made, if the reference rollup can express it: calldata of exactly
    /// [`CallData::LEN`] bytes, a value of at most [`crate::abi::MAX_VALUE`].
    pub fn from_api(call: &api::IncomingCall) -> Result<Self> {
        let data: &[u8; CallData::LEN] =
            call.data
                .as_slice()
                .try_into()
                .map_err(|_| Error::OutOfRange {
                    what: "calldata length",
                    value: call.data.len().to_string(),
                    expected: "19 bytes (the reference apps' compact ABI)",
                })?;
        Ok(Self {
            src: call.src,
            seq: call.seq,
            caller: call.caller,
            target: call.target,
            value: value_of(call.value, "call value")?,
            data: CallData::from_bytes(data)?,
            committed: call.committed,
        })
    }
}

/// Runs the rollup's cross-rollup calls on their destination.
pub trait CallRouter {
    /// Executes `call` on `call.dst` now and returns its outcome.
    fn call(&self, call: &OutgoingCall) -> Result<CallOutcome>;
}

/// A protocol router seen through the reference rollup's types.
pub(crate) struct ApiRouter<'a>(pub(crate) &'a dyn api::CallRouter);

impl CallRouter for ApiRouter<'_> {
    fn call(&self, call: &OutgoingCall) -> Result<CallOutcome> {
        let outcome = self.0.call(&call.to_api()).map_err(Error::Cluster)?;
        CallOutcome::from_api(&outcome)
    }
}
