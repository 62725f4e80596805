//! `signet git`: the Git integration for sops files and SealedSecrets. A merge driver that merges
//! encrypted files structurally in memory, a diff textconv that never waits for a terminal, and
//! `setup` to register both. Nothing decrypted is ever written to disk.

mod diff;
mod merge;
mod setup;

use crate::exit::{CliError, CliResult, code};
use crate::sops::args::FormatArg;
use clap::Subcommand;
use signet_keys::{Keyring, NoInteraction};
use signet_sops::decryptor::OpenError;
use signet_sops::engine::DecryptOptions;
use signet_sops::{Decryptor, Format};
use std::path::Path;
use std::sync::Arc;

/// `signet git …`.
#[derive(Debug, Subcommand)]
pub enum GitCommand {
    /// Three-way merge of a sops file for git (`merge.signet.driver`): values merged by key path
    /// in memory, re-encrypted with ours' data key; exit 1 naming the keys on a real conflict.
    MergeDriver(merge::MergeDriverCmd),
    /// Diff textconv (`diff.signet.textconv`): a sops file decrypted (or summarised when no key
    /// opens it), a SealedSecret summarised without decrypting; never prompts.
    Diff(diff::DiffCmd),
    /// Write `.gitattributes` and the git config for the merge driver and the diff textconv.
    Setup(setup::SetupCmd),
}

/// Runs `signet git …`.
pub fn run(cmd: GitCommand) -> CliResult {
    match cmd {
        GitCommand::MergeDriver(c) => merge::merge_driver(c),
        GitCommand::Diff(c) => diff::diff(c),
        GitCommand::Setup(c) => setup::setup(c),
    }
}

/// The keyring from the environment that never prompts: git runs the driver and the textconv
/// with no one to answer (a passphrase-protected key is skipped, not asked for).
fn no_prompt_keyring() -> Keyring {
    crate::sops::keys::keyring_with(Arc::new(NoInteraction))
}

/// The format: the flag, else from the file name.
fn format_for(input_type: Option<FormatArg>, name: &Path) -> Format {
    input_type.map_or_else(|| Format::from_path(name), Format::from)
}

/// One version of a file, as read.
enum Side {
    /// A sops file, metadata read.
    Sops(Box<Decryptor>),
    /// Anything else (or not parseable in the format).
    Other,
}

impl Side {
    fn parse(bytes: &[u8], format: Format) -> Side {
        crate::sops::file::store(format, None)
            .parse(bytes)
            .ok()
            .and_then(|tree| Decryptor::new(tree).ok())
            .map_or(Side::Other, |d| Side::Sops(Box::new(d)))
    }

    /// Decrypts (MAC checked); `name` is for messages.
    fn open(self, ring: &Keyring, name: &str) -> CliResult<signet_sops::Opened> {
        let Side::Sops(decryptor) = self else {
            return Err(CliError::new(
                code::ERROR_GENERIC,
                format!("{name}: not a sops file"),
            ));
        };
        // The merge re-encrypts with the IVs of both parents, so unchanged values keep theirs.
        let opts = DecryptOptions {
            remember_ivs: true,
            ..DecryptOptions::default()
        };
        decryptor.open(ring, opts).map_err(|e| match e {
            OpenError::Key(e) => crate::sops::keys::no_data_key(name, e),
            OpenError::Document(e) => crate::sops::file::engine_error(name, e),
        })
    }
}
