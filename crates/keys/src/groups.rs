//! Wrapping and unwrapping a file's data key across its key groups, as sops does: with one group
//! every key wraps the whole data key; with two or more, the key is split with Shamir and share
//! *i* is wrapped by every key of group *i*, and `shamir_threshold` groups are needed to get it
//! back.

use signet_sops::DataKey;
use signet_sops::metadata::{KeyGroup, Metadata};
use zeroize::Zeroizing;

use crate::Error;
use crate::keyring::Keyring;
use crate::masterkey::{KeyType, MasterKey, block_on};

/// The `shamir_threshold` sops records for `groups` key groups when `requested` was asked
/// for (`None`/0 means "all groups"); `None` for a single group, which is never split.
pub fn shamir_threshold_for(groups: usize, requested: Option<usize>) -> Option<usize> {
    if groups <= 1 {
        return None;
    }
    Some(requested.filter(|t| *t > 0).unwrap_or(groups))
}

/// Wraps `data_key` for every key of every group. See [`shamir_threshold_for`] for the
/// threshold to record in the metadata.
pub async fn wrap_data_key_async<K: MasterKey>(
    data_key: &DataKey,
    groups: &[Vec<K>],
    shamir_threshold: Option<usize>,
) -> Result<Vec<KeyGroup>, Error> {
    if groups.is_empty() {
        return Err(Error::InvalidKeyGroups(
            "no master keys were given".to_owned(),
        ));
    }
    if let Some(index) = groups.iter().position(Vec::is_empty) {
        return Err(Error::InvalidKeyGroups(format!(
            "key group {index} is empty"
        )));
    }
    let parts: Vec<Zeroizing<Vec<u8>>> = match shamir_threshold_for(groups.len(), shamir_threshold)
    {
        None => vec![Zeroizing::new(data_key.as_bytes().to_vec())],
        Some(threshold) => {
            if threshold > groups.len() {
                return Err(Error::InvalidKeyGroups(format!(
                    "shamir_threshold {threshold} is larger than the number of key groups ({})",
                    groups.len()
                )));
            }
            signet_sops::shamir::split(data_key.as_bytes(), groups.len(), threshold)
                .map_err(Error::Shamir)?
        }
    };
    let mut wrapped = Vec::with_capacity(groups.len());
    for (group, part) in groups.iter().zip(&parts) {
        let mut entries = Vec::with_capacity(group.len());
        for key in group {
            entries.push(key.wrap(part).await?);
        }
        wrapped.push(entries);
    }
    Ok(wrapped)
}

/// Blocking [`wrap_data_key_async`].
pub fn wrap_data_key<K: MasterKey>(
    data_key: &DataKey,
    groups: &[Vec<K>],
    shamir_threshold: Option<usize>,
) -> Result<Vec<KeyGroup>, Error> {
    block_on(wrap_data_key_async(data_key, groups, shamir_threshold))
}

/// Like [`wrap_data_key_async`], for `updatekeys`: without Shamir (one group before and after),
/// entries of `existing` whose key is still wanted are kept byte for byte and only new keys
/// wrap, so the file's diff shows just the keys that changed. `existing` must wrap this same
/// `data_key` (it is the metadata the key was unwrapped from). With key groups every share is
/// new, so everything is wrapped again, as sops does.
pub async fn rewrap_data_key_async<K: MasterKey>(
    data_key: &DataKey,
    existing: &[KeyGroup],
    groups: &[Vec<K>],
    shamir_threshold: Option<usize>,
) -> Result<Vec<KeyGroup>, Error> {
    if groups.len() != 1 || existing.len() != 1 {
        return wrap_data_key_async(data_key, groups, shamir_threshold).await;
    }
    if groups[0].is_empty() {
        return Err(Error::InvalidKeyGroups("key group 0 is empty".to_owned()));
    }
    let mut entries = Vec::with_capacity(groups[0].len());
    for key in &groups[0] {
        let kept = existing[0]
            .iter()
            .find(|e| KeyType::of_entry(e) == key.key_type() && entry_name(e) == key.name());
        match kept {
            Some(entry) => entries.push(entry.clone()),
            None => entries.push(key.wrap(data_key.as_bytes()).await?),
        }
    }
    Ok(vec![entries])
}

/// Blocking [`rewrap_data_key_async`].
pub fn rewrap_data_key<K: MasterKey>(
    data_key: &DataKey,
    existing: &[KeyGroup],
    groups: &[Vec<K>],
    shamir_threshold: Option<usize>,
) -> Result<Vec<KeyGroup>, Error> {
    block_on(rewrap_data_key_async(
        data_key,
        existing,
        groups,
        shamir_threshold,
    ))
}

/// What happened trying one group.
struct GroupOutcome {
    secret: Option<Zeroizing<Vec<u8>>>,
    /// The public name of the entry that opened it.
    opened_by: Option<String>,
    tried: Vec<String>,
    errors: Vec<String>,
}

async fn unwrap_group(group: &KeyGroup, keyring: &Keyring) -> GroupOutcome {
    let mut order: Vec<usize> = (0..group.len()).collect();
    order.sort_by_key(|&i| keyring.type_rank(KeyType::of_entry(&group[i])));
    let mut outcome = GroupOutcome {
        secret: None,
        opened_by: None,
        tried: Vec::new(),
        errors: Vec::new(),
    };
    for i in order {
        let entry = &group[i];
        outcome.tried.push(entry_name(entry));
        match keyring.unwrap_entry(entry).await {
            Ok(Some(secret)) => {
                outcome.secret = Some(secret);
                outcome.opened_by = outcome.tried.last().cloned();
                return outcome;
            }
            Ok(None) => {}
            Err(e) => outcome.errors.push(e.to_string()),
        }
    }
    outcome
}

/// A recovered data key and the keys that opened it (signet-sops' type: what a
/// [`signet_sops::Decryptor`] decrypts with).
pub use signet_sops::UnwrappedDataKey;

/// The keyring is how a [`signet_sops::Decryptor`] gets its data key: [`unwrap_data_key_with_origin`]
/// driven to completion on the calling thread (see [`block_on`]).
impl signet_sops::KeyUnwrapper for Keyring {
    type Error = Error;

    fn unwrap_data_key(&self, metadata: &Metadata) -> Result<UnwrappedDataKey, Error> {
        block_on(unwrap_data_key_with_origin(metadata, self))
    }
}

/// Recovers the data key of a file from its metadata with the keys in `keyring`.
pub async fn unwrap_data_key_async(
    metadata: &Metadata,
    keyring: &Keyring,
) -> Result<DataKey, Error> {
    Ok(unwrap_data_key_with_origin(metadata, keyring)
        .await?
        .data_key)
}

/// [`unwrap_data_key_async`], also saying which key of which group opened the data key.
pub async fn unwrap_data_key_with_origin(
    metadata: &Metadata,
    keyring: &Keyring,
) -> Result<UnwrappedDataKey, Error> {
    let groups = &metadata.key_groups;
    let load_problems = || keyring.problems();
    if groups.len() <= 1 {
        let outcome = match groups.first() {
            Some(group) => unwrap_group(group, keyring).await,
            None => GroupOutcome {
                secret: None,
                opened_by: None,
                tried: Vec::new(),
                errors: Vec::new(),
            },
        };
        return match outcome.secret {
            Some(secret) => Ok(UnwrappedDataKey {
                data_key: DataKey::from_slice(&secret).ok_or_else(|| Error::InvalidShare {
                    group: 0,
                    message: format!("decrypted data key is {} bytes, expected 32", secret.len()),
                })?,
                opened_by: outcome
                    .opened_by
                    .map(|name| format!("group 0: {name}"))
                    .into_iter()
                    .collect(),
            }),
            None => Err(Error::NoIdentityMatched {
                recipients: outcome.tried,
                problems: outcome.errors.into_iter().chain(load_problems()).collect(),
            }),
        };
    }

    let threshold = metadata
        .shamir_threshold
        .filter(|t| *t > 0)
        .unwrap_or(groups.len());
    let mut shares: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut opened_by = Vec::new();
    let mut failures = Vec::new();
    for (index, group) in groups.iter().enumerate() {
        if shares.len() >= threshold {
            break;
        }
        let outcome = unwrap_group(group, keyring).await;
        match outcome.secret {
            Some(share) => {
                if share.len() != DataKey::LEN + 1 {
                    return Err(Error::InvalidShare {
                        group: index,
                        message: format!("share is {} bytes, expected 33", share.len()),
                    });
                }
                shares.push(share);
                if let Some(name) = outcome.opened_by {
                    opened_by.push(format!("group {index}: {name}"));
                }
            }
            None => {
                let mut reason = format!(
                    "group {index}: no identity matched {}",
                    outcome.tried.join(", ")
                );
                if !outcome.errors.is_empty() {
                    reason.push_str(&format!(" ({})", outcome.errors.join("; ")));
                }
                failures.push(reason);
            }
        }
    }
    if shares.len() < threshold {
        failures.extend(load_problems());
        return Err(Error::ShamirThresholdNotMet {
            threshold,
            recovered: shares.len(),
            failures,
        });
    }
    let refs: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
    let combined = signet_sops::shamir::combine(&refs).map_err(Error::Shamir)?;
    let data_key = DataKey::from_slice(&combined).ok_or_else(|| Error::InvalidShare {
        group: 0,
        message: format!("combined data key is {} bytes, expected 32", combined.len()),
    })?;
    Ok(UnwrappedDataKey {
        data_key,
        opened_by,
    })
}

/// Blocking [`unwrap_data_key_async`].
pub fn unwrap_data_key(metadata: &Metadata, keyring: &Keyring) -> Result<DataKey, Error> {
    block_on(unwrap_data_key_async(metadata, keyring))
}

/// The public name of a metadata entry (recipient, ARN, URI, fingerprint).
pub fn entry_name(entry: &signet_sops::metadata::MasterKeyEntry) -> String {
    use signet_sops::metadata::MasterKeyEntry as E;
    match entry {
        E::Age(a) => a.recipient.clone(),
        E::Kms(k) => match &k.role {
            Some(role) if !role.is_empty() => format!("{}+{}", k.arn, role),
            _ => k.arn.clone(),
        },
        E::HcVault(v) => format!(
            "{}/v1/{}/keys/{}",
            v.vault_address, v.engine_path, v.key_name
        ),
        E::Pgp(p) => p.fp.clone(),
        E::Other(o) => o.kind.clone(),
        #[allow(unreachable_patterns)]
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspec::KeySpec;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn futures_are_send_for_async_callers() {
        let keyring = Keyring::empty();
        let metadata = Metadata::default();
        let data_key = DataKey::generate();
        let groups: Vec<Vec<KeySpec>> = Vec::new();
        let unwrap = unwrap_data_key_async(&metadata, &keyring);
        assert_send(&unwrap);
        let wrap = wrap_data_key_async(&data_key, &groups, None);
        assert_send(&wrap);
        assert!(matches!(
            block_on(unwrap),
            Err(Error::NoIdentityMatched { .. })
        ));
        assert!(matches!(block_on(wrap), Err(Error::InvalidKeyGroups(_))));
    }

    #[test]
    fn a_shamir_failure_says_shamir_once() {
        let err = signet_sops::shamir::combine(&[b"a".as_slice(), b"b".as_slice()])
            .map_err(Error::Shamir)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("shamir: "), "{text}");
        assert_eq!(text.matches("shamir").count(), 1, "{text}");
    }

    #[test]
    fn threshold_defaults_to_all_groups_and_single_group_has_none() {
        assert_eq!(shamir_threshold_for(1, Some(3)), None);
        assert_eq!(shamir_threshold_for(3, None), Some(3));
        assert_eq!(shamir_threshold_for(3, Some(0)), Some(3));
        assert_eq!(shamir_threshold_for(3, Some(2)), Some(2));
    }
}
