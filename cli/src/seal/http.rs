//! The CLI's HTTP client, for a `--cert` URL and `--controller-url`: reqwest, which the binary
//! already links (signet-keys' Vault client), with rustls on aws-lc-rs. It runs on a current-thread
//! tokio runtime built with the client, so commands that never go online start none.
//!
//! - TLS is verified against the system's roots (rustls-platform-verifier; on Linux the
//!   distribution's bundle, or the files `SSL_CERT_FILE` / `SSL_CERT_DIR` name).
//! - One deadline covers a whole exchange (connect, redirects, body): [`Bounds::timeout`].
//! - An answer larger than the caller's cap is refused without being read past it.
//! - GET follows up to [`MAX_REDIRECTS`] redirects, never from https to plain http, and never to
//!   another origin when the URL carries credentials; POST follows none (its status is the answer).
//! - Messages never show a URL's credentials ([`redact`]).

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use std::time::Duration;

/// Most redirects a GET follows (as many as kubeseal's Go client).
pub(crate) const MAX_REDIRECTS: usize = 10;

/// Time limits of one exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// The whole exchange: connecting, every redirect and the body (curl's `--max-time` before).
    pub timeout: Duration,
    /// Establishing one connection (TCP and TLS).
    pub connect_timeout: Duration,
}

impl Bounds {
    /// 60 s for an exchange, 10 s to connect.
    pub const DEFAULT: Bounds = Bounds {
        timeout: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(10),
    };
}

/// An HTTP client and the runtime it runs on.
pub(crate) struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    bounds: Bounds,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("bounds", &self.bounds)
            .finish_non_exhaustive()
    }
}

impl Http {
    /// A client with these bounds; redirects are followed by [`Http::get`] itself.
    pub fn new(bounds: Bounds) -> Result<Http, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(bounds.connect_timeout)
            .user_agent(concat!("signet/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", describe(e)))?;
        Ok(Http {
            runtime,
            client,
            bounds,
        })
    }

    /// `GET url`: the body of a 2xx answer, at most `max_bytes`; any other status is an error.
    pub fn get(&self, url: &Url, max_bytes: usize) -> Result<Vec<u8>, String> {
        self.bounded(self.get_following(url, max_bytes))
    }

    /// `POST url` with a JSON `body`: the status and a body of at most `max_bytes`, whatever the
    /// status (the caller decides what it means).
    pub fn post_json(
        &self,
        url: &Url,
        body: &[u8],
        max_bytes: usize,
    ) -> Result<(u16, Vec<u8>), String> {
        self.bounded(async {
            let response = self
                .client
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec())
                .send()
                .await
                .map_err(describe)?;
            let status = response.status().as_u16();
            Ok((status, read_capped(response, max_bytes).await?))
        })
    }

    /// Runs `exchange` to its end or to [`Bounds::timeout`], whichever comes first.
    fn bounded<T>(&self, exchange: impl Future<Output = Result<T, String>>) -> Result<T, String> {
        let limit = self.bounds.timeout;
        self.runtime.block_on(async {
            tokio::time::timeout(limit, exchange)
                .await
                .unwrap_or_else(|_| Err(format!("no complete answer within {limit:?}")))
        })
    }

    async fn get_following(&self, url: &Url, max_bytes: usize) -> Result<Vec<u8>, String> {
        let mut current = url.clone();
        let mut redirects = 0;
        loop {
            let response = self
                .client
                .get(current.clone())
                .send()
                .await
                .map_err(describe)?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(LOCATION)
            {
                if redirects == MAX_REDIRECTS {
                    return Err(format!("more than {MAX_REDIRECTS} redirects"));
                }
                redirects += 1;
                let to = location
                    .to_str()
                    .ok()
                    .and_then(|l| current.join(l).ok())
                    .ok_or_else(|| {
                        format!("HTTP {status}, a redirect to an unreadable Location")
                    })?;
                current = next_hop(url, &current, to)?;
                continue;
            }
            if !status.is_success() {
                return Err(format!("the server answered HTTP {status}"));
            }
            return read_capped(response, max_bytes).await;
        }
    }
}

/// Where a redirect from `from` to `to` may go, for a request that started at `first`: the URL to
/// request next (with `first`'s credentials when it stays on their origin), or why not.
fn next_hop(first: &Url, from: &Url, mut to: Url) -> Result<Url, String> {
    match (from.scheme(), to.scheme()) {
        ("http" | "https", "https") | ("http", "http") => {}
        ("https", "http") => {
            return Err(format!(
                "a redirect from https to plain http ({}) is not followed",
                redact(&to)
            ));
        }
        (_, other) => return Err(format!("a redirect to a {other}: URL is not followed")),
    }
    let has_credentials = !first.username().is_empty() || first.password().is_some();
    if has_credentials {
        if to.origin() != first.origin() {
            return Err(format!(
                "the URL carries credentials and the server redirects to another origin ({}): \
                 not followed",
                redact(&to)
            ));
        }
        if to.username().is_empty() && to.password().is_none() {
            // Same origin: the credentials go along, as curl sends them to the same host.
            let _ = to.set_username(first.username());
            let _ = to.set_password(first.password());
        }
    }
    Ok(to)
}

/// Reads a body of at most `max_bytes`, stopping as soon as it is known to be larger.
async fn read_capped(mut response: reqwest::Response, max_bytes: usize) -> Result<Vec<u8>, String> {
    let too_large = || format!("the answer is larger than {max_bytes} bytes");
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {}", describe(e)))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest error and its causes, without the URL (the caller's message names it, redacted).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `url` for messages: its user name and password replaced by `***`.
pub(crate) fn redact(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("***");
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    /// Answers each connection to a loopback port with what `answer` writes; returns the base URL.
    /// The server closes every connection after one answer, so answers say `Connection: close`
    /// (a client that reused the connection would find it reset).
    fn serve(answer: impl Fn(&mut std::net::TcpStream) + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request);
                answer(&mut conn);
            }
        });
        base
    }

    fn quick() -> Http {
        Http::new(Bounds {
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        })
        .unwrap()
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn a_slow_answer_is_cut_off_at_the_deadline() {
        // What README promises for a real run.
        assert_eq!(Bounds::DEFAULT.timeout, Duration::from_secs(60));
        // Headers at once, then one byte a second for five seconds: complete, but too slow.
        let base = serve(|conn| {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
            for _ in 0..5 {
                std::thread::sleep(Duration::from_secs(1));
                let _ = conn.write_all(b"x");
            }
        });
        let started = Instant::now();
        let error = quick().get(&url(&base), 1024).expect_err("too slow");
        assert!(error.contains("no complete answer within 1s"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn an_oversized_answer_is_refused_with_or_without_a_length() {
        let declared = serve(|conn| {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\n\r\n");
            let _ = conn.write_all(&[b'x'; 2048]);
        });
        let error = quick()
            .get(&url(&declared), 1024)
            .expect_err("declared too large");
        assert!(error.contains("larger than 1024 bytes"), "{error}");
        // No length, a body until the connection closes: cut off once past the cap.
        let streamed = serve(|conn| {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            for _ in 0..64 {
                let _ = conn.write_all(&[b'x'; 1024]);
            }
        });
        let error = quick()
            .get(&url(&streamed), 1024)
            .expect_err("streamed too large");
        assert!(error.contains("larger than 1024 bytes"), "{error}");
        let error = quick()
            .post_json(&url(&streamed), b"{}", 1024)
            .expect_err("a POST answer is capped too");
        assert!(error.contains("larger than 1024 bytes"), "{error}");
        // At the cap exactly, it is read.
        let exact = serve(|conn| {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let _ = conn.write_all(&[b'x'; 1024]);
        });
        assert_eq!(quick().get(&url(&exact), 1024).unwrap().len(), 1024);
    }

    #[test]
    fn a_same_origin_redirect_is_followed_and_an_error_status_refused() {
        let target = serve(|conn| {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ncert",
            );
        });
        let moved = serve(move |conn| {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: {target}/cert.pem\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.write_all(head.as_bytes());
        });
        assert_eq!(quick().get(&url(&moved), 1024).unwrap(), b"cert");
        let missing = serve(|conn| {
            let _ = conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        });
        let error = quick().get(&url(&missing), 1024).expect_err("404");
        assert!(error.contains("HTTP 404 Not Found"), "{error}");
        // A loop ends after MAX_REDIRECTS.
        let looping = serve(|conn| {
            let _ = conn
                .write_all(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        });
        let error = quick().get(&url(&looping), 1024).expect_err("loop");
        assert!(error.contains("more than 10 redirects"), "{error}");
    }

    #[test]
    fn a_redirect_never_downgrades_nor_takes_credentials_elsewhere() {
        let first = url("https://ci:s3cret@certs.example/cert.pem");
        let error = next_hop(&first, &first, url("http://certs.example/cert.pem")).unwrap_err();
        assert!(error.contains("https to plain http"), "{error}");
        let error = next_hop(&first, &first, url("https://evil.example/cert.pem")).unwrap_err();
        assert!(error.contains("another origin"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        // Same origin: followed, with the credentials.
        let next = next_hop(&first, &first, url("https://certs.example/v2/cert.pem")).unwrap();
        assert_eq!(next.password(), Some("s3cret"));
        // Without credentials any https origin is fine, and http may upgrade.
        let open = url("http://certs.example/cert.pem");
        assert!(next_hop(&open, &open, url("https://cdn.example/c.pem")).is_ok());
        assert!(next_hop(&open, &open, url("file:///etc/passwd")).is_err());
        // A live cross-origin redirect with credentials is refused before it is requested.
        let elsewhere = serve(|conn| {
            let _ = conn.write_all(
                b"HTTP/1.1 302 Found\r\nLocation: http://localhost:1/cert.pem\r\nContent-Length: 0\r\n\r\n",
            );
        });
        let with_credentials = elsewhere.replace("http://", "http://ci:s3cret@");
        let error = quick()
            .get(&url(&with_credentials), 1024)
            .expect_err("cross-origin with credentials");
        assert!(error.contains("another origin"), "{error}");
    }

    #[test]
    fn credentials_are_redacted_from_urls_in_messages() {
        assert_eq!(
            redact(&url("https://ci:s3cret@certs.example/cert.pem")),
            "https://***@certs.example/cert.pem"
        );
        assert_eq!(
            redact(&url("https://token@certs.example/")),
            "https://***@certs.example/"
        );
        assert_eq!(
            redact(&url("http://127.0.0.1:8080/v1/cert.pem")),
            "http://127.0.0.1:8080/v1/cert.pem"
        );
    }
}
