//! Controller configuration: the command-line flags (each also read from an environment variable) and
//! the [`Config`] the library runs with.

use crate::external::policy::{AllowedUrl, DEFAULT_TOKEN_AUDIENCE, StorePolicy};
use clap::{Parser, ValueEnum};
use k8s_openapi::jiff::Timestamp;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything the controller needs besides a Kubernetes client.
#[derive(Debug, Clone)]
pub struct Config {
    /// Namespace holding the sealing-key Secrets (and, later, the leader-election Lease).
    pub controller_namespace: String,
    /// Only reconcile SealedSecrets of this namespace; `None` watches the whole cluster.
    pub watch_namespace: Option<String>,
    /// Address of the HTTP API (`/v1/cert.pem`, `/v1/verify`, `/v1/rotate`, probes).
    pub listen_addr: SocketAddr,
    /// Address of the `/metrics` endpoint.
    pub metrics_addr: SocketAddr,
    /// A new sealing key is made when the newest one is this old; `None` never renews.
    pub key_renew_period: Option<Duration>,
    /// Keys created before this instant count as too old: one new key is made at start.
    pub key_cutoff_time: Option<Timestamp>,
    /// Size of generated RSA keys (4096 in production).
    pub key_bits: usize,
    /// Name prefix (`generateName`) of generated key Secrets (Bitnami's `--key-prefix`).
    pub key_prefix: String,
    /// Re-check every SealedSecret this often (no write unless something changed); `None` waits for
    /// watch events only.
    pub resync_period: Option<Duration>,
    /// `/v1/verify` and `/v1/rotate`: requests allowed per second, sustained.
    pub verify_rate_per_second: f64,
    /// `/v1/verify` and `/v1/rotate`: burst size.
    pub verify_burst: u32,
    /// Name reported in Events (`reportingInstance`) and held in the Lease, e.g. the pod name.
    pub instance: Option<String>,
    /// Leader election; `None` makes this process the only writer (one replica, tests).
    pub leader_election: Option<LeaderElection>,
    /// Reconciles in flight at once. Bounded so that catching up with thousands of objects does not
    /// open thousands of API connections at once (memory) while still overlapping API latency.
    pub max_concurrent_reconciles: u16,
    /// Secrets in the controller namespace whose `*.agekey` entries hold age identities and
    /// whose `*.asc` entries hold armored PGP secret keys for SopsSecrets.
    pub sops_age_secrets: Vec<String>,
    /// Environment of the SopsSecret key sources (AWS_*, VAULT_*, SOPS_* variables): the binary
    /// passes its own; tests pass what they need.
    pub sops_environment: Vec<(String, String)>,
    /// Longest wait between retries of a failing ExternalSecret (doubling from 5 s).
    pub provider_backoff_max: Duration,
    /// What ExternalSecret stores may use: their own namespace, token audiences, the controller's
    /// identity, provider URLs.
    pub store_policy: StorePolicy,
    /// Open SopsSecrets without `spec.binding` (in any namespace they are copied to): for a
    /// migration only.
    pub allow_unbound_sops_secrets: bool,
    /// Roll out the workloads an object names in `signet.dev/restart` when its Secret's data
    /// changes ([`crate::restart`]); off, such annotations only draw a Warning event.
    pub restart_on_change: bool,
}

/// Leader election through a `coordination.k8s.io` Lease in the controller namespace: only the
/// holder reconciles and makes keys; every replica serves the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElection {
    /// Name of the Lease.
    pub lease_name: String,
    /// How long a holder's claim is valid after its last renewal (a standby takes over after it).
    pub lease_duration: Duration,
    /// How long before expiry the holder renews.
    pub renew_grace: Duration,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            lease_name: "signet-controller".to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_grace: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Defaults for a controller whose keys live in `controller_namespace`.
    pub fn new(controller_namespace: impl Into<String>) -> Self {
        Config {
            controller_namespace: controller_namespace.into(),
            watch_namespace: None,
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            metrics_addr: SocketAddr::from(([0, 0, 0, 0], 8081)),
            key_renew_period: Some(DEFAULT_KEY_RENEW_PERIOD),
            key_cutoff_time: None,
            key_bits: 4096,
            key_prefix: crate::keyring::SEALING_KEY_NAME_PREFIX.to_owned(),
            resync_period: Some(Duration::from_secs(3600)),
            verify_rate_per_second: 2.0,
            verify_burst: 10,
            instance: None,
            leader_election: None,
            max_concurrent_reconciles: DEFAULT_MAX_CONCURRENT_RECONCILES,
            sops_age_secrets: Vec::new(),
            sops_environment: Vec::new(),
            provider_backoff_max: Duration::from_secs(300),
            store_policy: StorePolicy::default(),
            allow_unbound_sops_secrets: false,
            restart_on_change: false,
        }
    }
}

/// Reconciles in flight per kind unless configured. Each holds an API connection and its buffers:
/// catching up with 5,000 SealedSecrets on 2 cores, 16 peaked at 41.0 MiB where 64 peaked at
/// 45.3 MiB, in the same time (the CPU-bound part runs 1 per core anyway, `crate::cpu`).
pub const DEFAULT_MAX_CONCURRENT_RECONCILES: u16 = 16;

/// Thirty days, the Bitnami controller's default.
pub const DEFAULT_KEY_RENEW_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `signet-controller` command line.
#[derive(Debug, Parser)]
#[command(
    name = "signet-controller",
    version,
    about = "Turns SealedSecrets, SopsSecrets and ExternalSecrets into Secrets and manages the sealing keys"
)]
pub struct Args {
    /// Namespace of the sealing-key Secrets.
    #[arg(
        long,
        env = "SIGNET_CONTROLLER_NAMESPACE",
        default_value = "kube-system"
    )]
    pub controller_namespace: String,
    /// Only watch SealedSecrets in this namespace (default: all namespaces).
    #[arg(long, env = "SIGNET_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Address of the HTTP API.
    #[arg(long, env = "SIGNET_LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,
    /// Address of the metrics endpoint.
    #[arg(long, env = "SIGNET_METRICS_ADDR", default_value = "0.0.0.0:8081")]
    pub metrics_addr: SocketAddr,
    /// Make a new sealing key when the newest is this old (`30d`, `720h`, `90m`; `0` = never).
    #[arg(long, env = "SIGNET_KEY_RENEW_PERIOD", default_value = "30d", value_parser = parse_period)]
    pub key_renew_period: Duration,
    /// Keys created before this RFC 3339 time are too old: make a new one now.
    #[arg(long, env = "SIGNET_KEY_CUTOFF_TIME")]
    pub key_cutoff_time: Option<Timestamp>,
    /// Re-check every SealedSecret this often (`0` = only on changes).
    #[arg(long, env = "SIGNET_RESYNC_PERIOD", default_value = "1h", value_parser = parse_period)]
    pub resync_period: Duration,
    /// Log format.
    #[arg(long, env = "SIGNET_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Elect one leader among replicas through a Lease (`false` for a single replica).
    #[arg(long, env = "SIGNET_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the leader-election Lease in the controller namespace.
    #[arg(long, env = "SIGNET_LEASE_NAME", default_value = "signet-controller")]
    pub lease_name: String,
    /// Reconciles in flight at once.
    #[arg(long, env = "SIGNET_MAX_CONCURRENT_RECONCILES", default_value_t = DEFAULT_MAX_CONCURRENT_RECONCILES, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,
    /// Secrets (in the controller namespace) whose `*.agekey` entries are age identities and
    /// `*.asc` entries armored PGP secret keys for SopsSecrets; repeat or separate with commas.
    #[arg(
        long = "sops-age-secret",
        env = "SIGNET_SOPS_AGE_SECRETS",
        value_delimiter = ','
    )]
    pub sops_age_secrets: Vec<String>,
    /// Longest wait between retries of a failing ExternalSecret (doubling from 5 s).
    #[arg(long, env = "SIGNET_PROVIDER_BACKOFF_MAX", default_value = "5m", value_parser = parse_period)]
    pub provider_backoff_max: Duration,
    /// Open SopsSecrets that have no `spec.binding`, in whatever namespace they are created (a
    /// copy of another team's object too): only while migrating old files.
    #[arg(long, env = "SIGNET_ALLOW_UNBOUND_SOPS_SECRETS")]
    pub allow_unbound_sops_secrets: bool,
    /// Roll out the Deployments, StatefulSets and DaemonSets a SealedSecret, SopsSecret or
    /// ExternalSecret names in its `signet.dev/restart` annotation (in its own namespace) when its
    /// Secret's data changes (needs `get` and `patch` on them).
    #[arg(long, env = "SIGNET_RESTART_ON_CHANGE", default_value_t = false, action = clap::ArgAction::Set)]
    pub restart_on_change: bool,
    /// Audience of the ServiceAccount tokens minted for Vault Kubernetes auth when a store names
    /// none (never leave it to the API server's own audience).
    #[arg(long, env = "SIGNET_SERVICE_ACCOUNT_TOKEN_AUDIENCE", default_value = DEFAULT_TOKEN_AUDIENCE, value_parser = non_empty)]
    pub service_account_token_audience: String,
    /// Audiences a store may ask for in `serviceAccountRef.audiences`; repeat or separate with
    /// commas (default: only --service-account-token-audience).
    #[arg(
        long = "allowed-token-audience",
        env = "SIGNET_ALLOWED_TOKEN_AUDIENCES",
        value_delimiter = ',',
        value_parser = non_empty
    )]
    pub allowed_token_audiences: Vec<String>,
    /// Let namespaced SecretStores without credentials use the controller's own cloud identity
    /// (ClusterSecretStores always may).
    #[arg(long, env = "SIGNET_ALLOW_CONTROLLER_IDENTITY_IN_SECRET_STORES", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_controller_identity_in_secret_stores: bool,
    /// Provider URLs (`vault.server`, `aws.endpoint`) stores may use: same scheme, host and port,
    /// path equal or below; repeat or separate with commas (default: any).
    #[arg(
        long = "allowed-provider-url",
        env = "SIGNET_ALLOWED_PROVIDER_URLS",
        value_delimiter = ',',
        value_parser = AllowedUrl::parse
    )]
    pub allowed_provider_urls: Vec<AllowedUrl>,
    /// `/v1/verify` and `/v1/rotate`: requests per second allowed per client, sustained.
    #[arg(long, env = "SIGNET_RATE_LIMIT", default_value_t = 2.0, value_parser = parse_rate)]
    pub rate_limit: f64,
    /// `/v1/verify` and `/v1/rotate`: requests a client may make at once before the rate applies.
    #[arg(long, env = "SIGNET_RATE_LIMIT_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// The Bitnami controller's flags, for a drop-in migration.
    #[command(flatten)]
    pub bitnami: crate::sealed_secret::flags::BitnamiFlags,
}

fn non_empty(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(text.to_owned())
}

/// A rate: a finite number above zero.
fn parse_rate(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|rate| rate.is_finite() && *rate > 0.0)
        .ok_or_else(|| format!("{text:?}: expected a number of requests per second above 0"))
}

/// Prefixes of the environment variables the SopsSecret key sources read.
const SOPS_ENVIRONMENT_PREFIXES: [&str; 3] = ["AWS_", "VAULT_", "SOPS_"];

impl Args {
    /// The library configuration these flags describe.
    pub fn to_config(&self) -> Config {
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        Config {
            watch_namespace: self
                .watch_namespace
                .clone()
                .filter(|n| !n.is_empty())
                .or_else(|| {
                    self.bitnami
                        .watch_namespace(&self.controller_namespace)
                        .map(str::to_owned)
                }),
            key_prefix: self.bitnami.key_prefix.clone(),
            listen_addr: self.listen_addr,
            metrics_addr: self.metrics_addr,
            key_renew_period: nonzero(self.key_renew_period),
            key_cutoff_time: self.key_cutoff_time,
            resync_period: nonzero(self.resync_period),
            instance: std::env::var("POD_NAME").ok(),
            leader_election: self.leader_elect.then(|| LeaderElection {
                lease_name: self.lease_name.clone(),
                ..LeaderElection::default()
            }),
            max_concurrent_reconciles: self.max_concurrent_reconciles,
            sops_age_secrets: self.sops_age_secrets.clone(),
            provider_backoff_max: self.provider_backoff_max,
            store_policy: StorePolicy {
                token_audience: self.service_account_token_audience.clone(),
                allowed_token_audiences: self.allowed_token_audiences.clone(),
                controller_identity_in_secret_stores: self
                    .allow_controller_identity_in_secret_stores,
                allowed_provider_urls: self.allowed_provider_urls.clone(),
            },
            allow_unbound_sops_secrets: self.allow_unbound_sops_secrets,
            restart_on_change: self.restart_on_change,
            verify_rate_per_second: self.rate_limit,
            verify_burst: self.rate_limit_burst,
            sops_environment: std::env::vars()
                .filter(|(k, _)| {
                    SOPS_ENVIRONMENT_PREFIXES.iter().any(|p| k.starts_with(p))
                        || k == "HOME"
                        || k == "XDG_CONFIG_HOME"
                })
                .collect(),
            ..Config::new(self.controller_namespace.clone())
        }
    }
}

/// Longest period accepted anywhere (flags, `refreshInterval`): ten years. Far beyond any sensible
/// refresh or renewal, and far below what `Instant + Duration` can hold, so no caller overflows.
pub const MAX_PERIOD: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Parses a period: `0`, or numbers with units `d`, `h`, `m`, `s`, `ms` run together (`1h30m`), at
/// most [`MAX_PERIOD`]. Text from a cluster object reaches this: every step is checked, nothing
/// panics or overflows, a bad period is an error.
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err("empty period".to_owned());
    }
    let too_long = || format!("{text:?}: longer than the maximum of 3650d");
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("{text:?}: a number needs a unit (d, h, m, s, ms)"))?;
        if digits == 0 {
            return Err(format!("{text:?}: expected a number at {rest:?}"));
        }
        // Leading zeros aside, more than 12 digits is beyond MAX_PERIOD in any unit.
        let number: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let millis_per_unit: u64 = match &rest[..unit_len] {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            "ms" => 1,
            other => return Err(format!("{text:?}: unknown unit {other:?} (d, h, m, s, ms)")),
        };
        total = number
            .checked_mul(millis_per_unit)
            .map(Duration::from_millis)
            .and_then(|part| total.checked_add(part))
            .filter(|total| *total <= MAX_PERIOD)
            .ok_or_else(too_long)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's flag table is what the binary does: each row's flag exists, reads the row's
    /// variable, and defaults to the row's value where the row gives one literally.
    #[test]
    fn the_readme_flag_table_matches_the_flags() {
        use clap::CommandFactory;
        let command = Args::command();
        let mut rows = 0;
        for line in include_str!("../README.md").lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, flag, env, default, ..] = cells.as_slice() else {
                continue;
            };
            let Some(flag) = flag.strip_prefix("`--").and_then(|f| f.strip_suffix('`')) else {
                continue;
            };
            rows += 1;
            let arg = command
                .get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .unwrap_or_else(|| panic!("README lists --{flag}, which the controller lacks"));
            let env_name = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(
                env_name.as_deref(),
                env.strip_prefix('`').and_then(|e| e.strip_suffix('`')),
                "--{flag}"
            );
            if let Some(literal) = default.strip_prefix('`').and_then(|d| d.strip_suffix('`')) {
                let mut defaults: Vec<String> = arg
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect();
                // A switch (`--flag` alone) is off unless given.
                if defaults.is_empty() && matches!(arg.get_action(), clap::ArgAction::SetTrue) {
                    defaults.push("false".to_owned());
                }
                assert_eq!(defaults, [literal], "default of --{flag}");
            }
        }
        assert!(
            rows >= 20,
            "the README's flag table was not found ({rows} rows)"
        );
    }

    #[test]
    fn help_names_every_kind_the_controller_turns_into_secrets() {
        use clap::CommandFactory;
        use kube::Resource;
        let about = Args::command()
            .get_about()
            .map(ToString::to_string)
            .unwrap_or_default();
        for kind in [
            crate::sealed_secret::KIND,
            crate::sops_secret::KIND,
            &crate::external::ExternalSecret::kind(&()),
        ] {
            assert!(about.contains(&format!("{kind}s")), "{kind}: {about}");
        }
    }

    #[test]
    fn periods_parse_with_units_and_zero() {
        assert_eq!(parse_period("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_period("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_period("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_period("0"), Ok(Duration::ZERO));
        assert!(parse_period("30").is_err());
        assert!(parse_period("5y").is_err());
        assert!(parse_period("").is_err());
        assert!(parse_period("h").is_err());
    }

    #[test]
    fn hostile_periods_are_errors_not_panics() {
        // Regression: `999999999999999999d` panicked in `Duration::from_secs_f64`.
        for bad in [
            "999999999999999999d",
            "18446744073709551615ms",
            "18446744073709551616s",
            "123456789012345678901234567890s",
            "3651d",
            "3650d1ms",
            "-5m",
            "1e9s",
            "1.5h",
            "5 m",
            "5m\u{e9}",
            "\u{fc}",
            "5\u{661}s",
        ] {
            assert!(parse_period(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_period("3650d"), Ok(MAX_PERIOD));
        assert_eq!(parse_period("0000001s"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn flags_map_to_config_with_zero_meaning_never() {
        let args = Args::try_parse_from([
            "signet-controller",
            "--controller-namespace",
            "signet",
            "--key-renew-period",
            "0",
            "--listen-addr",
            "127.0.0.1:9000",
            "--key-cutoff-time",
            "2026-01-02T03:04:05Z",
            "--log-format",
            "json",
            "--leader-elect",
            "false",
            "--rate-limit",
            "0.5",
            "--rate-limit-burst",
            "3",
        ])
        .unwrap();
        let config = args.to_config();
        assert_eq!(config.controller_namespace, "signet");
        assert_eq!(config.key_renew_period, None);
        assert_eq!(config.listen_addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.metrics_addr.port(), 8081);
        assert_eq!(
            config.key_cutoff_time.unwrap().to_string(),
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(args.log_format, LogFormat::Json);
        assert_eq!(config.verify_rate_per_second, 0.5);
        assert_eq!(config.verify_burst, 3);
        for bad in ["0", "-1", "NaN", "inf", "x"] {
            assert!(
                Args::try_parse_from(["signet-controller", "--rate-limit", bad]).is_err(),
                "{bad}"
            );
        }
        let defaults = Args::try_parse_from(["signet-controller"])
            .unwrap()
            .to_config();
        assert_eq!(defaults.key_renew_period, Some(DEFAULT_KEY_RENEW_PERIOD));
        assert!(!defaults.allow_unbound_sops_secrets);
        let migrating = Args::try_parse_from(["signet-controller", "--allow-unbound-sops-secrets"])
            .unwrap()
            .to_config();
        assert!(migrating.allow_unbound_sops_secrets);
    }

    #[test]
    fn store_policy_flags_default_to_the_strict_policy() {
        let defaults = Args::try_parse_from(["signet-controller"])
            .unwrap()
            .to_config();
        assert_eq!(defaults.store_policy, StorePolicy::default());
        let args = Args::try_parse_from([
            "signet-controller",
            "--service-account-token-audience",
            "openbao",
            "--allowed-token-audience",
            "openbao,vault-eu",
            "--allow-controller-identity-in-secret-stores",
            "true",
            "--allowed-provider-url",
            "https://vault.example:8200",
            "--allowed-provider-url",
            "http://127.0.0.1:5000/moto",
        ])
        .unwrap();
        let policy = args.to_config().store_policy;
        assert_eq!(policy.token_audience, "openbao");
        assert_eq!(policy.allowed_token_audiences, ["openbao", "vault-eu"]);
        assert!(policy.controller_identity_in_secret_stores);
        assert_eq!(policy.allowed_provider_urls.len(), 2);
        assert!(policy.allowed_provider_urls[1].allows("http://127.0.0.1:5000/moto/x"));
        // A list entry that is not a URL, or an empty audience, is a usage error at start.
        for bad in [
            ["--allowed-provider-url", "vault.example"],
            ["--service-account-token-audience", ""],
            ["--allowed-token-audience", " "],
        ] {
            assert!(
                Args::try_parse_from(["signet-controller", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }
}
