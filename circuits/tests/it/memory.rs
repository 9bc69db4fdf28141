//! Offline memory checking: random traces prove and agree with the native tree; every way of
//! lying about a trace that a step machine could try is refused.

use std::collections::HashMap;

use halo2_base::gates::circuit::CircuitBuilderStage;
use lockstep_circuits::{
    memory::{
        self, Access, KeyOpening, MemoryCapacity, MemoryWitness, ScratchCell, Space, StateAccess,
        SCRATCH_BITS,
    },
    merkle::{self, index_of},
    poseidon,
    smt::SparseMerkleTree,
    Fr,
};
use proptest::prelude::*;

use crate::common::mock_verify;

const DEPTH: usize = 8;
pub(crate) const CAPACITY: MemoryCapacity = MemoryCapacity {
    ops: 16,
    keys: 6,
    scratch: 6,
};
pub(crate) const K: u32 = 18;

/// `n` keys on distinct leaves of a depth-`DEPTH` tree.
fn keys(n: usize) -> Vec<Fr> {
    let mut seen = std::collections::HashSet::new();
    (0u64..)
        .map(|i| poseidon::hash(&[Fr::from(i), Fr::from(77)]))
        .filter(|k| seen.insert(index_of(k, DEPTH)))
        .take(n)
        .collect()
}

/// A pre-state holding `initial` for the keys, and the trace of `ops` on it:
/// `(key number, Some(value))` writes, `(key number, None)` reads.
struct Case {
    tree: SparseMerkleTree,
    trace: Vec<StateAccess>,
    /// The tree after the trace, computed leaf by leaf.
    post_root: Fr,
}

fn case(initial: &[u64], ops: &[(usize, Option<u64>)]) -> Case {
    let keys = keys(initial.len());
    let mut tree = SparseMerkleTree::new(DEPTH).unwrap();
    let mut values: HashMap<usize, Fr> = HashMap::new();
    for (i, &v) in initial.iter().enumerate() {
        tree.set(
            index_of(&keys[i], DEPTH),
            merkle::leaf(keys[i], Fr::from(v)),
        );
        values.insert(i, Fr::from(v));
    }
    let mut post = tree.clone();
    let trace = ops
        .iter()
        .map(|&(i, write)| {
            let before = values[&i];
            let after = write.map_or(before, Fr::from);
            values.insert(i, after);
            post.set(index_of(&keys[i], DEPTH), merkle::leaf(keys[i], after));
            StateAccess {
                key: keys[i],
                before,
                after,
            }
        })
        .collect();
    Case {
        tree,
        trace,
        post_root: post.root(),
    }
}

fn prove(witness: &MemoryWitness, post_root: Fr) -> Result<(), String> {
    let builder = memory::circuit(CircuitBuilderStage::Mock, K, None, CAPACITY, witness)
        .map_err(|e| e.to_string())?;
    mock_verify(&builder, vec![witness.pre_root, post_root])
}

/// Key 0 is written twice and read, key 1 only read, key 2 absent then written, key 3 set to 0,
/// key 4 absent and only read.
fn sample() -> (MemoryWitness, Fr) {
    let c = case(
        &[5, 9, 0, 4, 0],
        &[
            (0, None),
            (0, Some(6)),
            (1, None),
            (2, Some(11)),
            (0, Some(7)),
            (3, Some(0)),
            (0, None),
            (4, None),
            (2, None),
        ],
    );
    let witness = MemoryWitness::new(&c.tree, &c.trace).unwrap();
    assert_eq!(witness.post_root().unwrap(), c.post_root);
    (witness, c.post_root)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// Any consistent trace proves, and the circuit's post root is the native tree's.
    #[test]
    fn random_traces_prove_to_the_native_post_root(
        initial in proptest::collection::vec(prop_oneof![Just(0u64), 1u64..1000], 1..=6),
        ops in proptest::collection::vec(
            (0usize..6, proptest::option::of(prop_oneof![Just(0u64), 1u64..1000])), 0..=16),
    ) {
        let ops: Vec<_> = ops.into_iter().map(|(i, w)| (i % initial.len(), w)).collect();
        let c = case(&initial, &ops);
        let witness = MemoryWitness::new(&c.tree, &c.trace).unwrap();
        prop_assert_eq!(witness.post_root().unwrap(), c.post_root);
        prop_assert_eq!(prove(&witness, c.post_root), Ok(()));
    }
}

#[test]
fn the_sample_proves_and_its_post_root_is_bound() {
    let (witness, post_root) = sample();
    assert_eq!(witness.keys.len(), 5);
    assert_eq!(prove(&witness, post_root), Ok(()));
    assert!(
        prove(&witness, witness.pre_root).is_err(),
        "wrong post root"
    );
    // An empty trace keeps the root.
    let c = case(&[3], &[]);
    let empty = MemoryWitness::new(&c.tree, &c.trace).unwrap();
    assert_eq!(prove(&empty, c.tree.root()), Ok(()));
}

#[test]
fn a_read_of_another_value_is_refused() {
    let (mut witness, post_root) = sample();
    // Op 2 reads key 1 (9); claim it read 8.
    witness.ops[2].before = Fr::from(8);
    witness.ops[2].after = Fr::from(8);
    assert!(prove(&witness, post_root).is_err());
}

#[test]
fn a_stale_read_is_refused() {
    let (mut witness, post_root) = sample();
    // Op 6 reads key 0 after op 4 wrote 7; claim it read op 1's 6, with op 1's time.
    assert_eq!(witness.ops[6].t_prev, 5);
    witness.ops[6].before = Fr::from(6);
    witness.ops[6].after = Fr::from(6);
    witness.ops[6].t_prev = 2;
    assert!(prove(&witness, post_root).is_err());
}

#[test]
fn a_read_from_the_future_is_refused() {
    let (mut witness, post_root) = sample();
    // Op 0 reads key 0; claim it read what op 1 writes (6), at op 1's time 2. The multisets
    // still balance if op 1 reads the initial tuple and op 4 reads op 0's write (6 at time 1),
    // so only the time check stands in the way.
    witness.ops[0].before = Fr::from(6);
    witness.ops[0].after = Fr::from(6);
    witness.ops[0].t_prev = 2;
    witness.ops[1].t_prev = 0;
    witness.ops[4].t_prev = 1;
    assert!(prove(&witness, post_root).is_err());
}

#[test]
fn a_skipped_op_is_refused() {
    let (mut witness, post_root) = sample();
    // Drop op 1 (key 0: 5 → 6) and keep everything else.
    witness.ops.remove(1);
    assert!(prove(&witness, post_root).is_err());
}

#[test]
fn a_key_missing_from_the_table_is_refused() {
    let (mut witness, post_root) = sample();
    // Key 4 is only read and stays 0: dropping its row leaves the Merkle chain valid, but its
    // op has no initial tuple to read.
    let row = witness
        .keys
        .iter()
        .position(|k| k.initial == Fr::zero() && k.last == Fr::zero() && k.t_last == 8)
        .expect("key 4's row");
    witness.keys.remove(row);
    assert_eq!(witness.post_root().unwrap(), post_root, "chain still valid");
    assert!(prove(&witness, post_root).is_err());
}

#[test]
fn a_duplicate_key_row_is_refused() {
    let (mut witness, post_root) = sample();
    // Repeat the first row right after it, opening and closing at its last value: the chain
    // stays valid and the extra tuples balance, so only the ordering check refuses it.
    let first = witness.keys[0].clone();
    let index = index_of(&first.key, DEPTH);
    let root_after_first =
        merkle::root_from_path(merkle::leaf(first.key, first.last), index, &first.siblings);
    let duplicate = KeyOpening {
        key: first.key,
        initial: first.last,
        last: first.last,
        t_last: 0,
        siblings: first.siblings,
    };
    assert_eq!(
        merkle::root_from_path(
            merkle::leaf(duplicate.key, duplicate.initial),
            index,
            &duplicate.siblings
        ),
        root_after_first
    );
    witness.keys.insert(1, duplicate);
    assert_eq!(witness.post_root().unwrap(), post_root, "chain still valid");
    assert!(prove(&witness, post_root).is_err());
}

#[test]
fn an_initial_value_not_at_the_pre_root_is_refused() {
    let (mut witness, post_root) = sample();
    // Claim key 1 started at 8 (and is read as 8): consistent ops, wrong opening.
    let row = witness
        .keys
        .iter()
        .position(|k| k.initial == Fr::from(9))
        .expect("key 1's row");
    witness.keys[row].initial = Fr::from(8);
    witness.keys[row].last = Fr::from(8);
    witness.ops[2].before = Fr::from(8);
    witness.ops[2].after = Fr::from(8);
    assert!(witness.post_root().is_err());
    assert!(prove(&witness, post_root).is_err());
}

#[test]
fn inconsistent_traces_are_refused_natively() {
    let c = case(&[5, 9], &[(0, Some(6)), (1, None)]);
    // A read of another value than the last write.
    let mut trace = c.trace.clone();
    trace.push(StateAccess {
        key: trace[0].key,
        before: Fr::from(5),
        after: Fr::from(5),
    });
    let err = MemoryWitness::new(&c.tree, &trace).unwrap_err().to_string();
    assert!(err.contains("op 2"), "{err}");
    // A first access that does not read the pre-state.
    let mut trace = c.trace.clone();
    trace[1].before = Fr::from(1);
    trace[1].after = Fr::from(1);
    let err = MemoryWitness::new(&c.tree, &trace).unwrap_err().to_string();
    assert!(err.contains("op 1") && err.contains("pre root"), "{err}");
    // Two keys on one leaf.
    let key = trace[0].key;
    let alias = key + Fr::from(1u64 << DEPTH);
    let trace = [
        c.trace[0],
        StateAccess {
            key: alias,
            before: Fr::zero(),
            after: Fr::zero(),
        },
    ];
    let err = MemoryWitness::new(&c.tree, &trace).unwrap_err().to_string();
    assert!(err.contains("shares leaf"), "{err}");
}

#[test]
fn over_capacity_is_a_clear_error() {
    let c = case(&[1], &[(0, None); 17]);
    let witness = MemoryWitness::new(&c.tree, &c.trace).unwrap();
    let Err(err) = memory::circuit(CircuitBuilderStage::Mock, K, None, CAPACITY, &witness) else {
        panic!("17 ops in a 16-op circuit");
    };
    let err = err.to_string();
    assert!(err.contains("op capacity"), "{err}");
}

/// Scratch addresses of the scratch sample.
const A: u64 = 5;
const B: u64 = (1 << 40) | 3;

fn scratch(address: u64, before: u64, after: u64) -> Access {
    Access {
        space: Space::Scratch,
        key: Fr::from(address),
        before: Fr::from(before),
        after: Fr::from(after),
    }
}

/// The state sample's trace interleaved with scratch ops: `A` written, read, written back to
/// 0; `B` written and read. Address `A` equals nothing in state, but a state key numerically
/// equal to a scratch address would still be another cell: the space term tells them apart.
pub(crate) fn scratch_sample() -> (MemoryWitness, Fr) {
    let c = case(
        &[5, 9, 0],
        &[(0, Some(6)), (1, None), (2, Some(11)), (0, None)],
    );
    let state: Vec<Access> = c.trace.iter().copied().map(Access::from).collect();
    let trace = vec![
        scratch(A, 0, 7),
        state[0],
        scratch(A, 7, 7),
        state[1],
        scratch(B, 0, 3),
        state[2],
        scratch(A, 7, 0),
        scratch(B, 3, 3),
        state[3],
    ];
    let witness = MemoryWitness::with_scratch(&c.tree, &trace).unwrap();
    assert_eq!(witness.post_root().unwrap(), c.post_root);
    (witness, c.post_root)
}

#[test]
fn state_and_scratch_prove_together() {
    let (witness, post_root) = scratch_sample();
    assert_eq!(
        witness.scratch,
        vec![
            ScratchCell {
                address: A,
                last: Fr::zero(),
                t_last: 7
            },
            ScratchCell {
                address: B,
                last: Fr::from(3),
                t_last: 8
            },
        ]
    );
    assert_eq!(witness.keys.len(), 3);
    assert_eq!(prove(&witness, post_root), Ok(()));
    assert!(
        prove(&witness, witness.pre_root).is_err(),
        "wrong post root"
    );
}

#[test]
fn a_scratch_cell_starts_at_zero() {
    // The first op on A claims the cell held 4 before it was ever written.
    let (mut witness, post_root) = scratch_sample();
    witness.ops[0].before = Fr::from(4);
    assert!(prove(&witness, post_root).is_err());
    // Natively the trace is refused where it goes wrong.
    let c = case(&[1], &[]);
    let error = MemoryWitness::with_scratch(&c.tree, &[scratch(A, 4, 4)]).unwrap_err();
    assert!(error.to_string().contains("never written"), "{error}");
}

#[test]
fn a_stale_scratch_read_is_refused() {
    // The read of A (op 2) claims the 0 A held before op 0 wrote 7, with time 0.
    let (mut witness, post_root) = scratch_sample();
    assert_eq!(witness.ops[2].t_prev, 1);
    witness.ops[2].before = Fr::zero();
    witness.ops[2].after = Fr::zero();
    witness.ops[2].t_prev = 0;
    witness.ops[6].before = Fr::zero();
    assert!(prove(&witness, post_root).is_err());
}

#[test]
fn an_op_in_the_other_space_is_refused() {
    // A scratch op claimed as a state op, and a state op claimed as scratch.
    for op in [0, 1] {
        let (mut witness, post_root) = scratch_sample();
        witness.ops[op].scratch = !witness.ops[op].scratch;
        assert!(prove(&witness, post_root).is_err(), "op {op}");
    }
}

#[test]
fn a_duplicate_scratch_row_is_refused() {
    // Two rows for A let a read return A's initial 0 after op 0 wrote 7: both initial tuples
    // are read, both final tuples are written, so the multisets balance. Only the ordering of
    // the table refuses it.
    let (mut witness, post_root) = scratch_sample();
    witness.ops[2].before = Fr::zero();
    witness.ops[2].after = Fr::zero();
    witness.ops[2].t_prev = 0;
    // A's ops now form two chains: op 0 (0 → 7, time 1) and op 2 (0 → 0, time 3), then op 6
    // reads op 0's 7 and writes 0 at time 7.
    witness.ops[6].t_prev = 1;
    witness.scratch = vec![
        ScratchCell {
            address: A,
            last: Fr::zero(),
            t_last: 3,
        },
        ScratchCell {
            address: A,
            last: Fr::zero(),
            t_last: 7,
        },
        witness.scratch[1],
    ];
    assert!(prove(&witness, post_root).is_err());
}

#[test]
fn scratch_addresses_have_a_range() {
    let c = case(&[1], &[]);
    let error =
        MemoryWitness::with_scratch(&c.tree, &[scratch(1 << SCRATCH_BITS, 0, 1)]).unwrap_err();
    assert!(error.to_string().contains("not below"), "{error}");
    let (mut witness, post_root) = scratch_sample();
    let extra = ScratchCell {
        address: 77,
        last: Fr::zero(),
        t_last: 0,
    };
    witness.scratch = vec![extra; CAPACITY.scratch + 1];
    let error = prove(&witness, post_root).unwrap_err();
    assert!(error.contains("scratch capacity"), "{error}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    /// Random scratch ops interleaved with a random state trace prove, to the state's root.
    #[test]
    fn random_state_and_scratch_traces_prove(
        state in proptest::collection::vec((0usize..3, proptest::option::of(1u64..1000)), 0..=8),
        scratch_ops in proptest::collection::vec(
            (0u64..6, proptest::option::of(prop_oneof![Just(0u64), 1u64..1000])), 0..=8),
    ) {
        let c = case(&[5, 0, 9], &state);
        let mut values = HashMap::new();
        let mut trace: Vec<Access> = Vec::new();
        let mut state_ops = c.trace.iter().copied().map(Access::from);
        for (address, write) in scratch_ops {
            let address = address * 1_000_003;
            let before = *values.get(&address).unwrap_or(&0);
            let after = write.unwrap_or(before);
            values.insert(address, after);
            trace.push(scratch(address, before, after));
            trace.extend(state_ops.next());
        }
        trace.extend(state_ops);
        let witness = MemoryWitness::with_scratch(&c.tree, &trace).unwrap();
        prop_assert_eq!(witness.post_root().unwrap(), c.post_root);
        prop_assert_eq!(prove(&witness, c.post_root), Ok(()));
    }
}

/// The memory circuit with derived keys: every key row holds the pre-image `[key − 1, 1, 0]`
/// (the test derivation is the sum of the parts), every state op `op_preimage(i, key)`.
fn derived_circuit(
    witness: &MemoryWitness,
    op_preimage: impl Fn(usize, Fr) -> [Fr; 3],
    row_preimage: impl Fn(usize, Fr) -> Option<[Fr; 3]>,
) -> lockstep_circuits::Result<lockstep_circuits::shape::RollupCircuit> {
    use halo2_base::gates::GateInstructions;
    let mut circuit =
        lockstep_circuits::shape::RollupCircuit::new(CircuitBuilderStage::Mock, K, None)?;
    let range = circuit.range_chip();
    let gate = range.gate.clone();
    let derive = move |ctx: &mut halo2_base::Context<Fr>,
                       [a, b, c]: [halo2_base::AssignedValue<Fr>; 3]| {
        let ab = gate.add(ctx, a, b);
        gate.add(ctx, ab, c)
    };
    let ctx = circuit.main();
    let chip =
        memory::MemoryChip::new(&range, witness.depth, CAPACITY)?.with_key_derivation(&derive);
    let mut ops = chip.load_ops(ctx, witness)?;
    let mut keys = chip.load_keys(ctx, witness)?;
    let scratch = chip.load_scratch(ctx, witness)?;
    for (i, op) in ops.iter_mut().enumerate().take(witness.ops.len()) {
        if !witness.ops[i].scratch {
            op.preimage = Some(op_preimage(i, witness.ops[i].key).map(|v| ctx.load_witness(v)));
        }
    }
    for (i, row) in keys.iter_mut().enumerate().take(witness.keys.len()) {
        row.preimage = row_preimage(i, witness.keys[i].key).map(|p| p.map(|v| ctx.load_witness(v)));
    }
    for row in keys.iter_mut().skip(witness.keys.len()) {
        row.preimage = Some([Fr::zero(); 3].map(|v| ctx.load_witness(v)));
    }
    let pre_root = ctx.load_witness(witness.pre_root);
    let (post_root, multisets) = chip.check(ctx, pre_root, &ops, &keys, &scratch)?;
    circuit.prove_equal(multisets);
    circuit.expose([pre_root, post_root]);
    circuit.finish()
}

fn split(key: Fr) -> [Fr; 3] {
    [key - Fr::one(), Fr::one(), Fr::zero()]
}

#[test]
fn derived_keys_bind_each_op_to_its_key_rows_preimage() {
    let (witness, post_root) = scratch_sample();
    let check = |circuit: lockstep_circuits::shape::RollupCircuit| {
        mock_verify(&circuit, vec![witness.pre_root, post_root])
    };
    let honest = derived_circuit(&witness, |_, key| split(key), |_, key| Some(split(key))).unwrap();
    assert_eq!(check(honest), Ok(()));
    // An op's pre-image that derives to the same key but is not the key row's: refused by the
    // multisets (the pre-image itself is bound, not only what it derives to).
    let other = derived_circuit(
        &witness,
        |i, key| {
            if i == 3 {
                [key, Fr::zero(), Fr::zero()]
            } else {
                split(key)
            }
        },
        |_, key| Some(split(key)),
    )
    .unwrap();
    assert!(check(other).is_err(), "an op with another pre-image");
    // A key row whose pre-image does not derive to its key: refused by the derivation.
    let underived = derived_circuit(
        &witness,
        |_, key| split(key),
        |i, key| {
            Some(if i == 0 {
                [key, Fr::one(), Fr::zero()]
            } else {
                split(key)
            })
        },
    )
    .unwrap();
    assert!(check(underived).is_err(), "a key row that does not derive");
    // A key row without a pre-image is a clear error.
    let missing = derived_circuit(&witness, |_, key| split(key), |_, _| None).unwrap_err();
    assert!(missing.to_string().contains("no pre-image"), "{missing}");
}

#[test]
fn the_time_gap_is_range_checked_to_the_bits_of_the_op_capacity() {
    use lockstep_circuits::memory::{time_bits, TIME_BITS};
    // A gap is below the op capacity: 511 slots need 9 bits, 512 need 9, 513 need 10.
    for (ops, bits) in [
        (1, 1),
        (2, 1),
        (3, 2),
        (4, 2),
        (5, 3),
        (511, 9),
        (512, 9),
        (513, 10),
    ] {
        assert_eq!(time_bits(ops), bits, "{ops} ops");
    }
    assert_eq!(time_bits(1 << TIME_BITS), TIME_BITS);
}
