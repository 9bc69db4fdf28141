//! The tally rollup at its adapter: [`TallyReplica`] applies each sealed block once and keeps
//! the circuit's witness; [`TallyProver`] proves it with the tally circuit. With these two the
//! generic adapter daemon (`lockstep-rollup-adapter`) runs the tally like any rollup.

use std::sync::Arc;

use halo2_base::{
    gates::{
        circuit::{BaseCircuitParams, CircuitBuilderStage},
        flex_gate::MultiPhaseThreadBreakPoints,
    },
    halo2_proofs::{halo2curves::bn256::Bn256, poly::kzg::commitment::ParamsKZG},
};
use lockstep_circuits::{
    entry::Domain,
    keys::{CircuitKey, KeyStore},
    shape::RollupCircuit,
    Fr,
};
use lockstep_rollup_api::{
    self as api, BlockHeader, ProvingJob, RollupError, RollupProver, RollupReplica, SealedBlock,
};

use crate::{
    block::TallyBlock,
    circuit::{self, TallyWitness, TALLY_K},
    TallyState,
};

/// A tally rollup's state at its adapter.
#[derive(Debug, Clone, Copy)]
pub struct TallyReplica {
    id: u32,
    state: TallyState,
}

impl TallyReplica {
    /// Rollup `id` at `state`.
    pub const fn new(id: u32, state: TallyState) -> Self {
        Self { id, state }
    }

    /// The current state.
    pub const fn state(&self) -> TallyState {
        self.state
    }

    fn invalid(&self, reason: String) -> RollupError {
        RollupError::Invalid {
            rollup: self.id,
            reason,
        }
    }
}

impl RollupReplica for TallyReplica {
    /// The state before the block (the served entries and the header are the sealed block's).
    type Witness = TallyState;

    fn id(&self) -> u32 {
        self.id
    }

    fn state_root(&self) -> Fr {
        self.state.root()
    }

    fn header(&self, data: &[u8]) -> api::Result<BlockHeader> {
        let block = TallyBlock::decode(data).map_err(|e| self.invalid(e.to_string()))?;
        Ok(BlockHeader {
            rollup_id: block.rollup_id,
            slot: block.slot,
            pre_root: block.pre.root(),
        })
    }

    fn apply_block(
        &mut self,
        domain: Domain,
        data: &[u8],
    ) -> api::Result<(SealedBlock, Self::Witness)> {
        let block = TallyBlock::decode(data).map_err(|e| self.invalid(e.to_string()))?;
        if block.rollup_id != self.id {
            return Err(self.invalid(format!("the block is rollup {}'s", block.rollup_id)));
        }
        if block.pre != self.state {
            return Err(self.invalid(format!(
                "the block starts at {:?}, the rollup is at {:?}",
                block.pre, self.state
            )));
        }
        let executed = block
            .execute(domain)
            .map_err(|e| self.invalid(e.to_string()))?;
        let sealed = SealedBlock {
            header: block.header(domain, &executed),
            data: data.to_vec(),
            steps: block.calls.len(),
            assumed: Vec::new(),
            served: executed.served.clone(),
        };
        self.state = executed.post;
        Ok((sealed, block.pre))
    }
}

/// The circuit's witness of a job: the sealed block's header and served entries, and the state
/// before it that the replica recorded.
pub fn job_witness(job: &ProvingJob<TallyState>) -> TallyWitness {
    TallyWitness {
        header: job.sealed.header.with_da(job.da_commitment),
        pre: job.witness,
        served: job.sealed.served.clone(),
    }
}

/// The tally circuit as a prover.
#[derive(Clone)]
pub struct TallyProver {
    params: Arc<ParamsKZG<Bn256>>,
    key: Arc<CircuitKey<BaseCircuitParams>>,
}

impl std::fmt::Debug for TallyProver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TallyProver").finish_non_exhaustive()
    }
}

impl TallyProver {
    /// The SRS of [`TALLY_K`] from `keys` (it must be there) and the key from its cache, or made
    /// by keygen and cached.
    pub fn load(keys: &KeyStore) -> crate::Result<Self> {
        let params = keys.load_srs(TALLY_K)?;
        let key = circuit::proving_key(keys, &params)?;
        Ok(Self {
            params: Arc::new(params),
            key: Arc::new(key),
        })
    }
}

impl RollupProver<TallyState> for TallyProver {
    fn label(&self) -> String {
        format!("tally circuit, k = {TALLY_K}")
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
        job: &ProvingJob<TallyState>,
    ) -> api::Result<RollupCircuit> {
        circuit::circuit(stage, TALLY_K, break_points, &job_witness(job))
            .map_err(|e| job.internal(e.to_string()))
    }
}
