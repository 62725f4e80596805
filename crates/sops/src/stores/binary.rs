//! The binary store: any bytes, kept as one value under `data`. Encrypted, the file is the JSON
//! envelope `{"data": "ENC[…]", "sops": {…}}` (written by the JSON store); decrypted, it is the raw
//! bytes again.
//!
//! sops encrypts the bytes as `type:str` (its walker turns byte slices into strings); bytes that
//! are not UTF-8 are carried as [`Value::Bytes`], which the codec also encrypts as `type:str`.

use crate::Error;
use crate::metadata::SOPS_KEY;
use crate::store::Store;
use crate::stores::json::{JsonStore, parse_json_object, single_document};
use crate::tree::{Document, Map, MapEntry, Node, Pair, Scalar, Tree, Value};

/// The key the bytes live under.
pub const DATA_KEY: &str = "data";

/// Binary files (`{"data": …}` JSON envelope when encrypted).
#[derive(Debug, Clone, Copy, Default)]
pub struct BinaryStore;

impl BinaryStore {
    /// Wraps plain bytes as `{"data": …}`.
    pub fn parse_plain(&self, input: &[u8]) -> Tree {
        let value = match std::str::from_utf8(input) {
            Ok(s) => Value::Str(s.to_owned()),
            Err(_) => Value::Bytes(input.to_vec()),
        };
        let map = Map {
            entries: vec![MapEntry::Pair(Pair {
                key: DATA_KEY.to_owned(),
                value: Node::Scalar(Scalar {
                    value,
                    origin: None,
                    changed: false,
                }),
                origin: None,
            })],
            origin: None,
        };
        Tree {
            documents: vec![Document {
                root: Node::Map(map),
                origin: None,
            }],
            source: None,
        }
    }

    /// Parses an encrypted envelope (a JSON object).
    pub fn parse_encrypted(&self, input: &[u8]) -> Result<Tree, Error> {
        JsonStore.parse(input)
    }
}

impl Store for BinaryStore {
    /// An input that is a JSON object with a `sops` key is read as an encrypted envelope; anything
    /// else as plain bytes.
    fn parse(&self, input: &[u8]) -> Result<Tree, Error> {
        crate::limits::Limits::get().check_input("binary", input.len())?;
        if let Ok(Node::Map(m)) = parse_json_object(input)
            && m.get(SOPS_KEY).is_some()
        {
            return Ok(Tree {
                documents: vec![Document {
                    root: Node::Map(m),
                    origin: None,
                }],
                source: None,
            });
        }
        Ok(self.parse_plain(input))
    }

    /// With a `sops` key: the JSON envelope. Without: the raw bytes of `data`.
    /// Binary data has no structure to take a value from: refused, as sops refuses it.
    fn emit_value(&self, node: &Node) -> Result<Vec<u8>, Error> {
        Err(Error::Emit {
            format: "binary",
            message: format!(
                "binary files are not structured: {} cannot be written as one",
                crate::stores::dotenv::kind(node)
            ),
        })
    }

    fn emit(&self, tree: &Tree) -> Result<Vec<u8>, Error> {
        let doc = single_document(tree, "binary")?;
        let Node::Map(m) = &doc.root else {
            return Err(Error::Emit {
                format: "binary",
                message: "no binary data found in tree".into(),
            });
        };
        if m.get(SOPS_KEY).is_some() {
            return JsonStore.emit(tree);
        }
        match m.get(DATA_KEY) {
            Some(Node::Scalar(Scalar {
                value: Value::Str(s),
                ..
            })) => Ok(s.as_bytes().to_vec()),
            Some(Node::Scalar(Scalar {
                value: Value::Bytes(b),
                ..
            })) => Ok(b.clone()),
            Some(_) => Err(Error::Emit {
                format: "binary",
                message: "'data' key in tree does not have a string value".into(),
            }),
            None => Err(Error::Emit {
                format: "binary",
                message: "no binary data found in tree".into(),
            }),
        }
    }
}
