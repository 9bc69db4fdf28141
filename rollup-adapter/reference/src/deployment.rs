//! A reference rollup's deployment file: its genesis and the STF circuit its blocks are proven
//! with. The builder, the adapter and `lockstep keys export-vk` read the same file, so they
//! agree on the state, the block capacity and the key.
//!
//! ```toml
//! genesis = "genesis-1.json"      # relative paths are read from this file's folder
//! [stf]                           # without it: the test-rollup circuit (public inputs only)
//! k = 20
//! depth = 16                      # must be the genesis's tree_depth
//! capacity = { rows = 48, tape = 12, keys = 16, scratch = 96 }
//! lookup_bits = 19                # optional: bits of the range-check table, 8 to k − 1
//! ```

use std::path::{Path, PathBuf};

use lockstep_circuits::shape;
use serde::{Deserialize, Serialize};

use crate::{circuit::StfConfig, Error, Genesis, Result};

/// Largest degree accepted for an STF circuit (the SRS files go to 2^26).
pub const MAX_STF_K: u32 = 26;

/// The file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFile {
    /// The genesis file (JSON).
    pub genesis: PathBuf,
    /// The STF circuit's deployment; `None`: the rollup is proven with the test-rollup circuit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stf: Option<StfConfig>,
}

/// A deployment, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Where it was read from.
    pub path: PathBuf,
    /// The rollup's genesis.
    pub genesis: Genesis,
    /// Its STF circuit, if it is proven with one.
    pub stf: Option<StfConfig>,
}

impl Deployment {
    /// Reads a deployment file and its genesis, and checks them (see [`check_stf`]).
    pub fn read(path: &Path) -> Result<Self> {
        let error = |reason: String| Error::Genesis(format!("{}: {reason}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let file: DeploymentFile = toml::from_str(&text).map_err(|e| error(e.to_string()))?;
        let genesis_path = path.parent().unwrap_or(Path::new(".")).join(&file.genesis);
        let genesis = Genesis::read(&genesis_path)?;
        if let Some(stf) = &file.stf {
            check_stf(stf).map_err(error)?;
            if stf.depth != genesis.tree_depth {
                return Err(error(format!(
                    "stf.depth = {} but the genesis's tree_depth is {}",
                    stf.depth, genesis.tree_depth
                )));
            }
        }
        Ok(Self {
            path: path.to_owned(),
            genesis,
            stf: file.stf,
        })
    }

    /// A label for the circuit, in logs and key files.
    pub fn circuit_label(&self) -> String {
        match &self.stf {
            Some(stf) => format!(
                "reference rollup STF circuit, k = {}, depth {}, capacity {:?}, lookup bits {}",
                stf.k,
                stf.depth,
                stf.capacity,
                stf.table_bits()
            ),
            None => "test-rollup circuit (public inputs only)".into(),
        }
    }
}

/// Checks an STF deployment: `k` within the common shape's range and the SRS files', lookup
/// bits that the common shape allows at `k`, a tree depth of 1 to 64, a capacity that holds a
/// block.
pub fn check_stf(stf: &StfConfig) -> std::result::Result<(), String> {
    if !(shape::MIN_K..=MAX_STF_K).contains(&stf.k) {
        return Err(format!(
            "stf.k = {} is outside {}..={MAX_STF_K}",
            stf.k,
            shape::MIN_K
        ));
    }
    let most_bits = stf.k as usize - 1;
    if !(shape::MIN_LOOKUP_BITS..=most_bits).contains(&stf.table_bits()) {
        return Err(format!(
            "stf.lookup_bits = {} is outside {}..={most_bits} (k − 1)",
            stf.table_bits(),
            shape::MIN_LOOKUP_BITS
        ));
    }
    if !(1..=64).contains(&stf.depth) {
        return Err(format!("stf.depth = {} is outside 1..=64", stf.depth));
    }
    let c = stf.capacity;
    if !(c.rows >= 2 && c.tape >= 1 && c.keys >= 1 && c.scratch >= 1) {
        return Err(format!(
            "stf.capacity {c:?} holds no block (at least 2 rows, 1 tape step, 1 key and 1 \
             scratch cell)"
        ));
    }
    Ok(())
}
