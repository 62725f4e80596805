//! Where certificates and the controller's HTTP API are reached: a `--cert` file or URL, a
//! `--controller-url`, or the API server's service proxy ([`super::service_proxy`]).

use super::args::OnlineArgs;
use super::service_proxy::{ProxyTarget, ServiceProxy};
use super::{read_file, seal_error};
use crate::exit::{CliError, CliResult, code};
use signet_seal::SealingCertificate;
use std::path::Path;

impl OnlineArgs {
    /// The controller to talk to, or `None` when `have_cert` and no flag needs one. With
    /// --controller-url it is reached directly; otherwise through the API server's service proxy
    /// (connecting only here, so offline sealing never starts a Kubernetes client).
    pub(super) fn controller(&self, have_cert: bool) -> CliResult<Option<Controller>> {
        if let Some(url) = &self.controller_url {
            return Ok(Some(Controller::Direct {
                base: url.trim_end_matches('/').to_owned(),
            }));
        }
        // `--cert` overrides the controller for everything a certificate answers (kubeseal).
        if have_cert && !self.validate && !self.re_encrypt {
            return Ok(None);
        }
        let target = ProxyTarget {
            name: self.controller_name.clone(),
            namespace: self.controller_namespace.clone(),
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        };
        Ok(Some(Controller::Proxy(Box::new(ServiceProxy::connect(
            target,
        )?))))
    }
}

/// A controller's HTTP API: at a base URL, or behind the API server's service proxy.
pub(super) enum Controller {
    /// `--controller-url`.
    Direct {
        /// Base URL without a trailing slash.
        base: String,
    },
    /// `--controller-name` / `--controller-namespace` through the API server.
    Proxy(Box<ServiceProxy>),
}

impl Controller {
    /// Where the controller is, for messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Controller::Direct { base } => base.clone(),
            Controller::Proxy(proxy) => proxy.describe(),
        }
    }

    /// `GET /v1/cert.pem`.
    pub(super) fn cert_pem(&self) -> CliResult<Vec<u8>> {
        match self {
            Controller::Direct { base } => fetch_url(&format!("{base}/v1/cert.pem")),
            Controller::Proxy(proxy) => proxy.get("/v1/cert.pem"),
        }
    }

    /// POSTs `body` to `path`; the HTTP status and the response body.
    pub(super) fn post(&self, path: &str, body: &[u8]) -> CliResult<(u16, Vec<u8>)> {
        match self {
            Controller::Direct { base } => post_url(&format!("{base}{path}"), body),
            Controller::Proxy(proxy) => proxy.post(path, body),
        }
    }
}

/// POSTs a JSON `body` to `url` (with curl, like [`fetch_url`]); the HTTP status and the body.
fn post_url(url: &str, body: &[u8]) -> CliResult<(u16, Vec<u8>)> {
    use std::io::Write;
    let fail = |e: &dyn std::fmt::Display| {
        CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!("cannot reach {url}: {e}"),
        )
    };
    let mut child = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60", "-X", "POST"])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ])
        .args(["--write-out", "\n%{http_code}", "--", url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| fail(&format!("running curl: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(body).map_err(|e| fail(&e))?;
    }
    let output = child.wait_with_output().map_err(|e| fail(&e))?;
    if !output.status.success() {
        return Err(fail(&String::from_utf8_lossy(&output.stderr).trim()));
    }
    let text = output.stdout;
    let split = text.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let status = std::str::from_utf8(&text[split..])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| fail(&"no HTTP status in the answer"))?;
    Ok((status, text[..split].to_vec()))
}

/// Reads the sealing certificate from a file or an http(s) URL.
pub(crate) fn load_cert(cert: Option<&str>) -> CliResult<SealingCertificate> {
    let source = cert.ok_or_else(|| {
        CliError::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            "no sealing certificate: pass --cert FILE|URL (or set SEALED_SECRETS_CERT); \
             or --controller-url URL to fetch it from a running controller",
        )
    })?;
    SealingCertificate::from_pem(&cert_bytes(source)?).map_err(|e| seal_error(source, e))
}

/// The bytes of a certificate source: an http(s) URL or a file.
pub(super) fn cert_bytes(source: &str) -> CliResult<Vec<u8>> {
    if source.starts_with("http://") || source.starts_with("https://") {
        fetch_url(source)
    } else {
        read_file(Path::new(source))
    }
}

fn fetch_url(url: &str) -> CliResult<Vec<u8>> {
    let fail = |e: &dyn std::fmt::Display| {
        CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!("cannot fetch {url}: {e}"),
        )
    };
    let output = std::process::Command::new("curl")
        .args([
            "--fail",
            "--silent",
            "--show-error",
            "--location",
            "--max-time",
            "60",
            "--",
            url,
        ])
        .output()
        .map_err(|e| fail(&format!("running curl: {e}")))?;
    if !output.status.success() {
        return Err(fail(&String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(output.stdout)
}
