//! Two slots end to end on anvil through the `lockstep aggregator run` process, killed with
//! SIGKILL at every stage of a slot's life and restarted over the same RocksDB folder.
//!
//! This tests the pipeline, not the proof: the aggregator runs in dev mode (`--dev`), its
//! aggregation is the stand-in `MockAggregationProver` (the public inputs checked natively, a
//! marker instead of a proof) and L1's verifier the `DevModeVerifier` stand-in. The rollup proofs
//! are real (test-rollup circuit) and verified at intake. Real aggregation proofs, verified on
//! the EVM and settled, are the `settle` test's.
//!
//! The builder opens each slot over HTTP (`POST /v1/slots`), the rollup proves its block against
//! the DA commitment the slot fixed and submits it (`POST /v1/proofs`), and the pipeline
//! aggregates, signs, stores and sends the settlement. Slot A is killed while `proving`, in the
//! middle of its aggregation (made, not stored), right after its aggregation is stored, and right
//! after its settlement transaction is signed and stored; slot B right after its transaction is
//! sent. Both settle exactly once: the transaction L1 mined is the one signed before the kill,
//! the aggregator's account used one nonce per slot, and L1 saw two settlements in all. Every
//! line the dev-mode service printed or logged says that it proves nothing.

use std::{
    fs::OpenOptions,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    primitives::B256, providers::Provider, rpc::types::Filter, signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use lockstep_aggregator::{
    client::ApiClient,
    dev,
    l1::fr_to_u256,
    service::intake::{fr_hex, parse_fr, ProofSubmission, RegisteredRollup},
};
use lockstep_circuits::{
    entry::{Address, Domain},
    testing,
    vk_file::VkFile,
    Fr,
};
use lockstep_contracts::{
    bindings::LockstepSettlement,
    deploy::{deploy_all, DeployConfig},
    devnet::{Devnet, DevnetConfig, DEV_PRIVATE_KEY},
    settlement,
    verifier::dev_mode_verifier_code,
};
use serde_json::{json, Value};

/// A `lockstep aggregator run` process; SIGKILLed when dropped.
struct Aggregator {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Aggregator {
    /// Starts the service in dev mode with `config`, stopping dead at `pause`
    /// (`LOCKSTEP_PAUSE_AT`), and waits until it answers `/health`.
    async fn start(config: &Path, log: &Path, pause: Option<&str>) -> Self {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_lockstep"));
        command
            .args(["--log", "info", "aggregator", "run", "--dev", "--config"])
            .arg(config)
            .args(["--listen", &addr.to_string()])
            .env("LOCKSTEP_L1_KEY", DEV_PRIVATE_KEY)
            .env_remove("LOCKSTEP_PAUSE_AT")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if let Some(point) = pause {
            command.env("LOCKSTEP_PAUSE_AT", point);
        }
        let aggregator = Self {
            child: command.spawn().unwrap(),
            addr,
            log: log.to_owned(),
        };
        let started = Instant::now();
        while http(addr, "GET", "/health", None).await.0 != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the aggregator did not start:\n{}",
                aggregator.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        aggregator
    }

    /// Waits until the log holds `line` (the service got that far).
    async fn wait_for_log(&self, line: &str) {
        let started = Instant::now();
        while !std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .contains(line)
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no {line:?} in the log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, and wait until the process is gone.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<_> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    async fn slot(&self, slot: u64) -> Value {
        let (status, body) = http(self.addr, "GET", &format!("/v1/slots/{slot}"), None).await;
        assert_eq!(status, 200, "{body}");
        assert_ne!(
            body["state"],
            "failed",
            "slot {slot} failed: {body}\n{}",
            self.log_tail()
        );
        body
    }

    /// Polls the slot until `done` holds for it.
    async fn wait(&self, slot: u64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let body = self.slot(slot).await;
            if done(&body) {
                eprintln!(
                    "slot {slot}: {what} after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return body;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1800),
                "slot {slot}: not {what}: {body}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Aggregator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(0, null)` while nothing answers (the service is down or starting).
async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = ApiClient::local(addr);
    let result = match method {
        "POST" => client.post_raw(path, &body.unwrap_or(Value::Null)).await,
        _ => client.get_raw(path).await,
    };
    result.unwrap_or((0, Value::Null))
}

fn state(body: &Value) -> &str {
    body["state"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn slots_settle_exactly_once_when_the_aggregator_is_killed_at_every_stage() {
    let started = Instant::now();
    let keys = testing::persistent_key_store().unwrap();
    let (inner_params, inner) = testing::test_rollup_key(&keys).unwrap();

    // Dev mode: the stand-in verifier, deployed with the settlement contract.
    let code = dev_mode_verifier_code();
    let devnet = Devnet::spawn(DevnetConfig::default()).await.unwrap();
    let provider = devnet.provider();
    let deployment = deploy_all(
        &provider,
        &DeployConfig {
            max_slot_age: 600,
            verifiers: vec![(1, code)],
            ..DeployConfig::default()
        },
    )
    .await
    .unwrap();
    let contract = LockstepSettlement::new(deployment.settlement, provider.clone());
    let domain = Domain {
        chain_id: deployment.chain_id,
        registry: Address(deployment.settlement.0 .0),
    };
    let digest =
        RegisteredRollup::new(1, inner.pk.get_vk().clone(), Arc::new(inner_params.clone()))
            .vk_digest;
    let genesis = testing::sample_rollup(domain, 0, 1, vec![], vec![], 0)
        .header
        .pre_root;
    let receipt = contract
        .createRollup(
            devnet.dev_address(),
            B256::from(fr_to_u256(digest)),
            B256::from(fr_to_u256(genesis)),
            false,
            false,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    eprintln!(
        "set up in {:.1} s (rollup key, devnet, contracts)",
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    // The rollup joins by its verifying-key file, named relative to the config's folder.
    VkFile::new("test-rollup circuit", &inner_params, inner.pk.get_vk())
        .unwrap()
        .write(&dir.path().join("rollup-1.vk.json"))
        .unwrap();
    let config = dir.path().join("aggregator.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\nkeys_dir = {keys:?}\n\n[domain]\nchain_id = {chain}\n\
             registry = \"{registry}\"\n\n[[rollups]]\nid = 1\nvk = \"rollup-1.vk.json\"\n\n\
             [l1]\nrpc = \"{rpc}\"\npoll_ms = 200\nresend_after_secs = 30\n",
            data = dir.path().join("data"),
            keys = keys.root(),
            chain = deployment.chain_id,
            registry = deployment.settlement,
            rpc = devnet.url(),
        ),
    )
    .unwrap();
    let log = dir.path().join("aggregator.log");
    let sender = DEV_PRIVATE_KEY
        .parse::<PrivateKeySigner>()
        .unwrap()
        .address();

    let open_and_prove = |aggregator: &Aggregator, slot: u64, pre_root: Fr, post_root: Fr| {
        let addr = aggregator.addr;
        let (inner_params, inner) = (&inner_params, &inner);
        async move {
            let data = format!("0x{}", hex::encode(vec![slot as u8; 3_000]));
            let (status, opened) = http(
                addr,
                "POST",
                "/v1/slots",
                Some(json!({
                    "slot": slot,
                    "rollups": [{ "rollup_id": 1, "pre_root": fr_hex(&pre_root), "data": data }],
                })),
            )
            .await;
            assert_eq!(status, 201, "{opened}");
            let da = parse_fr(opened["rollups"]["1"]["da_commitment"].as_str().unwrap()).unwrap();
            let mut witness = testing::sample_rollup(domain, slot, 1, vec![], vec![], 0);
            witness.header.pre_root = pre_root;
            witness.header.post_root = post_root;
            witness.header.da_commitment = da;
            let snark = testing::prove_test_rollup(inner_params, inner, &witness).unwrap();
            ProofSubmission {
                slot,
                rollup_id: 1,
                instances: snark.instances[0].iter().map(fr_hex).collect(),
                proof: format!("0x{}", hex::encode(&snark.proof)),
            }
        }
    };
    let submit = |addr: SocketAddr, proof: ProofSubmission| async move {
        http(
            addr,
            "POST",
            "/v1/proofs",
            Some(serde_json::to_value(&proof).unwrap()),
        )
        .await
    };

    // ---- Slot A -------------------------------------------------------------------------
    let slot_a = contract.currentSlot().call().await.unwrap();
    let root_a = genesis + Fr::from(1000);
    let nonce_before = provider.get_transaction_count(sender).await.unwrap();

    // Killed in `proving`: the opened slot is kept, blob layout and all.
    let aggregator = Aggregator::start(&config, &log, None).await;
    let proof_a = open_and_prove(&aggregator, slot_a, genesis, root_a).await;
    let opened = aggregator.slot(slot_a).await;
    aggregator.kill();
    let aggregator = Aggregator::start(&config, &log, None).await;
    let kept = aggregator.slot(slot_a).await;
    assert_eq!(
        (state(&kept), &kept["rollups"]),
        ("proving", &opened["rollups"])
    );
    aggregator.kill();

    // Killed in the middle of the aggregation (made, not stored): the slot is still
    // `aggregating` afterwards.
    let aggregator = Aggregator::start(&config, &log, Some("aggregating")).await;
    let (status, body) = submit(aggregator.addr, proof_a.clone()).await;
    assert_eq!((status, state(&body)), (202, "aggregating"), "{body}");
    aggregator.wait_for_log("pipeline paused").await;
    assert_eq!(state(&aggregator.slot(slot_a).await), "aggregating");
    aggregator.kill();

    // Killed right after the aggregation proof is stored (nothing signed yet).
    // (The stand-in aggregates at once: the slot may be past `aggregating` by the first look.)
    let aggregator = Aggregator::start(&config, &log, Some("aggregated")).await;
    let (status, body) = submit(aggregator.addr, proof_a).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("stale_slot")));
    let posting = aggregator
        .wait(slot_a, "aggregated again", |b| state(b) == "posting")
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    aggregator.kill();
    assert!(posting.get("settlement_tx").is_none(), "{posting}");

    // Killed right after the settlement transaction is signed and stored, before it is sent.
    let aggregator = Aggregator::start(&config, &log, Some("signed")).await;
    let signed = aggregator
        .wait(slot_a, "signed", |b| b["settlement_tx"]["hash"].is_string())
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    aggregator.kill();
    let hash_a: B256 = signed["settlement_tx"]["hash"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        provider
            .get_transaction_receipt(hash_a)
            .await
            .unwrap()
            .is_none(),
        "the transaction was sent before the kill"
    );

    // The restart sends the stored transaction and settles with it.
    let aggregator = Aggregator::start(&config, &log, None).await;
    let settled = aggregator
        .wait(slot_a, "settled", |b| state(b) == "settled")
        .await;
    assert_eq!(settled["tx"].as_str().unwrap(), hash_a.to_string());
    assert_eq!(
        provider.get_transaction_count(sender).await.unwrap(),
        nonce_before + 1,
        "one transaction for slot A"
    );
    let history: Vec<_> = settled["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(history, ["proving", "aggregating", "posting", "settled"]);
    let (root, _) = settlement::rollup_state(&provider, deployment.settlement, 1)
        .await
        .unwrap();
    assert_eq!(root, fr_to_u256(root_a));
    eprintln!(
        "slot {slot_a}: {} gas (dev mode: DevModeVerifier)",
        settled["gas_used"]
    );
    aggregator.kill();

    // ---- Slot B: killed right after its transaction is sent ------------------------------
    let slot_b = loop {
        let current = contract.currentSlot().call().await.unwrap();
        if current > slot_a {
            break current;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let root_b = root_a + Fr::from(1000);
    let nonce_before = provider.get_transaction_count(sender).await.unwrap();
    let aggregator = Aggregator::start(&config, &log, Some("sent")).await;
    let proof_b = open_and_prove(&aggregator, slot_b, root_a, root_b).await;
    let (status, body) = submit(aggregator.addr, proof_b).await;
    assert_eq!((status, state(&body)), (202, "aggregating"), "{body}");
    let signed = aggregator
        .wait(slot_b, "signed", |b| b["settlement_tx"]["hash"].is_string())
        .await;
    let hash_b: B256 = signed["settlement_tx"]["hash"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let sent = Instant::now();
    while provider
        .get_transaction_receipt(hash_b)
        .await
        .unwrap()
        .is_none()
    {
        assert!(sent.elapsed() < Duration::from_secs(30), "never mined");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(state(&aggregator.slot(slot_b).await), "posting");
    aggregator.kill();

    // The restart finds the mined transaction and settles the record without sending again.
    let aggregator = Aggregator::start(&config, &log, None).await;
    let settled = aggregator
        .wait(slot_b, "settled", |b| state(b) == "settled")
        .await;
    assert_eq!(settled["tx"].as_str().unwrap(), hash_b.to_string());
    assert_eq!(
        provider.get_transaction_count(sender).await.unwrap(),
        nonce_before + 1,
        "one transaction for slot B"
    );
    let (root, _) = settlement::rollup_state(&provider, deployment.settlement, 1)
        .await
        .unwrap();
    assert_eq!(root, fr_to_u256(root_b));
    aggregator.kill();

    // L1 saw exactly two settlements, one per slot.
    let logs = provider
        .get_logs(
            &Filter::new()
                .address(deployment.settlement)
                .event_signature(LockstepSettlement::SlotSettled::SIGNATURE_HASH)
                .from_block(0),
        )
        .await
        .unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(
        contract.nextSlot().call().await.unwrap(),
        slot_b + 1,
        "slot B is the last settled"
    );
    // Every line the service printed or logged, in every run, says that it proves nothing.
    let printed = std::fs::read_to_string(&log).unwrap();
    let unlabelled: Vec<_> = printed
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.contains(dev::LABEL.trim()))
        .collect();
    assert!(
        printed.lines().count() > 20 && unlabelled.is_empty(),
        "lines without the dev-mode label: {unlabelled:#?}"
    );
    eprintln!(
        "two slots, five kills at slot stages, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn dev_mode_is_refused_off_a_development_chain() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aggregator.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\nkeys_dir = {keys:?}\n\n[domain]\nchain_id = 1\n\
             registry = \"0x5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e\"\n\n[[rollups]]\nid = 1\n\
             vk = \"rollup-1.vk.json\"\n",
            data = dir.path().join("data"),
            keys = dir.path().join("keys"),
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lockstep"))
        .args(["aggregator", "run", "--dev", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "dev mode ran on chain 1: {stderr}");
    assert!(
        stderr.contains("dev mode proves nothing") && stderr.contains("chain 1"),
        "{stderr}"
    );
    // Nothing was opened or made before the refusal.
    assert!(!dir.path().join("data").exists() && !dir.path().join("keys").exists());
}
