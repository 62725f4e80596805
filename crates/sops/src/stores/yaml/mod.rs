//! The YAML store: sops' YAML format read and written with byte fidelity.
//!
//! [`YamlStore::parse`] builds the [`Tree`] sops would see from a (possibly multi-document) YAML
//! file — yaml.v3's typing of plain scalars, comments placed in the maps and sequences sops puts
//! them in, aliases expanded — and remembers every node's byte span in the source.
//! [`YamlStore::emit`] writes a tree back: when it still carries its source, the output is that
//! source with only the changed scalars and comments re-rendered at their spans (in their original
//! quoting style) and entries added or removed by whole lines, so encrypting and then decrypting a
//! file gives back its bytes. A tree without a source is rendered the way sops (yaml.v3) writes
//! YAML: `indent` spaces per level, sequences indented under their key, multi-line strings as
//! literal blocks, documents separated by `---`.
//!
//! Encrypting and then decrypting gives back the original bytes for every file of the shared
//! corpus. Two layout facts need help because encryption loses them; the store records them in the
//! encrypted file in ways sops reads as ordinary YAML:
//! - a plain scalar inside a flow collection (`[a, b]`) cannot stay plain once it is an `ENC[…]`
//!   value (commas, brackets); it is written `!!str 'ENC[…]'` and the tag says "was plain";
//! - a plain scalar wrapped over several lines exactly as libyaml wraps at width 80 (kubebuilder
//!   CRDs) is written as a `>N-` folded block; decrypted under such a header it is wrapped again.
//!   Blanks after such a scalar are dropped (after the block's content they would be content);
//!   when a comment or blank line below it is indented as far as the block's content would be,
//!   the value is written as a plain `ENC[…]` instead (and comes back on one line).
//!
//! Known divergences (asserted in `tests/yaml_roundtrip.rs` unless noted):
//! - an alias (`*a`, `<<: *a`) whose value changes is written out in full: sops keeps a separate
//!   value (and ciphertext, AAD) per path, so after decryption the alias stays expanded;
//! - values sops normalises come back normalised (`0x1F` -> `31`, `1e3` -> `1000.0`, timestamps
//!   to RFC 3339, integers beyond 64 bits become floats as in yaml.v3);
//! - a folded (`>`) block holding several lines, or a quoted scalar folded over several lines,
//!   comes back as a literal block or a one-line quoted scalar;
//! - what yaml.v3 refuses about document markers is refused too (asserted in `parse.rs`): a `...`
//!   end marker before any document, and a document after `...` without `---`;
//! - a keep-chomped block (`|+`) whose trailing empty lines end a nested block can gain a line
//!   break;
//! - comments inside a flow collection that has to be rewritten (an entry added or removed) are
//!   dropped (not tested); a plain `...` value is written plain where libyaml would quote it
//!   (asserted in `tests/yaml_engine_interop.rs`).
//!
//! [`onepass`] encrypts and decrypts files of the common shape (block collections of one-line
//! scalars, comments, the `sops` section last) in one streaming pass without a tree, with the same
//! output, and declines everything else to this store.
//!
//! Comments are placed in the map or sequence sops (yaml.v3) attaches them to, because the engine
//! encrypts each comment with that container's path as AAD: a head comment goes with the token
//! below it, a same-line comment before the entry it ends (or into the flow collection it
//! follows), a free-standing comment into the deepest open block. sops writes a comment that stood
//! in a list as a `- ENC[…,type:comment]` item; such items are read back as comments.

pub mod onepass;
mod parse;
mod render;
mod resolve;
mod splice;

use crate::Error;
use crate::store::Store;
use crate::tree::{Node, Tree};

/// Reads and writes sops YAML files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YamlStore {
    /// Spaces per indentation level for freshly rendered YAML (sops writes 4; `.sops.yaml`
    /// `stores.yaml.indent` changes it).
    pub indent: usize,
}

impl Default for YamlStore {
    fn default() -> Self {
        YamlStore { indent: 4 }
    }
}

impl YamlStore {
    /// A store writing `indent` spaces per level (at least 1).
    pub fn new(indent: usize) -> Self {
        YamlStore {
            indent: indent.max(1),
        }
    }

    /// Renders `tree` fresh, ignoring any source it carries.
    pub fn render_fresh(&self, tree: &Tree) -> String {
        let fresh = render::Fresh {
            step: self.indent.max(1),
        };
        let mut out = String::new();
        for (i, d) in tree.documents.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            fresh.document(&mut out, &d.root);
        }
        out
    }
}

/// YAML reads a lone CR as a line break, like LF; the store's line and column bookkeeping (and
/// where it writes the `sops` key) counts LF only, so lone CRs become LF first. YAML normalises line
/// breaks in content to LF anyway, so the data is unchanged.
fn lone_cr_to_lf(text: &mut String) {
    let lone = |b: &[u8], i: usize| b[i] == b'\r' && b.get(i + 1) != Some(&b'\n');
    // Most files have no CR at all: one memchr-speed scan says so.
    if !text.as_bytes().contains(&b'\r') || !(0..text.len()).any(|i| lone(text.as_bytes(), i)) {
        return;
    }
    // In place, so no second copy of a plain input is left behind unwiped.
    let mut bytes = std::mem::take(text).into_bytes();
    for i in 0..bytes.len() {
        if lone(&bytes, i) {
            bytes[i] = b'\n';
        }
    }
    *text = String::from_utf8(bytes).expect("an ASCII byte replaced by an ASCII byte");
}

impl Store for YamlStore {
    fn parse(&self, input: &[u8]) -> Result<Tree, Error> {
        crate::limits::Limits::get().check_input("yaml", input.len())?;
        self.parse_owned(input.to_vec())
    }

    /// Keeps `input` as the tree's source: no copy of the file is made.
    fn parse_owned(&self, input: Vec<u8>) -> Result<Tree, Error> {
        if let Err(e) = crate::limits::Limits::get().check_input("yaml", input.len()) {
            zeroize::Zeroizing::new(input);
            return Err(e);
        }
        let mut text = match String::from_utf8(input) {
            Ok(text) => text,
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let bytes = zeroize::Zeroizing::new(e.into_bytes());
                // The bytes before `offset` are valid UTF-8: no lossy copy of the input is made.
                let valid = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
                let (line, col) = parse::line_col(valid, offset);
                return Err(Error::Parse {
                    format: "yaml",
                    location: format!("{line}:{col}"),
                    message: "input is not valid UTF-8".into(),
                });
            }
        };
        lone_cr_to_lf(&mut text);
        parse::parse(text)
    }

    fn emit(&self, tree: &Tree) -> Result<Vec<u8>, Error> {
        match &tree.source {
            Some(src) => splice::emit(tree, &src.text, self.indent.max(1)).map(String::into_bytes),
            None => Ok(self.render_fresh(tree).into_bytes()),
        }
    }

    /// Streams a tree that carries its source: its text between the edits and the edits
    /// themselves, through a 64 KiB buffer (the output of a large file is not held whole).
    fn emit_to(
        &self,
        tree: &Tree,
        out: &mut dyn std::io::Write,
    ) -> Result<std::io::Result<()>, Error> {
        match &tree.source {
            Some(src) => splice::emit_to(tree, &src.text, self.indent.max(1), out),
            None => {
                let text = zeroize::Zeroizing::new(self.render_fresh(tree));
                Ok(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
            }
        }
    }

    /// The value as the only content of a fresh document (`42\n`, `null\n`, `- a\n- b\n`).
    fn emit_value(&self, node: &Node) -> Result<Vec<u8>, Error> {
        let tree = Tree {
            documents: vec![crate::tree::Document {
                root: node.clone(),
                origin: None,
            }],
            source: None,
        };
        Ok(self.render_fresh(&tree).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_owned_keeps_the_buffer_and_reads_like_parse() {
        let store = YamlStore::default();
        let input = b"a: 1\r# c\rb: [x, y]\n".to_vec();
        let owned = store.parse_owned(input.clone()).unwrap();
        assert_eq!(owned, store.parse(&input).unwrap());
        // Lone CRs became LFs in the kept source, in place.
        let source = owned.source.as_ref().unwrap();
        assert_eq!(source.text, "a: 1\n# c\nb: [x, y]\n");

        let e = store.parse_owned(b"a: 1\nb: \xff\n".to_vec()).unwrap_err();
        assert!(
            matches!(&e, Error::Parse { location, .. } if location == "2:4"),
            "{e:?}"
        );
    }
}
