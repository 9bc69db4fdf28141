//! `lockstep keys …`: SRS files and circuit keys.

use eyre::{Context, Result};
use lockstep_circuits::{keys::KeyStore, vk_file::VkFile};
use lockstep_reference_rollup::Deployment;

use crate::cli::KeysCommand;

/// Runs a `keys` subcommand.
pub fn run(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::UnsafeTestSrs(args) => {
            let store = KeyStore::open(&args.keys)?;
            eprintln!(
                "WARNING: generating an UNSAFE SRS from a fixed public seed (k = {}); for tests and local demos only",
                args.k
            );
            store.generate_unsafe_test_srs(args.k)?;
            println!("{}", store.srs_path(args.k).display());
        }
        KeysCommand::ImportSrs(args) => {
            let store = KeyStore::open(&args.keys)?;
            let k = store
                .import_srs(&args.file)
                .wrap_err_with(|| format!("importing {}", args.file.display()))?;
            println!("imported k = {k} as {}", store.srs_path(k).display());
        }
        KeysCommand::ExportVk(args) => {
            let store = KeyStore::open(&args.keys)?;
            let deployment = Deployment::read(&args.rollup)?;
            eprintln!(
                "loading the key of rollup {}'s {} (keygen on first use: minutes for the STF \
                 circuit)",
                deployment.genesis.rollup_id,
                deployment.circuit_label()
            );
            let prover = deployment.prover(&store)?;
            let file = VkFile::new(deployment.circuit_label(), prover.params(), prover.vk())?;
            file.write(&args.out)?;
            println!(
                "{}: rollup {}, vk digest {}",
                args.out.display(),
                deployment.genesis.rollup_id,
                file.vk_digest
            );
        }
    }
    Ok(())
}
