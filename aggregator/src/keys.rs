//! `lockstep keys …`: SRS files and circuit keys.

use eyre::{Context, Result};
use lockstep_circuits::keys::KeyStore;

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
    }
    Ok(())
}
