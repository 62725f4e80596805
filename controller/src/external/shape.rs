//! From what the provider gave each entry to the values of the Secret, entry by entry in the
//! spec's order (`dataFrom` first, then `data`; a later key replacing an earlier one): a
//! `dataFrom` entry's keys go through its `rewrite` operations, or else its `conversionStrategy`
//! ([`super::keys`]), then its values through its `decodingStrategy` ([`super::decode`]); a `data`
//! entry's value through its `remoteRef.decodingStrategy`, under its `secretKey`. Errors name the
//! entry and the key, never a value.

use super::ExternalSecretSpec;
use super::decode::Decoding;
use super::keys::{self, Conversion, Rewrites};
use super::template::Values;
use zeroize::Zeroizing;

/// What one entry fetched.
pub enum Raw {
    /// `dataFrom[entry].extract` (or `.find`, when `find`): the provider's names and values.
    From {
        /// Index in `spec.dataFrom`.
        entry: usize,
        /// Whether it came from `find`.
        find: bool,
        /// Names and values.
        values: Values,
    },
    /// `data[entry]`: one value.
    Data {
        /// Index in `spec.data`.
        entry: usize,
        /// The value.
        value: Zeroizing<Vec<u8>>,
    },
}

/// The Secret's values from what every entry fetched.
pub fn shape(spec: &ExternalSecretSpec, fetched: Vec<Raw>) -> Result<Values, String> {
    let mut renderer = keys::transform_renderer();
    let mut out = Values::new();
    for raw in fetched {
        match raw {
            Raw::From {
                entry,
                find,
                values,
            } => {
                let at = format!("spec.dataFrom[{entry}]");
                let from = spec
                    .data_from
                    .get(entry)
                    .ok_or_else(|| format!("{at}: gone"))?;
                let (what, conversion, decoding) = match (find, &from.extract, &from.find) {
                    (false, Some(e), _) => {
                        ("extract", &e.conversion_strategy, &e.decoding_strategy)
                    }
                    (true, _, Some(f)) => ("find", &f.conversion_strategy, &f.decoding_strategy),
                    _ => return Err(format!("{at}: gone")),
                };
                let here = format!("{at}.{what}");
                let rewrites = Rewrites::compile(&from.rewrite, &at)?;
                let keyed = if rewrites.is_empty() {
                    let conversion = Conversion::parse(conversion.as_deref(), &here)?;
                    keys::convert_keys(conversion, values, &here)?
                } else {
                    rewrites.apply(values, &mut renderer, &at)?
                };
                let decoded = Decoding::parse(decoding.as_deref(), &here)?
                    .decode_all(keyed)
                    .map_err(|e| format!("{here}: {e}"))?;
                out.extend(decoded);
            }
            Raw::Data { entry, value } => {
                let at = format!("spec.data[{entry}]");
                let item = spec.data.get(entry).ok_or_else(|| format!("{at}: gone"))?;
                let here = format!("{at}.remoteRef");
                let decoding =
                    Decoding::parse(item.remote_ref.decoding_strategy.as_deref(), &here)?;
                let value = decoding
                    .decode(&item.secret_key, value)
                    .map_err(|e| format!("{here}: {e}"))?;
                out.insert(item.secret_key.clone(), value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> ExternalSecretSpec {
        serde_json::from_value(json).unwrap()
    }

    fn values(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.as_bytes().to_vec())))
            .collect()
    }

    fn text(values: &Values) -> Vec<(String, String)> {
        values
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8(v.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn entries_are_rewritten_or_converted_then_decoded_and_data_comes_last() {
        let s = spec(serde_json::json!({
            "dataFrom": [
                {"extract": {"key": "app", "decodingStrategy": "Base64"},
                 "rewrite": [{"regexp": {"source": "^db/", "target": "db-"}}]},
                {"find": {"path": "x", "conversionStrategy": "Unicode"}},
                {"extract": {"key": "plain"}}
            ],
            "data": [{"secretKey": "db-user", "remoteRef": {"key": "k", "decodingStrategy": "Auto"}}]
        }));
        let fetched = vec![
            Raw::From {
                entry: 0,
                find: false,
                values: values(&[("db/user", "YWRtaW4="), ("db/pass", "czNjcmV0")]),
            },
            Raw::From {
                entry: 1,
                find: true,
                values: values(&[("/team/a", "raw")]),
            },
            Raw::From {
                entry: 2,
                find: false,
                values: values(&[("ssm/path", "as-is")]),
            },
            Raw::Data {
                entry: 0,
                value: Zeroizing::new(b"cm9vdA==".to_vec()),
            },
        ];
        let out = shape(&s, fetched).unwrap();
        assert_eq!(
            text(&out),
            [
                ("_U002f_team_U002f_a".to_owned(), "raw".to_owned()),
                ("db-pass".to_owned(), "s3cret".to_owned()),
                ("db-user".to_owned(), "root".to_owned()),
                ("ssm_path".to_owned(), "as-is".to_owned()),
            ]
        );
    }

    #[test]
    fn a_value_that_does_not_decode_names_the_entry_and_key_only() {
        let s = spec(serde_json::json!({
            "dataFrom": [{"find": {"decodingStrategy": "Base64URL"}}],
            "data": [{"secretKey": "k", "remoteRef": {"key": "k", "decodingStrategy": "Base64"}}]
        }));
        let err = shape(
            &s,
            vec![Raw::From {
                entry: 0,
                find: true,
                values: values(&[("n", "s3cret canary")]),
            }],
        )
        .unwrap_err();
        assert_eq!(
            err,
            "spec.dataFrom[0].find: key \"n\" is not valid URL-safe base64 (decodingStrategy)"
        );
        let err = shape(
            &s,
            vec![Raw::Data {
                entry: 0,
                value: Zeroizing::new(b"s3cret canary".to_vec()),
            }],
        )
        .unwrap_err();
        assert_eq!(
            err,
            "spec.data[0].remoteRef: key \"k\" is not valid base64 (decodingStrategy)"
        );
    }
}
