use alloy::{
    primitives::{Address, B256, U256},
    sol_types::SolEvent,
};
use lockstep_contracts::{
    bindings::{RollupRegistry, SNARK_SCALAR_FIELD},
    deploy::{deploy_all, DeployConfig, Deployment},
    devnet::{Devnet, DevnetConfig},
};

#[tokio::test]
async fn deploys_settlement_creates_rollup_and_round_trips_deployment_file() {
    let devnet = Devnet::spawn(DevnetConfig::default())
        .await
        .expect("anvil starts");
    let provider = devnet.provider();
    let deployment = deploy_all(&provider, &DeployConfig::default())
        .await
        .expect("deploys");
    assert_eq!(deployment.chain_id, 31337);
    assert!(
        deployment.gas_used > 21_000,
        "deployment used {} gas",
        deployment.gas_used
    );

    let registry = RollupRegistry::new(deployment.settlement, provider.clone());
    let owner = devnet.dev_address();
    let vk = B256::from(U256::from(0x1234));
    let root = B256::from(U256::from(0xabcd));
    let receipt = registry
        .createRollup(owner, vk, root, false, true)
        .send()
        .await
        .expect("sent")
        .get_receipt()
        .await
        .expect("mined");
    assert!(receipt.status());

    let created = receipt
        .inner
        .logs()
        .iter()
        .find_map(|log| RollupRegistry::RollupCreated::decode_log(&log.inner).ok())
        .expect("RollupCreated emitted");
    assert_eq!(created.id, 1);
    assert_eq!(created.owner, owner);
    assert_eq!(created.vkDigest, vk);

    let stored = registry.getRollup(1).call().await.expect("read back");
    assert_eq!(stored.owner, owner);
    assert_eq!(stored.vkDigest, vk);
    assert_eq!(stored.stateRoot, root);
    assert!(stored.ownerControlledRoot);
    assert!(!stored.nativeToken);
    assert_eq!(registry.rollupCount().call().await.unwrap(), 1);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deployment.json");
    deployment.write_to(&path).unwrap();
    assert_eq!(Deployment::read_from(&path).unwrap(), deployment);
}

#[tokio::test]
async fn registry_rejects_out_of_field_digest_with_typed_error() {
    let devnet = Devnet::spawn(DevnetConfig::default())
        .await
        .expect("anvil starts");
    let provider = devnet.provider();
    let deployment = deploy_all(&provider, &DeployConfig::default())
        .await
        .expect("deploys");
    let registry = RollupRegistry::new(deployment.settlement, provider);

    let too_big = B256::from(SNARK_SCALAR_FIELD);
    let err = registry
        .createRollup(Address::ZERO, too_big, B256::ZERO, false, false)
        .call()
        .await
        .expect_err("out-of-field vk digest must revert");
    let decoded = err
        .as_decoded_error::<RollupRegistry::NotAFieldElement>()
        .expect("reverts with NotAFieldElement");
    assert_eq!(decoded.value, too_big);
    assert_eq!(
        registry.rollupCount().call().await.unwrap(),
        0,
        "nothing was registered"
    );
}

#[tokio::test]
async fn devnet_stops_anvil_on_drop() {
    let devnet = Devnet::spawn(DevnetConfig::default())
        .await
        .expect("anvil starts");
    let pid = devnet.pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(devnet);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "anvil {pid} still running"
    );
}

#[tokio::test]
async fn devnet_reports_a_missing_binary_clearly() {
    let config = DevnetConfig {
        anvil: "/nonexistent/anvil".into(),
        ..DevnetConfig::default()
    };
    let err = Devnet::spawn(config).await.expect_err("no such binary");
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/anvil") && text.contains("scripts/setup.sh"),
        "{text}"
    );
}

#[test]
fn reading_a_malformed_deployment_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deployment.json");
    std::fs::write(&path, "{ not json").unwrap();
    let err = Deployment::read_from(&path).unwrap_err().to_string();
    assert!(
        err.contains("deployment.json") && err.contains("not a deployment file"),
        "{err}"
    );
}
