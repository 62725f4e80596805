//! `signet seal`, `signet unseal`, `signet reseal` and `signet keys new-sealing-key`: the
//! kubeseal-compatible side of the CLI. All cryptography is in `signet-seal`; this module reads inputs,
//! parses manifests, picks output formats and writes files atomically.
//!
//! Output format: JSON by default, exactly like kubeseal (`-o yaml` for YAML), so scripts that pipe
//! kubeseal's output keep working; it does not follow the input format. Several input documents give
//! several output documents: concatenated JSON objects (as kubeseal writes them, and as `kubectl apply
//! -f` reads them) or `---`-separated YAML documents.
//!
//! Online modes (`--fetch-cert`, `--validate`, `--re-encrypt`, and sealing without `--cert`) talk to a
//! running controller's HTTP API: directly at `--controller-url`, or, like kubeseal by default,
//! through the Kubernetes API server's service proxy to the Service `--controller-name` in
//! `--controller-namespace` (see [`service_proxy`]); failures there exit with
//! [`code::ONLINE_MODE_UNAVAILABLE`].
//!
//! Modules: [`args`] (the clap structs), [`sealing`] (`signet seal`), [`clusters`] (`signet seal
//! --cert a.pem --cert b.pem`: one SealedSecret per cluster), [`recovery`] (`signet unseal`,
//! `signet reseal`), [`keys`](mod@keys) (`signet keys`), [`manifest`] (parsing and rendering manifests),
//! [`fetch`] (certificate sources and the controller's API), [`http`] (the bounded HTTP client they
//! use; no `curl`) and [`service_proxy`].

mod args;
mod clusters;
mod fetch;
mod http;
mod keys;
mod manifest;
mod recovery;
mod sealing;
mod service_proxy;

pub use args::{KeysCommand, ManifestFormat, ResealArgs, ScopeArg, SealArgs, UnsealArgs};
pub(crate) use clusters::explicit_name as explicit_cluster_name;
pub(crate) use fetch::load_cert;
pub use keys::keys;
pub(crate) use manifest::render;
pub(crate) use recovery::load_ring;
pub use recovery::{reseal, unseal};
pub use sealing::seal;
pub(crate) use service_proxy::{ProxyTarget, load_config};

use crate::exit::{CliError, CliResult, code};
use crate::io::Input;
use signet_seal::SealError;
use std::path::Path;

pub(crate) fn seal_error(what: &str, e: SealError) -> CliError {
    let code = match e {
        SealError::Unseal => code::UNSEAL_FAILED,
        SealError::Certificate(_) | SealError::CertificateExpired(_) => code::SEALING_CERT_UNUSABLE,
        SealError::PrivateKey { .. } | SealError::NoPrivateKey(_) => code::COULD_NOT_RETRIEVE_KEY,
        SealError::Manifest(_) | SealError::Template { .. } => code::INVALID_MANIFEST,
        _ => code::ERROR_GENERIC,
    };
    CliError::new(code, format!("{what}: {e}"))
}

fn read_file(path: &Path) -> CliResult<Vec<u8>> {
    Input::File(path.to_path_buf()).read()
}

/// Writes `bytes` to `output` atomically, or to stdout.
fn write_output(bytes: &[u8], output: Option<&Path>) -> CliResult {
    crate::io::write_output(bytes, output, None)
}
