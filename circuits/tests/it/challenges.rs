//! The second phase: every value the memory check fingerprints is committed before the
//! challenges. For each class of value, a prover that commits a lie in the first phase and,
//! after seeing the challenges, fingerprints the honest value (so that the multisets balance)
//! is refused by the copy constraint between the committed cell and its second-phase copy; the
//! lie fingerprinted as committed is refused by the products. A challenge cell that is not the
//! verifier's challenge is refused by the shape's challenge gate.

use halo2_base::{
    gates::circuit::CircuitBuilderStage,
    halo2_proofs::{
        dev::{MockProver, VerifyFailure},
        plonk::{Any, Circuit, ConstraintSystem},
    },
};
use lockstep_circuits::{
    memory::{self, MemoryWitness},
    merkle,
    multiset::{AfterChallengeForgery, Side},
    shape::{self, RollupCircuit},
    Fr,
};

use crate::memory::{scratch_sample, CAPACITY, K};

/// Index of the second phase's advice column.
fn second_phase_column() -> usize {
    let mut cs = ConstraintSystem::<Fr>::default();
    let config = RollupCircuit::configure_with_params(&mut cs, shape::rollup_params(K).unwrap());
    config.base.gate().basic_gates[1][0].value.index()
}

/// Why MockProver refused a circuit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Only copy constraints fail, and some between a first-phase cell and its copy: a
    /// committed value differs from the value the second phase took.
    CommittedValueChanged,
    /// Only copy constraints inside the second phase fail: the products differ.
    ProductsDiffer,
    /// The challenge gate fails.
    ChallengeCell,
    /// Anything else, described.
    Other(String),
}

pub(crate) fn verify(circuit: &RollupCircuit) -> Result<(), Refusal> {
    let prover = MockProver::run(circuit.k(), circuit, vec![circuit.instance_values()]).unwrap();
    let failures = match prover.verify() {
        Ok(()) => return Ok(()),
        Err(failures) => failures,
    };
    let second = second_phase_column();
    let mut copies_into_first = false;
    for failure in &failures {
        match failure {
            VerifyFailure::Permutation { column, .. } => {
                if !(matches!(column.column_type(), Any::Advice(_)) && column.index() == second) {
                    copies_into_first = true;
                }
            }
            VerifyFailure::ConstraintNotSatisfied { constraint, .. }
                if constraint.to_string().contains("challenge cells") =>
            {
                return Err(Refusal::ChallengeCell);
            }
            other => return Err(Refusal::Other(other.to_string())),
        }
    }
    Err(if copies_into_first {
        Refusal::CommittedValueChanged
    } else {
        Refusal::ProductsDiffer
    })
}

fn circuit(witness: &MemoryWitness, forgeries: &[AfterChallengeForgery]) -> RollupCircuit {
    let mut circuit =
        memory::circuit(CircuitBuilderStage::Mock, K, None, CAPACITY, witness).unwrap();
    for forgery in forgeries {
        circuit.forge_after_challenge(*forgery);
    }
    circuit
}

/// Tuple indices in the memory check's equality: key rows, then scratch rows, then ops.
const fn key_row(i: usize) -> usize {
    i
}
const fn scratch_row(i: usize) -> usize {
    CAPACITY.keys + i
}
const fn op(i: usize) -> usize {
    CAPACITY.keys + CAPACITY.scratch + i
}

/// The second phase takes `value` for `field` of tuple `tuple` on `sides`.
fn honest(sides: &[Side], tuple: usize, field: usize, value: Fr) -> Vec<AfterChallengeForgery> {
    sides
        .iter()
        .map(|&side| AfterChallengeForgery::Field {
            check: 0,
            side,
            tuple,
            field,
            value,
        })
        .collect()
}

/// One class of fingerprinted value: how to lie about it in the first phase, and the honest
/// value a prover would fingerprint instead once it knows the challenges.
struct Class {
    name: &'static str,
    lie: fn(&mut MemoryWitness),
    honest: fn(&MemoryWitness) -> Vec<AfterChallengeForgery>,
}

const READ: &[Side] = &[Side::Read];
const WRITTEN: &[Side] = &[Side::Written];
const BOTH: &[Side] = &[Side::Read, Side::Written];

/// The sample's trace (`scratch_sample`): op 0 scratch A 0→7, op 1 key 0 5→6, op 2 A read,
/// op 3 key 1 read 9, op 4 scratch B 0→3, op 5 key 2 0→11, op 6 A 7→0, op 7 B read, op 8
/// key 0 read 6.
fn classes() -> Vec<Class> {
    vec![
        Class {
            name: "an op's key",
            lie: |w| w.ops[3].key += Fr::one(),
            honest: |w| honest(BOTH, op(3), 0, w.ops[3].key - Fr::one()),
        },
        Class {
            name: "an op's value read",
            lie: |w| w.ops[3].before = Fr::from(10),
            honest: |_| honest(READ, op(3), 1, Fr::from(9)),
        },
        Class {
            name: "an op's value written",
            lie: |w| w.ops[1].after = Fr::from(60),
            honest: |_| honest(WRITTEN, op(1), 1, Fr::from(6)),
        },
        Class {
            name: "an op's previous time",
            lie: |w| w.ops[8].t_prev = 0,
            honest: |_| honest(READ, op(8), 2, Fr::from(2)),
        },
        Class {
            name: "an op's space",
            lie: |w| w.ops[3].scratch = true,
            honest: |_| honest(BOTH, op(3), 3, Fr::zero()),
        },
        Class {
            name: "a key's initial value (the pre root moved with it)",
            lie: |w| {
                let row = &mut w.keys[0];
                row.initial += Fr::one();
                let index = merkle::index_of(&row.key, w.depth);
                w.pre_root = merkle::root_from_path(
                    merkle::leaf(row.key, row.initial),
                    index,
                    &row.siblings,
                );
            },
            honest: |w| honest(WRITTEN, key_row(0), 1, w.keys[0].initial - Fr::one()),
        },
        Class {
            name: "a key's last value (the post root moved with it)",
            lie: |w| w.keys.last_mut().unwrap().last += Fr::one(),
            honest: |w| {
                let last = w.keys.len() - 1;
                honest(READ, key_row(last), 1, w.keys[last].last - Fr::one())
            },
        },
        Class {
            name: "a key's last time",
            lie: |w| w.keys[0].t_last += 1,
            honest: |w| {
                honest(
                    READ,
                    key_row(0),
                    2,
                    Fr::from(u64::from(w.keys[0].t_last - 1)),
                )
            },
        },
        Class {
            name: "a scratch cell's address",
            lie: |w| w.scratch[0].address -= 1,
            honest: |w| honest(BOTH, scratch_row(0), 0, Fr::from(w.scratch[0].address + 1)),
        },
        Class {
            name: "a scratch cell's last value",
            lie: |w| w.scratch[1].last += Fr::one(),
            honest: |w| honest(READ, scratch_row(1), 1, w.scratch[1].last - Fr::one()),
        },
        Class {
            name: "a scratch cell's last time",
            lie: |w| w.scratch[1].t_last += 1,
            honest: |w| {
                honest(
                    READ,
                    scratch_row(1),
                    2,
                    Fr::from(u64::from(w.scratch[1].t_last - 1)),
                )
            },
        },
    ]
}

#[test]
fn the_sample_proves_and_a_forgery_of_the_committed_value_changes_nothing() {
    let (witness, _) = scratch_sample();
    assert_eq!(verify(&circuit(&witness, &[])), Ok(()));
    // The test double itself is inert when it takes the committed values: each class's
    // honest value, on the honest witness.
    for class in classes() {
        let mut lying = witness.clone();
        (class.lie)(&mut lying);
        assert_eq!(
            verify(&circuit(&witness, &(class.honest)(&lying))),
            Ok(()),
            "{}: the honest value, committed and fingerprinted",
            class.name
        );
    }
}

#[test]
fn a_value_changed_after_the_challenges_is_refused_for_every_class() {
    let (witness, _) = scratch_sample();
    for class in classes() {
        let mut lying = witness.clone();
        (class.lie)(&mut lying);
        assert_eq!(
            verify(&circuit(&lying, &[])),
            Err(Refusal::ProductsDiffer),
            "{}: the lie, fingerprinted as committed",
            class.name
        );
        assert_eq!(
            verify(&circuit(&lying, &(class.honest)(&lying))),
            Err(Refusal::CommittedValueChanged),
            "{}: the lie committed, the honest value fingerprinted after the challenges",
            class.name
        );
    }
}

#[test]
fn a_challenge_cell_other_than_the_verifiers_challenge_is_refused() {
    let (witness, _) = scratch_sample();
    for index in 0..2 {
        let forged = AfterChallengeForgery::Challenge {
            index,
            value: Fr::from(12_345),
        };
        assert_eq!(
            verify(&circuit(&witness, &[forged])),
            Err(Refusal::ChallengeCell),
            "challenge {index}"
        );
    }
}
