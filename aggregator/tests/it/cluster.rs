//! A two-rollup cluster for the adapter and builder tests: rollups 1 and 2 of the sample
//! cluster, where Alice on rollup 2 calls rollup 1's counter through a forwarder (the
//! CounterAndProxy pattern).

use std::sync::Arc;

use lockstep_aggregator::{
    client::ApiClient,
    service::{
        api::{router, ApiState},
        intake::{RegisteredRollup, Registry},
        AggregatorService,
    },
};
use lockstep_circuits::{entry::Address, keys::KeyStore, testing};
use lockstep_reference_rollup::{
    abi::{CallData, Method},
    block::Tx,
    executor::DEFAULT_TREE_DEPTH,
    sample, Genesis,
};
use lockstep_storage::MemoryStore;

pub(crate) use lockstep_reference_rollup::sample::{ALICE, DOMAIN};

/// On rollup 2: the forwarder to rollup 1's counter.
pub(crate) const PROXY: Address = sample::BACK_TO_1;

/// Rollups 1 and 2 of the sample cluster.
pub(crate) fn geneses() -> [Genesis; 2] {
    let [one, two, _] = sample::geneses(DEFAULT_TREE_DEPTH);
    [one, two]
}

/// Alice, on rollup 2, increments rollup 1's counter through the proxy.
pub(crate) fn increment(nonce: u64) -> Tx {
    Tx {
        from: ALICE,
        nonce,
        to: PROXY,
        value: 0,
        data: CallData::forward(Method::Increment, Method::Transfer, 0),
    }
}

/// Rollups 1 and 2, both proven with the test-rollup circuit.
pub(crate) fn registry(keys: &KeyStore) -> Registry {
    let (params, key) = testing::test_rollup_key(keys).unwrap();
    let params = Arc::new(params);
    Registry {
        domain: DOMAIN,
        rollups: [1, 2]
            .map(|id| {
                (
                    id,
                    RegisteredRollup::new(id, key.pk.get_vk().clone(), params.clone()),
                )
            })
            .into(),
    }
}

/// An aggregator service (writer and API, no pipeline, no builder) over an in-memory store
/// with `registry`, served on loopback.
#[allow(
    dead_code,
    reason = "used by the lockstep-cli tests, which share this file"
)]
pub(crate) async fn serve(registry: Registry) -> ApiClient {
    let store = Arc::new(MemoryStore::default());
    let (service, handle) = AggregatorService::new(store.clone());
    tokio::spawn(service.run());
    let app = router(
        ApiState {
            store,
            registry: Arc::new(registry),
            handle,
            metrics: None,
            builder: None,
        },
        1 << 20,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = ApiClient::local(listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    client
}
