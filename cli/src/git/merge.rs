//! The three-way structural merge of decrypted sops trees, and `signet git merge-driver`.
//!
//! The merge works on plaintext trees in memory: a key changed on one side only takes that
//! side's value, the same change on both sides is kept once, and anything else (two different
//! changes, a change against a deletion, two different additions) is a [`Conflict`] named by its
//! key path. A list changed on both sides merges item by item when its length is the same in all
//! three versions, else it is one value. The result starts from OURS (its layout, comments and
//! source positions), so re-encrypting it with OURS' data key and the IVs of both parents leaves
//! every value that did not change with the ciphertext it had.

use super::{Side, no_prompt_keyring};
use crate::exit::{CliError, CliResult, code};
use crate::sops::commands::{reencrypt_edited, same_value, strip_origins};
use clap::Args;
use signet_sops::tree::{Comment, Document, Map, MapEntry, Node, Pair, Scalar, Seq, SeqItem, Tree};
use std::path::PathBuf;

/// `signet git merge-driver BASE OURS THEIRS PATH`: git's `merge.<driver>.driver`
/// (`signet git merge-driver %O %A %B %P`).
#[derive(Debug, Args)]
pub struct MergeDriverCmd {
    /// The common ancestor (git's `%O`).
    base: PathBuf,
    /// Our version (git's `%A`); the merge result is written here.
    ours: PathBuf,
    /// Their version (git's `%B`).
    theirs: PathBuf,
    /// The file's path in the repository (git's `%P`): names it in messages and picks its format.
    path: Option<PathBuf>,
    /// Format of the three files; default: from PATH's extension.
    #[arg(long, value_enum)]
    input_type: Option<crate::sops::args::FormatArg>,
}

/// A value the merge cannot decide, by key path (`["a"]["b"]`; no value is ever in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Where, e.g. `["stringData"]["password"]` (prefixed `document 2: ` in multi-document files).
    pub path: String,
    /// What happened on each side.
    pub why: &'static str,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.path, self.why)
    }
}

const BOTH_CHANGED: &str = "changed differently on both sides";
const BOTH_ADDED: &str = "added on both sides with different values";
const OURS_CHANGED_THEIRS_DELETED: &str = "changed on our side, deleted on theirs";
const OURS_DELETED_THEIRS_CHANGED: &str = "deleted on our side, changed on theirs";
const COMMENTS: &str = "comments changed differently on both sides";
const DOCUMENTS: &str = "the list of documents changed differently on both sides";

/// Merges three plaintext trees. `base` may have no documents (a file added on both sides). The
/// result keeps OURS' layout where it can; on conflict, every conflicting path in walk order.
pub fn merge_trees(base: &Tree, ours: &Tree, theirs: &Tree) -> Result<Tree, Vec<Conflict>> {
    let mut conflicts = Vec::new();
    let n = ours.documents.len();
    let aligned =
        theirs.documents.len() == n && (base.documents.len() == n || base.documents.is_empty());
    if !aligned {
        return if same_documents(&base.documents, &ours.documents) {
            let mut tree = theirs.clone();
            tree.source = None;
            for doc in &mut tree.documents {
                doc.origin = None;
                doc.root = strip_origins(doc.root.clone());
            }
            Ok(tree)
        } else if same_documents(&base.documents, &theirs.documents) {
            Ok(ours.clone())
        } else {
            Err(vec![Conflict {
                path: "<documents>".into(),
                why: DOCUMENTS,
            }])
        };
    }
    let empty = Node::Map(Map::default());
    let mut documents = Vec::with_capacity(n);
    for (i, (o, t)) in ours.documents.iter().zip(&theirs.documents).enumerate() {
        let b = base.documents.get(i).map_or(&empty, |d| &d.root);
        let prefix = if n > 1 {
            format!("document {}: ", i + 1)
        } else {
            String::new()
        };
        let root = merge_node(Some(b), &o.root, &t.root, &mut Path(prefix), &mut conflicts);
        documents.push(Document {
            root,
            origin: o.origin,
        });
    }
    if conflicts.is_empty() {
        Ok(Tree {
            documents,
            source: ours.source.clone(),
        })
    } else {
        Err(conflicts)
    }
}

fn same_documents(a: &[Document], b: &[Document]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(&x.root, &y.root))
}

/// A key path being built, `["a"]["b"]` (keys JSON-quoted, as `signet set` takes them).
struct Path(String);

impl Path {
    fn child(&self, key: &str) -> Path {
        let quoted = serde_json::to_string(key).unwrap_or_else(|_| format!("\"{key}\""));
        Path(format!("{}[{quoted}]", self.0))
    }

    fn conflict(&self, why: &'static str) -> Conflict {
        let path = if self.0.is_empty() || self.0.ends_with(": ") {
            format!("{}<top level>", self.0)
        } else {
            self.0.clone()
        };
        Conflict { path, why }
    }
}

/// Merges one value. `base` is `None` when both sides added it.
fn merge_node(
    base: Option<&Node>,
    ours: &Node,
    theirs: &Node,
    path: &mut Path,
    conflicts: &mut Vec<Conflict>,
) -> Node {
    if same_value(ours, theirs) {
        return ours.clone();
    }
    // Maps are always merged key by key, so the result keeps OURS' layout.
    match (base, ours, theirs) {
        (Some(Node::Map(b)), Node::Map(o), Node::Map(t)) => {
            return Node::Map(merge_map(Some(b), o, t, path, conflicts));
        }
        (None, Node::Map(o), Node::Map(t)) => {
            return Node::Map(merge_map(None, o, t, path, conflicts));
        }
        _ => {}
    }
    if let Some(b) = base {
        if same_value(b, ours) {
            return take_theirs(ours, theirs);
        }
        if same_value(b, theirs) {
            return ours.clone();
        }
    }
    if let (Some(Node::Seq(b)), Node::Seq(o), Node::Seq(t)) = (base, ours, theirs)
        && let Some(seq) = merge_seq(b, o, t, path, conflicts)
    {
        return Node::Seq(seq);
    }
    conflicts.push(path.conflict(if base.is_some() {
        BOTH_CHANGED
    } else {
        BOTH_ADDED
    }));
    ours.clone()
}

/// Merges a list changed on both sides item by item, when it kept its length on both sides and
/// no comment change of THEIRS would be lost; `None` (the list is then one value) otherwise.
fn merge_seq(
    base: &Seq,
    ours: &Seq,
    theirs: &Seq,
    path: &Path,
    conflicts: &mut Vec<Conflict>,
) -> Option<Seq> {
    let items = |s: &Seq| -> Vec<Node> {
        s.items
            .iter()
            .filter_map(|i| match i {
                SeqItem::Node(n) => Some(n.clone()),
                SeqItem::Comment(_) => None,
            })
            .collect()
    };
    let comments = |s: &Seq| -> Vec<String> {
        s.items
            .iter()
            .filter_map(|i| match i {
                SeqItem::Comment(c) => Some(c.text.clone()),
                SeqItem::Node(_) => None,
            })
            .collect()
    };
    let (b, o, t) = (items(base), items(ours), items(theirs));
    if b.len() != o.len() || t.len() != o.len() {
        return None;
    }
    let their_comments = comments(theirs);
    if their_comments != comments(base) && their_comments != comments(ours) {
        return None;
    }
    let mut out = ours.clone();
    let mut index = 0;
    for item in &mut out.items {
        if let SeqItem::Node(n) = item {
            let mut child = Path(format!("{}[{index}]", path.0));
            *n = merge_node(Some(&b[index]), &o[index], &t[index], &mut child, conflicts);
            index += 1;
        }
    }
    Some(out)
}

/// THEIRS' value in OURS' place: a scalar keeps OURS' source position and quoting when the type
/// is unchanged; anything else is taken whole, without THEIRS' source positions (they point into
/// another text).
fn take_theirs(ours: &Node, theirs: &Node) -> Node {
    match (ours, theirs) {
        (Node::Scalar(o), Node::Scalar(t))
            if std::mem::discriminant(&o.value) == std::mem::discriminant(&t.value) =>
        {
            let mut s = o.clone();
            s.set(t.value.clone());
            Node::Scalar(s)
        }
        (_, Node::Scalar(t)) => Node::Scalar(Scalar::new(t.value.clone())),
        _ => strip_origins(theirs.clone()),
    }
}

fn comment_texts(m: &Map) -> Vec<&str> {
    m.entries
        .iter()
        .filter_map(|e| match e {
            MapEntry::Comment(c) => Some(c.text.as_str()),
            MapEntry::Pair(_) => None,
        })
        .collect()
}

fn merge_map(
    base: Option<&Map>,
    ours: &Map,
    theirs: &Map,
    path: &mut Path,
    conflicts: &mut Vec<Conflict>,
) -> Map {
    let base_get = |k: &str| base.and_then(|b| b.get(k));
    let mut entries: Vec<MapEntry> = Vec::with_capacity(ours.entries.len());
    for entry in &ours.entries {
        match entry {
            MapEntry::Comment(c) => entries.push(MapEntry::Comment(c.clone())),
            MapEntry::Pair(p) => {
                let child = path.child(&p.key);
                match (theirs.get(&p.key), base_get(&p.key)) {
                    (Some(t), b) => {
                        let mut child = child;
                        let value = merge_node(b, &p.value, t, &mut child, conflicts);
                        entries.push(MapEntry::Pair(Pair {
                            key: p.key.clone(),
                            value,
                            origin: p.origin,
                        }));
                    }
                    (None, Some(b)) => {
                        // Deleted on their side: gone, unless we changed it.
                        if !same_value(b, &p.value) {
                            conflicts.push(child.conflict(OURS_CHANGED_THEIRS_DELETED));
                            entries.push(entry.clone());
                        }
                    }
                    (None, None) => entries.push(entry.clone()),
                }
            }
        }
    }
    // Their keys that we do not have: deleted on our side, or added on theirs.
    let mut anchor: Option<&str> = None;
    for (key, t) in theirs.pairs() {
        if ours.get(key).is_some() {
            anchor = Some(key);
            continue;
        }
        match base_get(key) {
            Some(b) => {
                if !same_value(b, t) {
                    conflicts.push(path.child(key).conflict(OURS_DELETED_THEIRS_CHANGED));
                }
            }
            None => {
                let at = insertion_point(&entries, anchor);
                entries.insert(
                    at,
                    MapEntry::Pair(Pair {
                        key: key.to_owned(),
                        value: strip_origins(t.clone()),
                        origin: None,
                    }),
                );
                anchor = Some(key);
            }
        }
    }
    // Comments: ours unless only theirs changed them.
    let (o, t) = (comment_texts(ours), comment_texts(theirs));
    if o != t {
        let b = base.map(comment_texts).unwrap_or_default();
        if o == b {
            entries = with_comments_of(entries, theirs);
        } else if t != b {
            conflicts.push(path.conflict(COMMENTS));
        }
    }
    Map {
        entries,
        origin: ours.origin,
    }
}

/// Where a key added by THEIRS goes: after the key it follows in THEIRS (`anchor`), else before
/// the first key.
fn insertion_point(entries: &[MapEntry], anchor: Option<&str>) -> usize {
    let is_pair = |e: &MapEntry, k: Option<&str>| match e {
        MapEntry::Pair(p) => k.is_none_or(|k| p.key == k),
        MapEntry::Comment(_) => false,
    };
    match anchor {
        Some(k) => entries
            .iter()
            .position(|e| is_pair(e, Some(k)))
            .map_or(entries.len(), |i| i + 1),
        None => entries
            .iter()
            .position(|e| is_pair(e, None))
            .unwrap_or(entries.len()),
    }
}

/// `entries` with their comments replaced by THEIRS': each run of comments goes before the key it
/// precedes in THEIRS (at the end when that key is gone).
fn with_comments_of(entries: Vec<MapEntry>, theirs: &Map) -> Vec<MapEntry> {
    let mut runs: Vec<(Option<&str>, Vec<Comment>)> = Vec::new();
    let mut run = Vec::new();
    for e in &theirs.entries {
        match e {
            MapEntry::Comment(c) => run.push({
                let mut copy = Comment::new(c.text.clone());
                copy.inline = c.inline;
                copy
            }),
            MapEntry::Pair(p) => {
                if !run.is_empty() {
                    runs.push((Some(p.key.as_str()), std::mem::take(&mut run)));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(entries.len() + run.len());
    for e in entries {
        if let MapEntry::Pair(p) = &e
            && let Some(i) = runs.iter().position(|(k, _)| *k == Some(p.key.as_str()))
        {
            out.extend(runs.remove(i).1.into_iter().map(MapEntry::Comment));
        }
        if matches!(e, MapEntry::Pair(_)) {
            out.push(e);
        }
    }
    for (_, lost) in runs {
        out.extend(lost.into_iter().map(MapEntry::Comment));
    }
    out.extend(run.into_iter().map(MapEntry::Comment));
    out
}

/// `signet git merge-driver`.
pub fn merge_driver(cmd: MergeDriverCmd) -> CliResult {
    let name = cmd.path.as_ref().unwrap_or(&cmd.ours).display().to_string();
    let format = super::format_for(cmd.input_type, cmd.path.as_deref().unwrap_or(&cmd.ours));
    let read = |p: &std::path::Path| crate::io::Input::File(p.to_path_buf()).read();
    let (base_bytes, ours_bytes, theirs_bytes) = (
        zeroize::Zeroizing::new(read(&cmd.base)?),
        zeroize::Zeroizing::new(read(&cmd.ours)?),
        zeroize::Zeroizing::new(read(&cmd.theirs)?),
    );
    let base = Side::parse(&base_bytes, format);
    let ours = Side::parse(&ours_bytes, format);
    let theirs = Side::parse(&theirs_bytes, format);
    let sops = [&base, &ours, &theirs].map(|s| matches!(s, Side::Sops(_)));
    if !sops.iter().any(|s| *s) {
        return text_merge(&cmd, &name);
    }
    // A file added on both sides has an empty base.
    let base_is_empty = base_bytes.iter().all(u8::is_ascii_whitespace);
    if !(sops[1] && sops[2] && (sops[0] || base_is_empty)) {
        return Err(CliError::new(
            code::ERROR_GENERIC,
            format!(
                "{name}: cannot merge: only some versions are sops-encrypted (base {}, ours {}, \
                 theirs {}); left as ours",
                yes_no(sops[0]),
                yes_no(sops[1]),
                yes_no(sops[2])
            ),
        ));
    }
    let ring = no_prompt_keyring();
    let open = |side: Side, which: &str| side.open(&ring, &format!("{name} ({which})"));
    let mut ours = open(ours, "ours")?;
    let theirs = open(theirs, "theirs")?;
    let base_tree = match base {
        Side::Sops(_) => open(base, "base")?.tree,
        _ => Tree::default(),
    };
    if ours.metadata.key_groups != theirs.metadata.key_groups {
        eprintln!(
            "signet: warning: {name}: their version has other master keys; the merge keeps ours \
             (run `signet updatekeys` if theirs were meant)"
        );
    }
    let mut merged = match merge_trees(&base_tree, &ours.tree, &theirs.tree) {
        Ok(tree) => tree,
        Err(conflicts) => {
            let list: Vec<String> = conflicts.iter().map(|c| format!("  {c}")).collect();
            return Err(CliError::new(
                code::ERROR_GENERIC,
                format!(
                    "{name}: merge conflict in {} value(s); the file is left as ours (encrypted). \
                     Resolve with `signet edit` (or `git checkout --theirs`), then `git add`:\n{}",
                    conflicts.len(),
                    list.join("\n")
                ),
            ));
        }
    };
    // Values taken from theirs keep their ciphertext when both share the data key.
    if ours.data_key.as_bytes() == theirs.data_key.as_bytes() {
        ours.previous.extend(&theirs.previous);
    }
    reencrypt_edited(&mut merged, &ours).map_err(|e| crate::sops::file::engine_error(&name, e))?;
    let out = zeroize::Zeroizing::new(
        crate::sops::file::store(format, None)
            .emit(&merged)
            .map_err(|e| crate::sops::file::engine_error(&name, e))?,
    );
    crate::io::write_atomic(&cmd.ours, &out)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// None of the versions is a sops file: git's own line merge (`git merge-file`), conflict markers
/// and all, as without the driver.
fn text_merge(cmd: &MergeDriverCmd, name: &str) -> CliResult {
    let status = std::process::Command::new("git")
        .arg("merge-file")
        .args(["-L", "ours", "-L", "base", "-L", "theirs"])
        .arg(&cmd.ours)
        .arg(&cmd.base)
        .arg(&cmd.theirs)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            CliError::new(
                code::ERROR_GENERIC,
                format!("{name}: not a sops file, and `git merge-file` did not run: {e}"),
            )
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::new(
            code::ERROR_GENERIC,
            format!("{name}: not a sops file; merged as text, with conflicts"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_sops::Format;
    use signet_sops::stores::store_for;

    fn yaml(text: &str) -> Tree {
        store_for(Format::Yaml).parse(text.as_bytes()).unwrap()
    }

    fn emit(tree: &Tree) -> String {
        String::from_utf8(store_for(Format::Yaml).emit(tree).unwrap()).unwrap()
    }

    fn merged(base: &str, ours: &str, theirs: &str) -> String {
        emit(&merge_trees(&yaml(base), &yaml(ours), &yaml(theirs)).unwrap())
    }

    fn conflicts(base: &str, ours: &str, theirs: &str) -> Vec<String> {
        merge_trees(&yaml(base), &yaml(ours), &yaml(theirs))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn changes_to_different_keys_both_land() {
        let base = "a: 1\nb:\n    c: x\n    d: y\n";
        let ours = "a: 2\nb:\n    c: x\n    d: y\n";
        let theirs = "a: 1\nb:\n    c: x\n    d: z\n";
        assert_eq!(merged(base, ours, theirs), "a: 2\nb:\n    c: x\n    d: z\n");
    }

    #[test]
    fn the_same_change_on_both_sides_is_kept_once() {
        assert_eq!(merged("a: 1\n", "a: 2\n", "a: 2\n"), "a: 2\n");
    }

    #[test]
    fn additions_go_after_their_neighbour_and_deletions_apply() {
        let base = "a: 1\nb: 2\nc: 3\n";
        let ours = "a: 1\nb: 2\n";
        let theirs = "a: 1\nnew: 9\nb: 2\nc: 3\n";
        assert_eq!(merged(base, ours, theirs), "a: 1\nnew: 9\nb: 2\n");
    }

    #[test]
    fn conflicts_name_each_key_path_and_never_a_value() {
        let base = "s:\n    password: old-canary\n    user: u\n    gone: g\nkeep: k\n";
        let ours = "s:\n    password: ours-canary\n    user: u\n    gone: g2\n";
        let theirs = "s:\n    password: theirs-canary\n    user: u\nkeep: k2\n";
        let found = conflicts(base, ours, theirs);
        assert_eq!(
            found,
            [
                r#"["s"]["password"] (changed differently on both sides)"#,
                r#"["s"]["gone"] (changed on our side, deleted on theirs)"#,
                r#"["keep"] (deleted on our side, changed on theirs)"#,
            ]
        );
        assert!(!found.concat().contains("canary"));
    }

    #[test]
    fn lists_changed_on_one_side_or_resized_are_one_value() {
        assert_eq!(
            merged(
                "l:\n    - 1\n    - 2\n",
                "l:\n    - 1\n    - 2\n",
                "l:\n    - 3\n"
            ),
            "l:\n    - 3\n"
        );
        assert_eq!(
            conflicts("l:\n    - 1\n", "l:\n    - 2\n    - 4\n", "l:\n    - 3\n"),
            [r#"["l"] (changed differently on both sides)"#]
        );
    }

    #[test]
    fn lists_of_the_same_length_merge_item_by_item() {
        let base = "l:\n    - name: a\n      pw: 1\n    - name: b\n      pw: 2\n    - x\n";
        let ours = "l:\n    - name: a\n      pw: 9\n    - name: b\n      pw: 2\n    - x\n";
        let theirs = "l:\n    - name: a\n      pw: 1\n    - name: b\n      pw: 8\n    - z\n";
        assert_eq!(
            merged(base, ours, theirs),
            "l:\n    - name: a\n      pw: 9\n    - name: b\n      pw: 8\n    - z\n"
        );
        let clash = "l:\n    - name: a\n      pw: 7\n    - name: b\n      pw: 2\n    - x\n";
        assert_eq!(
            conflicts(base, ours, clash),
            [r#"["l"][0]["pw"] (changed differently on both sides)"#]
        );
    }

    #[test]
    fn added_on_both_sides_merges_maps_and_conflicts_on_values() {
        let empty = Tree::default();
        let o = yaml("m:\n    a: 1\n");
        let t = yaml("m:\n    b: 2\n");
        assert_eq!(
            emit(&merge_trees(&empty, &o, &t).unwrap()),
            // Their key has no neighbour in ours: it goes first, as in theirs.
            "m:\n    b: 2\n    a: 1\n"
        );
        let t = yaml("m:\n    a: 5\n");
        let err = merge_trees(&empty, &o, &t).unwrap_err();
        assert_eq!(
            err[0].to_string(),
            r#"["m"]["a"] (added on both sides with different values)"#
        );
    }

    #[test]
    fn their_comment_edits_are_kept_and_clashing_ones_conflict() {
        let base = "# one\na: 1\nb: 2\n";
        let ours = "# one\na: 1\nb: 3\n";
        let theirs = "# two\na: 1\nb: 2\n";
        assert_eq!(merged(base, ours, theirs), "# two\na: 1\nb: 3\n");
        assert_eq!(
            conflicts(base, "# three\na: 1\n", theirs),
            ["<top level> (comments changed differently on both sides)"]
        );
    }

    #[test]
    fn documents_are_merged_one_by_one_and_named() {
        let base = "a: 1\n---\nb: 1\n";
        assert_eq!(
            merged(base, "a: 2\n---\nb: 1\n", "a: 1\n---\nb: 2\n"),
            "a: 2\n---\nb: 2\n"
        );
        assert_eq!(
            conflicts(base, "a: 1\n---\nb: 2\n", "a: 1\n---\nb: 3\n"),
            [r#"document 2: ["b"] (changed differently on both sides)"#]
        );
        assert_eq!(
            conflicts(base, "a: 1\n", "a: 1\n---\nb: 1\n---\nc: 1\n"),
            ["<documents> (the list of documents changed differently on both sides)"]
        );
    }

    #[test]
    fn a_binary_file_is_one_value() {
        let bin = |b: &[u8]| store_for(Format::Binary).parse(b).unwrap();
        let out = merge_trees(&bin(b"base"), &bin(b"ours"), &bin(b"base")).unwrap();
        assert_eq!(store_for(Format::Binary).emit(&out).unwrap(), b"ours");
        let err = merge_trees(&bin(b"base"), &bin(b"ours"), &bin(b"theirs")).unwrap_err();
        assert_eq!(
            err[0].to_string(),
            r#"["data"] (changed differently on both sides)"#
        );
    }

    #[test]
    fn keys_with_quotes_are_escaped_in_paths() {
        assert_eq!(
            conflicts("'a\"b': 1\n", "'a\"b': 2\n", "'a\"b': 3\n"),
            [r#"["a\"b"] (changed differently on both sides)"#]
        );
    }
}
