# shellcheck shell=bash
# Shared environment for Lockstep's scripts. Source it; do not run it.
#
# - LOCKSTEP_ROOT: the repository root.
# - LOCKSTEP_TOOLS: git-ignored folder holding the npm-installed L1 toolchain.
# - CARGO_TARGET_DIR: a build cache outside the clone (survives fresh clones on one
#   machine); override it to build elsewhere. A cold cache is slower, never wrong.
# - LOCKSTEP_TEST_KEYS: the real-proof tests' SRS files and keys, a cache like the above.
# Point both at empty folders (and LOCKSTEP_TOOLS too) to measure a fresh machine.

LOCKSTEP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCKSTEP_TOOLS="${LOCKSTEP_TOOLS:-$LOCKSTEP_ROOT/tools}"
export LOCKSTEP_ROOT LOCKSTEP_TOOLS
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lockstep/target}"
# SRS files and proving keys of the real-proof tests (circuits' `testing::persistent_key_store`).
export LOCKSTEP_TEST_KEYS="${LOCKSTEP_TEST_KEYS:-$HOME/.cache/lockstep/test-keys}"
export PATH="$LOCKSTEP_TOOLS/bin:$HOME/.cargo/bin:$PATH"
# forge reads its compiler from here (offline, solc-js behind a shim; see scripts/setup.sh).
export FOUNDRY_SOLC="$LOCKSTEP_TOOLS/bin/solc"
export FOUNDRY_OFFLINE=true

# Pinned versions of everything scripts/setup.sh installs.
LOCKSTEP_FOUNDRY_VERSION="1.7.1"
# solc for Lockstep's own contracts (needs >= 0.8.24 for `blobhash`, Cancun).
LOCKSTEP_SOLC_VERSION="0.8.28"
# snark-verifier-sdk 0.2.7 emits `pragma solidity 0.8.19` in generated verifiers.
LOCKSTEP_VERIFIER_SOLC_VERSION="0.8.19"
# cargo-nextest, installed from crates.io when the machine has none.
LOCKSTEP_NEXTEST_VERSION="0.9.143"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
