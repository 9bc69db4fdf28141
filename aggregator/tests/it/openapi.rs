//! The running server answers as its OpenAPI document says: `GET /v1/openapi.json` is generated
//! from `lockstep-api`'s types, and every answer of a real session (successes and refusals, on
//! every path of the document) is validated against the schema the document gives for its path,
//! method and status.

use std::collections::BTreeSet;

use lockstep_aggregator::client::{slot_opening, ApiClient};
use lockstep_circuits::testing;
use lockstep_reference_rollup::{Genesis, ReferenceRollup};
use lockstep_rollup_api::Cluster;
use serde_json::{json, Value};

use crate::cluster::*;

/// A request: method, the path as the document writes it, the path sent.
type Request = (&'static str, &'static str, String);

/// Validates `body`, the answer to `method path` with `status`, against the document `doc`;
/// `template` is the path as the document writes it. Returns the validation errors.
fn check(doc: &Value, template: &str, method: &str, status: u16, body: &Value) -> Vec<String> {
    let responses = &doc["paths"][template][method]["responses"];
    let response = [status.to_string(), format!("{}XX", status / 100)]
        .iter()
        .find_map(|key| responses.get(key))
        .unwrap_or_else(|| panic!("{method} {template}: {status} is not documented: {responses}"));
    let mut schema = response["content"]["application/json"]["schema"].clone();
    assert!(
        schema.is_object(),
        "{method} {template} {status}: no JSON schema"
    );
    // References point into the document's components: carry them along.
    schema["components"] = doc["components"].clone();
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{method} {template}: the schema does not compile: {e}"));
    validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// Sends `method path` (`body` for a POST) and checks the answer against the document; returns
/// the status and the body.
async fn call(
    client: &ApiClient,
    doc: &Value,
    seen: &mut BTreeSet<(String, String)>,
    (method, template, path): (&str, &str, &str),
    body: Option<Value>,
) -> (u16, Value) {
    let (status, answer) = match &body {
        Some(body) => client.post_raw(path, body).await.unwrap(),
        None => client.get_raw(path).await.unwrap(),
    };
    let errors = check(doc, template, method, status, &answer);
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} {answer}, which its schema refuses: {errors:?}"
    );
    seen.insert((template.to_owned(), method.to_owned()));
    (status, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_server_answers_as_its_openapi_document_says() {
    let keys = testing::persistent_key_store().unwrap();
    let client = serve(registry(&keys)).await;
    let (status, doc) = client.get_raw("/v1/openapi.json").await.unwrap();
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (path.clone(), method.clone()))
        })
        .collect();
    let mut seen = BTreeSet::new();

    // A slot of two reference-rollup blocks: rollup 2 calls rollup 1's counter.
    let [one, two]: [Genesis; 2] = geneses();
    let mut cluster = Cluster::new(DOMAIN);
    cluster
        .add(Box::new(ReferenceRollup::new(&one).unwrap()))
        .unwrap();
    cluster
        .add(Box::new(ReferenceRollup::new(&two).unwrap()))
        .unwrap();
    cluster.begin_slot(5).unwrap();
    cluster.submit(2, &increment(0).encode()).unwrap();
    let blocks = cluster.seal().unwrap();
    let opening = serde_json::to_value(slot_opening(5, &blocks)).unwrap();

    let get = |template: &'static str, path: String| ("get", template, path);
    let session: Vec<(Request, Option<Value>, u16)> = vec![
        (get("/health", "/health".into()), None, 200),
        (get("/v1/rollups/{id}", "/v1/rollups/1".into()), None, 200),
        (get("/v1/rollups/{id}", "/v1/rollups/9".into()), None, 404),
        (
            ("post", "/v1/slots", "/v1/slots".into()),
            Some(opening.clone()),
            201,
        ),
        (
            ("post", "/v1/slots", "/v1/slots".into()),
            Some(opening),
            409,
        ),
        (
            ("post", "/v1/slots", "/v1/slots".into()),
            Some(json!({ "slot": 6 })),
            400,
        ),
        (get("/v1/slots/{slot}", "/v1/slots/5".into()), None, 200),
        (get("/v1/slots/{slot}", "/v1/slots/99".into()), None, 404),
        (get("/v1/slots", "/v1/slots?limit=5".into()), None, 200),
        (get("/v1/slots", "/v1/slots?limit=0".into()), None, 400),
        (
            get(
                "/v1/slots/{slot}/blocks/{id}",
                "/v1/slots/5/blocks/2".into(),
            ),
            None,
            200,
        ),
        (
            get(
                "/v1/slots/{slot}/blocks/{id}",
                "/v1/slots/5/blocks/3".into(),
            ),
            None,
            404,
        ),
        (
            ("post", "/v1/proofs", "/v1/proofs".into()),
            Some(json!({ "slot": 5, "rollup_id": 1, "instances": [], "proof": "0x00" })),
            400,
        ),
        (
            ("post", "/v1/proofs", "/v1/proofs".into()),
            Some(json!({ "slot": 77, "rollup_id": 1, "instances": [], "proof": "0x00" })),
            404,
        ),
        (
            ("post", "/v1/transactions", "/v1/transactions".into()),
            Some(
                json!({ "rollup_id": 2, "tx": format!("0x{}", hex::encode(increment(0).encode())) }),
            ),
            404,
        ),
        (
            get("/v1/transactions/{id}", "/v1/transactions/1".into()),
            None,
            404,
        ),
    ];
    for ((method, template, path), body, expected) in session {
        let (status, answer) =
            call(&client, &doc, &mut seen, (method, template, &path), body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
    }
    // Every documented path and method was exercised.
    assert_eq!(seen, documented, "paths of the document no request reached");

    // The typed client reads the same answers into the shared types.
    let health = client.health().await.unwrap();
    assert!(health.rollups.contains(&2), "{health:?}");
    let slot = client.slot(5).await.unwrap();
    assert_eq!(
        slot.record.rollups.keys().copied().collect::<Vec<_>>(),
        vec![1, 2]
    );
    let rollup = client.rollup(1).await.unwrap();
    assert_eq!(rollup.slots_waiting_for_proof, vec![5]);
    assert_eq!(client.slots(10).await.unwrap().slots.len(), 1);
    client.block(5, 2).await.unwrap();

    // The check can fail: an answer that drifts from its type is refused.
    let (_, mut health) = client.get_raw("/health").await.unwrap();
    assert!(check(&doc, "/health", "get", 200, &health).is_empty());
    health.as_object_mut().unwrap().remove("unfinished_slots");
    assert!(!check(&doc, "/health", "get", 200, &health).is_empty());
    let (_, mut slot) = client.get_raw("/v1/slots/5").await.unwrap();
    slot["state"] = json!("sleeping");
    assert!(!check(&doc, "/v1/slots/{slot}", "get", 200, &slot).is_empty());
    let (_, mut block) = client.get_raw("/v1/slots/5/blocks/2").await.unwrap();
    block["data"] = json!(12);
    assert!(!check(&doc, "/v1/slots/{slot}/blocks/{id}", "get", 200, &block).is_empty());
}
