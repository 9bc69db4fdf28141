// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {RollupRegistry} from "../solidity/RollupRegistry.sol";

contract RollupRegistryTest is Test {
    RollupRegistry internal registry;

    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);
    bytes32 internal constant VK = bytes32(uint256(0x1234));
    bytes32 internal constant ROOT = bytes32(uint256(0xabcd));
    uint256 internal constant P =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    event RollupCreated(
        uint32 indexed id,
        address indexed owner,
        bytes32 vkDigest,
        bytes32 stateRoot,
        bool nativeToken,
        bool ownerControlledRoot
    );
    event VkDigestUpdated(uint32 indexed id, bytes32 previous, bytes32 current);
    event OwnershipTransferred(
        uint32 indexed id, address indexed previous, address indexed current
    );
    event StateRootSetByOwner(uint32 indexed id, bytes32 previous, bytes32 current);

    function setUp() public {
        registry = new RollupRegistry();
    }

    function test_createRollup_assignsSequentialIdsAndStoresEverything() public {
        vm.expectEmit(true, true, false, true, address(registry));
        emit RollupCreated(1, ALICE, VK, ROOT, false, true);
        uint32 first = registry.createRollup(ALICE, VK, ROOT, false, true);
        uint32 second = registry.createRollup(BOB, bytes32(uint256(7)), bytes32(0), true, false);

        assertEq(first, 1, "first id");
        assertEq(second, 2, "second id");
        assertEq(registry.rollupCount(), 2, "count");
        RollupRegistry.Rollup memory r = registry.getRollup(first);
        assertEq(r.owner, ALICE, "owner");
        assertEq(r.vkDigest, VK, "vk");
        assertEq(r.stateRoot, ROOT, "root");
        assertEq(r.nativeToken, false, "native");
        assertEq(r.ownerControlledRoot, true, "owner controlled");
        RollupRegistry.Rollup memory s = registry.getRollup(second);
        assertEq(s.nativeToken, true, "second native");
        assertEq(s.owner, BOB, "second owner");
    }

    function test_createRollup_rejectsZeroVk() public {
        vm.expectRevert(
            abi.encodeWithSelector(RollupRegistry.NotAFieldElement.selector, bytes32(0))
        );
        registry.createRollup(ALICE, bytes32(0), ROOT, false, false);
    }

    function test_createRollup_rejectsOutOfFieldValues() public {
        bytes32 big = bytes32(P);
        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.NotAFieldElement.selector, big));
        registry.createRollup(ALICE, big, ROOT, false, false);
        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.NotAFieldElement.selector, big));
        registry.createRollup(ALICE, VK, big, false, false);
        // P - 1 is the largest field element and is accepted.
        registry.createRollup(ALICE, bytes32(P - 1), bytes32(P - 1), false, false);
    }

    function test_createRollup_ownerControlledNeedsOwner() public {
        vm.expectRevert(RollupRegistry.OwnerRequired.selector);
        registry.createRollup(address(0), VK, ROOT, false, true);
    }

    function test_unknownRollup_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.UnknownRollup.selector, uint32(0)));
        registry.getRollup(0);
        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.UnknownRollup.selector, uint32(1)));
        registry.getRollup(1);
        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.UnknownRollup.selector, uint32(9)));
        registry.setVkDigest(9, VK);
        assertTrue(!registry.exists(0), "id 0 is L1, never a rollup");
    }

    function test_setVkDigest_byOwner() public {
        uint32 id = registry.createRollup(ALICE, VK, ROOT, false, false);
        bytes32 next = bytes32(uint256(0x5678));
        vm.expectEmit(true, false, false, true, address(registry));
        emit VkDigestUpdated(id, VK, next);
        vm.prank(ALICE);
        registry.setVkDigest(id, next);
        assertEq(registry.getRollup(id).vkDigest, next, "vk updated");
    }

    function test_setVkDigest_rejectsNonOwnerAndBadDigest() public {
        uint32 id = registry.createRollup(ALICE, VK, ROOT, false, false);
        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.NotOwner.selector, id, BOB, ALICE));
        vm.prank(BOB);
        registry.setVkDigest(id, bytes32(uint256(1)));
        vm.expectRevert(
            abi.encodeWithSelector(RollupRegistry.NotAFieldElement.selector, bytes32(0))
        );
        vm.prank(ALICE);
        registry.setVkDigest(id, bytes32(0));
        assertEq(registry.getRollup(id).vkDigest, VK, "vk unchanged");
    }

    function test_transferOwnership_movesPowers() public {
        uint32 id = registry.createRollup(ALICE, VK, ROOT, false, false);
        vm.expectEmit(true, true, true, true, address(registry));
        emit OwnershipTransferred(id, ALICE, BOB);
        vm.prank(ALICE);
        registry.transferOwnership(id, BOB);
        assertEq(registry.getRollup(id).owner, BOB, "new owner");

        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.NotOwner.selector, id, ALICE, BOB));
        vm.prank(ALICE);
        registry.setVkDigest(id, bytes32(uint256(2)));
        vm.prank(BOB);
        registry.setVkDigest(id, bytes32(uint256(2)));
    }

    function test_renounce_freezesVkAndRoot() public {
        uint32 id = registry.createRollup(ALICE, VK, ROOT, false, true);
        vm.prank(ALICE);
        registry.transferOwnership(id, address(0));
        RollupRegistry.Rollup memory r = registry.getRollup(id);
        assertEq(r.owner, address(0), "renounced");
        assertEq(r.ownerControlledRoot, false, "owner control ends");
        vm.expectRevert(
            abi.encodeWithSelector(RollupRegistry.NotOwner.selector, id, ALICE, address(0))
        );
        vm.prank(ALICE);
        registry.setVkDigest(id, bytes32(uint256(3)));
    }

    function test_setStateRoot_onlyForOwnerControlled() public {
        uint32 controlled = registry.createRollup(ALICE, VK, ROOT, false, true);
        uint32 proven = registry.createRollup(ALICE, VK, ROOT, false, false);
        bytes32 next = bytes32(uint256(0xbeef));

        vm.expectEmit(true, false, false, true, address(registry));
        emit StateRootSetByOwner(controlled, ROOT, next);
        vm.prank(ALICE);
        registry.setStateRoot(controlled, next);
        assertEq(registry.getRollup(controlled).stateRoot, next, "root set");

        vm.expectRevert(
            abi.encodeWithSelector(RollupRegistry.RootNotOwnerControlled.selector, proven)
        );
        vm.prank(ALICE);
        registry.setStateRoot(proven, next);

        vm.expectRevert(
            abi.encodeWithSelector(RollupRegistry.NotOwner.selector, controlled, BOB, ALICE)
        );
        vm.prank(BOB);
        registry.setStateRoot(controlled, ROOT);

        vm.expectRevert(
            abi.encodeWithSelector(RollupRegistry.NotAFieldElement.selector, bytes32(P))
        );
        vm.prank(ALICE);
        registry.setStateRoot(controlled, bytes32(P));
    }

    function testFuzz_createRollup_fieldBound(bytes32 vk, bytes32 root) public {
        bool valid = vk != bytes32(0) && uint256(vk) < P && uint256(root) < P;
        if (!valid) vm.expectRevert();
        uint32 id = registry.createRollup(ALICE, vk, root, false, false);
        if (valid) {
            assertEq(registry.getRollup(id).vkDigest, vk, "vk stored");
            assertEq(registry.getRollup(id).stateRoot, root, "root stored");
        }
    }

    function testFuzz_onlyOwnerMayChange(address caller, bytes32 vk) public {
        vm.assume(caller != ALICE);
        vm.assume(vk != bytes32(0) && uint256(vk) < P);
        uint32 id = registry.createRollup(ALICE, VK, ROOT, false, true);
        vm.startPrank(caller);
        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.NotOwner.selector, id, caller, ALICE));
        registry.setVkDigest(id, vk);
        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.NotOwner.selector, id, caller, ALICE));
        registry.setStateRoot(id, vk);
        vm.expectRevert(abi.encodeWithSelector(RollupRegistry.NotOwner.selector, id, caller, ALICE));
        registry.transferOwnership(id, caller);
        vm.stopPrank();
        assertEq(registry.getRollup(id).owner, ALICE, "owner unchanged");
        assertEq(registry.getRollup(id).vkDigest, VK, "vk unchanged");
    }
}
