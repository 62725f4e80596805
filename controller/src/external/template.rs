//! The target Secret's values from the fetched ones: `spec.target.template.data` entries are
//! templates in which `{{ .name }}` stands for the value fetched as `name` (the Go-template form
//! External Secrets Operator uses; only this expression is supported, anything else is an error
//! naming the key). `mergePolicy: Merge` keeps the fetched values beside the templated ones.

use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Values by Secret key.
pub type Values = BTreeMap<String, Zeroizing<Vec<u8>>>;

/// Renders `templates` over `fetched`. With no templates the fetched values are the result.
pub fn render(
    fetched: Values,
    templates: &BTreeMap<String, String>,
    merge: bool,
) -> Result<Values, String> {
    if templates.is_empty() {
        return Ok(fetched);
    }
    let mut out = Values::new();
    let mut total = 0usize;
    for (key, template) in templates {
        let rendered = render_one(key, template, &fetched)?;
        total = total.saturating_add(rendered.len());
        if total > signet_seal::template::MAX_RENDERED_BYTES {
            return Err(format!(
                "template of {key:?}: the rendered templates total more than {} bytes, more than a Secret holds",
                signet_seal::template::MAX_RENDERED_BYTES
            ));
        }
        out.insert(key.clone(), rendered);
    }
    if merge {
        for (key, value) in fetched {
            out.entry(key).or_insert(value);
        }
    }
    Ok(out)
}

/// Refuses keys a Secret cannot hold (valid: `[-._a-zA-Z0-9]+`), naming the first one.
pub fn check_keys(values: Values) -> Result<Values, String> {
    let bad = values.keys().find(|k| {
        k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    });
    match bad {
        Some(key) => Err(format!(
            "{key:?} is not a valid Secret key (letters, digits, '-', '_', '.')"
        )),
        None => Ok(values),
    }
}

fn render_one(key: &str, template: &str, values: &Values) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut out = Zeroizing::new(Vec::with_capacity(template.len()));
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("template of {key:?}: unclosed {{{{"))?;
        let expression = after[..end].trim();
        let name = expression
            .strip_prefix('.')
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c)))
            .ok_or_else(|| {
                format!(
                    "template of {key:?}: unsupported expression {expression:?} (only {{{{ .name }}}})"
                )
            })?;
        let value = values
            .get(name)
            .ok_or_else(|| format!("template of {key:?}: no fetched value named {name:?}"))?;
        // Checked before growing: a short template repeating a large value asks for gigabytes.
        if out.len().saturating_add(value.len()) > signet_seal::template::MAX_RENDERED_BYTES {
            return Err(format!(
                "template of {key:?}: renders to more than {} bytes, more than a Secret holds",
                signet_seal::template::MAX_RENDERED_BYTES
            ));
        }
        out.extend_from_slice(value);
        rest = &after[end + 2..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
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
            ("{{ .missing }}", "no fetched value named \"missing\""),
            ("{{ printf .user }}", "unsupported expression"),
            ("{{ .user", "unclosed"),
        ] {
            let err = render(
                fetched.clone(),
                &BTreeMap::from([("k".to_owned(), template.to_owned())]),
                false,
            )
            .unwrap_err();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains("\"k\""), "{err}");
            assert!(!err.contains("s3cret-canary"), "{err}");
        }
    }
}
