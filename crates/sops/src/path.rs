//! Tree paths in sops' command-line syntax: `["data"]["password"]`, `["items"][0]` (used by
//! `set`, `unset` and `--extract`). Keys are double- or single-quoted strings (with `\"`/`\\`
//! escapes); bare integers index sequences.

use crate::Error;
use crate::tree::{Map, MapEntry, Node, Pair, Seq, SeqItem};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// A map key.
    Key(String),
    /// A sequence index (comments not counted).
    Index(usize),
}

/// Parses `["a"][0]["b"]`. An empty string is the empty path (the whole document).
pub fn parse_path(s: &str) -> Result<Vec<PathStep>, Error> {
    let bad = |m: &str| Error::Path {
        path: s.to_owned(),
        message: m.to_owned(),
    };
    let mut steps = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        // `set` creates the missing levels: bound them like a parsed document's nesting.
        let max_depth = crate::limits::Limits::get().max_depth;
        if steps.len() == max_depth {
            return Err(bad(&format!("more than {max_depth} levels deep")));
        }
        rest = rest
            .strip_prefix('[')
            .ok_or_else(|| bad("expected `[`"))?
            .trim_start();
        let q = rest.chars().next().ok_or_else(|| bad("unexpected end"))?;
        if q == '"' || q == '\'' {
            let mut key = String::new();
            let mut chars = rest[1..].char_indices();
            let end = loop {
                let (i, c) = chars.next().ok_or_else(|| bad("unterminated key"))?;
                match c {
                    '\\' => key.push(chars.next().ok_or_else(|| bad("unterminated key"))?.1),
                    c if c == q => break i + 1,
                    c => key.push(c),
                }
            };
            steps.push(PathStep::Key(key));
            rest = &rest[end + 1..];
        } else {
            let end = rest.find(']').ok_or_else(|| bad("expected `]`"))?;
            let idx = rest[..end]
                .trim()
                .parse::<usize>()
                .map_err(|_| bad("index must be a non-negative integer or a quoted key"))?;
            steps.push(PathStep::Index(idx));
            rest = &rest[end..];
        }
        rest = rest
            .trim_start()
            .strip_prefix(']')
            .ok_or_else(|| bad("expected `]`"))?
            .trim_start();
    }
    Ok(steps)
}

fn seq_nodes(seq: &Seq) -> impl Iterator<Item = &Node> {
    seq.items.iter().filter_map(|i| match i {
        SeqItem::Node(n) => Some(n),
        SeqItem::Comment(_) => None,
    })
}

fn seq_nodes_mut(seq: &mut Seq) -> impl Iterator<Item = &mut Node> {
    seq.items.iter_mut().filter_map(|i| match i {
        SeqItem::Node(n) => Some(n),
        SeqItem::Comment(_) => None,
    })
}

fn describe(steps: &[PathStep]) -> String {
    steps
        .iter()
        .map(|s| match s {
            PathStep::Key(k) => format!("[{k:?}]"),
            PathStep::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// The node at `path` (`--extract`).
pub fn get<'a>(root: &'a Node, path: &[PathStep]) -> Result<&'a Node, Error> {
    let mut cur = root;
    for (i, step) in path.iter().enumerate() {
        let not_found = |m: &str| Error::PathNotFound {
            path: describe(&path[..=i]),
            message: m.to_owned(),
        };
        cur = match (step, cur) {
            (PathStep::Key(k), Node::Map(m)) => {
                m.get(k).ok_or_else(|| not_found("key not found"))?
            }
            (PathStep::Index(n), Node::Seq(s)) => seq_nodes(s)
                .nth(*n)
                .ok_or_else(|| not_found("index out of bounds"))?,
            (PathStep::Key(_), _) => return Err(not_found("not a map")),
            (PathStep::Index(_), _) => return Err(not_found("not a list")),
        };
    }
    Ok(cur)
}

/// Builds the node that `path` leads to from nothing (missing maps/lists are created).
fn build(path: &[PathStep], value: Node) -> Node {
    match path.split_first() {
        None => value,
        Some((PathStep::Key(k), rest)) => {
            let mut m = Map::default();
            m.entries.push(MapEntry::Pair(Pair {
                key: k.clone(),
                value: build(rest, value),
                origin: None,
            }));
            Node::Map(m)
        }
        Some((PathStep::Index(_), rest)) => Node::Seq(Seq {
            items: vec![SeqItem::Node(build(rest, value))],
            origin: None,
        }),
    }
}

/// Sets the value at `path` as `sops set` does: missing keys are appended, an index past the end
/// appends, a scalar in the way is replaced. Returns whether anything changed.
pub fn set(root: &mut Node, path: &[PathStep], value: Node) -> Result<bool, Error> {
    let Some((step, rest)) = path.split_first() else {
        let changed = *root != value;
        *root = value;
        return Ok(changed);
    };
    match (step, &mut *root) {
        (PathStep::Key(k), Node::Map(m)) => match m.get_mut(k) {
            Some(child) => set(child, rest, value),
            None => {
                m.entries.push(MapEntry::Pair(Pair {
                    key: k.clone(),
                    value: build(rest, value),
                    origin: None,
                }));
                Ok(true)
            }
        },
        (PathStep::Index(i), Node::Seq(s)) => {
            if seq_nodes(s).count() > *i {
                let child = seq_nodes_mut(s).nth(*i).expect("counted");
                set(child, rest, value)
            } else {
                s.items.push(SeqItem::Node(build(rest, value)));
                Ok(true)
            }
        }
        (_, other) => {
            *other = build(path, value);
            Ok(true)
        }
    }
}

/// Removes the entry at `path` (`sops unset`). Errors when it does not exist.
pub fn unset(root: &mut Node, path: &[PathStep]) -> Result<(), Error> {
    let (last, parents) = path.split_last().ok_or_else(|| Error::Path {
        path: String::new(),
        message: "empty path".into(),
    })?;
    let parent = get_mut(root, parents)?;
    let not_found = |m: &str| Error::PathNotFound {
        path: describe(path),
        message: m.to_owned(),
    };
    match (last, parent) {
        (PathStep::Key(k), Node::Map(m)) => m
            .remove(k)
            .map(|_| ())
            .ok_or_else(|| not_found("key not found")),
        (PathStep::Index(n), Node::Seq(s)) => {
            let pos = s
                .items
                .iter()
                .enumerate()
                .filter(|(_, it)| matches!(it, SeqItem::Node(_)))
                .nth(*n)
                .map(|(p, _)| p)
                .ok_or_else(|| not_found("index out of bounds"))?;
            s.items.remove(pos);
            Ok(())
        }
        _ => Err(not_found("parent is not a map or list")),
    }
}

fn get_mut<'a>(root: &'a mut Node, path: &[PathStep]) -> Result<&'a mut Node, Error> {
    let mut cur = root;
    for (i, step) in path.iter().enumerate() {
        let not_found = |m: &str| Error::PathNotFound {
            path: describe(&path[..=i]),
            message: m.to_owned(),
        };
        cur = match (step, cur) {
            (PathStep::Key(k), Node::Map(m)) => {
                m.get_mut(k).ok_or_else(|| not_found("key not found"))?
            }
            (PathStep::Index(n), Node::Seq(s)) => seq_nodes_mut(s)
                .nth(*n)
                .ok_or_else(|| not_found("index out of bounds"))?,
            _ => return Err(not_found("not a map or list")),
        };
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Scalar, Value};

    fn s(v: &str) -> Node {
        Node::Scalar(Scalar::new(Value::Str(v.into())))
    }

    #[test]
    fn parse_forms() {
        assert_eq!(
            parse_path(r#"["a"][0]['b c']["q\"x"]"#).unwrap(),
            vec![
                PathStep::Key("a".into()),
                PathStep::Index(0),
                PathStep::Key("b c".into()),
                PathStep::Key("q\"x".into())
            ]
        );
        assert!(parse_path("").unwrap().is_empty());
        for bad in [r#"["a""#, "[a]", "a", r#"["a"]x"#, "[-1]"] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn set_get_unset() {
        let mut root = Node::Map(Map::default());
        assert!(
            set(
                &mut root,
                &parse_path(r#"["data"]["password"]"#).unwrap(),
                s("x")
            )
            .unwrap()
        );
        assert!(
            !set(
                &mut root,
                &parse_path(r#"["data"]["password"]"#).unwrap(),
                s("x")
            )
            .unwrap()
        );
        assert_eq!(
            get(&root, &parse_path(r#"["data"]["password"]"#).unwrap()).unwrap(),
            &s("x")
        );
        set(&mut root, &parse_path(r#"["list"][5]"#).unwrap(), s("y")).unwrap();
        assert_eq!(
            get(&root, &parse_path(r#"["list"][0]"#).unwrap()).unwrap(),
            &s("y")
        );
        unset(&mut root, &parse_path(r#"["data"]["password"]"#).unwrap()).unwrap();
        assert!(get(&root, &parse_path(r#"["data"]["password"]"#).unwrap()).is_err());
        assert!(unset(&mut root, &parse_path(r#"["nope"]"#).unwrap()).is_err());
    }
}
