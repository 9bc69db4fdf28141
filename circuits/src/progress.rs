//! Progress of long steps: SRS generation, keygen, proving, downsizing an SRS, waiting for L1.
//!
//! A long step holds a [`Progress`] for as long as it runs. Where the work is countable (SRS
//! points, bytes) it is started with a total and advanced with [`Progress::inc`]; where it is
//! not (halo2's keygen and prover give no callbacks) it is started with an estimate, if one is
//! known, and just left to run. [`Progress::finish`] logs one `tracing::info!` line with the
//! elapsed seconds; a handle dropped unfinished (a `?` early return) logs that the step stopped,
//! so no report outlives its step.
//!
//! Everything goes to one process-wide [`ProgressSink`]. The default, [`TracingSink`], logs a
//! `tracing::info!` line per running step every [`REPORT_INTERVAL`] from one background thread:
//! the step's name, the time elapsed, how much is done and what is left. A binary may install
//! another sink once, before the first step starts ([`set_sink`]): `lockstep` draws progress
//! bars when its stderr is a terminal.
//!
//! Estimates come from earlier runs: the key store records how long each keygen and each proof
//! took ([`crate::keys`]); without a measurement a step shows its elapsed time only.
//!
//! ```
//! use std::time::Duration;
//! use lockstep_circuits::progress::Progress;
//!
//! // Countable work: done/total and a rate-based estimate of what is left.
//! let points = Progress::start("generating 1024 SRS points", Some(1024), None);
//! for _ in 0..4 {
//!     points.inc(256);
//! }
//! points.finish();
//!
//! // Work without callbacks: elapsed time and, when known, what the last run took.
//! let proof = Progress::start("proving", None, Some(Duration::from_secs(90)));
//! let elapsed = proof.finish();
//! assert!(elapsed < Duration::from_secs(90));
//! ```

use std::{
    fmt,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Condvar, Mutex, OnceLock, PoisonError,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tracing::{info, warn};

/// How often [`TracingSink`] reports a running step.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(12);

/// A long step as sinks see it: its name, its size if countable, its estimate, and how far it
/// is. Shared between the [`Progress`] handle and the sink.
#[derive(Debug)]
pub struct Task {
    id: u64,
    name: String,
    total: Option<u64>,
    estimate: Option<Duration>,
    started: Instant,
    done: AtomicU64,
}

impl Task {
    /// A number unique to this task within the process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// What the step is, e.g. `keygen stf (k = 20)`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The amount of work, where it is countable.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// How long the whole step was expected to take when it started (from an earlier run).
    pub fn estimate(&self) -> Option<Duration> {
        self.estimate
    }

    /// Work done so far (see [`Progress::inc`]).
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Time since the step started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What is left, as of now.
    pub fn remaining(&self) -> Remaining {
        Remaining::at(self.elapsed(), self.done(), self.total, self.estimate)
    }

    /// One line about the step as of now, e.g.
    /// `keygen stf (k = 20): 1 min 12 s elapsed, about 2 min 30 s left (estimate)`.
    pub fn describe(&self) -> String {
        describe(
            &self.name,
            self.elapsed(),
            self.done(),
            self.total,
            self.estimate,
        )
    }
}

/// What is left of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remaining {
    /// From the rate so far: `elapsed × (total − done) / done`.
    Eta(Duration),
    /// The estimate minus the time elapsed.
    Estimated(Duration),
    /// The step has run this much longer than its estimate.
    OverEstimate(Duration),
    /// Nothing counted yet and no estimate.
    Unknown,
}

impl Remaining {
    /// What is left after `elapsed`, with `done` of `total` counted and the step estimated
    /// at `estimate` in all. The rate wins once anything is counted; before that the estimate.
    pub fn at(
        elapsed: Duration,
        done: u64,
        total: Option<u64>,
        estimate: Option<Duration>,
    ) -> Self {
        match (total, estimate) {
            (Some(total), _) if done > 0 => {
                let left = total.saturating_sub(done) as f64 / done as f64;
                Self::Eta(elapsed.mul_f64(left))
            }
            (_, Some(estimate)) if elapsed <= estimate => Self::Estimated(estimate - elapsed),
            (_, Some(estimate)) => Self::OverEstimate(elapsed - estimate),
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for Remaining {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Eta(left) => write!(f, "about {} left", Hms(*left)),
            Self::Estimated(left) => write!(f, "about {} left (estimate)", Hms(*left)),
            Self::OverEstimate(over) => write!(f, "{} over the estimate", Hms(*over)),
            Self::Unknown => f.write_str("no estimate yet"),
        }
    }
}

/// A duration for people: `42 s`, `3 min 20 s`, `1 h 05 min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hms(pub Duration);

impl fmt::Display for Hms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs_f64().round() as u64;
        match s {
            0..60 => write!(f, "{s} s"),
            60..3600 => write!(f, "{} min {:02} s", s / 60, s % 60),
            _ => write!(f, "{} h {:02} min", s / 3600, s % 3600 / 60),
        }
    }
}

/// One line about a step (see [`Task::describe`]).
fn describe(
    name: &str,
    elapsed: Duration,
    done: u64,
    total: Option<u64>,
    estimate: Option<Duration>,
) -> String {
    let counted = match total {
        Some(total) if total > 0 => format!(
            ", {done}/{total} ({:.0}%)",
            100.0 * done.min(total) as f64 / total as f64
        ),
        _ => String::new(),
    };
    let remaining = Remaining::at(elapsed, done, total, estimate);
    format!("{name}: {} elapsed{counted}, {remaining}", Hms(elapsed))
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// [`Progress::finish`] was called: the step is done.
    Finished,
    /// The handle was dropped unfinished: the step failed or was given up.
    Stopped,
}

/// Where progress goes: the default [`TracingSink`], or what the binary installs with
/// [`set_sink`]. Called from the thread doing the work: keep each call cheap.
pub trait ProgressSink: Send + Sync {
    /// A step started.
    fn started(&self, task: &Arc<Task>);

    /// Work was counted ([`Progress::inc`]); [`Task::done`] has the new amount.
    fn advanced(&self, task: &Task) {
        let _ = task;
    }

    /// A step ended.
    fn ended(&self, task: &Task, outcome: Outcome);
}

static SINK: OnceLock<Arc<dyn ProgressSink>> = OnceLock::new();

/// Installs the process-wide sink. Only the first call before any step starts takes effect:
/// afterwards (or once a step has started on the default sink) the sink is handed back.
pub fn set_sink(sink: Arc<dyn ProgressSink>) -> Result<(), Arc<dyn ProgressSink>> {
    SINK.set(sink)
}

/// The process-wide sink: the installed one, else a [`TracingSink`] reporting every
/// [`REPORT_INTERVAL`].
pub fn sink() -> Arc<dyn ProgressSink> {
    SINK.get_or_init(|| Arc::new(TracingSink::new(REPORT_INTERVAL)))
        .clone()
}

/// A running long step. Dropping it ends the step (as [`Outcome::Stopped`]); call
/// [`finish`](Self::finish) when it is done.
#[must_use = "a step ends when its Progress is dropped"]
pub struct Progress {
    task: Arc<Task>,
    sink: Arc<dyn ProgressSink>,
    ended: bool,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("task", &self.task)
            .finish()
    }
}

impl Progress {
    /// Starts step `name` on the process-wide sink: `total` units of countable work, or `None`;
    /// `estimate` of the whole step from an earlier run, or `None`.
    pub fn start(name: impl Into<String>, total: Option<u64>, estimate: Option<Duration>) -> Self {
        Self::start_on(sink(), name, total, estimate)
    }

    /// Starts step `name` on `sink` (tests, or a sink of one's own).
    pub fn start_on(
        sink: Arc<dyn ProgressSink>,
        name: impl Into<String>,
        total: Option<u64>,
        estimate: Option<Duration>,
    ) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let task = Arc::new(Task {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            total,
            estimate,
            started: Instant::now(),
            done: AtomicU64::new(0),
        });
        sink.started(&task);
        Self {
            task,
            sink,
            ended: false,
        }
    }

    /// Counts `n` more units of work. Cheap, but call it per chunk (say per thousandth of the
    /// total), not per element of a tight loop.
    pub fn inc(&self, n: u64) {
        self.task.done.fetch_add(n, Ordering::Relaxed);
        self.sink.advanced(&self.task);
    }

    /// The step as sinks see it.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Time since the step started.
    pub fn elapsed(&self) -> Duration {
        self.task.elapsed()
    }

    /// Ends the step as done, logs the time it took and returns it.
    pub fn finish(mut self) -> Duration {
        self.end(Outcome::Finished)
    }

    fn end(&mut self, outcome: Outcome) -> Duration {
        self.ended = true;
        let elapsed = self.task.elapsed();
        self.sink.ended(&self.task, outcome);
        let seconds = elapsed.as_secs_f64();
        let estimated_seconds = self.task.estimate.map(|e| e.as_secs_f64());
        let name = self.task.name();
        match outcome {
            Outcome::Finished => info!(seconds, estimated_seconds, "{name}: done"),
            Outcome::Stopped => info!(seconds, "{name}: stopped before it finished"),
        }
        elapsed
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.ended {
            self.end(Outcome::Stopped);
        }
    }
}

/// The default sink: one background thread logs each running step with `tracing::info!`
/// every `interval` ([`Task::describe`]); a step that ends sooner is never reported.
pub struct TracingSink {
    shared: Arc<Ticker>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for TracingSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracingSink")
            .field("interval", &self.shared.interval)
            .finish_non_exhaustive()
    }
}

/// What the reporting thread shares with the sink.
struct Ticker {
    interval: Duration,
    report: Box<dyn Fn(&Task) + Send + Sync>,
    state: Mutex<TickerState>,
    wake: Condvar,
}

#[derive(Default)]
struct TickerState {
    /// Running steps, each with when it is next reported.
    running: Vec<(Arc<Task>, Instant)>,
    /// The sink is gone: the thread exits.
    closed: bool,
}

impl TracingSink {
    /// A sink that logs each running step every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self::with_reporter(interval, |task| info!("{}", task.describe()))
    }

    /// A sink that calls `report` for each running step every `interval` (tests).
    pub fn with_reporter(
        interval: Duration,
        report: impl Fn(&Task) + Send + Sync + 'static,
    ) -> Self {
        Self {
            shared: Arc::new(Ticker {
                interval,
                report: Box::new(report),
                state: Mutex::default(),
                wake: Condvar::new(),
            }),
            thread: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TickerState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl ProgressSink for TracingSink {
    fn started(&self, task: &Arc<Task>) {
        let next = Instant::now() + self.shared.interval;
        self.lock().running.push((task.clone(), next));
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if thread.is_none() {
            let shared = self.shared.clone();
            match std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || shared.run())
            {
                Ok(handle) => *thread = Some(handle),
                Err(err) => warn!(%err, "cannot start the progress thread: no progress lines"),
            }
        }
        self.shared.wake.notify_one();
    }

    fn ended(&self, task: &Task, _: Outcome) {
        self.lock().running.retain(|(t, _)| t.id != task.id);
    }
}

impl Drop for TracingSink {
    fn drop(&mut self) {
        self.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = thread.join();
        }
    }
}

impl Ticker {
    /// The reporting thread: sleeps until the next step is due (or for ever while none runs),
    /// reports what is due outside the lock, and exits when the sink is dropped.
    fn run(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if state.closed {
                return;
            }
            let now = Instant::now();
            let mut due = Vec::new();
            for (task, next) in &mut state.running {
                if *next <= now {
                    due.push(task.clone());
                    *next = now + self.interval;
                }
            }
            if !due.is_empty() {
                drop(state);
                for task in &due {
                    (self.report)(task);
                }
                state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let wait = state.running.iter().map(|(_, next)| *next - now).min();
            state = match wait {
                Some(wait) => {
                    self.wake
                        .wait_timeout(state, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`MockSink`] saw.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Event {
        Started { id: u64, name: String },
        Advanced { id: u64, done: u64 },
        Ended { id: u64, outcome: Outcome },
    }

    /// A test double that records every call in order.
    #[derive(Default)]
    struct MockSink(Mutex<Vec<Event>>);

    impl MockSink {
        fn events(&self) -> Vec<Event> {
            self.0.lock().unwrap().clone()
        }
    }

    impl ProgressSink for MockSink {
        fn started(&self, task: &Arc<Task>) {
            self.0.lock().unwrap().push(Event::Started {
                id: task.id(),
                name: task.name().to_owned(),
            });
        }

        fn advanced(&self, task: &Task) {
            self.0.lock().unwrap().push(Event::Advanced {
                id: task.id(),
                done: task.done(),
            });
        }

        fn ended(&self, task: &Task, outcome: Outcome) {
            self.0.lock().unwrap().push(Event::Ended {
                id: task.id(),
                outcome,
            });
        }
    }

    #[test]
    fn progress_sink_sees_start_advance_and_finish_in_order() {
        let sink = Arc::new(MockSink::default());
        let progress = Progress::start_on(sink.clone(), "points", Some(10), None);
        let id = progress.task().id();
        progress.inc(3);
        progress.inc(7);
        assert_eq!(progress.task().done(), 10);
        progress.finish();
        assert_eq!(
            sink.events(),
            [
                Event::Started {
                    id,
                    name: "points".into()
                },
                Event::Advanced { id, done: 3 },
                Event::Advanced { id, done: 10 },
                Event::Ended {
                    id,
                    outcome: Outcome::Finished
                },
            ]
        );
    }

    #[test]
    fn progress_ends_on_drop_after_an_early_return() {
        fn fails(sink: Arc<dyn ProgressSink>) -> Result<(), &'static str> {
            let progress = Progress::start_on(sink, "keygen", None, None);
            Err("keygen failed")?;
            progress.finish();
            Ok(())
        }
        let sink = Arc::new(MockSink::default());
        assert!(fails(sink.clone()).is_err());
        let events = sink.events();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(
            events[1],
            Event::Ended {
                outcome: Outcome::Stopped,
                ..
            }
        ));
    }

    #[test]
    fn progress_ends_once_and_ids_differ() {
        let sink = Arc::new(MockSink::default());
        let a = Progress::start_on(sink.clone(), "a", None, None);
        let b = Progress::start_on(sink.clone(), "b", None, None);
        assert_ne!(a.task().id(), b.task().id());
        drop(b);
        a.finish();
        let ends = sink
            .events()
            .into_iter()
            .filter(|e| matches!(e, Event::Ended { .. }))
            .count();
        assert_eq!(ends, 2);
    }

    #[test]
    fn progress_remaining_arithmetic() {
        let s = Duration::from_secs;
        // Rate-based: 10 s for 25 of 100 → 30 s for the other 75.
        assert_eq!(
            Remaining::at(s(10), 25, Some(100), None),
            Remaining::Eta(s(30))
        );
        // The rate wins over the estimate once something is counted.
        assert_eq!(
            Remaining::at(s(10), 50, Some(100), Some(s(100))),
            Remaining::Eta(s(10))
        );
        // Counted past the total: nothing left, never negative.
        assert_eq!(
            Remaining::at(s(10), 120, Some(100), None),
            Remaining::Eta(s(0))
        );
        // Nothing counted yet: the estimate, then how far past it.
        assert_eq!(
            Remaining::at(s(10), 0, Some(100), Some(s(60))),
            Remaining::Estimated(s(50))
        );
        assert_eq!(
            Remaining::at(s(70), 0, None, Some(s(60))),
            Remaining::OverEstimate(s(10))
        );
        assert_eq!(Remaining::at(s(10), 0, Some(100), None), Remaining::Unknown);
        assert_eq!(Remaining::at(s(10), 0, None, None), Remaining::Unknown);
    }

    #[test]
    fn progress_lines_read_well() {
        let s = Duration::from_secs;
        for (d, text) in [
            (0, "0 s"),
            (59, "59 s"),
            (60, "1 min 00 s"),
            (200, "3 min 20 s"),
            (3900, "1 h 05 min"),
        ] {
            assert_eq!(Hms(s(d)).to_string(), text);
        }
        assert_eq!(
            describe("SRS", s(10), 25, Some(100), None),
            "SRS: 10 s elapsed, 25/100 (25%), about 30 s left"
        );
        assert_eq!(
            describe("keygen stf", s(72), 0, None, Some(s(222))),
            "keygen stf: 1 min 12 s elapsed, about 2 min 30 s left (estimate)"
        );
        assert_eq!(
            describe("proving", s(5), 0, None, None),
            "proving: 5 s elapsed, no estimate yet"
        );
        assert_eq!(
            describe("proving", s(65), 0, None, Some(s(60))),
            "proving: 1 min 05 s elapsed, 5 s over the estimate"
        );
    }

    #[test]
    fn progress_tracing_sink_reports_running_steps_until_they_end() {
        let reports = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = reports.clone();
        let sink = Arc::new(TracingSink::with_reporter(
            Duration::from_millis(20),
            move |task| seen.lock().unwrap().push(task.name().to_owned()),
        ));
        let quick = Progress::start_on(sink.clone(), "quick", None, None);
        quick.finish();
        let slow = Progress::start_on(sink.clone(), "slow", Some(4), None);
        let deadline = Instant::now() + Duration::from_secs(10);
        while reports.lock().unwrap().len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        slow.finish();
        let after_end = reports.lock().unwrap().len();
        std::thread::sleep(Duration::from_millis(100));
        let reports = reports.lock().unwrap().clone();
        assert!(reports.len() >= 2, "{reports:?}");
        assert!(reports.iter().all(|r| r == "slow"), "{reports:?}");
        // At most one report was already under way when the step ended.
        assert!(reports.len() <= after_end + 1, "{reports:?}");
        // Dropping the sink stops its thread (the join in `Drop` returns).
        drop(sink);
    }
}
