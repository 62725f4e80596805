//! The upstream Bitnami sealed-secrets controller (`sealed-secrets-controller`) as a child process
//! against a testkit [`ApiServer`], for side-by-side tests and benchmarks.
//!
//! It only loads in-cluster configuration, so it gets `KUBERNETES_SERVICE_HOST/PORT` and a
//! ServiceAccount token (bound to `cluster-admin`: the comparisons are about the controllers' work,
//! not Bitnami's narrower RBAC), the API server's CA and its namespace in
//! `/var/run/secrets/kubernetes.io/serviceaccount`: inside a private mount namespace
//! (`unshare --mount`, a temp dir bind-mounted over `/run`) when that works, else written to the
//! real path (only if it does not exist) and removed afterwards.

use crate::{ApiServer, Error, free_port, peer_path, unique_name};
use base64::Engine;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Where client-go's in-cluster configuration looks for the ServiceAccount credentials.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Name of the ServiceAccount the Bitnami controller runs as.
pub const BITNAMI_ACCOUNT: &str = "sealed-secrets-controller";

/// A running Bitnami controller; killed (and its credentials removed) when dropped.
pub struct BitnamiController {
    child: Child,
    cleanup: Option<CredentialFiles>,
    log: PathBuf,
    /// Its HTTP API (`/v1/cert.pem`, `/v1/verify`, `/v1/rotate`).
    pub http_addr: SocketAddr,
    /// Its `/metrics`.
    pub metrics_addr: SocketAddr,
}

impl BitnamiController {
    /// Starts the controller with its keys in `keys_ns` and `args` added to the listen addresses
    /// (e.g. `--all-namespaces=false`, `--additional-namespaces=app`).
    pub async fn start(
        server: &ApiServer,
        client: &kube::Client,
        keys_ns: &str,
        args: &[String],
    ) -> Result<BitnamiController, Error> {
        let bin = peer_path("sealed-secrets-controller")?;
        Self::start_program(&bin, server, client, keys_ns, args).await
    }

    /// [`BitnamiController::start`] with the controller binary at `bin` (a benchmark may compare
    /// a build of its own).
    pub async fn start_program(
        bin: &Path,
        server: &ApiServer,
        client: &kube::Client,
        keys_ns: &str,
        args: &[String],
    ) -> Result<BitnamiController, Error> {
        let bin = bin.to_path_buf();
        let call = |message: String| Error::PeerCall {
            peer: "sealed-secrets-controller",
            message,
        };
        let binding = ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some(format!("bitnami-{keys_ns}")),
                ..ObjectMeta::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".to_owned()),
                kind: "ClusterRole".to_owned(),
                name: "cluster-admin".to_owned(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".to_owned(),
                name: BITNAMI_ACCOUNT.to_owned(),
                namespace: Some(keys_ns.to_owned()),
                ..Subject::default()
            }]),
        };
        // A second start (a restart) finds the binding of the first.
        match Api::<ClusterRoleBinding>::all(client.clone())
            .create(&PostParams::default(), &binding)
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            other => {
                other?;
            }
        }
        let token = server
            .service_account_token(client, keys_ns, BITNAMI_ACCOUNT)
            .await?;
        let (url, ca) = server_and_ca(server.kubeconfig_path()).map_err(call)?;
        let authority = url
            .strip_prefix("https://")
            .ok_or_else(|| call("the API server URL is not https".to_owned()))?;
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| call("no port in the API server URL".to_owned()))?;
        let http_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let metrics_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut all_args = vec![
            format!("--listen-addr={http_addr}"),
            format!("--listen-metrics-addr={metrics_addr}"),
        ];
        all_args.extend_from_slice(args);
        let spawn_error = |source| Error::Spawn {
            peer: "sealed-secrets-controller",
            program: bin.clone(),
            source,
        };
        let (mut command, cleanup) = if private_mounts_work() {
            // `exec` keeps the pid, so a caller measuring the process measures the controller.
            let root = std::env::temp_dir().join(unique_name("bitnami-run"));
            let dir = root.join(
                Path::new(SERVICE_ACCOUNT_DIR)
                    .strip_prefix("/var/run")
                    .expect("the ServiceAccount dir is under /var/run"),
            );
            write_credentials(&dir, &token, &ca, keys_ns).map_err(spawn_error)?;
            let mut command = Command::new("unshare");
            command
                .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(r#"mount --bind "$0" /run && exec "$@""#)
                .arg(&root)
                .arg(&bin);
            (command, CredentialFiles { remove: root })
        } else {
            let top = Path::new("/var/run/secrets");
            if top.exists() {
                return Err(call(format!(
                    "{} exists and private mount namespaces are unavailable: refusing to overwrite it",
                    top.display()
                )));
            }
            write_credentials(Path::new(SERVICE_ACCOUNT_DIR), &token, &ca, keys_ns)
                .map_err(spawn_error)?;
            (
                Command::new(&bin),
                CredentialFiles {
                    remove: top.to_path_buf(),
                },
            )
        };
        let log = std::env::temp_dir().join(unique_name("bitnami-log"));
        let log_file = std::fs::File::create(&log).map_err(spawn_error)?;
        let child = command
            .args(all_args)
            .env("KUBERNETES_SERVICE_HOST", host.trim_matches(['[', ']']))
            .env("KUBERNETES_SERVICE_PORT", port)
            .env("POD_NAMESPACE", keys_ns)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(spawn_error)?;
        Ok(BitnamiController {
            child,
            cleanup: Some(cleanup),
            log,
            http_addr,
            metrics_addr,
        })
    }

    /// The process id (of the controller itself: the mount wrapper `exec`s it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }

    /// What the controller wrote to standard error so far (its warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait for it to exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for BitnamiController {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.cleanup.take();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// In-cluster credentials written for the controller; removed on drop.
struct CredentialFiles {
    /// The directory to remove (a private temp dir, or the real ServiceAccount dir's top-most
    /// directory we created).
    remove: PathBuf,
}

impl Drop for CredentialFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.remove);
    }
}

/// The API server's URL and CA (PEM) from the testkit's admin kubeconfig.
fn server_and_ca(kubeconfig: &Path) -> Result<(String, Vec<u8>), String> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let cluster = config
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .ok_or("no cluster in the kubeconfig")?;
    let server = cluster.server.ok_or("no server in the kubeconfig")?;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            cluster
                .certificate_authority_data
                .ok_or("no CA data in the kubeconfig")?,
        )
        .map_err(|e| e.to_string())?;
    Ok((server, ca))
}

/// Writes `token`, `ca.crt` and `namespace` into `dir`.
fn write_credentials(dir: &Path, token: &str, ca: &[u8], namespace: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("token"), token)?;
    std::fs::write(dir.join("ca.crt"), ca)?;
    std::fs::write(dir.join("namespace"), namespace)
}

/// Whether this process may make private mount namespaces (root in a container usually can).
fn private_mounts_work() -> bool {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
