//! `lockstep aggregator run`: opens the store, loads the rollups' verifying keys from their key
//! files (checked against L1's registry when there is an L1), starts the writer task, the slot
//! pipeline and the builder, and serves the HTTP API until SIGINT or SIGTERM.
//!
//! The service never knows a rollup's code: rollups join by their verifying-key files, and the
//! binary that runs the service says how to make the rollups its builder runs ([`MakeRollups`]).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use eyre::{bail, ensure, Context, Result};
use lockstep_circuits::{
    entry::{Address, Domain},
    keys::KeyStore,
    vk_file::VkFile,
};
use lockstep_rollup_api::RollupFactory;
use lockstep_storage::RocksStore;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;
use tracing::info;

use super::{
    builder::{BuilderParts, SlotClock},
    config::{AggregatorConfig, BuilderConfig, L1Config, SidecarConfig},
    intake::{fr_hex, RegisteredRollup, Registry},
    pipeline::{self, L1Poster, PausePoint},
    prover::{check_dev_chain, AggregationProver, MockAggregationProver, SlotProver},
    slots::Slots,
    Parts,
};

/// How the binary that runs the service makes the rollups its builder runs, from the files
/// `[builder] rollups` names (e.g. the reference rollup's deployment files). The service checks
/// that each rollup it makes is registered, once.
pub type MakeRollups = dyn Fn(&[PathBuf]) -> Result<Arc<dyn RollupFactory>> + Send + Sync;

/// `lockstep aggregator run`'s flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AggregatorRunArgs {
    /// TOML configuration file (every field has a default; see docs/api.md).
    #[arg(long, env = "LOCKSTEP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides `listen`).
    #[arg(long, env = "LOCKSTEP_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// RocksDB folder (overrides `data_dir`).
    #[arg(long, env = "LOCKSTEP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// SRS and key folder (overrides `keys_dir`).
    #[arg(long, env = "LOCKSTEP_KEYS")]
    pub keys: Option<PathBuf>,
    /// Dev mode: aggregations are not proven (a stand-in checks the public inputs natively and
    /// posts a marker only `DevModeVerifier` accepts); development chains only (31337).
    #[arg(long)]
    pub dev: bool,
}

/// The configuration `args` asks for: the file (if any, its relative paths read from its
/// folder), then the flags on top.
pub fn config(args: &AggregatorRunArgs) -> Result<AggregatorConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let mut config = AggregatorConfig::load(path)?;
            config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
            config
        }
        None => AggregatorConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir.clone_from(dir);
    }
    if let Some(dir) = &args.keys {
        config.keys_dir.clone_from(dir);
    }
    config.validate()?;
    Ok(config)
}

/// Loads every configured rollup's verifying key from its key file (a key of the common shape,
/// its SRS from the key folder, its digest recomputed and checked against the file's).
pub fn registry(config: &AggregatorConfig) -> Result<Registry> {
    let domain = Domain {
        chain_id: config.domain.chain_id,
        registry: Address(config.registry_address()?),
    };
    let keys = KeyStore::open(&config.keys_dir)
        .wrap_err_with(|| format!("opening key folder {}", config.keys_dir.display()))?;
    let mut rollups = std::collections::BTreeMap::new();
    for rollup in &config.rollups {
        let loaded = VkFile::read(&rollup.vk)
            .and_then(|file| file.load(&keys, &rollup.vk))
            .wrap_err_with(|| format!("rollup {}'s verifying key", rollup.id))?;
        rollups.insert(rollup.id, RegisteredRollup::from_file(rollup.id, loaded));
    }
    Ok(Registry { domain, rollups })
}

/// Checks that L1's registry holds each registered rollup with the key file's vk digest: an
/// aggregation over another key would be refused by `settle`.
async fn check_registered_on_l1(l1: &L1Poster, registry: &Registry) -> Result<()> {
    let contract =
        lockstep_contracts::bindings::LockstepSettlement::new(l1.settlement, l1.provider.clone());
    for rollup in registry.rollups.values() {
        let on_l1 = contract
            .getRollup(rollup.id)
            .call()
            .await
            .wrap_err_with(|| format!("reading rollup {} from L1's registry", rollup.id))?;
        let digest = alloy::primitives::B256::from(crate::l1::fr_to_u256(rollup.vk_digest));
        ensure!(
            on_l1.vkDigest == digest,
            "rollup {}'s key file has vk digest {}, but L1's registry holds {} for it: settle \
             would refuse every slot (register the key with setVkDigest, or name the right file)",
            rollup.id,
            fr_hex(&rollup.vk_digest),
            on_l1.vkDigest
        );
    }
    Ok(())
}

/// Runs the service; `make_rollups` makes the rollups of `[builder]`, if configured.
pub async fn run(args: AggregatorRunArgs, make_rollups: &MakeRollups) -> Result<()> {
    if args.dev {
        crate::dev::enable();
    }
    let config = config(&args)?;
    if args.dev {
        // Before anything slow (keys): the L1 node's chain is checked once it is reachable.
        check_dev_chain(config.domain.chain_id, None)?;
    }
    crate::say!(
        "configuration\n{}",
        toml::to_string_pretty(&config).wrap_err("printing the configuration")?
    );
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .wrap_err("installing the Prometheus recorder")?;
    let registry = tokio::task::spawn_blocking({
        let config = config.clone();
        move || registry(&config)
    })
    .await??;
    for rollup in registry.rollups.values() {
        crate::say!(
            "rollup {}    k = {}, vk digest {}: {}",
            rollup.id,
            rollup.protocol.domain.k,
            fr_hex(&rollup.vk_digest),
            rollup.label
        );
    }
    let store = Arc::new(open_store(&config.data_dir)?);
    for record in Slots::new(store.clone()).unfinished()? {
        crate::say!(
            "resuming    slot {} in state {}",
            record.slot,
            record.state.name()
        );
    }
    let registry = Arc::new(registry);
    let l1 = match &config.l1 {
        Some(l1) => {
            let poster = l1_poster(l1, &config)?;
            check_registered_on_l1(&poster, &registry).await?;
            crate::say!("L1          every rollup's vk digest is the one L1's registry holds");
            Some(poster)
        }
        None => {
            crate::say!("no [l1]     aggregated slots will wait in `posting`");
            None
        }
    };
    let pause_at = match std::env::var("LOCKSTEP_PAUSE_AT") {
        Ok(point) => {
            let point: PausePoint = point.parse()?;
            crate::say!("CRASH TEST  the pipeline stops dead at {point:?} (LOCKSTEP_PAUSE_AT)");
            Some(point)
        }
        Err(_) => None,
    };
    let prover: Arc<dyn SlotProver> = if args.dev {
        let l1_chain = match &l1 {
            Some(l1) => Some(
                alloy::providers::Provider::get_chain_id(&l1.provider)
                    .await
                    .wrap_err("asking the L1 node for its chain id (dev mode needs a dev chain)")?,
            ),
            None => None,
        };
        check_dev_chain(config.domain.chain_id, l1_chain)?;
        crate::say!(
            "DEV MODE    aggregations are NOT proven: a stand-in checks the public inputs \
             natively and posts a marker that only DevModeVerifier accepts"
        );
        Arc::new(MockAggregationProver::new(registry.clone()))
    } else {
        let keys = KeyStore::open(&config.keys_dir)?;
        Arc::new(AggregationProver::new(
            keys,
            registry.clone(),
            config.aggregation.k,
        ))
    };
    let builder = match &config.builder {
        Some(section) => Some(builder_parts(
            section,
            &config,
            &registry,
            l1.as_ref(),
            make_rollups,
        )?),
        None => None,
    };
    let launched = super::launch(Parts {
        store,
        registry,
        prover,
        l1,
        pause_at,
        metrics: Some(metrics),
        max_body_bytes: config.max_body_bytes,
        builder,
    })?;
    let listener = TcpListener::bind(config.listen)
        .await
        .wrap_err_with(|| format!("listening on {}", config.listen))?;
    crate::say!("listening   http://{}", listener.local_addr()?);
    axum::serve(listener, launched.router)
        .with_graceful_shutdown(async {
            let signal = crate::shutdown_signal().await;
            info!(signal, "shutting down");
        })
        .await
        .wrap_err("serving the API")?;
    // The pipeline holds a handle: stop it (an aggregation in flight is redone after a
    // restart; a signed transaction is in the posts table). Then the router and the last
    // handle are gone, and the writer drains and stops.
    if let Some(builder) = launched.builder {
        tokio::task::spawn_blocking(move || builder.stop())
            .await
            .wrap_err("stopping the builder")?;
    }
    launched.pipeline.abort();
    let _ = launched.pipeline.await;
    launched.writer.await.wrap_err("stopping the writer")?;
    crate::say!("stopped");
    Ok(())
}

/// The builder's parts: the rollups the binary makes from `[builder] rollups` (each a
/// registered rollup, once), and L1's slot clock when there is an L1.
fn builder_parts(
    section: &BuilderConfig,
    config: &AggregatorConfig,
    registry: &Registry,
    l1: Option<&L1Poster>,
    make_rollups: &MakeRollups,
) -> Result<BuilderParts> {
    let rollups = make_rollups(&section.rollups).wrap_err("making the builder's rollups")?;
    let mut seen = BTreeSet::new();
    for id in rollups.ids() {
        ensure!(
            registry.rollups.contains_key(&id),
            "the builder runs rollup {id}, which is not in [[rollups]]"
        );
        ensure!(seen.insert(id), "builder.rollups names rollup {id} twice");
    }
    if seen.is_empty() {
        bail!("builder.rollups made no rollup");
    }
    crate::say!("builder     rollups {seen:?}");
    let clock = match l1 {
        Some(l1) => SlotClock::L1 {
            provider: l1.provider.clone(),
            settlement: alloy::primitives::Address::from(config.registry_address()?),
        },
        None => {
            crate::say!("builder     no [l1]: slots are numbered from the newest opened one");
            SlotClock::Next
        }
    };
    Ok(BuilderParts {
        rollups,
        clock,
        every: Duration::from_millis(section.slot_ms),
        max_txs: section.max_txs_per_slot,
        max_pending: section.max_pending,
    })
}

/// The L1 side of the pipeline: a provider for `l1.rpc` and the signer from the environment.
fn l1_poster(l1: &L1Config, config: &AggregatorConfig) -> Result<L1Poster> {
    let key = std::env::var(&l1.signer_key_env).wrap_err_with(|| {
        format!(
            "[l1] needs the signer's private key in ${} (l1.signer_key_env)",
            l1.signer_key_env
        )
    })?;
    let signer = pipeline::parse_signer(&key)?;
    let url = l1.rpc.parse().wrap_err("l1.rpc")?;
    let provider = alloy::providers::Provider::erased(
        alloy::providers::ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url),
    );
    crate::say!(
        "L1          {} as {}, settlement {}",
        l1.rpc,
        signer.address(),
        config.domain.registry
    );
    Ok(L1Poster {
        provider,
        wallet: alloy::network::EthereumWallet::from(signer),
        settlement: alloy::primitives::Address::from(config.registry_address()?),
        sidecar: match l1.sidecar {
            SidecarConfig::Eip4844 => lockstep_contracts::settlement::SidecarFormat::Eip4844,
            SidecarConfig::Eip7594 => lockstep_contracts::settlement::SidecarFormat::Eip7594,
        },
        poll: Duration::from_millis(l1.poll_ms),
        resend_after: Duration::from_secs(l1.resend_after_secs),
    })
}

fn open_store(dir: &Path) -> Result<RocksStore> {
    RocksStore::open(dir).wrap_err_with(|| format!("opening the store in {}", dir.display()))
}
