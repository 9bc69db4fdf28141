//! The `lockstep` binary.

use clap::Parser;
use lockstep_aggregator::{service, status};
use lockstep_cli::{
    adapter, bench,
    cli::{AdapterCommand, AggregatorCommand, BenchCommand, Cli, Command},
    demo, keys, rollups,
};
use tracing_subscriber::{
    fmt::{format::Writer, FmtContext, FormatEvent, FormatFields},
    registry::LookupSpan,
    EnvFilter,
};

/// mimalloc instead of the system allocator (feature `mimalloc`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Prefixes every log line with the dev-mode label while the process runs in dev mode.
struct DevModeLabel<F>(F);

impl<S, N, F> FormatEvent<S, N> for DevModeLabel<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        writer.write_str(lockstep_aggregator::dev::label())?;
        self.0.format_event(ctx, writer, event)
    }
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    // Before the first line is printed: a dev-mode run labels every line.
    let dev = match &cli.command {
        Command::Aggregator(AggregatorCommand::Run(args)) => args.dev,
        Command::Adapter(AdapterCommand::Run(args)) => args.dev,
        Command::Demo(args) => args.dev,
        _ => false,
    };
    if dev {
        lockstep_aggregator::dev::enable();
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log)?)
        // Progress bars on a terminal, log lines printed above them; else plain stderr.
        .with_writer(lockstep_cli::progress::install())
        // Colours only for a terminal: logs that go to files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // The default format reads colours from the writer, so this keeps the choice above.
        .event_format(DevModeLabel(tracing_subscriber::fmt::format()))
        .init();
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Aggregator(AggregatorCommand::Run(args)) => {
            // The one place the service meets the reference rollup: its builder's rollups.
            service::run::run(args, &rollups::reference_rollups).await?;
            // An aggregation in flight runs on a blocking thread, which the runtime would wait
            // for (minutes) on the way out. Everything durable is written and the store is
            // closed: leave now; the restart redoes that aggregation.
            std::process::exit(0)
        }
        Command::Adapter(AdapterCommand::Run(args)) => adapter::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Keys(cmd) => keys::run(cmd),
        Command::Bench(BenchCommand::Aggregate(args)) => {
            let json = args.json;
            let report = bench::aggregate(args).await?;
            bench::print(&report, json);
            Ok(())
        }
        Command::Bench(BenchCommand::Rollup(args)) => {
            let json = args.json;
            // Proving is CPU-bound for minutes: keep it off the async runtime's workers.
            let report = tokio::task::spawn_blocking(move || bench::rollup::run(&args)).await??;
            bench::rollup::print(&report, json);
            Ok(())
        }
        Command::Bench(BenchCommand::Settle(args)) => {
            let json = args.json;
            let report = bench::settle::run(args).await?;
            bench::settle::print(&report, json);
            Ok(())
        }
    }
}
