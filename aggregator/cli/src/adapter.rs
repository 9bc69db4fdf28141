//! `lockstep adapter run`: the adapter daemon ([`lockstep_rollup_adapter`]) of a reference
//! rollup, with the circuit of its deployment file (`--rollup`,
//! `lockstep_reference_rollup::deployment`): the reference rollup's **STF circuit** (`[stf]`),
//! whose key it derives from the deployment (`k`, tree depth, capacity); or, without `[stf]`,
//! the **test-rollup circuit**, which proves the block's public inputs and no state transition,
//! and is named in every line logged about such a proof.

use std::{path::PathBuf, sync::Arc, time::Duration};

use eyre::{Result, WrapErr};
use lockstep_aggregator::service::prover::check_dev_chain;
use lockstep_api::ApiClient;
use lockstep_circuits::{fr_text::fr_hex, keys::KeyStore};
use lockstep_reference_rollup::{Deployment, ReferenceProver, ReferenceReplica};
use lockstep_rollup_adapter::{Adapter, DevModeProver};
use tracing::{info, warn};

use crate::cli::AdapterRunArgs;

/// Runs `lockstep adapter run`: opens the adapter (waiting for the aggregator to answer), then
/// proves waiting slots every `--poll-ms` until SIGINT or SIGTERM (or once, with `--once`).
pub async fn run(args: AdapterRunArgs) -> Result<()> {
    if args.dev {
        // First, so that every line, the key loading's included, carries the dev label. The
        // chain is checked once the aggregator has said which domain it serves (below).
        lockstep_aggregator::dev::enable();
    }
    let deployment = Deployment::read(&args.rollup)?;
    let genesis = ReferenceReplica::new(&deployment.genesis)?;
    let id = deployment.genesis.rollup_id;
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("adapter-data/rollup-{id}")));
    let keys = Arc::new(
        KeyStore::open(&args.keys)
            .wrap_err_with(|| format!("opening key folder {}", args.keys.display()))?,
    );
    let client = ApiClient::new(&args.aggregator);
    let poll = Duration::from_millis(args.poll_ms);
    // The circuit is the deployment's; its key is checked against the vk digest the aggregator
    // registered the rollup with at open.
    let mut prover: Option<ReferenceProver> = None;
    let mut adapter = loop {
        let attempt = async {
            let prover = match &prover {
                Some(prover) => prover.clone(),
                None => {
                    info!(
                        circuit = %deployment.circuit_label(),
                        "loading the rollup circuit's key (keygen on first use: minutes for \
                         the STF circuit)"
                    );
                    let (keys, deployment) = (keys.clone(), deployment.clone());
                    let mut loaded =
                        tokio::task::spawn_blocking(move || deployment.prover(&keys)).await??;
                    if args.dev {
                        loaded = Arc::new(DevModeProver(loaded));
                    }
                    prover = Some(loaded.clone());
                    loaded
                }
            };
            Adapter::open(genesis.clone(), client.clone(), &dir, prover).await
        };
        match attempt.await {
            Ok(adapter) => break adapter,
            Err(err) if args.once => return Err(err),
            Err(err) => {
                warn!("{err:#}; retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    if args.dev {
        check_dev_chain(adapter.domain().chain_id, None)?;
    }
    let label = adapter.prover_label();
    lockstep_aggregator::say!(
        "adapter of rollup {id}: state root {}, data in {}, aggregator {}; proofs: {label}",
        fr_hex(&adapter.head_root()),
        dir.display(),
        client.base()
    );
    if args.once {
        let done = adapter.step().await?;
        lockstep_aggregator::say!("{} slot(s) proven and submitted", done.len());
        return Ok(());
    }
    let shutdown = async {
        let signal = lockstep_aggregator::shutdown_signal().await;
        info!(signal, "signal received");
    };
    adapter.run(poll, shutdown).await;
    Ok(())
}
