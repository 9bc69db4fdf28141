//! The reference rollup's STF circuit: the step machine's rows as constraints over the memory
//! check (`docs/reference-rollup.md`, "Status"; the native twin is [`crate::machine`]).
//!
//! # What it proves
//! From the pre root, the block's tape (its transactions, the calls it served and the results
//! of the calls it made, as field elements) executes, row by row, to the post root, with the
//! ETH delta and both entry lists the rows compute. The public inputs are the common layout
//! ([`lockstep_circuits::layout`], through [`PublicInputsChip`]): the entries are read out of scratch at the
//! end (see "Entries"), the L1 digest is 0, and the domain, slot and DA commitment are inputs.
//!
//! # How
//! - **Registers are computed, never witnessed.** Row 0 starts from all zeros; each row's
//!   registers after are a function of its registers before, the tape step at the tape
//!   register and the values its ops read. So the prover chooses only the ops' values read.
//! - **The kind is computed too**: from `next`, the fetched tape tag, whether the running
//!   frame waits for a call's result, and (ending a frame) whether a committed flag or a
//!   journal entry is left to handle. Exactly one kind must apply; a row where none does
//!   cannot be proven.
//! - **Ops.** Every row has [`OPS_PER_ROW`] op slots. A kind fixes each slot's space, key and
//!   written value as a function of what it read; an unused slot reads scratch address 0 and
//!   leaves it. All the ops, in order, go through [`MemoryChip`] with the state keys opened at
//!   the pre root; the chip returns the post root.
//! - **State keys** are derived once per distinct key, in the memory check's key table
//!   ([`MemoryChip::with_key_derivation`]), never in a row. A row computes a key's pre-image
//!   `(space, address, slot)` and takes the key itself as a witness; each state op's tuple
//!   carries the pre-image next to the key, so the memory check holds the pair to the key row,
//!   where `key = compress_tagged(STATE_TAG, space·2^160 + address, slot)`. A row that writes a
//!   key into a journal record also accesses that key under the same (or a stronger) flag, so
//!   no unbound key reaches scratch. An undo finds only the key in its record: its pre-image
//!   is a free witness, held to the key row's by the same check.
//! - **The tape is a read-only table** ([`ReadOnlyTable`]): a row reads the step at its tape
//!   register in a constant number of cells, whatever the tape's length; the table's multiset
//!   equality, in the second phase, holds each read to the loaded step. One empty step follows
//!   the last, for the register of a block whose tape is full.
//! - **Packed scratch records** (the stack of suspended frames, the journal, both entry lists;
//!   layout in [`scratch`]) are unpacked with range checks, so a record has one reading.
//!
//! # Entries
//! Entry records live in the lowest scratch regions ([`scratch::ASSUMED`], then
//! [`scratch::SERVED`]), and every row of the block's last, padding row reads scratch address 0,
//! so the scratch table (ordered by address) starts with address 0, then the `5·n_a` cells of
//! the assumed entries, then the `4·n_s` of the served ones, `n_a` and `n_s` being the final
//! entry counts. Each real entry's cells are read at those positions of the table, their
//! addresses checked; the table's last values are the cells' final values once the memory
//! check holds.
//!
//! # Scope of this version
//! Every kind of the machine: `Tx`, `Serve`, `Return`, `Pad`, `Move`, `Code`, `App` (counter
//! and swap), `Tokens`, `Call` (local and remote), `Resume`, `Mark`, `Undo` and `Pop`. The tape
//! is a private input: binding it to the block's bytes in the blob needs the blob's polynomial
//! evaluated in-circuit (`docs/reference-rollup.md`, "Status").

use std::{cell::RefCell, collections::HashMap};

use halo2_base::{
    gates::{
        circuit::{BaseCircuitParams, CircuitBuilderStage},
        flex_gate::MultiPhaseThreadBreakPoints,
        GateInstructions, RangeChip, RangeInstructions,
    },
    halo2_proofs::{
        halo2curves::{bn256::Bn256, ff::PrimeField},
        poly::{commitment::Params, kzg::commitment::ParamsKZG},
    },
    utils::{biguint_to_fe, fe_to_biguint},
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};
use snark_verifier_sdk::Snark;

use crate::{
    abi::{self, AppKind, Method},
    spec::MAX_CALL_DEPTH,
    state::{StateKey, STATE_TAG},
};

use lockstep_circuits::{
    entry::{part, pow2, AssignedEntry, CallKind, Domain, Entry, ENTRY_PARTS},
    keys::{CircuitKey, KeyStore},
    layout::{
        real_flags, Assigned, AssignedEntryList, PublicInputsChip, RollupPublicInputs, SlotHeader,
        MAX_ENTRIES,
    },
    memory::{
        Access, AssignedKeyOpening, AssignedOp, AssignedScratchCell, MemoryCapacity, MemoryChip,
        MemoryWitness, Space, KEY_PREIMAGE,
    },
    poseidon,
    shape::{self, RollupCircuit},
    smt::SparseMerkleTree,
    table::ReadOnlyTable,
    Error, Fr, Result,
};

/// Op slots of every row.
pub const OPS_PER_ROW: usize = 7;
/// Fields of a tape step.
pub const TAPE_FIELDS: usize = 5;
/// Bit widths of the tape fields.
pub const TAPE_FIELD_BITS: [usize; TAPE_FIELDS] = [160, 65, 160, 96, 152];
/// Tape tag of a transaction (0 is past the tape's end).
pub const TAG_TX: u8 = 1;
/// Tape tag of a served call.
pub const TAG_SERVE: u8 = 2;
/// Tape tag of a call's result.
pub const TAG_RETURN: u8 = 3;

/// Scratch memory: regions, and the cells of each record. An address is
/// `region · 2^40 + index · 2^8 + cell`.
pub mod scratch {
    /// Assumed entries: 5 cells. (The entry regions come first: the circuit finds them at
    /// the start of the scratch table.)
    pub const ASSUMED: u64 = 1;
    /// Served entries: 4 cells.
    pub const SERVED: u64 = 2;
    /// Suspended frames, by depth (from 1): 4 cells.
    pub const STACK: u64 = 3;
    /// The journal: a state key and its previous value.
    pub const JOURNAL: u64 = 4;
    /// Cells of an assumed entry.
    pub const ASSUMED_CELLS: usize = 5;
    /// Cells of a served entry.
    pub const SERVED_CELLS: usize = 4;

    /// A suspended frame's cells: `caller ‖ remote:1 ‖ committed:1 ‖ waiting:1 ‖ journal:32 ‖
    /// assumed:16 ‖ entry:16 ‖ call:16`; the target; `value:96 ‖ calldata:152`; the ETH
    /// delta checkpoint.
    pub const FRAME_CELLS: usize = 4;
    /// Bit widths of a frame's first cell.
    pub const FRAME_HEAD: [usize; 8] = [160, 1, 1, 1, 32, 16, 16, 16];

    /// Assumed entry cells: `caller ‖ dst:32`.
    pub const ASSUMED_CALLER: u64 = 0;
    /// The target.
    pub const ASSUMED_TARGET: u64 = 1;
    /// `value:96 ‖ calldata:152`.
    pub const ASSUMED_CALL: u64 = 2;
    /// The committed flag.
    pub const ASSUMED_COMMITTED: u64 = 3;
    /// `success:1 ‖ word:128`.
    pub const ASSUMED_RESULT: u64 = 4;

    /// Served entry cells: `caller ‖ src:32 ‖ seq:32`.
    pub const SERVED_CALLER: u64 = 0;
    /// `target ‖ committed:1`.
    pub const SERVED_TARGET: u64 = 1;
    /// `value:96 ‖ calldata:152`.
    pub const SERVED_CALL: u64 = 2;
    /// `success:1 ‖ word:128`.
    pub const SERVED_RESULT: u64 = 3;

    /// The address of `cell` of record `index` in `region`.
    pub const fn address(region: u64, index: u64, cell: u64) -> u64 {
        (region << 40) | (index << 8) | cell
    }
}

/// Scratch region of the journal.
pub const JOURNAL_REGION: u64 = scratch::JOURNAL;

/// The machine's registers, by name: a row reads them before and writes them after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reg {
    /// What the next row does ([`Next`](crate::spec::Next)).
    Next,
    /// The next tape step.
    Tape,
    /// Frames open.
    Depth,
    /// Journal entries written.
    Journal,
    /// The block's ETH delta so far.
    Eth,
    /// Assumed entries made.
    Assumed,
    /// Served entries made.
    Served,
    /// The running frame: whether a served call opened it.
    FrameRemote,
    /// The running frame: its caller.
    FrameCaller,
    /// The running frame: its target.
    FrameTarget,
    /// The running frame: the value it carries.
    FrameValue,
    /// The running frame: its calldata.
    FrameData,
    /// The running frame: whether its callers committed.
    FrameCommitted,
    /// The running frame: the journal when it opened.
    FrameJournal,
    /// The running frame: the ETH delta when it opened.
    FrameEth,
    /// The running frame: the assumed entries when it opened.
    FrameAssumed,
    /// The running frame: the served entry it answers.
    FrameEntry,
    /// The running frame: the assumed call it waits on.
    FrameCall,
    /// The running frame: whether it waits on a call to another rollup.
    FrameWaiting,
    /// The last frame's outcome: success.
    OutSuccess,
    /// The last frame's outcome: its word.
    OutWord,
    /// The code leaf a code row read.
    App,
    /// The next assumed entry a failed frame marks.
    Cursor,
}

impl Reg {
    /// How many there are.
    const COUNT: usize = Self::Cursor as usize + 1;
    /// The registers a frame occupies, in the order of a popped frame's values.
    const FRAME: [Self; 12] = [
        Self::FrameRemote,
        Self::FrameCaller,
        Self::FrameTarget,
        Self::FrameValue,
        Self::FrameData,
        Self::FrameCommitted,
        Self::FrameJournal,
        Self::FrameEth,
        Self::FrameAssumed,
        Self::FrameEntry,
        Self::FrameCall,
        Self::FrameWaiting,
    ];
}

/// One row's registers, a cell each, indexed by [`Reg`].
#[derive(Debug, Clone, Copy)]
struct Registers([AssignedValue<Fr>; Reg::COUNT]);

impl std::ops::Index<Reg> for Registers {
    type Output = AssignedValue<Fr>;

    fn index(&self, r: Reg) -> &AssignedValue<Fr> {
        &self.0[r as usize]
    }
}

impl std::ops::IndexMut<Reg> for Registers {
    fn index_mut(&mut self, r: Reg) -> &mut AssignedValue<Fr> {
        &mut self.0[r as usize]
    }
}

/// Values of the `next` register: the machine's [`Next`](crate::spec::Next).
mod next {
    use crate::spec::Next;

    pub(super) const FETCH: u64 = Next::Fetch as u64;
    pub(super) const MOVE: u64 = Next::Move as u64;
    pub(super) const CODE: u64 = Next::Code as u64;
    pub(super) const APP: u64 = Next::App as u64;
    pub(super) const TOKENS: u64 = Next::Tokens as u64;
    pub(super) const CALL: u64 = Next::Call as u64;
    pub(super) const RESUME: u64 = Next::Resume as u64;
    pub(super) const END: u64 = Next::End as u64;
}

// The executor's and the machine's constants, as the circuit's field constants: defined once,
// in `abi` and `state`.
const SPACE_ACCOUNT: u64 = StateKey::ACCOUNT_SPACE;
const SPACE_STORAGE: u64 = StateKey::STORAGE_SPACE;
const SPACE_CODE: u64 = StateKey::CODE_SPACE;
const APP_COUNTER: u64 = AppKind::COUNTER_CODE;
const APP_FORWARDER: u64 = AppKind::FORWARDER_CODE;
const APP_AMM: u64 = AppKind::AMM_CODE;
const APP_REVERTER: u64 = AppKind::REVERTER_CODE;
const METHOD_TRANSFER: u64 = Method::Transfer as u64;
const METHOD_INCREMENT: u64 = Method::Increment as u64;
const METHOD_FORWARD: u64 = Method::Forward as u64;
const METHOD_FORWARD_THEN_REVERT: u64 = Method::ForwardThenRevert as u64;
const METHOD_SWAP: u64 = Method::Swap as u64;
const METHOD_FAIL: u64 = Method::Fail as u64;
const REVERT_ALWAYS: u64 = abi::REVERT_ALWAYS as u64;
const REVERT_INSUFFICIENT_BALANCE: u64 = abi::REVERT_INSUFFICIENT_BALANCE as u64;
const REVERT_UNKNOWN_METHOD: u64 = abi::REVERT_UNKNOWN_METHOD as u64;
const REVERT_SLIPPAGE: u64 = abi::REVERT_SLIPPAGE as u64;

/// One tape step as the circuit reads it: a tag and five fields, of at most
/// [`TAPE_FIELD_BITS`] bits each.
///
/// | tag | fields |
/// |---|---|
/// | [`TAG_TX`] | sender, nonce, target, value, calldata |
/// | [`TAG_SERVE`] | caller, `src:32 ‖ seq:32 ‖ committed:1`, target, value, calldata |
/// | [`TAG_RETURN`] | 0, the call's sequence number, 0, 0, `success:1 ‖ word:128` |
///
/// Calldata is its 19 bytes read as a big-endian integer; packed parts are little end first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapeStep {
    /// [`TAG_TX`], [`TAG_SERVE`] or [`TAG_RETURN`]; 0 past the tape's end.
    pub tag: u8,
    /// The step's fields, by its tag.
    pub fields: [Fr; TAPE_FIELDS],
}

impl TapeStep {
    const PAD: Self = Self {
        tag: 0,
        fields: [Fr::zero(); TAPE_FIELDS],
    };

    /// A transaction.
    pub fn tx(from: Fr, nonce: u64, to: Fr, value: u128, calldata: Fr) -> Self {
        Self {
            tag: TAG_TX,
            fields: [from, Fr::from(nonce), to, Fr::from_u128(value), calldata],
        }
    }

    /// A call served for rollup `src`'s call `seq`.
    #[allow(clippy::too_many_arguments)]
    pub fn serve(
        caller: Fr,
        src: u32,
        seq: u32,
        committed: bool,
        target: Fr,
        value: u128,
        calldata: Fr,
    ) -> Self {
        let packed = u128::from(src) | u128::from(seq) << 32 | u128::from(committed) << 64;
        Self {
            tag: TAG_SERVE,
            fields: [
                caller,
                Fr::from_u128(packed),
                target,
                Fr::from_u128(value),
                calldata,
            ],
        }
    }

    /// The result of this rollup's call `seq`.
    pub fn result(seq: u32, success: bool, word: u128) -> Self {
        Self {
            tag: TAG_RETURN,
            fields: [
                Fr::zero(),
                Fr::from(u64::from(seq)),
                Fr::zero(),
                Fr::zero(),
                result_cell(success, word),
            ],
        }
    }
}

/// A result packed in one cell: `success + 2 · word`.
pub fn result_cell(success: bool, word: u128) -> Fr {
    Fr::from(u64::from(success)) + Fr::from_u128(word).double()
}

/// The fixed sizes of one STF circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StfCapacity {
    /// Rows (micro-steps), padding included.
    pub rows: usize,
    /// Tape steps.
    pub tape: usize,
    /// Distinct state keys.
    pub keys: usize,
    /// Distinct scratch cells.
    pub scratch: usize,
}

impl StfCapacity {
    /// The memory check's capacity: every op slot of every row.
    pub const fn memory(&self) -> MemoryCapacity {
        MemoryCapacity {
            ops: self.rows * OPS_PER_ROW,
            keys: self.keys,
            scratch: self.scratch,
        }
    }
}

/// The version of the STF circuit's constraints, part of every cached key's digest: a change
/// to what the circuit lays out or constrains bumps it, so that no key made by an older build
/// is read back by a newer one.
pub const STF_VERSION: u32 = 5;

/// One deployment of the STF circuit: its degree, the depth of the rollup's state tree and
/// the capacity of a block. The verifying key is a function of these alone, so an aggregator
/// and an adapter with the same config derive the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StfConfig {
    /// Degree of the circuit (`2^k` rows of [`shape::NUM_ADVICE`] advice columns).
    pub k: u32,
    /// Depth of the rollup's state tree (its genesis's `tree_depth`).
    pub depth: usize,
    /// What one block may use.
    pub capacity: StfCapacity,
    /// Bits of the range-check table, from [`shape::MIN_LOOKUP_BITS`] to `k − 1`; `None`:
    /// `k − 1`, the largest table at `k` and the fewest cells for every block measured
    /// (`docs/benchmarks.md`, "Range checks per deployment").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_bits: Option<usize>,
}

impl StfConfig {
    /// Bits of its range-check table: [`Self::lookup_bits`], or `k − 1`.
    pub fn table_bits(&self) -> usize {
        self.lookup_bits
            .unwrap_or_else(|| (self.k as usize).saturating_sub(1))
    }

    /// The STF circuit of this deployment over `witness` (a block padded to its capacity).
    pub fn circuit(
        &self,
        stage: CircuitBuilderStage,
        break_points: Option<MultiPhaseThreadBreakPoints>,
        witness: &StfWitness,
    ) -> Result<RollupCircuit> {
        circuit(
            stage,
            self.k,
            self.table_bits(),
            break_points,
            self.capacity,
            witness,
        )
    }

    /// The digest its proving key is cached under.
    pub fn key_digest(&self) -> String {
        lockstep_circuits::keys::config_digest(&("stf", shape::SHAPE_VERSION, STF_VERSION, self))
    }

    /// The witness keygen lays the circuit out with: an empty block on an empty tree. The
    /// layout depends on the config alone, never on the witness's values.
    pub fn keygen_witness(&self) -> Result<StfWitness> {
        let tree = SparseMerkleTree::new(self.depth)?;
        let header = SlotHeader {
            domain: Domain::default(),
            slot: 0,
            rollup_id: 0,
            pre_root: tree.root(),
            post_root: tree.root(),
            da_commitment: Fr::zero(),
            eth_delta: 0,
            l1_digest: Fr::zero(),
        };
        StfWitness::new(header, &tree, &[], &[], self.capacity)
    }

    /// The proving key from `store`: read from its cache, or made by keygen over
    /// [`Self::keygen_witness`] (minutes at k ≥ 20) and cached. `params` must be the SRS for
    /// `self.k`.
    pub fn proving_key(
        &self,
        store: &KeyStore,
        params: &ParamsKZG<Bn256>,
    ) -> Result<CircuitKey<BaseCircuitParams>> {
        if params.k() != self.k {
            return Err(Error::OutOfRange {
                what: "SRS degree for the STF key",
                value: params.k().to_string(),
                expected: "the STF config's k",
            });
        }
        store.proving_key("stf", &self.key_digest(), params, || {
            self.circuit(CircuitBuilderStage::Keygen, None, &self.keygen_witness()?)
        })
    }

    /// Proves `witness` (a block padded to this config's capacity) with `key`, and checks the
    /// proof natively.
    pub fn prove(
        &self,
        params: &ParamsKZG<Bn256>,
        key: &CircuitKey<BaseCircuitParams>,
        witness: &StfWitness,
    ) -> Result<Snark> {
        if witness.memory.depth != self.depth {
            return Err(Error::OutOfRange {
                what: "state tree depth of the block",
                value: witness.memory.depth.to_string(),
                expected: "the STF config's depth",
            });
        }
        let builder = self.circuit(
            CircuitBuilderStage::Prover,
            Some(key.meta.break_points.clone()),
            witness,
        )?;
        lockstep_circuits::prover::prove(params, &key.pk, builder)
    }
}

/// Everything the STF circuit needs: the tape and the rows' ops, padded to a capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StfWitness {
    /// The header its proof exposes. The circuit takes the domain, slot, rollup id and DA
    /// commitment from here and computes the rest (the pre root is the memory witness's); the
    /// post root, ETH delta and L1 digest here are what the block claims, which a proof of a
    /// different execution does not verify against ([`Self::public_inputs`]).
    pub header: SlotHeader,
    /// The tape, padded with empty steps.
    pub tape: Vec<TapeStep>,
    /// Every op slot of every row, in order, as the memory check's witness.
    pub memory: MemoryWitness,
}

impl StfWitness {
    /// The witness of `rows` (each row's ops, at most [`OPS_PER_ROW`]) executing `tape` on
    /// `pre`, padded to `capacity`: unused slots and padding rows read scratch address 0.
    pub fn new(
        header: SlotHeader,
        pre: &SparseMerkleTree,
        tape: &[TapeStep],
        rows: &[Vec<Access>],
        capacity: StfCapacity,
    ) -> Result<Self> {
        let over = |what: &'static str, value: usize| Error::OutOfRange {
            what,
            value: value.to_string(),
            expected: "at most the STF circuit's capacity",
        };
        if header.pre_root != pre.root() {
            return Err(Error::OutOfRange {
                what: "pre root of the header",
                value: format!("{:?}", header.pre_root),
                expected: "the root of the state the block runs on",
            });
        }
        if tape.len() > capacity.tape {
            return Err(over("tape steps", tape.len()));
        }
        // Padding rows included: the last row must be a padding row.
        if rows.len() >= capacity.rows {
            return Err(over("rows (with one padding row)", rows.len() + 1));
        }
        let dummy = Access {
            space: Space::Scratch,
            key: Fr::zero(),
            before: Fr::zero(),
            after: Fr::zero(),
        };
        let mut ops = Vec::with_capacity(capacity.rows * OPS_PER_ROW);
        for (index, row) in rows.iter().enumerate() {
            if row.len() > OPS_PER_ROW {
                return Err(Error::BadTrace {
                    what: "row",
                    index,
                    reason: format!("{} ops, more than {OPS_PER_ROW}", row.len()),
                });
            }
            ops.extend(row.iter().copied());
            ops.extend(std::iter::repeat_n(dummy, OPS_PER_ROW - row.len()));
        }
        ops.resize(capacity.rows * OPS_PER_ROW, dummy);
        let memory = MemoryWitness::with_scratch(pre, &ops)?;
        let mut tape = tape.to_vec();
        tape.resize(capacity.tape, TapeStep::PAD);
        Ok(Self {
            header,
            tape,
            memory,
        })
    }

    /// The public inputs of its proof, with these entries.
    pub fn public_inputs(&self, assumed: &[Entry], served: &[Entry]) -> RollupPublicInputs {
        RollupPublicInputs {
            header: self.header,
            assumed: assumed.iter().map(Entry::hash).collect(),
            served: served.iter().map(Entry::hash).collect(),
        }
    }
}

/// The STF circuit in the common shape at `k` with a range-check table of `lookup_bits` bits
/// ([`shape::rollup_params_sized`]), exposing the common public-input layout.
pub fn circuit(
    stage: CircuitBuilderStage,
    k: u32,
    lookup_bits: usize,
    break_points: Option<MultiPhaseThreadBreakPoints>,
    capacity: StfCapacity,
    witness: &StfWitness,
) -> Result<RollupCircuit> {
    if witness.tape.len() != capacity.tape {
        return Err(Error::OutOfRange {
            what: "tape steps in the witness",
            value: witness.tape.len().to_string(),
            expected: "exactly the capacity (StfWitness::new pads)",
        });
    }
    let mut circuit = RollupCircuit::sized(stage, k, lookup_bits, break_points)?;
    let range = circuit.range_chip();
    let ctx = circuit.main();
    let hasher = poseidon::hasher(ctx, range.gate());
    // Every slot is an op of the trace (an unused one reads scratch address 0), never padding
    // that the memory check would leave out: a slot it skipped could read anything.
    // State keys are derived once per distinct key, in the key table, from the pre-images the
    // rows compute (module docs, "State keys").
    let derive = |ctx: &mut Context<Fr>, preimage: [AssignedValue<Fr>; KEY_PREIMAGE]| {
        derive_state_key(&range, ctx, preimage)
    };
    let chip = MemoryChip::new(&range, witness.memory.depth, capacity.memory())?
        .every_op_used()
        .with_key_derivation(&derive);
    let mut ops = chip.load_ops(ctx, &witness.memory)?;
    let mut keys = chip.load_keys(ctx, &witness.memory)?;
    let scratch = chip.load_scratch(ctx, &witness.memory)?;
    let pre_root = ctx.load_witness(witness.memory.pre_root);
    let h = &witness.header;
    let rollup = ctx.load_witness(Fr::from(u64::from(h.rollup_id)));
    range.range_check(ctx, rollup, 32);
    let domain = ctx.load_witness(h.domain.to_field());
    let slot = ctx.load_witness(Fr::from(h.slot));
    let da_commitment = ctx.load_witness(h.da_commitment);

    let stf = StfChip {
        range: &range,
        preimages: RefCell::new(HashMap::new()),
    };
    let mut tape = stf.load_tape(ctx, &witness.tape);

    let zero = ctx.load_zero();
    let mut registers = Registers([zero; Reg::COUNT]);
    let mut padding = zero;
    for row in ops.chunks_mut(OPS_PER_ROW) {
        let (after, pad) = stf.row(ctx, rollup, &registers, &mut tape, row);
        registers = after;
        padding = pad;
    }
    // The last row pads: the tape is consumed and no frame is open.
    range.gate().assert_is_const(ctx, &padding, &Fr::one());
    stf.key_preimages(ctx, &mut keys)?;

    let (post_root, multisets) = chip.check(ctx, pre_root, &ops, &keys, &scratch)?;
    let header = SlotHeader::<Assigned> {
        domain,
        slot,
        rollup_id: rollup,
        pre_root,
        post_root,
        da_commitment,
        eth_delta: registers[Reg::Eth],
        l1_digest: zero,
    };
    let (assumed, served) = stf.entries(ctx, &header, &scratch, &registers);
    let instances = PublicInputsChip::new(&range).expose(ctx, &hasher, &header, &assumed, &served);
    circuit.expose(instances);
    let tape = tape.finish(circuit.main());
    circuit.prove_equal(multisets);
    circuit.prove_equal(tape);
    circuit.finish()
}

/// What a kind asks of one op slot.
struct SlotUse {
    /// The kind's flag times the slot's own condition.
    weight: AssignedValue<Fr>,
    scratch: bool,
    key: AssignedValue<Fr>,
    /// A state key's pre-image (`None` for scratch).
    preimage: Option<[AssignedValue<Fr>; KEY_PREIMAGE]>,
    after: AssignedValue<Fr>,
}

/// One row under construction: the registers before, what each kind asks of the slots, and
/// the registers after.
struct RowState {
    b: Registers,
    uses: Vec<Vec<SlotUse>>,
    after: Registers,
}

impl RowState {
    /// Slot `i`, under `weight`, accesses scratch address `key` and leaves `after` there.
    fn op(
        &mut self,
        i: usize,
        weight: AssignedValue<Fr>,
        scratch: bool,
        key: AssignedValue<Fr>,
        after: AssignedValue<Fr>,
    ) {
        debug_assert!(scratch, "state ops go through RowState::state");
        self.uses[i].push(SlotUse {
            weight,
            scratch,
            key,
            preimage: None,
            after,
        });
    }

    /// Slot `i`, under `weight`, accesses state key `key` and leaves `after` there.
    fn state(
        &mut self,
        i: usize,
        weight: AssignedValue<Fr>,
        key: StateKeyCells,
        after: AssignedValue<Fr>,
    ) {
        self.uses[i].push(SlotUse {
            weight,
            scratch: false,
            key: key.key,
            preimage: Some(key.preimage),
            after,
        });
    }
}

/// What a row reads before its kinds act ([`StfChip::inputs`]): the tape step, one flag per
/// kind (exactly one set), and the values several kinds share.
#[derive(Clone, Copy)]
struct RowInputs {
    /// The rollup whose block it is.
    rollup: AssignedValue<Fr>,
    /// The constants 0 and 1, as cells.
    zero: AssignedValue<Fr>,
    one_v: AssignedValue<Fr>,
    /// Each slot's value before the row.
    before: [AssignedValue<Fr>; OPS_PER_ROW],
    /// The tape step's fields (all zero past the tape's end).
    field: [AssignedValue<Fr>; TAPE_FIELDS],
    /// The tape register plus one.
    tape_next: AssignedValue<Fr>,
    /// No frame is open.
    no_frame: AssignedValue<Fr>,
    /// The kind flags: exactly one is 1.
    f_tx: AssignedValue<Fr>,
    f_serve: AssignedValue<Fr>,
    f_return: AssignedValue<Fr>,
    f_pad: AssignedValue<Fr>,
    f_move: AssignedValue<Fr>,
    f_code: AssignedValue<Fr>,
    f_tokens: AssignedValue<Fr>,
    f_resume: AssignedValue<Fr>,
    f_mark: AssignedValue<Fr>,
    f_undo: AssignedValue<Fr>,
    f_pop: AssignedValue<Fr>,
    /// The last frame's outcome, and whether an ending frame's writes are undone.
    success: AssignedValue<Fr>,
    discard: AssignedValue<Fr>,
    /// A call row's forwarder: the rollup and target it calls; here or elsewhere.
    call_rollup: AssignedValue<Fr>,
    call_target: AssignedValue<Fr>,
    call_local: AssignedValue<Fr>,
    call_remote: AssignedValue<Fr>,
    /// An app row's app.
    app_counter: AssignedValue<Fr>,
    app_amm: AssignedValue<Fr>,
    /// The running frame's calldata: argument, then the next, inner and method bytes.
    arg: AssignedValue<Fr>,
    next_method: AssignedValue<Fr>,
    inner: AssignedValue<Fr>,
    method: AssignedValue<Fr>,
    /// The running frame's value, and whether a move row moves it from a local caller or
    /// from a served call.
    value: AssignedValue<Fr>,
    mv_local: AssignedValue<Fr>,
    mv_remote: AssignedValue<Fr>,
    /// The account in slot 0 (a sender's, a mover's, a forwarder's), and whether its balance
    /// is short of `value`.
    balance0: AssignedValue<Fr>,
    nonce0: AssignedValue<Fr>,
    short: AssignedValue<Fr>,
    /// State keys: the row's main cell, and the frame target's account or an AMM's token
    /// reserve.
    ka: StateKeyCells,
    kb: StateKeyCells,
}

impl RowInputs {
    /// Slot `i`'s value before the row.
    const fn read(&self, i: usize) -> AssignedValue<Fr> {
        self.before[i]
    }
}

/// The running frame's values, to open it or restore it.
struct FrameValues {
    remote: AssignedValue<Fr>,
    caller: AssignedValue<Fr>,
    target: AssignedValue<Fr>,
    value: AssignedValue<Fr>,
    data: AssignedValue<Fr>,
    committed: AssignedValue<Fr>,
    entry: AssignedValue<Fr>,
}

struct StfChip<'a> {
    range: &'a RangeChip<Fr>,
    /// The pre-image of every key the rows derived, by the key's bytes: what a journal undo
    /// (which finds only the key) and the key table load.
    preimages: RefCell<HashMap<[u8; 32], [Fr; KEY_PREIMAGE]>>,
}

/// A state key as the rows use it: the key (a witness, bound to its pre-image by the memory
/// check) and its pre-image `(space, address, slot)`.
#[derive(Debug, Clone, Copy)]
struct StateKeyCells {
    key: AssignedValue<Fr>,
    preimage: [AssignedValue<Fr>; KEY_PREIMAGE],
}

/// `compress_tagged(STATE_TAG, space·2^160 + address, slot)` ([`StateKey::to_field`]), in the
/// key table, once per distinct key. `space < 4` and `address < 2^160` (a tape field or a
/// record part, both range-checked where the rows compute them), so the packing is one-to-one.
fn derive_state_key(
    range: &RangeChip<Fr>,
    ctx: &mut Context<Fr>,
    [space, address, slot]: [AssignedValue<Fr>; KEY_PREIMAGE],
) -> AssignedValue<Fr> {
    let packed = range
        .gate()
        .mul_add(ctx, space, Constant(pow2(160)), address);
    poseidon::compress_tagged_assigned(ctx, range.gate(), STATE_TAG, packed, slot)
}

impl StfChip<'_> {
    /// Loads the tape as a table of `[tag, fields…]` rows: tags in 0..=3 with every real step
    /// before the padding, fields in range, and one more empty step after the last, which a
    /// tape register past a full tape reads.
    fn load_tape(&self, ctx: &mut Context<Fr>, tape: &[TapeStep]) -> ReadOnlyTable {
        let gate = self.range.gate();
        let mut steps: Vec<Vec<AssignedValue<Fr>>> = tape
            .iter()
            .map(|step| {
                std::iter::once(Fr::from(u64::from(step.tag)))
                    .chain(step.fields)
                    .map(|v| ctx.load_witness(v))
                    .collect()
            })
            .collect();
        let mut previous: Option<AssignedValue<Fr>> = None;
        for step in &steps {
            let tag = step[0];
            self.range.range_check(ctx, tag, 2);
            if let Some(previous) = previous {
                let ended = gate.is_zero(ctx, previous);
                let gap = gate.mul(ctx, ended, tag);
                gate.assert_is_const(ctx, &gap, &Fr::zero());
            }
            previous = Some(tag);
            for (field, bits) in step[1..].iter().zip(TAPE_FIELD_BITS) {
                self.range.range_check(ctx, *field, bits);
            }
        }
        let zero = ctx.load_zero();
        steps.push(vec![zero; 1 + TAPE_FIELDS]);
        ReadOnlyTable::new(ctx, "tape", steps)
    }

    /// Both entry lists, read out of the scratch table (module docs, "Entries"), as the
    /// public-input gadget takes them. `end` is the last row's registers after.
    fn entries(
        &self,
        ctx: &mut Context<Fr>,
        header: &SlotHeader<Assigned>,
        table: &[AssignedScratchCell],
        end: &Registers,
    ) -> (AssignedEntryList, AssignedEntryList) {
        let gate = self.range.gate();
        let zero = ctx.load_zero();
        // The table starts at address 0 (the padding row's unused slots read it).
        gate.assert_is_const(ctx, &table[0].address, &Fr::zero());
        let (assumed_count, served_count) = (end[Reg::Assumed], end[Reg::Served]);
        let [chain_id, registry] =
            <[AssignedValue<Fr>; 2]>::try_from(self.unpack(ctx, header.domain, &[64, 160]))
                .expect("two parts");
        let kind = ctx.load_constant(Fr::from(CallKind::Call as u64));
        // A real entry's cell `(index, cell)` of `region` sits where `at` says: its address is
        // checked, and its final value returned (0 for padding entries).
        let read = |ctx: &mut Context<Fr>,
                    real: AssignedValue<Fr>,
                    at: &[(AssignedValue<Fr>, usize)],
                    region: u64,
                    index: usize,
                    cell: usize| {
            // Σ weight · table[position] over the positions the table has.
            let pick =
                |ctx: &mut Context<Fr>, f: &dyn Fn(&AssignedScratchCell) -> AssignedValue<Fr>| {
                    let terms: Vec<_> = at
                        .iter()
                        .filter(|(_, p)| *p < table.len())
                        .map(|(w, p)| (*w, f(&table[*p])))
                        .collect();
                    gate.inner_product(
                        ctx,
                        terms.iter().map(|(w, _)| Existing(*w)),
                        terms.iter().map(|(_, v)| Existing(*v)),
                    )
                };
            let address = pick(ctx, &|c| c.address);
            let used = pick(ctx, &|c| c.used);
            let last = pick(ctx, &|c| c.last);
            let expected = Fr::from(scratch::address(region, index as u64, cell as u64));
            let off = gate.sub(ctx, address, Constant(expected));
            let off = gate.mul(ctx, off, real);
            gate.assert_is_const(ctx, &off, &Fr::zero());
            let unused = gate.sub(ctx, real, used);
            let unused = gate.mul(ctx, unused, real);
            gate.assert_is_const(ctx, &unused, &Fr::zero());
            gate.mul(ctx, last, real)
        };
        let one = ctx.load_constant(Fr::one());
        let entry = |ctx: &mut Context<Fr>,
                     src: AssignedValue<Fr>,
                     dst: AssignedValue<Fr>,
                     seq: AssignedValue<Fr>,
                     caller: AssignedValue<Fr>,
                     target: AssignedValue<Fr>,
                     call: AssignedValue<Fr>,
                     committed: AssignedValue<Fr>,
                     result: AssignedValue<Fr>| {
            let [value, data] =
                <[AssignedValue<Fr>; 2]>::try_from(self.unpack(ctx, call, &[96, 152]))
                    .expect("two parts");
            let [arg, methods] =
                <[AssignedValue<Fr>; 2]>::try_from(self.unpack(ctx, data, &[128, 24]))
                    .expect("two parts");
            let [success, word] =
                <[AssignedValue<Fr>; 2]>::try_from(self.unpack(ctx, result, &[1, 128]))
                    .expect("two parts");
            self.range.gate().assert_bit(ctx, committed);
            let mut parts = [zero; ENTRY_PARTS];
            for (i, v) in [
                (part::CHAIN_ID, chain_id),
                (part::REGISTRY, registry),
                (part::SLOT, header.slot),
                (part::SRC, src),
                (part::DST, dst),
                (part::SEQ, seq),
                (part::KIND, kind),
                (part::SUCCESS, success),
                (part::COMMITTED, committed),
                (part::CALLER, caller),
                (part::TARGET, target),
                (part::VALUE_HI, zero),
                (part::VALUE_LO, value),
                (part::CALLDATA_HI, methods),
                (part::CALLDATA_LO, arg),
                (part::RETURN_HI, zero),
                (part::RETURN_LO, word),
            ] {
                parts[i] = v;
            }
            AssignedEntry { parts }
        };

        // Assumed entry i: table positions 1 + 5i + cell.
        let real = real_flags(self.range, ctx, assumed_count);
        let mut assumed = Vec::with_capacity(MAX_ENTRIES);
        for (i, real) in real.into_iter().enumerate() {
            let cells: Vec<_> = (0..scratch::ASSUMED_CELLS)
                .map(|c| {
                    let at = [(one, 1 + scratch::ASSUMED_CELLS * i + c)];
                    read(ctx, real, &at, scratch::ASSUMED, i, c)
                })
                .collect();
            let [caller, dst] = <[AssignedValue<Fr>; 2]>::try_from(self.unpack(
                ctx,
                cells[scratch::ASSUMED_CALLER as usize],
                &[160, 32],
            ))
            .expect("two parts");
            let target = cells[scratch::ASSUMED_TARGET as usize];
            self.range.range_check(ctx, target, 160);
            let seq = ctx.load_constant(Fr::from(i as u64));
            let seq = gate.mul(ctx, seq, real);
            let src = gate.mul(ctx, header.rollup_id, real);
            assumed.push(entry(
                ctx,
                src,
                dst,
                seq,
                caller,
                target,
                cells[scratch::ASSUMED_CALL as usize],
                cells[scratch::ASSUMED_COMMITTED as usize],
                cells[scratch::ASSUMED_RESULT as usize],
            ));
        }
        // Served entry j: positions 1 + 5·n_a + 4j + cell, for whichever n_a it is.
        let after_assumed: Vec<_> = (0..=MAX_ENTRIES)
            .map(|n| gate.is_equal(ctx, assumed_count, Constant(Fr::from(n as u64))))
            .collect();
        let real = real_flags(self.range, ctx, served_count);
        let mut served = Vec::with_capacity(MAX_ENTRIES);
        for (j, real) in real.into_iter().enumerate() {
            let cells: Vec<_> = (0..scratch::SERVED_CELLS)
                .map(|c| {
                    let at: Vec<_> = after_assumed
                        .iter()
                        .enumerate()
                        .map(|(n, w)| {
                            let p = 1 + scratch::ASSUMED_CELLS * n + scratch::SERVED_CELLS * j + c;
                            (*w, p)
                        })
                        .collect();
                    read(ctx, real, &at, scratch::SERVED, j, c)
                })
                .collect();
            let [caller, src, seq] = <[AssignedValue<Fr>; 3]>::try_from(self.unpack(
                ctx,
                cells[scratch::SERVED_CALLER as usize],
                &[160, 32, 32],
            ))
            .expect("three parts");
            let [target, committed] = <[AssignedValue<Fr>; 2]>::try_from(self.unpack(
                ctx,
                cells[scratch::SERVED_TARGET as usize],
                &[160, 1],
            ))
            .expect("two parts");
            let dst = gate.mul(ctx, header.rollup_id, real);
            served.push(entry(
                ctx,
                src,
                dst,
                seq,
                caller,
                target,
                cells[scratch::SERVED_CALL as usize],
                committed,
                cells[scratch::SERVED_RESULT as usize],
            ));
        }
        (
            AssignedEntryList {
                count: assumed_count,
                entries: assumed,
            },
            AssignedEntryList {
                count: served_count,
                entries: served,
            },
        )
    }

    /// The state key of `(space, address, slot)`: the key as a witness, computed natively from
    /// the pre-image's values and remembered; the memory check holds it to the pre-image
    /// wherever an op uses it ([`MemoryChip::with_key_derivation`]).
    fn state_key(
        &self,
        ctx: &mut Context<Fr>,
        space: AssignedValue<Fr>,
        address: AssignedValue<Fr>,
        slot: AssignedValue<Fr>,
    ) -> StateKeyCells {
        let preimage = [space, address, slot];
        let values = preimage.map(|cell| *cell.value());
        let key =
            poseidon::compress_tagged(STATE_TAG, values[0] * pow2(160) + values[1], values[2]);
        self.preimages
            .borrow_mut()
            .entry(key.to_bytes())
            .or_insert(values);
        StateKeyCells {
            key: ctx.load_witness(key),
            preimage,
        }
    }

    /// The state key `key` read back (from a journal record), with its pre-image as witnesses:
    /// the memory check holds them to the key row's.
    fn recalled_key(&self, ctx: &mut Context<Fr>, key: AssignedValue<Fr>) -> StateKeyCells {
        let values = self
            .preimages
            .borrow()
            .get(&key.value().to_bytes())
            .copied()
            .unwrap_or([Fr::zero(); KEY_PREIMAGE]);
        StateKeyCells {
            key,
            preimage: values.map(|v| ctx.load_witness(v)),
        }
    }

    /// Loads each key row's pre-image (remembered from the rows). A used row whose key no row
    /// derived cannot be proven.
    fn key_preimages(&self, ctx: &mut Context<Fr>, keys: &mut [AssignedKeyOpening]) -> Result<()> {
        let preimages = self.preimages.borrow();
        for (index, row) in keys.iter_mut().enumerate() {
            let values = match preimages.get(&row.key.value().to_bytes()) {
                Some(values) => *values,
                None if *row.used.value() == Fr::zero() => [Fr::zero(); KEY_PREIMAGE],
                None => {
                    return Err(Error::BadTrace {
                        what: "key row",
                        index,
                        reason: "no row derives its key".into(),
                    })
                }
            };
            row.preimage = Some(values.map(|v| ctx.load_witness(v)));
        }
        Ok(())
    }

    /// The scratch address of `cell` of record `index` in `region`.
    fn scratch_cell(
        &self,
        ctx: &mut Context<Fr>,
        region: u64,
        index: AssignedValue<Fr>,
        cell: u64,
    ) -> AssignedValue<Fr> {
        let base = Fr::from(scratch::address(region, 0, cell));
        self.range
            .gate()
            .mul_add(ctx, index, Constant(Fr::from(1 << 8)), Constant(base))
    }

    /// `value` split as `low + 2^bits · high`, with `low < 2^bits` and `high ≤ 2^(total −
    /// bits)`; with `value < 2^total` known, `high < 2^(total − bits)`. `value` must be gated
    /// to 0 where it is not meant to decompose.
    fn split(
        &self,
        ctx: &mut Context<Fr>,
        value: AssignedValue<Fr>,
        bits: usize,
        total: usize,
    ) -> (AssignedValue<Fr>, AssignedValue<Fr>) {
        let (high, low) = self
            .range
            .div_mod(ctx, value, BigUint::from(1u8) << bits, total);
        (low, high)
    }

    /// `value` split into parts of exactly `widths` bits, the first lowest: refused unless
    /// `value < 2^Σwidths`.
    fn unpack(
        &self,
        ctx: &mut Context<Fr>,
        value: AssignedValue<Fr>,
        widths: &[usize],
    ) -> Vec<AssignedValue<Fr>> {
        let mut total: usize = widths.iter().sum();
        let mut rest = value;
        let mut parts = Vec::with_capacity(widths.len());
        for &width in &widths[..widths.len() - 1] {
            let (low, high) = self.split(ctx, rest, width, total);
            parts.push(low);
            rest = high;
            total -= width;
        }
        // `split` bounds the high part by 2^total inclusive: make it strict.
        self.range.range_check(ctx, rest, total);
        parts.push(rest);
        parts
    }

    /// `Σ part · 2^offset`, the first part lowest (the widths sum to at most 253).
    fn pack(
        &self,
        ctx: &mut Context<Fr>,
        parts: &[(AssignedValue<Fr>, usize)],
    ) -> AssignedValue<Fr> {
        let mut offset = 0u32;
        let mut shifts = Vec::with_capacity(parts.len());
        for (_, width) in parts {
            shifts.push(Constant(pow2(offset)));
            offset += *width as u32;
        }
        self.range
            .gate()
            .inner_product(ctx, parts.iter().map(|(p, _)| Existing(*p)), shifts)
    }

    /// `⌊n / d⌋` for `n < 2^224` and `0 < d < 2^129`: the quotient `q < 2^128` and remainder
    /// `r < d` are witnessed, and `q·d + r = n` is checked in 64-bit limbs, as no product of
    /// that size may wrap the field (`halo2-base`'s `div_mod_var` takes divisors of at most
    /// 126 bits).
    fn div_wide(
        &self,
        ctx: &mut Context<Fr>,
        n: AssignedValue<Fr>,
        d: AssignedValue<Fr>,
    ) -> AssignedValue<Fr> {
        let gate = self.range.gate();
        let (q, r) = {
            let n = fe_to_biguint(n.value());
            let d = fe_to_biguint(d.value());
            let (q, r) = if d == BigUint::from(0u8) {
                (BigUint::from(0u8), BigUint::from(0u8))
            } else {
                (&n / &d, &n % &d)
            };
            (biguint_to_fe::<Fr>(&q), biguint_to_fe::<Fr>(&r))
        };
        let q = ctx.load_witness(q);
        let r = ctx.load_witness(r);
        self.range.range_check(ctx, q, 128);
        self.range.range_check(ctx, r, 129);
        self.range.check_less_than(ctx, r, d, 129);
        // q·d + r = (q1·d)·2^64 + (q0·d + r), each part below 2^194.
        let (q0, q1) = self.split(ctx, q, 64, 128);
        let low = gate.mul_add(ctx, q0, d, r);
        let high = gate.mul(ctx, q1, d);
        let (low0, low1) = self.split(ctx, low, 64, 194);
        let (n0, n1) = self.split(ctx, n, 64, 224);
        ctx.constrain_equal(&low0, &n0);
        let high = gate.add(ctx, high, low1);
        ctx.constrain_equal(&high, &n1);
        q
    }

    /// `x ≤ bound` where `flag`; nothing where not (`flag · (bound − x)` fits `bits`).
    fn at_most(
        &self,
        ctx: &mut Context<Fr>,
        flag: AssignedValue<Fr>,
        x: AssignedValue<Fr>,
        bound: u64,
        bits: usize,
    ) {
        let gate = self.range.gate();
        let spare = gate.sub(ctx, Constant(Fr::from(bound)), x);
        let spare = gate.mul(ctx, spare, flag);
        self.range.range_check(ctx, spare, bits);
    }

    /// Journal entry `index` records `key` and its `previous` value, in slots `first` and
    /// `first + 1`, under `weight`.
    #[allow(clippy::too_many_arguments)]
    fn journal(
        &self,
        ctx: &mut Context<Fr>,
        row: &mut RowState,
        first: usize,
        weight: AssignedValue<Fr>,
        index: AssignedValue<Fr>,
        key: AssignedValue<Fr>,
        previous: AssignedValue<Fr>,
    ) {
        let key_cell = self.scratch_cell(ctx, scratch::JOURNAL, index, 0);
        let previous_cell = self.scratch_cell(ctx, scratch::JOURNAL, index, 1);
        row.op(first, weight, true, key_cell, key);
        row.op(first + 1, weight, true, previous_cell, previous);
    }

    /// Under `flag`, slot 0 writes `after` to state key `key`, journaled in slots 1 and 2 (with
    /// the value slot 0 read); returns the journal register after it.
    fn write_journaled(
        &self,
        ctx: &mut Context<Fr>,
        row: &mut RowState,
        s: &RowInputs,
        flag: AssignedValue<Fr>,
        key: StateKeyCells,
        after: AssignedValue<Fr>,
    ) -> AssignedValue<Fr> {
        let journal = row.b[Reg::Journal];
        row.state(0, flag, key, after);
        self.journal(ctx, row, 1, flag, journal, key.key, s.read(0));
        self.range.gate().add(ctx, journal, Constant(Fr::one()))
    }

    /// Under `flag`, the kind is done with the running frame: the journal register becomes
    /// `journal`, the outcome (when given) `(success, word)`, and the next row ends the frame.
    fn finish(
        &self,
        ctx: &mut Context<Fr>,
        row: &mut RowState,
        flag: AssignedValue<Fr>,
        journal: AssignedValue<Fr>,
        outcome: Option<(AssignedValue<Fr>, AssignedValue<Fr>)>,
    ) {
        let end = self.constant(ctx, next::END);
        let mut writes = vec![(Reg::Journal, journal)];
        if let Some((success, word)) = outcome {
            writes.extend([(Reg::OutSuccess, success), (Reg::OutWord, word)]);
        }
        writes.extend([(Reg::Next, end), (Reg::Cursor, row.b[Reg::FrameAssumed])]);
        for (r, v) in writes {
            self.set(ctx, row, flag, r, v);
        }
    }

    /// Under `weight`, the running frame is saved on the stack at the current depth, in slots
    /// `first..first + 4`.
    fn push_frame(
        &self,
        ctx: &mut Context<Fr>,
        row: &mut RowState,
        first: usize,
        weight: AssignedValue<Fr>,
    ) {
        let b = row.b;
        let head: Vec<(AssignedValue<Fr>, usize)> = [
            Reg::FrameCaller,
            Reg::FrameRemote,
            Reg::FrameCommitted,
            Reg::FrameWaiting,
            Reg::FrameJournal,
            Reg::FrameAssumed,
            Reg::FrameEntry,
            Reg::FrameCall,
        ]
        .into_iter()
        .zip(scratch::FRAME_HEAD)
        .map(|(r, width)| (b[r], width))
        .collect();
        let head = self.pack(ctx, &head);
        let call = self.pack(ctx, &[(b[Reg::FrameValue], 96), (b[Reg::FrameData], 152)]);
        for (cell, value) in [head, b[Reg::FrameTarget], call, b[Reg::FrameEth]]
            .into_iter()
            .enumerate()
        {
            let address = self.scratch_cell(ctx, scratch::STACK, b[Reg::Depth], cell as u64);
            row.op(first + cell, weight, true, address, value);
        }
    }

    /// Under `flag`, `frame` becomes the running frame with its checkpoints taken now (the
    /// journal at `journal`), one level deeper, and the next row moves its value.
    fn open_frame(
        &self,
        ctx: &mut Context<Fr>,
        row: &mut RowState,
        flag: AssignedValue<Fr>,
        frame: &FrameValues,
        journal: AssignedValue<Fr>,
    ) {
        let gate = self.range.gate();
        let b = row.b;
        // At most MAX_CALL_DEPTH frames open.
        self.at_most(ctx, flag, b[Reg::Depth], MAX_CALL_DEPTH as u64 - 1, 8);
        let zero = ctx.load_zero();
        let depth = gate.add(ctx, b[Reg::Depth], Constant(Fr::one()));
        let next_move = ctx.load_constant(Fr::from(next::MOVE));
        for (r, v) in [
            (Reg::Next, next_move),
            (Reg::Depth, depth),
            (Reg::Journal, journal),
            (Reg::FrameRemote, frame.remote),
            (Reg::FrameCaller, frame.caller),
            (Reg::FrameTarget, frame.target),
            (Reg::FrameValue, frame.value),
            (Reg::FrameData, frame.data),
            (Reg::FrameCommitted, frame.committed),
            (Reg::FrameJournal, journal),
            (Reg::FrameEth, b[Reg::Eth]),
            (Reg::FrameAssumed, b[Reg::Assumed]),
            (Reg::FrameEntry, frame.entry),
            (Reg::FrameCall, zero),
            (Reg::FrameWaiting, zero),
            (Reg::OutSuccess, zero),
            (Reg::OutWord, zero),
            (Reg::App, zero),
        ] {
            self.set(ctx, row, flag, r, v);
        }
    }

    /// `a = v`, as a bit.
    fn is(&self, ctx: &mut Context<Fr>, a: AssignedValue<Fr>, v: u64) -> AssignedValue<Fr> {
        self.range.gate().is_equal(ctx, a, Constant(Fr::from(v)))
    }

    /// Not both `a` and `b`: `a · b = 0`.
    fn never(&self, ctx: &mut Context<Fr>, a: AssignedValue<Fr>, b: AssignedValue<Fr>) {
        let gate = self.range.gate();
        let both = gate.mul(ctx, a, b);
        gate.assert_is_const(ctx, &both, &Fr::zero());
    }

    /// The constant `v`, as a cell.
    fn constant(&self, ctx: &mut Context<Fr>, v: u64) -> AssignedValue<Fr> {
        ctx.load_constant(Fr::from(v))
    }

    /// Under `flag`, register `r` after is `candidate` (`after[r] += flag · (candidate −
    /// before[r])`; the kinds are exclusive, so at most one flag is set).
    fn set(
        &self,
        ctx: &mut Context<Fr>,
        row: &mut RowState,
        flag: AssignedValue<Fr>,
        r: Reg,
        candidate: AssignedValue<Fr>,
    ) {
        let gate = self.range.gate();
        let delta = gate.sub(ctx, candidate, row.b[r]);
        row.after[r] = gate.mul_add(ctx, flag, delta, row.after[r]);
    }

    /// One row: its registers after, and whether it is a padding row. Each kind constrains
    /// its own part of the row under its flag ([`Self::inputs`] sets exactly one).
    fn row(
        &self,
        ctx: &mut Context<Fr>,
        rollup: AssignedValue<Fr>,
        b: &Registers,
        tape: &mut ReadOnlyTable,
        slots: &mut [AssignedOp],
    ) -> (Registers, AssignedValue<Fr>) {
        let s = self.inputs(ctx, rollup, b, tape, slots);
        let mut row = RowState {
            b: *b,
            uses: (0..OPS_PER_ROW).map(|_| Vec::new()).collect(),
            after: *b,
        };
        self.tx(ctx, &mut row, &s);
        self.serve(ctx, &mut row, &s);
        self.result(ctx, &mut row, &s);
        self.move_value(ctx, &mut row, &s);
        self.code(ctx, &mut row, &s);
        self.counter(ctx, &mut row, &s);
        self.amm(ctx, &mut row, &s);
        self.tokens(ctx, &mut row, &s);
        self.call(ctx, &mut row, &s);
        self.resume(ctx, &mut row, &s);
        self.mark(ctx, &mut row, &s);
        self.undo(ctx, &mut row, &s);
        self.pop(ctx, &mut row, &s);
        self.fix_slots(ctx, row.uses, slots);
        (row.after, s.f_pad)
    }

    /// The row's tape step, which kind it is, and what several kinds read.
    fn inputs(
        &self,
        ctx: &mut Context<Fr>,
        rollup: AssignedValue<Fr>,
        b: &Registers,
        tape: &mut ReadOnlyTable,
        slots: &[AssignedOp],
    ) -> RowInputs {
        let gate = self.range.gate();
        let one = Constant(Fr::one());
        let zero = ctx.load_zero();
        let one_v = self.constant(ctx, 1);
        let before: [AssignedValue<Fr>; OPS_PER_ROW] = std::array::from_fn(|i| slots[i].before);
        let read = |i: usize| before[i];

        // The tape step at the tape register (all zero past the end), in constant cells: the
        // tape table's equality holds it to the loaded step.
        let step = tape.read(ctx, gate, b[Reg::Tape]);
        let (tag, field) = (step[0], &step[1..]);
        let tape_next = gate.add(ctx, b[Reg::Tape], one);

        // ---- Which kind: from `next`, the tag, waiting, and what is left to end a frame. ----
        let at_fetch = self.is(ctx, b[Reg::Next], next::FETCH);
        let f_move = self.is(ctx, b[Reg::Next], next::MOVE);
        let f_code = self.is(ctx, b[Reg::Next], next::CODE);
        let f_app = self.is(ctx, b[Reg::Next], next::APP);
        let f_tokens = self.is(ctx, b[Reg::Next], next::TOKENS);
        let f_call = self.is(ctx, b[Reg::Next], next::CALL);
        let f_resume = self.is(ctx, b[Reg::Next], next::RESUME);
        let at_end = self.is(ctx, b[Reg::Next], next::END);
        let no_frame = gate.is_zero(ctx, b[Reg::Depth]);
        let waiting = b[Reg::FrameWaiting];
        let fetch_free = gate.mul(ctx, at_fetch, no_frame);
        let fetch_waiting = gate.mul(ctx, at_fetch, waiting);
        let tag_none = gate.is_zero(ctx, tag);
        let tag_tx = self.is(ctx, tag, u64::from(TAG_TX));
        let tag_serve = self.is(ctx, tag, u64::from(TAG_SERVE));
        let tag_return = self.is(ctx, tag, u64::from(TAG_RETURN));
        // A transaction and the tape's end need no frame open; a served call needs none running
        // (none open, or the running one waits); a result needs the running frame to wait.
        let f_tx = gate.mul(ctx, fetch_free, tag_tx);
        let f_pad = gate.mul(ctx, fetch_free, tag_none);
        let serves_now = gate.or(ctx, fetch_free, fetch_waiting);
        let f_serve = gate.mul(ctx, serves_now, tag_serve);
        let f_return = gate.mul(ctx, fetch_waiting, tag_return);

        let success = b[Reg::OutSuccess];
        let uncommitted_remote = gate.mul_not(ctx, b[Reg::FrameCommitted], b[Reg::FrameRemote]);
        let keep = gate.mul_not(ctx, uncommitted_remote, success);
        let discard = gate.not(ctx, keep);
        let marks_left = self
            .range
            .is_less_than(ctx, b[Reg::Cursor], b[Reg::Assumed], 16);
        let must_mark = gate.mul_not(ctx, success, marks_left);
        let undos_left = self
            .range
            .is_less_than(ctx, b[Reg::FrameJournal], b[Reg::Journal], 32);
        let must_undo = gate.mul(ctx, discard, undos_left);
        let f_mark = gate.mul(ctx, at_end, must_mark);
        let end_no_mark = gate.sub(ctx, at_end, f_mark);
        let f_undo = gate.mul(ctx, end_no_mark, must_undo);
        let f_pop = gate.sub(ctx, end_no_mark, f_undo);
        // Exactly one kind (they exclude each other by construction, so: at least one).
        let kinds = gate.sum(
            ctx,
            [
                f_tx, f_serve, f_return, f_pad, f_move, f_code, f_app, f_tokens, f_call, f_resume,
                f_mark, f_undo, f_pop,
            ],
        );
        gate.assert_is_const(ctx, &kinds, &Fr::one());

        // ---- What several kinds read. ----
        // A call row's forwarder: the rollup and target in its code leaf's parameters.
        let leaf = gate.mul(ctx, f_call, b[Reg::App]);
        let (_, params) = self.split(ctx, leaf, 8, 200);
        let (call_rollup, call_target) = self.split(ctx, params, 32, 192);
        // Calls into L1 (rollup 0) are not supported yet.
        let to_l1 = gate.is_zero(ctx, call_rollup);
        self.never(ctx, f_call, to_l1);
        let here = gate.is_equal(ctx, call_rollup, rollup);
        let call_local = gate.mul(ctx, f_call, here);
        let call_remote = gate.sub(ctx, f_call, call_local);
        // The app a code row found.
        let app_counter = {
            let counter = self.is(ctx, b[Reg::App], APP_COUNTER);
            gate.mul(ctx, f_app, counter)
        };
        let app_amm = {
            let amm = self.is(ctx, b[Reg::App], APP_AMM);
            gate.mul(ctx, f_app, amm)
        };
        let apps = gate.add(ctx, app_counter, app_amm);
        let other_app = gate.sub(ctx, f_app, apps);
        gate.assert_is_const(ctx, &other_app, &Fr::zero());
        // The running frame's calldata: the argument, then the next, inner and method bytes.
        let reads_data = gate.sum(ctx, [f_code, f_call, f_resume, app_amm]);
        let data = gate.mul(ctx, reads_data, b[Reg::FrameData]);
        let [arg, next_method, inner, method] =
            <[AssignedValue<Fr>; 4]>::try_from(self.unpack(ctx, data, &[128, 8, 8, 8]))
                .expect("four parts");
        // An account in slot 0: a sender's, a mover's, a forwarder's.
        let value = b[Reg::FrameValue];
        let value_zero = gate.is_zero(ctx, value);
        let mv = gate.mul_not(ctx, value_zero, f_move);
        let mv_remote = gate.mul(ctx, mv, b[Reg::FrameRemote]);
        let mv_local = gate.sub(ctx, mv, mv_remote);
        let reads_account = gate.sum(ctx, [f_tx, mv, call_remote]);
        let account0 = gate.mul(ctx, reads_account, read(0));
        let (balance0, nonce0) = self.split(ctx, account0, 128, 192);
        let short = self.range.is_less_than(ctx, balance0, value, 128);

        // ---- State keys: `ka` (the row's main cell) and `kb` (the frame target's account, or
        // an AMM's token reserve). ----
        let ka = {
            let accounts = gate.add(ctx, f_tx, f_move);
            let storage = gate.sum(ctx, [f_app, f_tokens, f_resume]);
            let space = gate.inner_product(
                ctx,
                [accounts, f_code, storage],
                [SPACE_ACCOUNT, SPACE_CODE, SPACE_STORAGE].map(|s| Constant(Fr::from(s))),
            );
            let targets = gate.sum(ctx, [f_code, f_app, f_tokens, f_resume]);
            let address = gate.inner_product(
                ctx,
                [f_tx, f_move, targets],
                [field[0], b[Reg::FrameCaller], b[Reg::FrameTarget]].map(Existing),
            );
            // A token holder's slot is 2^160 + holder; a forwarder stores its result in slot
            // 0 and counts failures in slot 1.
            let holder = gate.add(ctx, b[Reg::FrameCaller], Constant(pow2(160)));
            let fails = gate.mul_not(ctx, success, f_resume);
            let slot = gate.mul_add(ctx, f_tokens, holder, fails);
            self.state_key(ctx, space, address, slot)
        };
        let kb = {
            let space = gate.add(ctx, f_app, Constant(Fr::from(SPACE_ACCOUNT)));
            self.state_key(ctx, space, b[Reg::FrameTarget], f_app)
        };

        RowInputs {
            rollup,
            zero,
            one_v,
            tape_next,
            no_frame,
            f_tx,
            f_serve,
            f_return,
            f_pad,
            f_move,
            f_code,
            f_tokens,
            f_resume,
            f_mark,
            f_undo,
            f_pop,
            success,
            discard,
            call_rollup,
            call_target,
            call_local,
            call_remote,
            app_counter,
            app_amm,
            arg,
            next_method,
            inner,
            method,
            value,
            mv_local,
            mv_remote,
            balance0,
            nonce0,
            short,
            ka,
            kb,
            field: field.try_into().expect("TAPE_FIELDS fields"),
            before,
        }
    }

    /// Tx: nonce and balance checks, nonce + 1, the frame opens.
    fn tx(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let two_128 = pow2(128);
        let RowInputs {
            zero,
            one_v,
            field,
            tape_next,
            f_tx,
            balance0,
            nonce0,
            ka,
            ..
        } = *s;
        let off = gate.sub(ctx, nonce0, field[1]);
        self.never(ctx, off, f_tx);
        let spare = gate.sub(ctx, balance0, field[3]);
        let spare = gate.mul(ctx, spare, f_tx);
        self.range.range_check(ctx, spare, 128);
        let bumped = gate.add(ctx, s.read(0), Constant(two_128));
        let journal = self.write_journaled(ctx, row, s, f_tx, ka, bumped);
        self.set(ctx, row, f_tx, Reg::Tape, tape_next);
        let frame = FrameValues {
            remote: zero,
            caller: field[0],
            target: field[2],
            value: field[3],
            data: field[4],
            committed: one_v,
            entry: zero,
        };
        self.open_frame(ctx, row, f_tx, &frame, journal);
    }

    /// Serve: the served entry's call cells; the waiting frame saved; the frame opens.
    fn serve(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let one = Constant(Fr::one());
        let b = row.b;
        let RowInputs {
            rollup,
            one_v,
            field,
            tape_next,
            no_frame,
            f_serve,
            ..
        } = *s;
        let packed = gate.mul(ctx, f_serve, field[1]);
        let [src, seq, committed] =
            <[AssignedValue<Fr>; 3]>::try_from(self.unpack(ctx, packed, &[32, 32, 1]))
                .expect("three parts");
        // Another rollup's call (L1's are not served yet).
        let from_l1 = gate.is_zero(ctx, src);
        self.never(ctx, f_serve, from_l1);
        let from_self = gate.is_equal(ctx, src, rollup);
        self.never(ctx, f_serve, from_self);
        self.at_most(ctx, f_serve, b[Reg::Served], MAX_ENTRIES as u64 - 1, 8);
        let caller = self.pack(ctx, &[(field[0], 160), (src, 32), (seq, 32)]);
        let target = self.pack(ctx, &[(field[2], 160), (committed, 1)]);
        let call = self.pack(ctx, &[(field[3], 96), (field[4], 152)]);
        for (cell, value) in [
            (scratch::SERVED_CALLER, caller),
            (scratch::SERVED_TARGET, target),
            (scratch::SERVED_CALL, call),
        ] {
            let address = self.scratch_cell(ctx, scratch::SERVED, b[Reg::Served], cell);
            row.op(cell as usize, f_serve, true, address, value);
        }
        let suspends = gate.mul_not(ctx, no_frame, f_serve);
        self.push_frame(ctx, row, 3, suspends);
        self.set(ctx, row, f_serve, Reg::Tape, tape_next);
        let served = gate.add(ctx, b[Reg::Served], one);
        self.set(ctx, row, f_serve, Reg::Served, served);
        let frame = FrameValues {
            remote: one_v,
            caller: field[0],
            target: field[2],
            value: field[3],
            data: field[4],
            committed,
            entry: b[Reg::Served],
        };
        self.open_frame(ctx, row, f_serve, &frame, b[Reg::Journal]);
    }

    /// Return: the result of the call the frame waits on.
    fn result(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let b = row.b;
        let RowInputs {
            zero,
            field,
            tape_next,
            f_return,
            value,
            kb,
            ..
        } = *s;
        let off = gate.sub(ctx, field[1], b[Reg::FrameCall]);
        self.never(ctx, off, f_return);
        let result = gate.mul(ctx, f_return, field[4]);
        let [ok, word] = <[AssignedValue<Fr>; 2]>::try_from(self.unpack(ctx, result, &[1, 128]))
            .expect("two parts");
        let address = self.scratch_cell(
            ctx,
            scratch::ASSUMED,
            b[Reg::FrameCall],
            scratch::ASSUMED_RESULT,
        );
        row.op(0, f_return, true, address, field[4]);
        // A call that went through took its value off the rollup; a failed one returns it
        // to the forwarder.
        let eth = gate.sub_mul(ctx, b[Reg::Eth], ok, value);
        self.set(ctx, row, f_return, Reg::Eth, eth);
        let refund = gate.mul_not(ctx, ok, f_return);
        let account1 = gate.mul(ctx, refund, s.read(1));
        let (balance1, _) = self.split(ctx, account1, 128, 192);
        let credited = gate.add(ctx, balance1, value);
        let credited = gate.mul(ctx, credited, refund);
        self.range.range_check(ctx, credited, 128);
        let refunded = gate.add(ctx, s.read(1), value);
        row.state(1, refund, kb, refunded);
        self.journal(ctx, row, 2, refund, b[Reg::Journal], kb.key, s.read(1));
        let journal = gate.add(ctx, b[Reg::Journal], refund);
        let resume = self.constant(ctx, next::RESUME);
        for (r, v) in [
            (Reg::Journal, journal),
            (Reg::Tape, tape_next),
            (Reg::FrameWaiting, zero),
            (Reg::OutSuccess, ok),
            (Reg::OutWord, word),
            (Reg::Next, resume),
        ] {
            self.set(ctx, row, f_return, r, v);
        }
    }

    /// Move: the value to the target: debited from a local caller (which may not be able to pay),
    /// or arrived with a served call.
    fn move_value(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let one = Constant(Fr::one());
        let b = row.b;
        let RowInputs {
            zero,
            f_move,
            value,
            mv_local,
            mv_remote,
            balance0,
            short,
            ka,
            kb,
            ..
        } = *s;
        let paid = gate.mul_not(ctx, short, mv_local);
        let unpaid = gate.mul(ctx, short, mv_local);
        let debited = gate.sub_mul(ctx, s.read(0), paid, value);
        row.state(0, mv_local, ka, debited);
        let arrived = gate.add(ctx, s.read(0), value);
        row.state(0, mv_remote, kb, arrived);
        let changed0 = gate.add(ctx, paid, mv_remote);
        let key0 = gate.select(ctx, kb.key, ka.key, mv_remote);
        self.journal(ctx, row, 1, changed0, b[Reg::Journal], key0, s.read(0));
        // The credit of a local move, in slot 3; neither credit overflows 128 bits.
        let account3 = gate.mul(ctx, paid, s.read(3));
        let (balance3, _) = self.split(ctx, account3, 128, 192);
        let credited_balance = gate.mul_add(ctx, mv_remote, balance0, balance3);
        let credited_balance = gate.add(ctx, credited_balance, value);
        let credited_balance = gate.mul(ctx, credited_balance, changed0);
        self.range.range_check(ctx, credited_balance, 128);
        let credited = gate.add(ctx, s.read(3), value);
        row.state(3, paid, kb, credited);
        let second = gate.add(ctx, b[Reg::Journal], one);
        self.journal(ctx, row, 4, paid, second, kb.key, s.read(3));
        let journal = gate.mul_add(ctx, paid, Constant(Fr::from(2)), b[Reg::Journal]);
        let journal = gate.add(ctx, journal, mv_remote);
        self.set(ctx, row, f_move, Reg::Journal, journal);
        let eth = gate.mul_add(ctx, mv_remote, value, b[Reg::Eth]);
        self.set(ctx, row, f_move, Reg::Eth, eth);
        // next: Code, or End with 0xba1 when the caller cannot pay.
        let next = gate.mul_add(
            ctx,
            unpaid,
            Constant(Fr::from(next::END - next::CODE)),
            Constant(Fr::from(next::CODE)),
        );
        self.set(ctx, row, f_move, Reg::Next, next);
        let word = gate.mul(ctx, unpaid, Constant(Fr::from(REVERT_INSUFFICIENT_BALANCE)));
        self.set(ctx, row, f_move, Reg::OutWord, word);
        self.set(ctx, row, f_move, Reg::OutSuccess, zero);
        let cursor = gate.select(ctx, b[Reg::FrameAssumed], b[Reg::Cursor], unpaid);
        self.set(ctx, row, f_move, Reg::Cursor, cursor);
    }

    /// Code: read the target's code leaf and dispatch on (app, method).
    fn code(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let b = row.b;
        let RowInputs {
            f_code,
            next_method,
            inner,
            method,
            ka,
            ..
        } = *s;
        row.state(0, f_code, ka, s.read(0));
        let leaf = gate.mul(ctx, f_code, s.read(0));
        let (app, rest) = self.split(ctx, leaf, 8, 200);
        self.range
            .check_less_than(ctx, app, Constant(Fr::from(5)), 8);
        for byte in [method, inner, next_method] {
            self.range
                .check_less_than(ctx, byte, Constant(Fr::from(6)), 8);
        }
        let app_is = |ctx: &mut Context<Fr>, v| self.is(ctx, app, v);
        let method_is = |ctx: &mut Context<Fr>, v| self.is(ctx, method, v);
        let counter = app_is(ctx, APP_COUNTER);
        let forwarder = app_is(ctx, APP_FORWARDER);
        let amm = app_is(ctx, APP_AMM);
        let reverter = app_is(ctx, APP_REVERTER);
        // Only a forwarder's code has parameters (an empty leaf has none either).
        let no_app = gate.is_zero(ctx, app);
        let bare = gate.sum(ctx, [no_app, counter, amm, reverter]);
        self.never(ctx, bare, rest);
        let fail = method_is(ctx, METHOD_FAIL);
        let reverts = gate.or(ctx, reverter, fail);
        let transfer = method_is(ctx, METHOD_TRANSFER);
        let transfers = gate.mul_not(ctx, reverts, transfer);
        let neither = {
            let t = gate.add(ctx, reverts, transfers);
            gate.not(ctx, t)
        };
        let increment = method_is(ctx, METHOD_INCREMENT);
        let forward = method_is(ctx, METHOD_FORWARD);
        let forward_revert = method_is(ctx, METHOD_FORWARD_THEN_REVERT);
        let swap = method_is(ctx, METHOD_SWAP);
        let counts = gate.mul(ctx, counter, increment);
        let counts = gate.mul(ctx, counts, neither);
        let forwards = gate.add(ctx, forward, forward_revert);
        let forwards = gate.mul(ctx, forwarder, forwards);
        let forwards = gate.mul(ctx, forwards, neither);
        let swaps = gate.mul(ctx, amm, swap);
        let swaps = gate.mul(ctx, swaps, neither);
        let runs = gate.sum(ctx, [counts, forwards, swaps]);
        let unknown = gate.sub(ctx, neither, runs);
        let ends = gate.sum(ctx, [reverts, transfers, unknown]);
        let apps = gate.add(ctx, counts, swaps);
        let next = gate.inner_product(
            ctx,
            [ends, apps, forwards],
            [next::END, next::APP, next::CALL].map(|n| Constant(Fr::from(n))),
        );
        self.set(ctx, row, f_code, Reg::Next, next);
        self.set(ctx, row, f_code, Reg::OutSuccess, transfers);
        let word = gate.inner_product(
            ctx,
            [reverts, unknown],
            [REVERT_ALWAYS, REVERT_UNKNOWN_METHOD].map(|w| Constant(Fr::from(w))),
        );
        self.set(ctx, row, f_code, Reg::OutWord, word);
        self.set(ctx, row, f_code, Reg::App, s.read(0));
        let cursor = gate.select(ctx, b[Reg::FrameAssumed], b[Reg::Cursor], ends);
        self.set(ctx, row, f_code, Reg::Cursor, cursor);
    }

    /// App, counter: increment, wrapping at 2^128.
    fn counter(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let one = Constant(Fr::one());
        let two_128 = pow2(128);
        let u128_max = Fr::from_u128(u128::MAX);
        let RowInputs {
            one_v,
            app_counter,
            ka,
            ..
        } = *s;
        let count = gate.mul(ctx, app_counter, s.read(0));
        self.range.range_check(ctx, count, 128);
        let wraps = gate.is_equal(ctx, count, Constant(u128_max));
        let up = gate.add(ctx, s.read(0), one);
        let up = gate.sub_mul(ctx, up, wraps, Constant(two_128));
        let journal = self.write_journaled(ctx, row, s, app_counter, ka, up);
        self.finish(ctx, row, app_counter, journal, Some((one_v, up)));
    }

    /// App, AMM: out = ⌊y·v / (x + v)⌋; pays out of y if out > 0 and out ≥ the argument (the
    /// minimum out), then x grows by v; else reverts with 0x511.
    fn amm(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let one = Constant(Fr::one());
        let b = row.b;
        let RowInputs {
            app_amm,
            arg,
            value,
            ka,
            kb,
            ..
        } = *s;
        let x = gate.mul(ctx, app_amm, s.read(0));
        self.range.range_check(ctx, x, 128);
        let y = gate.mul(ctx, app_amm, s.read(1));
        self.range.range_check(ctx, y, 128);
        let v = gate.mul(ctx, app_amm, value);
        let numerator = gate.mul(ctx, y, v);
        let denominator = gate.add(ctx, x, v);
        let empty = gate.is_zero(ctx, denominator);
        let denominator = gate.add(ctx, denominator, empty);
        let out = self.div_wide(ctx, numerator, denominator);
        let none_out = gate.is_zero(ctx, out);
        let slips = self.range.is_less_than(ctx, out, arg, 128);
        let swapped = gate.mul_not(ctx, none_out, app_amm);
        let swapped = gate.mul_not(ctx, slips, swapped);
        let slipped = gate.sub(ctx, app_amm, swapped);
        row.state(0, app_amm, ka, s.read(0));
        let paid_out = gate.sub_mul(ctx, s.read(1), swapped, out);
        row.state(1, app_amm, kb, paid_out);
        self.journal(ctx, row, 2, swapped, b[Reg::Journal], kb.key, s.read(1));
        let reserve = gate.add(ctx, s.read(0), value);
        let fits = gate.mul(ctx, swapped, reserve);
        self.range.range_check(ctx, fits, 128);
        row.state(4, swapped, ka, reserve);
        let second = gate.add(ctx, b[Reg::Journal], one);
        self.journal(ctx, row, 5, swapped, second, ka.key, s.read(4));
        let journal = gate.mul_add(ctx, swapped, Constant(Fr::from(2)), b[Reg::Journal]);
        let word = gate.mul(ctx, swapped, out);
        let word = gate.mul_add(ctx, slipped, Constant(Fr::from(REVERT_SLIPPAGE)), word);
        let next = gate.inner_product(
            ctx,
            [swapped, slipped],
            [next::TOKENS, next::END].map(|n| Constant(Fr::from(n))),
        );
        let cursor = gate.select(ctx, b[Reg::FrameAssumed], b[Reg::Cursor], slipped);
        for (r, v) in [
            (Reg::Journal, journal),
            (Reg::OutSuccess, swapped),
            (Reg::OutWord, word),
            (Reg::Next, next),
            (Reg::Cursor, cursor),
        ] {
            self.set(ctx, row, app_amm, r, v);
        }
    }

    /// Tokens: the caller's token balance grows by `out`, saturating at 2^128 − 1.
    fn tokens(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let two_128 = pow2(128);
        let u128_max = Fr::from_u128(u128::MAX);
        let b = row.b;
        let RowInputs { f_tokens, ka, .. } = *s;
        let held = gate.mul(ctx, f_tokens, s.read(0));
        self.range.range_check(ctx, held, 128);
        let out = gate.mul(ctx, f_tokens, b[Reg::OutWord]);
        let sum = gate.add(ctx, held, out);
        let fits = self.range.is_less_than(ctx, sum, Constant(two_128), 129);
        let raised = gate.add(ctx, s.read(0), b[Reg::OutWord]);
        let credited = gate.select(ctx, raised, Constant(u128_max), fits);
        let journal = self.write_journaled(ctx, row, s, f_tokens, ka, credited);
        self.finish(ctx, row, f_tokens, journal, None);
    }

    /// Call: a forwarder calls its target with its own value and the calldata shifted one method
    /// along: here (a frame opens), or on another rollup (debit, assumed entry, wait).
    fn call(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let one = Constant(Fr::one());
        let b = row.b;
        let RowInputs {
            zero,
            one_v,
            call_rollup,
            call_target,
            call_local,
            call_remote,
            arg,
            next_method,
            inner,
            value,
            short,
            kb,
            ..
        } = *s;
        let forwarded = self.pack(ctx, &[(arg, 128), (zero, 8), (next_method, 8), (inner, 8)]);
        // Local.
        self.push_frame(ctx, row, 0, call_local);
        let frame = FrameValues {
            remote: zero,
            caller: b[Reg::FrameTarget],
            target: call_target,
            value,
            data: forwarded,
            committed: b[Reg::FrameCommitted],
            entry: zero,
        };
        self.open_frame(ctx, row, call_local, &frame, b[Reg::Journal]);
        // Remote: a forwarder that cannot pay never reaches the other rollup.
        let paid = gate.mul_not(ctx, short, call_remote);
        let unpaid = gate.mul(ctx, short, call_remote);
        let debited = gate.sub_mul(ctx, s.read(0), paid, value);
        row.state(0, call_remote, kb, debited);
        self.journal(ctx, row, 1, paid, b[Reg::Journal], kb.key, s.read(0));
        self.at_most(ctx, paid, b[Reg::Assumed], MAX_ENTRIES as u64 - 1, 8);
        let caller = self.pack(ctx, &[(b[Reg::FrameTarget], 160), (call_rollup, 32)]);
        let call = self.pack(ctx, &[(value, 96), (forwarded, 152)]);
        for (cell, value) in [
            (scratch::ASSUMED_CALLER, caller),
            (scratch::ASSUMED_TARGET, call_target),
            (scratch::ASSUMED_CALL, call),
            (scratch::ASSUMED_COMMITTED, b[Reg::FrameCommitted]),
        ] {
            let address = self.scratch_cell(ctx, scratch::ASSUMED, b[Reg::Assumed], cell);
            row.op(3 + cell as usize, paid, true, address, value);
        }
        let assumed = gate.add(ctx, b[Reg::Assumed], one);
        let journal = gate.add(ctx, b[Reg::Journal], one);
        let fetch = self.constant(ctx, next::FETCH);
        for (r, v) in [
            (Reg::Assumed, assumed),
            (Reg::Journal, journal),
            (Reg::FrameCall, b[Reg::Assumed]),
            (Reg::FrameWaiting, one_v),
            (Reg::Next, fetch),
        ] {
            self.set(ctx, row, paid, r, v);
        }
        let resume = self.constant(ctx, next::RESUME);
        let word = self.constant(ctx, REVERT_INSUFFICIENT_BALANCE);
        for (r, v) in [
            (Reg::OutSuccess, zero),
            (Reg::OutWord, word),
            (Reg::Next, resume),
        ] {
            self.set(ctx, row, unpaid, r, v);
        }
    }

    /// Resume: the forwarder stores its call's result word, or counts a failure (both wrapping at
    /// 2^128); then returns the word, or reverts with it.
    fn resume(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let one = Constant(Fr::one());
        let two_128 = pow2(128);
        let u128_max = Fr::from_u128(u128::MAX);
        let b = row.b;
        let RowInputs {
            f_resume,
            success,
            method,
            ka,
            ..
        } = *s;
        let fails = gate.mul_not(ctx, success, f_resume);
        let failures = gate.mul(ctx, fails, s.read(0));
        self.range.range_check(ctx, failures, 128);
        let wraps = gate.is_equal(ctx, failures, Constant(u128_max));
        let counted = gate.add(ctx, s.read(0), one);
        let counted = gate.sub_mul(ctx, counted, wraps, Constant(two_128));
        let stored = gate.select(ctx, b[Reg::OutWord], counted, success);
        let journal = self.write_journaled(ctx, row, s, f_resume, ka, stored);
        let word = gate.mul(ctx, success, b[Reg::OutWord]);
        let reverts = self.is(ctx, method, METHOD_FORWARD_THEN_REVERT);
        let returns = gate.not(ctx, reverts);
        self.finish(ctx, row, f_resume, journal, Some((returns, word)));
    }

    /// Mark: a failed frame's assumed entry is not committed.
    fn mark(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let one = Constant(Fr::one());
        let b = row.b;
        let RowInputs { zero, f_mark, .. } = *s;
        let address = self.scratch_cell(
            ctx,
            scratch::ASSUMED,
            b[Reg::Cursor],
            scratch::ASSUMED_COMMITTED,
        );
        row.op(0, f_mark, true, address, zero);
        let cursor = gate.add(ctx, b[Reg::Cursor], one);
        self.set(ctx, row, f_mark, Reg::Cursor, cursor);
    }

    /// Undo: the last journal entry's key gets its previous value back.
    fn undo(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let one = Constant(Fr::one());
        let b = row.b;
        let RowInputs { f_undo, .. } = *s;
        let index = gate.sub(ctx, b[Reg::Journal], one);
        let key_cell = self.scratch_cell(ctx, scratch::JOURNAL, index, 0);
        let previous_cell = self.scratch_cell(ctx, scratch::JOURNAL, index, 1);
        row.op(0, f_undo, true, key_cell, s.read(0));
        row.op(1, f_undo, true, previous_cell, s.read(1));
        let key = self.recalled_key(ctx, s.read(0));
        row.state(2, f_undo, key, s.read(1));
        self.set(ctx, row, f_undo, Reg::Journal, index);
    }

    /// Pop: the frame ends. A served call's result goes into its entry; a discarded frame's ETH
    /// delta returns to its checkpoint; the suspended frame below (if any) resumes (a local call
    /// returned) or keeps waiting (a served call ended).
    fn pop(&self, ctx: &mut Context<Fr>, row: &mut RowState, s: &RowInputs) {
        let gate = self.range.gate();
        let one = Constant(Fr::one());
        let b = row.b;
        let RowInputs {
            zero,
            f_pop,
            success,
            discard,
            ..
        } = *s;
        let depth = gate.sub(ctx, b[Reg::Depth], one);
        let bottom = gate.is_zero(ctx, depth);
        let nested = gate.mul_not(ctx, bottom, f_pop);
        for cell in 0..scratch::FRAME_CELLS {
            let address = self.scratch_cell(ctx, scratch::STACK, depth, cell as u64);
            row.op(cell, nested, true, address, s.read(cell));
        }
        let result = gate.mul_add(ctx, b[Reg::OutWord], Constant(Fr::from(2)), success);
        // In slot 4 after the frame below, or in slot 0 with none below.
        let answers = gate.mul(ctx, f_pop, b[Reg::FrameRemote]);
        let answers_below = gate.mul(ctx, answers, nested);
        let answers_alone = gate.sub(ctx, answers, answers_below);
        let address = self.scratch_cell(
            ctx,
            scratch::SERVED,
            b[Reg::FrameEntry],
            scratch::SERVED_RESULT,
        );
        row.op(4, answers_below, true, address, result);
        row.op(0, answers_alone, true, address, result);
        let eth = gate.select(ctx, b[Reg::FrameEth], b[Reg::Eth], discard);
        self.set(ctx, row, f_pop, Reg::Eth, eth);
        // The frame below, unpacked (all zero at the bottom).
        let head = gate.mul(ctx, nested, s.read(0));
        let head = self.unpack(ctx, head, &scratch::FRAME_HEAD);
        let target = gate.mul(ctx, nested, s.read(1));
        let call = gate.mul(ctx, nested, s.read(2));
        let call = self.unpack(ctx, call, &[96, 152]);
        let eth_checkpoint = gate.mul(ctx, nested, s.read(3));
        let restored = [
            head[1],        // remote
            head[0],        // caller
            target,         // target
            call[0],        // value
            call[1],        // calldata
            head[2],        // committed
            head[4],        // journal checkpoint
            eth_checkpoint, // ETH checkpoint
            head[5],        // assumed checkpoint
            head[6],        // served entry
            head[7],        // the call it waits on
            head[3],        // waiting
        ];
        for (r, v) in Reg::FRAME.into_iter().zip(restored) {
            self.set(ctx, row, f_pop, r, v);
        }
        let resumes = gate.mul_not(ctx, b[Reg::FrameRemote], nested);
        let next = gate.mul(ctx, resumes, Constant(Fr::from(next::RESUME)));
        let out_success = gate.mul(ctx, resumes, success);
        let out_word = gate.mul(ctx, resumes, b[Reg::OutWord]);
        for (r, v) in [
            (Reg::Depth, depth),
            (Reg::Next, next),
            (Reg::OutSuccess, out_success),
            (Reg::OutWord, out_word),
            (Reg::App, zero),
            (Reg::Cursor, zero),
        ] {
            self.set(ctx, row, f_pop, r, v);
        }
    }

    /// Every slot: the one kind that uses it fixes its space, key and written value; an unused
    /// slot reads scratch address 0 and leaves it.
    fn fix_slots(&self, ctx: &mut Context<Fr>, uses: Vec<Vec<SlotUse>>, slots: &mut [AssignedOp]) {
        let gate = self.range.gate();
        let zero = ctx.load_zero();
        for (slot, uses) in slots.iter_mut().zip(uses) {
            let mut key = zero;
            let mut preimage = [zero; KEY_PREIMAGE];
            let mut state = zero;
            let mut written = slot.before;
            for u in &uses {
                key = gate.mul_add(ctx, u.weight, u.key, key);
                if let Some(p) = u.preimage {
                    for (cell, part) in preimage.iter_mut().zip(p) {
                        *cell = gate.mul_add(ctx, u.weight, part, *cell);
                    }
                }
                if !u.scratch {
                    state = gate.add(ctx, state, u.weight);
                }
                let delta = gate.sub(ctx, u.after, slot.before);
                written = gate.mul_add(ctx, u.weight, delta, written);
            }
            let scratch = gate.not(ctx, state);
            ctx.constrain_equal(&slot.key, &key);
            ctx.constrain_equal(&slot.scratch, &scratch);
            ctx.constrain_equal(&slot.after, &written);
            // The uses exclude each other: the active one's pre-image (zeros for scratch).
            slot.preimage = Some(preimage);
        }
    }
}
