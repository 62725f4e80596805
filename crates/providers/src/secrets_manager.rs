//! AWS Secrets Manager: `GetSecretValue` of a secret name or ARN.
//!
//! `version` is a staging label (`AWSCURRENT`, the default, `AWSPREVIOUS`, or a custom one), or
//! `uuid/<VersionId>` for one version, as in External Secrets Operator. The value is the
//! `SecretString`, else the `SecretBinary` bytes. A secret scheduled for deletion counts as not
//! found (AWS says "marked for deletion", moto "marked deleted").

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::aws::{AwsConfig, AwsService};
use crate::property::{self, Origin};
use crate::{Error, RemoteRef, SecretBytes, SecretProvider};

const SERVICE: &str = "AWS Secrets Manager";

/// An AWS Secrets Manager store.
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
    service: AwsService,
}

impl std::fmt::Debug for SecretsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManager")
            .field("store", &self.service.store)
            .finish_non_exhaustive()
    }
}

impl SecretsManager {
    /// A provider for `config`. Loads the SDK configuration (region and credential chain);
    /// nothing is sent to Secrets Manager until the first call.
    pub async fn new(config: AwsConfig) -> Result<SecretsManager, Error> {
        let service = AwsService::load(config, SERVICE).await?;
        let mut builder = aws_sdk_secretsmanager::config::Builder::from(&service.sdk);
        if let Some(url) = &service.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Ok(SecretsManager {
            client: aws_sdk_secretsmanager::Client::from_conf(builder.build()),
            service,
        })
    }

    /// The store's name in messages: service, region, endpoint and role.
    pub fn store(&self) -> &str {
        &self.service.store
    }

    /// The raw value of the secret version `r` names.
    async fn value(&self, r: &RemoteRef) -> Result<SecretBytes, Error> {
        let key = r.key.trim();
        if key.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{}: the remote key is empty",
                self.service.store
            )));
        }
        let mut request = self.client.get_secret_value().secret_id(key);
        let version = r
            .version
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(version) = version {
            request = match version.strip_prefix("uuid/") {
                Some(id) => request.version_id(id),
                None => request.version_stage(version),
            };
        }
        let mut output = request.send().await.map_err(|e| {
            self.service.classify(e, Some(r), |code, message| {
                code == "ResourceNotFoundException"
                    || (code == "InvalidRequestException"
                        && (message.contains("marked for deletion")
                            || message.contains("marked deleted")))
            })
        })?;
        if let Some(text) = output.secret_string.take() {
            return Ok(Zeroizing::new(text.into_bytes()));
        }
        if let Some(binary) = output.secret_binary.take() {
            return Ok(Zeroizing::new(binary.into_inner()));
        }
        Err(Error::InvalidValue {
            store: self.service.store.clone(),
            key: r.key.clone(),
            message: "the secret has neither SecretString nor SecretBinary".to_owned(),
        })
    }
}

#[async_trait::async_trait]
impl SecretProvider for SecretsManager {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, Error> {
        let value = self.value(r).await?;
        self.service.select(r, value)
    }

    async fn get_all(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, Error> {
        let value = self.value(r).await?;
        property::fields_of_bytes(
            &Origin {
                store: &self.service.store,
                key: &r.key,
            },
            &value,
            r.property.as_deref(),
        )
    }

    /// Lists at most one secret's metadata: the call is authenticated, so refused credentials
    /// show; an `AccessDeniedException` means the credentials are valid but may not list, which
    /// a least-privilege reader commonly is, so it counts as usable.
    async fn validate(&self) -> Result<(), Error> {
        match self.client.list_secrets().max_results(1).send().await {
            Ok(_) => Ok(()),
            Err(error) => match self.service.classify(error, None, |_, _| false) {
                Error::Unauthorized { message, .. }
                    if message.starts_with("AccessDeniedException") =>
                {
                    Ok(())
                }
                other => Err(other),
            },
        }
    }

    fn kind(&self) -> &'static str {
        "aws-secretsmanager"
    }
}
