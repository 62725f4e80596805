//! Vault / OpenBao transit master keys, as sops uses them (`hcvault/keysource.go`): the data
//! key (or Shamir share) is base64-encoded and sent as `plaintext` to
//! `POST {address}/v1/{engine_path}/encrypt/{key_name}`; the returned `vault:v1:…` ciphertext is
//! stored in `enc`. Decryption posts it to `…/decrypt/{key_name}` and base64-decodes the
//! returned `plaintext`.
//!
//! The token comes from `VAULT_TOKEN`, else from `~/.vault-token` (the Vault CLI's token
//! helper file), as with sops; the address is the entry's `vault_address`. Like the Vault
//! client sops uses, `VAULT_NAMESPACE` sets the namespace header, `VAULT_CACERT` adds a CA
//! bundle (PEM) and `VAULT_SKIP_VERIFY` turns certificate checks off. `SOPS_HC_VAULT_ALLOWLIST`
//! limits the addresses a call (and so the token) may go to, as in sops 3.13.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use signet_sops::metadata::{HcVaultEntry, MasterKeyEntry};
use zeroize::Zeroizing;

use crate::Error;
use crate::keyring::Environment;
use crate::keyspec::VaultTransitKey;
use crate::masterkey::{KeyFuture, KeySource};
use crate::runtime::{DEFAULT_TIMEOUT, error_chain, run};

/// `SOPS_VAULT_URIS`: comma-separated transit URIs to encrypt to when no other key is given.
pub const SOPS_VAULT_URIS: &str = "SOPS_VAULT_URIS";
/// `VAULT_TOKEN`: the token used for transit requests.
pub const VAULT_TOKEN: &str = "VAULT_TOKEN";
/// `VAULT_NAMESPACE`: the Vault/OpenBao namespace of the transit mounts.
pub const VAULT_NAMESPACE: &str = "VAULT_NAMESPACE";
/// `VAULT_CACERT`: a PEM file of CA certificates to trust besides the built-in roots.
pub const VAULT_CACERT: &str = "VAULT_CACERT";
/// `VAULT_SKIP_VERIFY`: when true, TLS certificates are not verified.
pub const VAULT_SKIP_VERIFY: &str = "VAULT_SKIP_VERIFY";
/// `SOPS_HC_VAULT_ALLOWLIST`: the Vault addresses a transit call may go to (and the token with
/// it), as in sops 3.13: `all` (the default), `none`, or comma-separated address prefixes.
pub const SOPS_HC_VAULT_ALLOWLIST: &str = "SOPS_HC_VAULT_ALLOWLIST";
/// Largest answer read from a transit call (they are a few hundred bytes): the server is the
/// one a file's `vault_address` names, and whoever wrote the file chose it.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Talks to Vault / OpenBao transit to wrap and unwrap data keys. Also the [`KeySource`] for
/// `hc_vault` entries.
#[derive(Clone)]
pub struct VaultClient {
    env: Environment,
    timeout: Duration,
    http: Arc<OnceLock<Result<reqwest::Client, String>>>,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl VaultClient {
    /// A client taking its token from `env` (`VAULT_TOKEN`, else `$HOME/.vault-token`).
    pub fn new(env: &Environment) -> Self {
        VaultClient {
            env: env.clone(),
            timeout: DEFAULT_TIMEOUT,
            http: Arc::default(),
        }
    }

    /// Sets how long one transit call may take (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The HTTP client for this environment's TLS settings, built once.
    fn http(&self) -> Result<Request, String> {
        let client = self
            .http
            .get_or_init(|| {
                // No redirects: the token travels in X-Vault-Token, which would follow a redirect
                // to wherever the answer points (the controller's Vault provider refuses them too).
                let mut builder =
                    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
                if let Some(path) = self.env.get(VAULT_CACERT).filter(|p| !p.is_empty()) {
                    let pem = std::fs::read(path)
                        .map_err(|e| format!("cannot read {VAULT_CACERT} file {path}: {e}"))?;
                    let certs = reqwest::Certificate::from_pem_bundle(&pem)
                        .map_err(|e| format!("{VAULT_CACERT} file {path} is not PEM: {e}"))?;
                    for cert in certs {
                        builder = builder.add_root_certificate(cert);
                    }
                }
                let skip_verify = self
                    .env
                    .get(VAULT_SKIP_VERIFY)
                    .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"));
                if skip_verify {
                    builder = builder.tls_danger_accept_invalid_certs(true);
                }
                builder
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))
            })
            .clone()?;
        Ok(Request {
            client,
            namespace: self
                .env
                .get(VAULT_NAMESPACE)
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        })
    }

    fn token(&self) -> Result<Zeroizing<String>, String> {
        if let Some(token) = self.env.get(VAULT_TOKEN).filter(|t| !t.is_empty()) {
            return Ok(Zeroizing::new(token.to_owned()));
        }
        let home = self
            .env
            .get("HOME")
            .filter(|h| !h.is_empty())
            .ok_or("no Vault token: VAULT_TOKEN is unset and $HOME is not defined")?;
        let path = std::path::Path::new(home).join(".vault-token");
        match std::fs::read_to_string(&path) {
            Ok(token) if !token.trim().is_empty() => Ok(Zeroizing::new(token.trim().to_owned())),
            Ok(_) => Err(format!("no Vault token: {} is empty", path.display())),
            Err(e) => Err(format!(
                "no Vault token: VAULT_TOKEN is unset and {} cannot be read ({e})",
                path.display()
            )),
        }
    }

    /// Whether `SOPS_HC_VAULT_ALLOWLIST` lets a call (and the token) go to `address`, judged as
    /// sops judges it: each listed prefix and the address get a final `/`, then the address must
    /// start with a prefix; an empty entry makes the whole list invalid.
    fn allowed(&self, address: &str) -> Result<(), String> {
        let list = match self
            .env
            .get(SOPS_HC_VAULT_ALLOWLIST)
            .filter(|l| !l.is_empty())
        {
            None | Some("all") => return Ok(()),
            Some(list) => list,
        };
        let refused = || format!("{SOPS_HC_VAULT_ALLOWLIST} does not allow {address}");
        if list == "none" {
            return Err(refused());
        }
        let with_slash = |s: &str| {
            if s.ends_with('/') {
                s.to_owned()
            } else {
                format!("{s}/")
            }
        };
        let address = with_slash(address);
        let mut allowed = false;
        for (i, prefix) in list.split(',').enumerate() {
            let prefix = prefix.trim_matches(' ');
            if prefix.is_empty() {
                return Err(format!(
                    "{SOPS_HC_VAULT_ALLOWLIST}'s entry {} is empty",
                    i + 1
                ));
            }
            allowed |= address.starts_with(&with_slash(prefix));
        }
        if allowed { Ok(()) } else { Err(refused()) }
    }

    /// Encrypts `secret` (the data key or a share) with the transit key, giving the entry.
    pub async fn wrap(&self, key: &VaultTransitKey, secret: &[u8]) -> Result<HcVaultEntry, Error> {
        let name = key.uri();
        let fail = |message: String| Error::Wrap {
            key: name.clone(),
            message,
        };
        self.allowed(&key.address).map_err(fail)?;
        let token = self.token().map_err(fail)?;
        let http = self.http().map_err(fail)?;
        let url = format!(
            "{}/v1/{}/encrypt/{}",
            key.address.trim_end_matches('/'),
            key.engine_path,
            key.key_name
        );
        let body =
            Zeroizing::new(serde_json::json!({ "plaintext": STANDARD.encode(secret) }).to_string());
        let ciphertext = run(
            async move {
                let data = http.post(&url, &token, body).await?;
                data.get("ciphertext")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned)
                    .ok_or_else(|| "the response has no data.ciphertext".to_owned())
            },
            self.timeout,
            fail,
        )
        .await?;
        Ok(HcVaultEntry {
            vault_address: key.address.clone(),
            engine_path: key.engine_path.clone(),
            key_name: key.key_name.clone(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            enc: ciphertext,
        })
    }

    /// Decrypts an `hc_vault` entry, giving back the data key or share.
    pub async fn unwrap_entry(&self, entry: &HcVaultEntry) -> Result<Zeroizing<Vec<u8>>, Error> {
        let name = VaultTransitKey {
            address: entry.vault_address.clone(),
            engine_path: entry.engine_path.clone(),
            key_name: entry.key_name.clone(),
        }
        .uri();
        let fail = |message: String| Error::Unwrap {
            key: name.clone(),
            message,
        };
        self.allowed(&entry.vault_address).map_err(fail)?;
        let token = self.token().map_err(fail)?;
        let http = self.http().map_err(fail)?;
        let url = format!(
            "{}/v1/{}/decrypt/{}",
            entry.vault_address.trim_end_matches('/'),
            entry.engine_path,
            entry.key_name
        );
        let body = Zeroizing::new(serde_json::json!({ "ciphertext": entry.enc }).to_string());
        let encoded = run(
            async move {
                let data = http.post(&url, &token, body).await?;
                data.get("plaintext")
                    .and_then(|c| c.as_str())
                    .map(|p| Zeroizing::new(p.to_owned()))
                    .ok_or_else(|| "the response has no data.plaintext".to_owned())
            },
            self.timeout,
            fail,
        )
        .await?;
        STANDARD
            .decode(encoded.as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| fail("the returned plaintext is not valid base64".to_owned()))
    }
}

/// An HTTP client and the namespace to send requests to.
struct Request {
    client: reqwest::Client,
    namespace: Option<String>,
}

impl Request {
    /// POSTs `body` with the token and returns the response's `data` object. Errors carry the
    /// HTTP status and Vault's `errors` list (which never echo the request body).
    async fn post(
        &self,
        url: &str,
        token: &str,
        body: Zeroizing<String>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let mut request = self.client.post(url);
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        let response = request
            .header("X-Vault-Token", token)
            .header("X-Vault-Request", "true")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.as_bytes().to_vec())
            .send()
            .await
            .map_err(|e| format!("request to {url} failed: {}", error_chain(&e)))?;
        let status = response.status();
        if status.is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("elsewhere");
            return Err(format!(
                "{url} answered {status}, a redirect to {to}: redirects are not followed (the \
                 token would go along); set vault_address to the server that answers"
            ));
        }
        let too_large = || format!("the answer from {url} is larger than {MAX_ANSWER_BYTES} bytes");
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut response = response;
        let mut bytes = Zeroizing::new(Vec::new());
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the answer from {url} failed: {e}"))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| format!("{url} answered {status} with a body that is not JSON"))?;
        if !status.is_success() {
            let errors = value
                .get("errors")
                .and_then(|e| e.as_array())
                .map(|list| {
                    list.iter()
                        .filter_map(|e| e.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            return Err(format!("{url} answered {status}: {errors}"));
        }
        match value {
            serde_json::Value::Object(mut object) => match object.remove("data") {
                Some(serde_json::Value::Object(data)) => Ok(data),
                _ => Err(format!("{url} answered without a data object")),
            },
            _ => Err(format!("{url} answered with a non-object body")),
        }
    }
}

impl KeySource for VaultClient {
    fn unwrap<'a>(
        &'a self,
        entry: &'a MasterKeyEntry,
    ) -> KeyFuture<'a, Option<Zeroizing<Vec<u8>>>> {
        Box::pin(async move {
            match entry {
                MasterKeyEntry::HcVault(vault) => self.unwrap_entry(vault).await.map(Some),
                _ => Ok(None),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signet_testkit::one_shot_server;

    fn client() -> VaultClient {
        VaultClient::new(&Environment::from_vars([(VAULT_TOKEN, "s.CANARY-token")]))
    }

    fn key(address: &str) -> VaultTransitKey {
        VaultTransitKey {
            address: address.to_owned(),
            engine_path: "transit".to_owned(),
            key_name: "k".to_owned(),
        }
    }

    /// The token goes to the server a file names, never to where that server redirects: a
    /// standby node's 307 (or a hostile server's) is an error naming the redirect.
    #[test]
    fn redirects_are_not_followed_so_the_token_stays_with_the_named_server() {
        let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        elsewhere.set_nonblocking(true).unwrap();
        let target = elsewhere.local_addr().unwrap();
        for status in [
            "307 Temporary Redirect",
            "302 Found",
            "308 Permanent Redirect",
        ] {
            let (server, served) = one_shot_server(
                format!(
                    "HTTP/1.1 {status}\r\nLocation: http://{target}/v1/transit/encrypt/k\r\nContent-Length: 0\r\n\r\n"
                ),
                0,
            );
            let err = crate::masterkey::block_on(client().wrap(&key(&server), &[7; 32]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&status[..3]) && err.contains("redirect"),
                "{err}"
            );
            assert!(!err.contains("CANARY"), "{err}");
            assert!(served.join().unwrap().contains("s.CANARY-token"));
            assert!(
                elsewhere.accept().is_err(),
                "the redirect target was contacted ({status})"
            );
        }
    }

    /// An answer larger than [`MAX_ANSWER_BYTES`] is refused, announced or not.
    #[test]
    fn an_oversized_answer_is_refused() {
        let size = MAX_ANSWER_BYTES + (1 << 20);
        for head in [
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
            ),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                .to_owned(),
        ] {
            let (server, _served) = one_shot_server(head, size);
            let entry = HcVaultEntry {
                vault_address: server.clone(),
                engine_path: "transit".to_owned(),
                key_name: "k".to_owned(),
                created_at: String::new(),
                enc: "vault:v1:x".to_owned(),
            };
            let err = crate::masterkey::block_on(client().unwrap_entry(&entry))
                .unwrap_err()
                .to_string();
            assert!(err.contains("larger than"), "{err}");
        }
    }
}
