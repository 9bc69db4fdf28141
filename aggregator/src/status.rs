//! `lockstep status`: a running aggregator at a glance. Its health, every registered rollup
//! with the slots waiting for its proof, and the newest slots with where each one is: what an
//! operator checks first.
//!
//! It reads the HTTP API (`GET /health`, `GET /v1/rollups/{id}`, `GET /v1/slots?limit=N`) and
//! prints a table, or the same report as JSON with `--json`.

use std::fmt::Write as _;

use eyre::{Result, WrapErr};
use lockstep_api::{Health, RollupStatus, SlotSummary};
use serde::Serialize;

use crate::{client::ApiClient, service::slots::now_ms};

/// Arguments of `lockstep status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The aggregator's HTTP API.
    #[arg(
        long,
        env = "LOCKSTEP_AGGREGATOR",
        default_value = "http://127.0.0.1:7420"
    )]
    pub aggregator: String,
    /// How many of the newest slots to show.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub slots: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `lockstep status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The aggregator's base URL.
    pub aggregator: String,
    /// `GET /health`.
    pub health: Health,
    /// `GET /v1/rollups/{id}` of every registered rollup.
    pub rollups: Vec<RollupStatus>,
    /// `GET /v1/slots?limit=N`: the newest slots, newest first.
    pub slots: Vec<SlotSummary>,
}

/// Runs `lockstep status`.
pub async fn run(args: StatusArgs) -> Result<()> {
    let client = ApiClient::new(&args.aggregator);
    let report = fetch(&client, args.slots).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, now_ms()));
    }
    Ok(())
}

/// Reads the report from the aggregator behind `client`, with its newest `slots` slots.
pub async fn fetch(client: &ApiClient, slots: u64) -> Result<StatusReport> {
    let health = client
        .health()
        .await
        .wrap_err("reading /health (is this a Lockstep aggregator?)")?;
    let mut rollups = Vec::new();
    for id in &health.rollups {
        rollups.push(client.rollup(*id).await?);
    }
    let listed = client.slots(slots as usize).await?;
    Ok(StatusReport {
        aggregator: client.base().to_owned(),
        health,
        rollups,
        slots: listed.slots,
    })
}

/// The report as text, with ages measured from `now_ms`.
pub fn render(report: &StatusReport, now_ms: u64) -> String {
    let mut out = String::new();
    let unfinished = report.health.unfinished_slots as u64;
    let _ = writeln!(
        out,
        "aggregator {}: {}, {unfinished} unfinished slot{}",
        report.aggregator,
        report.health.status,
        plural(unfinished)
    );

    let _ = writeln!(out, "\nrollups ({})", report.rollups.len());
    let _ = writeln!(
        out,
        "  {:>6}  {:>3}  {:<20}  waiting for its proof",
        "id", "k", "vk digest"
    );
    for rollup in &report.rollups {
        let digest = rollup.vk_digest.as_str();
        let short = if digest.len() > 18 {
            format!("{}…{}", &digest[..10], &digest[digest.len() - 6..])
        } else {
            digest.to_owned()
        };
        let waiting = id_list(&rollup.slots_waiting_for_proof);
        let _ = writeln!(
            out,
            "  {:>6}  {:>3}  {:<20}  {}",
            rollup.id,
            rollup.k,
            short,
            if waiting.is_empty() {
                "-".into()
            } else {
                waiting
            }
        );
    }

    let _ = writeln!(out, "\nslots (newest {}, newest first)", report.slots.len());
    if report.slots.is_empty() {
        let _ = writeln!(out, "  none yet: a builder opens slots with POST /v1/slots");
        return out;
    }
    let _ = writeln!(
        out,
        "  {:>8}  {:<11}  {:<10}  {:>6}  {:>10}  detail",
        "slot", "state", "rollups", "proofs", "updated"
    );
    for slot in &report.slots {
        let rollups = id_list(&slot.rollups);
        let members = slot.rollups.len();
        let proofs = slot.proofs_received;
        let state = slot.state.as_str();
        let or_unknown = |value: Option<String>| value.unwrap_or_else(|| "?".into());
        let detail = match state {
            "settled" => format!(
                "tx {} in block {}, {} gas",
                or_unknown(slot.tx.clone()),
                or_unknown(slot.block.map(|b| b.to_string())),
                or_unknown(slot.gas_used.map(|g| g.to_string()))
            ),
            "failed" => format!(
                "in {}: {}",
                or_unknown(slot.stage.clone()),
                or_unknown(slot.reason.clone())
            ),
            "proving" => format!("{} of {members} proofs in", proofs),
            "aggregating" => "proving the aggregation".into(),
            "posting" => "settling on L1".into(),
            _ => String::new(),
        };
        let age = now_ms.saturating_sub(slot.updated_at_ms);
        let _ = writeln!(
            out,
            "  {:>8}  {:<11}  {:<10}  {:>6}  {:>10}  {detail}",
            slot.slot,
            state,
            rollups,
            format!("{proofs}/{members}"),
            age_text(age),
        );
    }
    out
}

/// `[1, 2, 3]` as `1,2,3`.
fn id_list<T: std::fmt::Display>(ids: &[T]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// An age in milliseconds as `42 s ago`, `7 min ago`, `3 h ago`, `2 d ago`.
fn age_text(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7_199 => format!("{} min ago", s / 60),
        7_200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

const fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn typed<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_table_shows_each_slot_where_it_is() {
        let report = StatusReport {
            aggregator: "http://127.0.0.1:7420".into(),
            health: typed(json!({
                "status": "ok", "unfinished_slots": 1, "rollups": [1, 2],
                "domain": { "chain_id": 31337, "registry": "0x5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e" },
                "builder": null
            })),
            rollups: vec![
                typed(
                    json!({ "id": 1, "k": 17, "vk_digest": "0x0123456789abcdef0123456789", "label": "", "slots_waiting_for_proof": [12] }),
                ),
                typed(
                    json!({ "id": 2, "k": 17, "vk_digest": "0xfe", "label": "", "slots_waiting_for_proof": [] }),
                ),
            ],
            slots: vec![
                typed(
                    json!({ "slot": 12, "state": "proving", "rollups": [1, 2], "proofs_received": 1, "updated_at_ms": 95_000 }),
                ),
                typed(
                    json!({ "slot": 11, "state": "failed", "rollups": [2], "proofs_received": 1, "updated_at_ms": 40_000, "stage": "posting", "reason": "L1 refused: StaleSlot" }),
                ),
                typed(
                    json!({ "slot": 10, "state": "settled", "rollups": [1], "proofs_received": 1, "updated_at_ms": 0, "tx": "0xabc", "block": 7, "gas_used": 520_000 }),
                ),
            ],
        };
        let text = render(&report, 100_000);
        assert!(text.contains("ok, 1 unfinished slot\n"), "{text}");
        assert!(text.contains("0x01234567…456789"), "{text}");
        let line = |slot: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(slot))
                .unwrap_or_default()
                .to_owned()
        };
        assert!(line("12").contains("1 of 2 proofs in"), "{text}");
        assert!(line("12").contains("5 s ago"), "{text}");
        assert!(
            line("11").contains("in posting: L1 refused: StaleSlot"),
            "{text}"
        );
        assert!(
            line("10").contains("tx 0xabc in block 7, 520000 gas"),
            "{text}"
        );
        assert!(line("10").contains("100 s ago"), "{text}");
        assert_eq!(age_text(3 * 3_600_000), "3 h ago");
    }
}
