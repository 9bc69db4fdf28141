#!/usr/bin/env bash
# Lockstep's test command: setup, format and lint checks, contract artifacts in sync, the
# Foundry tests and the Rust tests (cargo nextest).
#
#   scripts/test.sh          the default tier (what CI runs): every check and every test but the
#                            long real-proof tests of the full tier; it still proves one slot of
#                            two different rollups (reference STF and tally circuits), aggregates
#                            them, checks the aggregation proof with the generated EVM verifier on
#                            anvil and settles it with LockstepSettlement.
#   scripts/test.sh --full   every test (nextest profile `full`, .config/nextest.toml). Run it
#                            before landing any change to circuits, keys, the pipeline or the
#                            contracts' verification path.
#
# Caches (override to simulate a fresh machine with empty folders):
#   CARGO_TARGET_DIR     build outputs      (default ~/.cache/lockstep/target)
#   LOCKSTEP_TEST_KEYS   SRS files and keys (default ~/.cache/lockstep/test-keys)
#   LOCKSTEP_TOOLS       the L1 toolchain   (default tools/ in the clone)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$LOCKSTEP_ROOT"

profile=default
for arg in "$@"; do
  case "$arg" in
    --full) profile=full ;;
    -h | --help)
      sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument $arg (expected --full or --help)" ;;
  esac
done

started=$(date +%s)
elapsed() {
  local s=$(($(date +%s) - started))
  printf '%d min %02d s' $((s / 60)) $((s % 60))
}

"$LOCKSTEP_ROOT/scripts/setup.sh"
info "tier: $profile; cargo target dir: $CARGO_TARGET_DIR; test keys: $LOCKSTEP_TEST_KEYS"

step "format: cargo fmt --check, forge fmt --check"
cargo fmt --all --check
(cd contracts && forge fmt --check)

step "contracts: forge build, artifacts in sync with the Solidity sources ($(elapsed))"
scripts/build-contracts.sh --check

step "layout: dependency rules, the service never depends on the reference rollup ($(elapsed))"
scripts/check-layout.sh

step "lint: cargo clippy --all-targets -D warnings ($(elapsed))"
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings

step "foundry tests: forge test ($(elapsed))"
(cd contracts && forge test)

step "rust tests, tier $profile: build ($(elapsed))"
cargo nextest run --workspace --locked --profile "$profile" --no-run
# nextest does not run doctests: run them first, so nextest's summary closes the log.
step "rust doctests ($(elapsed))"
cargo test --workspace --locked --doc --quiet
step "rust tests, tier $profile ($(elapsed))"
cargo nextest run --workspace --locked --profile "$profile" --no-fail-fast
step "done: tier $profile in $(elapsed)"
