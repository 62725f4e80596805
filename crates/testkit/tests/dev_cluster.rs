//! `signet-dev-cluster`: prints eval-able exports and `ready`, serves a real API server (plus moto
//! and OpenBao when asked), and cleans up on SIGTERM.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `signet-dev-cluster` with `args` and reads its export lines up to `ready`.
fn start_dev_cluster(args: &[&str]) -> (Child, HashMap<String, String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_signet-dev-cluster"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn signet-dev-cluster");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut exports = HashMap::new();
    loop {
        let line = lines
            .next()
            .expect("signet-dev-cluster ended before `ready`")
            .expect("read stdout");
        if line == "ready" {
            break;
        }
        let assignment = line
            .strip_prefix("export ")
            .unwrap_or_else(|| panic!("not an export line: {line}"));
        let (name, quoted) = assignment.split_once('=').expect("NAME=value");
        let value = quoted
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or_else(|| panic!("value not single-quoted: {line}"));
        exports.insert(name.to_owned(), value.to_owned());
    }
    (child, exports)
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dev_cluster_prints_exports_then_ready_and_cleans_up_on_sigterm() {
    let (mut child, exports) = start_dev_cluster(&["--moto", "--openbao"]);

    let kubeconfig = PathBuf::from(&exports["KUBECONFIG"]);
    let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig readable");
    assert!(text.contains("server: https://127.0.0.1:"), "{text}");
    assert!(exports["AWS_ENDPOINT_URL"].starts_with("http://127.0.0.1:"));
    assert_eq!(exports["AWS_REGION"], "us-east-1");
    assert!(exports["VAULT_ADDR"].starts_with("http://127.0.0.1:"));
    assert!(!exports["VAULT_TOKEN"].is_empty());
    for url in [&exports["AWS_ENDPOINT_URL"], &exports["VAULT_ADDR"]] {
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        std::net::TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("{url} not listening: {e}"));
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    // Each peer gets up to 20 s to stop after its stdin closes; on a loaded 2-core machine the
    // three of them together have taken more than a minute.
    let deadline = Instant::now() + Duration::from_secs(180);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "signet-dev-cluster did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}");
    assert!(!kubeconfig.exists(), "the kubeconfig is removed at exit");
    assert!(
        !kubeconfig.parent().expect("temp dir").exists(),
        "the API server's temp dir is removed at exit"
    );
}

/// The peers must not outlive a process that dies without cleaning up (SIGKILL, a panic that
/// aborts): the API server harness sees its stdin close, moto and OpenBao their watchdog's.
#[test]
fn peers_go_away_when_their_owner_is_killed() {
    let (mut child, exports) = start_dev_cluster(&["--moto", "--openbao"]);
    let kubeconfig = PathBuf::from(&exports["KUBECONFIG"]);
    let moto = port_of(&exports["AWS_ENDPOINT_URL"]);
    let bao = port_of(&exports["VAULT_ADDR"]);
    assert!(kubeconfig.exists() && listening(moto) && listening(bao));

    child.kill().expect("SIGKILL signet-dev-cluster");
    child.wait().expect("reap");

    let temp_dir = kubeconfig.parent().expect("temp dir").to_owned();
    wait_for(
        "API server temp dir removed",
        Duration::from_secs(60),
        || !temp_dir.exists(),
    );
    wait_for("moto stopped", Duration::from_secs(30), || !listening(moto));
    wait_for("OpenBao stopped", Duration::from_secs(30), || {
        !listening(bao)
    });
}

/// Runs kubectl against the dev cluster and returns its stdout, failing the test on an error.
fn kubectl(kubeconfig: &str, args: &[&str]) -> String {
    let program =
        signet_testkit::peer_path("kubectl").expect("kubectl (scripts/bootstrap kubectl)");
    let out = Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends SIGTERM to a dev cluster whose test panicked, and waits for it to clean up (its node's
/// containers included), so a failing test leaves nothing running.
struct StopOnPanic(u32);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .status();
        let proc_dir = PathBuf::from(format!("/proc/{}", self.0));
        let deadline = Instant::now() + Duration::from_secs(60);
        while proc_dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `--node --image`: the node is Ready, Pods start from the imported image (nothing can be
/// pulled) and reach OpenBao and moto, exposed to Pods at the node IP; SIGTERM takes it all away.
#[test]
fn dev_cluster_node_runs_pods_from_the_given_image_and_reaches_openbao_and_moto() {
    let image = signet_testkit::peer_file("signet-nodetool.tar")
        .expect("the nodetool image (scripts/bootstrap node)");
    let image = image.to_str().expect("UTF-8 path");
    let (mut child, exports) =
        start_dev_cluster(&["--node", "--openbao", "--moto", "--image", image]);
    let _stop = StopOnPanic(child.id());
    let kubeconfig = exports["KUBECONFIG"].as_str();
    let node_ip = exports["SIGNET_NODE_IP"].as_str();
    let bao_port = port_of(&exports["VAULT_ADDR"]).to_string();

    let ready = kubectl(
        kubeconfig,
        &[
            "get",
            "node",
            "signet-node",
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
        ],
    );
    assert_eq!(ready, "True");
    // Pods start from the imported image and reach OpenBao and moto at the node IP.
    let moto_port = port_of(&exports["AWS_ENDPOINT_URL"]).to_string();
    for (pod, port) in [("probe-openbao", &bao_port), ("probe-moto", &moto_port)] {
        kubectl(
            kubeconfig,
            &[
                "run",
                pod,
                "--image=signet.test/nodetool:1",
                "--image-pull-policy=Never",
                "--restart=Never",
                "--",
                "probe",
                node_ip,
                port,
                "HTTP/1.",
            ],
        );
    }
    for pod in ["pod/probe-openbao", "pod/probe-moto"] {
        kubectl(
            kubeconfig,
            &[
                "wait",
                "--for=jsonpath={.status.phase}=Succeeded",
                pod,
                "--timeout=120s",
            ],
        );
    }

    let kubeconfig = PathBuf::from(kubeconfig);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(180);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "signet-dev-cluster did not stop");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}");
    assert!(!kubeconfig.exists(), "the kubeconfig is removed at exit");
    assert!(
        !kubeconfig.parent().expect("temp dir").exists(),
        "the node's temp dir (containerd's root included) is removed at exit"
    );
}
