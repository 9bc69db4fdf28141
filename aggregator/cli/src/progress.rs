//! Progress bars for the `lockstep` binary: the [`ProgressSink`] it installs when stderr is a
//! terminal, and the log writer that keeps log lines from garbling the bars.
//!
//! Long steps (keygen, proving, downsizing an SRS, waiting for L1) report through
//! [`lockstep_circuits::progress`]. On a terminal each running step is one line at the bottom
//! of the screen: a bar with done/total where the work is countable, else a spinner; both with
//! the elapsed time and what is left ([`Task::remaining`]: from the rate, from an earlier run's
//! measurement, or "no estimate yet"). Log lines are printed above the bars. Elsewhere (CI, log
//! files) nothing is installed and the default sink logs a line per running step every few
//! seconds.
//!
//! ```no_run
//! // In `main`, before anything starts a long step:
//! tracing_subscriber::fmt()
//!     .with_writer(lockstep_cli::progress::install())
//!     .init();
//! ```

use std::{
    collections::HashMap,
    io::{self, IsTerminal, Write},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use lockstep_circuits::progress::{self, Outcome, ProgressSink, Task};
use tracing_subscriber::fmt::MakeWriter;

/// Sets up progress output for this process and returns the writer for its log lines: on a
/// terminal, a [`BarSink`] on stderr and a writer that prints above the bars; otherwise plain
/// stderr and the default sink (periodic log lines). Call once, before any long step starts.
pub fn install() -> LogWriter {
    if !io::stderr().is_terminal() {
        return LogWriter::stderr();
    }
    let sink = Arc::new(BarSink::new(ProgressDrawTarget::stderr()));
    let writer = sink.log_writer();
    match progress::set_sink(sink) {
        Ok(()) => writer,
        // A sink is already in place: its output, and plain log lines.
        Err(_) => LogWriter::stderr(),
    }
}

/// Draws one line per running step: a bar when its total is known, else a spinner.
pub struct BarSink {
    bars: MultiProgress,
    running: Mutex<HashMap<u64, ProgressBar>>,
}

impl std::fmt::Debug for BarSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarSink").finish_non_exhaustive()
    }
}

/// How often spinners turn and elapsed times move.
const TICK: Duration = Duration::from_millis(200);

impl BarSink {
    /// A sink drawing to `target` (`ProgressDrawTarget::stderr()`; hidden in tests).
    pub fn new(target: ProgressDrawTarget) -> Self {
        Self {
            bars: MultiProgress::with_draw_target(target),
            running: Mutex::default(),
        }
    }

    /// A log writer that prints above this sink's bars.
    pub fn log_writer(&self) -> LogWriter {
        LogWriter {
            bars: Some(self.bars.clone()),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ProgressBar>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The look of a step's line; `{remaining}` is [`Task::remaining`], read at each redraw.
fn style(task: &Arc<Task>) -> ProgressStyle {
    let template = if task.total().is_some() {
        "{spinner:.cyan} {msg} [{elapsed_precise}] {wide_bar:.cyan/blue} {human_pos}/{human_len} \
         ({percent}%), {remaining}"
    } else {
        "{spinner:.cyan} {msg} [{elapsed_precise}] {remaining}"
    };
    let task = task.clone();
    ProgressStyle::with_template(template)
        .expect("the templates are valid")
        .with_key(
            "remaining",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", task.remaining());
            },
        )
}

impl ProgressSink for BarSink {
    fn started(&self, task: &Arc<Task>) {
        // Into the group before anything is set: a bar draws as soon as it changes, and one
        // drawn outside the group is never cleared.
        let bar = self.bars.add(ProgressBar::hidden());
        if let Some(total) = task.total() {
            bar.set_length(total);
        }
        bar.set_style(style(task));
        bar.set_message(task.name().to_owned());
        bar.enable_steady_tick(TICK);
        self.running().insert(task.id(), bar);
    }

    fn advanced(&self, task: &Task) {
        if let Some(bar) = self.running().get(&task.id()) {
            bar.set_position(task.done());
        }
    }

    fn ended(&self, task: &Task, _: Outcome) {
        // The step's own log line (done in so many seconds, or stopped) says how it ended.
        if let Some(bar) = self.running().remove(&task.id()) {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
    }
}

/// Writes log lines to stderr, above the bars of a [`BarSink`] if there is one (the bars are
/// cleared, the line written, the bars redrawn).
#[derive(Debug, Clone)]
pub struct LogWriter {
    bars: Option<MultiProgress>,
}

impl LogWriter {
    /// Plain stderr.
    pub fn stderr() -> Self {
        Self { bars: None }
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // tracing-subscriber writes each event whole, so one event is one suspension.
        match &self.bars {
            Some(bars) => bars.suspend(|| io::stderr().write_all(buf))?,
            None => io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use lockstep_circuits::progress::Progress;

    use super::*;

    fn position(sink: &BarSink, task: &Task) -> Option<u64> {
        sink.running().get(&task.id()).map(ProgressBar::position)
    }

    #[test]
    fn progress_bar_sink_tracks_steps_until_they_end() {
        let sink = Arc::new(BarSink::new(ProgressDrawTarget::hidden()));
        let points = Progress::start_on(sink.clone(), "SRS points", Some(100), None);
        let proof =
            Progress::start_on(sink.clone(), "proving", None, Some(Duration::from_secs(60)));
        assert_eq!(sink.running().len(), 2);
        points.inc(40);
        assert_eq!(position(&sink, points.task()), Some(40));
        assert_eq!(
            sink.running()[&points.task().id()].length(),
            Some(100),
            "a countable step is a bar of its total"
        );
        assert_eq!(sink.running()[&proof.task().id()].length(), None);
        points.finish();
        // An early return drops the handle: the spinner goes too.
        drop(proof);
        assert!(sink.running().is_empty());
    }

    #[test]
    fn progress_log_writer_writes_whole_lines() {
        let sink = Arc::new(BarSink::new(ProgressDrawTarget::hidden()));
        // A line written while a bar runs.
        let _running = Progress::start_on(sink.clone(), "waiting", None, None);
        for mut writer in [sink.log_writer(), LogWriter::stderr()] {
            let line = b"progress_log_writer_writes_whole_lines\n";
            assert_eq!(writer.write(line).unwrap(), line.len());
            writer.flush().unwrap();
        }
    }
}
