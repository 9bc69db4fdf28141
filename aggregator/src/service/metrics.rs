//! The aggregator's metrics (base units in the names), recorded through the `metrics` facade;
//! `lockstep aggregator run` exports them for Prometheus on `/metrics`.
//!
//! | name | kind | labels | meaning |
//! |---|---|---|---|
//! | `lockstep_proofs_received_total` | counter | `rollup` | rollup proofs accepted |
//! | `lockstep_proofs_rejected_total` | counter | `reason` | submissions refused, by error code |
//! | `lockstep_slots_entered_total` | counter | `state` | slots that entered each state |
//! | `lockstep_slot_stage_seconds` | histogram | `stage` | time a slot spent in each state it left |
//! | `lockstep_proof_verification_seconds` | histogram | | native verification of one submitted proof |
//! | `lockstep_slot_failures_total` | counter | `stage` | slots that failed, by the stage they failed in |
//! | `lockstep_settlement_gas_used` | histogram | | gas of each settlement transaction (calldata and proof verification included) |
//! | `lockstep_pipeline_queue_depth` | gauge | | slots waiting for the pipeline (all proofs in, not yet settled) |

use super::slots::SlotRecord;

/// A proof from `rollup` was accepted.
pub fn proof_received(rollup: u32) {
    metrics::counter!("lockstep_proofs_received_total", "rollup" => rollup.to_string())
        .increment(1);
}

/// A submission was refused with error code `reason`.
pub fn proof_rejected(reason: &'static str) {
    metrics::counter!("lockstep_proofs_rejected_total", "reason" => reason).increment(1);
}

/// Native verification of a submitted proof took `seconds`.
pub fn proof_verified(seconds: f64) {
    metrics::histogram!("lockstep_proof_verification_seconds").record(seconds);
}

/// A slot entered `state`.
pub fn slot_entered(state: &'static str) {
    metrics::counter!("lockstep_slots_entered_total", "state" => state).increment(1);
}

/// A slot just changed state: count the new state and record how long it spent in the one it
/// left.
pub fn slot_changed(record: &SlotRecord) {
    slot_entered(record.state.name());
    if let [.., left, entered] = record.history.as_slice() {
        metrics::histogram!("lockstep_slot_stage_seconds", "stage" => left.state.clone())
            .record(entered.at_ms.saturating_sub(left.at_ms) as f64 / 1000.0);
    }
}

/// A slot failed in `stage`.
pub fn slot_failed(stage: &'static str) {
    metrics::counter!("lockstep_slot_failures_total", "stage" => stage).increment(1);
}

/// A settlement transaction used `gas`.
pub fn settlement_gas(gas: u64) {
    metrics::histogram!("lockstep_settlement_gas_used").record(gas as f64);
}

/// `depth` slots wait for the pipeline.
pub fn pipeline_queue(depth: usize) {
    metrics::gauge!("lockstep_pipeline_queue_depth").set(depth as f64);
}
