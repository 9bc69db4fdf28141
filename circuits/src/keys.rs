//! Structured reference strings and circuit keys on disk.
//!
//! Layout of a key store folder:
//!
//! ```text
//! <root>/srs/kzg_bn254_<k>.srs        KZG parameters, halo2 format (`ParamsKZG::write`)
//! <root>/pk/<name>-<digest>.pk        proving key (halo2 raw bytes)
//! <root>/pk/<name>-<digest>.json      circuit parameters and break points of that key
//! ```
//!
//! SRS files use the standard halo2/KZG params format, so a file converted from a real
//! powers-of-tau ceremony can be dropped in. [`KeyStore::load_srs`] derives a smaller `k` from
//! the smallest larger file by downsizing, and caches the result.
//!
//! [`KeyStore::generate_unsafe_test_srs`] makes an SRS from a fixed, public seed: anyone can
//! forge proofs against it. It exists for tests and the local demo only.
//!
//! Proving keys are cached under a digest of the circuit's configuration ([`config_digest`]):
//! any change of parameters, shape or circuit version gives a new digest and a new key.

use std::{
    fs::{self, File},
    io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::Instant,
};

use halo2_base::{
    gates::{circuit::builder::BaseCircuitBuilder, flex_gate::MultiPhaseThreadBreakPoints},
    halo2_proofs::{
        halo2curves::bn256::{Bn256, Fr, G1Affine},
        plonk::{keygen_pk, keygen_vk, Circuit, ProvingKey},
        poly::{commitment::Params, kzg::commitment::ParamsKZG},
        SerdeFormat,
    },
};
use rand::SeedableRng;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::info;

use crate::{Error, Result};

/// A circuit whose keygen records the break points the prover needs.
pub trait KeygenCircuit: Circuit<Fr> {
    /// Break points recorded by the last constraint-generating synthesis.
    fn break_points(&self) -> MultiPhaseThreadBreakPoints;
}

impl KeygenCircuit for BaseCircuitBuilder<Fr> {
    fn break_points(&self) -> MultiPhaseThreadBreakPoints {
        Self::break_points(self)
    }
}

/// Where a proving key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Read from the cache.
    Cache,
    /// Generated now (and written to the cache).
    Generated,
}

/// What is stored next to a proving key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyMeta<P> {
    /// Circuit name.
    pub name: String,
    /// Digest of the configuration the key was made for (hex).
    pub digest: String,
    /// The circuit parameters.
    pub circuit_params: P,
    /// Break points for the prover.
    pub break_points: MultiPhaseThreadBreakPoints,
    /// Length of the proving-key file in bytes.
    pub pk_len: u64,
    /// SHA-256 of the proving-key file (hex): halo2 trusts the bytes it reads, so they are
    /// checked before parsing.
    pub pk_sha256: String,
}

/// A proving key with what the prover needs besides it.
#[derive(Debug)]
pub struct CircuitKey<P> {
    /// The proving key (holds the verifying key).
    pub pk: ProvingKey<G1Affine>,
    /// Parameters and break points.
    pub meta: KeyMeta<P>,
    /// Cache hit or fresh keygen.
    pub source: KeySource,
}

/// Hex SHA-256 of the canonical JSON of `config`: the cache key of a circuit configuration.
pub fn config_digest(config: &impl Serialize) -> String {
    let json = serde_json::to_vec(config).expect("configs serialize");
    hex::encode(Sha256::digest(json))
}

/// A folder of SRS files and cached keys.
#[derive(Debug, Clone)]
pub struct KeyStore {
    root: PathBuf,
}

impl KeyStore {
    /// Opens (creating if needed) the key store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for sub in ["srs", "pk"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| key_err(&dir, e))?;
        }
        Ok(Self { root })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of the SRS file for `2^k` rows.
    pub fn srs_path(&self, k: u32) -> PathBuf {
        self.root.join("srs").join(format!("kzg_bn254_{k}.srs"))
    }

    /// Loads the SRS for `k`: the exact file, else the smallest larger one downsized (the result
    /// is cached as the file for `k`).
    pub fn load_srs(&self, k: u32) -> Result<ParamsKZG<Bn256>> {
        let exact = self.srs_path(k);
        if exact.exists() {
            return read_srs(&exact, k);
        }
        let larger = (k + 1..=28)
            .map(|big| self.srs_path(big))
            .find(|p| p.exists());
        let Some(larger) = larger else {
            return Err(Error::KeyFile {
                path: exact,
                reason: format!(
                    "no SRS for k ≥ {k} in {}: put a ceremony file (halo2 KZG format) there, or for \
                     tests and the demo run `lockstep keys unsafe-test-srs --k {k}`",
                    self.root.join("srs").display()
                ),
            });
        };
        let mut params = read_srs(&larger, 0)?;
        let started = Instant::now();
        params.downsize(k);
        info!(from = %larger.display(), k, seconds = started.elapsed().as_secs_f64(), "downsized SRS");
        write_atomically(&exact, |w| params.write(w))?;
        Ok(params)
    }

    /// Generates an SRS for `k` from a fixed public seed and stores it.
    ///
    /// **Unsafe**: the toxic waste is derivable from the seed; proofs against this SRS prove
    /// nothing to anyone but yourself. For tests and the local demo only.
    pub fn generate_unsafe_test_srs(&self, k: u32) -> Result<ParamsKZG<Bn256>> {
        let path = self.srs_path(k);
        let started = Instant::now();
        info!(k, "generating an UNSAFE test SRS (fixed public seed)");
        let params = unsafe_test_srs(k);
        write_atomically(&path, |w| params.write(w))?;
        info!(k, seconds = started.elapsed().as_secs_f64(), path = %path.display(), "UNSAFE test SRS written");
        Ok(params)
    }

    /// The SRS for `k`, loading it if present and otherwise generating the unsafe test SRS.
    /// For tests and the demo only (see [`Self::generate_unsafe_test_srs`]).
    ///
    /// When only a larger *unsafe test* SRS is present, the one for `k` is generated rather
    /// than downsized from it: both are the powers of the same seeded secret, so the points are
    /// identical, and generating is much faster (downsizing recomputes the Lagrange basis with
    /// an FFT over G1: 13 minutes from k = 21 to 19 here, where generating k = 19 takes about
    /// one). A larger file of another origin (a ceremony) is downsized as [`Self::load_srs`]
    /// does.
    pub fn load_or_generate_unsafe_test_srs(&self, k: u32) -> Result<ParamsKZG<Bn256>> {
        if !self.srs_path(k).exists() {
            let larger = (k + 1..=MAX_SRS_K)
                .map(|big| self.srs_path(big))
                .find(|p| p.exists());
            if let Some(larger) = larger {
                if is_unsafe_test_srs(&read_srs(&larger, 0)?) {
                    return self.generate_unsafe_test_srs(k);
                }
            }
        }
        match self.load_srs(k) {
            Ok(params) => Ok(params),
            Err(Error::KeyFile { .. }) => self.generate_unsafe_test_srs(k),
            Err(e) => Err(e),
        }
    }

    /// Checks `file` (a halo2 KZG params file) and copies it into the store; returns its `k`.
    pub fn import_srs(&self, file: &Path) -> Result<u32> {
        let params = read_srs(file, 0)?;
        let k = params.k();
        write_atomically(&self.srs_path(k), |w| params.write(w))?;
        Ok(k)
    }

    /// Paths of the cached proving key and its metadata for `name` at `digest`.
    pub fn key_paths(&self, name: &str, digest: &str) -> (PathBuf, PathBuf) {
        let stem = format!("{name}-{}", &digest[..16.min(digest.len())]);
        let dir = self.root.join("pk");
        (
            dir.join(format!("{stem}.pk")),
            dir.join(format!("{stem}.json")),
        )
    }

    /// The proving key of circuit `name` with configuration digest `digest`: from the cache, or
    /// made by keygen over `keygen_circuit()` and cached with the circuit's parameters (as
    /// configured after building it) and break points. An unreadable cache entry is rebuilt.
    pub fn proving_key<C, F>(
        &self,
        name: &str,
        digest: &str,
        params: &ParamsKZG<Bn256>,
        keygen_circuit: F,
    ) -> Result<CircuitKey<C::Params>>
    where
        C: KeygenCircuit,
        C::Params: Serialize + DeserializeOwned + Clone,
        F: FnOnce() -> Result<C>,
    {
        let (pk_path, meta_path) = self.key_paths(name, digest);
        if pk_path.exists() && meta_path.exists() {
            match self.read_key::<C>(&pk_path, &meta_path, digest) {
                Ok((pk, meta)) => {
                    return Ok(CircuitKey {
                        pk,
                        meta,
                        source: KeySource::Cache,
                    })
                }
                Err(err) => info!(%err, "cached key unreadable; regenerating"),
            }
        }
        let circuit = keygen_circuit()?;
        let pk = keygen(name, params, &circuit).map_err(|reason| key_err(&pk_path, reason))?;
        let mut bytes = Vec::new();
        pk.write(&mut bytes, SerdeFormat::RawBytes)
            .map_err(|e| key_err(&pk_path, e))?;
        let meta = KeyMeta {
            name: name.to_owned(),
            digest: digest.to_owned(),
            circuit_params: circuit.params(),
            break_points: circuit.break_points(),
            pk_len: bytes.len() as u64,
            pk_sha256: hex::encode(Sha256::digest(&bytes)),
        };
        write_atomically(&pk_path, |w| w.write_all(&bytes))?;
        drop(bytes);
        let json = serde_json::to_vec_pretty(&meta).expect("metadata serializes");
        write_atomically(&meta_path, |w| w.write_all(&json))?;
        Ok(CircuitKey {
            pk,
            meta,
            source: KeySource::Generated,
        })
    }

    fn read_key<C>(
        &self,
        pk_path: &Path,
        meta_path: &Path,
        digest: &str,
    ) -> Result<(ProvingKey<G1Affine>, KeyMeta<C::Params>)>
    where
        C: KeygenCircuit,
        C::Params: DeserializeOwned + Clone,
    {
        let meta: KeyMeta<C::Params> =
            serde_json::from_slice(&fs::read(meta_path).map_err(|e| key_err(meta_path, e))?)
                .map_err(|e| key_err(meta_path, format!("bad metadata: {e}")))?;
        if meta.digest != digest {
            return Err(key_err(
                meta_path,
                format!("digest {} does not match {digest}", meta.digest),
            ));
        }
        let len = fs::metadata(pk_path)
            .map_err(|e| key_err(pk_path, e))?
            .len();
        if len != meta.pk_len {
            return Err(key_err(
                pk_path,
                format!("{len} bytes, expected {}", meta.pk_len),
            ));
        }
        let bytes = fs::read(pk_path).map_err(|e| key_err(pk_path, e))?;
        let sha = hex::encode(Sha256::digest(&bytes));
        if sha != meta.pk_sha256 {
            return Err(key_err(
                pk_path,
                format!("checksum {sha} does not match {}", meta.pk_sha256),
            ));
        }
        let pk = ProvingKey::<G1Affine>::read::<_, C>(
            &mut bytes.as_slice(),
            SerdeFormat::RawBytes,
            meta.circuit_params.clone(),
        )
        .map_err(|e| key_err(pk_path, format!("bad proving key: {e}")))?;
        Ok((pk, meta))
    }
}

/// Runs keygen (verifying then proving key) for `circuit`, logging progress.
pub fn keygen<C: Circuit<Fr>>(
    name: &str,
    params: &ParamsKZG<Bn256>,
    circuit: &C,
) -> Result<ProvingKey<G1Affine>, String> {
    let started = Instant::now();
    info!(name, k = params.k(), "keygen: verifying key");
    let vk = keygen_vk(params, circuit).map_err(|e| format!("keygen_vk: {e:?}"))?;
    info!(
        name,
        seconds = started.elapsed().as_secs_f64(),
        "keygen: proving key"
    );
    let pk = keygen_pk(params, vk, circuit).map_err(|e| format!("keygen_pk: {e:?}"))?;
    info!(
        name,
        seconds = started.elapsed().as_secs_f64(),
        "keygen done"
    );
    Ok(pk)
}

/// The unsafe test SRS for `k`, from a fixed public seed (see
/// [`KeyStore::generate_unsafe_test_srs`]). The same seed at every `k`, so a downsized larger
/// test SRS equals the smaller one.
pub fn unsafe_test_srs(k: u32) -> ParamsKZG<Bn256> {
    ParamsKZG::<Bn256>::setup(k, unsafe_seed())
}

/// The seeded randomness of the unsafe test SRS; its first draw is the secret.
fn unsafe_seed() -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::from_seed([0u8; 32])
}

/// Whether `params` are the unsafe test SRS (of any size): its second point is the seeded
/// secret times the generator.
pub fn is_unsafe_test_srs(params: &ParamsKZG<Bn256>) -> bool {
    use halo2_base::halo2_proofs::{arithmetic::Field, poly::commitment::ParamsProver};
    let secret = Fr::random(unsafe_seed());
    let expected = (G1Affine::generator() * secret).into();
    params.get_g().get(1) == Some(&expected)
}

/// Largest `k` accepted from an SRS file header.
const MAX_SRS_K: u32 = 28;

fn read_srs(path: &Path, expected_k: u32) -> Result<ParamsKZG<Bn256>> {
    let mut file = File::open(path).map_err(|e| key_err(path, e))?;
    // halo2 reads k from the header and trusts it: check it against the file size first.
    let mut header = [0u8; 4];
    file.read_exact(&mut header)
        .map_err(|e| key_err(path, format!("no SRS header: {e}")))?;
    let k = u32::from_le_bytes(header);
    let len = file.metadata().map_err(|e| key_err(path, e))?.len();
    // 2^k G1 points twice (monomial and Lagrange), 64 bytes each, plus two G2 points.
    let expected_len = (k <= MAX_SRS_K).then(|| 4 + (128u64 << k) + 2 * 128);
    if expected_len != Some(len) {
        return Err(key_err(
            path,
            format!("not a halo2 KZG params file (header k = {k}, {len} bytes)"),
        ));
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| key_err(path, e))?;
    let params = ParamsKZG::<Bn256>::read(&mut BufReader::new(file))
        .map_err(|e| key_err(path, format!("not a halo2 KZG params file: {e}")))?;
    if expected_k != 0 && params.k() != expected_k {
        return Err(key_err(
            path,
            format!("holds k = {}, expected {expected_k}", params.k()),
        ));
    }
    Ok(params)
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut writer = BufWriter::new(File::create(&tmp)?);
        write(&mut writer)?;
        writer.flush()?;
        writer.get_ref().sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        key_err(path, e)
    })
}

// Takes io errors and messages alike by value, for terse call sites.
#[allow(clippy::needless_pass_by_value)]
fn key_err(path: &Path, reason: impl ToString) -> Error {
    Error::KeyFile {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}
