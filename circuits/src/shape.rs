//! The common shape of every rollup circuit (DESIGN decision 4), version 2: two proving phases.
//!
//! The aggregation circuit verifies rollup proofs with their preprocessed commitments and `k`
//! loaded as witnesses, so one aggregation circuit (and one L1 verifier) serves every rollup
//! whose circuit has this shape: the same halo2-lib gate, the same number of advice (per phase),
//! lookup and fixed columns, the same lookup table, the same two challenges and one instance
//! column of [`crate::layout::NUM_INSTANCES`] cells. Only `k` (at least [`MIN_K`]) and the size
//! of the range-check table may differ between rollups: the table is a fixed column, so its
//! contents are in the verifying key's fixed commitments, which the aggregation loads as
//! witnesses and the vk digest covers.
//!
//! # Range checks sized per circuit
//! A range check of `b` bits costs one lookup per `lookup_bits`-bit limb, and a limb
//! decomposition where `b > lookup_bits`. [`rollup_params`] takes [`DEFAULT_LOOKUP_BITS`];
//! [`rollup_params_sized`] lets a deployment pick any size from [`MIN_LOOKUP_BITS`] to `k − 1`
//! (the table must fit the `2^k` rows), recorded in the circuit's parameters and so in its
//! cached key.
//!
//! # Two phases
//! [`RollupCircuit`] is built in two phases. The first holds everything the prover chooses; it
//! is committed before the verifier draws two challenges, `β` and `γ`. The second holds only
//! what is computed from first-phase cells and the challenges: the grand products of the
//! circuit's [`MultisetEquality`]s (the memory check's, for one). Its first two cells are the
//! challenges themselves, bound to the verifier's by the shape's one custom gate ("challenge
//! cells"). Why the ordering is sound: `docs/architecture.md`, "Challenges".
//!
//! The shape is thin on purpose: the aggregation circuit's cost, and the size of the EVM
//! verifier behind it, grow with the number of columns of the circuits it verifies (DESIGN
//! decision 6). A rollup that needs more cells raises `k`, not the column count.

use std::cell::RefCell;

use halo2_base::{
    gates::{
        circuit::{
            builder::BaseCircuitBuilder, BaseCircuitParams, BaseConfig, CircuitBuilderStage,
            MaybeRangeConfig,
        },
        flex_gate::{
            threads::SinglePhaseCoreManager, MultiPhaseThreadBreakPoints, ThreadBreakPoints,
        },
        RangeChip,
    },
    halo2_proofs::{
        circuit::{Layouter, SimpleFloorPlanner},
        plonk::{Challenge, Circuit, ConstraintSystem, Error as PlonkError, FirstPhase, Selector},
        poly::Rotation,
    },
    virtual_region::{copy_constraints::CopyConstraintManager, manager::VirtualRegionManager},
    AssignedValue, Context, ContextCell,
};
use snark_verifier_sdk::CircuitExt;

use crate::{
    multiset::{self, AfterChallengeForgery, MultisetEquality},
    Error, Fr, Result,
};

/// Advice columns of a rollup circuit's first phase.
pub const NUM_ADVICE: usize = 4;
/// Advice columns of its second phase (the products over the challenges).
pub const NUM_SECOND_PHASE_ADVICE: usize = 1;
/// Lookup-advice columns of a rollup circuit (first phase only).
pub const NUM_LOOKUP_ADVICE: usize = 1;
/// Fixed columns (constants) of a rollup circuit.
pub const NUM_FIXED: usize = 1;
/// Bits of the range-check lookup table, unless the circuit sizes it ([`rollup_params_sized`]).
pub const DEFAULT_LOOKUP_BITS: usize = 10;
/// Fewest bits of a range-check lookup table.
pub const MIN_LOOKUP_BITS: usize = 8;
/// Smallest `k` a rollup circuit may use (the default lookup table needs
/// `2^DEFAULT_LOOKUP_BITS` rows).
pub const MIN_K: u32 = DEFAULT_LOOKUP_BITS as u32 + 1;
/// Rows halo2 reserves at the end of every column for blinding.
pub const BLINDING_ROWS: usize = 9;
/// Version of the shape; part of every key-cache digest. 2: two phases and the challenge gate.
pub const SHAPE_VERSION: u32 = 2;

/// The circuit parameters of a rollup circuit of the common shape at `k`, with the default
/// range-check table.
pub fn rollup_params(k: u32) -> Result<BaseCircuitParams> {
    if k < MIN_K {
        return Err(Error::OutOfRange {
            what: "rollup circuit k",
            value: k.to_string(),
            expected: "at least MIN_K (11)",
        });
    }
    rollup_params_sized(k, DEFAULT_LOOKUP_BITS)
}

/// The circuit parameters of a rollup circuit of the common shape at `k` with a range-check
/// table of `lookup_bits` bits, from [`MIN_LOOKUP_BITS`] to `k − 1`.
pub fn rollup_params_sized(k: u32, lookup_bits: usize) -> Result<BaseCircuitParams> {
    let most = (k as usize).saturating_sub(1);
    if !(MIN_LOOKUP_BITS..=most).contains(&lookup_bits) {
        return Err(Error::OutOfRange {
            what: "lookup bits of a rollup circuit",
            value: lookup_bits.to_string(),
            expected: "from MIN_LOOKUP_BITS (8) to k − 1",
        });
    }
    Ok(BaseCircuitParams {
        k: k as usize,
        num_advice_per_phase: vec![NUM_ADVICE, NUM_SECOND_PHASE_ADVICE],
        num_fixed: NUM_FIXED,
        num_lookup_advice_per_phase: vec![NUM_LOOKUP_ADVICE, 0],
        lookup_bits: Some(lookup_bits),
        num_instance_columns: 1,
    })
}

/// The columns, gates and challenges of the common shape.
#[derive(Debug, Clone)]
pub struct ShapeConfig {
    /// halo2-lib's gate, range lookup and instance column.
    pub base: BaseConfig<Fr>,
    /// `β` and `γ`, drawn after the first phase is committed.
    pub challenges: [Challenge; 2],
    /// On the second phase's first row: that cell is `β` and the one below it `γ`.
    q_challenges: Selector,
}

/// A rollup circuit of the common shape: its first phase built by the rollup's code, its
/// second phase derived, at each synthesis, from the challenges.
///
/// Build one with [`RollupCircuit::new`], lay the first phase out through [`Self::builder`]
/// (phase 0 only), register second-phase work with [`Self::prove_equal`], expose the public
/// inputs with [`Self::expose`], and end with [`Self::finish`].
#[derive(Debug)]
pub struct RollupCircuit {
    builder: BaseCircuitBuilder<Fr>,
    checks: Vec<MultisetEquality>,
    /// The copy constraints of the first phase, taken at the first synthesis and restored at
    /// every later one (keygen synthesizes twice, `MockProver` once per phase).
    first_copies: RefCell<Option<CopyConstraintManager<Fr>>>,
    /// Break points of the second phase, recorded by the last constraint-generating synthesis.
    second_break_points: RefCell<Option<ThreadBreakPoints>>,
    forgeries: Vec<AfterChallengeForgery>,
}

impl RollupCircuit {
    /// An empty circuit of the common shape at `k` for `stage`: `Mock` or `Keygen` (then
    /// `break_points` is `None`), or `Prover` with the break points recorded at keygen.
    pub fn new(
        stage: CircuitBuilderStage,
        k: u32,
        break_points: Option<MultiPhaseThreadBreakPoints>,
    ) -> Result<Self> {
        Self::build(stage, rollup_params(k)?, break_points)
    }

    /// The same with a range-check table of `lookup_bits` bits ([`rollup_params_sized`]).
    pub fn sized(
        stage: CircuitBuilderStage,
        k: u32,
        lookup_bits: usize,
        break_points: Option<MultiPhaseThreadBreakPoints>,
    ) -> Result<Self> {
        Self::build(stage, rollup_params_sized(k, lookup_bits)?, break_points)
    }

    fn build(
        stage: CircuitBuilderStage,
        params: BaseCircuitParams,
        break_points: Option<MultiPhaseThreadBreakPoints>,
    ) -> Result<Self> {
        let mut builder = match (stage, break_points) {
            (CircuitBuilderStage::Prover, Some(bp)) => {
                if bp.len() != 2 {
                    return Err(Error::OutOfRange {
                        what: "phases in the break points",
                        value: bp.len().to_string(),
                        expected: "2 (break points of shape version 1 are not read back)",
                    });
                }
                BaseCircuitBuilder::prover(params, bp)
            }
            (stage, _) => BaseCircuitBuilder::from_stage(stage).use_params(params),
        };
        // The second phase's manager, with its main thread: the challenge cells open it.
        builder.main(1);
        Ok(Self {
            builder,
            checks: Vec::new(),
            first_copies: RefCell::new(None),
            second_break_points: RefCell::new(None),
            forgeries: Vec::new(),
        })
    }

    /// The first phase's builder: lay out cells in phase 0 only (`builder().main(0)`).
    pub fn builder(&mut self) -> &mut BaseCircuitBuilder<Fr> {
        &mut self.builder
    }

    /// The range chip of the shape.
    pub fn range_chip(&self) -> RangeChip<Fr> {
        self.builder.range_chip()
    }

    /// The first phase's main thread.
    pub fn main(&mut self) -> &mut Context<Fr> {
        self.builder.main(0)
    }

    /// `k` of the circuit.
    pub fn k(&self) -> u32 {
        u32::try_from(self.builder.config_params.k).expect("a circuit's k fits 32 bits")
    }

    /// Appends `cells` to the public inputs.
    pub fn expose(&mut self, cells: impl IntoIterator<Item = AssignedValue<Fr>>) {
        self.builder.assigned_instances[0].extend(cells);
    }

    /// Asks the second phase to prove `check`.
    pub fn prove_equal(&mut self, check: MultisetEquality) {
        self.checks.push(check);
    }

    /// **Test double** ([`AfterChallengeForgery`]): the second phase takes a value other than
    /// the committed one (one more each call). Such a circuit must be refused.
    #[cfg(feature = "test-utils")]
    pub fn forge_after_challenge(&mut self, forgery: AfterChallengeForgery) {
        self.forgeries.push(forgery);
    }

    /// Ends the building: checks, except at `Prover`, that both phases fit the shape at `k`,
    /// naming what overflows.
    pub fn finish(mut self) -> Result<Self> {
        if self.builder.witness_gen_only() {
            return Ok(self);
        }
        if let Err(error) = self.check_fits() {
            // Never synthesised: drop it quietly.
            self.builder.clear();
            return Err(error);
        }
        Ok(self)
    }

    /// Advice cells of the first and the second phase.
    pub fn advice_cells(&self) -> [usize; 2] {
        let stats = self.measure(|probe| probe.statistics());
        let cells = &stats.gate.total_advice_per_phase;
        [cells[0], cells.get(1).copied().unwrap_or(0)]
    }

    /// `measure` of a copy of the builder with the second phase laid out (at zero challenges:
    /// the layout does not depend on them). The copy is only measured, never synthesised, and
    /// cleared after, so dropping it logs none of halo2-base's warnings.
    fn measure<T>(&self, measure: impl FnOnce(&mut BaseCircuitBuilder<Fr>) -> T) -> T {
        let mut probe = self.builder.deep_clone();
        let gate = probe.range_chip().gate;
        multiset::assign_second_phase(probe.main(1), &gate, [Fr::zero(); 2], &self.checks, &[]);
        let measured = measure(&mut probe);
        probe.clear();
        measured
    }

    /// Drops everything built, quietly: for a circuit only measured, never synthesized.
    pub fn clear(&mut self) {
        self.checks.clear();
        self.builder.clear();
    }

    /// The public inputs' values.
    pub fn instance_values(&self) -> Vec<Fr> {
        self.builder.assigned_instances[0]
            .iter()
            .map(|cell| *cell.value())
            .collect()
    }

    fn check_fits(&self) -> Result<()> {
        let k = self.k();
        let needed = self.measure(|probe| probe.calculate_params(Some(BLINDING_ROWS)));
        let limits = [NUM_ADVICE, NUM_SECOND_PHASE_ADVICE];
        let fits = needed
            .num_advice_per_phase
            .iter()
            .enumerate()
            .all(|(phase, &n)| n <= limits.get(phase).copied().unwrap_or(0))
            && needed
                .num_lookup_advice_per_phase
                .first()
                .copied()
                .unwrap_or(0)
                <= NUM_LOOKUP_ADVICE
            && needed
                .num_lookup_advice_per_phase
                .iter()
                .skip(1)
                .all(|&n| n == 0)
            && needed.num_fixed <= NUM_FIXED;
        if fits {
            Ok(())
        } else {
            Err(Error::CircuitTooLarge {
                k,
                needed: format!(
                    "{:?} advice (per phase), {:?} lookup advice, {} fixed columns",
                    needed.num_advice_per_phase,
                    needed.num_lookup_advice_per_phase,
                    needed.num_fixed
                ),
            })
        }
    }

    /// Break points of both phases, recorded by the last constraint-generating synthesis.
    pub fn break_points(&self) -> MultiPhaseThreadBreakPoints {
        let first = self.builder.core().phase_manager[0]
            .break_points
            .borrow()
            .clone()
            .expect("break points are recorded at keygen");
        let second = self
            .second_break_points
            .borrow()
            .clone()
            .expect("break points are recorded at keygen");
        vec![first, second]
    }
}

impl Drop for RollupCircuit {
    fn drop(&mut self) {
        // The snapshot is never synthesised itself.
        if let Some(copies) = self.first_copies.get_mut() {
            copies.clear();
        }
    }
}

impl Circuit<Fr> for RollupCircuit {
    type Config = ShapeConfig;
    type FloorPlanner = SimpleFloorPlanner;
    type Params = BaseCircuitParams;

    fn params(&self) -> Self::Params {
        self.builder.config_params.clone()
    }

    /// The same layout, its advice assigned as unknown values (as at keygen).
    fn without_witnesses(&self) -> Self {
        Self {
            builder: self.builder.deep_clone().unknown(true),
            checks: self.checks.clone(),
            first_copies: RefCell::new(None),
            second_break_points: RefCell::new(None),
            forgeries: self.forgeries.clone(),
        }
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, params: Self::Params) -> ShapeConfig {
        let base = BaseConfig::configure(meta, params);
        let challenges = [
            meta.challenge_usable_after(FirstPhase),
            meta.challenge_usable_after(FirstPhase),
        ];
        let q_challenges = meta.selector();
        let column = base.gate().basic_gates[1][0].value;
        meta.create_gate("challenge cells", |meta| {
            let q = meta.query_selector(q_challenges);
            let beta = meta.query_advice(column, Rotation::cur());
            let gamma = meta.query_advice(column, Rotation::next());
            vec![
                q.clone() * (beta - meta.query_challenge(challenges[0])),
                q * (gamma - meta.query_challenge(challenges[1])),
            ]
        });
        ShapeConfig {
            base,
            challenges,
            q_challenges,
        }
    }

    fn configure(_: &mut ConstraintSystem<Fr>) -> ShapeConfig {
        unreachable!("a rollup circuit is configured with its parameters")
    }

    fn synthesize(
        &self,
        config: ShapeConfig,
        mut layouter: impl Layouter<Fr>,
    ) -> std::result::Result<(), PlonkError> {
        let builder = &self.builder;
        let witness_gen_only = builder.witness_gen_only();
        config.base.initialize(&mut layouter);
        if !witness_gen_only {
            let copy_manager = &builder.core().copy_manager;
            let mut copies = copy_manager.lock().expect("copy manager lock");
            let mut first = self.first_copies.borrow_mut();
            match first.as_ref() {
                None => *first = Some(copies.clone()),
                Some(snapshot) => *copies = snapshot.clone(),
            }
        }
        let usable_rows = config.base.gate().max_rows;
        layouter.assign_region(
            || "first phase",
            |mut region| {
                builder.core().phase_manager[0].assign_raw(
                    &(config.base.gate().basic_gates[0].clone(), usable_rows),
                    &mut region,
                );
                if let MaybeRangeConfig::WithRange(range) = &config.base.base {
                    builder.assign_lookups_in_phase(range, &mut region, 0);
                }
                Ok(())
            },
        )?;

        // The prover commits to the first phase here; the challenges follow from it. They are
        // unknown at keygen (only the layout counts, and it does not depend on them) and in
        // `MockProver`'s first pass (which keeps only the first phase's cells).
        layouter.next_phase();
        let mut challenges = [Fr::zero(); 2];
        for (value, challenge) in challenges.iter_mut().zip(config.challenges) {
            layouter.get_challenge(challenge).map(|c| *value = c);
        }
        let mut second: SinglePhaseCoreManager<Fr> = builder.core().phase_manager[1].clone();
        let gate = halo2_base::gates::GateChip::default();
        multiset::assign_second_phase(
            second.main(),
            &gate,
            challenges,
            &self.checks,
            &self.forgeries,
        );
        layouter.assign_region(
            || "second phase",
            |mut region| {
                second.assign_raw(
                    &(config.base.gate().basic_gates[1].clone(), usable_rows),
                    &mut region,
                );
                if !witness_gen_only {
                    let copy_manager = &builder.core().copy_manager;
                    let beta = copy_manager
                        .lock()
                        .expect("copy manager lock")
                        .assigned_advices[&ContextCell::new(second.type_of(), 0, 0)];
                    config.q_challenges.enable(&mut region, beta.row_offset)?;
                    copy_manager.assign_raw(config.base.constants(), &mut region);
                }
                Ok(())
            },
        )?;
        if !witness_gen_only {
            *self.second_break_points.borrow_mut() = second.break_points.borrow().clone();
        }
        builder.assign_instances(&config.base.instance, layouter.namespace(|| "expose"));
        Ok(())
    }
}

impl CircuitExt<Fr> for RollupCircuit {
    fn num_instance(&self) -> Vec<usize> {
        self.builder
            .assigned_instances
            .iter()
            .map(Vec::len)
            .collect()
    }

    fn instances(&self) -> Vec<Vec<Fr>> {
        self.builder
            .assigned_instances
            .iter()
            .map(|column| column.iter().map(|cell| *cell.value()).collect())
            .collect()
    }
}

impl crate::keys::KeygenCircuit for RollupCircuit {
    fn break_points(&self) -> MultiPhaseThreadBreakPoints {
        Self::break_points(self)
    }
}
