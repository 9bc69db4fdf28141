// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title RollupRegistry
/// @notice The L1 registry of Lockstep rollups: who owns each rollup, which verifying key
/// its blocks are proven under (by digest), and its current state root.
///
/// Rollup ids start at 1; id 0 stands for L1 itself in cross-rollup call entries and is never
/// registered. Verifying-key digests and state roots are BN254 scalar-field elements (they are
/// public inputs of the aggregated proof), so values at or above the field modulus are rejected.
///
/// Owner powers follow the design seeds: the owner of a rollup may point it at a new verifying
/// key, hand ownership on (or renounce it by transferring to the zero address, which freezes the
/// verifying key for good), and, only for rollups created owner-controlled, set the state root
/// directly. Every change emits an event.
contract RollupRegistry {
    /// @notice Order of the BN254 scalar field: every public input must be below it.
    uint256 public constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    struct Rollup {
        /// Current owner; zero once ownership was renounced.
        address owner;
        /// Whether the rollup uses its own native token (then it can never move ETH value).
        bool nativeToken;
        /// Whether the owner may set the state root directly.
        bool ownerControlledRoot;
        /// Digest of the verifying key its blocks must be proven under.
        bytes32 vkDigest;
        /// Latest settled (or owner-set) state root.
        bytes32 stateRoot;
        /// ETH (wei) held on L1 for this rollup: deposits plus settled deltas. Never negative.
        uint256 ethBalance;
    }

    /// @notice Number of rollups created so far; the last id handed out.
    uint32 public rollupCount;

    mapping(uint32 id => Rollup) internal rollups;

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

    /// @notice No rollup has this id.
    error UnknownRollup(uint32 id);
    /// @notice The caller is not the rollup's owner.
    error NotOwner(uint32 id, address caller, address owner);
    /// @notice A digest or root is not a BN254 scalar-field element, or the digest is zero.
    error NotAFieldElement(bytes32 value);
    /// @notice The rollup was not created owner-controlled: only proofs move its state root.
    error RootNotOwnerControlled(uint32 id);
    /// @notice An owner-controlled rollup needs an owner.
    error OwnerRequired();
    /// @notice Every id up to 2^32 - 1 is taken.
    error RegistryFull();

    modifier onlyOwner(uint32 id) {
        address owner = _rollup(id).owner;
        if (msg.sender != owner) revert NotOwner(id, msg.sender, owner);
        _;
    }

    /// @notice Registers a rollup and returns its id.
    /// @param owner Holder of the owner powers; the zero address creates an ownerless rollup.
    /// @param vkDigest Digest of the verifying key (non-zero field element).
    /// @param initialStateRoot Genesis state root (field element).
    /// @param nativeToken True if the rollup uses its own token: it may never move ETH value.
    /// @param ownerControlledRoot True if the owner may set the state root directly.
    function createRollup(
        address owner,
        bytes32 vkDigest,
        bytes32 initialStateRoot,
        bool nativeToken,
        bool ownerControlledRoot
    ) external returns (uint32 id) {
        _checkDigest(vkDigest);
        _checkField(initialStateRoot);
        if (ownerControlledRoot && owner == address(0)) revert OwnerRequired();
        if (rollupCount == type(uint32).max) revert RegistryFull();
        id = ++rollupCount;
        rollups[id] = Rollup({
            owner: owner,
            nativeToken: nativeToken,
            ownerControlledRoot: ownerControlledRoot,
            vkDigest: vkDigest,
            stateRoot: initialStateRoot,
            ethBalance: 0
        });
        emit RollupCreated(id, owner, vkDigest, initialStateRoot, nativeToken, ownerControlledRoot);
    }

    /// @notice Points the rollup at a new verifying key.
    function setVkDigest(uint32 id, bytes32 vkDigest) external onlyOwner(id) {
        _checkDigest(vkDigest);
        bytes32 previous = rollups[id].vkDigest;
        rollups[id].vkDigest = vkDigest;
        emit VkDigestUpdated(id, previous, vkDigest);
    }

    /// @notice Hands the owner powers to `newOwner`; the zero address renounces them, which also
    /// ends owner control of the state root.
    function transferOwnership(uint32 id, address newOwner) external onlyOwner(id) {
        Rollup storage rollup = rollups[id];
        emit OwnershipTransferred(id, rollup.owner, newOwner);
        rollup.owner = newOwner;
        if (newOwner == address(0)) rollup.ownerControlledRoot = false;
    }

    /// @notice Sets the state root of an owner-controlled rollup.
    function setStateRoot(uint32 id, bytes32 stateRoot) external onlyOwner(id) {
        Rollup storage rollup = rollups[id];
        if (!rollup.ownerControlledRoot) revert RootNotOwnerControlled(id);
        _checkField(stateRoot);
        emit StateRootSetByOwner(id, rollup.stateRoot, stateRoot);
        rollup.stateRoot = stateRoot;
    }

    /// @notice Everything the registry holds about rollup `id`, its ETH balance included.
    function getRollup(uint32 id) external view returns (Rollup memory) {
        return _rollup(id);
    }

    /// @notice Whether `id` names a registered rollup.
    function exists(uint32 id) public view returns (bool) {
        return id != 0 && id <= rollupCount;
    }

    function _rollup(uint32 id) internal view returns (Rollup storage) {
        if (!exists(id)) revert UnknownRollup(id);
        return rollups[id];
    }

    function _checkField(bytes32 value) internal pure {
        if (uint256(value) >= SNARK_SCALAR_FIELD) revert NotAFieldElement(value);
    }

    function _checkDigest(bytes32 value) internal pure {
        if (value == bytes32(0)) revert NotAFieldElement(value);
        _checkField(value);
    }
}
