//! Blocks of the reference rollup and their binary encoding (block format version 1).
//!
//! A block is the rollup's part of one slot's single total order, as an *input tape*: user
//! transactions, the incoming calls it served, and the results of the outgoing calls it made,
//! in execution order. Replaying the tape from the pre-state ([`crate::ReferenceRollup::replay`])
//! re-derives everything else: frames, reverts, state accesses, the entry lists, the ETH delta
//! and the post root, which must equal the header's. The encoding is what goes into the blob.
//! It is specified in `docs/reference-rollup.md`.
//!
//! ```text
//! block  = "LKB" version:u8 rollup:u32 slot:u64 pre_root:32 post_root:32 count:u32 step*
//! step   = 0x01 from:20 nonce:u64 to:20 value:u128 data:19          (transaction)
//!        | 0x02 src:u32 seq:u32 caller:20 target:20 value:u128 data:19 committed:u8   (served call)
//!        | 0x03 seq:u32 success:u8 word:u128                         (result of an outgoing call)
//! data   = method:u8 inner:u8 next:u8 arg:u128
//! ```
//! Integers are big-endian; roots are canonical field elements, big-endian; flags are 0 or 1.

use lockstep_circuits::{entry::Address, Fr};
use serde::{Deserialize, Serialize};

use crate::{
    abi::{CallData, MAX_VALUE},
    Error, Result,
};

/// Magic bytes in front of every block.
pub const MAGIC: &[u8; 3] = b"LKB";
/// Block format version.
pub const BLOCK_VERSION: u8 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 3 + 1 + 4 + 8 + 32 + 32 + 4;
/// Most steps a block may declare (bounds decoding before any allocation).
pub const MAX_ENCODED_STEPS: usize = 1 << 16;

/// A user transaction on a rollup.
///
/// Version 1 carries no signature: the builder that orders transactions authorises them, and
/// the proof shows only that the nonce and balance rules were followed (see
/// `docs/reference-rollup.md`, "What version 1 leaves out").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// Sender.
    pub from: Address,
    /// Sender's nonce; must equal its account's.
    pub nonce: u64,
    /// Called app or receiving account.
    pub to: Address,
    /// Value sent, in wei.
    #[serde(with = "crate::abi::u128_text")]
    pub value: u128,
    /// What to call.
    pub data: CallData,
}

impl Tx {
    /// Encoded length: `from:20 nonce:u64 to:20 value:u128 data:19`.
    pub const LEN: usize = 20 + 8 + 20 + 16 + CallData::LEN;

    /// The transaction's encoding: what users submit and what a block's transaction step holds
    /// after its tag.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        self.write(&mut out);
        out
    }

    /// Decodes [`Self::encode`]'s bytes, refusing anything else (a wrong length, an unknown
    /// method, a value above [`MAX_VALUE`]).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, offset: 0 };
        let tx = Self::read(&mut r)?;
        if r.remaining() != 0 {
            return Err(r.error(
                r.offset,
                format!("{} bytes after the transaction", r.remaining()),
            ));
        }
        Ok(tx)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.from.0);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out.extend_from_slice(&self.to.0);
        out.extend_from_slice(&self.value.to_be_bytes());
        out.extend_from_slice(&self.data.to_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            from: r.address()?,
            nonce: r.u64()?,
            to: r.address()?,
            value: r.value()?,
            data: r.calldata()?,
        })
    }
}

/// A call another rollup made to this one, as served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingCall {
    /// Calling rollup.
    pub src: u32,
    /// The caller's sequence number for this call.
    pub seq: u32,
    /// Calling app on `src`.
    pub caller: Address,
    /// Called app (or account) here.
    pub target: Address,
    /// Value carried.
    #[serde(with = "crate::abi::u128_text")]
    pub value: u128,
    /// What to call.
    pub data: CallData,
    /// Whether the caller's enclosing frames committed; if not, this rollup executes the call
    /// (its result still counts) and then discards its state changes.
    pub committed: bool,
}

/// The result an outgoing call got from the rollup it called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallReturn {
    /// Sequence number of the outgoing call it answers.
    pub seq: u32,
    /// Whether the callee returned normally.
    pub success: bool,
    /// Return (or revert) word.
    pub word: u128,
}

/// One step of a block's input tape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// A user transaction.
    Tx(Tx),
    /// A call from another rollup, executed here.
    Serve(IncomingCall),
    /// The result of this rollup's innermost pending outgoing call.
    Return(CallReturn),
}

/// One rollup's block for one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The rollup.
    pub rollup_id: u32,
    /// The L1 slot.
    pub slot: u64,
    /// State root before.
    pub pre_root: Fr,
    /// State root after.
    pub post_root: Fr,
    /// The input tape.
    pub steps: Vec<Step>,
}

impl Block {
    /// The binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 85 * self.steps.len());
        out.extend_from_slice(MAGIC);
        out.push(BLOCK_VERSION);
        out.extend_from_slice(&self.rollup_id.to_be_bytes());
        out.extend_from_slice(&self.slot.to_be_bytes());
        out.extend_from_slice(&fr_to_be(&self.pre_root));
        out.extend_from_slice(&fr_to_be(&self.post_root));
        out.extend_from_slice(&(self.steps.len() as u32).to_be_bytes());
        for step in &self.steps {
            match step {
                Step::Tx(tx) => {
                    out.push(1);
                    tx.write(&mut out);
                }
                Step::Serve(call) => {
                    out.push(2);
                    out.extend_from_slice(&call.src.to_be_bytes());
                    out.extend_from_slice(&call.seq.to_be_bytes());
                    out.extend_from_slice(&call.caller.0);
                    out.extend_from_slice(&call.target.0);
                    out.extend_from_slice(&call.value.to_be_bytes());
                    out.extend_from_slice(&call.data.to_bytes());
                    out.push(u8::from(call.committed));
                }
                Step::Return(ret) => {
                    out.push(3);
                    out.extend_from_slice(&ret.seq.to_be_bytes());
                    out.push(u8::from(ret.success));
                    out.extend_from_slice(&ret.word.to_be_bytes());
                }
            }
        }
        out
    }

    /// Decodes a block, refusing anything malformed: wrong magic or version, an unknown step
    /// tag, a flag other than 0 or 1, an unknown method, a value above [`MAX_VALUE`], a
    /// non-canonical root, a truncated step, or bytes after the last step.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, offset: 0 };
        if r.take(3)? != MAGIC {
            return Err(r.error(0, "not a Lockstep block (magic is not \"LKB\")"));
        }
        let version = r.u8()?;
        if version != BLOCK_VERSION {
            return Err(r.error(
                3,
                format!("block version {version}, expected {BLOCK_VERSION}"),
            ));
        }
        let rollup_id = r.u32()?;
        let slot = r.u64()?;
        let pre_root = r.root("pre root")?;
        let post_root = r.root("post root")?;
        let count = r.u32()? as usize;
        if count > MAX_ENCODED_STEPS || count * 22 > r.remaining() {
            return Err(r.error(
                r.offset - 4,
                format!(
                    "declares {count} steps; {} bytes cannot hold them (or more than {MAX_ENCODED_STEPS})",
                    r.remaining()
                ),
            ));
        }
        let mut steps = Vec::with_capacity(count);
        for _ in 0..count {
            let at = r.offset;
            let step = match r.u8()? {
                1 => Step::Tx(Tx::read(&mut r)?),
                2 => Step::Serve(IncomingCall {
                    src: r.u32()?,
                    seq: r.u32()?,
                    caller: r.address()?,
                    target: r.address()?,
                    value: r.value()?,
                    data: r.calldata()?,
                    committed: r.flag("committed")?,
                }),
                3 => Step::Return(CallReturn {
                    seq: r.u32()?,
                    success: r.flag("success")?,
                    word: r.u128()?,
                }),
                tag => return Err(r.error(at, format!("unknown step tag {tag}"))),
            };
            steps.push(step);
        }
        if r.remaining() != 0 {
            return Err(r.error(
                r.offset,
                format!("{} bytes after the last step", r.remaining()),
            ));
        }
        Ok(Self {
            rollup_id,
            slot,
            pre_root,
            post_root,
            steps,
        })
    }
}

pub use lockstep_circuits::fr_text::{fr_from_be, fr_hex, fr_to_be, parse_fr_hex};

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl Reader<'_> {
    fn error(&self, offset: usize, reason: impl Into<String>) -> Error {
        Error::MalformedBlock {
            offset,
            reason: reason.into(),
        }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.remaining() < n {
            return Err(self.error(
                self.offset,
                format!(
                    "truncated: {n} more bytes needed, {} left",
                    self.remaining()
                ),
            ));
        }
        let out = &self.bytes[self.offset..self.offset + n];
        self.offset += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn u128(&mut self) -> Result<u128> {
        Ok(u128::from_be_bytes(self.array()?))
    }

    fn value(&mut self) -> Result<u128> {
        let at = self.offset;
        let value = self.u128()?;
        if value > MAX_VALUE {
            return Err(self.error(
                at,
                format!("value {value} is above the maximum {MAX_VALUE}"),
            ));
        }
        Ok(value)
    }

    fn address(&mut self) -> Result<Address> {
        Ok(Address(self.array()?))
    }

    fn flag(&mut self, what: &str) -> Result<bool> {
        let at = self.offset;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.error(at, format!("{what} flag is {other}, expected 0 or 1"))),
        }
    }

    fn calldata(&mut self) -> Result<CallData> {
        let at = self.offset;
        let bytes = self.array::<{ CallData::LEN }>()?;
        CallData::from_bytes(&bytes).map_err(|e| self.error(at, e.to_string()))
    }

    fn root(&mut self, what: &str) -> Result<Fr> {
        let at = self.offset;
        let bytes: [u8; 32] = self.array()?;
        fr_from_be(&bytes)
            .ok_or_else(|| self.error(at, format!("{what} is not a canonical field element")))
    }
}
