//! `signet keys new-sealing-key`: an RSA sealing key and a self-signed certificate like the
//! controller's, for bring-your-own-key setups; key material is written mode 0600.

use super::args::{KeysCommand, NewSealingKeyArgs};
use super::seal_error;
use crate::exit::{CliError, CliResult, code};
use crate::io::write_atomic;
use signet_seal::generate_sealing_key;
use std::path::Path;
use std::time::Duration;

/// Runs `signet keys ...`.
pub fn keys(command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::NewSealingKey(args) => new_sealing_key(args),
        KeysCommand::Inventory(args) => crate::inventory::inventory(args),
        KeysCommand::Retire(args) => crate::inventory::retire(args),
    }
}

fn new_sealing_key(args: NewSealingKeyArgs) -> CliResult {
    for path in [
        Some(&args.key_out),
        Some(&args.cert_out),
        args.secret_out.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if path.exists() && !args.force {
            return Err(CliError::new(
                code::COULD_NOT_WRITE_OUTPUT_FILE,
                format!("{} exists; pass --force to overwrite it", path.display()),
            ));
        }
    }
    let validity = Duration::from_secs(args.validity_days.saturating_mul(24 * 3600));
    let generated = generate_sealing_key(args.bits, validity, &args.cn)
        .map_err(|e| seal_error("new-sealing-key", e))?;
    write_private(&args.key_out, generated.private_key_pem.as_bytes())?;
    write_atomic(&args.cert_out, generated.certificate_pem.as_bytes())?;
    if let Some(path) = &args.secret_out {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let manifest = zeroize::Zeroizing::new(
            serde_json::to_string_pretty(&serde_json::json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": args.secret_name,
                    "namespace": args.secret_namespace,
                    "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"},
                },
                "type": "kubernetes.io/tls",
                "data": {
                    "tls.crt": b64(generated.certificate_pem.as_bytes()),
                    "tls.key": b64(generated.private_key_pem.as_bytes()),
                },
            }))
            .map_err(|e| CliError::new(code::ERROR_DUMPING_TREE, e.to_string()))?
                + "\n",
        );
        write_private(path, manifest.as_bytes())?;
    }
    eprintln!(
        "signet: wrote {} (private key, 0600) and {} (certificate); load them into the controller's \
         namespace as a kubernetes.io/tls Secret labelled sealedsecrets.bitnami.com/sealed-secrets-key=active",
        args.key_out.display(),
        args.cert_out.display()
    );
    Ok(())
}

/// Writes a file that holds key material: atomically, and mode 0600 even when it replaces a file
/// with looser permissions.
fn write_private(path: &Path, bytes: &[u8]) -> CliResult {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        // write_atomic keeps an existing file's mode; tighten it first.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            CliError::new(
                code::COULD_NOT_WRITE_OUTPUT_FILE,
                format!("cannot chmod {}: {e}", path.display()),
            )
        })?;
    }
    write_atomic(path, bytes)
}
