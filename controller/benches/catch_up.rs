//! Catch-up benchmark against the real API server (not a test: it prints timings, asserts nothing).
//!
//! 1. Starts a fresh API server (one per bench process), creates `SIGNET_BENCH_N` (default 5000)
//!    SealedSecrets with 3 items each, sealed with signet-seal, while no controller runs. The
//!    controller's RSA-4096 sealing key is pre-created as a Bitnami-format key Secret
//!    (`sealedsecrets.bitnami.com/sealed-secrets-key=active`) so no controller generates one.
//! 2. Starts the controller and times, from its start, until every object has a Secret and until
//!    every object has `status.conditions[type=Synced].status == "True"` (both controllers write that
//!    condition; watched, not polled, so the bench itself adds little load).
//! 3. Creates 50 more, one at a time, and reports p50/p99 of "created -> Secret exists".
//! 4. Prints the controller's peak RSS (VmHWM), the CPU time it used during the catch-up (user +
//!    system, from `/proc/<pid>/stat`: less sensitive to a busy machine than the wall time), the API
//!    requests the catch-up cost (the API server's `apiserver_request_total`, summed, before and
//!    after, less the bench's own), the control plane's CPU time over the catch-up (the test API
//!    server's processes: etcd, kube-apiserver, the controller-manager; on a small machine it shares
//!    the cores with the controller), and a machine-readable `RESULT` line.
//!
//! Which controller:
//! - `SIGNET_BENCH_BITNAMI_BIN=<path>`: the upstream Bitnami controller (v0.40.0, what
//!   `scripts/bootstrap` installs) as a child process, with Bitnami's own CRD installed, started by
//!   `signet_testkit::BitnamiController` (in-cluster credentials in a private mount namespace).
//!   Its client-side rate limit (`--kubeclient-qps`, default 5) is set from
//!   `SIGNET_BENCH_BITNAMI_QPS` (default `-1`, unlimited, like the kube-rs client Signet uses).
//! - `SIGNET_BENCH_CONTROLLER_BIN=<path>`: the `signet-controller` binary as a child, with
//!   `KUBECONFIG`, leader election off.
//! - neither: Signet in-process (RSS then includes the bench's own client).
//!
//! `SIGNET_BENCH_LAST_APPLIED=1` creates the objects as `kubectl apply` does, each with its
//! manifest in the `kubectl.kubernetes.io/last-applied-configuration` annotation.
//!
//! 5. Then (unless `SIGNET_BENCH_RESTART=0`) the restart catch-up: the controller is stopped and
//!    started again, as on an upgrade or a new leader, with every Secret current, and timed until it
//!    has looked at every object. Neither controller's status says so (nothing changes), so each
//!    one's own counter is polled on its `/metrics`: Bitnami's
//!    `sealed_secrets_controller_unseal_requests_total` (counted as each unseal begins; its one
//!    worker takes the objects in turn) and Signet's `signet_reconciles_total{kind="SealedSecret"}`.
//!
//! Run: `scripts/bench-controller.sh [N]` for the side by side, or
//! `cargo bench -p signet-controller --bench catch_up` (`SIGNET_BENCH_N=500` for a quick run;
//! without `--bench`, as under `cargo test --all-targets`, it is a 20-object smoke run).

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use signet_controller::keyring::SEALING_KEY_LABEL;
use signet_controller::{Config, SealedSecret};
use signet_testkit::{ApiServer, BitnamiController};
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The controller under measurement.
enum Controller {
    InProcess(signet_controller::RunningController),
    Child(ChildController),
    Bitnami(BitnamiController),
}

/// A `signet-controller` running as a child process; killed if the bench stops early.
struct ChildController {
    child: Child,
}

impl ChildController {
    /// Peak RSS, then SIGTERM and wait.
    fn stop(mut self) -> u64 {
        let pid = self.child.id().to_string();
        let peak = peak_rss_kib(&pid).unwrap_or(0);
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
        peak
    }
}

impl Drop for ChildController {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Which controller the bench measures, and how to start it (again, for the restart).
enum Which {
    Bitnami { bin: OsString, qps: String },
    Child { bin: OsString },
    InProcess,
}

impl Which {
    fn from_env() -> Which {
        match (
            std::env::var_os("SIGNET_BENCH_BITNAMI_BIN"),
            std::env::var_os("SIGNET_BENCH_CONTROLLER_BIN"),
        ) {
            (Some(bin), _) => Which::Bitnami {
                bin,
                qps: std::env::var("SIGNET_BENCH_BITNAMI_QPS").unwrap_or_else(|_| "-1".to_owned()),
            },
            (None, Some(bin)) => Which::Child { bin },
            (None, None) => Which::InProcess,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Which::Bitnami { .. } => "bitnami",
            Which::Child { .. } => "signet",
            Which::InProcess => "signet-in-process",
        }
    }

    /// The line of the controller's `/metrics` that counts the SealedSecrets it has looked at.
    fn looked_at_metric(&self) -> &'static str {
        match self {
            Which::Bitnami { .. } => "sealed_secrets_controller_unseal_requests_total ",
            _ => "signet_reconciles_total{kind=\"SealedSecret\"} ",
        }
    }

    /// Starts the controller: it and the address of its `/metrics`.
    async fn start(
        &self,
        server: &'static ApiServer,
        client: &kube::Client,
        keys_ns: &str,
        app_ns: &str,
    ) -> Result<(Controller, SocketAddr), BoxError> {
        Ok(match self {
            Which::Bitnami { bin, qps } => {
                let args = [
                    "--all-namespaces=false".to_owned(),
                    format!("--additional-namespaces={app_ns}"),
                    format!("--kubeclient-qps={qps}"),
                    "--log-level=ERROR".to_owned(),
                ];
                let running = BitnamiController::start_program(
                    Path::new(bin),
                    server,
                    client,
                    keys_ns,
                    &args,
                )
                .await?;
                let metrics = running.metrics_addr;
                (Controller::Bitnami(running), metrics)
            }
            Which::Child { bin } => {
                let metrics = SocketAddr::from(([127, 0, 0, 1], signet_testkit::free_port()?));
                let child = Command::new(bin)
                    .env("KUBECONFIG", server.kubeconfig_path())
                    .env("SIGNET_CONTROLLER_NAMESPACE", keys_ns)
                    .env("SIGNET_WATCH_NAMESPACE", app_ns)
                    .env(
                        "SIGNET_LISTEN_ADDR",
                        format!("127.0.0.1:{}", signet_testkit::free_port()?),
                    )
                    .env("SIGNET_METRICS_ADDR", metrics.to_string())
                    .env("SIGNET_LEADER_ELECT", "false")
                    .env("RUST_LOG", "warn")
                    .spawn()?;
                (Controller::Child(ChildController { child }), metrics)
            }
            Which::InProcess => {
                let mut config = Config::new(keys_ns);
                config.watch_namespace = Some(app_ns.to_owned());
                config.listen_addr = ([127, 0, 0, 1], 0).into();
                config.metrics_addr = ([127, 0, 0, 1], 0).into();
                let running = signet_controller::start(client.clone(), config).await?;
                let metrics = running.metrics_addr;
                (Controller::InProcess(running), metrics)
            }
        })
    }
}

impl Controller {
    /// CPU seconds the controller process has used (`None` in-process: it shares the bench's).
    fn cpu_seconds(&self) -> Option<f64> {
        match self {
            Controller::Child(running) => cpu_seconds(&running.child.id().to_string()),
            Controller::Bitnami(running) => cpu_seconds(&running.pid().to_string()),
            Controller::InProcess(_) => None,
        }
    }

    /// An error if the controller process has exited.
    fn check_running(&mut self) -> Result<(), BoxError> {
        let exited = match self {
            Controller::Child(running) => running.child.try_wait()?,
            Controller::Bitnami(running) => running.try_wait()?,
            Controller::InProcess(_) => None,
        };
        match exited {
            Some(exit) => Err(format!("the controller exited early: {exit}").into()),
            None => Ok(()),
        }
    }

    /// Stops the controller; its peak RSS in KiB (in-process: this whole process's).
    async fn stop(self, label: &str) -> u64 {
        let (peak, what) = match self {
            Controller::Child(running) => (running.stop(), "the controller process"),
            Controller::Bitnami(running) => {
                let peak = peak_rss_kib(&running.pid().to_string()).unwrap_or(0);
                running.stop();
                (peak, "the controller process")
            }
            Controller::InProcess(controller) => {
                let peak = peak_rss_kib("self").unwrap_or(0);
                controller.shutdown().await;
                (peak, "this process (controller + bench client)")
            }
        };
        println!("[{label}] peak RSS of {what}: {} MiB", peak / 1024);
        peak
    }
}

/// The value of the first `/metrics` line at `addr` that starts with `prefix` (`None` while the
/// endpoint does not answer, or has no such line).
async fn scrape(addr: SocketAddr, prefix: &'static str) -> Option<f64> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .ok()?;
        let mut page = String::new();
        stream.read_to_string(&mut page).ok()?;
        page.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
    })
    .await
    .ok()
    .flatten()
}

fn sealed(
    cert: &signet_seal::SealingCertificate,
    namespace: &str,
    name: &str,
) -> Result<SealedSecret, BoxError> {
    let mut secret = signet_api::Secret::new(signet_api::ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        ..Default::default()
    });
    secret.string_data = Some(BTreeMap::from([
        ("username".to_owned(), format!("user-{name}")),
        ("password".to_owned(), format!("password-{name}")),
        ("url".to_owned(), format!("https://db.example/{name}")),
    ]));
    let sealed = signet_seal::seal_secret(&secret, cert, &signet_seal::SealOptions::default())?;
    Ok(serde_json::from_value(serde_json::to_value(&sealed)?)?)
}

/// `object` as `kubectl apply` (client-side, Argo CD's default) creates it: its manifest in the
/// last-applied annotation, the ciphertext a second time.
fn applied(mut object: SealedSecret) -> Result<SealedSecret, BoxError> {
    let manifest = serde_json::to_string(&object)?;
    object.metadata.annotations.get_or_insert_default().insert(
        signet_api::meta::LAST_APPLIED_ANNOTATION.to_owned(),
        manifest,
    );
    Ok(object)
}

/// What the bench reads of a process from `/proc/<pid>/stat`.
struct ProcStat {
    comm: String,
    ppid: String,
    /// User plus system CPU time so far, in seconds (fields 14 and 15, in clock ticks of 1/100 s,
    /// which Linux fixes for this interface).
    cpu_seconds: f64,
}

fn proc_stat(pid: &str) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it follow its closing `)`.
    let (head, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ProcStat {
        comm: head.split_once('(')?.1.to_owned(),
        ppid: fields.get(1)?.to_string(),
        cpu_seconds: ticks as f64 / 100.0,
    })
}

/// User plus system CPU time of a process so far, in seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    proc_stat(pid).map(|stat| stat.cpu_seconds)
}

/// CPU seconds used so far by the control plane this bench started: the `signet-apiserver`
/// processes descending from this one (etcd and kube-apiserver in one, the controller-manager in
/// its child). `None` when there is none (nothing to compare).
fn control_plane_cpu_seconds() -> Option<f64> {
    let processes: BTreeMap<String, ProcStat> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|pid| Some((pid.clone(), proc_stat(&pid)?)))
        .collect();
    let me = std::process::id().to_string();
    let descends_from_me = |pid: &str| {
        let mut current = pid;
        // Bounded walk up the process tree.
        for _ in 0..16 {
            let Some(stat) = processes.get(current) else {
                return false;
            };
            if stat.ppid == me {
                return true;
            }
            current = &stat.ppid;
        }
        false
    };
    processes
        .iter()
        .filter(|(pid, stat)| stat.comm.starts_with("signet-apiserv") && descends_from_me(pid))
        .map(|(_, stat)| stat.cpu_seconds)
        .reduce(|a, b| a + b)
}

/// The requests the API server has completed (`apiserver_request_total`), by verb and resource
/// (`GET secrets`, `PATCH sealedsecrets/status`), the other labels summed.
async fn api_requests(client: &kube::Client) -> Result<BTreeMap<String, u64>, BoxError> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix("=\""))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let subresource = label("subresource");
        let resource = match subresource.as_str() {
            "" => label("resource"),
            sub => format!("{}/{sub}", label("resource")),
        };
        let key = format!("{} {resource}", label("verb"));
        *counts.entry(key).or_insert(0) += value.parse::<f64>().unwrap_or(0.0) as u64;
    }
    Ok(counts)
}

/// What `after` counts beyond `before`, by verb and resource, largest first.
fn request_delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> Vec<(String, u64)> {
    let mut delta: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect();
    delta.sort_by_key(|d| std::cmp::Reverse(d.1));
    delta
}

/// What the control plane had done when a phase of the bench began, to report what the phase
/// cost it.
struct ControlPlaneMark {
    requests: BTreeMap<String, u64>,
    cpu_seconds: Option<f64>,
}

impl ControlPlaneMark {
    async fn now(client: &kube::Client) -> Result<ControlPlaneMark, BoxError> {
        Ok(ControlPlaneMark {
            requests: api_requests(client).await?,
            cpu_seconds: control_plane_cpu_seconds(),
        })
    }

    /// The control plane's CPU seconds and the API requests since the mark, less the bench's own
    /// `bench_requests`; prints the requests by verb and resource under `heading`.
    async fn since(
        &self,
        client: &kube::Client,
        bench_requests: u64,
        heading: &str,
    ) -> Result<(f64, u64), BoxError> {
        let cpu = control_plane_cpu_seconds()
            .zip(self.cpu_seconds)
            .map_or(f64::NAN, |(after, before)| after - before);
        let delta = request_delta(&self.requests, &api_requests(client).await?);
        let requests = delta
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>()
            .saturating_sub(bench_requests);
        let breakdown: Vec<String> = delta.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        println!("{heading}: {}", breakdown.join(", "));
        Ok((cpu, requests))
    }
}

fn peak_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Installs the SealedSecret CRD the controller under test ships with: Bitnami's own for Bitnami,
/// Signet's (plus its other kinds) for Signet.
async fn install_crds(client: &kube::Client, bitnami: bool) -> Result<(), BoxError> {
    if !bitnami {
        signet_controller::install_crd(client.clone()).await?;
        return Ok(());
    }
    let crd: CustomResourceDefinition = serde_saphyr::from_str(include_str!(
        "../tests/fixtures/bitnami-sealedsecrets-crd.yaml"
    ))?;
    Api::<CustomResourceDefinition>::all(client.clone())
        .patch(
            "sealedsecrets.bitnami.com",
            &PatchParams::apply("bitnami-chart").force(),
            &Patch::Apply(&crd),
        )
        .await?;
    Ok(())
}

/// When every one of `count` objects had a Secret and when every one was `Synced=True`, measured
/// from `start` by watching both kinds.
async fn wait_catch_up(
    client: &kube::Client,
    namespace: &str,
    count: usize,
    start: Instant,
    controller: &mut Controller,
) -> Result<(Duration, Duration), BoxError> {
    // Metadata-only: `Api<PartialObjectMeta<_>>` watches send no Secret data.
    let secrets: Api<PartialObjectMeta<Secret>> = Api::namespaced(client.clone(), namespace);
    let sealed: Api<SealedSecret> = Api::namespaced(client.clone(), namespace);
    let mut secret_events = watcher::watcher(secrets, watcher::Config::default()).boxed();
    let mut sealed_events = watcher::watcher(sealed, watcher::Config::default()).boxed();
    let mut with_secret = HashSet::new();
    let mut synced = HashSet::new();
    let (mut secrets_done, mut synced_done) = (None, None);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while secrets_done.is_none() || synced_done.is_none() {
        tokio::select! {
            event = secret_events.next(), if secrets_done.is_none() => {
                match event.ok_or("the Secret watch ended")?? {
                    watcher::Event::Apply(m) | watcher::Event::InitApply(m) => {
                        with_secret.insert(m.metadata.name.unwrap_or_default());
                    }
                    watcher::Event::Delete(m) => {
                        with_secret.remove(&m.metadata.name.unwrap_or_default());
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
                if with_secret.len() >= count {
                    secrets_done = Some(start.elapsed());
                }
            }
            event = sealed_events.next(), if synced_done.is_none() => {
                match event.ok_or("the SealedSecret watch ended")?? {
                    watcher::Event::Apply(s) | watcher::Event::InitApply(s) => {
                        let name = s.metadata.name.clone().unwrap_or_default();
                        let is_synced = s
                            .status
                            .as_ref()
                            .and_then(|st| st.synced())
                            .is_some_and(|c| c.status == "True");
                        if is_synced {
                            synced.insert(name);
                        } else {
                            synced.remove(&name);
                        }
                    }
                    watcher::Event::Delete(s) => {
                        synced.remove(&s.metadata.name.unwrap_or_default());
                    }
                    watcher::Event::Init | watcher::Event::InitDone => {}
                }
                if synced.len() >= count {
                    synced_done = Some(start.elapsed());
                }
            }
            _ = tick.tick() => controller.check_running()?,
        }
    }
    Ok((
        secrets_done.unwrap_or_default(),
        synced_done.unwrap_or_default(),
    ))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this as a 20-object smoke run.
    let benching = std::env::args().any(|a| a == "--bench");
    let count: usize = std::env::var("SIGNET_BENCH_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if benching { 5000 } else { 20 });
    let which = Which::from_env();
    let label = which.label();
    let server = tokio::task::spawn_blocking(ApiServer::shared).await??;
    let client = server.client().await?;
    install_crds(&client, matches!(which, Which::Bitnami { .. })).await?;
    let keys_ns = server.create_namespace(&client, "benchkeys").await?;
    let app_ns = server.create_namespace(&client, "benchapp").await?;

    let generated =
        signet_seal::generate_sealing_key(4096, signet_seal::cert::DEFAULT_CERT_VALIDITY, "bench")?;
    let cert = signet_seal::SealingCertificate::from_pem(generated.certificate_pem.as_bytes())?;
    let key_secret =
        signet_controller::keyring::active_key_secret(&generated, "sealed-secrets-key");
    Api::<Secret>::namespaced(client.clone(), &keys_ns)
        .create(&PostParams::default(), &key_secret)
        .await?;

    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), &app_ns);
    // The CRD is served once it is established.
    let served = Instant::now();
    while sealed_api.list(&ListParams::default()).await.is_err() {
        if served.elapsed() > Duration::from_secs(60) {
            return Err("the SealedSecret CRD is not served after 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let started = Instant::now();
    let last_applied = std::env::var_os("SIGNET_BENCH_LAST_APPLIED").is_some();
    let objects: Vec<SealedSecret> = (0..count)
        .map(|i| sealed(&cert, &app_ns, &format!("s{i:05}")))
        .map(|object| object.and_then(|o| if last_applied { applied(o) } else { Ok(o) }))
        .collect::<Result<_, _>>()?;
    let created = futures::stream::iter(objects.into_iter().map(|object| {
        let api = sealed_api.clone();
        async move {
            api.create(&PostParams::default(), &object)
                .await
                .map(|_| ())
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    let failures = created.iter().filter(|r| r.is_err()).count();
    println!(
        "[{label}] created {count} SealedSecrets ({failures} failed) in {:.1?}",
        started.elapsed()
    );
    if failures > 0 {
        return Err(format!("{failures} SealedSecrets could not be created").into());
    }

    let mark = ControlPlaneMark::now(&client).await?;
    let start = Instant::now();
    let (mut controller, _) = which.start(server, &client, &keys_ns, &app_ns).await?;
    let (secrets_done, synced_done) =
        wait_catch_up(&client, &app_ns, count, start, &mut controller).await?;
    // The bench's own requests in between: this scrape, and the two watches' lists (their
    // watches are still open, so not counted yet).
    let heading = format!("[{label}] API requests by verb and resource");
    let (control_plane_cpu, requests) = mark.since(&client, 3, &heading).await?;
    let cpu = controller.cpu_seconds().unwrap_or(f64::NAN);
    println!(
        "[{label}] catch-up: all {count} Secrets after {secrets_done:.2?}, all Synced after {synced_done:.2?}; controller CPU {cpu:.1} s, control-plane CPU {control_plane_cpu:.1} s, {requests} API requests"
    );

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &app_ns);
    let mut latencies = Vec::new();
    for i in 0..50 {
        let name = format!("late{i:02}");
        let object = sealed(&cert, &app_ns, &name)?;
        let t = Instant::now();
        sealed_api.create(&PostParams::default(), &object).await?;
        loop {
            if secrets.get_metadata_opt(&name).await?.is_some() {
                break;
            }
            if t.elapsed() > Duration::from_secs(120) {
                return Err(format!("no Secret for {name} after 120 s").into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    println!(
        "[{label}] new SealedSecret -> Secret with {count} others: p50 {p50:.1?}, p99 {p99:.1?}, max {:.1?}",
        latencies[latencies.len() - 1]
    );
    let peak_kib = controller.stop(label).await;
    let restart = if std::env::var("SIGNET_BENCH_RESTART").as_deref() == Ok("0") {
        String::new()
    } else {
        restart_catch_up(
            &which,
            server,
            &client,
            &keys_ns,
            &app_ns,
            count + latencies.len(),
        )
        .await?
    };
    // Both controllers must have adopted the pre-created key rather than generated their own.
    let keys = Api::<Secret>::namespaced(client.clone(), &keys_ns)
        .list_metadata(&ListParams::default().labels(&format!("{SEALING_KEY_LABEL}=active")))
        .await?
        .items
        .len();
    println!("[{label}] sealing-key Secrets at the end: {keys} (1 = the pre-created one, adopted)");
    println!(
        "RESULT controller={label} n={count} secrets_s={:.3} synced_s={:.3} cpu_s={cpu:.1} control_plane_cpu_s={control_plane_cpu:.1} requests={requests} p50_ms={:.1} p99_ms={:.1} peak_rss_kib={peak_kib} key_secrets={keys}{restart}",
        secrets_done.as_secs_f64(),
        synced_done.as_secs_f64(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
    );
    Ok(())
}

/// Starts the controller again with every one of `total` Secrets current and times it until it has
/// looked at every object (its own counter on `/metrics`): the `RESULT` fields of that.
async fn restart_catch_up(
    which: &Which,
    server: &'static ApiServer,
    client: &kube::Client,
    keys_ns: &str,
    app_ns: &str,
    total: usize,
) -> Result<String, BoxError> {
    let label = which.label();
    let mark = ControlPlaneMark::now(client).await?;
    let start = Instant::now();
    let (mut controller, metrics) = which.start(server, client, keys_ns, app_ns).await?;
    let metric = which.looked_at_metric();
    loop {
        controller.check_running()?;
        match scrape(metrics, metric).await {
            Some(looked_at) if looked_at >= total as f64 => break,
            // A name that is wrong (or a controller that never serves it) fails the bench
            // rather than polling for the hour.
            None if start.elapsed() > Duration::from_secs(120) => {
                return Err(
                    format!("no `{}` on {metrics}/metrics after 120 s", metric.trim()).into(),
                );
            }
            _ if start.elapsed() > Duration::from_secs(3600) => {
                return Err(
                    "the restarted controller has not looked at every object after 1 h".into(),
                );
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let done = start.elapsed();
    let cpu = controller.cpu_seconds().unwrap_or(f64::NAN);
    // Less this scrape of the API server's metrics.
    let heading = format!("[{label}] restart: API requests by verb and resource");
    let (control_plane_cpu, requests) = mark.since(client, 1, &heading).await?;
    println!(
        "[{label}] restart catch-up: looked at all {total} after {done:.2?}; controller CPU {cpu:.1} s, control-plane CPU {control_plane_cpu:.1} s, {requests} API requests"
    );
    controller.stop(&format!("{label} restart")).await;
    Ok(format!(
        " restart_s={:.3} restart_cpu_s={cpu:.1} restart_control_plane_cpu_s={control_plane_cpu:.1} restart_requests={requests}",
        done.as_secs_f64()
    ))
}
