//! sops files: validated without a key (the metadata reads, a MAC and a master key are there, every
//! value the rule encrypts is `ENC[…]`), and with `--decrypt` opened with the keys at hand (the data
//! key unwraps, every value decrypts, the MAC holds). Plaintext is dropped (and wiped) unseen.

use super::findings::{Finding, Rule};
use super::locate::Locator;
use crate::rekey::sops_file::SopsFile;
use signet_keys::Keyring;
use signet_sops::EncryptionRule;
use signet_sops::engine::{DecryptOptions, plain_leaves};

/// Checks one sops file. `text`: the file as text (for line numbers); `wanted`: the encryption rule
/// of the `.sops.yaml` creation rule covering it, if any; `keyring`: with `--decrypt`.
pub fn check(
    file: SopsFile,
    text: Option<&str>,
    name: &str,
    wanted: Option<&EncryptionRule>,
    keyring: Option<&Keyring>,
    out: &mut Vec<Finding>,
) {
    let meta = file.decryptor.metadata().clone();
    let invalid = |message: &str| Finding::new(Rule::SopsInvalid, name, None, message);
    if meta.mac.is_none() {
        out.push(invalid(
            "no MAC in the sops metadata: tampering cannot be detected",
        ));
    }
    if meta.all_keys().next().is_none() {
        out.push(invalid(
            "no master key in the sops metadata: nobody can open it",
        ));
    }
    let (tree, _) = file.decryptor.clone().into_parts();
    let mut rules = vec![(meta.rule.clone(), "its rule")];
    if let Some(wanted) = wanted.filter(|w| **w != meta.rule) {
        rules.push((wanted.clone(), "its .sops.yaml creation rule"));
    }
    let locator = text.map(Locator::new);
    let mut seen = Vec::new();
    for (rule, whose) in rules {
        let leaves = match plain_leaves(&tree, &rule) {
            Ok(leaves) => leaves,
            Err(e) => {
                out.push(invalid(&e.to_string()));
                continue;
            }
        };
        let (key, pattern) = rule.key_and_value();
        for leaf in leaves {
            if seen.contains(&leaf.path) {
                continue;
            }
            let line = locator.as_ref().and_then(|loc| match leaf.span {
                Some((start, _)) => Some(loc.line_of(start)),
                None => {
                    let key = leaf.path.rsplit('.').next().unwrap_or(&leaf.path);
                    let key = key.split('[').next().unwrap_or(key);
                    loc.key_line(0..usize::MAX, key).map(|o| loc.line_of(o))
                }
            });
            let what = if leaf.comment {
                "a comment"
            } else {
                "the value"
            };
            out.push(Finding::new(
                Rule::SopsPlainValue,
                name,
                line,
                format!(
                    "{what} at {} is plain text, but {whose} ({key}: {pattern:?}) encrypts it",
                    leaf.path
                ),
            ));
            seen.push(leaf.path);
        }
    }
    if let Some(keyring) = keyring {
        match file.decryptor.open(keyring, DecryptOptions::default()) {
            Ok(opened) => drop(opened),
            Err(signet_sops::decryptor::OpenError::Key(e)) => out.push(Finding::new(
                Rule::SopsDecrypt,
                name,
                None,
                format!("no key at hand opens the data key: {e}"),
            )),
            Err(signet_sops::decryptor::OpenError::Document(e)) => {
                out.push(Finding::new(Rule::SopsDecrypt, name, None, e.to_string()))
            }
        }
    }
}
