use halo2_base::halo2_proofs::halo2curves::ff::{Field, PrimeField};
use lockstep_circuits::{
    entry::{Address, Domain},
    layout::{
        eth_delta_from_field, eth_delta_to_field, index, RollupPublicInputs, SlotHeader,
        MAX_ENTRIES, NUM_INSTANCES,
    },
    Error, Fr,
};
use proptest::prelude::*;

use crate::common::{call, witness};

fn sample() -> RollupPublicInputs {
    witness(
        2,
        vec![call(2, 1, 0, 9), call(2, 3, 1, 8)],
        vec![call(1, 2, 0, 7)],
    )
    .public_inputs()
}

fn parse_err(instances: &[Fr]) -> String {
    match RollupPublicInputs::from_instances(instances) {
        Err(Error::MalformedInstances(msg)) => msg,
        other => panic!("expected MalformedInstances, got {other:?}"),
    }
}

proptest! {
    #[test]
    fn instances_round_trip(
        chain_id in any::<u64>(), registry in any::<[u8; 20]>(), slot in any::<u64>(),
        rollup_id in 1u32.., eth_delta in any::<i128>(), na in 0..=MAX_ENTRIES, ns in 0..=MAX_ENTRIES,
        seed in any::<u64>(),
    ) {
        let public = RollupPublicInputs {
            header: SlotHeader {
                domain: Domain { chain_id, registry: Address(registry) },
                slot,
                rollup_id,
                pre_root: Fr::from(seed),
                post_root: Fr::from(seed) + Fr::ONE,
                da_commitment: -Fr::from(seed),
                eth_delta,
                l1_digest: Fr::from(seed ^ 1),
            },
            assumed: (0..na).map(|i| Fr::from(seed.wrapping_add(i as u64)) + Fr::ONE).collect(),
            served: (0..ns).map(|i| Fr::from(seed.wrapping_mul(i as u64 + 3)) + Fr::ONE).collect(),
        };
        let instances = public.to_instances().unwrap();
        prop_assert_eq!(instances.len(), NUM_INSTANCES);
        prop_assert_eq!(RollupPublicInputs::from_instances(&instances).unwrap(), public);
    }

    #[test]
    fn eth_delta_round_trips(delta in any::<i128>()) {
        prop_assert_eq!(eth_delta_from_field(&eth_delta_to_field(delta)), Some(delta));
    }
}

#[test]
fn eth_delta_bounds() {
    assert_eq!(
        eth_delta_from_field(&eth_delta_to_field(i128::MIN)),
        Some(i128::MIN)
    );
    assert_eq!(
        eth_delta_from_field(&eth_delta_to_field(i128::MAX)),
        Some(i128::MAX)
    );
    // 2^127 and −2^127 − 1 are outside the signed 128-bit range.
    let two_127 = Fr::from_u128(1u128 << 127);
    assert_eq!(eth_delta_from_field(&two_127), None);
    assert_eq!(eth_delta_from_field(&(-two_127 - Fr::ONE)), None);
}

#[test]
fn rejects_non_zero_entry_beyond_count() {
    let mut instances = sample().to_instances().unwrap();
    instances[index::ASSUMED + 2] = Fr::from(42);
    assert!(parse_err(&instances).contains("num_assumed = 2 but entry 2 is not zero"));
}

#[test]
fn rejects_count_above_capacity_wrong_version_id_zero_and_length() {
    let honest = sample().to_instances().unwrap();

    let mut i = honest.clone();
    i[index::NUM_SERVED] = Fr::from(MAX_ENTRIES as u64 + 1);
    assert!(parse_err(&i).contains("exceeds"));

    let mut i = honest.clone();
    i[index::VERSION] = Fr::from(2);
    assert!(parse_err(&i).contains("layout version 2"));

    let mut i = honest.clone();
    i[index::ROLLUP_ID] = Fr::zero();
    assert!(parse_err(&i).contains("rollup id 0"));

    let mut i = honest.clone();
    i[index::ROLLUP_ID] = Fr::from(1u64 << 32);
    assert!(parse_err(&i).contains("32 bits"));

    let mut i = honest.clone();
    i[index::ETH_DELTA] = Fr::from_u128(1u128 << 127);
    assert!(parse_err(&i).contains("eth delta"));

    assert!(parse_err(&honest[1..]).contains("expected"));
}

#[test]
fn too_many_entries_is_a_clear_error() {
    let mut public = sample();
    public.assumed = vec![Fr::ONE; MAX_ENTRIES + 1];
    let err = public.to_instances().unwrap_err().to_string();
    assert!(err.contains("assumed list has 17 entries"), "{err}");
}

#[test]
fn public_inputs_read_back_from_json_with_a_negative_delta() {
    let mut public = sample();
    public.header.eth_delta = -7;
    let text = serde_json::to_string(&public).unwrap();
    let back: RollupPublicInputs = serde_json::from_str(&text).unwrap();
    assert_eq!(back, public);
}
