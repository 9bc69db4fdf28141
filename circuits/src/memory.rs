//! Offline memory checking of a state trace: one proof that a sequence of reads and writes of
//! the reference rollup's state is consistent and moves the state root from `pre_root` to
//! `post_root`, with one Merkle opening per *distinct* key rather than one per access.
//!
//! A block of the reference rollup touches a few keys many times (an account's balance, a
//! counter's slot). Proving every access against the root costs `2 · depth` Poseidon hashes
//! each ([`crate::merkle`]); here an access costs a few dozen cells plus its share of one
//! transcript hash, and each distinct key costs one Merkle access.
//!
//! # The argument (Blum et al., offline memory checking)
//! - **Ops.** Op `i` of the trace happens at time `t = i + 1`. It reads `(key, before, t_prev)`
//!   and writes `(key, after, t)`, where `t_prev` is the time of the previous op on the same key
//!   (`0` for the first). A read is an op with `after = before`. The circuit range-checks
//!   `t − t_prev − 1` to the bits of the op capacity ([`time_bits`], at most [`TIME_BITS`]), so
//!   every op reads a tuple written strictly before it.
//! - **Keys.** The distinct keys form a table ordered by strictly increasing leaf index, so no
//!   key appears twice. Each row holds the key's value at the pre root (`initial`), its last
//!   value (`last`) and the time of its last op (`t_last`). The rows are applied one after the
//!   other, each a [`crate::merkle::MerkleChip`]-style access from `initial` to `last`: the
//!   first row's access starts at `pre_root` and the last row's ends at the post root.
//! - **Multisets.** The initial tuples `(key, initial, 0)` and every op's write must equal, as
//!   multisets, every op's read and the final tuples `(key, last, t_last)`. The check returns
//!   this as a [`MultisetEquality`] that the circuit's second phase proves over the verifier's
//!   challenges ([`crate::multiset`]): every value here is a first-phase cell, committed before
//!   the challenges are drawn.
//!
//! Why this suffices: the write times of one key are distinct (0 for its one initial tuple,
//! `i + 1` for op `i`), so every written tuple is read exactly once. The first op on a key can
//! only read a tuple of time 0, its initial value; the next can only read what the first wrote;
//! and so on, until the final tuple takes the last write. An op on a key missing from the table
//! has nothing to read. So every read returns the latest value, and the post root holds every
//! key's last value.
//!
//! # Scratch
//! A step machine also needs working memory that is not state: a stack, a journal, entry
//! lists. Scratch cells are a second space of the same memory. A scratch address is an integer
//! below `2^SCRATCH_BITS`; every scratch cell starts at `0`, has no Merkle leaf, and takes part
//! in the same multisets with a space field: tuples are `(key, value, time, space)`, `space` 0
//! for state and 1 for scratch, so a scratch op can never read a state tuple or the
//! other way round. The scratch table lists the cells used, by strictly increasing address,
//! with each one's `last` value and `t_last`; its initial tuples are `(address, 0, 0)`.
//!
//! # Padding
//! A circuit has a fixed [`MemoryCapacity`]. Unused ops and key rows carry `used = 0` and take
//! no part in either multiset; used ones form a prefix. A circuit whose every op slot is an op
//! (a step machine's) says so with [`MemoryChip::every_op_used`]: its ops carry the constant 1
//! and their fingerprints no flag.

use std::collections::{BTreeMap, HashMap};

use halo2_base::{
    gates::{
        circuit::CircuitBuilderStage, flex_gate::MultiPhaseThreadBreakPoints, GateInstructions,
        RangeChip, RangeInstructions,
    },
    AssignedValue, Context,
    QuantumCell::Constant,
};
use serde::{Deserialize, Serialize};

use crate::{
    merkle::{self, MerkleChip},
    multiset::{MultisetEquality, Tuple},
    shape::RollupCircuit,
    smt::SparseMerkleTree,
    Error, Fr, Result,
};

/// Bits of an op's time: a trace holds fewer than `2^TIME_BITS` ops.
pub const TIME_BITS: usize = 20;
/// Bits of `t − t_prev − 1` for a trace of `ops` op slots: enough for any op's gap (below
/// `ops`), and no more, so that the range check takes as few lookup limbs as it can.
pub const fn time_bits(ops: usize) -> usize {
    let bits = (usize::BITS - ops.saturating_sub(1).leading_zeros()) as usize;
    if bits == 0 {
        1
    } else {
        bits
    }
}

/// Bits of a scratch address.
pub const SCRATCH_BITS: usize = 48;

/// Which memory an access is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// The rollup's state: keys opened at the pre root.
    #[default]
    State,
    /// Working memory that starts at `0`: addresses below `2^SCRATCH_BITS`.
    Scratch,
}

/// One access to state or scratch, in execution order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// The space.
    pub space: Space,
    /// The state key, or the scratch address as a field element.
    pub key: Fr,
    /// The value before the access.
    pub before: Fr,
    /// The value after it.
    pub after: Fr,
}

impl From<StateAccess> for Access {
    fn from(access: StateAccess) -> Self {
        Self {
            space: Space::State,
            key: access.key,
            before: access.before,
            after: access.after,
        }
    }
}

/// One access to the state, in execution order: the value `key` held before and after it
/// (equal for a read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateAccess {
    /// The key.
    pub key: Fr,
    /// Its value before the access.
    pub before: Fr,
    /// Its value after the access.
    pub after: Fr,
}

/// An access with the time of the previous access to its key, as the circuit loads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryOp {
    /// The key.
    pub key: Fr,
    /// Its value before the op.
    pub before: Fr,
    /// Its value after the op.
    pub after: Fr,
    /// Time of the previous op on `key` (`0`: none in this trace; op `i` happens at `i + 1`).
    pub t_prev: u32,
    /// Whether `key` is a scratch address.
    #[serde(default)]
    pub scratch: bool,
}

/// A scratch cell of the trace: it starts at `0` and ends at `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScratchCell {
    /// Its address (below `2^SCRATCH_BITS`).
    pub address: u64,
    /// Its value after the trace.
    pub last: Fr,
    /// Time of the last op on it.
    pub t_last: u32,
}

/// A distinct key of the trace: opened at the pre root and closed toward the post root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyOpening {
    /// The key.
    pub key: Fr,
    /// Its value at the pre root.
    pub initial: Fr,
    /// Its value after the trace.
    pub last: Fr,
    /// Time of the last op on it.
    pub t_last: u32,
    /// Siblings of its leaf, from the leaf up, in the tree where the keys before it in the
    /// table already hold their last values.
    pub siblings: Vec<Fr>,
}

/// Everything the memory check needs: the trace and its key table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryWitness {
    /// Depth of the state tree.
    pub depth: usize,
    /// The root before the trace.
    pub pre_root: Fr,
    /// The ops, in execution order.
    pub ops: Vec<MemoryOp>,
    /// The distinct keys, by strictly increasing leaf index.
    pub keys: Vec<KeyOpening>,
    /// The scratch cells, by strictly increasing address.
    #[serde(default)]
    pub scratch: Vec<ScratchCell>,
}

impl MemoryWitness {
    /// The witness of `trace` run on `tree` (the state before the trace).
    ///
    /// Fails, naming the op, if an access reads another value than the key holds (the first
    /// access to a key is checked against its leaf in `tree`), if two keys share a leaf, or if
    /// the trace is longer than [`TIME_BITS`] allows.
    pub fn new(tree: &SparseMerkleTree, trace: &[StateAccess]) -> Result<Self> {
        let trace: Vec<Access> = trace.iter().copied().map(Access::from).collect();
        Self::with_scratch(tree, &trace)
    }

    /// The witness of a trace over state and scratch. As [`Self::new`]; besides, the first
    /// access to a scratch cell must read `0`, and a scratch address must be below
    /// `2^SCRATCH_BITS`.
    pub fn with_scratch(tree: &SparseMerkleTree, trace: &[Access]) -> Result<Self> {
        if trace.len() >= 1 << TIME_BITS {
            return Err(Error::OutOfRange {
                what: "trace length",
                value: trace.len().to_string(),
                expected: "below 2^TIME_BITS (2^20) ops",
            });
        }
        let depth = tree.depth();
        // Per (space, key): (initial, current, time of last op).
        let mut seen: HashMap<(Space, [u8; 32]), (Fr, Fr, u32)> = HashMap::new();
        let mut by_index: BTreeMap<u64, Fr> = BTreeMap::new();
        let mut ops = Vec::with_capacity(trace.len());
        for (i, access) in trace.iter().enumerate() {
            let time = i as u32 + 1;
            let bad = |reason: String| Error::BadTrace {
                what: "op",
                index: i,
                reason,
            };
            let id = (access.space, access.key.to_bytes());
            let t_prev = match seen.get_mut(&id) {
                Some((_, current, last)) => {
                    if *current != access.before {
                        return Err(bad(format!(
                            "it reads {:?} but the key holds {:?}",
                            access.before, current
                        )));
                    }
                    *current = access.after;
                    std::mem::replace(last, time)
                }
                None if access.space == Space::Scratch => {
                    if scratch_address(&access.key).is_none() {
                        return Err(bad(format!(
                            "scratch address {:?} is not below 2^{SCRATCH_BITS}",
                            access.key
                        )));
                    }
                    if access.before != Fr::zero() {
                        return Err(bad(format!(
                            "it reads {:?} from a scratch cell never written, which holds 0",
                            access.before
                        )));
                    }
                    seen.insert(id, (access.before, access.after, time));
                    0
                }
                None => {
                    let index = tree.index_of(&access.key);
                    if let Some(other) = by_index.insert(index, access.key) {
                        return Err(bad(format!(
                            "its key shares leaf {index} with key {other:?}"
                        )));
                    }
                    if tree.leaf(index) != merkle::leaf(access.key, access.before) {
                        return Err(bad(format!(
                            "it reads {:?}, which is not the key's value at the pre root",
                            access.before
                        )));
                    }
                    seen.insert(id, (access.before, access.after, time));
                    0
                }
            };
            ops.push(MemoryOp {
                key: access.key,
                before: access.before,
                after: access.after,
                t_prev,
                scratch: access.space == Space::Scratch,
            });
        }
        let pre_root = tree.root();
        let mut tree = tree.clone();
        let keys = by_index
            .into_iter()
            .map(|(index, key)| {
                let (initial, last, t_last) = seen[&(Space::State, key.to_bytes())];
                let siblings = tree.path(index);
                tree.set(index, merkle::leaf(key, last));
                KeyOpening {
                    key,
                    initial,
                    last,
                    t_last,
                    siblings,
                }
            })
            .collect();
        let mut scratch: Vec<ScratchCell> = seen
            .iter()
            .filter(|((space, _), _)| *space == Space::Scratch)
            .map(|((_, key), &(_, last, t_last))| ScratchCell {
                address: scratch_address(&Fr::from_bytes(key).expect("a field element's bytes"))
                    .expect("checked when first accessed"),
                last,
                t_last,
            })
            .collect();
        scratch.sort_by_key(|cell| cell.address);
        Ok(Self {
            depth,
            pre_root,
            ops,
            keys,
            scratch,
        })
    }

    /// The post root, natively: the key table's openings chained from the pre root. Fails,
    /// naming the row, where an opening does not lead from the root before it.
    pub fn post_root(&self) -> Result<Fr> {
        self.keys
            .iter()
            .enumerate()
            .try_fold(self.pre_root, |root, (row, opening)| {
                let index = merkle::index_of(&opening.key, self.depth);
                let walk = |value| {
                    merkle::root_from_path(
                        merkle::leaf(opening.key, value),
                        index,
                        &opening.siblings,
                    )
                };
                if opening.siblings.len() != self.depth || walk(opening.initial) != root {
                    return Err(Error::BadTrace {
                        what: "key row",
                        index: row,
                        reason: "it does not open at the root before it".into(),
                    });
                }
                Ok(walk(opening.last))
            })
    }
}

/// A scratch address held in a field element, if it is below `2^SCRATCH_BITS`.
pub fn scratch_address(key: &Fr) -> Option<u64> {
    let bytes = key.to_bytes();
    if bytes[8..].iter().any(|&b| b != 0) {
        return None;
    }
    let address = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    (address < 1 << SCRATCH_BITS).then_some(address)
}

/// The most ops, distinct keys and scratch cells one memory check holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemoryCapacity {
    /// Ops (accesses).
    pub ops: usize,
    /// Distinct state keys.
    pub keys: usize,
    /// Distinct scratch cells.
    #[serde(default)]
    pub scratch: usize,
}

/// An op loaded into a circuit.
#[derive(Debug, Clone, Copy)]
pub struct AssignedOp {
    /// The key.
    pub key: AssignedValue<Fr>,
    /// Its value before.
    pub before: AssignedValue<Fr>,
    /// Its value after.
    pub after: AssignedValue<Fr>,
    /// Time of the previous op on the key.
    pub t_prev: AssignedValue<Fr>,
    /// 1 for a scratch op, 0 for a state op.
    pub scratch: AssignedValue<Fr>,
    /// 1 for an op of the trace, 0 for padding.
    pub used: AssignedValue<Fr>,
    /// The key's pre-image, where the circuit derives keys ([`MemoryChip::with_key_derivation`]);
    /// set by the circuit after loading (`None`: zeros).
    pub preimage: Option<[AssignedValue<Fr>; KEY_PREIMAGE]>,
}

/// Field elements of a state key's pre-image (e.g. space, address and slot).
pub const KEY_PREIMAGE: usize = 3;

/// How a circuit derives a state key from its pre-image, in-circuit.
pub type KeyDerivation<'a> =
    &'a dyn Fn(&mut Context<Fr>, [AssignedValue<Fr>; KEY_PREIMAGE]) -> AssignedValue<Fr>;

/// A scratch table row loaded into a circuit.
#[derive(Debug, Clone, Copy)]
pub struct AssignedScratchCell {
    /// Its address.
    pub address: AssignedValue<Fr>,
    /// Its last value.
    pub last: AssignedValue<Fr>,
    /// Time of its last op.
    pub t_last: AssignedValue<Fr>,
    /// 1 for a cell of the trace, 0 for padding.
    pub used: AssignedValue<Fr>,
}

/// A key row loaded into a circuit.
#[derive(Debug, Clone)]
pub struct AssignedKeyOpening {
    /// The key.
    pub key: AssignedValue<Fr>,
    /// Its value at the pre root.
    pub initial: AssignedValue<Fr>,
    /// Its last value.
    pub last: AssignedValue<Fr>,
    /// Time of its last op.
    pub t_last: AssignedValue<Fr>,
    /// 1 for a key of the trace, 0 for padding.
    pub used: AssignedValue<Fr>,
    /// Siblings of its leaf, from the leaf up.
    pub siblings: Vec<AssignedValue<Fr>>,
    /// The key's pre-image, where the circuit derives keys; set by the circuit after loading.
    pub preimage: Option<[AssignedValue<Fr>; KEY_PREIMAGE]>,
}

/// Proves a state trace consistent and computes the root it leads to.
pub struct MemoryChip<'a> {
    range: &'a RangeChip<Fr>,
    merkle: MerkleChip<'a>,
    capacity: MemoryCapacity,
    every_op_used: bool,
    derivation: Option<KeyDerivation<'a>>,
}

impl std::fmt::Debug for MemoryChip<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryChip")
            .field("capacity", &self.capacity)
            .field("every_op_used", &self.every_op_used)
            .field("derives_keys", &self.derivation.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> MemoryChip<'a> {
    /// A chip for trees of `depth` levels holding up to `capacity`.
    pub fn new(range: &'a RangeChip<Fr>, depth: usize, capacity: MemoryCapacity) -> Result<Self> {
        if capacity.ops >= 1 << TIME_BITS {
            return Err(Error::OutOfRange {
                what: "op capacity",
                value: capacity.ops.to_string(),
                expected: "below 2^TIME_BITS (2^20)",
            });
        }
        Ok(Self {
            range,
            merkle: MerkleChip::new(range, depth)?,
            capacity,
            every_op_used: false,
            derivation: None,
        })
    }

    /// State keys are derived in-circuit from their pre-images, **once per distinct key**: each
    /// key row must hold a pre-image (set on [`AssignedKeyOpening::preimage`] before
    /// [`Self::check`]) that `derive` maps to its key, and every tuple of the multiset check
    /// carries the pre-image next to the key. An op whose pre-image its circuit sets (its row
    /// computes it) then addresses the key derived from it: its tuple must match a written
    /// tuple with the same key and pre-image, and every written tuple of a key carries the key
    /// row's pre-image (the initial tuple does; each write repeats what its op read). So the
    /// rows need no hash of their own; an op whose pre-image its circuit leaves free (a journal
    /// undo) is still held to the key row's.
    #[must_use]
    pub fn with_key_derivation(mut self, derive: KeyDerivation<'a>) -> Self {
        self.derivation = Some(derive);
        self
    }

    /// Every op slot holds an op of the trace, never padding: [`Self::load_ops`] refuses a
    /// shorter trace and gives every op `used` = the constant 1.
    #[must_use]
    pub const fn every_op_used(mut self) -> Self {
        self.every_op_used = true;
        self
    }

    /// The chip's capacity.
    pub const fn capacity(&self) -> MemoryCapacity {
        self.capacity
    }

    /// Loads the ops, padded to capacity. `used` is constrained to bits that form a prefix.
    pub fn load_ops(
        &self,
        ctx: &mut Context<Fr>,
        witness: &MemoryWitness,
    ) -> Result<Vec<AssignedOp>> {
        if witness.ops.len() > self.capacity.ops
            || (self.every_op_used && witness.ops.len() != self.capacity.ops)
        {
            return Err(Error::OutOfRange {
                what: "ops in the trace",
                value: witness.ops.len().to_string(),
                expected: if self.every_op_used {
                    "exactly the circuit's op capacity (every slot is an op)"
                } else {
                    "at most the circuit's op capacity"
                },
            });
        }
        let padding = MemoryOp {
            key: Fr::zero(),
            before: Fr::zero(),
            after: Fr::zero(),
            t_prev: 0,
            scratch: false,
        };
        let ops: Vec<_> = (0..self.capacity.ops)
            .map(|i| {
                let (op, used) = witness.ops.get(i).map_or((&padding, 0), |op| (op, 1));
                AssignedOp {
                    key: ctx.load_witness(op.key),
                    before: ctx.load_witness(op.before),
                    after: ctx.load_witness(op.after),
                    t_prev: ctx.load_witness(Fr::from(u64::from(op.t_prev))),
                    scratch: ctx.load_witness(Fr::from(u64::from(op.scratch))),
                    used: if self.every_op_used {
                        ctx.load_constant(Fr::one())
                    } else {
                        ctx.load_witness(Fr::from(used))
                    },
                    preimage: None,
                }
            })
            .collect();
        for op in &ops {
            self.range.gate().assert_bit(ctx, op.scratch);
        }
        if !self.every_op_used {
            self.constrain_prefix(ctx, ops.iter().map(|op| op.used));
        }
        Ok(ops)
    }

    /// Loads the scratch table, padded to capacity. `used` is constrained to bits that form a
    /// prefix.
    pub fn load_scratch(
        &self,
        ctx: &mut Context<Fr>,
        witness: &MemoryWitness,
    ) -> Result<Vec<AssignedScratchCell>> {
        if witness.scratch.len() > self.capacity.scratch {
            return Err(Error::OutOfRange {
                what: "scratch cells in the trace",
                value: witness.scratch.len().to_string(),
                expected: "at most the circuit's scratch capacity",
            });
        }
        let padding = ScratchCell {
            address: 0,
            last: Fr::zero(),
            t_last: 0,
        };
        let cells: Vec<_> = (0..self.capacity.scratch)
            .map(|i| {
                let (cell, used) = witness.scratch.get(i).map_or((&padding, 0), |c| (c, 1));
                AssignedScratchCell {
                    address: ctx.load_witness(Fr::from(cell.address)),
                    last: ctx.load_witness(cell.last),
                    t_last: ctx.load_witness(Fr::from(u64::from(cell.t_last))),
                    used: ctx.load_witness(Fr::from(used)),
                }
            })
            .collect();
        self.constrain_prefix(ctx, cells.iter().map(|c| c.used));
        Ok(cells)
    }

    /// Loads the key table, padded to capacity. `used` is constrained to bits that form a
    /// prefix.
    pub fn load_keys(
        &self,
        ctx: &mut Context<Fr>,
        witness: &MemoryWitness,
    ) -> Result<Vec<AssignedKeyOpening>> {
        if witness.keys.len() > self.capacity.keys {
            return Err(Error::OutOfRange {
                what: "distinct keys in the trace",
                value: witness.keys.len().to_string(),
                expected: "at most the circuit's key capacity",
            });
        }
        let depth = self.merkle.depth();
        if let Some(row) = witness.keys.iter().position(|k| k.siblings.len() != depth) {
            return Err(Error::BadTrace {
                what: "key row",
                index: row,
                reason: format!("its path is not {depth} siblings long"),
            });
        }
        let padding = KeyOpening {
            key: Fr::zero(),
            initial: Fr::zero(),
            last: Fr::zero(),
            t_last: 0,
            siblings: vec![Fr::zero(); depth],
        };
        let keys: Vec<_> = (0..self.capacity.keys)
            .map(|i| {
                let (row, used) = witness.keys.get(i).map_or((&padding, 0), |row| (row, 1));
                AssignedKeyOpening {
                    key: ctx.load_witness(row.key),
                    initial: ctx.load_witness(row.initial),
                    last: ctx.load_witness(row.last),
                    t_last: ctx.load_witness(Fr::from(u64::from(row.t_last))),
                    used: ctx.load_witness(Fr::from(used)),
                    siblings: ctx.assign_witnesses(row.siblings.iter().copied()),
                    preimage: None,
                }
            })
            .collect();
        self.constrain_prefix(ctx, keys.iter().map(|k| k.used));
        Ok(keys)
    }

    /// Each flag is a bit, and a 1 never follows a 0.
    fn constrain_prefix(
        &self,
        ctx: &mut Context<Fr>,
        flags: impl Iterator<Item = AssignedValue<Fr>>,
    ) {
        let gate = self.range.gate();
        let mut previous: Option<AssignedValue<Fr>> = None;
        for used in flags {
            gate.assert_bit(ctx, used);
            if let Some(previous) = previous {
                // used ∧ ¬previous is forbidden.
                let gap = gate.mul_not(ctx, previous, used);
                gate.assert_is_const(ctx, &gap, &Fr::zero());
            }
            previous = Some(used);
        }
    }

    /// Proves `ops` consistent against the key table `keys` opened at `pre_root` and the
    /// scratch table `scratch` (cells starting at `0`), and returns the post root with the
    /// multiset equality the circuit's second phase must prove ([`RollupCircuit::prove_equal`]):
    /// without it nothing ties the reads to the writes. `ops`, `keys` and `scratch` hold exactly
    /// the chip's capacity.
    pub fn check(
        &self,
        ctx: &mut Context<Fr>,
        pre_root: AssignedValue<Fr>,
        ops: &[AssignedOp],
        keys: &[AssignedKeyOpening],
        scratch: &[AssignedScratchCell],
    ) -> Result<(AssignedValue<Fr>, MultisetEquality)> {
        if ops.len() != self.capacity.ops
            || keys.len() != self.capacity.keys
            || scratch.len() != self.capacity.scratch
        {
            return Err(Error::OutOfRange {
                what: "loaded ops, keys and scratch cells",
                value: format!(
                    "{} ops, {} keys, {} scratch cells",
                    ops.len(),
                    keys.len(),
                    scratch.len()
                ),
                expected: "exactly the chip's capacity",
            });
        }
        let gate = self.range.gate();
        let depth = self.merkle.depth();

        // The key table: distinct keys by increasing leaf index, chained from the pre root.
        let mut root = pre_root;
        let mut previous_index: Option<AssignedValue<Fr>> = None;
        for row in keys {
            let (index, bits) = self.merkle.leaf_index(ctx, row.key);
            if let Some(previous) = previous_index {
                // used ⇒ index − previous − 1 ∈ [0, 2^depth).
                let step = gate.sub(ctx, index, previous);
                let gap = gate.sub(ctx, step, Constant(Fr::one()));
                let gated = gate.mul(ctx, gap, row.used);
                self.range.range_check(ctx, gated, depth);
            }
            previous_index = Some(index);
            let old_leaf = self.merkle.leaf(ctx, row.key, row.initial);
            let opened = self
                .merkle
                .root_from_path(ctx, old_leaf, &bits, &row.siblings);
            // used ⇒ the row opens at the current root.
            let off = gate.sub(ctx, opened, root);
            let off = gate.mul(ctx, off, row.used);
            gate.assert_is_const(ctx, &off, &Fr::zero());
            let new_leaf = self.merkle.leaf(ctx, row.key, row.last);
            let closed = self
                .merkle
                .root_from_path(ctx, new_leaf, &bits, &row.siblings);
            root = gate.select(ctx, closed, root, row.used);
        }

        // The scratch table: distinct addresses, strictly increasing, each below
        // 2^SCRATCH_BITS.
        let mut previous_address: Option<AssignedValue<Fr>> = None;
        for cell in scratch {
            self.range.range_check(ctx, cell.address, SCRATCH_BITS);
            if let Some(previous) = previous_address {
                // used ⇒ address − previous − 1 ∈ [0, 2^SCRATCH_BITS).
                let step = gate.sub(ctx, cell.address, previous);
                let gap = gate.sub(ctx, step, Constant(Fr::one()));
                let gated = gate.mul(ctx, gap, cell.used);
                self.range.range_check(ctx, gated, SCRATCH_BITS);
            }
            previous_address = Some(cell.address);
        }

        // Times: op i (at time i + 1) reads a tuple of time t_prev ≤ i. t_prev needs no range
        // check of its own: a read matches a written tuple, and every written time is 0 or an
        // op's time, so a t_prev that wrapped below 0 matches nothing.
        let bits = time_bits(self.capacity.ops);
        for (i, op) in ops.iter().enumerate() {
            let gap = gate.sub(ctx, Constant(Fr::from(i as u64)), op.t_prev);
            self.range.range_check(ctx, gap, bits);
        }

        // Derived keys: each used key row's key is derived from its pre-image.
        if let Some(derive) = self.derivation {
            for (index, row) in keys.iter().enumerate() {
                let preimage = row.preimage.ok_or(Error::BadTrace {
                    what: "key row",
                    index,
                    reason: "it has no pre-image, and the circuit derives its keys".into(),
                })?;
                let derived = derive(ctx, preimage);
                let off = gate.sub(ctx, derived, row.key);
                let off = gate.mul(ctx, off, row.used);
                gate.assert_is_const(ctx, &off, &Fr::zero());
            }
        }

        // written: initial tuples and op writes; read: op reads and final tuples. A tuple is
        // (key, value, time, space), followed by the key's pre-image where keys are derived.
        let zero = ctx.load_zero();
        let one = ctx.load_constant(Fr::one());
        let derived = self.derivation.is_some();
        let tuple = |fields: [AssignedValue<Fr>; 4],
                     preimage: Option<[AssignedValue<Fr>; KEY_PREIMAGE]>|
         -> Vec<AssignedValue<Fr>> {
            let mut all = fields.to_vec();
            if derived {
                all.extend(preimage.unwrap_or([zero; KEY_PREIMAGE]));
            }
            all
        };
        let mut multisets = MultisetEquality::new("memory");
        for row in keys {
            multisets.written.push(Tuple::when(
                row.used,
                tuple([row.key, row.initial, zero, zero], row.preimage),
            ));
            multisets.read.push(Tuple::when(
                row.used,
                tuple([row.key, row.last, row.t_last, zero], row.preimage),
            ));
        }
        for cell in scratch {
            multisets.written.push(Tuple::when(
                cell.used,
                tuple([cell.address, zero, zero, one], None),
            ));
            multisets.read.push(Tuple::when(
                cell.used,
                tuple([cell.address, cell.last, cell.t_last, one], None),
            ));
        }
        for (i, op) in ops.iter().enumerate() {
            let now = ctx.load_constant(Fr::from(i as u64 + 1));
            let (read, written) = (
                tuple([op.key, op.before, op.t_prev, op.scratch], op.preimage),
                tuple([op.key, op.after, now, op.scratch], op.preimage),
            );
            if self.every_op_used {
                multisets.read.push(Tuple::always(read));
                multisets.written.push(Tuple::always(written));
            } else {
                multisets.read.push(Tuple::when(op.used, read));
                multisets.written.push(Tuple::when(op.used, written));
            }
        }
        Ok((root, multisets))
    }
}

/// The memory check on its own, in the common shape, exposing `[pre root, post root]`: what
/// its tests and the cost example (`cargo run -p lockstep-circuits --example memory_cost`) run.
pub fn circuit(
    stage: CircuitBuilderStage,
    k: u32,
    break_points: Option<MultiPhaseThreadBreakPoints>,
    capacity: MemoryCapacity,
    witness: &MemoryWitness,
) -> Result<RollupCircuit> {
    let mut circuit = RollupCircuit::new(stage, k, break_points)?;
    let range = circuit.range_chip();
    let ctx = circuit.main();
    let chip = MemoryChip::new(&range, witness.depth, capacity)?;
    let ops = chip.load_ops(ctx, witness)?;
    let keys = chip.load_keys(ctx, witness)?;
    let scratch = chip.load_scratch(ctx, witness)?;
    let pre_root = ctx.load_witness(witness.pre_root);
    let (post_root, multisets) = chip.check(ctx, pre_root, &ops, &keys, &scratch)?;
    circuit.prove_equal(multisets);
    circuit.expose([pre_root, post_root]);
    circuit.finish()
}
