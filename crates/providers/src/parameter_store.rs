//! AWS SSM Parameter Store: `GetParameter` with decryption (so SecureStrings come back in clear)
//! and `GetParametersByPath` for a whole hierarchy.
//!
//! `version` is a parameter version number or label, sent as `name:version` as SSM expects. For
//! `get_all`, a key ending in `/` is a path: every parameter below it (recursively), keyed by its
//! name relative to the path (`/app/db/user` under `/app/` is `db/user`); any other key is one
//! parameter whose JSON object value is split into its fields. A path has no version (one given is
//! not used) and no properties (one given is an error). A path lists at most
//! [`crate::MAX_LISTED`] parameters.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::aws::{AwsConfig, AwsService};
use crate::property::{self, Origin};
use crate::{Error, Find, FindBudget, RemoteRef, SecretBytes, SecretProvider};

const SERVICE: &str = "AWS SSM Parameter Store";

/// The most `GetParametersByPath` returns per page.
const PAGE_SIZE: i32 = 10;

/// An AWS SSM Parameter Store.
pub struct ParameterStore {
    client: aws_sdk_ssm::Client,
    service: AwsService,
}

impl std::fmt::Debug for ParameterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterStore")
            .field("store", &self.service.store)
            .finish_non_exhaustive()
    }
}

fn is_not_found(code: &str, _message: &str) -> bool {
    matches!(
        code,
        "ParameterNotFound" | "ParameterVersionNotFound" | "ParameterVersionLabelNotFound"
    )
}

impl ParameterStore {
    /// A provider for `config`. Loads the SDK configuration (region and credential chain);
    /// nothing is sent to SSM until the first call.
    pub async fn new(config: AwsConfig) -> Result<ParameterStore, Error> {
        let service = AwsService::load(config, SERVICE).await?;
        let mut builder = aws_sdk_ssm::config::Builder::from(&service.sdk);
        if let Some(url) = &service.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Ok(ParameterStore {
            client: aws_sdk_ssm::Client::from_conf(builder.build()),
            service,
        })
    }

    /// The store's name in messages: service, region, endpoint and role.
    pub fn store(&self) -> &str {
        &self.service.store
    }

    /// Every parameter below `path` (with `recursive`, at any depth; otherwise only its direct
    /// children), decrypted, keyed by the name relative to `path`. All pages are read. An empty
    /// map when there is none.
    pub async fn get_by_path(
        &self,
        path: &str,
        recursive: bool,
    ) -> Result<BTreeMap<String, SecretBytes>, Error> {
        let mut budget = FindBudget::new(&self.service.store);
        self.parameters_under(path, recursive, &mut budget, |_| true)
            .await
    }

    /// The parameters below `path` whose full name `wanted`, keyed by the name relative to the
    /// path, each counted against `budget` (listed, and found when wanted).
    async fn parameters_under(
        &self,
        path: &str,
        recursive: bool,
        budget: &mut FindBudget<'_>,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<BTreeMap<String, SecretBytes>, Error> {
        let trimmed = path.trim();
        if trimmed.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{}: the parameter path is empty",
                self.service.store
            )));
        }
        // SSM wants `/app` (no trailing slash), except for the root `/`.
        let query = match trimmed.trim_end_matches('/') {
            "" => "/",
            other => other,
        };
        let prefix = if query == "/" {
            "/".to_owned()
        } else {
            format!("{query}/")
        };
        let reference = RemoteRef::new(trimmed);
        let mut values = BTreeMap::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_parameters_by_path()
                .path(query)
                .recursive(recursive)
                .with_decryption(true)
                .max_results(PAGE_SIZE)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| self.service.classify(e, Some(&reference), is_not_found))?;
            budget.page()?;
            for parameter in page.parameters.unwrap_or_default() {
                budget.listed()?;
                let (Some(name), Some(value)) = (parameter.name, parameter.value) else {
                    continue;
                };
                if !wanted(&name) {
                    continue;
                }
                budget.found()?;
                let relative = name.strip_prefix(&prefix).unwrap_or(&name).to_owned();
                values.insert(relative, Zeroizing::new(value.into_bytes()));
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => break,
            }
        }
        Ok(values)
    }

    /// The decrypted value of the parameter (version) `r` names.
    async fn value(&self, r: &RemoteRef) -> Result<SecretBytes, Error> {
        let key = r.key.trim();
        if key.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "{}: the remote key is empty",
                self.service.store
            )));
        }
        let name = match r
            .version
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            Some(version) => format!("{key}:{version}"),
            None => key.to_owned(),
        };
        let output = self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| self.service.classify(e, Some(r), is_not_found))?;
        output
            .parameter
            .and_then(|p| p.value)
            .map(|v| Zeroizing::new(v.into_bytes()))
            .ok_or_else(|| Error::InvalidValue {
                store: self.service.store.clone(),
                key: r.key.clone(),
                message: "the parameter has no value".to_owned(),
            })
    }
}

#[async_trait::async_trait]
impl SecretProvider for ParameterStore {
    async fn get(&self, r: &RemoteRef) -> Result<SecretBytes, Error> {
        let value = self.value(r).await?;
        self.service.select(r, value)
    }

    async fn get_all(&self, r: &RemoteRef) -> Result<BTreeMap<String, SecretBytes>, Error> {
        if r.key.trim().ends_with('/') {
            if let Some(property) = &r.property {
                return Err(Error::InvalidProperty {
                    store: self.service.store.clone(),
                    key: r.key.clone(),
                    property: property.clone(),
                    message: "a path (a key ending in /) has no properties".to_owned(),
                });
            }
            return self.get_by_path(&r.key, true).await;
        }
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

    /// Every parameter below `find.path` (default `/`, recursively) whose full name matches,
    /// keyed by that name.
    async fn find(&self, find: &Find) -> Result<BTreeMap<String, SecretBytes>, Error> {
        let matcher = find.matcher(&self.service.store)?;
        let mut budget = FindBudget::new(&self.service.store);
        let path = find
            .path
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let path = path.unwrap_or("/");
        let found = self
            .parameters_under(path, true, &mut budget, |name| matcher.is_match(name))
            .await?;
        // Keyed by the full name, as ESO does for a find.
        let base = match path.trim_end_matches('/') {
            "" => "/".to_owned(),
            other => format!("{other}/"),
        };
        Ok(found
            .into_iter()
            .map(|(relative, value)| {
                let full = if relative.starts_with('/') {
                    relative
                } else {
                    format!("{base}{relative}")
                };
                (full, value)
            })
            .collect())
    }

    /// Describes at most one parameter: the call is authenticated, so refused credentials show;
    /// an `AccessDeniedException` means valid credentials without that permission, which counts
    /// as usable.
    async fn validate(&self) -> Result<(), Error> {
        match self
            .client
            .describe_parameters()
            .max_results(1)
            .send()
            .await
        {
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
        "aws-ssm"
    }
}
