//! The report as SARIF 2.1.0 (what GitHub code scanning and most CI dashboards read): one run, the
//! tool `signet` with every rule, one result per finding with its file and line.

use super::findings::{Report, Rule};
use serde_json::{Value, json};

/// The SARIF schema URI written into the log.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Renders `report` as a SARIF 2.1.0 log.
pub fn render(report: &Report) -> String {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.id(),
                "shortDescription": {"text": r.description()},
                "defaultConfiguration": {"level": r.level()},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut location = json!({
                "physicalLocation": {
                    "artifactLocation": {"uri": uri(&f.file)},
                }
            });
            // SARIF lines start at 1; a finding about a whole file points at its first line.
            location["physicalLocation"]["region"] = json!({"startLine": f.line.unwrap_or(1)});
            let mut result = json!({
                "ruleId": f.rule.id(),
                "ruleIndex": Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or(0),
                "level": f.rule.level(),
                "message": {"text": f.message},
                "locations": [location],
            });
            if let Some(fp) = &f.fingerprint {
                result["partialFingerprints"] = json!({"signetValue/v1": fp});
            }
            result
        })
        .collect();
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "signet",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&log).unwrap_or_default();
    text.push('\n');
    text
}

/// A relative path as a SARIF URI reference: `/` separators, each segment percent-encoded where
/// needed.
fn uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::findings::{Finding, Report, Rule};
    use super::*;

    #[test]
    fn a_minimal_valid_log() {
        let report = Report {
            findings: vec![
                Finding::new(Rule::SealedScope, "dir/a b.yaml", Some(7), "scope"),
                Finding::new(Rule::SopsUnencryptedFile, "x.env", None, "plain"),
            ],
            files_checked: 2,
            ..Report::default()
        };
        let log: Value = serde_json::from_str(&render(&report)).unwrap();
        assert_eq!(log["version"], "2.1.0");
        assert_eq!(log["$schema"], SCHEMA);
        let run = &log["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "signet");
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), Rule::ALL.len());
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        let first = &results[0];
        assert_eq!(first["ruleId"], "sealed-scope");
        assert_eq!(first["level"], "error");
        assert_eq!(first["message"]["text"], "scope");
        // ruleIndex points at the rule of the same id.
        let index = first["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], "sealed-scope");
        let location = &first["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], "dir/a%20b.yaml");
        assert_eq!(location["region"]["startLine"], 7);
        assert_eq!(
            results[1]["locations"][0]["physicalLocation"]["region"]["startLine"],
            1
        );
    }

    #[test]
    fn an_empty_run_still_has_results() {
        let log: Value = serde_json::from_str(&render(&Report::default())).unwrap();
        assert_eq!(log["runs"][0]["results"], json!([]));
    }
}
