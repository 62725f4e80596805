//! `keys retire --apply`: take a sealing key's Secret off the controller's active keys, by
//! relabelling it `sealedsecrets.bitnami.com/sealed-secrets-key=retired` (the controller watches
//! only `=active`, as the Bitnami controller does).

use crate::exit::{CliError, CliResult, code};
use crate::seal::{ProxyTarget, load_config};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

/// The label the controller selects its keys by.
pub const SEALING_KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";
/// What a retired key is labelled.
pub const RETIRED: &str = "retired";

/// Where the controller's keys are and how to reach the cluster.
pub struct ClusterTarget {
    /// The controller's namespace.
    pub namespace: String,
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
}

/// Relabels the active key Secret whose certificate's public key has `fingerprint`; returns its
/// name. Refuses when it is the only active key (the controller would have nothing to seal with).
pub fn retire_key_secret(target: ClusterTarget, fingerprint: &str) -> CliResult<String> {
    let fail = |m: String| CliError::new(code::ONLINE_MODE_UNAVAILABLE, m);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the async runtime: {e}")))?;
    let namespace = target.namespace.clone();
    runtime.block_on(async move {
        let config = load_config(&ProxyTarget {
            name: String::new(),
            namespace: namespace.clone(),
            kubeconfig: target.kubeconfig,
            context: target.context,
        })
        .await
        .map_err(fail)?;
        let client = kube::Client::try_from(config)
            .map_err(|e| fail(format!("cannot build a Kubernetes client: {e}")))?;
        let secrets: Api<Secret> = Api::namespaced(client, &namespace);
        let active = secrets
            .list(&ListParams::default().labels(&format!("{SEALING_KEY_LABEL}=active")))
            .await
            .map_err(|e| fail(format!("cannot list the key Secrets in {namespace}: {e}")))?;
        let count = active.items.len();
        let found = active.items.into_iter().find(|secret| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get("tls.crt"))
                .and_then(|crt| {
                    signet_seal::SealingCertificate::from_pem_at(&crt.0, UNIX_EPOCH).ok()
                })
                .is_some_and(|cert| {
                    crate::rekey::sealed::fingerprint(cert.public_key_der()) == fingerprint
                })
        });
        let Some(secret) = found else {
            return Err(CliError::new(
                code::COULD_NOT_RETRIEVE_KEY,
                format!(
                    "no Secret labelled {SEALING_KEY_LABEL}=active in {namespace} holds the key \
                     {fingerprint}"
                ),
            ));
        };
        let name = secret.metadata.name.unwrap_or_default();
        if count == 1 {
            return Err(CliError::new(
                code::KEY_IN_USE,
                format!(
                    "{namespace}/{name} is the controller's only active key: add a new key first \
                     (signet keys new-sealing-key --secret-out) and re-seal to it"
                ),
            ));
        }
        let patch = serde_json::json!({"metadata": {"labels": {SEALING_KEY_LABEL: RETIRED}}});
        secrets
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| fail(format!("cannot relabel {namespace}/{name}: {e}")))?;
        Ok(name)
    })
}
