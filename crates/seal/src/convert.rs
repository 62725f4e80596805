//! Secret -> SealedSecret (sealing a manifest) and SealedSecret -> Secret (unsealing one), with the
//! same field mapping as kubeseal and the Bitnami controller.
//!
//! Sealing keeps `type`, `immutable`, labels and annotations (in `spec.template.metadata`), merges
//! `stringData` over `data` (stringData wins, as the API server does), writes the scope annotation on
//! both metadata blocks, and drops what the API server set (uid, resourceVersion, timestamps,
//! managedFields, ...), the `kubectl.kubernetes.io/last-applied-configuration` annotation (it may hold
//! the plaintext) and ownerReferences.

use crate::SealError;
use crate::cert::SealingCertificate;
use crate::envelope;
use crate::keys::PrivateKeyRing;
use crate::scope::Scope;
use crate::template;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rayon::prelude::*;
use signet_api::{ObjectMeta, SealedSecret, Secret};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Choices that are not in the Secret itself.
#[derive(Debug, Clone, Default)]
pub struct SealOptions {
    /// Scope to seal for; `None` takes it from the Secret's scope annotations (strict without them).
    pub scope: Option<Scope>,
    /// Namespace to use when the Secret has none.
    pub default_namespace: Option<String>,
    /// Name to use when the Secret has none.
    pub default_name: Option<String>,
    /// Accept a Secret without any value (kubeseal refuses those unless told otherwise).
    pub allow_empty_data: bool,
}

/// Plaintext values by item name.
pub type Values = BTreeMap<String, Zeroizing<Vec<u8>>>;

/// The values of a Secret: `data` decoded from base64, then `stringData` on top.
pub fn secret_values(secret: &Secret) -> Result<Values, SealError> {
    let mut values = Values::new();
    for (key, b64) in secret.data.iter().flatten() {
        let bytes = STANDARD.decode(b64.as_bytes()).map_err(|_| {
            SealError::Manifest(format!("data.{key:?} is not valid standard base64"))
        })?;
        values.insert(key.clone(), Zeroizing::new(bytes));
    }
    for (key, text) in secret.string_data.iter().flatten() {
        values.insert(key.clone(), Zeroizing::new(text.as_bytes().to_vec()));
    }
    Ok(values)
}

/// Seals a Secret manifest into a SealedSecret.
pub fn seal_secret(
    secret: &Secret,
    cert: &SealingCertificate,
    options: &SealOptions,
) -> Result<SealedSecret, SealError> {
    if !secret.kind.is_empty() && secret.kind != signet_api::secret::SECRET_KIND {
        return Err(SealError::Manifest(format!(
            "expected a Secret, got kind {:?}",
            secret.kind
        )));
    }
    let mut meta = secret.metadata.clone();
    meta.strip_server_fields();
    if meta.namespace.as_deref().is_none_or(str::is_empty) {
        meta.namespace.clone_from(&options.default_namespace);
    }
    if meta.name.as_deref().is_none_or(str::is_empty) {
        meta.name.clone_from(&options.default_name);
    }
    let name = meta
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| SealError::Manifest("the Secret has no metadata.name".to_owned()))?;
    let scope = options
        .scope
        .unwrap_or_else(|| Scope::from_annotations(&meta));
    let label = scope.label(meta.namespace.as_deref(), Some(&name))?;

    let values = secret_values(secret)?;
    if values.is_empty() && !options.allow_empty_data {
        return Err(SealError::Manifest(format!(
            "Secret {name:?} has no data; refusing to seal an empty Secret (use --allow-empty-data to seal it anyway)"
        )));
    }
    let encrypted_data = values
        .par_iter()
        .map(|(key, value)| Ok((key.clone(), envelope::seal(cert, &label, value)?)))
        .collect::<Result<BTreeMap<_, _>, SealError>>()?;

    scope.annotate(&mut meta);
    let mut outer = ObjectMeta {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        ..ObjectMeta::default()
    };
    scope.annotate(&mut outer);
    let mut sealed = SealedSecret::new(outer);
    sealed.spec.template.metadata = meta;
    sealed.spec.template.type_.clone_from(&secret.type_);
    sealed.spec.template.immutable = secret.immutable;
    sealed.spec.encrypted_data = encrypted_data;
    Ok(sealed)
}

/// The OAEP label a SealedSecret's values are bound to: its scope annotations and its own
/// metadata name and namespace.
pub fn sealed_secret_label(sealed: &SealedSecret) -> Result<Vec<u8>, SealError> {
    Scope::from_annotations(&sealed.metadata).label(
        sealed.metadata.namespace.as_deref(),
        sealed.metadata.name.as_deref(),
    )
}

/// Seals the values of `secret` into an existing SealedSecret (adding or replacing items), using the
/// existing object's name, namespace and scope.
pub fn merge_into(
    existing: &mut SealedSecret,
    secret: &Secret,
    cert: &SealingCertificate,
) -> Result<(), SealError> {
    let label = sealed_secret_label(existing)?;
    for (key, value) in &secret_values(secret)? {
        existing
            .spec
            .encrypted_data
            .insert(key.clone(), envelope::seal(cert, &label, value)?);
    }
    Ok(())
}

/// A copy of `sealed` whose items are `values` sealed to `cert` under the object's own scope label:
/// metadata, scope annotations and template are kept, the deprecated `spec.data` is dropped (its
/// values are among `values`). What re-sealing to a newer key means, online and offline.
pub fn reseal_values(
    sealed: &SealedSecret,
    values: &Values,
    cert: &SealingCertificate,
) -> Result<SealedSecret, SealError> {
    let label = sealed_secret_label(sealed)?;
    let mut out = sealed.clone();
    out.spec.data = None;
    out.spec.encrypted_data = values
        .par_iter()
        .map(|(key, value)| Ok((key.clone(), envelope::seal(cert, &label, value)?)))
        .collect::<Result<_, SealError>>()?;
    Ok(out)
}

/// Opens every value of a SealedSecret. Any failure is the uniform [`SealError::Unseal`].
pub fn unseal_values(sealed: &SealedSecret, ring: &PrivateKeyRing) -> Result<Values, SealError> {
    let label = sealed_secret_label(sealed)?;
    let mut values = Values::new();
    if let Some(legacy) = sealed.spec.data.as_deref().filter(|d| !d.is_empty()) {
        // Deprecated format: the whole Secret, JSON, sealed as one value.
        let json = envelope::open(ring, &label, legacy)?;
        let inner: Secret = serde_json::from_slice(&json).map_err(|_| SealError::Unseal)?;
        values.extend(secret_values(&inner).map_err(|_| SealError::Unseal)?);
    }
    // RSA decryption dominates; items are independent, so open them in parallel.
    let opened = sealed
        .spec
        .encrypted_data
        .par_iter()
        .map(|(key, value)| Ok((key.clone(), envelope::open(ring, &label, value)?)))
        .collect::<Result<Vec<_>, SealError>>()?;
    values.extend(opened);
    Ok(values)
}

/// Unseals a SealedSecret into the Secret the controller would create (without ownerReferences: the
/// caller that applies it adds its own), as Bitnami v0.40.0 does: each `spec.template.data` entry is
/// rendered (see [`crate::template`]) over the unsealed values and the other entries' plain text
/// (an unsealed value wins a name clash); a rendered entry never replaces an unsealed value of the
/// same name; an entry set to `null` removes that item from the Secret.
pub fn unseal_sealed_secret(
    sealed: &SealedSecret,
    ring: &PrivateKeyRing,
) -> Result<Secret, SealError> {
    let values = unseal_values(sealed, ring)?;
    let template = &sealed.spec.template;
    let mut meta = template.metadata.clone();
    meta.name.clone_from(&sealed.metadata.name);
    meta.namespace.clone_from(&sealed.metadata.namespace);
    let mut data = BTreeMap::new();
    for (key, value) in &values {
        data.insert(key.clone(), STANDARD.encode(value.as_slice()));
    }
    if let Some(entries) = &template.data {
        let plain = entries
            .iter()
            .filter(|(k, _)| !values.contains_key(*k))
            .filter_map(|(k, v)| Some((k, v.as_deref()?.as_bytes())));
        let mut renderer =
            template::Renderer::new(values.iter().map(|(k, v)| (k, v.as_slice())).chain(plain));
        // Each rendered entry is bounded; so is their sum (many entries could each hold 1 MiB).
        let mut rendered_total = 0usize;
        for (key, tpl) in entries {
            let Some(tpl) = tpl else {
                data.remove(key);
                continue;
            };
            let rendered = renderer.render(key, tpl)?;
            rendered_total = rendered_total.saturating_add(rendered.len());
            if rendered_total > template::MAX_RENDERED_BYTES {
                return Err(SealError::Template {
                    key: key.clone(),
                    reason: format!(
                        "the rendered templates total more than {} bytes, more than a Secret holds",
                        template::MAX_RENDERED_BYTES
                    ),
                });
            }
            if !sealed.spec.encrypted_data.contains_key(key) {
                data.insert(key.clone(), STANDARD.encode(rendered.as_slice()));
            }
        }
    }
    let mut secret = Secret::new(meta);
    secret.type_.clone_from(&template.type_);
    secret.immutable = template.immutable;
    secret.data = Some(data);
    Ok(secret)
}
