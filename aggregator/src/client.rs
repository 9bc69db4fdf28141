//! The aggregator's typed client ([`lockstep_api::ApiClient`]), and what a builder sends it.

pub use lockstep_api::{ApiClient, ClientError};
use lockstep_api::{SlotBlock, SlotOpening};
use lockstep_circuits::fr_text::fr_hex;
use lockstep_rollup_api::SealedBlock;

/// The `POST /v1/slots` body that opens `slot` with a builder's sealed `blocks`.
pub fn slot_opening(slot: u64, blocks: &[SealedBlock]) -> SlotOpening {
    SlotOpening {
        slot,
        rollups: blocks
            .iter()
            .map(|b| SlotBlock {
                rollup_id: b.header.rollup_id,
                pre_root: fr_hex(&b.header.pre_root),
                data: format!("0x{}", hex::encode(&b.data)),
            })
            .collect(),
    }
}
