//! The per-rollup public-input layout (version 1) and the gadget that exposes it.
//!
//! Every rollup proof has one instance column of [`NUM_INSTANCES`] cells:
//!
//! | index | name | meaning |
//! |---|---|---|
//! | 0 | `version` | [`LAYOUT_VERSION`] |
//! | 1 | `domain` | `chain_id + registry · 2^64` ([`Domain::to_field`]) |
//! | 2 | `slot` | L1 slot (64 bits) |
//! | 3 | `rollup_id` | the rollup (32 bits, never 0) |
//! | 4 | `pre_root` | state root before the block |
//! | 5 | `post_root` | state root after the block |
//! | 6 | `da_commitment` | commitment to the block data |
//! | 7 | `eth_delta` | net ETH into the rollup, signed: `d` or `p − |d|`, with `−2^127 ≤ d < 2^127` |
//! | 8 | `l1_digest` | digest of L1 interactions (0 until phase 2) |
//! | 9 | `num_assumed` | real entries in `A`, at most [`MAX_ENTRIES`] |
//! | 10 | `num_served` | real entries in `S`, at most [`MAX_ENTRIES`] |
//! | 11 … 11+M−1 | `A[0..M)` | hashes of the calls this rollup assumed, then zeros |
//! | 11+M … 11+2M−1 | `S[0..M)` | hashes of the calls this rollup served, then zeros |
//!
//! The gadget ([`PublicInputsChip`]) guarantees: padding is zero; counts are at most `M`;
//! every assumed entry has `src = rollup_id`, every served entry has `dst = rollup_id`; every
//! real entry has this layout's `domain` and `slot`.

use halo2_base::{
    gates::{GateInstructions, RangeChip, RangeInstructions},
    halo2_proofs::halo2curves::ff::PrimeField,
    poseidon::hasher::PoseidonHasher,
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};
use serde::{Deserialize, Serialize};

use crate::{
    entry::{part, pow2, AssignedEntry, Domain, Entry, EntryChip, EntryInstructions},
    poseidon, Error, Fr, Result,
};

/// Version of the layout; the first public input of every rollup proof.
pub const LAYOUT_VERSION: u64 = 1;
/// Capacity of each entry list (assumed and served).
pub const MAX_ENTRIES: usize = 16;
/// Number of public inputs of a rollup proof.
pub const NUM_INSTANCES: usize = index::ASSUMED + 2 * MAX_ENTRIES;
/// Bits of the signed ETH delta, sign included.
pub const ETH_DELTA_BITS: usize = 128;

/// Positions in the instance column.
pub mod index {
    /// Layout version.
    pub const VERSION: usize = 0;
    /// Deployment domain.
    pub const DOMAIN: usize = 1;
    /// L1 slot.
    pub const SLOT: usize = 2;
    /// Rollup id.
    pub const ROLLUP_ID: usize = 3;
    /// State root before.
    pub const PRE_ROOT: usize = 4;
    /// State root after.
    pub const POST_ROOT: usize = 5;
    /// Block data commitment.
    pub const DA_COMMITMENT: usize = 6;
    /// Signed ETH delta.
    pub const ETH_DELTA: usize = 7;
    /// L1-interaction digest.
    pub const L1_DIGEST: usize = 8;
    /// Number of assumed entries.
    pub const NUM_ASSUMED: usize = 9;
    /// Number of served entries.
    pub const NUM_SERVED: usize = 10;
    /// First assumed entry.
    pub const ASSUMED: usize = 11;
    /// First served entry.
    pub const SERVED: usize = ASSUMED + super::MAX_ENTRIES;
}

/// How a [`SlotHeader`]'s fields are held: natively ([`Native`]) or as cells of a rollup
/// circuit ([`Assigned`]).
pub trait HeaderValues {
    /// The deployment domain.
    type Domain: Copy + std::fmt::Debug;
    /// The L1 slot.
    type Slot: Copy + std::fmt::Debug;
    /// The rollup id.
    type RollupId: Copy + std::fmt::Debug;
    /// A state root, a commitment or a digest.
    type Field: Copy + std::fmt::Debug;
    /// The signed ETH delta.
    type EthDelta: Copy + std::fmt::Debug;
}

/// A header held natively, as rollups, the aggregator, L1 and native checks read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {}

impl HeaderValues for Native {
    type Domain = Domain;
    type Slot = u64;
    type RollupId = u32;
    type Field = Fr;
    type EthDelta = i128;
}

/// A header assigned in a rollup circuit, one cell per field (the ETH delta as
/// [`eth_delta_to_field`] encodes it).
#[derive(Debug, Clone, Copy)]
pub enum Assigned {}

impl HeaderValues for Assigned {
    type Domain = AssignedValue<Fr>;
    type Slot = AssignedValue<Fr>;
    type RollupId = AssignedValue<Fr>;
    type Field = AssignedValue<Fr>;
    type EthDelta = AssignedValue<Fr>;
}

/// The header of one rollup's block in one slot: instances 1 to 8 of the layout, the one
/// definition of these fields everywhere (sealed blocks, proving jobs, rollup circuits, the
/// aggregation's view of a proof).
///
/// `Da` is the DA commitment's type: a field like the others, or `()` in an
/// [`UnplacedHeader`], the header of a block whose data is not yet placed in the slot's blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotHeader<V: HeaderValues = Native, Da = <V as HeaderValues>::Field> {
    /// Deployment domain (`chain_id + registry · 2^64`).
    pub domain: V::Domain,
    /// L1 slot.
    pub slot: V::Slot,
    /// Rollup id (never 0).
    pub rollup_id: V::RollupId,
    /// State root before the block.
    pub pre_root: V::Field,
    /// State root after the block.
    pub post_root: V::Field,
    /// Commitment to the block data.
    pub da_commitment: Da,
    /// Net ETH into the rollup (negative: out of it).
    pub eth_delta: V::EthDelta,
    /// Digest of L1 interactions (0 until phase 2).
    pub l1_digest: V::Field,
}

/// A header as a rollup seals its block: everything but the DA commitment, which exists only
/// once the builder places the block's data in the slot's blob ([`SlotHeader::with_da`]).
pub type UnplacedHeader = SlotHeader<Native, ()>;

/// Header fields in the layout's order (instances [`index::DOMAIN`] to [`index::L1_DIGEST`]).
pub const HEADER_FIELDS: usize = index::L1_DIGEST - index::DOMAIN + 1;

impl<V: HeaderValues, Da> SlotHeader<V, Da> {
    /// The same header with `da_commitment` as its DA commitment: placed (`Fr`) or taken back
    /// out (`()`).
    pub fn with_da<D>(self, da_commitment: D) -> SlotHeader<V, D> {
        SlotHeader {
            domain: self.domain,
            slot: self.slot,
            rollup_id: self.rollup_id,
            pre_root: self.pre_root,
            post_root: self.post_root,
            da_commitment,
            eth_delta: self.eth_delta,
            l1_digest: self.l1_digest,
        }
    }
}

impl SlotHeader {
    /// The header's instances, in layout order.
    pub fn to_fields(&self) -> [Fr; HEADER_FIELDS] {
        [
            self.domain.to_field(),
            Fr::from(self.slot),
            Fr::from(u64::from(self.rollup_id)),
            self.pre_root,
            self.post_root,
            self.da_commitment,
            eth_delta_to_field(self.eth_delta),
            self.l1_digest,
        ]
    }

    /// Assigns every field as a witness cell (a rollup circuit whose header is given, not
    /// computed: the test rollup, the keygen of a circuit).
    pub fn assign(&self, ctx: &mut Context<Fr>) -> SlotHeader<Assigned> {
        let [domain, slot, rollup_id, pre_root, post_root, da_commitment, eth_delta, l1_digest] =
            self.to_fields().map(|field| ctx.load_witness(field));
        SlotHeader {
            domain,
            slot,
            rollup_id,
            pre_root,
            post_root,
            da_commitment,
            eth_delta,
            l1_digest,
        }
    }
}

impl SlotHeader<Assigned> {
    /// The header's cells, in layout order.
    pub fn cells(&self) -> [AssignedValue<Fr>; HEADER_FIELDS] {
        [
            self.domain,
            self.slot,
            self.rollup_id,
            self.pre_root,
            self.post_root,
            self.da_commitment,
            self.eth_delta,
            self.l1_digest,
        ]
    }
}

/// The public inputs of one rollup's block proof, natively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupPublicInputs {
    /// The block's header (a nested object: serde cannot flatten its `i128` delta).
    pub header: SlotHeader,
    /// Hashes of the entries this rollup assumed, in order.
    pub assumed: Vec<Fr>,
    /// Hashes of the entries this rollup served, in order.
    pub served: Vec<Fr>,
}

impl RollupPublicInputs {
    /// The instance column, in layout order.
    pub fn to_instances(&self) -> Result<Vec<Fr>> {
        check_len("assumed", self.assumed.len())?;
        check_len("served", self.served.len())?;
        let mut out = vec![Fr::zero(); NUM_INSTANCES];
        out[index::VERSION] = Fr::from(LAYOUT_VERSION);
        out[index::DOMAIN..=index::L1_DIGEST].copy_from_slice(&self.header.to_fields());
        out[index::NUM_ASSUMED] = Fr::from(self.assumed.len() as u64);
        out[index::NUM_SERVED] = Fr::from(self.served.len() as u64);
        out[index::ASSUMED..index::ASSUMED + self.assumed.len()].copy_from_slice(&self.assumed);
        out[index::SERVED..index::SERVED + self.served.len()].copy_from_slice(&self.served);
        Ok(out)
    }

    /// Parses an instance column, checking everything the layout promises.
    pub fn from_instances(instances: &[Fr]) -> Result<Self> {
        let bad = |msg: String| Error::MalformedInstances(msg);
        if instances.len() != NUM_INSTANCES {
            return Err(bad(format!(
                "{} instances, expected {NUM_INSTANCES}",
                instances.len()
            )));
        }
        let small = |i: usize, bits: u32, name: &str| -> Result<u64> {
            fe_to_u64(&instances[i])
                .filter(|v| bits == 64 || *v < (1u64 << bits))
                .ok_or_else(|| bad(format!("{name} (index {i}) does not fit {bits} bits")))
        };
        let version = small(index::VERSION, 64, "version")?;
        if version != LAYOUT_VERSION {
            return Err(bad(format!(
                "layout version {version}, expected {LAYOUT_VERSION}"
            )));
        }
        let domain = domain_from_field(&instances[index::DOMAIN])
            .ok_or_else(|| bad("domain does not fit 224 bits".into()))?;
        let rollup_id = small(index::ROLLUP_ID, 32, "rollup id")? as u32;
        if rollup_id == 0 {
            return Err(bad("rollup id 0 is L1, not a rollup".into()));
        }
        let eth_delta = eth_delta_from_field(&instances[index::ETH_DELTA])
            .ok_or_else(|| bad("eth delta is outside [-2^127, 2^127)".into()))?;
        let list = |count_at: usize, start: usize, name: &str| -> Result<Vec<Fr>> {
            let count = small(count_at, 64, name)? as usize;
            if count > MAX_ENTRIES {
                return Err(bad(format!("{name} = {count} exceeds {MAX_ENTRIES}")));
            }
            let all = &instances[start..start + MAX_ENTRIES];
            if let Some(i) = (count..MAX_ENTRIES).find(|&i| all[i] != Fr::zero()) {
                return Err(bad(format!("{name} = {count} but entry {i} is not zero")));
            }
            Ok(all[..count].to_vec())
        };
        Ok(Self {
            header: SlotHeader {
                domain,
                slot: small(index::SLOT, 64, "slot")?,
                rollup_id,
                pre_root: instances[index::PRE_ROOT],
                post_root: instances[index::POST_ROOT],
                da_commitment: instances[index::DA_COMMITMENT],
                eth_delta,
                l1_digest: instances[index::L1_DIGEST],
            },
            assumed: list(index::NUM_ASSUMED, index::ASSUMED, "num_assumed")?,
            served: list(index::NUM_SERVED, index::SERVED, "num_served")?,
        })
    }
}

fn check_len(side: &'static str, len: usize) -> Result<()> {
    if len > MAX_ENTRIES {
        return Err(Error::TooManyEntries {
            side,
            len,
            max: MAX_ENTRIES,
        });
    }
    Ok(())
}

/// A signed ETH delta as a field element: `d` for `d ≥ 0`, `p − |d|` for `d < 0`.
pub fn eth_delta_to_field(delta: i128) -> Fr {
    let magnitude = Fr::from_u128(delta.unsigned_abs());
    if delta < 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// The inverse of [`eth_delta_to_field`]; `None` outside `[−2^127, 2^127)`.
pub fn eth_delta_from_field(value: &Fr) -> Option<i128> {
    if let Some(v) = fe_to_u128(value) {
        return i128::try_from(v).ok();
    }
    let neg = fe_to_u128(&-*value)?;
    if neg <= 1u128 << 127 {
        Some((neg as i128).wrapping_neg())
    } else {
        None
    }
}

fn fe_to_u128(value: &Fr) -> Option<u128> {
    let repr = value.to_repr();
    let bytes: &[u8] = repr.as_ref();
    if bytes[16..].iter().any(|&b| b != 0) {
        return None;
    }
    Some(u128::from_le_bytes(
        bytes[..16].try_into().expect("16 bytes"),
    ))
}

fn fe_to_u64(value: &Fr) -> Option<u64> {
    fe_to_u128(value).and_then(|v| u64::try_from(v).ok())
}

fn domain_from_field(value: &Fr) -> Option<Domain> {
    let repr = value.to_repr();
    let bytes: &[u8] = repr.as_ref(); // little-endian
    if bytes[28..].iter().any(|&b| b != 0) {
        return None;
    }
    let chain_id = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let mut registry = [0u8; 20];
    for (i, b) in bytes[8..28].iter().enumerate() {
        registry[19 - i] = *b;
    }
    Some(Domain {
        chain_id,
        registry: crate::entry::Address(registry),
    })
}

/// An entry list as a rollup circuit holds it: exactly [`MAX_ENTRIES`] assigned entries
/// (padding included) and the claimed count.
#[derive(Debug, Clone)]
pub struct AssignedEntryList {
    /// How many of `entries` are real (the rest is padding).
    pub count: AssignedValue<Fr>,
    /// The entries, padding included.
    pub entries: Vec<AssignedEntry>,
}

/// The gadget every rollup circuit calls to expose its public inputs (see the module docs for
/// what it guarantees).
#[derive(Debug, Clone, Copy)]
pub struct PublicInputsChip<'a> {
    range: &'a RangeChip<Fr>,
}

impl<'a> PublicInputsChip<'a> {
    /// A chip over `range`.
    pub fn new(range: &'a RangeChip<Fr>) -> Self {
        Self { range }
    }

    /// Constrains everything the layout promises and returns the [`NUM_INSTANCES`] cells to
    /// push, in order, into the circuit's instance column.
    pub fn expose(
        &self,
        ctx: &mut Context<Fr>,
        hasher: &PoseidonHasher<Fr, { poseidon::T }, { poseidon::RATE }>,
        header: &SlotHeader<Assigned>,
        assumed: &AssignedEntryList,
        served: &AssignedEntryList,
    ) -> Vec<AssignedValue<Fr>> {
        let gate = self.range.gate();
        self.range.range_check(ctx, header.slot, 64);
        self.range.range_check(ctx, header.rollup_id, 32);
        let id_is_zero = gate.is_zero(ctx, header.rollup_id);
        gate.assert_is_const(ctx, &id_is_zero, &Fr::zero());
        // −2^127 ≤ d < 2^127  ⇔  d + 2^127 ∈ [0, 2^128).
        let shifted = gate.add(
            ctx,
            header.eth_delta,
            Constant(pow2(ETH_DELTA_BITS as u32 - 1)),
        );
        self.range.range_check(ctx, shifted, ETH_DELTA_BITS);

        let mut out = Vec::with_capacity(NUM_INSTANCES);
        out.push(ctx.load_constant(Fr::from(LAYOUT_VERSION)));
        out.extend(header.cells());
        out.extend([assumed.count, served.count]);
        out.extend(self.expose_list(ctx, hasher, header, assumed, part::SRC));
        out.extend(self.expose_list(ctx, hasher, header, served, part::DST));
        debug_assert_eq!(out.len(), NUM_INSTANCES);
        out
    }

    /// Hashes of one list, zero past the count; `own_part` is the part that must equal the
    /// rollup id (`src` for assumed, `dst` for served).
    fn expose_list(
        &self,
        ctx: &mut Context<Fr>,
        hasher: &PoseidonHasher<Fr, { poseidon::T }, { poseidon::RATE }>,
        header: &SlotHeader<Assigned>,
        list: &AssignedEntryList,
        own_part: usize,
    ) -> Vec<AssignedValue<Fr>> {
        assert_eq!(
            list.entries.len(),
            MAX_ENTRIES,
            "entry lists are padded to MAX_ENTRIES"
        );
        let gate = self.range.gate();
        let entry_chip = EntryChip::new(self.range);
        let is_real = real_flags(self.range, ctx, list.count);
        list.entries
            .iter()
            .zip(is_real)
            .map(|(entry, real)| {
                let words = entry_chip.pack(ctx, entry);
                // For real entries: w0 = domain, slot = header slot, own part = rollup id.
                for (value, expected) in [
                    (words[0], header.domain),
                    (entry.slot(), header.slot),
                    (entry.parts[own_part], header.rollup_id),
                ] {
                    let diff = gate.sub(ctx, value, expected);
                    let masked = gate.mul(ctx, diff, real);
                    gate.assert_is_const(ctx, &masked, &Fr::zero());
                }
                let hash = entry_chip.hash_words(ctx, hasher, &words);
                gate.mul(ctx, hash, real)
            })
            .collect()
    }
}

/// `[i < count for i in 0..MAX_ENTRIES]` as assigned bits, constraining `count ≤ MAX_ENTRIES`.
pub fn real_flags(
    range: &RangeChip<Fr>,
    ctx: &mut Context<Fr>,
    count: AssignedValue<Fr>,
) -> Vec<AssignedValue<Fr>> {
    let gate = range.gate();
    // One-hot indicator of count over 0..=MAX_ENTRIES; exactly one must be set.
    let indicator: Vec<_> = (0..=MAX_ENTRIES)
        .map(|i| gate.is_equal(ctx, count, Constant(Fr::from(i as u64))))
        .collect();
    let total = gate.sum(ctx, indicator.iter().copied());
    gate.assert_is_const(ctx, &total, &Fr::one());
    // real_i = 1 − Σ_{j ≤ i} indicator_j.
    let mut seen = ctx.load_zero();
    indicator[..MAX_ENTRIES]
        .iter()
        .map(|ind| {
            seen = gate.add(ctx, seen, *ind);
            gate.sub(ctx, Constant(Fr::one()), Existing(seen))
        })
        .collect()
}

/// The inputs a rollup circuit feeds the gadget, natively; used by the test rollup and by tests
/// that need to lie about counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicInputsWitness {
    /// The block's header (a nested object: serde cannot flatten its `i128` delta).
    pub header: SlotHeader,
    /// Assumed entries (at most [`MAX_ENTRIES`]).
    pub assumed: Vec<Entry>,
    /// Served entries (at most [`MAX_ENTRIES`]).
    pub served: Vec<Entry>,
    /// Count claimed for `assumed`; `None` uses the true length.
    pub assumed_count: Option<u64>,
    /// Count claimed for `served`; `None` uses the true length.
    pub served_count: Option<u64>,
}

impl PublicInputsWitness {
    /// The public inputs an honest circuit exposes for this witness.
    pub fn public_inputs(&self) -> RollupPublicInputs {
        RollupPublicInputs {
            header: self.header,
            assumed: self.assumed.iter().map(Entry::hash).collect(),
            served: self.served.iter().map(Entry::hash).collect(),
        }
    }

    /// Checks natively what the gadget enforces, so a builder learns early and clearly why a
    /// block would not prove.
    pub fn validate(&self) -> Result<()> {
        let header = &self.header;
        check_len("assumed", self.assumed.len())?;
        check_len("served", self.served.len())?;
        for (side, list) in [("assumed", &self.assumed), ("served", &self.served)] {
            for (index, e) in list.iter().enumerate() {
                let own = if side == "assumed" { e.src } else { e.dst };
                let reason = if e.domain != header.domain {
                    Some(format!("domain {:?} is not {:?}", e.domain, header.domain))
                } else if e.slot != header.slot {
                    Some(format!("slot {} is not {}", e.slot, header.slot))
                } else if own != header.rollup_id {
                    let which = if side == "assumed" { "src" } else { "dst" };
                    Some(format!(
                        "{which} {own} is not this rollup ({})",
                        header.rollup_id
                    ))
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Err(Error::ForeignEntry {
                        side,
                        index,
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    /// Assigns everything and runs the gadget; returns the cells to expose.
    pub fn assign_and_expose(
        &self,
        range: &RangeChip<Fr>,
        ctx: &mut Context<Fr>,
    ) -> Vec<AssignedValue<Fr>> {
        let hasher = poseidon::hasher(ctx, range.gate());
        let header = self.header.assign(ctx);
        let assumed = assign_list(range, ctx, &self.assumed, self.assumed_count);
        let served = assign_list(range, ctx, &self.served, self.served_count);
        PublicInputsChip::new(range).expose(ctx, &hasher, &header, &assumed, &served)
    }
}

fn assign_list(
    range: &RangeChip<Fr>,
    ctx: &mut Context<Fr>,
    entries: &[Entry],
    count: Option<u64>,
) -> AssignedEntryList {
    let chip = EntryChip::new(range);
    let count = ctx.load_witness(Fr::from(count.unwrap_or(entries.len() as u64)));
    let mut assigned: Vec<_> = entries
        .iter()
        .take(MAX_ENTRIES)
        .map(|e| chip.load_entry(ctx, e))
        .collect();
    while assigned.len() < MAX_ENTRIES {
        assigned.push(chip.load_padding(ctx));
    }
    AssignedEntryList {
        count,
        entries: assigned,
    }
}
