//! `lockstep status`: a running aggregator at a glance. Its health, every registered rollup
//! with the slots waiting for its proof, and the newest slots with where each one is: what an
//! operator checks first.
//!
//! It reads the HTTP API (`GET /health`, `GET /v1/rollups/{id}`, `GET /v1/slots?limit=N`) and
//! prints a table, or the same report as JSON with `--json`.

use std::fmt::Write as _;

use eyre::{bail, Result};
use serde::Serialize;
use serde_json::Value;

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
    pub health: Value,
    /// `GET /v1/rollups/{id}` of every registered rollup.
    pub rollups: Vec<Value>,
    /// `GET /v1/slots?limit=N`: the newest slots, newest first.
    pub slots: Vec<Value>,
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
    let (status, health) = client.get("/health").await?;
    if status != 200 {
        bail!(
            "{}/health answered {status}: {health} (is this a Lockstep aggregator?)",
            client.base()
        );
    }
    let mut rollups = Vec::new();
    for id in health["rollups"].as_array().into_iter().flatten() {
        let (status, rollup) = client.get(&format!("/v1/rollups/{id}")).await?;
        if status != 200 {
            bail!("GET /v1/rollups/{id} answered {status}: {rollup}");
        }
        rollups.push(rollup);
    }
    let (status, listed) = client.get(&format!("/v1/slots?limit={slots}")).await?;
    if status != 200 {
        bail!("GET /v1/slots answered {status}: {listed}");
    }
    Ok(StatusReport {
        aggregator: client.base().to_owned(),
        health,
        rollups,
        slots: listed["slots"].as_array().cloned().unwrap_or_default(),
    })
}

/// The report as text, with ages measured from `now_ms`.
pub fn render(report: &StatusReport, now_ms: u64) -> String {
    let mut out = String::new();
    let unfinished = report.health["unfinished_slots"].as_u64().unwrap_or(0);
    let _ = writeln!(
        out,
        "aggregator {}: {}, {unfinished} unfinished slot{}",
        report.aggregator,
        report.health["status"].as_str().unwrap_or("?"),
        plural(unfinished)
    );

    let _ = writeln!(out, "\nrollups ({})", report.rollups.len());
    let _ = writeln!(
        out,
        "  {:>6}  {:>3}  {:<20}  waiting for its proof",
        "id", "k", "vk digest"
    );
    for rollup in &report.rollups {
        let digest = rollup["vk_digest"].as_str().unwrap_or("?");
        let short = if digest.len() > 18 {
            format!("{}…{}", &digest[..10], &digest[digest.len() - 6..])
        } else {
            digest.to_owned()
        };
        let waiting = slot_list(&rollup["slots_waiting_for_proof"]);
        let _ = writeln!(
            out,
            "  {:>6}  {:>3}  {:<20}  {}",
            rollup["id"].to_string(),
            rollup["k"].to_string(),
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
        let rollups = slot_list(&slot["rollups"]);
        let members = slot["rollups"].as_array().map_or(0, Vec::len);
        let proofs = slot["proofs_received"].as_u64().unwrap_or(0);
        let state = slot["state"].as_str().unwrap_or("?");
        let detail = match state {
            "settled" => format!(
                "tx {} in block {}, {} gas",
                slot["tx"].as_str().unwrap_or("?"),
                slot["block"],
                slot["gas_used"]
            ),
            "failed" => format!(
                "in {}: {}",
                slot["stage"].as_str().unwrap_or("?"),
                slot["reason"].as_str().unwrap_or("?")
            ),
            "proving" => format!("{} of {members} proofs in", proofs),
            "aggregating" => "proving the aggregation".into(),
            "posting" => "settling on L1".into(),
            _ => String::new(),
        };
        let age = now_ms.saturating_sub(slot["updated_at_ms"].as_u64().unwrap_or(now_ms));
        let _ = writeln!(
            out,
            "  {:>8}  {:<11}  {:<10}  {:>6}  {:>10}  {detail}",
            slot["slot"].to_string(),
            state,
            rollups,
            format!("{proofs}/{members}"),
            age_text(age),
        );
    }
    out
}

/// `[1, 2, 3]` as `1,2,3`.
fn slot_list(values: &Value) -> String {
    values
        .as_array()
        .map(|ids| {
            ids.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
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

    #[test]
    fn the_table_shows_each_slot_where_it_is() {
        let report = StatusReport {
            aggregator: "http://127.0.0.1:7420".into(),
            health: json!({ "status": "ok", "unfinished_slots": 1, "rollups": [1, 2] }),
            rollups: vec![
                json!({ "id": 1, "k": 17, "vk_digest": "0x0123456789abcdef0123456789", "slots_waiting_for_proof": [12] }),
                json!({ "id": 2, "k": 17, "vk_digest": "0xfe", "slots_waiting_for_proof": [] }),
            ],
            slots: vec![
                json!({ "slot": 12, "state": "proving", "rollups": [1, 2], "proofs_received": 1, "updated_at_ms": 95_000 }),
                json!({ "slot": 11, "state": "failed", "rollups": [2], "proofs_received": 1, "updated_at_ms": 40_000, "stage": "posting", "reason": "L1 refused: StaleSlot" }),
                json!({ "slot": 10, "state": "settled", "rollups": [1], "proofs_received": 1, "updated_at_ms": 0, "tx": "0xabc", "block": 7, "gas_used": 520_000 }),
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
