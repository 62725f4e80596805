//! dotenv and INI files that are not sops files: high-entropy values, each found through the sops
//! store of its format (so the parsing is sops' own).

use super::entropy::{self, EntropyConfig};
use super::findings::{Finding, Rule};
use super::locate::Locator;
use super::manifests::fingerprint;
use signet_sops::Format;
use signet_sops::tree::{Node, Value};

/// Checks one dotenv or INI file's values.
pub fn check(
    text: &str,
    format: Format,
    name: &str,
    config: &EntropyConfig,
    out: &mut Vec<Finding>,
) {
    // A file the store cannot read is no dotenv/INI file to judge.
    let Ok(tree) = signet_sops::stores::store_for(format).parse(text.as_bytes()) else {
        return;
    };
    let locator = Locator::new(text);
    for doc in &tree.documents {
        walk(&doc.root, "", &mut |path, value| {
            let Some((token, bits)) = entropy::find(value, config) else {
                return;
            };
            let first_line = token.lines().next().unwrap_or(token);
            let at = locator.find(0..text.len(), first_line).or_else(|| {
                let key = path.rsplit('.').next().unwrap_or(path);
                locator.key_line(0..text.len(), key)
            });
            let what = if bits.is_infinite() {
                "a private key".to_owned()
            } else {
                format!(
                    "a high-entropy string ({bits:.1} bits/char over {} chars)",
                    token.chars().count()
                )
            };
            out.push(Finding {
                fingerprint: Some(fingerprint(token)),
                ..Finding::new(
                    Rule::HighEntropy,
                    name,
                    at.map(|o| locator.line_of(o)),
                    format!("{path} holds {what}"),
                )
            });
        });
    }
}

fn walk(node: &Node, path: &str, f: &mut dyn FnMut(&str, &str)) {
    match node {
        Node::Map(map) => {
            for (key, value) in map.pairs() {
                let child = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                walk(value, &child, f);
            }
        }
        Node::Seq(seq) => {
            for item in &seq.items {
                if let signet_sops::tree::SeqItem::Node(n) = item {
                    walk(n, path, f);
                }
            }
        }
        Node::Scalar(s) => {
            if let Value::Str(v) = &s.value {
                f(path, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_and_ini_values() {
        let config = EntropyConfig::default();
        let mut out = Vec::new();
        check(
            "NAME=app\nAPI_TOKEN=9fQ2xLr7TzK4mWcV1bNs8HjD3gYp\n",
            Format::Dotenv,
            "a.env",
            &config,
            &mut out,
        );
        check(
            "[db]\nhost = db.internal\npassword = Zk3Rq8LmX2vT9wNc4HpB7yJd\n",
            Format::Ini,
            "a.ini",
            &config,
            &mut out,
        );
        let got: Vec<_> = out
            .iter()
            .map(|f| {
                (
                    f.file.as_str(),
                    f.line,
                    f.message.split(' ').next().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a.env", Some(2), "API_TOKEN"),
                ("a.ini", Some(3), "db.password")
            ]
        );
    }
}
