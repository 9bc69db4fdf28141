//! The service's builder: transactions submitted over HTTP run across rollups in a slot the
//! builder opens, with each transaction's outcome recorded in the same write; bad submissions
//! get a clear 4xx; a restarted builder replays the opened slots and carries on from there.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use lockstep_aggregator::{
    client::ApiClient,
    service::{
        self,
        api::MAX_TX_BYTES,
        builder::{BuilderParts, SlotClock},
        pipeline::AggregationProver,
        Launched, Parts,
    },
};
use lockstep_circuits::{keys::KeyStore, testing};
use lockstep_reference_rollup::{
    block::{parse_fr_hex, Block, Step, Tx},
    circuit::StfCapacity,
    ReferenceRollups,
};
use lockstep_storage::MemoryStore;
use serde_json::{json, Value};

use crate::cluster::*;

/// A service with a builder over `store`, served on loopback.
async fn start(store: Arc<MemoryStore>, keys: &KeyStore, every_ms: u64) -> (Launched, ApiClient) {
    start_with(store, keys, every_ms, BTreeMap::new()).await
}

/// As [`start`], with the builder keeping blocks within `capacities`.
async fn start_with(
    store: Arc<MemoryStore>,
    keys: &KeyStore,
    every_ms: u64,
    capacities: BTreeMap<u32, StfCapacity>,
) -> (Launched, ApiClient) {
    let registry = Arc::new(registry(keys));
    let mut launched = service::launch(Parts {
        store,
        registry: registry.clone(),
        prover: Arc::new(AggregationProver::new(
            KeyStore::open(keys.root()).unwrap(),
            registry,
            None,
        )),
        l1: None,
        pause_at: None,
        metrics: None,
        max_body_bytes: 64 * 1024,
        builder: Some(BuilderParts {
            rollups: Arc::new(ReferenceRollups {
                geneses: geneses().to_vec(),
                capacities,
            }),
            clock: SlotClock::Next,
            every: Duration::from_millis(every_ms),
            max_txs: 8,
            max_pending: 2,
        }),
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = ApiClient::local(listener.local_addr().unwrap());
    let router = std::mem::replace(&mut launched.router, axum::Router::new());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (launched, client)
}

fn submission(rollup_id: u32, nonce: u64) -> Value {
    json!({ "rollup_id": rollup_id, "tx": hex_tx(&increment(nonce)) })
}

/// A reference-rollup transaction as `POST /v1/transactions` takes it: its encoding in hex.
fn hex_tx(tx: &Tx) -> String {
    format!("0x{}", hex::encode(tx.encode()))
}

/// An included transaction's return data as the reference rollup's word.
fn word(tx: &Value) -> Option<u128> {
    let data = hex::decode(tx["data"].as_str()?.strip_prefix("0x")?).ok()?;
    Some(u128::from_be_bytes(data.try_into().ok()?))
}

/// Waits until transaction `id` leaves `pending`.
async fn settled_tx(client: &ApiClient, id: u64) -> Value {
    for _ in 0..300 {
        let (status, body) = client
            .get_raw(&format!("/v1/transactions/{id}"))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        if body["state"] != "pending" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("transaction {id} still pending after 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_transactions_run_in_a_slot_the_builder_opens() {
    let keys = testing::persistent_key_store().unwrap();
    let store = Arc::new(MemoryStore::default());
    // A slow first round, so the mempool fills before the builder takes anything.
    let (launched, client) = start(store.clone(), &keys, 1_500).await;

    // Alice increments rollup 1's counter from rollup 2; then a transaction with a nonce she
    // has not reached; the third finds the mempool full (max_pending = 2).
    let (status, body) = client
        .post_raw("/v1/transactions", &submission(2, 0))
        .await
        .unwrap();
    assert_eq!((status, body["id"].as_u64()), (202, Some(1)), "{body}");
    let (status, body) = client
        .post_raw("/v1/transactions", &submission(2, 5))
        .await
        .unwrap();
    assert_eq!((status, body["id"].as_u64()), (202, Some(2)), "{body}");
    let (status, body) = client
        .post_raw("/v1/transactions", &submission(2, 1))
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("mempool_full")),
        "{body}"
    );

    // Refused at the door: nothing recorded.
    let too_large = json!({ "rollup_id": 2, "tx": format!("0x{}", "00".repeat(MAX_TX_BYTES + 1)) });
    for (what, body, code) in [
        ("unknown rollup", submission(9, 0), (404, "unknown_rollup")),
        (
            "not a transaction",
            json!({ "rollup_id": 2, "tx": 7 }),
            (400, "malformed_json"),
        ),
        (
            "unknown field",
            json!({ "rollup_id": 2, "tx": hex_tx(&increment(0)), "fee": 1 }),
            (400, "malformed_json"),
        ),
        ("too large", too_large, (413, "too_large")),
    ] {
        let (status, answer) = client.post_raw("/v1/transactions", &body).await.unwrap();
        assert_eq!(
            (status, answer["error"].as_str()),
            (code.0, Some(code.1)),
            "{what}: {answer}"
        );
    }
    let (status, body) = client.get_raw("/v1/transactions/3").await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_transaction"))
    );

    // The builder runs both in one slot: the first is included, the second refused.
    let first = settled_tx(&client, 1).await;
    assert_eq!(first["state"], "included", "{first}");
    assert_eq!(
        (first["success"].as_bool(), word(&first)),
        (Some(true), Some(1))
    );
    assert_eq!(first["cross_calls"], 1);
    let slot = first["slot"].as_u64().unwrap();
    let second = settled_tx(&client, 2).await;
    assert_eq!(
        (second["state"].as_str(), second["slot"].as_u64()),
        (Some("refused"), Some(slot))
    );
    assert!(
        second["reason"].as_str().unwrap().contains("nonce"),
        "{second}"
    );

    // The slot holds both rollups' blocks, laid out and waiting for proofs.
    let (status, record) = client.get_raw(&format!("/v1/slots/{slot}")).await.unwrap();
    assert_eq!(
        (status, record["state"].as_str()),
        (200, Some("proving")),
        "{record}"
    );
    assert_eq!(record["rollups"].as_object().unwrap().len(), 2);
    let (_, block) = client
        .get_raw(&format!("/v1/slots/{slot}/blocks/2"))
        .await
        .unwrap();
    let data = hex::decode(block["data"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let block = Block::decode(&data).unwrap();
    assert!(matches!(block.steps.as_slice(), [Step::Tx(tx), ..] if *tx == increment(0)));
    let (_, one) = client
        .get_raw(&format!("/v1/slots/{slot}/blocks/1"))
        .await
        .unwrap();
    let one_post = Block::decode(
        &hex::decode(one["data"].as_str().unwrap().trim_start_matches("0x")).unwrap(),
    )
    .unwrap()
    .post_root;

    // Restart: the new builder replays the slot, so Alice's next nonce is 1 and rollup 1's
    // next block starts where the first one ended.
    launched.builder.unwrap().stop();
    launched.pipeline.abort();
    let (launched, client) = start(store, &keys, 100).await;
    let (status, body) = client
        .post_raw("/v1/transactions", &submission(2, 1))
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let third = settled_tx(&client, body["id"].as_u64().unwrap()).await;
    assert_eq!(third["state"], "included", "{third}");
    assert_eq!(
        word(&third),
        Some(2),
        "the counter carried on from 1: {third}"
    );
    let next = third["slot"].as_u64().unwrap();
    assert!(next > slot);
    let (_, record) = client.get_raw(&format!("/v1/slots/{next}")).await.unwrap();
    let pre = parse_fr_hex(record["rollups"]["1"]["pre_root"].as_str().unwrap()).unwrap();
    assert_eq!(pre, one_post);
    launched.builder.unwrap().stop();
    launched.pipeline.abort();
}

/// A capacity limited to `tape` steps and otherwise ample.
const fn tape_only(tape: usize) -> StfCapacity {
    StfCapacity {
        rows: 1_000,
        tape,
        keys: 1_000,
        scratch: 1_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_keeps_every_block_within_its_stf_capacity() {
    let keys = testing::persistent_key_store().unwrap();

    // Rollup 2's blocks hold 3 tape steps; each increment through the proxy takes 2 (the
    // transaction and the call's result). Two waiting increments go into two slots.
    let store = Arc::new(MemoryStore::default());
    let capacities = BTreeMap::from([(2, tape_only(3))]);
    let (launched, client) = start_with(store, &keys, 1_500, capacities).await;
    for nonce in 0..2 {
        let (status, body) = client
            .post_raw("/v1/transactions", &submission(2, nonce))
            .await
            .unwrap();
        assert_eq!(status, 202, "{body}");
    }
    let first = settled_tx(&client, 1).await;
    let second = settled_tx(&client, 2).await;
    for (tx, expected) in [(&first, 1), (&second, 2)] {
        assert_eq!(
            (tx["state"].as_str(), word(tx)),
            (Some("included"), Some(expected)),
            "{tx}"
        );
    }
    let (one, two) = (
        first["slot"].as_u64().unwrap(),
        second["slot"].as_u64().unwrap(),
    );
    assert!(
        two > one,
        "the second waited for the next slot: {one}, {two}"
    );
    for slot in [one, two] {
        let (_, block) = client
            .get_raw(&format!("/v1/slots/{slot}/blocks/2"))
            .await
            .unwrap();
        let data = hex::decode(block["data"].as_str().unwrap().trim_start_matches("0x")).unwrap();
        assert_eq!(Block::decode(&data).unwrap().steps.len(), 2, "slot {slot}");
    }
    launched.builder.unwrap().stop();
    launched.pipeline.abort();

    // With 1 step, an increment does not fit even alone: refused, named, and no slot opens.
    let store = Arc::new(MemoryStore::default());
    let capacities = BTreeMap::from([(2, tape_only(1))]);
    let (launched, client) = start_with(store, &keys, 100, capacities).await;
    let (status, body) = client
        .post_raw("/v1/transactions", &submission(2, 0))
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let refused = settled_tx(&client, 1).await;
    assert_eq!(refused["state"], "refused", "{refused}");
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.contains("rollup 2")
            && reason.contains("tape steps 2 > 1")
            && reason.contains("alone"),
        "{reason}"
    );
    let (_, slots) = client.get_raw("/v1/slots").await.unwrap();
    assert_eq!(slots["slots"], json!([]), "{slots}");
    launched.builder.unwrap().stop();
    launched.pipeline.abort();
}
