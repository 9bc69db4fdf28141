// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The subset of Foundry's cheatcodes that Lockstep's tests use.
interface Vm {
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function expectRevert(bytes calldata revertData) external;
    function expectRevert(bytes4 selector) external;
    function expectRevert() external;
    function expectEmit(bool topic1, bool topic2, bool topic3, bool data) external;
    function expectEmit(bool topic1, bool topic2, bool topic3, bool data, address emitter) external;
    function assume(bool condition) external pure;
    function deal(address account, uint256 balance) external;
    function roll(uint256 blockNumber) external;
    function warp(uint256 timestamp) external;
    function chainId(uint256 newChainId) external;
    function blobhashes(bytes32[] calldata hashes) external;
}

/// @notice Minimal test base: cheatcodes, assertions that revert with the values compared,
/// and the hooks forge's invariant runner reads.
abstract contract Test {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    /// @dev forge reads this flag for `testFail`-style tests; assertions here revert instead.
    bool public IS_TEST = true;

    address[] private targets;

    function targetContract(address target) internal {
        targets.push(target);
    }

    /// @dev Read by forge's invariant runner: the contracts whose functions it calls.
    function targetContracts() public view returns (address[] memory) {
        return targets;
    }

    function fail(string memory message) internal pure {
        revert(message);
    }

    function assertTrue(bool condition, string memory message) internal pure {
        if (!condition) revert(message);
    }

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": ", _str(a), " != ", _str(b)));
    }

    function assertEq(int256 a, int256 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": int256 values differ"));
    }

    function assertEq(bytes32 a, bytes32 b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": bytes32 values differ"));
    }

    function assertEq(address a, address b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": addresses differ"));
    }

    function assertEq(bool a, bool b, string memory what) internal pure {
        if (a != b) revert(string.concat(what, ": booleans differ"));
    }

    function _str(uint256 v) private pure returns (string memory) {
        if (v == 0) return "0";
        bytes memory buf = new bytes(78);
        uint256 i = buf.length;
        while (v != 0) {
            // casting to 'uint8' is safe because 48 + (v % 10) < 58
            // forge-lint: disable-next-line(unsafe-typecast)
            buf[--i] = bytes1(uint8(48 + v % 10));
            v /= 10;
        }
        bytes memory out = new bytes(buf.length - i);
        for (uint256 j = 0; j < out.length; j++) {
            out[j] = buf[i + j];
        }
        return string(out);
    }
}
