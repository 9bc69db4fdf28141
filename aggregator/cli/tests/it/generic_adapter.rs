//! One adapter daemon, two rollups with different circuits: the generic adapter
//! (`lockstep-rollup-adapter`) runs the tally rollup with its own circuit and the reference
//! rollup with the test-rollup circuit, against one service that registered each by its own
//! verifying key. Both prove their blocks of one cross-rollup slot for real and the service
//! accepts both; a replica paired with another rollup's circuit is refused at open; the tally's
//! adapter keeps its block across a restart.

use std::{rc::Rc, sync::Arc};

use lockstep_aggregator::{
    client::slot_opening,
    service::intake::{RegisteredRollup, Registry},
};
use lockstep_circuits::testing;
use lockstep_reference_rollup::{
    abi::{AppKind, CallData, Method},
    block::Tx,
    Genesis, ReferenceReplica, ReferenceRollup,
};
use lockstep_rollup_adapter::{Adapter, SharedProver};
use lockstep_rollup_api::{Cluster, RollupProver, TestRollupProver};
use lockstep_tally_rollup::{
    circuit::TALLY_K, TallyProver, TallyReplica, TallyRollup, TallyState, TALLY_APP,
};

use crate::cluster::*;

/// Wei Alice sends with her call to the tally.
const VALUE: u128 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_adapter_daemon_runs_rollups_with_different_circuits() {
    let keys = testing::persistent_key_store().unwrap();
    tokio::task::block_in_place(|| keys.load_or_generate_unsafe_test_srs(TALLY_K)).unwrap();
    let tally = Arc::new(tokio::task::block_in_place(|| TallyProver::load(&keys)).unwrap());
    let test_rollup =
        Arc::new(tokio::task::block_in_place(|| TestRollupProver::load(&keys)).unwrap());
    let tally_digest = RollupProver::vk_digest(&tally);
    assert_ne!(
        tally_digest,
        RollupProver::<()>::vk_digest(&test_rollup),
        "two circuits"
    );

    // The service: rollup 1 (the tally) and rollup 2 (a reference rollup) by their own keys.
    let registered = |id: u32, vk: &_, params: &_, label: &str| {
        RegisteredRollup::new(id, Clone::clone(vk), Arc::new(Clone::clone(params)))
            .with_label(label.to_owned())
    };
    let registry = Registry {
        domain: DOMAIN,
        rollups: [
            (1, registered(1, tally.vk(), tally.params(), "tally")),
            (
                2,
                registered(
                    2,
                    RollupProver::<()>::vk(&test_rollup),
                    RollupProver::<()>::params(&test_rollup),
                    "test rollup",
                ),
            ),
        ]
        .into(),
    };
    let client = serve(registry).await;

    // The builder: Alice on rollup 2 calls the tally on rollup 1 with value, through a proxy.
    let genesis = Genesis::new(2).with_account(ALICE, 1_000).with_app(
        PROXY,
        AppKind::Forwarder {
            rollup: 1,
            target: TALLY_APP,
        },
        0,
    );
    let mut cluster = Cluster::new(DOMAIN);
    cluster
        .add(Box::new(TallyRollup::new(1, TallyState::default())))
        .unwrap();
    cluster
        .add(Box::new(Rc::new(ReferenceRollup::new(&genesis).unwrap())))
        .unwrap();
    cluster.begin_slot(5).unwrap();
    let call = Tx {
        from: ALICE,
        nonce: 0,
        to: PROXY,
        value: VALUE,
        data: CallData::forward(Method::Increment, Method::Transfer, 0),
    };
    cluster.submit(2, &call.encode()).unwrap();
    let mut blocks = cluster.seal().unwrap();
    blocks.sort_by_key(|b| b.header.rollup_id);
    let (status, body) = client
        .post_raw("/v1/slots", &slot_opening(5, &blocks))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");

    // A replica paired with another rollup's circuit is refused at open, naming both.
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let wrong: SharedProver<TallyReplica> = test_rollup.clone();
    let err = Adapter::open(
        TallyReplica::new(1, TallyState::default()),
        client.clone(),
        dirs[0].path(),
        wrong,
    )
    .await
    .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("registered at the aggregator with vk digest") && err.contains("(tally)"),
        "{err}"
    );

    // The same daemon code, two replicas, two circuits: both blocks proven and accepted.
    let open_tally = || async {
        Adapter::open(
            TallyReplica::new(1, TallyState::default()),
            client.clone(),
            dirs[0].path(),
            tally.clone() as SharedProver<TallyReplica>,
        )
        .await
        .unwrap()
    };
    let mut tally_adapter = open_tally().await;
    let mut reference_adapter = Adapter::open(
        ReferenceReplica::new(&genesis).unwrap(),
        client.clone(),
        dirs[1].path(),
        test_rollup.clone() as SharedProver<ReferenceReplica>,
    )
    .await
    .unwrap();
    let done = tally_adapter.step().await.unwrap();
    assert_eq!(
        (done.len(), done[0].outcome, done[0].slot_state.as_str()),
        (1, "accepted", "proving"),
        "{done:?}"
    );
    let done = reference_adapter.step().await.unwrap();
    assert_eq!(
        (done[0].outcome, done[0].slot_state.as_str()),
        ("accepted", "aggregating"),
        "{done:?}"
    );
    assert_eq!(
        tally_adapter.head().state(),
        TallyState {
            count: 1,
            balance: VALUE
        }
    );
    assert_eq!(tally_adapter.head_root(), blocks[0].header.post_root);
    assert_eq!(reference_adapter.head_root(), blocks[1].header.post_root);

    // A restart applies the kept block again.
    drop(tally_adapter);
    let tally_adapter = open_tally().await;
    assert_eq!(tally_adapter.head_root(), blocks[0].header.post_root);
}
