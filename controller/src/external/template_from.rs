//! `spec.target.template.templateFrom[]`, as External Secrets Operator applies it: each `literal` is
//! a template (ESO's dialect, over the fetched values) whose output is read as YAML `key: value`
//! pairs (numbers and booleans written as strings, see [`signet_seal::template::eso_string_map`]),
//! each merged into the Secret's data, labels or annotations (`target`: `Data`, the default,
//! `Labels` or `Annotations`). Entries apply in order, a later key replacing an earlier one, and
//! before `template.data` and `template.metadata`, which replace them in turn.
//!
//! `configMap` and `secret` sources (templates kept in a ConfigMap or Secret of the namespace) are
//! refused with `InvalidSpec` naming the field: Signet does not read them. A Secret source would
//! let whoever may write an ExternalSecret copy any Secret of the namespace through the controller
//! (the reason `getSecretKey` is refused too); a ConfigMap source is not written yet.

use super::TemplateFrom;
use super::template::Values;
use signet_seal::template::Renderer;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Most `templateFrom` entries.
pub const MAX_TEMPLATE_FROM: usize = 32;

/// Where a `templateFrom` entry's pairs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The Secret's data.
    Data,
    /// Its labels.
    Labels,
    /// Its annotations.
    Annotations,
}

/// What the templates make: data, and labels and annotations from `templateFrom`.
#[derive(Debug, Default)]
pub struct Rendered {
    /// The Secret's values.
    pub data: Values,
    /// Labels from `templateFrom` (the template's `metadata.labels` go over them).
    pub labels: BTreeMap<String, String>,
    /// Annotations from `templateFrom`.
    pub annotations: BTreeMap<String, String>,
}

/// Checks every entry, naming the field: a known `target`, a `literal`, no `configMap` or
/// `secret`.
pub fn check(entries: &[TemplateFrom], at: &str) -> Result<(), String> {
    if entries.len() > MAX_TEMPLATE_FROM {
        return Err(format!(
            "{at}: {} entries, at most {MAX_TEMPLATE_FROM}",
            entries.len()
        ));
    }
    for (i, entry) in entries.iter().enumerate() {
        target(entry, &format!("{at}[{i}]"))?;
    }
    Ok(())
}

fn target(entry: &TemplateFrom, at: &str) -> Result<Target, String> {
    if entry.config_map.is_some() {
        return Err(format!(
            "{at}.configMap: templates from a ConfigMap are not supported by Signet (use literal)"
        ));
    }
    if entry.secret.is_some() {
        return Err(format!(
            "{at}.secret: templates from a Secret are not supported by Signet (they would let an ExternalSecret copy a Secret its author may not read; use literal)"
        ));
    }
    if entry.literal.is_none() {
        return Err(format!("{at}: no literal"));
    }
    match entry.target.as_deref() {
        None | Some("Data") => Ok(Target::Data),
        Some("Labels") => Ok(Target::Labels),
        Some("Annotations") => Ok(Target::Annotations),
        Some(other) => Err(format!(
            "{at}.target: {other:?} (Data, Labels or Annotations)"
        )),
    }
}

/// Renders every literal with `renderer` and merges its pairs into `out`; `total` counts the
/// bytes rendered, at most `max`.
pub fn apply(
    renderer: &mut Renderer,
    entries: &[TemplateFrom],
    out: &mut Rendered,
    total: &mut usize,
    max: usize,
) -> Result<(), String> {
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("templateFrom[{i}]");
        let target = target(entry, &at)?;
        let Some(literal) = &entry.literal else {
            continue;
        };
        let rendered = renderer.render(&at, literal).map_err(|e| match e {
            signet_seal::SealError::Template { reason, .. } => format!("{at}.literal: {reason}"),
            other => format!("{at}.literal: {other}"),
        })?;
        *total = total.saturating_add(rendered.len());
        if *total > max {
            return Err(format!(
                "{at}.literal: the rendered templates total more than {max} bytes, more than a Secret holds"
            ));
        }
        // The error is about the shape of the output, never its text.
        let pairs = signet_seal::template::eso_string_map(&rendered)
            .map_err(|e| format!("{at}.literal: its output is not YAML key: value pairs: {e}"))?;
        for (key, value) in pairs {
            match target {
                Target::Data => {
                    out.data.insert(key, Zeroizing::new(value.into_bytes()));
                }
                Target::Labels => {
                    out.labels.insert(key, value);
                }
                Target::Annotations => {
                    out.annotations.insert(key, value);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_seal::template::Dialect;

    fn entries(json: serde_json::Value) -> Vec<TemplateFrom> {
        serde_json::from_value(json).unwrap()
    }

    fn run(json: serde_json::Value) -> Result<Rendered, String> {
        let user = "user".to_owned();
        let pass = "pass".to_owned();
        let mut renderer = Renderer::with_dialect(
            [
                (&user, b"admin".as_slice()),
                (&pass, b"s3cret-canary".as_slice()),
            ],
            Dialect::ExternalSecrets,
        );
        let mut out = Rendered::default();
        let mut total = 0;
        apply(&mut renderer, &entries(json), &mut out, &mut total, 1 << 20)?;
        Ok(out)
    }

    #[test]
    fn literals_merge_key_value_pairs_into_their_target() {
        let out = run(serde_json::json!([
            {"literal": "dsn: postgres://{{ .user }}@db\nport: 5432\n"},
            {"literal": "team: {{ .user }}", "target": "Labels"},
            {"literal": "note: \"made by {{ .user }}\"", "target": "Annotations"},
            {"literal": "{{ range $k, $v := . }}{{ $k }}_copy: {{ $v | quote }}\n{{ end }}"},
            {"literal": "port: \"6543\""}
        ]))
        .unwrap();
        let data: Vec<(&str, &[u8])> = out
            .data
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        assert_eq!(
            data,
            [
                ("dsn", b"postgres://admin@db".as_slice()),
                ("pass_copy", b"s3cret-canary".as_slice()),
                ("port", b"6543".as_slice()),
                ("user_copy", b"admin".as_slice()),
            ]
        );
        assert_eq!(out.labels["team"], "admin");
        assert_eq!(out.annotations["note"], "made by admin");
    }

    #[test]
    fn sources_signet_does_not_read_and_unknown_targets_are_refused_by_name() {
        let at = "spec.target.template.templateFrom";
        let err = check(
            &entries(serde_json::json!([{"literal": "a: b"}, {"configMap": {"name": "t", "items": [{"key": "k"}]}}])),
            at,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "spec.target.template.templateFrom[1].configMap: templates from a ConfigMap are not supported by Signet (use literal)"
        );
        let err = check(&entries(serde_json::json!([{"secret": {"name": "t"}}])), at).unwrap_err();
        assert!(
            err.starts_with("spec.target.template.templateFrom[0].secret: "),
            "{err}"
        );
        let err = check(
            &entries(serde_json::json!([{"literal": "a: b", "target": "data"}])),
            at,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "spec.target.template.templateFrom[0].target: \"data\" (Data, Labels or Annotations)"
        );
        assert!(
            check(&entries(serde_json::json!([{}])), at)
                .unwrap_err()
                .ends_with("no literal")
        );
        assert!(
            check(
                &entries(serde_json::json!([{"literal": "a: b", "target": "Labels"}])),
                at
            )
            .is_ok()
        );
    }

    #[test]
    fn output_that_is_not_pairs_fails_without_showing_it() {
        let err = run(serde_json::json!([{"literal": "{{ .pass }}"}])).unwrap_err();
        assert!(
            err.starts_with("templateFrom[0].literal: its output is not YAML key: value pairs"),
            "{err}"
        );
        assert!(!err.contains("canary"), "{err}");
        let err = run(serde_json::json!([{"literal": "a: [{{ .pass }}]"}])).unwrap_err();
        assert!(err.contains("cannot unmarshal array"), "{err}");
        assert!(!err.contains("canary"), "{err}");
        let err = run(serde_json::json!([{"literal": "{{ .missing }}"}])).unwrap_err();
        assert!(err.starts_with("templateFrom[0].literal: "), "{err}");
    }
}
