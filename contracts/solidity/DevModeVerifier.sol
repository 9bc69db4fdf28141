// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title DevModeVerifier
/// @notice DEV MODE ONLY — PROVES NOTHING. A stand-in for the generated aggregation verifier,
/// for `lockstep … --dev` runs and tests of the slot pipeline on a local devnet.
///
/// `LockstepSettlement` calls its verifier with `abi.encodePacked(inputs, proof)` and settles
/// when the call succeeds. This contract succeeds for any inputs whose proof is the dev-mode
/// marker (`DEV_MODE_PROOF`, what the aggregator's dev-mode stand-in posts instead of a proof),
/// and only on the local development chain id 31337: it cannot be deployed anywhere else, and a
/// copy of its code on another chain refuses every call.
contract DevModeVerifier {
    /// @notice The only chain it works on: anvil's (and Hardhat's) default chain id.
    uint256 public constant DEV_CHAIN_ID = 31337;
    /// @notice The proof bytes a dev-mode aggregation posts: a marker, not a proof.
    bytes32 public constant DEV_MODE_PROOF = "LOCKSTEP DEV MODE: NOT A PROOF";

    /// @notice Deployed or called on a chain that is not the local development chain.
    error NotADevChain(uint256 chainId);
    /// @notice The call does not end with the dev-mode marker (a real proof, or nothing).
    error NotADevModeProof();

    constructor() {
        if (block.chainid != DEV_CHAIN_ID) revert NotADevChain(block.chainid);
    }

    /// @notice Accepts `inputs ‖ DEV_MODE_PROOF` on the development chain; reverts otherwise.
    fallback(bytes calldata input) external returns (bytes memory) {
        if (block.chainid != DEV_CHAIN_ID) revert NotADevChain(block.chainid);
        if (input.length < 32 || bytes32(input[input.length - 32:]) != DEV_MODE_PROOF) {
            revert NotADevModeProof();
        }
        return "";
    }
}
