//! AWS KMS master keys, as sops uses them (`kms/keysource.go`): the raw data key (or Shamir
//! share) is sent to KMS `Encrypt` with the entry's encryption context, and the returned
//! ciphertext blob is stored base64-encoded in `enc`. Decryption calls `Decrypt` with the same
//! context and `KeyId` = the ARN.
//!
//! The region comes from the ARN (`arn:aws:kms:<region>:<account>:key/…`), the profile from
//! `aws_profile` (else `AWS_PROFILE`), the endpoint from `AWS_ENDPOINT_URL_KMS` /
//! `AWS_ENDPOINT_URL`, credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
//! `AWS_SESSION_TOKEN`, else the shared files (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`,
//! `~/.aws/…`), all read from the [`Environment`] given; the rest of the standard AWS chain
//! (web identity, container and instance roles) applies as usual. A `role`
//! (`arn+roleArn`) is assumed through STS first, with session name `sops@<hostname>` like sops.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_runtime::env_config::file::{
    EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles,
};
use aws_sdk_kms::primitives::Blob;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use signet_sops::metadata::{KmsEntry, MasterKeyEntry};
use zeroize::Zeroizing;

use crate::Error;
use crate::keyring::Environment;
use crate::keyspec::KmsKey;
use crate::masterkey::{KeyFuture, KeySource};
use crate::runtime::{DEFAULT_TIMEOUT, error_chain, run};

/// `SOPS_KMS_ARN`: comma-separated KMS ARNs to encrypt to when no other key is given.
pub const SOPS_KMS_ARN: &str = "SOPS_KMS_ARN";

/// Environment variables read from an [`Environment`] snapshot (rather than the process) so
/// tests and embedders can point the client somewhere without touching the process.
const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
const AWS_ENDPOINT_URL_KMS: &str = "AWS_ENDPOINT_URL_KMS";

/// Talks to AWS KMS to wrap and unwrap data keys. Also the [`KeySource`] for `kms` entries.
///
/// SDK clients are built once per (region, profile, role) and reused, so decrypting many files
/// in one process loads the AWS configuration and assumes a role only once.
#[derive(Clone)]
pub struct KmsClient {
    env: Environment,
    timeout: Duration,
    clients: Arc<Mutex<HashMap<ClientKey, aws_sdk_kms::Client>>>,
}

/// What distinguishes one SDK client from another for the same environment.
type ClientKey = (String, Option<String>, Option<String>);

impl std::fmt::Debug for KmsClient {
    // The environment holds credentials: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl KmsClient {
    /// A client configured from `env` (endpoint and static credentials, when set there) and
    /// otherwise from the standard AWS configuration chain of the process.
    pub fn new(env: &Environment) -> Self {
        KmsClient {
            env: env.clone(),
            timeout: DEFAULT_TIMEOUT,
            clients: Arc::default(),
        }
    }

    /// Sets how long one KMS call may take (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Encrypts `secret` (the data key or a share) with `key`, giving the metadata entry.
    pub async fn wrap(&self, key: &KmsKey, secret: &[u8]) -> Result<KmsEntry, Error> {
        let name = key_name(&key.arn, key.role.as_deref());
        let fail = |message: String| Error::Wrap {
            key: name.clone(),
            message,
        };
        let settings = self.settings(&key.arn, key.role.as_deref(), &key.aws_profile);
        let settings = settings.map_err(fail)?;
        let arn = key.arn.clone();
        let context = context_map(&key.context);
        let plaintext = Zeroizing::new(secret.to_vec());
        let ciphertext = run(
            async move {
                let client = settings.client().await?;
                let output = client
                    .encrypt()
                    .key_id(&arn)
                    .plaintext(Blob::new(plaintext.to_vec()))
                    .set_encryption_context(context)
                    .send()
                    .await
                    .map_err(|e| error_chain(&e))?;
                output
                    .ciphertext_blob
                    .map(Blob::into_inner)
                    .ok_or_else(|| "KMS returned no ciphertext".to_owned())
            },
            self.timeout,
            fail,
        )
        .await?;
        Ok(KmsEntry {
            arn: key.arn.clone(),
            role: key.role.clone(),
            context: key.context.clone(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            enc: STANDARD.encode(ciphertext),
            aws_profile: key.aws_profile.clone(),
        })
    }

    /// Decrypts a `kms` entry, giving back the data key or share.
    pub async fn unwrap_entry(&self, entry: &KmsEntry) -> Result<Zeroizing<Vec<u8>>, Error> {
        let role = entry.role.as_deref().filter(|r| !r.is_empty());
        let name = key_name(&entry.arn, role);
        let fail = |message: String| Error::Unwrap {
            key: name.clone(),
            message,
        };
        let ciphertext = STANDARD
            .decode(entry.enc.trim())
            .map_err(|e| fail(format!("enc is not valid base64: {e}")))?;
        let settings = self
            .settings(&entry.arn, role, &entry.aws_profile)
            .map_err(fail)?;
        let arn = entry.arn.clone();
        let context = context_map(&entry.context);
        run(
            async move {
                let client = settings.client().await?;
                let output = client
                    .decrypt()
                    .key_id(&arn)
                    .ciphertext_blob(Blob::new(ciphertext))
                    .set_encryption_context(context)
                    .send()
                    .await
                    .map_err(|e| error_chain(&e))?;
                output
                    .plaintext
                    .map(|b| Zeroizing::new(b.into_inner()))
                    .ok_or_else(|| "KMS returned no plaintext".to_owned())
            },
            self.timeout,
            fail,
        )
        .await
    }

    /// The shared config and credentials files of the environment (`AWS_CONFIG_FILE`,
    /// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/config` and `~/.aws/credentials`), those
    /// that exist.
    fn profile_files(&self) -> Vec<(ProfileFileKind, PathBuf)> {
        let home = self.env.get("HOME").filter(|h| !h.is_empty());
        let pick = |variable: &str, default: &str| {
            self.env
                .get(variable)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .or_else(|| home.map(|h| Path::new(h).join(".aws").join(default)))
                .filter(|p| p.is_file())
        };
        [
            (ProfileFileKind::Config, pick("AWS_CONFIG_FILE", "config")),
            (
                ProfileFileKind::Credentials,
                pick("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            ),
        ]
        .into_iter()
        .filter_map(|(kind, path)| path.map(|p| (kind, p)))
        .collect()
    }

    fn settings(
        &self,
        arn: &str,
        role: Option<&str>,
        profile: &str,
    ) -> Result<ClientSettings, String> {
        let region = region_from_arn(arn)
            .ok_or_else(|| format!("no valid ARN found in {arn:?}"))?
            .to_owned();
        let get = |name: &str| {
            self.env
                .get(name)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let credentials = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Some(aws_sdk_kms::config::Credentials::new(
                id,
                secret,
                get("AWS_SESSION_TOKEN"),
                None,
                "signet-environment",
            )),
            _ => None,
        };
        Ok(ClientSettings {
            cache: self.clients.clone(),
            region,
            role: role.map(str::to_owned),
            profile: Some(profile.to_owned())
                .filter(|p| !p.is_empty())
                .or_else(|| get("AWS_PROFILE")),
            profile_files: self.profile_files(),
            endpoint_url: get(AWS_ENDPOINT_URL_KMS).or_else(|| get(AWS_ENDPOINT_URL)),
            credentials,
            session_name: format!("sops@{}", hostname(&self.env)),
        })
    }
}

/// Everything needed to build a KMS client, owned so it can move onto the runtime.
struct ClientSettings {
    cache: Arc<Mutex<HashMap<ClientKey, aws_sdk_kms::Client>>>,
    region: String,
    role: Option<String>,
    profile: Option<String>,
    endpoint_url: Option<String>,
    credentials: Option<aws_sdk_kms::config::Credentials>,
    profile_files: Vec<(ProfileFileKind, PathBuf)>,
    session_name: String,
}

impl ClientSettings {
    async fn client(self) -> Result<aws_sdk_kms::Client, String> {
        let key: ClientKey = (self.region.clone(), self.profile.clone(), self.role.clone());
        if let Some(client) = lock(&self.cache).get(&key) {
            return Ok(client.clone());
        }
        let cache = self.cache.clone();
        let client = self.build().await;
        lock(&cache).insert(key, client.clone());
        Ok(client)
    }

    async fn build(self) -> aws_sdk_kms::Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()));
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &self.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        // Only the environment's files. The SDK needs at least one; with none, an empty one
        // stands in, so the process's own `~/.aws` is not read behind the caller's back.
        let mut files = ProfileFiles::builder()
            .include_default_config_file(false)
            .include_default_credentials_file(false);
        let mut any = false;
        for (kind, path) in &self.profile_files {
            files = files.with_file(*kind, path);
            any = true;
        }
        if !any && cfg!(unix) {
            files = files.with_file(ProfileFileKind::Config, "/dev/null");
            any = true;
        }
        if any {
            loader = loader.profile_files(files.build());
        }
        if let Some(credentials) = self.credentials {
            loader = loader.credentials_provider(credentials);
        }
        let base = loader.load().await;
        let config = match &self.role {
            None => base,
            Some(role) => {
                let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                    .session_name(&self.session_name)
                    .session_length(Duration::from_secs(3600))
                    .configure(&base)
                    .build()
                    .await;
                base.into_builder()
                    .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(
                        provider,
                    ))
                    .build()
            }
        };
        aws_sdk_kms::Client::new(&config)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl KeySource for KmsClient {
    fn unwrap<'a>(
        &'a self,
        entry: &'a MasterKeyEntry,
    ) -> KeyFuture<'a, Option<Zeroizing<Vec<u8>>>> {
        Box::pin(async move {
            match entry {
                MasterKeyEntry::Kms(kms) => self.unwrap_entry(kms).await.map(Some),
                _ => Ok(None),
            }
        })
    }
}

/// The name sops shows for a KMS key: the ARN, with `+role` when one is assumed.
fn key_name(arn: &str, role: Option<&str>) -> String {
    match role {
        Some(role) => format!("{arn}+{role}"),
        None => arn.to_owned(),
    }
}

/// The region of a KMS key or alias ARN (`arn:<partition>:kms:<region>:<account>:key/…`), as
/// sops reads it (`^arn:aws[\w-]*:kms:(.+):[0-9]+:(key|alias)/.+$`).
pub fn region_from_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws")?;
    let (partition_suffix, rest) = rest.split_once(':')?;
    if !partition_suffix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    let rest = rest.strip_prefix("kms:")?;
    // The resource starts after the last `:<digits>:` followed by key/ or alias/.
    let resource_at = rest.rfind(":key/").or_else(|| rest.rfind(":alias/"))?;
    let (before, resource) = rest.split_at(resource_at);
    if resource.len() <= ":key/".len() || resource.ends_with('/') {
        return None;
    }
    let (region, account) = before.rsplit_once(':')?;
    if region.is_empty() || account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(region)
}

fn context_map(context: &[(String, String)]) -> Option<HashMap<String, String>> {
    if context.is_empty() {
        None
    } else {
        Some(context.iter().cloned().collect())
    }
}

fn hostname(env: &Environment) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| env.get("HOSTNAME").map(str::to_owned))
        .unwrap_or_else(|| "signet".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_holds_no_credentials() {
        let env = Environment::from_vars([
            ("AWS_SECRET_ACCESS_KEY", "secret-canary"),
            ("VAULT_TOKEN", "token-canary"),
        ]);
        for text in [
            format!("{:?}", KmsClient::new(&env)),
            format!("{:?}", crate::vault::VaultClient::new(&env)),
            format!("{env:?}"),
            format!(
                "{:?}",
                crate::Keyring::from_environment(&env, std::sync::Arc::new(crate::NoInteraction))
            ),
        ] {
            assert!(!text.contains("canary"), "{text}");
        }
        assert!(format!("{env:?}").contains("VAULT_TOKEN"));
    }

    #[test]
    fn region_from_key_and_alias_arns() {
        assert_eq!(
            region_from_arn("arn:aws:kms:eu-west-1:123456789012:key/abc-def"),
            Some("eu-west-1")
        );
        assert_eq!(
            region_from_arn("arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/sops"),
            Some("us-gov-west-1")
        );
        assert_eq!(region_from_arn("arn:aws:kms:eu-west-1:abc:key/x"), None);
        assert_eq!(region_from_arn("arn:aws:s3:eu-west-1:1:key/x"), None);
        assert_eq!(region_from_arn("alias/sops"), None);
        assert_eq!(region_from_arn("arn:aws:kms:eu-west-1:1:key/"), None);
    }
}
