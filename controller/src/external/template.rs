//! The target Secret's values from the fetched ones: `spec.target.template.data` entries are Go
//! templates over the fetched values, in External Secrets Operator's dialect (engine v2): `{{ .name
//! }}`, pipelines, `if`/`range`/`with`, and sprig's functions as Signet renders them for Bitnami
//! templates (`b64enc`, `toJson`/`fromJson`, `upper`, `trim`, `replace`, …; see
//! [`signet_seal::template`]), and ESO's own `toYaml`, `fromYaml`, `filterPEM`, `filterCertChain`,
//! `jwkPublicKeyPem` and `jwkPrivateKeyPem`. A missing value is an error (`missingkey=error`, as in
//! ESO); ESO's other functions (`getSecretKey`, `pkcs12cert`, …) are refused by name.
//! `mergePolicy: Merge` keeps the fetched values beside the templated ones. `templateFrom` entries
//! ([`super::template_from`]) render first, with the same budget.

use super::TemplateFrom;
pub use super::template_from::{ConfigMaps, Rendered};
use signet_seal::template::{Dialect, MAX_RENDERED_BYTES, Renderer};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Values by Secret key.
pub type Values = BTreeMap<String, Zeroizing<Vec<u8>>>;

/// Renders `template_from` (its ConfigMap templates from `config_maps`) and then `templates` over `fetched`, all under one budget of steps and
/// bytes. With neither, the fetched values are the data (as in ESO); `merge` keeps the fetched
/// values under the templated ones.
pub fn render(
    fetched: Values,
    templates: &BTreeMap<String, String>,
    template_from: &[TemplateFrom],
    config_maps: &ConfigMaps,
    merge: bool,
) -> Result<Rendered, String> {
    if templates.is_empty() && template_from.is_empty() {
        return Ok(Rendered {
            data: fetched,
            ..Rendered::default()
        });
    }
    let mut renderer = Renderer::with_dialect(
        fetched.iter().map(|(k, v)| (k, v.as_slice())),
        Dialect::ExternalSecrets,
    );
    let mut out = Rendered::default();
    let mut total = 0usize;
    super::template_from::Apply {
        renderer: &mut renderer,
        total: &mut total,
        max: MAX_RENDERED_BYTES,
    }
    .run(template_from, config_maps, &mut out)?;
    for (key, template) in templates {
        let rendered = renderer.render(key, template).map_err(|e| match e {
            signet_seal::SealError::Template { key, reason } => {
                format!("template of {key:?}: {reason}")
            }
            other => format!("template of {key:?}: {other}"),
        })?;
        total = total.saturating_add(rendered.len());
        if total > MAX_RENDERED_BYTES {
            return Err(format!(
                "template of {key:?}: the rendered templates total more than {MAX_RENDERED_BYTES} bytes, more than a Secret holds"
            ));
        }
        out.data.insert(key.clone(), rendered);
    }
    if merge {
        for (key, value) in fetched {
            out.data.entry(key).or_insert(value);
        }
    }
    Ok(out)
}

/// Refuses keys a Secret cannot hold (valid: `[-._a-zA-Z0-9]+`), naming the first one.
pub fn check_keys(values: Values) -> Result<Values, String> {
    let bad = values
        .keys()
        .find(|k| k.is_empty() || !k.chars().all(super::keys::valid_key_char));
    match bad {
        Some(key) => Err(format!(
            "{key:?} is not a valid Secret key (letters, digits, '-', '_', '.')"
        )),
        None => Ok(values),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.as_bytes().to_vec())))
            .collect()
    }

    /// `render` without `templateFrom`, its data.
    fn render(
        fetched: Values,
        templates: &BTreeMap<String, String>,
        merge: bool,
    ) -> Result<Values, String> {
        super::render(fetched, templates, &[], &ConfigMaps::new(), merge).map(|r| r.data)
    }

    fn text(values: &Values, key: &str) -> String {
        String::from_utf8(values[key].to_vec()).unwrap()
    }

    #[test]
    fn output_larger_than_a_secret_is_an_error_before_it_is_built() {
        let big = "x".repeat(600 * 1024);
        let fetched = values(&[("v", &big)]);
        let bomb = BTreeMap::from([("k".to_owned(), "{{ .v }}".repeat(100_000))]);
        let err = render(fetched.clone(), &bomb, false).unwrap_err();
        assert!(err.contains("more than a Secret holds"), "{err}");
        let twice = BTreeMap::from([
            ("a".to_owned(), "{{ .v }}".to_owned()),
            ("b".to_owned(), "{{ .v }}".to_owned()),
        ]);
        let err = render(fetched, &twice, false).unwrap_err();
        assert!(err.contains("total more than"), "{err}");
    }

    #[test]
    fn templates_insert_values_and_merge_keeps_the_rest() {
        let fetched = values(&[("user", "admin"), ("pass", "s3cret")]);
        let templates = BTreeMap::from([(
            "url".to_owned(),
            "postgres://{{ .user }}:{{.pass}}@db/app".to_owned(),
        )]);
        let replaced = render(fetched.clone(), &templates, false).unwrap();
        assert_eq!(replaced.len(), 1);
        assert_eq!(text(&replaced, "url"), "postgres://admin:s3cret@db/app");
        let merged = render(fetched.clone(), &templates, true).unwrap();
        assert_eq!(merged.len(), 3);
        assert_eq!(text(&merged, "user"), "admin");
        assert_eq!(render(fetched, &BTreeMap::new(), false).unwrap().len(), 2);
    }

    #[test]
    fn secret_keys_are_checked() {
        assert!(check_keys(values(&[("a-b.c_D9", "x")])).is_ok());
        let err = check_keys(values(&[("ok", "x"), ("bad key", "s3cret")])).unwrap_err();
        assert!(err.contains("\"bad key\""), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn bad_templates_name_the_key_and_not_the_values() {
        let fetched = values(&[("user", "s3cret-canary")]);
        for (template, expected) in [
            ("{{ .missing }}", "map has no entry for key \"missing\""),
            (
                "{{ getSecretKey \"other\" \"key\" }}",
                "\"getSecretKey\" is enabled by External Secrets Operator but not supported by Signet",
            ),
            ("{{ env \"HOME\" }}", "\"env\" not defined"),
            ("{{ .user", "unclosed action"),
            (
                "{{ fail .user }}",
                "error calling fail (its message is withheld",
            ),
            (
                "{{ .user | mustFromJson }}",
                "error calling mustFromJson (its message is withheld",
            ),
        ] {
            let err = render(
                fetched.clone(),
                &BTreeMap::from([("k".to_owned(), template.to_owned())]),
                false,
            )
            .unwrap_err();
            assert!(err.contains(expected), "{template}: {err}");
            assert!(err.starts_with("template of \"k\": "), "{err}");
            assert!(!err.contains("s3cret-canary"), "{err}");
        }
    }

    /// The functions ESO users reach for: encodings, JSON, string functions, control flow.
    #[test]
    fn templates_use_go_template_syntax_and_sprig_functions() {
        let fetched = values(&[
            ("user", "admin"),
            ("pass", " s3cret \n"),
            (
                "config",
                r#"{"db":{"host":"db.internal","port":5432},"tags":["a","b"]}"#,
            ),
            ("b64", "aGVsbG8="),
        ]);
        let cases = [
            ("{{ .user | b64enc }}", "YWRtaW4="),
            ("{{ .b64 | b64dec }}", "hello"),
            ("{{ .pass | trim | upper }}", "S3CRET"),
            (
                "{{ (fromJson .config).db.host }}:{{ (fromJson .config).db.port }}",
                "db.internal:5432",
            ),
            (
                "{{ range (fromJson .config).tags }}[{{ . }}]{{ end }}",
                "[a][b]",
            ),
            ("{{ dict \"u\" .user | toJson }}", r#"{"u":"admin"}"#),
            (
                "{{ if eq .user \"admin\" }}root{{ else }}user{{ end }}",
                "root",
            ),
            ("{{ replace \"a\" \"A\" .user }}", "Admin"),
            (
                "{{ printf \"%s:%s\" .user (.pass | trim) }}",
                "admin:s3cret",
            ),
            ("{{ index . \"user\" | quote }}", "\"admin\""),
            ("{{ .user | sha256sum | trunc 8 }}", "8c6976e5"),
        ];
        for (template, expected) in cases {
            let out = render(
                fetched.clone(),
                &BTreeMap::from([("k".to_owned(), template.to_owned())]),
                false,
            )
            .unwrap_or_else(|e| panic!("{template}: {e}"));
            assert_eq!(text(&out, "k"), expected, "{template}");
        }
    }

    /// `templateFrom` renders first: `data` templates replace its keys; with `Replace` the
    /// fetched values are dropped even when `templateFrom` only sets labels, as in ESO.
    #[test]
    fn template_from_renders_first_and_replace_drops_the_fetched_values() {
        let fetched = values(&[("user", "admin")]);
        let from: Vec<TemplateFrom> = serde_json::from_value(serde_json::json!([
            {"literal": "a: from-literal\nb: \"{{ .user }}\""},
            {"literal": "team: x", "target": "Labels"}
        ]))
        .unwrap();
        let templates = BTreeMap::from([("a".to_owned(), "from-data".to_owned())]);
        let out = super::render(
            fetched.clone(),
            &templates,
            &from,
            &ConfigMaps::new(),
            false,
        )
        .unwrap();
        assert_eq!(out.data.len(), 2);
        assert_eq!(text(&out.data, "a"), "from-data");
        assert_eq!(text(&out.data, "b"), "admin");
        assert_eq!(out.labels["team"], "x");
        let labels_only = &from[1..];
        let out = super::render(
            fetched.clone(),
            &BTreeMap::new(),
            labels_only,
            &ConfigMaps::new(),
            false,
        )
        .unwrap();
        assert!(out.data.is_empty());
        let merged = super::render(
            fetched,
            &BTreeMap::new(),
            labels_only,
            &ConfigMaps::new(),
            true,
        )
        .unwrap();
        assert_eq!(text(&merged.data, "user"), "admin");
    }

    /// One budget for all entries: many entries each just under the limit still stop.
    #[test]
    fn all_entries_share_one_budget() {
        let fetched = values(&[("v", "x")]);
        let slow = "{{ range until 5000 }}{{ range until 10 }}{{ end }}{{ end }}";
        let one = BTreeMap::from([("a".to_owned(), slow.to_owned())]);
        assert!(render(fetched.clone(), &one, false).is_ok());
        let many: BTreeMap<String, String> = (0..10)
            .map(|i| (format!("k{i}"), slow.to_owned()))
            .collect();
        let err = render(fetched, &many, false).unwrap_err();
        assert!(err.contains("steps"), "{err}");
    }
}
