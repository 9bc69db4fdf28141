//! Calls between rollups, in protocol terms: addresses of 20 bytes, values of 256 bits, call and
//! return data as bytes.

use lockstep_circuits::entry::{data_field, Address};
use ruint::aliases::U256;

use crate::Result;

/// What a call (or a transaction's top-level call) returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallOutcome {
    /// Whether it returned normally (false: it reverted).
    pub success: bool,
    /// Its return (or revert) data.
    pub data: Vec<u8>,
}

impl CallOutcome {
    /// A normal return of `data`.
    pub fn ok(data: impl Into<Vec<u8>>) -> Self {
        Self {
            success: true,
            data: data.into(),
        }
    }

    /// A revert with `data`.
    pub fn revert(data: impl Into<Vec<u8>>) -> Self {
        Self {
            success: false,
            data: data.into(),
        }
    }

    /// The entry's `return_hash` field for this outcome ([`data_field`]).
    pub fn return_field(&self) -> [u8; 32] {
        data_field(&self.data)
    }
}

/// A call leaving its rollup, as the caller hands it to the [`CallRouter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCall {
    /// Calling rollup.
    pub src: u32,
    /// The caller's sequence number for the call, unique in its slot.
    pub seq: u32,
    /// Called rollup.
    pub dst: u32,
    /// Calling contract (or app).
    pub caller: Address,
    /// Called contract (or account).
    pub target: Address,
    /// Value carried, in wei (already debited from the caller).
    pub value: U256,
    /// Call data.
    pub data: Vec<u8>,
    /// Whether the caller knows of no enclosing frame that discards this call (false inside a
    /// served call that was itself uncommitted).
    pub committed: bool,
}

/// A call another rollup made, as the called rollup serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    /// Calling rollup.
    pub src: u32,
    /// The caller's sequence number for this call.
    pub seq: u32,
    /// Calling contract on `src`.
    pub caller: Address,
    /// Called contract (or account) here.
    pub target: Address,
    /// Value carried, in wei.
    pub value: U256,
    /// Call data.
    pub data: Vec<u8>,
    /// Whether the caller's enclosing frames committed; if not, the called rollup executes the
    /// call (its result still counts) and then discards its own state changes.
    pub committed: bool,
}

impl OutgoingCall {
    /// The call as its destination serves it, with the committed flag it is given.
    pub fn incoming(&self, committed: bool) -> IncomingCall {
        IncomingCall {
            src: self.src,
            seq: self.seq,
            caller: self.caller,
            target: self.target,
            value: self.value,
            data: self.data.clone(),
            committed,
        }
    }
}

/// Runs cross-rollup calls on their destination.
pub trait CallRouter {
    /// Executes `call` on `call.dst` now and returns its outcome.
    fn call(&self, call: &OutgoingCall) -> Result<CallOutcome>;
}
