//! The read-only table: reads at computed indices cost a constant number of cells and are held
//! to the table's rows by its multiset equality in the second phase. A read of a value that is
//! not the row at its index, or of an index outside the table, is refused by the products.

use halo2_base::gates::{circuit::CircuitBuilderStage, GateInstructions};
use lockstep_circuits::{shape::RollupCircuit, table::ReadOnlyTable, Fr};

use crate::challenges::{verify, Refusal};

const K: u32 = 13;
const ROWS: u64 = 5;

/// Row `i` of the table: three fields, distinct across rows.
fn row(i: u64) -> [Fr; 3] {
    [Fr::from(10 + i), Fr::from(100 * i + 7), Fr::from(i * i + 3)]
}

/// A read of the circuit under test.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// The honest witness at this index.
    Honest(u64),
    /// A prover's claim: these values and count at this index.
    Claim {
        index: u64,
        values: [Fr; 3],
        count: u64,
    },
}

/// A circuit with the table `row(0..ROWS)` and `reads`; the values each read returned.
fn circuit(reads: &[Read]) -> (RollupCircuit, Vec<Vec<Fr>>) {
    circuit_of(ROWS, reads)
}

/// The same with a table of `rows` rows.
fn circuit_of(rows: u64, reads: &[Read]) -> (RollupCircuit, Vec<Vec<Fr>>) {
    let mut circuit = RollupCircuit::new(CircuitBuilderStage::Mock, K, None).unwrap();
    let range = circuit.range_chip();
    let gate = &range.gate;
    let ctx = circuit.main();
    let rows: Vec<_> = (0..rows).map(|i| ctx.assign_witnesses(row(i))).collect();
    let mut table = ReadOnlyTable::new(ctx, "test table", rows);
    let one = ctx.load_constant(Fr::one());
    let mut returned = Vec::new();
    for read in reads {
        let (index, claim) = match *read {
            Read::Honest(index) => (index, None),
            Read::Claim {
                index,
                values,
                count,
            } => (index, Some((values, count))),
        };
        // A computed index, as a circuit has: (index − 1) + 1.
        let below = ctx.load_witness(Fr::from(index) - Fr::one());
        let index = gate.add(ctx, below, one);
        let fields = match claim {
            None => table.read(ctx, gate, index),
            Some((values, count)) => table.read_claiming(ctx, gate, index, values.to_vec(), count),
        };
        returned.push(fields.iter().map(|f| *f.value()).collect());
    }
    let check = table.finish(circuit.main());
    circuit.prove_equal(check);
    (circuit.finish().unwrap(), returned)
}

#[test]
fn reads_in_any_order_and_repeated_return_the_rows() {
    let order = [3, 0, 4, 3, 3, 1, 0, 2, 4];
    let reads: Vec<Read> = order.iter().map(|&i| Read::Honest(i)).collect();
    let (circuit, returned) = circuit(&reads);
    assert_eq!(verify(&circuit), Ok(()));
    for (i, values) in order.iter().zip(returned) {
        assert_eq!(values, row(*i).to_vec(), "read of row {i}");
    }
}

#[test]
fn a_table_never_read_proves() {
    let (circuit, _) = circuit(&[]);
    assert_eq!(verify(&circuit), Ok(()));
}

#[test]
fn an_honest_claim_proves_as_a_read_does() {
    // The count is how often the row was read before: the second read of row 1 counts 1.
    let reads = [
        Read::Honest(1),
        Read::Claim {
            index: 1,
            values: row(1),
            count: 1,
        },
    ];
    assert_eq!(verify(&circuit(&reads).0), Ok(()));
}

#[test]
fn a_changed_field_is_refused() {
    for field in 0..3 {
        let mut values = row(2);
        values[field] += Fr::one();
        let reads = [
            Read::Honest(0),
            Read::Claim {
                index: 2,
                values,
                count: 0,
            },
        ];
        assert_eq!(
            verify(&circuit(&reads).0),
            Err(Refusal::ProductsDiffer),
            "field {field} changed"
        );
    }
}

#[test]
fn another_rows_values_at_an_index_are_refused() {
    // Row 4's values claimed at index 1, whatever count the prover picks.
    for count in [0, 1, 7] {
        let reads = [
            Read::Honest(4),
            Read::Claim {
                index: 1,
                values: row(4),
                count,
            },
        ];
        assert_eq!(
            verify(&circuit(&reads).0),
            Err(Refusal::ProductsDiffer),
            "count {count}"
        );
    }
}

#[test]
fn an_index_outside_the_table_is_refused() {
    // The honest read past the end witnesses zeros; a claim of the last row there is no better.
    assert_eq!(
        verify(&circuit(&[Read::Honest(ROWS)]).0),
        Err(Refusal::ProductsDiffer)
    );
    let claim = Read::Claim {
        index: ROWS,
        values: row(ROWS - 1),
        count: 0,
    };
    assert_eq!(verify(&circuit(&[claim]).0), Err(Refusal::ProductsDiffer));
}

#[test]
fn a_read_costs_the_same_whatever_the_tables_length() {
    let per_read = |rows: u64| {
        let cells = |reads: &[Read]| circuit_of(rows, reads).0.advice_cells();
        let (one, two) = (
            cells(&[Read::Honest(0)]),
            cells(&[Read::Honest(0), Read::Honest(4)]),
        );
        [two[0] - one[0], two[1] - one[1]]
    };
    // Three fields plus the index and the count: two tuples of 5 fields in the second phase,
    // each 3·5 + 1 cells and 4 to join its product; in the first, the computed index this test
    // builds (5), then the fields, the count and its successor (3 + 1 + 4).
    assert_eq!(per_read(5), [13, 40]);
    assert_eq!(per_read(200), [13, 40]);
}
