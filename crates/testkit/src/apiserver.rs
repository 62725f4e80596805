//! The real kube-apiserver (with etcd and the garbage collector), run by the Go harness built from
//! `tests/apiserver` (`scripts/bootstrap apiserver` installs it as `signet-apiserver`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::Error;
use crate::process::{PeerProcess, RunningPeer, shared_instance};

const PEER: &str = "kube-apiserver";

/// How long the harness may take to print its ready line (a warm start takes a few seconds).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Label put on every namespace the testkit creates.
pub const NAMESPACE_LABEL: &str = "signet.test/created-by";

/// A running kube-apiserver on 127.0.0.1 with RBAC, ServiceAccount tokens, embedded etcd and
/// kube-controller-manager's garbage-collector, namespace and serviceaccount controllers.
pub struct ApiServer {
    kubeconfig: PathBuf,
    audit_log: PathBuf,
    process: RunningPeer,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

impl ApiServer {
    /// The API server shared by every test of this process, started on first use.
    pub fn shared() -> Result<&'static ApiServer, Error> {
        static SHARED: OnceLock<Result<ApiServer, String>> = OnceLock::new();
        shared_instance(&SHARED, PEER, ApiServer::start)
    }

    /// Starts a private API server, stopped (and its data removed) when dropped.
    /// Blocks until it is ready; call it from `spawn_blocking` inside an async runtime if that
    /// matters.
    pub fn start() -> Result<ApiServer, Error> {
        let program = crate::peer_path("signet-apiserver")?;
        // The harness removes it when it stops (as the kubeconfig).
        let audit_log = std::env::temp_dir().join(format!(
            "{}.audit.log",
            crate::unique_name("signet-apiserver")
        ));
        let mut process = PeerProcess::spawn_watching_stdin(
            PEER,
            &program,
            &["--exit-on-stdin-eof".to_owned()],
            &[("SIGNET_APISERVER_AUDIT_LOG", &audit_log)],
        )?;
        let kubeconfig = process.wait_for_line(READY_TIMEOUT, |line| {
            line.strip_prefix("ready ").map(PathBuf::from)
        })?;
        Ok(ApiServer {
            kubeconfig,
            audit_log,
            process: RunningPeer::new(process),
        })
    }

    /// Path of the admin kubeconfig (client certificate in `system:masters`). It is removed when
    /// the API server stops.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The audit log: one JSON object per line (`audit.k8s.io/v1` Event, Metadata level) for every
    /// request a ServiceAccount made, as soon as the API server answered it. A harness built before
    /// `--audit-log` existed writes none (`scripts/bootstrap apiserver` rebuilds it).
    pub fn audit_log(&self) -> &Path {
        &self.audit_log
    }

    /// The admin client configuration.
    pub async fn config(&self) -> Result<Config, Error> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        Ok(Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
    }

    /// A new admin client. Each call builds its own client, so it belongs to the caller's async
    /// runtime (every `#[tokio::test]` has its own).
    pub async fn client(&self) -> Result<Client, Error> {
        Ok(Client::try_from(self.config().await?)?)
    }

    /// Creates a namespace named `prefix-<unique suffix>` and returns its name. `prefix` should
    /// be at most 30 lower-case characters.
    pub async fn create_namespace(&self, client: &Client, prefix: &str) -> Result<String, Error> {
        let name = crate::unique_name(prefix);
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(NAMESPACE_LABEL.to_owned(), "signet-testkit".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await?;
        Ok(name)
    }

    /// Creates the ServiceAccount `namespace/name` if it does not exist yet, mints a token for
    /// it with the TokenRequest API (valid one hour) and returns a client that authenticates
    /// with that token. What it may do is whatever RBAC grants that ServiceAccount.
    pub async fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Client, Error> {
        let admin = self.client().await?;
        let token = self.service_account_token(&admin, namespace, name).await?;
        let mut config = self.config().await?;
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.into()),
            ..kube::config::AuthInfo::default()
        };
        Ok(Client::try_from(config)?)
    }

    /// Creates the ServiceAccount `namespace/name` if needed and mints a one-hour token for it.
    pub async fn service_account_token(
        &self,
        admin: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<String, Error> {
        let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), namespace);
        if accounts.get_opt(name).await?.is_none() {
            let account = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                ..ServiceAccount::default()
            };
            match accounts.create(&PostParams::default(), &account).await {
                Ok(_) => {}
                // The serviceaccount controller may have raced us (for "default").
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let minted = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await?;
        minted
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::NoToken {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })
    }

    /// `export` lines for a shell: `KUBECONFIG`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(
            "KUBECONFIG".to_owned(),
            self.kubeconfig.to_string_lossy().into_owned(),
        )]
    }

    /// The harness's recent output (stdout and stderr), for diagnosing a failing test.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}
