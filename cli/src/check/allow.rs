//! Suppressing findings: an allow-list file (`--allow-file`, default `.signet-check-allow` in the
//! working directory when present) and inline `signet-check: allow` comments.
//!
//! Allow-list lines (`#` starts a comment):
//!
//! ```text
//! charts/**/values.yaml            # every finding in these files
//! test/fixtures/** high-entropy    # one rule in these files
//! sha256:5e884898da28…             # one high-entropy token, by the fingerprint check printed
//! ```
//!
//! Paths are globs matched against the file name as reported (relative to the working directory
//! when walked from it): `*` and `?` stay within a directory, `**` crosses directories. A value is
//! only ever allowed by its fingerprint, so the list never holds a secret.

use super::findings::{Finding, Rule};
use crate::exit::{CliError, CliResult, code};
use std::path::Path;

/// The marker that allows the findings of its own line and of the line after it.
pub const INLINE_MARKER: &str = "signet-check: allow";

/// The default allow-list file name.
pub const DEFAULT_FILE: &str = ".signet-check-allow";

/// A parsed allow list.
#[derive(Debug, Default)]
pub struct AllowList {
    paths: Vec<(globset::GlobMatcher, Option<Rule>)>,
    fingerprints: Vec<String>,
}

impl AllowList {
    /// Reads `path` (`--allow-file`), or [`DEFAULT_FILE`] when it exists; an empty list otherwise.
    pub fn load(path: Option<&Path>) -> CliResult<AllowList> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (Path::new(DEFAULT_FILE).to_path_buf(), false),
        };
        if !required && !path.is_file() {
            return Ok(AllowList::default());
        }
        let bytes = signet_sops::limits::read_file(&path).map_err(|e| {
            CliError::new(
                code::ERROR_READING_CONFIG,
                format!("{}: cannot read the allow list: {e}", path.display()),
            )
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            CliError::new(
                code::ERROR_READING_CONFIG,
                format!("{}: the allow list is not UTF-8 text", path.display()),
            )
        })?;
        AllowList::parse(&text).map_err(|e| {
            CliError::new(
                code::ERROR_READING_CONFIG,
                format!("{}: {e}", path.display()),
            )
        })
    }

    /// Parses allow-list text; an error names the bad line.
    pub fn parse(text: &str) -> Result<AllowList, String> {
        let mut list = AllowList::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.split_once('#').map_or(line, |(l, _)| l).trim();
            if line.is_empty() {
                continue;
            }
            if let Some(hex) = line.strip_prefix("sha256:") {
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "line {}: a fingerprint is sha256: and 64 hex digits",
                        i + 1
                    ));
                }
                list.fingerprints
                    .push(format!("sha256:{}", hex.to_ascii_lowercase()));
                continue;
            }
            let mut parts = line.split_whitespace();
            let pattern = parts.next().unwrap_or_default();
            let rule = match parts.next() {
                None => None,
                Some(id) => Some(
                    Rule::from_id(id)
                        .ok_or_else(|| format!("line {}: unknown rule {id:?}", i + 1))?,
                ),
            };
            if parts.next().is_some() {
                return Err(format!("line {}: expected `PATH-GLOB [RULE]`", i + 1));
            }
            let glob = globset::GlobBuilder::new(pattern.trim_start_matches("./"))
                .literal_separator(true)
                .build()
                .map_err(|e| format!("line {}: {e}", i + 1))?;
            list.paths.push((glob.compile_matcher(), rule));
        }
        Ok(list)
    }

    /// Whether the list allows `finding`.
    pub fn allows(&self, finding: &Finding) -> bool {
        if let Some(fp) = &finding.fingerprint
            && self.fingerprints.contains(fp)
        {
            return true;
        }
        let file = finding.file.trim_start_matches("./");
        self.paths
            .iter()
            .any(|(glob, rule)| glob.is_match(file) && rule.is_none_or(|r| r == finding.rule))
    }
}

/// Whether `line` (1-based) of `text` is allowed inline: the marker stands on it or on the line
/// before it.
pub fn inline_allowed(text: &str, line: Option<usize>) -> bool {
    let Some(line) = line else {
        return false;
    };
    text.lines()
        .enumerate()
        .skip(line.saturating_sub(2))
        .take(if line >= 2 { 2 } else { 1 })
        .any(|(_, l)| l.contains(INLINE_MARKER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: Rule, file: &str) -> Finding {
        Finding::new(rule, file, Some(1), "m")
    }

    #[test]
    fn globs_rules_and_fingerprints() {
        let fp = format!("sha256:{}", "ab".repeat(32));
        let list = AllowList::parse(&format!(
            "# comment\ncharts/**/values.yaml\ntest/*.env high-entropy # why\n{}\n",
            fp.to_uppercase().replace("SHA256", "sha256")
        ))
        .unwrap();
        assert!(list.allows(&finding(Rule::RawSecret, "charts/a/b/values.yaml")));
        assert!(list.allows(&finding(Rule::HighEntropy, "test/x.env")));
        assert!(!list.allows(&finding(Rule::RawSecret, "test/x.env")));
        // `*` stays within a directory.
        assert!(!list.allows(&finding(Rule::HighEntropy, "test/sub/x.env")));
        let mut by_value = finding(Rule::HighEntropy, "elsewhere.yaml");
        assert!(!list.allows(&by_value));
        by_value.fingerprint = Some(fp);
        assert!(list.allows(&by_value));
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(
            AllowList::parse("a.yaml no-such-rule")
                .unwrap_err()
                .contains("line 1")
        );
        assert!(
            AllowList::parse("\nsha256:12")
                .unwrap_err()
                .contains("line 2")
        );
        assert!(AllowList::parse("a b c").is_err());
    }

    #[test]
    fn inline_marker_covers_its_line_and_the_next() {
        let text = "a: 1\n# signet-check: allow\nb: 2\nc: 3 # signet-check: allow\nd: 4\n";
        assert!(!inline_allowed(text, Some(1)));
        assert!(inline_allowed(text, Some(2)));
        assert!(inline_allowed(text, Some(3)));
        assert!(inline_allowed(text, Some(4)));
        assert!(inline_allowed(text, Some(5)));
        assert!(!inline_allowed(text, None));
        assert!(!inline_allowed(
            "x: 1 # signet-check: allow\ny: 2\nz: 3",
            Some(3)
        ));
    }
}
