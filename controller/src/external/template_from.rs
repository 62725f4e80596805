//! `spec.target.template.templateFrom[]`, as External Secrets Operator applies it. Templates are in
//! ESO's dialect, over the fetched values; their output goes into the Secret's data, labels or
//! annotations (`target`: `Data`, the default, `Labels` or `Annotations`):
//!
//! * `configMap: {name, items: [{key, templateAs}]}`: each item is the template held under `key`
//!   in that ConfigMap of the ExternalSecret's own namespace (never another's). `templateAs:
//!   Values` (the default) puts the output under `key`; `KeysAndValues` reads it as below.
//! * `literal`: the template itself; its output is read as YAML `key: value` pairs (numbers and
//!   booleans written as strings, see [`signet_seal::template::eso_string_map`]), each merged in.
//!
//! Within an entry the ConfigMap's items come first, then the literal; entries apply in order, a
//! later key replacing an earlier one, and before `template.data` and `template.metadata`, which
//! replace them in turn.
//!
//! A `secret` source is refused with `InvalidSpec` naming the field: it would let whoever may
//! write an ExternalSecret copy any Secret of the namespace through the controller (the reason
//! `getSecretKey` is refused too).

use super::TemplateFrom;
use super::template::Values;
use signet_seal::template::Renderer;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Most `templateFrom` entries.
pub const MAX_TEMPLATE_FROM: usize = 32;
/// Most items of one `templateFrom[].configMap`.
pub const MAX_ITEMS: usize = 64;

/// The data of the ConfigMaps `templateFrom` names, by name (read from the ExternalSecret's
/// namespace before rendering).
pub type ConfigMaps = BTreeMap<String, BTreeMap<String, String>>;

/// The names of the ConfigMaps `entries` read, each once.
pub fn config_map_names(entries: &[TemplateFrom]) -> Vec<&str> {
    let mut names: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.config_map.as_ref().map(|c| c.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// How a ConfigMap item's output is read (`templateAs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Under the item's key.
    Values,
    /// As YAML `key: value` pairs.
    KeysAndValues,
}

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

/// Checks every entry, naming the field: a known `target`, a `literal` or a `configMap` (with a
/// name, at most [`MAX_ITEMS`] items, known `templateAs`), no `secret`.
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
    if let Some(config_map) = &entry.config_map {
        if config_map.name.is_empty() {
            return Err(format!("{at}.configMap.name: empty"));
        }
        if config_map.items.is_empty() || config_map.items.len() > MAX_ITEMS {
            return Err(format!(
                "{at}.configMap.items: {} items (1 to {MAX_ITEMS})",
                config_map.items.len()
            ));
        }
        for (j, item) in config_map.items.iter().enumerate() {
            scope(
                item.template_as.as_deref(),
                &format!("{at}.configMap.items[{j}]"),
            )?;
        }
    }
    if entry.secret.is_some() {
        return Err(format!(
            "{at}.secret: templates from a Secret are not supported by Signet (they would let an ExternalSecret copy a Secret its author may not read; use literal)"
        ));
    }
    if entry.literal.is_none() && entry.config_map.is_none() {
        return Err(format!("{at}: no literal or configMap"));
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

fn scope(name: Option<&str>, at: &str) -> Result<Scope, String> {
    match name {
        None | Some("Values") => Ok(Scope::Values),
        Some("KeysAndValues") => Ok(Scope::KeysAndValues),
        Some(other) => Err(format!(
            "{at}.templateAs: {other:?} (Values or KeysAndValues)"
        )),
    }
}

/// One budget and one output for every `templateFrom` entry.
pub struct Apply<'r> {
    /// The renderer (and its budget) over the fetched values.
    pub renderer: &'r mut Renderer,
    /// Bytes rendered so far (shared with `template.data`).
    pub total: &'r mut usize,
    /// At most this many.
    pub max: usize,
}

impl Apply<'_> {
    /// Renders every entry, its ConfigMap items (from `config_maps`) and then its literal, and
    /// merges the output into `out`.
    pub fn run(
        &mut self,
        entries: &[TemplateFrom],
        config_maps: &ConfigMaps,
        out: &mut Rendered,
    ) -> Result<(), String> {
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("templateFrom[{i}]");
            let target = target(entry, &at)?;
            if let Some(config_map) = &entry.config_map {
                let data = config_maps.get(&config_map.name).ok_or_else(|| {
                    format!(
                        "{at}.configMap: ConfigMap {:?} was not read",
                        config_map.name
                    )
                })?;
                for (j, item) in config_map.items.iter().enumerate() {
                    let here = format!("{at}.configMap.items[{j}]");
                    let template = data.get(&item.key).ok_or_else(|| {
                        format!(
                            "{here}: ConfigMap {:?} has no key {:?}",
                            config_map.name, item.key
                        )
                    })?;
                    let scope = scope(item.template_as.as_deref(), &here)?;
                    let rendered = self.render(template, &here)?;
                    match scope {
                        Scope::Values => {
                            let value = String::from_utf8(rendered.to_vec())
                                .map_err(|_| format!("{here}: the output is not UTF-8"))?;
                            merge(target, [(item.key.clone(), value)], out);
                        }
                        Scope::KeysAndValues => merge(target, pairs(&rendered, &here)?, out),
                    }
                }
            }
            if let Some(literal) = &entry.literal {
                let here = format!("{at}.literal");
                let rendered = self.render(literal, &here)?;
                merge(target, pairs(&rendered, &here)?, out);
            }
        }
        Ok(())
    }

    fn render(&mut self, template: &str, at: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        let rendered = self.renderer.render(at, template).map_err(|e| match e {
            signet_seal::SealError::Template { reason, .. } => format!("{at}: {reason}"),
            other => format!("{at}: {other}"),
        })?;
        *self.total = self.total.saturating_add(rendered.len());
        if *self.total > self.max {
            return Err(format!(
                "{at}: the rendered templates total more than {} bytes, more than a Secret holds",
                self.max
            ));
        }
        Ok(rendered)
    }
}

/// The output of a `KeysAndValues` template as pairs; the error is about its shape, never its
/// text.
fn pairs(rendered: &[u8], at: &str) -> Result<BTreeMap<String, String>, String> {
    signet_seal::template::eso_string_map(rendered)
        .map_err(|e| format!("{at}: its output is not YAML key: value pairs: {e}"))
}

fn merge(target: Target, pairs: impl IntoIterator<Item = (String, String)>, out: &mut Rendered) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use signet_seal::template::Dialect;

    /// The rendered data as (key, bytes) pairs, in key order.
    fn data_pairs(out: &Rendered) -> Vec<(&str, &[u8])> {
        out.data
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect()
    }

    fn entries(json: serde_json::Value) -> Vec<TemplateFrom> {
        serde_json::from_value(json).unwrap()
    }

    fn run(json: serde_json::Value) -> Result<Rendered, String> {
        run_with(json, &ConfigMaps::new())
    }

    fn run_with(json: serde_json::Value, config_maps: &ConfigMaps) -> Result<Rendered, String> {
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
        Apply {
            renderer: &mut renderer,
            total: &mut total,
            max: 1 << 20,
        }
        .run(&entries(json), config_maps, &mut out)?;
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
        assert_eq!(
            data_pairs(&out),
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
            &entries(serde_json::json!([{"literal": "a: b"}, {"configMap": {"name": "t", "items": [{"key": "k", "templateAs": "Keys"}]}}])),
            at,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "spec.target.template.templateFrom[1].configMap.items[0].templateAs: \"Keys\" (Values or KeysAndValues)"
        );
        let err = check(
            &entries(serde_json::json!([{"configMap": {"name": "t"}}])),
            at,
        )
        .unwrap_err();
        assert!(err.ends_with("configMap.items: 0 items (1 to 64)"), "{err}");
        assert!(
            check(
                &entries(
                    serde_json::json!([{"configMap": {"name": "t", "items": [{"key": "k"}]}}])
                ),
                at
            )
            .is_ok()
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
                .ends_with("no literal or configMap")
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
    fn config_map_items_render_as_values_or_as_pairs_before_the_literal() {
        let maps = ConfigMaps::from([(
            "tpl".to_owned(),
            BTreeMap::from([
                ("dsn".to_owned(), "postgres://{{ .user }}@db".to_owned()),
                ("pairs".to_owned(), "a: \"{{ .user }}\"\nb: 2".to_owned()),
                ("team".to_owned(), "{{ .user | upper }}".to_owned()),
            ]),
        )]);
        let out = run_with(
            serde_json::json!([
                {"configMap": {"name": "tpl", "items": [{"key": "dsn"}, {"key": "pairs", "templateAs": "KeysAndValues"}]},
                 "literal": "b: from-literal"},
                {"configMap": {"name": "tpl", "items": [{"key": "team"}]}, "target": "Labels"}
            ]),
            &maps,
        )
        .unwrap();
        assert_eq!(
            data_pairs(&out),
            [
                ("a", b"admin".as_slice()),
                ("b", b"from-literal".as_slice()),
                ("dsn", b"postgres://admin@db".as_slice()),
            ]
        );
        assert_eq!(out.labels["team"], "ADMIN");
        let err = run_with(
            serde_json::json!([{"configMap": {"name": "tpl", "items": [{"key": "nope"}]}}]),
            &maps,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "templateFrom[0].configMap.items[0]: ConfigMap \"tpl\" has no key \"nope\""
        );
        assert_eq!(
            config_map_names(&entries(serde_json::json!([
                {"configMap": {"name": "b", "items": [{"key": "k"}]}},
                {"literal": "x: y"},
                {"configMap": {"name": "a", "items": [{"key": "k"}]}},
                {"configMap": {"name": "b", "items": [{"key": "j"}]}}
            ]))),
            ["a", "b"]
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
