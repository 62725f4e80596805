//! `signet check [PATH…]`: a guard for pre-commit hooks and CI that finds secrets about to be
//! committed in the clear, and validates the encrypted ones without printing a value.
//!
//! What it reports (rule ids in [`findings::Rule`]): raw Kubernetes `Secret`s in YAML/JSON (any
//! document shape; Helm templates where they parse once `{{ … }}` is blanked; Kustomize
//! `secretGenerator` literals), files a `.sops.yaml` creation rule covers that are not encrypted,
//! sops files with a plain value where their rule says `ENC[…]` (or without MAC or master key, or
//! that do not open with `--decrypt`), high-entropy strings in YAML/JSON/dotenv/INI, and
//! SealedSecrets of another scope than `--expect-scope` or another key size than `--cert`'s.
//!
//! Paths are walked like `rekey` walks them (`.gitignore` honoured, `.git` skipped, symlinks not
//! followed); files named directly are always checked, which is how pre-commit passes them. Each
//! file is read within the input limit ([`signet_sops::limits`]).
//!
//! Exit codes: 0 nothing found; [`code::CHECK_FINDINGS`] (215) findings; 2 a path or file could not
//! be read (the check is incomplete, whatever else it found); 5 the allow list or a `.sops.yaml` is
//! unreadable.
//!
//! Modules: [`findings`] (what is reported, text and JSON), [`sarif`], [`allow`] (suppressions),
//! [`entropy`], [`locate`] (line numbers), [`manifests`] (YAML/JSON content), [`flat`]
//! (dotenv/INI content), [`sops_files`] (sops validation).

mod allow;
mod entropy;
mod findings;
mod flat;
mod locate;
mod manifests;
mod sarif;
mod sops_files;

use crate::exit::{CliError, CliResult, code};
use crate::rekey::sops_file::{SopsContext, looks_like_sops, recognise};
use clap::{Args, ValueEnum};
use findings::{Finding, Report, Rule};
use rayon::prelude::*;
use signet_sops::Format;
use std::path::{Path, PathBuf};

/// Most files one run looks at; a larger tree is refused rather than walked for ever.
const MAX_FILES: usize = 200_000;

/// Report format of `signet check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckOutput {
    /// `file:line: level[rule]: message` lines and a summary.
    Text,
    /// `{"findings": [...], "summary": {...}, "errors": [...]}`.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning and other CI dashboards).
    Sarif,
}

/// `signet check`.
#[derive(Debug, Args)]
pub struct CheckCmd {
    /// Files or directories (default: the working directory). pre-commit passes the staged files.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Report format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: CheckOutput,
    /// Shannon entropy (bits per character) above which a token is reported.
    #[arg(long, value_name = "BITS", default_value_t = entropy::EntropyConfig::default().threshold)]
    entropy_threshold: f64,
    /// Shortest token measured for entropy.
    #[arg(long, value_name = "CHARS", default_value_t = entropy::EntropyConfig::default().min_length)]
    min_length: usize,
    /// Do not look for high-entropy strings.
    #[arg(long)]
    no_entropy: bool,
    /// Allow list: `PATH-GLOB [RULE]` and `sha256:FINGERPRINT` lines (default: .signet-check-allow
    /// in the working directory, when present). `signet-check: allow` in a comment allows its line
    /// and the next.
    #[arg(long, value_name = "FILE")]
    allow_file: Option<PathBuf>,
    /// Report SealedSecrets sealed with another scope.
    #[arg(long, value_enum, value_name = "SCOPE")]
    expect_scope: Option<crate::seal::ScopeArg>,
    /// The sealing certificate SealedSecrets should be sealed to (PEM file or http(s) URL). Nothing
    /// is decrypted: a sealed value does not name its key, so only the RSA key size can be compared
    /// (a different size proves another key; the same size proves nothing).
    #[arg(long, value_name = "FILE|URL")]
    cert: Option<String>,
    /// Also open every sops file with the keys at hand (as `signet decrypt` finds them) and verify
    /// its MAC; values are never shown.
    #[arg(long)]
    decrypt: bool,
    /// One `.sops.yaml` for every file (default: the nearest one above each file).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// What one file gave.
#[derive(Default)]
struct FileResult {
    findings: Vec<Finding>,
    suppressed: usize,
    checked: bool,
    error: Option<(u8, String)>,
}

/// Everything a run shares.
struct Context {
    sops: SopsContext,
    manifests: manifests::ManifestChecks,
    decrypt: bool,
    allow: allow::AllowList,
    allow_file: PathBuf,
}

/// Runs `signet check`.
pub fn check(cmd: CheckCmd) -> CliResult {
    if !(cmd.entropy_threshold.is_finite() && cmd.entropy_threshold >= 0.0) || cmd.min_length == 0 {
        return Err(CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            "--entropy-threshold must be a non-negative number and --min-length at least 1",
        ));
    }
    let cert_bits = match &cmd.cert {
        Some(source) => Some(crate::seal::load_cert(Some(source))?.key_size_bits()),
        None => None,
    };
    let ctx = Context {
        sops: SopsContext::new(true, false, cmd.config.clone()),
        manifests: manifests::ManifestChecks {
            entropy: (!cmd.no_entropy).then_some(entropy::EntropyConfig {
                threshold: cmd.entropy_threshold,
                min_length: cmd.min_length,
            }),
            expect_scope: cmd.expect_scope.map(Into::into),
            cert_bits,
        },
        decrypt: cmd.decrypt,
        allow: allow::AllowList::load(cmd.allow_file.as_deref())?,
        allow_file: cmd
            .allow_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(allow::DEFAULT_FILE)),
    };
    let roots = if cmd.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        cmd.paths.clone()
    };
    let walked = crate::rekey::walk(&roots)?;
    if walked.files.len() > MAX_FILES {
        return Err(CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!(
                "{} files to check, more than {MAX_FILES}: name the directories to check",
                walked.files.len()
            ),
        ));
    }
    let results: Vec<FileResult> = walked
        .files
        .par_iter()
        .map(|path| check_file(&ctx, path))
        .collect();
    let mut report = Report::default();
    let mut error_code = None;
    for e in &walked.walk_errors {
        report.errors.push(format!("cannot walk {e}"));
        error_code.get_or_insert(code::COULD_NOT_READ_INPUT_FILE);
    }
    for result in results {
        report.files_checked += usize::from(result.checked);
        report.suppressed += result.suppressed;
        report.findings.extend(result.findings);
        if let Some((c, message)) = result.error {
            report.errors.push(message);
            error_code.get_or_insert(c);
        }
    }
    report.sort();
    let printed = match cmd.output {
        CheckOutput::Text => report.text(),
        CheckOutput::Json => report.json(),
        CheckOutput::Sarif => sarif::render(&report),
    };
    crate::io::write_stdout(printed.as_bytes())?;
    if let Some(c) = error_code {
        return Err(CliError::new(
            c,
            format!("{} path(s) could not be checked", report.errors.len()),
        ));
    }
    if !report.findings.is_empty() {
        // The report above says it all.
        return Err(CliError::new(code::CHECK_FINDINGS, String::new()));
    }
    Ok(())
}

/// Checks one file, then drops what the allow list and inline comments allow.
fn check_file(ctx: &Context, path: &Path) -> FileResult {
    let name = path.display().to_string();
    let mut result = FileResult::default();
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if file_name == ".sops.yaml" || same_file(path, &ctx.allow_file) {
        return result;
    }
    let format = Format::from_path(path);
    let covered = match covering_rule(ctx, path) {
        Ok(rule) => rule,
        Err(e) => {
            result.error = Some((code::ERROR_READING_CONFIG, format!("{name}: {e}")));
            return result;
        }
    };
    if format == Format::Binary && covered.is_none() {
        return result;
    }
    let bytes = match signet_sops::limits::read_file(path) {
        Ok(b) => zeroize::Zeroizing::new(b),
        Err(e) => {
            result.error = Some((
                code::COULD_NOT_READ_INPUT_FILE,
                format!("{name}: cannot read: {e}"),
            ));
            return result;
        }
    };
    result.checked = true;
    let text = std::str::from_utf8(&bytes).ok();
    let mut found = Vec::new();
    match recognise(path, &bytes) {
        Ok(Some(file)) => {
            let wanted = covered
                .as_ref()
                .and_then(|(_, rule)| rule.encryption_rule.as_ref());
            let keyring = ctx.decrypt.then(|| ctx.sops.keyring());
            sops_files::check(file, text, &name, wanted, keyring, &mut found);
        }
        Err(e) if looks_like_sops(&bytes) => found.push(Finding::new(
            Rule::SopsInvalid,
            &name,
            None,
            format!("looks like a sops file but cannot be read: {e}"),
        )),
        // A `sops:` key that is no sops metadata (e.g. a chart's values): an ordinary file.
        Ok(None) | Err(_) => {
            let sealed_only = text.is_some_and(manifests::only_sealed_secrets);
            if let Some((config, rule)) = covered.as_ref().filter(|_| !sealed_only) {
                found.push(Finding::new(
                    Rule::SopsUnencryptedFile,
                    &name,
                    None,
                    format!(
                        "creation rule {} of {} covers this file, but it is not encrypted; run \
                         signet encrypt -i on it",
                        rule.index + 1,
                        config
                    ),
                ));
            } else if let Some(text) = text {
                match format {
                    Format::Yaml | Format::Json => {
                        manifests::check(text, &name, &ctx.manifests, &mut found)
                    }
                    Format::Dotenv | Format::Ini => {
                        if let Some(config) = &ctx.manifests.entropy {
                            flat::check(text, format, &name, config, &mut found);
                        }
                    }
                    Format::Binary => {}
                }
            }
        }
    }
    for finding in found {
        let inline = text.is_some_and(|t| allow::inline_allowed(t, finding.line));
        if inline || ctx.allow.allows(&finding) {
            result.suppressed += 1;
        } else {
            result.findings.push(finding);
        }
    }
    result
}

/// Whether `a` and `b` name the same file (the allow list is not checked as content).
fn same_file(a: &Path, b: &Path) -> bool {
    a.file_name() == b.file_name()
        && matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// The `.sops.yaml` creation rule covering `path` (with the config's name), if any. A rule
/// without `path_regex` is the default for `signet encrypt`, not a claim that every file must be
/// encrypted: it covers nothing here.
fn covering_rule(
    ctx: &Context,
    path: &Path,
) -> Result<Option<(String, signet_keys::CreationRule)>, String> {
    let Some(config) = ctx.sops.config_for(path) else {
        return Ok(None);
    };
    let config = match config.as_ref() {
        Ok(c) => c,
        Err(e) => return Err(e.clone()),
    };
    match config.creation_rule_for(path) {
        Ok(Some(rule)) if rule.path_regex.as_deref().is_some_and(|r| !r.is_empty()) => {
            Ok(Some((config.path().display().to_string(), rule)))
        }
        Ok(Some(_)) => Ok(None),
        Ok(None) | Err(signet_keys::Error::NoMatchingRule { .. }) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}
