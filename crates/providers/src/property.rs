//! Taking a `property` out of a JSON value, and splitting a JSON object into its fields, the way
//! External Secrets Operator does (it uses gjson paths).
//!
//! A property is first looked up as one top-level key, so `{"tls.crt": …}` answers `tls.crt`.
//! Otherwise it is a path: names separated by `.`, where `\.` is a dot inside a name and `\\` a
//! backslash; a name that is a number indexes an array (`hosts.0`). A string leaf gives its bytes,
//! any other leaf its JSON text (`{"a":1}`, `42`, `true`, `null`).

use std::collections::BTreeMap;

use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::{Error, SecretBytes};

/// The names of a property path: `a\.b.c` is `["a.b", "c"]`.
pub fn split_path(property: &str) -> Vec<String> {
    let mut names = vec![String::new()];
    let mut chars = property.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => names.last_mut().expect("never empty").push(escaped),
                None => names.last_mut().expect("never empty").push('\\'),
            },
            '.' => names.push(String::new()),
            other => names.last_mut().expect("never empty").push(other),
        }
    }
    names
}

/// The part of `value` that `property` names, if it is there.
pub fn select<'v>(value: &'v Value, property: &str) -> Option<&'v Value> {
    if let Some(exact) = value.as_object().and_then(|map| map.get(property)) {
        return Some(exact);
    }
    split_path(property)
        .iter()
        .try_fold(value, |node, name| match node {
            Value::Object(map) => map.get(name.as_str()),
            Value::Array(items) => name.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// The bytes a selected value stands for: a string's own bytes, any other value's JSON text.
pub fn leaf_bytes(value: &Value) -> SecretBytes {
    match value {
        Value::String(text) => Zeroizing::new(text.as_bytes().to_vec()),
        other => Zeroizing::new(serde_json::to_vec(other).unwrap_or_default()),
    }
}

/// A parsed JSON value whose strings are wiped when it is dropped (secrets pass through it).
pub(crate) struct WipedJson(pub(crate) Value);

impl Drop for WipedJson {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// Where a value came from, for error messages.
pub(crate) struct Origin<'a> {
    pub(crate) store: &'a str,
    pub(crate) key: &'a str,
}

impl Origin<'_> {
    fn invalid_property(&self, property: &str, message: impl Into<String>) -> Error {
        Error::InvalidProperty {
            store: self.store.to_owned(),
            key: self.key.to_owned(),
            property: property.to_owned(),
            message: message.into(),
        }
    }

    fn invalid_value(&self, message: impl Into<String>) -> Error {
        Error::InvalidValue {
            store: self.store.to_owned(),
            key: self.key.to_owned(),
            message: message.into(),
        }
    }
}

/// Parses raw bytes as JSON; the error says where the syntax broke, never what was there.
fn parse(bytes: &[u8]) -> Result<WipedJson, String> {
    serde_json::from_slice(bytes).map(WipedJson).map_err(|e| {
        format!(
            "the value is not JSON ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })
}

/// `property` of a raw value (a secret string or parameter).
pub(crate) fn property_of_bytes(
    origin: &Origin<'_>,
    bytes: &[u8],
    property: &str,
) -> Result<SecretBytes, Error> {
    let json = parse(bytes).map_err(|m| origin.invalid_property(property, m))?;
    property_of_json(origin, &json.0, property)
}

/// `property` of a parsed value.
pub(crate) fn property_of_json(
    origin: &Origin<'_>,
    json: &Value,
    property: &str,
) -> Result<SecretBytes, Error> {
    select(json, property)
        .map(leaf_bytes)
        .ok_or_else(|| origin.invalid_property(property, "no such field in the value"))
}

/// The fields of a raw value that is a JSON object (or of its `property`, when given).
pub(crate) fn fields_of_bytes(
    origin: &Origin<'_>,
    bytes: &[u8],
    property: Option<&str>,
) -> Result<BTreeMap<String, SecretBytes>, Error> {
    let json = parse(bytes).map_err(|m| match property {
        Some(p) => origin.invalid_property(p, m),
        None => origin.invalid_value(m),
    })?;
    fields_of_json(origin, &json.0, property)
}

/// The fields of a parsed JSON object (or of its `property`, when given).
pub(crate) fn fields_of_json(
    origin: &Origin<'_>,
    json: &Value,
    property: Option<&str>,
) -> Result<BTreeMap<String, SecretBytes>, Error> {
    let object = match property {
        Some(p) => select(json, p)
            .ok_or_else(|| origin.invalid_property(p, "no such field in the value"))?
            .as_object()
            .ok_or_else(|| origin.invalid_property(p, "the field is not a JSON object"))?,
        None => json
            .as_object()
            .ok_or_else(|| origin.invalid_value("the value is not a JSON object"))?,
    };
    Ok(object
        .iter()
        .map(|(name, value)| (name.clone(), leaf_bytes(value)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(bytes: &SecretBytes) -> &str {
        std::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn paths_split_on_unescaped_dots() {
        assert_eq!(split_path("a.b.c"), ["a", "b", "c"]);
        assert_eq!(split_path(r"a\.b.c"), ["a.b", "c"]);
        assert_eq!(split_path(r"a\\.b"), [r"a\", "b"]);
        assert_eq!(split_path("plain"), ["plain"]);
        assert_eq!(split_path(r"trailing\"), [r"trailing\"]);
    }

    #[test]
    fn select_prefers_an_exact_top_level_key_then_walks_the_path() {
        let value = json!({
            "tls.crt": "exact",
            "tls": {"crt": "nested"},
            "db": {"primary": {"host": "h1", "port": 5432}},
            "dotted.name": {"x": "escaped"},
            "hosts": ["a", "b"],
            "flag": true,
            "nothing": null
        });
        assert_eq!(select(&value, "tls.crt"), Some(&json!("exact")));
        assert_eq!(select(&value, "db.primary.port"), Some(&json!(5432)));
        assert_eq!(select(&value, r"dotted\.name.x"), Some(&json!("escaped")));
        assert_eq!(select(&value, "hosts.1"), Some(&json!("b")));
        assert_eq!(select(&value, "hosts.2"), None);
        assert_eq!(select(&value, "db.primary.user"), None);
        assert_eq!(select(&value, "flag.x"), None);
        assert_eq!(
            text(&leaf_bytes(&value["db"]["primary"])),
            r#"{"host":"h1","port":5432}"#
        );
        assert_eq!(text(&leaf_bytes(&value["flag"])), "true");
        assert_eq!(text(&leaf_bytes(&value["nothing"])), "null");
        assert_eq!(text(&leaf_bytes(&value["hosts"][0])), "a");
    }

    #[test]
    fn numbers_keep_their_text() {
        let value: Value = serde_json::from_str(r#"{"big": 12345678901234567890.50}"#).unwrap();
        assert_eq!(text(&leaf_bytes(&value["big"])), "12345678901234567890.50");
    }

    #[test]
    fn errors_never_carry_the_value() {
        let origin = Origin {
            store: "store",
            key: "k",
        };
        let error = property_of_bytes(&origin, b"not-json-canary", "a").unwrap_err();
        assert_eq!(error.reason(), "InvalidProperty");
        assert!(!format!("{error} {error:?}").contains("canary"), "{error}");
        let error = fields_of_bytes(&origin, br#"["canary"]"#, None).unwrap_err();
        assert_eq!(error.reason(), "InvalidValue");
        assert!(!format!("{error} {error:?}").contains("canary"), "{error}");
        let error = fields_of_bytes(&origin, br#"{"a": "canary"}"#, Some("a")).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("canary"), "{error}");
    }

    #[test]
    fn fields_give_strings_as_is_and_the_rest_as_json() {
        let origin = Origin {
            store: "store",
            key: "k",
        };
        let fields = fields_of_bytes(
            &origin,
            br#"{"user": "app", "port": 5432, "nested": {"a": [1, "x"]}, "inner": {"k": "v"}}"#,
            None,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), text(v))).collect();
        assert_eq!(
            got,
            [
                ("inner", r#"{"k":"v"}"#),
                ("nested", r#"{"a":[1,"x"]}"#),
                ("port", "5432"),
                ("user", "app"),
            ]
        );
        let inner = fields_of_bytes(&origin, br#"{"inner": {"k": "v"}}"#, Some("inner")).unwrap();
        assert_eq!(text(&inner["k"]), "v");
    }
}
