//! The rollups the `lockstep` binary pairs with the service: reference rollups, made from their
//! deployment files (`lockstep_reference_rollup::deployment`). This is the one place where the
//! service meets the reference rollup.

use std::{path::PathBuf, sync::Arc};

use eyre::{Context, Result};
use lockstep_aggregator::say;
use lockstep_circuits::fr_text::fr_hex;
use lockstep_reference_rollup::{Deployment, ReferenceRollups};
use lockstep_rollup_api::RollupFactory;

/// The service's [`MakeRollups`](lockstep_aggregator::service::run::MakeRollups) for reference
/// rollups: each file is a deployment file (genesis and STF circuit); a rollup proven with the
/// STF circuit gets its capacity, so the builder never seals a block its adapter cannot prove.
pub fn reference_rollups(files: &[PathBuf]) -> Result<Arc<dyn RollupFactory>> {
    let mut rollups = ReferenceRollups::default();
    for path in files {
        let deployment = Deployment::read(path)
            .wrap_err_with(|| format!("reading the deployment {}", path.display()))?;
        let genesis = deployment.genesis.clone();
        say!(
            "builder     rollup {} from {}: genesis root {}; {}",
            genesis.rollup_id,
            path.display(),
            fr_hex(&genesis.state()?.root()),
            deployment.circuit_label()
        );
        if let Some(stf) = deployment.stf {
            rollups.capacities.insert(genesis.rollup_id, stf.capacity);
        }
        rollups.geneses.push(genesis);
    }
    Ok(Arc::new(rollups))
}
