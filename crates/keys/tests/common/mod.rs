//! Helpers shared by the integration tests: vector paths and a tiny reader for the `sops:`
//! block of a YAML vector (enough for these tests; the real store lives in signet-sops).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The shared SOPS vectors.
pub fn vectors() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        here.join("../../../shared/vectors/sops"),
        PathBuf::from("/work/shared/vectors/sops"),
    ];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .expect("shared/vectors/sops not found next to the repository")
}

/// The Flux sops testdata folder.
pub fn flux_sops() -> PathBuf {
    vectors().join("fluxcd-kustomize-controller/internal/controller/testdata/sops")
}

/// `enc` block scalars of the `age:` entries, with their recipients.
pub fn age_entries(yaml: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut recipient = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start().trim_start_matches("- ");
        if let Some(r) = line.strip_prefix("recipient: ") {
            recipient = r.trim().to_owned();
        }
        if line == "enc: |" {
            let indent = lines[i + 1].len() - lines[i + 1].trim_start().len();
            let mut enc = String::new();
            i += 1;
            while i < lines.len() && lines[i].len() > indent && lines[i][..indent].trim().is_empty()
            {
                enc.push_str(&lines[i][indent..]);
                enc.push('\n');
                i += 1;
            }
            // recipient may come after enc (newer sops) — look ahead on the same entry.
            if let Some(r) = lines
                .get(i)
                .and_then(|l| l.trim_start().strip_prefix("recipient: "))
            {
                recipient = r.trim().to_owned();
            }
            out.push((recipient.clone(), enc));
            continue;
        }
        i += 1;
    }
    out
}

/// A top-level scalar of the `sops:` block (`mac`, `lastmodified`).
pub fn sops_field(yaml: &str, name: &str) -> String {
    let prefix = format!("{name}: ");
    let line = yaml
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name}"));
    line.trim().trim_matches('"').to_owned()
}
