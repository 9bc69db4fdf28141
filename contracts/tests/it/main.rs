//! Integration tests against a real anvil (needs `anvil` on PATH: scripts/setup.sh).

mod registry;
mod settlement;
