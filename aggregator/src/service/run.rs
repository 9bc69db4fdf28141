//! `lockstep aggregator run`: opens the store, loads the rollups' verifying keys, starts the
//! writer task and serves the HTTP API until SIGINT or SIGTERM.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use eyre::{Context, Result};
use lockstep_circuits::{
    entry::{Address, Domain},
    keys::KeyStore,
    testing,
};
use lockstep_storage::RocksStore;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;
use tracing::info;

use super::{
    api::{self, ApiState},
    config::{AggregatorConfig, RollupCircuit},
    intake::{fr_hex, RegisteredRollup, Registry},
    slots::Slots,
    AggregatorService,
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

/// Loads every configured rollup's verifying key (making the test rollup's key on first use).
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
        };
        rollups.insert(rollup.id, registered);
    }
    Ok(Registry { domain, rollups })
}

/// Runs the service.
pub async fn run(args: AggregatorRunArgs) -> Result<()> {
    let config = config(&args)?;
    println!(
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
        println!(
            "rollup {}    k = {}, vk digest {}",
            rollup.id,
            rollup.protocol.domain.k,
            fr_hex(&rollup.vk_digest)
        );
    }
    let store = Arc::new(open_store(&config.data_dir)?);
    for record in Slots::new(store.clone()).unfinished()? {
        println!(
            "resuming    slot {} in state {}",
            record.slot,
            record.state.name()
        );
    }
    let (service, handle) = AggregatorService::new(store.clone());
    let writer = tokio::spawn(service.run());
    let app = api::router(
        ApiState {
            store,
            registry: Arc::new(registry),
            handle,
            metrics: Some(metrics),
        },
        config.max_body_bytes,
    );
    let listener = TcpListener::bind(config.listen)
        .await
        .wrap_err_with(|| format!("listening on {}", config.listen))?;
    println!("listening   http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let signal = crate::shutdown_signal().await;
            info!(signal, "shutting down");
        })
        .await
        .wrap_err("serving the API")?;
    // The router (and with it the last handle) is gone: the writer drains and stops.
    writer.await.wrap_err("stopping the writer")?;
    println!("stopped");
    Ok(())
}

fn open_store(dir: &Path) -> Result<RocksStore> {
    RocksStore::open(dir).wrap_err_with(|| format!("opening the store in {}", dir.display()))
}
