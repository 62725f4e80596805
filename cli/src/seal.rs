//! `signet seal`, `signet unseal` and `signet keys new-sealing-key`: the kubeseal-compatible side of
//! the CLI. All cryptography is in `signet-seal`; this module reads inputs, parses manifests, picks
//! output formats and writes files atomically.
//!
//! Output format: JSON by default, exactly like kubeseal (`-o yaml` for YAML), so scripts that pipe
//! kubeseal's output keep working; it does not follow the input format. Several input documents give
//! several output documents: concatenated JSON objects (as kubeseal writes them, and as `kubectl apply
//! -f` reads them) or `---`-separated YAML documents.
//!
//! Online modes (`--fetch-cert`, `--validate`, `--re-encrypt`, and sealing without `--cert`) talk to a
//! running controller's HTTP API: directly at `--controller-url`, or, like kubeseal by default,
//! through the Kubernetes API server's service proxy to the Service `--controller-name` in
//! `--controller-namespace` (see [`crate::service_proxy`]); failures there exit with
//! [`code::ONLINE_MODE_UNAVAILABLE`].

use crate::exit::{CliError, CliResult, code};
use crate::io::{Input, write_atomic, write_stdout};
use crate::service_proxy::{ProxyTarget, ServiceProxy};
use clap::{Args, Subcommand, ValueEnum};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;
use signet_api::{SealedSecret, Secret};
use signet_seal::convert::{SealOptions, merge_into, seal_secret, unseal_sealed_secret};
use signet_seal::{PrivateKeyRing, Scope, SealError, SealingCertificate, generate_sealing_key};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Output serialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
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

impl OnlineArgs {
    /// The controller to talk to, or `None` when `have_cert` and no flag needs one. With
    /// --controller-url it is reached directly; otherwise through the API server's service proxy
    /// (connecting only here, so offline sealing never starts a Kubernetes client).
    fn controller(&self, have_cert: bool) -> CliResult<Option<Controller>> {
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
enum Controller {
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
    fn describe(&self) -> String {
        match self {
            Controller::Direct { base } => base.clone(),
            Controller::Proxy(proxy) => proxy.describe(),
        }
    }

    /// `GET /v1/cert.pem`.
    fn cert_pem(&self) -> CliResult<Vec<u8>> {
        match self {
            Controller::Direct { base } => fetch_url(&format!("{base}/v1/cert.pem")),
            Controller::Proxy(proxy) => proxy.get("/v1/cert.pem"),
        }
    }

    /// POSTs `body` to `path`; the HTTP status and the response body.
    fn post(&self, path: &str, body: &[u8]) -> CliResult<(u16, Vec<u8>)> {
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
    #[arg(long, value_name = "FILE|URL", env = "SEALED_SECRETS_CERT")]
    pub cert: Option<String>,
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
    pub format: Format,
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
    pub format: Format,
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

pub(crate) fn seal_error(what: &str, e: SealError) -> CliError {
    let code = match e {
        SealError::Unseal => code::UNSEAL_FAILED,
        SealError::Certificate(_) | SealError::CertificateExpired(_) => code::SEALING_CERT_UNUSABLE,
        SealError::PrivateKey { .. } | SealError::NoPrivateKey(_) => code::COULD_NOT_RETRIEVE_KEY,
        SealError::Manifest(_) | SealError::Template { .. } => code::INVALID_MANIFEST,
        _ => code::ERROR_GENERIC,
    };
    CliError::new(code, format!("{what}: {e}"))
}

fn read_file(path: &Path) -> CliResult<Vec<u8>> {
    Input::File(path.to_path_buf()).read()
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
fn cert_bytes(source: &str) -> CliResult<Vec<u8>> {
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

/// Parses a manifest stream (see [`signet_seal::manifest::parse_documents`]); errors name the input,
/// never its content.
fn parse_documents(bytes: &[u8], origin: &str) -> CliResult<Vec<Value>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| CliError::new(code::INVALID_MANIFEST, format!("{origin}: not UTF-8 text")))?;
    signet_seal::manifest::parse_documents(text).map_err(|e| seal_error(origin, e))
}

fn typed<T: serde::de::DeserializeOwned>(doc: Value, kind: &str, where_: &str) -> CliResult<T> {
    signet_seal::manifest::typed(doc, kind).map_err(|e| seal_error(where_, e))
}

pub(crate) fn render<T: Serialize>(objects: &[T], format: Format) -> CliResult<Vec<u8>> {
    let mut out = Vec::new();
    for object in objects {
        match format {
            Format::Json => {
                let text = serde_json::to_string_pretty(object).map_err(|e| {
                    CliError::new(code::ERROR_DUMPING_TREE, format!("cannot write JSON: {e}"))
                })?;
                out.extend_from_slice(text.as_bytes());
                out.push(b'\n');
            }
            Format::Yaml => {
                // Sealed values are long single-line tokens: keep them plain on one line like kubeseal
                // (the default would fold them into `>-` blocks).
                let mut options = serde_saphyr::SerializerOptions::default();
                options.prefer_block_scalars = false;
                let text = serde_saphyr::to_string_with_options(object, options).map_err(|e| {
                    CliError::new(code::ERROR_DUMPING_TREE, format!("cannot write YAML: {e}"))
                })?;
                out.extend_from_slice(b"---\n");
                out.extend_from_slice(text.as_bytes());
                if !text.ends_with('\n') {
                    out.push(b'\n');
                }
            }
        }
    }
    Ok(out)
}

fn emit(bytes: &[u8], output: Option<&Path>) -> CliResult {
    match output {
        Some(path) => write_atomic(path, bytes),
        None => write_stdout(bytes),
    }
}

/// Runs `signet seal`.
pub fn seal(args: SealArgs) -> CliResult {
    let controller = args.online.controller(args.cert.is_some())?;
    if let Some(controller) = &controller {
        if args.online.fetch_cert {
            return emit(&controller.cert_pem()?, args.output.as_deref());
        }
        if args.online.validate || args.online.re_encrypt {
            return online_check(&args, controller);
        }
    }
    let cert = match (&controller, args.cert.as_deref()) {
        (Some(controller), None) => SealingCertificate::from_pem(&controller.cert_pem()?)
            .map_err(|e| seal_error(&controller.describe(), e))?,
        (_, cert) => load_cert(cert)?,
    };
    if let (true, Some(source)) = (args.online.fetch_cert, args.cert.as_deref()) {
        // With --cert (and no --controller-url), kubeseal prints that certificate as it is.
        return emit(&cert_bytes(source)?, args.output.as_deref());
    }
    if args.raw {
        return seal_raw(&args, &cert);
    }
    let input = Input::from_arg(args.input.as_deref().or(args.secret_file.as_deref()));
    let origin = input.display_name();
    // The input holds plaintext: wipe the buffer when done.
    let bytes = zeroize::Zeroizing::new(input.read()?);
    let docs = parse_documents(&bytes, &origin)?;
    if docs.is_empty() {
        return Err(CliError::new(
            code::NEED_AT_LEAST_ONE_DOCUMENT,
            format!("{origin}: no Secret found"),
        ));
    }
    let mut secrets = Vec::with_capacity(docs.len());
    for (i, doc) in docs.into_iter().enumerate() {
        let where_ = format!("{origin}: document {}", i + 1);
        secrets.push((where_.clone(), typed::<Secret>(doc, "Secret", &where_)?));
    }

    if let Some(target) = &args.merge_into {
        return merge(&secrets, &cert, target);
    }

    let options = SealOptions {
        scope: args.scope.map(Scope::from),
        default_namespace: args.namespace.clone(),
        default_name: args.name.clone(),
        allow_empty_data: args.allow_empty_data,
    };
    let sealed = secrets
        .par_iter()
        .map(|(where_, secret)| {
            seal_secret(secret, &cert, &options).map_err(|e| seal_error(where_, e))
        })
        .collect::<CliResult<Vec<_>>>()?;
    emit(&render(&sealed, args.format)?, args.output.as_deref())
}

/// `--validate` / `--re-encrypt`: send each input SealedSecret to the controller.
fn online_check(args: &SealArgs, controller: &Controller) -> CliResult {
    let input = Input::from_arg(args.input.as_deref().or(args.secret_file.as_deref()));
    let origin = input.display_name();
    let bytes = input.read()?;
    let mut resealed = Vec::new();
    for (i, doc) in parse_documents(&bytes, &origin)?.into_iter().enumerate() {
        let where_ = format!("{origin}: document {}", i + 1);
        let sealed: SealedSecret = typed(doc, "SealedSecret", &where_)?;
        let body = serde_json::to_vec(&sealed)
            .map_err(|e| CliError::new(code::INVALID_MANIFEST, format!("{where_}: {e}")))?;
        if args.online.validate {
            match controller.post("/v1/verify", &body)?.0 {
                200 => {}
                409 => {
                    return Err(CliError::new(
                        code::UNSEAL_FAILED,
                        format!("{where_}: the controller cannot unseal this SealedSecret"),
                    ));
                }
                status => {
                    return Err(CliError::new(
                        code::ERROR_GENERIC,
                        format!("{where_}: the controller answered HTTP {status} to /v1/verify"),
                    ));
                }
            }
        } else {
            let (status, answer) = controller.post("/v1/rotate", &body)?;
            if status != 200 {
                return Err(CliError::new(
                    if status == 409 {
                        code::UNSEAL_FAILED
                    } else {
                        code::ERROR_GENERIC
                    },
                    format!("{where_}: the controller answered HTTP {status} to /v1/rotate"),
                ));
            }
            let docs = parse_documents(&answer, &controller.describe())?;
            for doc in docs {
                resealed.push(typed::<SealedSecret>(
                    doc,
                    "SealedSecret",
                    &controller.describe(),
                )?);
            }
        }
    }
    if args.online.re_encrypt {
        emit(&render(&resealed, args.format)?, args.output.as_deref())?;
    }
    Ok(())
}

fn seal_raw(args: &SealArgs, cert: &SealingCertificate) -> CliResult {
    let [spec] = args.from_file.as_slice() else {
        return Err(CliError::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            "--raw needs exactly one --from-file",
        ));
    };
    let path = spec.split_once('=').map_or(spec.as_str(), |(_, p)| p);
    let value = zeroize::Zeroizing::new(read_file(Path::new(path))?);
    let scope = args.scope.map_or(Scope::Strict, Scope::from);
    let label = scope
        .label(args.namespace.as_deref(), args.name.as_deref())
        .map_err(|e| {
            CliError::new(
                code::ERROR_CONFLICTING_PARAMETERS,
                format!("--raw: {e} (use -n/--namespace and --name, or --scope)"),
            )
        })?;
    let sealed = signet_seal::seal(cert, &label, &value).map_err(|e| seal_error("--raw", e))?;
    emit(sealed.as_bytes(), args.output.as_deref())
}

fn merge(secrets: &[(String, Secret)], cert: &SealingCertificate, target: &Path) -> CliResult {
    let [(where_, secret)] = secrets else {
        return Err(CliError::new(
            code::ERROR_CONFLICTING_PARAMETERS,
            "--merge-into takes exactly one input Secret",
        ));
    };
    let origin = target.display().to_string();
    let bytes = read_file(target)?;
    let is_json = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let mut docs = parse_documents(&bytes, &origin)?;
    if docs.len() != 1 {
        return Err(CliError::new(
            code::INVALID_MANIFEST,
            format!("{origin}: --merge-into needs a file with exactly one SealedSecret"),
        ));
    }
    let mut existing: SealedSecret = typed(docs.remove(0), "SealedSecret", &origin)?;
    merge_into(&mut existing, secret, cert).map_err(|e| seal_error(where_, e))?;
    let format = if is_json { Format::Json } else { Format::Yaml };
    write_atomic(target, &render(&[existing], format)?)
}

/// Runs `signet unseal`.
/// The private keys named by `--recovery-private-key`.
pub(crate) fn load_ring(paths: &[PathBuf]) -> CliResult<PrivateKeyRing> {
    let mut ring = PrivateKeyRing::new();
    for path in paths {
        let origin = path.display().to_string();
        warn_if_readable_by_others(path);
        let bytes = zeroize::Zeroizing::new(read_file(path)?);
        ring.add_from_bytes(&bytes, &origin)
            .map_err(|e| seal_error(&origin, e))?;
    }
    Ok(ring)
}

pub fn unseal(args: UnsealArgs) -> CliResult {
    let ring = load_ring(&args.recovery_private_key)?;
    let input = Input::from_arg(args.input.as_deref());
    let origin = input.display_name();
    let docs = parse_documents(&input.read()?, &origin)?;
    if docs.is_empty() {
        return Err(CliError::new(
            code::NEED_AT_LEAST_ONE_DOCUMENT,
            format!("{origin}: no SealedSecret found"),
        ));
    }
    let mut sealed = Vec::with_capacity(docs.len());
    for (i, doc) in docs.into_iter().enumerate() {
        let where_ = format!("{origin}: document {}", i + 1);
        let object: SealedSecret = typed(doc, "SealedSecret", &where_)?;
        sealed.push((where_, object));
    }
    let secrets = sealed
        .par_iter()
        .map(|(where_, object)| {
            unseal_sealed_secret(object, &ring).map_err(|e| seal_error(where_, e))
        })
        .collect::<CliResult<Vec<_>>>()?;
    let bytes = zeroize::Zeroizing::new(render(&secrets, args.format)?);
    emit(&bytes, args.output.as_deref())
}

/// Runs `signet reseal`. A file that fails is reported and left untouched; the others are still done.
pub fn reseal(args: ResealArgs) -> CliResult {
    let ring = load_ring(&args.recovery_private_key)?;
    let cert = load_cert(Some(&args.cert))?;
    let mut failed = 0;
    for path in &args.files {
        if let Err(e) = crate::rekey::sealed::reseal_file(path, &ring, &cert) {
            eprintln!("signet: {}", e.message);
            failed += 1;
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(CliError::new(
            code::UNSEAL_FAILED,
            format!(
                "{n} of {} file(s) could not be re-sealed (left unchanged)",
                args.files.len()
            ),
        )),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "signet: warning: private key {} is readable by group or others (chmod 600 it)",
            path.display()
        );
    }
}

/// Runs `signet keys ...`.
pub fn keys(command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::NewSealingKey(args) => new_sealing_key(args),
    }
}

fn new_sealing_key(args: NewSealingKeyArgs) -> CliResult {
    for path in [
        Some(&args.key_out),
        Some(&args.cert_out),
        args.secret_out.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if path.exists() && !args.force {
            return Err(CliError::new(
                code::COULD_NOT_WRITE_OUTPUT_FILE,
                format!("{} exists; pass --force to overwrite it", path.display()),
            ));
        }
    }
    let validity = Duration::from_secs(args.validity_days.saturating_mul(24 * 3600));
    let generated = generate_sealing_key(args.bits, validity, &args.cn)
        .map_err(|e| seal_error("new-sealing-key", e))?;
    write_private(&args.key_out, generated.private_key_pem.as_bytes())?;
    write_atomic(&args.cert_out, generated.certificate_pem.as_bytes())?;
    if let Some(path) = &args.secret_out {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let manifest = zeroize::Zeroizing::new(
            serde_json::to_string_pretty(&serde_json::json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": args.secret_name,
                    "namespace": args.secret_namespace,
                    "labels": {"sealedsecrets.bitnami.com/sealed-secrets-key": "active"},
                },
                "type": "kubernetes.io/tls",
                "data": {
                    "tls.crt": b64(generated.certificate_pem.as_bytes()),
                    "tls.key": b64(generated.private_key_pem.as_bytes()),
                },
            }))
            .map_err(|e| CliError::new(code::ERROR_DUMPING_TREE, e.to_string()))?
                + "\n",
        );
        write_private(path, manifest.as_bytes())?;
    }
    eprintln!(
        "signet: wrote {} (private key, 0600) and {} (certificate); load them into the controller's \
         namespace as a kubernetes.io/tls Secret labelled sealedsecrets.bitnami.com/sealed-secrets-key=active",
        args.key_out.display(),
        args.cert_out.display()
    );
    Ok(())
}

/// Writes a file that holds key material: atomically, and mode 0600 even when it replaces a file
/// with looser permissions.
fn write_private(path: &Path, bytes: &[u8]) -> CliResult {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        // write_atomic keeps an existing file's mode; tighten it first.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            CliError::new(
                code::COULD_NOT_WRITE_OUTPUT_FILE,
                format!("cannot chmod {}: {e}", path.display()),
            )
        })?;
    }
    write_atomic(path, bytes)
}
