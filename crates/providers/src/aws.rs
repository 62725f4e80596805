//! What the two AWS providers share: their configuration (region, endpoint, credentials, role),
//! loading the SDK configuration from it, and turning SDK errors into [`Error`]s.
//!
//! Without static credentials the SDK's default chain is used (environment variables, web
//! identity / IRSA, the container and instance metadata endpoints). With `role_arn`, that role is
//! assumed through STS on top of the base credentials. Without `endpoint_url`, the SDK's own
//! settings apply (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_SSM`).
//! An explicit `endpoint_url` is set on the service client only, so STS (for `role_arn`) keeps
//! its own endpoint.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use zeroize::Zeroizing;

use crate::error::{error_chain, scrub};
use crate::{DEFAULT_TIMEOUT, Error, RemoteRef};

/// Where an AWS store is and which credentials to use.
#[derive(Clone, Debug, Default)]
pub struct AwsConfig {
    /// The region, e.g. `eu-west-1`. Empty: the SDK's default (`AWS_REGION`).
    pub region: String,
    /// A different endpoint for the service (a VPC endpoint, a local emulator).
    pub endpoint_url: Option<String>,
    /// Static credentials; `None`: the SDK's default credential chain.
    pub credentials: Option<AwsStaticCredentials>,
    /// A role to assume with the base credentials.
    pub role_arn: Option<String>,
}

/// An access key pair, with the session token of temporary credentials.
#[derive(Clone)]
pub struct AwsStaticCredentials {
    /// The access key id (not secret).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Zeroizing<String>,
    /// The session token of temporary credentials.
    pub session_token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for AwsStaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsStaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// An AWS service as the providers use it: the SDK configuration, the endpoint to set on the
/// client, its name in messages, and the credentials to keep out of them.
pub(crate) struct AwsService {
    pub(crate) sdk: SdkConfig,
    pub(crate) endpoint_url: Option<String>,
    pub(crate) store: String,
    secrets: Vec<Zeroizing<String>>,
}

impl AwsService {
    /// A whole value, or its `r.property` (the same for every AWS service).
    pub(crate) fn select(
        &self,
        r: &RemoteRef,
        value: crate::SecretBytes,
    ) -> Result<crate::SecretBytes, Error> {
        match &r.property {
            Some(property) => crate::property::property_of_bytes(
                &crate::property::Origin {
                    store: &self.store,
                    key: &r.key,
                },
                &value,
                property,
            ),
            None => Ok(value),
        }
    }

    /// Loads the SDK configuration for `config`; `service` names the store in messages.
    pub(crate) async fn load(config: AwsConfig, service: &str) -> Result<AwsService, Error> {
        let endpoint_url = config
            .endpoint_url
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        if let Some(url) = &endpoint_url {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| Error::InvalidConfig(format!("{service} endpoint {url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Error::InvalidConfig(format!(
                    "{service} endpoint {url:?} is not an http(s) URL"
                )));
            }
        }
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(DEFAULT_TIMEOUT)
            .operation_timeout(DEFAULT_TIMEOUT)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
        let region = config.region.trim();
        if !region.is_empty() {
            loader = loader.region(Region::new(region.to_owned()));
        }
        let mut secrets = Vec::new();
        if let Some(credentials) = config.credentials {
            if credentials.access_key_id.trim().is_empty()
                || credentials.secret_access_key.trim().is_empty()
            {
                return Err(Error::InvalidConfig(format!(
                    "{service}: static credentials need an access key id and a secret access key"
                )));
            }
            loader = loader.credentials_provider(Credentials::new(
                credentials.access_key_id.trim(),
                credentials.secret_access_key.trim(),
                credentials
                    .session_token
                    .as_ref()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty()),
                None,
                "signet-providers",
            ));
            secrets.push(credentials.secret_access_key);
            secrets.extend(credentials.session_token);
        }
        let mut sdk = loader.load().await;
        let Some(region) = sdk.region().map(|r| r.to_string()) else {
            return Err(Error::InvalidConfig(format!(
                "{service}: no region (set the store's region or AWS_REGION)"
            )));
        };
        let role = config
            .role_arn
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if let Some(role) = &role {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("signet-providers")
                .configure(&sdk)
                .build()
                .await;
            sdk = sdk
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build();
        }
        let mut store = format!("{service} in {region}");
        if let Some(url) = &endpoint_url {
            store.push_str(&format!(" at {url}"));
        }
        if let Some(role) = &role {
            store.push_str(&format!(" as {role}"));
        }
        Ok(AwsService {
            sdk,
            endpoint_url,
            store,
            secrets,
        })
    }

    fn scrub(&self, message: &str) -> String {
        scrub(message, self.secrets.iter().map(|s| s.as_str()))
    }

    /// The [`Error`] an SDK error stands for. `key` is the reference being read, if any;
    /// `not_found` tells which service error codes (and messages) mean the key is missing.
    pub(crate) fn classify<E>(
        &self,
        error: SdkError<E>,
        key: Option<&RemoteRef>,
        not_found: impl Fn(&str, &str) -> bool,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let store = self.store.clone();
        let chain = self.scrub(&error_chain(&error));
        match &error {
            SdkError::ServiceError(service_error) => {
                let status = service_error.raw().status().as_u16();
                let code = service_error.err().code().unwrap_or("UnknownError");
                let said = service_error.err().message().unwrap_or_default();
                let message = self.scrub(&format!("{code}: {said}"));
                if let Some(r) = key
                    && not_found(code, said)
                {
                    return Error::NotFound {
                        store,
                        key: r.key.clone(),
                        version: r.version.clone(),
                    };
                }
                if is_auth_code(code) || matches!(status, 401 | 403) {
                    Error::Unauthorized { store, message }
                } else if is_throttling_code(code) || status == 429 || status >= 500 {
                    Error::Unavailable { store, message }
                } else {
                    Error::Provider {
                        store,
                        status,
                        message,
                    }
                }
            }
            SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_timeout() => {
                Error::Unavailable {
                    store,
                    message: chain,
                }
            }
            SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_)
                if chain.contains("credential") =>
            {
                // No credentials in the chain, or the role could not be assumed.
                Error::Unauthorized {
                    store,
                    message: chain,
                }
            }
            SdkError::ConstructionFailure(_) => Error::InvalidConfig(format!("{store}: {chain}")),
            SdkError::TimeoutError(_) => Error::Unavailable {
                store,
                message: format!("no answer within {} s: {chain}", DEFAULT_TIMEOUT.as_secs()),
            },
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Error::Unavailable {
                store,
                message: chain,
            },
            _ => Error::Provider {
                store,
                status: error.raw_response().map_or(0, |r| r.status().as_u16()),
                message: chain,
            },
        }
    }
}

/// Error codes meaning the credentials were refused or do not allow the call.
fn is_auth_code(code: &str) -> bool {
    matches!(
        code,
        "AccessDeniedException"
            | "AccessDenied"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "UnauthorizedOperation"
    )
}

/// Error codes meaning "later": throttling and service-side failures.
fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "InternalServiceError"
            | "InternalServerError"
            | "InternalFailure"
            | "ServiceUnavailable"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_in_debug_output() {
        let config = AwsConfig {
            region: "eu-west-1".into(),
            endpoint_url: None,
            credentials: Some(AwsStaticCredentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: Zeroizing::new("canary-secret-key".into()),
                session_token: Some(Zeroizing::new("canary-session".into())),
            }),
            role_arn: None,
        };
        let text = format!("{config:?}");
        assert!(!text.contains("canary"), "{text}");
        assert!(text.contains("AKIDEXAMPLE"), "{text}");
    }

    #[tokio::test]
    async fn bad_endpoints_and_half_credentials_are_refused() {
        let mut config = AwsConfig {
            region: "eu-west-1".into(),
            endpoint_url: Some("not a url".into()),
            ..AwsConfig::default()
        };
        let error = AwsService::load(config.clone(), "AWS Secrets Manager")
            .await
            .err()
            .expect("a bad endpoint is refused");
        assert_eq!(error.reason(), "InvalidConfig");
        config.endpoint_url = None;
        config.credentials = Some(AwsStaticCredentials {
            access_key_id: String::new(),
            secret_access_key: Zeroizing::new("canary-secret-key".into()),
            session_token: None,
        });
        let error = AwsService::load(config, "AWS Secrets Manager")
            .await
            .err()
            .expect("a secret key without an id is refused");
        assert_eq!(error.reason(), "InvalidConfig");
        assert!(!format!("{error:?}").contains("canary"));
    }

    #[tokio::test]
    async fn the_store_name_says_service_region_endpoint_and_role() {
        let service = AwsService::load(
            AwsConfig {
                region: "eu-west-1".into(),
                endpoint_url: Some("http://127.0.0.1:5000".into()),
                credentials: Some(AwsStaticCredentials {
                    access_key_id: "AKIDEXAMPLE".into(),
                    secret_access_key: Zeroizing::new("canary-secret-key".into()),
                    session_token: None,
                }),
                role_arn: Some("arn:aws:iam::123456789012:role/reader".into()),
            },
            "AWS SSM Parameter Store",
        )
        .await
        .expect("loads");
        assert_eq!(
            service.store,
            "AWS SSM Parameter Store in eu-west-1 at http://127.0.0.1:5000 as arn:aws:iam::123456789012:role/reader"
        );
        assert_eq!(
            service.scrub("key canary-secret-key leaked"),
            "key [redacted] leaked"
        );
    }
}
