//! Checking a rollup proof before it is accepted: everything that can be checked without the
//! slot's other proofs, so a bad proof is refused in milliseconds instead of failing the
//! aggregation minutes later.

use std::{collections::BTreeMap, sync::Arc};

use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, G1Affine},
    plonk::VerifyingKey,
    poly::kzg::commitment::ParamsKZG,
};
use lockstep_circuits::{
    aggregation::vk_digest,
    entry::Domain,
    layout::{RollupPublicInputs, NUM_INSTANCES},
    prover,
    vk_file::LoadedVk,
    Fr,
};

use snark_verifier_sdk::{snark_verifier::verifier::plonk::PlonkProtocol, Snark};

use super::prover::DEV_MODE_PROOF;
use super::slots::{now_ms, SlotRecord, StoredProof};

/// Largest proof accepted, in bytes (a rollup proof of the common shape is a few kilobytes).
pub const MAX_PROOF_BYTES: usize = 64 * 1024;

pub use lockstep_api::ProofSubmission;

/// A rollup the aggregator accepts proofs from: its verifying key and the protocol the
/// aggregation circuit verifies.
#[derive(Debug, Clone)]
pub struct RegisteredRollup {
    /// Rollup id.
    pub id: u32,
    /// Its verifying key.
    pub vk: VerifyingKey<G1Affine>,
    /// The same key as snark-verifier's protocol.
    pub protocol: PlonkProtocol<G1Affine>,
    /// SRS of the rollup circuit's `k` (verification uses its G2 points).
    pub params: Arc<ParamsKZG<Bn256>>,
    /// The vk digest the aggregation exposes and the L1 registry holds.
    pub vk_digest: Fr,
    /// What the key is, from its key file (free text, for logs and `GET /v1/rollups/{id}`;
    /// nothing trusts it).
    pub label: String,
}

impl RegisteredRollup {
    /// A rollup registered with `vk` at the SRS `params`.
    pub fn new(id: u32, vk: VerifyingKey<G1Affine>, params: Arc<ParamsKZG<Bn256>>) -> Self {
        let protocol = prover::protocol(&params, &vk, NUM_INSTANCES);
        Self {
            id,
            vk_digest: vk_digest(&protocol),
            vk,
            protocol,
            params,
            label: String::new(),
        }
    }

    /// A rollup registered by its verifying-key file's contents.
    pub fn from_file(id: u32, loaded: LoadedVk) -> Self {
        Self::new(id, loaded.vk, loaded.params).with_label(loaded.label)
    }

    /// The same rollup with `label` saying what its key is.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
}

/// The rollups the aggregator serves, and the domain their proofs must be bound to.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// The deployment domain (L1 chain id and settlement contract).
    pub domain: Domain,
    /// Registered rollups by id.
    pub rollups: BTreeMap<u32, RegisteredRollup>,
}

/// Why a submitted proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// The rollup id is not registered with this aggregator.
    #[error("rollup {0} is not registered with this aggregator")]
    UnknownRollup(u32),
    /// The submission is not well-formed (bad hex, wrong instance count, a layout violation).
    #[error("malformed submission: {0}")]
    Malformed(String),
    /// A public input differs from what the slot fixes.
    #[error("{field} is {got}, expected {expected}")]
    Mismatch {
        /// Which input.
        field: &'static str,
        /// What the slot expects.
        expected: String,
        /// What the proof exposes.
        got: String,
    },
    /// The proof does not verify against the rollup's registered verifying key.
    #[error("invalid proof: it does not verify against rollup {0}'s registered verifying key")]
    InvalidProof(u32),
}

pub use lockstep_circuits::fr_text::{fr_hex, parse_fr_hex as parse_fr};

/// Checks `submission` against its slot's record and the registry, natively verifying the
/// proof; returns what to store. Slot state and duplicates are checked when it is stored.
pub fn check(
    submission: &ProofSubmission,
    record: &SlotRecord,
    registry: &Registry,
) -> Result<StoredProof, IntakeError> {
    let rollup = registry
        .rollups
        .get(&submission.rollup_id)
        .ok_or(IntakeError::UnknownRollup(submission.rollup_id))?;
    if submission.instances.len() != NUM_INSTANCES {
        return Err(IntakeError::Malformed(format!(
            "{} instances, the layout has {NUM_INSTANCES}",
            submission.instances.len()
        )));
    }
    let instances = submission
        .instances
        .iter()
        .enumerate()
        .map(|(i, h)| {
            parse_fr(h).ok_or_else(|| {
                IntakeError::Malformed(format!(
                    "instance {i} ({h:?}) is not a canonical hex field element"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let public = RollupPublicInputs::from_instances(&instances)
        .map_err(|e| IntakeError::Malformed(e.to_string()))?;
    let mismatch = |field, expected: String, got: String| {
        Err(IntakeError::Mismatch {
            field,
            expected,
            got,
        })
    };
    if public.header.rollup_id != submission.rollup_id {
        return mismatch(
            "rollup id",
            submission.rollup_id.to_string(),
            public.header.rollup_id.to_string(),
        );
    }
    if public.header.slot != submission.slot || public.header.slot != record.slot {
        return mismatch(
            "slot",
            record.slot.to_string(),
            public.header.slot.to_string(),
        );
    }
    if public.header.domain != registry.domain {
        return mismatch(
            "domain",
            fr_hex(&registry.domain.to_field()),
            fr_hex(&public.header.domain.to_field()),
        );
    }
    // The slot's record fixes the pre root and the DA commitment of every rollup in it.
    if let Some(expected) = record.rollups.get(&submission.rollup_id) {
        for (field, want, got) in [
            ("pre root", &expected.pre_root, public.header.pre_root),
            (
                "DA commitment",
                &expected.da_commitment,
                public.header.da_commitment,
            ),
        ] {
            if parse_fr(want) != Some(got) {
                return mismatch(field, want.clone(), fr_hex(&got));
            }
        }
    }
    let digits = submission
        .proof
        .strip_prefix("0x")
        .unwrap_or(&submission.proof);
    if digits.len() > 2 * MAX_PROOF_BYTES {
        return Err(IntakeError::Malformed(format!(
            "proof of {} bytes, at most {MAX_PROOF_BYTES}",
            digits.len() / 2
        )));
    }
    let proof = hex::decode(digits)
        .map_err(|e| IntakeError::Malformed(format!("proof is not hex: {e}")))?;
    let snark = Snark::new(rollup.protocol.clone(), vec![instances], proof);
    // Dev mode (`--dev`, a development chain only): adapters check their blocks with MockProver
    // and send the marker instead of a proof. Outside dev mode the marker is just an invalid
    // proof.
    let dev_marker = crate::dev::enabled() && snark.proof == DEV_MODE_PROOF;
    if !dev_marker && !prover::verify(&rollup.params, &rollup.vk, &snark) {
        return Err(IntakeError::InvalidProof(rollup.id));
    }
    Ok(StoredProof {
        instances: submission.instances.clone(),
        proof: format!("0x{}", hex::encode(&snark.proof)),
        received_at_ms: now_ms(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_elements_parse_canonically() {
        assert_eq!(parse_fr("0x05"), Some(Fr::from(5)));
        assert_eq!(parse_fr("5"), Some(Fr::from(5)));
        assert_eq!(parse_fr(&fr_hex(&-Fr::one())), Some(-Fr::one()));
        assert_eq!(parse_fr(&format!("0x{}", "ff".repeat(32))), None, "≥ p");
        assert_eq!(parse_fr("0x"), None);
        assert_eq!(parse_fr("0xzz"), None);
        assert_eq!(parse_fr(&format!("0x{}", "00".repeat(33))), None);
    }
}
