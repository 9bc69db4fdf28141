//! The tally rollup's block: the calls it served in a slot, in order, and their execution.
//!
//! ```text
//! block = "LKT" version:u8 rollup:u32 slot:u64 count:u64 balance:u128 n:u32 call*
//! call  = src:u32 seq:u32 caller:20 value:u128 committed:u8 len:u16 data:len
//! ```
//! Integers are big-endian. The header holds the state before the block; everything else (the
//! state after, the served entries, the ETH delta) follows from executing the calls
//! ([`TallyBlock::execute`]).

use lockstep_circuits::{
    entry::{data_field, Address, CallKind, Domain, Entry},
    layout::{SlotHeader, UnplacedHeader, MAX_ENTRIES},
    Fr,
};

use crate::{count_word, Error, Result, TallyState, MAX_VALUE, TALLY_APP};

/// Magic bytes in front of every block.
pub const MAGIC: &[u8; 3] = b"LKT";
/// Block format version.
pub const BLOCK_VERSION: u8 = 1;
/// Longest calldata a served call may carry.
pub const MAX_CALLDATA: usize = u16::MAX as usize;

/// A call another rollup made to the tally app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedCall {
    /// Calling rollup.
    pub src: u32,
    /// The caller's sequence number for the call.
    pub seq: u32,
    /// Calling contract.
    pub caller: Address,
    /// Value carried, in wei (at most [`MAX_VALUE`]).
    pub value: u128,
    /// Whether the caller's frames committed (if not, the call changes nothing).
    pub committed: bool,
    /// Calldata (any: the tally counts every call).
    pub data: Vec<u8>,
}

/// One slot's block of the tally rollup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallyBlock {
    /// The rollup.
    pub rollup_id: u32,
    /// The slot.
    pub slot: u64,
    /// The state before the block.
    pub pre: TallyState,
    /// The calls served, in order.
    pub calls: Vec<ServedCall>,
}

/// What executing a block gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// The state after.
    pub post: TallyState,
    /// The served entries, one per call.
    pub served: Vec<Entry>,
    /// Wei that entered the rollup (values of committed calls).
    pub eth_delta: i128,
}

impl TallyBlock {
    /// Executes the calls from [`Self::pre`]: each returns the count after it (`count + 1`), and
    /// only a committed one moves the count and keeps its value.
    pub fn execute(&self, domain: Domain) -> Result<Executed> {
        if self.calls.len() > MAX_ENTRIES {
            return Err(Error::Refused(format!(
                "{} calls in one block; the layout holds {MAX_ENTRIES}",
                self.calls.len()
            )));
        }
        let mut state = self.pre;
        let mut eth_delta = 0i128;
        let mut served = Vec::with_capacity(self.calls.len());
        for call in &self.calls {
            check_value(call.value)?;
            let answer = state.count + 1;
            served.push(Entry {
                domain,
                slot: self.slot,
                src: call.src,
                dst: self.rollup_id,
                seq: call.seq,
                kind: CallKind::Call,
                success: true,
                committed: call.committed,
                caller: call.caller,
                target: TALLY_APP,
                value: u128_field(call.value),
                calldata_hash: data_field(&call.data),
                return_hash: data_field(&count_word(answer)),
            });
            if call.committed {
                state.count = answer;
                state.balance += call.value;
                eth_delta += call.value as i128;
            }
        }
        Ok(Executed {
            post: state,
            served,
            eth_delta,
        })
    }

    /// The header of the block's proof, given what executing it in `domain` gave.
    pub fn header(&self, domain: Domain, executed: &Executed) -> UnplacedHeader {
        SlotHeader {
            domain,
            slot: self.slot,
            rollup_id: self.rollup_id,
            pre_root: self.pre.root(),
            post_root: executed.post.root(),
            da_commitment: (),
            eth_delta: executed.eth_delta,
            l1_digest: Fr::zero(),
        }
    }

    /// The binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.push(BLOCK_VERSION);
        out.extend_from_slice(&self.rollup_id.to_be_bytes());
        out.extend_from_slice(&self.slot.to_be_bytes());
        out.extend_from_slice(&self.pre.count.to_be_bytes());
        out.extend_from_slice(&self.pre.balance.to_be_bytes());
        out.extend_from_slice(&(self.calls.len() as u32).to_be_bytes());
        for call in &self.calls {
            out.extend_from_slice(&call.src.to_be_bytes());
            out.extend_from_slice(&call.seq.to_be_bytes());
            out.extend_from_slice(&call.caller.0);
            out.extend_from_slice(&call.value.to_be_bytes());
            out.push(u8::from(call.committed));
            out.extend_from_slice(&(call.data.len() as u16).to_be_bytes());
            out.extend_from_slice(&call.data);
        }
        out
    }

    /// Decodes [`Self::encode`]'s bytes, refusing anything else: another magic or version, more
    /// calls than the layout holds, a flag other than 0 or 1, a value above [`MAX_VALUE`], a
    /// truncated call or bytes after the last one.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(3)? != MAGIC {
            return Err(r.error(0, "not a tally block (magic is not \"LKT\")"));
        }
        let version = r.take(1)?[0];
        if version != BLOCK_VERSION {
            return Err(r.error(3, format!("version {version}, expected {BLOCK_VERSION}")));
        }
        let rollup_id = r.u32()?;
        let slot = r.u64()?;
        let pre = TallyState {
            count: r.u64()?,
            balance: r.u128()?,
        };
        let n = r.u32()? as usize;
        if n > MAX_ENTRIES {
            return Err(r.error(r.at - 4, format!("{n} calls; at most {MAX_ENTRIES}")));
        }
        let mut calls = Vec::with_capacity(n);
        for _ in 0..n {
            let src = r.u32()?;
            let seq = r.u32()?;
            let caller = Address(r.take(20)?.try_into().expect("20 bytes"));
            let at = r.at;
            let value = r.u128()?;
            if value > MAX_VALUE {
                return Err(r.error(at, format!("value {value} is above 2^96 − 1")));
            }
            let committed = match r.take(1)?[0] {
                0 => false,
                1 => true,
                flag => return Err(r.error(r.at - 1, format!("committed flag {flag}"))),
            };
            let len = u16::from_be_bytes(r.take(2)?.try_into().expect("2 bytes")) as usize;
            let data = r.take(len)?.to_vec();
            calls.push(ServedCall {
                src,
                seq,
                caller,
                value,
                committed,
                data,
            });
        }
        if r.at != bytes.len() {
            return Err(r.error(
                r.at,
                format!("{} bytes after the last call", bytes.len() - r.at),
            ));
        }
        Ok(Self {
            rollup_id,
            slot,
            pre,
            calls,
        })
    }
}

/// Refuses a value above [`MAX_VALUE`].
pub(crate) fn check_value(value: u128) -> Result<()> {
    if value > MAX_VALUE {
        return Err(Error::Refused(format!(
            "value {value} is above the largest a call to the tally may carry (2^96 − 1)"
        )));
    }
    Ok(())
}

/// A value as the entry's 32-byte value field.
fn u128_field(value: u128) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[16..].copy_from_slice(&value.to_be_bytes());
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn error(&self, offset: usize, reason: impl Into<String>) -> Error {
        Error::MalformedBlock {
            offset,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.error(self.at, format!("truncated: {n} more bytes expected")));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn u128(&mut self) -> Result<u128> {
        Ok(u128::from_be_bytes(
            self.take(16)?.try_into().expect("16 bytes"),
        ))
    }
}
