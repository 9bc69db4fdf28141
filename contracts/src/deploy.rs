//! Deploys Lockstep's L1 contracts and records where they went.

use std::path::Path;

use alloy::{
    network::Ethereum,
    primitives::{Address, TxHash},
    providers::{DynProvider, PendingTransactionBuilder, Provider},
    rpc::types::TransactionReceipt,
};
use serde::{Deserialize, Serialize};

use crate::{bindings::RollupRegistry, Error, Result};

/// Where Lockstep's contracts live on one L1, as written to the deployment file that the
/// aggregator, adapters and CLI read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Chain id of the L1.
    pub chain_id: u64,
    /// The rollup registry.
    pub registry: Address,
    /// Transaction that deployed the registry.
    pub registry_tx: TxHash,
    /// L1 block the registry was deployed in (scan events from here).
    pub deployed_at_block: u64,
    /// Gas used by all deployment transactions.
    pub gas_used: u64,
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

/// Deploys every Lockstep contract from the provider's default signer.
pub async fn deploy_all(provider: &DynProvider) -> Result<Deployment> {
    let chain_id = provider.get_chain_id().await?;
    let pending = RollupRegistry::deploy_builder(provider.clone())
        .send()
        .await?;
    let (receipt, registry) = confirm_deployment(pending, "deploy RollupRegistry").await?;
    Ok(Deployment {
        chain_id,
        registry,
        registry_tx: receipt.transaction_hash,
        deployed_at_block: receipt.block_number.unwrap_or_default(),
        gas_used: receipt.gas_used,
    })
}

/// Waits for a deployment's receipt; fails if it reverted or created nothing.
pub(crate) async fn confirm_deployment(
    pending: PendingTransactionBuilder<Ethereum>,
    what: &'static str,
) -> Result<(TransactionReceipt, Address)> {
    let receipt = pending
        .get_receipt()
        .await
        .map_err(|err| Error::Transaction {
            what,
            reason: err.to_string(),
        })?;
    if !receipt.status() {
        return Err(Error::Transaction {
            what,
            reason: format!(
                "reverted in {} (code over the size limit?)",
                receipt.transaction_hash
            ),
        });
    }
    let address = receipt.contract_address.ok_or_else(|| Error::Transaction {
        what,
        reason: "receipt has no contract address".into(),
    })?;
    Ok((receipt, address))
}
