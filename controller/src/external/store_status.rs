//! The `Ready` condition of SecretStores and ClusterSecretStores: build the provider (reading the
//! credentials the store names) and ask it to validate them (a login, a cheap read). Checked when
//! the store changes and every [`REVALIDATE_EVERY`].

use super::reconcile::ExternalContext;
use super::stores::FoundStore;
use super::{ClusterSecretStore, READY_CONDITION, SecretStore, SecretStoreStatus};
use crate::Error;
use crate::target::{self, ConditionEvents, Outcome};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How often a store's credentials are checked again.
pub const REVALIDATE_EVERY: Duration = Duration::from_secs(600);

/// A store kind whose status this module keeps.
pub trait StoreObject:
    Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The store as the provider cache knows it.
    fn found(&self) -> FoundStore;
    /// Its status.
    fn status(&self) -> Option<&SecretStoreStatus>;
    /// The API of this object (namespaced or cluster-wide).
    fn api(&self, client: kube::Client) -> Api<Self>;
}

impl StoreObject for SecretStore {
    fn found(&self) -> FoundStore {
        let namespace = self.namespace().unwrap_or_default();
        FoundStore {
            identity: format!(
                "SecretStore/{namespace}/{}@{}",
                self.name_any(),
                self.resource_version().unwrap_or_default()
            ),
            spec: self.spec.clone(),
            namespace: Some(namespace),
        }
    }
    fn status(&self) -> Option<&SecretStoreStatus> {
        self.status.as_ref()
    }
    fn api(&self, client: kube::Client) -> Api<Self> {
        Api::namespaced(client, &self.namespace().unwrap_or_default())
    }
}

impl StoreObject for ClusterSecretStore {
    fn found(&self) -> FoundStore {
        FoundStore {
            identity: format!(
                "ClusterSecretStore//{}@{}",
                self.name_any(),
                self.resource_version().unwrap_or_default()
            ),
            spec: self.spec.store.clone(),
            namespace: None,
        }
    }
    fn status(&self) -> Option<&SecretStoreStatus> {
        self.status.as_ref()
    }
    fn api(&self, client: kube::Client) -> Api<Self> {
        Api::all(client)
    }
}

/// The events of a store's `Ready` condition.
const EVENTS: ConditionEvents = ConditionEvents {
    action: "Validate",
    success_reason: "Valid",
    success_note: "store validated",
};

/// Validates one store and records the outcome.
pub async fn reconcile<S: StoreObject>(
    store: Arc<S>,
    ctx: Arc<ExternalContext>,
) -> Result<Action, Error> {
    let base = &ctx.base;
    let found = store.found();
    let kind = S::kind(&()).into_owned();
    base.metrics.count_reconcile(&kind);
    let outcome = match ctx.providers.provider(base, &found).await {
        Err(err @ super::stores::StoreError::Refused(_)) => {
            Outcome::failed(err.reason(), err.to_string())
        }
        Err(err) => Outcome::failed("InvalidProviderConfig", err.to_string()),
        Ok(provider) => {
            let checked = provider.validate().await;
            let result = match &checked {
                Ok(()) => "ok",
                Err(e) => e.reason(),
            };
            base.metrics
                .count_provider_call(provider.kind(), "validate", result);
            match checked {
                Ok(()) => Outcome::written("Valid", "store validated", None),
                Err(err) => {
                    ctx.providers.forget(&found);
                    Outcome::failed("ValidationFailed", err.to_string())
                }
            }
        }
    };
    if !outcome.succeeded() {
        base.metrics.count_error(&kind, outcome.reason);
    }
    let old = store
        .status()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY_CONDITION));
    let (condition, changed) = target::next_condition(old, READY_CONDITION, &outcome);
    if changed {
        let api = store.api(base.client.clone());
        base.metrics.count_write("status");
        api.patch_status(
            &store.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [condition]}})),
        )
        .await?;
        target::publish_condition_event(base, store.as_ref(), &condition, &EVENTS).await;
    }
    Ok(Action::requeue(if outcome.succeeded() {
        REVALIDATE_EVERY
    } else {
        Duration::from_secs(30)
    }))
}

/// Retry policy for API errors.
pub fn error_policy<S: StoreObject>(
    store: Arc<S>,
    error: &Error,
    _: Arc<ExternalContext>,
) -> Action {
    tracing::warn!(name = %store.name_any(), error = %error, "store validation failed; retrying");
    Action::requeue(Duration::from_secs(10))
}
