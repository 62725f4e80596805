//! `signet-providers` against a real OpenBao (KV v2): token, AppRole and Kubernetes auth (the
//! last with TokenReview answered by the real API server), versions, property paths, `get_all`,
//! and the errors a store gives (not found, refused credentials, unreachable), checked for
//! leaked credentials.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use signet_providers::{Error, RemoteRef, SecretProvider, VaultAuth, VaultKv, VaultKvConfig};
use signet_testkit::{ApiServer, OpenBao, unique_name};
use zeroize::Zeroizing;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn openbao() -> &'static OpenBao {
    tokio::task::spawn_blocking(OpenBao::shared)
        .await
        .expect("the OpenBao start task panicked")
        .unwrap_or_else(|e| panic!("OpenBao is needed for this test (scripts/bootstrap): {e}"))
}

/// Mounts a KV v2 engine at a fresh path; its mount path.
fn kv_mount(bao: &OpenBao) -> String {
    let mount = unique_name("kv");
    bao.bao(
        None,
        &["secrets", "enable", &format!("-path={mount}"), "kv-v2"],
    )
    .expect("enable kv-v2");
    mount
}

/// Writes `data` as a new version of `mount/key` with the root token; the version written.
async fn write(bao: &OpenBao, mount: &str, key: &str, data: Value) -> u64 {
    let written: Value = reqwest::Client::new()
        .post(format!("{}/v1/{mount}/data/{key}", bao.addr()))
        .header("X-Vault-Token", bao.root_token())
        .json(&json!({ "data": data }))
        .send()
        .await
        .expect("KV write sent")
        .error_for_status()
        .expect("KV write accepted")
        .json()
        .await
        .expect("KV write answer");
    written["data"]["version"].as_u64().expect("a version")
}

/// A policy file allowing reads of every secret in `mount`; the policy name.
fn read_policy(bao: &OpenBao, mount: &str) -> String {
    let name = unique_name("read");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("policy.hcl");
    std::fs::write(
        &file,
        format!("path \"{mount}/data/*\" {{ capabilities = [\"read\"] }}\n"),
    )
    .expect("write policy");
    bao.bao(
        None,
        &["policy", "write", &name, file.to_str().expect("utf-8 path")],
    )
    .expect("policy write");
    name
}

fn config(bao: &OpenBao, mount: &str, auth: VaultAuth) -> VaultKvConfig {
    VaultKvConfig {
        server: bao.addr(),
        mount: mount.to_owned(),
        namespace: None,
        ca_pem: None,
        auth,
    }
}

fn root(bao: &OpenBao) -> VaultAuth {
    VaultAuth::Token(Zeroizing::new(bao.root_token().to_owned()))
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("utf-8 value")
}

fn texts(map: &BTreeMap<String, signet_providers::SecretBytes>) -> BTreeMap<&str, &str> {
    map.iter().map(|(k, v)| (k.as_str(), text(v))).collect()
}

/// Display and Debug of `error`, checked not to hold `canary`.
fn assert_no_leak(error: &Error, canary: &str) {
    let shown = format!("{error} / {error:?}");
    assert!(
        !shown.contains(canary),
        "the error leaks a credential: {shown}"
    );
}

#[tokio::test]
async fn token_auth_reads_whole_secrets_properties_and_fields() -> TestResult {
    let bao = openbao().await;
    let mount = kv_mount(bao);
    let data = json!({
        "username": "app",
        "password": "s3cret",
        "port": 5432,
        "db": {"primary": {"host": "db1", "replicas": ["db2", "db3"]}},
        "tls.crt": "CERT",
        "a.b": {"c": "escaped"},
        "enabled": true
    });
    write(bao, &mount, "team/app", data.clone()).await;
    let kv = VaultKv::new(config(bao, &mount, root(bao)))?;
    assert_eq!(kv.kind(), "vault");
    kv.validate().await?;

    let whole = kv.get(&RemoteRef::new("team/app")).await?;
    assert_eq!(serde_json::from_slice::<Value>(&whole)?, data);

    for (property, want) in [
        ("password", "s3cret"),
        ("port", "5432"),
        ("enabled", "true"),
        ("db.primary.host", "db1"),
        ("db.primary.replicas.1", "db3"),
        ("db.primary", r#"{"host":"db1","replicas":["db2","db3"]}"#),
        ("tls.crt", "CERT"),
        (r"a\.b.c", "escaped"),
    ] {
        let value = kv
            .get(&RemoteRef::new("team/app").with_property(property))
            .await?;
        assert_eq!(text(&value), want, "property {property}");
    }

    let missing = kv
        .get(&RemoteRef::new("team/app").with_property("db.primary.user"))
        .await
        .expect_err("no such property");
    assert_eq!(missing.reason(), "InvalidProperty");
    assert!(missing.to_string().contains("db.primary.user"), "{missing}");
    assert_no_leak(&missing, "s3cret");

    let all = kv.get_all(&RemoteRef::new("team/app")).await?;
    assert_eq!(
        texts(&all),
        BTreeMap::from([
            ("a.b", r#"{"c":"escaped"}"#),
            (
                "db",
                r#"{"primary":{"host":"db1","replicas":["db2","db3"]}}"#
            ),
            ("enabled", "true"),
            ("password", "s3cret"),
            ("port", "5432"),
            ("tls.crt", "CERT"),
            ("username", "app"),
        ])
    );
    let nested = kv
        .get_all(&RemoteRef::new("team/app").with_property("db.primary"))
        .await?;
    assert_eq!(
        texts(&nested),
        BTreeMap::from([("host", "db1"), ("replicas", r#"["db2","db3"]"#)])
    );
    let not_object = kv
        .get_all(&RemoteRef::new("team/app").with_property("password"))
        .await
        .expect_err("a string has no fields");
    assert_eq!(not_object.reason(), "InvalidProperty");
    assert_no_leak(&not_object, "s3cret");

    // ESO spells keys with the mount in front, with or without `data/`.
    for key in [
        format!("{mount}/team/app"),
        format!("{mount}/data/team/app"),
    ] {
        let value = kv
            .get(&RemoteRef::new(key.clone()).with_property("username"))
            .await?;
        assert_eq!(text(&value), "app", "key {key}");
    }
    Ok(())
}

#[tokio::test]
async fn versions_are_read_by_number() -> TestResult {
    let bao = openbao().await;
    let mount = kv_mount(bao);
    assert_eq!(
        write(bao, &mount, "rotating", json!({"password": "first"})).await,
        1
    );
    assert_eq!(
        write(bao, &mount, "rotating", json!({"password": "second"})).await,
        2
    );
    let kv = VaultKv::new(config(bao, &mount, root(bao)))?;
    let current = RemoteRef::new("rotating").with_property("password");
    assert_eq!(text(&kv.get(&current).await?), "second");
    assert_eq!(
        text(&kv.get(&current.clone().with_version("1")).await?),
        "first"
    );
    assert_eq!(
        text(&kv.get(&current.clone().with_version("2")).await?),
        "second"
    );
    let first_all = kv
        .get_all(&RemoteRef::new("rotating").with_version("1"))
        .await?;
    assert_eq!(texts(&first_all), BTreeMap::from([("password", "first")]));

    let error = kv
        .get(&current.with_version("7"))
        .await
        .expect_err("version 7 was never written");
    assert_eq!(error.reason(), "NotFound", "{error}");
    assert!(error.to_string().contains("\"7\""), "{error}");

    // A deleted version is gone too.
    reqwest::Client::new()
        .delete(format!("{}/v1/{mount}/data/rotating", bao.addr()))
        .header("X-Vault-Token", bao.root_token())
        .send()
        .await?
        .error_for_status()?;
    let error = kv
        .get(&RemoteRef::new("rotating"))
        .await
        .expect_err("the latest version was deleted");
    assert_eq!(error.reason(), "NotFound", "{error}");
    assert_eq!(
        text(
            &kv.get(&RemoteRef::new("rotating").with_version("1"))
                .await?
        ),
        r#"{"password":"first"}"#
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_secret_is_not_found_but_a_missing_mount_is_not() -> TestResult {
    let bao = openbao().await;
    let mount = kv_mount(bao);
    let kv = VaultKv::new(config(bao, &mount, root(bao)))?;
    let error = kv
        .get(&RemoteRef::new("no/such/secret"))
        .await
        .expect_err("nothing written there");
    assert_eq!(error.reason(), "NotFound");
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(message.contains("no/such/secret"), "{message}");
    assert!(message.contains(&bao.addr()), "{message}");
    assert!(message.contains(&mount), "{message}");

    // A mount that does not exist must not look like a deleted secret (the controller would
    // delete target Secrets on NotFound with deletionPolicy: Delete).
    let wrong_mount = VaultKv::new(config(bao, &unique_name("nomount"), root(bao)))?;
    let error = wrong_mount
        .get(&RemoteRef::new("app"))
        .await
        .expect_err("no such mount");
    assert_ne!(error.reason(), "NotFound", "{error}");
    Ok(())
}

#[tokio::test]
async fn a_refused_token_is_unauthorized_and_never_shown() -> TestResult {
    let bao = openbao().await;
    let mount = kv_mount(bao);
    write(bao, &mount, "app", json!({"password": "pw"})).await;
    let canary = unique_name("canary-token");
    let kv = VaultKv::new(config(
        bao,
        &mount,
        VaultAuth::Token(Zeroizing::new(canary.clone())),
    ))?;
    assert!(!format!("{kv:?}").contains(&canary));
    for error in [
        kv.get(&RemoteRef::new("app")).await.expect_err("bad token"),
        kv.get_all(&RemoteRef::new("app"))
            .await
            .expect_err("bad token"),
        kv.validate().await.expect_err("bad token"),
    ] {
        assert_eq!(error.reason(), "Unauthorized", "{error}");
        assert!(!error.is_retryable());
        assert!(error.to_string().contains(&bao.addr()), "{error}");
        assert_no_leak(&error, &canary);
    }

    // A valid token without a policy for the mount is refused too.
    let limited = bao.bao(
        None,
        &["token", "create", "-policy=default", "-field=token"],
    )?;
    let kv = VaultKv::new(config(
        bao,
        &mount,
        VaultAuth::Token(Zeroizing::new(limited.trim().to_owned())),
    ))?;
    kv.validate().await?;
    let error = kv
        .get(&RemoteRef::new("app"))
        .await
        .expect_err("the default policy cannot read the mount");
    assert_eq!(error.reason(), "Unauthorized", "{error}");
    assert_no_leak(&error, limited.trim());
    Ok(())
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_retryable() -> TestResult {
    let port = signet_testkit::free_port()?;
    let server = format!("http://127.0.0.1:{port}");
    let kv = VaultKv::new(VaultKvConfig {
        server: server.clone(),
        mount: "secret".into(),
        namespace: None,
        ca_pem: None,
        auth: VaultAuth::AppRole {
            mount: String::new(),
            role_id: "role".into(),
            secret_id: Zeroizing::new("canary-secret-id".into()),
        },
    })?;
    for error in [
        kv.get(&RemoteRef::new("app"))
            .await
            .expect_err("closed port"),
        kv.validate().await.expect_err("closed port"),
    ] {
        assert_eq!(error.reason(), "ProviderUnavailable", "{error}");
        assert!(error.is_retryable());
        assert!(error.to_string().contains(&server), "{error}");
        assert_no_leak(&error, "canary-secret-id");
    }
    Ok(())
}

/// Enables AppRole at a fresh path with a role reading `mount`; (auth path, role id, secret id).
fn approle(bao: &OpenBao, mount: &str) -> (String, String, String) {
    let path = unique_name("approle");
    bao.bao(
        None,
        &["auth", "enable", &format!("-path={path}"), "approle"],
    )
    .expect("enable approle");
    let policy = read_policy(bao, mount);
    bao.bao(
        None,
        &[
            "write",
            &format!("auth/{path}/role/reader"),
            &format!("token_policies={policy}"),
            "token_ttl=1h",
        ],
    )
    .expect("create role");
    let role_id = bao
        .bao(
            None,
            &[
                "read",
                "-field=role_id",
                &format!("auth/{path}/role/reader/role-id"),
            ],
        )
        .expect("role id");
    let secret_id = bao
        .bao(
            None,
            &[
                "write",
                "-f",
                "-field=secret_id",
                &format!("auth/{path}/role/reader/secret-id"),
            ],
        )
        .expect("secret id");
    (path, role_id.trim().to_owned(), secret_id.trim().to_owned())
}

#[tokio::test]
async fn approle_logs_in_lazily_and_again_after_its_token_is_revoked() -> TestResult {
    let bao = openbao().await;
    let mount = kv_mount(bao);
    write(bao, &mount, "app", json!({"password": "via-approle"})).await;
    let (path, role_id, secret_id) = approle(bao, &mount);
    let kv = VaultKv::new(config(
        bao,
        &mount,
        VaultAuth::AppRole {
            mount: path.clone(),
            role_id: role_id.clone(),
            secret_id: Zeroizing::new(secret_id.clone()),
        },
    ))?;
    assert!(!format!("{kv:?}").contains(&secret_id));
    let password = RemoteRef::new("app").with_property("password");
    assert_eq!(text(&kv.get(&password).await?), "via-approle");
    kv.validate().await?;

    // Revoke every token the role handed out: the cached one now gets 403, and the provider
    // logs in again and retries instead of failing.
    bao.bao(
        None,
        &["token", "revoke", "-mode=path", &format!("auth/{path}/")],
    )?;
    assert_eq!(text(&kv.get(&password).await?), "via-approle");

    // A wrong secret id is refused, and not repeated in the message.
    let canary = unique_name("canary-secret-id");
    let wrong = VaultKv::new(config(
        bao,
        &mount,
        VaultAuth::AppRole {
            mount: path,
            role_id,
            secret_id: Zeroizing::new(canary.clone()),
        },
    ))?;
    let error = wrong.get(&password).await.expect_err("wrong secret id");
    assert_eq!(error.reason(), "Unauthorized", "{error}");
    assert_no_leak(&error, &canary);
    let error = wrong.validate().await.expect_err("wrong secret id");
    assert_eq!(error.reason(), "Unauthorized", "{error}");
    assert_no_leak(&error, &canary);
    Ok(())
}

#[tokio::test]
async fn approle_renews_its_login_when_the_lease_runs_out() -> TestResult {
    let bao = openbao().await;
    let mount = kv_mount(bao);
    write(bao, &mount, "short", json!({"v": "1"})).await;
    let (path, role_id, secret_id) = approle(bao, &mount);
    // Tokens that live 2 s, and cannot be renewed past that.
    bao.bao(
        None,
        &[
            "write",
            &format!("auth/{path}/role/reader"),
            "token_ttl=2s",
            "token_max_ttl=2s",
        ],
    )?;
    let kv = VaultKv::new(config(
        bao,
        &mount,
        VaultAuth::AppRole {
            mount: path,
            role_id,
            secret_id: Zeroizing::new(secret_id),
        },
    ))?;
    let value = RemoteRef::new("short").with_property("v");
    for _ in 0..3 {
        assert_eq!(text(&kv.get(&value).await?), "1");
        tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    }
    Ok(())
}

/// PEM text of DER certificates.
fn pem(certificates: &[Vec<u8>]) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for der in certificates {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(der);
        for line in encoded.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

#[tokio::test]
async fn kubernetes_login_is_checked_by_the_api_server() -> TestResult {
    use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
    use kube::api::{Api, ObjectMeta, PostParams};

    let bao = openbao().await;
    let apiserver = tokio::task::spawn_blocking(ApiServer::shared)
        .await?
        .unwrap_or_else(|e| {
            panic!("the API server is needed for this test (scripts/bootstrap): {e}")
        });
    let admin = apiserver.client().await?;
    let namespace = apiserver.create_namespace(&admin, "providers-k8s").await?;

    // The reviewer: a service account allowed to create TokenReviews.
    let reviewer_jwt = apiserver
        .service_account_token(&admin, &namespace, "vault-reviewer")
        .await?;
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(format!("{namespace}-auth-delegator")),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "system:auth-delegator".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "vault-reviewer".into(),
            namespace: Some(namespace.clone()),
            ..Subject::default()
        }]),
    };
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &binding)
        .await?;

    let kube_config = apiserver.config().await?;
    let host = kube_config.cluster_url.to_string();
    let ca = match (&kube_config.root_cert, &kube_config.root_cert_file) {
        (Some(der), _) => pem(der),
        (None, Some(file)) => std::fs::read_to_string(file)?,
        (None, None) => String::new(),
    };
    assert!(!ca.is_empty(), "the admin kubeconfig has a CA");
    let dir = tempfile::tempdir()?;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca)?;

    let mount = kv_mount(bao);
    write(bao, &mount, "app", json!({"password": "via-kubernetes"})).await;
    let policy = read_policy(bao, &mount);
    let auth_path = unique_name("k8s");
    bao.bao(
        None,
        &[
            "auth",
            "enable",
            &format!("-path={auth_path}"),
            "kubernetes",
        ],
    )?;
    bao.bao(
        None,
        &[
            "write",
            &format!("auth/{auth_path}/config"),
            &format!("kubernetes_host={}", host.trim_end_matches('/')),
            &format!("kubernetes_ca_cert=@{}", ca_file.display()),
            &format!("token_reviewer_jwt={reviewer_jwt}"),
            "disable_local_ca_jwt=true",
        ],
    )?;
    bao.bao(
        None,
        &[
            "write",
            &format!("auth/{auth_path}/role/app"),
            "bound_service_account_names=app",
            &format!("bound_service_account_namespaces={namespace}"),
            &format!("token_policies={policy}"),
            "token_ttl=1h",
        ],
    )?;

    let app_jwt = apiserver
        .service_account_token(&admin, &namespace, "app")
        .await?;
    let intruder_jwt = apiserver
        .service_account_token(&admin, &namespace, "intruder")
        .await?;
    let password = RemoteRef::new("app").with_property("password");

    let kv = VaultKv::new(config(
        bao,
        &mount,
        VaultAuth::Kubernetes {
            mount: auth_path.clone(),
            role: "app".into(),
            jwt: Zeroizing::new(app_jwt.clone()),
        },
    ))?;
    kv.validate().await?;
    assert_eq!(text(&kv.get(&password).await?), "via-kubernetes");

    // Another service account's token is refused by the role binding; the JWT stays out of the
    // error. Handing over the right token fixes the provider in place.
    let kv = VaultKv::new(config(
        bao,
        &mount,
        VaultAuth::Kubernetes {
            mount: auth_path,
            role: "app".into(),
            jwt: Zeroizing::new(intruder_jwt.clone()),
        },
    ))?;
    let error = kv.get(&password).await.expect_err("wrong service account");
    assert_eq!(error.reason(), "Unauthorized", "{error}");
    assert_no_leak(&error, &intruder_jwt);
    kv.set_kubernetes_jwt(Zeroizing::new(app_jwt))?;
    assert_eq!(text(&kv.get(&password).await?), "via-kubernetes");
    Ok(())
}

#[tokio::test]
async fn a_namespace_is_sent_with_every_call() -> TestResult {
    let bao = openbao().await;
    let namespace = unique_name("team");
    bao.bao(None, &["namespace", "create", &namespace])?;
    bao.bao(
        Some(&namespace),
        &["secrets", "enable", "-path=kv", "kv-v2"],
    )?;
    reqwest::Client::new()
        .post(format!("{}/v1/kv/data/app", bao.addr()))
        .header("X-Vault-Token", bao.root_token())
        .header("X-Vault-Namespace", &namespace)
        .json(&json!({"data": {"password": "in-namespace"}}))
        .send()
        .await?
        .error_for_status()?;

    let mut in_namespace = config(bao, "kv", root(bao));
    in_namespace.namespace = Some(namespace.clone());
    let kv = VaultKv::new(in_namespace)?;
    let password = RemoteRef::new("app").with_property("password");
    assert_eq!(text(&kv.get(&password).await?), "in-namespace");
    assert!(format!("{kv:?}").contains(&namespace));

    // The same mount and key outside the namespace do not exist.
    let outside = VaultKv::new(config(bao, "kv", root(bao)))?;
    let error = outside
        .get(&password)
        .await
        .expect_err("not in the root namespace");
    assert_ne!(error.reason(), "NotFound", "{error}");
    Ok(())
}

/// A private `bao server -dev` on a port of the test's choosing (with `-dev-tls`, behind its
/// own CA), stopped when dropped.
struct PrivateOpenBao {
    process: std::process::Child,
    addr: String,
    root_token: String,
    /// The CA of a TLS server.
    ca_pem: Vec<u8>,
    dir: tempfile::TempDir,
}

impl Drop for PrivateOpenBao {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl PrivateOpenBao {
    async fn start(port: u16, root_token: &str, tls: bool) -> PrivateOpenBao {
        let program = signet_testkit::peer_path("bao")
            .unwrap_or_else(|e| panic!("OpenBao is needed for this test (scripts/bootstrap): {e}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args = vec![
            "server".to_owned(),
            "-dev".to_owned(),
            "-dev-no-store-token".to_owned(),
            format!("-dev-root-token-id={root_token}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ];
        if tls {
            args.push("-dev-tls".to_owned());
            args.push(format!("-dev-tls-cert-dir={}", dir.path().display()));
        }
        let process = std::process::Command::new(program)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start bao server -dev");
        let scheme = if tls { "https" } else { "http" };
        let mut server = PrivateOpenBao {
            process,
            addr: format!("{scheme}://127.0.0.1:{port}"),
            root_token: root_token.to_owned(),
            ca_pem: Vec::new(),
            dir,
        };
        let ca_file = server.dir.path().join("vault-ca.pem");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "bao server -dev {args:?} did not become ready within 60 s"
            );
            let ca_pem = if tls {
                std::fs::read(&ca_file).ok()
            } else {
                Some(Vec::new())
            };
            if let Some(pem) = ca_pem {
                let mut client = reqwest::Client::builder();
                if tls {
                    client = client.tls_certs_only(
                        reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default(),
                    );
                }
                let ready = client
                    .build()
                    .expect("HTTP client")
                    .get(format!("{}/v1/sys/health", server.addr))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
                if ready {
                    server.ca_pem = pem;
                    return server;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn a_private_ca_is_trusted_in_place_of_the_system_roots() -> TestResult {
    let port = signet_testkit::free_port()?;
    let server = PrivateOpenBao::start(port, &unique_name("tls-root"), true).await;
    let trusting = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&server.ca_pem)?)
        .build()?;
    trusting
        .post(format!("{}/v1/secret/data/app", server.addr))
        .header("X-Vault-Token", &server.root_token)
        .json(&json!({"data": {"password": "over-tls"}}))
        .send()
        .await?
        .error_for_status()?;
    let settings = |ca_pem: Option<Vec<u8>>| VaultKvConfig {
        server: server.addr.clone(),
        mount: "secret".into(),
        namespace: None,
        ca_pem,
        auth: VaultAuth::Token(Zeroizing::new(server.root_token.clone())),
    };
    let password = RemoteRef::new("app").with_property("password");

    let kv = VaultKv::new(settings(Some(server.ca_pem.clone())))?;
    kv.validate().await?;
    assert_eq!(text(&kv.get(&password).await?), "over-tls");

    // Without the CA the server's certificate is not trusted: the call fails and says where.
    let untrusting = VaultKv::new(settings(None))?;
    let error = untrusting.get(&password).await.expect_err("unknown issuer");
    assert_eq!(error.reason(), "ProviderUnavailable", "{error}");
    assert!(error.to_string().contains(&server.addr), "{error}");
    assert!(error.to_string().contains("certificate"), "{error}");
    assert_no_leak(&error, &server.root_token);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_approle_login() -> TestResult {
    let bao = openbao().await;
    let mount = kv_mount(bao);
    write(bao, &mount, "shared", json!({"v": "once"})).await;
    let (path, role_id, _) = approle(bao, &mount);
    // A secret id good for one login only: any second login would be refused.
    let single_use = bao.bao(
        None,
        &[
            "write",
            "-field=secret_id",
            &format!("auth/{path}/role/reader/secret-id"),
            "num_uses=1",
        ],
    )?;
    let auth = VaultAuth::AppRole {
        mount: path,
        role_id,
        secret_id: Zeroizing::new(single_use.trim().to_owned()),
    };
    let kv = std::sync::Arc::new(VaultKv::new(config(bao, &mount, auth.clone()))?);
    let calls = (0..8).map(|_| {
        let kv = std::sync::Arc::clone(&kv);
        tokio::spawn(async move {
            kv.get(&RemoteRef::new("shared").with_property("v"))
                .await
                .map(|v| v.to_vec())
        })
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result?.map_err(|e| e.to_string())?, b"once");
    }
    kv.validate().await?;
    // The secret id is used up: a second provider cannot log in.
    let error = VaultKv::new(config(bao, &mount, auth))?
        .get(&RemoteRef::new("shared"))
        .await
        .expect_err("the single-use secret id was spent by the first provider");
    assert_eq!(error.reason(), "Unauthorized", "{error}");
    Ok(())
}

#[tokio::test]
async fn a_provider_recovers_when_the_server_comes_back() -> TestResult {
    let port = signet_testkit::free_port()?;
    let root_token = unique_name("restart-root");
    let write_value = |addr: String, value: &'static str| {
        let token = root_token.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{addr}/v1/secret/data/app"))
                .header("X-Vault-Token", token)
                .json(&json!({"data": {"v": value}}))
                .send()
                .await?
                .error_for_status()
                .map(drop)
        }
    };
    let server = PrivateOpenBao::start(port, &root_token, false).await;
    write_value(server.addr.clone(), "before").await?;
    let kv = VaultKv::new(VaultKvConfig {
        server: server.addr.clone(),
        mount: "secret".into(),
        namespace: None,
        ca_pem: None,
        auth: VaultAuth::Token(Zeroizing::new(root_token.clone())),
    })?;
    let value = RemoteRef::new("app").with_property("v");
    assert_eq!(text(&kv.get(&value).await?), "before");

    drop(server);
    let error = kv.get(&value).await.expect_err("the server is down");
    assert_eq!(error.reason(), "ProviderUnavailable", "{error}");
    assert!(error.is_retryable());
    let error = kv.validate().await.expect_err("the server is down");
    assert_eq!(error.reason(), "ProviderUnavailable", "{error}");

    // Same address, fresh (dev servers keep nothing): the same provider works again.
    let server = PrivateOpenBao::start(port, &root_token, false).await;
    write_value(server.addr.clone(), "after").await?;
    kv.validate().await?;
    assert_eq!(text(&kv.get(&value).await?), "after");
    Ok(())
}
