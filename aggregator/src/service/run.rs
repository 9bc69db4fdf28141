//! `lockstep aggregator run`: opens the store, loads the rollups' verifying keys, starts the
//! writer task and the slot pipeline, and serves the HTTP API until SIGINT or SIGTERM.

use std::{collections::BTreeMap, path::Path, sync::Arc, time::Duration};

use eyre::{ensure, Context, Result};
use halo2_base::halo2_proofs::{
    halo2curves::bn256::{Bn256, G1Affine},
    plonk::VerifyingKey,
    poly::kzg::commitment::ParamsKZG,
};
use lockstep_circuits::{
    entry::{Address, Domain},
    keys::KeyStore,
    testing,
};
use lockstep_reference_rollup::{circuit::StfConfig, executor::Genesis, ReferenceRollups};
use lockstep_storage::RocksStore;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;
use tracing::info;

use super::{
    builder::{BuilderParts, SlotClock},
    config::{AggregatorConfig, BuilderConfig, L1Config, RollupCircuit, SidecarConfig},
    intake::{fr_hex, RegisteredRollup, Registry},
    pipeline::{self, L1Poster, PausePoint},
    prover::{check_dev_chain, AggregationProver, MockAggregationProver, SlotProver},
    slots::Slots,
    Parts,
};
use crate::cli::AggregatorRunArgs;

/// The configuration `args` asks for: the file (if any), then the flags on top.
pub fn config(args: &AggregatorRunArgs) -> Result<AggregatorConfig> {
    let mut config = match &args.config {
        Some(path) => AggregatorConfig::load(path)?,
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

/// Loads every configured rollup's verifying key: the test rollup's is made on first use, an
/// STF circuit's is made by keygen (minutes) the first time its config is seen, over the SRS
/// of its `k` in the key folder, and cached.
pub fn registry(config: &AggregatorConfig) -> Result<Registry> {
    let domain = Domain {
        chain_id: config.domain.chain_id,
        registry: Address(config.registry_address()?),
    };
    let keys = KeyStore::open(&config.keys_dir)
        .wrap_err_with(|| format!("opening key folder {}", config.keys_dir.display()))?;
    let mut rollups = BTreeMap::new();
    let mut test_rollup = None;
    for rollup in &config.rollups {
        let registered = match rollup.circuit {
            RollupCircuit::TestRollup => {
                if test_rollup.is_none() {
                    info!("loading the test rollup's key (made and cached on first use)");
                    let (params, key) = testing::test_rollup_key(&keys)
                        .wrap_err("loading the test rollup's key")?;
                    test_rollup = Some((Arc::new(params), key.pk.get_vk().clone()));
                }
                let (params, vk) = test_rollup.clone().expect("loaded above");
                RegisteredRollup::new(rollup.id, vk, params)
            }
            RollupCircuit::Stf => {
                let stf = rollup
                    .stf
                    .expect("validated: circuit = \"stf\" has [rollups.stf]");
                let (params, vk) = stf_verifying_key(&keys, &stf)
                    .wrap_err_with(|| format!("rollup {}'s STF circuit key", rollup.id))?;
                RegisteredRollup::new(rollup.id, vk, params).with_stf(stf)
            }
        };
        rollups.insert(rollup.id, registered);
    }
    Ok(Registry { domain, rollups })
}

/// The SRS of `stf.k` (which must be in the key folder) and the STF circuit's verifying key
/// for `stf`, made and cached on first use; the proving key is dropped.
pub fn stf_verifying_key(
    keys: &KeyStore,
    stf: &StfConfig,
) -> Result<(Arc<ParamsKZG<Bn256>>, VerifyingKey<G1Affine>)> {
    let params = keys.load_srs(stf.k)?;
    info!(
        k = stf.k,
        depth = stf.depth,
        capacity = ?stf.capacity,
        "loading the STF circuit's key (keygen on first use: minutes)"
    );
    let key = stf.proving_key(keys, &params)?;
    Ok((Arc::new(params), key.pk.get_vk().clone()))
}

/// Runs the service.
pub async fn run(args: AggregatorRunArgs) -> Result<()> {
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
            "rollup {}    {} circuit, k = {}, vk digest {}",
            rollup.id,
            rollup.circuit_name(),
            rollup.protocol.domain.k,
            fr_hex(&rollup.vk_digest)
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
        Some(l1) => Some(l1_poster(l1, &config)?),
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
        Some(section) => Some(builder_parts(section, &config, &registry, l1.as_ref())?),
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

/// The builder's parts: its geneses (each a registered rollup), and L1's slot clock when
/// there is an L1.
fn builder_parts(
    section: &BuilderConfig,
    config: &AggregatorConfig,
    registry: &Registry,
    l1: Option<&L1Poster>,
) -> Result<BuilderParts> {
    let mut geneses = Vec::new();
    let mut capacities = BTreeMap::new();
    for path in &section.geneses {
        let genesis = crate::adapter::read_genesis(path)?;
        ensure!(
            registry.rollups.contains_key(&genesis.rollup_id),
            "builder genesis {} is rollup {}, which is not in [[rollups]]",
            path.display(),
            genesis.rollup_id
        );
        ensure!(
            !geneses
                .iter()
                .any(|g: &Genesis| g.rollup_id == genesis.rollup_id),
            "builder.geneses names rollup {} twice",
            genesis.rollup_id
        );
        crate::say!(
            "builder     rollup {} from {}: genesis root {}",
            genesis.rollup_id,
            path.display(),
            fr_hex(&genesis.state()?.root())
        );
        if let Some(stf) = registry.rollups[&genesis.rollup_id].stf {
            ensure!(
                genesis.tree_depth == stf.depth,
                "builder genesis {} has a tree of depth {}, but rollup {}'s STF circuit is for \
                 depth {} ([rollups.stf] depth)",
                path.display(),
                genesis.tree_depth,
                genesis.rollup_id,
                stf.depth
            );
            capacities.insert(genesis.rollup_id, stf.capacity);
        }
        geneses.push(genesis);
    }
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
        rollups: Arc::new(ReferenceRollups {
            geneses,
            capacities,
        }),
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
