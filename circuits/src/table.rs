//! A read-only table of first-phase cells, read at a computed index in a constant number of
//! cells per read.
//!
//! Selecting row `i` of an `n`-row table with an indicator vector costs `O(n)` cells per read.
//! [`ReadOnlyTable`] proves its reads instead with offline memory checking for read-only memory,
//! as a [`MultisetEquality`] in the second phase (over the verifier's challenges, module
//! [`crate::multiset`]). Every table row and every read is a tuple `(index, fields…, count)`:
//!
//! ```text
//!   written = { (i, rowᵢ, 0)     : each table row i }  ∪  { (a, v, c + 1) : each read (a, v, c) }
//!   read    = { (i, rowᵢ, fᵢ)    : each table row i }  ∪  { (a, v, c)     : each read (a, v, c) }
//! ```
//!
//! A read witnesses the row `v` it claims at index `a` and a count `c` (how often that row was
//! read before); the table's final counts `fᵢ` are witnesses too. The index cells are constants
//! `0..n`, and the initial and final tuples of row `i` share its cells.
//!
//! # Why a read cannot lie
//! Take any pair `(a, v)` that is not a table row: a read of a wrong value, or of an index
//! outside the table. No initial or final tuple starts with `(a, v)`, so the tuples that do are
//! the `m` reads claiming it, on the read side with counts `c₁ … c_m` and on the written side
//! with counts `c₁ + 1 … c_m + 1`. Multiset equality asks these to be equal; their sums differ by
//! `m`, which is not 0 modulo the field's characteristic for `0 < m < p`. So `m = 0`: every read
//! is a table row. The counts need no range checks: a prover that picks odd counts can at worst
//! fail its own proof. The equality of tuples follows from the equality of the products with
//! probability `1 − (number of tuples)/|F|` over `γ` (`docs/architecture.md`, "Challenges").
//!
//! # Cost
//! A read of a `w`-field row is two tuples of `w + 2` fields, `2·(3(w + 2) + 5)` second-phase
//! cells, and in the first phase the row's `w` witnesses, its count and the count's successor
//! (`w + 5` cells); a table row adds two tuples and its final count. For the reference
//! rollup's tape step (`w` = 6): 69 cells a read, whatever the table's length.

use halo2_base::{
    gates::{GateChip, GateInstructions},
    utils::ScalarField,
    AssignedValue, Context,
    QuantumCell::Constant,
};

use crate::{
    multiset::{MultisetEquality, Tuple},
    Fr,
};

/// A read-only table of first-phase rows, each of the same number of fields, read at indices
/// the circuit computes (module docs).
#[derive(Debug)]
pub struct ReadOnlyTable {
    name: &'static str,
    /// Each row's index (a constant) and fields.
    rows: Vec<(AssignedValue<Fr>, Vec<AssignedValue<Fr>>)>,
    /// How often each row was read so far (the honest counts).
    counts: Vec<u64>,
    /// The read tuples `(a, v, c)` and their successors `(a, v, c + 1)`.
    reads: Vec<Tuple>,
    writes: Vec<Tuple>,
}

impl ReadOnlyTable {
    /// A table named `name` (for the equality it proves) over `rows`, row `i` at index `i`.
    ///
    /// # Panics
    /// If the rows are not all of one width.
    pub fn new(
        ctx: &mut Context<Fr>,
        name: &'static str,
        rows: impl IntoIterator<Item = Vec<AssignedValue<Fr>>>,
    ) -> Self {
        let rows: Vec<(AssignedValue<Fr>, Vec<AssignedValue<Fr>>)> = rows
            .into_iter()
            .enumerate()
            .map(|(i, fields)| (ctx.load_constant(Fr::from(i as u64)), fields))
            .collect();
        if let Some((_, first)) = rows.first() {
            assert!(
                rows.iter().all(|(_, fields)| fields.len() == first.len()),
                "the rows of table {name} differ in width"
            );
        }
        Self {
            name,
            counts: vec![0; rows.len()],
            rows,
            reads: Vec::new(),
            writes: Vec::new(),
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The fields of the row at `index`, as fresh witnesses held to the table by the equality
    /// [`Self::finish`] returns. An index outside the table witnesses zeros, which that
    /// equality refuses.
    pub fn read(
        &mut self,
        ctx: &mut Context<Fr>,
        gate: &GateChip<Fr>,
        index: AssignedValue<Fr>,
    ) -> Vec<AssignedValue<Fr>> {
        let width = self.rows.first().map_or(0, |(_, fields)| fields.len());
        let (values, count) = match self.row_at(index) {
            Some(i) => (
                self.rows[i].1.iter().map(|f| *f.value()).collect(),
                self.counts[i],
            ),
            None => (vec![Fr::zero(); width], 0),
        };
        self.read_claiming(ctx, gate, index, values, count)
    }

    /// A read that claims `values` with count `count` at `index`: what [`Self::read`] does
    /// with the honest witness (the count of earlier reads of the row). The equality refuses a
    /// claim that is not the table's row.
    pub fn read_claiming(
        &mut self,
        ctx: &mut Context<Fr>,
        gate: &GateChip<Fr>,
        index: AssignedValue<Fr>,
        values: Vec<Fr>,
        count: u64,
    ) -> Vec<AssignedValue<Fr>> {
        // The row's final count is one past its last read's.
        if let Some(i) = self.row_at(index) {
            self.counts[i] = self.counts[i].max(count + 1);
        }
        let fields = ctx.assign_witnesses(values);
        let count = ctx.load_witness(Fr::from(count));
        let next = gate.add(ctx, count, Constant(Fr::one()));
        let tuple = |count| {
            Tuple::always(
                std::iter::once(index)
                    .chain(fields.iter().copied())
                    .chain(std::iter::once(count)),
            )
        };
        self.reads.push(tuple(count));
        self.writes.push(tuple(next));
        fields
    }

    /// The row `index` holds, if any.
    fn row_at(&self, index: AssignedValue<Fr>) -> Option<usize> {
        usize::try_from(index.value().get_lower_64())
            .ok()
            .filter(|&i| i < self.rows.len() && Fr::from(i as u64) == *index.value())
    }

    /// The equality that proves every read: the second phase checks it once the circuit
    /// registers it ([`crate::shape::RollupCircuit::prove_equal`]).
    pub fn finish(self, ctx: &mut Context<Fr>) -> MultisetEquality {
        let zero = ctx.load_zero();
        let mut check = MultisetEquality::new(self.name);
        for ((index, fields), count) in self.rows.iter().zip(&self.counts) {
            let last = ctx.load_witness(Fr::from(*count));
            let row = |count| {
                Tuple::always(
                    std::iter::once(*index)
                        .chain(fields.iter().copied())
                        .chain(std::iter::once(count)),
                )
            };
            check.written.push(row(zero));
            check.read.push(row(last));
        }
        check.written.extend(self.writes);
        check.read.extend(self.reads);
        check
    }
}
