//! From an aggregation proof to a settlement call: field elements as EVM words, and the
//! per-rollup claims `LockstepSettlement.settle` takes, checked against what the proof exposes
//! before any gas is spent.

use alloy::primitives::U256;
use lockstep_circuits::{aggregation::ACCUMULATOR_CELLS, layout::RollupPublicInputs, Fr};
use lockstep_contracts::settlement::{self, claim, Claim, DataRef, Withdrawal, ACCUMULATOR_WORDS};

/// A field element as the 32-byte big-endian word the EVM sees.
pub fn fr_to_u256(value: Fr) -> U256 {
    U256::from_le_bytes(value.to_bytes())
}

/// An EVM word as a field element; `None` if it is not below the field modulus.
pub fn u256_to_fr(value: U256) -> Option<Fr> {
    Option::from(Fr::from_bytes(&value.to_le_bytes::<32>()))
}

/// The accumulator limbs at the head of an aggregation's instances.
pub fn accumulator_words(instances: &[Fr]) -> [U256; ACCUMULATOR_WORDS] {
    debug_assert_eq!(ACCUMULATOR_CELLS, ACCUMULATOR_WORDS);
    std::array::from_fn(|i| fr_to_u256(instances[i]))
}

/// What L1 needs about one rollup besides its public inputs.
#[derive(Debug, Clone)]
pub struct RollupL1 {
    /// The rollup's public inputs, as its proof exposes them.
    pub public: RollupPublicInputs,
    /// Where its block data sits in the slot's blobs.
    pub data: DataRef,
    /// Its withdrawals to L1 accounts.
    pub withdrawals: Vec<Withdrawal>,
}

/// Why a rollup's public inputs cannot be settled with the L1 data given for it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClaimError {
    /// The proof exposes another DA commitment than the blob data reference gives.
    #[error(
        "rollup {rollup_id}: the proof's DA commitment is not the one of {data:?} in the blob"
    )]
    DaCommitment {
        /// The rollup.
        rollup_id: u32,
        /// The data reference.
        data: DataRef,
    },
    /// The proof's `l1_digest` is not the digest of the withdrawals.
    #[error("rollup {rollup_id}: the proof's l1 digest is not the digest of its withdrawals")]
    WithdrawalDigest {
        /// The rollup.
        rollup_id: u32,
    },
    /// The claims are not in ascending rollup-id order (the contract requires it).
    #[error("rollups must be aggregated in ascending id order: {previous} before {rollup_id}")]
    Order {
        /// The id before.
        previous: u32,
        /// The id out of order.
        rollup_id: u32,
    },
}

/// The settlement claims for rollups aggregated in this order, checked against the blob's
/// versioned hashes so that a mismatch is caught here, not by a failed proof on L1.
pub fn claims(
    rollups: &[RollupL1],
    versioned_hashes: &[alloy::primitives::B256],
) -> Result<Vec<Claim>, ClaimError> {
    let mut previous = 0;
    rollups
        .iter()
        .map(|r| {
            let p = &r.public;
            if p.header.rollup_id <= previous {
                return Err(ClaimError::Order {
                    previous,
                    rollup_id: p.header.rollup_id,
                });
            }
            previous = p.header.rollup_id;
            let da = versioned_hashes
                .get(usize::from(r.data.blob_index))
                .map(|h| settlement::da_commitment(*h, r.data.offset, r.data.length));
            if da != Some(fr_to_u256(p.header.da_commitment)) {
                return Err(ClaimError::DaCommitment {
                    rollup_id: p.header.rollup_id,
                    data: r.data,
                });
            }
            if settlement::withdrawal_digest(&r.withdrawals) != fr_to_u256(p.header.l1_digest) {
                return Err(ClaimError::WithdrawalDigest {
                    rollup_id: p.header.rollup_id,
                });
            }
            Ok(claim(
                p.header.rollup_id,
                fr_to_u256(p.header.pre_root),
                fr_to_u256(p.header.post_root),
                r.data,
                p.header.eth_delta,
                r.withdrawals.clone(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::B256;
    use lockstep_circuits::{
        entry::{Address, Domain},
        testing,
    };

    #[test]
    fn field_words_round_trip_and_refuse_the_modulus() {
        let x = Fr::from(0x1234_5678_9abc_def0u64);
        assert_eq!(fr_to_u256(x), U256::from(0x1234_5678_9abc_def0u64));
        assert_eq!(u256_to_fr(fr_to_u256(-x)), Some(-x));
        assert_eq!(
            u256_to_fr(lockstep_contracts::bindings::SNARK_SCALAR_FIELD),
            None
        );
    }

    #[test]
    fn claims_check_da_commitment_withdrawals_and_order() {
        let domain = Domain {
            chain_id: 1,
            registry: Address([1; 20]),
        };
        let hash = B256::repeat_byte(0x01);
        let data = DataRef {
            blob_index: 0,
            offset: 0,
            length: 10,
        };
        let mut public = testing::sample_rollup(domain, 5, 3, vec![], vec![], -2).public_inputs();
        public.header.da_commitment = u256_to_fr(settlement::da_commitment(hash, 0, 10)).unwrap();
        let good = RollupL1 {
            public,
            data,
            withdrawals: vec![],
        };
        let c = claims(std::slice::from_ref(&good), &[hash]).unwrap();
        assert_eq!(c[0].rollupId, 3);
        assert_eq!(i128::try_from(c[0].ethDelta).unwrap(), -2);

        let moved = RollupL1 {
            data: DataRef { offset: 1, ..data },
            ..good.clone()
        };
        assert!(matches!(
            claims(&[moved], &[hash]),
            Err(ClaimError::DaCommitment { rollup_id: 3, .. })
        ));
        let no_blob = RollupL1 {
            data: DataRef {
                blob_index: 1,
                ..data
            },
            ..good.clone()
        };
        assert!(claims(&[no_blob], &[hash]).is_err());
        let withdrawing = RollupL1 {
            withdrawals: vec![Withdrawal {
                recipient: alloy::primitives::Address::repeat_byte(9),
                amount: U256::from(2),
            }],
            ..good.clone()
        };
        assert_eq!(
            claims(&[withdrawing], &[hash]),
            Err(ClaimError::WithdrawalDigest { rollup_id: 3 })
        );
        assert_eq!(
            claims(&[good.clone(), good], &[hash]),
            Err(ClaimError::Order {
                previous: 3,
                rollup_id: 3
            })
        );
    }
}
