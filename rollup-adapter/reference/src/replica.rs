//! The reference rollup at its adapter: [`ReferenceReplica`] applies each sealed block **once**,
//! on the step machine, and keeps the run as the witness of the block's proof; [`StfProver`]
//! proves that run with the STF circuit of a deployment.
//!
//! The machine's run is the whole execution: its rows give the post state (each key's last
//! value in the memory witness), the ETH delta and the entries, and the same rows are what the
//! STF circuit lays out. The executor ([`crate::ReferenceRollup`]) is the builder's; the
//! adapter never runs it.

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
    layout::SlotHeader,
    shape::RollupCircuit,
    Fr,
};
use lockstep_rollup_api::{
    self as api, BlockHeader, ProvingJob, RollupError, RollupProver, RollupReplica, SealedBlock,
    TestRollupProver,
};

use crate::{
    block::Block,
    circuit::StfConfig,
    machine::{self, Run},
    state::State,
    Deployment, Error, Genesis, Result,
};

/// A block as its replica ran it: what the STF circuit proves.
#[derive(Debug)]
pub struct ReplayedBlock {
    /// The block.
    pub block: Block,
    /// The state before it.
    pub pre: State,
    /// Its run on the step machine.
    pub run: Run,
}

/// A reference rollup's state at its adapter.
#[derive(Debug, Clone)]
pub struct ReferenceReplica {
    id: u32,
    max_steps: usize,
    state: State,
}

impl ReferenceReplica {
    /// The rollup of `genesis`, at its genesis state.
    pub fn new(genesis: &Genesis) -> Result<Self> {
        Ok(Self {
            id: genesis.rollup_id,
            max_steps: genesis.max_steps,
            state: genesis.state()?,
        })
    }

    /// The rollup `id` at `state`, taking blocks of at most `max_steps` steps.
    pub const fn from_state(id: u32, max_steps: usize, state: State) -> Self {
        Self {
            id,
            max_steps,
            state,
        }
    }

    /// The current state.
    pub const fn state(&self) -> &State {
        &self.state
    }

    fn apply(&mut self, domain: Domain, data: &[u8]) -> Result<(SealedBlock, Arc<ReplayedBlock>)> {
        let block = Block::decode(data)?;
        let replay = |reason: String| Error::Replay {
            rollup: self.id,
            step: 0,
            reason,
        };
        if block.rollup_id != self.id {
            return Err(replay(format!("the block is rollup {}'s", block.rollup_id)));
        }
        if block.steps.len() > self.max_steps {
            return Err(Error::TooManySteps {
                rollup: self.id,
                max: self.max_steps,
            });
        }
        // Checks the pre root, every step and the post root.
        let run = machine::run(&self.state, domain, &block)?;
        let mut post = self.state.clone();
        post.apply_memory(&run.memory);
        if post.root() != run.outputs.post_root {
            return Err(replay(format!(
                "the run's key table leads to {}, not to its post root {}",
                crate::block::fr_hex(&post.root()),
                crate::block::fr_hex(&run.outputs.post_root)
            )));
        }
        let sealed = SealedBlock {
            header: SlotHeader {
                domain,
                slot: block.slot,
                rollup_id: block.rollup_id,
                pre_root: block.pre_root,
                post_root: run.outputs.post_root,
                da_commitment: (),
                eth_delta: run.outputs.eth_delta,
                l1_digest: Fr::zero(),
            },
            data: data.to_vec(),
            steps: block.steps.len(),
            assumed: run.outputs.assumed.clone(),
            served: run.outputs.served.clone(),
        };
        let pre = std::mem::replace(&mut self.state, post);
        Ok((sealed, Arc::new(ReplayedBlock { block, pre, run })))
    }
}

impl RollupReplica for ReferenceReplica {
    type Witness = Arc<ReplayedBlock>;

    fn id(&self) -> u32 {
        self.id
    }

    fn state_root(&self) -> Fr {
        self.state.root()
    }

    fn header(&self, data: &[u8]) -> api::Result<BlockHeader> {
        let block = Block::decode(data).map_err(|e| e.into_api(self.id))?;
        Ok(BlockHeader {
            rollup_id: block.rollup_id,
            slot: block.slot,
            pre_root: block.pre_root,
        })
    }

    fn apply_block(
        &mut self,
        domain: Domain,
        data: &[u8],
    ) -> api::Result<(SealedBlock, Self::Witness)> {
        self.apply(domain, data).map_err(|e| e.into_api(self.id))
    }
}

/// The prover of a reference rollup's blocks: its deployment's circuit.
pub type ReferenceProver = Arc<dyn RollupProver<Arc<ReplayedBlock>>>;

impl Deployment {
    /// The prover of this deployment's blocks: the STF circuit of `[stf]` (the SRS of its `k`
    /// must be in `keys`; the key is made on first use, minutes), or without `[stf]` the
    /// test-rollup circuit. Blocking.
    pub fn prover(&self, keys: &KeyStore) -> Result<ReferenceProver> {
        Ok(match self.stf {
            Some(config) => Arc::new(StfProver::load(keys, config)?),
            None => Arc::new(TestRollupProver::load(keys)?),
        })
    }
}

/// The STF circuit of one deployment as a prover.
#[derive(Clone)]
pub struct StfProver {
    config: StfConfig,
    params: Arc<ParamsKZG<Bn256>>,
    key: Arc<CircuitKey<BaseCircuitParams>>,
}

impl std::fmt::Debug for StfProver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StfProver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl StfProver {
    /// The SRS of `config.k` from `keys` (it must be there), and the proving key from its cache
    /// or made by keygen (minutes) and cached.
    pub fn load(keys: &KeyStore, config: StfConfig) -> Result<Self> {
        let params = keys.load_srs(config.k)?;
        let key = config.proving_key(keys, &params)?;
        Ok(Self::new(config, Arc::new(params), Arc::new(key)))
    }

    /// Over a loaded SRS and key of `config`'s circuit.
    pub const fn new(
        config: StfConfig,
        params: Arc<ParamsKZG<Bn256>>,
        key: Arc<CircuitKey<BaseCircuitParams>>,
    ) -> Self {
        Self {
            config,
            params,
            key,
        }
    }

    /// Its deployment.
    pub const fn config(&self) -> StfConfig {
        self.config
    }

    /// Another deployment's prover over this one's key (for tests that show what a deployment
    /// refuses).
    #[must_use]
    pub fn with_config(&self, config: StfConfig) -> Self {
        Self::new(config, self.params.clone(), self.key.clone())
    }
}

impl RollupProver<Arc<ReplayedBlock>> for StfProver {
    fn label(&self) -> String {
        format!("STF circuit, k = {}", self.config.k)
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
        job: &ProvingJob<Arc<ReplayedBlock>>,
    ) -> api::Result<RollupCircuit> {
        // The block must fit the deployment: its tree depth and its capacity.
        let replayed = &job.witness;
        let (rollup, slot) = (job.sealed.header.rollup_id, job.sealed.header.slot);
        let invalid = |reason: String| RollupError::Invalid {
            rollup,
            reason: format!("slot {slot}: {reason}"),
        };
        if replayed.pre.depth() != self.config.depth {
            return Err(invalid(format!(
                "the rollup's state tree has depth {}, the STF deployment {}",
                replayed.pre.depth(),
                self.config.depth
            )));
        }
        replayed
            .run
            .stats()
            .check_fits(&self.config.capacity)
            .map_err(invalid)?;
        let build = || -> Result<RollupCircuit> {
            let witness = replayed.run.stf_witness(
                &replayed.pre,
                &replayed.block,
                job.sealed.header.domain,
                job.da_commitment,
                self.config.capacity,
            )?;
            Ok(self.config.circuit(stage, break_points, &witness)?)
        };
        build().map_err(|e| e.into_api(rollup))
    }
}
