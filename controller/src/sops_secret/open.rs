//! Decrypting one SopsSecret: recover the data key with the controller's keyring, decrypt the
//! values of `spec.data` / `spec.stringData`, and check the MAC.
//!
//! The API server hands objects back with map keys sorted, not in the order of the file, while the
//! sops MAC hashes the values in file order. Only the order is lost (each value is bound to its
//! key path by the AEAD), so the MAC is checked against every order of the keys of `data` and
//! `stringData` (up to [`MAX_ORDERS`]); a dropped, added or altered value still fails.

use serde_json::{Map, Value, json};
use signet_keys::Keyring;
use signet_sops::{DataKey, Format, Metadata, engine, stores::store_for};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Most orders of the keys tried when checking the MAC (8! — eight keys in one map).
pub const MAX_ORDERS: usize = 40_320;

/// The decrypted values of a SopsSecret.
pub struct Opened {
    /// Secret values by key (`stringData` wins over `data` for the same key).
    pub data: BTreeMap<String, Zeroizing<Vec<u8>>>,
    /// Which key of which group opened the data key (public names only).
    pub opened_by: Vec<String>,
}

/// Why a SopsSecret could not be opened. Messages name keys and fields, never values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The object is not a usable SopsSecret (no sops metadata, wrong settings, bad values).
    #[error("{0}")]
    Invalid(String),
    /// No key of this controller opens the data key.
    #[error("no key of this controller opens the data key ({0})")]
    NoKey(String),
    /// A value does not decrypt: it was altered, or encrypted with another data key.
    #[error(
        "a value does not decrypt with the data key: it was altered or belongs to another file"
    )]
    Tampered,
    /// The MAC does not match the values.
    #[error("the MAC does not match the values: a value was added, removed or altered{0}")]
    MacMismatch(&'static str),
}

impl OpenError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            OpenError::Invalid(_) => "InvalidSopsSecret",
            OpenError::NoKey(_) => "NoDecryptionKey",
            OpenError::Tampered => "DecryptionFailed",
            OpenError::MacMismatch(_) => "MacMismatch",
        }
    }
}

const SECTIONS: [&str; 2] = ["data", "stringData"];

/// Decrypts `spec` (the object's spec) under `sops` (its metadata block) with `keyring`.
pub async fn open(
    spec: &Map<String, Value>,
    sops: &Value,
    keyring: &Keyring,
) -> Result<Opened, OpenError> {
    // Only the encrypted sections and the metadata: template and object metadata are not encrypted,
    // and with mac_only_encrypted they are not in the MAC either.
    let mut reduced = Map::new();
    for section in SECTIONS {
        if let Some(values) = spec.get(section) {
            reduced.insert(section.to_owned(), values.clone());
        }
    }
    let document = json!({ "spec": reduced, "sops": sops });
    let bytes = serde_json::to_vec(&document)
        .map_err(|e| OpenError::Invalid(format!("cannot serialise the object: {e}")))?;
    let store = store_for(Format::Json);
    let mut tree = store
        .parse(&bytes)
        .map_err(|e| OpenError::Invalid(format!("not a sops document: {e}")))?;
    let metadata = engine::metadata_of(&tree)
        .map_err(|e| OpenError::Invalid(format!("invalid sops metadata: {e}")))?
        .ok_or_else(|| {
            OpenError::Invalid("no sops metadata (the object is not encrypted)".into())
        })?;
    if !metadata.mac_only_encrypted {
        return Err(OpenError::Invalid(
            "sops.mac_only_encrypted must be true: otherwise the MAC covers metadata the cluster changes (encrypt with `signet encrypt --kind SopsSecret` or `sops --mac-only-encrypted --encrypted-regex '^(data|stringData)$'`)".into(),
        ));
    }
    let unwrapped = signet_keys::unwrap_data_key_with_origin(&metadata, keyring)
        .await
        .map_err(|e| OpenError::NoKey(no_key_summary(&metadata, &e)))?;
    let decrypted = engine::decrypt(
        &mut tree,
        &unwrapped.data_key,
        engine::DecryptOptions { ignore_mac: true },
    )
    .map_err(|_| OpenError::Tampered)?;
    let plain_bytes = Zeroizing::new(
        store
            .emit(&tree)
            .map_err(|e| OpenError::Invalid(format!("cannot read the decrypted values: {e}")))?,
    );
    let plain: Value = serde_json::from_slice(&plain_bytes)
        .map_err(|e| OpenError::Invalid(format!("cannot read the decrypted values: {e}")))?;
    let sections = string_sections(&plain)?;
    if decrypted.mac_matched != Some(true) {
        verify_mac_in_any_order(&sections, &metadata, &unwrapped.data_key)?;
    }
    Ok(Opened {
        data: secret_values(sections)?,
        opened_by: unwrapped.opened_by,
    })
}

/// The recipients that were tried, for the condition (public names only).
fn no_key_summary(metadata: &Metadata, error: &signet_keys::Error) -> String {
    let names: Vec<String> = metadata
        .key_groups
        .iter()
        .flatten()
        .map(signet_keys::entry_name)
        .collect();
    let kind = match error {
        signet_keys::Error::ShamirThresholdNotMet { .. } => "too few key groups opened; ",
        _ => "",
    };
    format!("{kind}encrypted to: {}", names.join(", "))
}

/// One decrypted section: (key, value) in the order received.
type Section = Vec<(String, Zeroizing<String>)>;

/// The decrypted `data` and `stringData` sections; every value must be a string.
fn string_sections(plain: &Value) -> Result<[Section; 2], OpenError> {
    let mut out: [Section; 2] = [Vec::new(), Vec::new()];
    for (slot, section) in SECTIONS.iter().enumerate() {
        let Some(values) = plain.pointer(&format!("/spec/{section}")) else {
            continue;
        };
        let map = values
            .as_object()
            .ok_or_else(|| OpenError::Invalid(format!("spec.{section} is not a map")))?;
        for (key, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                _ => {
                    return Err(OpenError::Invalid(format!(
                        "spec.{section}.{key} is not a string"
                    )));
                }
            };
            out[slot].push((key.clone(), Zeroizing::new(text)));
        }
    }
    Ok(out)
}

/// Checks the MAC against the orders the file may have had: every order of the keys within each
/// section, with either section first.
fn verify_mac_in_any_order(
    sections: &[Section; 2],
    metadata: &Metadata,
    key: &DataKey,
) -> Result<(), OpenError> {
    let stored = engine::stored_mac(metadata, key)
        .map_err(|_| OpenError::Tampered)?
        .ok_or(OpenError::MacMismatch(""))?;
    let orders = factorial(sections[0].len())
        .saturating_mul(factorial(sections[1].len()))
        .saturating_mul(2);
    if orders > MAX_ORDERS {
        return Err(OpenError::MacMismatch(
            " (or the file's keys were not sorted: with more than 8 keys in a map, keep keys sorted as the API server returns them — `signet encrypt --kind SopsSecret` does)",
        ));
    }
    let values: [Vec<&[u8]>; 2] =
        [0, 1].map(|i| sections[i].iter().map(|(_, v)| v.as_bytes()).collect());
    let found = for_each_permutation(values[0].len(), |first| {
        for_each_permutation(values[1].len(), |second| {
            let a = first.iter().map(|&i| values[0][i]);
            let b = second.iter().map(|&i| values[1][i]);
            let data_first = engine::mac_of_values(a.clone().chain(b.clone()), true);
            let string_first = engine::mac_of_values(b.chain(a), true);
            // Both orders are always compared, so the time taken says nothing about which matched.
            engine::mac_matches(&stored, &data_first) | engine::mac_matches(&stored, &string_first)
        })
    });
    if found {
        Ok(())
    } else {
        Err(OpenError::MacMismatch(""))
    }
}

fn factorial(n: usize) -> usize {
    (1..=n).fold(1usize, |acc, k| acc.saturating_mul(k))
}

/// Calls `visit` with every permutation of `0..n` (Heap's algorithm) until it returns true.
fn for_each_permutation(n: usize, mut visit: impl FnMut(&[usize]) -> bool) -> bool {
    let mut order: Vec<usize> = (0..n).collect();
    if visit(&order) {
        return true;
    }
    let mut counters = vec![0usize; n];
    let mut i = 1;
    while i < n {
        if counters[i] < i {
            if i % 2 == 0 {
                order.swap(0, i);
            } else {
                order.swap(counters[i], i);
            }
            if visit(&order) {
                return true;
            }
            counters[i] += 1;
            i = 1;
        } else {
            counters[i] = 0;
            i += 1;
        }
    }
    false
}

/// The Secret's values: `data` base64-decoded, `stringData` as bytes, the latter winning.
fn secret_values(
    sections: [Section; 2],
) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, OpenError> {
    use base64::Engine as _;
    let [data, string_data] = sections;
    let mut out = BTreeMap::new();
    for (key, text) in data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|_| OpenError::Invalid(format!("spec.data.{key} is not base64")))?;
        out.insert(key, Zeroizing::new(bytes));
    }
    for (key, text) in string_data {
        out.insert(key, Zeroizing::new(text.as_bytes().to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permutation_is_visited_once() {
        let mut seen = std::collections::BTreeSet::new();
        assert!(!for_each_permutation(4, |p| {
            assert!(seen.insert(p.to_vec()), "{p:?} twice");
            false
        }));
        assert_eq!(seen.len(), 24);
        assert!(!for_each_permutation(0, |p| !p.is_empty()));
        let mut calls = 0;
        assert!(for_each_permutation(5, |p| {
            calls += 1;
            p == [4, 3, 2, 1, 0]
        }));
        assert!(calls <= 120);
    }

    #[test]
    fn factorial_saturates() {
        assert_eq!(factorial(0), 1);
        assert_eq!(factorial(8), MAX_ORDERS);
        assert_eq!(factorial(100), usize::MAX);
    }
}
