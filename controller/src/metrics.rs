//! Prometheus metrics (`signet_` prefix), served on their own port. Labels never carry secret
//! material: kinds, reasons, resources and key fingerprints (public) only.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Mutex;

/// Labels of a reconcile counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Resource kind, e.g. `SealedSecret`.
    pub kind: String,
}

/// Labels of an error counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Resource kind.
    pub kind: String,
    /// Machine-readable reason, the condition's `reason`.
    pub reason: String,
}

/// Labels of the API-write counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// What was written: `secret`, `status`, `event`, `key`.
    pub target: String,
}

/// Labels of the per-key gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    /// SHA-256 fingerprint of the sealing key's public key; `none` when not recorded (not synced
    /// yet, several keys, or a Bitnami-schema CRD that prunes the field).
    pub fingerprint: String,
}

/// Labels of the build-info gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// Crate version.
    pub version: String,
}

/// Every metric the controller exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Reconciles run, by kind.
    pub reconciles: Family<KindLabels, Counter>,
    /// Reconciles that ended in a failure condition or error, by kind and reason.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// Time to unseal one SealedSecret.
    pub unseal_duration: Histogram,
    /// Keys in the sealing-key ring.
    pub sealing_keys: Gauge,
    /// Writes the controller sent to the API server, by target.
    pub api_writes: Family<WriteLabels, Counter>,
    /// SealedSecrets by the key that opened them (so an operator knows when a key can be retired).
    pub sealed_secrets_by_key: Family<KeyLabels, Gauge>,
    /// Calls to external secret stores, by provider, operation and outcome.
    pub provider_calls: Family<ProviderCallLabels, Counter>,
    /// Secrets written from a source object, by kind.
    pub syncs: Family<KindLabels, Counter>,
    provider_fetches_total: std::sync::atomic::AtomicU64,
}

/// Labels of [`Metrics::provider_calls`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderCallLabels {
    /// `vault`, `aws-secretsmanager`, `aws-ssm`.
    pub provider: String,
    /// `get`, `get_all`, `validate`.
    pub operation: String,
    /// `ok` or the error reason.
    pub status: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("signet");
        let reconciles = Family::<KindLabels, Counter>::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by reason",
            reconcile_errors.clone(),
        );
        let unseal_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "unseal_duration_seconds",
            "Time to unseal one SealedSecret",
            unseal_duration.clone(),
        );
        let sealing_keys = Gauge::default();
        registry.register(
            "sealing_keys",
            "Keys in the sealing-key ring",
            sealing_keys.clone(),
        );
        let api_writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "api_writes",
            "Writes sent to the API server",
            api_writes.clone(),
        );
        let sealed_secrets_by_key = Family::<KeyLabels, Gauge>::default();
        registry.register(
            "sealed_secrets_by_key",
            "SealedSecrets by the fingerprint of the sealing key that opened them",
            sealed_secrets_by_key.clone(),
        );
        let provider_calls = Family::<ProviderCallLabels, Counter>::default();
        registry.register(
            "provider_calls",
            "Calls to external secret stores, by provider, operation and status",
            provider_calls.clone(),
        );
        let syncs = Family::<KindLabels, Counter>::default();
        registry.register("syncs", "Secrets written, by source kind", syncs.clone());
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register("build_info", "Build information", build_info);
        Metrics {
            registry: Mutex::new(registry),
            reconciles,
            reconcile_errors,
            unseal_duration,
            sealing_keys,
            api_writes,
            sealed_secrets_by_key,
            provider_calls,
            syncs,
            provider_fetches_total: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Counts one reconcile of `kind`.
    pub fn count_reconcile(&self, kind: &str) {
        self.reconciles
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Counts one Secret written from a `kind` object.
    pub fn count_sync(&self, kind: &str) {
        self.syncs
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Counts one provider call.
    pub fn count_provider_call(&self, provider: &str, operation: &str, status: &str) {
        if operation != "validate" {
            self.provider_fetches_total
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.provider_calls
            .get_or_create(&ProviderCallLabels {
                provider: provider.to_owned(),
                operation: operation.to_owned(),
                status: status.to_owned(),
            })
            .inc();
    }

    /// Provider reads (`get`, `get_all`; store validation not counted) so far, all providers —
    /// for tests and benchmarks.
    pub fn provider_fetches_total(&self) -> u64 {
        self.provider_fetches_total
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Replaces the per-key gauge with these counts.
    pub fn set_sealed_secrets_by_key(&self, counts: &std::collections::BTreeMap<String, i64>) {
        self.sealed_secrets_by_key.clear();
        for (fingerprint, count) in counts {
            self.sealed_secrets_by_key
                .get_or_create(&KeyLabels {
                    fingerprint: fingerprint.clone(),
                })
                .set(*count);
        }
    }

    /// Counts one write to `target`.
    pub fn count_write(&self, target: &str) {
        self.api_writes
            .get_or_create(&WriteLabels {
                target: target.to_owned(),
            })
            .inc();
    }

    /// Writes so far to `target`.
    pub fn writes(&self, target: &str) -> u64 {
        self.api_writes
            .get_or_create(&WriteLabels {
                target: target.to_owned(),
            })
            .get()
    }

    /// Counts a failed reconcile.
    pub fn count_error(&self, kind: &str, reason: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_prefixed_names_and_labels() {
        let metrics = Metrics::new();
        metrics.count_error("SealedSecret", "UnsealFailed");
        metrics.count_write("secret");
        metrics.sealing_keys.set(2);
        metrics.set_sealed_secrets_by_key(&[("ab12".to_owned(), 3)].into());
        let text = metrics.encode();
        assert!(
            text.contains(
                "signet_reconcile_errors_total{kind=\"SealedSecret\",reason=\"UnsealFailed\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("signet_sealing_keys 2"), "{text}");
        assert!(
            text.contains("signet_sealed_secrets_by_key{fingerprint=\"ab12\"} 3"),
            "{text}"
        );
        assert!(text.contains("signet_build_info{version="), "{text}");
        assert!(
            text.contains("signet_unseal_duration_seconds_bucket"),
            "{text}"
        );
        assert_eq!(metrics.writes("secret"), 1);
    }

    /// The names of the series `/metrics` prints: sample names, and the declared names of
    /// histograms (whose samples are `_bucket`, `_sum` and `_count`).
    fn exposed_names(text: &str) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        for line in text.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                if let Some(name) = declared.strip_suffix(" histogram") {
                    names.insert(name.to_owned());
                }
            } else if !line.starts_with('#') {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                names.insert(line[..end].to_owned());
            }
        }
        names
    }

    #[test]
    fn every_metric_the_docs_name_is_exposed_under_that_name() {
        let metrics = Metrics::new();
        metrics.count_reconcile("SopsSecret");
        metrics.count_error("SopsSecret", "NoKey");
        metrics.count_write("secret");
        metrics.count_sync("ExternalSecret");
        metrics.count_provider_call("vault", "get", "ok");
        metrics.set_sealed_secrets_by_key(&[("ab12".to_owned(), 1)].into());
        let exposed = exposed_names(&metrics.encode());
        let docs = [
            ("controller/README.md", include_str!("../README.md")),
            (
                "docs/sops-secrets.md",
                include_str!("../../docs/sops-secrets.md"),
            ),
            (
                "docs/external-secrets.md",
                include_str!("../../docs/external-secrets.md"),
            ),
            (
                "docs/runbooks/03-sealing-key-compromised.md",
                include_str!("../../docs/runbooks/03-sealing-key-compromised.md"),
            ),
            (
                "docs/runbooks/05-disaster-recovery.md",
                include_str!("../../docs/runbooks/05-disaster-recovery.md"),
            ),
        ];
        let mut named = 0;
        for (path, text) in docs {
            for (at, _) in text.match_indices("`signet_") {
                let name: String = text[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                assert!(
                    exposed.contains(&name),
                    "{path} names {name}, which /metrics does not print: {exposed:?}"
                );
                named += 1;
            }
        }
        assert!(named >= 15, "only {named} metric names found in the docs");
    }
}
