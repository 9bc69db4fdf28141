//! Settling a slot on L1: the encodings `LockstepSettlement` rebuilds the aggregation proof's
//! public inputs with, the slot's blobs, and the type-3 settlement transaction.
//!
//! Every function here mirrors one in `contracts/solidity/LockstepSettlement.sol`; the
//! integration tests check them against the deployed contract.

use alloy::{
    consensus::Blob,
    eips::{
        eip4844::{
            env_settings::EnvKzgSettings, BlobTransactionSidecar, BYTES_PER_BLOB,
            FIELD_ELEMENTS_PER_BLOB,
        },
        eip7594::BlobTransactionSidecarEip7594,
    },
    network::{
        EthereumWallet, NetworkTransactionBuilder, TransactionBuilder, TransactionBuilder4844,
    },
    primitives::{keccak256, Address, Bytes, TxHash, B256, I256, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionReceipt,
    sol_types::SolEvent,
};

pub use crate::bindings::LockstepSettlement::{Claim, Withdrawal};
use crate::{
    bindings::{LockstepSettlement, SNARK_SCALAR_FIELD},
    Error, Result,
};

/// Payload bytes carried by one field element of a blob (its first byte stays zero so the
/// element is below the BLS12-381 scalar modulus).
pub const PAYLOAD_BYTES_PER_ELEMENT: usize = 31;
/// Payload bytes one blob carries: 4096 · 31 = 126,976.
pub const PAYLOAD_BYTES_PER_BLOB: usize =
    FIELD_ELEMENTS_PER_BLOB as usize * PAYLOAD_BYTES_PER_ELEMENT;
/// Blobs one settlement transaction may carry (the per-transaction limit since Osaka).
pub const MAX_BLOBS_PER_TX: usize = 6;
/// Words of the KZG accumulator at the head of the aggregation instances.
pub const ACCUMULATOR_WORDS: usize = 12;

/// The cross-rollup call domain of a cluster: `chain_id + registry · 2^64`.
pub fn domain(chain_id: u64, registry: Address) -> U256 {
    U256::from(chain_id) + (U256::from_be_slice(registry.as_slice()) << 64)
}

/// DA commitment v1 of a rollup's block data: `keccak256(versioned_hash ‖ u32 offset ‖ u32
/// length) mod p`, big-endian.
pub fn da_commitment(versioned_hash: B256, offset: u32, length: u32) -> U256 {
    let mut packed = [0u8; 40];
    packed[..32].copy_from_slice(versioned_hash.as_slice());
    packed[32..36].copy_from_slice(&offset.to_be_bytes());
    packed[36..].copy_from_slice(&length.to_be_bytes());
    U256::from_be_bytes(keccak256(packed).0).reduce_mod(SNARK_SCALAR_FIELD)
}

/// Withdrawal digest v1 (a rollup's `l1_digest` public input): 0 for none, else
/// `keccak256(recipient_0 ‖ amount_0 ‖ …) mod p` with 20-byte recipients and 32-byte amounts.
pub fn withdrawal_digest(withdrawals: &[Withdrawal]) -> U256 {
    if withdrawals.is_empty() {
        return U256::ZERO;
    }
    let mut packed = Vec::with_capacity(52 * withdrawals.len());
    for w in withdrawals {
        packed.extend_from_slice(w.recipient.as_slice());
        packed.extend_from_slice(&w.amount.to_be_bytes::<32>());
    }
    U256::from_be_bytes(keccak256(packed).0).reduce_mod(SNARK_SCALAR_FIELD)
}

/// An ETH delta as the field element a proof exposes: `d` if `d ≥ 0`, else `p − |d|`.
pub fn eth_delta_to_field(delta: i128) -> U256 {
    let magnitude = U256::from(delta.unsigned_abs());
    if delta >= 0 {
        magnitude
    } else {
        SNARK_SCALAR_FIELD - magnitude
    }
}

/// The `executionDigest` of `SlotSettled`: keccak256 of the public inputs after the
/// accumulator, each a 32-byte big-endian word.
pub fn execution_digest(settled_words: &[U256]) -> B256 {
    let bytes: Vec<u8> = settled_words
        .iter()
        .flat_map(|w| w.to_be_bytes::<32>())
        .collect();
    keccak256(bytes)
}

/// A claim for one rollup, with its delta and withdrawals, whose block data sits at `data`.
pub fn claim(
    rollup_id: u32,
    pre_root: U256,
    post_root: U256,
    data: DataRef,
    eth_delta: i128,
    withdrawals: Vec<Withdrawal>,
) -> Claim {
    Claim {
        rollupId: rollup_id,
        preRoot: pre_root.into(),
        postRoot: post_root.into(),
        blobIndex: data.blob_index,
        dataOffset: data.offset,
        dataLength: data.length,
        ethDelta: I256::try_from(eth_delta).expect("i128 fits i256"),
        withdrawals,
    }
}

/// Where one rollup's block data sits in the slot's blobs: `length` bytes starting at byte
/// `offset` of blob `blob_index`'s payload, running on into the following blobs if needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRef {
    /// Index of the blob (in the transaction) the data starts in.
    pub blob_index: u8,
    /// Byte offset in that blob's payload.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
}

/// Which sidecar format a node expects: EIP-4844 blob proofs (Cancun, Prague) or EIP-7594 cell
/// proofs (Osaka and later, and anvil's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SidecarFormat {
    /// One KZG proof per blob.
    Eip4844,
    /// Cell proofs (PeerDAS).
    #[default]
    Eip7594,
}

/// The slot's data payload: every rollup's block data, one after the other, spread over as
/// many blobs as it needs (31 payload bytes per field element).
#[derive(Debug, Clone, Default)]
pub struct SlotData {
    payload: Vec<u8>,
}

impl SlotData {
    /// An empty payload.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one rollup's block data and says where it went.
    pub fn push(&mut self, data: &[u8]) -> Result<DataRef> {
        let start = self.payload.len();
        let end = start + data.len();
        if end > MAX_BLOBS_PER_TX * PAYLOAD_BYTES_PER_BLOB {
            return Err(Error::BlobPayload(format!(
                "{end} bytes do not fit {MAX_BLOBS_PER_TX} blobs of {PAYLOAD_BYTES_PER_BLOB} bytes"
            )));
        }
        self.payload.extend_from_slice(data);
        Ok(DataRef {
            blob_index: (start / PAYLOAD_BYTES_PER_BLOB) as u8,
            offset: (start % PAYLOAD_BYTES_PER_BLOB) as u32,
            length: data.len() as u32,
        })
    }

    /// The payload so far.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload encoded into blobs (at least one, even for an empty payload).
    pub fn blobs(&self) -> Vec<Blob> {
        let count = self.payload.len().div_ceil(PAYLOAD_BYTES_PER_BLOB).max(1);
        (0..count)
            .map(|i| {
                let start = i * PAYLOAD_BYTES_PER_BLOB;
                let end = (start + PAYLOAD_BYTES_PER_BLOB).min(self.payload.len());
                encode_blob(&self.payload[start..end])
            })
            .collect()
    }

    /// The blobs with their KZG commitments and proofs, in the format the node expects.
    pub fn sidecar(&self, format: SidecarFormat) -> Result<BlobSidecar> {
        let blobs = self.blobs();
        let kzg = |err: alloy::eips::eip4844::c_kzg::Error| Error::BlobPayload(err.to_string());
        Ok(match format {
            SidecarFormat::Eip4844 => BlobSidecar::Eip4844(
                BlobTransactionSidecar::try_from_blobs_with_settings(
                    blobs,
                    EnvKzgSettings::Default.get(),
                )
                .map_err(kzg)?,
            ),
            SidecarFormat::Eip7594 => BlobSidecar::Eip7594(
                BlobTransactionSidecarEip7594::try_from_blobs(blobs).map_err(kzg)?,
            ),
        })
    }
}

/// A blob sidecar in either format.
#[derive(Debug, Clone)]
pub enum BlobSidecar {
    /// EIP-4844.
    Eip4844(BlobTransactionSidecar),
    /// EIP-7594.
    Eip7594(BlobTransactionSidecarEip7594),
}

impl BlobSidecar {
    /// `call` carrying these blobs.
    pub fn attach<P: Provider, D: alloy::contract::CallDecoder>(
        self,
        call: alloy::contract::CallBuilder<P, D>,
    ) -> alloy::contract::CallBuilder<P, D> {
        match self {
            Self::Eip4844(s) => call.sidecar(s),
            Self::Eip7594(s) => call.sidecar_7594(s),
        }
    }

    /// The versioned hashes `blobhash(i)` returns in the settlement transaction.
    pub fn versioned_hashes(&self) -> Vec<B256> {
        match self {
            Self::Eip4844(s) => s.versioned_hashes().collect(),
            Self::Eip7594(s) => s.versioned_hashes().collect(),
        }
    }
}

fn encode_blob(chunk: &[u8]) -> Blob {
    debug_assert!(chunk.len() <= PAYLOAD_BYTES_PER_BLOB);
    let mut blob = Blob::ZERO;
    for (i, piece) in chunk.chunks(PAYLOAD_BYTES_PER_ELEMENT).enumerate() {
        let at = i * 32 + 1;
        blob[at..at + piece.len()].copy_from_slice(piece);
    }
    blob
}

/// Reads a rollup's block data back out of the blobs, as an indexer or a rollup node would.
pub fn read_data(blobs: &[Blob], data: DataRef) -> Result<Vec<u8>> {
    let start = usize::from(data.blob_index) * PAYLOAD_BYTES_PER_BLOB + data.offset as usize;
    let end = start + data.length as usize;
    if data.offset as usize >= PAYLOAD_BYTES_PER_BLOB || end > blobs.len() * PAYLOAD_BYTES_PER_BLOB
    {
        return Err(Error::BlobPayload(format!(
            "{data:?} is outside {} blobs",
            blobs.len()
        )));
    }
    let mut out = Vec::with_capacity(data.length as usize);
    for pos in start..end {
        let (blob, within) = (pos / PAYLOAD_BYTES_PER_BLOB, pos % PAYLOAD_BYTES_PER_BLOB);
        let (element, byte) = (
            within / PAYLOAD_BYTES_PER_ELEMENT,
            within % PAYLOAD_BYTES_PER_ELEMENT,
        );
        out.push(blobs[blob][element * 32 + 1 + byte]);
    }
    debug_assert!(BYTES_PER_BLOB == FIELD_ELEMENTS_PER_BLOB as usize * 32);
    Ok(out)
}

/// A settled slot, from the receipt of the settlement transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The transaction.
    pub tx: TxHash,
    /// The L1 block it landed in.
    pub block: u64,
    /// Gas used by the transaction (base cost and calldata included).
    pub gas_used: u64,
    /// Blob gas used.
    pub blob_gas_used: u64,
    /// `executionDigest` from the `SlotSettled` event.
    pub execution_digest: B256,
}

/// Sends `settle(slot, claims, accumulator, proof)` to `settlement` in one type-3 transaction
/// carrying `sidecar`, and waits for it. A refusal comes back as [`Error::SettlementRefused`]
/// with the contract's error decoded.
pub async fn settle(
    provider: &DynProvider,
    settlement: Address,
    slot: u64,
    claims: Vec<Claim>,
    accumulator: [U256; ACCUMULATOR_WORDS],
    proof: Bytes,
    sidecar: BlobSidecar,
) -> Result<Settled> {
    let contract = LockstepSettlement::new(settlement, provider.clone());
    let call = contract.settle(slot, claims, accumulator, proof);
    let call = sidecar.attach(call);
    let pending = call.send().await.map_err(refused)?;
    let receipt = pending
        .get_receipt()
        .await
        .map_err(|err| Error::Transaction {
            what: "settle",
            reason: err.to_string(),
        })?;
    settled_from_receipt(&receipt)
}

/// A settlement transaction signed but not necessarily sent: its hash is known before it
/// reaches the node, so it can be stored first and looked for after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedSettlement {
    /// Transaction hash.
    pub hash: TxHash,
    /// The network encoding (EIP-2718 envelope with the blob sidecar), what
    /// `eth_sendRawTransaction` takes.
    pub raw: Bytes,
    /// Sender nonce.
    pub nonce: u64,
    /// Gas limit it was signed with.
    pub gas_limit: u64,
}

/// Builds and signs `settle(slot, claims, accumulator, proof)` with `sidecar`, from `wallet`'s
/// default signer, without sending it.
///
/// The call is estimated first: a settlement the contract would refuse comes back as
/// [`Error::SettlementRefused`] with the contract's error decoded, and nothing is signed.
/// `provider` needs no wallet; the nonce is the sender's pending one.
#[allow(clippy::too_many_arguments)]
pub async fn sign_settlement(
    provider: &DynProvider,
    wallet: &EthereumWallet,
    settlement: Address,
    slot: u64,
    claims: Vec<Claim>,
    accumulator: [U256; ACCUMULATOR_WORDS],
    proof: Bytes,
    sidecar: BlobSidecar,
) -> Result<SignedSettlement> {
    let from =
        alloy::network::NetworkWallet::<alloy::network::Ethereum>::default_signer_address(wallet);
    let contract = LockstepSettlement::new(settlement, provider.clone());
    let call = contract.settle(slot, claims, accumulator, proof).from(from);
    let call = sidecar.attach(call);
    // Estimated on the pending block, where the transaction will run: on the latest block a
    // node that mines only on demand (anvil) would still be in the block of the previous
    // settlement and refuse with `AlreadySettledThisBlock`.
    let call = call.block(alloy::eips::BlockId::pending());
    let gas = call.estimate_gas().await.map_err(refused)?;
    let nonce = provider.get_transaction_count(from).pending().await?;
    let chain_id = provider.get_chain_id().await?;
    let fees = provider.estimate_eip1559_fees().await?;
    let blob_fee = provider.get_blob_base_fee().await?;
    let gas_limit = gas + gas / 5;
    let mut request = call.into_transaction_request();
    request.set_nonce(nonce);
    request.set_chain_id(chain_id);
    request.set_gas_limit(gas_limit);
    request.set_max_fee_per_gas(fees.max_fee_per_gas);
    request.set_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
    request.set_max_fee_per_blob_gas(blob_fee.saturating_mul(2).max(1));
    let envelope = request
        .build(wallet)
        .await
        .map_err(|err| Error::Transaction {
            what: "settle (signing)",
            reason: err.to_string(),
        })?;
    let raw = alloy::eips::eip2718::Encodable2718::encoded_2718(&envelope);
    Ok(SignedSettlement {
        hash: *envelope.tx_hash(),
        raw: raw.into(),
        nonce,
        gas_limit,
    })
}

/// Sends a signed transaction's raw bytes. A node that already has it (a resend after a
/// restart) is not an error.
pub async fn send_raw(provider: &DynProvider, raw: &[u8]) -> Result<()> {
    match provider.send_raw_transaction(raw).await {
        Ok(_) => Ok(()),
        Err(err) if err.to_string().to_lowercase().contains("already") => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// What a settlement transaction's receipt says, once it is mined.
pub fn settled_from_receipt(receipt: &TransactionReceipt) -> Result<Settled> {
    if !receipt.status() {
        return Err(Error::Transaction {
            what: "settle",
            reason: format!("reverted in {}", receipt.transaction_hash),
        });
    }
    let event = receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| LockstepSettlement::SlotSettled::decode_log(&log.inner).ok())
        .ok_or_else(|| Error::Transaction {
            what: "settle",
            reason: "no SlotSettled event in the receipt".into(),
        })?;
    Ok(Settled {
        tx: receipt.transaction_hash,
        block: receipt.block_number.unwrap_or_default(),
        gas_used: receipt.gas_used,
        blob_gas_used: receipt.blob_gas_used.unwrap_or_default(),
        execution_digest: event.executionDigest,
    })
}

/// The first slot `settlement` has not settled (every slot below it is settled or skipped).
pub async fn next_slot(provider: &DynProvider, settlement: Address) -> Result<u64> {
    Ok(LockstepSettlement::new(settlement, provider.clone())
        .nextSlot()
        .call()
        .await?)
}

/// Turns a failed call into [`Error::SettlementRefused`] naming the contract's error.
pub fn refused(err: alloy::contract::Error) -> Error {
    match err.as_decoded_interface_error::<LockstepSettlement::LockstepSettlementErrors>() {
        Some(decoded) => Error::SettlementRefused(format!("{decoded:?}")),
        None => Error::Contract(err),
    }
}

/// The current root and ETH balance of a rollup.
pub async fn rollup_state(
    provider: &DynProvider,
    settlement: Address,
    rollup_id: u32,
) -> Result<(U256, U256)> {
    let r = LockstepSettlement::new(settlement, provider.clone())
        .getRollup(rollup_id)
        .call()
        .await?;
    Ok((r.stateRoot.into(), r.ethBalance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips_through_blobs_across_a_boundary() {
        let mut slot = SlotData::new();
        let first = vec![7u8; PAYLOAD_BYTES_PER_BLOB - 10];
        let second: Vec<u8> = (0..50u8).collect();
        let a = slot.push(&first).unwrap();
        let b = slot.push(&second).unwrap();
        assert_eq!((a.blob_index, a.offset), (0, 0));
        assert_eq!(
            (b.blob_index, b.offset, b.length),
            (0, PAYLOAD_BYTES_PER_BLOB as u32 - 10, 50)
        );
        let blobs = slot.blobs();
        assert_eq!(blobs.len(), 2);
        assert_eq!(read_data(&blobs, a).unwrap(), first);
        assert_eq!(read_data(&blobs, b).unwrap(), second);
        // Every element's top byte is zero: a valid BLS12-381 scalar.
        assert!(blobs
            .iter()
            .all(|blob| blob.chunks(32).all(|element| element[0] == 0)));
        let outside = DataRef {
            blob_index: 1,
            offset: 0,
            length: PAYLOAD_BYTES_PER_BLOB as u32 + 1,
        };
        assert!(read_data(&blobs, outside).is_err());
    }

    #[test]
    fn oversize_payload_is_refused() {
        let mut slot = SlotData::new();
        slot.push(&vec![1; MAX_BLOBS_PER_TX * PAYLOAD_BYTES_PER_BLOB])
            .unwrap();
        let err = slot.push(&[1]).unwrap_err().to_string();
        assert!(err.contains("do not fit"), "{err}");
    }

    #[test]
    fn delta_and_domain_encodings() {
        assert_eq!(eth_delta_to_field(5), U256::from(5));
        assert_eq!(eth_delta_to_field(-1), SNARK_SCALAR_FIELD - U256::from(1));
        assert_eq!(
            eth_delta_to_field(i128::MIN),
            SNARK_SCALAR_FIELD - (U256::from(1) << 127)
        );
        let registry = Address::repeat_byte(0x11);
        let d = domain(31337, registry);
        assert_eq!(d & U256::from(u64::MAX), U256::from(31337));
        assert_eq!(d >> 64, U256::from_be_slice(registry.as_slice()));
        assert_eq!(withdrawal_digest(&[]), U256::ZERO);
        assert!(da_commitment(B256::ZERO, 0, 0) < SNARK_SCALAR_FIELD);
        assert_ne!(
            da_commitment(B256::ZERO, 0, 1),
            da_commitment(B256::ZERO, 1, 0)
        );
    }
}
