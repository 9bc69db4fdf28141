#!/usr/bin/env bash
# Lockstep's test command: setup, format and lint checks, contract artifacts in sync, the
# Rust tests (cargo nextest when installed, else cargo test) and the Foundry tests.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$LOCKSTEP_ROOT"

"$LOCKSTEP_ROOT/scripts/setup.sh"
info "cargo target dir: $CARGO_TARGET_DIR"

step "format: cargo fmt --check, forge fmt --check"
cargo fmt --all --check
(cd contracts && forge fmt --check)

step "contracts: forge build, artifacts in sync with the Solidity sources"
scripts/build-contracts.sh --check

step "lint: cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings

step "foundry tests: forge test"
(cd contracts && forge test)

step "rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doctests: run them first, so nextest's summary closes the log.
  cargo test --workspace --locked --doc --quiet
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
