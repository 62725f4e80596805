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

/// sops' `stores.ValToString` for non-string scalars.
pub(crate) fn val_to_string(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.clone(),
        Value::Float(f) => {
            // FormatFloat(v, 'G', -1, 64), with ".0" added when it has neither '.' nor 'E'.
            let abs = f.abs();
            let exp = if abs == 0.0 { 0 } else { abs.log10().floor() as i32 };
            let s = if f.is_finite() && (exp < -4 || exp >= 21) {
                let e = format!("{f:E}");
                let (mant, ex) = e.split_once('E').expect("exponent");
                let ex: i32 = ex.parse().expect("exponent");
                format!("{mant}E{}{:02}", if ex < 0 { '-' } else { '+' }, ex.abs())
            } else {
                crate::cipher::format_float(*f)
            };
            if f.is_finite() && !s.contains('.') && !s.contains('E') { format!("{s}.0") } else { s }
        }
        Value::Bool(b) => b.to_string(),
        Value::Time(t) => t.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

impl Store for DotenvStore {
    fn parse(&self, input: &[u8]) -> Result<Tree, Error> {
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
                map.entries.push(MapEntry::Comment(Comment { text: c.to_owned(), origin: None, changed: false }));
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| Error::Parse {
                format: "dotenv",
                location: format!("line {}", n + 1),
                message: "invalid dotenv line (no `=`)".into(),
            })?;
            let scalar = Scalar { value: Value::Str(value.replace("\\n", "\n")), origin: None, changed: false };
            if let Some(meta_key) = key.strip_prefix(FLAT_PREFIX) {
                flat_meta.push((meta_key.to_owned(), scalar));
            } else {
                map.entries.push(MapEntry::Pair(Pair { key: key.to_owned(), value: Node::Scalar(scalar), origin: None }));
            }
        }
        if !flat_meta.is_empty() {
            let meta = unflatten(&flat_meta)?;
            map.entries.push(MapEntry::Pair(Pair { key: SOPS_KEY.to_owned(), value: meta, origin: None }));
        }
        Ok(Tree { documents: vec![Document { root: Node::Map(map), origin: None }], source: None })
    }

    fn emit(&self, tree: &Tree) -> Result<Vec<u8>, Error> {
        let doc = single_document(tree, "dotenv")?;
        let Node::Map(m) = &doc.root else {
            return Err(Error::Emit { format: "dotenv", message: "the document is not a map".into() });
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
                            message: format!("cannot use complex value in dotenv file; offending key {}", p.key),
                        });
                    }
                },
            }
        }
        Ok(out.into_bytes())
    }
}
