//! Offline recovery with the controller's private keys: `signet unseal` (like `kubeseal
//! --recovery-unseal`) and `signet reseal` (re-seal files to a new certificate).

use super::args::{ResealArgs, UnsealArgs};
use super::fetch::load_cert;
use super::manifest::{parse_documents, render, typed};
use super::{read_file, seal_error, write_output};
use crate::exit::{CliError, CliResult, code};
use crate::io::Input;
use rayon::prelude::*;
use signet_api::SealedSecret;
use signet_seal::PrivateKeyRing;
use signet_seal::convert::unseal_sealed_secret;
use std::path::{Path, PathBuf};

/// The private keys named by `--recovery-private-key`.
pub(crate) fn load_ring(paths: &[PathBuf]) -> CliResult<PrivateKeyRing> {
    let mut ring = PrivateKeyRing::new();
    for path in paths {
        let origin = path.display().to_string();
        warn_if_readable_by_others(path);
        let bytes = zeroize::Zeroizing::new(read_file(path)?);
        ring.add_from_bytes(&bytes, &origin)
            .map_err(|e| seal_error(&origin, e))?;
    }
    Ok(ring)
}

/// Runs `signet unseal`.
pub fn unseal(args: UnsealArgs) -> CliResult {
    let ring = load_ring(&args.recovery_private_key)?;
    let input = Input::from_arg(args.input.as_deref());
    let origin = input.display_name();
    let docs = parse_documents(&input.read()?, &origin)?;
    if docs.is_empty() {
        return Err(CliError::new(
            code::NEED_AT_LEAST_ONE_DOCUMENT,
            format!("{origin}: no SealedSecret found"),
        ));
    }
    let mut sealed = Vec::with_capacity(docs.len());
    for (i, doc) in docs.into_iter().enumerate() {
        let where_ = format!("{origin}: document {}", i + 1);
        let object: SealedSecret = typed(doc, "SealedSecret", &where_)?;
        sealed.push((where_, object));
    }
    let secrets = sealed
        .par_iter()
        .map(|(where_, object)| {
            unseal_sealed_secret(object, &ring).map_err(|e| seal_error(where_, e))
        })
        .collect::<CliResult<Vec<_>>>()?;
    let bytes = zeroize::Zeroizing::new(render(&secrets, args.format)?);
    write_output(&bytes, args.output.as_deref())
}

/// Runs `signet reseal`. A file that fails is reported and left untouched; the others are still done.
pub fn reseal(args: ResealArgs) -> CliResult {
    let ring = load_ring(&args.recovery_private_key)?;
    let cert = load_cert(Some(&args.cert))?;
    let mut failed = 0;
    for path in &args.files {
        if let Err(e) = crate::rekey::sealed::reseal_file(path, &ring, &cert) {
            eprintln!("signet: {}", e.message);
            failed += 1;
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(CliError::new(
            code::UNSEAL_FAILED,
            format!(
                "{n} of {} file(s) could not be re-sealed (left unchanged)",
                args.files.len()
            ),
        )),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "signet: warning: private key {} is readable by group or others (chmod 600 it)",
            path.display()
        );
    }
}
