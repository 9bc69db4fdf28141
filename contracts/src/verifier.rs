//! The generated aggregation verifier on L1: compile, deploy, call.
//!
//! The verifier's Solidity comes from `lockstep_circuits::aggregation::evm_verifier_source`
//! (snark-verifier's generator, `pragma solidity 0.8.19`). It is a contract with only a fallback:
//! calldata is the instance words followed by the proof; it returns nothing on success and
//! reverts on an invalid proof.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, Bytes, TxHash},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
};

use crate::{Error, Result};

/// EIP-170: the largest runtime code a contract may have.
pub const MAX_RUNTIME_CODE_SIZE: usize = 24_576;

/// Creation code of `DevModeVerifier`: **dev mode only, proves nothing.** A stand-in for the
/// generated verifier that accepts any inputs followed by its `DEV_MODE_PROOF` marker, and only
/// on chain 31337 (its constructor refuses any other chain, and so does every call). For
/// `--dev` runs and tests of the slot pipeline; never a production verifier.
pub fn dev_mode_verifier_code() -> Vec<u8> {
    crate::bindings::DevModeVerifier::BYTECODE.to_vec()
}

/// The solc for generated verifiers: `$LOCKSTEP_VERIFIER_SOLC`, else `solc-0.8.19` on PATH
/// (scripts/setup.sh installs it).
pub fn default_solc() -> PathBuf {
    std::env::var_os("LOCKSTEP_VERIFIER_SOLC").map_or_else(|| "solc-0.8.19".into(), PathBuf::from)
}

/// Compiles verifier Solidity to creation bytecode with `solc --bin -` (no optimizer: solc-js
/// runs out of memory optimizing these contracts, and the unoptimized code is what we measure).
pub fn compile(source: &str, solc: &std::path::Path) -> Result<Vec<u8>> {
    let mut child = Command::new(solc)
        .args(["--bin", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Compile(format!(
                "cannot run {}: {e} (run scripts/setup.sh)",
                solc.display()
            ))
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(source.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(Error::Compile(format!(
            "{} failed: {}",
            solc.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let hex_code = stdout.split_ascii_whitespace().last().unwrap_or_default();
    hex::decode(hex_code).map_err(|e| Error::Compile(format!("solc printed no bytecode: {e}")))
}

/// Creation code of a stand-in "verifier" that accepts any input (its runtime code is a single
/// `STOP`). For measuring what settlement costs around the verifier, and for tests of the
/// settlement contract's bookkeeping; it proves nothing, so a deployment that uses it settles
/// anything.
pub const ACCEPT_ALL_STAND_IN: [u8; 12] = [
    0x60, 0x01, 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3, 0x00,
];

/// A deployed verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeployedVerifier {
    /// Its address.
    pub address: Address,
    /// Runtime code size in bytes.
    pub runtime_size: usize,
    /// Gas used by the deployment.
    pub deploy_gas: u64,
}

/// Deploys creation bytecode and reports the runtime size.
pub async fn deploy(provider: &DynProvider, creation_code: Vec<u8>) -> Result<DeployedVerifier> {
    let tx = TransactionRequest::default().with_deploy_code(Bytes::from(creation_code));
    let pending = provider.send_transaction(tx).await?;
    let (receipt, address) =
        crate::provider::confirm_deployment(pending, "deploy verifier").await?;
    let runtime_size = provider.get_code_at(address).await?.len();
    Ok(DeployedVerifier {
        address,
        runtime_size,
        deploy_gas: receipt.gas_used,
    })
}

/// The outcome of a verification transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    /// Whether the verifier accepted the proof.
    pub accepted: bool,
    /// Gas of the whole transaction (21,000 base and calldata included).
    pub gas_used: u64,
    /// The transaction.
    pub tx: TxHash,
}

/// Sends `calldata` to the verifier in a transaction (gas fixed high enough, so that a rejected
/// proof is mined as a reverted transaction rather than refused at estimation).
pub async fn verify(
    provider: &DynProvider,
    verifier: Address,
    calldata: Vec<u8>,
) -> Result<Verification> {
    let tx = TransactionRequest::default()
        .with_to(verifier)
        .with_input(Bytes::from(calldata))
        .with_gas_limit(10_000_000);
    let receipt = provider
        .send_transaction(tx)
        .await?
        .get_receipt()
        .await
        .map_err(|e| Error::Transaction {
            what: "verify",
            reason: e.to_string(),
        })?;
    Ok(Verification {
        accepted: receipt.status(),
        gas_used: receipt.gas_used,
        tx: receipt.transaction_hash,
    })
}
