use halo2_base::{
    gates::circuit::BaseCircuitParams,
    halo2_proofs::{dev::MockProver, plonk::Circuit},
};
use lockstep_circuits::{
    entry::{Address, CallKind, Domain, Entry},
    layout::PublicInputsWitness,
    testing, Fr,
};
use proptest::prelude::*;

pub(crate) const DOMAIN: Domain = Domain {
    chain_id: 31337,
    registry: Address([0x5a; 20]),
};
pub(crate) const SLOT: u64 = 1_000;

/// A call from rollup `src` to rollup `dst`, distinguishable by `seq` and `result`.
pub(crate) fn call(src: u32, dst: u32, seq: u32, result: u8) -> Entry {
    testing::sample_call(DOMAIN, SLOT, src, dst, seq, result)
}

/// A rollup's witness with the given lists and everything else fixed.
pub(crate) fn witness(
    rollup_id: u32,
    assumed: Vec<Entry>,
    served: Vec<Entry>,
) -> PublicInputsWitness {
    testing::sample_rollup(DOMAIN, SLOT, rollup_id, assumed, served, -5)
}

/// Runs the MockProver on `builder` against `instances`; `Ok` if every constraint holds.
pub(crate) fn mock_verify<C: Circuit<Fr, Params = BaseCircuitParams>>(
    builder: &C,
    instances: Vec<Fr>,
) -> Result<(), String> {
    let k = builder.params().k as u32;
    let prover = MockProver::run(k, builder, vec![instances]).map_err(|e| format!("{e:?}"))?;
    prover
        .verify()
        .map_err(|failures| format!("{} failures, first: {:?}", failures.len(), failures.first()))
}

pub(crate) fn arb_bytes<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    proptest::collection::vec(any::<u8>(), N).prop_map(|v| v.try_into().expect("N bytes"))
}

pub(crate) fn arb_entry() -> impl Strategy<Value = Entry> {
    (
        (
            any::<u64>(),
            arb_bytes::<20>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        ),
        (
            prop_oneof![Just(CallKind::Call), Just(CallKind::StaticCall)],
            any::<bool>(),
            any::<bool>(),
        ),
        (
            arb_bytes::<20>(),
            arb_bytes::<20>(),
            arb_bytes::<32>(),
            arb_bytes::<32>(),
            arb_bytes::<32>(),
        ),
    )
        .prop_map(
            |(
                (chain_id, registry, slot, src, dst, seq),
                (kind, success, committed),
                (caller, target, value, cd, rd),
            )| {
                Entry {
                    domain: Domain {
                        chain_id,
                        registry: Address(registry),
                    },
                    slot,
                    src,
                    dst,
                    seq,
                    kind,
                    success,
                    committed,
                    caller: Address(caller),
                    target: Address(target),
                    value,
                    calldata_hash: cd,
                    return_hash: rd,
                }
            },
        )
}
