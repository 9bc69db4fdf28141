//! The `lockstep` binary.

use clap::Parser;
use lockstep_aggregator::{
    adapter, bench,
    cli::{AdapterCommand, AggregatorCommand, BenchCommand, Cli, Command},
    demo, keys, service, status,
};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        // Colours only for a terminal: logs that go to files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Aggregator(AggregatorCommand::Run(args)) => {
            service::run::run(args).await?;
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
