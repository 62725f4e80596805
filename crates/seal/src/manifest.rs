//! Reading manifest streams (Secrets, SealedSecrets, key backups) from YAML or JSON, with error
//! messages that never quote the input: parse errors point at a line and column, and anything the
//! parser would quote (a scalar, a snippet of the file) is cut, because the input holds secrets.

use crate::SealError;
use serde_json::Value;

/// Parses a manifest stream into documents: a JSON stream (one or more concatenated values) when it
/// parses as one, otherwise YAML documents (YAML being a superset of JSON, `---`-separated JSON
/// documents work too). Null documents are dropped; `kind: List` documents and top-level arrays are
/// flattened into their items.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, SealError> {
    let trimmed = text.trim_start();
    let as_json = (trimmed.starts_with('{') || trimmed.starts_with('['))
        .then(|| {
            serde_json::Deserializer::from_str(text)
                .into_iter::<Value>()
                .collect::<Result<Vec<_>, _>>()
                .ok()
        })
        .flatten();
    let docs = match as_json {
        Some(docs) => docs,
        None => serde_saphyr::from_multiple_with_options::<Value>(text, yaml_options()).map_err(
            |e| {
                SealError::Manifest(format!(
                    "not valid YAML or JSON: {}",
                    redact(&e.without_snippet().to_string())
                ))
            },
        )?,
    };
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Array(items) => out.extend(items),
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                out.extend(
                    map.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Most events YAML aliases may replay into one manifest stream. serde-saphyr's own default
/// (a million, then 250,000 nodes) lets a 350-byte "billion laughs" cost a second and ~85 MB before
/// it is refused; manifests have no use for more than a few aliases.
pub const MAX_ALIAS_EVENTS: usize = 100_000;

/// The serde-saphyr options for every YAML manifest read from a user or posted to the controller:
/// its default budget (nesting depth 64, 250,000 nodes, 64 MiB of scalars) with alias replay bounded
/// by [`MAX_ALIAS_EVENTS`].
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_ALIAS_EVENTS,
        },
    }
}

/// Reads one SealedSecret as the controller's `/v1/verify` and `/v1/rotate` receive it: JSON, or YAML
/// (kubeseal may send what it was given), within the limits of [`yaml_options`] (serde_json stops at
/// nesting depth 128).
pub fn sealed_secret_from_slice(body: &[u8]) -> Option<signet_api::SealedSecret> {
    serde_json::from_slice(body).ok().or_else(|| {
        let text = std::str::from_utf8(body).ok()?;
        serde_saphyr::from_str_with_options(text, yaml_options()).ok()
    })
}

/// Converts a parsed document to a typed object, checking its `kind`. Errors name the kind and the
/// problem, never a value.
pub fn typed<T: serde::de::DeserializeOwned>(doc: Value, kind: &str) -> Result<T, SealError> {
    let found = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    if found != kind {
        return Err(SealError::Manifest(format!(
            "expected kind {kind}, found {}",
            redact(&format!("{found:?}"))
        )));
    }
    serde_json::from_value(doc)
        .map_err(|e| SealError::Manifest(format!("not a valid {kind}: {}", redact(&e.to_string()))))
}

/// The first line of a parser message with every quoted part (`"…"`, `` `…` ``, `'…'`) replaced by
/// `…`, so no input text survives.
pub fn redact(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(line.len());
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '"' | '`' | '\'') => {
                quote = Some(c);
                out.push('…');
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_quote_the_input() {
        let bad_yaml = "kind: Secret\nstringData:\n  pw: CANARY-1: [x\n";
        let err = parse_documents(bad_yaml).unwrap_err().to_string();
        assert!(!err.contains("CANARY"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let wrong_type =
            parse_documents("kind: Secret\nstringData:\n  port: 5432\n  pw: [CANARY-2]\n").unwrap();
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct S {
            #[serde(rename = "stringData")]
            string_data: std::collections::BTreeMap<String, String>,
        }
        let err = typed::<S>(wrong_type[0].clone(), "Secret")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("5432") && !err.contains("CANARY"), "{err}");
        let err = typed::<S>(serde_json::json!({"kind": "CANARY-3"}), "Secret")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("CANARY"), "{err}");
    }

    /// What `/v1/verify` and `/v1/rotate` are sent, and what `seal`/`unseal` read: a billion-laughs
    /// body and nesting past the parsers' depth are refused, not expanded or recursed into.
    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb = String::from("kind: SealedSecret\na: &a [x,x,x,x,x,x,x,x,x]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .into_iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        assert!(sealed_secret_from_slice(bomb.as_bytes()).is_none());
        let err = parse_documents(&bomb).unwrap_err().to_string();
        assert!(err.contains("alias replay limit"), "{err}");
        let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(sealed_secret_from_slice(deep_json.as_bytes()).is_none());
        assert!(parse_documents(&deep_json).is_err());
        let deep_yaml = format!(
            "kind: Secret\nx: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(sealed_secret_from_slice(deep_yaml.as_bytes()).is_none());
        assert!(parse_documents(&deep_yaml).is_err());
    }

    #[test]
    fn streams_lists_and_mixed_documents() {
        let docs = parse_documents("{\"kind\":\"A\"}{\"kind\":\"B\"}").unwrap();
        assert_eq!(docs.len(), 2);
        let docs = parse_documents(
            "{\"kind\": \"A\"}\n---\nkind: List\nitems: [{kind: B}, {kind: C}]\n---\n",
        )
        .unwrap();
        assert_eq!(
            docs.iter()
                .map(|d| d["kind"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["A", "B", "C"]
        );
    }
}
