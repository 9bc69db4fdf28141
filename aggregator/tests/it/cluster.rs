//! A two-rollup cluster for the adapter and builder tests: a counter on rollup 1, and on
//! rollup 2 a funded account and a forwarder to that counter (the CounterAndProxy pattern).

use std::sync::Arc;

use lockstep_aggregator::{
    client::ApiClient,
    service::{
        api::{router, ApiState},
        intake::{RegisteredRollup, Registry},
        AggregatorService,
    },
};
use lockstep_circuits::{
    entry::{Address, Domain},
    keys::KeyStore,
    testing,
};
use lockstep_reference_rollup::{
    abi::{AppKind, CallData, Method},
    block::Tx,
    Genesis,
};
use lockstep_storage::MemoryStore;

pub(crate) const DOMAIN: Domain = Domain {
    chain_id: 31_337,
    registry: Address([0x5e; 20]),
};
pub(crate) const ALICE: Address = Address([0xa1; 20]);
pub(crate) const COUNTER: Address = Address([0xc1; 20]);
pub(crate) const PROXY: Address = Address([0xf2; 20]);

pub(crate) fn geneses() -> [Genesis; 2] {
    [
        Genesis::new(1).with_app(COUNTER, AppKind::Counter, 0),
        Genesis::new(2).with_account(ALICE, 1_000).with_app(
            PROXY,
            AppKind::Forwarder {
                rollup: 1,
                target: COUNTER,
            },
            0,
        ),
    ]
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
