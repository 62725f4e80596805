//! Glue to `signet-keys`: the keyring from the environment (with a terminal for passphrases), the
//! creation rule for a file, and the master keys a new file is encrypted to.

use super::args::KeyArgs;
use crate::exit::{CliError, CliResult, code};
use signet_keys::{CreationRule, Interaction, KeySpec, Keyring, SopsConfig};
use signet_sops::rules::EncryptionRule;
use signet_sops::{Decryptor, UnwrappedDataKey};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Prompts on the terminal when one is attached; answers nothing otherwise.
struct Terminal;

impl Interaction for Terminal {
    fn display_message(&self, message: &str) {
        eprintln!("{message}");
    }

    fn request_passphrase(&self, description: &str) -> Option<Zeroizing<String>> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        rpassword::prompt_password(format!("{description}: "))
            .ok()
            .map(Zeroizing::new)
    }
}

/// The keyring from the environment, exactly like sops finds identities, prompting on the terminal;
/// notices (insecure key file modes, unreadable key files) go to stderr.
pub fn keyring() -> Keyring {
    keyring_with(Arc::new(Terminal))
}

/// [`keyring`] with another way to ask for passphrases (`NoInteraction` where no one can answer).
pub fn keyring_with(interaction: Arc<dyn Interaction>) -> Keyring {
    let mut ring = Keyring::from_env(interaction);
    if let Some(order) = DECRYPTION_ORDER.get() {
        ring.set_decryption_order(order.clone());
    }
    for notice in ring.notices() {
        eprintln!("signet: warning: {notice}");
    }
    ring
}

/// `--decryption-order` (or `SOPS_DECRYPTION_ORDER`), checked, for every keyring this process makes.
static DECRYPTION_ORDER: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Checks and records `--decryption-order`: a comma-separated list of key types (`age`, `pgp`,
/// `kms`, `hc_vault`, …), each at most once (sops' exit 112 otherwise). Types Signet does not
/// know are kept, as sops keeps them: they only order nothing.
pub fn set_decryption_order(order: &str) -> CliResult<()> {
    let mut types: Vec<String> = Vec::new();
    for t in order.split(',') {
        if types.iter().any(|seen| seen == t) {
            return Err(CliError::new(
                code::DUPLICATE_DECRYPTION_KEY_TYPE,
                format!("--decryption-order: duplicate decryption key type: {t}"),
            ));
        }
        types.push(t.to_owned());
    }
    let _ = DECRYPTION_ORDER.set(types);
    Ok(())
}

/// Unwraps the data key of a file, or fails with exit 128 naming the keys tried.
pub fn data_key(name: &str, decryptor: &Decryptor) -> CliResult<UnwrappedDataKey> {
    decryptor
        .unwrap_key(&keyring())
        .map_err(|e| no_data_key(name, e))
}

/// Exit 128: no key could unwrap the data key of `name`.
pub fn no_data_key(name: &str, e: signet_keys::Error) -> CliError {
    CliError::new(code::COULD_NOT_RETRIEVE_KEY, format!("{name}: {e}"))
}

/// The `.sops.yaml` in effect: `--config`, else the nearest one walking up from the working directory.
pub fn config(explicit: Option<&Path>) -> CliResult<Option<SopsConfig>> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let cwd = std::env::current_dir().map_err(|e| {
                CliError::new(
                    code::ERROR_READING_CONFIG,
                    format!("cannot read the working directory: {e}"),
                )
            })?;
            let found = signet_keys::find_config_file(&cwd);
            if let Some(w) = &found.warning {
                eprintln!("signet: warning: {w}");
            }
            match found.path {
                Some(p) => p,
                None => return Ok(None),
            }
        }
    };
    // sops exits 1 for every unreadable or malformed `.sops.yaml` (not its unused code 5).
    let config =
        SopsConfig::load(&path).map_err(|e| CliError::new(code::ERROR_GENERIC, e.to_string()))?;
    for warning in config.warnings() {
        eprintln!("signet: warning: {}: {warning}", path.display());
    }
    Ok(Some(config))
}

/// The creation rule for `path` in `config`, if any.
pub fn creation_rule(
    config: Option<&SopsConfig>,
    path: Option<&Path>,
) -> CliResult<Option<CreationRule>> {
    let (Some(config), Some(path)) = (config, path) else {
        return Ok(None);
    };
    // sops exits 1 (not 5) when no rule matches.
    config
        .creation_rule_for(path)
        .map_err(|e| CliError::new(code::ERROR_GENERIC, e.to_string()))
}

/// Master keys named on the command line (one key group), if any.
pub fn keys_from_flags(args: &KeyArgs) -> CliResult<Vec<KeySpec>> {
    KeyLists {
        age: args.age.as_deref(),
        pgp: args.pgp.as_deref(),
        kms: args.kms.as_deref(),
        hc_vault_transit: args.hc_vault_transit.as_deref(),
        encryption_context: args.encryption_context.as_deref(),
        aws_profile: args.aws_profile.as_deref(),
    }
    .specs()
}

/// Comma-separated key lists as flags give them (`--age`, `--pgp`, `--kms`, `--hc-vault-transit`, with
/// `--encryption-context` and `--aws-profile` for the KMS keys): the one parser of key flags for
/// `encrypt`, `rotate --add-*/--rm-*` and `groups add`.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyLists<'a> {
    /// age recipients.
    pub age: Option<&'a str>,
    /// PGP fingerprints.
    pub pgp: Option<&'a str>,
    /// AWS KMS key ARNs.
    pub kms: Option<&'a str>,
    /// Vault transit key URIs.
    pub hc_vault_transit: Option<&'a str>,
    /// `key:value,…` for the KMS keys.
    pub encryption_context: Option<&'a str>,
    /// AWS profile for the KMS keys.
    pub aws_profile: Option<&'a str>,
}

/// A list that names something (not empty or blank).
fn given(list: Option<&str>) -> Option<&str> {
    list.filter(|s| !s.trim().is_empty())
}

impl KeyLists<'_> {
    /// The keys named, in flag order (age, PGP, KMS, Vault).
    pub fn specs(&self) -> CliResult<Vec<KeySpec>> {
        let mut keys = Vec::new();
        let bad = |e: signet_keys::Error| CliError::new(code::ERROR_GENERIC, e.to_string());
        if let Some(age) = given(self.age) {
            keys.extend(KeySpec::age_list(age).map_err(bad)?);
        }
        if let Some(pgp) = given(self.pgp) {
            keys.extend(KeySpec::pgp_list(pgp));
        }
        if let Some(kms) = given(self.kms) {
            let context = match self.encryption_context {
                None => Vec::new(),
                Some(text) => signet_keys::KmsKey::parse_context(text).ok_or_else(|| {
                    CliError::new(
                        code::ERROR_INVALID_KMS_ENCRYPTION_CONTEXT_FORMAT,
                        "invalid --encryption-context: expected key:value,key:value",
                    )
                })?,
            };
            keys.extend(KeySpec::kms_list(
                kms,
                &context,
                self.aws_profile.unwrap_or(""),
            ));
        }
        if let Some(uris) = given(self.hc_vault_transit) {
            keys.extend(KeySpec::vault_list(uris).map_err(bad)?);
        }
        Ok(keys)
    }
}

/// The encryption rule: a flag wins, then the creation rule, then sops' default.
pub fn encryption_rule(args: &KeyArgs, rule: Option<&CreationRule>) -> EncryptionRule {
    let from_flags = [
        args.unencrypted_suffix
            .clone()
            .map(EncryptionRule::UnencryptedSuffix),
        args.encrypted_suffix
            .clone()
            .map(EncryptionRule::EncryptedSuffix),
        args.unencrypted_regex
            .clone()
            .map(EncryptionRule::UnencryptedRegex),
        args.encrypted_regex
            .clone()
            .map(EncryptionRule::EncryptedRegex),
        args.unencrypted_comment_regex
            .clone()
            .map(EncryptionRule::UnencryptedCommentRegex),
        args.encrypted_comment_regex
            .clone()
            .map(EncryptionRule::EncryptedCommentRegex),
        args.k8s
            .then(|| EncryptionRule::EncryptedRegex(K8S_ENCRYPTED_REGEX.to_owned())),
    ];
    from_flags
        .into_iter()
        .flatten()
        .next()
        .or_else(|| rule.and_then(|r| r.encryption_rule.clone()))
        .unwrap_or_default()
}

/// What `--k8s` encrypts: only the values of a Secret.
pub const K8S_ENCRYPTED_REGEX: &str = "^(data|stringData)$";

/// Key groups and threshold for a new file: flags win over the creation rule.
pub fn key_groups(
    args: &KeyArgs,
    rule: Option<&CreationRule>,
) -> CliResult<(Vec<Vec<KeySpec>>, Option<usize>)> {
    let flags = keys_from_flags(args)?;
    let (groups, threshold) = if !flags.is_empty() {
        (vec![flags], args.shamir_secret_sharing_threshold)
    } else if let Some(rule) = rule.filter(|r| r.key_groups.iter().any(|g| !g.is_empty())) {
        (
            rule.key_groups.clone(),
            args.shamir_secret_sharing_threshold
                .or(rule.shamir_threshold),
        )
    } else if rule.is_some() {
        // A creation rule matched but names no keys (none, `key_groups: []` or an empty group).
        return Err(CliError::as_sops_says(
            code::ERROR_GENERIC,
            "Could not generate data key: [empty key group provided]",
        ));
    } else {
        return Err(CliError::new(
            code::ERROR_GENERIC,
            "no keys to encrypt to: pass --age (or --pgp, --kms, --hc-vault-transit), or add a creation rule to .sops.yaml",
        ));
    };
    let threshold = signet_keys::shamir_threshold_for(groups.len(), threshold);
    Ok((groups, threshold))
}
