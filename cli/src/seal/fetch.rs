//! Where certificates and the controller's HTTP API are reached: a `--cert` file or URL, a
//! `--controller-url`, or the API server's service proxy ([`super::service_proxy`]). URLs go through
//! the CLI's own bounded client ([`super::http`]); a plain-http certificate URL is warned about
//! (kubeseal accepts it silently).

use super::args::OnlineArgs;
use super::http::{Bounds, Http, redact};
use super::service_proxy::{ProxyTarget, ServiceProxy};
use super::{read_file, seal_error};
use crate::exit::{CliError, CliResult, code};
use reqwest::Url;
use signet_seal::SealingCertificate;
use std::path::Path;

/// Largest certificate answer read from a URL (a sealing certificate is a few kilobytes).
pub(crate) const MAX_CERT_BYTES: usize = 1 << 20;

impl OnlineArgs {
    /// The controller to talk to, or `None` when `have_cert` and no flag needs one. With
    /// --controller-url it is reached directly; otherwise through the API server's service proxy
    /// (connecting only here, so offline sealing never starts a Kubernetes client).
    pub(super) fn controller(&self, have_cert: bool) -> CliResult<Option<Controller>> {
        if let Some(url) = &self.controller_url {
            return Ok(Some(Controller::Direct {
                base: url.trim_end_matches('/').to_owned(),
                http: client(url)?,
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
        /// The client that reaches it.
        http: Http,
    },
    /// `--controller-name` / `--controller-namespace` through the API server.
    Proxy(Box<ServiceProxy>),
}

impl Controller {
    /// Where the controller is, for messages (without a URL's credentials).
    pub(super) fn describe(&self) -> String {
        match self {
            Controller::Direct { base, .. } => shown(base),
            Controller::Proxy(proxy) => proxy.describe(),
        }
    }

    /// `GET /v1/cert.pem`.
    pub(super) fn cert_pem(&self) -> CliResult<Vec<u8>> {
        match self {
            Controller::Direct { base, http } => {
                fetch_url(http, &format!("{base}/v1/cert.pem"), MAX_CERT_BYTES)
            }
            Controller::Proxy(proxy) => proxy.get("/v1/cert.pem"),
        }
    }

    /// POSTs `body` to `path`; the HTTP status and the response body.
    pub(super) fn post(&self, path: &str, body: &[u8]) -> CliResult<(u16, Vec<u8>)> {
        match self {
            Controller::Direct { base, http } => post_url(http, &format!("{base}{path}"), body),
            Controller::Proxy(proxy) => proxy.post(path, body),
        }
    }
}

/// The HTTP client for `url` (for messages only: the client serves any URL).
fn client(url: &str) -> CliResult<Http> {
    Http::new(Bounds::DEFAULT).map_err(|e| {
        CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!("cannot fetch {}: {e}", shown(url)),
        )
    })
}

/// `url` parsed, or an error that does not repeat it (it may hold credentials).
fn parse(url: &str) -> CliResult<Url> {
    Url::parse(url).map_err(|e| {
        CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!("cannot fetch the certificate: the URL is not valid ({e})"),
        )
    })
}

/// A URL or file name for messages: a URL's credentials replaced by `***`.
fn shown(source: &str) -> String {
    match Url::parse(source) {
        Ok(url) => redact(&url),
        Err(_) => source.to_owned(),
    }
}

/// POSTs a JSON `body` to `url`; the HTTP status and the body (at most the input size limit, like
/// a file the CLI reads).
fn post_url(http: &Http, url: &str, body: &[u8]) -> CliResult<(u16, Vec<u8>)> {
    let max = signet_sops::limits::Limits::get().max_input_bytes;
    http.post_json(&parse(url)?, body, max).map_err(|e| {
        CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!("cannot reach {}: {e}", shown(url)),
        )
    })
}

/// `GET url`: the body of a 2xx answer of at most `max` bytes.
fn fetch_url(http: &Http, url: &str, max: usize) -> CliResult<Vec<u8>> {
    http.get(&parse(url)?, max).map_err(|e| {
        CliError::new(
            code::COULD_NOT_READ_INPUT_FILE,
            format!("cannot fetch {}: {e}", shown(url)),
        )
    })
}

/// Reads the sealing certificate from a file (a path or a `file://` URL) or an http(s) URL.
pub(crate) fn load_cert(cert: Option<&str>) -> CliResult<SealingCertificate> {
    let source = cert.ok_or_else(|| {
        CliError::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            "no sealing certificate: pass --cert FILE|URL (or set SEALED_SECRETS_CERT); \
             or --controller-url URL to fetch it from a running controller",
        )
    })?;
    SealingCertificate::from_pem(&cert_bytes(source)?).map_err(|e| seal_error(&shown(source), e))
}

/// The bytes of a certificate source: an http(s) URL or a file. A plain-http URL is fetched (as
/// kubeseal does) with a warning: whoever is on the path can answer with their own certificate, and
/// would then read everything sealed to it.
pub(super) fn cert_bytes(source: &str) -> CliResult<Vec<u8>> {
    if source.starts_with("http://") {
        eprintln!(
            "signet: warning: fetching the sealing certificate over plain http ({}): anyone on \
             the network path can replace it and read what is sealed to it; use an https URL or \
             a file",
            shown(source)
        );
    }
    if source.starts_with("http://") || source.starts_with("https://") {
        fetch_url(&client(source)?, source, MAX_CERT_BYTES)
    } else {
        read_file(Path::new(local_path(source)))
    }
}

/// The path of a local certificate source: a `file://` URL's path (kubeseal reads such a URL as a
/// file name, and finds nothing), else the source itself.
fn local_path(source: &str) -> &str {
    source.strip_prefix("file://").unwrap_or(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_url_is_read_as_its_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, b"not checked here").expect("write");
        let url = format!("file://{}", path.display());
        assert_eq!(local_path(&url), path.to_str().expect("utf-8 path"));
        assert_eq!(cert_bytes(&url).expect("read"), b"not checked here");
        assert_eq!(local_path("certs/cert.pem"), "certs/cert.pem");
    }
}
