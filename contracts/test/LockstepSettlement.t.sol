// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {RollupRegistry} from "../solidity/RollupRegistry.sol";
import {LockstepSettlement} from "../solidity/LockstepSettlement.sol";

/// @notice Stands in for a generated verifier: accepts exactly one calldata (by hash), so a
/// settlement passes only if it rebuilt the public inputs the test expects, word for word.
/// With `acceptAll` it accepts anything (gas measurements, invariant runs).
contract MockVerifier {
    bytes32 public expected;
    bool public acceptAll;

    function expect(bytes32 inputHash) external {
        expected = inputHash;
    }

    function setAcceptAll(bool accept) external {
        acceptAll = accept;
    }

    fallback() external {
        if (!acceptAll && keccak256(msg.data) != expected) revert("unexpected public inputs");
    }
}

/// @notice Refuses ETH, to exercise a failed withdrawal transfer.
contract RefusesEth {
    function pull(LockstepSettlement s, address payable to) external {
        s.withdraw(to);
    }
}

/// @notice Shared fixture: a settlement contract with mock verifiers for 1, 2 and 4 rollups.
abstract contract SettlementFixture is Test {
    uint256 internal constant P =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint64 internal constant GENESIS = 1_700_000_000;
    uint64 internal constant SECONDS_PER_SLOT = 12;
    uint64 internal constant MAX_AGE = 32;
    uint64 internal constant NOW_SLOT = 100;
    bytes32 internal constant BLOB0 = bytes32(uint256(0x01b10b));
    bytes32 internal constant BLOB1 = bytes32(uint256(0x01b10c));

    LockstepSettlement internal s;
    mapping(uint256 => MockVerifier) internal verifier;

    function _deploy() internal {
        vm.warp(GENESIS + NOW_SLOT * SECONDS_PER_SLOT + 5);
        LockstepSettlement.VerifierConfig[] memory configs =
            new LockstepSettlement.VerifierConfig[](3);
        uint32[3] memory sizes = [uint32(1), 2, 4];
        for (uint256 i = 0; i < 3; i++) {
            verifier[sizes[i]] = new MockVerifier();
            configs[i] = LockstepSettlement.VerifierConfig(sizes[i], address(verifier[sizes[i]]));
        }
        s = new LockstepSettlement(GENESIS, SECONDS_PER_SLOT, MAX_AGE, configs);
        _setBlobs();
    }

    function _setBlobs() internal {
        bytes32[] memory hashes = new bytes32[](2);
        hashes[0] = BLOB0;
        hashes[1] = BLOB1;
        vm.blobhashes(hashes);
    }

    function _accumulator() internal pure returns (uint256[12] memory acc) {
        for (uint256 i = 0; i < 12; i++) {
            acc[i] = 0xacc0 + i;
        }
    }

    /// A claim on the rollup's current root. Blob hashes belong to one transaction, so this
    /// also (re)sets them for the settlement that follows.
    function _claim(uint32 id, int256 delta) internal returns (LockstepSettlement.Claim memory c) {
        _setBlobs();
        c.rollupId = id;
        c.preRoot = s.getRollup(id).stateRoot;
        c.postRoot = keccak256(abi.encode("post", id, c.preRoot)) & bytes32(uint256(2 ** 250 - 1));
        c.blobIndex = 0;
        c.dataOffset = 1000 * id;
        c.dataLength = 100 + id;
        c.ethDelta = delta;
    }

    function _one(LockstepSettlement.Claim memory c)
        internal
        pure
        returns (LockstepSettlement.Claim[] memory claims)
    {
        claims = new LockstepSettlement.Claim[](1);
        claims[0] = c;
    }

    function _two(LockstepSettlement.Claim memory a, LockstepSettlement.Claim memory b)
        internal
        pure
        returns (LockstepSettlement.Claim[] memory claims)
    {
        claims = new LockstepSettlement.Claim[](2);
        claims[0] = a;
        claims[1] = b;
    }

    /// The layout of docs/public-inputs.md, written out independently of the contract.
    function _publicWords(
        uint64 slot,
        LockstepSettlement.Claim[] memory claims,
        bytes32[] memory vks
    ) internal view returns (bytes memory words) {
        words = abi.encodePacked(
            block.chainid + uint256(uint160(address(s))) * 2 ** 64, uint256(slot)
        );
        for (uint256 i = 0; i < claims.length; i++) {
            LockstepSettlement.Claim memory c = claims[i];
            bytes32 blob = c.blobIndex == 0 ? BLOB0 : BLOB1;
            uint256 da = uint256(keccak256(abi.encodePacked(blob, c.dataOffset, c.dataLength))) % P;
            uint256 delta = c.ethDelta >= 0 ? uint256(c.ethDelta) : P - uint256(-c.ethDelta);
            words = abi.encodePacked(
                words,
                uint256(c.rollupId),
                vks[i],
                c.preRoot,
                c.postRoot,
                da,
                delta,
                _withdrawalDigest(c.withdrawals)
            );
        }
    }

    function _withdrawalDigest(LockstepSettlement.Withdrawal[] memory ws)
        internal
        pure
        returns (uint256)
    {
        if (ws.length == 0) return 0;
        bytes memory packed;
        for (uint256 i = 0; i < ws.length; i++) {
            packed = abi.encodePacked(packed, ws[i].recipient, ws[i].amount);
        }
        return uint256(keccak256(packed)) % P;
    }

    function _registeredVks(LockstepSettlement.Claim[] memory claims)
        internal
        view
        returns (bytes32[] memory vks)
    {
        vks = new bytes32[](claims.length);
        for (uint256 i = 0; i < claims.length; i++) {
            vks[i] = s.getRollup(claims[i].rollupId).vkDigest;
        }
    }

    /// Tells the mock verifier which inputs a proof "was made for", as the prover would.
    function _proveFor(
        uint64 slot,
        LockstepSettlement.Claim[] memory claims,
        bytes32[] memory vks,
        bytes memory proof
    ) internal {
        bytes memory input = abi.encodePacked(
            _accumulator(), _publicWords(slot, claims, vks), proof
        );
        verifier[claims.length].expect(keccak256(input));
    }

    function _settle(uint64 slot, LockstepSettlement.Claim[] memory claims)
        internal
        returns (bytes32)
    {
        bytes memory proof = hex"c0ffee";
        _proveFor(slot, claims, _registeredVks(claims), proof);
        return s.settle(slot, claims, _accumulator(), proof);
    }
}

contract LockstepSettlementTest is SettlementFixture {
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);
    bytes32 internal constant VK_A = bytes32(uint256(0xa1));
    bytes32 internal constant VK_B = bytes32(uint256(0xb1));
    bytes32 internal constant VK_OTHER = bytes32(uint256(0xee));

    uint32 internal a;
    uint32 internal b;
    uint32 internal native;

    function setUp() public {
        _deploy();
        a = s.createRollup(ALICE, VK_A, bytes32(uint256(11)), false, false);
        b = s.createRollup(BOB, VK_B, bytes32(uint256(22)), false, false);
        native = s.createRollup(ALICE, bytes32(uint256(0xc1)), bytes32(uint256(33)), true, false);
        vm.deal(address(this), 100 ether);
    }

    // ------------------------------------------------------------ constructor

    function test_constructor_storesConfigAndVerifiers() public view {
        assertEq(s.genesisTimestamp(), GENESIS, "genesis");
        assertEq(s.secondsPerSlot(), SECONDS_PER_SLOT, "slot length");
        assertEq(s.maxSlotAge(), MAX_AGE, "max age");
        assertEq(s.verifierFor(2), address(verifier[2]), "verifier for 2");
        assertEq(s.verifierFor(3), address(0), "no verifier for 3");
        assertEq(s.currentSlot(), NOW_SLOT, "current slot");
        assertEq(s.domain(), block.chainid + (uint256(uint160(address(s))) << 64), "domain");
    }

    function test_constructor_rejectsBadConfig() public {
        LockstepSettlement.VerifierConfig[] memory none;
        vm.expectRevert(LockstepSettlement.BadSlotConfig.selector);
        new LockstepSettlement(GENESIS, 0, MAX_AGE, none);
        vm.expectRevert(LockstepSettlement.BadSlotConfig.selector);
        new LockstepSettlement(uint64(block.timestamp + 1), 12, MAX_AGE, none);

        LockstepSettlement.VerifierConfig[] memory configs =
            new LockstepSettlement.VerifierConfig[](1);
        configs[0] = LockstepSettlement.VerifierConfig(1, ALICE);
        vm.expectRevert(abi.encodeWithSelector(LockstepSettlement.BadVerifier.selector, 1, ALICE));
        new LockstepSettlement(GENESIS, 12, MAX_AGE, configs);

        configs[0] = LockstepSettlement.VerifierConfig(0, address(verifier[1]));
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.BadVerifier.selector, 0, address(verifier[1]))
        );
        new LockstepSettlement(GENESIS, 12, MAX_AGE, configs);

        LockstepSettlement.VerifierConfig[] memory twice =
            new LockstepSettlement.VerifierConfig[](2);
        twice[0] = LockstepSettlement.VerifierConfig(2, address(verifier[1]));
        twice[1] = LockstepSettlement.VerifierConfig(2, address(verifier[2]));
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.BadVerifier.selector, 2, address(verifier[2]))
        );
        new LockstepSettlement(GENESIS, 12, MAX_AGE, twice);
    }

    // ------------------------------------------------------------ deposits and withdrawals

    function test_deposit_creditsRollupAndCountsDeposits() public {
        vm.expectEmit(true, true, true, true, address(s));
        emit LockstepSettlement.Deposited(a, address(this), ALICE, 3 ether, 0);
        s.deposit{value: 3 ether}(a, ALICE);
        vm.expectEmit(true, true, true, true, address(s));
        emit LockstepSettlement.Deposited(b, address(this), BOB, 1, 1);
        s.deposit{value: 1}(b, BOB);
        assertEq(s.getRollup(a).ethBalance, 3 ether, "a balance");
        assertEq(s.getRollup(b).ethBalance, 1, "b balance");
        assertEq(s.depositCount(), 2, "deposit count");
        assertEq(address(s).balance, 3 ether + 1, "held");
    }

    function test_deposit_refusesNativeTokenZeroValueAndUnknownRollup() public {
        vm.expectRevert(abi.encodeWithSelector(LockstepSettlement.DepositRefused.selector, native));
        s.deposit{value: 1 ether}(native, ALICE);
        vm.expectRevert(abi.encodeWithSelector(LockstepSettlement.DepositRefused.selector, a));
        s.deposit(a, ALICE);
        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.UnknownRollup.selector, 9));
        s.deposit{value: 1}(9, ALICE);
    }

    function test_plainEthTransfersAreRefused() public {
        (bool ok,) = address(s).call{value: 1}("");
        assertTrue(!ok, "contract took ETH outside deposit");
    }

    function test_withdraw_paysSettledWithdrawalsOnce() public {
        s.deposit{value: 10}(a, ALICE);
        LockstepSettlement.Claim memory c = _claim(a, -4);
        c.withdrawals = new LockstepSettlement.Withdrawal[](1);
        c.withdrawals[0] = LockstepSettlement.Withdrawal(ALICE, 4);
        _settle(NOW_SLOT, _one(c));
        assertEq(s.withdrawable(ALICE), 4, "credited");
        assertEq(s.totalWithdrawable(), 4, "total credited");

        address payable to = payable(address(0xD00D));
        vm.expectEmit(true, true, false, true, address(s));
        emit LockstepSettlement.Withdrawn(ALICE, to, 4);
        vm.prank(ALICE);
        s.withdraw(to);
        assertEq(to.balance, 4, "paid");
        assertEq(s.withdrawable(ALICE), 0, "cleared");
        assertEq(s.totalWithdrawable(), 0, "total cleared");
        assertEq(address(s).balance, 6, "held");

        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.NothingToWithdraw.selector, ALICE)
        );
        vm.prank(ALICE);
        s.withdraw(to);
    }

    function test_withdraw_revertsWhenTransferFails() public {
        RefusesEth refuser = new RefusesEth();
        s.deposit{value: 10}(a, ALICE);
        LockstepSettlement.Claim memory c = _claim(a, -4);
        c.withdrawals = new LockstepSettlement.Withdrawal[](1);
        c.withdrawals[0] = LockstepSettlement.Withdrawal(address(refuser), 4);
        _settle(NOW_SLOT, _one(c));
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.TransferFailed.selector, address(refuser), 4)
        );
        refuser.pull(s, payable(address(refuser)));
        assertEq(s.withdrawable(address(refuser)), 4, "credit kept after a failed transfer");
    }

    // ------------------------------------------------------------ settlement: success

    function test_settle_oneRollupRebuildsInputsAndAppliesRoot() public {
        LockstepSettlement.Claim memory c = _claim(a, 0);
        LockstepSettlement.Claim[] memory claims = _one(c);
        bytes32 digest = keccak256(_publicWords(NOW_SLOT, claims, _registeredVks(claims)));
        _proveFor(NOW_SLOT, claims, _registeredVks(claims), hex"c0ffee");
        vm.expectEmit(true, true, false, true, address(s));
        emit LockstepSettlement.SlotSettled(NOW_SLOT, digest, 1);
        bytes32 returned = s.settle(NOW_SLOT, claims, _accumulator(), hex"c0ffee");

        assertEq(returned, digest, "returned digest");
        assertEq(s.getRollup(a).stateRoot, c.postRoot, "root applied");
        assertEq(s.getRollup(b).stateRoot, bytes32(uint256(22)), "other rollup untouched");
        assertEq(s.nextSlot(), NOW_SLOT + 1, "next slot");
        assertEq(s.lastSettlementBlock(), block.number, "settlement block");
    }

    function test_settle_twoRollupsMoveValueAndWithdraw() public {
        s.deposit{value: 10}(a, ALICE);
        s.deposit{value: 1}(b, BOB);
        // a sends 6 to b; b withdraws 2 of it to BOB on L1.
        LockstepSettlement.Claim memory ca = _claim(a, -6);
        LockstepSettlement.Claim memory cb = _claim(b, 4);
        cb.blobIndex = 1;
        cb.withdrawals = new LockstepSettlement.Withdrawal[](2);
        cb.withdrawals[0] = LockstepSettlement.Withdrawal(BOB, 1);
        cb.withdrawals[1] = LockstepSettlement.Withdrawal(ALICE, 1);
        LockstepSettlement.Claim[] memory claims = _two(ca, cb);
        _proveFor(NOW_SLOT, claims, _registeredVks(claims), hex"c0ffee");
        vm.expectEmit(true, true, false, true, address(s));
        emit LockstepSettlement.WithdrawalCredited(b, BOB, 1);
        s.settle(NOW_SLOT, claims, _accumulator(), hex"c0ffee");

        assertEq(s.getRollup(a).ethBalance, 4, "a balance");
        assertEq(s.getRollup(b).ethBalance, 5, "b balance");
        assertEq(s.withdrawable(BOB), 1, "bob credited");
        assertEq(s.withdrawable(ALICE), 1, "alice credited");
        assertEq(address(s).balance, 4 + 5 + s.totalWithdrawable(), "all ETH accounted for");
        assertEq(s.getRollup(b).stateRoot, cb.postRoot, "b root");
    }

    function test_settle_acceptsLaterSlotInLaterBlockAndOldestAllowedSlot() public {
        _settle(NOW_SLOT - MAX_AGE, _one(_claim(a, 0)));
        vm.roll(block.number + 1);
        _settle(NOW_SLOT, _one(_claim(a, 0)));
        assertEq(s.nextSlot(), NOW_SLOT + 1, "next slot");
    }

    function test_ethDeltaToField_matchesLayout() public view {
        assertEq(s.ethDeltaToField(5), 5, "positive");
        assertEq(s.ethDeltaToField(0), 0, "zero");
        assertEq(s.ethDeltaToField(-1), P - 1, "minus one");
        assertEq(s.ethDeltaToField(-(2 ** 127)), P - 2 ** 127, "lower bound");
        assertEq(s.ethDeltaToField(2 ** 127 - 1), 2 ** 127 - 1, "upper bound");
    }

    // ------------------------------------------------------------ settlement: refusals

    function test_settle_refusesNoClaimsAndUnsupportedSize() public {
        LockstepSettlement.Claim[] memory none;
        vm.expectRevert(LockstepSettlement.NoClaims.selector);
        s.settle(NOW_SLOT, none, _accumulator(), hex"00");
        LockstepSettlement.Claim[] memory three = new LockstepSettlement.Claim[](3);
        vm.expectRevert(abi.encodeWithSelector(LockstepSettlement.NoVerifier.selector, 3));
        s.settle(NOW_SLOT, three, _accumulator(), hex"00");
    }

    function test_settle_refusesFutureTooOldAndSettledSlots() public {
        LockstepSettlement.Claim[] memory claims = _one(_claim(a, 0));
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.SlotInFuture.selector, NOW_SLOT + 1, NOW_SLOT)
        );
        s.settle(NOW_SLOT + 1, claims, _accumulator(), hex"00");
        vm.expectRevert(
            abi.encodeWithSelector(
                LockstepSettlement.SlotTooOld.selector, NOW_SLOT - MAX_AGE - 1, NOW_SLOT, MAX_AGE
            )
        );
        s.settle(NOW_SLOT - MAX_AGE - 1, claims, _accumulator(), hex"00");

        _settle(NOW_SLOT - 1, claims);
        vm.roll(block.number + 1);
        claims = _one(_claim(a, 0));
        for (uint64 slot = NOW_SLOT - 2; slot < NOW_SLOT; slot++) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    LockstepSettlement.SlotAlreadySettled.selector, slot, NOW_SLOT
                )
            );
            s.settle(slot, claims, _accumulator(), hex"00");
        }
    }

    function test_settle_refusesSecondSettlementInOneBlock() public {
        _settle(NOW_SLOT - 1, _one(_claim(a, 0)));
        LockstepSettlement.Claim[] memory claims = _one(_claim(a, 0));
        vm.expectRevert(
            abi.encodeWithSelector(
                LockstepSettlement.AlreadySettledThisBlock.selector, block.number
            )
        );
        s.settle(NOW_SLOT, claims, _accumulator(), hex"00");
    }

    function test_settle_refusesUnorderedDuplicateZeroAndUnknownIds() public {
        LockstepSettlement.Claim[] memory claims = _two(_claim(b, 0), _claim(a, 0));
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.ClaimsNotAscending.selector, b, a)
        );
        s.settle(NOW_SLOT, claims, _accumulator(), hex"00");
        claims = _two(_claim(a, 0), _claim(a, 0));
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.ClaimsNotAscending.selector, a, a)
        );
        s.settle(NOW_SLOT, claims, _accumulator(), hex"00");

        LockstepSettlement.Claim memory zero = _claim(a, 0);
        zero.rollupId = 0;
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.ClaimsNotAscending.selector, 0, 0)
        );
        s.settle(NOW_SLOT, _one(zero), _accumulator(), hex"00");
        LockstepSettlement.Claim memory unknown = _claim(a, 0);
        unknown.rollupId = 77;
        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.UnknownRollup.selector, 77));
        s.settle(NOW_SLOT, _one(unknown), _accumulator(), hex"00");
    }

    function test_settle_refusesStalePreRoot() public {
        LockstepSettlement.Claim memory first = _claim(a, 0);
        _settle(NOW_SLOT - 1, _one(first));
        vm.roll(block.number + 1);
        // The same block again: its pre root is no longer the rollup's root.
        vm.expectRevert(
            abi.encodeWithSelector(
                LockstepSettlement.StalePreRoot.selector, a, first.postRoot, first.preRoot
            )
        );
        s.settle(NOW_SLOT, _one(first), _accumulator(), hex"00");
    }

    function test_settle_refusesPostRootOutsideField() public {
        LockstepSettlement.Claim memory c = _claim(a, 0);
        c.postRoot = bytes32(P);
        vm.expectRevert(
            abi.encodeWithSelector(RollupRegistry.NotAFieldElement.selector, bytes32(P))
        );
        s.settle(NOW_SLOT, _one(c), _accumulator(), hex"00");
    }

    function test_settle_refusesMissingBlob() public {
        LockstepSettlement.Claim memory c = _claim(a, 0);
        c.blobIndex = 2;
        vm.expectRevert(abi.encodeWithSelector(LockstepSettlement.MissingBlob.selector, 2));
        s.settle(NOW_SLOT, _one(c), _accumulator(), hex"00");
        vm.blobhashes(new bytes32[](0));
        c.blobIndex = 0;
        vm.expectRevert(abi.encodeWithSelector(LockstepSettlement.MissingBlob.selector, 0));
        s.settle(NOW_SLOT, _one(c), _accumulator(), hex"00");
    }

    function test_settle_refusesDeltaOutOfRange() public {
        int256[2] memory bad = [int256(2 ** 127), -(2 ** 127) - 1];
        for (uint256 i = 0; i < 2; i++) {
            LockstepSettlement.Claim[] memory claims = _one(_claim(a, bad[i]));
            vm.expectRevert(
                abi.encodeWithSelector(LockstepSettlement.EthDeltaOutOfRange.selector, a, bad[i])
            );
            s.settle(NOW_SLOT, claims, _accumulator(), hex"00");
        }
    }

    function test_settle_refusesNativeTokenRollupMovingEth() public {
        s.deposit{value: 5}(a, ALICE);
        LockstepSettlement.Claim[] memory claims = _two(_claim(a, -1), _claim(native, 1));
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.NativeTokenMovesEth.selector, native)
        );
        s.settle(NOW_SLOT, claims, _accumulator(), hex"00");

        LockstepSettlement.Claim memory c = _claim(native, 0);
        c.withdrawals = new LockstepSettlement.Withdrawal[](1);
        c.withdrawals[0] = LockstepSettlement.Withdrawal(ALICE, 1);
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.NativeTokenMovesEth.selector, native)
        );
        s.settle(NOW_SLOT, _one(c), _accumulator(), hex"00");
    }

    function test_settle_refusesOverdraw() public {
        s.deposit{value: 5}(a, ALICE);
        LockstepSettlement.Claim[] memory claims = _two(_claim(a, -6), _claim(b, 6));
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.Overdraw.selector, a, 5, int256(-6))
        );
        s.settle(NOW_SLOT, claims, _accumulator(), hex"00");
    }

    function test_settle_refusesValueFromNowhere() public {
        s.deposit{value: 5}(a, ALICE);
        LockstepSettlement.Claim[] memory claims = _two(_claim(a, -1), _claim(b, 4));
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.ValueNotConserved.selector, int256(3), 0)
        );
        s.settle(NOW_SLOT, claims, _accumulator(), hex"00");

        LockstepSettlement.Claim memory c = _claim(a, -1);
        c.withdrawals = new LockstepSettlement.Withdrawal[](1);
        c.withdrawals[0] = LockstepSettlement.Withdrawal(ALICE, 2);
        vm.expectRevert(
            abi.encodeWithSelector(LockstepSettlement.ValueNotConserved.selector, int256(-1), 2)
        );
        s.settle(NOW_SLOT, _one(c), _accumulator(), hex"00");
    }

    function test_settle_refusesInvalidWithdrawals() public {
        s.deposit{value: 5}(a, ALICE);
        LockstepSettlement.Claim memory c = _claim(a, -1);
        c.withdrawals = new LockstepSettlement.Withdrawal[](2);
        c.withdrawals[0] = LockstepSettlement.Withdrawal(ALICE, 1);
        c.withdrawals[1] = LockstepSettlement.Withdrawal(address(0), 1);
        vm.expectRevert(abi.encodeWithSelector(LockstepSettlement.InvalidWithdrawal.selector, a, 1));
        s.settle(NOW_SLOT, _one(c), _accumulator(), hex"00");
        c.withdrawals[1] = LockstepSettlement.Withdrawal(ALICE, 0);
        vm.expectRevert(abi.encodeWithSelector(LockstepSettlement.InvalidWithdrawal.selector, a, 1));
        s.settle(NOW_SLOT, _one(c), _accumulator(), hex"00");
        c.withdrawals[1] = LockstepSettlement.Withdrawal(ALICE, 2 ** 128);
        vm.expectRevert(abi.encodeWithSelector(LockstepSettlement.InvalidWithdrawal.selector, a, 1));
        s.settle(NOW_SLOT, _one(c), _accumulator(), hex"00");
    }

    function test_settle_refusesWrongTruncatedOrForeignProofAndChangesNothing() public {
        s.deposit{value: 5}(a, ALICE);
        LockstepSettlement.Claim[] memory claims = _two(_claim(a, -2), _claim(b, 2));
        bytes memory proof = hex"0102030405";
        _proveFor(NOW_SLOT, claims, _registeredVks(claims), proof);

        // Wrong and truncated proof bytes.
        vm.expectRevert(LockstepSettlement.InvalidProof.selector);
        s.settle(NOW_SLOT, claims, _accumulator(), hex"0102030406");
        vm.expectRevert(LockstepSettlement.InvalidProof.selector);
        s.settle(NOW_SLOT, claims, _accumulator(), hex"01020304");
        // A tampered accumulator limb.
        uint256[12] memory acc = _accumulator();
        acc[7] ^= 1;
        vm.expectRevert(LockstepSettlement.InvalidProof.selector);
        s.settle(NOW_SLOT, claims, acc, proof);
        // Claims the proof was not made for: another post root, another delta, another blob.
        LockstepSettlement.Claim[] memory other = _two(_claim(a, -2), _claim(b, 2));
        other[1].postRoot = bytes32(uint256(other[1].postRoot) ^ 1);
        vm.expectRevert(LockstepSettlement.InvalidProof.selector);
        s.settle(NOW_SLOT, other, _accumulator(), proof);
        other = _two(_claim(a, -1), _claim(b, 1));
        vm.expectRevert(LockstepSettlement.InvalidProof.selector);
        s.settle(NOW_SLOT, other, _accumulator(), proof);
        other = _two(_claim(a, -2), _claim(b, 2));
        other[0].blobIndex = 1;
        vm.expectRevert(LockstepSettlement.InvalidProof.selector);
        s.settle(NOW_SLOT, other, _accumulator(), proof);

        // A proof made under another verifying key than the one registered for rollup b.
        bytes32[] memory foreign = _registeredVks(claims);
        foreign[1] = VK_OTHER;
        _proveFor(NOW_SLOT, claims, foreign, proof);
        vm.expectRevert(LockstepSettlement.InvalidProof.selector);
        s.settle(NOW_SLOT, claims, _accumulator(), proof);

        assertEq(s.getRollup(a).ethBalance, 5, "balance untouched");
        assertEq(s.getRollup(a).stateRoot, claims[0].preRoot, "root untouched");
        assertEq(s.nextSlot(), 0, "nothing settled");

        // ... and it settles once the registry points at that key.
        vm.prank(BOB);
        s.setVkDigest(b, VK_OTHER);
        s.settle(NOW_SLOT, claims, _accumulator(), proof);
        assertEq(s.getRollup(b).stateRoot, claims[1].postRoot, "settled under the new key");
    }

    // ------------------------------------------------------------ fuzz

    function testFuzz_settle_movesValueBetweenRollups(uint96 fundA, uint96 fundB, int96 move)
        public
    {
        vm.deal(address(this), uint256(fundA) + fundB + 2);
        s.deposit{value: uint256(fundA) + 1}(a, ALICE);
        s.deposit{value: uint256(fundB) + 1}(b, BOB);
        uint256 balA = uint256(fundA) + 1;
        uint256 balB = uint256(fundB) + 1;
        int256 m = move;
        LockstepSettlement.Claim[] memory claims = _two(_claim(a, -m), _claim(b, m));
        // All casts below are safe: every value is below 2^97 in magnitude.
        // forge-lint: disable-next-line(unsafe-typecast)
        bool overdraws = (m > 0 && uint256(m) > balA) || (m < 0 && uint256(-m) > balB);
        if (overdraws) {
            // Rollup a's claim comes first: it overdraws first if it overdraws at all.
            // forge-lint: disable-next-line(unsafe-typecast)
            bool aOverdraws = m > 0 && uint256(m) > balA;
            vm.expectRevert(
                aOverdraws
                    ? abi.encodeWithSelector(LockstepSettlement.Overdraw.selector, a, balA, -m)
                    : abi.encodeWithSelector(LockstepSettlement.Overdraw.selector, b, balB, m)
            );
            s.settle(NOW_SLOT, claims, _accumulator(), hex"c0ffee");
            return;
        }
        _settle(NOW_SLOT, claims);
        // forge-lint: disable-next-line(unsafe-typecast)
        assertEq(s.getRollup(a).ethBalance, uint256(int256(balA) - m), "a");
        // forge-lint: disable-next-line(unsafe-typecast)
        assertEq(s.getRollup(b).ethBalance, uint256(int256(balB) + m), "b");
        assertEq(address(s).balance, balA + balB, "held");
    }

    function testFuzz_withdrawalDigest_matchesPackedEncoding(
        address r0,
        uint128 v0,
        address r1,
        uint128 v1
    ) public view {
        LockstepSettlement.Withdrawal[] memory ws = new LockstepSettlement.Withdrawal[](2);
        ws[0] = LockstepSettlement.Withdrawal(r0, v0);
        ws[1] = LockstepSettlement.Withdrawal(r1, v1);
        uint256 expected =
            uint256(keccak256(abi.encodePacked(r0, uint256(v0), r1, uint256(v1)))) % P;
        assertEq(s.withdrawalDigest(ws), expected, "digest");
        assertEq(s.withdrawalDigest(new LockstepSettlement.Withdrawal[](0)), 0, "empty");
    }

    function testFuzz_daCommitment_bindsEveryField(bytes32 h, uint32 off, uint32 len) public view {
        uint256 c = s.daCommitment(h, off, len);
        assertTrue(c < P, "field element");
        assertTrue(c != s.daCommitment(h ^ bytes32(uint256(1)), off, len), "hash bound");
        assertTrue(c != s.daCommitment(h, off ^ 1, len), "offset bound");
        assertTrue(c != s.daCommitment(h, off, len ^ 1), "length bound");
    }
}

/// Drives deposits, settlements and withdrawals in random order for the invariant test.
contract SettlementHandler is SettlementFixture {
    uint32 internal a;
    uint32 internal b;
    address internal constant CAROL = address(0xCA201);
    uint256 public deposited;
    uint256 public paidOut;
    uint256 public settlements;

    constructor() {
        _deploy();
        a = s.createRollup(address(0), bytes32(uint256(1)), bytes32(uint256(1)), false, false);
        b = s.createRollup(address(0), bytes32(uint256(2)), bytes32(uint256(2)), false, false);
        verifier[1].setAcceptAll(true);
        verifier[2].setAcceptAll(true);
    }

    function settlement() external view returns (LockstepSettlement) {
        return s;
    }

    function rollups() external view returns (uint32, uint32) {
        return (a, b);
    }

    function deposit(bool toA, uint96 amount) external {
        amount = uint96(amount % 1e20) + 1;
        vm.deal(address(this), amount);
        s.deposit{value: amount}(toA ? a : b, address(this));
        deposited += amount;
    }

    function settle(uint96 moveRaw, uint96 withdrawRaw, bool aToB) external {
        (uint32 from, uint32 to) = aToB ? (a, b) : (b, a);
        uint256 available = s.getRollup(from).ethBalance;
        uint256 move = available == 0 ? 0 : uint256(moveRaw) % (available + 1);
        uint256 out = (available - move) == 0 ? 0 : uint256(withdrawRaw) % (available - move + 1);
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + SECONDS_PER_SLOT);
        _setBlobs();
        // casting to 'int256' is safe: both are below 2^97
        // forge-lint: disable-next-line(unsafe-typecast)
        LockstepSettlement.Claim memory cf = _claim(from, -int256(move + out));
        // forge-lint: disable-next-line(unsafe-typecast)
        LockstepSettlement.Claim memory ct = _claim(to, int256(move));
        if (out != 0) {
            cf.withdrawals = new LockstepSettlement.Withdrawal[](1);
            cf.withdrawals[0] = LockstepSettlement.Withdrawal(CAROL, out);
        }
        s.settle(s.currentSlot(), from < to ? _two(cf, ct) : _two(ct, cf), _accumulator(), hex"00");
        settlements++;
    }

    function withdraw() external {
        uint256 amount = s.withdrawable(CAROL);
        if (amount == 0) return;
        vm.prank(CAROL);
        s.withdraw(payable(address(0xDEAD)));
        paidOut += amount;
    }

    receive() external payable {}
}

contract LockstepSettlementInvariantTest is Test {
    SettlementHandler internal handler;

    function setUp() public {
        handler = new SettlementHandler();
        targetContract(address(handler));
    }

    /// Every wei held is some rollup's balance or a settled, unpulled withdrawal, and nothing
    /// left the contract except through withdrawals.
    function invariant_ethHeldEqualsBalancesPlusWithdrawable() public view {
        LockstepSettlement s = handler.settlement();
        (uint32 a, uint32 b) = handler.rollups();
        uint256 held = address(s).balance;
        assertEq(
            held,
            s.getRollup(a).ethBalance + s.getRollup(b).ethBalance + s.totalWithdrawable(),
            "held vs balances"
        );
        assertEq(held, handler.deposited() - handler.paidOut(), "held vs deposits - payouts");
        assertEq(s.totalWithdrawable(), s.withdrawable(address(0xCA201)), "withdrawable sum");
    }
}
