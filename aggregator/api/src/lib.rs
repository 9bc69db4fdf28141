//! The Lockstep aggregator's HTTP API (`docs/api.md`), typed: every request and response body and
//! the error body, shared by the server (`lockstep-aggregator`) and its clients ([`ApiClient`]:
//! `lockstep status`, the adapters, the demo, the tests). The server's OpenAPI document
//! (`GET /v1/openapi.json`) is generated from these types.
//!
//! Field elements travel as `0x` and 64 hex digits (big-endian), byte strings as `0x` and hex.
//!
//! ```
//! use lockstep_api::{SlotState, SlotSummary};
//!
//! let summary: SlotSummary = serde_json::from_str(
//!     r#"{"slot": 7, "state": "settled", "rollups": [1, 2], "proofs_received": 2,
//!         "updated_at_ms": 1, "tx": "0xab", "block": 9, "gas_used": 500000}"#,
//! )?;
//! assert_eq!(summary.state, "settled");
//! assert_eq!(SlotState::Proving.name(), "proving");
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod client;

pub use client::{ApiClient, ClientError};

/// The proof bytes of a dev-mode proof or "aggregation": a marker, not a proof. Only an
/// aggregator in dev mode accepts it in a submission, and `DevModeVerifier` checks for it on
/// L1, so that a real verifier never sees it and a real proof never reaches the stand-in by
/// accident.
pub const DEV_MODE_PROOF: [u8; 32] = *b"LOCKSTEP DEV MODE: NOT A PROOF\0\0";

/// The body of every refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code (`malformed_json`, `unknown_rollup`, `invalid_proof`, …; `docs/api.md`).
    pub error: String,
    /// What was wrong, naming the bad value.
    pub message: String,
}

/// Bytes as `0x` and hex.
#[derive(Debug, Clone, PartialEq, Eq, Default, ToSchema)]
#[schema(value_type = String, example = "0x1234")]
pub struct HexBytes(pub Vec<u8>);

impl Serialize for HexBytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("0x{}", hex::encode(&self.0)))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let digits = text
            .strip_prefix("0x")
            .ok_or_else(|| serde::de::Error::custom("bytes must start with 0x"))?;
        hex::decode(digits)
            .map(Self)
            .map_err(|e| serde::de::Error::custom(format!("bytes are not hex: {e}")))
    }
}

// ----- transactions -----

/// `POST /v1/transactions`: a transaction for the service's builder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TxSubmission {
    /// The rollup it runs on.
    pub rollup_id: u32,
    /// The transaction in the rollup's own encoding; the rollup decodes it when the builder runs
    /// it.
    pub tx: HexBytes,
}

/// `202` to `POST /v1/transactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TxAccepted {
    /// The transaction's id, for `GET /v1/transactions/{id}`.
    pub id: u64,
    /// Always `pending`.
    pub state: String,
}

/// Where a transaction is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TxState {
    /// Waiting for the next slot.
    Pending,
    /// Run in `slot`.
    Included {
        /// The slot.
        slot: u64,
        /// Whether its call succeeded (a reverted call is still included).
        success: bool,
        /// The call's return or revert data.
        data: HexBytes,
        /// Cross-rollup calls it made.
        cross_calls: usize,
    },
    /// Not included.
    Refused {
        /// The slot the builder tried it in.
        slot: u64,
        /// Why.
        reason: String,
    },
}

/// A submitted transaction and where it is (`GET /v1/transactions/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TxRecord {
    /// Its id, in arrival order from 1.
    pub id: u64,
    /// The rollup it runs on.
    pub rollup_id: u32,
    /// The transaction, in the rollup's own encoding.
    pub tx: HexBytes,
    /// When it arrived (ms since the Unix epoch).
    pub received_ms: u64,
    /// Where it is.
    #[serde(flatten)]
    pub state: TxState,
}

// ----- proofs -----

/// `POST /v1/proofs`: a rollup proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofSubmission {
    /// The slot the proof is for.
    pub slot: u64,
    /// The rollup that proved it.
    pub rollup_id: u32,
    /// Public inputs: hex field elements (big-endian), in the layout's order.
    pub instances: Vec<String>,
    /// The proof bytes, hex.
    pub proof: String,
}

/// `202` to `POST /v1/proofs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProofAccepted {
    /// The slot.
    pub slot: u64,
    /// The rollup.
    pub rollup_id: u32,
    /// The slot's state after the proof (`aggregating` once every proof is in).
    pub state: String,
}

// ----- slots -----

/// One rollup's sealed block, as a builder hands it over in [`SlotOpening`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotBlock {
    /// The rollup.
    pub rollup_id: u32,
    /// The state root its block starts from (hex field element).
    pub pre_root: String,
    /// The block data the slot's blobs carry (hex).
    pub data: String,
}

/// `POST /v1/slots`: a new slot and its rollups' blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotOpening {
    /// The L1 slot.
    pub slot: u64,
    /// One block per taking-part rollup.
    pub rollups: Vec<SlotBlock>,
}

/// Where a slot is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SlotState {
    /// Accepting transactions.
    Collecting,
    /// Blocks sealed and laid out; waiting for every rollup's proof.
    Proving,
    /// Every proof in; aggregating.
    Aggregating,
    /// Aggregated; the settlement transaction is being sent.
    Posting,
    /// Settled on L1.
    Settled {
        /// Settlement transaction hash.
        tx: String,
        /// L1 block it was included in.
        block: u64,
        /// Gas it used.
        gas_used: u64,
    },
    /// Given up.
    Failed {
        /// The state it failed in.
        stage: String,
        /// Why.
        reason: String,
    },
}

impl SlotState {
    /// The state's name, as the API and the metrics show it.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Collecting => "collecting",
            Self::Proving => "proving",
            Self::Aggregating => "aggregating",
            Self::Posting => "posting",
            Self::Settled { .. } => "settled",
            Self::Failed { .. } => "failed",
        }
    }

    /// Whether the slot is done (settled or failed).
    pub const fn is_final(&self) -> bool {
        matches!(self, Self::Settled { .. } | Self::Failed { .. })
    }

    /// Whether the state machine allows moving from `self` to `next`.
    pub const fn can_move_to(&self, next: &Self) -> bool {
        matches!(
            (self, next),
            (Self::Collecting, Self::Proving)
                | (Self::Proving, Self::Aggregating)
                | (Self::Aggregating, Self::Posting)
                | (Self::Posting, Self::Settled { .. })
        ) || (!self.is_final() && matches!(next, Self::Failed { .. }))
    }
}

/// Where one rollup's block data sits in the slot's blobs, and the commitment its proof makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RollupSlot {
    /// State root the block starts from (hex, big-endian).
    pub pre_root: String,
    /// Blob holding the data.
    pub blob_index: u8,
    /// Byte offset of the data in the blob's payload.
    pub offset: u32,
    /// Byte length of the data.
    pub length: u32,
    /// `keccak(blobhash ‖ offset ‖ length) mod p` (hex, big-endian): the DA commitment the
    /// rollup's proof must expose.
    pub da_commitment: String,
}

/// One state change, for the slot's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    /// The state entered.
    pub state: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// Everything the aggregator keeps about a slot (`201` to `POST /v1/slots`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SlotRecord {
    /// The L1 slot.
    pub slot: u64,
    /// Where it is.
    #[serde(flatten)]
    pub state: SlotState,
    /// The rollups taking part, by id (JSON object keys are strings: `"1"`).
    #[schema(value_type = BTreeMap<String, RollupSlot>)]
    #[serde(with = "id_keys")]
    pub rollups: BTreeMap<u32, RollupSlot>,
    /// Versioned hashes of the slot's blobs (hex).
    pub versioned_hashes: Vec<String>,
    /// Every state it has been in, oldest first.
    pub history: Vec<Transition>,
}

impl SlotRecord {
    /// A new slot in `state` at `at_ms` (normally [`SlotState::Collecting`] or, for a builder
    /// that seals at once, [`SlotState::Proving`]).
    pub fn new(
        slot: u64,
        state: SlotState,
        rollups: BTreeMap<u32, RollupSlot>,
        versioned_hashes: Vec<String>,
        at_ms: u64,
    ) -> Self {
        let history = vec![Transition {
            state: state.name().into(),
            at_ms,
        }];
        Self {
            slot,
            state,
            rollups,
            versioned_hashes,
            history,
        }
    }
}

/// A slot's aggregation proof, in [`SlotStatus`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AggregationInfo {
    /// Seconds the proof took.
    pub proving_seconds: f64,
    /// Its size.
    pub proof_bytes: usize,
}

/// A slot's settlement transaction, in [`SlotStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SettlementTx {
    /// Transaction hash (hex).
    pub hash: String,
    /// Sender nonce.
    pub nonce: u64,
    /// When it was signed, in milliseconds since the Unix epoch.
    pub signed_at_ms: u64,
}

/// `GET /v1/slots/{slot}`: the slot's record, the proofs received, and its aggregation and
/// settlement transaction once there are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SlotStatus {
    /// The record.
    #[serde(flatten)]
    pub record: SlotRecord,
    /// Rollups whose proof was accepted.
    pub proofs_received: Vec<u32>,
    /// The aggregation proof, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation: Option<AggregationInfo>,
    /// The settlement transaction, once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_tx: Option<SettlementTx>,
}

/// One slot in [`SlotList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SlotSummary {
    /// The slot.
    pub slot: u64,
    /// Its state's name.
    pub state: String,
    /// Rollups taking part.
    pub rollups: Vec<u32>,
    /// How many proofs were accepted.
    pub proofs_received: usize,
    /// When it last changed state (ms since the Unix epoch).
    pub updated_at_ms: u64,
    /// Settled: the transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<String>,
    /// Settled: the L1 block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<u64>,
    /// Settled: the gas used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_used: Option<u64>,
    /// Failed: the state it failed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Failed: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /v1/slots`: the newest slots, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SlotList {
    /// The slots.
    pub slots: Vec<SlotSummary>,
}

/// `GET /v1/slots/{slot}/blocks/{id}`: a rollup's block in a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockData {
    /// The slot.
    pub slot: u64,
    /// The rollup.
    pub rollup_id: u32,
    /// The state root the block starts from (hex).
    pub pre_root: String,
    /// The DA commitment its proof must expose (hex).
    pub da_commitment: String,
    /// The block's bytes.
    pub data: HexBytes,
}

// ----- rollups and the service -----

/// `GET /v1/rollups/{id}`: a registered rollup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RollupStatus {
    /// Rollup id.
    pub id: u32,
    /// The vk digest L1's registry must hold for it (hex).
    pub vk_digest: String,
    /// Its circuit's degree.
    pub k: u32,
    /// Its key file's label (free text).
    pub label: String,
    /// Slots in `proving` that still miss its proof.
    pub slots_waiting_for_proof: Vec<u64>,
}

/// The deployment proofs are bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DomainInfo {
    /// L1 chain id.
    pub chain_id: u64,
    /// The registry (settlement) contract (hex address).
    pub registry: String,
}

/// What the service's builder runs, in [`Health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BuilderInfo {
    /// The rollups it builds.
    pub rollups: Vec<u32>,
    /// Most transactions waiting.
    pub max_pending: usize,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// Slots not settled or failed.
    pub unfinished_slots: usize,
    /// Registered rollups.
    pub rollups: Vec<u32>,
    /// The deployment.
    pub domain: DomainInfo,
    /// The service's builder, if it runs one.
    pub builder: Option<BuilderInfo>,
}

/// A map keyed by rollup id, as a JSON object with the ids as string keys. Written out because a
/// record read through `#[serde(flatten)]` (as [`SlotStatus`] reads [`SlotRecord`]) hands its
/// keys over as strings, which serde's integer keys do not accept.
mod id_keys {
    use std::collections::BTreeMap;

    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer, V: Serialize>(
        map: &BTreeMap<u32, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        map.serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<u32, V>, D::Error> {
        BTreeMap::<String, V>::deserialize(deserializer)?
            .into_iter()
            .map(|(key, value)| {
                let id = key
                    .parse()
                    .map_err(|_| D::Error::custom(format!("rollup id {key:?} is not a u32")))?;
                Ok((id, value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GET /v1/slots/{slot}` reads back as the status the server wrote: the record arrives
    /// through `#[serde(flatten)]`, where the rollups' object keys are strings.
    #[test]
    fn a_slot_status_round_trips_with_rollup_ids_as_object_keys() {
        let rollup = |offset| RollupSlot {
            pre_root: format!("0x{:064x}", 7),
            blob_index: 0,
            offset,
            length: 296,
            da_commitment: format!("0x{:064x}", 9),
        };
        let status = SlotStatus {
            record: SlotRecord::new(
                1,
                SlotState::Settled {
                    tx: "0xab".into(),
                    block: 9,
                    gas_used: 500_000,
                },
                BTreeMap::from([(1, rollup(0)), (2, rollup(296))]),
                vec!["0x01".into()],
                5,
            ),
            proofs_received: vec![1, 2],
            aggregation: Some(AggregationInfo {
                proving_seconds: 1.5,
                proof_bytes: 1_000,
            }),
            settlement_tx: None,
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["rollups"]["2"]["offset"], 296, "{json}");
        assert_eq!(json["state"], "settled", "{json}");
        let back: SlotStatus = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, status);

        let mut bad = json;
        bad["rollups"]["x"] = bad["rollups"]["1"].clone();
        let err = serde_json::from_value::<SlotStatus>(bad).unwrap_err();
        assert!(err.to_string().contains("rollup id \"x\""), "{err}");
    }
}
