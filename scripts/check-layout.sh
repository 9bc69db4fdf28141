#!/usr/bin/env bash
# The dependency rules of the layout (docs/architecture.md), checked with Cargo's own tooling:
#
# - lockstep-circuits (the protocol core) depends on no other workspace crate;
# - lockstep-rollup-api (the rollup interface) depends on the core only;
# - lockstep-reference-rollup and lockstep-tally-rollup (the rollups) on the core and the
#   interface only;
# - lockstep-rollup-adapter (the adapter daemon) on the core, the interface and the API types
#   only: it runs any rollup, and never the service;
# - lockstep-aggregator (the service) never on the example: rollups join it by their verifying-key
#   files and the `lockstep` binary (lockstep-cli) hands its builder the rollups it runs.
#
# - lockstep-api (the HTTP API's types and client) on nothing of the workspace, so any client can
#   use it.
#
# Only normal dependencies count: tests may use the example as a fixture.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$LOCKSTEP_ROOT"

failed=0
# allow PACKAGE ALLOWED...: fails if a workspace crate other than ALLOWED is in PACKAGE's normal
# dependency tree.
allow() {
  local package=$1
  shift
  local tree dep
  tree=$(cargo tree --locked -p "$package" -e normal --prefix none --format '{p}') ||
    die "cargo tree -p $package failed"
  for dep in $(awk '{print $1}' <<<"$tree" | grep '^lockstep-' | grep -vx "$package" | sort -u); do
    if [[ " $* " != *" $dep "* ]]; then
      printf 'error: %s depends on %s (allowed: %s)\n' "$package" "$dep" "${*:-nothing}" >&2
      failed=1
    fi
  done
}

allow lockstep-circuits
allow lockstep-rollup-api lockstep-circuits
allow lockstep-reference-rollup lockstep-circuits lockstep-rollup-api
allow lockstep-tally-rollup lockstep-circuits lockstep-rollup-api
allow lockstep-rollup-adapter lockstep-circuits lockstep-rollup-api lockstep-api
allow lockstep-storage
allow lockstep-contracts
allow lockstep-api
allow lockstep-aggregator lockstep-circuits lockstep-rollup-api lockstep-storage lockstep-contracts \
  lockstep-api

if ((failed)); then
  die "the layout's dependency rules are broken (docs/architecture.md, \"Dependency rules\")"
fi
info "dependencies point one way: core <- interface <- example, adapter and service <- the binary"
