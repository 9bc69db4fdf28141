//! Adapters proving with the reference rollup's STF circuit against a running service, with
//! real proofs: the STF deployment's verifying-key file registers both rollups at the
//! aggregator, each adapter derives the same key from the deployment, proves its blocks of two
//! slots and the aggregator accepts them after verifying them natively. Refused: an adapter whose circuit is not the registered
//! one, a test-rollup proof for an STF rollup, and a block over the deployment's capacity.

use std::{rc::Rc, time::Instant};

use lockstep_aggregator::{
    client::slot_opening,
    service::intake::{RegisteredRollup, Registry},
};
use lockstep_circuits::{entry::Address, testing, vk_file::VkFile};
use std::sync::Arc;

use lockstep_reference_rollup::{
    abi::CallData,
    block::Tx,
    circuit::{StfCapacity, StfConfig},
    Genesis, ReferenceProver, ReferenceReplica, ReferenceRollup, StfProver,
};
use lockstep_rollup_adapter::{submission, Adapter};
use lockstep_rollup_api::{Cluster, RollupProver, SealedBlock, TestRollupProver};
use serde_json::json;

use crate::cluster::*;

/// The smallest deployment that holds this test's blocks: a cross-rollup increment (rollup 2:
/// the transaction and the call's result; rollup 1: the served call) and a transfer, on trees
/// of depth 8.
const STF: StfConfig = StfConfig {
    k: 19,
    depth: 8,
    capacity: StfCapacity {
        rows: 12,
        tape: 2,
        keys: 5,
        scratch: 16,
    },
    lookup_bits: None,
};

fn small_geneses() -> [Genesis; 2] {
    geneses().map(|mut genesis| {
        genesis.tree_depth = STF.depth;
        genesis
    })
}

/// Seals one slot of `txs` (each on rollup 2) over `rollups`.
fn build_slot(rollups: &[Rc<ReferenceRollup>], slot: u64, txs: &[Tx]) -> Vec<SealedBlock> {
    let mut cluster = Cluster::new(DOMAIN);
    for rollup in rollups {
        cluster.add(Box::new(rollup.clone())).unwrap();
    }
    cluster.begin_slot(slot).unwrap();
    for tx in txs {
        cluster.submit(2, &tx.encode()).unwrap();
    }
    cluster.seal().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_prove_their_blocks_with_the_stf_circuit() {
    let keys = testing::persistent_key_store().unwrap();
    tokio::task::block_in_place(|| keys.load_or_generate_unsafe_test_srs(STF.k)).unwrap();

    // The rollup team's side: the key of its deployment, exported as a verifying-key file.
    let t = Instant::now();
    let stf = tokio::task::block_in_place(|| StfProver::load(&keys, STF)).unwrap();
    eprintln!(
        "STF key (k = {}): {:.1} s",
        STF.k,
        t.elapsed().as_secs_f64()
    );
    let vk_dir = tempfile::tempdir().unwrap();
    let vk_path = vk_dir.path().join("stf.vk.json");
    VkFile::new(
        "reference rollup STF, test deployment",
        stf.params(),
        stf.vk(),
    )
    .unwrap()
    .write(&vk_path)
    .unwrap();

    // The aggregator's side: both rollups registered by that file alone.
    let loaded = VkFile::read(&vk_path)
        .unwrap()
        .load(&keys, &vk_path)
        .unwrap();
    assert_eq!(loaded.vk_digest, RollupProver::vk_digest(&stf));
    let registry = Registry {
        domain: DOMAIN,
        rollups: [1, 2]
            .map(|id| (id, RegisteredRollup::from_file(id, loaded.clone())))
            .into(),
    };
    let client = serve(registry).await;

    // The rollup reports its key's label and digest.
    let (_, rollup) = client.get_raw("/v1/rollups/1").await.unwrap();
    assert_eq!(rollup["label"], "reference rollup STF, test deployment");
    assert_eq!(
        rollup["vk_digest"],
        lockstep_circuits::fr_text::fr_hex(&RollupProver::vk_digest(&stf))
    );
    let test_rollup: ReferenceProver =
        Arc::new(tokio::task::block_in_place(|| TestRollupProver::load(&keys)).unwrap());
    let stf_prover: ReferenceProver = Arc::new(stf.clone());
    let [one, two] = small_geneses();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];

    // An adapter proving with another circuit is refused at open, naming both.
    let err = Adapter::open(
        ReferenceReplica::new(&one).unwrap(),
        client.clone(),
        dirs[0].path(),
        test_rollup.clone(),
    )
    .await
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("registered at the aggregator with vk digest")
            && err.contains("reference rollup STF, test deployment")
            && err.contains("proves with the test-rollup circuit: public inputs only"),
        "{err}"
    );

    let builder: Vec<_> = small_geneses()
        .iter()
        .map(|g| Rc::new(ReferenceRollup::new(g).unwrap()))
        .collect();
    let mut adapter_one = Adapter::open(
        ReferenceReplica::new(&one).unwrap(),
        client.clone(),
        dirs[0].path(),
        stf_prover.clone(),
    )
    .await
    .unwrap();
    let mut adapter_two = Adapter::open(
        ReferenceReplica::new(&two).unwrap(),
        client.clone(),
        dirs[1].path(),
        stf_prover.clone(),
    )
    .await
    .unwrap();

    // Slot 5: Alice on rollup 2 increments rollup 1's counter; both blocks are proven.
    let blocks = build_slot(&builder, 5, &[increment(0)]);
    assert_eq!(blocks.len(), 2);
    let (status, body) = client
        .post_raw("/v1/slots", &slot_opening(5, &blocks))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");

    // Before that: a test-rollup proof of rollup 2's block is refused by the verifier.
    let job = adapter_two.prepare(5).await.unwrap();
    assert_eq!(
        job.sealed, blocks[1],
        "the adapter's one run seals what the builder sealed"
    );
    let proof = tokio::task::block_in_place(|| test_rollup.prove(&job)).unwrap();
    let forged = submission(&job, &proof).unwrap();
    let (status, answer) = client.post_raw("/v1/proofs", &forged).await.unwrap();
    assert_eq!(
        (status, answer["error"].as_str()),
        (422, Some("invalid_proof")),
        "{answer}"
    );
    // And a deployment too small for the block refuses to prove it, naming what is over.
    let mut small = STF;
    small.capacity.tape = 1;
    let err = stf.with_config(small).prove(&job).unwrap_err().to_string();
    assert!(err.contains("tape steps 2 > 1"), "{err}");

    for (adapter, state) in [
        (&mut adapter_one, "proving"),
        (&mut adapter_two, "aggregating"),
    ] {
        let t = Instant::now();
        let done = adapter.step().await.unwrap();
        eprintln!(
            "rollup {} STF proof of slot 5: {:.1} s",
            adapter.rollup_id(),
            t.elapsed().as_secs_f64()
        );
        assert_eq!(
            (done.len(), done[0].outcome, done[0].slot_state.as_str()),
            (1, "accepted", state),
            "{done:?}"
        );
    }
    assert_eq!(adapter_one.head_root(), blocks[0].header.post_root);
    assert_eq!(adapter_two.head_root(), blocks[1].header.post_root);

    // Slot 6: a plain transfer on rollup 2, from the state slot 5 left, to a new account. A
    // tree of depth 8 has 256 leaves: an address whose leaf is taken is refused (a key
    // collision, nothing changed), so take the first free one.
    let mut cluster = Cluster::new(DOMAIN);
    for rollup in &builder {
        cluster.add(Box::new(rollup.clone())).unwrap();
    }
    cluster.begin_slot(6).unwrap();
    let sent = (0xb0..=0xbf).find_map(|byte| {
        let transfer = Tx {
            from: ALICE,
            nonce: 1,
            to: Address([byte; 20]),
            value: 7,
            data: CallData::transfer(),
        };
        cluster.submit(2, &transfer.encode()).ok()
    });
    assert!(sent.as_ref().is_some_and(|r| r.outcome.success), "{sent:?}");
    let mut blocks = cluster.seal().unwrap();
    blocks.retain(|b| b.header.rollup_id == 2);
    let (status, body) = client
        .post_raw("/v1/slots", &slot_opening(6, &blocks))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert!(
        adapter_one.step().await.unwrap().is_empty(),
        "not in slot 6"
    );
    let done = adapter_two.step().await.unwrap();
    assert_eq!(
        (done[0].slot, done[0].outcome, done[0].slot_state.as_str()),
        (6, "accepted", "aggregating"),
        "{done:?}"
    );
    assert_eq!(adapter_two.head_root(), blocks[0].header.post_root);
    let (_, record) = client.get_raw("/v1/slots/6").await.unwrap();
    assert_eq!(record["state"], json!("aggregating"), "{record}");
}
