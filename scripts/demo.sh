#!/usr/bin/env bash
# Lockstep's main job: the local end-to-end cluster (`lockstep demo`). Installs what it needs,
# builds the `lockstep` binary and runs it; every process it starts is stopped on exit.
# Extra arguments go to `lockstep demo` (see `lockstep demo --help`), e.g. `--slots 1`,
# `--all-rollups` (three rollups in every slot) or `--out DIR`.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$LOCKSTEP_ROOT"

"$LOCKSTEP_ROOT/scripts/setup.sh"

# The dev profile builds every dependency and the circuit crate at opt-level 3 (Cargo.toml),
# so proving runs at full speed, and it shares the build cache with scripts/test.sh.
step "building lockstep"
cargo build --locked --quiet -p lockstep-cli --bin lockstep

step "lockstep demo"
# The output folder defaults to demo-out/ in the clone; `--out DIR` among the arguments wins.
LOCKSTEP_DEMO_OUT="${LOCKSTEP_DEMO_OUT:-$LOCKSTEP_ROOT/demo-out}" \
  "$CARGO_TARGET_DIR/debug/lockstep" demo "$@" &
pid=$!
# The demo stops anvil itself on every path (and anvil dies with it); this covers the script
# being interrupted or terminated while the demo runs.
trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT INT TERM
wait "$pid"
