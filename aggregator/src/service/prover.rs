//! What makes a slot's aggregation: the [`SlotProver`] trait, the real prover
//! ([`AggregationProver`]) and the dev-mode stand-in ([`MockAggregationProver`]).
//!
//! The pipeline only needs "the instances and proof bytes that L1 will check" for a slot's
//! stored rollup proofs. Production aggregates them in the universal aggregation circuit
//! (minutes). Tests of the pipeline itself (the SIGKILL test) and `--dev` runs use the
//! stand-in, which checks natively what the aggregation circuit would constrain about the
//! public inputs and returns the [`DEV_MODE_PROOF`] marker instead of a proof. Only the L1
//! stand-in verifier (`DevModeVerifier`, which itself works on chain [`DEV_CHAIN_ID`] only)
//! accepts it, and `lockstep aggregator run` selects the stand-in only with `--dev` against
//! that chain ([`check_dev_chain`]).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Instant,
};

use eyre::{ensure, eyre, Context, Result};
use halo2_base::{
    gates::circuit::CircuitBuilderStage,
    halo2_proofs::{halo2curves::bn256::Bn256, poly::kzg::commitment::ParamsKZG},
};
use lockstep_circuits::{
    accumulator::check_balanced,
    aggregation::{
        self, settled_instances, AggregatedRollup, AggregationConfig, AggregationKind,
        ACCUMULATOR_CELLS,
    },
    keys::{CircuitKey, KeyStore},
    layout::RollupPublicInputs,
    Fr,
};
use snark_verifier_sdk::{halo2::aggregation::AggregationConfigParams, Snark};
use tracing::info;

use super::{
    intake::{parse_fr, Registry},
    slots::StoredProof,
};

/// Makes the aggregation of a slot's rollup proofs that L1 checks. Blocking: call it from a
/// blocking thread.
pub trait SlotProver: Send + Sync + std::fmt::Debug {
    /// Loads (or makes) what proving `rollups` proofs needs, so that [`prove`](Self::prove)
    /// only proves. An error here is the operator's to fix (a missing SRS): the slot waits.
    fn prepare(&self, rollups: usize) -> Result<()>;

    /// The aggregation's public inputs and proof bytes for a slot's proofs (in rollup-id
    /// order).
    fn prove(&self, proofs: &BTreeMap<u32, StoredProof>) -> Result<(Vec<Fr>, Vec<u8>)>;

    /// Whether this prover proves nothing (dev mode).
    fn is_dev_mode(&self) -> bool {
        false
    }
}

/// The aggregation degree for `rollups` proofs when the configuration names none: the smallest
/// `k` at which the aggregation circuit keeps few enough columns for its EVM verifier to fit
/// EIP-170 (`docs/benchmarks.md`).
pub const fn default_aggregation_k(rollups: usize) -> u32 {
    match rollups {
        0..=2 => 21,
        3..=4 => 22,
        _ => 23,
    }
}

/// A loaded aggregation key.
struct AggregationKey {
    params: ParamsKZG<Bn256>,
    config: AggregationConfig,
    key: CircuitKey<AggregationConfigParams>,
}

/// Makes aggregation proofs for the registered rollups, loading (or making, on first use) one
/// proving key per number of rollups.
pub struct AggregationProver {
    keys: KeyStore,
    registry: Arc<Registry>,
    k: Option<u32>,
    loaded: Mutex<HashMap<usize, Arc<AggregationKey>>>,
}

impl std::fmt::Debug for AggregationProver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregationProver")
            .field("keys", &self.keys.root())
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

impl AggregationProver {
    /// A prover with keys in `keys`, at degree `k` (else [`default_aggregation_k`]).
    pub fn new(keys: KeyStore, registry: Arc<Registry>, k: Option<u32>) -> Self {
        Self {
            keys,
            registry,
            k,
            loaded: Mutex::default(),
        }
    }

    /// The aggregation configuration for `rollups` proofs.
    pub fn config(&self, rollups: usize) -> AggregationConfig {
        AggregationConfig::new(
            rollups,
            self.k.unwrap_or_else(|| default_aggregation_k(rollups)),
        )
    }

    /// The proving key for `rollups` proofs: from memory, the key folder, or keygen (minutes;
    /// logged). Blocking.
    fn key(&self, rollups: usize) -> Result<Arc<AggregationKey>> {
        if let Some(key) = self.loaded.lock().expect("not poisoned").get(&rollups) {
            return Ok(key.clone());
        }
        let config = self.config(rollups);
        let params = self.keys.load_srs(config.k).wrap_err_with(|| {
            format!(
                "no SRS for k = {} in {} (import one with `lockstep keys import-srs`, or make an \
                 unsafe test SRS with `lockstep keys unsafe-test-srs --k {}`)",
                config.k,
                self.keys.root().display(),
                config.k
            )
        })?;
        let inner = self
            .registry
            .rollups
            .values()
            .next()
            .ok_or_else(|| eyre!("no rollups are registered"))?;
        info!(
            rollups,
            k = config.k,
            "loading the aggregation key (keygen on first use takes minutes)"
        );
        let started = Instant::now();
        let key = aggregation::aggregation_key(
            &self.keys,
            &params,
            &config,
            AggregationKind::Lockstep,
            &inner.params,
            &inner.vk,
        )?;
        info!(
            rollups,
            source = ?key.source,
            seconds = started.elapsed().as_secs_f64(),
            "aggregation key ready"
        );
        let key = Arc::new(AggregationKey {
            params,
            config,
            key,
        });
        self.loaded
            .lock()
            .expect("not poisoned")
            .insert(rollups, key.clone());
        Ok(key)
    }
}

impl SlotProver for AggregationProver {
    fn prepare(&self, rollups: usize) -> Result<()> {
        self.key(rollups).map(drop)
    }

    /// Aggregates a slot's proofs for the EVM: minutes.
    fn prove(&self, proofs: &BTreeMap<u32, StoredProof>) -> Result<(Vec<Fr>, Vec<u8>)> {
        let snarks = proofs
            .iter()
            .map(|(id, proof)| {
                let rollup = self
                    .registry
                    .rollups
                    .get(id)
                    .ok_or_else(|| eyre!("rollup {id} is no longer registered"))?;
                let (instances, bytes) = decode_proof(proof)
                    .wrap_err_with(|| format!("the stored proof of rollup {id}"))?;
                Ok(Snark::new(rollup.protocol.clone(), vec![instances], bytes))
            })
            .collect::<Result<Vec<_>>>()?;
        let key = self.key(snarks.len())?;
        let circuit = aggregation::build(
            CircuitBuilderStage::Prover,
            &key.config,
            AggregationKind::Lockstep,
            Some(key.key.meta.circuit_params),
            Some(key.key.meta.break_points.clone()),
            &key.params,
            snarks,
        )?;
        Ok(aggregation::prove_for_evm(
            &key.params,
            &key.key.pk,
            circuit,
        )?)
    }
}

/// The chain id of a local development chain (anvil's and Hardhat's default): the only chain on
/// which dev mode runs, and on which the L1 stand-in verifier accepts anything.
pub const DEV_CHAIN_ID: u64 = 31_337;

pub use lockstep_api::DEV_MODE_PROOF;

/// Refuses dev mode on anything but a local development chain: the configured domain's chain
/// id, and the L1 node's when there is one (`l1_chain_id`).
pub fn check_dev_chain(domain_chain_id: u64, l1_chain_id: Option<u64>) -> Result<()> {
    ensure!(
        domain_chain_id == DEV_CHAIN_ID,
        "dev mode proves nothing and runs only on a local development chain (chain id \
         {DEV_CHAIN_ID}); this configuration's domain is chain {domain_chain_id}"
    );
    if let Some(chain) = l1_chain_id {
        ensure!(
            chain == DEV_CHAIN_ID,
            "dev mode proves nothing and runs only on a local development chain (chain id \
             {DEV_CHAIN_ID}); the L1 node reports chain {chain}"
        );
    }
    Ok(())
}

/// **Test double / dev mode only: proves nothing.** The stand-in for [`AggregationProver`] in
/// tests of the pipeline and in `--dev` runs. It checks natively what the aggregation circuit
/// constrains about the public inputs (every proof's inputs decode under the common layout,
/// come from a registered rollup, and the slot's calls balance) and returns the instances the
/// real aggregation would expose, with a zero accumulator and [`DEV_MODE_PROOF`] as the proof.
/// It does not verify the rollup proofs: intake does, or, in dev mode, nothing does.
#[derive(Debug)]
pub struct MockAggregationProver {
    registry: Arc<Registry>,
}

impl MockAggregationProver {
    /// The stand-in for the rollups of `registry`. Selected only by `--dev` (see
    /// [`check_dev_chain`]) and by tests.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

impl SlotProver for MockAggregationProver {
    fn prepare(&self, _rollups: usize) -> Result<()> {
        Ok(())
    }

    fn prove(&self, proofs: &BTreeMap<u32, StoredProof>) -> Result<(Vec<Fr>, Vec<u8>)> {
        let mut publics = Vec::with_capacity(proofs.len());
        let mut rollups = Vec::with_capacity(proofs.len());
        for (id, proof) in proofs {
            let rollup = self
                .registry
                .rollups
                .get(id)
                .ok_or_else(|| eyre!("rollup {id} is no longer registered"))?;
            let (instances, _) =
                decode_proof(proof).wrap_err_with(|| format!("the stored proof of rollup {id}"))?;
            let public = RollupPublicInputs::from_instances(&instances)
                .wrap_err_with(|| format!("the public inputs of rollup {id}"))?;
            ensure!(
                public.header.rollup_id == *id,
                "the proof stored for rollup {id} claims rollup {}",
                public.header.rollup_id
            );
            rollups.push(AggregatedRollup {
                public: public.clone(),
                vk_digest: rollup.vk_digest,
            });
            publics.push(public);
        }
        check_balanced(&publics).wrap_err("the slot's calls do not balance")?;
        let mut instances = vec![Fr::zero(); ACCUMULATOR_CELLS];
        instances.extend(settled_instances(&rollups)?);
        Ok((instances, DEV_MODE_PROOF.to_vec()))
    }

    fn is_dev_mode(&self) -> bool {
        true
    }
}

/// Instances and proof bytes of a stored proof.
pub(crate) fn decode_proof(proof: &StoredProof) -> Result<(Vec<Fr>, Vec<u8>)> {
    let instances = proof
        .instances
        .iter()
        .map(|h| parse_fr(h).ok_or_else(|| eyre!("instance {h:?} is not a field element")))
        .collect::<Result<Vec<_>>>()?;
    let bytes = hex::decode(proof.proof.strip_prefix("0x").unwrap_or(&proof.proof))
        .wrap_err("proof bytes are not hex")?;
    Ok((instances, bytes))
}
