//! `alloy::sol!` bindings, generated from the committed artifacts in `artifacts/`.
//!
//! `scripts/build-contracts.sh` refreshes the artifacts from the Solidity sources; CI fails
//! if they drift.

#![allow(missing_docs)]

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    RollupRegistry,
    "artifacts/RollupRegistry.json"
);

/// In a module of its own: its ABI names the `RollupRegistry.Rollup` struct it inherits, which
/// would clash with the `RollupRegistry` bindings above.
mod settlement_abi {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug, PartialEq, Eq)]
        LockstepSettlement,
        "artifacts/LockstepSettlement.json"
    );
}
pub use settlement_abi::LockstepSettlement;

/// Order of the BN254 scalar field, the bound on every public input (vk digests, roots).
pub const SNARK_SCALAR_FIELD: alloy::primitives::U256 = alloy::primitives::uint!(
    21888242871839275222246405745257275088548364400416034343698204186575808495617_U256
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    DevModeVerifier,
    "artifacts/DevModeVerifier.json"
);
