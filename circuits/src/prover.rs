//! Proving and verifying rollup snarks (SHPLONK over KZG, Poseidon transcript), with errors
//! instead of panics.
//!
//! These snarks are meant for recursion: the aggregation circuit verifies them in-circuit with
//! the same Poseidon transcript.

use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
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
};
use rand::rngs::OsRng;
use snark_verifier_sdk::{
    halo2::{PoseidonTranscript, POSEIDON_SPEC},
    snark_verifier::{
        system::halo2::{compile, Config},
        verifier::plonk::PlonkProtocol,
    },
    CircuitExt, NativeLoader, Snark,
};

use crate::{Error, Result};

/// The snark-verifier protocol (what the aggregation circuit verifies against) of a verifying
/// key with one instance column of `num_instance` cells.
pub fn protocol(
    params: &ParamsKZG<Bn256>,
    vk: &VerifyingKey<G1Affine>,
    num_instance: usize,
) -> PlonkProtocol<G1Affine> {
    compile(
        params,
        vk,
        Config::kzg().with_num_instance(vec![num_instance]),
    )
}

/// Proves `circuit` and checks the proof natively before returning it, showing its progress
/// (estimated from the last proof with the key when it came from a key store, see
/// [`crate::keys`]).
///
/// Fails with [`Error::InvalidProof`] if the witness does not satisfy the circuit (the proof
/// does not verify) or proving fails.
pub fn prove<C: CircuitExt<Fr>>(
    params: &ParamsKZG<Bn256>,
    pk: &ProvingKey<G1Affine>,
    circuit: C,
) -> Result<Snark> {
    let progress = crate::keys::ProofProgress::start(pk, "a snark");
    let instances = circuit.instances();
    let protocol = compile(
        params,
        pk.get_vk(),
        Config::kzg()
            .with_num_instance(circuit.num_instance())
            .with_accumulator_indices(C::accumulator_indices()),
    );
    let columns: Vec<&[Fr]> = instances.iter().map(Vec::as_slice).collect();
    let mut transcript =
        PoseidonTranscript::<NativeLoader, Vec<u8>>::from_spec(vec![], POSEIDON_SPEC.clone());
    create_proof::<KZGCommitmentScheme<Bn256>, ProverSHPLONK<'_, Bn256>, _, _, _, _>(
        params,
        pk,
        &[circuit],
        &[columns.as_slice()],
        OsRng,
        &mut transcript,
    )
    .map_err(|e| Error::InvalidProof(format!("proving failed: {e:?}")))?;
    let snark = Snark::new(protocol, instances, transcript.finalize());
    if !verify(params, pk.get_vk(), &snark) {
        return Err(Error::InvalidProof(
            "the witness does not satisfy the circuit".into(),
        ));
    }
    progress.finish();
    Ok(snark)
}

/// Verifies a snark natively against `vk`.
pub fn verify(params: &ParamsKZG<Bn256>, vk: &VerifyingKey<G1Affine>, snark: &Snark) -> bool {
    let columns: Vec<&[Fr]> = snark.instances.iter().map(Vec::as_slice).collect();
    let mut transcript =
        PoseidonTranscript::<NativeLoader, &[u8]>::from_spec(snark.proof(), POSEIDON_SPEC.clone());
    let verifier_params = params.verifier_params();
    verify_proof::<KZGCommitmentScheme<Bn256>, VerifierSHPLONK<'_, Bn256>, _, _, _>(
        verifier_params,
        vk,
        AccumulatorStrategy::new(verifier_params),
        &[columns.as_slice()],
        &mut transcript,
    )
    .map(VerificationStrategy::<_, VerifierSHPLONK<'_, Bn256>>::finalize)
    .unwrap_or(false)
}

/// Checks `circuit` (built at [`CircuitBuilderStage::Mock`](halo2_base::gates::circuit::CircuitBuilderStage))
/// against `instances` with halo2's `MockProver`, without proving: **dev mode only**, where a
/// block is checked but nothing is proven. Fails with [`Error::InvalidProof`] naming the first
/// failing constraint and how many fail.
pub fn mock_check<C: halo2_base::halo2_proofs::plonk::Circuit<Fr>>(
    k: u32,
    circuit: &C,
    instances: Vec<Fr>,
) -> Result<()> {
    use halo2_base::halo2_proofs::dev::MockProver;
    let prover = MockProver::run(k, circuit, vec![instances])
        .map_err(|e| Error::InvalidProof(format!("MockProver could not run: {e:?}")))?;
    prover.verify().map_err(|failures| {
        Error::InvalidProof(format!(
            "{} constraint(s) fail in MockProver; the first: {}",
            failures.len(),
            failures
                .first()
                .map(ToString::to_string)
                .unwrap_or_default()
        ))
    })
}
