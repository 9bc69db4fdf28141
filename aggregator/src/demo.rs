//! `lockstep demo`: the local end-to-end job.

use std::time::Instant;

use eyre::{Context, Result};
use lockstep_contracts::{
    bindings::LockstepSettlement,
    deploy::{deploy_all, DeployConfig},
    devnet::{Devnet, DevnetConfig},
};
use tracing::info;

use crate::cli::DemoArgs;

/// Runs the demo; the devnet is stopped whether it succeeds, fails or is interrupted.
pub async fn run(args: DemoArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .wrap_err_with(|| format!("creating output folder {}", args.out.display()))?;
    let out = args.out.canonicalize()?;
    let config = DevnetConfig {
        anvil: args.anvil.clone(),
        chain_id: args.chain_id,
        log: Some(out.join("anvil.log")),
        ..DevnetConfig::default()
    };

    let started = Instant::now();
    let devnet = Devnet::spawn(config)
        .await
        .wrap_err("starting the L1 devnet")?;
    println!(
        "L1 devnet   anvil pid {} on {} (chain id {}), log {}",
        devnet.pid(),
        devnet.url(),
        devnet.chain_id(),
        devnet.log_path().display()
    );

    // Ctrl-C or SIGTERM ends the demo early; returning drops `devnet`, which stops anvil.
    tokio::select! {
        res = deploy_and_report(&devnet, &out) => res?,
        signal = crate::shutdown_signal() => eyre::bail!("interrupted by {signal}"),
    }
    println!(
        "done in {:.1} s; stopping anvil (pid {})",
        started.elapsed().as_secs_f64(),
        devnet.pid()
    );
    Ok(())
}

async fn deploy_and_report(devnet: &Devnet, out: &std::path::Path) -> Result<()> {
    let provider = devnet.provider();
    info!(deployer = %devnet.dev_address(), "deploying contracts");
    let deployment = deploy_all(&provider, &DeployConfig::default())
        .await
        .wrap_err("deploying contracts")?;
    println!(
        "deployed    LockstepSettlement (registry and settlement) at {} in block {} (tx {}, {} gas)",
        deployment.settlement,
        deployment.deployed_at_block,
        deployment.settlement_tx,
        deployment.gas_used
    );
    let settlement = LockstepSettlement::new(deployment.settlement, provider);
    let count = settlement
        .rollupCount()
        .call()
        .await
        .wrap_err("reading rollupCount")?;
    let slot = settlement
        .currentSlot()
        .call()
        .await
        .wrap_err("reading currentSlot")?;
    println!(
        "checked     settlement answers: {count} rollups registered, current slot {slot} \
         ({} s slots from {})",
        deployment.seconds_per_slot, deployment.genesis_timestamp
    );
    let path = out.join("deployment.json");
    deployment.write_to(&path)?;
    println!("wrote       {}", path.display());
    Ok(())
}
