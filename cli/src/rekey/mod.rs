//! `signet rekey [PATH…]`: walk a repository (honouring `.gitignore`/`.ignore`, skipping `.git`),
//! find every sops file and every file holding SealedSecrets, and bring each up to date in parallel:
//! sops files get the keys of their creation rule (`updatekeys`, or `--rotate` for new data keys),
//! SealedSecrets sealed with another certificate are re-sealed to the current one. `--check` changes
//! nothing and exits [`code::STALE_FILES`] listing what is stale and why.
//!
//! Each file is read, judged and rewritten on its own (atomically, see [`crate::io::AtomicBatch`]:
//! each directory is synced once, at the end): a file that fails is reported and left
//! byte-identical, and the others still run.

mod report;
pub mod sealed;
pub(crate) mod sops_file;

use crate::exit::{CliError, CliResult, code};
use clap::{Args, ValueEnum};
use rayon::prelude::*;
use report::{FileReport, Kind, Report, Status};
use sealed::{KeyRings, SealContext, SealedFile};
use sops_file::SopsContext;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A line per file that needs attention, then a summary.
    Text,
    /// One JSON document: `{"files": [...], "summary": {...}}`.
    Json,
}

/// `signet rekey`.
#[derive(Debug, Args)]
pub struct RekeyCmd {
    /// Files or directories to walk (default: the working directory).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Change nothing; exit 211 when any file is stale, listing each with the reason.
    #[arg(long, visible_alias = "dry-run")]
    check: bool,
    /// Also give every sops file a new data key (all values re-encrypted), e.g. after a key leaked.
    #[arg(long)]
    rotate: bool,
    /// Report format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: OutputFormat,
    /// Files processed at once (default: two per CPU, at most 8 more than the CPUs, as a worker
    /// spends about half its time waiting for its file's fsync).
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// One `.sops.yaml` for every file (default: the nearest one above each file).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// The current sealing certificate (PEM file or http(s) URL). Env: SEALED_SECRETS_CERT. Repeat
    /// as `NAME=FILE|URL` for the SealedSecrets `seal --cert … --cert …` wrote for several clusters
    /// (annotated `signet.dev/cluster: NAME`); a bare one serves every other SealedSecret.
    #[arg(long, value_name = "[NAME=]FILE|URL", env = "SEALED_SECRETS_CERT")]
    cert: Vec<String>,
    /// Fetch the current certificate from a controller (`GET /v1/cert.pem`) instead of --cert.
    #[arg(long, value_name = "URL", conflicts_with = "cert")]
    controller_url: Option<String>,
    /// Private keys that open SealedSecrets (PEM, or a key-backup Secret / v1.List); repeat the flag
    /// or separate with commas. Needed to tell which certificate sealed a SealedSecret.
    #[arg(
        long = "recovery-private-key",
        value_name = "KEY",
        value_delimiter = ','
    )]
    recovery_private_key: Vec<PathBuf>,
}

/// Runs `signet rekey`.
pub fn rekey(cmd: RekeyCmd) -> CliResult {
    let seal = seal_context(&cmd)?;
    let sops = SopsContext::new(cmd.check, cmd.rotate, cmd.config.clone());
    let roots = if cmd.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        cmd.paths.clone()
    };
    let walked = walk(&roots)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cmd.jobs.unwrap_or_else(default_jobs))
        .build()
        .map_err(|e| CliError::new(code::ERROR_GENERIC, format!("cannot start workers: {e}")))?;
    let progress = progress_bar(walked.files.len());
    let batch = crate::io::AtomicBatch::default();
    let outcomes: Vec<Option<FileReport>> = pool.install(|| {
        walked
            .files
            .par_iter()
            .map(|path| {
                let outcome = process_file(&sops, &seal, &batch, path);
                progress.inc(1);
                outcome
            })
            .collect()
    });
    progress.finish_and_clear();
    drop(batch);
    let ignored = outcomes.iter().filter(|o| o.is_none()).count();
    let report = Report::new(
        outcomes.into_iter().flatten().collect(),
        ignored,
        walked.leftover_temp_files,
    );
    let printed = match cmd.output {
        OutputFormat::Text => report.text(),
        OutputFormat::Json => report.json(),
    };
    crate::io::write_stdout(printed.as_bytes())?;
    for e in &walked.walk_errors {
        eprintln!("signet: cannot walk {e}");
    }
    let (failed, stale) = (report.count(Status::Failed), report.count(Status::Stale));
    if !walked.walk_errors.is_empty() {
        return Err(CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!(
                "{} part(s) of the tree could not be read (see above); {failed} file(s) failed",
                walked.walk_errors.len()
            ),
        ));
    }
    let unreadable = report.files.iter().filter(|f| f.unreadable).count();
    if unreadable > 0 {
        return Err(CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!(
                "{unreadable} file(s) could not be read (see above); {failed} file(s) failed and were left unchanged"
            ),
        ));
    }
    if failed > 0 {
        return Err(CliError::new(
            code::ERROR_GENERIC,
            format!("{failed} file(s) failed and were left unchanged"),
        ));
    }
    if stale > 0 {
        return Err(CliError::new(
            code::STALE_FILES,
            format!("{stale} file(s) are stale"),
        ));
    }
    Ok(())
}

/// Two workers per CPU: each blocks in its file's fsync for about half of its time. Measured over
/// 1,000 files on 2 CPUs: 4 workers took 0.38–0.47 s, 2 took 0.50–0.64 s, 8 were no faster than 4.
/// At most 8 more than the CPUs: each worker may hold a file of up to the input limit.
fn default_jobs() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    cpus + cpus.min(8)
}

/// Reads and classifies one file, then checks or updates it; `None` when it is no secret file.
fn process_file(
    sops: &SopsContext,
    seal: &SealContext,
    batch: &crate::io::AtomicBatch,
    path: &Path,
) -> Option<FileReport> {
    let name = path.display().to_string();
    // Read as every command reads its input: at most `SIGNET_MAX_INPUT_BYTES`.
    let bytes = match signet_sops::limits::read_file(path) {
        Ok(b) => zeroize::Zeroizing::new(b),
        // A large file that cannot be a secret file (a video, a data dump) is ignored as any
        // other file that is no secret; one that may be is reported, unchanged.
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            let kind = secret_kind_of_large(path)?;
            return Some(FileReport {
                unreadable: true,
                ..FileReport::failed(&name, kind, &format!("cannot read: {e}"))
            });
        }
        Err(e) => {
            // Unreadable: judge the kind by the name, so it is still reported.
            let kind = if is_manifest_name(path) {
                Kind::SealedSecret
            } else {
                Kind::Sops
            };
            return Some(FileReport {
                unreadable: true,
                ..FileReport::failed(&name, kind, &format!("cannot read: {e}"))
            });
        }
    };
    match sops_file::recognise(path, &bytes) {
        Ok(Some(file)) => return Some(sops_file::process(sops, batch, path, &name, file)),
        Ok(None) => {}
        Err(e) => return Some(FileReport::failed(&name, Kind::Sops, &e)),
    }
    if !is_manifest_name(path) || !bytes.windows(12).any(|w| w == b"SealedSecret") {
        return None;
    }
    match SealedFile::parse(&bytes, &name) {
        Ok(Some(file)) => Some(sealed::process(seal, batch, path, &name, &file)),
        Ok(None) => None,
        // A file whose documents do not parse holds no SealedSecret we could use (e.g. a Helm
        // template); one that parses but cannot be split safely is reported.
        Err(e) if e.message.contains("split") => {
            Some(FileReport::failed(&name, Kind::SealedSecret, &e.message))
        }
        Err(_) => None,
    }
}

/// What a file too large to read may be: a sops file when `sops` (the key, the `[sops]` section,
/// `sops_` dotenv keys) stands near its end, where sops writes the metadata; else SealedSecrets
/// when `SealedSecret` stands near its start or end; else (`None`) no secret file.
fn secret_kind_of_large(path: &Path) -> Option<Kind> {
    use std::io::{Read, Seek, SeekFrom};
    const WINDOW: u64 = 64 << 10;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Some(Kind::Sops);
    };
    let mut window = |from: SeekFrom| {
        let mut buf = Vec::new();
        file.seek(from)
            .and_then(|_| (&mut file).take(WINDOW).read_to_end(&mut buf))
            .map(|_| buf)
    };
    let (Ok(head), Ok(tail)) = (
        window(SeekFrom::Start(0)),
        window(SeekFrom::End(-(WINDOW as i64))),
    ) else {
        return Some(Kind::Sops);
    };
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    if has(&tail, b"sops") {
        Some(Kind::Sops)
    } else if has(&head, b"SealedSecret") || has(&tail, b"SealedSecret") {
        Some(Kind::SealedSecret)
    } else {
        None
    }
}

fn is_manifest_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// The certificate and keys for SealedSecrets, or why they will be reported unchecked.
fn seal_context(cmd: &RekeyCmd) -> CliResult<SealContext> {
    let mut default = None;
    let mut named = Vec::new();
    for spec in &cmd.cert {
        match crate::seal::explicit_cluster_name(spec) {
            Some((name, source)) => named.push((name.to_owned(), source.to_owned())),
            None if default.is_none() => default = Some(spec.clone()),
            None => {
                return Err(CliError::new(
                    code::ERROR_CONFLICTING_PARAMETERS,
                    "give one --cert FILE|URL; the others as NAME=FILE|URL for their cluster",
                ));
            }
        }
    }
    if let Some(url) = &cmd.controller_url {
        default = Some(format!("{}/v1/cert.pem", url.trim_end_matches('/')));
    }
    if default.is_none() && named.is_empty() {
        return Ok(SealContext::Unchecked(
            "no current certificate given (--cert or --controller-url)".to_owned(),
        ));
    }
    let cert = match &default {
        Some(source) => Some(crate::seal::load_cert(Some(source))?),
        None => None,
    };
    let mut clusters = Vec::with_capacity(named.len());
    for (name, source) in named {
        let cert = crate::seal::load_cert(Some(&source))?;
        let fp = sealed::fingerprint(cert.public_key_der());
        clusters.push((name, cert, fp));
    }
    if cmd.recovery_private_key.is_empty() {
        return Ok(SealContext::Unchecked(
            "no --recovery-private-key given: which certificate sealed it cannot be told without \
             the private keys"
                .to_owned(),
        ));
    }
    let rings = KeyRings::load(&cmd.recovery_private_key)?;
    Ok(SealContext::Ready {
        cert_fp: cert
            .as_ref()
            .map(|c| sealed::fingerprint(c.public_key_der()))
            .unwrap_or_default(),
        cert,
        clusters,
        rings,
        check: cmd.check,
    })
}

/// The files to look at.
pub(crate) struct Walked {
    /// Every file found, sorted.
    pub(crate) files: Vec<PathBuf>,
    leftover_temp_files: usize,
    /// Entries that could not be read while walking.
    pub(crate) walk_errors: Vec<String>,
}

/// Files under `roots`, honouring `.gitignore` (in or out of a Git checkout), `.ignore` and
/// `.git/info/exclude`, including hidden files (`.env`), never inside `.git`. A file named directly is
/// taken even when ignored.
pub(crate) fn walk(roots: &[PathBuf]) -> CliResult<Walked> {
    let mut files = Vec::new();
    let mut leftover_temp_files = 0;
    let mut walk_errors = Vec::new();
    for root in roots {
        if root.is_file() {
            files.push(clean(root));
            continue;
        }
        if !root.is_dir() {
            return Err(CliError::new(
                code::COULD_NOT_READ_INPUT_FILE,
                format!("{}: no such file or directory", root.display()),
            ));
        }
        let walker = ignore::WalkBuilder::new(root)
            .hidden(false)
            .require_git(false)
            .filter_entry(|e| e.file_name() != ".git")
            .build();
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    // An unreadable directory may hide stale files: report it, go on, fail at the end.
                    walk_errors.push(e.to_string());
                    continue;
                }
            };
            if entry.file_type().is_some_and(|t| t.is_dir())
                && entry.file_name() == crate::staging::DIR_NAME
            {
                // Its own `.gitignore` hides the content from the walk: count it here.
                leftover_temp_files += crate::staging::staged_files(entry.path());
                continue;
            }
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if name.starts_with(".signet-") && name.ends_with(".tmp") {
                leftover_temp_files += 1;
                continue;
            }
            files.push(clean(entry.path()));
        }
    }
    files.sort();
    files.dedup();
    Ok(Walked {
        files,
        leftover_temp_files,
        walk_errors,
    })
}

/// `./a/b` as `a/b`.
fn clean(path: &Path) -> PathBuf {
    path.strip_prefix(".").unwrap_or(path).to_path_buf()
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar(len: usize) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} rekey [{bar:30}] {pos}/{len} files ({eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
