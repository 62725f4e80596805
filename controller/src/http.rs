//! The HTTP API kubeseal talks to (`GET /v1/cert.pem`, `POST /v1/verify`, `POST /v1/rotate`), the
//! probes, the separate metrics listener, and the accept loop both run on ([`serve`]).
//!
//! `verify` and `rotate` open sealed values on request, so they are a decryption oracle: both answer
//! uniformly (200 or 409, no detail), never render `spec.template` (a template would tell which
//! items exist and what they hold, as in Bitnami's #2019 and #2049), and share a token-bucket rate
//! limit per client (429 when exhausted). A client is the TCP peer address: requests relayed by the
//! API server's service proxy (`kubeseal` without `--controller-url`) all come from the API server
//! and share one bucket; `X-Forwarded-For` is not trusted, since any direct client can write it.
//!
//! Every connection is bounded: request headers (and the next request on an idle keep-alive
//! connection) must arrive within [`HEADER_READ_TIMEOUT`], a whole request within
//! [`REQUEST_TIMEOUT`], a body is at most [`MAX_BODY_BYTES`], at most [`MAX_CONNECTIONS`] at once.

use crate::context::Context;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest wait for a request's headers, and for the next request on an idle connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time for one request, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request body: a SealedSecret is an API object, at most 1.5 MiB in etcd.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Connections served at once per listener; more wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 512;
/// Clients whose rate-limit buckets are remembered; beyond it, unknown clients share one bucket.
const MAX_CLIENTS: usize = 4096;

/// Token buckets per client: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<Option<IpAddr>, (f64, Instant)>>,
}

impl RateLimiter {
    /// Full buckets.
    pub fn new(rate: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `client`'s bucket if there is one (`None`: the shared bucket).
    pub fn try_acquire(&self, client: Option<IpAddr>) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return false;
        };
        let now = Instant::now();
        let refill = |(tokens, last): (f64, Instant)| {
            (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst)
        };
        let mut client = client;
        if client.is_some() && !buckets.contains_key(&client) && buckets.len() >= MAX_CLIENTS {
            // Full buckets are the same as new ones: forget them, else share the overflow bucket.
            buckets.retain(|_, bucket| refill(*bucket) < self.burst);
            if buckets.len() >= MAX_CLIENTS {
                client = None;
            }
        }
        let bucket = buckets.entry(client).or_insert((self.burst, now));
        let tokens = refill(*bucket);
        let granted = tokens >= 1.0;
        *bucket = (if granted { tokens - 1.0 } else { tokens }, now);
        granted
    }
}

/// State of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    /// The shared controller context.
    pub ctx: Arc<Context>,
    /// Limit of `verify` + `rotate`.
    pub limiter: Arc<RateLimiter>,
}

/// The API router (cert, verify, rotate, probes).
pub fn api_router(ctx: Arc<Context>) -> Router {
    let limiter = Arc::new(RateLimiter::new(
        ctx.config.verify_rate_per_second,
        ctx.config.verify_burst,
    ));
    Router::new()
        .route("/v1/cert.pem", get(cert_pem))
        .route("/v1/verify", post(verify))
        .route("/v1/rotate", post(rotate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(HttpState { ctx, limiter })
}

/// Serves `app` on `listener` until `stop`, then lets open requests finish (at most
/// [`REQUEST_TIMEOUT`]). Each connection gets the limits of the module documentation; handlers can
/// read the peer address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let app = app.layer(axum::middleware::from_fn(request_timeout));
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            () = &mut stop => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let app = app.clone();
        let mut closing = closing_rx.clone();
        connections.spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let mut app = app.clone();
                async move { tower_service::Service::call(&mut app, request.map(Body::new)).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = closing.wait_for(|closing| *closing) => connection.as_mut().graceful_shutdown(),
            }
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, connection).await;
        });
    }
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
}

/// Ends a request that takes longer than [`REQUEST_TIMEOUT`] (a slow body, a stuck handler).
async fn request_timeout(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long\n").into_response(),
    }
}

/// The metrics router (`/metrics`).
pub fn metrics_router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(ctx)
}

async fn metrics(State(ctx): State<Arc<Context>>) -> Response {
    ctx.refresh_gauges();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ctx.metrics.encode(),
    )
        .into_response()
}

/// Alive: every reconciler of this leadership term runs (a standby has none to run).
async fn healthz(State(state): State<HttpState>) -> Response {
    match state.ctx.reconcilers.problem() {
        None => (StatusCode::OK, "ok").into_response(),
        Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, format!("{problem}\n")).into_response(),
    }
}

/// Ready: a sealing key is loaded and every reconciler of this term runs.
async fn readyz(State(state): State<HttpState>) -> Response {
    if state.ctx.is_ready() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn cert_pem(State(state): State<HttpState>) -> Response {
    let keys = state.ctx.keys.snapshot();
    match keys.sealing_key().and_then(|k| k.certificate_pem.clone()) {
        Some(pem) => ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no sealing key yet\n").into_response(),
    }
}

/// Reads a posted SealedSecret (JSON, or YAML as kubeseal may send what it was given).
fn parse_sealed(body: &[u8]) -> Option<signet_api::SealedSecret> {
    signet_seal::manifest::sealed_secret_from_slice(body)
}

/// The client a request is counted against: its TCP peer (see the module documentation).
fn client_of(peer: Option<Extension<ConnectInfo<SocketAddr>>>) -> Option<IpAddr> {
    peer.map(|Extension(ConnectInfo(addr))| addr.ip())
}

/// Whether every value opens. Values only: the template is never rendered (see the module docs).
async fn verify(
    State(state): State<HttpState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Response {
    if !state.limiter.try_acquire(client_of(peer)) {
        return (StatusCode::TOO_MANY_REQUESTS, "rate limited\n").into_response();
    }
    let Some(sealed) = parse_sealed(&body) else {
        return (StatusCode::BAD_REQUEST, "not a SealedSecret\n").into_response();
    };
    let keys = state.ctx.keys.snapshot();
    let opened = crate::cpu::run(move || keys.unseal_values(&sealed).is_ok())
        .await
        .unwrap_or(false);
    if opened {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::CONFLICT, "cannot unseal\n").into_response()
    }
}

/// Re-seals every value to the newest key, keeping scope, template and metadata.
fn reseal(
    sealed: &signet_api::SealedSecret,
    keys: &crate::sealed_secret::keyring::KeySet,
) -> Result<signet_api::SealedSecret, signet_seal::SealError> {
    let cert = keys
        .sealing_key()
        .and_then(|k| k.certificate())
        .ok_or(signet_seal::SealError::Unseal)?;
    let values = keys.unseal_values(sealed)?;
    signet_seal::reseal_values(sealed, &values, cert)
}

/// Re-seals the values (never rendering the template) to the newest key.
async fn rotate(
    State(state): State<HttpState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Response {
    if !state.limiter.try_acquire(client_of(peer)) {
        return (StatusCode::TOO_MANY_REQUESTS, "rate limited\n").into_response();
    }
    let Some(sealed) = parse_sealed(&body) else {
        return (StatusCode::BAD_REQUEST, "not a SealedSecret\n").into_response();
    };
    let keys = state.ctx.keys.snapshot();
    let resealed = crate::cpu::run(move || reseal(&sealed, &keys)).await;
    match resealed {
        Some(Ok(resealed)) => match serde_json::to_vec_pretty(&resealed) {
            Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        _ => (StatusCode::CONFLICT, "cannot unseal\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_the_burst_then_refuses_per_client() {
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        let limiter = RateLimiter::new(0.001, 3);
        assert!(limiter.try_acquire(a));
        assert!(limiter.try_acquire(a));
        assert!(limiter.try_acquire(a));
        assert!(!limiter.try_acquire(a));
        // Another client has its own bucket.
        assert!(limiter.try_acquire(b));
        let fast = RateLimiter::new(1000.0, 1);
        assert!(fast.try_acquire(a));
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(fast.try_acquire(a));
    }

    #[test]
    fn rate_limiter_memory_is_bounded_and_overflow_clients_share_a_bucket() {
        let limiter = RateLimiter::new(0.001, 1);
        for i in 0..MAX_CLIENTS as u32 {
            assert!(limiter.try_acquire(Some(IpAddr::from(i.to_be_bytes()))));
        }
        let late = Some(IpAddr::from([255, 255, 255, 254]));
        let later = Some(IpAddr::from([255, 255, 255, 255]));
        assert!(limiter.try_acquire(late), "the shared bucket starts full");
        assert!(!limiter.try_acquire(later), "and is shared");
        assert!(limiter.buckets.lock().unwrap().len() <= MAX_CLIENTS + 1);
    }

    #[test]
    fn deep_or_huge_bodies_are_refused_not_a_crash() {
        let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_sealed(deep_json.as_bytes()).is_none());
        let deep_yaml = format!("a: {}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_sealed(deep_yaml.as_bytes()).is_none());
        // Unknown fields: serde_json skips them without recursing; YAML has a depth budget.
        let nested_json = format!(
            "{{\"kind\":\"SealedSecret\",\"x\":{}1{}}}",
            "{\"a\":".repeat(100_000),
            "}".repeat(100_000)
        );
        assert!(parse_sealed(nested_json.as_bytes()).is_some());
        let nested = format!(
            "kind: SealedSecret\nx: {}1{}\n",
            "{a: ".repeat(100_000),
            "}".repeat(100_000)
        );
        assert!(parse_sealed(nested.as_bytes()).is_none());
    }

    #[test]
    fn sealed_secrets_parse_from_json_and_yaml() {
        let json = br#"{"apiVersion":"bitnami.com/v1alpha1","kind":"SealedSecret","metadata":{"name":"a"},"spec":{"encryptedData":{"k":"AQAB"}}}"#;
        assert_eq!(parse_sealed(json).unwrap().spec.encrypted_data["k"], "AQAB");
        let yaml = b"apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: a\nspec:\n  encryptedData:\n    k: AQAB\n";
        assert_eq!(
            parse_sealed(yaml).unwrap().metadata.name.as_deref(),
            Some("a")
        );
        assert!(parse_sealed(b"\xff\xfe").is_none());
    }
}
