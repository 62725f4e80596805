//! The real kube-apiserver (with etcd and the garbage collector), run by the Go harness built from
//! `tests/apiserver` (`scripts/bootstrap apiserver` installs it as `signet-apiserver`), and on
//! request a real node beside it ([`ApiServer::start_with_node`]; `scripts/bootstrap node`).

use std::net::{Ipv4Addr, SocketAddrV4};
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

/// What a node test bed runs besides the control plane ([`ApiServer::start_with_node`]).
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// OCI image archives (`scripts/oci-image`, `scripts/build-image`) imported into the node's
    /// containerd, so Pods start from them with `imagePullPolicy: Never` (nothing can be pulled).
    pub images: Vec<PathBuf>,
    /// Ports of services listening on the host's 127.0.0.1 (OpenBao, moto…) that Pods reach at
    /// [`ApiServer::pod_address_of_host_port`].
    pub expose_host_ports: Vec<u16>,
}

/// A running kube-apiserver on 127.0.0.1 with RBAC, ServiceAccount tokens, embedded etcd and
/// kube-controller-manager's garbage-collector, namespace and serviceaccount controllers; with a
/// node ([`ApiServer::start_with_node`]) also the scheduler, a kubelet with containerd, a CNI
/// network and kube-proxy, so Pods run.
pub struct ApiServer {
    kubeconfig: PathBuf,
    audit_log: PathBuf,
    /// The node's IP and exposed host ports, in node mode.
    node: Option<(Ipv4Addr, Vec<u16>)>,
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
        Self::spawn(None)
    }

    /// Starts a private API server with a real node (never shared: each call starts its own),
    /// stopped when dropped together with every container it ran. The node — containerd + runc,
    /// a CNI bridge, the scheduler, a kubelet and kube-proxy — lives in network and mount
    /// namespaces of its own, so Pods reach the API server at the `kubernetes` Service
    /// (10.0.0.1:443) and the host only through `options.expose_host_ports`; the kubeconfig
    /// works from the host as in plain mode. Blocks until the node is Ready (about 10 s).
    pub fn start_with_node(options: NodeOptions) -> Result<ApiServer, Error> {
        Self::spawn(Some(options))
    }

    fn spawn(node: Option<NodeOptions>) -> Result<ApiServer, Error> {
        let program = crate::peer_path("signet-apiserver")?;
        // The harness removes it when it stops (as the kubeconfig). Not named `signet-apiserver-…`:
        // each harness sweeps the `signet-apiserver-<pid>-…` temp entries of dead harnesses, reading
        // the pid in decimal, and this name's pid is in hex; one that reads as a dead decimal pid
        // (`…-6352-…`) was removed under a running test.
        let audit_log =
            std::env::temp_dir().join(format!("{}.audit.log", crate::unique_name("signet-audit")));
        let mut args = vec!["--exit-on-stdin-eof".to_owned()];
        if let Some(options) = &node {
            args.push("--node".to_owned());
            for image in &options.images {
                args.push(format!("--image={}", image.display()));
            }
            for port in &options.expose_host_ports {
                args.push(format!("--expose-host-port={port}"));
            }
        }
        let mut process = PeerProcess::spawn_watching_stdin(
            PEER,
            &program,
            &args,
            &[("SIGNET_APISERVER_AUDIT_LOG", &audit_log)],
        )?;
        let mut node_ip = None;
        let kubeconfig = process.wait_for_line(READY_TIMEOUT, |line| {
            if let Some(ip) = line.strip_prefix("node-ip ") {
                node_ip = ip.parse::<Ipv4Addr>().ok();
            }
            line.strip_prefix("ready ").map(PathBuf::from)
        })?;
        let node = match node {
            None => None,
            Some(options) => {
                let Some(ip) = node_ip else {
                    return Err(Error::PeerCall {
                        peer: PEER,
                        message: "the harness printed no `node-ip` line: rebuild it with \
                                  `scripts/bootstrap apiserver`"
                            .to_owned(),
                    });
                };
                Some((ip, options.expose_host_ports))
            }
        };
        Ok(ApiServer {
            kubeconfig,
            audit_log,
            node,
            process: RunningPeer::new(process),
        })
    }

    /// The node's IP inside its network namespace (the `kubernetes` Service's endpoint, where
    /// exposed host ports are), or `None` without a node.
    pub fn node_ip(&self) -> Option<Ipv4Addr> {
        self.node.as_ref().map(|(ip, _)| *ip)
    }

    /// Where a Pod reaches the host's `127.0.0.1:port`, if the node was started with that port in
    /// [`NodeOptions::expose_host_ports`].
    pub fn pod_address_of_host_port(&self, port: u16) -> Option<SocketAddrV4> {
        let (ip, ports) = self.node.as_ref()?;
        ports.contains(&port).then(|| SocketAddrV4::new(*ip, port))
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
