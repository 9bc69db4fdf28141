//! L1 providers as Lockstep uses them.

use alloy::{
    network::{Ethereum, EthereumWallet},
    primitives::Address,
    providers::{
        fillers::{BlobGasFiller, GasFiller},
        DynProvider, PendingTransactionBuilder, Provider, ProviderBuilder,
    },
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
    transports::http::reqwest::Url,
};

use crate::{Error, Result};

/// A provider that signs with `signer` and fills gas, blob gas, nonce and chain id.
///
/// The nonce comes from the node (`eth_getTransactionCount(pending)`) for every transaction,
/// not from a local counter: alloy's default counter takes a nonce while it estimates gas, so a
/// call the contract refuses at estimation (a stale root, a replayed slot) would leave a gap
/// and every later transaction stuck in the node's queue. One sender, one transaction at a
/// time, waiting for each receipt, which is how Lockstep posts to L1.
pub fn signing_provider(url: Url, signer: PrivateKeySigner) -> DynProvider {
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .filler(GasFiller::default())
        .filler(BlobGasFiller::default())
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url)
        .erased()
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
