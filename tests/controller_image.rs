//! The controller's container image (`scripts/build-image`, `Containerfile`): the archive is a
//! reproducible OCI image that real tools read, the Containerfile declares the same image, and the
//! image runs under runc as the chart's Deployment runs it — the chart's default image reference,
//! its user, a read-only root filesystem, no capabilities, no privilege escalation, in-cluster
//! credentials (a ServiceAccount token, the API server's CA and the namespace mounted where
//! Kubernetes mounts them) under nothing but the chart's RBAC — and becomes ready, serves its
//! sealing certificate and turns a SealedSecret into a Secret. containerd imports it under that
//! reference.
//!
//! Needs runc, umoci, skopeo and containerd (`scripts/bootstrap image-tools`); under `CI=true` a
//! missing one fails the test.

use crate::chart_support as support;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use serde_json::{Value, json};
use signet_controller::SealedSecret;
use signet_testkit::ApiServer;
use signet_tests::poll::eventually;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{apply_rbac, one_of_kind, render_release, repo_root, service_account};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CANARY: &str = "canary-image-7c2f-do-not-leak";

/// Where Kubernetes mounts a Pod's ServiceAccount credentials.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A program the image tests need, or the failure naming its bootstrap step (a panic under
/// `CI=true`).
fn tool(name: &str) -> Result<PathBuf, Box<dyn std::error::Error>> {
    Ok(signet_testkit::peer_path(name)?)
}

/// Runs `program args`, failing with its output when it exits non-zero; returns stdout.
fn run(program: &Path, args: &[&str]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let output = Command::new(program).args(args).output()?;
    if !output.status.success() {
        return Err(format!(
            "{} {args:?} failed ({}):\n{}{}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(output.stdout)
}

fn tar() -> PathBuf {
    PathBuf::from("tar")
}

/// An image archive unpacked into an OCI layout directory, with its index, manifest and config.
struct Layout {
    dir: tempfile::TempDir,
    /// The name index.json gives the image (`io.containerd.image.name`).
    reference: String,
    index: Value,
    config: Value,
    /// The layer's entries: path (no leading `/`) to `tar -tv`'s mode column.
    entries: BTreeMap<String, String>,
    /// The size of the layer's files together.
    file_bytes: u64,
}

impl Layout {
    fn open(archive: &Path) -> Result<Layout, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        run(
            &tar(),
            &[
                "-xf",
                &archive.to_string_lossy(),
                "-C",
                &dir.path().to_string_lossy(),
            ],
        )?;
        let blob = |digest: &str| -> PathBuf {
            dir.path()
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:"))
        };
        let layout: Value = serde_json::from_slice(&std::fs::read(dir.path().join("oci-layout"))?)?;
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        let index: Value = serde_json::from_slice(&std::fs::read(dir.path().join("index.json"))?)?;
        let manifests = index["manifests"].as_array().ok_or("no manifests")?;
        assert_eq!(manifests.len(), 1, "{index}");
        let descriptor = &manifests[0];
        let reference = descriptor["annotations"]["io.containerd.image.name"]
            .as_str()
            .ok_or("no io.containerd.image.name")?
            .to_owned();
        assert_eq!(
            descriptor["annotations"]["org.opencontainers.image.ref.name"], reference,
            "both names are the full reference"
        );
        let manifest: Value = serde_json::from_slice(&std::fs::read(blob(
            descriptor["digest"].as_str().ok_or("no digest")?,
        ))?)?;
        let config: Value = serde_json::from_slice(&std::fs::read(blob(
            manifest["config"]["digest"].as_str().ok_or("no config")?,
        ))?)?;
        let layers = manifest["layers"].as_array().ok_or("no layers")?;
        assert_eq!(layers.len(), 1, "{manifest}");
        let layer = blob(layers[0]["digest"].as_str().ok_or("no layer digest")?);
        let listing = String::from_utf8(run(
            &tar(),
            &["--numeric-owner", "-tvzf", &layer.to_string_lossy()],
        )?)?;
        let mut entries = BTreeMap::new();
        let mut file_bytes = 0;
        for line in listing.lines() {
            // mode owner/group size date time name
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [mode, owner, size, .., name] = fields[..] else {
                return Err(format!("tar -tv line: {line}").into());
            };
            // Root owns everything, so the user the image runs as can change nothing.
            assert_eq!(owner, "0/0", "{line}");
            if mode.starts_with('-') {
                file_bytes += size.parse::<u64>()?;
            }
            entries.insert(name.trim_end_matches('/').to_owned(), mode.to_owned());
        }
        Ok(Layout {
            dir,
            reference,
            index,
            config,
            entries,
            file_bytes,
        })
    }

    /// The files (not directories) in the layer, as absolute paths.
    fn files(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, mode)| mode.starts_with('-'))
            .map(|(name, _)| format!("/{name}"))
            .collect()
    }
}

#[test]
fn oci_image_is_reproducible_and_read_by_skopeo_and_umoci() -> TestResult {
    let skopeo = tool("skopeo")?;
    let umoci = tool("umoci")?;
    let dir = tempfile::tempdir()?;
    let program = dir.path().join("hello");
    std::fs::write(&program, "#!/bin/sh\necho hello\n")?;
    let data = dir.path().join("data");
    std::fs::write(&data, "some data\n")?;
    let build = |out: &str, reversed: bool| -> Result<PathBuf, Box<dyn std::error::Error>> {
        let out = dir.path().join(out);
        let mut contents = vec![
            format!("--file={}=/bin/hello:0755", program.display()),
            format!("--file={}=/etc/app/data", data.display()),
            "--dir=/tmp:1777".to_owned(),
        ];
        if reversed {
            contents.reverse();
        }
        let status = Command::new(repo_root().join("scripts/oci-image"))
            .arg(&out)
            .args(["--ref", "pause:3.10", "--entrypoint", "/bin/hello,-v"])
            .args(["--user", "65532:65532", "--env", "A=1", "--env", "B=x=y"])
            .args(["--label", "org.opencontainers.image.title=t"])
            .args(&contents)
            .args(["--workdir", "/srv"])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .status()?;
        assert!(status.success(), "oci-image failed");
        Ok(out)
    };
    let first = build("first.tar", false)?;
    // Another time, owner, mode (but the executable bit) and order of the sources change no byte.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&data, "some data\n")?;
    std::os::unix::fs::chown(&data, Some(1234), Some(1234))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o600))?;
    }
    let second = build("second.tar", true)?;
    assert!(
        std::fs::read(&first)? == std::fs::read(&second)?,
        "two builds of the same image differ"
    );

    let layout = Layout::open(&first)?;
    assert_eq!(layout.reference, "docker.io/library/pause:3.10");
    assert_eq!(
        layout.index["manifests"][0]["platform"],
        json!({"architecture": "amd64", "os": "linux"})
    );
    let config = &layout.config;
    assert_eq!(
        (&config["os"], &config["architecture"]),
        (&json!("linux"), &json!("amd64"))
    );
    assert_eq!(config["config"]["Entrypoint"], json!(["/bin/hello", "-v"]));
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(config["config"]["Env"], json!(["A=1", "B=x=y"]));
    assert_eq!(config["config"]["WorkingDir"], "/srv");
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.title"],
        "t"
    );
    let expected: BTreeMap<String, String> = [
        ("bin", "drwxr-xr-x"),
        ("bin/hello", "-rwxr-xr-x"),
        ("etc", "drwxr-xr-x"),
        ("etc/app", "drwxr-xr-x"),
        ("etc/app/data", "-rw-r--r--"),
        ("tmp", "drwxrwxrwt"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(layout.entries, expected);
    // The archive's own entries: root-owned, dated SOURCE_DATE_EPOCH.
    let owners = Command::new(tar())
        .args(["--numeric-owner", "-tvf"])
        .arg(&first)
        .env("TZ", "UTC")
        .output()?;
    assert!(owners.status.success());
    for line in String::from_utf8(owners.stdout)?.lines() {
        assert!(line.contains(" 0/0 "), "owner of {line}");
        assert!(line.contains("2023-11-14 22:13"), "time of {line}");
    }

    // Real OCI tools read it: skopeo (containers/image, as podman) and umoci.
    let inspected: Value = serde_json::from_slice(&run(
        &skopeo,
        &[
            "inspect",
            "--config",
            &format!("oci-archive:{}", first.display()),
        ],
    )?)?;
    assert_eq!(
        inspected["config"]["Entrypoint"],
        json!(["/bin/hello", "-v"])
    );
    let tags = run(
        &umoci,
        &["ls", "--layout", &layout.dir.path().to_string_lossy()],
    )?;
    assert_eq!(
        String::from_utf8(tags)?.trim(),
        "docker.io/library/pause:3.10"
    );

    // Bad input is refused before anything is written.
    for bad in [
        vec!["--ref", "Upper/Case:1"],
        vec!["--ref", "no-tag"],
        vec!["--ref", "x:1", "--file", "/nonexistent=/x"],
        vec!["--ref", "x:1", "--dir", "relative"],
        vec!["--ref", "x:1", "--dir", "/a/../b"],
        vec!["--ref", "x:1", "--user", "nobody"],
    ] {
        let out = dir.path().join("bad.tar");
        let output = Command::new(repo_root().join("scripts/oci-image"))
            .arg(&out)
            .args(&bad)
            .output()?;
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        assert!(!out.exists(), "{bad:?} wrote an archive");
    }
    Ok(())
}

/// A containerd of its own (socket, root and state in a temporary directory), stopped on drop.
struct Containerd {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Containerd {
    fn start() -> Result<Containerd, Box<dyn std::error::Error>> {
        let containerd = tool("containerd")?;
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("containerd.sock");
        let config = dir.path().join("config.toml");
        // Images only: no CRI plugin (it would want cgroups and CNI), nothing listening on TCP.
        std::fs::write(
            &config,
            "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
        )?;
        let child = Command::new(containerd)
            .arg("--config")
            .arg(&config)
            .arg("--address")
            .arg(&socket)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--state")
            .arg(dir.path().join("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("containerd.log"))?)
            .spawn()?;
        let mut started = Containerd {
            child,
            socket,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while started.ctr(&["version"]).is_err() {
            if let Some(exit) = started.child.try_wait()? {
                let log = std::fs::read_to_string(started._dir.path().join("containerd.log"))?;
                return Err(format!("containerd exited ({exit}):\n{log}").into());
            }
            if Instant::now() > deadline {
                return Err("containerd did not answer within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(started)
    }

    /// `ctr --address SOCKET -n k8s.io ARGS` (the namespace the kubelet's images live in).
    fn ctr(&self, args: &[&str]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let socket = self.socket.to_string_lossy();
        let mut all = vec!["--address", &socket, "-n", "k8s.io"];
        all.extend_from_slice(args);
        run(&tool("ctr")?, &all)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// containerd imports the archive under the chart's default image reference, which names no
/// public registry (`localhost/`), so a node without the image can never pull someone else's.
#[test]
fn containerd_imports_the_image_under_the_charts_default_reference() -> TestResult {
    let archive = signet_tests::image::controller_archive();
    let values = std::fs::read_to_string(repo_root().join("charts/signet/values.yaml"))?;
    let repository = values
        .lines()
        .skip_while(|l| *l != "image:")
        .find_map(|l| l.trim().strip_prefix("repository:"))
        .map(str::trim)
        .ok_or("no image.repository in values.yaml")?;
    assert!(repository.starts_with("localhost/"), "{repository}");
    let layout = Layout::open(&archive)?;
    assert!(layout.reference.starts_with(&format!("{repository}:")));

    let containerd = Containerd::start()?;
    containerd.ctr(&["images", "import", &archive.to_string_lossy()])?;
    let listed = String::from_utf8(containerd.ctr(&["images", "ls", "--quiet"])?)?;
    assert!(
        listed.lines().any(|l| l == layout.reference),
        "{} not among the imported images:\n{listed}",
        layout.reference
    );
    // Every blob arrived and the layer unpacked into a snapshot.
    let check = String::from_utf8(containerd.ctr(&["images", "check"])?)?;
    let line = check
        .lines()
        .find(|l| l.starts_with(&layout.reference))
        .ok_or("the image is not checked")?;
    assert!(
        line.contains("complete") && line.trim_end().ends_with("true"),
        "{line}"
    );
    Ok(())
}

/// `KEY=VALUE` or `KEY="VALUE"` pairs of a Containerfile `LABEL` instruction.
fn label_pairs(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
            }
            None => after.split_once(char::is_whitespace).unwrap_or((after, "")),
        };
        pairs.push((key.trim().to_owned(), value.to_owned()));
        rest = next.trim();
    }
    pairs
}

/// The final stage of `Containerfile`: its instructions (continuation lines joined, comments
/// dropped) after the last `FROM`, as (INSTRUCTION, arguments).
fn containerfile_final_stage() -> Result<Vec<(String, String)>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(repo_root().join("Containerfile"))?;
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let (op, args) = current.split_once(' ').unwrap_or((&current, ""));
                instructions.push((op.to_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    let last_from = instructions
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .ok_or("no FROM")?;
    Ok(instructions.split_off(last_from))
}

/// The Containerfile declares the image `scripts/build-image` writes: the same base (nothing),
/// user, entrypoint, labels (version defaulting to the chart's appVersion) and files.
#[test]
fn containerfile_declares_what_build_image_writes() -> TestResult {
    let archive = signet_tests::image::controller_archive();
    let layout = Layout::open(&archive)?;
    let stage = containerfile_final_stage()?;
    let args = |op: &str| -> Vec<&str> {
        stage
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    assert_eq!(args("FROM"), ["scratch"], "the runtime stage starts empty");
    let image = &layout.config["config"];
    assert_eq!(args("USER"), [image["User"].as_str().ok_or("no User")?]);
    let entrypoint: Value =
        serde_json::from_str(args("ENTRYPOINT").first().ok_or("no ENTRYPOINT")?)?;
    assert_eq!(entrypoint, image["Entrypoint"]);
    assert!(args("RUN").is_empty() && args("CMD").is_empty() && args("ENV").is_empty());

    // ARG defaults, then the labels with them substituted.
    let defaults: BTreeMap<&str, &str> = args("ARG")
        .iter()
        .filter_map(|a| a.split_once('='))
        .collect();
    let mut declared = BTreeMap::new();
    for label in args("LABEL") {
        for (key, value) in label_pairs(label) {
            let value = defaults.iter().fold(value, |v, (arg, default)| {
                v.replace(&format!("${{{arg}}}"), default)
            });
            declared.insert(key, value);
        }
    }
    let mut written: BTreeMap<String, String> = serde_json::from_value(image["Labels"].clone())?;
    // The revision is the commit: a build argument for docker, `git rev-parse` for the script.
    assert_eq!(
        declared
            .remove("org.opencontainers.image.revision")
            .as_deref(),
        Some("unknown")
    );
    let revision = written
        .remove("org.opencontainers.image.revision")
        .ok_or("no revision label")?;
    assert_eq!(revision.len(), 40, "a commit id: {revision}");
    assert_eq!(declared, written);
    let app_version = std::fs::read_to_string(repo_root().join("charts/signet/Chart.yaml"))?
        .lines()
        .find_map(|l| l.strip_prefix("appVersion:"))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .ok_or("no appVersion")?;
    assert_eq!(written["org.opencontainers.image.version"], app_version);
    for key in ["title", "description", "source", "licenses"] {
        assert!(
            written.contains_key(&format!("org.opencontainers.image.{key}")),
            "label {key}"
        );
    }

    // COPY --from=build SRC DST: the destinations are exactly the image's files.
    let mut copied: Vec<String> = args("COPY")
        .iter()
        .map(|a| a.split_whitespace().last().unwrap_or_default().to_owned())
        .collect();
    copied.sort();
    assert_eq!(copied, layout.files());
    assert_eq!(
        layout.entries["usr/local/bin/signet-controller"], "-rwxr-xr-x",
        "the binary: not writable by the user it runs as"
    );
    // The size budget (issue 13: under 30 MB): a dynamic, unstripped or debug build is over it.
    assert!(
        layout.file_bytes < 30_000_000,
        "the image's files take {} bytes",
        layout.file_bytes
    );
    Ok(())
}

/// A runc container, killed and deleted (with its bundle and runc state) however the test ends.
struct Container {
    runc: PathBuf,
    /// runc's private state directory (`--root`), so no other runc user is touched.
    state: PathBuf,
    id: String,
    child: Child,
    /// Holds the bundle and the state; removed after the container is deleted.
    _dir: tempfile::TempDir,
}

impl Container {
    fn runc(&self, args: &[&str]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let mut all = vec!["--root", self.state.to_str().ok_or("state path")?];
        all.extend_from_slice(args);
        run(&self.runc, &all)
    }

    /// The container's init process, as runc reports it.
    fn pid(&self) -> Result<u32, Box<dyn std::error::Error>> {
        let state: Value = serde_json::from_slice(&self.runc(&["state", &self.id])?)?;
        Ok(u32::try_from(state["pid"].as_u64().ok_or("no pid")?)?)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.runc(&["kill", &self.id, "KILL"]);
        let _ = self.child.wait();
        let _ = self.runc(&["delete", "--force", &self.id]);
    }
}

/// The value of `field` (`Uid:`, `CapEff:`, …) in `/proc/<pid>/status`.
fn proc_status(pid: u32, field: &str) -> Result<String, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" "))
}

/// `NNNMi` as bytes.
fn mebibytes(quantity: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let n: u64 = quantity
        .strip_suffix("Mi")
        .ok_or_else(|| format!("{quantity}: not NNNMi"))?
        .parse()?;
    Ok(n << 20)
}

/// The rendered container's environment with the Downward API values a kubelet would fill in.
fn pod_environment(
    container: &Value,
    pod_name: &str,
    namespace: &str,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut env = Vec::new();
    for var in container["env"].as_array().ok_or("no env")? {
        let name = var["name"].as_str().ok_or("unnamed variable")?;
        let value = if let Some(value) = var["value"].as_str() {
            value.to_owned()
        } else {
            match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => pod_name.to_owned(),
                Some("metadata.namespace") => namespace.to_owned(),
                _ => return Err(format!("{name}: a source this test does not fill: {var}").into()),
            }
        };
        env.push(format!("{name}={value}"));
    }
    Ok(env)
}

/// The image, unpacked by umoci into a runtime bundle and run by runc as the chart's default
/// Deployment runs it (its environment, user, securityContext, /tmp and memory limit), with the
/// ServiceAccount token, the API server's CA and the namespace in Kubernetes' mount path and
/// `KUBERNETES_SERVICE_HOST/PORT` pointing at the API server, under nothing but the chart's RBAC.
/// Host network, so the test reaches its ports on 127.0.0.1.
#[tokio::test]
async fn the_image_runs_in_cluster_style_under_the_chart_defaults() -> TestResult {
    let runc = tool("runc")?;
    let umoci = tool("umoci")?;
    let kubeseal = tool("kubeseal")?;
    let archive = tokio::task::spawn_blocking(signet_tests::image::controller_archive).await?;
    let layout = Layout::open(&archive)?;
    // Not the shared server: the chart's default controller watches every namespace and would
    // reconcile (and fail to unseal) the objects of every other suite.
    let server = tokio::task::spawn_blocking(ApiServer::start).await??;
    let admin = server.client().await?;
    signet_controller::install_crd(admin.clone()).await?;
    let release_ns = server.create_namespace(&admin, "sigimage").await?;
    let app_ns = server.create_namespace(&admin, "sigimageapp").await?;

    // The chart with its default values: it names the image this archive holds.
    let objects = render_release(&release_ns, Vec::new()).await?;
    let deployment = one_of_kind(&objects, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"], layout.reference,
        "the chart's default image"
    );
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    let security_id = |field: &str| -> Result<u32, Box<dyn std::error::Error>> {
        let value = pod["securityContext"][field].as_u64();
        Ok(u32::try_from(value.ok_or_else(|| format!("no {field}"))?)?)
    };
    let (uid, gid) = (security_id("runAsUser")?, security_id("runAsGroup")?);
    let user = format!("{uid}:{gid}");
    assert_eq!(
        layout.config["config"]["User"],
        user.as_str(),
        "the image runs as the chart's user"
    );
    let tmp_volume = pod["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "tmp"))
        .ok_or("no tmp volume")?;
    let tmp_size = mebibytes(
        tmp_volume["emptyDir"]["sizeLimit"]
            .as_str()
            .ok_or("no sizeLimit")?,
    )?;
    let memory_limit = mebibytes(
        container["resources"]["limits"]["memory"]
            .as_str()
            .ok_or("no memory limit")?,
    )?;

    // The chart's RBAC, and the credentials a kubelet would mount for its ServiceAccount.
    apply_rbac(&admin, &objects).await?;
    let account = service_account(&objects)?;
    let token = server
        .service_account_token(&admin, &release_ns, &account)
        .await?;
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig_path())?;
    let cluster = kubeconfig
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .ok_or("no cluster in the kubeconfig")?;
    let ca = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(data)?
        }
        (None, Some(path)) => std::fs::read(path)?,
        _ => return Err("no CA in the kubeconfig".into()),
    };
    // In-cluster clients reach https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.
    let server_url = cluster.server.as_deref().ok_or("no server")?;
    let api_port: u16 = server_url
        .strip_prefix("https://127.0.0.1:")
        .ok_or_else(|| format!("the API server is not at https://127.0.0.1:PORT: {server_url}"))?
        .trim_end_matches('/')
        .parse()?;

    let dir = tempfile::tempdir()?;
    let credentials = dir.path().join("serviceaccount");
    std::fs::create_dir(&credentials)?;
    for (name, content) in [
        ("token", token.as_bytes()),
        ("ca.crt", ca.as_slice()),
        ("namespace", release_ns.as_bytes()),
    ] {
        let path = credentials.join(name);
        std::fs::write(&path, content)?;
        // Readable by the container's user only, as a kubelet's fsGroup-owned projection.
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))?;
    }

    // umoci turns the image into a bundle: rootfs plus a runtime config from the image's config
    // (user, entrypoint); the rest is the chart's Deployment.
    let bundle = dir.path().join("bundle");
    run(
        &umoci,
        &[
            "unpack",
            "--image",
            &format!("{}:{}", layout.dir.path().display(), layout.reference),
            &bundle.to_string_lossy(),
        ],
    )?;
    let mut spec: Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)?;
    let http_port = signet_testkit::free_port()?;
    let metrics_port = signet_testkit::free_port()?;
    let pod_name = format!("{account}-image-test");
    let mut env: Vec<String> = pod_environment(container, &pod_name, &release_ns)?
        .into_iter()
        .filter(|v| !v.starts_with("SIGNET_LISTEN_ADDR=") && !v.starts_with("SIGNET_METRICS_ADDR="))
        .collect();
    env.extend([
        // Host network: the pod's 0.0.0.0:8080 would be the host's.
        format!("SIGNET_LISTEN_ADDR=127.0.0.1:{http_port}"),
        format!("SIGNET_METRICS_ADDR=127.0.0.1:{metrics_port}"),
        "KUBERNETES_SERVICE_HOST=127.0.0.1".to_owned(),
        format!("KUBERNETES_SERVICE_PORT={api_port}"),
    ]);
    let process = &mut spec["process"];
    assert_eq!(process["user"]["uid"], pod["securityContext"]["runAsUser"]);
    assert_eq!(process["user"]["gid"], pod["securityContext"]["runAsGroup"]);
    assert_eq!(process["args"], layout.config["config"]["Entrypoint"]);
    if let Some(args) = container["args"].as_array() {
        process["args"]
            .as_array_mut()
            .ok_or("no args")?
            .extend(args.iter().cloned());
    }
    process["terminal"] = json!(false);
    process["env"]
        .as_array_mut()
        .ok_or("no env")?
        .extend(env.into_iter().map(Value::from));
    // capabilities.drop: [ALL]; allowPrivilegeEscalation: false.
    process["capabilities"] = json!({
        "bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []
    });
    process["noNewPrivileges"] = json!(true);
    spec["root"]["readonly"] = json!(true);
    let mounts = spec["mounts"].as_array_mut().ok_or("no mounts")?;
    mounts.push(json!({
        "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "mode=1777", format!("size={tmp_size}")]
    }));
    mounts.push(json!({
        "destination": SERVICE_ACCOUNT_DIR, "type": "bind",
        "source": credentials, "options": ["rbind", "ro"]
    }));
    let linux = &mut spec["linux"];
    let namespaces = linux["namespaces"].as_array_mut().ok_or("no namespaces")?;
    namespaces.retain(|n| n["type"] != "network");
    let id = signet_testkit::unique_name("signet-image");
    linux["cgroupsPath"] = json!(format!("/{id}"));
    linux["resources"]["memory"] = json!({ "limit": memory_limit });
    std::fs::write(bundle.join("config.json"), serde_json::to_vec(&spec)?)?;

    let state = dir.path().join("runc");
    std::fs::create_dir(&state)?;
    let log_path = dir.path().join("controller.log");
    let child = Command::new(&runc)
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log_path)?)
        .stderr(std::fs::File::create(dir.path().join("runc.log"))?)
        .spawn()?;
    let mut container = Container {
        runc,
        state,
        id,
        child,
        _dir: dir,
    };
    let log = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    let base = format!("http://127.0.0.1:{http_port}");

    // Ready: it read its in-cluster credentials, generated a sealing key and holds its caches.
    // RSA-4096 generation can take a while on a busy machine; a container that exits fails at once.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        let exited = container.child.try_wait()?;
        if exited.is_some() || Instant::now() > deadline {
            let runc_log = log(&container._dir.path().join("runc.log"));
            let what = exited.map_or("not ready within 120 s".to_owned(), |e| {
                format!("exited ({e})")
            });
            return Err(format!(
                "the image's controller {what}\ncontroller log:\n{}\nrunc:\n{runc_log}",
                log(&log_path)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // It runs as the chart's user with no capabilities and no way to gain privileges.
    let pid = container.pid()?;
    assert_eq!(
        proc_status(pid, "Uid:")?,
        format!("{uid} {uid} {uid} {uid}")
    );
    assert_eq!(
        proc_status(pid, "Gid:")?,
        format!("{gid} {gid} {gid} {gid}")
    );
    assert_eq!(proc_status(pid, "CapEff:")?, "0000000000000000");
    assert_eq!(proc_status(pid, "CapBnd:")?, "0000000000000000");
    assert_eq!(proc_status(pid, "NoNewPrivs:")?, "1");

    let cert = reqwest::get(format!("{base}/v1/cert.pem"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    let parsed = signet_seal::SealingCertificate::from_pem(cert.as_bytes())?;
    assert_eq!(parsed.key_size_bits(), 4096);

    // Upstream kubeseal seals to that certificate; the controller in the image opens it.
    let manifest = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "from-image", "namespace": app_ns},
        "stringData": {"password": CANARY},
    });
    let mut seal = Command::new(kubeseal)
        .args(["--cert", &format!("{base}/v1/cert.pem"), "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = seal.stdin.take() {
        use std::io::Write;
        stdin.write_all(manifest.to_string().as_bytes())?;
    }
    let output = tokio::task::spawn_blocking(move || seal.wait_with_output()).await??;
    assert!(output.status.success(), "kubeseal failed");
    let sealed: SealedSecret = serde_json::from_slice(&output.stdout)?;
    Api::<SealedSecret>::namespaced(admin.clone(), &app_ns)
        .create(&PostParams::default(), &sealed)
        .await?;
    let secrets = Api::<Secret>::namespaced(admin.clone(), &app_ns);
    let secret = eventually(
        "the Secret from the image",
        Duration::from_secs(60),
        || async { secrets.get_opt("from-image").await.ok().flatten() },
    )
    .await
    .map_err(|e| format!("{e}\ncontroller log:\n{}", log(&log_path)))?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .ok_or("no password")?;
    assert_eq!(value.0, CANARY.as_bytes());

    // SIGTERM (what a kubelet sends) stops it cleanly.
    container.runc(&["kill", &container.id, "TERM"])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = container.child.try_wait()? {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the container did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "exit status {exit:?}\n{}", log(&log_path));
    let log = log(&log_path);
    assert!(!log.contains(CANARY), "secret value in the log");
    assert!(!log.contains(&token), "the ServiceAccount token in the log");
    for line in log.lines() {
        serde_json::from_str::<Value>(line)
            .map_err(|e| format!("log line is not JSON ({e}): {line}"))?;
    }
    drop(container);
    Ok(())
}
