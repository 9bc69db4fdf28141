//! A local L1 for tests and the demo: an anvil process on a free loopback port.
//!
//! [`Devnet`] owns the process: dropping it kills anvil and waits for it, and on Linux anvil
//! is also told to die with its parent (`PR_SET_PDEATHSIG`), so not even a SIGKILL of the
//! caller leaves it behind.

use std::{
    fs::File,
    net::{Ipv4Addr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    primitives::Address,
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};

use crate::{provider::signing_provider, Error, Result};

/// The first of anvil's well-known development keys (funded with 10,000 ETH at genesis).
/// Public knowledge: never use it outside a devnet.
pub const DEV_PRIVATE_KEY: &str =
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// How to start anvil.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// The anvil binary; defaults to `$LOCKSTEP_ANVIL`, else `anvil` on `PATH`.
    pub anvil: PathBuf,
    /// Chain id of the devnet.
    pub chain_id: u64,
    /// Block time in seconds; `None` mines a block per transaction.
    pub block_time: Option<u64>,
    /// Where anvil's output goes; defaults to a file in the system temp folder.
    pub log: Option<PathBuf>,
    /// How long to wait for the JSON-RPC endpoint to answer.
    pub ready_timeout: Duration,
    /// Further arguments passed to anvil as they are.
    pub extra_args: Vec<String>,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            anvil: std::env::var_os("LOCKSTEP_ANVIL").map_or_else(|| "anvil".into(), PathBuf::from),
            chain_id: 31337,
            block_time: None,
            log: None,
            ready_timeout: Duration::from_secs(30),
            extra_args: Vec::new(),
        }
    }
}

/// A running anvil, stopped when dropped.
#[derive(Debug)]
pub struct Devnet {
    child: Child,
    port: u16,
    chain_id: u64,
    log: PathBuf,
    signer: PrivateKeySigner,
}

impl Devnet {
    /// Starts anvil on a free port of 127.0.0.1 and waits until it answers JSON-RPC.
    pub async fn spawn(config: DevnetConfig) -> Result<Self> {
        // A port found free can be taken before anvil binds it: try a few.
        let mut last_err = None;
        for _ in 0..3 {
            match Self::spawn_once(&config).await {
                Ok(devnet) => return Ok(devnet),
                Err(err @ Error::AnvilNotReady { .. }) => last_err = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last_err.expect("three attempts were made"))
    }

    async fn spawn_once(config: &DevnetConfig) -> Result<Self> {
        let port = free_port()?;
        let log = config.log.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("lockstep-anvil-{}-{port}.log", std::process::id()))
        });
        let log_file = File::create(&log)?;
        let mut cmd = Command::new(&config.anvil);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--chain-id", &config.chain_id.to_string()])
            .args(&config.extra_args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        if let Some(secs) = config.block_time {
            cmd.args(["--block-time", &secs.to_string()]);
        }
        die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|source| Error::AnvilSpawn {
            path: config.anvil.clone(),
            source,
        })?;
        let signer: PrivateKeySigner = DEV_PRIVATE_KEY.parse().expect("valid constant key");
        let mut devnet = Self {
            child,
            port,
            chain_id: config.chain_id,
            log,
            signer,
        };
        devnet.wait_ready(config.ready_timeout).await?;
        Ok(devnet)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let provider = ProviderBuilder::new().connect_http(self.url());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(self.not_ready(format!("anvil exited with {status}")));
            }
            if let Ok(chain_id) = provider.get_chain_id().await {
                if chain_id != self.chain_id {
                    return Err(self.not_ready(format!(
                        "something else answers on the port (chain id {chain_id}, expected {})",
                        self.chain_id
                    )));
                }
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(self.not_ready(format!("no JSON-RPC answer within {timeout:?}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn not_ready(&self, reason: String) -> Error {
        Error::AnvilNotReady {
            port: self.port,
            reason,
            log: self.log.clone(),
        }
    }

    /// The JSON-RPC endpoint.
    pub fn url(&self) -> alloy::transports::http::reqwest::Url {
        format!("http://127.0.0.1:{}", self.port)
            .parse()
            .expect("valid URL")
    }

    /// The port anvil listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The process id of anvil.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file anvil's output goes to.
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// The funded development account that signs through [`Self::provider`].
    pub fn dev_address(&self) -> Address {
        self.signer.address()
    }

    /// A provider that signs with the funded development key.
    pub fn provider(&self) -> DynProvider {
        signing_provider(self.url(), self.signer.clone())
    }

    /// Stops anvil now (also done on drop) and waits for it to exit.
    pub fn stop(&mut self) -> std::io::Result<()> {
        if self.child.try_wait()?.is_none() {
            self.child.kill()?;
            self.child.wait()?;
        }
        Ok(())
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // async-signal-safe `prctl`, touching no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}
