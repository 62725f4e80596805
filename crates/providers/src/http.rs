//! What the HTTP stores (Vault, Kubernetes) share: a server URL checked once, a client that
//! follows no redirect and trusts only the store's CA bundle when one is given, and answers read
//! up to a bound.

use reqwest::{StatusCode, Url};
use zeroize::Zeroizing;

use crate::error::error_chain;
use crate::{DEFAULT_TIMEOUT, Error};

/// Largest answer read from a store's server (a KV v2 value is at most Vault's 32 MiB request;
/// a Kubernetes Secret at most 1 MiB, a list page a few).
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

/// `text` as the base URL of a `what` server: http(s), no query or fragment.
pub(crate) fn server_url(text: &str, what: &str) -> Result<Url, Error> {
    let text = text.trim();
    let mut server = Url::parse(text)
        .map_err(|e| Error::InvalidConfig(format!("{what} server {text:?} is not a URL: {e}")))?;
    if !matches!(server.scheme(), "http" | "https") || server.cannot_be_a_base() {
        return Err(Error::InvalidConfig(format!(
            "{what} server {text:?} is not an http(s) URL"
        )));
    }
    server.set_query(None);
    server.set_fragment(None);
    Ok(server)
}

/// A client for a `what` server. No redirects: a credential travels in a header, which a client
/// keeps on a redirect to another host, and the operator's allow-list of provider URLs is checked
/// on the configured server only. With `ca_pem`, only that bundle's certificates are trusted.
pub(crate) fn client(ca_pem: Option<&[u8]>, what: &str) -> Result<reqwest::Client, Error> {
    let invalid = Error::InvalidConfig;
    let mut builder = reqwest::Client::builder()
        .timeout(DEFAULT_TIMEOUT)
        .connect_timeout(DEFAULT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_pem {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| invalid(format!("the {what} CA bundle is not PEM: {e}")))?;
        if certificates.is_empty() {
            return Err(invalid(format!(
                "the {what} CA bundle holds no certificate"
            )));
        }
        builder = builder.tls_certs_only(certificates);
    }
    builder
        .build()
        .map_err(|e| invalid(format!("cannot build the HTTP client: {}", error_chain(&e))))
}

/// Why a bounded read stopped.
pub(crate) enum ReadError {
    /// The connection failed.
    Http(reqwest::Error),
    /// The answer is larger than [`MAX_ANSWER_BYTES`].
    TooLarge(StatusCode),
}

/// The status and body of `response`, reading at most [`MAX_ANSWER_BYTES`]: the server is chosen
/// by whoever wrote the store.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
) -> Result<(StatusCode, Zeroizing<Vec<u8>>), ReadError> {
    let status = response.status();
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ReadError::TooLarge(status));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}
