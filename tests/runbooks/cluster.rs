//! The cluster side of the runbook tests: a real API server of the test's own (runbooks use
//! `kube-system` and cluster-scoped objects, like a real cluster, so each test gets a fresh one), and
//! the `signet-controller` binary run outside the cluster with the admin kubeconfig, standing in for
//! the Deployment the Helm chart creates (the test API server runs no Pods).

use signet_testkit::ApiServer;
use signet_tests::poll::eventually;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The controller binary of this workspace.
pub fn controller_bin() -> PathBuf {
    signet_tests::sandbox::workspace_bin("signet-controller", "signet-controller")
}

/// Held by each cluster runbook test for its whole run: they start their own API servers (up to two
/// each), and one at a time keeps a 2-core CI machine responsive.
pub static ONE_CLUSTER_TEST_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh API server for one test; panics with the harness's message when it cannot start.
pub fn fresh_cluster() -> ApiServer {
    ApiServer::start().unwrap_or_else(|e| panic!("starting the test API server: {e}"))
}

/// A running `signet-controller`; killed when dropped.
pub struct Controller {
    child: Child,
    /// Base URL of its HTTP API (`/v1/cert.pem`, `/v1/rotate`, …).
    pub url: String,
    /// Base URL of its metrics listener.
    pub metrics_url: String,
    log: PathBuf,
}

impl Controller {
    /// Picks the ports a controller for `cluster` will listen on (so a runbook can be told its URL
    /// before it runs).
    pub fn ports() -> (u16, u16) {
        let http = signet_testkit::free_port().expect("free port");
        let metrics = signet_testkit::free_port().expect("free port");
        (http, metrics)
    }

    /// Starts the controller against `cluster` with its keys in `kube-system`, as the chart installs
    /// it there, and waits until it serves a sealing certificate.
    pub async fn start(cluster: &ApiServer, ports: (u16, u16), log_dir: &std::path::Path) -> Self {
        let bin = tokio::task::spawn_blocking(controller_bin)
            .await
            .expect("build thread")
            .clone();
        let log = log_dir.join(format!("controller-{}.log", ports.0));
        let child = Command::new(bin)
            .env_clear()
            .env("KUBECONFIG", cluster.kubeconfig_path())
            .env("SIGNET_CONTROLLER_NAMESPACE", "kube-system")
            .env("SIGNET_LISTEN_ADDR", format!("127.0.0.1:{}", ports.0))
            .env("SIGNET_METRICS_ADDR", format!("127.0.0.1:{}", ports.1))
            .env("SIGNET_LOG_FORMAT", "json")
            .env("SIGNET_RESYNC_PERIOD", "5s")
            .stdout(std::fs::File::create(&log).expect("controller log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("starting signet-controller");
        let controller = Controller {
            child,
            url: format!("http://127.0.0.1:{}", ports.0),
            metrics_url: format!("http://127.0.0.1:{}", ports.1),
            log,
        };
        let url = controller.url.clone();
        let ready = eventually("controller ready", Duration::from_secs(180), || async {
            let response = reqwest::get(format!("{url}/readyz")).await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
        if let Err(err) = ready {
            panic!("{err}\ncontroller log:\n{}", controller.log_text());
        }
        controller
    }

    /// What the controller logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The metrics text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.metrics_url))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment a `cluster-connect` block stands for: KUBECONFIG, the controller's URL (what
/// `kubectl port-forward` gives the reader) and the chart's path in this checkout.
pub fn connect_env(cluster: &ApiServer, controller_url: &str) -> Vec<(String, String)> {
    vec![
        (
            "KUBECONFIG".to_owned(),
            cluster.kubeconfig_path().display().to_string(),
        ),
        ("CONTROLLER_URL".to_owned(), controller_url.to_owned()),
        (
            "SIGNET_CHART".to_owned(),
            signet_tests::sandbox::workspace_root()
                .join("charts/signet")
                .display()
                .to_string(),
        ),
    ]
}
