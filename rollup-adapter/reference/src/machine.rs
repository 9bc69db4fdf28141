//! The STF step machine: a block's execution as a sequence of micro-steps of fixed kinds, the
//! row layout the STF circuit proves. It is the circuit's native twin.
//!
//! # Rows
//! A row is one micro-step. It holds its [`Kind`], the [`Registers`] it starts from and ends
//! with, and the memory [`Op`]s it made, in order. Registers are what one row hands the next (in
//! the circuit: assigned values carried from row to row). Everything else lives in memory:
//! - **state** cells, keyed by the state key, opened at the pre root and closed toward the post
//!   root ([`lockstep_circuits::memory`]);
//! - **scratch** cells, keyed by a small address ([`Scratch`]), that start at `0`: the stack of
//!   suspended frames, the journal of state writes, and both entry lists.
//!
//! # Two functions, one rule
//! [`run`] executes a block's tape against the pre state and records the rows. [`check`] takes
//! the rows alone and verifies them without the executor, the way the circuit will:
//! 1. every row's registers after, and every op's cell and written value, are what the row's
//!    kind computes from its registers before, its tape step and the values its ops read;
//! 2. each row starts where the previous one ended, from the initial registers, and the last
//!    ends with the tape consumed and no frame open;
//! 3. the ops form a consistent memory: scratch cells start at `0`, state cells at the pre
//!    state, and every op reads the value the previous op on its cell left.
//!
//! Both share [`step`], the transition function; they differ in where reads come from (real
//! memory, or the row's own ops). The STF circuit is `step` as constraints plus the memory
//! check. That the rows agree with the executor is tested over every scenario and random
//! workload: same post root, ETH delta and entry lists.
//!
//! # Kinds
//! The register `next` says which kind the next row is, except at [`Next::Fetch`], where the
//! tape's next step decides: a transaction ([`Kind::Tx`]), a served call ([`Kind::Serve`]), the
//! result of the pending outgoing call ([`Kind::Return`]), or the tape's end ([`Kind::Pad`]).
//! A frame ends through [`Next::End`]: one [`Kind::Mark`] row per assumed entry to mark
//! uncommitted (when the frame failed), one [`Kind::Undo`] row per journal entry to undo (when
//! it is discarded), then one [`Kind::Pop`] row.

use std::collections::HashMap;

use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
use lockstep_circuits::{
    entry::{Address, CallKind, Domain, Entry},
    layout::{SlotHeader, MAX_ENTRIES},
    memory::{Access, MemoryWitness, Space},
    Fr,
};
use ruint::aliases::U256;
use serde::{Deserialize, Serialize};

pub use crate::spec::Next;
use crate::{
    abi::{
        self, AppKind, CallData, Method, MAX_VALUE, REVERT_ALWAYS, REVERT_INSUFFICIENT_BALANCE,
        REVERT_SLIPPAGE, REVERT_UNKNOWN_METHOD,
    },
    block::{fr_hex, Block, Step},
    circuit as stf,
    spec::MAX_CALL_DEPTH,
    state::{address_to_field, field_to_u128, Account, State, StateKey},
    Error, Result,
};

/// Most memory ops one row makes: a served call that arrives while a forwarder waits writes
/// three entry cells and saves the waiting frame (four); a forwarder's outgoing call debits
/// its account (with two journal cells) and writes four entry cells; a swap reads x, pays
/// out of y and credits x (with their journal cells). It is the STF circuit's op slots per row.
pub const MAX_OPS_PER_ROW: usize = stf::OPS_PER_ROW;

/// What a row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Takes a transaction from the tape: checks and bumps the sender's nonce, opens a frame.
    Tx,
    /// Takes a served call from the tape: records the served entry, opens a frame.
    Serve,
    /// Moves the frame's value from its source to its target.
    Move,
    /// Reads the target's code and dispatches on (app, method).
    Code,
    /// Runs a counter's increment, or an AMM's swap up to its reserves.
    App,
    /// Credits a swap's caller with the tokens out.
    Tokens,
    /// A forwarder calls its target: opens a frame here, or debits, records the assumed entry
    /// and waits for the result.
    Call,
    /// Takes the pending call's result from the tape; refunds a failed call's value.
    Return,
    /// A forwarder stores the result of its call (or counts the failure) and returns.
    Resume,
    /// Marks one assumed entry of a failed frame uncommitted.
    Mark,
    /// Undoes one journal entry of a discarded frame.
    Undo,
    /// Ends the frame: records a served call's result, restores the suspended frame below.
    Pop,
    /// After the tape's end: nothing.
    Pad,
}

/// A call's result: success and the return (or revert) word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// Whether it returned normally.
    pub success: bool,
    /// Return or revert word.
    pub word: u128,
}

impl Outcome {
    const fn ok(word: u128) -> Self {
        Self {
            success: true,
            word,
        }
    }

    const fn revert(word: u128) -> Self {
        Self {
            success: false,
            word,
        }
    }
}

/// The running frame's registers. With no frame open they are all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// Whether the value arrived with a served call (else it is debited from `caller` here).
    pub remote: bool,
    /// Calling account or app (on the source rollup for a served call).
    pub caller: Address,
    /// Called app or account.
    pub target: Address,
    /// Value carried.
    pub value: u128,
    /// What is called.
    pub data: CallData,
    /// Whether the frame's cross-rollup calls are committed as far as known at its start.
    pub committed: bool,
    /// Journal length at the frame's start.
    pub journal: u32,
    /// ETH delta at the frame's start.
    pub eth_delta: i128,
    /// Assumed entries at the frame's start.
    pub assumed: u32,
    /// The served entry of a served call.
    pub entry: u32,
    /// The assumed entry whose result the frame waits for (while `waiting`).
    pub call: u32,
    /// Whether the frame waits for an outgoing call's result.
    pub waiting: bool,
}

impl Default for Frame {
    fn default() -> Self {
        Self {
            remote: false,
            caller: Address::default(),
            target: Address::default(),
            value: 0,
            data: CallData::transfer(),
            committed: false,
            journal: 0,
            eth_delta: 0,
            assumed: 0,
            entry: 0,
            call: 0,
            waiting: false,
        }
    }
}

/// What one row hands the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Registers {
    /// What the next row does.
    pub next: Next,
    /// Tape steps taken.
    pub tape: u32,
    /// Open frames (the running one included).
    pub depth: u32,
    /// Journal length.
    pub journal: u32,
    /// The block's ETH delta so far.
    pub eth_delta: i128,
    /// Assumed entries recorded (the next outgoing call's sequence number).
    pub assumed: u32,
    /// Served entries recorded.
    pub served: u32,
    /// The running frame.
    pub frame: Frame,
    /// The running frame's result (ending it), or its call's result (resuming it).
    pub outcome: Outcome,
    /// The target's app, from the code row to the row that runs it.
    pub app: Option<AppKind>,
    /// The next assumed entry a failed frame marks.
    pub cursor: u32,
}

/// A scratch address: a region, an index in it and a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scratch {
    /// Cell `c` of suspended frame `depth` (frames count from 1), of 4 packed cells: the caller
    /// with the flags and checkpoints, the target, the value with the calldata, the ETH delta
    /// checkpoint.
    Stack(u32, u8),
    /// Cell `c` of journal entry `i`: 0 the key, 1 its previous value.
    Journal(u32, u8),
    /// Cell `c` of assumed entry `i`, of 5 (see `docs/reference-rollup.md`).
    Assumed(u32, u8),
    /// Cell `c` of served entry `i`, of 4.
    Served(u32, u8),
}

impl Scratch {
    /// The address as one integer: `region · 2^40 + index · 2^8 + field`.
    pub fn to_u64(self) -> u64 {
        let (region, index, field) = match self {
            Self::Stack(i, f) => (stf::scratch::STACK, i, f),
            Self::Journal(i, f) => (stf::scratch::JOURNAL, i, f),
            Self::Assumed(i, f) => (stf::scratch::ASSUMED, i, f),
            Self::Served(i, f) => (stf::scratch::SERVED, i, f),
        };
        stf::scratch::address(region, u64::from(index), u64::from(field))
    }
}

/// Cells of an assumed entry: caller and destination rollup, target, value and calldata,
/// committed flag, result. The call row writes the first four, the return row the result, a
/// mark row the committed flag.
const ASSUMED_CALLER: u8 = stf::scratch::ASSUMED_CALLER as u8;
const ASSUMED_TARGET: u8 = stf::scratch::ASSUMED_TARGET as u8;
const ASSUMED_CALL: u8 = stf::scratch::ASSUMED_CALL as u8;
const ASSUMED_COMMITTED: u8 = stf::scratch::ASSUMED_COMMITTED as u8;
const ASSUMED_RESULT: u8 = stf::scratch::ASSUMED_RESULT as u8;
/// Cells of a served entry: caller, source rollup and sequence number; target and committed
/// flag; value and calldata; result. The serve row writes the first three, the pop row the
/// result.
const SERVED_CALLER: u8 = stf::scratch::SERVED_CALLER as u8;
const SERVED_TARGET: u8 = stf::scratch::SERVED_TARGET as u8;
const SERVED_CALL: u8 = stf::scratch::SERVED_CALL as u8;
const SERVED_RESULT: u8 = stf::scratch::SERVED_RESULT as u8;

/// A memory cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cell {
    /// A state key.
    State(Fr),
    /// A scratch address.
    Scratch(Scratch),
}

/// One memory access: a cell's value before and after (equal for a read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The cell.
    pub cell: Cell,
    /// Its value before.
    pub before: Fr,
    /// Its value after.
    pub after: Fr,
}

/// One micro-step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// What it does.
    pub kind: Kind,
    /// Registers it starts from.
    pub before: Registers,
    /// Registers it ends with.
    pub after: Registers,
    /// Its memory ops, in order.
    pub ops: Vec<Op>,
}

/// What a block produced, as the rows compute it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// The state root after the block.
    pub post_root: Fr,
    /// The block's ETH delta.
    pub eth_delta: i128,
    /// Calls this rollup made to others, with the results it assumed.
    pub assumed: Vec<Entry>,
    /// Calls it served, with the results it produced.
    pub served: Vec<Entry>,
}

/// A block run through the machine.
#[derive(Debug, Clone)]
pub struct Run {
    /// The rows, up to the tape's end (no padding).
    pub rows: Vec<Row>,
    /// What the block produced.
    pub outputs: Outputs,
    /// The rows' ops as the memory check's witness: state keys opened at the pre root, and
    /// scratch cells.
    pub memory: MemoryWitness,
}

/// What a run costs: the numbers the STF circuit's size follows from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Tape steps.
    pub steps: usize,
    /// Rows (no padding).
    pub rows: usize,
    /// Ops on state cells.
    pub state_ops: usize,
    /// Ops on scratch cells.
    pub scratch_ops: usize,
    /// Distinct state keys.
    pub state_keys: usize,
    /// Distinct scratch cells.
    pub scratch_cells: usize,
    /// Most ops in one row.
    pub widest_row: usize,
    /// Rows of each kind.
    pub kinds: Vec<(Kind, usize)>,
}

impl Stats {
    /// The smallest STF capacity that holds this run: one padding row after the last, and
    /// scratch address 0 for unused op slots.
    pub const fn capacity(&self) -> stf::StfCapacity {
        stf::StfCapacity {
            rows: self.rows + 1,
            tape: self.steps,
            keys: self.state_keys,
            scratch: self.scratch_cells + 1,
        }
    }

    /// Whether the run fits `capacity`; the error names every dimension it exceeds.
    pub fn check_fits(&self, capacity: &stf::StfCapacity) -> std::result::Result<(), String> {
        check_fits(&self.capacity(), capacity)
    }
}

/// Whether a run that `needs` a capacity fits `capacity`; the error names every dimension it
/// exceeds.
pub fn check_fits(
    needs: &stf::StfCapacity,
    capacity: &stf::StfCapacity,
) -> std::result::Result<(), String> {
    let over: Vec<String> = [
        ("rows", needs.rows, capacity.rows),
        ("tape steps", needs.tape, capacity.tape),
        ("state keys", needs.keys, capacity.keys),
        ("scratch cells", needs.scratch, capacity.scratch),
    ]
    .into_iter()
    .filter(|(_, need, have)| need > have)
    .map(|(what, need, have)| format!("{what} {need} > {have}"))
    .collect();
    if over.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the block does not fit the STF circuit's capacity: {}",
            over.join(", ")
        ))
    }
}

impl Run {
    /// Memory ops of all rows.
    pub fn op_count(&self) -> usize {
        self.rows.iter().map(|r| r.ops.len()).sum()
    }

    /// The STF circuit's witness of this run of `block` on `pre`, padded to `capacity`; its
    /// proof exposes `da_commitment` for the block's data and the deployment `domain`.
    pub fn stf_witness(
        &self,
        pre: &State,
        block: &Block,
        domain: Domain,
        da_commitment: Fr,
        capacity: stf::StfCapacity,
    ) -> Result<stf::StfWitness> {
        let tape: Vec<stf::TapeStep> = block.steps.iter().map(tape_step).collect();
        let ops: Vec<Vec<Access>> = self
            .rows
            .iter()
            .map(|row| row.ops.iter().map(access).collect())
            .collect();
        let header = SlotHeader {
            domain,
            slot: block.slot,
            rollup_id: block.rollup_id,
            pre_root: block.pre_root,
            post_root: self.outputs.post_root,
            da_commitment,
            eth_delta: self.outputs.eth_delta,
            l1_digest: Fr::zero(),
        };
        Ok(stf::StfWitness::new(
            header,
            pre.tree(),
            &tape,
            &ops,
            capacity,
        )?)
    }

    /// Row, op and cell counts of the run.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            steps: self
                .rows
                .iter()
                .filter(|r| matches!(r.kind, Kind::Tx | Kind::Serve | Kind::Return))
                .count(),
            rows: self.rows.len(),
            ..Stats::default()
        };
        let mut keys = std::collections::HashSet::new();
        let mut cells = std::collections::HashSet::new();
        let mut kinds: HashMap<Kind, usize> = HashMap::new();
        for row in &self.rows {
            *kinds.entry(row.kind).or_default() += 1;
            stats.widest_row = stats.widest_row.max(row.ops.len());
            for op in &row.ops {
                match op.cell {
                    Cell::State(key) => {
                        stats.state_ops += 1;
                        keys.insert(key.to_bytes());
                    }
                    Cell::Scratch(address) => {
                        stats.scratch_ops += 1;
                        cells.insert(address);
                    }
                }
            }
        }
        stats.state_keys = keys.len();
        stats.scratch_cells = cells.len();
        stats.kinds = kinds.into_iter().collect();
        stats.kinds.sort_by_key(|(kind, _)| *kind as u8);
        stats
    }

    /// The rows padded with [`Kind::Pad`] rows to `capacity`, as the circuit lays them out.
    pub fn padded(&self, capacity: usize) -> Result<Vec<Row>> {
        if self.rows.len() > capacity {
            return Err(Error::OutOfRange {
                what: "step machine rows",
                value: format!("{} rows for a capacity of {capacity}", self.rows.len()),
                expected: "at most the circuit's row capacity",
            });
        }
        let mut rows = self.rows.clone();
        let end = rows.last().map_or_else(Registers::default, |r| r.after);
        rows.resize(
            capacity,
            Row {
                kind: Kind::Pad,
                before: end,
                after: end,
                ops: Vec::new(),
            },
        );
        Ok(rows)
    }
}

/// What a row sees of memory. [`run`] answers from the state and scratch; [`check`] from the
/// row's own ops.
pub trait Memory {
    /// One op on `cell`: `change` maps its value before to its value after (the identity for a
    /// read). Returns the value before.
    fn access(&mut self, cell: Cell, change: &mut dyn FnMut(Fr) -> Result<Fr>) -> Result<Fr>;
}

fn read(memory: &mut dyn Memory, cell: Cell) -> Result<Fr> {
    memory.access(cell, &mut Ok)
}

fn write(memory: &mut dyn Memory, cell: Cell, value: Fr) -> Result<Fr> {
    memory.access(cell, &mut |_| Ok(value))
}

/// A block's fixed context: its tape and whose it is.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The rollup.
    pub rollup: u32,
    /// The tape.
    pub tape: &'a [Step],
}

/// Runs `block`'s tape on `pre` (the state at its pre root) and records the rows.
///
/// Fails where replay fails: a tape execution does not follow, a step the rules refuse (bad
/// nonce, value above the balance, a call too deep, too many entries, a call into L1), a key
/// collision, or a post root other than the header's.
pub fn run(pre: &State, domain: Domain, block: &Block) -> Result<Run> {
    if pre.root() != block.pre_root {
        return Err(machine_error(
            0,
            format!(
                "pre root {} is not the state's root {}",
                fr_hex(&block.pre_root),
                fr_hex(&pre.root())
            ),
        ));
    }
    let mut machine = Machine::new(pre, block.rollup_id);
    machine.advance(&block.steps)?;
    let rows = machine.rows;
    let (outputs, memory) = outputs(pre, domain, block, &rows)?;
    Ok(Run {
        rows,
        outputs,
        memory,
    })
}

/// The step machine over a tape that grows at its end: [`run`] gives it a whole block at once;
/// a builder gives it each transaction's steps as the transaction completes
/// ([`crate::ReferenceRollup`] sizes its open block so), and every step is run once.
///
/// `P` holds the pre state: borrowed for one run, owned by a builder's open block.
#[derive(Debug)]
pub struct Machine<P> {
    pre: P,
    rollup: u32,
    /// State cells touched, with the value each holds now: the pre state under the writes.
    state: HashMap<Fr, Fr>,
    /// Scratch cells touched, with the value each holds now.
    scratch: HashMap<Scratch, Fr>,
    registers: Registers,
    rows: Vec<Row>,
}

/// Where a [`Machine`] was, to go back to: taken before a transaction that may be undone.
#[derive(Debug, Clone)]
pub struct MachineCheckpoint {
    state: HashMap<Fr, Fr>,
    scratch: HashMap<Scratch, Fr>,
    registers: Registers,
    rows: usize,
}

impl<P: std::borrow::Borrow<State>> Machine<P> {
    /// A machine about to run `rollup`'s block from `pre`.
    pub fn new(pre: P, rollup: u32) -> Self {
        Self {
            pre,
            rollup,
            state: HashMap::new(),
            scratch: HashMap::new(),
            registers: Registers::default(),
            rows: Vec::new(),
        }
    }

    /// Runs rows until the machine has consumed `tape` and closed every frame. `tape` is the
    /// whole tape so far: it starts with every step the machine has already taken.
    pub fn advance(&mut self, tape: &[Step]) -> Result<()> {
        let context = Context {
            rollup: self.rollup,
            tape,
        };
        let mut memory = Live {
            pre: self.pre.borrow(),
            state: std::mem::take(&mut self.state),
            scratch: std::mem::take(&mut self.scratch),
            ops: Vec::new(),
        };
        let mut result = Ok(());
        while !finished(&self.registers, &context) {
            let before = self.registers;
            match step(&mut self.registers, &context, &mut memory) {
                Ok(kind) => self.rows.push(Row {
                    kind,
                    before,
                    after: self.registers,
                    ops: std::mem::take(&mut memory.ops),
                }),
                Err(e) => {
                    result = Err(at_row(self.rows.len(), e));
                    break;
                }
            }
        }
        self.state = memory.state;
        self.scratch = memory.scratch;
        result
    }

    /// The rows run so far.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The smallest STF capacity that holds the rows so far (as [`Stats::capacity`] of the
    /// same rows): touched cells are the distinct ones, since every access enters its cell.
    pub fn needs(&self) -> stf::StfCapacity {
        stf::StfCapacity {
            rows: self.rows.len() + 1,
            tape: self.registers.tape as usize,
            keys: self.state.len(),
            scratch: self.scratch.len() + 1,
        }
    }

    /// Where the machine is now.
    pub fn checkpoint(&self) -> MachineCheckpoint {
        MachineCheckpoint {
            state: self.state.clone(),
            scratch: self.scratch.clone(),
            registers: self.registers,
            rows: self.rows.len(),
        }
    }

    /// Goes back to `checkpoint`, taken from this machine.
    pub fn restore(&mut self, checkpoint: MachineCheckpoint) {
        self.state = checkpoint.state;
        self.scratch = checkpoint.scratch;
        self.registers = checkpoint.registers;
        self.rows.truncate(checkpoint.rows);
    }
}

/// Verifies `rows` as the circuit does, without the executor, and returns what they produce:
/// every row follows [`step`] from its registers, tape step and the values its ops read; each
/// starts where the previous ended; the ops form a consistent memory from `pre` and empty
/// scratch; the post root is the header's.
pub fn check(pre: &State, domain: Domain, block: &Block, rows: &[Row]) -> Result<Outputs> {
    let context = Context {
        rollup: block.rollup_id,
        tape: &block.steps,
    };
    let mut registers = Registers::default();
    for (index, row) in rows.iter().enumerate() {
        if row.before != registers {
            return Err(machine_error(
                index,
                "does not start from the registers the previous row ended with".into(),
            ));
        }
        if row.ops.len() > MAX_OPS_PER_ROW {
            return Err(machine_error(
                index,
                format!(
                    "{} memory ops, more than the {MAX_OPS_PER_ROW} a row has",
                    row.ops.len()
                ),
            ));
        }
        let mut replay = Replay {
            ops: &row.ops,
            next: 0,
        };
        let kind = step(&mut registers, &context, &mut replay).map_err(|e| at_row(index, e))?;
        if kind != row.kind {
            return Err(machine_error(
                index,
                format!(
                    "is a {:?} row, but its registers call for {kind:?}",
                    row.kind
                ),
            ));
        }
        if replay.next != row.ops.len() {
            return Err(machine_error(
                index,
                format!(
                    "has {} memory ops, but a {kind:?} row here makes {}",
                    row.ops.len(),
                    replay.next
                ),
            ));
        }
        if registers != row.after {
            return Err(machine_error(
                index,
                format!("ends with other registers than a {kind:?} row computes"),
            ));
        }
    }
    if !finished(&registers, &context) {
        return Err(machine_error(
            rows.len(),
            format!(
                "the rows end at tape step {} of {} with {} frames open",
                registers.tape,
                context.tape.len(),
                registers.depth
            ),
        ));
    }
    outputs(pre, domain, block, rows).map(|(outputs, _)| outputs)
}

/// Whether the machine has consumed the tape and closed every frame.
fn finished(registers: &Registers, context: &Context<'_>) -> bool {
    registers.next == Next::Fetch
        && registers.depth == 0
        && registers.tape as usize >= context.tape.len()
}

/// The block's outputs from the rows' memory: the scratch ops are consistent from zero, the
/// state ops lead from `pre` to the post root (which must be the header's), and the entries
/// are read out of scratch. With them, the memory check's witness of all the ops.
fn outputs(
    pre: &State,
    domain: Domain,
    block: &Block,
    rows: &[Row],
) -> Result<(Outputs, MemoryWitness)> {
    let mut trace = Vec::new();
    let mut scratch: HashMap<Scratch, Fr> = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        for op in &row.ops {
            trace.push(access(op));
            match op.cell {
                Cell::State(_) => {}
                Cell::Scratch(address) => {
                    let held = scratch.get(&address).copied().unwrap_or_else(Fr::zero);
                    if held != op.before {
                        return Err(machine_error(
                            index,
                            format!(
                                "reads {} from scratch {address:?}, which holds {}",
                                fr_hex(&op.before),
                                fr_hex(&held)
                            ),
                        ));
                    }
                    scratch.insert(address, op.after);
                }
            }
        }
    }
    let memory = MemoryWitness::with_scratch(pre.tree(), &trace)?;
    let post_root = memory.post_root()?;
    if post_root != block.post_root {
        return Err(machine_error(
            rows.len(),
            format!(
                "the rows lead to post root {}, not the header's {}",
                fr_hex(&post_root),
                fr_hex(&block.post_root)
            ),
        ));
    }
    let end = rows.last().map_or_else(Registers::default, |r| r.after);
    let cell = |address: Scratch| scratch.get(&address).copied().unwrap_or_else(Fr::zero);
    let entry = |src, dst, seq, caller, target, call: &Fr, committed, result: &Fr| {
        let (value, data) = from_call_cell(call)?;
        let outcome = from_result_cell(result)?;
        Ok::<_, Error>(Entry {
            domain,
            slot: block.slot,
            src,
            dst,
            seq,
            kind: CallKind::Call,
            success: outcome.success,
            committed,
            caller,
            target,
            value: abi::value_bytes(value),
            calldata_hash: data.digest(),
            return_hash: abi::word_digest(outcome.word),
        })
    };
    let assumed = (0..end.assumed)
        .map(|i| {
            let c = |f| cell(Scratch::Assumed(i, f));
            let [caller, dst] = unpack(&c(ASSUMED_CALLER), &[160, 32], "assumed entry caller")?;
            entry(
                block.rollup_id,
                to_u32(&dst, "entry dst")?,
                i,
                to_address(&caller, "entry caller")?,
                to_address(&c(ASSUMED_TARGET), "entry target")?,
                &c(ASSUMED_CALL),
                to_bool(&c(ASSUMED_COMMITTED), "entry committed flag")?,
                &c(ASSUMED_RESULT),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let served = (0..end.served)
        .map(|i| {
            let c = |f| cell(Scratch::Served(i, f));
            let [caller, src, seq] =
                unpack(&c(SERVED_CALLER), &[160, 32, 32], "served entry caller")?;
            let [target, committed] = unpack(&c(SERVED_TARGET), &[160, 1], "served entry target")?;
            entry(
                to_u32(&src, "entry src")?,
                block.rollup_id,
                to_u32(&seq, "entry seq")?,
                to_address(&caller, "entry caller")?,
                to_address(&target, "entry target")?,
                &c(SERVED_CALL),
                to_bool(&committed, "entry committed flag")?,
                &c(SERVED_RESULT),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let outputs = Outputs {
        post_root,
        eth_delta: end.eth_delta,
        assumed,
        served,
    };
    Ok((outputs, memory))
}

/// A block step as the STF circuit's tape reads it.
pub fn tape_step(step: &Step) -> stf::TapeStep {
    match step {
        Step::Tx(tx) => stf::TapeStep::tx(
            address_to_field(&tx.from),
            tx.nonce,
            address_to_field(&tx.to),
            tx.value,
            calldata_to_field(&tx.data),
        ),
        Step::Serve(call) => stf::TapeStep::serve(
            address_to_field(&call.caller),
            call.src,
            call.seq,
            call.committed,
            address_to_field(&call.target),
            call.value,
            calldata_to_field(&call.data),
        ),
        Step::Return(ret) => stf::TapeStep::result(ret.seq, ret.success, ret.word),
    }
}

/// An op as the memory check sees it.
fn access(op: &Op) -> Access {
    let (space, key) = match op.cell {
        Cell::State(key) => (Space::State, key),
        Cell::Scratch(address) => (Space::Scratch, Fr::from(address.to_u64())),
    };
    Access {
        space,
        key,
        before: op.before,
        after: op.after,
    }
}

/// The transition function: runs the row `registers` call for and returns its kind.
///
/// Everything it needs is in the registers, the tape and the values memory answers; it is the
/// rule the STF circuit constrains, row by row.
pub fn step(
    registers: &mut Registers,
    context: &Context<'_>,
    memory: &mut dyn Memory,
) -> Result<Kind> {
    let r = registers;
    match r.next {
        Next::Fetch => fetch(r, context, memory),
        Next::Move => {
            move_value(r, memory)?;
            Ok(Kind::Move)
        }
        Next::Code => {
            code(r, context, memory)?;
            Ok(Kind::Code)
        }
        Next::App => {
            app(r, memory)?;
            Ok(Kind::App)
        }
        Next::Tokens => {
            tokens(r, memory)?;
            Ok(Kind::Tokens)
        }
        Next::Call => {
            call(r, context, memory)?;
            Ok(Kind::Call)
        }
        Next::Resume => {
            resume(r, memory)?;
            Ok(Kind::Resume)
        }
        Next::End => end(r, memory),
    }
}

fn fetch(r: &mut Registers, context: &Context<'_>, memory: &mut dyn Memory) -> Result<Kind> {
    let Some(step) = context.tape.get(r.tape as usize) else {
        if r.depth > 0 {
            return Err(refused(format!(
                "the tape ends while call {} waits for its result",
                r.frame.call
            )));
        }
        return Ok(Kind::Pad);
    };
    r.tape += 1;
    match step {
        Step::Tx(tx) => {
            if r.depth > 0 {
                return Err(refused(format!(
                    "a transaction while call {} waits for its result",
                    r.frame.call
                )));
            }
            check_value(tx.value, "transaction value")?;
            let key = Cell::State(StateKey::Account(tx.from).to_field());
            modify_state(r, memory, key, |value| {
                let mut account = to_account(&value)?;
                if account.nonce != tx.nonce {
                    return Err(refused(format!(
                        "nonce {} of 0x{}, expected {}",
                        tx.nonce,
                        hex::encode(tx.from.0),
                        account.nonce
                    )));
                }
                if account.balance < tx.value {
                    return Err(refused(format!(
                        "0x{} sends {} wei but holds {}",
                        hex::encode(tx.from.0),
                        tx.value,
                        account.balance
                    )));
                }
                account.nonce += 1;
                Ok(Some(account.to_field()))
            })?;
            open_frame(
                r,
                memory,
                Frame {
                    remote: false,
                    caller: tx.from,
                    target: tx.to,
                    value: tx.value,
                    data: tx.data,
                    committed: true,
                    ..Frame::default()
                },
            )?;
            Ok(Kind::Tx)
        }
        Step::Serve(call) => {
            if r.depth > 0 && !r.frame.waiting {
                return Err(refused("a served call while a frame runs".into()));
            }
            if call.src == context.rollup || call.src == 0 {
                return Err(refused(format!(
                    "rollup {} cannot serve a call from rollup {}",
                    context.rollup, call.src
                )));
            }
            check_value(call.value, "call value")?;
            if r.served as usize >= MAX_ENTRIES {
                return Err(Error::TooManyEntries {
                    rollup: context.rollup,
                    side: "served",
                    max: MAX_ENTRIES,
                });
            }
            let index = r.served;
            let cells = [
                (
                    SERVED_CALLER,
                    pack(&[
                        (address_to_field(&call.caller), 160),
                        (Fr::from(u64::from(call.src)), 32),
                        (Fr::from(u64::from(call.seq)), 32),
                    ]),
                ),
                (
                    SERVED_TARGET,
                    pack(&[
                        (address_to_field(&call.target), 160),
                        (Fr::from(u64::from(call.committed)), 1),
                    ]),
                ),
                (SERVED_CALL, call_cell(call.value, &call.data)),
            ];
            for (cell, value) in cells {
                write(memory, Cell::Scratch(Scratch::Served(index, cell)), value)?;
            }
            r.served += 1;
            open_frame(
                r,
                memory,
                Frame {
                    remote: true,
                    caller: call.caller,
                    target: call.target,
                    value: call.value,
                    data: call.data,
                    committed: call.committed,
                    entry: index,
                    ..Frame::default()
                },
            )?;
            Ok(Kind::Serve)
        }
        Step::Return(ret) => {
            if r.depth == 0 || !r.frame.waiting {
                return Err(refused(format!(
                    "a result for call {} with no call waiting for it",
                    ret.seq
                )));
            }
            if ret.seq != r.frame.call {
                return Err(refused(format!(
                    "a result for call {} while call {} waits",
                    ret.seq, r.frame.call
                )));
            }
            let result = Outcome {
                success: ret.success,
                word: ret.word,
            };
            write(
                memory,
                Cell::Scratch(Scratch::Assumed(r.frame.call, ASSUMED_RESULT)),
                result_cell(result),
            )?;
            if ret.success {
                r.eth_delta -= r.frame.value as i128;
            } else {
                // The value comes back to the forwarder.
                let key = Cell::State(StateKey::Account(r.frame.target).to_field());
                let value = r.frame.value;
                modify_state(r, memory, key, |leaf| {
                    let mut account = to_account(&leaf)?;
                    account.balance += value;
                    Ok(Some(account.to_field()))
                })?;
            }
            r.frame.waiting = false;
            r.outcome = Outcome {
                success: ret.success,
                word: ret.word,
            };
            r.next = Next::Resume;
            Ok(Kind::Return)
        }
    }
}

/// Saves the running frame (if any) on the stack and makes `frame` the running one, with its
/// checkpoints taken now.
fn open_frame(r: &mut Registers, memory: &mut dyn Memory, mut frame: Frame) -> Result<()> {
    if r.depth as usize >= MAX_CALL_DEPTH {
        return Err(Error::CallTooDeep {
            depth: r.depth as usize + 1,
            max: MAX_CALL_DEPTH,
        });
    }
    if r.depth > 0 {
        for (field, value) in frame_cells(&r.frame).into_iter().enumerate() {
            write(
                memory,
                Cell::Scratch(Scratch::Stack(r.depth, field as u8)),
                value,
            )?;
        }
    }
    frame.journal = r.journal;
    frame.eth_delta = r.eth_delta;
    frame.assumed = r.assumed;
    r.depth += 1;
    r.frame = frame;
    r.outcome = Outcome::default();
    r.app = None;
    r.next = Next::Move;
    Ok(())
}

fn move_value(r: &mut Registers, memory: &mut dyn Memory) -> Result<()> {
    r.next = Next::Code;
    let value = r.frame.value;
    if value == 0 {
        return Ok(());
    }
    if r.frame.remote {
        r.eth_delta += value as i128;
    } else {
        let key = Cell::State(StateKey::Account(r.frame.caller).to_field());
        if !modify_state(r, memory, key, |leaf| debit(&leaf, value))? {
            finish(r, Outcome::revert(REVERT_INSUFFICIENT_BALANCE));
            return Ok(());
        }
    }
    let key = Cell::State(StateKey::Account(r.frame.target).to_field());
    modify_state(r, memory, key, |leaf| {
        Ok(Some(to_account(&leaf)?.credited(value)?.to_field()))
    })?;
    Ok(())
}

/// An account leaf less `value`, or `None` when it cannot pay.
fn debit(leaf: &Fr, value: u128) -> Result<Option<Fr>> {
    let mut account = to_account(leaf)?;
    if account.balance < value {
        return Ok(None);
    }
    account.balance -= value;
    Ok(Some(account.to_field()))
}

fn code(r: &mut Registers, context: &Context<'_>, memory: &mut dyn Memory) -> Result<()> {
    let leaf = read(
        memory,
        Cell::State(StateKey::Code(r.frame.target).to_field()),
    )?;
    let app = if leaf == Fr::zero() {
        None
    } else {
        Some(AppKind::from_field(&leaf).ok_or_else(|| Error::OutOfRange {
            what: "code leaf",
            value: fr_hex(&leaf),
            expected: "an app kind",
        })?)
    };
    r.app = app;
    match (app, r.frame.data.method) {
        (Some(AppKind::Reverter), _) | (_, Method::Fail) => {
            finish(r, Outcome::revert(REVERT_ALWAYS))
        }
        (_, Method::Transfer) => finish(r, Outcome::ok(0)),
        (Some(AppKind::Counter), Method::Increment) | (Some(AppKind::Amm), Method::Swap) => {
            r.next = Next::App;
        }
        (Some(AppKind::Forwarder { rollup, .. }), Method::Forward | Method::ForwardThenRevert) => {
            if rollup == 0 {
                return Err(refused(format!(
                    "rollup {}: calls into L1 (rollup 0) are not supported by the reference rollup yet",
                    context.rollup
                )));
            }
            r.next = Next::Call;
        }
        _ => finish(r, Outcome::revert(REVERT_UNKNOWN_METHOD)),
    }
    Ok(())
}

fn app(r: &mut Registers, memory: &mut dyn Memory) -> Result<()> {
    let target = r.frame.target;
    let storage = |slot: Fr| Cell::State(StateKey::Storage(target, slot).to_field());
    match r.app {
        Some(AppKind::Counter) => {
            let mut count = 0;
            modify_state(r, memory, storage(Fr::zero()), |value| {
                count = to_u128(&value, "counter")?.wrapping_add(1);
                Ok(Some(Fr::from_u128(count)))
            })?;
            finish(r, Outcome::ok(count));
        }
        Some(AppKind::Amm) => {
            let (eth, token) = (storage(Fr::zero()), storage(Fr::one()));
            // Read x; pay out of y if the swap goes through; then credit x and the holder.
            let x = to_u128(&read(memory, eth)?, "AMM ETH reserve")?;
            let (value, min_out) = (r.frame.value, r.frame.data.arg);
            let mut out = 0;
            let swapped = modify_state(r, memory, token, |reserve| {
                let y = to_u128(&reserve, "AMM token reserve")?;
                out = abi::swap_output(x, y, value);
                Ok((out != 0 && out >= min_out).then(|| Fr::from_u128(y - out)))
            })?;
            if !swapped {
                finish(r, Outcome::revert(REVERT_SLIPPAGE));
                return Ok(());
            }
            let reserve = x.checked_add(value).ok_or_else(|| Error::OutOfRange {
                what: "AMM ETH reserve",
                value: format!("{x} + {value}"),
                expected: "at most 2^128 − 1",
            })?;
            modify_state(r, memory, eth, |_| Ok(Some(Fr::from_u128(reserve))))?;
            // The holder's tokens next row: the outcome carries `out` there.
            r.outcome = Outcome::ok(out);
            r.next = Next::Tokens;
        }
        app => {
            return Err(refused(format!(
                "an app row for {app:?}, which has no app row"
            )))
        }
    }
    Ok(())
}

/// The swap's second row: the caller's token balance grows by the amount out.
fn tokens(r: &mut Registers, memory: &mut dyn Memory) -> Result<()> {
    let out = r.outcome.word;
    let holder = StateKey::Storage(r.frame.target, abi::token_slot(&r.frame.caller));
    modify_state(r, memory, Cell::State(holder.to_field()), |held| {
        let held = to_u128(&held, "token balance")?;
        Ok(Some(Fr::from_u128(held.saturating_add(out))))
    })?;
    finish(r, Outcome::ok(out));
    Ok(())
}

fn call(r: &mut Registers, context: &Context<'_>, memory: &mut dyn Memory) -> Result<()> {
    let Some(AppKind::Forwarder { rollup, target }) = r.app else {
        return Err(refused(
            "a call row for an app that is not a forwarder".into(),
        ));
    };
    let caller = r.frame.target;
    let value = r.frame.value;
    let data = r.frame.data.forwarded();
    let committed = r.frame.committed;
    if rollup == context.rollup {
        return open_frame(
            r,
            memory,
            Frame {
                remote: false,
                caller,
                target,
                value,
                data,
                committed,
                ..Frame::default()
            },
        );
    }
    // Debit first: a forwarder that cannot pay never reaches the other rollup.
    let key = Cell::State(StateKey::Account(caller).to_field());
    let full = r.assumed as usize >= MAX_ENTRIES;
    let paid = modify_state(r, memory, key, |leaf| {
        let debited = debit(&leaf, value)?;
        if debited.is_some() && full {
            return Err(Error::TooManyEntries {
                rollup: context.rollup,
                side: "assumed",
                max: MAX_ENTRIES,
            });
        }
        Ok(debited)
    })?;
    if !paid {
        r.outcome = Outcome::revert(REVERT_INSUFFICIENT_BALANCE);
        r.next = Next::Resume;
        return Ok(());
    }
    let index = r.assumed;
    let cells = [
        (
            ASSUMED_CALLER,
            pack(&[
                (address_to_field(&caller), 160),
                (Fr::from(u64::from(rollup)), 32),
            ]),
        ),
        (ASSUMED_TARGET, address_to_field(&target)),
        (ASSUMED_CALL, call_cell(value, &data)),
        (ASSUMED_COMMITTED, Fr::from(u64::from(committed))),
    ];
    for (cell, value) in cells {
        write(memory, Cell::Scratch(Scratch::Assumed(index, cell)), value)?;
    }
    r.assumed += 1;
    r.frame.call = index;
    r.frame.waiting = true;
    r.next = Next::Fetch;
    Ok(())
}

fn resume(r: &mut Registers, memory: &mut dyn Memory) -> Result<()> {
    let target = r.frame.target;
    let storage = |slot: u64| Cell::State(StateKey::Storage(target, Fr::from(slot)).to_field());
    let word = if r.outcome.success {
        let word = r.outcome.word;
        modify_state(r, memory, storage(0), |_| Ok(Some(Fr::from_u128(word))))?;
        word
    } else {
        modify_state(r, memory, storage(1), |failures| {
            let failures = to_u128(&failures, "failure count")?.wrapping_add(1);
            Ok(Some(Fr::from_u128(failures)))
        })?;
        0
    };
    let outcome = if r.frame.data.method == Method::ForwardThenRevert {
        Outcome::revert(word)
    } else {
        Outcome::ok(word)
    };
    finish(r, outcome);
    Ok(())
}

/// The frame returns `outcome`: the next rows end it.
fn finish(r: &mut Registers, outcome: Outcome) {
    r.outcome = outcome;
    r.cursor = r.frame.assumed;
    r.next = Next::End;
}

fn end(r: &mut Registers, memory: &mut dyn Memory) -> Result<Kind> {
    let success = r.outcome.success;
    let discard = !success || (r.frame.remote && !r.frame.committed);
    if !success && r.cursor < r.assumed {
        write(
            memory,
            Cell::Scratch(Scratch::Assumed(r.cursor, ASSUMED_COMMITTED)),
            Fr::zero(),
        )?;
        r.cursor += 1;
        return Ok(Kind::Mark);
    }
    if discard && r.journal > r.frame.journal {
        r.journal -= 1;
        let key = read(memory, Cell::Scratch(Scratch::Journal(r.journal, 0)))?;
        let previous = read(memory, Cell::Scratch(Scratch::Journal(r.journal, 1)))?;
        write(memory, Cell::State(key), previous)?;
        return Ok(Kind::Undo);
    }
    if discard {
        r.eth_delta = r.frame.eth_delta;
    }
    // The frame below first (slots 0 to 3), then a served call's result (slot 4).
    let ended = r.frame;
    let outcome = r.outcome;
    r.depth -= 1;
    r.app = None;
    r.cursor = 0;
    if r.depth == 0 {
        r.frame = Frame::default();
        r.outcome = Outcome::default();
        r.next = Next::Fetch;
    } else {
        let mut cells = [Fr::zero(); FRAME_CELLS];
        for (cell, value) in cells.iter_mut().enumerate() {
            *value = read(memory, Cell::Scratch(Scratch::Stack(r.depth, cell as u8)))?;
        }
        r.frame = frame_from_cells(&cells)?;
        if ended.remote {
            // A served call ran while this frame waited for its own call's result.
            r.outcome = Outcome::default();
            r.next = Next::Fetch;
        } else {
            // A forwarder's local call returned: the outcome is its call's result.
            r.next = Next::Resume;
        }
    }
    if ended.remote {
        write(
            memory,
            Cell::Scratch(Scratch::Served(ended.entry, SERVED_RESULT)),
            result_cell(outcome),
        )?;
    }
    Ok(Kind::Pop)
}

/// One op on a state cell: `change` maps its value to the new one, or to `None` to leave it.
/// A change is journaled (the key and its previous value, two scratch ops). Returns whether
/// it changed.
fn modify_state(
    r: &mut Registers,
    memory: &mut dyn Memory,
    cell: Cell,
    mut change: impl FnMut(Fr) -> Result<Option<Fr>>,
) -> Result<bool> {
    let Cell::State(key) = cell else {
        unreachable!("modify_state takes state cells");
    };
    let mut changed = false;
    let previous = memory.access(cell, &mut |value| {
        let new = change(value)?;
        changed = new.is_some();
        Ok(new.unwrap_or(value))
    })?;
    if changed {
        write(memory, Cell::Scratch(Scratch::Journal(r.journal, 0)), key)?;
        write(
            memory,
            Cell::Scratch(Scratch::Journal(r.journal, 1)),
            previous,
        )?;
        r.journal += 1;
    }
    Ok(changed)
}

/// Cells of a frame on the stack.
const FRAME_CELLS: usize = stf::scratch::FRAME_CELLS;
/// Bit widths of a frame's first cell: caller, the remote, committed and waiting flags, the
/// journal and entry checkpoints, its served entry and the call it waits on.
const FRAME_HEAD: [usize; 8] = stf::scratch::FRAME_HEAD;

/// A frame packed into [`FRAME_CELLS`] cells (243, 160, 248 bits and a signed field element).
fn frame_cells(frame: &Frame) -> [Fr; FRAME_CELLS] {
    let small = |v: u32| Fr::from(u64::from(v));
    let flag = |b: bool| Fr::from(u64::from(b));
    let head = [
        address_to_field(&frame.caller),
        flag(frame.remote),
        flag(frame.committed),
        flag(frame.waiting),
        small(frame.journal),
        small(frame.assumed),
        small(frame.entry),
        small(frame.call),
    ];
    let parts: Vec<(Fr, usize)> = head.into_iter().zip(FRAME_HEAD).collect();
    [
        pack(&parts),
        address_to_field(&frame.target),
        call_cell(frame.value, &frame.data),
        i128_to_field(frame.eth_delta),
    ]
}

fn frame_from_cells(cells: &[Fr; FRAME_CELLS]) -> Result<Frame> {
    let [caller, remote, committed, waiting, journal, assumed, entry, call] =
        unpack(&cells[0], &FRAME_HEAD, "frame head")?;
    let (value, data) = from_call_cell(&cells[2])?;
    Ok(Frame {
        remote: to_bool(&remote, "frame source flag")?,
        caller: to_address(&caller, "frame caller")?,
        target: to_address(&cells[1], "frame target")?,
        value,
        data,
        committed: to_bool(&committed, "frame committed flag")?,
        journal: to_u32(&journal, "frame journal checkpoint")?,
        eth_delta: to_i128(&cells[3], "frame ETH checkpoint")?,
        assumed: to_u32(&assumed, "frame entry checkpoint")?,
        entry: to_u32(&entry, "frame served entry")?,
        call: to_u32(&call, "frame pending call")?,
        waiting: to_bool(&waiting, "frame waiting flag")?,
    })
}

/// A call's value and calldata in one cell: `value + 2^96 · calldata` (248 bits).
fn call_cell(value: u128, data: &CallData) -> Fr {
    pack(&[(Fr::from_u128(value), 96), (calldata_to_field(data), 152)])
}

fn from_call_cell(cell: &Fr) -> Result<(u128, CallData)> {
    let [value, data] = unpack(cell, &[96, 152], "value and calldata")?;
    Ok((
        to_u128(&value, "call value")?,
        to_calldata(&data, "calldata")?,
    ))
}

/// A result in one cell: `success + 2 · word` (129 bits).
fn result_cell(outcome: Outcome) -> Fr {
    stf::result_cell(outcome.success, outcome.word)
}

fn from_result_cell(cell: &Fr) -> Result<Outcome> {
    let [success, word] = unpack(cell, &[1, 128], "result")?;
    Ok(Outcome {
        success: to_bool(&success, "result success")?,
        word: to_u128(&word, "result word")?,
    })
}

/// `Σ part · 2^offset`, each part taking its width in bits, the first lowest. The parts must
/// fit their widths and the widths sum to at most 253 bits.
fn pack(parts: &[(Fr, usize)]) -> Fr {
    let mut packed = U256::ZERO;
    let mut offset = 0;
    for (part, width) in parts {
        let value = U256::from_le_bytes(part.to_bytes());
        debug_assert!(
            value >> *width == U256::ZERO,
            "a part wider than its {width} bits"
        );
        packed |= value << offset;
        offset += width;
    }
    debug_assert!(offset <= 253);
    Fr::from_bytes(&packed.to_le_bytes::<32>()).expect("at most 253 bits")
}

/// The inverse of [`pack`]; refuses a value with bits above the widths' sum.
fn unpack<const N: usize>(cell: &Fr, widths: &[usize; N], what: &'static str) -> Result<[Fr; N]> {
    let value = U256::from_le_bytes(cell.to_bytes());
    let total: usize = widths.iter().sum();
    if value >> total != U256::ZERO {
        return Err(out_of_range(
            what,
            cell,
            "a packed cell of its declared widths",
        ));
    }
    let mut parts = [Fr::zero(); N];
    let mut offset = 0;
    for (part, width) in parts.iter_mut().zip(widths) {
        let mask = (U256::from(1u8) << *width) - U256::from(1u8);
        let bits: U256 = (value >> offset) & mask;
        *part = Fr::from_bytes(&bits.to_le_bytes::<32>()).expect("fewer bits than the field");
        offset += width;
    }
    Ok(parts)
}

/// Calldata as one field element: its 19 bytes big-endian.
pub fn calldata_to_field(data: &CallData) -> Fr {
    let mut le = [0u8; 32];
    for (i, b) in data.to_bytes().iter().rev().enumerate() {
        le[i] = *b;
    }
    Fr::from_bytes(&le).expect("152 bits are canonical")
}

fn to_calldata(value: &Fr, what: &'static str) -> Result<CallData> {
    let le = value.to_bytes();
    if le[CallData::LEN..].iter().any(|&b| b != 0) {
        return Err(out_of_range(what, value, "19 bytes of calldata"));
    }
    let mut be = [0u8; CallData::LEN];
    for (i, b) in le[..CallData::LEN].iter().rev().enumerate() {
        be[i] = *b;
    }
    CallData::from_bytes(&be)
}

fn to_address(value: &Fr, what: &'static str) -> Result<Address> {
    let le = value.to_bytes();
    if le[20..].iter().any(|&b| b != 0) {
        return Err(out_of_range(what, value, "a 160-bit address"));
    }
    let mut address = [0u8; 20];
    for (i, b) in le[..20].iter().rev().enumerate() {
        address[i] = *b;
    }
    Ok(Address(address))
}

fn to_u128(value: &Fr, what: &'static str) -> Result<u128> {
    field_to_u128(value).ok_or_else(|| out_of_range(what, value, "a 128-bit integer"))
}

fn to_u32(value: &Fr, what: &'static str) -> Result<u32> {
    to_u128(value, what)?
        .try_into()
        .map_err(|_| out_of_range(what, value, "a 32-bit integer"))
}

fn to_bool(value: &Fr, what: &'static str) -> Result<bool> {
    match to_u128(value, what) {
        Ok(0) => Ok(false),
        Ok(1) => Ok(true),
        _ => Err(out_of_range(what, value, "0 or 1")),
    }
}

fn i128_to_field(value: i128) -> Fr {
    if value < 0 {
        -Fr::from_u128(value.unsigned_abs())
    } else {
        Fr::from_u128(value as u128)
    }
}

fn to_i128(value: &Fr, what: &'static str) -> Result<i128> {
    if let Some(v) = field_to_u128(value).and_then(|v| i128::try_from(v).ok()) {
        return Ok(v);
    }
    field_to_u128(&-*value)
        .and_then(|v| i128::try_from(v).ok())
        .map(|v| -v)
        .ok_or_else(|| out_of_range(what, value, "a signed 128-bit integer"))
}

fn to_account(value: &Fr) -> Result<Account> {
    Account::from_field(value).ok_or_else(|| {
        out_of_range(
            "account leaf",
            value,
            "balance + nonce · 2^128 with a 64-bit nonce",
        )
    })
}

fn check_value(value: u128, what: &'static str) -> Result<()> {
    if value > MAX_VALUE {
        return Err(Error::OutOfRange {
            what,
            value: value.to_string(),
            expected: "at most MAX_VALUE (2^96 − 1)",
        });
    }
    Ok(())
}

fn out_of_range(what: &'static str, value: &Fr, expected: &'static str) -> Error {
    Error::OutOfRange {
        what,
        value: fr_hex(value),
        expected,
    }
}

fn refused(reason: String) -> Error {
    Error::Refused(reason)
}

fn machine_error(row: usize, reason: String) -> Error {
    Error::Machine { row, reason }
}

fn at_row(row: usize, error: Error) -> Error {
    match error {
        Error::Machine { .. } => error,
        other => machine_error(row, other.to_string()),
    }
}

/// Memory as [`run`] sees it: the pre state under the block's writes, and scratch.
struct Live<'a> {
    pre: &'a State,
    state: HashMap<Fr, Fr>,
    scratch: HashMap<Scratch, Fr>,
    ops: Vec<Op>,
}

impl Live<'_> {
    fn value(&self, cell: Cell) -> Result<Fr> {
        Ok(match cell {
            Cell::State(key) => match self.state.get(&key) {
                Some(value) => *value,
                None => self.pre.value(&key)?,
            },
            Cell::Scratch(address) => self.scratch.get(&address).copied().unwrap_or_else(Fr::zero),
        })
    }
}

impl Memory for Live<'_> {
    fn access(&mut self, cell: Cell, change: &mut dyn FnMut(Fr) -> Result<Fr>) -> Result<Fr> {
        let before = self.value(cell)?;
        let after = change(before)?;
        match cell {
            Cell::State(key) => self.state.insert(key, after),
            Cell::Scratch(address) => self.scratch.insert(address, after),
        };
        self.ops.push(Op {
            cell,
            before,
            after,
        });
        Ok(before)
    }
}

/// Memory as [`check`] sees it: the row's own ops, in order. A read must be an op on the cell
/// that leaves it unchanged; a write an op on the cell that leaves the written value.
struct Replay<'a> {
    ops: &'a [Op],
    next: usize,
}

impl Replay<'_> {
    fn take(&mut self, cell: Cell) -> Result<Op> {
        let Some(op) = self.ops.get(self.next) else {
            return Err(refused(format!(
                "the row needs memory op {} on {cell:?}, but has only {}",
                self.next,
                self.ops.len()
            )));
        };
        if op.cell != cell {
            return Err(refused(format!(
                "memory op {} is on {:?}, but the row accesses {cell:?}",
                self.next, op.cell
            )));
        }
        self.next += 1;
        Ok(*op)
    }
}

impl Memory for Replay<'_> {
    fn access(&mut self, cell: Cell, change: &mut dyn FnMut(Fr) -> Result<Fr>) -> Result<Fr> {
        let index = self.next;
        let op = self.take(cell)?;
        let after = change(op.before)?;
        if op.after != after {
            return Err(refused(format!(
                "memory op {index} leaves {} in {cell:?}, but the row computes {}",
                fr_hex(&op.after),
                fr_hex(&after)
            )));
        }
        Ok(op.before)
    }
}
