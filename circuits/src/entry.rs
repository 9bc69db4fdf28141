//! Cross-rollup call entries: what both sides of a call record, packed into field elements and
//! hashed with Poseidon, natively and in-circuit.
//!
//! Every cross-rollup call yields exactly one entry on the caller's side (its *assumed* list:
//! the call it made and the result it used) and the same entry on the callee's side (its
//! *served* list: the call it received and the result it produced). Both sides hash exactly the
//! same fields; the role decides the list, not the hash (DESIGN decision 3).
//!
//! # Encoding (version 1)
//! The entry is split into 17 *parts*, each range-checked to its width, then packed into 10
//! field elements (*words*); no word exceeds 224 bits, so packing is injective over BN254's
//! 254-bit scalar field. `hash = Poseidon(ENTRY_TAG, w0, …, w9)`.
//!
//! | word | contents (low bits first) | bits |
//! |---|---|---|
//! | w0 | chain id (64) · registry address (160) | 224 |
//! | w1 | slot (64) · src rollup (32) · dst rollup (32) · seq (32) · kind (8) · success (1) · committed (1) | 170 |
//! | w2 | caller address | 160 |
//! | w3 | target address | 160 |
//! | w4, w5 | value, high and low 128 bits | 128 each |
//! | w6, w7 | calldata hash (keccak-256), high and low 128 bits | 128 each |
//! | w8, w9 | return-data hash (keccak-256), high and low 128 bits | 128 each |
//!
//! Addresses and 256-bit values are read big-endian. Rollup id 0 is L1. See `docs/entries.md`.

use halo2_base::{
    gates::{GateInstructions, RangeChip, RangeInstructions},
    halo2_proofs::halo2curves::ff::{Field, PrimeField},
    poseidon::hasher::PoseidonHasher,
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};
use serde::{Deserialize, Serialize};

use crate::{poseidon, Fr};

/// Domain tag hashed in front of every entry ("lockstep.entry.1" as a 128-bit integer).
pub fn entry_tag() -> Fr {
    Fr::from_u128(u128::from_be_bytes(*b"lockstep.entry.1"))
}

/// Number of parts an entry is split into before packing.
pub const ENTRY_PARTS: usize = 17;
/// Number of field elements (words) an entry packs into.
pub const ENTRY_WORDS: usize = 10;

/// Indices of the parts of an entry.
pub mod part {
    /// L1 chain id.
    pub const CHAIN_ID: usize = 0;
    /// Registry contract address.
    pub const REGISTRY: usize = 1;
    /// L1 slot.
    pub const SLOT: usize = 2;
    /// Calling rollup.
    pub const SRC: usize = 3;
    /// Called rollup.
    pub const DST: usize = 4;
    /// Call sequence number, assigned by the caller.
    pub const SEQ: usize = 5;
    /// [`super::CallKind`].
    pub const KIND: usize = 6;
    /// Whether the call succeeded.
    pub const SUCCESS: usize = 7;
    /// Whether the caller's enclosing frame committed.
    pub const COMMITTED: usize = 8;
    /// Calling contract.
    pub const CALLER: usize = 9;
    /// Called contract.
    pub const TARGET: usize = 10;
    /// ETH value, high 128 bits.
    pub const VALUE_HI: usize = 11;
    /// ETH value, low 128 bits.
    pub const VALUE_LO: usize = 12;
    /// Calldata hash, high 128 bits.
    pub const CALLDATA_HI: usize = 13;
    /// Calldata hash, low 128 bits.
    pub const CALLDATA_LO: usize = 14;
    /// Return-data hash, high 128 bits.
    pub const RETURN_HI: usize = 15;
    /// Return-data hash, low 128 bits.
    pub const RETURN_LO: usize = 16;
}

/// Width in bits of each part, by index.
pub const PART_BITS: [usize; ENTRY_PARTS] = [
    64, 160, 64, 32, 32, 32, 8, 1, 1, 160, 160, 128, 128, 128, 128, 128, 128,
];

/// How words are packed from parts: `word[w] = Σ part[i] · 2^shift` over `PACKING[w]`.
pub const PACKING: [&[(usize, u32)]; ENTRY_WORDS] = [
    &[(part::CHAIN_ID, 0), (part::REGISTRY, 64)],
    &[
        (part::SLOT, 0),
        (part::SRC, 64),
        (part::DST, 96),
        (part::SEQ, 128),
        (part::KIND, 160),
        (part::SUCCESS, 168),
        (part::COMMITTED, 169),
    ],
    &[(part::CALLER, 0)],
    &[(part::TARGET, 0)],
    &[(part::VALUE_HI, 0)],
    &[(part::VALUE_LO, 0)],
    &[(part::CALLDATA_HI, 0)],
    &[(part::CALLDATA_LO, 0)],
    &[(part::RETURN_HI, 0)],
    &[(part::RETURN_LO, 0)],
];

/// The 32-byte field an entry carries for a call's data or its return (or revert) data
/// (`calldata_hash`, `return_hash`).
///
/// Data of at most 32 bytes is carried as itself, zero-padded on the left: it compares as a
/// big-endian number, so `[0x00, 0x05]` and `[0x05]` are the same datum (compact ABIs are
/// fixed-width, and a circuit without Keccak reads the data directly).
/// Longer data (EVM ABI) is carried as its keccak-256: a digest equal to padded short data would
/// need a Keccak preimage with leading zero bytes.
pub fn data_field(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if data.len() <= 32 {
        out[32 - data.len()..].copy_from_slice(data);
    } else {
        use sha3::Digest;
        out.copy_from_slice(&sha3::Keccak256::digest(data));
    }
    out
}

/// A 20-byte account address. In JSON and TOML it is `0x` and 40 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 20]);

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl std::str::FromStr for Address {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(digits).map_err(|e| format!("address {s:?}: {e}"))?;
        let bytes: [u8; 20] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("address {s:?}: {} bytes, not 20", b.len()))?;
        Ok(Self(bytes))
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 20]>::deserialize(deserializer).map(Self)
        }
    }
}

/// What binds an entry to one deployment: the L1 chain and the registry contract on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Domain {
    /// L1 chain id.
    pub chain_id: u64,
    /// Address of the rollup registry on that chain.
    pub registry: Address,
}

impl Domain {
    /// The domain as one field element, `chain_id + registry · 2^64` (word w0 of an entry and
    /// the `domain` public input).
    pub fn to_field(&self) -> Fr {
        fe_from_be(&self.registry.0) * pow2(64) + Fr::from(self.chain_id)
    }
}

/// Kind of a cross-rollup interaction. Zero is never a valid kind, so an all-zero entry is
/// never a real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum CallKind {
    /// A call that may carry value and change state.
    Call = 1,
    /// A call that must not change state.
    StaticCall = 2,
}

impl TryFrom<u8> for CallKind {
    type Error = crate::Error;

    fn try_from(value: u8) -> crate::Result<Self> {
        match value {
            1 => Ok(Self::Call),
            2 => Ok(Self::StaticCall),
            _ => Err(crate::Error::OutOfRange {
                what: "call kind",
                value: value.to_string(),
                expected: "1 (call) or 2 (static call)",
            }),
        }
    }
}

/// A cross-rollup call, as both the caller (assumed) and the callee (served) record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// Deployment the call belongs to.
    pub domain: Domain,
    /// L1 slot the call was executed in.
    pub slot: u64,
    /// Calling rollup (0 = L1).
    pub src: u32,
    /// Called rollup (0 = L1).
    pub dst: u32,
    /// Sequence number of the call among the caller's calls in the slot.
    pub seq: u32,
    /// Kind of call.
    pub kind: CallKind,
    /// Whether the callee returned normally (false: it reverted).
    pub success: bool,
    /// Whether the caller's enclosing frame committed (false: its changes were discarded).
    pub committed: bool,
    /// Calling contract on `src`.
    pub caller: Address,
    /// Called contract on `dst`.
    pub target: Address,
    /// ETH value carried, big-endian 256 bits.
    pub value: [u8; 32],
    /// The calldata's data field ([`data_field`]: short data itself, long data its keccak-256).
    pub calldata_hash: [u8; 32],
    /// The return (or revert) data's data field ([`data_field`]).
    pub return_hash: [u8; 32],
}

impl Entry {
    /// The 17 parts, in [`part`] order.
    pub fn parts(&self) -> [Fr; ENTRY_PARTS] {
        let (value_hi, value_lo) = split_be(&self.value);
        let (calldata_hi, calldata_lo) = split_be(&self.calldata_hash);
        let (return_hi, return_lo) = split_be(&self.return_hash);
        [
            Fr::from(self.domain.chain_id),
            fe_from_be(&self.domain.registry.0),
            Fr::from(self.slot),
            Fr::from(u64::from(self.src)),
            Fr::from(u64::from(self.dst)),
            Fr::from(u64::from(self.seq)),
            Fr::from(self.kind as u64),
            Fr::from(u64::from(self.success)),
            Fr::from(u64::from(self.committed)),
            fe_from_be(&self.caller.0),
            fe_from_be(&self.target.0),
            value_hi,
            value_lo,
            calldata_hi,
            calldata_lo,
            return_hi,
            return_lo,
        ]
    }

    /// The 10 packed words.
    pub fn words(&self) -> [Fr; ENTRY_WORDS] {
        pack_native(&self.parts())
    }

    /// `Poseidon(ENTRY_TAG, w0, …, w9)`: the value that goes into the assumed or served list.
    pub fn hash(&self) -> Fr {
        let mut inputs = Vec::with_capacity(ENTRY_WORDS + 1);
        inputs.push(entry_tag());
        inputs.extend(self.words());
        poseidon::hash(&inputs)
    }
}

/// Packs parts into words natively, by [`PACKING`].
pub fn pack_native(parts: &[Fr; ENTRY_PARTS]) -> [Fr; ENTRY_WORDS] {
    PACKING.map(|layout| {
        layout.iter().fold(Fr::zero(), |acc, &(index, shift)| {
            acc + parts[index] * pow2(shift)
        })
    })
}

/// An entry whose parts are assigned in a circuit and range-checked.
#[derive(Debug, Clone, Copy)]
pub struct AssignedEntry {
    /// The parts, in [`part`] order.
    pub parts: [AssignedValue<Fr>; ENTRY_PARTS],
}

impl AssignedEntry {
    /// Calling rollup.
    pub fn src(&self) -> AssignedValue<Fr> {
        self.parts[part::SRC]
    }

    /// Called rollup.
    pub fn dst(&self) -> AssignedValue<Fr> {
        self.parts[part::DST]
    }

    /// Slot.
    pub fn slot(&self) -> AssignedValue<Fr> {
        self.parts[part::SLOT]
    }
}

/// In-circuit entry operations.
pub trait EntryInstructions {
    /// Assigns `entry`'s parts and range-checks each to its width ([`PART_BITS`]).
    fn load_entry(&self, ctx: &mut Context<Fr>, entry: &Entry) -> AssignedEntry;

    /// Assigns the parts of an all-zero (padding) entry, range-checked like any other.
    fn load_padding(&self, ctx: &mut Context<Fr>) -> AssignedEntry;

    /// Packs the parts into words by [`PACKING`].
    fn pack(
        &self,
        ctx: &mut Context<Fr>,
        entry: &AssignedEntry,
    ) -> [AssignedValue<Fr>; ENTRY_WORDS];

    /// `Poseidon(ENTRY_TAG, w0, …, w9)` over already packed words.
    fn hash_words(
        &self,
        ctx: &mut Context<Fr>,
        hasher: &PoseidonHasher<Fr, { poseidon::T }, { poseidon::RATE }>,
        words: &[AssignedValue<Fr>; ENTRY_WORDS],
    ) -> AssignedValue<Fr>;

    /// `Poseidon(ENTRY_TAG, w0, …, w9)` in-circuit; equals [`Entry::hash`].
    fn hash(
        &self,
        ctx: &mut Context<Fr>,
        hasher: &PoseidonHasher<Fr, { poseidon::T }, { poseidon::RATE }>,
        entry: &AssignedEntry,
    ) -> AssignedValue<Fr>;
}

/// [`EntryInstructions`] over a [`RangeChip`].
#[derive(Debug, Clone, Copy)]
pub struct EntryChip<'a> {
    range: &'a RangeChip<Fr>,
}

impl<'a> EntryChip<'a> {
    /// A chip using `range` for range checks (its lookup bits must be at most 80).
    pub fn new(range: &'a RangeChip<Fr>) -> Self {
        Self { range }
    }

    fn assign_checked(&self, ctx: &mut Context<Fr>, parts: [Fr; ENTRY_PARTS]) -> AssignedEntry {
        let parts = parts.map(|value| ctx.load_witness(value));
        for (value, bits) in parts.iter().zip(PART_BITS) {
            if bits == 1 {
                self.range.gate().assert_bit(ctx, *value);
            } else {
                self.range.range_check(ctx, *value, bits);
            }
        }
        AssignedEntry { parts }
    }
}

impl EntryInstructions for EntryChip<'_> {
    fn load_entry(&self, ctx: &mut Context<Fr>, entry: &Entry) -> AssignedEntry {
        self.assign_checked(ctx, entry.parts())
    }

    fn load_padding(&self, ctx: &mut Context<Fr>) -> AssignedEntry {
        self.assign_checked(ctx, [Fr::zero(); ENTRY_PARTS])
    }

    fn pack(
        &self,
        ctx: &mut Context<Fr>,
        entry: &AssignedEntry,
    ) -> [AssignedValue<Fr>; ENTRY_WORDS] {
        let gate = self.range.gate();
        PACKING.map(|layout| {
            if let [(index, 0)] = layout {
                return entry.parts[*index];
            }
            let values = layout
                .iter()
                .map(|&(index, _)| Existing(entry.parts[index]));
            let coeffs = layout.iter().map(|&(_, shift)| Constant(pow2(shift)));
            gate.inner_product(ctx, values, coeffs)
        })
    }

    fn hash(
        &self,
        ctx: &mut Context<Fr>,
        hasher: &PoseidonHasher<Fr, { poseidon::T }, { poseidon::RATE }>,
        entry: &AssignedEntry,
    ) -> AssignedValue<Fr> {
        let words = self.pack(ctx, entry);
        self.hash_words(ctx, hasher, &words)
    }

    fn hash_words(
        &self,
        ctx: &mut Context<Fr>,
        hasher: &PoseidonHasher<Fr, { poseidon::T }, { poseidon::RATE }>,
        words: &[AssignedValue<Fr>; ENTRY_WORDS],
    ) -> AssignedValue<Fr> {
        let mut inputs = Vec::with_capacity(ENTRY_WORDS + 1);
        inputs.push(ctx.load_constant(entry_tag()));
        inputs.extend(words);
        poseidon::hash_assigned(hasher, ctx, self.range.gate(), &inputs)
    }
}

/// `2^n` in the field.
pub fn pow2(n: u32) -> Fr {
    Fr::from(2).pow_vartime([u64::from(n)])
}

/// A big-endian byte string (at most 31 bytes) as a field element.
pub fn fe_from_be(bytes: &[u8]) -> Fr {
    debug_assert!(bytes.len() <= 31, "would not fit the field");
    let base = Fr::from(256);
    bytes
        .iter()
        .fold(Fr::zero(), |acc, &b| acc * base + Fr::from(u64::from(b)))
}

/// Splits 32 big-endian bytes into (high 128 bits, low 128 bits).
pub(crate) fn split_be(bytes: &[u8; 32]) -> (Fr, Fr) {
    let hi = u128::from_be_bytes(bytes[..16].try_into().expect("16 bytes"));
    let lo = u128::from_be_bytes(bytes[16..].try_into().expect("16 bytes"));
    (Fr::from_u128(hi), Fr::from_u128(lo))
}
