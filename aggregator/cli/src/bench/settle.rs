//! `lockstep bench settle`: what `LockstepSettlement.settle` costs around the proof check, for
//! 1, 2, 4 … rollups, measured as real type-3 transactions on anvil.
//!
//! The verifier is the accept-all stand-in (`verifier::ACCEPT_ALL_STAND_IN`), so the figures are
//! the settlement's own cost: calldata, slot and claim checks, storage reads and writes, blob
//! hashes, the event, and the call into the verifier. A real aggregation verifier's execution
//! comes on top (`lockstep bench aggregate` measures it).

use alloy::{
    primitives::{Bytes, B256, U256},
    sol_types::SolCall,
};
use eyre::{Context, Result};
use lockstep_contracts::{
    bindings::LockstepSettlement,
    deploy::{deploy_all, latest_timestamp, DeployConfig},
    devnet::{Devnet, DevnetConfig},
    settlement::{self, claim, SidecarFormat, SlotData},
    verifier::ACCEPT_ALL_STAND_IN,
};
use serde::Serialize;
use tracing::info;

use super::print_json;

/// Arguments of `lockstep bench settle`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchSettleArgs {
    /// Numbers of rollups to settle, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub rollups: Vec<usize>,
    /// Bytes of stand-in proof in each call (a real two-rollup proof has 2,912).
    #[arg(long, default_value_t = 0)]
    pub proof_bytes: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One settlement transaction.
#[derive(Debug, Clone, Serialize)]
pub struct SettleResult {
    /// Rollups in the slot.
    pub rollups: usize,
    /// Whether ETH moved between the rollups (balance reads and writes).
    pub value_moves: bool,
    /// Gas of the whole transaction (21,000 base and calldata included).
    pub gas_used: u64,
    /// Blob gas (one blob).
    pub blob_gas_used: u64,
    /// Calldata bytes of the `settle` call.
    pub calldata_bytes: usize,
}

/// The report of `lockstep bench settle`.
#[derive(Debug, Clone, Serialize)]
pub struct SettleReport {
    /// Bytes of stand-in proof sent with every settlement.
    pub proof_bytes: usize,
    /// One row per (rollups, value moves).
    pub results: Vec<SettleResult>,
}

/// Deploys the settlement contract with stand-in verifiers and settles one slot per row.
pub async fn run(args: BenchSettleArgs) -> Result<SettleReport> {
    let mut sizes = args.rollups.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let max = *sizes
        .last()
        .ok_or_else(|| eyre::eyre!("--rollups is empty"))?;
    eyre::ensure!(
        sizes[0] >= 1 && max <= 64,
        "--rollups takes sizes from 1 to 64"
    );

    let devnet = Devnet::spawn(DevnetConfig::default())
        .await
        .wrap_err("starting anvil")?;
    let provider = devnet.provider();
    // One-second slots reaching far back: every row settles its own, later slot at once.
    let now = latest_timestamp(&provider).await?;
    let deployment = deploy_all(
        &provider,
        &DeployConfig {
            genesis_timestamp: Some(now.saturating_sub(100_000)),
            seconds_per_slot: 1,
            max_slot_age: 100_000,
            verifiers: sizes
                .iter()
                .map(|&n| (n as u32, ACCEPT_ALL_STAND_IN.to_vec()))
                .collect(),
        },
    )
    .await
    .wrap_err("deploying")?;
    let contract = LockstepSettlement::new(deployment.settlement, provider.clone());
    for id in 1..=max as u32 {
        let receipt = contract
            .createRollup(
                devnet.dev_address(),
                B256::from(U256::from(0xa000 + id)),
                B256::from(U256::from(id)),
                false,
                false,
            )
            .send()
            .await?
            .get_receipt()
            .await?;
        eyre::ensure!(receipt.status(), "createRollup reverted");
        let receipt = contract
            .deposit(id, devnet.dev_address())
            .value(U256::from(1_000_000))
            .send()
            .await?
            .get_receipt()
            .await?;
        eyre::ensure!(receipt.status(), "deposit reverted");
    }

    // Non-zero bytes, as a real proof's are (16 gas each in calldata).
    let proof: Vec<u8> = (0..args.proof_bytes).map(|i| (i % 255) as u8 + 1).collect();
    // Recent slots, one per row, all in the past.
    let mut slot = contract.currentSlot().call().await? - 100;
    let mut results = Vec::new();
    for &n in &sizes {
        for value_moves in [false, true] {
            if value_moves && n == 1 {
                continue;
            }
            let mut data = SlotData::new();
            let mut claims = Vec::with_capacity(n);
            for id in 1..=n as u32 {
                let at = data.push(&[id as u8; 1000])?;
                let (root, _) =
                    settlement::rollup_state(&provider, deployment.settlement, id).await?;
                // Rollup 1 pays 1 wei to each of the others.
                let delta = match (value_moves, id) {
                    (false, _) => 0,
                    (true, 1) => -(n as i128 - 1),
                    (true, _) => 1,
                };
                claims.push(claim(id, root, root + U256::from(1), at, delta, vec![]));
            }
            let calldata_bytes = LockstepSettlement::settleCall {
                slot,
                claims: claims.clone(),
                accumulator: [U256::from(u64::MAX); 12],
                proof: Bytes::from(proof.clone()),
            }
            .abi_encode()
            .len();
            let settled = settlement::settle(
                &provider,
                deployment.settlement,
                slot,
                claims,
                [U256::from(u64::MAX); 12],
                Bytes::from(proof.clone()),
                data.sidecar(SidecarFormat::default())?,
            )
            .await
            .wrap_err_with(|| format!("settling {n} rollups"))?;
            info!(rollups = n, value_moves, gas = settled.gas_used, "settled");
            results.push(SettleResult {
                rollups: n,
                value_moves,
                gas_used: settled.gas_used,
                blob_gas_used: settled.blob_gas_used,
                calldata_bytes,
            });
            slot += 1;
        }
    }
    Ok(SettleReport {
        proof_bytes: args.proof_bytes,
        results,
    })
}

/// Prints a report as JSON or as a table.
pub fn print(report: &SettleReport, json: bool) {
    if json {
        return print_json(report);
    }
    println!(
        "settle with the accept-all stand-in verifier, {} bytes of proof",
        report.proof_bytes
    );
    println!(
        "{:>7} {:>12} {:>10} {:>10} {:>14}",
        "rollups", "value moves", "gas", "blob gas", "calldata bytes"
    );
    for r in &report.results {
        println!(
            "{:>7} {:>12} {:>10} {:>10} {:>14}",
            r.rollups,
            if r.value_moves { "yes" } else { "no" },
            r.gas_used,
            r.blob_gas_used,
            r.calldata_bytes
        );
    }
}
