//! Rendering `charts/signet` with helm and applying what it renders to limit the controller (RBAC
//! and the Secret-deletion admission policy): shared by the chart suite and the image suite, which
//! runs the controller's image under the rendered RBAC.

#![allow(dead_code)]

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams};
use serde_json::Value;
use signet_testkit::ApiServer;
use std::path::PathBuf;
use std::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The workspace root.
pub fn repo_root() -> PathBuf {
    signet_tests::sandbox::workspace_root()
}

/// `charts/signet`.
pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/signet")
}

/// Runs helm with `args`, failing with its stderr when it exits non-zero.
pub fn helm(args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let helm = signet_testkit::peer_path("helm")?;
    let output = Command::new(helm)
        .args(args)
        .current_dir(repo_root())
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "helm {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// `helm template` into the objects it renders (empty documents dropped).
pub fn render(
    release: &str,
    namespace: &str,
    sets: &[&str],
) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let chart = chart_dir();
    let chart = chart.to_string_lossy();
    let mut args = vec!["template", release, &chart, "--namespace", namespace];
    for set in sets {
        args.extend(["--set", set]);
    }
    let yaml = helm(&args)?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml)?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The objects of `kind`.
pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The one object of `kind` (asserts there is exactly one).
pub fn one_of_kind<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(objects, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, got {}", found.len());
    found[0]
}

/// Server-side applies one rendered object of a kind the RBAC test installs.
pub async fn apply(admin: &kube::Client, object: &Value) -> TestResult {
    let params = PatchParams::apply("signet-chart-test").force();
    let name = object["metadata"]["name"]
        .as_str()
        .ok_or("unnamed object")?;
    let namespace = object["metadata"]["namespace"].as_str();
    let ns = || namespace.ok_or("namespaced object without namespace");
    match object["kind"].as_str() {
        Some("ServiceAccount") => {
            let typed: ServiceAccount = serde_json::from_value(object.clone())?;
            Api::<ServiceAccount>::namespaced(admin.clone(), ns()?)
                .patch(name, &params, &Patch::Apply(&typed))
                .await?;
        }
        Some("ClusterRole") => {
            let typed: ClusterRole = serde_json::from_value(object.clone())?;
            Api::<ClusterRole>::all(admin.clone())
                .patch(name, &params, &Patch::Apply(&typed))
                .await?;
        }
        Some("ClusterRoleBinding") => {
            let typed: ClusterRoleBinding = serde_json::from_value(object.clone())?;
            Api::<ClusterRoleBinding>::all(admin.clone())
                .patch(name, &params, &Patch::Apply(&typed))
                .await?;
        }
        Some("Role") => {
            let typed: Role = serde_json::from_value(object.clone())?;
            Api::<Role>::namespaced(admin.clone(), ns()?)
                .patch(name, &params, &Patch::Apply(&typed))
                .await?;
        }
        Some("RoleBinding") => {
            let typed: RoleBinding = serde_json::from_value(object.clone())?;
            Api::<RoleBinding>::namespaced(admin.clone(), ns()?)
                .patch(name, &params, &Patch::Apply(&typed))
                .await?;
        }
        Some("ValidatingAdmissionPolicy") => {
            let typed: ValidatingAdmissionPolicy = serde_json::from_value(object.clone())?;
            Api::<ValidatingAdmissionPolicy>::all(admin.clone())
                .patch(name, &params, &Patch::Apply(&typed))
                .await?;
        }
        Some("ValidatingAdmissionPolicyBinding") => {
            let typed: ValidatingAdmissionPolicyBinding = serde_json::from_value(object.clone())?;
            Api::<ValidatingAdmissionPolicyBinding>::all(admin.clone())
                .patch(name, &params, &Patch::Apply(&typed))
                .await?;
        }
        other => return Err(format!("not an RBAC object: {other:?}").into()),
    }
    Ok(())
}

/// What the chart installs to limit the controller: RBAC and the Secret-deletion admission policy.
pub const RBAC_KINDS: [&str; 7] = [
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
];

/// Renders the chart as a unique release into `release_ns` with `sets`, applies its RBAC objects
/// and returns a client authenticated as the controller's ServiceAccount, with the objects
/// applied.
pub async fn install_rbac(
    server: &ApiServer,
    admin: &kube::Client,
    release_ns: &str,
    sets: Vec<String>,
) -> Result<(kube::Client, Vec<Value>), Box<dyn std::error::Error>> {
    let objects = render_release(release_ns, sets).await?;
    let applied = apply_rbac(admin, &objects).await?;
    let account = service_account(&objects)?;
    let controller = server.service_account_client(release_ns, &account).await?;
    Ok((controller, applied))
}

/// `helm template` of the chart as a unique release into `release_ns` with `sets`: cluster-scoped
/// names carry the release name, so they are unique per run on a shared API server.
pub async fn render_release(
    release_ns: &str,
    sets: Vec<String>,
) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let release = signet_testkit::unique_name("chart");
    let release_ns = release_ns.to_owned();
    Ok(tokio::task::spawn_blocking(move || {
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        render(&release, &release_ns, &sets).map_err(|e| e.to_string())
    })
    .await??)
}

/// Applies the RBAC objects ([`RBAC_KINDS`]) among `objects`; returns those it applied.
pub async fn apply_rbac(
    admin: &kube::Client,
    objects: &[Value],
) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let mut applied = Vec::new();
    for object in objects
        .iter()
        .filter(|o| RBAC_KINDS.iter().any(|k| o["kind"] == *k))
    {
        apply(admin, object).await?;
        applied.push(object.clone());
    }
    Ok(applied)
}

/// The name of the controller's ServiceAccount among the rendered `objects`.
pub fn service_account(objects: &[Value]) -> Result<String, Box<dyn std::error::Error>> {
    Ok(one_of_kind(objects, "ServiceAccount")["metadata"]["name"]
        .as_str()
        .ok_or("unnamed ServiceAccount")?
        .to_owned())
}
