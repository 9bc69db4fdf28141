//! The `lockstep` binary.

use clap::Parser;
use lockstep_aggregator::{
    bench,
    cli::{AggregatorCommand, BenchCommand, Cli, Command},
    demo, keys, service,
};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Aggregator(AggregatorCommand::Run(args)) => service::run::run(args).await,
        Command::Keys(cmd) => keys::run(cmd),
        Command::Bench(BenchCommand::Aggregate(args)) => {
            let json = args.json;
            let report = bench::aggregate(args).await?;
            bench::print(&report, json);
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
