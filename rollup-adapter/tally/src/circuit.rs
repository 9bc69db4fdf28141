//! The tally rollup's circuit: its whole state transition, in the common shape, exposing the
//! common public-input layout.
//!
//! # What it proves
//! From `pre_root = Poseidon(tag, count₀, balance₀)`, the served entries, in order, each:
//! - is a successful plain call (`kind = Call`, `success = 1`) to [`TALLY_APP`] on this rollup
//!   (the destination is checked by [`PublicInputsChip`]);
//! - carries a value below 2^96 (its high half is 0);
//! - returned `countᵢ + 1`: its return field is the 16-byte word (high half 0, low half the
//!   count);
//! - if committed, moved the count by one and the balance by its value.
//!
//! The post root is `Poseidon(tag, count_n, balance_n)`, the ETH delta the committed values, the
//! L1 digest 0, and the assumed list empty (the tally makes no calls). The domain, slot, rollup id
//! and DA commitment are inputs, bound by the aggregation to the slot's. The calldata, caller,
//! source and sequence number of each call are whatever the caller assumed: the accumulator
//! matches them with the caller's entries.
//!
//! Rows: one Poseidon per root, and per entry slot its range checks, packing and hash (in the
//! layout gadget) and a handful of gates: k = 17, like the test rollup, against 18 or more for the
//! reference rollup's STF circuit.

use halo2_base::{
    gates::{
        circuit::{BaseCircuitParams, CircuitBuilderStage},
        flex_gate::MultiPhaseThreadBreakPoints,
        GateInstructions, RangeInstructions,
    },
    halo2_proofs::{
        halo2curves::{bn256::Bn256, ff::PrimeField},
        poly::{commitment::Params, kzg::commitment::ParamsKZG},
    },
    AssignedValue, Context,
    QuantumCell::Constant,
};
use lockstep_circuits::{
    entry::{fe_from_be, part, CallKind, Domain, Entry, EntryChip, EntryInstructions},
    keys::{config_digest, CircuitKey, KeyStore},
    layout::{real_flags, Assigned, AssignedEntryList, PublicInputsChip, SlotHeader, MAX_ENTRIES},
    poseidon,
    shape::{self, RollupCircuit},
    Fr,
};
use snark_verifier_sdk::Snark;

use crate::{block::TallyBlock, state_tag, Error, Result, TallyState, TALLY_APP};

/// The circuit's degree.
pub const TALLY_K: u32 = 17;
/// The version of the circuit's constraints, part of its key's cache digest.
pub const TALLY_VERSION: u32 = 1;

/// Everything the circuit needs: the header, the state before, the served entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallyWitness {
    /// The header its proof exposes. The circuit takes the domain, slot, rollup id and DA
    /// commitment from here and computes the roots and the ETH delta from `pre` and `served`;
    /// those here are what the block claims.
    pub header: SlotHeader,
    /// The state before the block.
    pub pre: TallyState,
    /// The served entries, in the block's order.
    pub served: Vec<Entry>,
}

impl TallyWitness {
    /// The witness of `block`, executed in `domain`, its data under `da_commitment`.
    pub fn new(domain: Domain, da_commitment: Fr, block: &TallyBlock) -> Result<Self> {
        let executed = block.execute(domain)?;
        Ok(Self {
            header: block.header(domain, &executed).with_da(da_commitment),
            pre: block.pre,
            served: executed.served,
        })
    }

    /// The witness keygen lays the circuit out with: an empty block (the layout never depends
    /// on the values).
    pub fn keygen() -> Self {
        let pre = TallyState::default();
        Self {
            header: SlotHeader {
                domain: Domain::default(),
                slot: 0,
                rollup_id: 1,
                pre_root: pre.root(),
                post_root: pre.root(),
                da_commitment: Fr::zero(),
                eth_delta: 0,
                l1_digest: Fr::zero(),
            },
            pre,
            served: Vec::new(),
        }
    }
}

/// Builds the circuit for `witness`: `stage` is `Mock` or `Keygen` (then `break_points` is
/// `None`), or `Prover` with the break points recorded at keygen.
pub fn circuit(
    stage: CircuitBuilderStage,
    k: u32,
    break_points: Option<MultiPhaseThreadBreakPoints>,
    witness: &TallyWitness,
) -> Result<RollupCircuit> {
    if witness.served.len() > MAX_ENTRIES {
        return Err(Error::Refused(format!(
            "{} served entries; the layout holds {MAX_ENTRIES}",
            witness.served.len()
        )));
    }
    let mut circuit = RollupCircuit::new(stage, k, break_points)?;
    let range = circuit.range_chip();
    let exposed = assign(&range, circuit.main(), witness);
    circuit.expose(exposed);
    Ok(circuit.finish()?)
}

/// `real · (value − expected) = 0`: `value = expected` on a real entry.
fn assert_if(
    range: &halo2_base::gates::RangeChip<Fr>,
    ctx: &mut Context<Fr>,
    real: AssignedValue<Fr>,
    value: AssignedValue<Fr>,
    expected: Fr,
) {
    let gate = range.gate();
    let diff = gate.sub(ctx, value, Constant(expected));
    let masked = gate.mul(ctx, diff, real);
    gate.assert_is_const(ctx, &masked, &Fr::zero());
}

fn assign(
    range: &halo2_base::gates::RangeChip<Fr>,
    ctx: &mut Context<Fr>,
    witness: &TallyWitness,
) -> Vec<AssignedValue<Fr>> {
    let gate = range.gate();
    let hasher = poseidon::hasher(ctx, gate);
    let entries = EntryChip::new(range);
    let tag = ctx.load_constant(state_tag());

    // The state before, bound to the pre root.
    let count = ctx.load_witness(Fr::from(witness.pre.count));
    range.range_check(ctx, count, 64);
    let balance = ctx.load_witness(Fr::from_u128(witness.pre.balance));
    range.range_check(ctx, balance, 128);
    let pre_root = poseidon::hash_assigned(&hasher, ctx, gate, &[tag, count, balance]);

    // The served calls, each checked and applied in order.
    let served_count = ctx.load_witness(Fr::from(witness.served.len() as u64));
    let mut served: Vec<_> = witness
        .served
        .iter()
        .map(|e| entries.load_entry(ctx, e))
        .collect();
    while served.len() < MAX_ENTRIES {
        served.push(entries.load_padding(ctx));
    }
    let real = real_flags(range, ctx, served_count);
    let target = fe_from_be(&TALLY_APP.0);
    let (mut count, mut balance) = (count, balance);
    let mut eth_delta = ctx.load_zero();
    for (entry, real) in served.iter().zip(&real) {
        let p = entry.parts;
        assert_if(
            range,
            ctx,
            *real,
            p[part::KIND],
            Fr::from(CallKind::Call as u64),
        );
        assert_if(range, ctx, *real, p[part::SUCCESS], Fr::one());
        assert_if(range, ctx, *real, p[part::TARGET], target);
        assert_if(range, ctx, *real, p[part::VALUE_HI], Fr::zero());
        assert_if(range, ctx, *real, p[part::RETURN_HI], Fr::zero());
        // The answer is the count after this call: count + 1.
        let answer = gate.add(ctx, count, Constant(Fr::one()));
        let diff = gate.sub(ctx, p[part::RETURN_LO], answer);
        let masked = gate.mul(ctx, diff, *real);
        gate.assert_is_const(ctx, &masked, &Fr::zero());
        // Values below 2^96 (a padding entry's is 0).
        range.range_check(ctx, p[part::VALUE_LO], 96);
        // A committed real call moves the count and keeps its value.
        let applies = gate.mul(ctx, *real, p[part::COMMITTED]);
        count = gate.add(ctx, count, applies);
        let kept = gate.mul(ctx, applies, p[part::VALUE_LO]);
        balance = gate.add(ctx, balance, kept);
        eth_delta = gate.add(ctx, eth_delta, kept);
    }
    let post_root = poseidon::hash_assigned(&hasher, ctx, gate, &[tag, count, balance]);

    let given = &witness.header;
    let header = SlotHeader::<Assigned> {
        domain: ctx.load_witness(given.domain.to_field()),
        slot: ctx.load_witness(Fr::from(given.slot)),
        rollup_id: ctx.load_witness(Fr::from(u64::from(given.rollup_id))),
        pre_root,
        post_root,
        da_commitment: ctx.load_witness(given.da_commitment),
        eth_delta,
        l1_digest: ctx.load_constant(Fr::zero()),
    };
    // The tally makes no calls: its assumed list is empty.
    let assumed = AssignedEntryList {
        count: ctx.load_constant(Fr::zero()),
        entries: (0..MAX_ENTRIES)
            .map(|_| entries.load_padding(ctx))
            .collect(),
    };
    let served = AssignedEntryList {
        count: served_count,
        entries: served,
    };
    PublicInputsChip::new(range).expose(ctx, &hasher, &header, &assumed, &served)
}

/// The digest the circuit's proving key is cached under.
pub fn key_digest() -> String {
    config_digest(&("tally", shape::SHAPE_VERSION, TALLY_VERSION, TALLY_K))
}

/// The proving key from `store` (made by keygen and cached on first use); `params` must be the
/// SRS of [`TALLY_K`].
pub fn proving_key(
    store: &KeyStore,
    params: &ParamsKZG<Bn256>,
) -> Result<CircuitKey<BaseCircuitParams>> {
    if params.k() != TALLY_K {
        return Err(Error::Refused(format!(
            "an SRS of k = {} for the tally circuit of k = {TALLY_K}",
            params.k()
        )));
    }
    Ok(store.proving_key("tally", &key_digest(), params, || {
        circuit(
            CircuitBuilderStage::Keygen,
            TALLY_K,
            None,
            &TallyWitness::keygen(),
        )
        .map_err(|e| match e {
            Error::Circuits(inner) => inner,
            other => lockstep_circuits::Error::InvalidProof(other.to_string()),
        })
    })?)
}

/// Proves `witness` with `key` and checks the proof natively.
pub fn prove(
    params: &ParamsKZG<Bn256>,
    key: &CircuitKey<BaseCircuitParams>,
    witness: &TallyWitness,
) -> Result<Snark> {
    let builder = circuit(
        CircuitBuilderStage::Prover,
        TALLY_K,
        Some(key.meta.break_points.clone()),
        witness,
    )?;
    Ok(lockstep_circuits::prover::prove(params, &key.pk, builder)?)
}
