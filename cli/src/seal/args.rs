//! The command-line arguments of `signet seal`, `signet unseal`, `signet reseal` and `signet keys`
//! (clap derive structs). Parsing only: what the flags do is in the sibling modules.

use clap::{Args, Subcommand, ValueEnum};
use signet_seal::Scope;
use std::path::PathBuf;

/// How `seal`, `unseal` and `reseal` write their manifests (not a sops file format:
/// that is `signet_sops::Format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManifestFormat {
    /// Pretty JSON, one object per document (kubeseal's default).
    Json,
    /// YAML, one `---` document per object.
    Yaml,
}

/// Sealing scope on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// Same name and namespace only.
    Strict,
    /// Any name in the same namespace.
    NamespaceWide,
    /// Any name, any namespace.
    ClusterWide,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Strict => Scope::Strict,
            ScopeArg::NamespaceWide => Scope::NamespaceWide,
            ScopeArg::ClusterWide => Scope::ClusterWide,
        }
    }
}

/// Flags that talk to a running Signet (or Bitnami) controller over its HTTP API.
#[derive(Debug, Args)]
pub struct OnlineArgs {
    /// Print the controller's current sealing certificate (`GET /v1/cert.pem`); with --cert, print
    /// that certificate instead (like kubeseal).
    #[arg(long)]
    pub fetch_cert: bool,
    /// Ask the controller whether the input SealedSecret can be unsealed (`POST /v1/verify`); exit 0
    /// when it can, 210 when it cannot.
    #[arg(long)]
    pub validate: bool,
    /// Re-seal the input SealedSecret to the controller's newest key (`POST /v1/rotate`).
    #[arg(long)]
    pub re_encrypt: bool,
    /// Controller base URL, e.g. `http://127.0.0.1:8080` (a port-forward or an in-cluster address),
    /// instead of the API server's service proxy.
    #[arg(long, value_name = "URL")]
    pub controller_url: Option<String>,
    /// Controller Service name, reached through the API server's service proxy (the default route
    /// when neither --cert nor --controller-url is given). Env: SEALED_SECRETS_CONTROLLER_NAME.
    #[arg(
        long,
        value_name = "NAME",
        env = "SEALED_SECRETS_CONTROLLER_NAME",
        default_value = "sealed-secrets-controller"
    )]
    pub controller_name: String,
    /// Namespace of that Service. Env: SEALED_SECRETS_CONTROLLER_NAMESPACE.
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "SEALED_SECRETS_CONTROLLER_NAMESPACE",
        default_value = "kube-system"
    )]
    pub controller_namespace: String,
    /// Kubeconfig for the service-proxy route (default: KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context for the service-proxy route (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// `signet seal`: turn Secrets into SealedSecrets (kubeseal-compatible).
#[derive(Debug, Args)]
pub struct SealArgs {
    /// Secret manifest(s): YAML (several `---` documents allowed) or a JSON stream; `-` or none reads
    /// stdin.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Same as FILE (kubeseal's spelling).
    #[arg(
        short = 'f',
        long = "secret-file",
        value_name = "FILE",
        conflicts_with = "input"
    )]
    pub secret_file: Option<PathBuf>,
    /// The controller's sealing certificate (PEM file, or http(s) URL). Env: SEALED_SECRETS_CERT.
    /// Repeat it to seal for several clusters: one SealedSecret per certificate and input Secret,
    /// annotated `signet.dev/cluster: NAME`, where NAME is the file's stem or given as `NAME=FILE|URL`.
    #[arg(long, value_name = "[NAME=]FILE|URL", env = "SEALED_SECRETS_CERT")]
    pub cert: Vec<String>,
    /// With --cert: write each cluster's SealedSecrets to its own file (atomically), named by this
    /// pattern with `{cluster}` replaced, e.g. `sealed-{cluster}.yaml` (default: all in one stream).
    #[arg(
        long,
        value_name = "PATTERN",
        conflicts_with_all = ["output", "raw", "merge_into"]
    )]
    pub output_pattern: Option<String>,
    /// Scope; default: the Secret's scope annotations, else strict.
    #[arg(long, value_enum)]
    pub scope: Option<ScopeArg>,
    /// Namespace for Secrets that declare none (and for --raw).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Name for Secrets that declare none (and for --raw).
    #[arg(long)]
    pub name: Option<String>,
    /// Output format (default json, like kubeseal).
    #[arg(short = 'o', long = "format", value_enum, default_value = "json")]
    pub format: ManifestFormat,
    /// Write the result to this file (atomically) instead of stdout.
    #[arg(short = 'w', long = "sealed-secret-file", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Seal one raw value (from --from-file) and print only the sealed value.
    #[arg(long)]
    pub raw: bool,
    /// With --raw: the file whose bytes are sealed verbatim (`[key=]path`; `/dev/stdin` works).
    #[arg(long = "from-file", value_name = "[KEY=]FILE", requires = "raw")]
    pub from_file: Vec<String>,
    /// Seal the input Secret's items into this existing SealedSecret file, in place (atomically).
    #[arg(long = "merge-into", value_name = "FILE", conflicts_with_all = ["raw", "output"])]
    pub merge_into: Option<PathBuf>,
    /// Seal Secrets that have no data at all.
    #[arg(long)]
    pub allow_empty_data: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub online: OnlineArgs,
}

/// `signet unseal`: offline recovery with the controller's private keys (like `kubeseal
/// --recovery-unseal`).
#[derive(Debug, Args)]
pub struct UnsealArgs {
    /// SealedSecret manifest(s), YAML or a JSON stream; `-` or none reads stdin.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Private key files: PEM (PKCS#1 or PKCS#8) or a key-backup Secret / v1.List (YAML or JSON).
    /// Repeat the flag or separate with commas.
    #[arg(
        long = "recovery-private-key",
        value_name = "KEY",
        value_delimiter = ',',
        required = true
    )]
    pub recovery_private_key: Vec<PathBuf>,
    /// Accepted for kubeseal compatibility (unsealing is what this command does).
    #[arg(long, hide = true)]
    pub recovery_unseal: bool,
    /// Output format (default json, like kubeseal).
    #[arg(short = 'o', long = "format", value_enum, default_value = "json")]
    pub format: ManifestFormat,
    /// Write the plaintext Secret(s) to this file (created 0600, atomically) instead of stdout.
    #[arg(short = 'w', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `signet reseal`: re-seal SealedSecret files to a new certificate offline, with the private keys
/// that open them today (no controller needed). Files are rewritten in place, atomically, in their own
/// format (JSON or YAML); scope, metadata and template are kept.
#[derive(Debug, Args)]
pub struct ResealArgs {
    /// SealedSecret files (one or many documents each).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The new sealing certificate (PEM file or http(s) URL). Env: SEALED_SECRETS_CERT.
    #[arg(long, value_name = "FILE|URL", env = "SEALED_SECRETS_CERT")]
    pub cert: String,
    /// Private keys that open the current values (PEM, or a key-backup Secret / v1.List); repeat the
    /// flag or separate with commas.
    #[arg(
        long = "recovery-private-key",
        value_name = "KEY",
        value_delimiter = ',',
        required = true
    )]
    pub recovery_private_key: Vec<PathBuf>,
}

/// `signet keys ...`: sealing key management.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate an RSA sealing key and a self-signed certificate like the controller's, for
    /// bring-your-own-key setups.
    NewSealingKey(NewSealingKeyArgs),
    /// List every key (age, PGP, KMS, Vault transit, sealing certificate) and the files that need
    /// it.
    Inventory(crate::inventory::InventoryArgs),
    /// Refuse while anything under PATH still needs the key; otherwise say how to retire it.
    Retire(crate::inventory::RetireArgs),
}

/// `signet keys new-sealing-key`.
#[derive(Debug, Args)]
pub struct NewSealingKeyArgs {
    /// Where to write the private key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "FILE", default_value = "sealing.key")]
    pub key_out: PathBuf,
    /// Where to write the certificate (PEM).
    #[arg(long, value_name = "FILE", default_value = "sealing.crt")]
    pub cert_out: PathBuf,
    /// RSA key size: 2048, 3072, 4096 or 8192.
    #[arg(long, default_value_t = 4096)]
    pub bits: usize,
    /// Certificate lifetime in days (the controller's default is ten years).
    #[arg(long, default_value_t = 3650)]
    pub validity_days: u64,
    /// Certificate common name (the controller's default is empty).
    #[arg(long, default_value = "")]
    pub cn: String,
    /// Also write the pair as a `kubernetes.io/tls` Secret manifest (JSON, mode 0600) labelled
    /// `sealedsecrets.bitnami.com/sealed-secrets-key: active`, ready for `kubectl apply` in the
    /// controller's namespace.
    #[arg(long, value_name = "FILE")]
    pub secret_out: Option<PathBuf>,
    /// Name of that Secret.
    #[arg(
        long,
        default_value = "sealed-secrets-key-byo",
        requires = "secret_out"
    )]
    pub secret_name: String,
    /// Namespace of that Secret (the controller's).
    #[arg(long, default_value = "kube-system", requires = "secret_out")]
    pub secret_namespace: String,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}
