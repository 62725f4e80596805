//! `signet seal --cert a.pem --cert b.pem`: the same Secrets sealed for several clusters (dev,
//! staging, prod, a disaster-recovery key), one SealedSecret per certificate and input Secret.
//!
//! Each certificate names a cluster: `NAME=FILE|URL`, or the file's stem (`prod.pem` is `prod`).
//! Every SealedSecret made here carries the annotation [`CLUSTER_ANNOTATION`] with that name (the
//! controller ignores it; the Secret it produces does not get it). Output: one stream with every
//! cluster's documents in `--cert` order (YAML `---` documents or concatenated JSON objects), or with
//! `--output-pattern 'sealed-{cluster}.yaml'` one file per cluster, each written atomically.

use super::args::SealArgs;
use super::fetch::load_cert;
use super::manifest::render;
use super::sealing::{read_secrets, seal_all};
use super::write_output;
use crate::exit::{CliError, CliResult, code};
use signet_seal::SealingCertificate;
use std::path::Path;

/// The annotation naming the cluster a SealedSecret was sealed for.
pub const CLUSTER_ANNOTATION: &str = "signet.dev/cluster";

/// What `{cluster}` stands for in `--output-pattern`.
const PLACEHOLDER: &str = "{cluster}";

/// Runs `signet seal` with several certificates (or with `--output-pattern`).
pub(super) fn seal_for_clusters(args: &SealArgs) -> CliResult {
    let conflicting = [
        (args.raw, "--raw"),
        (args.merge_into.is_some(), "--merge-into"),
        (args.online.fetch_cert, "--fetch-cert"),
        (args.online.validate, "--validate"),
        (args.online.re_encrypt, "--re-encrypt"),
        (args.online.controller_url.is_some(), "--controller-url"),
    ];
    if let Some((_, flag)) = conflicting.iter().find(|(set, _)| *set) {
        return Err(CliError::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            format!(
                "{flag} takes one certificate; several --cert (or --output-pattern) seal offline only"
            ),
        ));
    }
    if args.cert.is_empty() {
        return Err(CliError::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            "--output-pattern needs at least one --cert",
        ));
    }
    if let Some(pattern) = &args.output_pattern
        && !pattern.contains(PLACEHOLDER)
        && args.cert.len() > 1
    {
        return Err(CliError::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            format!(
                "--output-pattern {pattern:?} has no {PLACEHOLDER}: every cluster would write the same file"
            ),
        ));
    }
    let mut clusters: Vec<(String, SealingCertificate)> = Vec::with_capacity(args.cert.len());
    for spec in &args.cert {
        let (name, source) = cluster_of(spec)?;
        if clusters.iter().any(|(n, _)| *n == name) {
            return Err(CliError::new(
                code::ERROR_CONFLICTING_PARAMETERS,
                format!("two certificates are named {name:?}: name them with NAME=FILE|URL"),
            ));
        }
        clusters.push((name, load_cert(Some(source))?));
    }
    let secrets = read_secrets(args)?;
    let mut stream = Vec::new();
    let mut files = Vec::new();
    for (name, cert) in &clusters {
        let mut sealed = seal_all(&secrets, cert, args)?;
        for object in &mut sealed {
            object.metadata.set_annotation(CLUSTER_ANNOTATION, name);
        }
        let bytes = render(&sealed, args.format)?;
        match &args.output_pattern {
            Some(pattern) => files.push((pattern.replace(PLACEHOLDER, name), bytes)),
            None => stream.extend(bytes),
        }
    }
    if args.output_pattern.is_none() {
        return write_output(&stream, args.output.as_deref());
    }
    // Every cluster sealed before the first file is written: a bad certificate writes nothing.
    for (path, bytes) in files {
        crate::io::write_atomic(Path::new(&path), &bytes)?;
    }
    Ok(())
}

/// A cluster name: letters, digits, `-`, `_`, `.`, not starting with `.`.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !n.starts_with('.')
}

/// `(NAME, FILE|URL)` when `spec` is `NAME=FILE|URL` (and not an existing file named so).
pub(crate) fn explicit_name(spec: &str) -> Option<(&str, &str)> {
    spec.split_once('=')
        .filter(|(name, _)| valid_name(name) && !Path::new(spec).exists())
}

/// `(cluster name, certificate source)` of one `--cert`: `NAME=FILE|URL`, or the stem of the file
/// (or of the URL's last segment).
fn cluster_of(spec: &str) -> CliResult<(String, &str)> {
    if let Some((name, source)) = explicit_name(spec) {
        return Ok((name.to_owned(), source));
    }
    let last = spec
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(spec);
    let last = last.split(['?', '#']).next().unwrap_or(last);
    let stem = Path::new(last)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if !valid_name(stem) {
        return Err(CliError::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            format!("--cert {spec}: no cluster name in it; give one as NAME={spec}"),
        ));
    }
    Ok((stem.to_owned(), spec))
}

#[cfg(test)]
mod tests {
    use super::cluster_of;

    #[test]
    fn cluster_names_from_files_urls_and_prefixes() {
        let name = |s: &str| cluster_of(s).map(|(n, src)| (n, src.to_owned())).ok();
        assert_eq!(
            name("certs/prod.pem"),
            Some(("prod".into(), "certs/prod.pem".into()))
        );
        assert_eq!(
            name("staging.crt"),
            Some(("staging".into(), "staging.crt".into()))
        );
        assert_eq!(
            name("dr=https://example.com/v1/cert.pem"),
            Some(("dr".into(), "https://example.com/v1/cert.pem".into()))
        );
        assert_eq!(
            name("https://example.com/v1/cert.pem?x=1"),
            Some(("cert".into(), "https://example.com/v1/cert.pem?x=1".into()))
        );
        assert_eq!(name("certs/.pem"), None);
        assert_eq!(name("bad name=x.pem"), None);
    }
}
