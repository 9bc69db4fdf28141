//! The aggregator's HTTP API with real test-rollup proofs: every kind of bad submission gets a
//! clear 4xx and changes nothing; good ones move the slot.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    body::{to_bytes, Body},
    http::{Request, StatusCode},
    Router,
};
use halo2_base::gates::{
    circuit::{builder::BaseCircuitBuilder, CircuitBuilderStage},
    GateInstructions, RangeInstructions,
};
use lockstep_aggregator::{
    client::ApiClient,
    service::{
        api::{router, ApiState},
        intake::{self, fr_hex, ProofSubmission, RegisteredRollup, Registry},
        slots::{RollupSlot, SlotRecord, SlotState, Slots},
        AggregatorService,
    },
    status,
};
use lockstep_circuits::{
    entry::{Address, Domain},
    keys::config_digest,
    layout::{PublicInputsWitness, NUM_INSTANCES},
    shape, testing, Fr,
};
use lockstep_storage::MemoryStore;
use serde_json::{json, Value};
use snark_verifier_sdk::Snark;
use tower::ServiceExt;

const DOMAIN: Domain = Domain {
    chain_id: 31_337,
    registry: Address([0x5e; 20]),
};

fn submission(slot: u64, rollup_id: u32, snark: &Snark) -> ProofSubmission {
    ProofSubmission {
        slot,
        rollup_id,
        instances: snark.instances[0].iter().map(fr_hex).collect(),
        proof: format!("0x{}", hex::encode(&snark.proof)),
    }
}

fn rollup_slot(w: &PublicInputsWitness) -> RollupSlot {
    RollupSlot {
        pre_root: fr_hex(&w.header.pre_root),
        blob_index: 0,
        offset: 0,
        length: 100,
        da_commitment: fr_hex(&w.header.da_commitment),
    }
}

/// A verifying key of another circuit of the common shape (43 public inputs, k = 11).
fn foreign_rollup(id: u32, store: &lockstep_circuits::keys::KeyStore) -> RegisteredRollup {
    let params = store
        .load_or_generate_unsafe_test_srs(shape::MIN_K)
        .unwrap();
    let build = |stage| -> lockstep_circuits::Result<BaseCircuitBuilder<Fr>> {
        let mut builder =
            BaseCircuitBuilder::from_stage(stage).use_params(shape::rollup_params(shape::MIN_K)?);
        let gate = builder.range_chip().gate().clone();
        let ctx = builder.main(0);
        let cells: Vec<_> = (0..NUM_INSTANCES as u64)
            .map(|i| ctx.load_witness(Fr::from(i)))
            .collect();
        let _ = gate.add(ctx, cells[0], cells[1]);
        builder.assigned_instances[0].extend(cells);
        Ok(builder)
    };
    let digest = config_digest(&("api-test-foreign", shape::SHAPE_VERSION));
    let key = store
        .proving_key("api-test-foreign", &digest, &params, || {
            build(CircuitBuilderStage::Keygen)
        })
        .unwrap();
    RegisteredRollup::new(id, key.pk.get_vk().clone(), Arc::new(params))
}

/// A service over a fresh in-memory store holding `slots` (in `proving`), and its API.
async fn start(
    registry: Registry,
    slots: [(u64, BTreeMap<u32, RollupSlot>); 2],
    max_body_bytes: usize,
) -> (Arc<MemoryStore>, Router) {
    let store = Arc::new(MemoryStore::default());
    let (service, handle) = AggregatorService::new(store.clone());
    tokio::spawn(service.run());
    for (slot, rollups) in slots {
        handle
            .create_slot(SlotRecord::new(
                slot,
                SlotState::Proving,
                rollups,
                vec![],
                lockstep_aggregator::service::slots::now_ms(),
            ))
            .await
            .unwrap()
            .unwrap();
    }
    let app = router(
        ApiState {
            store: store.clone(),
            registry: Arc::new(registry),
            handle,
            metrics: None,
            builder: None,
        },
        max_body_bytes,
    );
    (store, app)
}

async fn send(app: &Router, method: &str, uri: &str, body: Body) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(body)
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

async fn post(app: &Router, body: impl Into<Body>) -> (StatusCode, Value) {
    send(app, "POST", "/v1/proofs", body.into()).await
}

fn json_body(submission: &ProofSubmission) -> Body {
    Body::from(serde_json::to_vec(submission).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submissions_get_clear_errors_and_change_nothing() {
    let keys = testing::persistent_key_store().unwrap();
    let (params, key) = testing::test_rollup_key(&keys).unwrap();
    let params = Arc::new(params);
    // Rollup 1 is registered with the test rollup's key; rollup 2 with another circuit's.
    let registry = Registry {
        domain: DOMAIN,
        rollups: BTreeMap::from([
            (
                1,
                RegisteredRollup::new(1, key.pk.get_vk().clone(), params.clone()),
            ),
            (2, foreign_rollup(2, &keys)),
        ]),
    };
    let ring = testing::ring(DOMAIN, 5, 2);
    // The three proofs this test needs, made with the cached test-rollup key.
    let alone = testing::sample_rollup(DOMAIN, 6, 1, vec![], vec![], 0);
    let [one, two, one_alone] =
        [&ring[0], &ring[1], &alone].map(|w| testing::prove_test_rollup(&params, &key, w).unwrap());

    let (store, app) = start(
        registry.clone(),
        [
            (
                5,
                BTreeMap::from([(1, rollup_slot(&ring[0])), (2, rollup_slot(&ring[1]))]),
            ),
            (6, BTreeMap::from([(1, rollup_slot(&alone))])),
        ],
        64 * 1024,
    )
    .await;
    let slots = Slots::new(store.clone());
    let unchanged = |slots: &Slots<Arc<MemoryStore>>| {
        (
            slots.get(5).unwrap().unwrap().state,
            slots.proof_ids(5).unwrap(),
            slots.get(6).unwrap().unwrap().state,
        )
    };
    let before = unchanged(&slots);

    let good = submission(5, 1, &one);
    let mut wrong_count = good.clone();
    wrong_count.instances.pop();
    let mut bad_hex = good.clone();
    bad_hex.instances[3] = "0xnot-hex".into();
    let mut corrupt = good.clone();
    corrupt.proof.replace_range(
        10..12,
        if &corrupt.proof[10..12] == "00" {
            "01"
        } else {
            "00"
        },
    );
    // The dev-mode marker in place of a proof: only an aggregator run with `--dev` (on a
    // development chain) takes it; this one is not.
    let mut marker = good.clone();
    marker.proof = format!(
        "0x{}",
        hex::encode(lockstep_aggregator::service::prover::DEV_MODE_PROOF)
    );
    let mut oversize = serde_json::to_value(&good).unwrap();
    oversize["proof"] = json!(format!("0x{}", "ab".repeat(40_000)));
    let cases: Vec<(&str, Body, StatusCode, &str)> = vec![
        (
            "not JSON",
            Body::from("{ nope"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "unknown field",
            Body::from(
                json!({"slot": 5, "rollup_id": 1, "instances": [], "proof": "0x", "extra": 1})
                    .to_string(),
            ),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "oversize",
            Body::from(oversize.to_string()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "unknown slot",
            json_body(&submission(99, 1, &one)),
            StatusCode::NOT_FOUND,
            "unknown_slot",
        ),
        (
            "unknown rollup",
            json_body(&submission(5, 9, &one)),
            StatusCode::NOT_FOUND,
            "unknown_rollup",
        ),
        (
            "wrong count",
            json_body(&wrong_count),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            "bad hex",
            json_body(&bad_hex),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        // Rollup 1's proof presented as rollup 2's.
        (
            "wrong rollup id",
            json_body(&submission(5, 2, &one)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "mismatch",
        ),
        // A slot-5 proof presented for slot 6.
        (
            "wrong slot",
            json_body(&submission(6, 1, &one)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "mismatch",
        ),
        (
            "corrupted proof",
            json_body(&corrupt),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_proof",
        ),
        (
            "dev-mode marker outside dev mode",
            json_body(&marker),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_proof",
        ),
        // A genuine proof, but rollup 2 is registered with another circuit's key.
        (
            "wrong vk",
            json_body(&submission(5, 2, &two)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_proof",
        ),
    ];
    for (name, body, status, code) in cases {
        let (got, value) = post(&app, body).await;
        assert_eq!(
            (got, value["error"].as_str()),
            (status, Some(code)),
            "{name}: {value}"
        );
        assert!(
            !value["message"].as_str().unwrap_or("").is_empty(),
            "{name}"
        );
        assert_eq!(unchanged(&slots), before, "{name} changed nothing");
    }

    // The DA commitment and pre root are the slot's: a record fixing others refuses the proof.
    let mut record = slots.get(5).unwrap().unwrap();
    record.rollups.get_mut(&1).unwrap().da_commitment = fr_hex(&Fr::from(7));
    let err = intake::check(&good, &record, &registry).unwrap_err();
    assert!(err.to_string().starts_with("DA commitment is"), "{err}");

    // The good proof is accepted once; the slot waits for rollup 2.
    let (status, value) = post(&app, json_body(&good)).await;
    assert_eq!(
        (status, value["state"].as_str()),
        (StatusCode::ACCEPTED, Some("proving")),
        "{value}"
    );
    let (status, value) = post(&app, json_body(&good)).await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate"))
    );
    assert_eq!(slots.proof_ids(5).unwrap(), vec![1]);

    // Slot 6 has one rollup: its proof completes it, and a late proof is stale.
    let (status, value) = post(&app, json_body(&submission(6, 1, &one_alone))).await;
    assert_eq!(
        (status, value["state"].as_str()),
        (StatusCode::ACCEPTED, Some("aggregating")),
        "{value}"
    );
    let (status, value) = post(&app, json_body(&submission(6, 1, &one_alone))).await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::CONFLICT, Some("stale_slot")),
        "{value}"
    );

    // Reads.
    let (status, value) = send(&app, "GET", "/v1/slots/5", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (value["state"].as_str(), &value["proofs_received"]),
        (Some("proving"), &json!([1]))
    );
    let (status, value) = send(&app, "GET", "/v1/rollups/2", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(value["slots_waiting_for_proof"], json!([5]));
    assert_eq!(
        value["vk_digest"].as_str().unwrap(),
        fr_hex(&registry.rollups[&2].vk_digest)
    );
    let (status, _) = send(&app, "GET", "/v1/rollups/9", Body::empty()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, value) = send(&app, "GET", "/health", Body::empty()).await;
    assert_eq!(
        (status, value["unfinished_slots"].as_u64()),
        (StatusCode::OK, Some(2))
    );

    load_on_loopback(
        registry,
        [
            (
                5,
                BTreeMap::from([(1, rollup_slot(&ring[0])), (2, rollup_slot(&ring[1]))]),
            ),
            (6, BTreeMap::from([(1, rollup_slot(&alone))])),
        ],
        [submission(5, 1, &one), submission(6, 1, &one_alone)],
    )
    .await;
}

/// Several adapters hammer a real server on loopback with the same two proofs and with reads,
/// all at once: every request is answered, each proof is accepted exactly once, and the slot it
/// completes moves exactly once.
async fn load_on_loopback(
    registry: Registry,
    slots: [(u64, BTreeMap<u32, RollupSlot>); 2],
    proofs: [ProofSubmission; 2],
) {
    const ADAPTERS: usize = 4;
    const ROUNDS: usize = 8;
    let (store, app) = start(registry, slots, 1 << 20).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let bodies: Vec<String> = proofs
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
    let mut tasks = Vec::new();
    for adapter in 0..ADAPTERS {
        for round in 0..ROUNDS {
            let body = bodies[(adapter + round) % 2].clone();
            tasks.push(tokio::spawn(async move {
                raw_http(addr, "POST", "/v1/proofs", &body).await
            }));
            tasks.push(tokio::spawn(async move {
                raw_http(addr, "GET", "/v1/slots/5", "").await
            }));
        }
    }
    let answers = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    })
    .await
    .expect("every request is answered (no deadlock)");
    let count = |status: u16| answers.iter().filter(|&&s| s == status).count();
    assert_eq!(answers.len(), 2 * ADAPTERS * ROUNDS, "no request lost");
    assert_eq!(count(200), ADAPTERS * ROUNDS, "every read answered");
    assert_eq!(
        count(202),
        2,
        "each proof accepted exactly once: {answers:?}"
    );
    assert_eq!(
        count(409),
        ADAPTERS * ROUNDS - 2,
        "the rest refused as duplicate or stale"
    );
    let slots = Slots::new(store);
    assert_eq!(slots.get(5).unwrap().unwrap().state, SlotState::Proving);
    let six = slots.get(6).unwrap().unwrap();
    assert_eq!(six.state, SlotState::Aggregating);
    assert_eq!(six.history.len(), 2, "the slot moved once");
}

/// One HTTP/1.1 request on a fresh connection; returns the status code.
async fn raw_http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let head = String::from_utf8_lossy(&response[..response.len().min(32)]).to_string();
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head:?}"))
}

/// `POST /v1/slots`: the builder's blocks are laid out in the slot's blobs and every rollup's DA
/// commitment is fixed; bad openings get a clear 4xx and record nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_openings_lay_out_blobs_and_bad_ones_change_nothing() {
    let keys = testing::persistent_key_store().unwrap();
    // Rollups 1 and 2 of the test rollup, in this file's domain.
    let registry = crate::cluster::registry(&keys);
    assert_eq!(registry.domain, DOMAIN);
    let store = Arc::new(MemoryStore::default());
    let (service, handle) = AggregatorService::new(store.clone());
    tokio::spawn(service.run());
    let app = router(
        ApiState {
            store: store.clone(),
            registry: Arc::new(registry),
            handle,
            metrics: None,
            builder: None,
        },
        64 * 1024,
    );
    let open = |body: Value| {
        let app = app.clone();
        async move { send(&app, "POST", "/v1/slots", Body::from(body.to_string())).await }
    };
    let block = |id: u32, root: u64, data: &[u8]| json!({ "rollup_id": id, "pre_root": fr_hex(&Fr::from(root)), "data": format!("0x{}", hex::encode(data)) });

    // Two rollups; rollup 2's block (listed first) still goes after rollup 1's.
    let (status, slot) = open(json!({
        "slot": 10,
        "rollups": [block(2, 22, &[2; 700]), block(1, 11, &[1; 300])],
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{slot}");
    assert_eq!(slot["state"], "proving");
    let one = &slot["rollups"]["1"];
    let two = &slot["rollups"]["2"];
    assert_eq!(
        (one["offset"].as_u64(), one["length"].as_u64()),
        (Some(0), Some(300))
    );
    assert_eq!(
        (two["offset"].as_u64(), two["length"].as_u64()),
        (Some(300), Some(700))
    );
    assert_eq!(one["pre_root"].as_str().unwrap(), fr_hex(&Fr::from(11)));
    let hashes = slot["versioned_hashes"].as_array().unwrap();
    assert_eq!(hashes.len(), 1);
    // The DA commitment is the one L1 computes from the blob's versioned hash.
    let hash: alloy::primitives::B256 = hashes[0].as_str().unwrap().parse().unwrap();
    let expected = lockstep_aggregator::l1::u256_to_fr(
        lockstep_contracts::settlement::da_commitment(hash, 300, 700),
    )
    .unwrap();
    assert_eq!(two["da_commitment"].as_str().unwrap(), fr_hex(&expected));
    let slots = Slots::new(store.clone());
    assert_eq!(slots.blocks(10).unwrap()[&2], vec![2; 700]);

    // A slot-10 proof is now expected from each rollup.
    let (_, rollup) = send(&app, "GET", "/v1/rollups/1", Body::empty()).await;
    assert_eq!(rollup["slots_waiting_for_proof"], json!([10]));

    let big = vec![0u8; 6 * lockstep_contracts::settlement::PAYLOAD_BYTES_PER_BLOB + 1];
    let cases = [
        (
            "not JSON",
            Value::String("{".into()),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "unknown field",
            json!({ "slot": 11, "rollups": [block(1, 1, b"x")], "extra": true }),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "no rollups",
            json!({ "slot": 11, "rollups": [] }),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            "unknown rollup",
            json!({ "slot": 11, "rollups": [block(9, 1, b"x")] }),
            StatusCode::NOT_FOUND,
            "unknown_rollup",
        ),
        (
            "rollup twice",
            json!({ "slot": 11, "rollups": [block(1, 1, b"x"), block(1, 2, b"y")] }),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            "non-canonical root",
            json!({ "slot": 11, "rollups": [{ "rollup_id": 1, "pre_root": format!("0x{}", "ff".repeat(32)), "data": "0x00" }] }),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            "data not hex",
            json!({ "slot": 11, "rollups": [{ "rollup_id": 1, "pre_root": "0x01", "data": "0xzz" }] }),
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            "same slot again",
            json!({ "slot": 10, "rollups": [block(1, 1, b"x")] }),
            StatusCode::CONFLICT,
            "exists",
        ),
        (
            "older slot",
            json!({ "slot": 9, "rollups": [block(1, 1, b"x")] }),
            StatusCode::CONFLICT,
            "stale_slot",
        ),
        (
            "more than 6 blobs",
            json!({ "slot": 11, "rollups": [block(1, 1, &big)] }),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
    ];
    for (name, body, status, code) in cases {
        let body = match body {
            Value::String(raw) => Body::from(raw),
            other => Body::from(other.to_string()),
        };
        let (got, value) = send(&app, "POST", "/v1/slots", body).await;
        assert_eq!(
            (got, value["error"].as_str()),
            (status, Some(code)),
            "{name}: {value}"
        );
        assert!(
            slots.get(11).unwrap().is_none() && slots.get(9).unwrap().is_none(),
            "{name}"
        );
        assert_eq!(slots.get(10).unwrap().unwrap().rollups.len(), 2, "{name}");
    }
}

/// `GET /v1/slots` lists the newest slots first and refuses a bad limit; `lockstep status`
/// reads a running service and says plainly when nothing answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_a_running_service() {
    let keys = testing::persistent_key_store().unwrap();
    let (params, key) = testing::test_rollup_key(&keys).unwrap();
    let registry = Registry {
        domain: DOMAIN,
        rollups: [(
            3,
            RegisteredRollup::new(3, key.pk.get_vk().clone(), Arc::new(params)),
        )]
        .into(),
    };
    let w = testing::sample_rollup(DOMAIN, 7, 3, vec![], vec![], 0);
    let slots = [7, 8].map(|slot| (slot, BTreeMap::from([(3, rollup_slot(&w))])));
    let (_store, app) = start(registry, slots, 64 * 1024).await;

    // No builder here: transactions are refused with a pointer to POST /v1/slots.
    let (status, body) = send(&app, "POST", "/v1/transactions", Body::from("{}")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_builder")),
        "{body}"
    );

    let (status, listed) = send(&app, "GET", "/v1/slots?limit=1", Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["slots"].as_array().unwrap().len(), 1);
    assert_eq!(listed["slots"][0]["slot"], 8, "newest first");
    for bad in ["limit=0", "limit=1001", "limit=two", "newest=3"] {
        let (status, body) = send(&app, "GET", &format!("/v1/slots?{bad}"), Body::empty()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "malformed", "{bad}");
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let report = status::fetch(&ApiClient::local(addr), 10).await.unwrap();
    assert_eq!(report.health.unfinished_slots, 2);
    assert_eq!(report.rollups.len(), 1);
    assert_eq!(report.rollups[0].slots_waiting_for_proof, vec![7, 8]);
    let numbers: Vec<_> = report.slots.iter().map(|s| s.slot).collect();
    assert_eq!(numbers, [8, 7]);
    let text = status::render(&report, lockstep_aggregator::service::slots::now_ms());
    assert!(text.contains("0 of 1 proofs in"), "{text}");

    // Nothing listening: a clear error, not a panic.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nobody = closed.local_addr().unwrap();
    drop(closed);
    let err = status::fetch(&ApiClient::local(nobody), 10)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("no aggregator answers"),
        "{err:#}"
    );
}
