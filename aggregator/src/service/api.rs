//! The aggregator's HTTP JSON API (documented in `docs/api.md`).
//!
//! | method and path | what |
//! |---|---|
//! | `POST /v1/slots` | open a slot: the builder's sealed blocks, laid out in the slot's blobs |
//! | `POST /v1/proofs` | submit a rollup proof for a slot |
//! | `POST /v1/transactions` | submit a transaction to the service's builder |
//! | `GET /v1/transactions/{id}` | a submitted transaction: pending, included (slot, outcome) or refused (why) |
//! | `GET /v1/slots?limit=N` | the newest slots (default 20, at most 1,000), newest first, summarised |
//! | `GET /v1/slots/{slot}` | a slot's state, rollups, proofs received and history |
//! | `GET /v1/slots/{slot}/blocks/{id}` | a rollup's block in a slot: its data, pre root and DA commitment (what its adapter proves) |
//! | `GET /v1/rollups/{id}` | a registered rollup: vk digest, slots waiting for its proof |
//! | `GET /health` | liveness, and how many slots are unfinished |
//! | `GET /metrics` | Prometheus metrics |
//! | `GET /v1/openapi.json` | the OpenAPI document of all of the above, generated from the types |
//!
//! Every body is a type of `lockstep-api`, shared with the clients; the OpenAPI document is
//! generated from them ([`ApiDoc`]). Every refusal is a 4xx (or a 503 when the mempool is full)
//! with an [`ErrorBody`] `{"error": code, "message": text}` and changes nothing; the codes are
//! listed in [`ApiError`].

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use axum::{
    extract::{
        rejection::{JsonRejection, QueryRejection},
        DefaultBodyLimit, Path, Query, State,
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use lockstep_api::{
    AggregationInfo, BlockData, DomainInfo, ErrorBody, Health, HexBytes, ProofAccepted,
    RollupStatus, SettlementTx, SlotList, SlotRecord, SlotStatus, SlotSummary, TxAccepted,
    TxRecord,
};
use lockstep_storage::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use utoipa::OpenApi;

use super::{
    intake::{self, fr_hex, parse_fr, IntakeError, ProofSubmission, Registry},
    mempool::{Mempool, TxSubmission},
    metrics, pipeline,
    slots::{SlotError, SlotState, Slots},
    AggregatorHandle, ServiceStopped,
};

/// Largest request body accepted (a proof submission is about 10 KB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest `POST /v1/slots` body: a full slot payload (6 blobs of 126,976 bytes) in hex, and room
/// for the rest.
pub const SLOT_BODY_BYTES: usize =
    2 * MAX_BLOBS_PER_TX * lockstep_contracts::settlement::PAYLOAD_BYTES_PER_BLOB + 64 * 1024;

use lockstep_contracts::settlement::MAX_BLOBS_PER_TX;

pub use lockstep_api::{SlotBlock, SlotOpening};

/// What the handlers share.
pub struct ApiState<S> {
    /// The store, for reads.
    pub store: S,
    /// The rollups accepted, and the domain.
    pub registry: Arc<Registry>,
    /// The writer.
    pub handle: AggregatorHandle,
    /// Renders `/metrics`; `None` when no recorder is installed.
    pub metrics: Option<PrometheusHandle>,
    /// The service's builder, if it runs one: what `POST /v1/transactions` accepts.
    pub builder: Option<BuilderInfo>,
}

/// What the API knows of the service's builder.
#[derive(Debug, Clone)]
pub struct BuilderInfo {
    /// The rollups it builds.
    pub rollups: std::collections::BTreeSet<u32>,
    /// Most transactions waiting.
    pub max_pending: usize,
}

impl<S> std::fmt::Debug for ApiState<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("rollups", &self.registry.rollups.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A refused request: an HTTP status, a stable code and a message naming the bad value.
///
/// | status | code | when |
/// |---|---|---|
/// | 400 | `malformed_json` | the body is not JSON of the expected shape |
/// | 400 | `malformed` | bad hex, wrong instance count, a layout violation |
/// | 404 | `unknown_rollup`, `unknown_slot`, `unknown_transaction` | no such rollup, slot or transaction |
/// | 404 | `not_in_slot`, `no_block_data` | reading a block the slot does not hold |
/// | 404 | `no_builder` | a transaction, and the service runs no builder |
/// | 409 | `exists` | a slot with this number was already opened |
/// | 409 | `stale_slot` | the slot no longer takes proofs, or is older than one already opened |
/// | 409 | `duplicate` | a proof from this rollup for this slot was already accepted |
/// | 413 | `too_large` | the body is over the limit |
/// | 422 | `mismatch` | a public input differs from what the slot fixes |
/// | 422 | `invalid_proof` | the proof does not verify against the registered key |
/// | 422 | `not_in_slot` | the rollup has no block in the slot |
/// | 500 | `internal` | storage failed (nothing was changed) |
/// | 503 | `mempool_full` | too many transactions wait for the builder |
/// | 503 | `unavailable` | the service is shutting down |
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable error code.
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl std::fmt::Display) -> Self {
        Self {
            status,
            code,
            message: message.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.into(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<IntakeError> for ApiError {
    fn from(err: IntakeError) -> Self {
        let (status, code) = match err {
            IntakeError::UnknownRollup(_) => (StatusCode::NOT_FOUND, "unknown_rollup"),
            IntakeError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
            IntakeError::Mismatch { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "mismatch"),
            IntakeError::InvalidProof(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_proof"),
        };
        Self::new(status, code, err)
    }
}

impl From<SlotError> for ApiError {
    fn from(err: SlotError) -> Self {
        let (status, code) = match err {
            SlotError::UnknownSlot(_) => (StatusCode::NOT_FOUND, "unknown_slot"),
            SlotError::Exists(_) => (StatusCode::CONFLICT, "exists"),
            SlotError::WrongState { .. } => (StatusCode::CONFLICT, "stale_slot"),
            SlotError::NotInSlot { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "not_in_slot"),
            SlotError::Duplicate { .. } => (StatusCode::CONFLICT, "duplicate"),
            SlotError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, err)
    }
}

impl From<ServiceStopped> for ApiError {
    fn from(err: ServiceStopped) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", err)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", rejection.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                rejection.body_text(),
            )
        } else {
            Self::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                rejection.body_text(),
            )
        }
    }
}

/// The API's routes over `state`, refusing bodies over `max_body_bytes`.
pub fn router<S: Store + Clone + 'static>(state: ApiState<S>, max_body_bytes: usize) -> Router {
    Router::new()
        .route(
            "/v1/slots",
            post(open_slot::<S>)
                .layer(DefaultBodyLimit::max(max_body_bytes.max(SLOT_BODY_BYTES)))
                .get(list_slots::<S>),
        )
        .route("/v1/proofs", post(submit_proof::<S>))
        .route("/v1/transactions", post(submit_transaction::<S>))
        .route("/v1/transactions/{id}", get(transaction_status::<S>))
        .route("/v1/slots/{slot}", get(slot_status::<S>))
        .route("/v1/slots/{slot}/blocks/{id}", get(slot_block::<S>))
        .route("/v1/rollups/{id}", get(rollup_status::<S>))
        .route("/health", get(health::<S>))
        .route("/metrics", get(render_metrics::<S>))
        .route("/v1/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(Arc::new(state))
}

type Shared<S> = State<Arc<ApiState<S>>>;

/// Submit a rollup proof for a slot.
#[utoipa::path(post, path = "/v1/proofs", request_body = ProofSubmission, responses(
    (status = 202, description = "Accepted after native verification", body = ProofAccepted),
    (status = "4XX", description = "Refused; nothing changed", body = ErrorBody),
))]
async fn submit_proof<S: Store + Clone + 'static>(
    State(state): Shared<S>,
    body: Result<Json<ProofSubmission>, JsonRejection>,
) -> Result<(StatusCode, Json<ProofAccepted>), ApiError> {
    let result = accept(&state, body).await;
    if let Err(err) = &result {
        metrics::proof_rejected(err.code);
        tracing::info!(code = err.code, message = %err.message, "proof refused");
    }
    result
}

async fn accept<S: Store + Clone + 'static>(
    state: &Arc<ApiState<S>>,
    body: Result<Json<ProofSubmission>, JsonRejection>,
) -> Result<(StatusCode, Json<ProofAccepted>), ApiError> {
    let Json(submission) = body?;
    let slots = Slots::new(state.store.clone());
    let record = slots
        .get(submission.slot)?
        .ok_or(SlotError::UnknownSlot(submission.slot))?;
    // Refuse early what the writer would refuse anyway, before spending a verification on it.
    if record.state != SlotState::Proving {
        return Err(SlotError::WrongState {
            slot: record.slot,
            state: record.state.name(),
            what: "a proof",
            needed: "proving",
        }
        .into());
    }
    if !record.rollups.contains_key(&submission.rollup_id)
        && state.registry.rollups.contains_key(&submission.rollup_id)
    {
        return Err(SlotError::NotInSlot {
            slot: record.slot,
            rollup: submission.rollup_id,
        }
        .into());
    }
    // A resubmission is refused before it costs a verification (the writer checks again).
    if slots
        .proof_ids(record.slot)?
        .contains(&submission.rollup_id)
    {
        return Err(SlotError::Duplicate {
            slot: record.slot,
            rollup: submission.rollup_id,
        }
        .into());
    }
    let registry = state.registry.clone();
    let (slot, rollup) = (submission.slot, submission.rollup_id);
    let started = Instant::now();
    let stored =
        tokio::task::spawn_blocking(move || intake::check(&submission, &record, &registry))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))??;
    metrics::proof_verified(started.elapsed().as_secs_f64());
    let record = state.handle.add_proof(slot, rollup, stored).await??;
    tracing::info!(slot, rollup, state = record.state.name(), "proof accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(ProofAccepted {
            slot,
            rollup_id: rollup,
            state: record.state.name().into(),
        }),
    ))
}

/// Submit a transaction to the service's builder.
#[utoipa::path(post, path = "/v1/transactions", request_body = TxSubmission, responses(
    (status = 202, description = "Waiting for the builder", body = TxAccepted),
    (status = "4XX", description = "Refused; nothing recorded", body = ErrorBody),
    (status = 503, description = "The mempool is full", body = ErrorBody),
))]
async fn submit_transaction<S: Store + Clone + 'static>(
    State(state): Shared<S>,
    body: Result<Json<TxSubmission>, JsonRejection>,
) -> Result<(StatusCode, Json<TxAccepted>), ApiError> {
    let result = take_transaction(&state, body).await;
    if let Err(err) = &result {
        tracing::info!(code = err.code, message = %err.message, "transaction refused");
    }
    result
}

async fn take_transaction<S: Store + Clone + 'static>(
    state: &Arc<ApiState<S>>,
    body: Result<Json<TxSubmission>, JsonRejection>,
) -> Result<(StatusCode, Json<TxAccepted>), ApiError> {
    let builder = state.builder.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_builder",
            "this aggregator runs no builder (configure [builder]); open slots with POST /v1/slots",
        )
    })?;
    let Json(submission) = body?;
    if !builder.rollups.contains(&submission.rollup_id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_rollup",
            format!(
                "rollup {} is not built here (the builder runs {:?})",
                submission.rollup_id, builder.rollups
            ),
        ));
    }
    if submission.tx.0.len() > MAX_TX_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the transaction is {} bytes; at most {MAX_TX_BYTES} are accepted",
                submission.tx.0.len()
            ),
        ));
    }
    let record = state
        .handle
        .submit_tx(submission, builder.max_pending)
        .await??
        .map_err(|full| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "mempool_full", full))?;
    tracing::info!(
        id = record.id,
        rollup = record.rollup_id,
        "transaction accepted"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(TxAccepted {
            id: record.id,
            state: "pending".into(),
        }),
    ))
}

/// Largest transaction `POST /v1/transactions` accepts, in bytes (the rollup decodes it when
/// the builder runs it, and refuses it then if it is malformed).
pub const MAX_TX_BYTES: usize = 16 * 1024;

/// A submitted transaction: pending, included (slot, outcome) or refused (why).
#[utoipa::path(get, path = "/v1/transactions/{id}", params(("id" = u64, Path, description = "The transaction's id")), responses(
    (status = 200, description = "The transaction", body = TxRecord),
    (status = 404, description = "No such transaction", body = ErrorBody),
))]
async fn transaction_status<S: Store + Clone + 'static>(
    State(state): Shared<S>,
    Path(id): Path<u64>,
) -> Result<Json<TxRecord>, ApiError> {
    let record = Mempool::new(state.store.clone())
        .get(id)
        .map_err(SlotError::from)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_transaction",
                format!("no transaction {id}"),
            )
        })?;
    Ok(Json(record))
}

/// Open a slot: the builder's sealed blocks, laid out in the slot's blobs.
#[utoipa::path(post, path = "/v1/slots", request_body = SlotOpening, responses(
    (status = 201, description = "Opened; the record with each rollup's DA commitment", body = SlotRecord),
    (status = "4XX", description = "Refused; nothing changed", body = ErrorBody),
))]
async fn open_slot<S: Store + Clone + 'static>(
    State(state): Shared<S>,
    body: Result<Json<SlotOpening>, JsonRejection>,
) -> Result<(StatusCode, Json<SlotRecord>), ApiError> {
    let result = open(&state, body).await;
    if let Err(err) = &result {
        tracing::info!(code = err.code, message = %err.message, "slot refused");
    }
    result
}

async fn open<S: Store + Clone + 'static>(
    state: &Arc<ApiState<S>>,
    body: Result<Json<SlotOpening>, JsonRejection>,
) -> Result<(StatusCode, Json<SlotRecord>), ApiError> {
    let Json(opening) = body?;
    let malformed = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "malformed", m);
    if opening.rollups.is_empty() {
        return Err(malformed("a slot needs at least one rollup".into()));
    }
    let mut blocks = BTreeMap::new();
    let mut pre_roots = BTreeMap::new();
    for block in &opening.rollups {
        let id = block.rollup_id;
        if !state.registry.rollups.contains_key(&id) {
            return Err(IntakeError::UnknownRollup(id).into());
        }
        let pre_root = parse_fr(&block.pre_root).ok_or_else(|| {
            malformed(format!(
                "rollup {id}: pre_root {:?} is not a canonical hex field element",
                block.pre_root
            ))
        })?;
        let data = hex::decode(block.data.strip_prefix("0x").unwrap_or(&block.data))
            .map_err(|e| malformed(format!("rollup {id}: data is not hex: {e}")))?;
        if blocks.insert(id, data).is_some() {
            return Err(malformed(format!("rollup {id} appears twice")));
        }
        pre_roots.insert(id, pre_root);
    }
    let slots = Slots::new(state.store.clone());
    if let Some(latest) = slots.latest()? {
        if opening.slot < latest {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "stale_slot",
                format!(
                    "slot {} is older than slot {latest}, already opened (L1 settles slots in order)",
                    opening.slot
                ),
            ));
        }
    }
    let layout_blocks = blocks.clone();
    let slot = opening.slot;
    let record = tokio::task::spawn_blocking(move || {
        pipeline::slot_record(slot, &layout_blocks, &pre_roots)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?
    .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e))?;
    state
        .handle
        .create_slot_with_blocks(record.clone(), blocks)
        .await??;
    tracing::info!(
        slot = record.slot,
        rollups = record.rollups.len(),
        blobs = record.versioned_hashes.len(),
        "slot opened"
    );
    Ok((StatusCode::CREATED, Json(record)))
}

/// A slot's state, rollups, proofs received and history.
#[utoipa::path(get, path = "/v1/slots/{slot}", params(("slot" = u64, Path, description = "The L1 slot")), responses(
    (status = 200, description = "The slot", body = SlotStatus),
    (status = 404, description = "No such slot", body = ErrorBody),
))]
async fn slot_status<S: Store + Clone + 'static>(
    State(state): Shared<S>,
    Path(slot): Path<u64>,
) -> Result<Json<SlotStatus>, ApiError> {
    let slots = Slots::new(state.store.clone());
    let record = slots.get(slot)?.ok_or(SlotError::UnknownSlot(slot))?;
    let proofs_received = slots.proof_ids(slot)?;
    let post = slots.post(slot)?;
    Ok(Json(SlotStatus {
        record,
        proofs_received,
        aggregation: post.as_ref().map(|post| AggregationInfo {
            proving_seconds: post.aggregate.proving_seconds,
            proof_bytes: post.aggregate.proof.len().saturating_sub(2) / 2,
        }),
        settlement_tx: post.and_then(|post| post.tx).map(|tx| SettlementTx {
            hash: tx.hash,
            nonce: tx.nonce,
            signed_at_ms: tx.signed_at_ms,
        }),
    }))
}

/// Default and largest `limit` of `GET /v1/slots`.
const LIST_DEFAULT: usize = 20;
const LIST_MAX: usize = 1_000;

/// Query of `GET /v1/slots`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// How many of the newest slots (default 20, at most 1,000).
    limit: Option<usize>,
}

/// The newest slots, newest first, summarised.
#[utoipa::path(get, path = "/v1/slots", params(ListQuery), responses(
    (status = 200, description = "The slots", body = SlotList),
    (status = 400, description = "A limit outside 1 to 1,000", body = ErrorBody),
))]
async fn list_slots<S: Store + Clone + 'static>(
    State(state): Shared<S>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<SlotList>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(LIST_DEFAULT);
    if !(1..=LIST_MAX).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("limit {limit} is outside 1 to {LIST_MAX}"),
        ));
    }
    let slots = Slots::new(state.store.clone());
    let mut summaries = Vec::new();
    for record in slots.recent(limit)? {
        let mut summary = SlotSummary {
            slot: record.slot,
            state: record.state.name().into(),
            rollups: record.rollups.keys().copied().collect(),
            proofs_received: slots.proof_ids(record.slot)?.len(),
            updated_at_ms: record.history.last().map_or(0, |t| t.at_ms),
            tx: None,
            block: None,
            gas_used: None,
            stage: None,
            reason: None,
        };
        match record.state {
            SlotState::Settled {
                tx,
                block,
                gas_used,
            } => {
                summary.tx = Some(tx);
                summary.block = Some(block);
                summary.gas_used = Some(gas_used);
            }
            SlotState::Failed { stage, reason } => {
                summary.stage = Some(stage);
                summary.reason = Some(reason);
            }
            _ => {}
        }
        summaries.push(summary);
    }
    Ok(Json(SlotList { slots: summaries }))
}

/// A rollup's block in a slot: its data, pre root and DA commitment (what its adapter proves).
#[utoipa::path(get, path = "/v1/slots/{slot}/blocks/{id}", params(
    ("slot" = u64, Path, description = "The L1 slot"),
    ("id" = u32, Path, description = "The rollup"),
), responses(
    (status = 200, description = "The block", body = BlockData),
    (status = 404, description = "No such slot, or no block of the rollup in it", body = ErrorBody),
))]
async fn slot_block<S: Store + Clone + 'static>(
    State(state): Shared<S>,
    Path((slot, id)): Path<(u64, u32)>,
) -> Result<Json<BlockData>, ApiError> {
    let slots = Slots::new(state.store.clone());
    let record = slots.get(slot)?.ok_or(SlotError::UnknownSlot(slot))?;
    let rollup = record.rollups.get(&id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_in_slot",
            SlotError::NotInSlot { slot, rollup: id },
        )
    })?;
    let data = slots.blocks(slot)?.remove(&id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_block_data",
            format!("slot {slot} was opened without block data for rollup {id}"),
        )
    })?;
    Ok(Json(BlockData {
        slot,
        rollup_id: id,
        pre_root: rollup.pre_root.clone(),
        da_commitment: rollup.da_commitment.clone(),
        data: HexBytes(data),
    }))
}

/// A registered rollup: its key's digest and label, the slots waiting for its proof.
#[utoipa::path(get, path = "/v1/rollups/{id}", params(("id" = u32, Path, description = "The rollup")), responses(
    (status = 200, description = "The rollup", body = RollupStatus),
    (status = 404, description = "Not registered here", body = ErrorBody),
))]
async fn rollup_status<S: Store + Clone + 'static>(
    State(state): Shared<S>,
    Path(id): Path<u32>,
) -> Result<Json<RollupStatus>, ApiError> {
    let rollup = state
        .registry
        .rollups
        .get(&id)
        .ok_or(IntakeError::UnknownRollup(id))?;
    let slots = Slots::new(state.store.clone());
    let mut waiting = Vec::new();
    for record in slots.unfinished()? {
        if record.state == SlotState::Proving
            && record.rollups.contains_key(&id)
            && !slots.proof_ids(record.slot)?.contains(&id)
        {
            waiting.push(record.slot);
        }
    }
    Ok(Json(RollupStatus {
        id,
        vk_digest: fr_hex(&rollup.vk_digest),
        k: rollup.protocol.domain.k as u32,
        label: rollup.label.clone(),
        slots_waiting_for_proof: waiting,
    }))
}

/// Liveness, the registered rollups, the domain, and how many slots are unfinished.
#[utoipa::path(get, path = "/health", responses(
    (status = 200, description = "The service is up", body = Health),
))]
async fn health<S: Store + Clone + 'static>(
    State(state): Shared<S>,
) -> Result<Json<Health>, ApiError> {
    let unfinished = Slots::new(state.store.clone()).unfinished()?.len();
    let domain = state.registry.domain;
    Ok(Json(Health {
        status: "ok".into(),
        unfinished_slots: unfinished,
        rollups: state.registry.rollups.keys().copied().collect(),
        domain: DomainInfo {
            chain_id: domain.chain_id,
            registry: domain.registry.to_string(),
        },
        builder: state.builder.as_ref().map(|b| lockstep_api::BuilderInfo {
            rollups: b.rollups.iter().copied().collect(),
            max_pending: b.max_pending,
        }),
    }))
}

/// The OpenAPI document of the HTTP API, generated from `lockstep-api`'s types and the
/// handlers' annotations (`GET /v1/openapi.json`).
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Lockstep aggregator",
        description = "The aggregator's HTTP API (docs/api.md)."
    ),
    paths(
        open_slot,
        list_slots,
        slot_status,
        slot_block,
        submit_proof,
        submit_transaction,
        transaction_status,
        rollup_status,
        health,
    )
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn render_metrics<S: Store + Clone + 'static>(State(state): Shared<S>) -> Response {
    match &state.metrics {
        Some(handle) => handle.render().into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_metrics",
            "no metrics recorder is installed in this process",
        )
        .into_response(),
    }
}
