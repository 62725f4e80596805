//! Arguments of the sops-style commands, named and spelled as sops spells them so muscle memory carries
//! over (`--age`, `--encrypted-regex`, `--in-place`, `--extract`, …).

use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// A file format, as `--input-type` / `--output-type` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// YAML (multi-document allowed).
    Yaml,
    /// JSON.
    Json,
    /// dotenv.
    Dotenv,
    /// INI.
    Ini,
    /// Any bytes.
    Binary,
}

/// Where the input comes from and how it is read.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// The file (`-` or nothing: stdin).
    pub file: Option<PathBuf>,
    /// Input format; default: from the file extension (binary when unknown).
    #[arg(long, value_enum)]
    pub input_type: Option<FormatArg>,
    /// Use this file name instead of FILE for format detection and `.sops.yaml` rule matching.
    #[arg(long, value_name = "NAME")]
    pub filename_override: Option<PathBuf>,
    /// Path of the sops config file (default: the nearest `.sops.yaml` walking up from the working dir).
    #[arg(long, value_name = "PATH", env = "SOPS_CONFIG")]
    pub config: Option<PathBuf>,
}

impl InputArgs {
    /// Just a file, everything else defaulted.
    pub fn file(path: &std::path::Path) -> Self {
        InputArgs {
            file: Some(path.to_path_buf()),
            input_type: None,
            filename_override: None,
            config: None,
        }
    }
}

/// Where the output goes and how it is written.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Output format; default: the input format.
    #[arg(long, value_enum)]
    pub output_type: Option<FormatArg>,
    /// Write the result back to the input file (atomically).
    #[arg(short = 'i', long, conflicts_with = "output")]
    pub in_place: bool,
    /// Write the result to this file (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Indentation of YAML/JSON output (overrides `.sops.yaml` `stores.*.indent`).
    #[arg(long, value_name = "N")]
    pub indent: Option<usize>,
}

/// The master keys to encrypt to, and the rule choosing what to encrypt; each overrides `.sops.yaml`.
#[derive(Debug, Clone, Args, Default)]
pub struct KeyArgs {
    /// age recipients, comma-separated (`age1…`, `age1pq1…`, `ssh-ed25519 …`, plugin recipients).
    #[arg(long, env = "SOPS_AGE_RECIPIENTS", value_name = "RECIPIENTS")]
    pub age: Option<String>,
    /// PGP key fingerprints, comma-separated (public keys from `SIGNET_PGP_KEY_FILE`, else gpg's keyring).
    #[arg(long, env = "SOPS_PGP_FP", value_name = "FINGERPRINTS")]
    pub pgp: Option<String>,
    /// AWS KMS key ARNs, comma-separated (`arn+role` assumes a role).
    #[arg(long, env = "SOPS_KMS_ARN", value_name = "ARNS")]
    pub kms: Option<String>,
    /// KMS encryption context, `key:value,key:value`.
    #[arg(long, value_name = "CONTEXT")]
    pub encryption_context: Option<String>,
    /// AWS profile for the `--kms` keys (written to the file as `aws_profile`).
    #[arg(long, value_name = "PROFILE")]
    pub aws_profile: Option<String>,
    /// Vault/OpenBao transit key URIs, comma-separated (`https://vault:8200/v1/transit/keys/name`).
    #[arg(long, env = "SOPS_VAULT_URIS", value_name = "URIS")]
    pub hc_vault_transit: Option<String>,
    /// Keys ending in this suffix stay plain (sops' default rule is `_unencrypted`).
    #[arg(long, value_name = "SUFFIX", group = "rule")]
    pub unencrypted_suffix: Option<String>,
    /// Only keys ending in this suffix are encrypted.
    #[arg(long, value_name = "SUFFIX", group = "rule")]
    pub encrypted_suffix: Option<String>,
    /// Keys matching this regex stay plain.
    #[arg(long, value_name = "REGEX", group = "rule")]
    pub unencrypted_regex: Option<String>,
    /// Only keys matching this regex are encrypted.
    #[arg(long, value_name = "REGEX", group = "rule")]
    pub encrypted_regex: Option<String>,
    /// Values under a comment matching this regex stay plain.
    #[arg(long, value_name = "REGEX", group = "rule")]
    pub unencrypted_comment_regex: Option<String>,
    /// Only values under a comment matching this regex are encrypted.
    #[arg(long, value_name = "REGEX", group = "rule")]
    pub encrypted_comment_regex: Option<String>,
    /// Kubernetes convenience: encrypt only `data` and `stringData` (same as
    /// `--encrypted-regex '^(data|stringData)$'`).
    #[arg(long, group = "rule")]
    pub k8s: bool,
    /// Compute the MAC over encrypted values only (so plain fields may change without breaking it).
    #[arg(long)]
    pub mac_only_encrypted: bool,
    /// With several key groups: how many are needed to decrypt.
    #[arg(long, value_name = "N")]
    pub shamir_secret_sharing_threshold: Option<usize>,
}

/// `decrypt`-side switches.
#[derive(Debug, Clone, Args)]
pub struct DecryptArgs {
    /// Print only the value at this tree path, e.g. `'["data"]["password"]'`.
    #[arg(long, value_name = "PATH")]
    pub extract: Option<String>,
    /// Decrypt even when the MAC does not match (tampered or hand-edited files).
    #[arg(long)]
    pub ignore_mac: bool,
}
