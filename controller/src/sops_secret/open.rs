//! Decrypting one SopsSecret: recover the data key with the controller's keyring, decrypt the
//! values of `spec.data` / `spec.stringData` and the binding (`spec.binding`), and check the MAC.
//!
//! The API server hands objects back with map keys sorted, not in the order of the file, while the
//! sops MAC hashes the values in file order. Only the order is lost (each value is bound to its
//! key path by the AEAD), so the MAC is checked against every order of the keys of `data` and
//! `stringData` and of those two maps and the binding (up to [`MAX_ORDERS`] in all); a dropped,
//! added or altered value still fails.
//!
//! With `spec.secretTemplates` (many Secrets from one object) the values of every template's
//! `data` / `stringData` are decrypted too, and the MAC must match in the order the API server
//! returns (keys sorted, list order kept): the order search would multiply with every template.
//!
//! The binding is trusted only as an encrypted value that decrypted and that the MAC covers: a
//! plain one is refused, whatever `encrypted_regex` says (an unbound object with a plain binding
//! added would otherwise open wherever its copier likes).
//!
//! The work per object is bounded and runs off the async runtime ([`crate::cpu`]): the encrypted
//! sections are at most [`MAX_ENCRYPTED_BYTES`], the values at most [`MAX_VALUE_BYTES`] (what a
//! Secret holds), and the order search hashes at most [`MAX_MAC_SEARCH_BYTES`] — anyone may encrypt
//! to the controller's public recipient, so a large object with a value removed must not cost more.

use serde_json::{Map, Value, json};
use signet_api::sops_secret::{BINDING_FIELD, Binding, ENCRYPTED_REGEX};
use signet_keys::Keyring;
use signet_sops::{DataKey, Decryptor, Format, Metadata, cipher, engine, stores::store_for};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Most orders of the values tried when checking the MAC (8! — eight keys in one map).
pub const MAX_ORDERS: usize = 40_320;
/// Most bytes hashed by the order search of one object (about half a second of one core): an
/// unsorted object is searched only if every order fits, else refused at once.
pub const MAX_MAC_SEARCH_BYTES: usize = 256 * 1024 * 1024;
/// Largest `data` + `stringData` as stored (encrypted): more than the API server keeps (1.5 MiB).
pub const MAX_ENCRYPTED_BYTES: usize = 2 * 1024 * 1024;
/// Largest total of the decrypted values: a Secret holds at most 1 MiB.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most entries of `spec.secretTemplates` (Secrets made from one object).
pub const MAX_TEMPLATES: usize = 32;
/// The list of Secret templates in a SopsSecret's spec.
pub const TEMPLATES_FIELD: &str = "secretTemplates";

/// Secret values by key.
pub type Values = BTreeMap<String, Zeroizing<Vec<u8>>>;

/// The decrypted values of a SopsSecret.
pub struct Opened {
    /// Secret values by key (`stringData` wins over `data` for the same key).
    pub data: Values,
    /// The values of each entry of `spec.secretTemplates`, in list order (empty without one).
    pub templates: Vec<Values>,
    /// Which key of which group opened the data key (public names only).
    pub opened_by: Vec<String>,
    /// Where the object may be opened (`spec.binding`, verified by the MAC); `None` when the
    /// object has no binding.
    pub binding: Option<Binding>,
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
    /// The object is larger than a Secret can be (sizes only, never content).
    #[error("{0}")]
    TooLarge(String),
}

impl OpenError {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            OpenError::Invalid(_) => "InvalidSopsSecret",
            OpenError::NoKey(_) => "NoDecryptionKey",
            OpenError::Tampered => "DecryptionFailed",
            OpenError::MacMismatch(_) => "MacMismatch",
            OpenError::TooLarge(_) => "TooLarge",
        }
    }
}

const SECTIONS: [&str; 2] = ["data", "stringData"];

/// Decrypts `spec` (the object's spec) under `sops` (its metadata block) with `keyring`. Parsing,
/// decryption and the MAC check run on the blocking pool; only the data-key unwrap (which may call
/// KMS or Vault) runs here.
pub async fn open(
    spec: &Map<String, Value>,
    sops: &Value,
    keyring: &Keyring,
) -> Result<Opened, OpenError> {
    // Only the encrypted sections and the metadata: template and object metadata are not encrypted,
    // and with mac_only_encrypted they are not in the MAC either. The binding first, where the
    // API server returns it and `signet encrypt --kind SopsSecret` writes it.
    let mut reduced = Map::new();
    let sealed_binding = match spec.get(BINDING_FIELD) {
        None => None,
        Some(Value::String(text)) if cipher::looks_encrypted(text) => {
            reduced.insert(BINDING_FIELD.to_owned(), Value::String(text.clone()));
            Some(text.clone())
        }
        Some(_) => {
            return Err(OpenError::Invalid(format!(
                "spec.binding is not encrypted: only an encrypted binding is covered by the MAC (encrypt with `signet encrypt --kind SopsSecret` or `sops --encrypt --encrypted-regex '{ENCRYPTED_REGEX}' --mac-only-encrypted`)"
            )));
        }
    };
    // In the order the API server returns them (keys sorted), where the MAC is checked.
    if let Some(values) = spec.get("data") {
        reduced.insert("data".to_owned(), values.clone());
    }
    let templates = match spec.get(TEMPLATES_FIELD) {
        Some(list) => Some(reduced_templates(list)?),
        None => None,
    };
    if let Some(templates) = &templates {
        reduced.insert(TEMPLATES_FIELD.to_owned(), Value::Array(templates.clone()));
    }
    if let Some(values) = spec.get("stringData") {
        reduced.insert("stringData".to_owned(), values.clone());
    }
    let template_count = templates.as_ref().map(Vec::len);
    let document = json!({ "spec": reduced, "sops": sops });
    let decryptor = off_runtime(move || parse(&document)).await??;
    let metadata = decryptor.metadata();
    if !metadata.mac_only_encrypted {
        return Err(OpenError::Invalid(
            "sops.mac_only_encrypted must be true: otherwise the MAC covers metadata the cluster changes (encrypt with `signet encrypt --kind SopsSecret` or `sops --mac-only-encrypted --encrypted-regex '^(data|stringData)$'`)".into(),
        ));
    }
    // The unwrap may call KMS or Vault: awaited here, between the two CPU-bound steps.
    let unwrapped = signet_keys::unwrap_data_key_with_origin(metadata, keyring)
        .await
        .map_err(|e| OpenError::NoKey(no_key_summary(metadata, &e)))?;
    off_runtime(move || decrypt(decryptor, unwrapped, sealed_binding, template_count)).await?
}

/// The encrypted part of `spec.secretTemplates`: each entry's `data` and `stringData` (names,
/// labels and the rest are not encrypted, and not in the MAC), at most [`MAX_TEMPLATES`].
fn reduced_templates(list: &Value) -> Result<Vec<Value>, OpenError> {
    let list = list
        .as_array()
        .ok_or_else(|| OpenError::Invalid(format!("spec.{TEMPLATES_FIELD} is not a list")))?;
    if list.len() > MAX_TEMPLATES {
        return Err(OpenError::Invalid(format!(
            "spec.{TEMPLATES_FIELD} has {} entries; at most {MAX_TEMPLATES} are accepted",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(index, entry)| {
            let entry = entry.as_object().ok_or_else(|| {
                OpenError::Invalid(format!("spec.{TEMPLATES_FIELD}[{index}] is not a map"))
            })?;
            let mut reduced = Map::new();
            for section in SECTIONS {
                if let Some(values) = entry.get(section) {
                    reduced.insert(section.to_owned(), values.clone());
                }
            }
            Ok(Value::Object(reduced))
        })
        .collect()
}

/// Runs CPU-bound work through [`crate::cpu`], so that a large object never stalls the runtime
/// (leases, probes, every other reconcile).
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, OpenError> {
    crate::cpu::run(work)
        .await
        .ok_or_else(|| OpenError::Invalid("decryption stopped unexpectedly".into()))
}

/// The reduced document, its metadata read, within [`MAX_ENCRYPTED_BYTES`].
fn parse(document: &Value) -> Result<Decryptor, OpenError> {
    let bytes = serde_json::to_vec(document)
        .map_err(|e| OpenError::Invalid(format!("cannot serialise the object: {e}")))?;
    if bytes.len() > MAX_ENCRYPTED_BYTES {
        return Err(OpenError::TooLarge(format!(
            "spec.data and spec.stringData hold {} bytes encrypted; at most {MAX_ENCRYPTED_BYTES} are accepted",
            bytes.len()
        )));
    }
    let tree = store_for(Format::Json)
        .parse(&bytes)
        .map_err(|e| OpenError::Invalid(format!("not a sops document: {e}")))?;
    Decryptor::new(tree).map_err(|e| match e {
        signet_sops::Error::NotEncrypted => {
            OpenError::Invalid("no sops metadata (the object is not encrypted)".into())
        }
        e => OpenError::Invalid(format!("invalid sops metadata: {e}")),
    })
}

/// Decrypts the values with the recovered data key and checks the MAC (blocking, bounded).
fn decrypt(
    decryptor: Decryptor,
    unwrapped: signet_keys::UnwrappedDataKey,
    sealed_binding: Option<String>,
    template_count: Option<usize>,
) -> Result<Opened, OpenError> {
    let store = store_for(Format::Json);
    // The MAC is checked below, in every order the API server may have put the keys in.
    let decrypted = decryptor
        .decrypt(
            unwrapped,
            engine::DecryptOptions {
                ignore_mac: true,
                ..engine::DecryptOptions::default()
            },
        )
        .map_err(|_| OpenError::Tampered)?;
    let plain_bytes = Zeroizing::new(
        store
            .emit(&decrypted.tree)
            .map_err(|e| OpenError::Invalid(format!("cannot read the decrypted values: {e}")))?,
    );
    let plain: Value = serde_json::from_slice(&plain_bytes)
        .map_err(|e| OpenError::Invalid(format!("cannot read the decrypted values: {e}")))?;
    let sections = string_sections(&plain, "/spec", "spec")?;
    let template_sections = (0..template_count.unwrap_or_default())
        .map(|i| {
            string_sections(
                &plain,
                &format!("/spec/{TEMPLATES_FIELD}/{i}"),
                &format!("spec.{TEMPLATES_FIELD}[{i}]"),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let total: usize = std::iter::once(&sections)
        .chain(&template_sections)
        .flatten()
        .flatten()
        .map(|(_, v)| v.len())
        .sum();
    if total > MAX_VALUE_BYTES {
        return Err(OpenError::TooLarge(format!(
            "the values hold {total} bytes; a Secret holds at most {MAX_VALUE_BYTES}"
        )));
    }
    let binding = match sealed_binding {
        Some(sealed) => Some(decrypted_binding(&plain, &sealed)?),
        None => None,
    };
    if template_count.is_some() && decrypted.mac_matched != Some(true) {
        return Err(OpenError::MacMismatch(
            " (or the file's keys were not sorted: with secretTemplates, keep every map's keys sorted and the binding first, as the API server returns them — `signet encrypt --kind SopsSecret` does)",
        ));
    }
    if decrypted.mac_matched != Some(true) {
        verify_mac_in_any_order(
            &sections,
            binding.as_deref().map(String::as_bytes),
            &decrypted.metadata,
            &decrypted.data_key,
        )?;
    }
    // Read only once the MAC vouches for it; the message does not repeat it.
    let binding = binding
        .map(|text| Binding::parse(&text))
        .transpose()
        .map_err(|e| OpenError::Invalid(format!("spec.binding: {e}")))?;
    Ok(Opened {
        data: secret_values(sections, "spec")?,
        templates: template_sections
            .into_iter()
            .enumerate()
            .map(|(i, sections)| secret_values(sections, &format!("spec.{TEMPLATES_FIELD}[{i}]")))
            .collect::<Result<_, _>>()?,
        opened_by: decrypted.opened_by,
        binding,
    })
}

/// The plaintext of `spec.binding`, which was `sealed` before decryption. A value the rule of the
/// file did not select stays as it was: not decrypted, not in the MAC, not to be trusted.
fn decrypted_binding(plain: &Value, sealed: &str) -> Result<Zeroizing<String>, OpenError> {
    match plain.pointer(&format!("/spec/{BINDING_FIELD}")) {
        Some(Value::String(text)) if text != sealed => Ok(Zeroizing::new(text.clone())),
        Some(Value::String(_)) => Err(OpenError::Invalid(format!(
            "spec.binding was not decrypted: the file's sops.encrypted_regex must select it ('{ENCRYPTED_REGEX}')"
        ))),
        _ => Err(OpenError::Invalid(
            "spec.binding is not a string".to_owned(),
        )),
    }
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

/// The decrypted `data` and `stringData` sections under `pointer` (`place` in messages); every
/// value must be a string.
fn string_sections(plain: &Value, pointer: &str, place: &str) -> Result<[Section; 2], OpenError> {
    let mut out: [Section; 2] = [Vec::new(), Vec::new()];
    for (slot, section) in SECTIONS.iter().enumerate() {
        let Some(values) = plain.pointer(&format!("{pointer}/{section}")) else {
            continue;
        };
        let map = values
            .as_object()
            .ok_or_else(|| OpenError::Invalid(format!("{place}.{section} is not a map")))?;
        for (key, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                _ => {
                    return Err(OpenError::Invalid(format!(
                        "{place}.{section}.{key} is not a string"
                    )));
                }
            };
            out[slot].push((key.clone(), Zeroizing::new(text)));
        }
    }
    Ok(out)
}

/// Checks the MAC against the orders the file may have had: every order of the keys within each
/// section, times every order of the sections and the binding (when there is one).
fn verify_mac_in_any_order(
    sections: &[Section; 2],
    binding: Option<&[u8]>,
    metadata: &Metadata,
    key: &DataKey,
) -> Result<(), OpenError> {
    let parts = part_orders([
        !sections[0].is_empty(),
        !sections[1].is_empty(),
        binding.is_some(),
    ]);
    let orders = factorial(sections[0].len())
        .saturating_mul(factorial(sections[1].len()))
        .saturating_mul(parts.len());
    if orders > MAX_ORDERS {
        return Err(OpenError::MacMismatch(
            " (or the file's keys were not sorted: with more than 8 keys in a map, or 7 and a binding, keep keys sorted and the binding first as the API server returns them — `signet encrypt --kind SopsSecret` does)",
        ));
    }
    let bytes: usize = sections
        .iter()
        .flatten()
        .map(|(_, v)| v.len())
        .sum::<usize>()
        + binding.map_or(0, <[u8]>::len);
    if orders.saturating_mul(bytes.max(1)) > MAX_MAC_SEARCH_BYTES {
        return Err(OpenError::MacMismatch(
            " (or the file's keys were not sorted: for an object this large, keep keys sorted as the API server returns them — `signet encrypt --kind SopsSecret` does)",
        ));
    }
    let stored = engine::stored_mac(metadata, key)
        .map_err(|_| OpenError::Tampered)?
        .ok_or(OpenError::MacMismatch(""))?;

    let values: [Vec<&[u8]>; 2] =
        [0, 1].map(|i| sections[i].iter().map(|(_, v)| v.as_bytes()).collect());
    let found = for_each_permutation(values[0].len(), |first| {
        for_each_permutation(values[1].len(), |second| {
            let ordered: [Vec<&[u8]>; 3] = [
                first.iter().map(|&i| values[0][i]).collect(),
                second.iter().map(|&i| values[1][i]).collect(),
                binding.into_iter().collect(),
            ];
            // Every order of the parts is compared, so the time taken says nothing about which
            // matched.
            parts.iter().fold(false, |found, order| {
                let values = order.iter().flat_map(|&part| ordered[part].iter().copied());
                found | engine::mac_matches(&stored, &engine::mac_of_values(values, true))
            })
        })
    });
    if found {
        Ok(())
    } else {
        Err(OpenError::MacMismatch(""))
    }
}

/// Every order of the parts present (0 `data`, 1 `stringData`, 2 the binding): at most 3! = 6.
fn part_orders(present: [bool; 3]) -> Vec<Vec<usize>> {
    let parts: Vec<usize> = (0..3).filter(|&part| present[part]).collect();
    let mut orders = Vec::new();
    for_each_permutation(parts.len(), |order| {
        orders.push(order.iter().map(|&i| parts[i]).collect());
        false
    });
    orders
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
fn secret_values(sections: [Section; 2], place: &str) -> Result<Values, OpenError> {
    use base64::Engine as _;
    let [data, string_data] = sections;
    let mut out = BTreeMap::new();
    for (key, text) in data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|_| OpenError::Invalid(format!("{place}.data.{key} is not base64")))?;
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
    fn the_parts_present_are_ordered_every_way() {
        assert_eq!(part_orders([true, true, false]).len(), 2);
        assert_eq!(part_orders([false, true, true]).len(), 2);
        assert_eq!(part_orders([true, false, false]), vec![vec![0]]);
        let all = part_orders([true, true, true]);
        assert_eq!(all.len(), 6);
        let distinct: std::collections::BTreeSet<_> = all.into_iter().collect();
        assert_eq!(distinct.len(), 6);
        assert!(distinct.contains(&vec![2, 0, 1]) && distinct.contains(&vec![0, 2, 1]));
    }

    #[test]
    fn the_order_search_is_refused_beyond_its_budget_without_hashing() {
        // Seven 100 KB values, out of order: 5,040 × 2 orders of 700 KB (7 GB) would be hashed.
        let big = "x".repeat(100_000);
        let section: Section = (0..7)
            .map(|i| (format!("k{i}"), Zeroizing::new(big.clone())))
            .collect();
        let refused = verify_mac_in_any_order(
            &[section, Vec::new()],
            None,
            &Metadata::default(),
            &DataKey::generate(),
        );
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("for an object this large"), "{message}");
    }

    #[test]
    fn factorial_saturates() {
        assert_eq!(factorial(0), 1);
        assert_eq!(factorial(8), MAX_ORDERS);
        assert_eq!(factorial(100), usize::MAX);
    }
}
