//! `signet git setup [--global]`: registers the merge driver and the diff textconv with git and
//! routes files to them in `.gitattributes`. Patterns come from the `path_regex` of the
//! `.sops.yaml` creation rules where a regex translates into gitattributes patterns, else from
//! [`DEFAULT_PATTERNS`]. Idempotent: what is already there is left alone.

use crate::exit::{CliError, CliResult, code};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `signet git setup`.
#[derive(Debug, Args)]
pub struct SetupCmd {
    /// Configure git for the user (`git config --global`, the global attributes file with the
    /// default patterns) instead of this repository.
    #[arg(long)]
    global: bool,
}

/// Used when `.sops.yaml` gives nothing to translate (or with `--global`).
pub const DEFAULT_PATTERNS: [&str; 5] = [
    "*.enc.yaml",
    "*.enc.yml",
    "*.enc.json",
    "*.enc.env",
    "*.enc.ini",
];

/// The git config this command writes.
const CONFIG: [(&str, &str); 4] = [
    (
        "merge.signet.name",
        "signet: merge sops files by key, in memory",
    ),
    ("merge.signet.driver", "signet git merge-driver %O %A %B %P"),
    ("diff.signet.textconv", "signet git diff"),
    // A cached textconv would keep plaintext in git notes (refs/notes/textconv/signet).
    ("diff.signet.cachetextconv", "false"),
];

const ATTRIBUTES: &str = "merge=signet diff=signet";

/// `signet git setup`.
pub fn setup(cmd: SetupCmd) -> CliResult {
    let scope = if cmd.global { "--global" } else { "--local" };
    let (attributes_file, patterns) = if cmd.global {
        (global_attributes_file()?, defaults())
    } else {
        let top = git(&["rev-parse", "--show-toplevel"]).ok_or_else(|| {
            CliError::new(
                code::ERROR_GENERIC,
                "not inside a git repository (run it in one, or pass --global)",
            )
        })?;
        let top = PathBuf::from(top);
        (top.join(".gitattributes"), patterns_from_config(&top)?)
    };
    let mut report = Vec::new();
    for (key, value) in CONFIG {
        let current = git(&["config", scope, "--get", key]);
        if current.as_deref() == Some(value) {
            report.push(format!("git config {scope} {key}: unchanged"));
            continue;
        }
        let ok = Command::new("git")
            .args(["config", scope, key, value])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(CliError::new(
                code::ERROR_GENERIC,
                format!("git config {scope} {key} failed"),
            ));
        }
        report.push(format!("git config {scope} {key} = {value}"));
    }
    // Bounded like every other input (a repository's .gitattributes comes with the repository).
    let existing = match signet_sops::limits::read_file(&attributes_file)
        .and_then(|b| String::from_utf8(b).map_err(std::io::Error::other))
    {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(CliError::new(
                code::COULD_NOT_READ_INPUT_FILE,
                format!("{}: {e}", attributes_file.display()),
            ));
        }
    };
    let missing: Vec<&String> = patterns
        .iter()
        .filter(|p| !has_line(&existing, p))
        .collect();
    let shown = attributes_file.display();
    if missing.is_empty() {
        report.push(format!("{shown}: unchanged"));
    } else {
        let mut text = existing.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if !text.contains(HEADER) {
            text.push_str(HEADER);
            text.push('\n');
        }
        for p in &missing {
            text.push_str(&format!("{p} {ATTRIBUTES}\n"));
            report.push(format!("{shown}: added `{p} {ATTRIBUTES}`"));
        }
        if let Some(dir) = attributes_file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                CliError::new(
                    code::COULD_NOT_WRITE_OUTPUT_FILE,
                    format!("{}: {e}", dir.display()),
                )
            })?;
        }
        crate::io::write_atomic(&attributes_file, text.as_bytes())?;
    }
    report.push(String::new());
    crate::io::write_stdout(report.join("\n").as_bytes())
}

const HEADER: &str = "# signet: merge and diff sops files in memory (`signet git setup`)";

fn defaults() -> Vec<String> {
    DEFAULT_PATTERNS.iter().map(|p| (*p).to_owned()).collect()
}

/// Whether `text` already has a line for `pattern` with both attributes.
fn has_line(text: &str, pattern: &str) -> bool {
    text.lines().any(|line| {
        let mut words = line.split_whitespace();
        words.next() == Some(pattern) && {
            let rest: Vec<&str> = words.collect();
            rest.contains(&"merge=signet") && rest.contains(&"diff=signet")
        }
    })
}

/// Patterns from the `.sops.yaml` found from the working directory, relative to the repository
/// root `top`; the defaults when there is none or no rule translates.
fn patterns_from_config(top: &Path) -> CliResult<Vec<String>> {
    let Some(config) = crate::sops::keys::config(None)? else {
        return Ok(defaults());
    };
    let dir = config
        .path()
        .parent()
        .map(signet_keys::config::absolute_clean)
        .unwrap_or_default();
    let top = signet_keys::config::absolute_clean(top);
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let rel = dir
        .strip_prefix(&top)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for regex in config.path_regexes() {
        match regex.filter(|r| !r.is_empty()) {
            None => eprintln!(
                "signet: a creation rule without path_regex matches every file; using the default \
                 patterns for it"
            ),
            Some(r) => match regex_to_globs(r) {
                Some(globs) => {
                    for g in globs {
                        let g = under(&rel, &g);
                        if !out.contains(&g) {
                            out.push(g);
                        }
                    }
                }
                None => eprintln!(
                    "signet: path_regex {r:?} has no gitattributes equivalent; add a line \
                     `PATTERN {ATTRIBUTES}` for its files by hand"
                ),
            },
        }
    }
    if out.is_empty()
        || config
            .path_regexes()
            .iter()
            .any(|r| r.is_none_or(str::is_empty))
    {
        for d in defaults() {
            let d = under(&rel, &d);
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// A pattern relative to the config's directory, made relative to the repository root.
fn under(rel: &str, glob: &str) -> String {
    if rel.is_empty() {
        return glob.to_owned();
    }
    let glob = glob.trim_start_matches('/');
    if glob.contains('/') {
        format!("/{rel}/{glob}")
    } else {
        format!("/{rel}/**/{glob}")
    }
}

/// Stands for `.*` / `.+` (any characters, `/` included) while a pattern is built.
const STAR: char = '\u{1}';
/// Stands for `[^/]*` / `[^/]+` (within one path segment).
const SEGMENT_STAR: char = '\u{2}';

/// Translates a `path_regex` (unanchored, matched against the path relative to `.sops.yaml`) into
/// gitattributes patterns, or `None` when it uses more than literals, `.`, `.*`/`.+`, `[^/]*`,
/// `?` after an atom, groups of literal alternatives and the anchors. The patterns may match a
/// little more or less than the regex: a file routed to the driver that is not a sops file is
/// merged and shown as git would without it.
pub fn regex_to_globs(regex: &str) -> Option<Vec<String>> {
    let (start, body) = match regex.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, regex),
    };
    let (end, body) = match body.strip_suffix('$') {
        Some(rest) if !rest.ends_with('\\') => (true, rest),
        _ => (false, body),
    };
    let chars: Vec<char> = body.chars().collect();
    let mut atoms: Vec<Vec<String>> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let atom: Vec<String> = match c {
            '\\' => {
                let next = *chars.get(i + 1)?;
                i += 2;
                vec![literal(next)?.to_string()]
            }
            '.' => match chars.get(i + 1) {
                Some('*') | Some('+') => {
                    i += 2;
                    vec![STAR.to_string()]
                }
                _ => {
                    i += 1;
                    vec!["?".into()]
                }
            },
            '[' => {
                let class: String = chars[i..].iter().take(5).collect();
                if class == "[^/]*" || class == "[^/]+" {
                    i += 5;
                    vec![SEGMENT_STAR.to_string()]
                } else {
                    return None;
                }
            }
            '(' => {
                let close = chars[i..].iter().position(|&c| c == ')')? + i;
                let mut inner: String = chars[i + 1..close].iter().collect();
                if let Some(rest) = inner.strip_prefix("?:") {
                    inner = rest.to_owned();
                }
                let mut alternatives = Vec::new();
                for alt in inner.split('|') {
                    let mut text = String::new();
                    let mut it = alt.chars();
                    while let Some(c) = it.next() {
                        let lit = if c == '\\' {
                            literal(it.next()?)?
                        } else if c.is_ascii_alphanumeric() || "_-/@=,%~".contains(c) {
                            c
                        } else {
                            return None;
                        };
                        text.push(lit);
                    }
                    alternatives.push(text);
                }
                i = close + 1;
                alternatives
            }
            c if c.is_ascii_alphanumeric() || "_-/@=,%~".contains(c) => {
                i += 1;
                vec![c.to_string()]
            }
            _ => return None,
        };
        let mut atom = atom;
        match chars.get(i) {
            Some('?') => {
                if atom.iter().any(|a| a.contains([STAR, SEGMENT_STAR])) {
                    return None;
                }
                atom.push(String::new());
                i += 1;
            }
            Some('*' | '+' | '{') => return None,
            _ => {}
        }
        atoms.push(atom);
    }
    let mut combos = vec![String::new()];
    for atom in &atoms {
        let mut next = Vec::with_capacity(combos.len() * atom.len());
        for prefix in &combos {
            for alt in atom {
                next.push(format!("{prefix}{alt}"));
            }
        }
        if next.len() > 16 {
            return None;
        }
        combos = next;
    }
    let globs: Vec<String> = combos
        .into_iter()
        .map(|c| render(&c, start, end))
        .collect::<Option<_>>()?;
    Some(globs)
}

/// A regex literal character that is safe in a gitattributes pattern.
fn literal(c: char) -> Option<char> {
    (c.is_ascii_alphanumeric() || "._-/@=,%~+".contains(c)).then_some(c)
}

/// One expanded regex (with [`STAR`]s) as a gitattributes pattern.
fn render(body: &str, start: bool, end: bool) -> Option<String> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == SEGMENT_STAR {
            out.push('*');
            continue;
        }
        if c != STAR {
            out.push(c);
            continue;
        }
        let before_slash = i == 0 || chars[i - 1] == '/';
        let next = chars.get(i + 1).copied();
        match (before_slash, next) {
            (true, None) => out.push_str("**"),
            (true, Some('/')) => out.push_str("**"),
            (true, Some(_)) if chars[i + 1..].contains(&'/') => out.push_str("**"),
            (true, Some(_)) if i > 0 => out.push_str("**/*"),
            _ => out.push('*'),
        }
    }
    if out.is_empty() {
        return None;
    }
    if !end && !out.ends_with('*') {
        out.push('*');
    }
    let has_slash = out.trim_end_matches('/').contains('/');
    if start {
        if !has_slash {
            out.insert(0, '/');
        }
    } else if has_slash {
        if !out.starts_with("**") {
            out.insert_str(0, "**/");
        }
    } else if !out.starts_with('*') {
        out.insert(0, '*');
    }
    Some(out)
}

/// `git ARGS` stdout (trimmed), `None` when git fails.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The user's global attributes file: `core.attributesFile`, else git's default
/// (`$XDG_CONFIG_HOME/git/attributes`, `~/.config/git/attributes`).
fn global_attributes_file() -> CliResult<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if let Some(path) = git(&["config", "--global", "--get", "core.attributesFile"]) {
        return Ok(match (path.strip_prefix("~/"), &home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ => PathBuf::from(path),
        });
    }
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(xdg).join("git/attributes"));
    }
    home.map(|h| h.join(".config/git/attributes"))
        .ok_or_else(|| {
            CliError::new(
                code::ERROR_GENERIC,
                "neither HOME nor XDG_CONFIG_HOME is set: cannot find the global attributes file",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(r: &str) -> Option<Vec<String>> {
        regex_to_globs(r)
    }

    #[test]
    fn common_path_regexes_translate() {
        assert_eq!(globs(r"\.enc\.yaml$").unwrap(), ["*.enc.yaml"]);
        assert_eq!(globs(r".*\.enc\.yaml$").unwrap(), ["*.enc.yaml"]);
        assert_eq!(
            globs(r"\.enc\.ya?ml$").unwrap(),
            ["*.enc.yaml", "*.enc.yml"]
        );
        assert_eq!(globs(r"\.(yaml|json)$").unwrap(), ["*.yaml", "*.json"]);
        assert_eq!(
            globs(r"secrets/.*\.yaml$").unwrap(),
            ["**/secrets/**/*.yaml"]
        );
        assert_eq!(globs(r"^secrets/.*").unwrap(), ["secrets/**"]);
        assert_eq!(globs(r"^prod/[^/]*\.env$").unwrap(), ["prod/*.env"]);
        assert_eq!(globs(r"^secret\.json$").unwrap(), ["/secret.json"]);
        assert_eq!(globs("secret").unwrap(), ["*secret*"]);
    }

    #[test]
    fn regexes_beyond_the_subset_are_refused() {
        for r in [
            r"\d+\.yaml$",
            "a+",
            "[abc].yaml",
            "(a|(b))",
            "x{2}",
            r"a b",
            "(.*)?",
        ] {
            assert_eq!(globs(r), None, "{r}");
        }
    }

    #[test]
    fn existing_lines_are_recognised() {
        let text = "*.enc.yaml diff=signet merge=signet\n*.enc.json merge=signet\n";
        assert!(has_line(text, "*.enc.yaml"));
        assert!(!has_line(text, "*.enc.json"));
        assert!(!has_line(text, "*.enc.ini"));
    }

    #[test]
    fn patterns_below_the_repository_root_are_prefixed() {
        assert_eq!(under("", "*.enc.yaml"), "*.enc.yaml");
        assert_eq!(under("infra", "*.enc.yaml"), "/infra/**/*.enc.yaml");
        assert_eq!(under("infra", "secrets/**"), "/infra/secrets/**");
    }
}
