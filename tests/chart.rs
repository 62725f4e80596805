//! `charts/signet`: `helm lint` passes, `helm template` renders a hardened Deployment and the
//! generated CRDs only when asked, every chart CRD file is the current `crdgen` output, the values
//! reach the controller as flags and variables it knows, and the rendered RBAC, applied to the real
//! API server, lets the controller's ServiceAccount do what the controller needs and nothing more.

use crate::chart_support as support;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ObjectMeta, Patch,
    PatchParams, PostParams,
};
use serde_json::Value;
use signet_controller::Config;
use signet_testkit::{ApiServer, OpenBao};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{chart_dir, helm, install_rbac, of_kind, one_of_kind, render, repo_root};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CRD_DIR: &str = "charts/signet/files/crds";

/// The CRDs the controller serves: `crdgen --list` must name at least these.
const EXPECTED_CRDS: [&str; 6] = [
    "sealedsecrets.bitnami.com",
    "sopssecrets.signet.dev",
    "externalsecrets.signet.dev",
    "secretstores.signet.dev",
    "clustersecretstores.signet.dev",
    "clusterexternalsecrets.signet.dev",
];

/// Whether `helm template` refuses these `--set` values (values.schema.json or a template `fail`).
fn refused(sets: &[&str]) -> bool {
    render("x", "default", sets).is_err()
}

fn crd_names(objects: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = of_kind(objects, "CustomResourceDefinition")
        .iter()
        .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// A binary of the `signet-controller` package (`signet-controller`, `crdgen`).
fn controller_bin(name: &str) -> PathBuf {
    signet_tests::sandbox::workspace_bin("signet-controller", name)
}

fn crdgen(args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let output = Command::new(controller_bin("crdgen")).args(args).output()?;
    assert!(
        output.status.success(),
        "crdgen {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// `crdgen --list`: the names of every CRD the controller serves.
fn crdgen_names() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    Ok(crdgen(&["--list"])?
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect())
}

#[test]
fn chart_lints_strictly() -> TestResult {
    let chart = chart_dir();
    let out = helm(&["lint", "--strict", &chart.to_string_lossy()])?;
    assert!(out.contains("0 chart(s) failed"), "{out}");
    // With every option on, too.
    let out = helm(&[
        "lint",
        "--strict",
        &chart.to_string_lossy(),
        "--set",
        "watchNamespace=apps,serviceMonitor.enabled=true,networkPolicy.enabled=true",
        "--set",
        "sops.ageSecretNames={sops-age,team-keys}",
        "--set",
        "sops.env[0].name=AWS_REGION,sops.env[0].value=eu-west-1",
    ])?;
    assert!(out.contains("0 chart(s) failed"), "{out}");
    Ok(())
}

#[test]
fn every_crd_file_is_current_crdgen_output() -> TestResult {
    let names = crdgen_names()?;
    for expected in EXPECTED_CRDS {
        assert!(
            names.iter().any(|n| n == expected),
            "crdgen --list lacks {expected}: {names:?}"
        );
    }
    for name in &names {
        let path = format!("{CRD_DIR}/{name}.yaml");
        let file = std::fs::read_to_string(repo_root().join(&path))
            .map_err(|e| format!("{path}: {e} (a CRD crdgen lists has no chart file)"))?;
        let header: Vec<&str> = file.lines().take_while(|l| l.starts_with('#')).collect();
        assert!(
            header.iter().any(|l| l.contains("--bin crdgen")),
            "{path} must say how to regenerate it"
        );
        let body: String = file
            .split_inclusive('\n')
            .skip(header.len())
            .collect::<String>();
        let generated = crdgen(&[name])?;
        assert!(
            body == generated,
            "{path} is stale: regenerate it with the command in its header"
        );
        let parsed: Value = serde_saphyr::from_str(&body)?;
        assert_eq!(parsed["metadata"]["name"], name.as_str(), "{path}");
    }
    // No leftover file for a CRD the controller no longer serves.
    for entry in std::fs::read_dir(repo_root().join(CRD_DIR))? {
        let file_name = entry?.file_name().to_string_lossy().into_owned();
        let name = file_name.strip_suffix(".yaml").unwrap_or(&file_name);
        assert!(
            names.iter().any(|n| n == name),
            "{CRD_DIR}/{file_name} is not a CRD crdgen lists"
        );
    }
    // No argument is the SealedSecret CRD (the header of that file relies on it).
    assert_eq!(crdgen(&[])?, crdgen(&["sealedsecrets.bitnami.com"])?);
    Ok(())
}

#[test]
fn default_render_is_hardened_and_installs_every_crd() -> TestResult {
    let objects = render("signet", "kube-system", &[])?;

    let crds = of_kind(&objects, "CustomResourceDefinition");
    let mut expected: Vec<String> = crdgen_names()?;
    expected.sort();
    assert_eq!(crd_names(&objects), expected);
    for crd in crds {
        let name = crd["metadata"]["name"].as_str().ok_or("unnamed CRD")?;
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "{name}: uninstall must not delete the CRD (and every object of its kind)"
        );
        assert_eq!(
            crd["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm",
            "{name}"
        );
        let generated: Value = serde_saphyr::from_str(&crdgen(&[name])?)?;
        assert_eq!(
            crd["spec"], generated["spec"],
            "{name}: rendered CRD spec differs from crdgen"
        );
    }

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
    // No age identity Secrets named: no flags at all.
    assert!(container["args"].is_null(), "{}", container["args"]);

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
    assert_eq!(
        env_var("SIGNET_PROVIDER_BACKOFF_MAX").ok_or("backoff env missing")?["value"],
        "5m"
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
fn crd_toggles_are_independent() -> TestResult {
    let signet_crds: Vec<String> = {
        let mut names: Vec<String> = crdgen_names()?
            .into_iter()
            .filter(|n| n.ends_with(".signet.dev"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(signet_crds.len(), 5, "{signet_crds:?}");

    // Bitnami's CRD already there: only the signet.dev ones.
    let objects = render("signet", "kube-system", &["installCRDs=false"])?;
    assert_eq!(crd_names(&objects), signet_crds);

    // signet.dev CRDs managed elsewhere: only the SealedSecret one.
    let objects = render("signet", "kube-system", &["installSignetCRDs=false"])?;
    assert_eq!(crd_names(&objects), vec!["sealedsecrets.bitnami.com"]);

    let objects = render(
        "signet",
        "kube-system",
        &["installCRDs=false", "installSignetCRDs=false"],
    )?;
    assert!(crd_names(&objects).is_empty());
    // The controller itself is still installed.
    one_of_kind(&objects, "Deployment");

    assert!(refused(&["installSignetCRDs=maybe"]));
    Ok(())
}

#[test]
fn options_add_monitoring_and_network_policy() -> TestResult {
    let objects = render(
        "signet",
        "secrets-system",
        &[
            "serviceMonitor.enabled=true",
            "networkPolicy.enabled=true",
            "service.name=signet-api",
        ],
    )?;
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

    // The default reconciles everywhere: the main ClusterRole, the cluster-store one and the
    // ClusterExternalSecret one, all bound cluster-wide.
    assert_eq!(of_kind(&objects, "ClusterRoleBinding").len(), 3);

    // values.schema.json rejects nonsense.
    assert!(refused(&["logFormat=xml"]), "schema accepted logFormat=xml");
    assert!(
        refused(&["securityContext.allowPrivilegeEscalation=true"]),
        "schema accepted privilege escalation"
    );
    // The controller's period parser takes whole numbers with d/h/m/s/ms only.
    assert!(refused(&["resyncPeriod=1.5h"]), "schema accepted 1.5h");
    assert!(!refused(&["resyncPeriod=1h30m"]));
    Ok(())
}

#[test]
fn sops_and_external_secret_values_reach_the_controller() -> TestResult {
    let objects = render(
        "signet",
        "secrets-system",
        &[
            "sops.ageSecretNames={sops-age,team.keys}",
            "sops.env[0].name=AWS_REGION",
            "sops.env[0].value=eu-west-1",
            "sops.env[1].name=VAULT_TOKEN",
            "sops.env[1].valueFrom.secretKeyRef.name=vault-token",
            "sops.env[1].valueFrom.secretKeyRef.key=token",
            "sops.allowUnbound=true",
            "externalSecrets.providerBackoffMax=10m",
        ],
    )?;
    let container =
        &one_of_kind(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["args"],
        serde_json::json!(["--sops-age-secret=sops-age", "--sops-age-secret=team.keys"])
    );
    let env = container["env"].as_array().ok_or("no env")?;
    let env_var = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
    assert_eq!(
        env_var("AWS_REGION").ok_or("AWS_REGION missing")?["value"],
        "eu-west-1"
    );
    assert_eq!(
        env_var("VAULT_TOKEN").ok_or("VAULT_TOKEN missing")?["valueFrom"]["secretKeyRef"]["name"],
        "vault-token"
    );
    assert_eq!(
        env_var("SIGNET_PROVIDER_BACKOFF_MAX").ok_or("backoff env missing")?["value"],
        "10m"
    );
    assert_eq!(
        env_var("SIGNET_ALLOW_UNBOUND_SOPS_SECRETS").ok_or("allowUnbound env missing")?["value"],
        "true"
    );
    // Unbound SopsSecrets are refused unless the operator asks (a migration).
    let defaults = render("signet", "secrets-system", &[])?;
    let default_env =
        &one_of_kind(&defaults, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        !default_env
            .to_string()
            .contains("SIGNET_ALLOW_UNBOUND_SOPS_SECRETS"),
        "{default_env}"
    );
    assert!(refused(&["sops.allowUnbound=maybe"]));

    // Token minting (Vault Kubernetes auth) is off by default and can be switched on.
    let grants_tokens = |objects: &[Value]| {
        of_kind(objects, "ClusterRole").iter().any(|role| {
            role["rules"].as_array().into_iter().flatten().any(|rule| {
                rule["resources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r == "serviceaccounts/token")
            })
        })
    };
    assert!(!grants_tokens(&objects));
    let with = render(
        "signet",
        "secrets-system",
        &["externalSecrets.serviceAccountTokens=true"],
    )?;
    assert!(grants_tokens(&with));

    // The store policy reaches the controller: audience, allow-lists, the identity opt-in.
    let objects = render(
        "signet",
        "secrets-system",
        &[
            "externalSecrets.serviceAccountTokenAudience=openbao",
            "externalSecrets.allowedTokenAudiences={openbao,vault-eu}",
            "externalSecrets.allowControllerIdentityInSecretStores=true",
            "externalSecrets.allowedProviderURLs={https://vault.example:8200,http://10.0.0.9/team-a}",
        ],
    )?;
    let container =
        &one_of_kind(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].as_array().ok_or("no env")?;
    let value = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        value("SIGNET_SERVICE_ACCOUNT_TOKEN_AUDIENCE"),
        Some("openbao".into())
    );
    assert_eq!(
        value("SIGNET_ALLOWED_TOKEN_AUDIENCES"),
        Some("openbao,vault-eu".into())
    );
    assert_eq!(
        value("SIGNET_ALLOW_CONTROLLER_IDENTITY_IN_SECRET_STORES"),
        Some("true".into())
    );
    assert_eq!(
        value("SIGNET_ALLOWED_PROVIDER_URLS"),
        Some("https://vault.example:8200,http://10.0.0.9/team-a".into())
    );
    // Not URLs, or with a comma (the variable's separator); an empty audience.
    assert!(refused(&[
        "externalSecrets.allowedProviderURLs={vault.example}"
    ]));
    assert!(refused(&[
        "externalSecrets.allowedProviderURLs={ftp://vault.example}"
    ]));
    assert!(refused(&[
        "externalSecrets.allowedProviderURLs={https://u@vault.example}"
    ]));
    assert!(refused(&["externalSecrets.serviceAccountTokenAudience="]));
    assert!(refused(&[
        "externalSecrets.serviceAccountTokenNames={Not_A_Name}"
    ]));
    assert!(refused(&[
        "externalSecrets.serviceAccountTokenNamespaces={team.a}"
    ]));
    assert!(!refused(&[
        "externalSecrets.serviceAccountTokenNamespaces={team-a}"
    ]));

    // A zero backoff would retry a failing provider in a tight loop.
    assert!(refused(&["externalSecrets.providerBackoffMax=0"]));
    assert!(refused(&["externalSecrets.providerBackoffMax=0m"]));
    assert!(refused(&["externalSecrets.providerBackoffMax=soon"]));
    assert!(!refused(&["externalSecrets.providerBackoffMax=90s"]));
    // Not a Secret name, and env entries need a name.
    assert!(refused(&["sops.ageSecretNames={Sops_Age}"]));
    assert!(refused(&["sops.env[0].value=x"]));
    assert!(refused(&["sops.unknown=1"]));
    Ok(())
}

#[test]
fn rate_limit_values_reach_the_controller() -> TestResult {
    let objects = render(
        "signet",
        "kube-system",
        &["rateLimit=0.5", "rateLimitBurst=3"],
    )?;
    let container =
        &one_of_kind(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].as_array().ok_or("no env")?;
    let value = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(value("SIGNET_RATE_LIMIT"), Some(Value::from("0.5")));
    assert_eq!(value("SIGNET_RATE_LIMIT_BURST"), Some(Value::from("3")));
    assert!(refused(&["rateLimit=0"]));
    assert!(refused(&["rateLimit=0.0"]));
    assert!(refused(&["rateLimit=fast"]));
    assert!(refused(&["rateLimitBurst=0"]));
    assert!(!refused(&["rateLimit=5"]));
    Ok(())
}

/// `helm upgrade --reuse-values` from a 0.1.0 release reuses that release's values only: the
/// values added since are absent (simulated with `=null`, which removes a key), and the chart must
/// still render with their defaults.
#[test]
fn values_of_a_chart_0_1_0_release_still_render_with_the_new_defaults() -> TestResult {
    let objects = render(
        "signet",
        "kube-system",
        &[
            "installSignetCRDs=null",
            "sops=null",
            "externalSecrets=null",
            "rbac.guardSecretDeletion=null",
            "rateLimit=null",
            "rateLimitBurst=null",
        ],
    )?;
    assert_eq!(crd_names(&objects).len(), EXPECTED_CRDS.len());
    one_of_kind(&objects, "ValidatingAdmissionPolicy");
    let container =
        &one_of_kind(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert!(container["args"].is_null());
    let env = container["env"].as_array().ok_or("no env")?;
    assert!(
        env.iter()
            .any(|e| e["name"] == "SIGNET_PROVIDER_BACKOFF_MAX" && e["value"] == "5m")
    );
    assert!(
        env.iter()
            .any(|e| e["name"] == "SIGNET_SERVICE_ACCOUNT_TOKEN_AUDIENCE" && e["value"] == "vault")
    );
    assert!(
        env.iter()
            .any(|e| e["name"] == "SIGNET_RATE_LIMIT_BURST" && e["value"] == "10")
    );
    let main_role = of_kind(&objects, "ClusterRole")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "signet")
        .ok_or("no main ClusterRole")?;
    // Token minting is off unless asked for, also for a release that predates the value.
    assert!(
        !main_role["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|rule| rule["resources"] == serde_json::json!(["serviceaccounts/token"]))
    );
    Ok(())
}

/// The flags and `SIGNET_*` variables the Deployment sets, with every option on, are ones
/// `signet-controller` declares (its `--help`): a renamed flag fails here, not in a cluster.
#[test]
fn rendered_flags_and_variables_are_ones_the_controller_knows() -> TestResult {
    let objects = render(
        "signet",
        "secrets-system",
        &[
            "watchNamespace=apps",
            "keyCutoffTime=2026-01-02T03:04:05Z",
            "sops.ageSecretNames={sops-age}",
            "externalSecrets.allowedTokenAudiences={vault}",
            "externalSecrets.allowedProviderURLs={https://vault.example}",
            "sops.allowUnbound=true",
            "restartOnChange=true",
        ],
    )?;
    let container =
        &one_of_kind(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let output = Command::new(controller_bin("signet-controller"))
        .arg("--help")
        .output()?;
    assert!(output.status.success(), "signet-controller --help failed");
    let help = String::from_utf8(output.stdout)?;

    let args = container["args"].as_array().ok_or("no args")?;
    assert!(!args.is_empty());
    for arg in args {
        let arg = arg.as_str().ok_or("non-string arg")?;
        let flag = arg.split('=').next().unwrap_or(arg);
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}=")),
            "signet-controller has no flag {flag}:\n{help}"
        );
    }
    let env = container["env"].as_array().ok_or("no env")?;
    let names: Vec<&str> = env
        .iter()
        .filter_map(|e| e["name"].as_str())
        .filter(|n| n.starts_with("SIGNET_"))
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        assert!(
            help.contains(&format!("[env: {name}=")),
            "signet-controller reads no {name}:\n{help}"
        );
    }
    Ok(())
}

#[test]
fn watch_namespace_binds_the_cluster_role_in_that_namespace_only() -> TestResult {
    let objects = render("signet", "secrets-system", &["watchNamespace=apps"])?;
    // Only the cluster-scoped store role stays bound cluster-wide.
    let cluster_bindings = of_kind(&objects, "ClusterRoleBinding");
    assert_eq!(cluster_bindings.len(), 1);
    let store_role = cluster_bindings[0]["roleRef"]["name"]
        .as_str()
        .ok_or("no roleRef")?;
    let store_rules = of_kind(&objects, "ClusterRole")
        .into_iter()
        .find(|r| r["metadata"]["name"] == store_role)
        .ok_or("the ClusterRoleBinding names no rendered ClusterRole")?["rules"]
        .as_array()
        .ok_or("no rules")?
        .clone();
    for rule in &store_rules {
        for resource in rule["resources"].as_array().ok_or("no resources")? {
            let resource = resource.as_str().ok_or("resource")?;
            assert!(
                resource.starts_with("clustersecretstores"),
                "the cluster-wide binding grants {resource}"
            );
        }
    }

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
    // Events about ClusterSecretStores land in `default`.
    assert!(
        bindings
            .iter()
            .any(|b| b["metadata"]["namespace"] == "default" && b["roleRef"]["kind"] == "Role")
    );
    let deployment = one_of_kind(&objects, "Deployment");
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .ok_or("no env")?;
    assert!(
        env.iter()
            .any(|e| e["name"] == "SIGNET_WATCH_NAMESPACE" && e["value"] == "apps")
    );

    // Watching `default` itself needs no extra Role there.
    let objects = render("signet", "secrets-system", &["watchNamespace=default"])?;
    assert_eq!(of_kind(&objects, "RoleBinding").len(), 2, "keys + default");
    Ok(())
}

#[test]
fn secret_deletion_policy_matches_the_controller_account_and_can_be_off() -> TestResult {
    let objects = render(
        "signet",
        "secrets-system",
        &["serviceAccount.name=signet-ctl"],
    )?;
    let policy = one_of_kind(&objects, "ValidatingAdmissionPolicy");
    let condition = policy["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .ok_or("no matchCondition")?;
    assert!(
        condition.contains("\"system:serviceaccount:secrets-system:signet-ctl\""),
        "{condition}"
    );
    assert_eq!(
        policy["spec"]["matchConstraints"]["resourceRules"][0]["operations"],
        serde_json::json!(["DELETE"])
    );
    let binding = one_of_kind(&objects, "ValidatingAdmissionPolicyBinding");
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    assert_eq!(
        binding["spec"]["validationActions"],
        serde_json::json!(["Deny"])
    );

    let objects = render(
        "signet",
        "secrets-system",
        &["rbac.guardSecretDeletion=false"],
    )?;
    assert!(of_kind(&objects, "ValidatingAdmissionPolicy").is_empty());
    assert!(of_kind(&objects, "ValidatingAdmissionPolicyBinding").is_empty());
    let objects = render("signet", "secrets-system", &["rbac.create=false"])?;
    assert!(of_kind(&objects, "ValidatingAdmissionPolicy").is_empty());
    assert!(of_kind(&objects, "ClusterRole").is_empty());
    Ok(())
}

/// What to ask the API server in a SelfSubjectAccessReview.
struct Access<'a> {
    verb: &'a str,
    group: &'a str,
    /// `resource` or `resource/subresource`.
    resource: &'a str,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
}

fn access<'a>(
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    namespace: Option<&'a str>,
) -> Access<'a> {
    Access {
        verb,
        group,
        resource,
        namespace,
        name: None,
    }
}

/// Asks the API server, as the client's identity, whether it may do what `what` says.
async fn may(client: &kube::Client, what: &Access<'_>) -> Result<bool, kube::Error> {
    let (resource, subresource) = match what.resource.split_once('/') {
        Some((resource, sub)) => (resource, Some(sub.to_owned())),
        None => (what.resource, None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(what.verb.to_owned()),
                group: Some(what.group.to_owned()),
                resource: Some(resource.to_owned()),
                subresource,
                namespace: what.namespace.map(str::to_owned),
                name: what.name.map(str::to_owned),
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

/// Asserts the client may do each of `allowed` and none of `denied`, listing every mismatch.
async fn assert_access(
    client: &kube::Client,
    allowed: &[Access<'_>],
    denied: &[Access<'_>],
) -> TestResult {
    let mut wrong = Vec::new();
    for (expected, cases) in [(true, allowed), (false, denied)] {
        for case in cases {
            if may(client, case).await? != expected {
                wrong.push(format!(
                    "{} {} {:?}/{} in {:?} (name {:?}): expected {}",
                    if expected { "DENIED" } else { "ALLOWED" },
                    case.verb,
                    case.group,
                    case.resource,
                    case.namespace,
                    case.name,
                    if expected { "allowed" } else { "denied" },
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "RBAC mismatches:\n{}", wrong.join("\n"));
    Ok(())
}

const SIGNET: &str = "signet.dev";

#[tokio::test]
async fn rendered_rbac_grants_what_the_controller_needs_and_no_more() -> TestResult {
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let admin = server.client().await?;
    let release_ns = server.create_namespace(&admin, "sigchart").await?;
    let app_ns = server.create_namespace(&admin, "sigchartapp").await?;
    let (controller, applied) = install_rbac(server, &admin, &release_ns, Vec::new()).await?;
    assert_eq!(
        applied.len(),
        11,
        "ServiceAccount, ClusterRole(+Binding) x3, Role(+Binding), admission policy(+binding)"
    );
    let app = Some(app_ns.as_str());
    let home = Some(release_ns.as_str());

    let allowed = [
        // SealedSecrets, in any namespace.
        access("get", "bitnami.com", "sealedsecrets", app),
        access("list", "bitnami.com", "sealedsecrets", app),
        access("watch", "bitnami.com", "sealedsecrets", None),
        access("patch", "bitnami.com", "sealedsecrets/status", app),
        // SopsSecrets, ExternalSecrets, SecretStores: read, and write their status.
        access("list", SIGNET, "sopssecrets", None),
        access("watch", SIGNET, "sopssecrets", app),
        access("patch", SIGNET, "sopssecrets/status", app),
        access("list", SIGNET, "externalsecrets", None),
        access("watch", SIGNET, "externalsecrets", app),
        access("patch", SIGNET, "externalsecrets/status", app),
        access("get", SIGNET, "secretstores", app),
        access("watch", SIGNET, "secretstores", None),
        access("patch", SIGNET, "secretstores/status", app),
        access("get", SIGNET, "clustersecretstores", None),
        access("list", SIGNET, "clustersecretstores", None),
        access("watch", SIGNET, "clustersecretstores", None),
        access("patch", SIGNET, "clustersecretstores/status", None),
        // The Secrets it writes; delete for ExternalSecret deletionPolicy: Delete.
        access("create", "", "secrets", app),
        access("patch", "", "secrets", app),
        access("get", "", "secrets", app),
        access("delete", "", "secrets", app),
        // ExternalSecret templateFrom[].configMap.
        access("get", "", "configmaps", app),
        // ClusterSecretStore namespace selectors.
        access("get", "", "namespaces", None),
        access("create", "", "events", app),
        // ClusterExternalSecrets: the namespaces they select, the ExternalSecrets they own.
        access("list", SIGNET, "clusterexternalsecrets", None),
        access("watch", SIGNET, "clusterexternalsecrets", None),
        access("patch", SIGNET, "clusterexternalsecrets/status", None),
        access("list", "", "namespaces", None),
        access("watch", "", "namespaces", None),
        access("get", SIGNET, "externalsecrets", app),
        access("create", SIGNET, "externalsecrets", app),
        access("update", SIGNET, "externalsecrets", app),
        access("delete", SIGNET, "externalsecrets", app),
        // Its own namespace: key and identity Secrets, the Lease.
        access("create", "", "secrets", home),
        access("list", "", "secrets", home),
        access("watch", "", "secrets", home),
        access("get", "coordination.k8s.io", "leases", home),
        access("patch", "coordination.k8s.io", "leases", home),
        access("create", "coordination.k8s.io", "leases", home),
    ];
    let denied = [
        access("delete", "", "namespaces", None),
        access("update", "", "namespaces", None),
        access("update", "", "secrets", app),
        access("update", "bitnami.com", "sealedsecrets", app),
        // Events are created, never patched into a series (none is kept), and only through the
        // core API group, as client-go writes them.
        access("patch", "", "events", app),
        access("create", "events.k8s.io", "events", app),
        // Nothing the controller does not use (the chart suite's audit-log check): status is
        // patched, never read or replaced; sources come from watch caches (SealedSecrets' metadata,
        // the object read when there is work); the Lease is patched.
        access("get", "bitnami.com", "sealedsecrets/status", app),
        access("update", "bitnami.com", "sealedsecrets/status", app),
        access("get", SIGNET, "sopssecrets", app),
        access("get", SIGNET, "sopssecrets/status", app),
        access("update", SIGNET, "sopssecrets/status", app),
        access("update", SIGNET, "externalsecrets/status", app),
        access("update", SIGNET, "secretstores/status", app),
        access("update", SIGNET, "clustersecretstores/status", None),
        access("update", "coordination.k8s.io", "leases", home),
        access("list", "coordination.k8s.io", "leases", home),
        access("watch", "coordination.k8s.io", "leases", home),
        access("create", "bitnami.com", "sealedsecrets", app),
        // Never a spec of a source object, never a finalizer (ExternalSecrets are written only
        // for ClusterExternalSecrets).
        access("update", SIGNET, "sopssecrets", app),
        access("patch", SIGNET, "externalsecrets", app),
        access("create", SIGNET, "secretstores", app),
        access("get", SIGNET, "clusterexternalsecrets", None),
        access("update", SIGNET, "clusterexternalsecrets", None),
        access("patch", SIGNET, "clusterexternalsecrets", None),
        access("update", SIGNET, "clusterexternalsecrets/status", None),
        access("update", SIGNET, "clusterexternalsecrets/finalizers", None),
        access("create", SIGNET, "clustersecretstores", None),
        access("update", SIGNET, "clustersecretstores", None),
        access("patch", SIGNET, "clustersecretstores", None),
        access("delete", SIGNET, "clustersecretstores", None),
        // No tokens unless externalSecrets.serviceAccountTokens; never the accounts themselves.
        access("create", "", "serviceaccounts/token", app),
        access("create", "", "serviceaccounts", app),
        access("get", "", "serviceaccounts", app),
        access("create", "authentication.k8s.io", "tokenreviews", None),
        access("create", "coordination.k8s.io", "leases", app),
        access("list", "", "configmaps", app),
        access("create", "rbac.authorization.k8s.io", "clusterroles", None),
        access("create", "", "pods", app),
        access(
            "create",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
        ),
    ];
    assert_access(&controller, &allowed, &denied).await
}

#[tokio::test]
async fn watch_namespace_rbac_stays_in_that_namespace_except_cluster_stores() -> TestResult {
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let admin = server.client().await?;
    let release_ns = server.create_namespace(&admin, "sigchartwn").await?;
    let app_ns = server.create_namespace(&admin, "sigchartwnapp").await?;
    let other_ns = server.create_namespace(&admin, "sigchartwnother").await?;
    let (controller, applied) = install_rbac(
        server,
        &admin,
        &release_ns,
        vec![format!("watchNamespace={app_ns}")],
    )
    .await?;
    assert_eq!(
        applied.len(),
        11,
        "ServiceAccount, ClusterRole x2, ClusterRoleBinding, RoleBinding in the watched \
         namespace, Role(+Binding) for keys, Role(+Binding) for events in default, admission \
         policy(+binding)"
    );
    let app = Some(app_ns.as_str());
    let home = Some(release_ns.as_str());
    let other = Some(other_ns.as_str());
    let system = Some("kube-system");

    let mut own_namespace = access("get", "", "namespaces", app);
    own_namespace.name = app;
    let mut other_namespace = access("get", "", "namespaces", other);
    other_namespace.name = other;

    let allowed = [
        access("list", SIGNET, "externalsecrets", app),
        access("watch", SIGNET, "sopssecrets", app),
        access("list", SIGNET, "secretstores", app),
        access("patch", SIGNET, "externalsecrets/status", app),
        access("delete", "", "secrets", app),
        access("get", "", "configmaps", app),
        // The labels of the watched namespace (ClusterSecretStore namespaceSelector).
        own_namespace,
        // Cluster-scoped, so bound cluster-wide regardless of watchNamespace.
        access("list", SIGNET, "clustersecretstores", None),
        access("watch", SIGNET, "clustersecretstores", None),
        access("patch", SIGNET, "clustersecretstores/status", None),
        // Their events are recorded in `default`.
        access("create", "", "events", Some("default")),
        // Identity and key Secrets in its own namespace.
        access("list", "", "secrets", home),
        access("watch", "", "secrets", home),
    ];
    let denied = [
        access("delete", "", "secrets", system),
        access("delete", "", "secrets", other),
        // The sealing-key Secrets can never be deleted by the controller in this mode.
        access("delete", "", "secrets", home),
        access("get", "", "secrets", other),
        access("list", "", "secrets", None),
        // templateFrom ConfigMaps: only in the watched namespace.
        access("get", "", "configmaps", other),
        // Cluster-wide lists of the namespaced kinds are not granted: the controller must ask
        // within the watched namespace.
        access("list", SIGNET, "externalsecrets", None),
        access("list", SIGNET, "sopssecrets", None),
        access("list", SIGNET, "secretstores", None),
        access("list", "bitnami.com", "sealedsecrets", None),
        other_namespace,
        access("get", "", "namespaces", None),
        access("create", "", "serviceaccounts/token", app),
        access("create", "", "serviceaccounts/token", system),
        access("create", SIGNET, "clustersecretstores", None),
        access("update", SIGNET, "clustersecretstores", None),
        access("delete", SIGNET, "clustersecretstores", None),
        // ClusterExternalSecrets are reconciled only by a controller watching every namespace.
        access("list", SIGNET, "clusterexternalsecrets", None),
        access("list", "", "namespaces", None),
        access("create", SIGNET, "externalsecrets", app),
        access("create", "", "events", system),
        access("create", "", "events", other),
        access("create", "", "secrets", Some("default")),
    ];
    assert_access(&controller, &allowed, &denied).await
}

/// With externalSecrets.serviceAccountTokens, tokens may be minted only for the listed account
/// names, and only where the role is bound or in the listed namespaces.
#[tokio::test]
async fn token_minting_is_narrowed_to_the_listed_accounts_and_namespaces() -> TestResult {
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let admin = server.client().await?;
    let release_ns = server.create_namespace(&admin, "sigcharttok").await?;
    let app_ns = server.create_namespace(&admin, "sigcharttokapp").await?;
    let (controller, _) = install_rbac(
        server,
        &admin,
        &release_ns,
        vec![
            format!("watchNamespace={app_ns}"),
            "externalSecrets.serviceAccountTokens=true".to_owned(),
            "externalSecrets.serviceAccountTokenNames={vault-reader}".to_owned(),
        ],
    )
    .await?;
    fn token_for<'a>(namespace: &'a str, name: &'a str) -> Access<'a> {
        Access {
            name: Some(name),
            ..access("create", "", "serviceaccounts/token", Some(namespace))
        }
    }
    assert_access(
        &controller,
        &[token_for(&app_ns, "vault-reader")],
        &[
            token_for(&app_ns, "default"),
            token_for(&app_ns, "admin"),
            token_for("kube-system", "vault-reader"),
            token_for(&release_ns, "vault-reader"),
        ],
    )
    .await?;

    // Cluster-wide, narrowed to listed namespaces: a Role in each, nothing elsewhere.
    let release_ns = server.create_namespace(&admin, "sigcharttokns").await?;
    let (controller, _) = install_rbac(
        server,
        &admin,
        &release_ns,
        vec![
            "externalSecrets.serviceAccountTokens=true".to_owned(),
            format!("externalSecrets.serviceAccountTokenNamespaces={{{app_ns}}}"),
        ],
    )
    .await?;
    assert_access(
        &controller,
        &[
            token_for(&app_ns, "vault-reader"),
            token_for(&app_ns, "default"),
        ],
        &[
            token_for("kube-system", "vault-reader"),
            token_for("default", "default"),
            token_for(&release_ns, "vault-reader"),
        ],
    )
    .await
}

#[tokio::test]
async fn workloads_are_patched_only_with_restart_on_change_and_only_where_it_reconciles()
-> TestResult {
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let admin = server.client().await?;
    let rollout = |verb, resource, namespace| access(verb, "apps", resource, namespace);
    let release_ns = server.create_namespace(&admin, "sigchartrst").await?;
    let app_ns = server.create_namespace(&admin, "sigchartrstapp").await?;
    let app = Some(app_ns.as_str());
    // Off by default: no access to workloads at all.
    let (controller, _) = install_rbac(server, &admin, &release_ns, Vec::new()).await?;
    assert_access(
        &controller,
        &[],
        &[
            rollout("patch", "deployments", app),
            rollout("get", "deployments", app),
            rollout("patch", "statefulsets", app),
            rollout("patch", "daemonsets", app),
        ],
    )
    .await?;
    // On, bound to one namespace: get and patch the three kinds there, nothing else.
    let release_ns = server.create_namespace(&admin, "sigchartrston").await?;
    let (controller, _) = install_rbac(
        server,
        &admin,
        &release_ns,
        vec![
            format!("watchNamespace={app_ns}"),
            "restartOnChange=true".to_owned(),
        ],
    )
    .await?;
    assert_access(
        &controller,
        &[
            rollout("get", "deployments", app),
            rollout("patch", "deployments", app),
            rollout("get", "statefulsets", app),
            rollout("patch", "statefulsets", app),
            rollout("get", "daemonsets", app),
            rollout("patch", "daemonsets", app),
        ],
        &[
            rollout("patch", "deployments", Some("kube-system")),
            rollout("update", "deployments", app),
            rollout("delete", "deployments", app),
            rollout("list", "deployments", app),
            rollout("patch", "replicasets", app),
        ],
    )
    .await?;
    // The flag follows the value.
    let env_of = |sets: &[&str]| -> Result<Value, Box<dyn std::error::Error>> {
        let objects = render("signet", "kube-system", sets)?;
        Ok(
            one_of_kind(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
                .clone(),
        )
    };
    let restart = |env: &Value| {
        env.as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == "SIGNET_RESTART_ON_CHANGE")
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        restart(&env_of(&["restartOnChange=true"])?),
        Some(Value::from("true"))
    );
    assert_eq!(restart(&env_of(&[])?), None);
    assert!(refused(&["restartOnChange=yes"]));
    Ok(())
}

#[tokio::test]
async fn rendered_crds_are_accepted_by_the_api_server() -> TestResult {
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let admin = server.client().await?;
    let objects = tokio::task::spawn_blocking(|| {
        render("signet", "kube-system", &[]).map_err(|e| e.to_string())
    })
    .await??;
    let crds = of_kind(&objects, "CustomResourceDefinition");
    assert_eq!(crds.len(), EXPECTED_CRDS.len());
    // A dry run: the API server validates the whole object (structural schema included) and
    // stores nothing, so other suites sharing the server keep their CRDs as they are.
    let params = PatchParams::apply("signet-chart-test").force().dry_run();
    let api = Api::<CustomResourceDefinition>::all(admin);
    for crd in crds {
        let typed: CustomResourceDefinition = serde_json::from_value(crd.clone())?;
        let name = typed.metadata.name.clone().ok_or("unnamed CRD")?;
        let answer = api
            .patch(&name, &params, &Patch::Apply(&typed))
            .await
            .map_err(|e| format!("{name}: the API server refused the rendered CRD: {e}"))?;
        assert_eq!(answer.spec.group, typed.spec.group);
    }
    Ok(())
}

/// A Secret named `name` in `namespace`, with `labels`.
fn secret(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        string_data: Some([("value".to_owned(), "not-a-secret".to_owned())].into()),
        ..Secret::default()
    }
}

/// RBAC grants `delete` on Secrets; the chart's admission policy narrows it to Secrets an
/// ExternalSecret owns. Real deletes against the real API server, as the controller.
#[tokio::test]
async fn the_controller_deletes_only_secrets_an_external_secret_or_a_sops_secret_owns() -> TestResult
{
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let admin = server.client().await?;
    let release_ns = server.create_namespace(&admin, "sigchartvap").await?;
    let app_ns = server.create_namespace(&admin, "sigchartvapapp").await?;
    let (controller, _) = install_rbac(server, &admin, &release_ns, Vec::new()).await?;

    let as_admin = Api::<Secret>::namespaced(admin.clone(), &app_ns);
    let as_controller = Api::<Secret>::namespaced(controller.clone(), &app_ns);
    let owner = ("signet.dev/external-secret-uid", "0b5e2c1d");
    let sops_owner = ("signet.dev/sops-secret-uid", "5c0e2a7f");
    // A SopsSecret's Secret: its owner label and an ownerReference (a template removed from the
    // list is deleted). The label alone is what a Secret merged into carries: not deletable.
    let mut from_template = secret(&app_ns, "from-template", &[sops_owner]);
    from_template.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "signet.dev/v1alpha1".into(),
            kind: "SopsSecret".into(),
            name: "app".into(),
            uid: sops_owner.1.into(),
            controller: Some(true),
            ..Default::default()
        },
    ]);
    for object in [
        secret(&app_ns, "hand-made", &[]),
        secret(&app_ns, "other-labels", &[("team", "a")]),
        secret(&app_ns, "synced", &[owner]),
        secret(&app_ns, "merged-into", &[sops_owner]),
        from_template,
    ] {
        as_admin.create(&PostParams::default(), &object).await?;
    }
    // A key Secret in the controller's own namespace (the delete RBAC allows it cluster-wide).
    let as_admin_home = Api::<Secret>::namespaced(admin.clone(), &release_ns);
    as_admin_home
        .create(
            &PostParams::default(),
            &secret(
                &release_ns,
                "sealing-key",
                &[("sealedsecrets.bitnami.com/sealed-secrets-key", "active")],
            ),
        )
        .await?;

    // The policy takes effect once the API server has loaded it: probe with dry-run deletes.
    let dry_run = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    let refusal = signet_tests::poll::eventually(
        "the admission policy refuses the controller's delete",
        Duration::from_secs(30),
        || {
            let (api, dry_run) = (as_controller.clone(), dry_run.clone());
            async move {
                match api.delete("hand-made", &dry_run).await {
                    Err(kube::Error::Api(status)) => Some(status),
                    _ => None,
                }
            }
        },
    )
    .await?;
    assert!(
        refusal.message.contains("owned by an ExternalSecret"),
        "unexpected refusal: {refusal:?}"
    );

    for (api, name) in [
        (&as_controller, "hand-made"),
        (&as_controller, "other-labels"),
        (&as_controller, "merged-into"),
    ] {
        let refused = api.delete(name, &DeleteParams::default()).await;
        assert!(
            matches!(&refused, Err(kube::Error::Api(s)) if s.code == 403 || s.code == 422),
            "{name}: {refused:?}"
        );
        assert!(
            as_admin.get_opt(name).await?.is_some(),
            "{name} was deleted"
        );
    }
    let home_api = Api::<Secret>::namespaced(controller.clone(), &release_ns);
    assert!(
        home_api
            .delete("sealing-key", &DeleteParams::default())
            .await
            .is_err()
    );
    assert!(as_admin_home.get_opt("sealing-key").await?.is_some());

    // What it is for: a Secret an ExternalSecret owns, and one a SopsSecret owns.
    as_controller
        .delete("synced", &DeleteParams::default())
        .await?;
    match as_controller
        .delete("from-template", &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        // Gone already: a garbage collector found its owner missing.
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(other) => return Err(other.into()),
    }
    signet_tests::poll::eventually("synced is gone", Duration::from_secs(10), || {
        let api = as_admin.clone();
        async move {
            api.get_opt("synced")
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        }
    })
    .await?;
    // Nobody else is affected.
    as_admin
        .delete("hand-made", &DeleteParams::default())
        .await?;
    Ok(())
}

/// An object of a signet.dev kind, as JSON (the suite stays independent of the Rust types).
fn signet_api(client: &kube::Client, kind: &str, namespace: Option<&str>) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(SIGNET, "v1alpha1", kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_lowercase()));
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

async fn create_signet(
    client: &kube::Client,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    body: Value,
) -> TestResult {
    let mut object = serde_json::json!({
        "apiVersion": "signet.dev/v1alpha1", "kind": kind, "metadata": {"name": name},
    });
    if let (Some(target), Some(fields)) = (object.as_object_mut(), body.as_object()) {
        target.extend(fields.clone());
    }
    let object: DynamicObject = serde_json::from_value(object)?;
    signet_api(client, kind, namespace)
        .create(&PostParams::default(), &object)
        .await?;
    Ok(())
}

/// Waits until the `Ready` condition of a signet.dev object has `status`; returns its reason.
async fn wait_ready(
    client: &kube::Client,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    status: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let api = signet_api(client, kind, namespace);
    let seen = signet_tests::poll::eventually(
        &format!("{kind} {name} Ready={status}"),
        Duration::from_secs(60),
        || {
            let api = api.clone();
            async move {
                let object = api.get(name).await.ok()?;
                let conditions = object.data["status"]["conditions"].as_array()?.clone();
                let ready = conditions.iter().find(|c| c["type"] == "Ready")?;
                (ready["status"] == status)
                    .then(|| ready["reason"].as_str().unwrap_or("").to_owned())
            }
        },
    )
    .await;
    if seen.is_err()
        && let Ok(object) = api.get(name).await
    {
        eprintln!("{kind} {name}: {}", object.data["status"]);
    }
    Ok(seen?)
}

/// The controller itself, started with a client authenticated as the chart's ServiceAccount
/// (nothing but the rendered RBAC), reconciles every kind: a SealedSecret key is made, a
/// SealedSecret and a SopsSecret get their conditions, SecretStore and ClusterSecretStore
/// (namespace selector) validate, ExternalSecrets through both write their Secrets,
/// `deletionPolicy: Delete` deletes one (the admission policy lets the owned Secret go) and it
/// syncs again when the value returns, a Kubernetes-auth store mints a token when the chart allows
/// it, and the Lease is held. Then the API server's audit log shows every permission the chart
/// granted was used ([`every_grant_was_used`]). Each run has an API server of its own: a controller
/// watching the whole cluster would also reconcile the objects of every other test.
async fn controller_reconciles_under_the_chart_rbac(watch_namespace: bool) -> TestResult {
    let server = &tokio::task::spawn_blocking(ApiServer::start).await??;
    let bao = tokio::task::spawn_blocking(OpenBao::shared).await??;
    let admin = server.client().await?;
    signet_controller::install_crd(admin.clone()).await?;
    let release_ns = server.create_namespace(&admin, "sigchartrun").await?;
    let app_ns = server.create_namespace(&admin, "sigchartrunapp").await?;
    let mut sets = vec!["sops.ageSecretNames={sops-age}".to_owned()];
    // Token minting for one account name (off by default: the RBAC tests check that): through the
    // main role in the namespace-bound run, through a Role in the app namespace in the cluster-wide
    // one, so the least-privilege check covers both ways it is granted.
    let mint_tokens = true;
    sets.push("externalSecrets.serviceAccountTokens=true".to_owned());
    sets.push("externalSecrets.serviceAccountTokenNames={vault-reader}".to_owned());
    if watch_namespace {
        sets.push(format!("watchNamespace={app_ns}"));
    } else {
        sets.push(format!(
            "externalSecrets.serviceAccountTokenNamespaces={{{app_ns}}}"
        ));
    }
    let (controller_client, rbac) = install_rbac(server, &admin, &release_ns, sets).await?;
    // The API server's RBAC caches follow new bindings with a short delay; the token Role and its
    // binding are applied last.
    let token = Access {
        name: Some("vault-reader"),
        ..access("create", "", "serviceaccounts/token", Some(app_ns.as_str()))
    };
    signet_tests::poll::eventually("the chart RBAC in effect", Duration::from_secs(30), || {
        let (client, token) = (controller_client.clone(), &token);
        async move { may(&client, token).await.ok()?.then_some(()) }
    })
    .await?;

    // The age identity Secret the controller watches in its own namespace.
    let keygen = signet_testkit::peer_path("age-keygen")?;
    let identity = Command::new(keygen).output()?;
    assert!(identity.status.success(), "age-keygen failed");
    let mut identity_secret = secret(&release_ns, "sops-age", &[]);
    identity_secret.string_data = Some(
        [(
            "keys.agekey".to_owned(),
            String::from_utf8(identity.stdout)?,
        )]
        .into(),
    );
    Api::<Secret>::namespaced(admin.clone(), &release_ns)
        .create(&PostParams::default(), &identity_secret)
        .await?;

    // OpenBao: a KV v2 mount with one value; its root token in a Secret of the app namespace.
    let mount = signet_testkit::unique_name("chartkv");
    bao.bao(
        None,
        &["secrets", "enable", &format!("-path={mount}"), "kv-v2"],
    )?;
    let kv_put = |value: &str| {
        bao.bao(
            None,
            &[
                "kv",
                "put",
                &format!("-mount={mount}"),
                "app/db",
                &format!("password={value}"),
            ],
        )
    };
    kv_put("first")?;
    bao.bao(
        None,
        &[
            "kv",
            "put",
            &format!("-mount={mount}"),
            "app/gone",
            "token=soon-removed",
        ],
    )?;
    let mut token = secret(&app_ns, "vault-token", &[]);
    token.string_data = Some([("token".to_owned(), bao.root_token().to_owned())].into());
    Api::<Secret>::namespaced(admin.clone(), &app_ns)
        .create(&PostParams::default(), &token)
        .await?;
    // The ClusterSecretStore admits namespaces by label.
    let selector_label = signet_testkit::unique_name("team");
    Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone())
        .patch(
            &app_ns,
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"metadata": {"labels": {"signet-chart-test": selector_label}}}),
            ),
        )
        .await?;

    let mut config = Config::new(&release_ns);
    config.watch_namespace = watch_namespace.then(|| app_ns.clone());
    config.listen_addr = "127.0.0.1:0".parse()?;
    config.metrics_addr = "127.0.0.1:0".parse()?;
    config.key_bits = 2048;
    config.sops_age_secrets = vec!["sops-age".to_owned()];
    config.provider_backoff_max = Duration::from_secs(2);
    // Leader election, as the chart runs it (the Lease in the release namespace).
    config.leader_election = Some(signet_controller::config::LeaderElection {
        lease_name: signet_testkit::unique_name("chartlease"),
        ..Default::default()
    });
    let controller = signet_controller::start(controller_client, config).await?;

    let app = Some(app_ns.as_str());
    let vault = |auth_namespace: Option<&str>| {
        let mut token_ref = serde_json::json!({"name": "vault-token", "key": "token"});
        if let Some(ns) = auth_namespace {
            token_ref["namespace"] = serde_json::json!(ns);
        }
        serde_json::json!({"vault": {"server": bao.addr(), "path": mount, "version": "v2",
                                     "auth": {"tokenSecretRef": token_ref}}})
    };
    create_signet(
        &admin,
        "SecretStore",
        app,
        "vault",
        serde_json::json!({"spec": {"provider": vault(None)}}),
    )
    .await?;
    let cluster_store = signet_testkit::unique_name("chartstore");
    create_signet(
        &admin,
        "ClusterSecretStore",
        None,
        &cluster_store,
        serde_json::json!({"spec": {
            "provider": vault(app),
            "conditions": [{"namespaceSelector": {"matchLabels": {"signet-chart-test": selector_label}}}],
        }}),
    )
    .await?;
    let data = serde_json::json!([{"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}]);
    // Its Secret's one key comes through a template kept in a ConfigMap of its namespace (the
    // `get configmaps` grant).
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(admin.clone(), &app_ns)
        .create(
            &PostParams::default(),
            &k8s_openapi::api::core::v1::ConfigMap {
                metadata: ObjectMeta {
                    name: Some("templates".into()),
                    ..ObjectMeta::default()
                },
                data: Some([("password".to_owned(), "{{ .password }}".to_owned())].into()),
                ..Default::default()
            },
        )
        .await?;
    create_signet(
        &admin,
        "ExternalSecret",
        app,
        "from-store",
        serde_json::json!({"spec": {"secretStoreRef": {"name": "vault"}, "data": data,
            "target": {"template": {"templateFrom": [
                {"configMap": {"name": "templates", "items": [{"key": "password"}]}}]}}}}),
    )
    .await?;
    create_signet(
        &admin,
        "ExternalSecret",
        app,
        "from-cluster-store",
        serde_json::json!({"spec": {"secretStoreRef": {"name": cluster_store, "kind": "ClusterSecretStore"}, "data": data}}),
    )
    .await?;
    create_signet(
        &admin,
        "ExternalSecret",
        app,
        "short-lived",
        serde_json::json!({"spec": {
            "refreshInterval": "1s", "secretStoreRef": {"name": "vault"},
            "target": {"deletionPolicy": "Delete"},
            "data": [{"secretKey": "token", "remoteRef": {"key": "app/gone", "property": "token"}}],
        }}),
    )
    .await?;
    if mint_tokens {
        // Vault Kubernetes auth: a token is minted for the account (a mount OpenBao does not have
        // refuses the login, which is not what this test is about).
        Api::<ServiceAccount>::namespaced(admin.clone(), &app_ns)
            .create(
                &PostParams::default(),
                &ServiceAccount {
                    metadata: ObjectMeta {
                        name: Some("vault-reader".into()),
                        ..ObjectMeta::default()
                    },
                    ..ServiceAccount::default()
                },
            )
            .await?;
        create_signet(
            &admin,
            "SecretStore",
            app,
            "vault-k8s",
            serde_json::json!({"spec": {"provider": {"vault": {"server": bao.addr(), "path": mount,
                "auth": {"kubernetes": {"mountPath": "no-such-mount", "role": "r",
                                        "serviceAccountRef": {"name": "vault-reader"}}}}}}}),
        )
        .await?;
    }
    // A SealedSecret no key opens: its status still says so.
    let sealed_api = Api::<DynamicObject>::namespaced_with(
        admin.clone(),
        &app_ns,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("bitnami.com", "v1alpha1", "SealedSecret"),
            "sealedsecrets",
        ),
    );
    sealed_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
                "metadata": {"name": "sealed-elsewhere"},
                "spec": {"encryptedData": {"password": "AgBvbm90c2VhbGVk"}},
            }))?,
        )
        .await?;
    // Encrypted to a key the controller does not hold: it must still say so in the status.
    create_signet(
        &admin,
        "SopsSecret",
        app,
        "sealed-elsewhere",
        serde_json::json!({
            "spec": {"binding": "ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]",
                     "stringData": {"password": "ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]"}},
            "sops": {"age": [{"recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
                              "enc": "-----BEGIN AGE ENCRYPTED FILE-----\nAAAA\n-----END AGE ENCRYPTED FILE-----\n"}],
                     "lastmodified": "2026-01-01T00:00:00Z", "mac": "ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]",
                     "encrypted_regex": "^(data|stringData|binding)$", "mac_only_encrypted": true, "version": "3.11.0"},
        }),
    )
    .await?;

    let ces = signet_testkit::unique_name("chartces");
    create_signet(
        &admin,
        "ClusterExternalSecret",
        None,
        &ces,
        serde_json::json!({"spec": {"namespaces": [app_ns],
            "externalSecretSpec": {"secretStoreRef": {"name": "vault"}, "data": data}}}),
    )
    .await?;

    let outcome = async {
        let sops_reason =
            wait_ready(&admin, "SopsSecret", app, "sealed-elsewhere", "False").await?;
        assert_eq!(
            sops_reason, "NoDecryptionKey",
            "a SopsSecret failure has a reason"
        );
        wait_ready(&admin, "SecretStore", app, "vault", "True").await?;
        if mint_tokens {
            wait_ready(&admin, "SecretStore", app, "vault-k8s", "False").await?;
        }
        signet_tests::poll::eventually(
            "the SealedSecret's status",
            Duration::from_secs(60),
            || {
                let api = sealed_api.clone();
                async move {
                    let object = api.get("sealed-elsewhere").await.ok()?;
                    object.data["status"]["conditions"].as_array().map(|_| ())
                }
            },
        )
        .await?;
        wait_ready(&admin, "ClusterSecretStore", None, &cluster_store, "True").await?;
        // Broken and mended: two more events of the same object (they live in `default`).
        let cluster_stores = signet_api(&admin, "ClusterSecretStore", None);
        for (version, ready) in [("v1", "False"), ("v2", "True")] {
            cluster_stores
                .patch(
                    &cluster_store,
                    &PatchParams::default(),
                    &Patch::Merge(
                        serde_json::json!({"spec": {"provider": {"vault": {"version": version}}}}),
                    ),
                )
                .await?;
            wait_ready(&admin, "ClusterSecretStore", None, &cluster_store, ready).await?;
        }
        for name in ["from-store", "from-cluster-store", "short-lived"] {
            wait_ready(&admin, "ExternalSecret", app, name, "True").await?;
        }
        let secrets = Api::<Secret>::namespaced(admin.clone(), &app_ns);
        for name in ["from-store", "from-cluster-store"] {
            let written = secrets.get(name).await?;
            let value = written
                .data
                .as_ref()
                .and_then(|d| d.get("password"))
                .map(|v| v.0.clone());
            assert_eq!(value.as_deref(), Some(&b"first"[..]), "{name}");
        }
        assert!(secrets.get_opt("short-lived").await?.is_some());
        // The remote value goes: deletionPolicy Delete removes the Secret it owns.
        bao.bao(
            None,
            &[
                "kv",
                "metadata",
                "delete",
                &format!("-mount={mount}"),
                "app/gone",
            ],
        )?;
        signet_tests::poll::eventually(
            "the short-lived Secret is deleted",
            Duration::from_secs(60),
            || {
                let secrets = secrets.clone();
                async move {
                    secrets
                        .get_opt("short-lived")
                        .await
                        .ok()?
                        .is_none()
                        .then_some(())
                }
            },
        )
        .await?;
        // The value comes back: the same ExternalSecret syncs again (a repeated event: a patch).
        wait_ready(&admin, "ExternalSecret", app, "short-lived", "False").await?;
        bao.bao(
            None,
            &[
                "kv",
                "put",
                &format!("-mount={mount}"),
                "app/gone",
                "token=back",
            ],
        )?;
        wait_ready(&admin, "ExternalSecret", app, "short-lived", "True").await?;
        let ces_api = signet_api(&admin, "ClusterExternalSecret", None);
        let made = signet_api(&admin, "ExternalSecret", app);
        if watch_namespace {
            // Only a controller watching every namespace reconciles ClusterExternalSecrets.
            assert!(ces_api.get(&ces).await?.data.get("status").is_none());
            assert!(made.get_opt(&ces).await?.is_none());
        } else {
            // A ClusterExternalSecret creates its ExternalSecret in the namespace it selects,
            // updates it when its spec changes and deletes it when the namespace leaves.
            wait_ready(&admin, "ClusterExternalSecret", None, &ces, "True").await?;
            wait_ready(&admin, "ExternalSecret", app, &ces, "True").await?;
            for (patch, what) in [
                (
                    serde_json::json!({"spec": {"externalSecretSpec": {"refreshInterval": "2h"}}}),
                    "updated",
                ),
                (serde_json::json!({"spec": {"namespaces": []}}), "deleted"),
            ] {
                ces_api
                    .patch(&ces, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
                signet_tests::poll::eventually(
                    &format!("the ClusterExternalSecret's ExternalSecret {what}"),
                    Duration::from_secs(60),
                    || {
                        let (made, ces) = (made.clone(), &ces);
                        async move {
                            let found = made.get_opt(ces).await.ok()?;
                            let done = match what {
                                "updated" => found?.data["spec"]["refreshInterval"] == "2h",
                                _ => found.is_none(),
                            };
                            done.then_some(())
                        }
                    },
                )
                .await?;
            }
        }
        // A sealing key was made in the controller namespace.
        let keys = Api::<Secret>::namespaced(admin.clone(), &release_ns)
            .list(
                &kube::api::ListParams::default()
                    .labels("sealedsecrets.bitnami.com/sealed-secrets-key"),
            )
            .await?;
        assert!(!keys.items.is_empty(), "no sealing key Secret");
        Ok::<(), Box<dyn std::error::Error>>(())
    }
    .await;
    controller.shutdown().await;
    signet_api(&admin, "ClusterSecretStore", None)
        .delete(&cluster_store, &DeleteParams::default())
        .await?;
    if mint_tokens {
        // The next (cluster-wide) run may mint in its own namespace only: it must not meet this
        // store.
        signet_api(&admin, "SecretStore", app)
            .delete("vault-k8s", &DeleteParams::default())
            .await?;
    }
    outcome?;
    every_grant_was_used(server, &rbac, watch_namespace)
}

/// A verb on a resource (`resource/subresource`) of an API group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Permission {
    verb: String,
    group: String,
    resource: String,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}/{}", self.verb, self.group, self.resource)
    }
}

/// What the rendered RBAC grants the controller's account: each permission with where it holds
/// (`None`: every namespace and the cluster scope; `Some(ns)`: that namespace only).
fn grants(rbac: &[Value]) -> Vec<(Option<String>, Permission)> {
    let role = |kind: &str, namespace: Option<&str>, name: &str| {
        rbac.iter().find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && (kind == "ClusterRole" || o["metadata"]["namespace"].as_str() == namespace)
        })
    };
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let mut grants = Vec::new();
    for binding in rbac
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding" || o["kind"] == "RoleBinding")
    {
        let scope = (binding["kind"] == "RoleBinding")
            .then(|| binding["metadata"]["namespace"].as_str().map(str::to_owned))
            .flatten();
        let reference = &binding["roleRef"];
        let found = role(
            reference["kind"].as_str().unwrap_or_default(),
            scope.as_deref(),
            reference["name"].as_str().unwrap_or_default(),
        );
        let Some(found) = found else {
            panic!(
                "binding {} names a role the chart does not render",
                binding["metadata"]["name"]
            );
        };
        for rule in found["rules"].as_array().into_iter().flatten() {
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        assert!(
                            group != "*" && resource != "*" && verb != "*",
                            "a wildcard in the chart RBAC: {rule}"
                        );
                        grants.push((
                            scope.clone(),
                            Permission {
                                verb,
                                group: group.clone(),
                                resource: resource.clone(),
                            },
                        ));
                    }
                }
            }
        }
    }
    grants
}

/// One request from the API server's audit log.
struct AuditedRequest {
    /// `None`: cluster-scoped, or across namespaces.
    namespace: Option<String>,
    permission: Permission,
    /// The response code.
    code: i64,
}

/// The requests `username` made, from the API server's audit log.
fn audited_requests(
    audit_log: &Path,
    username: &str,
) -> Result<Vec<AuditedRequest>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(audit_log).map_err(|e| {
        format!(
            "audit log {}: {e} (a signet-apiserver built before --audit-log: run scripts/bootstrap apiserver)",
            audit_log.display()
        )
    })?;
    let mut requests = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Value = serde_json::from_str(line)?;
        if event["user"]["username"] != username {
            continue;
        }
        // Non-resource requests (discovery, /version) carry no objectRef; RBAC on them is not the
        // chart's.
        let object = &event["objectRef"];
        let Some(resource) = object["resource"].as_str() else {
            continue;
        };
        let resource = match object["subresource"].as_str() {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_owned(),
        };
        let namespace = object["namespace"].as_str().map(str::to_owned);
        let verb = event["verb"].as_str().unwrap_or_default();
        let code = event["responseStatus"]["code"].as_i64().unwrap_or_default();
        let permission = |verb: &str| Permission {
            verb: verb.to_owned(),
            group: object["apiGroup"].as_str().unwrap_or_default().to_owned(),
            resource: resource.clone(),
        };
        // A server-side apply that creates its object (201) was also authorized as a create.
        if verb == "patch" && code == 201 {
            requests.push(AuditedRequest {
                namespace: namespace.clone(),
                permission: permission("create"),
                code,
            });
        }
        requests.push(AuditedRequest {
            namespace,
            permission: permission(verb),
            code,
        });
    }
    Ok(requests)
}

/// Least privilege, proven: every permission the rendered chart grants was used by the controller
/// in the run just made (a grant no code path uses fails here and goes from the chart), and the
/// controller was never refused one it needed.
fn every_grant_was_used(server: &ApiServer, rbac: &[Value], watch_namespace: bool) -> TestResult {
    let account = one_of_kind(rbac, "ServiceAccount");
    let username = format!(
        "system:serviceaccount:{}:{}",
        account["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default(),
        account["metadata"]["name"].as_str().unwrap_or_default()
    );
    let requests = audited_requests(server.audit_log(), &username)?;
    assert!(
        !requests.is_empty(),
        "no request of {username} in the audit log"
    );
    let refused: Vec<String> = requests
        .iter()
        .filter(|r| r.code == 401 || r.code == 403)
        .map(|r| format!("{} in {:?}: {}", r.permission, r.namespace, r.code))
        .collect();
    assert!(
        refused.is_empty(),
        "watchNamespace={watch_namespace}: the controller was refused:\n{}",
        refused.join("\n")
    );
    let mut unused: Vec<String> = grants(rbac)
        .into_iter()
        .filter(|(scope, granted)| {
            !requests
                .iter()
                .any(|r| r.permission == *granted && (scope.is_none() || *scope == r.namespace))
        })
        .map(|(scope, p)| format!("{p} in {}", scope.as_deref().unwrap_or("the cluster")))
        .collect();
    unused.sort();
    unused.dedup();
    assert!(
        unused.is_empty(),
        "watchNamespace={watch_namespace}: the chart grants what no code path used:\n{}",
        unused.join("\n")
    );
    Ok(())
}

/// Both binding modes, one after the other (a cluster-wide controller would also reconcile the
/// namespace-bound run's objects and hide its failures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_reconciles_every_kind_with_the_chart_rbac_in_both_modes() -> TestResult {
    controller_reconciles_under_the_chart_rbac(true).await?;
    controller_reconciles_under_the_chart_rbac(false).await
}
