//! `lockstep aggregator run`'s configuration: one TOML file, every field defaulted, flags on
//! top (see `docs/api.md`, "Running the service").
//!
//! ```toml
//! listen = "127.0.0.1:7420"
//! data_dir = "lockstep-data"
//! keys_dir = "keys"
//! max_body_bytes = 262144
//!
//! [domain]
//! chain_id = 31337
//! registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
//!
//! [[rollups]]
//! id = 1
//! circuit = "test-rollup"
//! ```

use std::{net::SocketAddr, path::PathBuf};

use eyre::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

use super::api::DEFAULT_MAX_BODY_BYTES;

/// The circuits a registered rollup may be proven with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollupCircuit {
    /// The test rollup (trivial state transition, common shape, k = 17); its key is made once
    /// in the key folder and cached.
    TestRollup,
}

/// One rollup the aggregator accepts proofs from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupConfig {
    /// Rollup id, as registered on L1.
    pub id: u32,
    /// The circuit its proofs are made with.
    pub circuit: RollupCircuit,
}

/// The deployment the proofs are bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// L1 chain id.
    pub chain_id: u64,
    /// The settlement (registry) contract, `0x` + 40 hex digits.
    pub registry: String,
}

impl Default for DomainConfig {
    fn default() -> Self {
        Self {
            chain_id: 31_337,
            registry: format!("0x{}", "00".repeat(20)),
        }
    }
}

/// The aggregator service's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregatorConfig {
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// RocksDB folder (slots, proofs, posts).
    pub data_dir: PathBuf,
    /// SRS files and circuit keys.
    pub keys_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The deployment.
    pub domain: DomainConfig,
    /// Registered rollups.
    pub rollups: Vec<RollupConfig>,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7420)),
            data_dir: PathBuf::from("lockstep-data"),
            keys_dir: PathBuf::from("keys"),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            domain: DomainConfig::default(),
            rollups: Vec::new(),
        }
    }
}

impl AggregatorConfig {
    /// Reads a TOML file (every field optional).
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .wrap_err_with(|| format!("reading config {}", path.display()))?;
        let config: Self =
            toml::from_str(&text).wrap_err_with(|| format!("parsing config {}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: unique non-zero rollup ids, a well-formed registry address.
    pub fn validate(&self) -> Result<()> {
        let mut ids: Vec<_> = self.rollups.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ensure!(
            !ids.contains(&0),
            "rollup id 0 is L1; registered rollups start at 1"
        );
        ensure!(
            ids.windows(2).all(|w| w[0] != w[1]),
            "a rollup id appears twice in [[rollups]]: {ids:?}"
        );
        self.registry_address()?;
        ensure!(
            self.max_body_bytes >= 1024,
            "max_body_bytes = {} is too small for any submission",
            self.max_body_bytes
        );
        Ok(())
    }

    /// The registry address as bytes.
    pub fn registry_address(&self) -> Result<[u8; 20]> {
        let digits = self
            .domain
            .registry
            .strip_prefix("0x")
            .unwrap_or(&self.domain.registry);
        let bytes = hex::decode(digits)
            .ok()
            .and_then(|b| <[u8; 20]>::try_from(b).ok());
        bytes.ok_or_else(|| {
            eyre::eyre!(
                "domain.registry = {:?} is not an address (0x + 40 hex digits)",
                self.domain.registry
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_a_partial_file_and_mistakes_are_named() {
        let config: AggregatorConfig = toml::from_str(
            "listen = \"0.0.0.0:9000\"\n[[rollups]]\nid = 2\ncircuit = \"test-rollup\"\n",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.rollups[0].circuit, RollupCircuit::TestRollup);
        config.validate().unwrap();

        let err = toml::from_str::<AggregatorConfig>("lisen = \"x\"").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = toml::from_str::<AggregatorConfig>("[[rollups]]\nid = 1\ncircuit = \"zk\"")
            .unwrap_err();
        assert!(err.to_string().contains("zk"), "{err}");

        let mut twice = config.clone();
        twice.rollups.push(twice.rollups[0].clone());
        assert!(twice.validate().unwrap_err().to_string().contains("twice"));
        let mut bad = config;
        bad.domain.registry = "0x1234".into();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not an address"));
    }
}
