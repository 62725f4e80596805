//! OpenBao in dev mode (in-memory, unsealed, KV v2 mounted at `secret/`) at
//! `http://127.0.0.1:<port>`.

use std::sync::OnceLock;
use std::time::Duration;

use crate::Error;
use crate::process::{
    RunningPeer, http_status, shared_instance, spawn_on_free_port, spawn_on_port,
};

const PEER: &str = "openbao";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `bao server -dev` on 127.0.0.1.
pub struct OpenBao {
    port: u16,
    root_token: String,
    process: RunningPeer,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The root token stays out of Debug output.
        f.debug_struct("OpenBao")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl OpenBao {
    /// The OpenBao server shared by every test of this process, started on first use. Tests
    /// must use their own KV paths, mounts or key names.
    pub fn shared() -> Result<&'static OpenBao, Error> {
        static SHARED: OnceLock<Result<OpenBao, String>> = OnceLock::new();
        shared_instance(&SHARED, PEER, OpenBao::start)
    }

    /// Starts a private OpenBao dev server with a fresh root token, stopped when dropped.
    pub fn start() -> Result<OpenBao, Error> {
        let program = crate::peer_path("bao")?;
        let root_token = crate::unique_name("signet-root");
        let (port, process) = spawn_on_free_port(
            PEER,
            &program,
            READY_TIMEOUT,
            |port| dev_server_args(&root_token, port),
            is_active,
        )?;
        Ok(OpenBao {
            port,
            root_token,
            process: RunningPeer::new(process),
        })
    }

    /// The server address, `http://127.0.0.1:<port>` (what `VAULT_ADDR`/`BAO_ADDR` hold).
    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port OpenBao listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The dev root token (what `VAULT_TOKEN`/`BAO_TOKEN` hold).
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// `VAULT_ADDR`, `VAULT_TOKEN`, `BAO_ADDR`, `BAO_TOKEN`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("VAULT_ADDR".to_owned(), self.addr()),
            ("VAULT_TOKEN".to_owned(), self.root_token.clone()),
            ("BAO_ADDR".to_owned(), self.addr()),
            ("BAO_TOKEN".to_owned(), self.root_token.clone()),
        ]
    }

    /// Runs the `bao` CLI as root against this server (in `namespace`, if given); its stdout.
    pub fn bao(&self, namespace: Option<&str>, args: &[&str]) -> Result<String, Error> {
        let program = crate::peer_path("bao")?;
        let out = std::process::Command::new(&program)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env())
            .envs(namespace.map(|n| ("BAO_NAMESPACE", n)))
            .args(args)
            .output()
            .map_err(|source| Error::Spawn {
                peer: PEER,
                program,
                source,
            })?;
        if !out.status.success() {
            return Err(Error::PeerCall {
                peer: PEER,
                message: format!(
                    "bao {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Mounts a fresh transit engine at a path of its own (so tests never collide) holding one key;
    /// the key's URI as sops names it, `<addr>/v1/<mount>/keys/<key>`.
    pub fn create_transit_key(&self, label: &str) -> Result<String, Error> {
        let mount = format!("sops/{}", crate::unique_name(label));
        self.bao(
            None,
            &["secrets", "enable", &format!("-path={mount}"), "transit"],
        )?;
        self.bao(None, &["write", "-f", &format!("{mount}/keys/firstkey")])?;
        Ok(format!("{}/v1/{mount}/keys/firstkey", self.addr()))
    }

    /// Kills the server at once, as a crash would (fault tests; a private instance only).
    pub fn kill(&self) {
        self.process.kill();
    }

    /// Starts the server again on the same address with the same root token. Dev mode keeps
    /// nothing: mounts and secrets must be written again.
    pub fn restart(&self) -> Result<(), Error> {
        let program = crate::peer_path("bao")?;
        let args = dev_server_args(&self.root_token, self.port);
        let process = spawn_on_port(PEER, &program, READY_TIMEOUT, self.port, &args, is_active)?;
        self.process.replace(process);
        Ok(())
    }

    /// OpenBao's recent output, for diagnosing a failing test.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}

fn dev_server_args(root_token: &str, port: u16) -> Vec<String> {
    vec![
        "server".to_owned(),
        "-dev".to_owned(),
        "-dev-no-store-token".to_owned(),
        format!("-dev-root-token-id={root_token}"),
        format!("-dev-listen-address=127.0.0.1:{port}"),
    ]
}

/// 200 = initialized, unsealed and active.
fn is_active(port: u16) -> bool {
    http_status(port, "/v1/sys/health") == Some(200)
}
