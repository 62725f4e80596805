//! `signet seal`'s default online route, kubeseal's: the controller's Service reached through the
//! Kubernetes API server's service proxy with the user's kubeconfig.
//!
//! The real API server refuses to proxy to loopback addresses (it will not even store an
//! EndpointSlice that points at 127.0.0.1), and servers here may only listen on loopback, so a
//! proxied request can never succeed in this environment. What is tested instead: the CLI reaches
//! the API server with the kubeconfig's credentials and context (a token without RBAC is refused
//! with a 403, the admin context gets as far as the proxy), and every failure — the proxy's refusal,
//! a missing Service, no kubeconfig — exits 212 with a message naming the Service and the API
//! server's answer and pointing at `--cert` / `--controller-url`. The direct route to the same
//! running controller works, so the suggestion is a real way out.

use base64::Engine;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use kube::config::{Context, Kubeconfig, NamedAuthInfo, NamedContext};
use serde_json::json;
use signet_controller::{Config, RunningController};
use signet_testkit::ApiServer;
use signet_tests::poll::eventually;
use signet_tests::sandbox::{Run, Sandbox, signet_bin};
use std::path::{Path, PathBuf};
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxError = Box<dyn std::error::Error>;

/// The CLI's exit code for an unusable online route.
const ONLINE_MODE_UNAVAILABLE: i32 = 212;

/// kubeseal's (and our) default controller Service name.
const SERVICE: &str = "sealed-secrets-controller";

/// Planted in the Secret being sealed: it must never appear in an error.
const CANARY: &str = "canary-proxy-51c2-do-not-leak";

fn secret_manifest(namespace: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": "db", "namespace": namespace},
           "stringData": {"password": CANARY}})
    .to_string()
}

/// Runs `signet args` in `sandbox` with `env` set, no in-cluster variables and stdin `input`.
fn signet(sandbox: &Sandbox, args: &[&str], env: &[(&str, &Path)], input: &[u8]) -> Run {
    let mut command = sandbox.command(signet_bin());
    command
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("SEALED_SECRETS_CERT")
        .env_remove("SEALED_SECRETS_CONTROLLER_NAME")
        .env_remove("SEALED_SECRETS_CONTROLLER_NAMESPACE");
    for (key, value) in env {
        command.env(key, value);
    }
    run_with_stdin(command, input)
}

fn run_with_stdin(mut command: std::process::Command, input: &[u8]) -> Run {
    use std::io::Write;
    use std::process::Stdio;
    let cmdline = format!("{command:?}");
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmdline}: {e}"));
    let mut pipe = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait for signet");
    let _ = writer.join();
    Run { cmdline, output }
}

/// Asserts a 212 whose message names `namespace/name`, contains every piece of `answer` and the
/// two ways out; returns stderr.
#[track_caller]
fn assert_unavailable(run: &Run, service: &str, answer: &[&str]) -> String {
    let stderr = run.fails_with(ONLINE_MODE_UNAVAILABLE);
    assert!(stderr.contains(service), "names {service}: {stderr}");
    for piece in answer {
        assert!(stderr.contains(piece), "contains {piece:?}: {stderr}");
    }
    assert!(
        stderr.contains("--cert") && stderr.contains("--controller-url"),
        "suggests the other routes: {stderr}"
    );
    assert!(!stderr.contains(CANARY), "no plaintext in errors: {stderr}");
    assert!(run.output.stdout.is_empty(), "nothing written on failure");
    stderr
}

/// A running Signet controller (keys and watch in `namespace`) and the client that made it.
struct Running {
    client: kube::Client,
    namespace: String,
    controller: RunningController,
}

async fn start_controller(server: &ApiServer) -> Result<Running, BoxError> {
    let client = server.client().await?;
    signet_controller::install_crd(client.clone()).await?;
    let namespace = server.create_namespace(&client, "sigproxy").await?;
    let mut config = Config::new(&namespace);
    config.watch_namespace = Some(namespace.clone());
    config.listen_addr = "127.0.0.1:0".parse()?;
    config.metrics_addr = "127.0.0.1:0".parse()?;
    config.key_bits = 2048;
    let controller = signet_controller::start(client.clone(), config).await?;
    let ready = format!("http://{}/readyz", controller.http_addr);
    let http = reqwest::Client::new();
    eventually("controller ready", Duration::from_secs(60), || async {
        let response = http.get(&ready).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await?;
    Ok(Running {
        client,
        namespace,
        controller,
    })
}

/// The controller's Service as a chart would make it (port named `http`), without a selector: its
/// endpoints have to be given by hand.
async fn create_service(client: &kube::Client, namespace: &str, port: u16) -> TestResult {
    let service = Service {
        metadata: ObjectMeta {
            name: Some(SERVICE.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: 8080,
                target_port: Some(IntOrString::Int(i32::from(port))),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    Api::<Service>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &service)
        .await?;
    Ok(())
}

/// A kubeconfig with two contexts on the test API server: `nobody` (current; a ServiceAccount
/// token with no RBAC) and `admin` (the testkit's client certificate).
async fn two_context_kubeconfig(
    server: &ApiServer,
    client: &kube::Client,
    namespace: &str,
    dir: &Path,
) -> Result<PathBuf, BoxError> {
    let token = server
        .service_account_token(client, namespace, "nobody")
        .await?;
    let mut kubeconfig = Kubeconfig::read_from(server.kubeconfig_path())?;
    let cluster = kubeconfig
        .clusters
        .first()
        .map(|c| c.name.clone())
        .ok_or("no cluster in the testkit kubeconfig")?;
    let admin_user = kubeconfig
        .auth_infos
        .first()
        .map(|a| a.name.clone())
        .ok_or("no user in the testkit kubeconfig")?;
    kubeconfig.auth_infos.push(NamedAuthInfo {
        name: "nobody".to_owned(),
        auth_info: Some(kube::config::AuthInfo {
            token: Some(token.into()),
            ..kube::config::AuthInfo::default()
        }),
        other: Default::default(),
    });
    let context = |user: &str| Context {
        cluster: cluster.clone(),
        user: Some(user.to_owned()),
        ..Context::default()
    };
    kubeconfig.contexts = vec![
        NamedContext {
            name: "nobody".to_owned(),
            context: Some(context("nobody")),
            other: Default::default(),
        },
        NamedContext {
            name: "admin".to_owned(),
            context: Some(context(&admin_user)),
            other: Default::default(),
        },
    ];
    kubeconfig.current_context = Some("nobody".to_owned());
    let path = dir.join("kubeconfig.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&kubeconfig)?)?;
    Ok(path)
}

#[tokio::test]
async fn proxy_route_uses_the_kubeconfig_and_reports_the_api_servers_refusal() -> TestResult {
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let running = start_controller(server).await?;
    let namespace = running.namespace.clone();
    let http_addr = running.controller.http_addr;
    create_service(&running.client, &namespace, http_addr.port()).await?;

    // The endpoints cannot point at the controller on loopback: the API server rejects them.
    let slice = EndpointSlice {
        metadata: ObjectMeta {
            name: Some(format!("{SERVICE}-loopback")),
            labels: Some([("kubernetes.io/service-name".to_owned(), SERVICE.to_owned())].into()),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".to_owned(),
        endpoints: Some(vec![Endpoint {
            addresses: vec!["127.0.0.1".to_owned()],
            ..Endpoint::default()
        }]),
        ports: Some(vec![EndpointPort {
            name: Some("http".to_owned()),
            port: Some(i32::from(http_addr.port())),
            ..EndpointPort::default()
        }]),
    };
    let refused = Api::<EndpointSlice>::namespaced(running.client.clone(), &namespace)
        .create(&PostParams::default(), &slice)
        .await;
    match refused {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(status.message.contains("loopback"), "{status:?}");
        }
        other => panic!("the API server stored a loopback EndpointSlice: {other:?}"),
    }

    let sandbox = Sandbox::new();
    let kubeconfig =
        two_context_kubeconfig(server, &running.client, &namespace, sandbox.path()).await?;
    let admin_kubeconfig = server.kubeconfig_path().to_path_buf();
    let direct_url = format!("http://{http_addr}");
    let cert_pem = reqwest::get(format!("{direct_url}/v1/cert.pem"))
        .await?
        .text()
        .await?;
    let service = format!("{namespace}/{SERVICE}");
    tokio::task::spawn_blocking(move || {
        let proxy_refusal = ["no endpoints available for service", "503", "/v1/cert.pem"];
        // --kubeconfig and --controller-namespace: the API server is reached with the admin
        // credentials and answers for the proxy.
        let run = signet(
            &sandbox,
            &[
                "seal",
                "--kubeconfig",
                admin_kubeconfig.to_str().expect("UTF-8 path"),
                "--controller-namespace",
                &namespace,
                "--fetch-cert",
            ],
            &[],
            b"",
        );
        assert_unavailable(&run, &service, &proxy_refusal);

        // Sealing without --cert takes the same route; KUBECONFIG and kubeseal's environment
        // variable for the namespace are honoured.
        let manifest = secret_manifest(&namespace);
        let mut command = sandbox.command(signet_bin());
        command
            .args(["seal"])
            .env("KUBECONFIG", &admin_kubeconfig)
            .env("SEALED_SECRETS_CONTROLLER_NAMESPACE", &namespace)
            .env_remove("SEALED_SECRETS_CERT")
            .env_remove("KUBERNETES_SERVICE_HOST");
        let run = run_with_stdin(command, manifest.as_bytes());
        assert_unavailable(&run, &service, &proxy_refusal);

        // The kubeconfig's current context (a token without RBAC) is what the request carries...
        let kubeconfig_arg = kubeconfig.to_str().expect("UTF-8 path");
        let run = signet(
            &sandbox,
            &[
                "seal",
                "--kubeconfig",
                kubeconfig_arg,
                "--controller-namespace",
                &namespace,
            ],
            &[],
            manifest.as_bytes(),
        );
        assert_unavailable(
            &run,
            &service,
            &[
                "403",
                "forbidden",
                &format!("system:serviceaccount:{namespace}:nobody"),
            ],
        );
        // The way out the message suggests reaches the same controller.
        let run = signet(
            &sandbox,
            &["seal", "--controller-url", &direct_url, "--fetch-cert"],
            &[],
            b"",
        );
        assert_eq!(run.ok(), cert_pem.as_bytes());
        let sealed = signet(
            &sandbox,
            &["seal", "--controller-url", &direct_url],
            &[],
            manifest.as_bytes(),
        )
        .ok();

        // ... and --context picks the admin one, which gets as far as the proxy.
        let run = signet(
            &sandbox,
            &[
                "seal",
                "--kubeconfig",
                kubeconfig_arg,
                "--context",
                "admin",
                "--controller-namespace",
                &namespace,
                "--validate",
            ],
            &[],
            &sealed,
        );
        assert_unavailable(
            &run,
            &service,
            &["no endpoints available for service", "/v1/verify"],
        );
    })
    .await?;
    running.controller.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn missing_service_is_reported_as_not_found() -> TestResult {
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let client = server.client().await?;
    let namespace = server.create_namespace(&client, "sigproxynone").await?;
    let kubeconfig = server.kubeconfig_path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let sandbox = Sandbox::new();
        for name in [SERVICE, "other-controller"] {
            let run = signet(
                &sandbox,
                &[
                    "seal",
                    "--controller-namespace",
                    &namespace,
                    "--controller-name",
                    name,
                    "--fetch-cert",
                ],
                &[("KUBECONFIG", &kubeconfig)],
                b"",
            );
            assert_unavailable(
                &run,
                &format!("{namespace}/{name}"),
                &["service not found", "404", &format!("\"{name}\" not found")],
            );
        }
        // The default namespace is kube-system, as with kubeseal.
        let run = signet(
            &sandbox,
            &["seal", "--fetch-cert"],
            &[("KUBECONFIG", &kubeconfig)],
            b"",
        );
        assert_unavailable(
            &run,
            &format!("kube-system/{SERVICE}"),
            &["service not found"],
        );
    })
    .await?;
    Ok(())
}

#[test]
fn no_kubeconfig_is_reported_clearly() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path().join("no-such-kubeconfig");
    // No KUBECONFIG file, no ~/.kube/config (HOME is the sandbox), not in a pod.
    let run = signet(
        &sandbox,
        &["seal"],
        &[("KUBECONFIG", &missing)],
        secret_manifest("prod").as_bytes(),
    );
    assert_unavailable(
        &run,
        &format!("kube-system/{SERVICE}"),
        &["no usable Kubernetes configuration"],
    );
    let run = signet(
        &sandbox,
        &[
            "seal",
            "--kubeconfig",
            missing.to_str().expect("UTF-8 path"),
            "--fetch-cert",
        ],
        &[],
        b"",
    );
    assert_unavailable(
        &run,
        &format!("kube-system/{SERVICE}"),
        &["cannot read the kubeconfig", "no-such-kubeconfig"],
    );
}

/// The token in a kubeconfig, base64 or not, is never echoed in an error.
#[test]
fn kubeconfig_credentials_never_show_in_errors() {
    let sandbox = Sandbox::new();
    let token = "tok-3b9e-secret-bearer";
    let kubeconfig = sandbox.write(
        "kubeconfig.yaml",
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    \
             server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: k\n    \
             user: u\nusers:\n- name: u\n  user:\n    token: {token}\n"
        ),
    );
    let run = signet(
        &sandbox,
        &["seal", "--fetch-cert"],
        &[("KUBECONFIG", &kubeconfig)],
        b"",
    );
    let stderr = assert_unavailable(
        &run,
        &format!("kube-system/{SERVICE}"),
        &["https://127.0.0.1:1"],
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(token);
    assert!(
        !stderr.contains(token) && !stderr.contains(&encoded),
        "{stderr}"
    );
}
