// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {DevModeVerifier} from "../solidity/DevModeVerifier.sol";

contract DevModeVerifierTest is Test {
    DevModeVerifier internal verifier;

    function setUp() public {
        vm.chainId(31337);
        verifier = new DevModeVerifier();
    }

    function _call(bytes memory input) internal view returns (bool ok, bytes memory ret) {
        (ok, ret) = address(verifier).staticcall(input);
    }

    function test_acceptsAnyInputsWithTheMarker(bytes32 a, bytes32 b) public view {
        (bool ok,) = _call(abi.encodePacked(a, b, verifier.DEV_MODE_PROOF()));
        assertTrue(ok, "inputs followed by the marker");
        (ok,) = _call(abi.encodePacked(verifier.DEV_MODE_PROOF()));
        assertTrue(ok, "the marker alone");
    }

    function test_refusesAnythingButTheMarker(bytes32 a, bytes32 proof) public view {
        vm.assume(proof != verifier.DEV_MODE_PROOF());
        (bool ok, bytes memory ret) = _call(abi.encodePacked(a, proof));
        assertTrue(!ok, "another proof");
        assertEq(bytes4(ret), DevModeVerifier.NotADevModeProof.selector, "reason");
        (ok,) = _call(hex"");
        assertTrue(!ok, "no input");
        (ok,) = _call(hex"0102");
        assertTrue(!ok, "too short");
        // The marker must be last: a real proof after it is not a dev-mode call.
        (ok,) = _call(abi.encodePacked(verifier.DEV_MODE_PROOF(), proof));
        assertTrue(!ok, "marker then a proof");
    }

    function test_refusesEveryCallOffTheDevChain() public {
        bytes memory input = abi.encodePacked(bytes32(0), verifier.DEV_MODE_PROOF());
        vm.chainId(1);
        (bool ok, bytes memory ret) = _call(input);
        assertTrue(!ok, "on chain 1");
        assertEq(bytes4(ret), DevModeVerifier.NotADevChain.selector, "reason");
    }

    function test_cannotBeDeployedOffTheDevChain() public {
        vm.chainId(1);
        vm.expectRevert(abi.encodeWithSelector(DevModeVerifier.NotADevChain.selector, 1));
        new DevModeVerifier();
    }
}
