//! Runs a runbook of `docs/runbooks/` the way a reader follows it: its fenced ```` ```sh ```` blocks,
//! in order, in ONE bash session (`set -euo pipefail`), so variables and the working directory carry
//! from one block to the next exactly as in a terminal.
//!
//! Fences: ```` ```sh ```` runs; ```` ```sh cluster-connect ```` (connecting a terminal to a real
//! cluster: `kubectl port-forward`) is not run — the test provides the same environment variables
//! and checks that the block exports nothing else; every other info string (`text`, `yaml`, …) is
//! illustrative. The session reads its script from a FIFO, so the test can stop between two blocks
//! (start a controller, look at the cluster) and go on.

use signet_tests::sandbox::{Sandbox, peer, signet_bin};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One fenced block of a runbook.
#[derive(Debug, Clone)]
pub struct Block {
    /// Line of the opening fence (1-based), for messages.
    pub line: usize,
    /// The info string after the backticks (`sh`, `sh cluster-connect`, `yaml`, …).
    pub info: String,
    /// The lines between the fences.
    pub body: String,
}

impl Block {
    /// Whether the test runs this block: plain ```` ```sh ````, or ```` ```sh variant=NAME ```` when
    /// the session follows that variant.
    pub fn runs(&self, variant: Option<&str>) -> bool {
        let words: Vec<_> = self.info.split_whitespace().collect();
        match words.as_slice() {
            ["sh"] => true,
            ["sh", other] => other
                .strip_prefix("variant=")
                .is_some_and(|name| Some(name) == variant),
            _ => false,
        }
    }

    /// The variant this block belongs to (```` ```sh variant=NAME ````), if any.
    pub fn variant(&self) -> Option<&str> {
        self.info
            .split_whitespace()
            .find_map(|w| w.strip_prefix("variant="))
    }

    /// Whether this block connects a terminal to a cluster (not run; the test provides it).
    pub fn connects_to_cluster(&self) -> bool {
        let words: Vec<_> = self.info.split_whitespace().collect();
        words.first() == Some(&"sh") && words.contains(&"cluster-connect")
    }

    /// The names this block `export`s.
    pub fn exported_names(&self) -> Vec<String> {
        self.body
            .lines()
            .filter_map(|l| l.trim().strip_prefix("export "))
            .filter_map(|rest| rest.split('=').next())
            .map(|name| name.trim().to_owned())
            .collect()
    }
}

/// A runbook file: its name and its fenced blocks.
#[derive(Debug)]
pub struct Runbook {
    /// File name inside `docs/runbooks/`.
    pub name: String,
    /// Every fenced block, in order.
    pub blocks: Vec<Block>,
}

/// `docs/runbooks/` of this checkout.
pub fn runbooks_dir() -> PathBuf {
    signet_tests::sandbox::workspace_root().join("docs/runbooks")
}

impl Runbook {
    /// Reads and splits `docs/runbooks/<name>`.
    pub fn load(name: &str) -> Runbook {
        let path = runbooks_dir().join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Runbook {
            name: name.to_owned(),
            blocks: fenced_blocks(&text),
        }
    }

    /// The blocks the test runs when following `variant`.
    pub fn runnable(&self, variant: Option<&str>) -> Vec<&Block> {
        self.blocks.iter().filter(|b| b.runs(variant)).collect()
    }

    /// The variants the runbook offers (```` ```sh variant=NAME ```` blocks), sorted.
    pub fn variants(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .blocks
            .iter()
            .filter_map(|b| b.variant().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Splits Markdown into its fenced (```) blocks.
pub fn fenced_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((index + 1, info.trim().to_owned(), String::new()));
                }
            }
            Some((start, info, mut body)) => {
                if trimmed.trim_end() == "```" {
                    blocks.push(Block {
                        line: start,
                        info,
                        body,
                    });
                } else {
                    body.push_str(line);
                    body.push('\n');
                    open = Some((start, info, body));
                }
            }
        }
    }
    assert!(open.is_none(), "unclosed code fence");
    blocks
}

/// A directory holding `signet`, `sops`, `kubeseal`, `age`, `age-keygen` (and `kubectl`, `helm`
/// when asked), to put first on the session's PATH.
fn tool_dir(sandbox: &Sandbox, cluster_tools: bool) -> PathBuf {
    let dir = sandbox.join(".runbook-bin");
    if dir.join("signet").exists() {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("tool dir");
    let mut tools: Vec<(&str, PathBuf)> = vec![
        ("signet", signet_bin().to_path_buf()),
        ("sops", peer("sops")),
        ("kubeseal", peer("kubeseal")),
        ("age", peer("age")),
        ("age-keygen", peer("age-keygen")),
    ];
    if cluster_tools {
        tools.push(("kubectl", peer("kubectl")));
        tools.push(("helm", peer("helm")));
    }
    for (name, target) in tools {
        std::os::unix::fs::symlink(&target, dir.join(name))
            .unwrap_or_else(|e| panic!("linking {name}: {e}"));
    }
    dir
}

/// One bash session fed block by block.
pub struct Session {
    child: Child,
    script: Option<std::fs::File>,
    log: PathBuf,
    done: PathBuf,
    ran: usize,
    runbook: String,
    /// The runbook's blocks and the index of the next one to handle.
    blocks: Vec<Block>,
    cursor: usize,
    /// Which `variant=` blocks to run (the others are the paths not taken).
    variant: Option<String>,
}

impl Session {
    /// Starts bash in the sandbox with the sandbox's environment, `extra_env`, and PATH holding the
    /// fresh `signet` and the upstream peers (plus kubectl and helm when `cluster_tools`).
    pub fn start(
        sandbox: &Sandbox,
        runbook: &Runbook,
        extra_env: &[(String, String)],
        cluster_tools: bool,
    ) -> Session {
        let tools = tool_dir(sandbox, cluster_tools);
        let control = sandbox.join(".runbook-session");
        std::fs::create_dir_all(&control).expect("session dir");
        let fifo = control.join("script");
        let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(status.success(), "mkfifo failed");
        let log = control.join("output.log");
        let done = control.join("done");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", tools.display());
        let mut cmd = sandbox.command("bash");
        cmd.args(["--noprofile", "--norc", "-euo", "pipefail"])
            .arg(&fifo)
            .env("PATH", path)
            .envs(extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().expect("spawning bash");
        // Opening the FIFO for writing waits for bash to open it for reading.
        let script = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .expect("opening the session FIFO");
        Session {
            child,
            script: Some(script),
            log,
            done,
            ran: 0,
            runbook: runbook.name.clone(),
            blocks: runbook.blocks.clone(),
            cursor: 0,
            variant: None,
        }
    }

    /// Follows `variant` at the runbook's `sh variant=…` blocks (it must be one the runbook offers).
    pub fn follow_variant(&mut self, variant: &str) {
        assert!(
            self.blocks.iter().any(|b| b.variant() == Some(variant)),
            "{} has no variant {variant}",
            self.runbook
        );
        self.variant = Some(variant.to_owned());
    }

    /// What the session printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs one block and waits for it; panics with the session output when it fails.
    pub fn run(&mut self, block: &Block) {
        self.ran += 1;
        let marker = format!("block-{}-done", self.ran);
        let text = format!(
            "# ---- docs/runbooks/{} line {}\n{}\necho {marker} >> {}\n",
            self.runbook,
            block.line,
            block.body,
            shell_quote(&self.done)
        );
        let script = self.script.as_mut().expect("session open");
        script
            .write_all(text.as_bytes())
            .and_then(|()| script.flush())
            .unwrap_or_else(|e| {
                panic!(
                    "{} line {}: the session ended ({e})\n{}",
                    self.runbook,
                    block.line,
                    self.output()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let done = std::fs::read_to_string(&self.done).unwrap_or_default();
            if done.lines().any(|l| l == marker) {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("waiting for bash") {
                panic!(
                    "docs/runbooks/{} block at line {} failed ({status}):\n{}\n--- session output:\n{}",
                    self.runbook,
                    block.line,
                    block.body,
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "docs/runbooks/{} block at line {} did not finish in 10 minutes\n{}",
                self.runbook,
                block.line,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `block` when the session's variant says so; a variant block in a session that follows
    /// none is an error (the test must choose).
    fn handle(&mut self, block: &Block) {
        assert!(
            block.variant().is_none() || self.variant.is_some(),
            "{} line {}: a variant block in a session that follows no variant",
            self.runbook,
            block.line
        );
        if block.runs(self.variant.as_deref()) {
            self.run(block);
        }
    }

    /// Runs the runbook's blocks from where the session stands up to the first block containing
    /// `needle` — that one included when `include`. Panics at a `cluster-connect` block (the test
    /// must [`Session::connect`] there) and when no later block contains `needle`.
    pub fn advance_to(&mut self, needle: &str, include: bool) {
        let target = self.blocks[self.cursor..]
            .iter()
            .position(|b| b.body.contains(needle))
            .map(|offset| self.cursor + offset)
            .unwrap_or_else(|| panic!("{}: no block after here contains {needle:?}", self.runbook));
        let end = if include { target + 1 } else { target };
        while self.cursor < end {
            let block = self.blocks[self.cursor].clone();
            assert!(
                !block.connects_to_cluster(),
                "{} line {}: a cluster-connect block the test did not handle",
                self.runbook,
                block.line
            );
            self.handle(&block);
            self.cursor += 1;
        }
    }

    /// Runs the rest of the runbook.
    pub fn run_rest(&mut self) {
        while self.cursor < self.blocks.len() {
            let block = self.blocks[self.cursor].clone();
            assert!(
                !block.connects_to_cluster(),
                "{} line {}: a cluster-connect block the test did not handle",
                self.runbook,
                block.line
            );
            self.handle(&block);
            self.cursor += 1;
        }
    }

    /// Handles the next `cluster-connect` block (runnable blocks before it are run first): instead of
    /// its `kubectl port-forward`, exports `env`, which must cover every name the block exports.
    pub fn connect(&mut self, env: &[(String, String)]) {
        while !self.blocks[self.cursor].connects_to_cluster() {
            let block = self.blocks[self.cursor].clone();
            self.handle(&block);
            self.cursor += 1;
            assert!(
                self.cursor < self.blocks.len(),
                "{}: no cluster-connect block left",
                self.runbook
            );
        }
        let block = self.blocks[self.cursor].clone();
        for name in block.exported_names() {
            assert!(
                env.iter().any(|(k, _)| *k == name),
                "{} line {}: the block exports {name}, which the test does not provide",
                self.runbook,
                block.line
            );
        }
        let exports: String = env
            .iter()
            .map(|(k, v)| format!("export {k}={}\n", shell_quote(Path::new(v))))
            .collect();
        self.run(&Block {
            line: block.line,
            info: "sh".to_owned(),
            body: exports,
        });
        self.cursor += 1;
    }

    /// Ends the session (EOF on the script) and waits for bash to exit 0.
    pub fn finish(mut self) -> String {
        drop(self.script.take());
        let status = self.child.wait().expect("waiting for bash");
        let output = self.output();
        assert!(status.success(), "session exited {status}\n{output}");
        output
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.script.take());
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Single-quotes a path for bash.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Runs a fixture `script` (what a test stands in for the reader's starting point, not part of a
/// runbook) with bash in the sandbox, with the same PATH as a session; panics with its output on
/// failure.
pub fn run_fixture(sandbox: &Sandbox, env: &[(String, String)], script: &str) -> String {
    let tools = sandbox.join(".runbook-bin");
    if !tools.exists() {
        tool_dir(sandbox, true);
    }
    let output = sandbox
        .command("bash")
        .args(["--noprofile", "--norc", "-euo", "pipefail", "-c", script])
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", tools.display()),
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("running the fixture script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "fixture failed:\n{text}");
    text
}

/// Runs every runnable block of `runbook` in one session and returns the output.
pub fn run_all(sandbox: &Sandbox, runbook: &Runbook, extra_env: &[(String, String)]) -> String {
    assert!(
        runbook.variants().is_empty(),
        "{} offers variants: run each with Session::follow_variant",
        runbook.name
    );
    assert!(
        !runbook.runnable(None).is_empty(),
        "{} has no ```sh block",
        runbook.name
    );
    let mut session = Session::start(sandbox, runbook, extra_env, false);
    session.run_rest();
    session.finish()
}
