//! The dotenv store, as sops' `stores/dotenv`: one `KEY=value` per line split at the first `=`
//! (the key kept verbatim, spaces included), `#` lines are comments (text after `#`), empty lines
//! dropped, `\n` in values escaped as the two characters `\n`. The metadata is flattened into
//! `sops_…` keys (`sops_age__list_0__map_enc`, `sops_lastmodified`, `sops_mac`, …) written after
//! the data; on read they become an ordinary `sops` map entry for the engine.

use crate::Error;
use crate::metadata::{FLAT_PREFIX, SOPS_KEY, flatten, unflatten};
use crate::store::Store;
use crate::stores::json::single_document;
use crate::tree::{Comment, Document, Map, MapEntry, Node, Pair, Scalar, Tree, Value};

/// sops-compatible dotenv.
#[derive(Debug, Clone, Copy, Default)]
pub struct DotenvStore;

/// sops' `stores.ValToString`: a scalar as dotenv/INI (and `exec-env`) write it.
pub fn val_to_string(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Str(s) => s.clone(),
        Value::Int(i) => crate::cipher::canonical_int(i),
        Value::Float(f) => {
            // FormatFloat(v, 'G', -1, 64): exponent form when the decimal exponent is < -4 or
            // >= 6 (shortest mode uses precision 6 for that choice); then ".0" is added when the
            // text has neither '.' nor 'E'.
            if !f.is_finite() {
                return crate::cipher::format_float(*f);
            }
            let sci = format!("{f:E}");
            let (mant, exp) = sci.split_once('E').expect("exponent form");
            let exp: i32 = exp.parse().expect("exponent");
            let s = if *f != 0.0 && !(-4..6).contains(&exp) {
                format!("{mant}E{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
            } else {
                crate::cipher::format_float(*f)
            };
            if !s.contains('.') && !s.contains('E') {
                format!("{s}.0")
            } else {
                s
            }
        }
        Value::Bool(b) => b.to_string(),
        Value::Time(t) => t.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

impl Store for DotenvStore {
    fn parse(&self, input: &[u8]) -> Result<Tree, Error> {
        crate::limits::Limits::get().check_input("dotenv", input.len())?;
        let text = std::str::from_utf8(input).map_err(|e| Error::Parse {
            format: "dotenv",
            location: format!("byte {}", e.valid_up_to()),
            message: "input is not UTF-8".into(),
        })?;
        let mut map = Map::default();
        let mut flat_meta = Vec::new();
        for (n, line) in text.split('\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            if let Some(c) = line.strip_prefix('#') {
                map.entries.push(MapEntry::Comment(Comment {
                    text: c.to_owned(),
                    origin: None,
                    changed: false,
                    inline: false,
                }));
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| Error::Parse {
                format: "dotenv",
                location: format!("line {}", n + 1),
                message: "invalid dotenv line (no `=`)".into(),
            })?;
            let scalar = Scalar {
                value: Value::Str(value.replace("\\n", "\n")),
                origin: None,
                changed: false,
            };
            if let Some(meta_key) = key.strip_prefix(FLAT_PREFIX) {
                flat_meta.push((meta_key.to_owned(), scalar));
            } else {
                map.entries.push(MapEntry::Pair(Pair {
                    key: key.to_owned(),
                    value: Node::Scalar(scalar),
                    origin: None,
                }));
            }
        }
        if !flat_meta.is_empty() {
            let meta = unflatten(&flat_meta)?;
            map.entries.push(MapEntry::Pair(Pair {
                key: SOPS_KEY.to_owned(),
                value: meta,
                origin: None,
            }));
        }
        Ok(Tree {
            documents: vec![Document {
                root: Node::Map(map),
                origin: None,
            }],
            source: None,
        })
    }

    /// A dotenv file holds only strings, which `--extract` prints bare: any other value is refused,
    /// as sops refuses it.
    fn emit_value(&self, node: &Node) -> Result<Vec<u8>, Error> {
        Err(Error::Emit {
            format: "dotenv",
            message: format!(
                "only strings can be written as a single value, not {}",
                kind(node)
            ),
        })
    }

    fn emit(&self, tree: &Tree) -> Result<Vec<u8>, Error> {
        let doc = single_document(tree, "dotenv")?;
        let Node::Map(m) = &doc.root else {
            return Err(Error::Emit {
                format: "dotenv",
                message: "the document is not a map".into(),
            });
        };
        let mut out = String::new();
        let line = |key: &str, value: &Value, out: &mut String| {
            out.push_str(key);
            out.push('=');
            match value {
                Value::Str(s) => out.push_str(&s.replace('\n', "\\n")),
                other => out.push_str(&val_to_string(other)),
            }
            out.push('\n');
        };
        for e in &m.entries {
            match e {
                MapEntry::Comment(c) => {
                    out.push('#');
                    out.push_str(&c.text);
                    out.push('\n');
                }
                MapEntry::Pair(p) if p.key == SOPS_KEY => {
                    for (k, s) in flatten(&p.value, FLAT_PREFIX) {
                        line(&k, &s.value, &mut out);
                    }
                }
                MapEntry::Pair(p) => match &p.value {
                    Node::Scalar(s) => line(&p.key, &s.value, &mut out),
                    _ => {
                        return Err(Error::Emit {
                            format: "dotenv",
                            message: format!(
                                "cannot use complex value in dotenv file; offending key {}",
                                p.key
                            ),
                        });
                    }
                },
            }
        }
        Ok(out.into_bytes())
    }
}

/// What a node is, for messages (never its content).
pub(crate) fn kind(node: &Node) -> &'static str {
    match node {
        Node::Map(_) => "a map",
        Node::Seq(_) => "a list",
        Node::Scalar(s) => match s.value {
            Value::Null => "null",
            Value::Str(_) | Value::Bytes(_) => "a string",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a bool",
            Value::Time(_) => "a time",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn val_to_string_like_go() {
        assert_eq!(val_to_string(&Value::Float(3.0)), "3.0");
        assert_eq!(val_to_string(&Value::Float(0.5)), "0.5");
        assert_eq!(val_to_string(&Value::Float(1234567.0)), "1.234567E+06");
        assert_eq!(val_to_string(&Value::Float(0.00001)), "1E-05");
        assert_eq!(val_to_string(&Value::Bool(true)), "true");
        assert_eq!(val_to_string(&Value::Int("42".into())), "42");
    }

    #[test]
    fn parse_emit_round_trip() {
        let input = "#c1\nA=b\nB=x\\ny\nkey with space =v=w\nC=\n";
        let tree = DotenvStore.parse(input.as_bytes()).unwrap();
        assert_eq!(
            String::from_utf8(DotenvStore.emit(&tree).unwrap()).unwrap(),
            input
        );
        assert!(DotenvStore.parse(b"A=1\nnot a pair\n").is_err());
    }
}
