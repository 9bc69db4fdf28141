// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {RollupRegistry} from "./RollupRegistry.sol";

/// @title LockstepSettlement
/// @notice Settles one L1 slot of a Lockstep cluster with one aggregated proof, and holds every
/// rollup's ETH.
///
/// The contract is also the cluster's `RollupRegistry`: roots, verifying-key digests and ETH
/// balances live in one storage, so a settlement reads and writes them without external calls
/// and applies all of them or none. Its address is the `registry` half of the cross-rollup
/// call domain (`chain id + address · 2^64`).
///
/// `settle` rebuilds every public input of the aggregation proof itself (aggregation layout
/// version 1, `docs/public-inputs.md`): the domain from the chain id and this address, the vk
/// digests and pre-state roots from storage, the DA commitments from the versioned hashes of
/// the transaction's blobs, the ETH deltas and withdrawal digests from the claims. Only the
/// post roots, deltas and withdrawals come from the caller, and the proof binds each of them;
/// the twelve accumulator limbs are checked by the verifier's final pairing.
contract LockstepSettlement is RollupRegistry {
    /// @notice Words of the KZG accumulator at the head of the aggregation instances.
    uint256 public constant ACCUMULATOR_WORDS = 12;
    /// @notice Words per rollup after the accumulator, domain and slot.
    uint256 public constant WORDS_PER_ROLLUP = 7;
    /// @notice Bound on an ETH delta's magnitude: `-2^127 <= delta < 2^127` (the rollup layout's).
    int256 public constant ETH_DELTA_BOUND = 2 ** 127;

    /// @notice ETH a rollup pays out to an L1 account in a settled slot.
    struct Withdrawal {
        address recipient;
        uint256 amount;
    }

    /// @notice What one rollup claims for the slot, in ascending rollup-id order.
    struct Claim {
        uint32 rollupId;
        /// Must equal the rollup's current root (a clearer error than a failed proof).
        bytes32 preRoot;
        bytes32 postRoot;
        /// The rollup's block data: `dataLength` bytes at `dataOffset` in blob `blobIndex`.
        uint8 blobIndex;
        uint32 dataOffset;
        uint32 dataLength;
        /// Net ETH into the rollup in wei, withdrawals included (they make it smaller).
        int256 ethDelta;
        Withdrawal[] withdrawals;
    }

    /// @notice The generated verifier for aggregations of `numRollups` rollup proofs.
    struct VerifierConfig {
        uint32 numRollups;
        address verifier;
    }

    /// @notice L1 timestamp of slot 0.
    uint64 public immutable genesisTimestamp;
    /// @notice Seconds per L1 slot (12 on Ethereum).
    uint64 public immutable secondsPerSlot;
    /// @notice How many slots old a slot may be when it is settled.
    uint64 public immutable maxSlotAge;

    /// @notice Verifier per number of rollups in an aggregation; fixed at deployment.
    mapping(uint256 numRollups => address) public verifierFor;

    /// @notice Lowest slot a settlement may still claim (one past the last settled slot).
    uint64 public nextSlot;
    /// @notice L1 block of the last settlement: one settlement per block at most.
    uint64 public lastSettlementBlock;
    /// @notice Deposits made so far; the index of the next one.
    uint64 public depositCount;
    /// @notice ETH credited to L1 accounts by settled withdrawals and not yet pulled.
    uint256 public totalWithdrawable;
    /// @notice ETH each L1 account may pull with `withdraw`.
    mapping(address account => uint256) public withdrawable;

    event VerifierRegistered(uint256 indexed numRollups, address verifier);
    event Deposited(
        uint32 indexed rollupId,
        address indexed from,
        address indexed recipient,
        uint256 amount,
        uint64 depositIndex
    );
    event WithdrawalCredited(uint32 indexed rollupId, address indexed recipient, uint256 amount);
    event Withdrawn(address indexed account, address indexed to, uint256 amount);
    /// @notice One slot settled. `executionDigest` is keccak256 of the proof's public inputs
    /// after the accumulator (domain, slot, then per rollup id, vk digest, pre and post root,
    /// DA commitment, ETH delta, withdrawal digest), each a 32-byte big-endian word.
    event SlotSettled(uint64 indexed slot, bytes32 indexed executionDigest, uint256 rollups);

    /// @notice Slot length zero, or genesis in the future.
    error BadSlotConfig();
    /// @notice A verifier entry names no code, zero rollups, or a size already configured.
    error BadVerifier(uint256 numRollups, address verifier);
    /// @notice `settle` got no claims.
    error NoClaims();
    /// @notice No verifier was configured for aggregations of this many rollups.
    error NoVerifier(uint256 numRollups);
    /// @notice The slot has not started yet.
    error SlotInFuture(uint64 slot, uint64 currentSlot);
    /// @notice The slot is more than `maxSlotAge` slots old.
    error SlotTooOld(uint64 slot, uint64 currentSlot, uint64 maxSlotAge);
    /// @notice This slot, or a later one, was settled already.
    error SlotAlreadySettled(uint64 slot, uint64 nextSlot);
    /// @notice A settlement already happened in this L1 block.
    error AlreadySettledThisBlock(uint256 blockNumber);
    /// @notice Claims must be in strictly ascending rollup-id order (the aggregation order).
    error ClaimsNotAscending(uint32 previous, uint32 rollupId);
    /// @notice The claim's pre root is not the rollup's current root.
    error StalePreRoot(uint32 rollupId, bytes32 currentRoot, bytes32 claimedRoot);
    /// @notice The transaction carries no blob at this index.
    error MissingBlob(uint8 blobIndex);
    /// @notice The delta is outside `[-2^127, 2^127)`.
    error EthDeltaOutOfRange(uint32 rollupId, int256 ethDelta);
    /// @notice A rollup with its own native token claimed an ETH delta or a withdrawal.
    error NativeTokenMovesEth(uint32 rollupId);
    /// @notice The delta would take the rollup's ETH balance below zero.
    error Overdraw(uint32 rollupId, uint256 balance, int256 ethDelta);
    /// @notice A withdrawal to the zero address or of zero wei.
    error InvalidWithdrawal(uint32 rollupId, uint256 index);
    /// @notice The deltas do not add up to minus the withdrawals: ETH would appear or vanish.
    error ValueNotConserved(int256 sumOfDeltas, uint256 withdrawn);
    /// @notice The verifier rejected the proof for the rebuilt public inputs.
    error InvalidProof();
    /// @notice Deposits into a native-token rollup, or of zero wei.
    error DepositRefused(uint32 rollupId);
    /// @notice The caller has nothing to withdraw.
    error NothingToWithdraw(address account);
    /// @notice The ETH transfer to `to` failed.
    error TransferFailed(address to, uint256 amount);

    /// @param genesis_ L1 timestamp of slot 0, not in the future.
    /// @param secondsPerSlot_ Slot length in seconds.
    /// @param maxSlotAge_ How many slots old a slot may be when settled.
    /// @param verifiers The generated verifier for each aggregation size this cluster uses.
    constructor(
        uint64 genesis_,
        uint64 secondsPerSlot_,
        uint64 maxSlotAge_,
        VerifierConfig[] memory verifiers
    ) {
        // Only orders genesis against now; a validator's few seconds of skew do not matter.
        // forge-lint: disable-next-line(block-timestamp)
        if (secondsPerSlot_ == 0 || genesis_ > block.timestamp) revert BadSlotConfig();
        genesisTimestamp = genesis_;
        secondsPerSlot = secondsPerSlot_;
        maxSlotAge = maxSlotAge_;
        for (uint256 i = 0; i < verifiers.length; i++) {
            VerifierConfig memory v = verifiers[i];
            if (
                v.numRollups == 0 || v.verifier.code.length == 0
                    || verifierFor[v.numRollups] != address(0)
            ) revert BadVerifier(v.numRollups, v.verifier);
            verifierFor[v.numRollups] = v.verifier;
            emit VerifierRegistered(v.numRollups, v.verifier);
        }
    }

    // ---------------------------------------------------------------- ETH in and out

    /// @notice Deposits `msg.value` into rollup `rollupId` for `recipient` on that rollup.
    function deposit(uint32 rollupId, address recipient) external payable {
        Rollup storage rollup = _rollup(rollupId);
        if (rollup.nativeToken || msg.value == 0) revert DepositRefused(rollupId);
        rollup.ethBalance += msg.value;
        emit Deposited(rollupId, msg.sender, recipient, msg.value, depositCount++);
    }

    /// @notice Pays the caller's settled withdrawals to `to`.
    function withdraw(address payable to) external {
        uint256 amount = withdrawable[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        withdrawable[msg.sender] = 0;
        totalWithdrawable -= amount;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
        emit Withdrawn(msg.sender, to, amount);
    }

    // ---------------------------------------------------------------- settlement

    /// @notice Settles `slot`: verifies the aggregated proof against public inputs rebuilt from
    /// `claims`, storage and the transaction's blobs, then applies every root, ETH delta and
    /// withdrawal, or reverts everything.
    /// @param slot The L1 slot the rollups' blocks were built for.
    /// @param claims One per rollup in the aggregation, ascending by rollup id.
    /// @param accumulator The proof's KZG accumulator limbs (public inputs 0..11).
    /// @param proof The aggregation proof bytes.
    /// @return executionDigest The digest emitted in `SlotSettled`.
    function settle(
        uint64 slot,
        Claim[] calldata claims,
        uint256[ACCUMULATOR_WORDS] calldata accumulator,
        bytes calldata proof
    ) external returns (bytes32 executionDigest) {
        uint256 n = claims.length;
        if (n == 0) revert NoClaims();
        address verifier = verifierFor[n];
        if (verifier == address(0)) revert NoVerifier(n);
        _checkSlot(slot);
        if (lastSettlementBlock == block.number) revert AlreadySettledThisBlock(block.number);

        uint256[] memory inputs = new uint256[](ACCUMULATOR_WORDS + 2 + WORDS_PER_ROLLUP * n);
        for (uint256 i = 0; i < ACCUMULATOR_WORDS; i++) {
            inputs[i] = accumulator[i];
        }
        inputs[ACCUMULATOR_WORDS] = domain();
        inputs[ACCUMULATOR_WORDS + 1] = slot;

        int256 sumOfDeltas;
        uint256 withdrawn;
        uint32 previous;
        for (uint256 i = 0; i < n; i++) {
            Claim calldata claim = claims[i];
            uint32 id = claim.rollupId;
            if (id <= previous) revert ClaimsNotAscending(previous, id);
            previous = id;
            Rollup storage rollup = _rollup(id);
            bytes32 current = rollup.stateRoot;
            if (claim.preRoot != current) revert StalePreRoot(id, current, claim.preRoot);
            _checkField(claim.postRoot);

            uint256 at = ACCUMULATOR_WORDS + 2 + WORDS_PER_ROLLUP * i;
            inputs[at] = id;
            inputs[at + 1] = uint256(rollup.vkDigest);
            inputs[at + 2] = uint256(current);
            inputs[at + 3] = uint256(claim.postRoot);
            inputs[at + 4] = _daCommitment(claim.blobIndex, claim.dataOffset, claim.dataLength);
            inputs[at + 5] = _deltaToField(id, claim.ethDelta);
            uint256 paidOut;
            (inputs[at + 6], paidOut) = _applyEth(rollup, claim);

            rollup.stateRoot = claim.postRoot;
            sumOfDeltas += claim.ethDelta;
            withdrawn += paidOut;
        }
        // Value moved between rollups nets to zero; what leaves the cluster is withdrawn.
        // casting to 'int256' is safe: each withdrawal is below 2^128, so the sum of any
        // calldata-sized list is far below 2^255
        // forge-lint: disable-next-line(unsafe-typecast)
        if (sumOfDeltas + int256(withdrawn) != 0) revert ValueNotConserved(sumOfDeltas, withdrawn);

        (bool ok,) = verifier.staticcall(abi.encodePacked(inputs, proof));
        if (!ok) revert InvalidProof();

        nextSlot = slot + 1;
        lastSettlementBlock = uint64(block.number);
        assembly ("memory-safe") {
            // keccak256 of inputs[ACCUMULATOR_WORDS..]: skip the length word and 12 limbs.
            executionDigest := keccak256(add(inputs, 416), mul(sub(mload(inputs), 12), 32))
        }
        emit SlotSettled(slot, executionDigest, n);
    }

    // ---------------------------------------------------------------- views and encodings

    /// @notice The cross-rollup call domain: `chain id + address(this) · 2^64`.
    function domain() public view returns (uint256) {
        return block.chainid + (uint256(uint160(address(this))) << 64);
    }

    /// @notice The current L1 slot by this contract's clock.
    function currentSlot() public view returns (uint64) {
        return (uint64(block.timestamp) - genesisTimestamp) / secondsPerSlot;
    }

    /// @notice DA commitment v1 of a rollup's block data:
    /// `keccak256(versionedHash ‖ uint32 offset ‖ uint32 length) mod p`.
    function daCommitment(bytes32 versionedHash, uint32 offset, uint32 length)
        public
        pure
        returns (uint256)
    {
        return uint256(keccak256(abi.encodePacked(versionedHash, offset, length)))
            % SNARK_SCALAR_FIELD;
    }

    /// @notice Withdrawal digest v1 (the rollup's `l1_digest` public input): 0 for none, else
    /// `keccak256(recipient_0 ‖ amount_0 ‖ recipient_1 ‖ …) mod p` with 20-byte recipients and
    /// 32-byte big-endian amounts.
    function withdrawalDigest(Withdrawal[] calldata withdrawals) public pure returns (uint256) {
        uint256 count = withdrawals.length;
        if (count == 0) return 0;
        bytes memory packed = new bytes(count * 52);
        for (uint256 i = 0; i < count; i++) {
            address recipient = withdrawals[i].recipient;
            uint256 amount = withdrawals[i].amount;
            assembly ("memory-safe") {
                let at := add(add(packed, 32), mul(i, 52))
                mstore(at, shl(96, recipient))
                mstore(add(at, 20), amount)
            }
        }
        return uint256(keccak256(packed)) % SNARK_SCALAR_FIELD;
    }

    /// @notice An ETH delta as the field element the proof exposes: `d` if `d >= 0`, else
    /// `p - |d|`.
    function ethDeltaToField(int256 ethDelta) public pure returns (uint256) {
        return _deltaToField(0, ethDelta);
    }

    function _checkSlot(uint64 slot) internal view {
        uint64 current = currentSlot();
        if (slot > current) revert SlotInFuture(slot, current);
        if (current - slot > maxSlotAge) revert SlotTooOld(slot, current, maxSlotAge);
        if (slot < nextSlot) revert SlotAlreadySettled(slot, nextSlot);
    }

    function _daCommitment(uint8 blobIndex, uint32 offset, uint32 length)
        internal
        view
        returns (uint256)
    {
        bytes32 versionedHash = blobhash(blobIndex);
        if (versionedHash == bytes32(0)) revert MissingBlob(blobIndex);
        return daCommitment(versionedHash, offset, length);
    }

    function _deltaToField(uint32 id, int256 ethDelta) internal pure returns (uint256) {
        if (ethDelta < -ETH_DELTA_BOUND || ethDelta >= ETH_DELTA_BOUND) {
            revert EthDeltaOutOfRange(id, ethDelta);
        }
        // casting to 'uint256' is safe: both values are non-negative and below 2^127
        // forge-lint: disable-next-line(unsafe-typecast)
        return ethDelta >= 0 ? uint256(ethDelta) : SNARK_SCALAR_FIELD - uint256(-ethDelta);
    }

    /// Applies the claim's delta to the rollup's balance and credits its withdrawals; returns
    /// the withdrawal digest and the total withdrawn.
    function _applyEth(Rollup storage rollup, Claim calldata claim)
        internal
        returns (uint256 digest, uint256 paidOut)
    {
        int256 delta = claim.ethDelta;
        uint256 count = claim.withdrawals.length;
        if (delta == 0 && count == 0) return (0, 0);
        uint32 id = claim.rollupId;
        if (rollup.nativeToken) revert NativeTokenMovesEth(id);
        if (delta != 0) {
            uint256 balance = rollup.ethBalance;
            if (delta < 0) {
                // casting to 'uint256' is safe: -delta is positive and at most 2^127
                // forge-lint: disable-next-line(unsafe-typecast)
                uint256 out = uint256(-delta);
                if (out > balance) revert Overdraw(id, balance, delta);
                rollup.ethBalance = balance - out;
            } else {
                // forge-lint: disable-next-line(unsafe-typecast)
                rollup.ethBalance = balance + uint256(delta);
            }
        }
        for (uint256 i = 0; i < count; i++) {
            Withdrawal calldata w = claim.withdrawals[i];
            if (w.recipient == address(0) || w.amount == 0 || w.amount >= 2 ** 128) {
                revert InvalidWithdrawal(id, i);
            }
            withdrawable[w.recipient] += w.amount;
            paidOut += w.amount;
            emit WithdrawalCredited(id, w.recipient, w.amount);
        }
        if (paidOut != 0) totalWithdrawable += paidOut;
        digest = count == 0 ? 0 : withdrawalDigest(claim.withdrawals);
    }
}
