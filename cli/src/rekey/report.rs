//! What `rekey` found and did, per file, and how it is printed: a text list of the files that need
//! attention, or one JSON document for CI.

use serde::Serialize;
use std::collections::BTreeMap;

/// What kind of secret file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A sops-encrypted file (any store).
    Sops,
    /// A file holding SealedSecrets.
    SealedSecret,
}

/// Where a file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Already what its rule / the current certificate wants.
    Current,
    /// Needs updating (`--check`).
    Stale,
    /// Was stale and has been rewritten.
    Updated,
    /// Could not be checked or updated; left unchanged.
    Failed,
    /// Could not be judged with what was given (no key, no rule); left unchanged.
    Unchecked,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Stale => "stale",
            Status::Updated => "updated",
            Status::Failed => "failed",
            Status::Unchecked => "unchecked",
        }
    }
}

/// The outcome for one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file, as walked.
    pub path: String,
    /// Its kind.
    pub kind: Kind,
    /// Its status.
    pub status: Status,
    /// Why it is stale / was updated / is unchecked (never secret material).
    pub reasons: Vec<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// It failed because it could not be read (the run then exits as other commands do when
    /// they cannot read their input).
    #[serde(skip)]
    pub unreadable: bool,
}

impl FileReport {
    /// A report without reasons.
    pub fn new(path: &str, kind: Kind, status: Status) -> Self {
        FileReport {
            path: path.to_owned(),
            kind,
            status,
            reasons: Vec::new(),
            error: None,
            unreadable: false,
        }
    }

    /// With these reasons.
    pub fn because(mut self, reasons: Vec<String>) -> Self {
        self.reasons = reasons;
        self
    }

    /// A failure: `error` is shown without the file name (the report carries it).
    pub fn failed(path: &str, kind: Kind, error: &str) -> Self {
        let error = error
            .strip_prefix(path)
            .and_then(|e| e.strip_prefix(": "))
            .unwrap_or(error);
        FileReport {
            error: Some(error.to_owned()),
            ..FileReport::new(path, kind, Status::Failed)
        }
    }
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// One entry per secret file, in path order.
    pub files: Vec<FileReport>,
    /// Counts.
    pub summary: Summary,
}

/// Counts per status, plus files that were neither kind.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Secret files seen.
    pub files: usize,
    /// Per status.
    #[serde(flatten)]
    pub by_status: BTreeMap<&'static str, usize>,
    /// Files that are neither sops files nor SealedSecrets.
    pub ignored: usize,
    /// Temporary files left by an interrupted write (in `.signet-tmp/`, or `.signet-*.tmp`), skipped.
    pub leftover_temp_files: usize,
}

impl Report {
    /// Sorts the files and counts them.
    pub fn new(mut files: Vec<FileReport>, ignored: usize, leftover_temp_files: usize) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut by_status: BTreeMap<&'static str, usize> = [
            Status::Current,
            Status::Stale,
            Status::Updated,
            Status::Failed,
            Status::Unchecked,
        ]
        .into_iter()
        .map(|s| (s.label(), 0))
        .collect();
        for f in &files {
            *by_status.entry(f.status.label()).or_default() += 1;
        }
        Report {
            summary: Summary {
                files: files.len(),
                by_status,
                ignored,
                leftover_temp_files,
            },
            files,
        }
    }

    /// How many files have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.summary
            .by_status
            .get(status.label())
            .copied()
            .unwrap_or(0)
    }

    /// One JSON document.
    pub fn json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned());
        text.push('\n');
        text
    }

    /// One line per file that is not current, then a summary line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in self.files.iter().filter(|f| f.status != Status::Current) {
            let kind = match f.kind {
                Kind::Sops => "sops",
                Kind::SealedSecret => "sealed-secret",
            };
            let detail = match &f.error {
                Some(e) => e.clone(),
                None => f.reasons.join("; "),
            };
            out.push_str(&format!(
                "{:<9} {} ({kind}): {detail}\n",
                f.status.label(),
                f.path
            ));
        }
        let counts: Vec<String> = self
            .summary
            .by_status
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        out.push_str(&format!(
            "{} secret file(s): {}; {} other file(s) ignored\n",
            self.summary.files,
            if counts.is_empty() {
                "none".to_owned()
            } else {
                counts.join(", ")
            },
            self.summary.ignored
        ));
        if self.summary.leftover_temp_files > 0 {
            out.push_str(&format!(
                "{} temporary file(s) left by an interrupted run (in .signet-tmp/) were skipped; \
                 the next write in their directory removes them\n",
                self.summary.leftover_temp_files
            ));
        }
        out
    }
}
