//! ExternalSecrets on the real kube-apiserver, against the real OpenBao and moto from the testkit:
//! every provider and auth method (OpenBao token, AppRole, Kubernetes auth answered by the API
//! server's TokenReview; AWS Secrets Manager; SSM Parameter Store) produces the right Secret; a
//! remote change shows up after the interval; `Merge` merges, `Owner` refuses a Secret it does not
//! own, `deletionPolicy: Delete` removes the Secret when the remote value is gone; a store that
//! dies keeps the last good Secret and everything recovers when it returns; a controller restart
//! makes no provider call for objects whose Secret is current.

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use signet_controller::external::reconcile::OWNER_LABEL;
use signet_controller::external::{ExternalSecret, SecretStore};
use signet_controller::{Config, RunningController};
use signet_testkit::{ApiServer, Moto, OpenBao, unique_name};
use signet_tests::poll::eventually;
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxError = Box<dyn std::error::Error>;

/// This suite's API server, apart from the one the other suites share: every controller keeps the
/// `Ready` condition of every ClusterSecretStore, and one started by another suite (another store
/// policy, other credentials) would contradict this suite's controllers on this suite's stores.
fn api_server() -> Result<&'static ApiServer, String> {
    static SERVER: std::sync::OnceLock<Result<ApiServer, String>> = std::sync::OnceLock::new();
    SERVER
        .get_or_init(|| ApiServer::start().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Planted in remote values: it must never appear in a status or an event.
const CANARY: &str = "canary-e5e1-remote-do-not-leak";

struct Bed {
    client: Client,
    namespace: String,
    controller: Option<RunningController>,
    keys_namespace: String,
}

fn controller_config(keys_namespace: &str, namespace: &str) -> Result<Config, BoxError> {
    let mut config = Config::new(keys_namespace);
    config.watch_namespace = Some(namespace.to_owned());
    config.listen_addr = "127.0.0.1:0".parse()?;
    config.metrics_addr = "127.0.0.1:0".parse()?;
    config.key_bits = 2048;
    config.provider_backoff_max = Duration::from_secs(2);
    Ok(config)
}

impl Bed {
    async fn start() -> Result<Bed, BoxError> {
        Self::start_with(|_| {}).await
    }

    /// Starts a controller after `tweak` adjusted its configuration.
    async fn start_with(tweak: impl FnOnce(&mut Config)) -> Result<Bed, BoxError> {
        let server = tokio::task::spawn_blocking(api_server).await??;
        let client = server.client().await?;
        signet_controller::install_crd(client.clone()).await?;
        let keys_namespace = server.create_namespace(&client, "extkeys").await?;
        let namespace = server.create_namespace(&client, "extapp").await?;
        let mut config = controller_config(&keys_namespace, &namespace)?;
        tweak(&mut config);
        let controller = signet_controller::start(client.clone(), config).await?;
        Ok(Bed {
            client,
            namespace,
            controller: Some(controller),
            keys_namespace,
        })
    }

    /// A SecretStore `name` over `mount` of `bao` that logs in with `token`, kept in a Secret of the
    /// same name.
    async fn token_store(&self, name: &str, bao: &OpenBao, mount: &str, token: &str) -> TestResult {
        self.put_secret(name, &[("token", token)]).await?;
        self.store(
            name,
            vault_provider(
                bao,
                mount,
                json!({"tokenSecretRef": {"name": name, "key": "token"}}),
            ),
        )
        .await
    }

    /// A bed with a SecretStore `vault` over a fresh KV mount (holding `app/db`) of the shared
    /// OpenBao, logged in with the root token.
    async fn with_root_vault_store() -> Result<(Bed, &'static OpenBao, String), BoxError> {
        let bed = Bed::start().await?;
        let bao = tokio::task::spawn_blocking(OpenBao::shared).await??;
        let (mount, _) = vault_kv(bao, "app/db")?;
        bed.token_store("vault", bao, &mount, bao.root_token())
            .await?;
        Ok((bed, bao, mount))
    }

    fn controller(&self) -> &RunningController {
        self.controller.as_ref().expect("controller running")
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn external(&self) -> Api<ExternalSecret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn put_secret(&self, name: &str, values: &[(&str, &str)]) -> TestResult {
        let data = values
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect();
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..Secret::default()
        };
        self.secrets()
            .patch(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&secret),
            )
            .await?;
        Ok(())
    }

    async fn store(&self, name: &str, provider: serde_json::Value) -> TestResult {
        let store: SecretStore = serde_json::from_value(json!({
            "apiVersion": "signet.dev/v1alpha1", "kind": "SecretStore",
            "metadata": {"name": name},
            "spec": {"provider": provider}
        }))?;
        Api::<SecretStore>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &store)
            .await?;
        Ok(())
    }

    async fn external_secret(&self, name: &str, spec: serde_json::Value) -> TestResult {
        let object: ExternalSecret = serde_json::from_value(json!({
            "apiVersion": "signet.dev/v1alpha1", "kind": "ExternalSecret",
            "metadata": {"name": name},
            "spec": spec
        }))?;
        self.external()
            .create(&PostParams::default(), &object)
            .await?;
        Ok(())
    }

    /// Waits for `Ready` with `status` (and `reason`, if given) on the current generation.
    async fn wait_ready(
        &self,
        name: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<ExternalSecret, BoxError> {
        let api = self.external();
        let outcome = eventually(
            &format!("{name} Ready={status} {reason:?}"),
            Duration::from_secs(45),
            || async {
                let object = api.get(name).await.ok()?;
                let condition = object.status.as_ref()?.ready()?.clone();
                let done = condition.status == status
                    && reason.is_none_or(|r| condition.reason.as_deref() == Some(r));
                done.then_some(object)
            },
        )
        .await;
        if outcome.is_err()
            && let Ok(object) = api.get(name).await
        {
            eprintln!("{name} status: {:?}", object.status);
        }
        Ok(outcome?)
    }

    /// Waits until the Secret `name` has `key = value`.
    /// Waits until `name` is `Ready=False` with `reason`; its status as JSON text, for what the
    /// message says (and does not say).
    async fn refusal(&self, name: &str, reason: &str) -> Result<String, BoxError> {
        let refused = self.wait_ready(name, "False", Some(reason)).await?;
        Ok(serde_json::to_string(&refused.status)?)
    }

    async fn wait_value(&self, name: &str, key: &str, value: &str) -> Result<Secret, BoxError> {
        let api = self.secrets();
        Ok(eventually(
            &format!("Secret {name} {key}={value}"),
            Duration::from_secs(45),
            || async {
                let secret = api.get_opt(name).await.ok()??;
                (text(&secret, key).as_deref() == Some(value)).then_some(secret)
            },
        )
        .await?)
    }

    /// Waits until the SecretStore `name`'s Ready condition has `status` and `reason`.
    async fn wait_store(&self, name: &str, status: &str, reason: &str) -> TestResult {
        let stores: Api<SecretStore> = Api::namespaced(self.client.clone(), &self.namespace);
        let seen = eventually(
            &format!("store {name} {reason}"),
            Duration::from_secs(30),
            || {
                let stores = stores.clone();
                async move {
                    let store = stores.get(name).await.ok()?;
                    let condition = store.status?.conditions.into_iter().next()?;
                    (condition.status == status && condition.reason.as_deref() == Some(reason))
                        .then_some(())
                }
            },
        )
        .await;
        if seen.is_err()
            && let Ok(store) = stores.get(name).await
        {
            eprintln!("store {name}: {:?}", store.status);
        }
        Ok(seen?)
    }

    async fn assert_nothing_leaked(&self) -> TestResult {
        for object in self.external().list(&ListParams::default()).await? {
            let status = serde_json::to_string(&object.status)?;
            assert!(!status.contains(CANARY), "status leaks: {status}");
        }
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &self.namespace);
        for event in events.list(&ListParams::default()).await? {
            let note = event.note.unwrap_or_default();
            assert!(!note.contains(CANARY), "event leaks: {note}");
        }
        Ok(())
    }
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    let value = secret.data.as_ref()?.get(key)?;
    String::from_utf8(value.0.clone()).ok()
}

/// A fresh KV v2 mount in `bao`, a policy reading it, and one secret written twice (two versions).
fn vault_kv(bao: &OpenBao, secret: &str) -> Result<(String, String), BoxError> {
    let mount = unique_name("kv");
    bao.bao(
        None,
        &["secrets", "enable", &format!("-path={mount}"), "kv-v2"],
    )?;
    bao.bao(
        None,
        &[
            "kv",
            "put",
            &format!("-mount={mount}"),
            secret,
            "username=old-admin",
            "password=old",
        ],
    )?;
    // A nested value, as JSON (a `key=value` argument would store the JSON as a string).
    let value_file = std::env::temp_dir().join(format!("{}.json", unique_name("kv")));
    std::fs::write(
        &value_file,
        json!({"username": "admin", "password": format!("{CANARY}-pw"),
               "config": {"db": {"host": "db.internal", "port": 5432}}})
        .to_string(),
    )?;
    let put = bao.bao(
        None,
        &[
            "kv",
            "put",
            &format!("-mount={mount}"),
            secret,
            &format!("@{}", value_file.display()),
        ],
    );
    std::fs::remove_file(&value_file)?;
    put?;
    let policy = unique_name("read");
    let rules = format!("path \"{mount}/*\" {{ capabilities = [\"read\", \"list\"] }}");
    let policy_file = std::env::temp_dir().join(format!("{policy}.hcl"));
    std::fs::write(&policy_file, rules)?;
    bao.bao(
        None,
        &["policy", "write", &policy, &policy_file.to_string_lossy()],
    )?;
    std::fs::remove_file(&policy_file)?;
    Ok((mount, policy))
}

fn vault_provider(bao: &OpenBao, mount: &str, auth: serde_json::Value) -> serde_json::Value {
    json!({"vault": {"server": bao.addr(), "path": mount, "version": "v2", "auth": auth}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_token_approle_and_kubernetes_auth_produce_the_right_secrets() -> TestResult {
    let bed = Bed::start().await?;
    let bao = tokio::task::spawn_blocking(OpenBao::shared).await??;
    let (mount, policy) = vault_kv(bao, "app/db")?;

    // Token auth: a token of the read policy, in a Secret.
    let token = bao
        .bao(
            None,
            &[
                "token",
                "create",
                "-field=token",
                &format!("-policy={policy}"),
            ],
        )?
        .trim()
        .to_owned();
    bed.token_store("vault-token", bao, &mount, &token).await?;
    bed.external_secret(
        "by-token",
        json!({
            "refreshInterval": "1h",
            "secretStoreRef": {"name": "vault-token"},
            "target": {"template": {"type": "kubernetes.io/basic-auth", "metadata": {"labels": {"team": "db"}}}},
            "data": [
                {"secretKey": "username", "remoteRef": {"key": "app/db", "property": "username"}},
                {"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}},
                {"secretKey": "old", "remoteRef": {"key": "app/db", "property": "username", "version": "1"}},
                {"secretKey": "host", "remoteRef": {"key": "app/db", "property": "config.db.host"}}
            ]
        }),
    )
    .await?;
    bed.wait_ready("by-token", "True", Some("SecretSynced"))
        .await?;
    let secret = bed.wait_value("by-token", "username", "admin").await?;
    assert_eq!(text(&secret, "password"), Some(format!("{CANARY}-pw")));
    assert_eq!(text(&secret, "old").as_deref(), Some("old-admin"));
    assert_eq!(text(&secret, "host").as_deref(), Some("db.internal"));
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(secret.labels().get("team").map(String::as_str), Some("db"));
    let owner = bed.external().get("by-token").await?;
    assert_eq!(secret.labels().get(OWNER_LABEL), owner.uid().as_ref());
    assert_eq!(secret.owner_references()[0].kind, "ExternalSecret");

    // AppRole.
    let approle = unique_name("approle");
    bao.bao(
        None,
        &["auth", "enable", &format!("-path={approle}"), "approle"],
    )?;
    bao.bao(
        None,
        &[
            "write",
            &format!("auth/{approle}/role/reader"),
            &format!("token_policies={policy}"),
        ],
    )?;
    let role_id = bao
        .bao(
            None,
            &[
                "read",
                "-field=role_id",
                &format!("auth/{approle}/role/reader/role-id"),
            ],
        )?
        .trim()
        .to_owned();
    let secret_id = bao
        .bao(
            None,
            &[
                "write",
                "-f",
                "-field=secret_id",
                &format!("auth/{approle}/role/reader/secret-id"),
            ],
        )?
        .trim()
        .to_owned();
    bed.put_secret("approle", &[("secret-id", &secret_id)])
        .await?;
    bed.store(
        "vault-approle",
        vault_provider(
            bao,
            &mount,
            json!({"appRole": {"path": approle, "roleId": role_id, "secretRef": {"name": "approle", "key": "secret-id"}}}),
        ),
    )
    .await?;
    bed.external_secret(
        "by-approle",
        json!({
            "secretStoreRef": {"name": "vault-approle"},
            "dataFrom": [{"extract": {"key": "app/db"}}],
            "target": {"name": "approle-target"}
        }),
    )
    .await?;
    bed.wait_ready("by-approle", "True", Some("SecretSynced"))
        .await?;
    let secret = bed
        .wait_value("approle-target", "username", "admin")
        .await?;
    assert_eq!(text(&secret, "password"), Some(format!("{CANARY}-pw")));
    assert!(
        text(&secret, "config")
            .unwrap_or_default()
            .contains("db.internal")
    );

    // Kubernetes auth: OpenBao asks the real API server (TokenReview) about a token the controller
    // minted for the service account named in the store.
    let server = tokio::task::spawn_blocking(api_server).await??;
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path())?;
    let cluster = kubeconfig.clusters[0].cluster.clone().expect("cluster");
    let host = cluster.server.expect("server url");
    let ca_pem = {
        use base64::Engine;
        let data = cluster.certificate_authority_data.expect("CA data");
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data)?)?
    };
    let reviewer = unique_name("reviewer");
    let reviewer_token = server
        .service_account_token(&bed.client, &bed.keys_namespace, &reviewer)
        .await?;
    let binding: ClusterRoleBinding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(reviewer.clone()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "system:auth-delegator".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: reviewer.clone(),
            namespace: Some(bed.keys_namespace.clone()),
            ..Subject::default()
        }]),
    };
    Api::<ClusterRoleBinding>::all(bed.client.clone())
        .create(&PostParams::default(), &binding)
        .await?;
    let k8s_auth = unique_name("k8s");
    bao.bao(
        None,
        &["auth", "enable", &format!("-path={k8s_auth}"), "kubernetes"],
    )?;
    bao.bao(
        None,
        &[
            "write",
            &format!("auth/{k8s_auth}/config"),
            &format!("kubernetes_host={host}"),
            &format!("kubernetes_ca_cert={ca_pem}"),
            &format!("token_reviewer_jwt={reviewer_token}"),
        ],
    )?;
    bao.bao(
        None,
        &[
            "write",
            &format!("auth/{k8s_auth}/role/app"),
            "bound_service_account_names=vault-reader",
            &format!("bound_service_account_namespaces={}", bed.namespace),
            // The controller's default token audience (--service-account-token-audience).
            "audience=vault",
            &format!("token_policies={policy}"),
        ],
    )?;
    let accounts: Api<ServiceAccount> = Api::namespaced(bed.client.clone(), &bed.namespace);
    accounts
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
    bed.store(
        "vault-k8s",
        vault_provider(
            bao,
            &mount,
            json!({"kubernetes": {"mountPath": k8s_auth, "role": "app", "serviceAccountRef": {"name": "vault-reader"}}}),
        ),
    )
    .await?;
    bed.external_secret(
        "by-k8s",
        json!({
            "secretStoreRef": {"name": "vault-k8s"},
            "data": [{"secretKey": "user", "remoteRef": {"key": "app/db", "property": "username"}}],
            "target": {"template": {"data": {"dsn": "postgres://{{ .user }}@db"}}}
        }),
    )
    .await?;
    bed.wait_ready("by-k8s", "True", Some("SecretSynced"))
        .await?;
    let secret = bed
        .wait_value("by-k8s", "dsn", "postgres://admin@db")
        .await?;
    assert_eq!(
        secret.data.as_ref().map(|d| d.len()),
        Some(1),
        "template replaces"
    );

    // ESO's template language: sprig functions over the fetched values; a failing function does
    // not put the value into the status.
    bed.external_secret(
        "templated",
        json!({
            "secretStoreRef": {"name": "vault-k8s"},
            "data": [{"secretKey": "user", "remoteRef": {"key": "app/db", "property": "username"}},
                     {"secretKey": "pass", "remoteRef": {"key": "app/db", "property": "password"}}],
            "target": {"template": {"data": {
                "basic": "{{ printf \"%s:%s\" .user .pass | b64enc }}",
                "json": "{{ dict \"u\" (.user | upper) | toJson }}"
            }}}
        }),
    )
    .await?;
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{CANARY}-pw"));
    let secret = bed.wait_value("templated", "basic", &basic).await?;
    assert_eq!(text(&secret, "json").as_deref(), Some(r#"{"u":"ADMIN"}"#));
    bed.external_secret(
        "template-fails",
        json!({
            "secretStoreRef": {"name": "vault-k8s"},
            "data": [{"secretKey": "pass", "remoteRef": {"key": "app/db", "property": "password"}}],
            "target": {"template": {"data": {"x": "{{ fail .pass }}"}}}
        }),
    )
    .await?;
    let failed = bed
        .wait_ready("template-fails", "False", Some("SecretSyncedError"))
        .await?;
    let message = serde_json::to_string(&failed.status)?;
    assert!(message.contains("error calling fail"), "{message}");
    bed.assert_nothing_leaked().await?;

    // A wrong token: a clear condition that leaks neither the token nor a value.
    bed.token_store("vault-bad", bao, &mount, "s.not-a-real-token-canary")
        .await?;
    bed.external_secret(
        "by-bad-token",
        json!({"secretStoreRef": {"name": "vault-bad"},
               "data": [{"secretKey": "u", "remoteRef": {"key": "app/db", "property": "username"}}]}),
    )
    .await?;
    let refused = bed
        .wait_ready("by-bad-token", "False", Some("SecretSyncedError"))
        .await?;
    let message = refused
        .status
        .unwrap()
        .ready()
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    assert!(!message.contains("not-a-real-token-canary"), "{message}");
    assert!(message.contains("app/db"), "names the key: {message}");
    assert!(bed.secrets().get_opt("by-bad-token").await?.is_none());

    // The stores' own Ready conditions: validated credentials, or why not.
    for (name, status, reason) in [
        ("vault-token", "True", "Valid"),
        ("vault-approle", "True", "Valid"),
        ("vault-k8s", "True", "Valid"),
        ("vault-bad", "False", "ValidationFailed"),
    ] {
        bed.wait_store(name, status, reason).await?;
    }
    bed.assert_nothing_leaked().await?;
    Ok(())
}

/// Clients of moto's Secrets Manager and Parameter Store, as a test writes remote values.
struct Aws {
    sm: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
}

impl Aws {
    fn new(moto: &Moto) -> Aws {
        let credentials = Credentials::new(
            Moto::ACCESS_KEY_ID,
            Moto::SECRET_ACCESS_KEY,
            None,
            None,
            "test",
        );
        let sm = aws_sdk_secretsmanager::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(Moto::REGION))
            .endpoint_url(moto.endpoint_url())
            .credentials_provider(credentials.clone())
            .build();
        let ssm = aws_sdk_ssm::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(Moto::REGION))
            .endpoint_url(moto.endpoint_url())
            .credentials_provider(credentials)
            .build();
        Aws {
            sm: aws_sdk_secretsmanager::Client::from_conf(sm),
            ssm: aws_sdk_ssm::Client::from_conf(ssm),
        }
    }

    /// Writes SecureString parameters.
    async fn put_parameters(&self, parameters: &[(String, String)]) -> TestResult {
        for (name, value) in parameters {
            self.ssm
                .put_parameter()
                .name(name)
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .send()
                .await?;
        }
        Ok(())
    }
}

impl Bed {
    /// moto's credentials as the Secret `aws`, a store per `(name, service)` reading with them, and
    /// clients to write the remote values.
    async fn aws_stores(&self, moto: &Moto, stores: &[(&str, &str)]) -> Result<Aws, BoxError> {
        self.put_secret(
            "aws",
            &[
                ("id", Moto::ACCESS_KEY_ID),
                ("secret", Moto::SECRET_ACCESS_KEY),
            ],
        )
        .await?;
        for (name, service) in stores {
            self.store(name, aws_provider(moto, service)).await?;
        }
        Ok(Aws::new(moto))
    }
}

fn aws_provider(moto: &Moto, service: &str) -> serde_json::Value {
    json!({"aws": {
        "service": service, "region": Moto::REGION, "endpoint": moto.endpoint_url(),
        "auth": {"secretRef": {
            "accessKeyIDSecretRef": {"name": "aws", "key": "id"},
            "secretAccessKeySecretRef": {"name": "aws", "key": "secret"}
        }}
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_secrets_manager_and_parameter_store_sync_and_follow_remote_changes() -> TestResult {
    let bed = Bed::start().await?;
    let moto = tokio::task::spawn_blocking(Moto::shared).await??;
    let aws = bed
        .aws_stores(moto, &[("sm", "SecretsManager"), ("ssm", "ParameterStore")])
        .await?;
    let name = unique_name("app/db");
    aws.sm
        .create_secret()
        .name(&name)
        .secret_string(json!({"user": "svc", "pass": format!("{CANARY}-1")}).to_string())
        .send()
        .await?;
    bed.external_secret(
        "from-sm",
        json!({
            "refreshInterval": "2s",
            "secretStoreRef": {"name": "sm"},
            "data": [{"secretKey": "pass", "remoteRef": {"key": name, "property": "pass"}}],
            "dataFrom": [{"extract": {"key": name}}]
        }),
    )
    .await?;
    bed.wait_ready("from-sm", "True", Some("SecretSynced"))
        .await?;
    let secret = bed
        .wait_value("from-sm", "pass", &format!("{CANARY}-1"))
        .await?;
    assert_eq!(text(&secret, "user").as_deref(), Some("svc"));

    // A new remote value shows up after the interval; the previous stage stays readable.
    aws.sm
        .put_secret_value()
        .secret_id(&name)
        .secret_string(json!({"user": "svc", "pass": format!("{CANARY}-2")}).to_string())
        .send()
        .await?;
    bed.wait_value("from-sm", "pass", &format!("{CANARY}-2"))
        .await?;
    bed.external_secret(
        "from-sm-previous",
        json!({
            "secretStoreRef": {"name": "sm"},
            "data": [{"secretKey": "pass", "remoteRef": {"key": name, "property": "pass", "version": "AWSPREVIOUS"}}]
        }),
    )
    .await?;
    bed.wait_value("from-sm-previous", "pass", &format!("{CANARY}-1"))
        .await?;

    // SSM: SecureString parameters under a path.
    let path = format!("/{}/", unique_name("app"));
    aws.put_parameters(&[
        (format!("{path}user"), "ssm-user".to_owned()),
        (format!("{path}pass"), format!("{CANARY}-ssm")),
    ])
    .await?;
    bed.external_secret(
        "from-ssm",
        json!({
            "refreshInterval": "0",
            "secretStoreRef": {"name": "ssm"},
            "data": [{"secretKey": "single", "remoteRef": {"key": format!("{path}user")}}],
            "dataFrom": [{"extract": {"key": path}}]
        }),
    )
    .await?;
    bed.wait_ready("from-ssm", "True", Some("SecretSynced"))
        .await?;
    let secret = bed.wait_value("from-ssm", "single", "ssm-user").await?;
    assert_eq!(text(&secret, "pass"), Some(format!("{CANARY}-ssm")));
    assert_eq!(text(&secret, "user").as_deref(), Some("ssm-user"));
    bed.assert_nothing_leaked().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creation_and_deletion_policies() -> TestResult {
    let (bed, bao, mount) = Bed::with_root_vault_store().await?;
    let data =
        json!([{"secretKey": "username", "remoteRef": {"key": "app/db", "property": "username"}}]);

    // Merge: into an existing Secret, keeping its other keys.
    bed.put_secret("shared", &[("keep", "mine")]).await?;
    bed.external_secret(
        "merger",
        json!({"secretStoreRef": {"name": "vault"}, "data": data,
               "target": {"name": "shared", "creationPolicy": "Merge"}}),
    )
    .await?;
    bed.wait_ready("merger", "True", Some("SecretSynced"))
        .await?;
    let merged = bed.wait_value("shared", "username", "admin").await?;
    assert_eq!(text(&merged, "keep").as_deref(), Some("mine"));
    assert!(merged.owner_references().is_empty(), "Merge sets no owner");

    // Owner: refuses a Secret it does not own, and changes nothing in it.
    bed.put_secret("taken", &[("other", "value")]).await?;
    let before = bed.secrets().get("taken").await?;
    bed.external_secret(
        "owner",
        json!({"secretStoreRef": {"name": "vault"}, "data": data, "target": {"name": "taken"}}),
    )
    .await?;
    bed.wait_ready("owner", "False", Some("SecretNotOwned"))
        .await?;
    let after = bed.secrets().get("taken").await?;
    assert_eq!(after.data, before.data);
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );

    // deletionPolicy Delete: the remote secret goes, so does the Secret.
    bao.bao(
        None,
        &[
            "kv",
            "put",
            &format!("-mount={mount}"),
            "app/short-lived",
            "k=v",
        ],
    )?;
    bed.external_secret(
        "deleter",
        json!({"refreshInterval": "1s", "secretStoreRef": {"name": "vault"},
               "data": [{"secretKey": "k", "remoteRef": {"key": "app/short-lived", "property": "k"}}],
               "target": {"deletionPolicy": "Delete"}}),
    )
    .await?;
    bed.wait_value("deleter", "k", "v").await?;
    bao.bao(
        None,
        &[
            "kv",
            "metadata",
            "delete",
            &format!("-mount={mount}"),
            "app/short-lived",
        ],
    )?;
    bed.wait_ready("deleter", "False", Some("SecretDeleted"))
        .await?;
    let secrets = bed.secrets();
    eventually(
        "Secret deleter deleted",
        Duration::from_secs(30),
        || async {
            secrets
                .get_opt("deleter")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await?;

    // An Owner ExternalSecret's Secret carries the controller ownerReference the garbage collector
    // acts on. (Waiting for the collection itself is left to the SealedSecret suite: on a fresh API
    // server the collector's discovery of just-installed CRDs took from 30 s to over 120 s under load.)
    bed.external_secret(
        "owned",
        json!({"secretStoreRef": {"name": "vault"}, "data": data}),
    )
    .await?;
    let owned = bed.wait_value("owned", "username", "admin").await?;
    let owner = bed.external().get("owned").await?;
    let reference = &owned.owner_references()[0];
    assert_eq!(
        (reference.api_version.as_str(), reference.kind.as_str()),
        ("signet.dev/v1alpha1", "ExternalSecret")
    );
    assert_eq!(Some(&reference.uid), owner.uid().as_ref());
    assert_eq!(reference.controller, Some(true));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_dies_keeps_the_last_secret_and_everything_recovers() -> TestResult {
    let bed = Bed::start().await?;
    let bao = tokio::task::spawn_blocking(OpenBao::start).await??;
    let moto = tokio::task::spawn_blocking(Moto::start).await??;
    let write_vault = |value: &str| {
        bao.bao(
            None,
            &[
                "kv",
                "put",
                "-mount=secret",
                "svc/api",
                &format!("key={value}"),
            ],
        )
        .map(|_| ())
    };
    write_vault("one")?;
    bed.token_store("vault", &bao, "secret", bao.root_token())
        .await?;
    let aws = bed.aws_stores(&moto, &[("sm", "SecretsManager")]).await?;
    aws.sm
        .create_secret()
        .name("svc/api")
        .secret_string("aws-one")
        .send()
        .await?;
    for (name, store, key) in [
        ("from-vault", "vault", "svc/api"),
        ("from-aws", "sm", "svc/api"),
    ] {
        let property = if store == "vault" {
            json!("key")
        } else {
            json!(null)
        };
        bed.external_secret(
            name,
            json!({"refreshInterval": "1s", "secretStoreRef": {"name": store},
                   "data": [{"secretKey": "key", "remoteRef": {"key": key, "property": property}}]}),
        )
        .await?;
    }
    bed.wait_value("from-vault", "key", "one").await?;
    bed.wait_value("from-aws", "key", "aws-one").await?;

    // Both peers die: errors, with back-off, and the Secrets stay as they were.
    bao.kill();
    moto.kill();
    for name in ["from-vault", "from-aws"] {
        bed.wait_ready(name, "False", Some("SecretSyncedError"))
            .await?;
    }
    let calls_during_outage = bed.controller().context.metrics.provider_fetches_total();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let calls_after = bed.controller().context.metrics.provider_fetches_total();
    // 1 s interval, but backing off (5 s doubling, capped at 2 s here): a handful of tries, not a storm.
    assert!(
        calls_after - calls_during_outage <= 8,
        "{} calls in 4 s during the outage",
        calls_after - calls_during_outage
    );
    assert_eq!(
        text(&bed.secrets().get("from-vault").await?, "key").as_deref(),
        Some("one")
    );
    assert_eq!(
        text(&bed.secrets().get("from-aws").await?, "key").as_deref(),
        Some("aws-one")
    );

    // They come back (empty: dev mode and moto keep nothing), the values are written again.
    bao.restart()?;
    moto.restart()?;
    write_vault("two")?;
    Aws::new(&moto)
        .sm
        .create_secret()
        .name("svc/api")
        .secret_string("aws-two")
        .send()
        .await?;
    bed.wait_value("from-vault", "key", "two").await?;
    bed.wait_value("from-aws", "key", "aws-two").await?;
    bed.wait_ready("from-vault", "True", Some("SecretSynced"))
        .await?;
    bed.wait_ready("from-aws", "True", Some("SecretSynced"))
        .await?;
    // No lost or duplicated Secret: exactly one per ExternalSecret carries the owner label.
    let labelled = bed
        .secrets()
        .list(&ListParams::default().labels(OWNER_LABEL))
        .await?;
    let mut names: Vec<String> = labelled.iter().map(|s| s.name_any()).collect();
    names.sort();
    assert_eq!(names, ["from-aws", "from-vault"]);
    Ok(())
}

/// Resident memory of this test process (API client, the controller, caches), MiB; reported, not
/// asserted.
fn resident_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// How many ExternalSecrets the restart test creates (`SIGNET_TEST_EXTERNAL_SECRETS`).
fn restart_test_size() -> usize {
    std::env::var("SIGNET_TEST_EXTERNAL_SECRETS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_makes_no_provider_calls_for_current_secrets() -> TestResult {
    let (mut bed, _, _) = Bed::with_root_vault_store().await?;
    let n = restart_test_size();
    let started = std::time::Instant::now();
    let api = bed.external();
    let template: ExternalSecret = serde_json::from_value(json!({
        "apiVersion": "signet.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "x"},
        "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
                 "data": [{"secretKey": "u", "remoteRef": {"key": "app/db", "property": "username"}}]}
    }))?;
    let names: Vec<String> = (0..n).map(|i| format!("es-{i:05}")).collect();
    futures::stream::iter(names.iter().cloned())
        .map(|name| {
            let api = api.clone();
            let mut object = template.clone();
            object.metadata.name = Some(name);
            async move { api.create(&PostParams::default(), &object).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let ready_count = || async {
        api.list(&ListParams::default())
            .await
            .map(|list| {
                list.items
                    .iter()
                    .filter(|o| {
                        o.status
                            .as_ref()
                            .and_then(|s| s.ready())
                            .is_some_and(|c| c.status == "True")
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    eventually(
        "every ExternalSecret synced",
        Duration::from_secs(600),
        || async { (ready_count().await == n).then_some(()) },
    )
    .await?;
    let synced_in = started.elapsed();
    let rss_synced = resident_mib();
    let first_calls = bed.controller().context.metrics.provider_fetches_total();
    assert!(
        first_calls >= n as u64,
        "{first_calls} calls for {n} objects"
    );

    // Restart: a new controller (new context, empty caches) reads the same objects.
    bed.controller.take().expect("running").shutdown().await;
    let restarted = std::time::Instant::now();
    let controller = signet_controller::start(
        bed.client.clone(),
        controller_config(&bed.keys_namespace, &bed.namespace)?,
    )
    .await?;
    let metrics = std::sync::Arc::clone(&controller.context.metrics);
    bed.controller = Some(controller);
    let reconciled = |m: &signet_controller::metrics::Metrics| {
        m.reconciles
            .get_or_create(&signet_controller::metrics::KindLabels {
                kind: "ExternalSecret".into(),
            })
            .get()
    };
    eventually(
        "every ExternalSecret looked at after the restart",
        Duration::from_secs(300),
        || async { (reconciled(&metrics) >= n as u64).then_some(()) },
    )
    .await?;
    let looked_in = restarted.elapsed();
    let rss_after_restart = resident_mib();
    // Steady state: nothing to do for an hour; memory should stay where it is.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_steady = resident_mib();
    let calls_after_restart = metrics.provider_fetches_total();
    eprintln!(
        "restart figures: {n} ExternalSecrets synced in {synced_in:?} with {first_calls} provider calls \
         (test process RSS {rss_synced:.0} MiB); after the restart all {n} reconciled in {looked_in:?} \
         with {calls_after_restart} provider calls; RSS {rss_after_restart:.0} MiB, 10 s later {rss_steady:.0} MiB"
    );
    assert_eq!(
        calls_after_restart, 0,
        "no provider fetch for current Secrets"
    );
    assert_eq!(ready_count().await, n);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_on_force_sync_and_on_an_altered_secret_and_not_otherwise() -> TestResult {
    let (bed, bao, mount) = Bed::with_root_vault_store().await?;
    bed.external_secret(
        "hourly",
        json!({"refreshInterval": "1h", "secretStoreRef": {"name": "vault"},
               "data": [{"secretKey": "username", "remoteRef": {"key": "app/db", "property": "username"}}]}),
    )
    .await?;
    bed.wait_value("hourly", "username", "admin").await?;
    let fetches = || bed.controller().context.metrics.provider_fetches_total();
    let before = fetches();

    // The remote value changes: nothing happens before the interval.
    bao.bao(
        None,
        &[
            "kv",
            "patch",
            &format!("-mount={mount}"),
            "app/db",
            "username=root",
        ],
    )?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let secret = bed.secrets().get("hourly").await?;
    assert_eq!(text(&secret, "username").as_deref(), Some("admin"));
    assert_eq!(
        fetches(),
        before,
        "no provider call while nothing asks for one"
    );

    // Someone edits the Secret: the controller puts the remote value back (fetching it).
    bed.secrets()
        .patch(
            "hourly",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"username": "tampered"}})),
        )
        .await?;
    bed.wait_value("hourly", "username", "root").await?;

    // A new force-sync value fetches at once.
    bao.bao(
        None,
        &[
            "kv",
            "patch",
            &format!("-mount={mount}"),
            "app/db",
            "username=forced",
        ],
    )?;
    bed.external()
        .patch(
            "hourly",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"signet.dev/force-sync": "1"}}})),
        )
        .await?;
    bed.wait_value("hourly", "username", "forced").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_stores_serve_only_the_namespaces_their_conditions_allow() -> TestResult {
    let bed = Bed::start().await?;
    let bao = tokio::task::spawn_blocking(OpenBao::shared).await??;
    let (mount, _) = vault_kv(bao, "app/db")?;
    // Credentials live in another namespace, named by the store.
    let secrets: Api<Secret> = Api::namespaced(bed.client.clone(), &bed.keys_namespace);
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    name: Some("root".into()),
                    ..ObjectMeta::default()
                },
                string_data: Some([("token".to_owned(), bao.root_token().to_owned())].into()),
                ..Secret::default()
            },
        )
        .await?;
    let label = unique_name("team");
    let store_name = unique_name("css");
    let store: signet_controller::ClusterSecretStore = serde_json::from_value(json!({
        "apiVersion": "signet.dev/v1alpha1", "kind": "ClusterSecretStore",
        "metadata": {"name": store_name},
        "spec": {
            "provider": vault_provider(bao, &mount, json!({"tokenSecretRef":
                {"name": "root", "key": "token", "namespace": bed.keys_namespace}})),
            "conditions": [
                {"namespaceSelector": {"matchLabels": {label.clone(): "yes"}}},
                {"namespaceRegexes": ["^never-"]}
            ]
        }
    }))?;
    Api::<signet_controller::ClusterSecretStore>::all(bed.client.clone())
        .create(&PostParams::default(), &store)
        .await?;
    bed.external_secret(
        "via-cluster-store",
        json!({"secretStoreRef": {"name": store_name, "kind": "ClusterSecretStore"},
               "data": [{"secretKey": "username", "remoteRef": {"key": "app/db", "property": "username"}}]}),
    )
    .await?;
    let refused = bed
        .wait_ready("via-cluster-store", "False", Some("StoreNotAllowed"))
        .await?;
    let message = refused.status.unwrap().ready().unwrap().message.clone();
    assert!(message.unwrap_or_default().contains(&bed.namespace));
    assert!(bed.secrets().get_opt("via-cluster-store").await?.is_none());

    // The namespace gets the label: the next retry is allowed.
    Api::<k8s_openapi::api::core::v1::Namespace>::all(bed.client.clone())
        .patch(
            &bed.namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {label: "yes"}}})),
        )
        .await?;
    bed.wait_ready("via-cluster-store", "True", Some("SecretSynced"))
        .await?;
    bed.wait_value("via-cluster-store", "username", "admin")
        .await?;
    Ok(())
}

/// One Secret from several stores: a `data` or `dataFrom` entry may name its own store
/// (`sourceRef.storeRef`), which goes through the same checks as `spec.secretStoreRef`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_secret_gathers_values_from_several_stores() -> TestResult {
    let (bed, bao, mount) = Bed::with_root_vault_store().await?;
    let moto = tokio::task::spawn_blocking(Moto::shared).await??;
    let aws = bed.aws_stores(moto, &[("sm", "SecretsManager")]).await?;
    let name = unique_name("gathered");
    aws.sm
        .create_secret()
        .name(&name)
        .secret_string(json!({"token": format!("{CANARY}-sm"), "region": "eu"}).to_string())
        .send()
        .await?;
    let from = |store: &str| json!({"storeRef": {"name": store}});
    // No spec.secretStoreRef: every entry names its store.
    bed.external_secret(
        "gathered",
        json!({
            "data": [
                {"secretKey": "user", "remoteRef": {"key": "app/db", "property": "username"}, "sourceRef": from("vault")},
                {"secretKey": "token", "remoteRef": {"key": name, "property": "token"}, "sourceRef": from("sm")}
            ],
            "dataFrom": [{"extract": {"key": name}, "sourceRef": from("sm")}],
            "target": {"template": {"mergePolicy": "Merge", "data": {"both": "{{ .user }}@{{ .region }}"}}}
        }),
    )
    .await?;
    bed.wait_ready("gathered", "True", Some("SecretSynced"))
        .await?;
    let secret = bed.wait_value("gathered", "both", "admin@eu").await?;
    assert_eq!(text(&secret, "user").as_deref(), Some("admin"));
    assert_eq!(text(&secret, "token"), Some(format!("{CANARY}-sm")));

    // An entry without a store anywhere: a clear condition, no Secret.
    bed.external_secret(
        "storeless",
        json!({"data": [{"secretKey": "u", "remoteRef": {"key": "app/db", "property": "username"}}]}),
    )
    .await?;
    let message = bed.refusal("storeless", "StoreNotReady").await?;
    assert!(message.contains("no store"), "{message}");

    // A ClusterSecretStore that does not serve this namespace, named by one entry only: refused
    // as spec.secretStoreRef would be, and nothing is written.
    let secrets: Api<Secret> = Api::namespaced(bed.client.clone(), &bed.keys_namespace);
    secrets
        .create(
            &PostParams::default(),
            &Secret {
                metadata: named("gathered-root"),
                string_data: Some([("token".to_owned(), bao.root_token().to_owned())].into()),
                ..Secret::default()
            },
        )
        .await?;
    let store_name = unique_name("css-elsewhere");
    create_json(
        &Api::<signet_controller::ClusterSecretStore>::all(bed.client.clone()),
        json!({
            "apiVersion": "signet.dev/v1alpha1", "kind": "ClusterSecretStore",
            "metadata": {"name": store_name},
            "spec": {
                "provider": vault_provider(bao, &mount, json!({"tokenSecretRef":
                    {"name": "gathered-root", "key": "token", "namespace": bed.keys_namespace}})),
                "conditions": [{"namespaceRegexes": ["^never-"]}]
            }
        }),
    )
    .await?;
    bed.external_secret(
        "partly-elsewhere",
        json!({
            "secretStoreRef": {"name": "vault"},
            "data": [
                {"secretKey": "user", "remoteRef": {"key": "app/db", "property": "username"}},
                {"secretKey": "pw", "remoteRef": {"key": "app/db", "property": "password"},
                 "sourceRef": {"storeRef": {"name": store_name, "kind": "ClusterSecretStore"}}}
            ]
        }),
    )
    .await?;
    bed.wait_ready("partly-elsewhere", "False", Some("StoreNotAllowed"))
        .await?;
    assert!(bed.secrets().get_opt("partly-elsewhere").await?.is_none());
    bed.assert_nothing_leaked().await?;
    Ok(())
}

/// `dataFrom.find`: every secret whose name matches, under its name made a Secret key, whole —
/// from a KV tree (folders walked), Secrets Manager (a name prefix) and Parameter Store (a path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_from_find_gathers_secrets_by_name() -> TestResult {
    let (bed, bao, mount) = Bed::with_root_vault_store().await?;
    for (path, value) in [
        ("app/cache", "c-1"),
        ("app/deep/queue", "q-1"),
        ("app/deep/er/queue2", "q-2"),
        ("other/queue", "not-under-app"),
    ] {
        bao.bao(
            None,
            &[
                "kv",
                "put",
                &format!("-mount={mount}"),
                path,
                &format!("v={value}"),
            ],
        )?;
    }
    bed.external_secret(
        "found-in-vault",
        json!({
            "secretStoreRef": {"name": "vault"},
            "dataFrom": [{"find": {"path": "app", "name": {"regexp": "queue|cache"}}}]
        }),
    )
    .await?;
    let secret = bed
        .wait_value("found-in-vault", "app_cache", r#"{"v":"c-1"}"#)
        .await?;
    let keys: Vec<&String> = secret.data.as_ref().ok_or("no data")?.keys().collect();
    assert_eq!(keys, ["app_cache", "app_deep_er_queue2", "app_deep_queue"]);
    assert_eq!(
        text(&secret, "app_deep_er_queue2").as_deref(),
        Some(r#"{"v":"q-2"}"#)
    );

    // AWS: Secrets Manager by name prefix and expression, Parameter Store by path.
    let moto = tokio::task::spawn_blocking(Moto::shared).await??;
    let aws = bed
        .aws_stores(moto, &[("sm", "SecretsManager"), ("ssm", "ParameterStore")])
        .await?;
    let prefix = unique_name("find");
    for (name, value) in [("db-a", "A"), ("db-b", "B"), ("web", "W")] {
        aws.sm
            .create_secret()
            .name(format!("{prefix}/{name}"))
            .secret_string(value)
            .send()
            .await?;
    }
    aws.put_parameters(&[
        (format!("/{prefix}/one"), "1".to_owned()),
        (format!("/{prefix}/sub/two"), "2".to_owned()),
    ])
    .await?;
    bed.external_secret(
        "found-in-aws",
        json!({
            "dataFrom": [
                {"find": {"path": prefix, "name": {"regexp": "/db-"}}, "sourceRef": {"storeRef": {"name": "sm"}}},
                {"find": {"path": format!("/{prefix}")}, "sourceRef": {"storeRef": {"name": "ssm"}}}
            ]
        }),
    )
    .await?;
    let secret = bed
        .wait_value("found-in-aws", &format!("{prefix}_db-a"), "A")
        .await?;
    let data = secret.data.as_ref().ok_or("no data")?;
    let mut keys: Vec<String> = data.keys().cloned().collect();
    keys.sort();
    let mut expected = vec![
        format!("{prefix}_db-a"),
        format!("{prefix}_db-b"),
        format!("_{prefix}_one"),
        format!("_{prefix}_sub_two"),
    ];
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(
        text(&secret, &format!("_{prefix}_sub_two")).as_deref(),
        Some("2")
    );

    // A bad expression is a clear condition naming the search.
    bed.external_secret(
        "bad-find",
        json!({"secretStoreRef": {"name": "vault"},
               "dataFrom": [{"find": {"name": {"regexp": "(unclosed"}}}]}),
    )
    .await?;
    let message = bed.refusal("bad-find", "SecretSyncedError").await?;
    assert!(message.contains("find.name.regexp"), "{message}");
    bed.assert_nothing_leaked().await?;
    Ok(())
}

/// The `kubernetes` provider: Secrets of a namespace on another (real) API server, read with the
/// token the store names — by name, by key, and by `dataFrom.find`; a token without rights gives
/// a clear condition that shows neither the token nor a value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_store_reads_another_clusters_secrets_with_its_own_token() -> TestResult {
    let bed = Bed::start().await?;
    let remote = tokio::task::spawn_blocking(ApiServer::start).await??;
    let admin = remote.client().await?;
    let ns = remote.create_namespace(&admin, "remote").await?;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    for (name, pairs) in [
        (
            "db",
            vec![
                ("user", "remote-admin".to_owned()),
                ("pass", format!("{CANARY}-k8s")),
            ],
        ),
        ("db-replica", vec![("user", "replica".to_owned())]),
        ("web", vec![("key", "w".to_owned())]),
    ] {
        secrets
            .create(
                &PostParams::default(),
                &Secret {
                    metadata: named(name),
                    string_data: Some(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
                    ..Secret::default()
                },
            )
            .await?;
    }
    create_json(
        &Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(admin.clone(), &ns),
        json!({"metadata": {"name": "read-secrets"},
               "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}),
    )
    .await?;
    create_json(
        &Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(admin.clone(), &ns),
        json!({"metadata": {"name": "reader"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-secrets"},
               "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]}),
    )
    .await?;
    let reader = remote.service_account_token(&admin, &ns, "reader").await?;
    let nobody = remote.service_account_token(&admin, &ns, "nobody").await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(remote.kubeconfig_path())?;
    let cluster = kubeconfig.clusters[0]
        .cluster
        .as_ref()
        .ok_or("no cluster")?;
    let url = cluster.server.clone().ok_or("no server")?;
    let ca = cluster
        .certificate_authority_data
        .clone()
        .ok_or("no CA data")?;
    bed.put_secret(
        "remote-tokens",
        &[
            ("reader", &reader),
            ("nobody", &nobody),
            ("forged", "eyJhbGciOiJSUzI1NiJ9.e30.forged-canary"),
        ],
    )
    .await?;
    let store = |key: &str| {
        json!({"kubernetes": {
            "remoteNamespace": ns,
            "server": {"url": url, "caBundle": ca},
            "auth": {"token": {"bearerToken": {"name": "remote-tokens", "key": key}}}
        }})
    };
    bed.store("remote", store("reader")).await?;
    bed.store("remote-nobody", store("nobody")).await?;
    bed.store("remote-forged", store("forged")).await?;
    // Accepted tokens are valid even without the right to list; a forged one is not.
    bed.wait_store("remote", "True", "Valid").await?;
    bed.wait_store("remote-nobody", "True", "Valid").await?;
    bed.wait_store("remote-forged", "False", "ValidationFailed")
        .await?;
    // ESO's other auth kinds are not supported: a store without a token is refused as such.
    bed.store(
        "remote-service-account",
        json!({"kubernetes": {"remoteNamespace": ns, "server": {"url": url, "caBundle": ca},
                              "auth": {"serviceAccount": {"name": "reader"}}}}),
    )
    .await?;
    bed.wait_store("remote-service-account", "False", "InvalidProviderConfig")
        .await?;
    bed.external_secret(
        "from-remote",
        json!({
            "secretStoreRef": {"name": "remote"},
            "data": [{"secretKey": "pass", "remoteRef": {"key": "db", "property": "pass"}}],
            "dataFrom": [{"find": {"name": {"regexp": "^db"}}}]
        }),
    )
    .await?;
    let secret = bed
        .wait_value("from-remote", "pass", &format!("{CANARY}-k8s"))
        .await?;
    let keys: Vec<&String> = secret.data.as_ref().ok_or("no data")?.keys().collect();
    assert_eq!(keys, ["db", "db-replica", "pass"]);
    assert_eq!(
        text(&secret, "db-replica").as_deref(),
        Some(r#"{"user":"replica"}"#)
    );

    bed.external_secret(
        "refused-remote",
        json!({"secretStoreRef": {"name": "remote-nobody"},
               "data": [{"secretKey": "pass", "remoteRef": {"key": "db", "property": "pass"}}]}),
    )
    .await?;
    let message = bed.refusal("refused-remote", "SecretSyncedError").await?;
    assert!(message.contains("403"), "{message}");
    assert!(!message.contains(&nobody), "{message}");
    bed.assert_nothing_leaked().await?;
    drop(admin);
    tokio::task::spawn_blocking(move || drop(remote)).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tenancy (DESIGN §5): what a store may use. These run the `signet-controller` binary, so its logs
// can be searched for canaries and it gets the AWS identity an operator would give it (the
// environment), which the in-process controllers of this suite must not share.

/// Where a tenant's "Vault" would be: a local listener that records every request and refuses it.
struct Listener {
    url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    async fn start() -> Result<Listener, BoxError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", socket.local_addr()?);
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = std::sync::Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = socket.accept().await {
                let seen = std::sync::Arc::clone(&seen);
                tokio::spawn(async move {
                    // One request: headers, then a body of content-length bytes (bounded).
                    let mut bytes = Vec::new();
                    let mut buffer = [0u8; 4096];
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                    while bytes.len() < 64 * 1024 {
                        let read =
                            tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await;
                        let Ok(Ok(n)) = read else { break };
                        if n == 0 {
                            break;
                        }
                        bytes.extend_from_slice(&buffer[..n]);
                        let text = String::from_utf8_lossy(&bytes);
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    let (name, value) = l.split_once(':')?;
                                    name.eq_ignore_ascii_case("content-length")
                                        .then(|| value.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if body.len() >= length {
                                break;
                            }
                        }
                    }
                    seen.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(String::from_utf8_lossy(&bytes).into_owned());
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\n\
                              content-length: 32\r\nconnection: close\r\n\r\n\
                              {\"errors\":[\"permission denied\"]}",
                        )
                        .await;
                });
            }
        });
        Ok(Listener {
            url,
            requests,
            task,
        })
    }

    fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `signet-controller` binary watching one namespace, as the cluster admin (RBAC is the chart
/// suite's subject), with extra environment; its output goes to a file.
struct BinaryController {
    child: std::process::Child,
    log: tempfile::NamedTempFile,
    metrics: String,
}

impl BinaryController {
    async fn start(
        keys_namespace: &str,
        namespace: &str,
        env: &[(&str, &str)],
    ) -> Result<BinaryController, BoxError> {
        let bin = tokio::task::spawn_blocking(|| {
            signet_tests::sandbox::workspace_bin("signet-controller", "signet-controller")
        })
        .await?;
        let server = tokio::task::spawn_blocking(api_server).await??;
        let log = tempfile::NamedTempFile::new()?;
        let metrics_port = signet_testkit::free_port()?;
        let http_port = signet_testkit::free_port()?;
        let mut command = std::process::Command::new(bin);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", server.kubeconfig_path())
            .env(
                "RUST_LOG",
                "debug,hyper=info,h2=info,tower=info,rustls=info",
            )
            .env("SIGNET_LOG_FORMAT", "json")
            .env("SIGNET_CONTROLLER_NAMESPACE", keys_namespace)
            .env("SIGNET_WATCH_NAMESPACE", namespace)
            .env("SIGNET_LEADER_ELECT", "false")
            .env("SIGNET_PROVIDER_BACKOFF_MAX", "2s")
            .env("SIGNET_LISTEN_ADDR", format!("127.0.0.1:{http_port}"))
            .env("SIGNET_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .envs(env.iter().copied())
            .stdout(log.reopen()?)
            .stderr(log.reopen()?);
        Ok(BinaryController {
            child: command.spawn()?,
            log,
            metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
        })
    }

    /// Its log so far.
    fn log(&self) -> Result<String, BoxError> {
        Ok(std::fs::read_to_string(self.log.path())?)
    }

    async fn metrics(&self) -> Result<String, BoxError> {
        Ok(reqwest::get(&self.metrics).await?.text().await?)
    }

    /// Asserts that none of `canaries` appears in its log, its metrics, or the statuses and
    /// events of `namespace`.
    async fn assert_nothing_leaked(
        &self,
        client: &Client,
        namespace: &str,
        canaries: &[&str],
    ) -> TestResult {
        let mut outputs = vec![("log", self.log()?), ("metrics", self.metrics().await?)];
        for object in Api::<ExternalSecret>::namespaced(client.clone(), namespace)
            .list(&ListParams::default())
            .await?
        {
            outputs.push((
                "ExternalSecret status",
                serde_json::to_string(&object.status)?,
            ));
        }
        for object in Api::<SecretStore>::namespaced(client.clone(), namespace)
            .list(&ListParams::default())
            .await?
        {
            outputs.push(("SecretStore status", serde_json::to_string(&object.status)?));
        }
        let events: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(client.clone(), namespace);
        for event in events.list(&ListParams::default()).await? {
            outputs.push(("event", event.note.unwrap_or_default()));
        }
        assert!(
            outputs
                .iter()
                .any(|(what, text)| *what == "log" && !text.is_empty())
        );
        for (what, text) in &outputs {
            for canary in canaries {
                assert!(!text.contains(canary), "{what} leaks a canary");
            }
        }
        Ok(())
    }
}

impl Drop for BinaryController {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the SecretStore `name` is `Ready=False` with `reason`; returns its message.
async fn store_refused(
    client: &Client,
    namespace: &str,
    name: &str,
    reason: &str,
) -> Result<String, BoxError> {
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), namespace);
    let outcome = eventually(
        &format!("store {name} Ready=False {reason}"),
        Duration::from_secs(60),
        || {
            let stores = stores.clone();
            async move {
                let store = stores.get(name).await.ok()?;
                let condition = store.status?.conditions.into_iter().next()?;
                (condition.status == "False" && condition.reason.as_deref() == Some(reason))
                    .then(|| condition.message.unwrap_or_default())
            }
        },
    )
    .await;
    if outcome.is_err()
        && let Ok(store) = stores.get(name).await
    {
        eprintln!("store {name}: {:?}", store.status);
    }
    Ok(outcome?)
}

async fn create_json<K>(api: &Api<K>, value: serde_json::Value) -> TestResult
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(value)?;
    api.create(&PostParams::default(), &object).await?;
    Ok(())
}

fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..ObjectMeta::default()
    }
}

/// The Ready condition of an ExternalSecret, once it has `status`.
async fn external_ready(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &str,
) -> Result<signet_controller::target::Condition, BoxError> {
    let api: Api<ExternalSecret> = Api::namespaced(client.clone(), namespace);
    let outcome = eventually(
        &format!("ExternalSecret {name} Ready={status}"),
        Duration::from_secs(60),
        || {
            let api = api.clone();
            async move {
                let object = api.get(name).await.ok()?;
                let ready = object.status?.ready()?.clone();
                (ready.status == status).then_some(ready)
            }
        },
    )
    .await;
    if outcome.is_err()
        && let Ok(object) = api.get(name).await
    {
        eprintln!("{name}: {:?}", object.status);
    }
    Ok(outcome?)
}

/// Asks the API server, as the admin, whether `token` is valid for `audiences` (empty: the API
/// server's own).
async fn token_review(client: &Client, token: &str, audiences: &[&str]) -> Result<bool, BoxError> {
    use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.to_owned(),
            audiences: (!audiences.is_empty())
                .then(|| audiences.iter().map(|a| (*a).to_owned()).collect()),
        },
        ..TokenReview::default()
    };
    let answer = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.and_then(|s| s.authenticated) == Some(true))
}

/// Finding 1 of issue 11: a SecretStore naming a ServiceAccount (or a Secret) of another namespace
/// is refused before anything is minted or read — the tenant's "Vault" receives nothing — and a
/// token minted for its own namespace carries the operator's audience, so the API server itself
/// refuses it. A store asking for the API server's audience is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_store_reaches_no_other_namespace_and_its_tokens_are_not_api_server_tokens()
-> TestResult {
    let server = tokio::task::spawn_blocking(api_server).await??;
    let client = server.client().await?;
    signet_controller::install_crd(client.clone()).await?;
    let keys_namespace = server.create_namespace(&client, "tenkeys").await?;
    let namespace = server.create_namespace(&client, "tenapp").await?;
    let victim = server.create_namespace(&client, "tenvictim").await?;
    let planted = format!("{CANARY}-victim-token");
    for (ns, account) in [(victim.as_str(), "admin"), (namespace.as_str(), "reader")] {
        Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .create(
                &PostParams::default(),
                &ServiceAccount {
                    metadata: named(account),
                    ..ServiceAccount::default()
                },
            )
            .await?;
    }
    Api::<Secret>::namespaced(client.clone(), &victim)
        .create(
            &PostParams::default(),
            &Secret {
                metadata: named("creds"),
                string_data: Some([("token".to_owned(), planted.clone())].into()),
                ..Secret::default()
            },
        )
        .await?;
    let vault = Listener::start().await?;
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), &namespace);
    let store = |name: &str, auth: serde_json::Value| {
        json!({"apiVersion": "signet.dev/v1alpha1", "kind": "SecretStore", "metadata": {"name": name},
               "spec": {"provider": {"vault": {"server": vault.url, "auth": auth}}}})
    };
    let api_audience = "https://kubernetes.default.svc.cluster.local";
    for (name, auth) in [
        (
            "escape-account",
            json!({"kubernetes": {"mountPath": "escape", "role": "r",
            "serviceAccountRef": {"name": "admin", "namespace": victim}}}),
        ),
        (
            "escape-secret",
            json!({"tokenSecretRef": {"name": "creds", "key": "token", "namespace": victim}}),
        ),
        (
            "api-audience",
            json!({"kubernetes": {"mountPath": "apiaudience", "role": "r",
            "serviceAccountRef": {"name": "reader", "audiences": [api_audience]}}}),
        ),
        (
            "own",
            json!({"kubernetes": {"mountPath": "own", "role": "r",
            "serviceAccountRef": {"name": "reader", "namespace": namespace}}}),
        ),
    ] {
        create_json(&stores, store(name, auth)).await?;
    }
    let externals: Api<ExternalSecret> = Api::namespaced(client.clone(), &namespace);
    create_json(
        &externals,
        json!({"apiVersion": "signet.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "escape"},
        "spec": {"secretStoreRef": {"name": "escape-account"},
                 "data": [{"secretKey": "x", "remoteRef": {"key": "app/db"}}]}}),
    )
    .await?;

    let controller = BinaryController::start(&keys_namespace, &namespace, &[]).await?;
    // Its own account: minted, sent, refused by the "Vault" — so the listener works.
    store_refused(&client, &namespace, "own", "ValidationFailed").await?;
    for (name, reason, field) in [
        (
            "escape-account",
            "CrossNamespaceReference",
            "spec.provider.vault.auth.kubernetes.serviceAccountRef.namespace",
        ),
        (
            "escape-secret",
            "CrossNamespaceReference",
            "spec.provider.vault.auth.tokenSecretRef.namespace",
        ),
        (
            "api-audience",
            "TokenAudienceNotAllowed",
            "spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences",
        ),
    ] {
        let message = store_refused(&client, &namespace, name, reason).await?;
        assert!(message.starts_with(field), "{name}: {message}");
    }
    let condition = external_ready(&client, &namespace, "escape", "False").await?;
    assert_eq!(condition.reason.as_deref(), Some("CrossNamespaceReference"));
    assert!(
        Api::<Secret>::namespaced(client.clone(), &namespace)
            .get_opt("escape")
            .await?
            .is_none()
    );

    // The "Vault" saw logins for the own mount only, and never the victim's Secret.
    let requests = vault.requests();
    assert!(!requests.is_empty(), "the listener saw no login at all");
    for request in &requests {
        let line = request.lines().next().unwrap_or_default();
        assert!(
            line.contains("/v1/auth/own/login"),
            "unexpected request: {line}"
        );
        assert!(!request.contains(&planted), "the victim's Secret was sent");
    }
    // The minted token: issued for the operator's audience, which the API server refuses.
    let body = requests[0]
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let login: serde_json::Value = serde_json::from_str(body)?;
    let jwt = login["jwt"]
        .as_str()
        .ok_or("no jwt in the login")?
        .to_owned();
    assert!(
        !token_review(&client, &jwt, &[]).await?,
        "the API server accepts a token the controller sent to a store's server"
    );
    assert!(
        token_review(&client, &jwt, &["vault"]).await?,
        "the token is not a valid vault token"
    );

    controller
        .assert_nothing_leaked(&client, &namespace, &[&jwt, &planted])
        .await?;
    Ok(())
}

/// Finding 5 of issue 11: a SecretStore without AWS credentials does not borrow the controller's
/// own identity (here moto credentials in its environment) unless the operator opts in; a
/// ClusterSecretStore does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_store_borrows_the_controller_aws_identity_only_when_the_operator_allows_it()
-> TestResult {
    let server = tokio::task::spawn_blocking(api_server).await??;
    let moto = tokio::task::spawn_blocking(Moto::shared).await??;
    let client = server.client().await?;
    signet_controller::install_crd(client.clone()).await?;
    let keys_namespace = server.create_namespace(&client, "tenawskeys").await?;
    let namespace = server.create_namespace(&client, "tenaws").await?;
    let remote = unique_name("ambient/db");
    let value = format!("{CANARY}-ambient");
    Aws::new(moto)
        .sm
        .create_secret()
        .name(&remote)
        .secret_string(json!({"pass": value}).to_string())
        .send()
        .await?;
    let provider = json!({"aws": {"service": "SecretsManager", "region": Moto::REGION,
                                  "endpoint": moto.endpoint_url()}});
    create_json(
        &Api::<SecretStore>::namespaced(client.clone(), &namespace),
        json!({"apiVersion": "signet.dev/v1alpha1", "kind": "SecretStore",
               "metadata": {"name": "ambient"}, "spec": {"provider": provider}}),
    )
    .await?;
    let cluster_store = unique_name("ambient");
    let cluster_stores = Api::<signet_controller::ClusterSecretStore>::all(client.clone());
    create_json(
        &cluster_stores,
        json!({"apiVersion": "signet.dev/v1alpha1", "kind": "ClusterSecretStore",
               "metadata": {"name": cluster_store},
               "spec": {"provider": provider, "conditions": [{"namespaces": [namespace]}]}}),
    )
    .await?;
    let externals: Api<ExternalSecret> = Api::namespaced(client.clone(), &namespace);
    let data = json!([{"secretKey": "pass", "remoteRef": {"key": remote, "property": "pass"}}]);
    for (name, store) in [
        ("from-store", json!({"name": "ambient"})),
        (
            "from-cluster-store",
            json!({"name": cluster_store, "kind": "ClusterSecretStore"}),
        ),
    ] {
        create_json(
            &externals,
            json!({"apiVersion": "signet.dev/v1alpha1", "kind": "ExternalSecret",
            "metadata": {"name": name}, "spec": {"secretStoreRef": store, "data": data}}),
        )
        .await?;
    }
    let identity = [
        ("AWS_ACCESS_KEY_ID", Moto::ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", Moto::SECRET_ACCESS_KEY),
        ("AWS_REGION", Moto::REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let outcome = async {
        let controller = BinaryController::start(&keys_namespace, &namespace, &identity).await?;
        external_ready(&client, &namespace, "from-cluster-store", "True").await?;
        assert_eq!(
            text(&secrets.get("from-cluster-store").await?, "pass"),
            Some(value.clone())
        );
        let refused = external_ready(&client, &namespace, "from-store", "False").await?;
        assert_eq!(
            refused.reason.as_deref(),
            Some("ControllerIdentityNotAllowed")
        );
        let message = refused.message.unwrap_or_default();
        assert!(message.starts_with("spec.provider.aws.auth"), "{message}");
        assert!(
            message.contains("--allow-controller-identity-in-secret-stores"),
            "{message}"
        );
        store_refused(
            &client,
            &namespace,
            "ambient",
            "ControllerIdentityNotAllowed",
        )
        .await?;
        assert!(secrets.get_opt("from-store").await?.is_none());
        controller
            .assert_nothing_leaked(&client, &namespace, &[&value])
            .await?;
        drop(controller);

        // The operator opts in: the same store now uses the controller's identity.
        let mut opted_in = identity.to_vec();
        opted_in.push(("SIGNET_ALLOW_CONTROLLER_IDENTITY_IN_SECRET_STORES", "true"));
        let controller = BinaryController::start(&keys_namespace, &namespace, &opted_in).await?;
        external_ready(&client, &namespace, "from-store", "True").await?;
        assert_eq!(
            text(&secrets.get("from-store").await?, "pass"),
            Some(value.clone())
        );
        controller
            .assert_nothing_leaked(&client, &namespace, &[&value])
            .await
    }
    .await;
    cluster_stores
        .delete(&cluster_store, &Default::default())
        .await?;
    outcome
}

/// SSRF: with `--allowed-provider-url` set, a `vault.server` or `aws.endpoint` outside the list is
/// refused before any connection (a listener outside the list receives nothing), and one inside
/// works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_urls_outside_the_operator_allow_list_are_refused() -> TestResult {
    let server = tokio::task::spawn_blocking(api_server).await??;
    let bao = tokio::task::spawn_blocking(OpenBao::shared).await??;
    let client = server.client().await?;
    signet_controller::install_crd(client.clone()).await?;
    let keys_namespace = server.create_namespace(&client, "tenurlkeys").await?;
    let namespace = server.create_namespace(&client, "tenurl").await?;
    let (mount, _) = vault_kv(bao, "app/db")?;
    let elsewhere = Listener::start().await?;
    let token = format!("{CANARY}-url-token");
    Api::<Secret>::namespaced(client.clone(), &namespace)
        .create(
            &PostParams::default(),
            &Secret {
                metadata: named("creds"),
                string_data: Some(
                    [
                        ("root".to_owned(), bao.root_token().to_owned()),
                        ("planted".to_owned(), token.clone()),
                    ]
                    .into(),
                ),
                ..Secret::default()
            },
        )
        .await?;
    let stores: Api<SecretStore> = Api::namespaced(client.clone(), &namespace);
    let vault = |name: &str, server: &str, key: &str| {
        json!({"apiVersion": "signet.dev/v1alpha1", "kind": "SecretStore", "metadata": {"name": name},
               "spec": {"provider": {"vault": {"server": server, "path": mount, "version": "v2",
                        "auth": {"tokenSecretRef": {"name": "creds", "key": key}}}}}})
    };
    create_json(&stores, vault("allowed", &bao.addr(), "root")).await?;
    create_json(&stores, vault("elsewhere", &elsewhere.url, "planted")).await?;
    create_json(&stores, json!({"apiVersion": "signet.dev/v1alpha1", "kind": "SecretStore",
        "metadata": {"name": "aws-elsewhere"},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "eu-west-1",
            "endpoint": format!("{}/aws", elsewhere.url),
            "auth": {"secretRef": {"accessKeyIDSecretRef": {"name": "creds", "key": "planted"},
                                   "secretAccessKeySecretRef": {"name": "creds", "key": "planted"}}}}}}}))
    .await?;
    let externals: Api<ExternalSecret> = Api::namespaced(client.clone(), &namespace);
    for (name, store) in [("allowed", "allowed"), ("elsewhere", "elsewhere")] {
        create_json(&externals, json!({"apiVersion": "signet.dev/v1alpha1", "kind": "ExternalSecret",
            "metadata": {"name": name},
            "spec": {"secretStoreRef": {"name": store},
                     "data": [{"secretKey": "user", "remoteRef": {"key": "app/db", "property": "username"}}]}}))
        .await?;
    }
    // The list: OpenBao's address, and another port of the listener's host.
    let allowed = format!("{},http://127.0.0.1:1/", bao.addr());
    let controller = BinaryController::start(
        &keys_namespace,
        &namespace,
        &[("SIGNET_ALLOWED_PROVIDER_URLS", &allowed)],
    )
    .await?;
    external_ready(&client, &namespace, "allowed", "True").await?;
    let refused = external_ready(&client, &namespace, "elsewhere", "False").await?;
    assert_eq!(refused.reason.as_deref(), Some("ProviderURLNotAllowed"));
    assert!(
        refused
            .message
            .unwrap_or_default()
            .starts_with("spec.provider.vault.server")
    );
    let message = store_refused(
        &client,
        &namespace,
        "aws-elsewhere",
        "ProviderURLNotAllowed",
    )
    .await?;
    assert!(
        message.starts_with("spec.provider.aws.endpoint"),
        "{message}"
    );
    store_refused(&client, &namespace, "elsewhere", "ProviderURLNotAllowed").await?;
    assert!(
        elsewhere.requests().is_empty(),
        "a refused URL was contacted"
    );
    controller
        .assert_nothing_leaked(&client, &namespace, &[&token, bao.root_token()])
        .await
}

/// Hostile `refreshInterval`s: what the CRD's pattern rules out (negative, exponent, fraction, too
/// long) is refused by the API server; what passes it but overflows (`999999999999999999d` once
/// panicked the reconciler and stopped ExternalSecret syncing cluster-wide) gets a failing
/// condition; an ExternalSecret created afterwards still syncs and the controller stays healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_refresh_intervals_are_refused_or_fail_alone() -> TestResult {
    let logs = signet_tests::logs::capture();
    let (bed, _bao, _mount) = Bed::with_root_vault_store().await?;
    let spec = |interval: &str| {
        json!({"refreshInterval": interval, "secretStoreRef": {"name": "vault"},
               "data": [{"secretKey": "username", "remoteRef": {"key": "app/db", "property": "username"}}]})
    };
    let too_long = format!("{}s", "1".repeat(40));
    for (name, interval) in [
        ("negative", "-5m"),
        ("exponent", "1e9s"),
        ("fraction", "1.5h"),
        ("too-long", too_long.as_str()),
    ] {
        let refused = bed.external_secret(name, spec(interval)).await;
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("refreshInterval"),
            "{interval:?} must be refused by the API server: {message}"
        );
    }
    for (name, interval) in [
        ("huge", "999999999999999999d"),
        ("digits30", "123456789012345678901234567890s"),
        ("beyond-max", "3651d"),
    ] {
        bed.external_secret(name, spec(interval)).await?;
    }
    for name in ["huge", "digits30", "beyond-max"] {
        let object = bed
            .wait_ready(
                name,
                "False",
                Some(signet_controller::external::reconcile::reason::INVALID),
            )
            .await?;
        let message = object
            .status
            .and_then(|s| s.ready().and_then(|c| c.message.clone()))
            .unwrap_or_default();
        assert!(message.contains("spec.refreshInterval"), "{message}");
    }
    bed.external_secret("after", spec("1h")).await?;
    bed.wait_value("after", "username", "admin").await?;
    let health = reqwest::get(format!("http://{}/healthz", bed.controller().http_addr)).await?;
    assert_eq!(health.status().as_u16(), 200);
    bed.assert_nothing_leaked().await?;
    let logged = logs.text();
    assert!(logged.contains("leading"), "the log capture works");
    assert!(!logged.contains(CANARY), "logs leak a value");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_change_rolls_out_the_named_deployment_and_a_refresh_does_not() -> TestResult {
    use crate::restart_support::{create_deployment, rollout_state};
    let bed = Bed::start_with(|c| c.restart_on_change = true).await?;
    let bao = tokio::task::spawn_blocking(OpenBao::shared).await??;
    let (mount, _) = vault_kv(bao, "app/db")?;
    bed.token_store("vault", bao, &mount, bao.root_token())
        .await?;
    create_deployment(&bed.client, &bed.namespace, "web").await?;
    let object: ExternalSecret = serde_json::from_value(json!({
        "apiVersion": "signet.dev/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "db", "annotations": {"signet.dev/restart": "deployment/web"}},
        "spec": {"refreshInterval": "1s", "secretStoreRef": {"name": "vault"},
                 "data": [{"secretKey": "username", "remoteRef": {"key": "app/db", "property": "username"}}]}
    }))?;
    bed.external()
        .create(&PostParams::default(), &object)
        .await?;
    bed.wait_value("db", "username", "admin").await?;
    let client = &bed.client;
    let namespace = bed.namespace.as_str();
    let (generation, first) = eventually("web rolled out", Duration::from_secs(30), || async {
        let state = rollout_state(client, namespace, "web").await.ok()?;
        (!state.1.is_empty()).then_some(state)
    })
    .await?;
    assert_eq!(first.keys().collect::<Vec<_>>(), ["checksum.signet.dev/db"]);

    // Refreshes every second fetch and write the same data: no rollout.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        rollout_state(client, namespace, "web").await?,
        (generation, first.clone())
    );

    // The remote value changes: one rollout, with a new checksum.
    bao.bao(
        None,
        &[
            "kv",
            "patch",
            &format!("-mount={mount}"),
            "app/db",
            "username=root",
        ],
    )?;
    bed.wait_value("db", "username", "root").await?;
    let (next_generation, second) =
        eventually("web rolled out again", Duration::from_secs(30), || async {
            let state = rollout_state(client, namespace, "web").await.ok()?;
            (state.1 != first).then_some(state)
        })
        .await?;
    assert_eq!(next_generation, generation + 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rollout_state(client, namespace, "web").await?,
        (next_generation, second)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ClusterExternalSecret: a controller watching every namespace, so on an API server of its own
// (this suite's other controllers are bound to their namespaces and never see it).

fn cluster_api_server() -> Result<&'static ApiServer, String> {
    static SERVER: std::sync::OnceLock<Result<ApiServer, String>> = std::sync::OnceLock::new();
    SERVER
        .get_or_init(|| ApiServer::start().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Creates a namespace `prefix-<suffix>` with `labels`.
async fn labelled_namespace(
    server: &ApiServer,
    client: &Client,
    prefix: &str,
    labels: serde_json::Value,
) -> Result<String, BoxError> {
    let name = server.create_namespace(client, prefix).await?;
    set_namespace_labels(client, &name, labels).await?;
    Ok(name)
}

/// Merges `labels` into the namespace's (a `null` value removes a label).
async fn set_namespace_labels(
    client: &Client,
    name: &str,
    labels: serde_json::Value,
) -> TestResult {
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": labels}})),
        )
        .await?;
    Ok(())
}

/// Waits until the ClusterExternalSecret `name` satisfies `done`.
async fn wait_cluster_external(
    client: &Client,
    name: &str,
    what: &str,
    done: impl Fn(&signet_controller::external::cluster::ClusterExternalSecretStatus) -> bool,
) -> Result<signet_controller::ClusterExternalSecret, BoxError> {
    let api: Api<signet_controller::ClusterExternalSecret> = Api::all(client.clone());
    let outcome = eventually(
        &format!("ClusterExternalSecret {name}: {what}"),
        Duration::from_secs(60),
        || async {
            let object = api.get(name).await.ok()?;
            done(object.status.as_ref()?).then_some(object)
        },
    )
    .await;
    if outcome.is_err()
        && let Ok(object) = api.get(name).await
    {
        eprintln!("{name}: {:?}", object.status);
    }
    Ok(outcome?)
}

fn ready_reason(
    status: &signet_controller::external::cluster::ClusterExternalSecretStatus,
) -> Option<&str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?
        .reason
        .as_deref()
}

/// Waits until `namespace` has no ExternalSecret `name` and no Secret `name`.
async fn wait_gone(client: &Client, namespace: &str, name: &str) -> TestResult {
    let external: Api<ExternalSecret> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    eventually(
        &format!("{namespace}/{name}: ExternalSecret and Secret gone"),
        Duration::from_secs(60),
        || async {
            let es = external.get_opt(name).await.ok()?;
            let secret = secrets.get_opt(name).await.ok()?;
            (es.is_none() && secret.is_none()).then_some(())
        },
    )
    .await?;
    Ok(())
}

/// Waits until the Secret `namespace/name` has `key = value`.
async fn wait_secret_value(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
    value: &str,
) -> Result<Secret, BoxError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    Ok(eventually(
        &format!("Secret {namespace}/{name} {key}={value}"),
        Duration::from_secs(60),
        || async {
            let secret = api.get_opt(name).await.ok()??;
            (text(&secret, key).as_deref() == Some(value)).then_some(secret)
        },
    )
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_external_secret_fans_out_follows_namespace_labels_and_never_strands_a_namespace()
-> TestResult {
    use signet_controller::external::cluster::{NOT_OWNED, OWNER_LABEL as CES_LABEL, TERMINATING};
    let server = tokio::task::spawn_blocking(cluster_api_server).await??;
    let client = server.client().await?;
    signet_controller::install_crd(client.clone()).await?;
    let keys_namespace = server.create_namespace(&client, "ceskeys").await?;
    let mut config = controller_config(&keys_namespace, "none")?;
    config.watch_namespace = None;
    let controller = signet_controller::start(client.clone(), config).await?;

    // A ClusterSecretStore over the shared OpenBao, its token in the keys namespace.
    let bao = tokio::task::spawn_blocking(OpenBao::shared).await??;
    let (mount, _) = vault_kv(bao, "app/db")?;
    Api::<Secret>::namespaced(client.clone(), &keys_namespace)
        .create(
            &PostParams::default(),
            &Secret {
                metadata: named("root"),
                string_data: Some([("token".to_owned(), bao.root_token().to_owned())].into()),
                ..Secret::default()
            },
        )
        .await?;
    // It serves the namespaces labelled `label: in` only.
    let label = unique_name("tenant");
    let store = unique_name("css");
    create_json(
        &Api::<signet_controller::ClusterSecretStore>::all(client.clone()),
        json!({"apiVersion": "signet.dev/v1alpha1", "kind": "ClusterSecretStore",
               "metadata": {"name": store},
               "spec": {"provider": vault_provider(bao, &mount, json!({"tokenSecretRef":
                            {"name": "root", "key": "token", "namespace": keys_namespace}})),
                        "conditions": [{"namespaceSelector": {"matchLabels": {label.clone(): "in"}}}]}}),
    )
    .await?;

    // Two namespaces selected by label, a third not.
    let selected = json!({label.clone(): "in"});
    let a = labelled_namespace(server, &client, "cesa", selected.clone()).await?;
    let b = labelled_namespace(server, &client, "cesb", selected.clone()).await?;
    let c = labelled_namespace(server, &client, "cesc", json!({label.clone(): "out"})).await?;
    let ces_api: Api<signet_controller::ClusterExternalSecret> = Api::all(client.clone());
    let name = unique_name("fan");
    create_json(
        &ces_api,
        json!({"apiVersion": "signet.dev/v1alpha1", "kind": "ClusterExternalSecret",
               "metadata": {"name": name},
               "spec": {
                   // Long: a namespace that joins or leaves must not wait for it.
                   "refreshTime": "1h",
                   "externalSecretMetadata": {"labels": {"made-by": "ces"}},
                   "namespaceSelectors": [{"matchExpressions":
                       [{"key": label, "operator": "In", "values": ["in"]}]}],
                   "externalSecretSpec": {
                       "secretStoreRef": {"name": store, "kind": "ClusterSecretStore"},
                       "data": [
                           {"secretKey": "username", "remoteRef": {"key": "app/db", "property": "username"}},
                           {"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}}
                       ]}}}),
    )
    .await?;
    let ces_uid = ces_api.get(&name).await?.uid().unwrap_or_default();

    // 1. Fan-out: a and b get the ExternalSecret and, through it, the Secret; c gets nothing.
    for namespace in [&a, &b] {
        wait_secret_value(&client, namespace, &name, "username", "admin").await?;
        let es = Api::<ExternalSecret>::namespaced(client.clone(), namespace)
            .get(&name)
            .await?;
        assert_eq!(es.labels().get("made-by").map(String::as_str), Some("ces"));
        assert_eq!(es.labels().get(CES_LABEL), Some(&ces_uid));
        assert_eq!(es.owner_references()[0].uid, ces_uid);
        assert!(es.finalizers().is_empty());
    }
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    wait_cluster_external(&client, &name, "provisioned in a and b", |s| {
        s.provisioned_namespaces == expected && ready_reason(s) == Some("Provisioned")
    })
    .await?;
    assert!(
        Api::<ExternalSecret>::namespaced(client.clone(), &c)
            .get_opt(&name)
            .await?
            .is_none()
    );

    // A spec change reaches them, a removed entry included.
    ces_api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"externalSecretSpec": {"data": [
                {"secretKey": "username", "remoteRef": {"key": "app/db", "property": "username"}}]}}})),
        )
        .await?;
    for namespace in [&a, &b] {
        let api = Api::<ExternalSecret>::namespaced(client.clone(), namespace);
        eventually(
            &format!("{namespace}/{name} has one data entry"),
            Duration::from_secs(60),
            || async { (api.get(&name).await.ok()?.spec.data.len() == 1).then_some(()) },
        )
        .await?;
    }

    // 2. b leaves the selection: its ExternalSecret goes, and its Secret with it; c joins.
    set_namespace_labels(&client, &b, json!({label.clone(): "out"})).await?;
    wait_gone(&client, &b, &name).await?;
    set_namespace_labels(&client, &c, selected.clone()).await?;
    wait_secret_value(&client, &c, &name, "username", "admin").await?;
    let mut expected = vec![a.clone(), c.clone()];
    expected.sort();
    wait_cluster_external(&client, &name, "provisioned in a and c", |s| {
        s.provisioned_namespaces == expected
    })
    .await?;

    // 4. An ExternalSecret of that name that it does not own is left alone, the namespace failed.
    let d = server.create_namespace(&client, "cesd").await?;
    let theirs: Api<ExternalSecret> = Api::namespaced(client.clone(), &d);
    create_json(
        &theirs,
        json!({"apiVersion": "signet.dev/v1alpha1", "kind": "ExternalSecret",
               "metadata": {"name": name},
               "spec": {"secretStoreRef": {"name": "their-own"}, "refreshInterval": "5m"}}),
    )
    .await?;
    let before = theirs.get(&name).await?;
    set_namespace_labels(&client, &d, selected.clone()).await?;
    wait_cluster_external(&client, &name, "d failed as not owned", |s| {
        s.failed_namespaces
            .iter()
            .any(|f| f.namespace == d && f.reason == NOT_OWNED)
            && ready_reason(s) == Some("NotAllProvisioned")
            && s.provisioned_namespaces == expected
    })
    .await?;
    let after = theirs.get(&name).await?;
    // Its spec and labels as they were (its status is the ExternalSecret reconciler's).
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.labels(), before.labels());
    assert_eq!(after.spec.secret_store_ref.name, "their-own");
    assert!(after.owner_references().is_empty());

    // 3. Deleting a selected namespace completes: nothing of ours holds it.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .delete(&a, &kube::api::DeleteParams::default())
        .await?;
    eventually(
        &format!("namespace {a} deleted"),
        Duration::from_secs(90),
        || async { namespaces.get_opt(&a).await.ok()?.is_none().then_some(()) },
    )
    .await?;
    wait_cluster_external(&client, &name, "a no longer listed", |s| {
        s.provisioned_namespaces == [c.clone()]
    })
    .await?;

    // A selected namespace that something else holds in Terminating: its ExternalSecret goes with
    // the namespace's content, nothing is created there again, the status says why.
    let g = labelled_namespace(server, &client, "cesg", selected.clone()).await?;
    wait_secret_value(&client, &g, &name, "username", "admin").await?;
    let held: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), &g);
    held.create(
        &PostParams::default(),
        &k8s_openapi::api::core::v1::ConfigMap {
            metadata: ObjectMeta {
                name: Some("held".into()),
                finalizers: Some(vec!["example.com/hold".into()]),
                ..ObjectMeta::default()
            },
            ..Default::default()
        },
    )
    .await?;
    namespaces
        .delete(&g, &kube::api::DeleteParams::default())
        .await?;
    wait_gone(&client, &g, &name).await?;
    wait_cluster_external(&client, &name, "g listed as terminating", |s| {
        s.failed_namespaces
            .iter()
            .any(|f| f.namespace == g && f.reason == TERMINATING)
    })
    .await?;
    assert!(
        Api::<ExternalSecret>::namespaced(client.clone(), &g)
            .get_opt(&name)
            .await?
            .is_none()
    );
    held.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    eventually(
        &format!("namespace {g} deleted"),
        Duration::from_secs(90),
        || async { namespaces.get_opt(&g).await.ok()?.is_none().then_some(()) },
    )
    .await?;

    // 6. A hostile ClusterExternalSecret fails alone, with a clear status; the other keeps working.
    let bad = unique_name("bad");
    create_json(
        &ces_api,
        json!({"apiVersion": "signet.dev/v1alpha1", "kind": "ClusterExternalSecret",
               "metadata": {"name": bad},
               "spec": {"namespaceSelectors": [{"matchExpressions":
                            [{"key": label, "operator": "Near", "values": ["in"]}]}],
                        "externalSecretSpec": {"secretStoreRef": {"name": store, "kind": "ClusterSecretStore"}}}}),
    )
    .await?;
    let refused = wait_cluster_external(&client, &bad, "InvalidSpec", |s| {
        ready_reason(s) == Some("InvalidSpec")
    })
    .await?;
    let message = refused.status.unwrap().conditions[0]
        .message
        .clone()
        .unwrap_or_default();
    assert!(
        message.starts_with("spec.namespaceSelectors[0]: matchExpressions[0]: operator \"Near\""),
        "{message}"
    );
    let e = labelled_namespace(server, &client, "cese", selected.clone()).await?;
    wait_secret_value(&client, &e, &name, "username", "admin").await?;
    for namespace in [&c, &e] {
        assert!(
            Api::<ExternalSecret>::namespaced(client.clone(), namespace)
                .get_opt(&bad)
                .await?
                .is_none()
        );
    }

    // Tenancy: a namespace selected by name that the store's conditions do not admit gets the
    // ExternalSecret, refused as one written there would be; no Secret.
    let f = server.create_namespace(&client, "cesf").await?;
    let by_name = unique_name("byname");
    create_json(
        &ces_api,
        json!({"apiVersion": "signet.dev/v1alpha1", "kind": "ClusterExternalSecret",
               "metadata": {"name": by_name},
               "spec": {"namespaces": [f],
                        "externalSecretSpec": {"secretStoreRef": {"name": store, "kind": "ClusterSecretStore"},
                            "data": [{"secretKey": "username", "remoteRef": {"key": "app/db", "property": "username"}}]}}}),
    )
    .await?;
    wait_cluster_external(&client, &by_name, "provisioned in f", |s| {
        s.provisioned_namespaces == [f.clone()]
    })
    .await?;
    let refused = external_ready(&client, &f, &by_name, "False").await?;
    assert_eq!(refused.reason.as_deref(), Some("StoreNotAllowed"));
    assert!(
        Api::<Secret>::namespaced(client.clone(), &f)
            .get_opt(&by_name)
            .await?
            .is_none()
    );

    // No value in any status.
    for object in ces_api.list(&ListParams::default()).await? {
        let status = serde_json::to_string(&object.status)?;
        assert!(!status.contains(CANARY), "status leaks: {status}");
    }

    // 5. Deleting the ClusterExternalSecret removes its ExternalSecrets (and their Secrets); the
    //    one it did not own stays.
    ces_api
        .delete(&name, &kube::api::DeleteParams::default())
        .await?;
    for namespace in [&c, &e] {
        wait_gone(&client, namespace, &name).await?;
    }
    assert!(theirs.get_opt(&name).await?.is_some());
    drop(controller);
    Ok(())
}

/// `dataFrom[].rewrite` and the decoding strategies against OpenBao: keys rewritten by an
/// expression and a template, values decoded (standard, URL-safe, `Auto` keeping text that is not
/// base64); a rewrite making two keys one and a value that does not decode are clear conditions
/// naming the keys and never the values; an unknown strategy is `InvalidSpec`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_and_decoding_strategies_shape_the_secret() -> TestResult {
    use base64::Engine as _;
    let (bed, bao, mount) = Bed::with_root_vault_store().await?;
    let std_b64 = base64::engine::general_purpose::STANDARD.encode(format!("{CANARY}-std"));
    let url_b64 = base64::engine::general_purpose::URL_SAFE.encode([0xfb_u8, 0xff]);
    for (path, pairs) in [
        (
            "shaped/dev",
            vec![format!("db/user=YWRtaW4="), format!("db/pass={std_b64}")],
        ),
        ("shaped/plain", vec!["note=not base64!".to_owned()]),
        ("shaped/url", vec![format!("bin={url_b64}")]),
        ("shaped/bad", vec![format!("k={CANARY} not base64")]),
    ] {
        let mut args = vec![
            "kv".to_owned(),
            "put".to_owned(),
            format!("-mount={mount}"),
            path.to_owned(),
        ];
        args.extend(pairs);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bao.bao(None, &args)?;
    }
    bed.external_secret(
        "shaped",
        json!({
            "secretStoreRef": {"name": "vault"},
            "dataFrom": [{
                "extract": {"key": "shaped/dev", "decodingStrategy": "Base64"},
                "rewrite": [
                    {"regexp": {"source": "^db/(?P<field>.*)$", "target": "dev_${field}"}},
                    {"transform": {"template": "{{ .value | upper }}"}}
                ]
            }],
            "data": [
                {"secretKey": "note", "remoteRef": {"key": "shaped/plain", "property": "note", "decodingStrategy": "Auto"}},
                {"secretKey": "bin", "remoteRef": {"key": "shaped/url", "property": "bin", "decodingStrategy": "Base64URL"}}
            ]
        }),
    )
    .await?;
    let secret = bed.wait_value("shaped", "DEV_USER", "admin").await?;
    let data = secret.data.as_ref().ok_or("no data")?;
    let keys: Vec<&String> = data.keys().collect();
    assert_eq!(keys, ["DEV_PASS", "DEV_USER", "bin", "note"]);
    assert_eq!(text(&secret, "DEV_PASS"), Some(format!("{CANARY}-std")));
    assert_eq!(text(&secret, "note").as_deref(), Some("not base64!"));
    assert_eq!(data["bin"].0, [0xfb, 0xff]);

    // Two keys made one: refused, naming both keys.
    bed.external_secret(
        "collide",
        json!({
            "secretStoreRef": {"name": "vault"},
            "dataFrom": [{"extract": {"key": "shaped/dev"},
                          "rewrite": [{"regexp": {"source": "^db/.*$", "target": "same"}}]}]
        }),
    )
    .await?;
    let message = bed.refusal("collide", "SecretSyncedError").await?;
    assert!(
        message.contains(r#"keys \"db/pass\" and \"db/user\" both become \"same\""#),
        "{message}"
    );
    assert!(bed.secrets().get_opt("collide").await?.is_none());

    // A value that does not decode: the key is named, the value is not.
    bed.external_secret(
        "undecodable",
        json!({
            "secretStoreRef": {"name": "vault"},
            "data": [{"secretKey": "k", "remoteRef": {"key": "shaped/bad", "property": "k", "decodingStrategy": "Base64"}}]
        }),
    )
    .await?;
    let message = bed.refusal("undecodable", "SecretSyncedError").await?;
    assert!(
        message.contains(r#"key \"k\" is not valid base64"#),
        "{message}"
    );

    // An unknown strategy: InvalidSpec, naming the field.
    bed.external_secret(
        "unknown-strategy",
        json!({
            "secretStoreRef": {"name": "vault"},
            "data": [{"secretKey": "k", "remoteRef": {"key": "shaped/plain", "property": "note", "decodingStrategy": "Foo"}}]
        }),
    )
    .await?;
    let message = bed.refusal("unknown-strategy", "InvalidSpec").await?;
    assert!(
        message.contains("spec.data[0].remoteRef.decodingStrategy"),
        "{message}"
    );
    bed.assert_nothing_leaked().await?;
    Ok(())
}

/// `target.immutable` with `templateFrom` literals: the Secret is written immutable (data and a
/// label from the literals), is not refreshed when the remote value changes, reports a later spec
/// change as `SecretImmutable` without touching the Secret, and is written anew from the current
/// values once deleted; turning `immutable` off is refused by the API server until it is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immutable_secret_is_written_once_and_anew_only_when_deleted() -> TestResult {
    let (bed, bao, mount) = Bed::with_root_vault_store().await?;
    let put = |value: &str| {
        bao.bao(
            None,
            &[
                "kv",
                "put",
                &format!("-mount={mount}"),
                "frozen/db",
                &format!("password={value}"),
            ],
        )
    };
    put("one")?;
    let spec = |interval: &str, immutable: bool| {
        json!({
            "refreshInterval": interval,
            "secretStoreRef": {"name": "vault"},
            "data": [{"secretKey": "password", "remoteRef": {"key": "frozen/db", "property": "password"}}],
            "target": {"immutable": immutable, "template": {"templateFrom": [
                {"literal": "dsn: \"db://{{ .password }}\""},
                {"literal": "team: blue", "target": "Labels"}
            ]}}
        })
    };
    bed.external_secret("frozen", spec("1s", true)).await?;
    let secret = bed.wait_value("frozen", "dsn", "db://one").await?;
    assert_eq!(secret.immutable, Some(true));
    assert_eq!(
        secret.labels().get("team").map(String::as_str),
        Some("blue")
    );
    // Replace: only the templated key.
    assert_eq!(secret.data.as_ref().ok_or("no data")?.len(), 1);

    // The remote value changes: no refresh, however short the interval.
    put("two")?;
    let fetches = || bed.controller().context.metrics.provider_fetches_total();
    let before = fetches();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let secret = bed.secrets().get("frozen").await?;
    assert_eq!(text(&secret, "dsn").as_deref(), Some("db://one"));
    assert_eq!(
        fetches(),
        before,
        "no provider call for an immutable Secret"
    );

    // A spec change: reported, the Secret untouched.
    bed.external()
        .patch(
            "frozen",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": spec("2s", true)})),
        )
        .await?;
    let message = bed.refusal("frozen", "SecretImmutable").await?;
    assert!(
        message.contains("delete it to have a new one written"),
        "{message}"
    );
    let secret = bed.secrets().get("frozen").await?;
    assert_eq!(text(&secret, "dsn").as_deref(), Some("db://one"));

    // Deleted: written anew from the current values.
    bed.secrets()
        .delete("frozen", &kube::api::DeleteParams::default())
        .await?;
    let secret = bed.wait_value("frozen", "dsn", "db://two").await?;
    assert_eq!(secret.immutable, Some(true));
    bed.wait_ready("frozen", "True", Some("SecretSynced"))
        .await?;

    // Turning immutable off: the API server refuses to make the Secret mutable.
    bed.external()
        .patch(
            "frozen",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": spec("2s", false)})),
        )
        .await?;
    let message = bed.refusal("frozen", "SecretSyncedError").await?;
    assert!(message.contains("immutable"), "{message}");
    bed.assert_nothing_leaked().await?;
    Ok(())
}
