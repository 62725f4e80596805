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
use crate::{Error, Find, FindBudget, RemoteRef, SecretBytes, SecretProvider};

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

    /// `ListSecrets` (filtered by name prefix when `find.path` is given), every page, then the
    /// current value of each secret whose name matches.
    async fn find(&self, find: &Find) -> Result<BTreeMap<String, SecretBytes>, Error> {
        use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
        let matcher = find.matcher(&self.service.store)?;
        let mut budget = FindBudget::new(&self.service.store);
        let prefix = find
            .path
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let mut names = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let mut request = self
                .client
                .list_secrets()
                .max_results(100)
                .set_next_token(next_token.take());
            if let Some(prefix) = prefix {
                request = request.filters(
                    Filter::builder()
                        .key(FilterNameStringType::Name)
                        .values(prefix)
                        .build(),
                );
            }
            let page = request
                .send()
                .await
                .map_err(|e| self.service.classify(e, None, |_, _| false))?;
            budget.page()?;
            for secret in page.secret_list.unwrap_or_default() {
                budget.listed()?;
                let Some(name) = secret.name else { continue };
                // The filter matches words anywhere in the name; a path is a prefix.
                if prefix.is_none_or(|p| name.starts_with(p)) && matcher.is_match(&name) {
                    budget.found()?;
                    names.push(name);
                }
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => break,
            }
        }
        let mut found = BTreeMap::new();
        for name in names {
            let value = self.value(&RemoteRef::new(name.clone())).await?;
            found.insert(name, value);
        }
        Ok(found)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AwsStaticCredentials;

    /// A store that answers every ListSecrets page with nothing and a next token: the search
    /// stops at its page bound instead of looping for ever.
    #[tokio::test]
    async fn endless_empty_pages_stop_a_find() {
        let (server, served) = crate::test_server::serve(|_| {
            (
                "application/x-amz-json-1.1".to_owned(),
                r#"{"SecretList":[],"NextToken":"more"}"#.to_owned(),
            )
        });
        let store = SecretsManager::new(AwsConfig {
            region: "eu-west-1".into(),
            endpoint_url: Some(server),
            credentials: Some(AwsStaticCredentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: Zeroizing::new("secret".into()),
                session_token: None,
            }),
            role_arn: None,
        })
        .await
        .unwrap();
        let err = store.find(&Find::default()).await.unwrap_err().to_string();
        assert!(err.contains("lists more than 5000 names"), "{err}");
        assert_eq!(
            served.load(std::sync::atomic::Ordering::SeqCst),
            crate::MAX_LISTED + 1
        );
    }
}
