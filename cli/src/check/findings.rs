//! What `signet check` reports: one [`Finding`] per problem (a rule, a file, a line, a message that
//! names keys and objects but never a value), and the text and JSON renderings of a run.

use serde::Serialize;

/// The problems `signet check` knows, each with a stable id (used in JSON, SARIF and the allow list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A Kubernetes `Secret` with values in plain text.
    RawSecret,
    /// A Kustomize `secretGenerator` with `literals`.
    SecretGeneratorLiteral,
    /// A file a `.sops.yaml` creation rule covers that is not a sops file.
    SopsUnencryptedFile,
    /// A sops file with a plain value where its rule says `ENC[…]`.
    SopsPlainValue,
    /// A sops file whose metadata is unusable (unreadable, no MAC, no master key).
    SopsInvalid,
    /// A sops file that the keys at hand cannot open, or whose MAC does not hold (`--decrypt`).
    SopsDecrypt,
    /// A high-entropy string (a likely password, token or private key).
    HighEntropy,
    /// A SealedSecret whose scope is not `--expect-scope`.
    SealedScope,
    /// A SealedSecret that cannot have been sealed to `--cert`.
    SealedCert,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: [Rule; 9] = [
        Rule::RawSecret,
        Rule::SecretGeneratorLiteral,
        Rule::SopsUnencryptedFile,
        Rule::SopsPlainValue,
        Rule::SopsInvalid,
        Rule::SopsDecrypt,
        Rule::HighEntropy,
        Rule::SealedScope,
        Rule::SealedCert,
    ];

    /// The rule's id, e.g. `raw-secret`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::RawSecret => "raw-secret",
            Rule::SecretGeneratorLiteral => "secret-generator-literal",
            Rule::SopsUnencryptedFile => "sops-unencrypted-file",
            Rule::SopsPlainValue => "sops-plain-value",
            Rule::SopsInvalid => "sops-invalid",
            Rule::SopsDecrypt => "sops-decrypt",
            Rule::HighEntropy => "high-entropy",
            Rule::SealedScope => "sealed-scope",
            Rule::SealedCert => "sealed-cert",
        }
    }

    /// A rule by its id.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }

    /// One line on what the rule finds.
    pub fn description(self) -> &'static str {
        match self {
            Rule::RawSecret => "Kubernetes Secret with plaintext values",
            Rule::SecretGeneratorLiteral => "Kustomize secretGenerator with literal values",
            Rule::SopsUnencryptedFile => {
                "file covered by a .sops.yaml creation rule is not encrypted"
            }
            Rule::SopsPlainValue => "sops file holds a plain value its rule encrypts",
            Rule::SopsInvalid => "sops file metadata is unusable",
            Rule::SopsDecrypt => "sops file does not open with the keys at hand, or its MAC fails",
            Rule::HighEntropy => "high-entropy string (likely password, token or key)",
            Rule::SealedScope => "SealedSecret scope is not the expected one",
            Rule::SealedCert => "SealedSecret was not sealed to the expected certificate",
        }
    }

    /// SARIF level: `warning` for the heuristic rule, `error` for the others.
    pub fn level(self) -> &'static str {
        match self {
            Rule::HighEntropy => "warning",
            _ => "error",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub rule: Rule,
    /// The file, as walked or given.
    pub file: String,
    /// 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// What is wrong, naming keys and objects, never values.
    pub message: String,
    /// `sha256:…` of a high-entropy token, for the allow list (the token itself is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl Finding {
    /// A finding without a fingerprint.
    pub fn new(rule: Rule, file: &str, line: Option<usize>, message: impl Into<String>) -> Self {
        Finding {
            rule,
            file: file.to_owned(),
            line,
            message: message.into(),
            fingerprint: None,
        }
    }
}

/// Everything a run found, sorted by file and line.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The findings that were not allowed.
    pub findings: Vec<Finding>,
    /// Files read and checked.
    pub files_checked: usize,
    /// Findings suppressed by the allow list or `signet-check: allow` comments.
    pub suppressed: usize,
    /// Files that could not be read or walked (the run is then incomplete).
    pub errors: Vec<String>,
}

impl Report {
    /// Sorts the findings for stable output.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            (&a.file, a.line, a.rule, &a.message).cmp(&(&b.file, b.line, b.rule, &b.message))
        });
    }

    /// `file:line: level[rule]: message` lines, then a summary line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let at = match f.line {
                Some(line) => format!("{}:{line}", f.file),
                None => f.file.clone(),
            };
            out.push_str(&format!(
                "{at}: {}[{}]: {}\n",
                f.rule.level(),
                f.rule.id(),
                f.message
            ));
        }
        for e in &self.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        out.push_str(&format!(
            "{} finding(s) in {} file(s) checked",
            self.findings.len(),
            self.files_checked
        ));
        if self.suppressed > 0 {
            out.push_str(&format!(", {} allowed", self.suppressed));
        }
        if !self.errors.is_empty() {
            out.push_str(&format!(", {} unreadable", self.errors.len()));
        }
        out.push('\n');
        out
    }

    /// `{"findings": [...], "summary": {...}, "errors": [...]}`.
    pub fn json(&self) -> String {
        let value = serde_json::json!({
            "findings": self.findings.iter().map(|f| {
                let mut v = serde_json::to_value(f).unwrap_or_default();
                v["level"] = f.rule.level().into();
                v
            }).collect::<Vec<_>>(),
            "summary": {
                "findings": self.findings.len(),
                "files_checked": self.files_checked,
                "suppressed": self.suppressed,
                "errors": self.errors.len(),
            },
            "errors": self.errors,
        });
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_round_trip_and_match_serde() {
        for rule in Rule::ALL {
            assert_eq!(Rule::from_id(rule.id()), Some(rule));
            assert_eq!(
                serde_json::to_value(rule).unwrap(),
                serde_json::Value::from(rule.id())
            );
        }
        assert_eq!(Rule::from_id("nope"), None);
    }

    #[test]
    fn text_and_json_name_rule_file_and_line() {
        let mut report = Report {
            findings: vec![
                Finding::new(Rule::HighEntropy, "b.env", Some(3), "API_KEY"),
                Finding::new(Rule::RawSecret, "a.yaml", Some(1), "Secret x"),
            ],
            files_checked: 2,
            ..Report::default()
        };
        report.sort();
        let text = report.text();
        assert!(
            text.starts_with(
                "a.yaml:1: error[raw-secret]: Secret x\nb.env:3: warning[high-entropy]"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("2 finding(s) in 2 file(s) checked\n"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["findings"][0]["rule"], "raw-secret");
        assert_eq!(json["findings"][0]["line"], 1);
        assert_eq!(json["findings"][1]["level"], "warning");
        assert_eq!(json["summary"]["findings"], 2);
    }
}
