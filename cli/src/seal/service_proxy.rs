//! kubeseal's default route to the controller: the Kubernetes API server's service proxy
//! (`/api/v1/namespaces/{ns}/services/http:{name}:{port}/proxy/...`), authenticated with the user's
//! kubeconfig. Only `signet seal`'s online modes use it, so the Kubernetes client and its small
//! current-thread tokio runtime are built here, on demand, and no other command pays for them.
//!
//! Every failure is [`code::ONLINE_MODE_UNAVAILABLE`] with a message that names the Service, its
//! namespace and the API server's answer, and points at `--cert` / `--controller-url`.

use crate::exit::{CliError, CliResult, code};
use k8s_openapi::api::core::v1::Service;
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;
use std::time::Duration;

/// Longest piece of an API server answer quoted in an error message.
const MAX_QUOTED_ANSWER: usize = 400;

/// Which Service to reach and with which kubeconfig.
#[derive(Debug, Clone)]
pub struct ProxyTarget {
    /// The controller's Service name (`--controller-name`).
    pub name: String,
    /// The controller's namespace (`--controller-namespace`).
    pub namespace: String,
    /// `--kubeconfig`; otherwise `KUBECONFIG`, `~/.kube/config`, then in-cluster configuration.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`: a kubeconfig context other than the current one.
    pub context: Option<String>,
}

impl ProxyTarget {
    /// `namespace/name`, as messages show it.
    fn service(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A connection to the controller through the API server's service proxy.
pub struct ServiceProxy {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    target: ProxyTarget,
    /// The API server URL (for messages).
    server: String,
    /// `http:{name}:{first port name}`, the proxy's service reference (as kubeseal builds it).
    service_ref: String,
}

impl std::fmt::Debug for ServiceProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceProxy")
            .field("service", &self.target.service())
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The suggestion every proxy error ends with.
const ALTERNATIVES: &str = "pass --cert FILE|URL (offline), --controller-url URL (e.g. after \
                            `kubectl port-forward`), or --controller-name/--controller-namespace";

impl ServiceProxy {
    /// Loads the kubeconfig, builds the client and looks up the Service (its first port's name goes
    /// into the proxy path, like kubeseal).
    pub fn connect(target: ProxyTarget) -> CliResult<ServiceProxy> {
        let unavailable = |detail: String| {
            CliError::new(
                code::ONLINE_MODE_UNAVAILABLE,
                format!(
                    "cannot reach the controller (service {}) through the Kubernetes API server: \
                     {detail}; {ALTERNATIVES}",
                    target.service()
                ),
            )
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unavailable(format!("cannot start the async runtime: {e}")))?;
        let config = runtime
            .block_on(load_config(&target))
            .map_err(unavailable)?;
        let server = config.cluster_url.to_string();
        // The client spawns its request buffer task: build it inside the runtime.
        let client = runtime
            .block_on(async { kube::Client::try_from(config) })
            .map_err(|e| unavailable(format!("cannot build a client for {server}: {e}")))?;
        let mut proxy = ServiceProxy {
            runtime,
            client,
            target,
            server,
            service_ref: String::new(),
        };
        let path = format!(
            "/api/v1/namespaces/{}/services/{}",
            proxy.target.namespace, proxy.target.name
        );
        let (status, body) = proxy.send(http::Method::GET, &path, None)?;
        let service: Service = match status {
            200 => serde_json::from_slice(&body).map_err(|e| {
                proxy.error(format!(
                    "the API server's Service object is unreadable: {e}"
                ))
            })?,
            404 => {
                return Err(proxy.error(format!(
                    "service not found (the API server answered 404: {})",
                    quote_answer(&body)
                )));
            }
            _ => {
                return Err(proxy.error(format!(
                    "reading the Service failed (the API server answered {status}: {})",
                    quote_answer(&body)
                )));
            }
        };
        let port_name = service
            .spec
            .and_then(|s| s.ports)
            .and_then(|ports| ports.into_iter().next())
            .and_then(|p| p.name)
            .unwrap_or_default();
        proxy.service_ref = format!("http:{}:{port_name}", proxy.target.name);
        Ok(proxy)
    }

    /// What this proxy reaches, for messages: `service NS/NAME via URL`.
    pub fn describe(&self) -> String {
        format!("service {} via {}", self.target.service(), self.server)
    }

    /// `GET {path}` on the controller; its body when it answers 200.
    pub fn get(&self, path: &str) -> CliResult<Vec<u8>> {
        match self.proxied(http::Method::GET, path, None)? {
            (200, body) => Ok(body),
            (status, body) => Err(self.proxy_refused(path, status, &body)),
        }
    }

    /// `POST {path}` on the controller with a JSON body: the HTTP status and body. Statuses the
    /// controller itself gives (200, 409) come back as they are; the caller decides.
    pub fn post(&self, path: &str, body: &[u8]) -> CliResult<(u16, Vec<u8>)> {
        let (status, answer) = self.proxied(http::Method::POST, path, Some(body.to_vec()))?;
        if status == 200 || status == 409 {
            Ok((status, answer))
        } else {
            Err(self.proxy_refused(path, status, &answer))
        }
    }

    fn proxied(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> CliResult<(u16, Vec<u8>)> {
        let url = format!(
            "/api/v1/namespaces/{}/services/{}/proxy{path}",
            self.target.namespace, self.service_ref
        );
        self.send(method, &url, body)
    }

    /// One request to the API server; transport failures are errors, any HTTP status is returned.
    fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> CliResult<(u16, Vec<u8>)> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::ACCEPT, "application/x-pem-file, */*");
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Body::from(body.unwrap_or_default()))
            .map_err(|e| self.error(format!("cannot build the request {path}: {e}")))?;
        self.runtime.block_on(async {
            let response = self
                .client
                .send(request)
                .await
                .map_err(|e| self.error(format!("the API server did not answer: {e}")))?;
            let status = response.status().as_u16();
            let bytes = response
                .into_body()
                .collect_bytes()
                .await
                .map_err(|e| self.error(format!("reading the API server's answer: {e}")))?;
            Ok((status, bytes.to_vec()))
        })
    }

    fn proxy_refused(&self, path: &str, status: u16, body: &[u8]) -> CliError {
        self.error(format!(
            "the service proxy answered {status} to {path}: {}",
            quote_answer(body)
        ))
    }

    fn error(&self, detail: String) -> CliError {
        CliError::new(
            code::ONLINE_MODE_UNAVAILABLE,
            format!(
                "cannot reach the controller (service {}) through the Kubernetes API server at \
                 {}: {detail}; {ALTERNATIVES}",
                self.target.service(),
                self.server
            ),
        )
    }
}

/// The client configuration: `--kubeconfig` (with `--context`), else the usual search
/// (`KUBECONFIG`, `~/.kube/config`, in-cluster).
pub(crate) async fn load_config(target: &ProxyTarget) -> Result<kube::Config, String> {
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = match (&target.kubeconfig, &target.context) {
        (Some(path), _) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("cannot read the kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| format!("the kubeconfig {} is unusable: {e}", path.display()))?
        }
        (None, Some(context)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| format!("cannot load the kubeconfig context {context}: {e}"))?,
        (None, None) => kube::Config::infer().await.map_err(|e| {
            format!(
                "no usable Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster): {e}"
            )
        })?,
    };
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(60));
    // A 503 from the proxy (no endpoints, refused address) is the answer to report, not to retry.
    config.default_retry = false;
    Ok(config)
}

/// The API server's answer for a message: a Status object's `message`, else the body as text,
/// shortened.
fn quote_answer(body: &[u8]) -> String {
    let status_message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .filter(|v| v["kind"] == "Status")
        .and_then(|v| v["message"].as_str().map(str::to_owned));
    let text = status_message.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if text.is_empty() {
        return "(empty answer)".to_owned();
    }
    match text.char_indices().nth(MAX_QUOTED_ANSWER) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::quote_answer;

    #[test]
    fn a_status_answer_is_quoted_by_its_message() {
        let status = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"services \"x\" not found","code":404}"#;
        assert_eq!(quote_answer(status), "services \"x\" not found");
    }

    #[test]
    fn other_answers_are_quoted_as_short_text() {
        assert_eq!(quote_answer(b"  no endpoints\n"), "no endpoints");
        assert_eq!(quote_answer(b""), "(empty answer)");
        let long = "x".repeat(1000);
        let quoted = quote_answer(long.as_bytes());
        assert_eq!(quoted.chars().count(), super::MAX_QUOTED_ANSWER + 1);
        assert!(quoted.ends_with('…'));
    }
}
