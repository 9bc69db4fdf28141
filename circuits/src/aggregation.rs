//! The universal aggregation circuit: verifies the rollup proofs of one slot, enforces the
//! call accumulator over their public inputs, and exposes what L1 settles.
//!
//! Built on snark-verifier-sdk's `AggregationCircuit` with [`VerifierUniversality::Full`]: each
//! rollup proof is verified with its preprocessed commitments, transcript initial state and `k`
//! loaded as *witnesses*, so one aggregation circuit (and one L1 verifier) serves every rollup
//! circuit of the common [shape](crate::shape). Witness verifying keys alone would let a prover
//! verify against any key, so the circuit hashes each one into a **vk digest** and exposes it
//! next to the rollup id; L1 checks it against the digest the registry holds for that id.
//!
//! # Public inputs (aggregation layout version 1)
//!
//! | index | name |
//! |---|---|
//! | 0 … 11 | KZG accumulator (`lhs.x, lhs.y, rhs.x, rhs.y`, 3 limbs of 88 bits each, little-endian limbs) |
//! | 12 | `domain` |
//! | 13 | `slot` |
//! | 14 + 7i … 20 + 7i | rollup `i`: `rollup_id, vk_digest, pre_root, post_root, da_commitment, eth_delta, l1_digest` |

use halo2_base::{
    gates::{
        circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
        flex_gate::MultiPhaseThreadBreakPoints,
        RangeInstructions,
    },
    halo2_proofs::{
        halo2curves::{
            bn256::{Bn256, Fq, G1Affine},
            ff::PrimeField,
        },
        plonk::{create_proof, verify_proof, ProvingKey, VerifyingKey},
        poly::{
            commitment::ParamsProver,
            kzg::{
                commitment::{KZGCommitmentScheme, ParamsKZG},
                multiopen::{ProverSHPLONK, VerifierSHPLONK},
                strategy::AccumulatorStrategy,
            },
            VerificationStrategy,
        },
        transcript::{TranscriptReadBuffer, TranscriptWriterBuffer},
    },
    AssignedValue,
};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use snark_verifier_sdk::{
    evm::{encode_calldata, gen_evm_verifier_sol_code},
    halo2::{
        aggregation::{AggregationCircuit, AggregationConfigParams, VerifierUniversality},
        gen_dummy_snark_from_vk,
    },
    snark_verifier::{
        system::halo2::transcript::evm::EvmTranscript, util::arithmetic::fe_to_limbs,
        verifier::plonk::PlonkProtocol,
    },
    CircuitExt, Snark, BITS, LIMBS, SHPLONK,
};

use crate::{
    accumulator::AccumulatorChip,
    keys::{config_digest, CircuitKey, KeyStore, KeygenCircuit},
    layout::{index, RollupPublicInputs, NUM_INSTANCES},
    poseidon, Error, Fr, Result,
};

/// Version of the aggregation public-input layout.
pub const AGGREGATION_LAYOUT_VERSION: u32 = 1;
/// Cells of the KZG accumulator at the start of the instance column.
pub const ACCUMULATOR_CELLS: usize = 4 * LIMBS;
/// Cells exposed per rollup.
pub const CELLS_PER_ROLLUP: usize = 7;
/// Rows kept free at the end of every column (blinding).
pub const AGGREGATION_MIN_ROWS: usize = 10;

/// Domain tag of verifying-key digests ("lockstep.vk.v1" as a big-endian integer).
pub fn vk_tag() -> Fr {
    let mut bytes = [0u8; 16];
    bytes[2..].copy_from_slice(b"lockstep.vk.v1");
    Fr::from_u128(u128::from_be_bytes(bytes))
}

/// The cells of `protocol`'s verifying key, as the aggregation circuit loads them: every
/// preprocessed commitment as `x` and `y` in 3 limbs of 88 bits, the transcript initial state,
/// then `k`.
fn vk_words(protocol: &PlonkProtocol<G1Affine>) -> Vec<Fr> {
    let mut words: Vec<Fr> = protocol
        .preprocessed
        .iter()
        .flat_map(|p| {
            [p.x, p.y]
                .into_iter()
                .flat_map(fe_to_limbs::<Fq, Fr, LIMBS, BITS>)
        })
        .collect();
    words.push(
        protocol
            .transcript_initial_state
            .expect("compiled protocols have one"),
    );
    words.push(Fr::from(u64::from(protocol.domain.k as u32)));
    words
}

/// The digest of a rollup's verifying key that the registry holds and the aggregation circuit
/// exposes: `Poseidon(VK_TAG, vk words…)`.
pub fn vk_digest(protocol: &PlonkProtocol<G1Affine>) -> Fr {
    let mut inputs = vec![vk_tag()];
    inputs.extend(vk_words(protocol));
    poseidon::hash(&inputs)
}

/// Fixed configuration of one aggregation circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AggregationConfig {
    /// Rollup proofs per aggregation.
    pub num_rollups: usize,
    /// Rows are `2^k`.
    pub k: u32,
    /// Bits of the range-check lookup table.
    pub lookup_bits: usize,
}

impl AggregationConfig {
    /// A configuration with `lookup_bits = k − 1`.
    pub fn new(num_rollups: usize, k: u32) -> Self {
        Self {
            num_rollups,
            k,
            lookup_bits: k as usize - 1,
        }
    }

    /// Number of public inputs.
    pub fn num_instances(&self) -> usize {
        ACCUMULATOR_CELLS + 2 + CELLS_PER_ROLLUP * self.num_rollups
    }
}

/// What the aggregation proves about one rollup, natively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatedRollup {
    /// The rollup's public inputs.
    pub public: RollupPublicInputs,
    /// Digest of the verifying key its proof verified under.
    pub vk_digest: Fr,
}

/// The aggregation's public inputs after the accumulator, natively: what L1 rebuilds from the
/// settlement call and its own storage.
pub fn settled_instances(rollups: &[AggregatedRollup]) -> Result<Vec<Fr>> {
    let columns: Vec<Vec<Fr>> = rollups
        .iter()
        .map(|r| r.public.to_instances())
        .collect::<Result<_>>()?;
    let first = columns
        .first()
        .ok_or_else(|| Error::MalformedInstances("no rollups".into()))?;
    let mut out = vec![first[index::DOMAIN], first[index::SLOT]];
    for (rollup, column) in rollups.iter().zip(&columns) {
        out.extend([
            column[index::ROLLUP_ID],
            rollup.vk_digest,
            column[index::PRE_ROOT],
            column[index::POST_ROOT],
            column[index::DA_COMMITMENT],
            column[index::ETH_DELTA],
            column[index::L1_DIGEST],
        ]);
    }
    Ok(out)
}

/// Which aggregation to build: ours, or snark-verifier-sdk's stock one over the same snarks
/// (for benchmarks: the cost of our checks is the difference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggregationKind {
    /// Verification, accumulator, vk digests and Lockstep's public inputs.
    Lockstep,
    /// Verification only, every previous instance exposed (the SDK's usual use).
    Stock,
}

/// Builds the aggregation circuit over `snarks`.
///
/// `stage` is `Keygen` (then `circuit_params` and `break_points` are `None`; read them off the
/// result after keygen), `Prover` (both from the key) or `Mock`. Keygen may use dummy snarks
/// of the right shape.
pub fn build(
    stage: CircuitBuilderStage,
    config: &AggregationConfig,
    kind: AggregationKind,
    circuit_params: Option<AggregationConfigParams>,
    break_points: Option<MultiPhaseThreadBreakPoints>,
    params: &ParamsKZG<Bn256>,
    snarks: Vec<Snark>,
) -> Result<AggregationCircuit> {
    if snarks.len() != config.num_rollups {
        return Err(Error::MalformedInstances(format!(
            "{} snarks for an aggregation of {}",
            snarks.len(),
            config.num_rollups
        )));
    }
    for (i, snark) in snarks.iter().enumerate() {
        if snark.instances.len() != 1 || snark.instances[0].len() != NUM_INSTANCES {
            return Err(Error::MalformedInstances(format!(
                "snark {i} has instance columns of lengths {:?}, expected [{NUM_INSTANCES}]",
                snark.instances.iter().map(Vec::len).collect::<Vec<_>>()
            )));
        }
    }
    let agg_params = circuit_params.unwrap_or(AggregationConfigParams {
        degree: config.k,
        lookup_bits: config.lookup_bits,
        ..Default::default()
    });
    let mut circuit = AggregationCircuit::new::<SHPLONK>(
        stage,
        agg_params,
        params,
        snarks,
        VerifierUniversality::Full,
    );
    match kind {
        AggregationKind::Lockstep => add_lockstep_checks(&mut circuit),
        AggregationKind::Stock => circuit.expose_previous_instances(false),
    }
    if stage == CircuitBuilderStage::Keygen && circuit_params.is_none() {
        circuit.calculate_params(Some(AGGREGATION_MIN_ROWS));
    }
    if let Some(bp) = break_points {
        circuit.set_break_points(bp);
    }
    Ok(circuit)
}

fn add_lockstep_checks(circuit: &mut AggregationCircuit) {
    let previous = circuit.previous_instances().clone();
    let preprocessed = circuit.preprocessed().clone();
    let range = circuit.builder.range_chip();
    let ctx = circuit.builder.main(0);
    let gate = range.gate();

    let start = ctx.advice.len();
    let out = AccumulatorChip::new(&range).constrain(ctx, &previous);
    let accumulator_cells = ctx.advice.len() - start;
    let start = ctx.advice.len();
    let hasher = poseidon::hasher(ctx, gate);
    let vk_tag = ctx.load_constant(vk_tag());
    let mut exposed: Vec<AssignedValue<Fr>> = vec![out.domain, out.slot];
    for (instances, vk) in previous.iter().zip(&preprocessed) {
        let mut words = vec![vk_tag];
        words.extend(&vk.preprocessed);
        words.push(vk.k);
        let digest = poseidon::hash_assigned(&hasher, ctx, gate, &words);
        exposed.extend([
            instances[index::ROLLUP_ID],
            digest,
            instances[index::PRE_ROOT],
            instances[index::POST_ROOT],
            instances[index::DA_COMMITMENT],
            instances[index::ETH_DELTA],
            instances[index::L1_DIGEST],
        ]);
    }
    tracing::debug!(
        accumulator_cells,
        vk_digest_cells = ctx.advice.len() - start,
        "aggregation: Lockstep's checks laid out"
    );
    circuit.builder.assigned_instances[0].extend(exposed);
}

impl KeygenCircuit for AggregationCircuit {
    fn break_points(&self) -> MultiPhaseThreadBreakPoints {
        Self::break_points(self)
    }
}

/// Total advice cells a builder uses (for sizing and benchmarks).
pub fn advice_cells(builder: &BaseCircuitBuilder<Fr>) -> usize {
    builder
        .statistics()
        .gate
        .total_advice_per_phase
        .iter()
        .sum()
}

/// Solidity source of the EVM verifier for an aggregation verifying key (snark-verifier's
/// generator; `pragma solidity 0.8.19`). Compile it without the optimizer.
pub fn evm_verifier_source(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    num_instances: usize,
) -> String {
    gen_evm_verifier_sol_code::<AggregationCircuit, SHPLONK>(params, vk, vec![num_instances])
}

/// Proves an aggregation circuit for the EVM (Keccak transcript) and checks the proof natively,
/// showing its progress (estimated as [`crate::prover::prove`] does). Returns the instance
/// column and the proof bytes.
pub fn prove_for_evm(
    params: &ParamsKZG<Bn256>,
    pk: &ProvingKey<G1Affine>,
    circuit: AggregationCircuit,
) -> Result<(Vec<Fr>, Vec<u8>)> {
    let progress = crate::keys::ProofProgress::start(pk, "an aggregation for the EVM");
    let instances = circuit.instances().into_iter().next().unwrap_or_default();
    let columns = [instances.as_slice()];
    let mut transcript = TranscriptWriterBuffer::<_, G1Affine, _>::init(Vec::new());
    create_proof::<
        KZGCommitmentScheme<Bn256>,
        ProverSHPLONK<'_, Bn256>,
        _,
        _,
        EvmTranscript<_, _, _, _>,
        _,
    >(
        params,
        pk,
        &[circuit],
        &[columns.as_slice()],
        OsRng,
        &mut transcript,
    )
    .map_err(|e| Error::InvalidProof(format!("aggregation proving failed: {e:?}")))?;
    let proof: Vec<u8> = transcript.finalize();
    let mut reader = TranscriptReadBuffer::<_, G1Affine, _>::init(proof.as_slice());
    let verifier_params = params.verifier_params();
    let accepted = verify_proof::<_, VerifierSHPLONK<'_, Bn256>, _, EvmTranscript<_, _, _, _>, _>(
        verifier_params,
        pk.get_vk(),
        AccumulatorStrategy::new(verifier_params),
        &[columns.as_slice()],
        &mut reader,
    )
    .map(VerificationStrategy::<_, VerifierSHPLONK<'_, Bn256>>::finalize)
    .unwrap_or(false);
    if !accepted {
        return Err(Error::InvalidProof(
            "the aggregation witness does not satisfy the circuit".into(),
        ));
    }
    progress.finish();
    Ok((instances, proof))
}

/// Calldata for the generated EVM verifier: every instance as a 32-byte big-endian word, then
/// the proof.
pub fn evm_calldata(instances: &[Fr], proof: &[u8]) -> Vec<u8> {
    encode_calldata(&[instances.to_vec()], proof)
}

/// The cache name and configuration digest of an aggregation key.
pub fn key_id(config: &AggregationConfig, kind: AggregationKind) -> (String, String) {
    let name = match kind {
        AggregationKind::Lockstep => format!("aggregation-n{}", config.num_rollups),
        AggregationKind::Stock => format!("stock-aggregation-n{}", config.num_rollups),
    };
    let digest = config_digest(&(
        &name,
        AGGREGATION_LAYOUT_VERSION,
        crate::layout::LAYOUT_VERSION,
        crate::shape::SHAPE_VERSION,
        config,
        kind,
    ));
    (name, digest)
}

/// The aggregation proving key for `config` from `store`, made by keygen over dummy snarks of a
/// rollup circuit of the common shape (`inner_vk` at `inner_params`) if not cached.
pub fn aggregation_key(
    store: &KeyStore,
    params: &ParamsKZG<Bn256>,
    config: &AggregationConfig,
    kind: AggregationKind,
    inner_params: &ParamsKZG<Bn256>,
    inner_vk: &VerifyingKey<G1Affine>,
) -> Result<CircuitKey<AggregationConfigParams>> {
    let (name, digest) = key_id(config, kind);
    store.proving_key(&name, &digest, params, || {
        let dummies = (0..config.num_rollups)
            .map(|_| {
                gen_dummy_snark_from_vk::<SHPLONK>(
                    inner_params,
                    inner_vk,
                    vec![NUM_INSTANCES],
                    None,
                )
            })
            .collect();
        build(
            CircuitBuilderStage::Keygen,
            config,
            kind,
            None,
            None,
            params,
            dummies,
        )
    })
}
