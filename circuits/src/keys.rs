//! Structured reference strings and circuit keys on disk.
//!
//! Layout of a key store folder:
//!
//! ```text
//! <root>/srs/kzg_bn254_<k>.srs        KZG parameters, halo2 format (`ParamsKZG::write`)
//! <root>/pk/<name>-<digest>.pk        proving key (halo2 raw bytes)
//! <root>/pk/<name>-<digest>.json      circuit parameters and break points of that key
//! <root>/pk/<name>-<digest>.timings.json  how long the last proof with that key took
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
//!
//! # Estimates
//!
//! Keygen and proving show their progress ([`crate::progress`]) with an estimate from an
//! earlier run where the store has one:
//! - **keygen**: each key's metadata records how long its keygen took and at which `k`
//!   ([`KeyMeta::keygen_seconds`]). The next keygen of a circuit of the same name (a new
//!   configuration, or a deleted cache) is estimated from the most recent one, scaled by
//!   `2^(k − its k)` ([`KeyStore::keygen_estimate`]).
//! - **proving**: after each proof with a key from a store, the time it took (proving and the
//!   native check) is written to the key's `.timings.json` ([`KeyTimings`]); the next proof with
//!   that key shows it as its estimate. The provers see only the proving key, so the store
//!   remembers, for the life of the process, which timings file belongs to the verifying key of
//!   each key it hands out. A key made elsewhere (benchmarks) shows its elapsed time only.

use std::{
    fs::{self, File},
    io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, PoisonError,
    },
    time::{Duration, Instant, SystemTime},
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
use tracing::{debug, info};

use crate::{progress::Progress, Error, Result};

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
    /// Seconds keygen took when this key was made: the estimate for the next keygen of a
    /// circuit of this name. Absent from metadata written before it was recorded.
    #[serde(default)]
    pub keygen_seconds: Option<f64>,
    /// The `k` of that keygen (an estimate for another `k` is scaled by `2^Δk`).
    #[serde(default)]
    pub keygen_k: Option<u32>,
}

/// Timings measured with one cached key (`<root>/pk/<name>-<digest>.timings.json`), rewritten
/// atomically after each proof with it. Advisory: a missing or unreadable file means no
/// estimate, never an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyTimings {
    /// Seconds the last proof with this key took, proving and the native check together.
    #[serde(default)]
    pub prove_seconds: Option<f64>,
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
        // Downsizing recomputes the Lagrange basis with an FFT over G1: minutes at k ≥ 20.
        let downsizing = Progress::start(
            format!(
                "downsizing the SRS {} from k = {} to {k}",
                larger.display(),
                params.k()
            ),
            None,
            None,
        );
        params.downsize(k);
        write_atomically(&exact, |w| params.write(w))?;
        downsizing.finish();
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
    /// an FFT over G1: 13 minutes from k = 21 to 19 here, where generating k = 19 takes 14 s).
    /// A larger file of another origin (a ceremony) is downsized as [`Self::load_srs`] does.
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

    /// Path of the timings of the cached key for `name` at `digest` ([`KeyTimings`]).
    pub fn timings_path(&self, name: &str, digest: &str) -> PathBuf {
        self.key_paths(name, digest)
            .1
            .with_extension("timings.json")
    }

    /// How long keygen of circuit `name` at `k` should take: the most recent keygen of a
    /// circuit of that name recorded in this store (any configuration), scaled by
    /// `2^(k − its k)`. `None` before the first keygen of that name here.
    pub fn keygen_estimate(&self, name: &str, k: u32) -> Option<Duration> {
        /// The part of a [`KeyMeta`] an estimate needs, whatever its circuit parameters.
        #[derive(Deserialize)]
        struct Recorded {
            name: String,
            keygen_seconds: Option<f64>,
            keygen_k: Option<u32>,
        }
        let prefix = format!("{name}-");
        let mut latest: Option<(SystemTime, f64, u32)> = None;
        for entry in fs::read_dir(self.root.join("pk")).ok()?.flatten() {
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            if !file.starts_with(&prefix)
                || !file.ends_with(".json")
                || file.ends_with(".timings.json")
            {
                continue;
            }
            let Ok(recorded) = fs::read(entry.path())
                .map_err(drop)
                .and_then(|bytes| serde_json::from_slice::<Recorded>(&bytes).map_err(drop))
            else {
                continue;
            };
            let (Some(seconds), Some(at), true) = (
                recorded.keygen_seconds,
                recorded.keygen_k,
                recorded.name == name,
            ) else {
                continue;
            };
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if latest.is_none_or(|(newest, ..)| modified > newest) {
                latest = Some((modified, seconds, at));
            }
        }
        let (_, seconds, at) = latest?;
        let scaled = seconds * 2f64.powi(k as i32 - at as i32);
        Duration::try_from_secs_f64(scaled).ok()
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
        let timings_path = self.timings_path(name, digest);
        if pk_path.exists() && meta_path.exists() {
            let loading = Progress::start(format!("loading the {name} proving key"), None, None);
            match self.read_key::<C>(&pk_path, &meta_path, digest) {
                Ok((pk, meta)) => {
                    loading.finish();
                    remember_timings(&pk, name, timings_path);
                    return Ok(CircuitKey {
                        pk,
                        meta,
                        source: KeySource::Cache,
                    });
                }
                Err(err) => {
                    drop(loading);
                    info!(%err, "cached key unreadable; regenerating");
                }
            }
        }
        let circuit = keygen_circuit()?;
        let estimate = self.keygen_estimate(name, params.k());
        let started = Instant::now();
        let pk = keygen_estimated(name, params, &circuit, estimate)
            .map_err(|reason| key_err(&pk_path, reason))?;
        let keygen_seconds = started.elapsed().as_secs_f64();
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
            keygen_seconds: Some(keygen_seconds),
            keygen_k: Some(params.k()),
        };
        write_atomically(&pk_path, |w| w.write_all(&bytes))?;
        drop(bytes);
        let json = serde_json::to_vec_pretty(&meta).expect("metadata serializes");
        write_atomically(&meta_path, |w| w.write_all(&json))?;
        remember_timings(&pk, name, timings_path);
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

/// Runs keygen (verifying then proving key) for `circuit`, showing its progress (elapsed time
/// only: [`KeyStore::proving_key`] adds an estimate from the store).
pub fn keygen<C: Circuit<Fr>>(
    name: &str,
    params: &ParamsKZG<Bn256>,
    circuit: &C,
) -> Result<ProvingKey<G1Affine>, String> {
    keygen_estimated(name, params, circuit, None)
}

/// [`keygen`] with an estimate of its duration.
fn keygen_estimated<C: Circuit<Fr>>(
    name: &str,
    params: &ParamsKZG<Bn256>,
    circuit: &C,
    estimate: Option<Duration>,
) -> Result<ProvingKey<G1Affine>, String> {
    let k = params.k();
    let progress = Progress::start(format!("keygen {name} (k = {k})"), None, estimate);
    info!(name, k, "keygen: verifying key");
    let vk = keygen_vk(params, circuit).map_err(|e| format!("keygen_vk: {e:?}"))?;
    info!(
        name,
        seconds = progress.elapsed().as_secs_f64(),
        "keygen: proving key"
    );
    let pk = keygen_pk(params, vk, circuit).map_err(|e| format!("keygen_pk: {e:?}"))?;
    progress.finish();
    Ok(pk)
}

/// The timings file of each key a store handed out in this process, by the hash of its
/// verifying key (see the module docs, "Estimates").
static TIMINGS: Mutex<Vec<(Fr, String, PathBuf)>> = Mutex::new(Vec::new());

fn vk_hash(pk: &ProvingKey<G1Affine>) -> Fr {
    pk.get_vk().transcript_repr()
}

fn remember_timings(pk: &ProvingKey<G1Affine>, name: &str, path: PathBuf) {
    let hash = vk_hash(pk);
    let mut known = TIMINGS.lock().unwrap_or_else(PoisonError::into_inner);
    known.retain(|(h, ..)| *h != hash);
    known.push((hash, name.to_owned(), path));
}

/// The progress of one proof with a proving key: estimated from, and recorded in, the key's
/// timings file when a store handed the key out.
pub(crate) struct ProofProgress {
    progress: Progress,
    timings: Option<PathBuf>,
}

impl ProofProgress {
    /// Starts the progress of a proof with `pk`; `what` names the proof when the key is not
    /// from a store.
    pub(crate) fn start(pk: &ProvingKey<G1Affine>, what: &str) -> Self {
        let hash = vk_hash(pk);
        let known = TIMINGS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(h, ..)| *h == hash)
            .map(|(_, name, path)| (name.clone(), path.clone()));
        let k = pk.get_vk().get_domain().k();
        let (name, timings) = match known {
            Some((name, path)) => (format!("proving {name} (k = {k})"), Some(path)),
            None => (format!("proving {what} (k = {k})"), None),
        };
        let estimate = timings
            .as_deref()
            .and_then(read_timings)
            .and_then(|t| t.prove_seconds)
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
        Self {
            progress: Progress::start(name, None, estimate),
            timings,
        }
    }

    /// Ends the progress as done and records the proof's duration for the next estimate.
    pub(crate) fn finish(self) {
        let seconds = self.progress.finish().as_secs_f64();
        if let Some(path) = &self.timings {
            let mut timings = read_timings(path).unwrap_or_default();
            timings.prove_seconds = Some(seconds);
            if let Err(err) = write_timings(path, &timings) {
                debug!(path = %path.display(), %err, "cannot record the proving time");
            }
        }
    }
}

fn read_timings(path: &Path) -> Option<KeyTimings> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// Writes `timings` through a temporary file of this process and call: concurrent provers
/// with one key each leave a whole file (the last one wins).
fn write_timings(path: &Path, timings: &KeyTimings) -> std::io::Result<()> {
    let tmp = private_tmp(path);
    let json = serde_json::to_vec_pretty(timings).expect("timings serialize");
    fs::write(&tmp, json)
        .and_then(|()| fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
}

/// The unsafe test SRS for `k`, from a fixed public seed (see
/// [`KeyStore::generate_unsafe_test_srs`]). The same seed at every `k`, so a downsized larger
/// test SRS equals the smaller one.
///
/// Byte-identical to `ParamsKZG::<Bn256>::setup(k, ChaCha20Rng::from_seed([0; 32]))`, made by
/// [`crate::srs::setup`] with a fixed-base table: k = 21 in 51 s on 2 cores that another build
/// was sharing, where halo2's `setup` took about 15 min.
pub fn unsafe_test_srs(k: u32) -> ParamsKZG<Bn256> {
    crate::srs::setup(k, unsafe_seed())
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

/// A temporary path next to `path` that no other process or call uses: two processes that
/// make the same key at once each rename their own whole file into place (the bytes are
/// equal), instead of one renaming the other's half-written file or finding it gone.
fn private_tmp(path: &Path) -> PathBuf {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{call}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Writes a cache file through [`private_tmp`], so readers see the whole file or none.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = private_tmp(path);
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

#[cfg(test)]
mod cache_file_tests {
    use super::*;

    /// Test processes share one key cache and may make the same key at once. Each writer
    /// renames its own whole file into place; with one shared temporary name a writer finds
    /// its file renamed away by another (`No such file or directory`) or renames a half-written
    /// one.
    #[test]
    fn concurrent_writers_of_one_cache_file_all_succeed_and_leave_a_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.bin");
        let bytes: Vec<u8> = (0..1 << 16).map(|i| (i % 251) as u8).collect();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        write_atomically(&path, |w| w.write_all(&bytes)).unwrap();
                        assert_eq!(
                            fs::read(&path).unwrap(),
                            bytes,
                            "a reader saw a partial file"
                        );
                    }
                });
            }
        });
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["key.bin"], "temporary files are renamed or removed");
    }
}

#[cfg(test)]
mod progress_tests {
    use halo2_base::gates::{circuit::CircuitBuilderStage, RangeInstructions};

    use super::*;
    use crate::shape;

    fn meta_json(name: &str, keygen: Option<(f64, u32)>) -> serde_json::Value {
        let mut meta = serde_json::json!({
            "name": name,
            "digest": "00",
            "circuit_params": null,
            "break_points": [],
            "pk_len": 0,
            "pk_sha256": "",
        });
        if let Some((seconds, k)) = keygen {
            meta["keygen_seconds"] = seconds.into();
            meta["keygen_k"] = k.into();
        }
        meta
    }

    #[test]
    fn progress_keygen_estimate_is_the_last_keygen_of_that_name_scaled_by_k() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let write = |file: &str, meta: serde_json::Value| {
            fs::write(dir.path().join("pk").join(file), meta.to_string()).unwrap();
        };
        assert_eq!(store.keygen_estimate("stf", 20), None);
        // Metadata from before keygen times were recorded still reads, and gives no estimate.
        let old = meta_json("stf", None);
        assert!(serde_json::from_value::<KeyMeta<()>>(old.clone())
            .unwrap()
            .keygen_seconds
            .is_none());
        write("stf-0000000000000000.json", old);
        assert_eq!(store.keygen_estimate("stf", 20), None);
        // Another circuit whose name starts the same, and a timings file, are not keygens of
        // `stf`.
        write(
            "stf-big-0000000000000000.json",
            meta_json("stf-big", Some((1.0, 20))),
        );
        write(
            "stf-1111111111111111.timings.json",
            serde_json::json!({"prove_seconds": 3.0}),
        );
        assert_eq!(store.keygen_estimate("stf", 20), None);

        write(
            "stf-2222222222222222.json",
            meta_json("stf", Some((100.0, 20))),
        );
        let secs = Duration::from_secs;
        assert_eq!(store.keygen_estimate("stf", 20), Some(secs(100)));
        assert_eq!(store.keygen_estimate("stf", 21), Some(secs(200)));
        assert_eq!(store.keygen_estimate("stf", 19), Some(secs(50)));
        assert_eq!(store.keygen_estimate("stf-big", 20), Some(secs(1)));
    }

    /// A tiny circuit of the common shape: one range check.
    fn tiny(
        stage: CircuitBuilderStage,
        break_points: Option<MultiPhaseThreadBreakPoints>,
    ) -> BaseCircuitBuilder<Fr> {
        let mut builder = BaseCircuitBuilder::from_stage(stage)
            .use_params(shape::rollup_params(shape::MIN_K).unwrap());
        if let Some(break_points) = break_points {
            builder.set_break_points(break_points);
        }
        let range = builder.range_chip();
        let ctx = builder.main(0);
        let x = ctx.load_witness(Fr::from(5));
        range.range_check(ctx, x, 8);
        builder.assigned_instances[0].push(x);
        builder
    }

    #[test]
    fn progress_keygen_and_proof_times_are_recorded_for_the_next_estimate() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let params =
            ParamsKZG::<Bn256>::setup(shape::MIN_K, rand_chacha::ChaCha20Rng::from_seed([3; 32]));
        // A digest of this test's own, so that no other test's key shares its verifying key.
        let digest = config_digest(&"progress_keygen_and_proof_times_are_recorded");
        let key = store
            .proving_key("tiny", &digest, &params, || {
                Ok(tiny(CircuitBuilderStage::Keygen, None))
            })
            .unwrap();
        assert_eq!(key.source, KeySource::Generated);
        assert!(key.meta.keygen_seconds.is_some_and(|s| s > 0.0));
        assert_eq!(key.meta.keygen_k, Some(shape::MIN_K));
        assert!(store.keygen_estimate("tiny", shape::MIN_K).is_some());

        // No proof yet: no estimate, and the progress is named after the key.
        let timings = store.timings_path("tiny", &digest);
        let first = ProofProgress::start(&key.pk, "unused");
        assert_eq!(first.progress.task().estimate(), None);
        assert!(first.progress.task().name().starts_with("proving tiny"));
        assert_eq!(first.timings.as_deref(), Some(timings.as_path()));
        drop(first);
        assert!(!timings.exists(), "an unfinished proof records nothing");

        let circuit = tiny(
            CircuitBuilderStage::Prover,
            Some(key.meta.break_points.clone()),
        );
        crate::prover::prove(&params, &key.pk, circuit).unwrap();
        let recorded = read_timings(&timings).unwrap().prove_seconds.unwrap();
        assert!(recorded > 0.0);

        // The next proof with the key, read back from the cache, is estimated from it.
        let cached = store
            .proving_key::<BaseCircuitBuilder<Fr>, _>("tiny", &digest, &params, || {
                unreachable!("the key is cached")
            })
            .unwrap();
        assert_eq!(cached.source, KeySource::Cache);
        assert_eq!(cached.meta.keygen_k, Some(shape::MIN_K));
        let next = ProofProgress::start(&cached.pk, "unused");
        assert_eq!(
            next.progress.task().estimate(),
            Some(Duration::from_secs_f64(recorded))
        );
    }
}
