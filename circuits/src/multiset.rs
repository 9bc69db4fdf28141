//! Multiset equalities proven in the second phase, over the verifier's challenges.
//!
//! A rollup circuit of the common shape ([`crate::shape`]) commits to every cell of its first
//! phase before the verifier draws two challenges, `β` and `γ`. A [`MultisetEquality`] asks that
//! two lists of tuples of first-phase cells be equal as multisets; the second phase proves it as
//! an equality of grand products of fingerprints,
//!
//! ```text
//!   ∏ written (γ − (f₀ + β·f₁ + β²·f₂ + …))  =  ∏ read (γ − (f₀ + β·f₁ + β²·f₂ + …)),
//! ```
//!
//! each factor taken only where its tuple's `used` flag is 1. Why this is sound, and what each
//! challenge is drawn after, is in `docs/architecture.md`, "Challenges".
//!
//! # Cost
//! A fingerprint of `n` fields is a chain of `n` overlapping gates: `3n + 1` cells; the factor
//! joins the product in 4 more, and a `used` flag adds 8. A tuple of four fields costs 17 cells
//! (25 with a flag), all in the second phase.

use halo2_base::{
    gates::{GateChip, GateInstructions},
    AssignedValue, Context,
    QuantumCell::{Constant, Existing, Witness},
};

use crate::Fr;

/// A tuple of first-phase cells.
#[derive(Debug, Clone)]
pub struct Tuple {
    /// Its fields, in fingerprint order.
    pub fields: Vec<AssignedValue<Fr>>,
    /// Whether it takes part (a bit the first phase constrains); `None`: always.
    pub used: Option<AssignedValue<Fr>>,
}

impl Tuple {
    /// A tuple that always takes part.
    pub fn always(fields: impl IntoIterator<Item = AssignedValue<Fr>>) -> Self {
        Self {
            fields: fields.into_iter().collect(),
            used: None,
        }
    }

    /// A tuple that takes part where `used` is 1.
    pub fn when(
        used: AssignedValue<Fr>,
        fields: impl IntoIterator<Item = AssignedValue<Fr>>,
    ) -> Self {
        Self {
            fields: fields.into_iter().collect(),
            used: Some(used),
        }
    }
}

/// Two multisets of tuples of first-phase cells that must be equal.
#[derive(Debug, Clone, Default)]
pub struct MultisetEquality {
    /// What it is, for errors and docs (e.g. "memory").
    pub name: &'static str,
    /// One side.
    pub written: Vec<Tuple>,
    /// The other side.
    pub read: Vec<Tuple>,
}

impl MultisetEquality {
    /// An empty equality named `name`.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            written: Vec::new(),
            read: Vec::new(),
        }
    }

    /// The widest tuple's field count.
    pub fn width(&self) -> usize {
        self.written
            .iter()
            .chain(&self.read)
            .map(|tuple| tuple.fields.len())
            .max()
            .unwrap_or(0)
    }
}

/// Which side of a [`MultisetEquality`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// [`MultisetEquality::written`].
    Written,
    /// [`MultisetEquality::read`].
    Read,
}

/// **Test double**: a prover that changes a value after the challenges are drawn. The second
/// phase takes `value` for one field of one tuple (or for one challenge cell) instead of the
/// value committed in the first phase (or drawn by the verifier). Only tests build one
/// (feature `test-utils`); a circuit carrying one must be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterChallengeForgery {
    /// Field `field` of tuple `tuple` on `side` of equality `check`.
    Field {
        /// Index of the equality in the circuit.
        check: usize,
        /// The side.
        side: Side,
        /// Index of the tuple on that side.
        tuple: usize,
        /// Index of the field.
        field: usize,
        /// The value the second phase takes.
        value: Fr,
    },
    /// The cell holding challenge `index` (0: β, 1: γ).
    Challenge {
        /// 0 for β, 1 for γ.
        index: usize,
        /// The value the cell holds.
        value: Fr,
    },
}

/// Assigns the second phase: the challenge cells first (offsets 0 and 1 of `ctx`, which the
/// shape's challenge gate binds to `β` and `γ`), then every equality's products.
pub(crate) fn assign_second_phase(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    challenges: [Fr; 2],
    checks: &[MultisetEquality],
    forgeries: &[AfterChallengeForgery],
) {
    let mut cells = challenges;
    for forgery in forgeries {
        if let AfterChallengeForgery::Challenge { index, value } = *forgery {
            cells[index] = value;
        }
    }
    let [beta, gamma] = ctx.assign_witnesses(cells).try_into().expect("two cells");
    if checks.is_empty() {
        return;
    }
    let width = checks
        .iter()
        .map(MultisetEquality::width)
        .max()
        .unwrap_or(0);
    // −β^i for i in 1..width.
    let mut negated_powers = Vec::with_capacity(width.saturating_sub(1));
    let mut power = beta;
    for i in 1..width {
        if i > 1 {
            power = gate.mul(ctx, power, beta);
        }
        negated_powers.push(gate.neg(ctx, power));
    }
    for (index, check) in checks.iter().enumerate() {
        let mut products = [None, None];
        for (slot, side, tuples) in [
            (0, Side::Written, &check.written),
            (1, Side::Read, &check.read),
        ] {
            let mut product: Option<AssignedValue<Fr>> = None;
            for (t, tuple) in tuples.iter().enumerate() {
                let forged = |field: usize| {
                    forgeries.iter().find_map(|forgery| match *forgery {
                        AfterChallengeForgery::Field {
                            check: c,
                            side: s,
                            tuple: tt,
                            field: f,
                            value,
                        } if c == index && s == side && tt == t && f == field => Some(value),
                        _ => None,
                    })
                };
                let factor = factor(ctx, gate, gamma, &negated_powers, tuple, forged);
                product = Some(match product {
                    None => factor,
                    Some(product) => gate.mul(ctx, product, factor),
                });
            }
            products[slot] = product;
        }
        match products {
            [Some(written), Some(read)] => ctx.constrain_equal(&written, &read),
            // An empty side multiplies to 1.
            [Some(side), None] | [None, Some(side)] => {
                gate.assert_is_const(ctx, &side, &Fr::one());
            }
            [None, None] => {}
        }
    }
}

/// `γ − fingerprint`, or 1 where the tuple is unused. Each field enters as a fresh cell
/// constrained equal to its first-phase cell (unless `forged` gives another value, which the
/// test double [`AfterChallengeForgery`] uses).
fn factor(
    ctx: &mut Context<Fr>,
    gate: &GateChip<Fr>,
    gamma: AssignedValue<Fr>,
    negated_powers: &[AssignedValue<Fr>],
    tuple: &Tuple,
    forged: impl Fn(usize) -> Option<Fr>,
) -> AssignedValue<Fr> {
    // s₀ = γ − f₀; sᵢ = sᵢ₋₁ + (−βⁱ)·fᵢ: one gate a + b·c = d per field, each starting on the
    // previous one's output.
    let mut inputs = Vec::with_capacity(3 * tuple.fields.len() + 1);
    let mut offsets = Vec::with_capacity(tuple.fields.len());
    let mut field_cells = Vec::with_capacity(tuple.fields.len());
    let mut running = *gamma.value();
    inputs.push(Existing(gamma));
    for (i, field) in tuple.fields.iter().enumerate() {
        let value = forged(i).unwrap_or(*field.value());
        let (coefficient, c) = if i == 0 {
            (Constant(-Fr::one()), -Fr::one())
        } else {
            (
                Existing(negated_powers[i - 1]),
                *negated_powers[i - 1].value(),
            )
        };
        offsets.push(3 * i as isize);
        field_cells.push(inputs.len() + 1);
        running += c * value;
        inputs.extend([coefficient, Witness(value), Witness(running)]);
    }
    let start = ctx.advice.len();
    ctx.assign_region(inputs, offsets);
    for (field, at) in tuple.fields.iter().zip(field_cells) {
        let cell = ctx.get((start + at) as isize);
        ctx.constrain_equal(&cell, field);
    }
    let term = ctx.last().expect("just assigned");
    match tuple.used {
        None => term,
        // (1 − used) + used · term
        Some(used) => {
            let unused = gate.not(ctx, used);
            gate.mul_add(ctx, used, term, unused)
        }
    }
}
