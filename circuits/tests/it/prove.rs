//! Real proofs (not MockProver) of the test rollup: keys, SRS handling, prove and verify.

use halo2_base::{
    gates::{
        circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
        RangeInstructions,
    },
    halo2_proofs::{halo2curves::ff::Field, poly::commitment::Params},
};
use lockstep_circuits::{
    keys::{config_digest, is_unsafe_test_srs, unsafe_test_srs, KeySource, KeyStore},
    layout::{index, PublicInputsWitness},
    prover, shape,
    test_rollup::{build, TEST_ROLLUP_K},
    testing, Error, Fr,
};

use crate::common::{call, witness};

fn srs_bytes(
    params: &impl Params<'static, halo2_base::halo2_proofs::halo2curves::bn256::G1Affine>,
) -> Vec<u8> {
    let mut out = Vec::new();
    params.write(&mut out).unwrap();
    out
}

fn keygen_witness() -> PublicInputsWitness {
    witness(1, vec![], vec![])
}

#[test]
fn fast_unsafe_test_srs_is_byte_identical_to_halo2_setup() {
    use halo2_base::halo2_proofs::{halo2curves::bn256::Bn256, poly::kzg::commitment::ParamsKZG};
    use rand::SeedableRng;
    // k = 0 is one point; from k = 1 on `parallelize` splits the points across threads.
    for k in [0, 1, 4, 10] {
        let halo2 = ParamsKZG::<Bn256>::setup(k, rand_chacha::ChaCha20Rng::from_seed([0; 32]));
        let fast = unsafe_test_srs(k);
        assert_eq!(fast.k(), k);
        assert!(
            srs_bytes(&fast) == srs_bytes(&halo2),
            "k = {k}: bytes differ"
        );
    }
}

#[test]
fn fast_srs_setup_follows_its_seed() {
    use halo2_base::halo2_proofs::{halo2curves::bn256::Bn256, poly::kzg::commitment::ParamsKZG};
    use rand::SeedableRng;
    let other_seed = || rand_chacha::ChaCha20Rng::from_seed([7; 32]);
    let other = lockstep_circuits::srs::setup(6, other_seed());
    assert!(!is_unsafe_test_srs(&other));
    assert!(
        srs_bytes(&other) != srs_bytes(&unsafe_test_srs(6)),
        "another seed, another SRS"
    );
    assert!(
        srs_bytes(&other) == srs_bytes(&ParamsKZG::<Bn256>::setup(6, other_seed())),
        "any seed gives halo2's bytes"
    );
}

#[test]
fn srs_is_downsized_from_a_larger_file_and_missing_srs_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let err = store.load_srs(8).unwrap_err().to_string();
    assert!(
        err.contains("no SRS for k ≥ 8") && err.contains("unsafe-test-srs"),
        "{err}"
    );

    store.generate_unsafe_test_srs(9).unwrap();
    let downsized = store.load_srs(8).unwrap();
    assert_eq!(downsized.k(), 8);
    assert_eq!(
        srs_bytes(&downsized),
        srs_bytes(&unsafe_test_srs(8)),
        "downsizing keeps tau"
    );
    assert!(store.srs_path(8).exists(), "the downsized SRS is cached");

    std::fs::write(store.srs_path(7), b"not an srs").unwrap();
    let err = store.load_srs(7).unwrap_err().to_string();
    assert!(err.contains("kzg_bn254_7.srs"), "{err}");
}

#[test]
fn a_missing_test_srs_is_generated_and_a_ceremony_file_is_downsized() {
    use halo2_base::halo2_proofs::{
        halo2curves::bn256::Bn256,
        poly::{commitment::ParamsProver, kzg::commitment::ParamsKZG},
    };
    use rand::SeedableRng;
    // A larger unsafe test SRS: the smaller one is the unsafe test SRS, whichever way it is
    // made, and it is cached.
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    store.generate_unsafe_test_srs(9).unwrap();
    let made = store.load_or_generate_unsafe_test_srs(8).unwrap();
    assert!(is_unsafe_test_srs(&made));
    assert_eq!(srs_bytes(&made), srs_bytes(&unsafe_test_srs(8)));
    assert!(store.srs_path(8).exists());

    // A larger file of another secret (a ceremony's): downsized from it, never replaced by
    // the unsafe one, whose keys would not verify against it.
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let ceremony = ParamsKZG::<Bn256>::setup(9, rand_chacha::ChaCha20Rng::from_seed([7; 32]));
    assert!(!is_unsafe_test_srs(&ceremony));
    std::fs::write(store.srs_path(9), srs_bytes(&ceremony)).unwrap();
    let smaller = store.load_or_generate_unsafe_test_srs(8).unwrap();
    assert!(!is_unsafe_test_srs(&smaller));
    assert_eq!(smaller.get_g()[..], ceremony.get_g()[..256]);
}

/// A tiny circuit of the common shape (one range check) for exercising the key cache.
fn tiny(stage: CircuitBuilderStage) -> Result<BaseCircuitBuilder<Fr>, Error> {
    let mut builder =
        BaseCircuitBuilder::from_stage(stage).use_params(shape::rollup_params(shape::MIN_K)?);
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let x = ctx.load_witness(Fr::from(5));
    range.range_check(ctx, x, 8);
    builder.assigned_instances[0].push(x);
    Ok(builder)
}

#[test]
fn key_cache_hits_misses_and_rebuilds_corrupted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path()).unwrap();
    let params = store
        .load_or_generate_unsafe_test_srs(shape::MIN_K)
        .unwrap();
    let circuit_params = shape::rollup_params(shape::MIN_K).unwrap();
    let digest = config_digest(&("tiny", &circuit_params));
    let get = || {
        store
            .proving_key("tiny", &digest, &params, || {
                tiny(CircuitBuilderStage::Keygen)
            })
            .unwrap()
    };
    let first = get();
    assert_eq!(first.source, KeySource::Generated);
    let second = get();
    assert_eq!(second.source, KeySource::Cache);
    assert_eq!(second.meta.break_points, first.meta.break_points);
    assert_eq!(
        second.pk.get_vk().transcript_repr(),
        first.pk.get_vk().transcript_repr()
    );

    // Another configuration is another cache entry.
    let other = config_digest(&("tiny", shape::SHAPE_VERSION + 1, &circuit_params));
    assert_ne!(
        store.key_paths("tiny", &other).0,
        store.key_paths("tiny", &digest).0
    );

    // A truncated key, and a key with one flipped byte, are rebuilt, never parsed.
    let (pk_path, _) = store.key_paths("tiny", &digest);
    let len = std::fs::metadata(&pk_path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pk_path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    assert_eq!(get().source, KeySource::Generated);
    let mut bytes = std::fs::read(&pk_path).unwrap();
    let at = bytes.len() - 7;
    bytes[at] ^= 0x40;
    std::fs::write(&pk_path, bytes).unwrap();
    assert_eq!(get().source, KeySource::Generated);
    assert_eq!(get().source, KeySource::Cache);
}

#[test]
fn test_rollup_real_proof() {
    // Real proofs use the key store that persists between runs: SRS and key are made once.
    let store = testing::persistent_key_store().unwrap();
    let started = std::time::Instant::now();
    let params = store
        .load_or_generate_unsafe_test_srs(TEST_ROLLUP_K)
        .unwrap();
    let circuit_params = shape::rollup_params(TEST_ROLLUP_K).unwrap();
    let digest = config_digest(&("test-rollup", shape::SHAPE_VERSION, &circuit_params));
    let key = store
        .proving_key("test-rollup", &digest, &params, || {
            build(
                CircuitBuilderStage::Keygen,
                TEST_ROLLUP_K,
                None,
                &keygen_witness(),
            )
        })
        .unwrap();
    eprintln!(
        "SRS + key ({:?}): {:.1} s",
        key.source,
        started.elapsed().as_secs_f64()
    );

    // Honest block: proves, verifies, and exposes the layout.
    let prover_circuit = |w: &PublicInputsWitness| {
        build(
            CircuitBuilderStage::Prover,
            TEST_ROLLUP_K,
            Some(key.meta.break_points.clone()),
            w,
        )
        .unwrap()
    };
    let w = witness(2, vec![call(2, 1, 0, 9)], vec![call(1, 2, 0, 7)]);
    let started = std::time::Instant::now();
    let snark = prover::prove(&params, &key.pk, prover_circuit(&w)).unwrap();
    eprintln!(
        "proof: {:.1} s, {} bytes",
        started.elapsed().as_secs_f64(),
        snark.proof.len()
    );
    assert_eq!(
        snark.instances,
        vec![w.public_inputs().to_instances().unwrap()]
    );
    assert!(prover::verify(&params, key.pk.get_vk(), &snark));

    // The same proof under changed public inputs does not verify.
    let mut tampered = snark.clone();
    tampered.instances[0][index::POST_ROOT] += Fr::ONE;
    assert!(!prover::verify(&params, key.pk.get_vk(), &tampered));
    // Nor does a corrupted proof.
    let mut corrupted = snark;
    let mid = corrupted.proof.len() / 2;
    corrupted.proof[mid] ^= 1;
    assert!(!prover::verify(&params, key.pk.get_vk(), &corrupted));

    // A witness that breaks the gadget (assumed entry from another rollup) cannot be proven.
    let bad = witness(2, vec![call(3, 1, 0, 9)], vec![]);
    match prover::prove(&params, &key.pk, prover_circuit(&bad)) {
        Err(Error::InvalidProof(msg)) => assert!(msg.contains("does not satisfy"), "{msg}"),
        other => panic!("expected InvalidProof, got {:?}", other.map(|_| ())),
    }
}
