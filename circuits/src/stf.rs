//! The reference rollup's STF circuit: the step machine's rows as constraints over the memory
//! check (`docs/reference-rollup.md`, "Status"; the native twin is
//! `lockstep_rollup_adapter::machine`).
//!
//! # What it proves
//! From the pre root, the block's tape (its transactions, as field elements) executes, row by
//! row, to the post root. Public inputs: `[pre root, post root, tape hash]`, where the tape
//! hash is Poseidon over every tape cell (tag and fields, padding included).
//!
//! # How
//! - **Registers are computed, never witnessed.** Row 0 starts from all zeros; each row's
//!   registers after are a function of its registers before, the tape step at the tape
//!   register and the values its ops read. So the prover chooses only the ops' values read.
//! - **The kind is computed too**: from `next`, the fetched tape tag, and (ending a frame)
//!   whether a committed flag or a journal entry is left to handle. Exactly one kind the
//!   circuit supports must apply; a row where none does cannot be proven.
//! - **Ops.** Every row has [`OPS_PER_ROW`] op slots. A kind fixes each slot's space, key and
//!   written value as a function of what it read; an unused slot reads scratch address 0 and
//!   leaves it. All the ops, in order, go through [`MemoryChip`] with the state keys opened at
//!   the pre root; the chip returns the post root.
//!
//! # Scope of this version
//! Blocks of **local** transactions: transfers with value, counter increments, calls that
//! revert (the reverter, `fail`, an unknown method, a value the sender cannot pay) with their
//! state changes undone. The kinds are `Tx`, `Move`, `Code`, `App` (counter), `Undo`, `Pop`
//! and `Pad`. A tape step other than a transaction, a forwarder's call, a swap or a served
//! call leaves no supported kind, so such blocks cannot be proven yet; the witness builder
//! (`lockstep_rollup_adapter::machine::Run::stf_witness`) refuses them up front, naming the
//! step or row. The tape hash is not yet tied to the block's bytes in the blob, and the
//! entries and the ETH delta are not yet exposed (the common public-input layout); both come
//! with the cross-rollup kinds.

use halo2_base::{
    gates::{
        circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
        flex_gate::MultiPhaseThreadBreakPoints,
        GateInstructions, RangeChip, RangeInstructions,
    },
    halo2_proofs::halo2curves::ff::PrimeField,
    poseidon::hasher::PoseidonHasher,
    AssignedValue, Context,
    QuantumCell::{Constant, Existing},
};
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};

use crate::{
    memory::{Access, AssignedOp, MemoryCapacity, MemoryChip, MemoryWitness, Space},
    poseidon, shape,
    smt::SparseMerkleTree,
    Error, Fr, Result,
};

/// Op slots of every row.
pub const OPS_PER_ROW: usize = 7;
/// Fields of a tape step: a transaction's sender, nonce, target, value and calldata.
pub const TAPE_FIELDS: usize = 5;
/// Tape tag of a transaction (0 is past the tape's end).
pub const TAG_TX: u8 = 1;

/// Registers, by index.
mod reg {
    pub(super) const NEXT: usize = 0;
    pub(super) const TAPE: usize = 1;
    pub(super) const DEPTH: usize = 2;
    pub(super) const JOURNAL: usize = 3;
    pub(super) const ETH: usize = 4;
    pub(super) const ASSUMED: usize = 5;
    pub(super) const F_REMOTE: usize = 6;
    pub(super) const F_CALLER: usize = 7;
    pub(super) const F_TARGET: usize = 8;
    pub(super) const F_VALUE: usize = 9;
    pub(super) const F_DATA: usize = 10;
    pub(super) const F_COMMITTED: usize = 11;
    pub(super) const F_JOURNAL: usize = 12;
    pub(super) const F_ETH: usize = 13;
    pub(super) const F_ASSUMED: usize = 14;
    pub(super) const OUT_SUCCESS: usize = 15;
    pub(super) const OUT_WORD: usize = 16;
    pub(super) const APP: usize = 17;
    pub(super) const CURSOR: usize = 18;
    pub(super) const COUNT: usize = 19;
    /// The registers a frame occupies, cleared when it ends.
    pub(super) const FRAME: [usize; 9] = [
        F_REMOTE,
        F_CALLER,
        F_TARGET,
        F_VALUE,
        F_DATA,
        F_COMMITTED,
        F_JOURNAL,
        F_ETH,
        F_ASSUMED,
    ];
}

/// Values of the `next` register (the machine's `Next`, in order).
mod next {
    pub(super) const FETCH: u64 = 0;
    pub(super) const MOVE: u64 = 1;
    pub(super) const CODE: u64 = 2;
    pub(super) const APP: u64 = 3;
    pub(super) const CALL: u64 = 5;
    pub(super) const END: u64 = 7;
}

/// State key spaces (`docs/reference-rollup.md`, "State").
const SPACE_ACCOUNT: u64 = 1;
const SPACE_STORAGE: u64 = 2;
const SPACE_CODE: u64 = 3;
/// App kinds in a code leaf's low byte.
const APP_COUNTER: u64 = 1;
const APP_FORWARDER: u64 = 2;
const APP_AMM: u64 = 3;
const APP_REVERTER: u64 = 4;
/// Method selectors.
const METHOD_TRANSFER: u64 = 0;
const METHOD_INCREMENT: u64 = 1;
const METHOD_FORWARD: u64 = 2;
const METHOD_FORWARD_THEN_REVERT: u64 = 3;
const METHOD_SWAP: u64 = 4;
const METHOD_FAIL: u64 = 5;
/// Revert words.
const REVERT_ALWAYS: u64 = 0xdead;
const REVERT_INSUFFICIENT_BALANCE: u64 = 0xba1;
const REVERT_UNKNOWN_METHOD: u64 = 0x5e1;
/// Scratch region of the journal; an address is `region · 2^40 + index · 2^8 + cell`.
pub const JOURNAL_REGION: u64 = 2;

/// The state key tag, `"lockstep.state.1"` as a 128-bit big-endian integer.
pub fn state_tag() -> Fr {
    Fr::from_u128(u128::from_be_bytes(*b"lockstep.state.1"))
}

/// One tape step as the circuit reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapeStep {
    /// [`TAG_TX`] (0 past the tape's end).
    pub tag: u8,
    /// Sender, nonce, target, value and calldata (19 bytes, big-endian) as field elements.
    pub fields: [Fr; TAPE_FIELDS],
}

impl TapeStep {
    const PAD: Self = Self {
        tag: 0,
        fields: [Fr::zero(); TAPE_FIELDS],
    };
}

/// The fixed sizes of one STF circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// Everything the STF circuit needs: the tape and the rows' ops, padded to a capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StfWitness {
    /// The tape, padded with empty steps.
    pub tape: Vec<TapeStep>,
    /// Every op slot of every row, in order, as the memory check's witness.
    pub memory: MemoryWitness,
}

impl StfWitness {
    /// The witness of `rows` (each row's ops, at most [`OPS_PER_ROW`]) executing `tape` on
    /// `pre`, padded to `capacity`: unused slots and padding rows read scratch address 0.
    pub fn new(
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
        Ok(Self { tape, memory })
    }

    /// The tape hash the circuit exposes, natively.
    pub fn tape_hash(&self) -> Fr {
        let cells: Vec<Fr> = self
            .tape
            .iter()
            .flat_map(|s| std::iter::once(Fr::from(u64::from(s.tag))).chain(s.fields))
            .collect();
        poseidon::hash(&cells)
    }
}

/// The STF circuit in the common shape, exposing `[pre root, post root, tape hash]`.
pub fn circuit(
    stage: CircuitBuilderStage,
    k: u32,
    break_points: Option<MultiPhaseThreadBreakPoints>,
    capacity: StfCapacity,
    witness: &StfWitness,
) -> Result<BaseCircuitBuilder<Fr>> {
    if witness.tape.len() != capacity.tape {
        return Err(Error::OutOfRange {
            what: "tape steps in the witness",
            value: witness.tape.len().to_string(),
            expected: "exactly the capacity (StfWitness::new pads)",
        });
    }
    let mut builder = shape::builder(stage, k, break_points)?;
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let hasher = poseidon::hasher(ctx, range.gate());
    let chip = MemoryChip::new(&range, witness.memory.depth, capacity.memory())?;
    let ops = chip.load_ops(ctx, &witness.memory)?;
    // Every slot is an op of the trace (an unused one reads scratch address 0), never padding
    // that the memory check would leave out: a slot it skipped could read anything.
    for op in &ops {
        range.gate().assert_is_const(ctx, &op.used, &Fr::one());
    }
    let keys = chip.load_keys(ctx, &witness.memory)?;
    let scratch = chip.load_scratch(ctx, &witness.memory)?;
    let pre_root = ctx.load_witness(witness.memory.pre_root);

    let stf = StfChip {
        range: &range,
        hasher: &hasher,
    };
    let tape = stf.load_tape(ctx, &witness.tape);
    let tape_hash = {
        let cells: Vec<_> = tape
            .iter()
            .flat_map(|s| std::iter::once(s.tag).chain(s.fields))
            .collect();
        poseidon::hash_assigned(&hasher, ctx, range.gate(), &cells)
    };

    let zero = ctx.load_zero();
    let mut registers = vec![zero; reg::COUNT];
    let mut padding = zero;
    for row in ops.chunks(OPS_PER_ROW) {
        let (after, pad) = stf.row(ctx, &registers, &tape, row);
        registers = after;
        padding = pad;
    }
    // The last row pads: the tape is consumed and no frame is open.
    range.gate().assert_is_const(ctx, &padding, &Fr::one());

    let post_root = chip.check(ctx, &hasher, pre_root, &ops, &keys, &scratch)?;
    builder.assigned_instances[0].extend([pre_root, post_root, tape_hash]);
    if stage != CircuitBuilderStage::Prover {
        if let Err(error) = shape::check_fits(&mut builder) {
            // Never synthesised: drop it quietly.
            builder.clear();
            return Err(error);
        }
    }
    Ok(builder)
}

/// A tape step loaded into the circuit.
#[derive(Debug, Clone, Copy)]
struct AssignedStep {
    tag: AssignedValue<Fr>,
    fields: [AssignedValue<Fr>; TAPE_FIELDS],
}

/// What a kind asks of one op slot.
struct SlotUse {
    /// The kind's flag times the slot's own condition.
    weight: AssignedValue<Fr>,
    scratch: bool,
    key: AssignedValue<Fr>,
    after: AssignedValue<Fr>,
}

struct StfChip<'a> {
    range: &'a RangeChip<Fr>,
    hasher: &'a PoseidonHasher<Fr, { poseidon::T }, { poseidon::RATE }>,
}

impl StfChip<'_> {
    /// Loads the tape: tags 1 then 0 (a prefix of transactions), fields in range.
    fn load_tape(&self, ctx: &mut Context<Fr>, tape: &[TapeStep]) -> Vec<AssignedStep> {
        let gate = self.range.gate();
        let steps: Vec<AssignedStep> = tape
            .iter()
            .map(|step| AssignedStep {
                tag: ctx.load_witness(Fr::from(u64::from(step.tag))),
                fields: step.fields.map(|f| ctx.load_witness(f)),
            })
            .collect();
        let mut previous: Option<AssignedValue<Fr>> = None;
        for step in &steps {
            // The only tag so far is a transaction's: tags are bits forming a prefix.
            gate.assert_bit(ctx, step.tag);
            if let Some(previous) = previous {
                let gap = gate.mul_not(ctx, previous, step.tag);
                gate.assert_is_const(ctx, &gap, &Fr::zero());
            }
            previous = Some(step.tag);
            // from, nonce, to, value, calldata: 160, 64, 160, 96 and 152 bits.
            for (field, bits) in step.fields.iter().zip([160, 64, 160, 96, 152]) {
                self.range.range_check(ctx, *field, bits);
            }
        }
        steps
    }

    /// `Poseidon(TAG, space, address, slot)`.
    fn state_key(
        &self,
        ctx: &mut Context<Fr>,
        space: AssignedValue<Fr>,
        address: AssignedValue<Fr>,
        slot: AssignedValue<Fr>,
    ) -> AssignedValue<Fr> {
        let tag = ctx.load_constant(state_tag());
        poseidon::hash_assigned(
            self.hasher,
            ctx,
            self.range.gate(),
            &[tag, space, address, slot],
        )
    }

    /// The scratch address of journal entry `index`, cell `cell`.
    fn journal_cell(
        &self,
        ctx: &mut Context<Fr>,
        index: AssignedValue<Fr>,
        cell: u64,
    ) -> AssignedValue<Fr> {
        let base = Fr::from((JOURNAL_REGION << 40) + cell);
        self.range
            .gate()
            .mul_add(ctx, index, Constant(Fr::from(1 << 8)), Constant(base))
    }

    /// `value` split as `low + 2^bits · high`, with `low < 2^bits` and `high < 2^(total −
    /// bits)`. `value` must be gated to 0 where it is not meant to decompose.
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

    /// One row: its registers after, and whether it is a padding row.
    fn row(
        &self,
        ctx: &mut Context<Fr>,
        b: &[AssignedValue<Fr>],
        tape: &[AssignedStep],
        slots: &[AssignedOp],
    ) -> (Vec<AssignedValue<Fr>>, AssignedValue<Fr>) {
        let gate = self.range.gate();
        let one = Constant(Fr::one());
        let is = |ctx: &mut Context<Fr>, a: AssignedValue<Fr>, v: u64| {
            gate.is_equal(ctx, a, Constant(Fr::from(v)))
        };

        // The tape step at the tape register (all zero past the end).
        let indicator = gate.idx_to_indicator(ctx, b[reg::TAPE], tape.len());
        let tag = gate.select_by_indicator(ctx, tape.iter().map(|s| s.tag), indicator.clone());
        let field: Vec<AssignedValue<Fr>> = (0..TAPE_FIELDS)
            .map(|j| {
                gate.select_by_indicator(ctx, tape.iter().map(|s| s.fields[j]), indicator.clone())
            })
            .collect();
        let (from, nonce, to, value, data) = (field[0], field[1], field[2], field[3], field[4]);

        // Which kind: from `next`, the tag, and what is left to end a frame.
        let at_fetch = is(ctx, b[reg::NEXT], next::FETCH);
        let at_move = is(ctx, b[reg::NEXT], next::MOVE);
        let at_code = is(ctx, b[reg::NEXT], next::CODE);
        let at_app = is(ctx, b[reg::NEXT], next::APP);
        let at_end = is(ctx, b[reg::NEXT], next::END);
        let no_frame = gate.is_zero(ctx, b[reg::DEPTH]);
        let fetch_here = gate.mul(ctx, at_fetch, no_frame);
        let f_tx = gate.mul(ctx, fetch_here, tag);
        let f_pad = gate.mul_not(ctx, tag, fetch_here);

        let success = b[reg::OUT_SUCCESS];
        let uncommitted_remote = gate.mul_not(ctx, b[reg::F_COMMITTED], b[reg::F_REMOTE]);
        let keep = gate.mul_not(ctx, uncommitted_remote, success);
        let discard = gate.not(ctx, keep);
        let marks_left = self
            .range
            .is_less_than(ctx, b[reg::CURSOR], b[reg::ASSUMED], 16);
        let must_mark = gate.mul_not(ctx, success, marks_left);
        let undos_left = self
            .range
            .is_less_than(ctx, b[reg::F_JOURNAL], b[reg::JOURNAL], 32);
        let must_undo = gate.mul(ctx, discard, undos_left);
        let no_mark = gate.not(ctx, must_mark);
        let end_no_mark = gate.mul(ctx, at_end, no_mark);
        let f_undo = gate.mul(ctx, end_no_mark, must_undo);
        let f_pop = gate.mul_not(ctx, must_undo, end_no_mark);
        let (f_move, f_code, f_app) = (at_move, at_code, at_app);
        // Exactly one supported kind. (Marks, served calls, results, calls, swaps and a
        // transaction while a frame waits have none yet.)
        let kinds = gate.sum(ctx, [f_tx, f_pad, f_move, f_code, f_app, f_undo, f_pop]);
        gate.assert_is_const(ctx, &kinds, &Fr::one());

        // State keys: `ka` (the row's main account, code or slot) and `kb` (a move's target).
        let f_tx_move = gate.add(ctx, f_tx, f_move);
        let space = gate.inner_product(
            ctx,
            [f_tx_move, f_code, f_app],
            [SPACE_ACCOUNT, SPACE_CODE, SPACE_STORAGE].map(|s| Constant(Fr::from(s))),
        );
        let f_code_app = gate.add(ctx, f_code, f_app);
        let address = gate.inner_product(
            ctx,
            [f_tx, f_move, f_code_app],
            [from, b[reg::F_CALLER], b[reg::F_TARGET]].map(Existing),
        );
        let zero = ctx.load_zero();
        let ka = self.state_key(ctx, space, address, zero);
        let account_space = ctx.load_constant(Fr::from(SPACE_ACCOUNT));
        let kb = self.state_key(ctx, account_space, b[reg::F_TARGET], zero);

        let mut uses: Vec<Vec<SlotUse>> = (0..OPS_PER_ROW).map(|_| Vec::new()).collect();
        let journal_uses = |ctx: &mut Context<Fr>,
                            uses: &mut Vec<Vec<SlotUse>>,
                            first: usize,
                            weight: AssignedValue<Fr>,
                            index: AssignedValue<Fr>,
                            key: AssignedValue<Fr>,
                            previous: AssignedValue<Fr>| {
            let key_cell = self.journal_cell(ctx, index, 0);
            let previous_cell = self.journal_cell(ctx, index, 1);
            uses[first].push(SlotUse {
                weight,
                scratch: true,
                key: key_cell,
                after: key,
            });
            uses[first + 1].push(SlotUse {
                weight,
                scratch: true,
                key: previous_cell,
                after: previous,
            });
        };
        let mut after: Vec<AssignedValue<Fr>> = b.to_vec();
        // after[r] += flag · (candidate − before[r]).
        let set = |ctx: &mut Context<Fr>,
                   after: &mut Vec<AssignedValue<Fr>>,
                   flag: AssignedValue<Fr>,
                   r: usize,
                   candidate: AssignedValue<Fr>| {
            let delta = gate.sub(ctx, candidate, b[r]);
            after[r] = gate.mul_add(ctx, flag, delta, after[r]);
        };
        let constant = |ctx: &mut Context<Fr>, v: u64| ctx.load_constant(Fr::from(v));
        let two_128 = Fr::from_u128(1u128 << 127).double();

        // An account read in slot 0 (Tx, Move) and in slot 3 (Move's credit).
        let value_nonzero = {
            let z = gate.is_zero(ctx, b[reg::F_VALUE]);
            gate.not(ctx, z)
        };
        let move_moves = gate.mul(ctx, f_move, value_nonzero);
        let reads_account = gate.add(ctx, f_tx, move_moves);
        let account0 = gate.mul(ctx, reads_account, slots[0].before);
        let (balance0, nonce0) = self.split(ctx, account0, 128, 192);

        // --- Tx: nonce and balance checks, nonce + 1, the frame opens. ---
        {
            let off = gate.sub(ctx, nonce0, nonce);
            let off = gate.mul(ctx, off, f_tx);
            gate.assert_is_const(ctx, &off, &Fr::zero());
            let spare = gate.sub(ctx, balance0, value);
            let spare = gate.mul(ctx, spare, f_tx);
            self.range.range_check(ctx, spare, 128);
            let bumped = gate.add(ctx, slots[0].before, Constant(two_128));
            uses[0].push(SlotUse {
                weight: f_tx,
                scratch: false,
                key: ka,
                after: bumped,
            });
            journal_uses(
                ctx,
                &mut uses,
                1,
                f_tx,
                b[reg::JOURNAL],
                ka,
                slots[0].before,
            );
            let journal = gate.add(ctx, b[reg::JOURNAL], one);
            let tape_next = gate.add(ctx, b[reg::TAPE], one);
            let one_v = constant(ctx, 1);
            let next_move = constant(ctx, next::MOVE);
            for (r, v) in [
                (reg::NEXT, next_move),
                (reg::TAPE, tape_next),
                (reg::DEPTH, one_v),
                (reg::JOURNAL, journal),
                (reg::F_REMOTE, zero),
                (reg::F_CALLER, from),
                (reg::F_TARGET, to),
                (reg::F_VALUE, value),
                (reg::F_DATA, data),
                (reg::F_COMMITTED, one_v),
                (reg::F_JOURNAL, journal),
                (reg::F_ETH, b[reg::ETH]),
                (reg::F_ASSUMED, b[reg::ASSUMED]),
                (reg::OUT_SUCCESS, zero),
                (reg::OUT_WORD, zero),
                (reg::APP, zero),
            ] {
                set(ctx, &mut after, f_tx, r, v);
            }
        }

        // --- Move: debit the caller, credit the target; a caller that cannot pay reverts. ---
        {
            // Value arriving with a served call is not supported yet.
            let remote = gate.mul(ctx, f_move, b[reg::F_REMOTE]);
            gate.assert_is_const(ctx, &remote, &Fr::zero());
            let v = b[reg::F_VALUE];
            let short = self.range.is_less_than(ctx, balance0, v, 128);
            let paid = gate.mul_not(ctx, short, move_moves);
            let unpaid = gate.mul(ctx, short, move_moves);
            // Slot 0: the caller's account, debited if it can pay (else only read).
            let debit = gate.mul(ctx, paid, v);
            let debited = gate.sub(ctx, slots[0].before, debit);
            uses[0].push(SlotUse {
                weight: move_moves,
                scratch: false,
                key: ka,
                after: debited,
            });
            journal_uses(
                ctx,
                &mut uses,
                1,
                paid,
                b[reg::JOURNAL],
                ka,
                slots[0].before,
            );
            // Slot 3: the target's account, credited without overflowing 128 bits.
            let account3 = gate.mul(ctx, paid, slots[3].before);
            let (balance3, _) = self.split(ctx, account3, 128, 192);
            let credited_balance = gate.add(ctx, balance3, v);
            let credited_balance = gate.mul(ctx, credited_balance, paid);
            self.range.range_check(ctx, credited_balance, 128);
            let credited = gate.add(ctx, slots[3].before, v);
            uses[3].push(SlotUse {
                weight: paid,
                scratch: false,
                key: kb,
                after: credited,
            });
            let journal_plus_one = gate.add(ctx, b[reg::JOURNAL], one);
            journal_uses(
                ctx,
                &mut uses,
                4,
                paid,
                journal_plus_one,
                kb,
                slots[3].before,
            );
            let journal = gate.mul_add(ctx, paid, Constant(Fr::from(2)), b[reg::JOURNAL]);
            set(ctx, &mut after, f_move, reg::JOURNAL, journal);
            // next: Code, or End with 0xba1 when the caller cannot pay.
            let next = gate.mul_add(
                ctx,
                unpaid,
                Constant(Fr::from(next::END - next::CODE)),
                Constant(Fr::from(next::CODE)),
            );
            set(ctx, &mut after, f_move, reg::NEXT, next);
            let word = gate.mul(ctx, unpaid, Constant(Fr::from(REVERT_INSUFFICIENT_BALANCE)));
            set(ctx, &mut after, f_move, reg::OUT_WORD, word);
            set(ctx, &mut after, f_move, reg::OUT_SUCCESS, zero);
            let cursor = gate.select(ctx, b[reg::F_ASSUMED], b[reg::CURSOR], unpaid);
            set(ctx, &mut after, f_move, reg::CURSOR, cursor);
        }

        // --- Code: read the target's code leaf and dispatch on (app, method). ---
        {
            uses[0].push(SlotUse {
                weight: f_code,
                scratch: false,
                key: ka,
                after: slots[0].before,
            });
            let leaf = gate.mul(ctx, f_code, slots[0].before);
            let (app, rest) = self.split(ctx, leaf, 8, 200);
            self.range
                .check_less_than(ctx, app, Constant(Fr::from(5)), 8);
            let data = gate.mul(ctx, f_code, b[reg::F_DATA]);
            let (_, method) = self.split(ctx, data, 144, 152);
            self.range
                .check_less_than(ctx, method, Constant(Fr::from(6)), 8);
            let app_is = |ctx: &mut Context<Fr>, v| is(ctx, app, v);
            let method_is = |ctx: &mut Context<Fr>, v| is(ctx, method, v);
            let counter = app_is(ctx, APP_COUNTER);
            let forwarder = app_is(ctx, APP_FORWARDER);
            let amm = app_is(ctx, APP_AMM);
            let reverter = app_is(ctx, APP_REVERTER);
            // Only a forwarder's code has parameters (an empty leaf has none either).
            let no_app = gate.is_zero(ctx, app);
            let bare = gate.sum(ctx, [no_app, counter, amm, reverter]);
            let stray = gate.mul(ctx, bare, rest);
            gate.assert_is_const(ctx, &stray, &Fr::zero());
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
            set(ctx, &mut after, f_code, reg::NEXT, next);
            set(ctx, &mut after, f_code, reg::OUT_SUCCESS, transfers);
            let word = gate.inner_product(
                ctx,
                [reverts, unknown],
                [REVERT_ALWAYS, REVERT_UNKNOWN_METHOD].map(|w| Constant(Fr::from(w))),
            );
            set(ctx, &mut after, f_code, reg::OUT_WORD, word);
            set(ctx, &mut after, f_code, reg::APP, slots[0].before);
            let cursor = gate.select(ctx, b[reg::F_ASSUMED], b[reg::CURSOR], ends);
            set(ctx, &mut after, f_code, reg::CURSOR, cursor);
        }

        // --- App: a counter's increment (a swap has no row yet). ---
        {
            let counter = gate.sub(ctx, b[reg::APP], Constant(Fr::from(APP_COUNTER)));
            let counter = gate.mul(ctx, counter, f_app);
            gate.assert_is_const(ctx, &counter, &Fr::zero());
            let count = gate.mul(ctx, f_app, slots[0].before);
            self.range.range_check(ctx, count, 128);
            let max = Fr::from_u128(u128::MAX);
            let wraps = gate.is_equal(ctx, count, Constant(max));
            // count + 1, wrapping at 2^128.
            let up = gate.add(ctx, slots[0].before, one);
            let up = gate.sub_mul(ctx, up, wraps, Constant(two_128));
            uses[0].push(SlotUse {
                weight: f_app,
                scratch: false,
                key: ka,
                after: up,
            });
            journal_uses(
                ctx,
                &mut uses,
                1,
                f_app,
                b[reg::JOURNAL],
                ka,
                slots[0].before,
            );
            let journal = gate.add(ctx, b[reg::JOURNAL], one);
            set(ctx, &mut after, f_app, reg::JOURNAL, journal);
            let one_v = constant(ctx, 1);
            let end = constant(ctx, next::END);
            set(ctx, &mut after, f_app, reg::OUT_SUCCESS, one_v);
            set(ctx, &mut after, f_app, reg::OUT_WORD, up);
            set(ctx, &mut after, f_app, reg::NEXT, end);
            set(ctx, &mut after, f_app, reg::CURSOR, b[reg::F_ASSUMED]);
        }

        // --- Undo: the last journal entry's key gets its previous value back. ---
        {
            let index = gate.sub(ctx, b[reg::JOURNAL], one);
            let key_cell = self.journal_cell(ctx, index, 0);
            let previous_cell = self.journal_cell(ctx, index, 1);
            uses[0].push(SlotUse {
                weight: f_undo,
                scratch: true,
                key: key_cell,
                after: slots[0].before,
            });
            uses[1].push(SlotUse {
                weight: f_undo,
                scratch: true,
                key: previous_cell,
                after: slots[1].before,
            });
            uses[2].push(SlotUse {
                weight: f_undo,
                scratch: false,
                key: slots[0].before,
                after: slots[1].before,
            });
            set(ctx, &mut after, f_undo, reg::JOURNAL, index);
        }

        // --- Pop: the frame ends (a transaction's own frame: nothing below it yet). ---
        {
            let nested = gate.sub(ctx, b[reg::DEPTH], one);
            let nested = gate.mul(ctx, nested, f_pop);
            gate.assert_is_const(ctx, &nested, &Fr::zero());
            let remote = gate.mul(ctx, f_pop, b[reg::F_REMOTE]);
            gate.assert_is_const(ctx, &remote, &Fr::zero());
            let eth = gate.select(ctx, b[reg::F_ETH], b[reg::ETH], discard);
            set(ctx, &mut after, f_pop, reg::ETH, eth);
            for r in reg::FRAME.into_iter().chain([
                reg::DEPTH,
                reg::NEXT,
                reg::OUT_SUCCESS,
                reg::OUT_WORD,
                reg::APP,
                reg::CURSOR,
            ]) {
                set(ctx, &mut after, f_pop, r, zero);
            }
        }

        // Every slot: the one kind that uses it fixes its space, key and written value; an
        // unused slot reads scratch address 0 and leaves it.
        for (slot, uses) in slots.iter().zip(uses) {
            let mut key = zero;
            let mut state = zero;
            let mut written = slot.before;
            for u in &uses {
                key = gate.mul_add(ctx, u.weight, u.key, key);
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
        }
        (after, f_pad)
    }
}
