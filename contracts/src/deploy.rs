//! Deploys Lockstep's L1 contracts and records where they went.

use std::path::Path;

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, TxHash},
    providers::{DynProvider, Provider},
};
use serde::{Deserialize, Serialize};

use crate::{bindings::LockstepSettlement, provider::confirm_deployment, verifier, Error, Result};

/// Where Lockstep's contracts live on one L1, as written to the deployment file that the
/// aggregator, adapters and CLI read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Chain id of the L1.
    pub chain_id: u64,
    /// `LockstepSettlement`, which is also the rollup registry (the cross-rollup call domain
    /// is `chain_id + settlement · 2^64`).
    pub settlement: Address,
    /// Transaction that deployed the settlement contract.
    pub settlement_tx: TxHash,
    /// L1 block the settlement contract was deployed in (scan events from here).
    pub deployed_at_block: u64,
    /// L1 timestamp of slot 0 by the contract's clock.
    pub genesis_timestamp: u64,
    /// Seconds per slot.
    pub seconds_per_slot: u64,
    /// How many slots old a slot may be when settled.
    pub max_slot_age: u64,
    /// The aggregation verifiers, one per number of rollups.
    pub verifiers: Vec<DeployedVerifierEntry>,
    /// Gas used by all deployment transactions.
    pub gas_used: u64,
}

/// One generated verifier in the deployment file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployedVerifierEntry {
    /// How many rollup proofs the aggregations it verifies hold.
    pub num_rollups: u32,
    /// Its address.
    pub address: Address,
    /// Runtime code size in bytes (at most 24,576).
    pub runtime_size: usize,
}

/// What to deploy.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// L1 timestamp of slot 0; `None` takes the latest block's timestamp.
    pub genesis_timestamp: Option<u64>,
    /// Seconds per slot (12 on Ethereum).
    pub seconds_per_slot: u64,
    /// How many slots old a slot may be when settled. Realtime proving wants a small value;
    /// a CPU-only cluster whose proofs take minutes needs room.
    pub max_slot_age: u64,
    /// Creation code of the generated aggregation verifier for each number of rollups.
    pub verifiers: Vec<(u32, Vec<u8>)>,
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            genesis_timestamp: None,
            seconds_per_slot: 12,
            max_slot_age: 300,
            verifiers: Vec::new(),
        }
    }
}

impl Deployment {
    /// Writes the deployment as pretty JSON, atomically (write then rename).
    pub fn write_to(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("serializable");
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json + "\n")
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|err| Error::DeploymentFile {
                path: path.into(),
                reason: err.to_string(),
            })
    }

    /// Reads a deployment file written by [`Self::write_to`].
    pub fn read_from(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|err| Error::DeploymentFile {
            path: path.into(),
            reason: err.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|err| Error::DeploymentFile {
            path: path.into(),
            reason: format!("not a deployment file: {err}"),
        })
    }
}

/// Deploys every Lockstep contract from the provider's default signer: the generated
/// verifiers, then `LockstepSettlement` pointing at them.
pub async fn deploy_all(provider: &DynProvider, config: &DeployConfig) -> Result<Deployment> {
    if config.seconds_per_slot == 0 {
        return Err(Error::DeployConfig(
            "seconds_per_slot must be positive".into(),
        ));
    }
    let chain_id = provider.get_chain_id().await?;
    let genesis_timestamp = match config.genesis_timestamp {
        Some(t) => t,
        None => latest_timestamp(provider).await?,
    };
    let mut gas_used = 0;
    let mut verifiers = Vec::with_capacity(config.verifiers.len());
    for (num_rollups, code) in &config.verifiers {
        let deployed = verifier::deploy(provider, code.clone()).await?;
        if deployed.runtime_size > verifier::MAX_RUNTIME_CODE_SIZE {
            return Err(Error::DeployConfig(format!(
                "the verifier for {num_rollups} rollups has {} bytes of runtime code, over the \
                 EIP-170 limit of {}",
                deployed.runtime_size,
                verifier::MAX_RUNTIME_CODE_SIZE
            )));
        }
        gas_used += deployed.deploy_gas;
        verifiers.push(DeployedVerifierEntry {
            num_rollups: *num_rollups,
            address: deployed.address,
            runtime_size: deployed.runtime_size,
        });
    }
    let configs = verifiers
        .iter()
        .map(|v| LockstepSettlement::VerifierConfig {
            numRollups: v.num_rollups,
            verifier: v.address,
        })
        .collect();
    let pending = LockstepSettlement::deploy_builder(
        provider.clone(),
        genesis_timestamp,
        config.seconds_per_slot,
        config.max_slot_age,
        configs,
    )
    .send()
    .await
    .map_err(crate::settlement::refused)?;
    let (receipt, settlement) = confirm_deployment(pending, "deploy LockstepSettlement").await?;
    Ok(Deployment {
        chain_id,
        settlement,
        settlement_tx: receipt.transaction_hash,
        deployed_at_block: receipt.block_number.unwrap_or_default(),
        genesis_timestamp,
        seconds_per_slot: config.seconds_per_slot,
        max_slot_age: config.max_slot_age,
        verifiers,
        gas_used: gas_used + receipt.gas_used,
    })
}

/// Timestamp of the latest L1 block.
pub async fn latest_timestamp(provider: &DynProvider) -> Result<u64> {
    let block = provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await?
        .ok_or_else(|| Error::Transaction {
            what: "read the latest block",
            reason: "the node returned no block".into(),
        })?;
    Ok(block.header.timestamp)
}
