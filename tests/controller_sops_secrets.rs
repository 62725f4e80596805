//! SopsSecrets on the real kube-apiserver: objects made by `signet encrypt --kind SopsSecret` and by
//! upstream sops (`--encrypted-regex '^(data|stringData|binding)$' --mac-only-encrypted`, keys and
//! the binding in any order) become the right Secrets with the controller's age identity from a
//! Secret; labels added in the cluster do not break the MAC; a removed or altered value is refused
//! with a Warning and the Secret stays as it was; without a usable key the condition says so, leaks
//! nothing, and the object opens as soon as the identity Secret gains the key. Bindings: an object
//! opens only where its scope allows (a copy to another namespace or, strict, a rename does not);
//! an unbound one only under the migration flag; a binding left plain, borrowed, swapped or removed
//! is refused. The controller's logs (captured for the whole process) never show a value.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use signet_controller::sops_secret::reconcile::OWNER_LABEL;
use signet_controller::{Config, RunningController, SopsSecret};
use signet_testkit::{ApiServer, Moto, OpenBao};
use signet_tests::poll::eventually;
use signet_tests::sandbox::Sandbox;
use std::collections::BTreeMap;
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type BoxError = Box<dyn std::error::Error>;

/// Planted in every plaintext: it must never appear in a status or an event.
const CANARY: &str = "canary-50b5-sops-do-not-leak";
/// The Secret (in the controller namespace) holding the controller's age identities.
const IDENTITY_SECRET: &str = "sops-age";

struct Bed {
    client: Client,
    keys_namespace: String,
    namespace: String,
    controller: RunningController,
    sandbox: Sandbox,
    /// The identity the controller holds, and its recipient.
    recipient: String,
}

/// Another namespace, watched by a controller of its own holding the same identity (a controller
/// watches one namespace or all, and tests share the API server).
struct Neighbour {
    namespace: String,
    _controller: RunningController,
}

/// Starts a controller for SopsSecrets in `namespace`, its keys in `keys_namespace` (where the
/// identity Secret is).
async fn start_controller(
    client: &Client,
    keys_namespace: &str,
    namespace: &str,
    tweak: impl FnOnce(&mut Config),
) -> Result<RunningController, BoxError> {
    signet_tests::logs::capture();
    let mut config = Config::new(keys_namespace);
    config.watch_namespace = Some(namespace.to_owned());
    config.listen_addr = "127.0.0.1:0".parse()?;
    config.metrics_addr = "127.0.0.1:0".parse()?;
    config.key_bits = 2048;
    config.sops_age_secrets = vec![IDENTITY_SECRET.into()];
    tweak(&mut config);
    Ok(signet_controller::start(client.clone(), config).await?)
}

fn new_identity(sandbox: &Sandbox, name: &str) -> (String, String) {
    let out = sandbox.signet(["keygen", "-o", name]);
    out.ok();
    let text = String::from_utf8(sandbox.read(name)).expect("utf-8 identity");
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_owned();
    (text, recipient)
}

fn identity_secret(identities: &[&str]) -> Secret {
    let mut data = BTreeMap::new();
    for (i, identity) in identities.iter().enumerate() {
        data.insert(
            format!("key{i}.agekey"),
            ByteString(identity.as_bytes().to_vec()),
        );
    }
    data.insert("README".into(), ByteString(b"not a key".to_vec()));
    Secret {
        metadata: ObjectMeta {
            name: Some(IDENTITY_SECRET.into()),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..Secret::default()
    }
}

impl Bed {
    async fn start() -> Result<Bed, BoxError> {
        Self::start_with(|_| {}).await
    }

    /// Starts a controller after `tweak` adjusted its configuration.
    async fn start_with(tweak: impl FnOnce(&mut Config)) -> Result<Bed, BoxError> {
        let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
        let client = server.client().await?;
        signet_controller::install_crd(client.clone()).await?;
        let keys_namespace = server.create_namespace(&client, "sopskeys").await?;
        let namespace = server.create_namespace(&client, "sopsapp").await?;
        let sandbox = Sandbox::new();
        let (identity, recipient) = new_identity(&sandbox, "controller.agekey");
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &keys_namespace);
        secrets
            .create(&PostParams::default(), &identity_secret(&[&identity]))
            .await?;
        let controller = start_controller(&client, &keys_namespace, &namespace, tweak).await?;
        Ok(Bed {
            client,
            keys_namespace,
            namespace,
            controller,
            sandbox,
            recipient,
        })
    }

    /// Another namespace with a controller of its own that holds this bed's identity.
    async fn neighbour(&self) -> Result<Neighbour, BoxError> {
        let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
        let keys_namespace = server.create_namespace(&self.client, "sopskeys").await?;
        let namespace = server.create_namespace(&self.client, "sopsother").await?;
        let identity = String::from_utf8(self.sandbox.read("controller.agekey"))?;
        Api::<Secret>::namespaced(self.client.clone(), &keys_namespace)
            .create(&PostParams::default(), &identity_secret(&[&identity]))
            .await?;
        let controller =
            start_controller(&self.client, &keys_namespace, &namespace, |_| {}).await?;
        Ok(Neighbour {
            namespace,
            _controller: controller,
        })
    }

    fn api(&self) -> Api<SopsSecret> {
        self.api_in(&self.namespace)
    }

    fn api_in(&self, namespace: &str) -> Api<SopsSecret> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn secrets(&self) -> Api<Secret> {
        self.secrets_in(&self.namespace)
    }

    fn secrets_in(&self, namespace: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Creates `object` as `namespace`/`name`: the same bytes, wherever its metadata says.
    async fn create(
        &self,
        namespace: &str,
        name: &str,
        mut object: SopsSecret,
    ) -> Result<SopsSecret, BoxError> {
        object.metadata.namespace = Some(namespace.to_owned());
        object.metadata.name = Some(name.to_owned());
        Ok(self
            .api_in(namespace)
            .create(&PostParams::default(), &object)
            .await?)
    }

    /// `signet encrypt --kind SopsSecret ARGS…` of the plain Secret `name` (a manifest without a
    /// namespace).
    fn encrypt(&self, name: &str, args: &[&str]) -> Result<SopsSecret, BoxError> {
        let file = format!("{name}.yaml");
        self.sandbox.write(&file, plain_secret(name));
        let mut all = vec!["encrypt", "--kind", "SopsSecret"];
        all.extend_from_slice(args);
        all.push(&file);
        let made = self.sandbox.signet(&all).ok();
        Ok(serde_saphyr::from_str(std::str::from_utf8(&made)?)?)
    }

    /// Encrypts the plain Secret `name` for the test namespace with `signet encrypt --kind
    /// SopsSecret KEY_ARGS…` and creates the result.
    async fn encrypt_and_apply(
        &self,
        name: &str,
        key_args: &[&str],
    ) -> Result<SopsSecret, BoxError> {
        let mut args = vec!["--namespace", self.namespace.as_str()];
        args.extend_from_slice(key_args);
        let object = self.encrypt(name, &args)?;
        self.create(&self.namespace, name, object).await
    }

    /// `sops --encrypt --age RECIPIENT --encrypted-regex REGEX --mac-only-encrypted` of a
    /// hand-written SopsSecret `name` for the test namespace, its `spec` keys in an order of their
    /// own; `binding` (when given) sits between `stringData` and `data`.
    fn sops_encrypt(
        &self,
        name: &str,
        binding: Option<&str>,
        regex: &str,
    ) -> Result<SopsSecret, BoxError> {
        let binding = binding
            .map(|b| format!("  binding: \"{b}\"\n"))
            .unwrap_or_default();
        let plain = format!(
            "apiVersion: signet.dev/v1alpha1\nkind: SopsSecret\nmetadata:\n  name: {name}\n  namespace: {}\nspec:\n  stringData:\n    username: admin\n    password: {CANARY}-pw\n{binding}  template:\n    type: kubernetes.io/basic-auth\n    metadata:\n      labels:\n        team: payments\n      annotations:\n        note: from-git\n  data:\n    zeta: {}\n    alpha: {}\n",
            self.namespace,
            b64("zeta-value"),
            b64(&format!("{CANARY}-alpha")),
        );
        let file = format!("{name}.yaml");
        self.sandbox.write(&file, plain);
        let made = self
            .sandbox
            .peer(
                "sops",
                [
                    "--encrypt",
                    "--age",
                    &self.recipient,
                    "--encrypted-regex",
                    regex,
                    "--mac-only-encrypted",
                    &file,
                ],
            )
            .ok();
        Ok(serde_saphyr::from_str(std::str::from_utf8(&made)?)?)
    }

    /// An unbound SopsSecret `name` as `signet encrypt --kind SopsSecret` wrote them before
    /// bindings (`--k8s --mac-only-encrypted`, keys sorted, `data` first): in the order the API
    /// server returns, so its MAC matches without any search.
    fn legacy_signet(&self, name: &str) -> Result<SopsSecret, BoxError> {
        let plain = format!(
            "apiVersion: signet.dev/v1alpha1\nkind: SopsSecret\nmetadata:\n  name: {name}\nspec:\n  data:\n    alpha: {}\n  stringData:\n    password: {CANARY}-pw\n    username: admin\n",
            b64(&format!("{CANARY}-alpha")),
        );
        let file = format!("{name}.yaml");
        self.sandbox.write(&file, plain);
        let made = self
            .sandbox
            .signet([
                "encrypt",
                "--k8s",
                "--mac-only-encrypted",
                "--age",
                &self.recipient,
                &file,
            ])
            .ok();
        Ok(serde_saphyr::from_str(std::str::from_utf8(&made)?)?)
    }

    /// Waits until the Ready condition has `status` for the current generation.
    async fn wait_ready(&self, name: &str, status: &str) -> Result<SopsSecret, BoxError> {
        self.wait_ready_in(&self.namespace, name, status).await
    }

    /// [`Bed::wait_ready`] in `namespace`.
    async fn wait_ready_in(
        &self,
        namespace: &str,
        name: &str,
        status: &str,
    ) -> Result<SopsSecret, BoxError> {
        let api = self.api_in(namespace);
        Ok(eventually(
            &format!("{name} Ready={status}"),
            Duration::from_secs(30),
            || async {
                let object = api.get(name).await.ok()?;
                let done = object.status.as_ref().is_some_and(|s| {
                    s.ready().is_some_and(|c| c.status == status)
                        && s.observed_generation == object.metadata.generation
                });
                done.then_some(object)
            },
        )
        .await?)
    }

    async fn wait_secret(&self, name: &str) -> Result<Secret, BoxError> {
        self.wait_secret_in(&self.namespace, name).await
    }

    async fn wait_secret_in(&self, namespace: &str, name: &str) -> Result<Secret, BoxError> {
        let api = self.secrets_in(namespace);
        Ok(eventually(
            &format!("Secret {name}"),
            Duration::from_secs(30),
            || async { api.get_opt(name).await.ok().flatten() },
        )
        .await?)
    }

    /// Status messages and event notes of the object, and the logs so far: they must not contain
    /// the canary.
    async fn assert_nothing_leaked(&self, name: &str) -> TestResult {
        self.assert_nothing_leaked_in(&self.namespace, name).await
    }

    async fn assert_nothing_leaked_in(&self, namespace: &str, name: &str) -> TestResult {
        let object = self.api_in(namespace).get(name).await?;
        let status = serde_json::to_string(&object.status)?;
        assert!(!status.contains(CANARY), "status leaks: {status}");
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        for event in events.list(&ListParams::default()).await? {
            let note = event.note.unwrap_or_default();
            assert!(!note.contains(CANARY), "event leaks: {note}");
        }
        let logs = signet_tests::logs::capture().text();
        assert!(!logs.is_empty(), "no logs captured");
        assert!(!logs.contains(CANARY), "logs leak: {logs}");
        Ok(())
    }

    /// The Ready condition of `namespace`/`name` once it is False for the current generation:
    /// (reason, message).
    async fn refusal_in(&self, namespace: &str, name: &str) -> Result<(String, String), BoxError> {
        let object = self.wait_ready_in(namespace, name, "False").await?;
        let condition = object
            .status
            .as_ref()
            .and_then(|s| s.ready())
            .ok_or("no Ready condition")?
            .clone();
        assert!(
            self.secrets_in(namespace).get_opt(name).await?.is_none(),
            "{namespace}/{name} was refused, yet a Secret exists"
        );
        Ok((
            condition.reason.unwrap_or_default(),
            condition.message.unwrap_or_default(),
        ))
    }

    async fn refusal(&self, name: &str) -> Result<(String, String), BoxError> {
        self.refusal_in(&self.namespace, name).await
    }

    async fn warnings_for(&self, name: &str) -> Result<Vec<Event>, BoxError> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        Ok(events
            .list(&ListParams::default())
            .await?
            .into_iter()
            .filter(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            })
            .collect())
    }
}

fn plain_secret(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  labels:\n    team: payments\n  annotations:\n    note: from-git\ntype: kubernetes.io/basic-auth\nstringData:\n  username: admin\n  password: {CANARY}-pw\ndata:\n  zeta: {}\n  alpha: {}\n",
        b64("zeta-value"),
        b64(&format!("{CANARY}-alpha")),
    )
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn text(secret: &Secret, key: &str) -> String {
    let data = secret.data.as_ref().expect("data");
    String::from_utf8(
        data.get(key)
            .unwrap_or_else(|| panic!("no {key}"))
            .0
            .clone(),
    )
    .unwrap()
}

fn assert_expected_secret(secret: &Secret, owner: &SopsSecret) {
    assert_eq!(text(secret, "username"), "admin");
    assert_eq!(text(secret, "password"), format!("{CANARY}-pw"));
    assert_eq!(text(secret, "zeta"), "zeta-value");
    assert_eq!(text(secret, "alpha"), format!("{CANARY}-alpha"));
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(
        secret.labels().get("team").map(String::as_str),
        Some("payments")
    );
    assert_eq!(
        secret.annotations().get("note").map(String::as_str),
        Some("from-git")
    );
    let uid = owner.uid().unwrap();
    assert_eq!(secret.labels().get(OWNER_LABEL), Some(&uid));
    let refs = secret.owner_references();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].kind, "SopsSecret");
    assert_eq!(refs[0].uid, uid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signet_made_and_sops_made_sopssecrets_become_secrets() -> TestResult {
    let bed = Bed::start().await?;

    // Made by signet from a plain Secret.
    let created = bed
        .encrypt_and_apply("db", &["--age", &bed.recipient])
        .await?;
    let ready = bed.wait_ready("db", "True").await?;
    let message = ready
        .status
        .as_ref()
        .unwrap()
        .ready()
        .unwrap()
        .message
        .clone();
    assert_eq!(
        message.as_deref(),
        Some(format!("decrypted with group 0: {}", bed.recipient).as_str())
    );
    assert_expected_secret(&bed.wait_secret("db").await?, &created);

    // Made by upstream sops as docs/sops-secrets.md says, stringData before the binding before
    // data and keys unsorted: the API server sorts them, the controller still verifies the MAC.
    let binding = format!("{}/upstream", bed.namespace);
    let sops_made = bed.sops_encrypt("upstream", Some(&binding), "^(data|stringData|binding)$")?;
    let created = bed.create(&bed.namespace, "upstream", sops_made).await?;
    bed.wait_ready("upstream", "True").await?;
    assert_expected_secret(&bed.wait_secret("upstream").await?, &created);

    // Labels and annotations added in the cluster, and a template change (new generation, so a
    // new decryption): the MAC still holds.
    bed.api()
        .patch(
            "upstream",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"labels": {"added-by": "cluster"}, "annotations": {"argocd": "x"}},
                "spec": {"template": {"metadata": {"labels": {"team": "platform"}}}}
            })),
        )
        .await?;
    bed.wait_ready("upstream", "True").await?;
    let secrets = bed.secrets();
    eventually(
        "template change applied",
        Duration::from_secs(30),
        || async {
            let s = secrets.get("upstream").await.ok()?;
            (s.labels().get("team").map(String::as_str) == Some("platform")).then_some(())
        },
    )
    .await?;

    // A deleted Secret comes back.
    secrets.delete("db", &Default::default()).await?;
    eventually("Secret db re-created", Duration::from_secs(30), || async {
        let s = secrets.get_opt("db").await.ok()??;
        s.metadata.deletion_timestamp.is_none().then_some(())
    })
    .await?;
    bed.assert_nothing_leaked("db").await?;
    bed.assert_nothing_leaked("upstream").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_or_altered_values_are_refused_and_the_secret_stays() -> TestResult {
    let bed = Bed::start().await?;
    bed.encrypt_and_apply("guarded", &["--age", &bed.recipient])
        .await?;
    bed.wait_ready("guarded", "True").await?;
    let before = bed.wait_secret("guarded").await?;

    // A removed value: every value still decrypts, the MAC does not match.
    bed.api()
        .patch(
            "guarded",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(json!([
                {"op": "remove", "path": "/spec/stringData/username"}
            ]))?),
        )
        .await?;
    let refused = bed.wait_ready("guarded", "False").await?;
    let condition = refused.status.as_ref().unwrap().ready().unwrap().clone();
    assert_eq!(condition.reason.as_deref(), Some("MacMismatch"));

    // A value moved to another key: the AEAD refuses it (the key path is authenticated).
    let object = bed.api().get("guarded").await?;
    let zeta = object.spec["data"]["zeta"].clone();
    bed.api()
        .patch(
            "guarded",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"data": {"alpha": zeta}}})),
        )
        .await?;
    eventually("DecryptionFailed", Duration::from_secs(30), || async {
        let o = bed.api().get("guarded").await.ok()?;
        let c = o.status.as_ref()?.ready()?.clone();
        (c.reason.as_deref() == Some("DecryptionFailed")
            && o.status.as_ref()?.observed_generation == o.metadata.generation)
            .then_some(())
    })
    .await?;
    let after = bed.secrets().get("guarded").await?;
    assert_eq!(after.data, before.data, "the Secret must not change");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "nothing written to the Secret"
    );
    // Each event is created after its status is written: wait for both.
    eventually(
        "Warning events MacMismatch and DecryptionFailed",
        Duration::from_secs(30),
        || async {
            let warnings = bed.warnings_for("guarded").await.ok()?;
            let has = |reason: &str| warnings.iter().any(|e| e.reason.as_deref() == Some(reason));
            (has("MacMismatch") && has("DecryptionFailed")).then_some(())
        },
    )
    .await?;
    bed.assert_nothing_leaked("guarded").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_usable_key_the_condition_says_so_and_a_new_identity_opens_it() -> TestResult {
    let bed = Bed::start().await?;
    let (other_identity, other_recipient) = new_identity(&bed.sandbox, "other.agekey");
    bed.encrypt_and_apply("elsewhere", &["--age", &other_recipient])
        .await?;
    let refused = bed.wait_ready("elsewhere", "False").await?;
    let condition = refused.status.as_ref().unwrap().ready().unwrap().clone();
    assert_eq!(condition.reason.as_deref(), Some("NoDecryptionKey"));
    let message = condition.message.unwrap_or_default();
    assert!(message.contains(&other_recipient), "{message}");
    assert!(!message.contains("AGE-SECRET-KEY"), "{message}");
    assert!(bed.secrets().get_opt("elsewhere").await?.is_none());
    bed.assert_nothing_leaked("elsewhere").await?;

    // The operator adds the key to the identity Secret: the object opens without a restart.
    let identity = String::from_utf8(bed.sandbox.read("controller.agekey"))?;
    let secrets: Api<Secret> = Api::namespaced(bed.client.clone(), &bed.keys_namespace);
    secrets
        .replace(
            IDENTITY_SECRET,
            &PostParams::default(),
            &Secret {
                metadata: ObjectMeta {
                    resource_version: secrets
                        .get(IDENTITY_SECRET)
                        .await?
                        .metadata
                        .resource_version,
                    ..identity_secret(&[&identity, &other_identity]).metadata
                },
                ..identity_secret(&[&identity, &other_identity])
            },
        )
        .await?;
    bed.wait_ready("elsewhere", "True").await?;
    let secret = bed.wait_secret("elsewhere").await?;
    assert_eq!(text(&secret, "username"), "admin");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_and_transit_keys_open_sopssecrets_through_the_controller_identity() -> TestResult {
    let bao = tokio::task::spawn_blocking(OpenBao::shared).await??;
    let moto = tokio::task::spawn_blocking(Moto::shared).await??;
    let transit = tokio::task::spawn_blocking(|| bao.create_transit_key("sopssecret")).await??;
    let kms = tokio::task::spawn_blocking(|| moto.create_kms_key(None)).await??;
    let environment: Vec<(String, String)> = bao.env().into_iter().chain(moto.env()).collect();
    let controller_env = environment.clone();
    let mut bed = Bed::start_with(move |config| config.sops_environment = controller_env).await?;
    for (key, value) in &environment {
        bed.sandbox.env(key, value);
    }
    let created = bed
        .encrypt_and_apply("by-transit", &["--hc-vault-transit", &transit])
        .await?;
    let ready = bed.wait_ready("by-transit", "True").await?;
    let message = ready
        .status
        .unwrap()
        .ready()
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    assert!(message.contains("/keys/firstkey"), "{message}");
    assert_expected_secret(&bed.wait_secret("by-transit").await?, &created);

    let created = bed.encrypt_and_apply("by-kms", &["--kms", &kms]).await?;
    let ready = bed.wait_ready("by-kms", "True").await?;
    let message = ready
        .status
        .unwrap()
        .ready()
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    assert!(message.contains(&kms), "{message}");
    assert_expected_secret(&bed.wait_secret("by-kms").await?, &created);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_sopssecrets_open_only_where_their_scope_allows() -> TestResult {
    let bed = Bed::start().await?;
    let other = bed.neighbour().await?;
    let (a, b) = (bed.namespace.as_str(), other.namespace.as_str());
    let age = ["--age", bed.recipient.as_str()];
    let strict = bed.encrypt("db", &[&["--namespace", a][..], &age].concat())?;
    let wide = bed.encrypt(
        "wide",
        &[&["--namespace", a, "--scope", "namespace-wide"][..], &age].concat(),
    )?;
    // The manifest names no namespace: only the cluster-wide scope may do without.
    let anywhere = bed.encrypt(
        "anywhere",
        &[&["--scope", "cluster-wide"][..], &age].concat(),
    )?;

    // (namespace, name, object, opens there)
    let cases = [
        (a, "db", &strict, true),
        (a, "db-renamed", &strict, false),
        (b, "db", &strict, false),
        (a, "wide", &wide, true),
        (a, "wide-renamed", &wide, true),
        (b, "wide", &wide, false),
        (a, "anywhere", &anywhere, true),
        (b, "anywhere-else", &anywhere, true),
    ];
    for (namespace, name, object, _) in &cases {
        bed.create(namespace, name, (*object).clone()).await?;
    }
    for (namespace, name, _, opens) in cases {
        if opens {
            bed.wait_ready_in(namespace, name, "True").await?;
            let secret = bed.wait_secret_in(namespace, name).await?;
            assert_eq!(
                text(&secret, "password"),
                format!("{CANARY}-pw"),
                "{namespace}/{name}"
            );
        } else {
            let (reason, message) = bed.refusal_in(namespace, name).await?;
            assert_eq!(reason, "BindingMismatch", "{namespace}/{name}: {message}");
            let why = if namespace == a {
                "another name in this namespace"
            } else {
                "another namespace"
            };
            assert!(message.contains(why), "{namespace}/{name}: {message}");
            assert!(
                message.contains("signet encrypt --kind SopsSecret"),
                "{message}"
            );
            // What the binding allows was encrypted: a copy's refusal does not name it.
            assert!(
                namespace == a || !message.contains(a),
                "{namespace}/{name}: {message}"
            );
        }
        bed.assert_nothing_leaked_in(namespace, name).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_and_tampered_bindings_are_refused_and_the_migration_flag_opens_only_unbound()
-> TestResult {
    let bed = Bed::start().await?;
    let ns = bed.namespace.clone();
    let age = ["--age", bed.recipient.as_str()];
    // As the docs said before bindings: no binding, and a rule that does not select one.
    let legacy = bed.sops_encrypt("legacy", None, "^(data|stringData)$")?;
    let legacy_sorted = bed.legacy_signet("legacy-sorted")?;
    let bound = bed.encrypt("bound", &[&["--namespace", ns.as_str()][..], &age].concat())?;
    let anywhere = bed.encrypt(
        "anywhere",
        &[&["--scope", "cluster-wide"][..], &age].concat(),
    )?;
    let with_binding = |object: &SopsSecret, binding: Option<serde_json::Value>| {
        let mut object = object.clone();
        match binding {
            Some(value) => object.spec.insert("binding".into(), value),
            None => object.spec.remove("binding"),
        };
        object
    };
    let sealed_binding = |object: &SopsSecret| object.spec["binding"].clone();

    let cases = [
        // Unbound: refused before any decryption, with the way out.
        ("legacy", legacy.clone(), "Unbound"),
        // Bound, its binding removed: unbound now.
        ("stripped", with_binding(&bound, None), "Unbound"),
        // An unbound object given a plain binding for here: the MAC does not cover it (and the
        // values are in the order the MAC was made in, so nothing else would stop it).
        (
            "legacy-plain",
            with_binding(&legacy_sorted, Some(json!(format!("{ns}/legacy-plain")))),
            "InvalidSopsSecret",
        ),
        // ... or an encrypted one borrowed from a bound file, which its rule does not decrypt.
        (
            "legacy-borrowed",
            with_binding(&legacy, Some(sealed_binding(&bound))),
            "InvalidSopsSecret",
        ),
        // A bound object given the binding of a cluster-wide file: another data key.
        (
            "swapped",
            with_binding(&bound, Some(sealed_binding(&anywhere))),
            "DecryptionFailed",
        ),
        // A bound object whose rule was edited so that a plain binding reads as plain text.
        (
            "regex-edited",
            {
                let mut object = with_binding(&bound, Some(json!("*")));
                object.sops["encrypted_regex"] = json!("^(data|stringData)$");
                object
            },
            "InvalidSopsSecret",
        ),
    ];
    for (name, object, _) in &cases {
        bed.create(&ns, name, object.clone()).await?;
    }
    for (name, _, expected) in &cases {
        let (reason, message) = bed.refusal(name).await?;
        assert_eq!(&reason, expected, "{name}: {message}");
        match *name {
            "legacy" | "stripped" => {
                for hint in [
                    "signet encrypt --kind SopsSecret",
                    "--encrypted-regex '^(data|stringData|binding)$' --mac-only-encrypted",
                    "--allow-unbound-sops-secrets",
                ] {
                    assert!(message.contains(hint), "{name}: {message}");
                }
            }
            "legacy-plain" | "regex-edited" => {
                assert!(
                    message.contains("spec.binding is not encrypted"),
                    "{name}: {message}"
                )
            }
            "legacy-borrowed" => {
                assert!(
                    message.contains("spec.binding was not decrypted"),
                    "{name}: {message}"
                )
            }
            _ => {}
        }
        bed.assert_nothing_leaked(name).await?;
    }
    // The untouched bound object opens.
    bed.create(&ns, "bound", bound).await?;
    bed.wait_ready("bound", "True").await?;

    // During a migration: unbound objects open (the condition says they are unbound); a bound one
    // stripped of its binding still fails the MAC, and a plain binding is still refused.
    let migrating = Bed::start_with(|config| config.allow_unbound_sops_secrets = true).await?;
    let ns = migrating.namespace.clone();
    let legacy = migrating.sops_encrypt("legacy", None, "^(data|stringData)$")?;
    let legacy_sorted = migrating.legacy_signet("legacy-sorted")?;
    let bound = migrating.encrypt(
        "bound",
        &["--namespace", &ns, "--age", &migrating.recipient],
    )?;
    migrating.create(&ns, "legacy", legacy.clone()).await?;
    migrating
        .create(&ns, "stripped", with_binding(&bound, None))
        .await?;
    migrating
        .create(
            &ns,
            "legacy-plain",
            with_binding(&legacy_sorted, Some(json!(format!("{ns}/legacy-plain")))),
        )
        .await?;
    let opened = migrating.wait_ready("legacy", "True").await?;
    let message = opened.status.unwrap().ready().unwrap().message.clone();
    assert!(
        message
            .as_deref()
            .unwrap_or_default()
            .contains("not bound to a namespace"),
        "{message:?}"
    );
    assert_eq!(
        text(&migrating.wait_secret("legacy").await?, "password"),
        format!("{CANARY}-pw")
    );
    assert_eq!(migrating.refusal("stripped").await?.0, "MacMismatch");
    assert_eq!(
        migrating.refusal("legacy-plain").await?.0,
        "InvalidSopsSecret"
    );
    for name in ["legacy", "stripped", "legacy-plain"] {
        migrating.assert_nothing_leaked(name).await?;
    }
    Ok(())
}

/// One HTTP/1.1 request on a fresh connection from a plain thread (not the runtime the controller
/// shares with the test): the status code, or `None` when no answer came within `deadline`.
fn probe(addr: std::net::SocketAddr, request: &str, deadline: Duration) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, deadline).ok()?;
    stream.set_read_timeout(Some(deadline)).ok()?;
    stream.set_write_timeout(Some(deadline)).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Four ~1 MB SopsSecrets with one of eight values removed: the MAC fails in the order received,
/// and trying the other 10,080 orders would hash 6 GB each (anyone can encrypt to the controller's
/// recipient). The search is bounded and off the async runtime: meanwhile `/healthz` and
/// `/v1/verify` answer, a new SealedSecret becomes a Secret, and the four get a failing condition.
///
/// The controller runs on a runtime of its own and the probes come from this plain thread, so a
/// stalled runtime fails the test after the probing window instead of hanging it.
#[test]
fn large_sopssecrets_with_a_removed_value_do_not_starve_the_controller() -> TestResult {
    let logs = signet_tests::logs::capture();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (bed, objects, sealed, verify_body) = runtime.block_on(large_sopssecrets_bed())?;
    let http_addr = bed.controller.http_addr;
    let created = runtime.spawn(async move {
        let api = bed.api();
        futures::future::try_join_all(objects.iter().map(|o| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), o).await }
        }))
        .await
        .map_err(|e| e.to_string())?;
        let sealed_api: Api<signet_controller::SealedSecret> =
            Api::namespaced(bed.client.clone(), &bed.namespace);
        sealed_api
            .create(&PostParams::default(), &sealed)
            .await
            .map_err(|e| e.to_string())?;
        let secrets = bed.secrets();
        eventually(
            "SealedSecret unsealed while the SopsSecrets are checked",
            Duration::from_secs(15),
            || async { secrets.get_opt("sealed-meanwhile").await.ok().flatten() },
        )
        .await?;
        Ok::<_, String>(bed)
    });
    // Ten seconds of probes, each answered within five or counted as unanswered.
    let deadline = Duration::from_secs(5);
    let health = "GET /healthz HTTP/1.1\r\nHost: signet\r\nConnection: close\r\n\r\n";
    let verify = format!(
        "POST /v1/verify HTTP/1.1\r\nHost: signet\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{verify_body}",
        verify_body.len()
    );
    let started = std::time::Instant::now();
    let mut answers = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        answers.push(("healthz", probe(http_addr, health, deadline)));
        if answers.len() % 5 == 1 {
            answers.push(("verify", probe(http_addr, &verify, deadline)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let unanswered: Vec<_> = answers.iter().filter(|(_, a)| *a != Some(200)).collect();
    if !unanswered.is_empty() {
        // The runtime is stuck: do not wait for it to wind down.
        runtime.shutdown_background();
        panic!("unanswered probes: {unanswered:?} of {}", answers.len());
    }
    let bed = runtime.block_on(created)??;
    runtime.block_on(async {
        for n in 0..4 {
            let refused = bed.wait_ready(&format!("large-{n}"), "False").await?;
            let condition = refused
                .status
                .as_ref()
                .and_then(|s| s.ready())
                .ok_or("no condition")?;
            assert_eq!(condition.reason.as_deref(), Some("MacMismatch"));
            bed.assert_nothing_leaked(&format!("large-{n}")).await?;
        }
        let metrics = reqwest::get(format!("http://{}/metrics", bed.controller.metrics_addr))
            .await?
            .text()
            .await?;
        assert!(!metrics.contains(CANARY));
        drop(bed);
        Ok::<_, BoxError>(())
    })?;
    let logged = logs.text();
    assert!(logged.contains("leading"), "the log capture works");
    assert!(!logged.contains(CANARY), "logs leak a value");
    Ok(())
}

/// A bed with four ~1 MB SopsSecrets (eight values, one removed) ready to create, a SealedSecret
/// for the controller's key, and that SealedSecret as a `/v1/verify` body.
async fn large_sopssecrets_bed() -> Result<
    (
        Bed,
        Vec<SopsSecret>,
        signet_controller::SealedSecret,
        String,
    ),
    BoxError,
> {
    use base64::Engine;
    let bed = Bed::start().await?;
    let value = |i: usize| format!("{CANARY}-{i}-{}", "v".repeat(64 * 1024));
    let data: String = (0..8)
        .map(|i| format!("  key{i}: {}\n", b64(&value(i))))
        .collect();
    let mut objects = Vec::new();
    for n in 0..4 {
        let name = format!("large-{n}");
        let file = format!("{name}.yaml");
        bed.sandbox.write(
            &file,
            format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ndata:\n{data}"),
        );
        let made = bed
            .sandbox
            .signet([
                "encrypt",
                "--kind",
                "SopsSecret",
                "--age",
                &bed.recipient,
                "--namespace",
                &bed.namespace,
                &file,
            ])
            .ok();
        let mut object: SopsSecret = serde_saphyr::from_str(std::str::from_utf8(&made)?)?;
        let removed = object
            .spec
            .get_mut("data")
            .and_then(|d| d.as_object_mut())
            .and_then(|d| d.remove("key3"));
        assert!(removed.is_some());
        let size = serde_json::to_vec(&object)?.len();
        assert!(size > 700_000, "{size} bytes");
        objects.push(object);
    }
    let http_addr = bed.controller.http_addr;
    let cert = eventually("a sealing key", Duration::from_secs(60), || async {
        let response = reqwest::get(format!("http://{http_addr}/v1/cert.pem"))
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.text().await.ok()
    })
    .await?;
    let plain: signet_api::Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "sealed-meanwhile", "namespace": bed.namespace},
        "data": {"k": base64::engine::general_purpose::STANDARD.encode("v")}
    }))?;
    let sealed = signet_seal::seal_secret(
        &plain,
        &signet_seal::SealingCertificate::from_pem(cert.as_bytes())?,
        &signet_seal::SealOptions::default(),
    )?;
    let verify_body = serde_json::to_string(&sealed)?;
    let sealed = serde_json::from_value(serde_json::to_value(&sealed)?)?;
    Ok((bed, objects, sealed, verify_body))
}

/// A plain sops-secrets-operator object (`isindir.github.com/v1alpha3`) with one template per
/// `(name, password)`: the first a basic-auth Secret with labels, the others Opaque with a `data`
/// value of their own.
fn operator_manifest(
    name: &str,
    namespace: &str,
    templates: &[(&str, &str)],
    suspend: bool,
) -> String {
    let mut text = format!(
        "apiVersion: isindir.github.com/v1alpha3\nkind: SopsSecret\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  suspend: {suspend}\n  secretTemplates:\n"
    );
    for (index, (secret, password)) in templates.iter().enumerate() {
        if index == 0 {
            text.push_str(&format!(
                "    - name: {secret}\n      type: kubernetes.io/basic-auth\n      labels:\n        team: payments\n      stringData:\n        username: admin\n        password: {password}\n"
            ));
        } else {
            text.push_str(&format!(
                "    - name: {secret}\n      data:\n        token: {}\n        password: {}\n",
                b64(&format!("token-{index}")),
                b64(password)
            ));
        }
    }
    text
}

impl Bed {
    /// The import path of docs/sops-secrets.md for a sops-secrets-operator object: its file as
    /// its users encrypt it (`sops --encrypt --encrypted-suffix Templates`), then exactly the
    /// documented `sops --decrypt` and `signet encrypt --kind SopsSecret --namespace NS`.
    fn import_operator_object(&self, file: &str, manifest: &str) -> Result<SopsSecret, BoxError> {
        self.sandbox
            .write(&format!("{file}.plain-old.yaml"), manifest);
        let old = self
            .sandbox
            .peer(
                "sops",
                [
                    "--encrypt",
                    "--age",
                    &self.recipient,
                    "--encrypted-suffix",
                    "Templates",
                    &format!("{file}.plain-old.yaml"),
                ],
            )
            .ok();
        self.sandbox.write(file, &old);
        let identity = self.sandbox.path().join("controller.agekey");
        let mut decrypt = self.sandbox.command(signet_tests::sandbox::peer("sops"));
        decrypt
            .args(["--decrypt", file])
            .env("SOPS_AGE_KEY_FILE", identity);
        let plain = signet_tests::sandbox::Run::of(decrypt).ok();
        self.sandbox.write("plain.yaml", &plain);
        let made = self
            .sandbox
            .signet([
                "encrypt",
                "--kind",
                "SopsSecret",
                "--namespace",
                &self.namespace,
                "--age",
                &self.recipient,
                "plain.yaml",
            ])
            .ok();
        Ok(serde_saphyr::from_str(std::str::from_utf8(&made)?)?)
    }

    /// Waits until the Ready condition of `name` has `reason` for the current generation.
    async fn wait_reason(&self, name: &str, reason: &str) -> Result<SopsSecret, BoxError> {
        let api = self.api();
        Ok(eventually(
            &format!("{name} Ready reason {reason}"),
            Duration::from_secs(30),
            || async {
                let object = api.get(name).await.ok()?;
                let done = object.status.as_ref().is_some_and(|s| {
                    s.ready()
                        .is_some_and(|c| c.reason.as_deref() == Some(reason))
                        && s.observed_generation == object.metadata.generation
                });
                done.then_some(object)
            },
        )
        .await?)
    }

    /// Replaces the encrypted content of `name` with `object`'s (spec and sops metadata).
    async fn replace_content(&self, name: &str, object: &SopsSecret) -> TestResult {
        self.api()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": object.spec, "sops": object.sops})),
            )
            .await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_templates_become_three_secrets_and_suspend_stops_writes() -> TestResult {
    let bed = Bed::start().await?;
    let templates = [
        ("app-db", "pw-db"),
        ("app-api", "pw-api"),
        ("app-cache", "pw-cache"),
    ];
    let canary = |pw: &str| format!("{CANARY}-{pw}");
    let passwords: Vec<String> = templates.iter().map(|(_, pw)| canary(pw)).collect();
    let with_canaries: Vec<(&str, &str)> = templates
        .iter()
        .zip(&passwords)
        .map(|((name, _), pw)| (*name, pw.as_str()))
        .collect();
    let manifest = operator_manifest("app", &bed.namespace, &with_canaries, false);
    let imported = bed.import_operator_object("app.enc.yaml", &manifest)?;
    let created = bed.create(&bed.namespace, "app", imported).await?;
    let ready = bed.wait_ready("app", "True").await?;
    let uid = created.uid().unwrap();
    let mut versions = BTreeMap::new();
    for (index, (name, _)) in templates.iter().enumerate() {
        let secret = bed.wait_secret(name).await?;
        assert_eq!(text(&secret, "password"), passwords[index]);
        assert_eq!(secret.labels().get(OWNER_LABEL), Some(&uid));
        let refs = secret.owner_references();
        assert_eq!((refs.len(), refs[0].uid.as_str()), (1, uid.as_str()));
        if index == 0 {
            assert_eq!(text(&secret, "username"), "admin");
            assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
            assert_eq!(
                secret.labels().get("team").map(String::as_str),
                Some("payments")
            );
        } else {
            assert_eq!(text(&secret, "token"), format!("token-{index}"));
            assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        }
        versions.insert(name.to_string(), secret.metadata.resource_version.clone());
    }
    // One status entry per Secret, in template order.
    let statuses = &ready.status.as_ref().unwrap().secrets;
    let names: Vec<&str> = statuses.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["app-db", "app-api", "app-cache"]);
    assert!(statuses.iter().all(|s| s.status == "True"));
    // The Secret of the object's own name (the single shape) is not made.
    assert!(bed.secrets().get_opt("app").await?.is_none());

    // Suspended: a new value arrives and a template goes, and nothing is written or deleted.
    bed.api()
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await?;
    bed.wait_reason("app", "Suspended").await?;
    let mut changed = with_canaries.clone();
    let new_password = canary("pw-db-2");
    changed[0].1 = &new_password;
    let manifest = operator_manifest("app", &bed.namespace, &changed[..2], true);
    let changed_object = bed.import_operator_object("app2.enc.yaml", &manifest)?;
    bed.replace_content("app", &changed_object).await?;
    let suspended = bed.wait_reason("app", "Suspended").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let db = bed.secrets().get("app-db").await?;
    assert_eq!(text(&db, "password"), passwords[0]);
    assert_eq!(db.metadata.resource_version, versions["app-db"]);
    assert!(bed.secrets().get_opt("app-cache").await?.is_some());
    // The status still lists the Secrets of the last write.
    assert_eq!(suspended.status.unwrap().secrets.len(), 3);

    // Resumed: it syncs.
    bed.api()
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await?;
    bed.wait_ready("app", "True").await?;
    let db = bed.secrets().get("app-db").await?;
    assert_eq!(text(&db, "password"), new_password);
    // The other kept its values, so its version.
    let api_secret = bed.secrets().get("app-api").await?;
    assert_eq!(api_secret.metadata.resource_version, versions["app-api"]);
    // The template removed while suspended: its Secret goes now (it was owned).
    let secrets = bed.secrets();
    eventually("app-cache deleted", Duration::from_secs(30), || async {
        secrets
            .get_opt("app-cache")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await?;
    assert!(secrets.get_opt("app-api").await?.is_some());
    bed.assert_nothing_leaked("app").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_names_stay_in_the_namespace_and_foreign_secrets_are_left_alone() -> TestResult {
    let bed = Bed::start().await?;
    // Someone else's Secret of a template's name.
    let foreign = Secret {
        metadata: ObjectMeta {
            name: Some("theirs".into()),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([("k".into(), "v".into())])),
        ..Secret::default()
    };
    bed.secrets()
        .create(&PostParams::default(), &foreign)
        .await?;
    let manifest = operator_manifest(
        "mixed",
        &bed.namespace,
        &[("ours", "pw-1"), ("theirs", "pw-2")],
        false,
    );
    let object = bed.import_operator_object("mixed.enc.yaml", &manifest)?;
    bed.create(&bed.namespace, "mixed", object).await?;
    let refused = bed.wait_reason("mixed", "SecretNotOwned").await?;
    let status = refused.status.unwrap();
    assert_eq!(status.secrets[0].status, "True");
    assert_eq!(status.secrets[1].reason.as_deref(), Some("SecretNotOwned"));
    assert_eq!(text(&bed.wait_secret("ours").await?, "password"), "pw-1");
    let theirs = bed.secrets().get("theirs").await?;
    assert_eq!(text(&theirs, "k"), "v");
    assert!(theirs.owner_references().is_empty());

    // A template name that would leave the namespace is refused before anything is decrypted.
    let escaping = operator_manifest(
        "escape",
        &bed.namespace,
        &[("../kube-system/x", "pw")],
        false,
    )
    .replace("../kube-system/x", "\"../kube-system/x\"");
    let object = bed.import_operator_object("escape.enc.yaml", &escaping)?;
    bed.create(&bed.namespace, "escape", object).await?;
    let refused = bed.wait_reason("escape", "InvalidSecretTemplates").await?;
    let message = refused
        .status
        .unwrap()
        .ready()
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert!(
        message.contains("spec.secretTemplates[0].name"),
        "{message}"
    );
    Ok(())
}

impl Bed {
    /// `signet encrypt --kind SopsSecret` of a Secret `name` holding `password`, annotated to
    /// restart `targets`.
    fn encrypt_restarting(
        &self,
        name: &str,
        password: &str,
        targets: &str,
    ) -> Result<SopsSecret, BoxError> {
        let file = format!("{name}-{password}.yaml");
        self.sandbox.write(
            &file,
            format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n  password: {password}\n"),
        );
        let made = self
            .sandbox
            .signet([
                "encrypt",
                "--kind",
                "SopsSecret",
                "--namespace",
                &self.namespace,
                "--age",
                &self.recipient,
                &file,
            ])
            .ok();
        let mut object: SopsSecret = serde_saphyr::from_str(std::str::from_utf8(&made)?)?;
        object.metadata.annotations = Some(BTreeMap::from([(
            "signet.dev/restart".to_owned(),
            targets.to_owned(),
        )]));
        Ok(object)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_change_rolls_out_the_named_deployment_in_its_namespace_only() -> TestResult {
    use crate::restart_support::{
        create_deployment, create_stateful_set_and_daemon_set, rollout_state,
        stateful_set_and_daemon_set_checksums,
    };
    let bed = Bed::start_with(|c| {
        c.restart_on_change = true;
        c.resync_period = Some(Duration::from_millis(500));
    })
    .await?;
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let elsewhere = server.create_namespace(&bed.client, "sopsother").await?;
    let (client, namespace) = (&bed.client, bed.namespace.as_str());
    create_deployment(client, namespace, "web").await?;
    create_deployment(client, &elsewhere, "web").await?;
    create_stateful_set_and_daemon_set(client, namespace, "db").await?;
    let targets = "deployment/web,deployment/missing,statefulset/db,daemonset/db";
    let first_password = format!("{CANARY}-one");
    let object = bed.encrypt_restarting("db", &first_password, targets)?;
    bed.create(namespace, "db", object).await?;
    bed.wait_ready("db", "True").await?;
    let (generation, first) = eventually("web rolled out", Duration::from_secs(30), || async {
        let state = rollout_state(client, namespace, "web").await.ok()?;
        (!state.1.is_empty()).then_some(state)
    })
    .await?;
    assert_eq!(first.keys().collect::<Vec<_>>(), ["checksum.signet.dev/db"]);
    // The StatefulSet and the DaemonSet got the same annotation.
    assert_eq!(
        stateful_set_and_daemon_set_checksums(client, namespace, "db").await?,
        [first.clone(), first.clone()]
    );
    // The missing target is a Warning, not a failure.
    let warnings = eventually(
        "missing target reported",
        Duration::from_secs(30),
        || async {
            let warnings = bed.warnings_for("db").await.ok()?;
            warnings
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("RestartTargetNotFound"))
        },
    )
    .await?;
    assert!(
        warnings
            .note
            .unwrap_or_default()
            .contains("deployment/missing does not exist")
    );

    // Resyncs, and the same value encrypted again (new ciphertext, a new generation): no rollout.
    let again = bed.encrypt_restarting("db", &first_password, targets)?;
    bed.replace_content("db", &again).await?;
    bed.wait_ready("db", "True").await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rollout_state(client, namespace, "web").await?,
        (generation, first.clone())
    );

    // A new value: one rollout, in this namespace only.
    let changed = bed.encrypt_restarting("db", &format!("{CANARY}-two"), targets)?;
    bed.replace_content("db", &changed).await?;
    let (next_generation, _) =
        eventually("web rolled out again", Duration::from_secs(30), || async {
            let state = rollout_state(client, namespace, "web").await.ok()?;
            (state.1 != first).then_some(state)
        })
        .await?;
    assert_eq!(next_generation, generation + 1);
    let (other_generation, other) = rollout_state(client, &elsewhere, "web").await?;
    assert!(other.is_empty() && other_generation == 1, "{other:?}");
    // A rollout is a Normal event (repeats are one Event with a series); the HMAC key is the
    // controller's, in its namespace.
    let events: Api<Event> = Api::namespaced(bed.client.clone(), namespace);
    let rollout = events
        .list(&ListParams::default())
        .await?
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("RolloutRestarted"))
        .ok_or("no RolloutRestarted event")?;
    assert_eq!(rollout.type_.as_deref(), Some("Normal"));
    assert_eq!(
        rollout.note.as_deref(),
        Some("deployment/web restarted: its Secret's data changed")
    );
    let key = Api::<Secret>::namespaced(bed.client.clone(), &bed.keys_namespace)
        .get("signet-restart-checksum-key")
        .await?;
    assert!(key.data.unwrap_or_default()["key"].0.len() >= 32);

    // A target list the controller cannot read is a Warning; the Secret is written all the same.
    let odd = bed.encrypt_restarting("odd", "plain-value", "pod/web")?;
    bed.create(namespace, "odd", odd).await?;
    bed.wait_ready("odd", "True").await?;
    let warning = eventually(
        "invalid targets reported",
        Duration::from_secs(30),
        || async {
            let warnings = bed.warnings_for("odd").await.ok()?;
            warnings
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("InvalidRestartTargets"))
        },
    )
    .await?;
    assert!(
        warning
            .note
            .unwrap_or_default()
            .contains("entry 1: KIND must be")
    );
    bed.assert_nothing_leaked("db").await?;
    Ok(())
}

/// A rollout the API server refuses is a Warning on the object, and the Secret is written all the
/// same: `RestartForbidden` for a 403, `RestartFailed` for another 4xx. Admission policies refuse
/// the patches here (a policy's `reason` sets the status code), as an admission controller or a
/// narrower RBAC would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_rollouts_are_warnings_and_the_secret_is_still_written() -> TestResult {
    use crate::restart_support::create_deployment;
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    use k8s_openapi::api::apps::v1::Deployment;
    use signet_testkit::unique_name;
    let bed = Bed::start_with(|c| c.restart_on_change = true).await?;
    let (client, namespace) = (&bed.client, bed.namespace.as_str());
    create_deployment(client, namespace, "locked").await?;
    create_deployment(client, namespace, "broken").await?;
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    let mut names = Vec::new();
    for (deployment, reason) in [("locked", "Forbidden"), ("broken", "Invalid")] {
        let name = unique_name(&format!("refuse-{deployment}"));
        names.push(name.clone());
        let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": ["apps"], "apiVersions": ["v1"],
                    "operations": ["UPDATE"], "resources": ["deployments"]
                }]},
                "validations": [{
                    "expression": format!("object.metadata.name != '{deployment}'"),
                    "reason": reason,
                    "message": format!("{deployment} is frozen")
                }]
            }
        }))?;
        policies.create(&PostParams::default(), &policy).await?;
        let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": namespace
                }}}
            }
        }))?;
        bindings.create(&PostParams::default(), &binding).await?;
    }
    // Policies take effect once the API server has loaded them: wait until a plain update of
    // each Deployment is refused.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    for name in ["locked", "broken"] {
        eventually(
            "the policy refuses updates",
            Duration::from_secs(30),
            || async {
                let patch = json!({"metadata": {"labels": {"probe": unique_name("p")}}});
                deployments
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .is_err()
                    .then_some(())
            },
        )
        .await?;
    }
    let object = bed.encrypt_restarting(
        "frozen",
        &format!("{CANARY}-frozen"),
        "deployment/locked,deployment/broken",
    )?;
    bed.create(namespace, "frozen", object).await?;
    bed.wait_ready("frozen", "True").await?;
    for (reason, says) in [
        (
            "RestartForbidden",
            "the controller may not patch deployment/locked",
        ),
        ("RestartFailed", "deployment/broken: "),
    ] {
        let warning = eventually(reason, Duration::from_secs(30), || async {
            bed.warnings_for("frozen")
                .await
                .ok()?
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
        })
        .await?;
        let note = warning.note.unwrap_or_default();
        assert!(note.contains(says), "{reason}: {note}");
    }
    assert!(bed.secrets_in(namespace).get_opt("frozen").await?.is_some());
    bed.assert_nothing_leaked("frozen").await?;
    for name in names {
        bindings.delete(&name, &Default::default()).await?;
        policies.delete(&name, &Default::default()).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_open_only_where_bound_and_only_in_the_sorted_order() -> TestResult {
    let bed = Bed::start().await?;
    let neighbour = bed.neighbour().await?;
    let manifest = operator_manifest(
        "bound",
        &bed.namespace,
        &[("bound-a", "pw-a"), ("bound-b", "pw-b")],
        false,
    );
    let object = bed.import_operator_object("bound.enc.yaml", &manifest)?;
    // Annotated to restart, on a controller without --restart-on-change: a Warning only.
    let mut annotated = object.clone();
    annotated.metadata.annotations = Some(BTreeMap::from([(
        "signet.dev/restart".to_owned(),
        "deployment/web".to_owned(),
    )]));
    bed.create(&bed.namespace, "bound", annotated).await?;
    bed.wait_ready("bound", "True").await?;
    eventually(
        "RestartDisabled warning",
        Duration::from_secs(30),
        || async {
            let warnings = bed.warnings_for("bound").await.ok()?;
            warnings
                .iter()
                .any(|e| e.reason.as_deref() == Some("RestartDisabled"))
                .then_some(())
        },
    )
    .await?;

    // A copy in another namespace opens none of its Secrets.
    bed.create(&neighbour.namespace, "bound", object).await?;
    let copied = bed
        .wait_ready_in(&neighbour.namespace, "bound", "False")
        .await?;
    let condition = copied.status.as_ref().unwrap().ready().unwrap();
    assert_eq!(condition.reason.as_deref(), Some("BindingMismatch"));
    for name in ["bound-a", "bound-b"] {
        assert!(
            bed.secrets_in(&neighbour.namespace)
                .get_opt(name)
                .await?
                .is_none()
        );
    }

    // Upstream sops on a hand-written object whose keys are not sorted (stringData before data,
    // name before labels): the MAC is not searched, the message says to sort.
    let plain = format!(
        "apiVersion: signet.dev/v1alpha1\nkind: SopsSecret\nmetadata:\n  name: unsorted\n  namespace: {}\nspec:\n  binding: {}/unsorted\n  secretTemplates:\n    - name: unsorted-a\n      stringData:\n        zeta: z\n        alpha: a\n    - name: unsorted-b\n      stringData:\n        b: b\n      data:\n        a: {}\n",
        bed.namespace,
        bed.namespace,
        b64("a")
    );
    bed.sandbox.write("unsorted.yaml", plain);
    let made = bed
        .sandbox
        .peer(
            "sops",
            [
                "--encrypt",
                "--age",
                &bed.recipient,
                "--encrypted-regex",
                "^(data|stringData|binding)$",
                "--mac-only-encrypted",
                "unsorted.yaml",
            ],
        )
        .ok();
    let unsorted: SopsSecret = serde_saphyr::from_str(std::str::from_utf8(&made)?)?;
    bed.create(&bed.namespace, "unsorted", unsorted).await?;
    let (reason, message) = bed.refusal("unsorted").await?;
    assert_eq!(reason, "MacMismatch");
    assert!(
        message.contains("with secretTemplates, keep every map's keys sorted"),
        "{message}"
    );

    // suspend holds for the single shape too: nothing is written.
    let mut single = bed.encrypt(
        "paused",
        &["--namespace", &bed.namespace, "--age", &bed.recipient],
    )?;
    single.spec.insert("suspend".into(), json!(true));
    bed.create(&bed.namespace, "paused", single).await?;
    let (reason, _) = bed.refusal("paused").await?;
    assert_eq!(reason, "Suspended");
    bed.assert_nothing_leaked("bound").await?;
    Ok(())
}

/// A PGP secret key in the identity Secret (a `*.asc` entry, as Flux reads its `sops-gpg` Secret)
/// opens a SopsSecret encrypted to it. Until the key is there the condition names the fingerprint
/// and no key material; the controller never runs gpg for it (its `SOPS_GPG_EXEC` is a program that
/// would leave a mark).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pgp_key_from_the_identity_secret_opens_sopssecrets_without_running_gpg() -> TestResult {
    let tools = Sandbox::new();
    let fake_gpg = tools.write(
        "fake-gpg",
        "#!/bin/sh\ntouch \"$(dirname \"$0\")/gpg-was-run\"\nexit 2\n",
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake_gpg, std::fs::Permissions::from_mode(0o755))?;
    }
    let env = vec![("SOPS_GPG_EXEC".to_owned(), fake_gpg.display().to_string())];
    let bed = Bed::start_with(move |config| config.sops_environment = env).await?;
    let fp = bed.sandbox.gpg_key("controller", "ecc");
    let created = bed.encrypt_and_apply("by-pgp", &["--pgp", &fp]).await?;
    let refused = bed.wait_ready("by-pgp", "False").await?;
    let condition = refused.status.as_ref().unwrap().ready().unwrap().clone();
    assert_eq!(condition.reason.as_deref(), Some("NoDecryptionKey"));
    let message = condition.message.unwrap_or_default();
    assert!(message.contains(&fp), "{message}");
    assert!(!message.contains("PRIVATE KEY"), "{message}");

    let identity = String::from_utf8(bed.sandbox.read("controller.agekey"))?;
    let mut with_pgp = identity_secret(&[&identity]);
    with_pgp.data.get_or_insert_default().insert(
        "controller.asc".into(),
        ByteString(bed.sandbox.gpg_export_secret(&fp)),
    );
    let secrets: Api<Secret> = Api::namespaced(bed.client.clone(), &bed.keys_namespace);
    with_pgp.metadata.resource_version = secrets
        .get(IDENTITY_SECRET)
        .await?
        .metadata
        .resource_version;
    secrets
        .replace(IDENTITY_SECRET, &PostParams::default(), &with_pgp)
        .await?;
    let ready = bed.wait_ready("by-pgp", "True").await?;
    let message = ready.status.unwrap().ready().unwrap().message.clone();
    assert!(message.unwrap_or_default().contains(&fp));
    assert_expected_secret(&bed.wait_secret("by-pgp").await?, &created);
    assert!(
        !tools.join("gpg-was-run").exists(),
        "the controller ran SOPS_GPG_EXEC"
    );
    bed.assert_nothing_leaked("by-pgp").await?;
    Ok(())
}
