//! `signet seal`: Secrets to SealedSecrets (whole manifests, `--raw` values, `--merge-into` an
//! existing file) and the online modes `--fetch-cert`, `--validate` and `--re-encrypt`.

use super::args::{ManifestFormat, SealArgs};
use super::fetch::{Controller, cert_bytes, load_cert};
use super::manifest::{parse_documents, render, typed};
use super::{read_file, seal_error, write_output};
use crate::exit::{CliError, CliResult, code};
use crate::io::{Input, write_atomic};
use rayon::prelude::*;
use signet_api::{SealedSecret, Secret};
use signet_seal::convert::{SealOptions, merge_into, seal_secret};
use signet_seal::{Scope, SealingCertificate};
use std::path::Path;

/// Runs `signet seal`.
pub fn seal(args: SealArgs) -> CliResult {
    if args.cert.len() > 1 || args.output_pattern.is_some() {
        return super::clusters::seal_for_clusters(&args);
    }
    let controller = args.online.controller(!args.cert.is_empty())?;
    if let Some(controller) = &controller {
        if args.online.fetch_cert {
            return write_output(&controller.cert_pem()?, args.output.as_deref());
        }
        if args.online.validate || args.online.re_encrypt {
            return online_check(&args, controller);
        }
    }
    let cert = match (&controller, args.cert.first().map(String::as_str)) {
        (Some(controller), None) => SealingCertificate::from_pem(&controller.cert_pem()?)
            .map_err(|e| seal_error(&controller.describe(), e))?,
        (_, cert) => load_cert(cert)?,
    };
    if let (true, Some(source)) = (args.online.fetch_cert, args.cert.first()) {
        // With --cert (and no --controller-url), kubeseal prints that certificate as it is.
        return write_output(&cert_bytes(source)?, args.output.as_deref());
    }
    if args.raw {
        return seal_raw(&args, &cert);
    }
    let secrets = read_secrets(&args)?;
    if let Some(target) = &args.merge_into {
        return merge(&secrets, &cert, target);
    }
    let sealed = seal_all(&secrets, &cert, &args)?;
    write_output(&render(&sealed, args.format)?, args.output.as_deref())
}

/// The input Secrets, each with a name for messages (`FILE: document N`).
pub(super) fn read_secrets(args: &SealArgs) -> CliResult<Vec<(String, Secret)>> {
    let input = Input::from_arg(args.input.as_deref().or(args.secret_file.as_deref()));
    let origin = input.display_name();
    // The input holds plaintext: wipe the buffer when done.
    let bytes = zeroize::Zeroizing::new(input.read()?);
    let docs = parse_documents(&bytes, &origin)?;
    if docs.is_empty() {
        return Err(CliError::new(
            code::NEED_AT_LEAST_ONE_DOCUMENT,
            format!("{origin}: no Secret found"),
        ));
    }
    let mut secrets = Vec::with_capacity(docs.len());
    for (i, doc) in docs.into_iter().enumerate() {
        let where_ = format!("{origin}: document {}", i + 1);
        secrets.push((where_.clone(), typed::<Secret>(doc, "Secret", &where_)?));
    }
    Ok(secrets)
}

/// Seals every Secret to `cert` with the command's options, in parallel.
pub(super) fn seal_all(
    secrets: &[(String, Secret)],
    cert: &SealingCertificate,
    args: &SealArgs,
) -> CliResult<Vec<SealedSecret>> {
    let options = SealOptions {
        scope: args.scope.map(Scope::from),
        default_namespace: args.namespace.clone(),
        default_name: args.name.clone(),
        allow_empty_data: args.allow_empty_data,
    };
    secrets
        .par_iter()
        .map(|(where_, secret)| {
            seal_secret(secret, cert, &options).map_err(|e| seal_error(where_, e))
        })
        .collect()
}

/// `--validate` / `--re-encrypt`: send each input SealedSecret to the controller.
fn online_check(args: &SealArgs, controller: &Controller) -> CliResult {
    let input = Input::from_arg(args.input.as_deref().or(args.secret_file.as_deref()));
    let origin = input.display_name();
    let bytes = input.read()?;
    let mut resealed = Vec::new();
    for (i, doc) in parse_documents(&bytes, &origin)?.into_iter().enumerate() {
        let where_ = format!("{origin}: document {}", i + 1);
        let sealed: SealedSecret = typed(doc, "SealedSecret", &where_)?;
        let body = serde_json::to_vec(&sealed)
            .map_err(|e| CliError::new(code::INVALID_MANIFEST, format!("{where_}: {e}")))?;
        if args.online.validate {
            match controller.post("/v1/verify", &body)?.0 {
                200 => {}
                409 => {
                    return Err(CliError::new(
                        code::UNSEAL_FAILED,
                        format!("{where_}: the controller cannot unseal this SealedSecret"),
                    ));
                }
                status => {
                    return Err(CliError::new(
                        code::ERROR_GENERIC,
                        format!("{where_}: the controller answered HTTP {status} to /v1/verify"),
                    ));
                }
            }
        } else {
            let (status, answer) = controller.post("/v1/rotate", &body)?;
            if status != 200 {
                return Err(CliError::new(
                    if status == 409 {
                        code::UNSEAL_FAILED
                    } else {
                        code::ERROR_GENERIC
                    },
                    format!("{where_}: the controller answered HTTP {status} to /v1/rotate"),
                ));
            }
            let docs = parse_documents(&answer, &controller.describe())?;
            for doc in docs {
                resealed.push(typed::<SealedSecret>(
                    doc,
                    "SealedSecret",
                    &controller.describe(),
                )?);
            }
        }
    }
    if args.online.re_encrypt {
        write_output(&render(&resealed, args.format)?, args.output.as_deref())?;
    }
    Ok(())
}

fn seal_raw(args: &SealArgs, cert: &SealingCertificate) -> CliResult {
    let [spec] = args.from_file.as_slice() else {
        return Err(CliError::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            "--raw needs exactly one --from-file",
        ));
    };
    let path = spec.split_once('=').map_or(spec.as_str(), |(_, p)| p);
    let value = zeroize::Zeroizing::new(read_file(Path::new(path))?);
    let scope = args.scope.map_or(Scope::Strict, Scope::from);
    let label = scope
        .label(args.namespace.as_deref(), args.name.as_deref())
        .map_err(|e| {
            CliError::new(
                code::ERROR_CONFLICTING_PARAMETERS,
                format!("--raw: {e} (use -n/--namespace and --name, or --scope)"),
            )
        })?;
    let sealed = signet_seal::seal(cert, &label, &value).map_err(|e| seal_error("--raw", e))?;
    write_output(sealed.as_bytes(), args.output.as_deref())
}

fn merge(secrets: &[(String, Secret)], cert: &SealingCertificate, target: &Path) -> CliResult {
    let [(where_, secret)] = secrets else {
        return Err(CliError::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            "--merge-into takes exactly one input Secret",
        ));
    };
    let origin = target.display().to_string();
    let bytes = read_file(target)?;
    let is_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let mut docs = parse_documents(&bytes, &origin)?;
    if docs.len() != 1 {
        return Err(CliError::new(
            code::INVALID_MANIFEST,
            format!("{origin}: --merge-into needs a file with exactly one SealedSecret"),
        ));
    }
    let mut existing: SealedSecret = typed(docs.remove(0), "SealedSecret", &origin)?;
    merge_into(&mut existing, secret, cert).map_err(|e| seal_error(where_, e))?;
    let format = if is_json {
        ManifestFormat::Json
    } else {
        ManifestFormat::Yaml
    };
    write_atomic(target, &render(&[existing], format)?)
}
