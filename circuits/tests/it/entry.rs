use halo2_base::{
    gates::{
        circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
        GateInstructions, RangeInstructions,
    },
    halo2_proofs::halo2curves::ff::Field,
};
use lockstep_circuits::{
    entry::{part, AssignedEntry, Entry, EntryChip, EntryInstructions, ENTRY_PARTS, PART_BITS},
    poseidon, shape, Fr,
};
use proptest::prelude::*;

use crate::common::{arb_entry, call, mock_verify};

/// Fits one entry (range checks and a 6-permutation Poseidon, about 16k cells) in the shape.
const ENTRY_K: u32 = 13;

/// A circuit that loads `parts` (unchecked values allowed), hashes them and exposes the hash.
fn hash_circuit(parts: [Fr; ENTRY_PARTS]) -> BaseCircuitBuilder<Fr> {
    let mut builder = BaseCircuitBuilder::from_stage(CircuitBuilderStage::Mock)
        .use_params(shape::rollup_params(ENTRY_K).unwrap());
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let hasher = poseidon::hasher(ctx, range.gate());
    let chip = EntryChip::new(&range);
    // Load the requested values, range-checked exactly as load_entry does.
    let entry = AssignedEntry {
        parts: parts.map(|v| ctx.load_witness(v)),
    };
    for (value, bits) in entry.parts.iter().zip(PART_BITS) {
        if bits == 1 {
            range.gate().assert_bit(ctx, *value);
        } else {
            range.range_check(ctx, *value, bits);
        }
    }
    let hash = chip.hash(ctx, &hasher, &entry);
    builder.assigned_instances[0].push(hash);
    builder
}

fn load_entry_circuit(entry: &Entry) -> BaseCircuitBuilder<Fr> {
    let mut builder = BaseCircuitBuilder::from_stage(CircuitBuilderStage::Mock)
        .use_params(shape::rollup_params(ENTRY_K).unwrap());
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let hasher = poseidon::hasher(ctx, range.gate());
    let chip = EntryChip::new(&range);
    let assigned = chip.load_entry(ctx, entry);
    let hash = chip.hash(ctx, &hasher, &assigned);
    builder.assigned_instances[0].push(hash);
    builder
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// The in-circuit hash equals the native one, and the constraints hold.
    #[test]
    fn native_hash_equals_in_circuit_hash(entry in arb_entry()) {
        let builder = load_entry_circuit(&entry);
        let in_circuit = *builder.assigned_instances[0][0].value();
        prop_assert_eq!(in_circuit, entry.hash());
        prop_assert!(mock_verify(&builder, vec![entry.hash()]).is_ok());
    }

    /// Any single-field change changes the words and the hash (packing is injective).
    #[test]
    fn changing_any_part_changes_the_hash(entry in arb_entry(), which in 0..ENTRY_PARTS) {
        let mut other = entry;
        match which {
            part::CHAIN_ID => other.domain.chain_id ^= 1,
            part::REGISTRY => other.domain.registry.0[0] ^= 0x80,
            part::SLOT => other.slot ^= 1 << 63,
            part::SRC => other.src ^= 1,
            part::DST => other.dst ^= 1 << 31,
            part::SEQ => other.seq ^= 1,
            part::KIND => other.kind = if entry.kind == lockstep_circuits::entry::CallKind::Call {
                lockstep_circuits::entry::CallKind::StaticCall
            } else {
                lockstep_circuits::entry::CallKind::Call
            },
            part::SUCCESS => other.success = !other.success,
            part::COMMITTED => other.committed = !other.committed,
            part::CALLER => other.caller.0[19] ^= 1,
            part::TARGET => other.target.0[0] ^= 1,
            part::VALUE_HI => other.value[0] ^= 1,
            part::VALUE_LO => other.value[31] ^= 1,
            part::CALLDATA_HI => other.calldata_hash[15] ^= 1,
            part::CALLDATA_LO => other.calldata_hash[16] ^= 1,
            part::RETURN_HI => other.return_hash[0] ^= 0x80,
            _ => other.return_hash[31] ^= 1,
        }
        prop_assert_ne!(entry.words(), other.words());
        prop_assert_ne!(entry.hash(), other.hash());
    }
}

#[test]
fn wrong_expected_hash_is_rejected() {
    let entry = call(1, 2, 0, 7);
    let builder = load_entry_circuit(&entry);
    assert!(mock_verify(&builder, vec![entry.hash()]).is_ok());
    let err = mock_verify(&builder, vec![entry.hash() + Fr::ONE]).unwrap_err();
    assert!(err.contains("failures"), "{err}");
}

#[test]
fn every_part_is_range_checked() {
    let honest = call(1, 2, 3, 4).parts();
    assert!(mock_verify(&hash_circuit(honest), vec![call(1, 2, 3, 4).hash()]).is_ok());
    for (i, bits) in PART_BITS.iter().enumerate() {
        // 2^bits does not fit: the range check (or bit check) must fail whatever the hash.
        let mut parts = honest;
        parts[i] = Fr::from(2).pow_vartime([*bits as u64]);
        let builder = hash_circuit(parts);
        let claimed = *builder.assigned_instances[0][0].value();
        assert!(
            mock_verify(&builder, vec![claimed]).is_err(),
            "part {i} ({bits} bits) accepted 2^{bits}"
        );
    }
}

#[test]
fn out_of_range_part_cannot_alias_another_entry() {
    // Without range checks, src = 2^32 would pack into the dst position: w1 would equal that of
    // src = 0, dst = dst + 1. The range check makes such a witness unprovable.
    let a = call(0, 3, 0, 1);
    let mut parts = a.parts();
    parts[part::SRC] = Fr::from(1u64 << 32);
    let b = call(0, 4, 0, 1);
    assert_eq!(
        lockstep_circuits::entry::pack_native(&parts)[1],
        b.words()[1]
    );
    let builder = hash_circuit(parts);
    let claimed = *builder.assigned_instances[0][0].value();
    assert!(mock_verify(&builder, vec![claimed]).is_err());
}

#[test]
fn data_fields_carry_short_data_as_a_number_and_hash_long_data() {
    use lockstep_circuits::entry::data_field;
    // Up to 32 bytes: the data itself, zero-padded on the left.
    let mut five = [0u8; 32];
    five[31] = 5;
    assert_eq!(data_field(&[5]), five);
    assert_eq!(
        data_field(&[0, 0, 5]),
        five,
        "short data compares as a number"
    );
    assert_eq!(data_field(&[]), [0; 32]);
    let full: Vec<u8> = (1..=32).collect();
    assert_eq!(data_field(&full).to_vec(), full);
    // Longer: keccak-256 (`cast keccak` of 33 zero bytes).
    let long = [0u8; 33];
    assert_eq!(
        hex::encode(data_field(&long)),
        "f39a869f62e75cf5f0bf914688a6b289caf2049435d8e68c5c5e6d05e44913f3"
    );
    assert_ne!(data_field(&[1u8; 33]), data_field(&[1u8; 34]));
}
