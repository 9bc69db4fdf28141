//! A rollup's verifying key as a file: what a rollup team hands a cluster to join it.
//!
//! The aggregation is universal (DESIGN decision 4): it verifies any rollup circuit of the common
//! shape ([`crate::shape`]) from the circuit's verifying key alone, so a rollup joins a cluster by
//! its key, never by the aggregator knowing its circuit. The file is JSON:
//!
//! ```json
//! { "format": "lockstep-vk", "version": 1, "label": "reference rollup STF, k = 20, depth 16",
//!   "k": 20, "shape_version": 2, "vk_digest": "0x…", "vk": "0x…" }
//! ```
//!
//! - `vk` is halo2's `RawBytes` encoding of the key; it reads back with the common shape's
//!   parameters at `k`, so a key of any other shape is refused.
//! - `vk_digest` is [`crate::aggregation::vk_digest`] of the key's protocol: what the aggregation
//!   exposes and the L1 registry holds for the rollup. It is recomputed on load and must match.
//! - `label` is free text for logs and the API: it is not trusted for anything.

use std::{path::Path, sync::Arc};

use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, G1Affine},
    plonk::VerifyingKey,
    poly::kzg::commitment::ParamsKZG,
    SerdeFormat,
};
use serde::{Deserialize, Serialize};

use crate::{
    aggregation::vk_digest, fr_text::fr_hex, keys::KeyStore, layout::NUM_INSTANCES, prover, shape,
    Error, Fr, Result,
};

/// The `format` tag of a verifying-key file.
pub const VK_FILE_FORMAT: &str = "lockstep-vk";
/// Version of the file format.
pub const VK_FILE_VERSION: u32 = 1;

/// A verifying-key file, as read or about to be written (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VkFile {
    /// Always [`VK_FILE_FORMAT`].
    pub format: String,
    /// Always [`VK_FILE_VERSION`].
    pub version: u32,
    /// What the key is (free text, for logs).
    pub label: String,
    /// The circuit's degree.
    pub k: u32,
    /// The common shape's version the key was made with ([`shape::SHAPE_VERSION`]).
    pub shape_version: u32,
    /// The vk digest, `0x` and 64 hex digits (big-endian).
    pub vk_digest: String,
    /// The key, halo2 `RawBytes`, `0x` and hex.
    pub vk: String,
}

/// A rollup's key loaded from its file and checked.
#[derive(Debug, Clone)]
pub struct LoadedVk {
    /// The file's label.
    pub label: String,
    /// The key.
    pub vk: VerifyingKey<G1Affine>,
    /// The SRS of the key's `k` (from the key store), which verification uses.
    pub params: Arc<ParamsKZG<Bn256>>,
    /// The vk digest, recomputed.
    pub vk_digest: Fr,
}

impl VkFile {
    /// The file of `vk`, a key of the common shape at `params`' degree.
    pub fn new(
        label: impl Into<String>,
        params: &ParamsKZG<Bn256>,
        vk: &VerifyingKey<G1Affine>,
    ) -> Result<Self> {
        use halo2_base::halo2_proofs::poly::commitment::Params;
        let mut bytes = Vec::new();
        vk.write(&mut bytes, SerdeFormat::RawBytes)
            .map_err(|e| Error::InvalidProof(format!("writing a verifying key: {e}")))?;
        let digest = vk_digest(&prover::protocol(params, vk, NUM_INSTANCES));
        Ok(Self {
            format: VK_FILE_FORMAT.into(),
            version: VK_FILE_VERSION,
            label: label.into(),
            k: params.k(),
            shape_version: shape::SHAPE_VERSION,
            vk_digest: fr_hex(&digest),
            vk: format!("0x{}", hex::encode(bytes)),
        })
    }

    /// Reads a file written by [`Self::write`]; checks its format, version and shape version.
    pub fn read(path: &Path) -> Result<Self> {
        let error = |reason: String| Error::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let file: Self = serde_json::from_str(&text)
            .map_err(|e| error(format!("not a verifying-key file: {e}")))?;
        if file.format != VK_FILE_FORMAT || file.version != VK_FILE_VERSION {
            return Err(error(format!(
                "format {:?} version {}, expected {VK_FILE_FORMAT:?} version {VK_FILE_VERSION}",
                file.format, file.version
            )));
        }
        if file.shape_version != shape::SHAPE_VERSION {
            return Err(error(format!(
                "a key of common shape version {}, this build aggregates version {}",
                file.shape_version,
                shape::SHAPE_VERSION
            )));
        }
        Ok(file)
    }

    /// Writes the file (JSON), replacing any file at `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a VkFile serialises");
        std::fs::write(path, text + "\n").map_err(|e| Error::KeyFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The key, read with the common shape at `k`, its SRS from `keys`, and its digest, which
    /// must be the file's. `path` names the file in errors.
    pub fn load(&self, keys: &KeyStore, path: &Path) -> Result<LoadedVk> {
        let error = |reason: String| Error::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let shape = shape::rollup_params(self.k)?;
        let bytes = self
            .vk
            .strip_prefix("0x")
            .and_then(|digits| hex::decode(digits).ok())
            .ok_or_else(|| error("vk is not 0x-prefixed hex".into()))?;
        let vk = VerifyingKey::<G1Affine>::read::<_, shape::RollupCircuit>(
            &mut bytes.as_slice(),
            SerdeFormat::RawBytes,
            shape,
        )
        .map_err(|e| {
            error(format!(
                "not a key of the common shape at k = {}: {e}",
                self.k
            ))
        })?;
        let params = Arc::new(keys.load_srs(self.k)?);
        let digest = vk_digest(&prover::protocol(&params, &vk, NUM_INSTANCES));
        if fr_hex(&digest) != self.vk_digest.to_lowercase() {
            return Err(error(format!(
                "the key's digest is {}, the file says {}",
                fr_hex(&digest),
                self.vk_digest
            )));
        }
        Ok(LoadedVk {
            label: self.label.clone(),
            vk,
            params,
            vk_digest: digest,
        })
    }
}
