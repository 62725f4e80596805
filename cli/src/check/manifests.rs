//! YAML and JSON files that are not sops files: raw `Secret`s (any document shape: single, `---`
//! streams, `List`s, nested objects; Helm templates once their `{{ … }}` actions are blanked),
//! Kustomize `secretGenerator` literals, SealedSecrets of the wrong scope or certificate, and
//! high-entropy strings anywhere else.

use super::entropy::{self, EntropyConfig};
use super::findings::{Finding, Rule};
use super::locate::Locator;
use serde_json::Value;
use signet_api::SealedSecret;
use signet_seal::Scope;
use std::ops::Range;

/// What the content checks look for.
#[derive(Debug, Clone, Default)]
pub struct ManifestChecks {
    /// High-entropy detection, unless `--no-entropy`.
    pub entropy: Option<EntropyConfig>,
    /// `--expect-scope`.
    pub expect_scope: Option<Scope>,
    /// RSA size of `--cert`'s key, in bits.
    pub cert_bits: Option<usize>,
}

/// What a Helm action (`{{ … }}`) inside a value becomes, so the value reads as templated.
const PLACEHOLDER: &str = "__signet_template__";

/// Checks one YAML or JSON file (`name` in findings).
pub fn check(text: &str, name: &str, checks: &ManifestChecks, out: &mut Vec<Finding>) {
    let prepared = if text.contains("{{") {
        blank_template_actions(text)
    } else {
        text.to_owned()
    };
    let trimmed = prepared.trim_start();
    let ranges = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        std::iter::once(0..prepared.len()).collect()
    } else {
        crate::rekey::sealed::yaml_document_ranges(&prepared)
    };
    let locator = Locator::new(text);
    // Blanking keeps lines but not byte offsets: a document's range in `text` runs between the
    // same lines.
    let in_prepared = Locator::new(&prepared);
    let to_text = |offset: usize| {
        if offset >= prepared.len() {
            text.len()
        } else {
            locator.line_start(in_prepared.line_of(offset))
        }
    };
    let kustomization = is_kustomization(name);
    for range in ranges {
        // A document that does not parse (an unrenderable template, not YAML at all) holds no
        // object to judge; the others still are.
        let Ok(docs) = signet_seal::manifest::parse_documents(&prepared[range.clone()]) else {
            continue;
        };
        let range_in_text = to_text(range.start)..to_text(range.end);
        let mut walker = Walker {
            name,
            checks,
            locator: &locator,
            cursor: range_in_text.start,
            range: range_in_text,
            out,
        };
        for doc in &docs {
            if kustomization {
                walker.secret_generator(doc);
            }
            walker.value(doc, "");
        }
    }
}

/// Whether `text` holds SealedSecrets and nothing else (already encrypted, though not by sops).
pub fn only_sealed_secrets(text: &str) -> bool {
    signet_seal::manifest::parse_documents(text).is_ok_and(|docs| {
        !docs.is_empty()
            && docs
                .iter()
                .all(|d| d.get("kind").and_then(Value::as_str) == Some("SealedSecret"))
    })
}

/// `kustomization.yaml`, `kustomization.yml` or `Kustomization`.
fn is_kustomization(name: &str) -> bool {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    matches!(
        file,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    )
}

/// Replaces Helm/Go-template actions so the text parses as YAML with the same lines: a line that is
/// only actions becomes empty; an action within a line becomes [`PLACEHOLDER`].
fn blank_template_actions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let mut replaced = String::with_capacity(body.len());
        let mut rest = body;
        let mut only_actions = true;
        while let Some(start) = rest.find("{{") {
            only_actions &= rest[..start].trim().is_empty();
            replaced.push_str(&rest[..start]);
            match rest[start..].find("}}") {
                Some(end) => {
                    replaced.push_str(PLACEHOLDER);
                    rest = &rest[start + end + 2..];
                }
                None => {
                    replaced.push_str(PLACEHOLDER);
                    rest = "";
                }
            }
        }
        only_actions &= rest.trim().is_empty();
        replaced.push_str(rest);
        if body.contains("{{") && only_actions {
            replaced.clear();
        }
        out.push_str(&replaced);
        out.push_str(newline);
    }
    out
}

/// A value filled in elsewhere: a template action, or a whole `${VAR}` (Flux post-build
/// substitution, envsubst).
fn templated(value: &str) -> bool {
    let v = value.trim();
    v.contains(PLACEHOLDER) || (v.starts_with("${") && v.ends_with('}') && !v[2..].contains('{'))
}

struct Walker<'a, 'o> {
    name: &'a str,
    checks: &'a ManifestChecks,
    locator: &'a Locator<'a>,
    /// The document's bytes (in the original text: blanking keeps every line where it was).
    range: Range<usize>,
    /// Where the next object's `kind:` line is looked for.
    cursor: usize,
    out: &'o mut Vec<Finding>,
}

impl Walker<'_, '_> {
    fn line(&self, offset: Option<usize>) -> Option<usize> {
        offset.map(|o| self.locator.line_of(o))
    }

    /// The line of the next object of `kind`, moving the cursor past it.
    fn object_line(&mut self, kind: &str) -> Option<usize> {
        let at = self
            .locator
            .kind_line(self.cursor..self.range.end, kind)
            .or_else(|| self.locator.kind_line(self.range.clone(), kind));
        if let Some(at) = at {
            self.cursor = at + 1;
        }
        // One-line JSON: the document's first line.
        self.line(at.or(Some(self.range.start)))
    }

    fn value(&mut self, value: &Value, path: &str) {
        match value {
            Value::Object(map) => {
                match map.get("kind").and_then(Value::as_str) {
                    Some("Secret") if is_core_secret(map.get("apiVersion")) => {
                        return self.secret(value);
                    }
                    Some("SealedSecret") => return self.sealed(value),
                    _ => {}
                }
                for (key, child) in map {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    self.value(child, &child_path);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(item, &format!("{path}[{i}]"));
                }
            }
            Value::String(s) => self.entropy(s, path),
            _ => {}
        }
    }

    fn entropy(&mut self, value: &str, path: &str) {
        let Some(config) = &self.checks.entropy else {
            return;
        };
        if templated(value) {
            return;
        }
        let Some((token, bits)) = entropy::find(value, config) else {
            return;
        };
        let first_line = token.lines().next().unwrap_or(token);
        let at = self
            .locator
            .find(self.range.clone(), first_line)
            .or_else(|| {
                let key = path.rsplit('.').next().unwrap_or(path);
                self.locator.key_line(self.range.clone(), key)
            });
        let what = if bits.is_infinite() {
            "a private key".to_owned()
        } else {
            format!(
                "a high-entropy string ({bits:.1} bits/char over {} chars)",
                token.chars().count()
            )
        };
        let path = if path.is_empty() { "<document>" } else { path };
        self.out.push(Finding {
            fingerprint: Some(fingerprint(token)),
            ..Finding::new(
                Rule::HighEntropy,
                self.name,
                self.line(at),
                format!("{path} holds {what}"),
            )
        })
    }

    fn secret(&mut self, value: &Value) {
        let line = self.object_line("Secret");
        let mut plain = Vec::new();
        for field in ["data", "stringData"] {
            if let Some(Value::Object(items)) = value.get(field) {
                for (key, v) in items {
                    let filled = match v {
                        Value::String(s) => !s.is_empty() && !templated(s),
                        Value::Null => false,
                        _ => true,
                    };
                    if filled {
                        plain.push(format!("{field}.{key}"));
                    }
                }
            }
        }
        if plain.is_empty() {
            return;
        }
        self.out.push(Finding::new(
            Rule::RawSecret,
            self.name,
            line,
            format!(
                "Secret {} holds {} plaintext value(s) ({}); seal it (signet seal) or encrypt it \
                 (signet encrypt)",
                object_name(value),
                plain.len(),
                plain.join(", ")
            ),
        ));
    }

    fn sealed(&mut self, value: &Value) {
        let line = self.object_line("SealedSecret");
        let Ok(sealed) =
            signet_seal::manifest::typed::<SealedSecret>(value.clone(), "SealedSecret")
        else {
            return;
        };
        let name = object_name(value);
        if let Some(expected) = self.checks.expect_scope {
            let scope = Scope::from_annotations(&sealed.metadata);
            if scope != expected {
                self.out.push(Finding::new(
                    Rule::SealedScope,
                    self.name,
                    line,
                    format!("SealedSecret {name} is sealed {scope}, expected {expected}"),
                ));
            }
        }
        if let Some(bits) = self.checks.cert_bits {
            for (key, v) in &sealed.spec.encrypted_data {
                if templated(v) {
                    continue;
                }
                let found = match rsa_bits(v) {
                    Some(b) if b == bits => continue,
                    Some(b) => format!("a {b}-bit key"),
                    None => "no key at all (not a sealed value)".to_owned(),
                };
                self.out.push(Finding::new(
                    Rule::SealedCert,
                    self.name,
                    line,
                    format!(
                        "SealedSecret {name}: encryptedData.{key} is sealed to {found}; --cert \
                         holds a {bits}-bit key"
                    ),
                ));
            }
        }
    }

    /// Reports `secretGenerator[].literals` of a Kustomization.
    fn secret_generator(&mut self, doc: &Value) {
        let Some(Value::Array(generators)) = doc.get("secretGenerator") else {
            return;
        };
        for generator in generators {
            let gen_name = generator.get("name").and_then(Value::as_str).unwrap_or("?");
            let Some(Value::Array(literals)) = generator.get("literals") else {
                continue;
            };
            for literal in literals.iter().filter_map(Value::as_str) {
                let Some((key, v)) = literal.split_once('=') else {
                    continue;
                };
                if v.is_empty() || templated(v) {
                    continue;
                }
                let at = self.locator.find(self.range.clone(), &format!("{key}="));
                self.out.push(Finding::new(
                    Rule::SecretGeneratorLiteral,
                    self.name,
                    self.line(at),
                    format!(
                        "secretGenerator {gen_name} has literal {key} in plain text; use a sops-encrypted \
                         env file or a SealedSecret"
                    ),
                ));
            }
        }
    }
}

/// A core `v1` Secret (not some other API group's kind named Secret).
fn is_core_secret(api_version: Option<&Value>) -> bool {
    matches!(api_version.and_then(Value::as_str), None | Some("v1"))
}

/// `namespace/name` (or `name`) of an object, for messages.
fn object_name(value: &Value) -> String {
    let meta = value.get("metadata");
    let get = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
    match (get("namespace"), get("name")) {
        (Some(ns), Some(name)) if !ns.is_empty() => format!("{ns}/{name}"),
        (_, Some(name)) => name.to_owned(),
        _ => "(unnamed)".to_owned(),
    }
}

/// The RSA size a sealed value was sealed to, from its envelope's length prefix (the RSA block is
/// exactly the modulus size). `None` when the value is no envelope.
fn rsa_bits(value: &str) -> Option<usize> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let len = usize::from(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]));
    // The RSA block, a GCM tag at least.
    (bytes.len() >= 2 + len + signet_seal::envelope::TAG_LEN && len > 0).then_some(len * 8)
}

/// `sha256:<hex>` of a token: how the allow list names a value without holding it.
pub fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, name: &str, checks: &ManifestChecks) -> Vec<Finding> {
        let mut out = Vec::new();
        check(text, name, checks, &mut out);
        out
    }

    fn entropy() -> ManifestChecks {
        ManifestChecks {
            entropy: Some(EntropyConfig::default()),
            ..ManifestChecks::default()
        }
    }

    #[test]
    fn secrets_in_every_shape() {
        let text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: x, namespace: ns}\n  stringData:\n    password: hunter2\n";
        let found = run(text, "a.yaml", &ManifestChecks::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, Rule::RawSecret);
        assert_eq!(found[0].line, Some(10));
        assert!(found[0].message.contains("ns/x"));
        assert!(found[0].message.contains("stringData.password"));
        assert!(!found[0].message.contains("hunter2"));
        let json =
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"j"},"data":{"k":"eA=="}}"#;
        assert_eq!(
            run(json, "a.json", &ManifestChecks::default())[0].line,
            Some(1)
        );
    }

    #[test]
    fn empty_and_templated_secrets_pass() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: t\ndata: {}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: f\nstringData:\n  password: ${DB_PASSWORD}\n";
        assert_eq!(run(text, "a.yaml", &entropy()), vec![]);
    }

    #[test]
    fn helm_templates_are_read_where_they_parse() {
        let text = "{{- if .Values.enabled }}\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  password: {{ .Values.password | b64enc | quote }}\n{{- end }}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-literal\nstringData:\n  token: literal\n";
        let found = run(text, "templates/secret.yaml", &entropy());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, Some(11));
    }

    #[test]
    fn templates_with_multibyte_text_keep_their_lines() {
        let text = "# Geheimnis für {{ .Release.Name }} – ünïcode\napiVersion: v1\nkind: ConfigMap\ndata:\n  a: {{ .Values.ä }}\n---\n# {{ .Values.x }} ä\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\nstringData:\n  token: wörtlich\n";
        let found = run(text, "templates/s.yaml", &entropy());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, Some(9));
    }

    /// Multibyte characters anywhere around template actions never split a character (the ranges
    /// of the blanked text are mapped back to the original by line).
    #[test]
    fn no_offset_lands_inside_a_character() {
        let base = "{{ if x }}\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .N }}\nstringData:\n  t: 9fQ2xLr7TzK4mWcV1bNs8HjD3gYp\n---\napiVersion: v1\nkind: ConfigMap\ndata:\n  a: {{ .V }}\n  k: Zk3Rq8LmX2vT9wNc4HpB7yJd\n";
        let boundaries: Vec<usize> = (0..=base.len())
            .filter(|i| base.is_char_boundary(*i))
            .collect();
        for at in boundaries {
            let text = format!("{}€ü{}", &base[..at], &base[at..]);
            let _ = run(&text, "templates/t.yaml", &entropy());
        }
    }

    #[test]
    fn kustomize_literals() {
        let text = "secretGenerator:\n- name: app\n  literals:\n  - user=admin\n  - password=\n  envs:\n  - app.env\n";
        let found = run(
            text,
            "overlay/kustomization.yaml",
            &ManifestChecks::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, Rule::SecretGeneratorLiteral);
        assert_eq!(found[0].line, Some(4));
        assert!(run(text, "overlay/other.yaml", &ManifestChecks::default()).is_empty());
    }

    #[test]
    fn sealed_scope_and_size() {
        use base64::Engine;
        let mut envelope = vec![1u8, 0];
        envelope.extend(vec![7u8; 256 + 40]);
        let value = base64::engine::general_purpose::STANDARD.encode(&envelope);
        let text = format!(
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: s\n  namespace: ns\n  annotations:\n    sealedsecrets.bitnami.com/cluster-wide: \"true\"\nspec:\n  encryptedData:\n    k: {value}\n"
        );
        let mut checks = entropy();
        assert!(run(&text, "s.yaml", &checks).is_empty());
        checks.expect_scope = Some(Scope::ClusterWide);
        checks.cert_bits = Some(2048);
        assert!(run(&text, "s.yaml", &checks).is_empty());
        checks.expect_scope = Some(Scope::Strict);
        checks.cert_bits = Some(4096);
        let found = run(&text, "s.yaml", &checks);
        assert_eq!(
            found.iter().map(|f| f.rule).collect::<Vec<_>>(),
            [Rule::SealedScope, Rule::SealedCert]
        );
        assert!(found.iter().all(|f| f.line == Some(2)));
        assert!(
            found[1].message.contains("2048-bit"),
            "{}",
            found[1].message
        );
    }

    #[test]
    fn entropy_names_the_path_and_line() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  env:\n  - name: API_KEY\n    value: 9fQ2xLr7TzK4mWcV1bNs8HjD3gYp\n";
        let found = run(text, "d.yaml", &entropy());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, Some(6));
        assert_eq!(
            found[0].message.split(' ').next(),
            Some("spec.env[0].value")
        );
        assert_eq!(
            found[0].fingerprint.as_deref(),
            Some(fingerprint("9fQ2xLr7TzK4mWcV1bNs8HjD3gYp").as_str())
        );
        assert!(!found[0].message.contains("9fQ2"));
        assert!(run(text, "d.yaml", &ManifestChecks::default()).is_empty());
    }
}
