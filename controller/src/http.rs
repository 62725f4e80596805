//! The HTTP API kubeseal talks to (`GET /v1/cert.pem`, `POST /v1/verify`, `POST /v1/rotate`), the
//! probes, and the separate metrics listener.
//!
//! `verify` and `rotate` open sealed values on request, so they are a decryption oracle: both answer
//! uniformly (200 or 409, no detail) and share one token-bucket rate limit (429 when exhausted).

use crate::context::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use signet_seal::SealError;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(rate: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            state: Mutex::new((f64::from(burst.max(1)), Instant::now())),
        }
    }

    /// Takes one token if there is one.
    pub fn try_acquire(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let now = Instant::now();
        let (tokens, last) = *state;
        let refilled =
            (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        if refilled >= 1.0 {
            *state = (refilled - 1.0, now);
            true
        } else {
            *state = (refilled, now);
            false
        }
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
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(HttpState { ctx, limiter })
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

async fn verify(State(state): State<HttpState>, body: Bytes) -> Response {
    if !state.limiter.try_acquire() {
        return (StatusCode::TOO_MANY_REQUESTS, "rate limited\n").into_response();
    }
    let Some(sealed) = parse_sealed(&body) else {
        return (StatusCode::BAD_REQUEST, "not a SealedSecret\n").into_response();
    };
    let keys = state.ctx.keys.snapshot();
    let opened = tokio::task::spawn_blocking(move || keys.unseal(&sealed, None).is_ok())
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
    keys: &crate::keyring::KeySet,
) -> Result<signet_api::SealedSecret, SealError> {
    let cert = keys
        .sealing_key()
        .and_then(|k| k.certificate())
        .ok_or(SealError::Unseal)?;
    let values = keys.unseal_values(sealed)?;
    signet_seal::reseal_values(sealed, &values, cert)
}

async fn rotate(State(state): State<HttpState>, body: Bytes) -> Response {
    if !state.limiter.try_acquire() {
        return (StatusCode::TOO_MANY_REQUESTS, "rate limited\n").into_response();
    }
    let Some(sealed) = parse_sealed(&body) else {
        return (StatusCode::BAD_REQUEST, "not a SealedSecret\n").into_response();
    };
    let keys = state.ctx.keys.snapshot();
    let resealed = tokio::task::spawn_blocking(move || reseal(&sealed, &keys)).await;
    match resealed {
        Ok(Ok(resealed)) => match serde_json::to_vec_pretty(&resealed) {
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
    fn rate_limiter_allows_the_burst_then_refuses() {
        let limiter = RateLimiter::new(0.001, 3);
        assert!(limiter.try_acquire());
        assert!(limiter.try_acquire());
        assert!(limiter.try_acquire());
        assert!(!limiter.try_acquire());
        let fast = RateLimiter::new(1000.0, 1);
        assert!(fast.try_acquire());
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(fast.try_acquire());
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
