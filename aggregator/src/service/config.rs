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
//! [[rollups]]                     # a rollup joins by its verifying-key file
//! id = 1
//! vk = "rollup-1.vk.json"         # `lockstep keys export-vk` writes one
//!
//! [[rollups]]
//! id = 2
//! vk = "rollup-2.vk.json"
//!
//! [aggregation]
//! k = 21                          # default: 21 for up to 2 rollups, 22 for up to 4
//!
//! [l1]                            # without it, slots stop in `posting`
//! rpc = "http://127.0.0.1:8545"
//! signer_key_env = "LOCKSTEP_L1_KEY"
//! sidecar = "eip7594"             # or "eip4844" (Cancun/Prague nodes)
//! poll_ms = 500
//! resend_after_secs = 60
//!
//! [builder]                       # without it, slots come only from POST /v1/slots
//! rollups = ["rollup-1.toml", "rollup-2.toml"]   # what the binary makes the rollups from
//! slot_ms = 2000                  # seal a slot this often when transactions wait
//! max_txs_per_slot = 64
//! max_pending = 10000
//! ```
//!
//! Relative paths in the file (`vk`, `builder.rollups`) are read from the file's folder.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use eyre::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

use super::api::DEFAULT_MAX_BODY_BYTES;

/// One rollup the aggregator accepts proofs from: its id on L1 and its verifying key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupConfig {
    /// Rollup id, as registered on L1.
    pub id: u32,
    /// Its verifying-key file (`lockstep_circuits::vk_file`): a key of the common shape; its
    /// digest must be the one L1's registry holds for the rollup.
    pub vk: PathBuf,
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

/// How aggregation proofs are made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregationSection {
    /// Degree of the aggregation circuit; `None` picks it from the number of rollups.
    pub k: Option<u32>,
}

/// The blob sidecar format of the L1 node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SidecarConfig {
    /// EIP-4844 blob proofs (Cancun, Prague).
    Eip4844,
    /// EIP-7594 cell proofs (Osaka and later; anvil's default).
    #[default]
    Eip7594,
}

/// How settlement transactions reach L1. The settlement contract is `domain.registry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L1Config {
    /// JSON-RPC URL of the L1 node.
    pub rpc: String,
    /// Environment variable holding the signer's private key (never the key itself in the file).
    pub signer_key_env: String,
    /// Blob sidecar format.
    pub sidecar: SidecarConfig,
    /// Milliseconds between receipt lookups.
    pub poll_ms: u64,
    /// Seconds without a receipt before the same signed transaction is sent again.
    pub resend_after_secs: u64,
}

impl Default for L1Config {
    fn default() -> Self {
        Self {
            rpc: "http://127.0.0.1:8545".into(),
            signer_key_env: "LOCKSTEP_L1_KEY".into(),
            sidecar: SidecarConfig::default(),
            poll_ms: 500,
            resend_after_secs: 60,
        }
    }
}

/// The service's own builder (`POST /v1/transactions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuilderConfig {
    /// The files the rollups it builds are made from, read by the binary that runs the service
    /// (for the reference rollup: deployment files, `docs/api.md`); each rollup must be
    /// registered.
    pub rollups: Vec<PathBuf>,
    /// Milliseconds between slots when transactions wait.
    pub slot_ms: u64,
    /// Most transactions in one slot.
    pub max_txs_per_slot: usize,
    /// Most transactions waiting; more are refused with `503 mempool_full`.
    pub max_pending: usize,
}

impl Default for BuilderConfig {
    fn default() -> Self {
        Self {
            rollups: Vec::new(),
            slot_ms: 2_000,
            max_txs_per_slot: 64,
            max_pending: 10_000,
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
    /// Aggregation proving.
    pub aggregation: AggregationSection,
    /// L1 posting; `None` leaves slots in `posting`.
    pub l1: Option<L1Config>,
    /// The service's builder; `None`: slots come only from `POST /v1/slots`.
    pub builder: Option<BuilderConfig>,
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
            aggregation: AggregationSection::default(),
            l1: None,
            builder: None,
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
        if let Some(l1) = &self.l1 {
            l1.rpc
                .parse::<alloy::transports::http::reqwest::Url>()
                .wrap_err_with(|| format!("l1.rpc = {:?} is not a URL", l1.rpc))?;
            ensure!(l1.poll_ms > 0, "l1.poll_ms must be positive");
            ensure!(
                l1.resend_after_secs > 0,
                "l1.resend_after_secs must be positive"
            );
        }
        if let Some(k) = self.aggregation.k {
            ensure!(
                (18..=26).contains(&k),
                "aggregation.k = {k} is outside 18..=26"
            );
        }
        if let Some(builder) = &self.builder {
            ensure!(
                !builder.rollups.is_empty(),
                "builder.rollups is empty: name the file of every rollup it builds"
            );
            ensure!(
                builder.slot_ms >= 100,
                "builder.slot_ms = {} is below 100",
                builder.slot_ms
            );
            ensure!(
                builder.max_txs_per_slot >= 1 && builder.max_pending >= 1,
                "builder.max_txs_per_slot and builder.max_pending must be positive"
            );
        }
        ensure!(
            self.max_body_bytes >= 1024,
            "max_body_bytes = {} is too small for any submission",
            self.max_body_bytes
        );
        Ok(())
    }

    /// Reads relative paths as relative to `folder` (the config file's).
    pub fn resolve_paths(&mut self, folder: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = folder.join(&*path);
            }
        };
        self.rollups.iter_mut().for_each(|r| resolve(&mut r.vk));
        if let Some(builder) = &mut self.builder {
            builder.rollups.iter_mut().for_each(resolve);
        }
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
            "listen = \"0.0.0.0:9000\"\n[[rollups]]\nid = 2\nvk = \"rollup-2.vk.json\"\n",
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.rollups[0].vk, PathBuf::from("rollup-2.vk.json"));
        config.validate().unwrap();

        let err = toml::from_str::<AggregatorConfig>("lisen = \"x\"").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        // Rollups join by key file only: a circuit name is refused.
        let err = toml::from_str::<AggregatorConfig>("[[rollups]]\nid = 1\ncircuit = \"stf\"")
            .unwrap_err();
        assert!(err.to_string().contains("circuit"), "{err}");

        let mut twice = config.clone();
        twice.rollups.push(twice.rollups[0].clone());
        assert!(twice.validate().unwrap_err().to_string().contains("twice"));
        let with_l1: AggregatorConfig =
            toml::from_str("[l1]\nrpc = \"http://127.0.0.1:9545\"\n[aggregation]\nk = 21\n")
                .unwrap();
        with_l1.validate().unwrap();
        let l1 = with_l1.l1.as_ref().unwrap();
        assert_eq!((l1.poll_ms, l1.sidecar), (500, SidecarConfig::Eip7594));
        assert_eq!(with_l1.aggregation.k, Some(21));
        let err =
            toml::from_str::<AggregatorConfig>("[l1]\nrpc = \"x\"\nkey = \"0x01\"\n").unwrap_err();
        assert!(err.to_string().contains("key"), "{err}");
        let mut bad_url = with_l1;
        bad_url.l1.as_mut().unwrap().rpc = "not a url".into();
        assert!(bad_url
            .validate()
            .unwrap_err()
            .to_string()
            .contains("l1.rpc"));

        let mut bad = config.clone();
        bad.domain.registry = "0x1234".into();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not an address"));

        // Relative paths are the config file's folder's.
        let mut located = config;
        located.builder = Some(BuilderConfig {
            rollups: vec!["rollup-2.toml".into(), "/abs/rollup-3.toml".into()],
            ..BuilderConfig::default()
        });
        located.resolve_paths(Path::new("/etc/lockstep"));
        assert_eq!(
            located.rollups[0].vk,
            Path::new("/etc/lockstep/rollup-2.vk.json")
        );
        assert_eq!(
            located.builder.unwrap().rollups,
            vec![
                PathBuf::from("/etc/lockstep/rollup-2.toml"),
                PathBuf::from("/abs/rollup-3.toml")
            ]
        );

        let built: AggregatorConfig =
            toml::from_str("[builder]\nrollups = [\"r1.toml\"]\nslot_ms = 500\n").unwrap();
        let builder = built.builder.clone().unwrap();
        assert_eq!((builder.slot_ms, builder.max_txs_per_slot), (500, 64));
        assert!(built.validate().is_ok());
        for (text, named) in [
            ("[builder]\n", "rollups is empty"),
            (
                "[builder]\nrollups = [\"r.toml\"]\nslot_ms = 5\n",
                "slot_ms",
            ),
            (
                "[builder]\nrollups = [\"r.toml\"]\nmax_pending = 0\n",
                "positive",
            ),
        ] {
            let config: AggregatorConfig = toml::from_str(text).unwrap();
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(named), "{text}: {err}");
        }
    }
}
