//! `charts/signet`: `helm lint` passes, `helm template` renders a hardened Deployment and the
//! generated CRD only when asked, the chart's CRD file is the current `crdgen` output, and the
//! rendered RBAC, applied to the real API server, lets the controller's ServiceAccount do what the
//! controller needs and nothing more.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::Value;
use signet_testkit::ApiServer;
use std::path::{Path, PathBuf};
use std::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CRD_FILE: &str = "charts/signet/files/crds/sealedsecrets.bitnami.com.yaml";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn chart_dir() -> PathBuf {
    repo_root().join("charts/signet")
}

/// Runs helm with `args`, failing with its stderr when it exits non-zero.
fn helm(args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
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
fn render(
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

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn one_of_kind<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(objects, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, got {}", found.len());
    found[0]
}

/// The `crdgen` binary's output (built like the other suites build their binaries).
fn crdgen_output() -> Result<String, Box<dyn std::error::Error>> {
    let root = repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args(["build", "-q", "-p", "signet-controller", "--bin", "crdgen"])
        .current_dir(&root)
        .status()?;
    assert!(status.success(), "cargo build --bin crdgen failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let output = Command::new(target.join("debug/crdgen")).output()?;
    assert!(output.status.success(), "crdgen failed");
    Ok(String::from_utf8(output.stdout)?)
}

#[test]
fn chart_lints_strictly() -> TestResult {
    let chart = chart_dir();
    let out = helm(&["lint", "--strict", &chart.to_string_lossy()])?;
    assert!(out.contains("0 chart(s) failed"), "{out}");
    Ok(())
}

#[test]
fn crd_file_is_current_crdgen_output() -> TestResult {
    let file = std::fs::read_to_string(repo_root().join(CRD_FILE))?;
    let header: Vec<&str> = file.lines().take_while(|l| l.starts_with('#')).collect();
    assert!(
        header.iter().any(|l| l.contains("--bin crdgen")),
        "the CRD file must say how to regenerate it"
    );
    let body: String = file
        .split_inclusive('\n')
        .skip(header.len())
        .collect::<String>();
    let generated = crdgen_output()?;
    assert!(
        body == generated,
        "{CRD_FILE} is stale: regenerate it with the command in its header"
    );
    Ok(())
}

#[test]
fn default_render_is_hardened_and_installs_the_crd() -> TestResult {
    let objects = render("signet", "kube-system", &[])?;

    let crd = one_of_kind(&objects, "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "sealedsecrets.bitnami.com");
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let generated: Value = serde_saphyr::from_str(&crdgen_output()?)?;
    assert_eq!(
        crd["spec"], generated["spec"],
        "rendered CRD spec differs from crdgen"
    );

    let deployment = one_of_kind(&objects, "Deployment");
    assert_eq!(deployment["metadata"]["namespace"], "kube-system");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let containers = pod["containers"].as_array().ok_or("no containers")?;
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let security = &container["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    assert_ne!(security["privileged"], true);
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert!(container["resources"]["requests"]["cpu"].is_string());

    let env = container["env"].as_array().ok_or("no env")?;
    let env_var = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
    let pod_name = env_var("POD_NAME").ok_or("POD_NAME missing")?;
    assert_eq!(
        pod_name["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    let namespace = env_var("SIGNET_CONTROLLER_NAMESPACE").ok_or("namespace env missing")?;
    assert_eq!(
        namespace["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        env_var("SIGNET_KEY_RENEW_PERIOD").ok_or("renew env missing")?["value"],
        "30d"
    );
    assert_eq!(
        env_var("SIGNET_LEADER_ELECT").ok_or("leader env missing")?["value"],
        "true"
    );
    assert_eq!(
        env_var("SIGNET_LISTEN_ADDR").ok_or("listen env missing")?["value"],
        "0.0.0.0:8080"
    );
    assert_eq!(
        env_var("SIGNET_METRICS_ADDR").ok_or("metrics env missing")?["value"],
        "0.0.0.0:8081"
    );
    assert!(env_var("SIGNET_WATCH_NAMESPACE").is_none());

    let ports = container["ports"].as_array().ok_or("no ports")?;
    let port = |name: &str| {
        ports
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["containerPort"].clone())
    };
    assert_eq!(port("http"), Some(serde_json::json!(8080)));
    assert_eq!(port("metrics"), Some(serde_json::json!(8081)));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "http");

    // kubeseal's default: services/sealed-secrets-controller:http/proxy in the release namespace.
    let services = of_kind(&objects, "Service");
    let api_service = services
        .iter()
        .find(|s| s["metadata"]["name"] == "sealed-secrets-controller")
        .ok_or("no sealed-secrets-controller Service")?;
    let service_ports = api_service["spec"]["ports"].as_array().ok_or("no ports")?;
    assert!(
        service_ports
            .iter()
            .any(|p| p["name"] == "http" && p["port"] == 8080 && p["targetPort"] == "http")
    );
    assert_eq!(
        api_service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // Off by default.
    assert!(of_kind(&objects, "ServiceMonitor").is_empty());
    assert!(of_kind(&objects, "NetworkPolicy").is_empty());
    Ok(())
}

#[test]
fn options_skip_the_crd_and_add_monitoring_and_network_policy() -> TestResult {
    let objects = render(
        "signet",
        "secrets-system",
        &[
            "installCRDs=false",
            "serviceMonitor.enabled=true",
            "networkPolicy.enabled=true",
            "service.name=signet-api",
        ],
    )?;
    assert!(of_kind(&objects, "CustomResourceDefinition").is_empty());
    let monitor = one_of_kind(&objects, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    let monitored = &monitor["spec"]["selector"]["matchLabels"];
    let metrics_service = of_kind(&objects, "Service")
        .into_iter()
        .find(|s| {
            monitored
                .as_object()
                .is_some_and(|m| m.iter().all(|(k, v)| &s["metadata"]["labels"][k] == v))
        })
        .ok_or("ServiceMonitor selects no Service")?;
    assert_eq!(metrics_service["spec"]["ports"][0]["name"], "metrics");

    let policy = one_of_kind(&objects, "NetworkPolicy");
    assert_eq!(policy["metadata"]["namespace"], "secrets-system");
    let allowed: Vec<&Value> = policy["spec"]["ingress"]
        .as_array()
        .ok_or("no ingress")?
        .iter()
        .flat_map(|rule| rule["ports"].as_array().into_iter().flatten())
        .map(|p| &p["port"])
        .collect();
    assert_eq!(allowed.len(), 2);
    assert!(allowed.contains(&&serde_json::json!("http")));
    assert!(allowed.contains(&&serde_json::json!("metrics")));

    assert!(
        of_kind(&objects, "Service")
            .iter()
            .any(|s| s["metadata"]["name"] == "signet-api")
    );

    // The default reconciles everywhere: one ClusterRoleBinding.
    assert_eq!(of_kind(&objects, "ClusterRoleBinding").len(), 1);

    // values.schema.json rejects nonsense.
    let chart = chart_dir();
    let chart = chart.to_string_lossy();
    let refused = helm(&["template", "x", &chart, "--set", "logFormat=xml"]);
    assert!(refused.is_err(), "schema accepted logFormat=xml");
    let refused = helm(&[
        "template",
        "x",
        &chart,
        "--set",
        "securityContext.allowPrivilegeEscalation=true",
    ]);
    assert!(refused.is_err(), "schema accepted privilege escalation");
    Ok(())
}

#[test]
fn watch_namespace_binds_the_cluster_role_in_that_namespace_only() -> TestResult {
    let objects = render("signet", "secrets-system", &["watchNamespace=apps"])?;
    assert!(of_kind(&objects, "ClusterRoleBinding").is_empty());
    let bindings = of_kind(&objects, "RoleBinding");
    let app_binding = bindings
        .iter()
        .find(|b| b["metadata"]["namespace"] == "apps")
        .ok_or("no RoleBinding in the watched namespace")?;
    assert_eq!(app_binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(
        app_binding["subjects"][0]["namespace"], "secrets-system",
        "the subject is the ServiceAccount in the release namespace"
    );
    let deployment = one_of_kind(&objects, "Deployment");
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .ok_or("no env")?;
    assert!(
        env.iter()
            .any(|e| e["name"] == "SIGNET_WATCH_NAMESPACE" && e["value"] == "apps")
    );
    Ok(())
}

/// Asks the API server, as the client's identity, whether it may do `verb` on `resource`.
async fn may(
    client: &kube::Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> Result<bool, kube::Error> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_owned()),
                group: Some(group.to_owned()),
                resource: Some(resource.to_owned()),
                namespace: namespace.map(str::to_owned),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// Server-side applies one rendered object of a kind the RBAC test installs.
async fn apply(admin: &kube::Client, object: &Value) -> TestResult {
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
        other => return Err(format!("not an RBAC object: {other:?}").into()),
    }
    Ok(())
}

#[tokio::test]
async fn rendered_rbac_grants_what_the_controller_needs_and_no_more() -> TestResult {
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let admin = server.client().await?;
    let release_ns = server.create_namespace(&admin, "sigchart").await?;
    let app_ns = server.create_namespace(&admin, "sigchartapp").await?;
    // Cluster-scoped names carry the release name: unique per run on the shared API server.
    let release = signet_testkit::unique_name("chart");
    let objects = tokio::task::spawn_blocking({
        let (release, release_ns) = (release.clone(), release_ns.clone());
        move || render(&release, &release_ns, &[]).map_err(|e| e.to_string())
    })
    .await??;
    let rbac_kinds = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ];
    let mut applied = 0;
    for object in objects
        .iter()
        .filter(|o| rbac_kinds.iter().any(|k| o["kind"] == *k))
    {
        apply(&admin, object).await?;
        applied += 1;
    }
    assert_eq!(
        applied, 5,
        "ServiceAccount, ClusterRole(+Binding), Role(+Binding)"
    );

    let account = one_of_kind(&objects, "ServiceAccount")["metadata"]["name"]
        .as_str()
        .ok_or("unnamed ServiceAccount")?
        .to_owned();
    let controller = server.service_account_client(&release_ns, &account).await?;
    let app = Some(app_ns.as_str());
    let home = Some(release_ns.as_str());

    // What the controller does, in any namespace.
    assert!(may(&controller, "list", "bitnami.com", "sealedsecrets", app).await?);
    assert!(may(&controller, "watch", "bitnami.com", "sealedsecrets", None).await?);
    assert!(
        may(
            &controller,
            "patch",
            "bitnami.com",
            "sealedsecrets/status",
            app
        )
        .await?
    );
    assert!(may(&controller, "create", "", "secrets", app).await?);
    assert!(may(&controller, "patch", "", "secrets", app).await?);
    assert!(may(&controller, "create", "events.k8s.io", "events", app).await?);
    // Its own namespace: key Secrets and the Lease.
    assert!(may(&controller, "create", "", "secrets", home).await?);
    assert!(may(&controller, "update", "coordination.k8s.io", "leases", home).await?);
    assert!(may(&controller, "create", "coordination.k8s.io", "leases", home).await?);

    // Nothing more.
    assert!(!may(&controller, "delete", "", "namespaces", None).await?);
    assert!(!may(&controller, "delete", "", "secrets", app).await?);
    assert!(!may(&controller, "delete", "", "secrets", home).await?);
    assert!(!may(&controller, "update", "bitnami.com", "sealedsecrets", app).await?);
    assert!(!may(&controller, "create", "bitnami.com", "sealedsecrets", app).await?);
    assert!(!may(&controller, "create", "coordination.k8s.io", "leases", app).await?);
    assert!(!may(&controller, "list", "", "configmaps", app).await?);
    assert!(
        !may(
            &controller,
            "create",
            "rbac.authorization.k8s.io",
            "clusterroles",
            None
        )
        .await?
    );
    assert!(!may(&controller, "create", "", "pods", app).await?);
    Ok(())
}
