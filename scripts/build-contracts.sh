#!/usr/bin/env bash
# Builds the Foundry project in contracts/ and refreshes the committed artifacts that the
# Rust bindings (`alloy::sol!` in contracts/src) are generated from:
#   contracts/artifacts/<Contract>.json = { abi, bytecode, deployedBytecode }
# With --check, fails if the committed artifacts differ from a fresh build (CI uses this
# so bindings can never drift from the Solidity sources).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

check=false
[ "${1:-}" = "--check" ] && check=true

cd "$LOCKSTEP_ROOT/contracts"
forge build --quiet

dest=artifacts
if $check; then dest="$(mktemp -d)"; trap 'rm -rf "$dest"' EXIT; fi

node - "$dest" <<'JS'
const fs = require('fs');
const path = require('path');
const dest = process.argv[2];
fs.mkdirSync(dest, { recursive: true });
const sources = fs.readdirSync('solidity').filter((f) => f.endsWith('.sol'));
for (const source of sources) {
  const dir = path.join('out', source);
  for (const file of fs.readdirSync(dir)) {
    const artifact = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    const code = artifact.bytecode && artifact.bytecode.object;
    // Interfaces and abstract contracts have no code: nothing to deploy, no artifact.
    if (!code || code === '0x') continue;
    const out = {
      abi: artifact.abi,
      bytecode: { object: code },
      deployedBytecode: { object: artifact.deployedBytecode.object },
    };
    fs.writeFileSync(path.join(dest, file), JSON.stringify(out, null, 2) + '\n');
  }
}
JS

if $check; then
  if ! diff -r -q "$dest" artifacts >/dev/null; then
    diff -r -q "$dest" artifacts || true
    die "contracts/artifacts is stale: run scripts/build-contracts.sh and commit the result"
  fi
fi
