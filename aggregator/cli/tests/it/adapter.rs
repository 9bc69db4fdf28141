//! The adapter daemon's library against a running service: it replays the builder's blocks on
//! its own state, proves and submits them; it keeps its blocks across restarts, proves a block
//! again after a crash before submission, and refuses a block that does not start at its root.

use std::rc::Rc;

use lockstep_aggregator::client::{slot_opening, ApiClient};
use lockstep_circuits::testing;
use std::sync::Arc;

use lockstep_reference_rollup::{Genesis, ReferenceProver, ReferenceReplica, ReferenceRollup};
use lockstep_rollup_adapter::Adapter;
use lockstep_rollup_api::{Cluster, SealedBlock, TestRollupProver};
use serde_json::{json, Value};

use crate::cluster::*;

/// The builder: one cross-rollup increment per slot, sealed.
fn build_slot(rollups: &[Rc<ReferenceRollup>], slot: u64, nonce: u64) -> Vec<SealedBlock> {
    let mut cluster = Cluster::new(DOMAIN);
    for rollup in rollups {
        cluster.add(Box::new(rollup.clone())).unwrap();
    }
    cluster.begin_slot(slot).unwrap();
    cluster.submit(2, &increment(nonce).encode()).unwrap();
    cluster.seal().unwrap()
}

async fn open_slot(client: &ApiClient, slot: u64, blocks: &[SealedBlock]) -> Value {
    let (status, body) = client
        .post_raw("/v1/slots", &slot_opening(slot, blocks))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_replay_prove_and_survive_restarts() {
    let keys = testing::persistent_key_store().unwrap();
    let prover: ReferenceProver = Arc::new(TestRollupProver::load(&keys).unwrap());
    let registry = registry(&keys);
    let client = serve(registry).await;

    let [one, two] = geneses();
    let builder: Vec<_> = geneses()
        .iter()
        .map(|g| Rc::new(ReferenceRollup::new(g).unwrap()))
        .collect();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    // An adapter of `genesis`'s rollup over the data folder `dir`: opened, or reopened after a
    // restart.
    let open = |genesis: &Genesis, dir: &std::path::Path| {
        let (replica, dir) = (ReferenceReplica::new(genesis).unwrap(), dir.to_owned());
        let (client, prover) = (client.clone(), prover.clone());
        async move { Adapter::open(replica, client, dir, prover).await.unwrap() }
    };

    // An unregistered rollup is refused at open.
    let err = Adapter::open(
        ReferenceReplica::new(&Genesis::new(9)).unwrap(),
        client.clone(),
        dirs[0].path(),
        prover.clone(),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("rollup 9 is not registered"),
        "{err:#}"
    );

    // Slot 5: both adapters replay, prove and submit; the slot moves on.
    let blocks = build_slot(&builder, 5, 0);
    open_slot(&client, 5, &blocks).await;
    let mut adapter_one = open(&one, dirs[0].path()).await;
    let mut adapter_two = open(&two, dirs[1].path()).await;
    let done = adapter_one.step().await.unwrap();
    assert_eq!((done.len(), done[0].outcome), (1, "accepted"));
    let done = adapter_two.step().await.unwrap();
    assert_eq!(done[0].slot_state, "aggregating", "{done:?}");
    assert_eq!(adapter_one.head_root(), blocks[0].header.post_root);
    assert_eq!(adapter_two.head_root(), blocks[1].header.post_root);
    // Nothing waits any more.
    assert!(adapter_one.step().await.unwrap().is_empty());

    // A restart replays the kept block.
    drop(adapter_one);
    let mut adapter_one = open(&one, dirs[0].path()).await;
    assert_eq!(adapter_one.head_root(), blocks[0].header.post_root);

    // Slot 6: rollup 1's adapter keeps the block, then "crashes" before submitting; the
    // restarted adapter proves it again from the state before it.
    let blocks = build_slot(&builder, 6, 1);
    open_slot(&client, 6, &blocks).await;
    let job = adapter_one.prepare(6).await.unwrap();
    assert_eq!(adapter_one.head_root(), blocks[0].header.post_root);
    // The adapter executed the block once, on the step machine; what that run produced is
    // exactly what the builder's executor sealed.
    assert_eq!(job.sealed, blocks[0]);
    assert_eq!(
        job.witness.run.outputs.post_root,
        blocks[0].header.post_root
    );
    drop(adapter_one);
    let mut adapter_one = open(&one, dirs[0].path()).await;
    let done = adapter_one.step().await.unwrap();
    assert_eq!((done[0].slot, done[0].outcome), (6, "accepted"));
    assert_eq!(adapter_one.head_root(), blocks[0].header.post_root);

    // A fresh data folder joins late: it takes slots 5 and 6 from the aggregator.
    let late_dir = tempfile::tempdir().unwrap();
    let mut late = open(&one, late_dir.path()).await;
    assert_eq!(late.catch_up(7).await.unwrap(), 2);
    assert_eq!(late.head_root(), adapter_one.head_root());
    assert_eq!(late.catch_up(7).await.unwrap(), 0, "nothing twice");
    drop(late);
    let late = open(&one, late_dir.path()).await;
    assert_eq!(
        late.head_root(),
        adapter_one.head_root(),
        "what it took is kept"
    );

    // Slot 7: a block that does not start at the adapter's root is refused and not proven.
    let stale: Vec<_> = geneses()
        .iter()
        .map(|g| Rc::new(ReferenceRollup::new(g).unwrap()))
        .collect();
    let blocks = build_slot(&stale, 7, 0);
    open_slot(&client, 7, &blocks).await;
    let err = adapter_one.step().await.unwrap_err();
    assert!(
        format!("{err:#}").contains("but this rollup is at"),
        "{err:#}"
    );
    assert_eq!(
        adapter_one.head_root(),
        builder[0].root(),
        "nothing applied"
    );
    let (_, rollup) = client.get_raw("/v1/rollups/1").await.unwrap();
    assert_eq!(rollup["slots_waiting_for_proof"], json!([7]));

    // The block endpoint: unknown slot, rollup not in the slot.
    let (status, body) = client.get_raw("/v1/slots/99/blocks/1").await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_slot"))
    );
    let (status, body) = client.get_raw("/v1/slots/5/blocks/3").await.unwrap();
    assert_eq!((status, body["error"].as_str()), (404, Some("not_in_slot")));
}
