//! The aggregator service: proof intake over HTTP and the slot state machine in storage.
//!
//! One task, [`AggregatorService`], owns every write to the slots table; the HTTP handlers and
//! the pipeline talk to it through an [`AggregatorHandle`]. Reads go to the store directly.
//! Because one writer serialises all changes, two concurrent submissions for the same rollup
//! and slot cannot both be accepted, and the proof that completes a slot moves it to
//! `aggregating` exactly once.

pub mod api;
pub mod builder;
pub mod config;
pub mod intake;
pub mod mempool;
pub mod metrics;
pub mod pipeline;
pub mod prover;
pub mod run;
pub mod slots;

use std::{collections::BTreeMap, sync::Arc};

use lockstep_storage::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use self::{
    mempool::{Mempool, MempoolFull, TxRecord, TxSubmission},
    slots::{PostedTx, SlotError, SlotRecord, SlotState, Slots, StoredAggregate, StoredProof},
};

/// What one aggregator runs on.
#[derive(Debug)]
pub struct Parts<S> {
    /// Slots, proofs, blocks, posts.
    pub store: S,
    /// The rollups and the domain.
    pub registry: Arc<intake::Registry>,
    /// Makes aggregation proofs (or, in dev mode, the stand-in that proves nothing).
    pub prover: Arc<dyn prover::SlotProver>,
    /// Posts settlements; `None` leaves slots in `posting`.
    pub l1: Option<pipeline::L1Poster>,
    /// Crash tests only.
    pub pause_at: Option<pipeline::PausePoint>,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// The service's own builder (`POST /v1/transactions`); `None`: slots come only from
    /// `POST /v1/slots`.
    pub builder: Option<builder::BuilderParts>,
}

/// A started aggregator: its API (to serve) and its two tasks.
#[derive(Debug)]
pub struct Launched {
    /// The HTTP API; serving it is the caller's.
    pub router: axum::Router,
    /// The task owning every slot write; ends when every handle is gone.
    pub writer: JoinHandle<()>,
    /// The pipeline task; runs until aborted.
    pub pipeline: JoinHandle<()>,
    /// The builder thread, if the service runs one.
    pub builder: Option<builder::BuilderTask>,
}

/// Starts the writer, the pipeline and the builder (if any) over `parts` and builds the API
/// that talks to them. Must be called inside a tokio runtime.
pub fn launch<S: Store + Clone + Send + Sync + 'static>(parts: Parts<S>) -> eyre::Result<Launched> {
    let (ready_tx, ready_rx) = mpsc::unbounded_channel();
    let (service, handle) = AggregatorService::new(parts.store.clone());
    let writer = tokio::spawn(service.with_pipeline(ready_tx).run());
    let pipeline = tokio::spawn(
        pipeline::Pipeline::new(
            parts.store.clone(),
            handle.clone(),
            parts.prover,
            parts.l1,
            ready_rx,
        )
        .pause_at(parts.pause_at)
        .run(),
    );
    let (builder, builder_info) = match parts.builder {
        Some(builder_parts) => {
            let info = api::BuilderInfo {
                rollups: builder_parts.rollups.ids().into_iter().collect(),
                max_pending: builder_parts.max_pending,
            };
            let task = builder::Builder::new(
                parts.store.clone(),
                handle.clone(),
                parts.registry.domain,
                builder_parts,
            )
            .spawn(tokio::runtime::Handle::current())?;
            (Some(task), Some(info))
        }
        None => (None, None),
    };
    let router = api::router(
        api::ApiState {
            store: parts.store,
            registry: parts.registry,
            handle,
            metrics: parts.metrics,
            builder: builder_info,
        },
        parts.max_body_bytes,
    );
    Ok(Launched {
        router,
        writer,
        pipeline,
        builder,
    })
}

/// How many commands may wait for the service before senders wait too.
const COMMAND_QUEUE: usize = 1024;

enum Command {
    Create {
        record: Box<SlotRecord>,
        blocks: BTreeMap<u32, Vec<u8>>,
        outcomes: Vec<TxRecord>,
        reply: oneshot::Sender<Result<(), SlotError>>,
    },
    SubmitTx {
        submission: Box<TxSubmission>,
        max_pending: usize,
        reply: oneshot::Sender<Result<Result<TxRecord, MempoolFull>, SlotError>>,
    },
    Outcomes {
        outcomes: Vec<TxRecord>,
        reply: oneshot::Sender<Result<(), SlotError>>,
    },
    FinishAggregation {
        slot: u64,
        aggregate: Box<StoredAggregate>,
        reply: oneshot::Sender<Result<SlotRecord, SlotError>>,
    },
    RecordTx {
        slot: u64,
        tx: Box<PostedTx>,
        reply: oneshot::Sender<Result<(), SlotError>>,
    },
    AddProof {
        slot: u64,
        rollup: u32,
        proof: Box<StoredProof>,
        reply: oneshot::Sender<Result<SlotRecord, SlotError>>,
    },
    Transition {
        slot: u64,
        next: SlotState,
        reply: oneshot::Sender<Result<SlotRecord, SlotError>>,
    },
}

/// The task that owns the slots table.
#[derive(Debug)]
pub struct AggregatorService<S> {
    slots: Slots<S>,
    mempool: Mempool<S>,
    commands: mpsc::Receiver<Command>,
    /// Where slots that are ready for the pipeline (all proofs in) are announced.
    ready: Option<mpsc::UnboundedSender<u64>>,
}

/// Sends commands to the [`AggregatorService`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct AggregatorHandle {
    commands: mpsc::Sender<Command>,
}

/// The service has stopped (it is shutting down, or it panicked).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the aggregator service has stopped")]
pub struct ServiceStopped;

impl<S: Store + Clone + 'static> AggregatorService<S> {
    /// A service over `store` and the handle that drives it.
    pub fn new(store: S) -> (Self, AggregatorHandle) {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        (
            Self {
                mempool: Mempool::new(store.clone()),
                slots: Slots::new(store),
                commands: rx,
                ready: None,
            },
            AggregatorHandle { commands: tx },
        )
    }

    /// Announces every slot that enters `aggregating` on `ready` (the [`pipeline`]'s queue).
    pub fn with_pipeline(mut self, ready: mpsc::UnboundedSender<u64>) -> Self {
        self.ready = Some(ready);
        self
    }

    /// Runs until every handle is dropped.
    pub async fn run(mut self) {
        while let Some(command) = self.commands.recv().await {
            match command {
                Command::Create {
                    record,
                    blocks,
                    outcomes,
                    reply,
                } => {
                    let result = self.slots.create_built(&record, &blocks, &outcomes);
                    if result.is_ok() {
                        metrics::slot_entered(record.state.name());
                    }
                    let _ = reply.send(result);
                }
                Command::SubmitTx {
                    submission,
                    max_pending,
                    reply,
                } => {
                    let _ = reply.send(
                        self.mempool
                            .submit(*submission, slots::now_ms(), max_pending)
                            .map_err(SlotError::from),
                    );
                }
                Command::Outcomes { outcomes, reply } => {
                    let _ = reply.send(
                        self.mempool
                            .write_outcomes(&outcomes)
                            .map_err(SlotError::from),
                    );
                }
                Command::FinishAggregation {
                    slot,
                    aggregate,
                    reply,
                } => {
                    let result = self.slots.finish_aggregation(slot, &aggregate);
                    if let Ok(record) = &result {
                        metrics::slot_changed(record);
                    }
                    let _ = reply.send(result);
                }
                Command::RecordTx { slot, tx, reply } => {
                    let _ = reply.send(self.slots.record_tx(slot, &tx));
                }
                Command::AddProof {
                    slot,
                    rollup,
                    proof,
                    reply,
                } => {
                    let result = self.slots.add_proof(slot, rollup, &proof);
                    if let Ok(record) = &result {
                        metrics::proof_received(rollup);
                        if record.state == SlotState::Aggregating {
                            metrics::slot_changed(record);
                            if let Some(ready) = &self.ready {
                                let _ = ready.send(slot);
                            }
                        }
                    }
                    let _ = reply.send(result);
                }
                Command::Transition { slot, next, reply } => {
                    let result = self.slots.transition(slot, next);
                    if let Ok(record) = &result {
                        metrics::slot_changed(record);
                    }
                    let _ = reply.send(result);
                }
            }
        }
    }
}

impl AggregatorHandle {
    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ServiceStopped> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(command(tx))
            .await
            .map_err(|_| ServiceStopped)?;
        rx.await.map_err(|_| ServiceStopped)
    }

    /// Records a new slot.
    pub async fn create_slot(
        &self,
        record: SlotRecord,
    ) -> Result<Result<(), SlotError>, ServiceStopped> {
        self.create_slot_with_blocks(record, BTreeMap::new()).await
    }

    /// Records a new slot with its rollups' block data (see [`Slots::create_with_blocks`]).
    pub async fn create_slot_with_blocks(
        &self,
        record: SlotRecord,
        blocks: BTreeMap<u32, Vec<u8>>,
    ) -> Result<Result<(), SlotError>, ServiceStopped> {
        self.create_built_slot(record, blocks, Vec::new()).await
    }

    /// Records a slot the service's builder sealed, with its transactions' outcomes, in one
    /// atomic write (see [`Slots::create_built`]).
    pub async fn create_built_slot(
        &self,
        record: SlotRecord,
        blocks: BTreeMap<u32, Vec<u8>>,
        outcomes: Vec<TxRecord>,
    ) -> Result<Result<(), SlotError>, ServiceStopped> {
        self.ask(|reply| Command::Create {
            record: Box::new(record),
            blocks,
            outcomes,
            reply,
        })
        .await
    }

    /// Records a submitted transaction as pending (see [`Mempool::submit`]).
    pub async fn submit_tx(
        &self,
        submission: TxSubmission,
        max_pending: usize,
    ) -> Result<Result<Result<TxRecord, MempoolFull>, SlotError>, ServiceStopped> {
        self.ask(|reply| Command::SubmitTx {
            submission: Box::new(submission),
            max_pending,
            reply,
        })
        .await
    }

    /// Records transaction outcomes with no slot (every transaction was refused).
    pub async fn record_outcomes(
        &self,
        outcomes: Vec<TxRecord>,
    ) -> Result<Result<(), SlotError>, ServiceStopped> {
        self.ask(|reply| Command::Outcomes { outcomes, reply })
            .await
    }

    /// Stores a slot's aggregation proof and moves it to `posting`.
    pub async fn finish_aggregation(
        &self,
        slot: u64,
        aggregate: StoredAggregate,
    ) -> Result<Result<SlotRecord, SlotError>, ServiceStopped> {
        self.ask(|reply| Command::FinishAggregation {
            slot,
            aggregate: Box::new(aggregate),
            reply,
        })
        .await
    }

    /// Stores a slot's signed settlement transaction, before it is sent.
    pub async fn record_tx(
        &self,
        slot: u64,
        tx: PostedTx,
    ) -> Result<Result<(), SlotError>, ServiceStopped> {
        self.ask(|reply| Command::RecordTx {
            slot,
            tx: Box::new(tx),
            reply,
        })
        .await
    }

    /// Stores an accepted proof (see [`Slots::add_proof`]).
    pub async fn add_proof(
        &self,
        slot: u64,
        rollup: u32,
        proof: StoredProof,
    ) -> Result<Result<SlotRecord, SlotError>, ServiceStopped> {
        self.ask(|reply| Command::AddProof {
            slot,
            rollup,
            proof: Box::new(proof),
            reply,
        })
        .await
    }

    /// Moves a slot to `next`.
    pub async fn transition(
        &self,
        slot: u64,
        next: SlotState,
    ) -> Result<Result<SlotRecord, SlotError>, ServiceStopped> {
        self.ask(|reply| Command::Transition { slot, next, reply })
            .await
    }
}
