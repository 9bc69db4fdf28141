//! What a rollup's adapter needs of it: [`RollupReplica`], the rollup's state as the adapter
//! keeps it and replays blocks on, and [`RollupProver`], the circuit that proves those blocks.
//!
//! The two meet in a [`ProvingJob`]: a replica executes a block **once**, natively, and returns
//! what the block produced ([`SealedBlock`]) together with whatever its circuit needs as a
//! witness (the reference rollup: the step machine's rows and memory ops). The prover proves
//! exactly that job; nothing is executed twice and no witness is made only to be dropped.
//!
//! [`TestRollupProver`] is one prover: the test-rollup circuit, which proves a block's public
//! inputs and no state transition, for any replica.

use std::sync::Arc;

use halo2_base::{
    gates::{
        circuit::{BaseCircuitParams, CircuitBuilderStage},
        flex_gate::MultiPhaseThreadBreakPoints,
    },
    halo2_proofs::{
        halo2curves::bn256::{Bn256, G1Affine},
        plonk::VerifyingKey,
        poly::kzg::commitment::ParamsKZG,
    },
};
use lockstep_circuits::{
    aggregation::vk_digest,
    entry::Domain,
    keys::{CircuitKey, KeyStore},
    layout::{PublicInputsWitness, NUM_INSTANCES},
    prover,
    shape::RollupCircuit,
    test_rollup, Fr,
};

use crate::{Result, RollupError, SealedBlock};

/// What a block's header says of it, read without executing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// The rollup it is for.
    pub rollup_id: u32,
    /// Its slot.
    pub slot: u64,
    /// The state root it starts from.
    pub pre_root: Fr,
}

/// A rollup's state as its adapter keeps it: the adapter applies every block the builder sealed
/// for the rollup, in slot order, and proves each.
///
/// `Clone` is a snapshot: the adapter keeps the state before its newest block, to prove that
/// block again after a crash.
pub trait RollupReplica: Clone + Send + Sync + 'static {
    /// What applying a block records for the rollup's circuit.
    type Witness: Clone + Send + Sync + 'static;

    /// The rollup's id.
    fn id(&self) -> u32;

    /// The root of the current state.
    fn state_root(&self) -> Fr;

    /// Reads a block's header (the rollup's own encoding) without executing it. Fails on bytes
    /// that are not a block.
    fn header(&self, data: &[u8]) -> Result<BlockHeader>;

    /// Executes the block `data` on the current state, once, and moves to its post state:
    /// returns what the block produced and the witness its proof needs. Fails, changing
    /// nothing, if the block does not start at [`Self::state_root`] or does not re-execute to
    /// what it claims.
    fn apply_block(&mut self, domain: Domain, data: &[u8]) -> Result<(SealedBlock, Self::Witness)>;
}

/// A block its adapter applied, ready to prove.
#[derive(Debug, Clone)]
pub struct ProvingJob<W> {
    /// What the block produced.
    pub sealed: SealedBlock,
    /// The DA commitment of the block's data in the slot's blob.
    pub da_commitment: Fr,
    /// What the replay recorded for the rollup's circuit.
    pub witness: W,
}

impl<W> ProvingJob<W> {
    /// The public inputs the proof must expose.
    pub fn public_inputs(&self) -> PublicInputsWitness {
        self.sealed.witness(self.da_commitment)
    }

    /// The instance column those public inputs are, as the aggregator checks them.
    pub fn instances(&self) -> Result<Vec<Fr>> {
        self.public_inputs()
            .public_inputs()
            .to_instances()
            .map_err(|e| self.internal(format!("laying out the public inputs: {e}")))
    }

    /// A [`RollupError::Internal`] about this job's rollup.
    pub fn internal(&self, reason: impl Into<String>) -> RollupError {
        RollupError::Internal {
            rollup: self.sealed.header.rollup_id,
            reason: format!("slot {}: {}", self.sealed.header.slot, reason.into()),
        }
    }
}

/// Proves a rollup's blocks with one circuit of the common shape: the circuit whose verifying
/// key the rollup is registered with (its digest on L1, its key file at the aggregator).
///
/// A rollup implements four methods: [`Self::label`], [`Self::params`], [`Self::key`] and
/// [`Self::circuit`], which builds the circuit of a job. Proving and checking follow from them
/// (both check that the circuit exposes the job's public inputs, not others); a prover that
/// proves another way (elsewhere, on a GPU) overrides [`Self::prove`].
pub trait RollupProver<W>: Send + Sync + std::fmt::Debug {
    /// What every log line about a proof says it proves (e.g. that it proves no state
    /// transition).
    fn label(&self) -> String;

    /// The SRS the circuit's keys were made with.
    fn params(&self) -> &ParamsKZG<Bn256>;

    /// The circuit's proving key, with the break points keygen recorded.
    fn key(&self) -> &CircuitKey<BaseCircuitParams>;

    /// The circuit of `job` at `stage` (`Mock` or `Prover`), laid out with `break_points`
    /// (the key's at `Prover`, `None` at `Mock`). Fails, with the reason, on a job the circuit
    /// cannot hold.
    fn circuit(
        &self,
        stage: CircuitBuilderStage,
        break_points: Option<MultiPhaseThreadBreakPoints>,
        job: &ProvingJob<W>,
    ) -> Result<RollupCircuit>;

    /// The circuit's verifying key.
    fn vk(&self) -> &VerifyingKey<G1Affine> {
        self.key().pk.get_vk()
    }

    /// The verifying key's digest, as the aggregation exposes it and L1 registers it.
    fn vk_digest(&self) -> Fr {
        vk_digest(&prover::protocol(self.params(), self.vk(), NUM_INSTANCES))
    }

    /// Proves `job` and returns the proof's bytes; its instances are
    /// [`ProvingJob::instances`]. Blocking: seconds to minutes.
    fn prove(&self, job: &ProvingJob<W>) -> Result<Vec<u8>> {
        let key = self.key();
        let circuit = self.circuit(
            CircuitBuilderStage::Prover,
            Some(key.meta.break_points.clone()),
            job,
        )?;
        prove_exposing(job, self.params(), key, circuit)
    }

    /// Checks `job` against the circuit with halo2's `MockProver`, without proving (dev mode).
    fn check(&self, job: &ProvingJob<W>) -> Result<()> {
        let circuit = self.circuit(CircuitBuilderStage::Mock, None, job)?;
        mock_check_exposing(job, &circuit)
    }
}

/// Proves a circuit built by a [`RollupProver`] and checks that the proof exposes `job`'s
/// instances, not others.
pub fn prove_exposing<W>(
    job: &ProvingJob<W>,
    params: &ParamsKZG<Bn256>,
    key: &CircuitKey<BaseCircuitParams>,
    circuit: RollupCircuit,
) -> Result<Vec<u8>> {
    let expected = job.instances()?;
    let snark = prover::prove(params, &key.pk, circuit).map_err(|e| job.internal(e.to_string()))?;
    if snark.instances != vec![expected] {
        return Err(
            job.internal("the proof exposes other public inputs than the block the builder sealed")
        );
    }
    Ok(snark.proof)
}

/// Checks a circuit built by a [`RollupProver`] against `job`'s instances with `MockProver`,
/// at the circuit's own `k`.
pub fn mock_check_exposing<W>(job: &ProvingJob<W>, circuit: &RollupCircuit) -> Result<()> {
    prover::mock_check(circuit.k(), circuit, job.instances()?)
        .map_err(|e| job.internal(format!("the block fails its circuit: {e}")))
}

/// The test-rollup circuit ([`lockstep_circuits::test_rollup`]) as a prover for any replica: it
/// proves a block's public inputs and **no state transition**, and says so in its label.
#[derive(Clone)]
pub struct TestRollupProver {
    params: Arc<ParamsKZG<Bn256>>,
    key: Arc<CircuitKey<BaseCircuitParams>>,
}

impl std::fmt::Debug for TestRollupProver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRollupProver").finish_non_exhaustive()
    }
}

/// Label of every proof made with the test-rollup circuit.
pub const TEST_ROLLUP_LABEL: &str = "test-rollup circuit: public inputs only, STF not proven";

impl TestRollupProver {
    /// With the SRS and key from `keys` (both made and cached on first use:
    /// [`test_rollup::proving_key`]).
    pub fn load(keys: &KeyStore) -> lockstep_circuits::Result<Self> {
        let (params, key) = test_rollup::proving_key(keys)?;
        Ok(Self::new(Arc::new(params), Arc::new(key)))
    }

    /// Over a loaded SRS and key.
    pub const fn new(
        params: Arc<ParamsKZG<Bn256>>,
        key: Arc<CircuitKey<BaseCircuitParams>>,
    ) -> Self {
        Self { params, key }
    }
}

impl<W> RollupProver<W> for TestRollupProver {
    fn label(&self) -> String {
        TEST_ROLLUP_LABEL.to_owned()
    }

    fn params(&self) -> &ParamsKZG<Bn256> {
        &self.params
    }

    fn key(&self) -> &CircuitKey<BaseCircuitParams> {
        &self.key
    }

    fn circuit(
        &self,
        stage: CircuitBuilderStage,
        break_points: Option<MultiPhaseThreadBreakPoints>,
        job: &ProvingJob<W>,
    ) -> Result<RollupCircuit> {
        test_rollup::build(
            stage,
            test_rollup::TEST_ROLLUP_K,
            break_points,
            &job.public_inputs(),
        )
        .map_err(|e| job.internal(e.to_string()))
    }
}

/// A prover shared between adapters and threads proves as itself.
impl<W, P: RollupProver<W> + ?Sized> RollupProver<W> for Arc<P> {
    fn label(&self) -> String {
        (**self).label()
    }

    fn params(&self) -> &ParamsKZG<Bn256> {
        (**self).params()
    }

    fn key(&self) -> &CircuitKey<BaseCircuitParams> {
        (**self).key()
    }

    fn circuit(
        &self,
        stage: CircuitBuilderStage,
        break_points: Option<MultiPhaseThreadBreakPoints>,
        job: &ProvingJob<W>,
    ) -> Result<RollupCircuit> {
        (**self).circuit(stage, break_points, job)
    }

    fn vk(&self) -> &VerifyingKey<G1Affine> {
        (**self).vk()
    }

    fn vk_digest(&self) -> Fr {
        (**self).vk_digest()
    }

    fn prove(&self, job: &ProvingJob<W>) -> Result<Vec<u8>> {
        (**self).prove(job)
    }

    fn check(&self, job: &ProvingJob<W>) -> Result<()> {
        (**self).check(job)
    }
}
