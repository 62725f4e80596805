//! Vault transit master keys against OpenBao: wrap/unwrap round trips, token lookup, errors
//! that name the key, and interop with upstream sops both ways.

use crate::remote;

use std::time::Duration;

use remote::*;
use signet_keys::{Environment, KeySpec, VaultClient, VaultTransitKey};

fn client() -> VaultClient {
    VaultClient::new(&Environment::from_vars(bao_env()))
}

#[test]
fn round_trip() {
    let uri = create_transit_key("roundtrip");
    let key = VaultTransitKey::parse_uri(&uri).unwrap();
    let secret = [5u8; 33];
    let entry = signet_keys::block_on(client().wrap(&key, &secret)).unwrap();
    assert!(entry.enc.starts_with("vault:v1:"), "{}", entry.enc);
    assert_eq!(entry.key_name, "firstkey");
    assert!(entry.engine_path.starts_with("sops/roundtrip-"));
    assert!(chrono::DateTime::parse_from_rfc3339(&entry.created_at).is_ok());
    let back = signet_keys::block_on(client().unwrap_entry(&entry)).unwrap();
    assert_eq!(&back[..], &secret[..]);
}

/// `SOPS_HC_VAULT_ALLOWLIST` (sops 3.13): a file's `vault_address` outside the list gets no call
/// and so no token; `none` refuses every address, `all` and a matching prefix let it through, and
/// an empty entry is an error.
#[test]
fn the_allowlist_decides_which_vault_gets_the_token() {
    let uri = create_transit_key("allowlist");
    let key = VaultTransitKey::parse_uri(&uri).unwrap();
    let entry = signet_keys::block_on(client().wrap(&key, &[9u8; 32])).unwrap();
    let with = |list: &str| {
        let mut vars = bao_env();
        vars.push(("SOPS_HC_VAULT_ALLOWLIST".into(), list.into()));
        VaultClient::new(&Environment::from_vars(vars))
    };
    let address = entry.vault_address.clone();
    let (_, token) = bao_env()
        .into_iter()
        .find(|(k, _)| k == "VAULT_TOKEN")
        .unwrap();
    for list in [
        "all".to_owned(),
        address.clone(),
        format!(" http://nowhere:1, {address}/"),
    ] {
        let back = signet_keys::block_on(with(&list).unwrap_entry(&entry)).unwrap();
        assert_eq!(&back[..], &[9u8; 32], "{list}");
    }
    // A listener standing in for the attacker's Vault a hostile file names: it must get nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut elsewhere = entry.clone();
    elsewhere.vault_address = format!("http://{}", listener.local_addr().unwrap());
    for (list, entry, says) in [
        ("none", &entry, "does not allow"),
        (address.as_str(), &elsewhere, "does not allow"),
        ("http://127.0.0.1:1", &entry, "does not allow"),
        (&*format!("{address},"), &entry, "entry 2 is empty"),
    ] {
        let err = signet_keys::block_on(with(list).unwrap_entry(entry))
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{list}: {err}");
        assert!(!err.contains(&token), "no token in {err}");
    }
    assert!(listener.accept().is_err(), "nothing reached the listener");
    let err = signet_keys::block_on(with("none").wrap(&key, &[1u8; 32]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not allow"), "{err}");
}

#[test]
fn token_from_the_vault_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let bao = signet_testkit::OpenBao::shared().unwrap();
    std::fs::write(
        dir.path().join(".vault-token"),
        format!("{}\n", bao.root_token()),
    )
    .unwrap();
    let env = Environment::from_vars([("HOME", dir.path().display().to_string())]);
    let uri = create_transit_key("tokenfile");
    let key = VaultTransitKey::parse_uri(&uri).unwrap();
    let client = VaultClient::new(&env);
    let entry = signet_keys::block_on(client.wrap(&key, &[1u8; 32])).unwrap();
    let back = signet_keys::block_on(client.unwrap_entry(&entry)).unwrap();
    assert_eq!(&back[..], &[1u8; 32]);

    // No VAULT_TOKEN and no token file: a clear error naming the key.
    let empty = tempfile::tempdir().unwrap();
    let env = Environment::from_vars([("HOME", empty.path().display().to_string())]);
    let err = signet_keys::block_on(VaultClient::new(&env).unwrap_entry(&entry)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&uri), "{message}");
    assert!(message.contains("VAULT_TOKEN"), "{message}");
}

#[test]
fn bad_token_and_tampered_ciphertext_are_refused_without_secrets() {
    let uri = create_transit_key("refused");
    let key = VaultTransitKey::parse_uri(&uri).unwrap();
    let entry = signet_keys::block_on(client().wrap(&key, &[2u8; 32])).unwrap();

    let bad = Environment::from_vars([("VAULT_TOKEN", "s.not-a-real-token-canary")]);
    let err = signet_keys::block_on(VaultClient::new(&bad).unwrap_entry(&entry)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&uri), "{message}");
    assert!(message.contains("403"), "{message}");
    assert!(!message.contains("not-a-real-token-canary"), "{message}");

    let mut tampered = entry.clone();
    let last = tampered.enc.pop().unwrap();
    tampered.enc.push(if last == 'A' { 'B' } else { 'A' });
    let err = signet_keys::block_on(client().unwrap_entry(&tampered)).unwrap_err();
    assert!(err.to_string().contains(&uri), "{err}");
}

#[test]
fn signet_encrypts_to_transit_and_sops_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let uri = create_transit_key("tosops");
    let vars = with_home(dir.path(), bao_env());
    let encrypted = signet_encrypt(PLAIN, vec![KeySpec::vault_list(&uri).unwrap()], None, &vars);
    assert!(encrypted.contains("vault:v1:"), "{encrypted}");
    assert!(!encrypted.contains("hunter2-canary"));
    std::fs::write(dir.path().join("secret.enc.yaml"), &encrypted).unwrap();
    let plain = sops_ok(dir.path(), &vars, &["decrypt", "secret.enc.yaml"]);
    assert_eq!(plain, PLAIN);
}

#[test]
fn sops_encrypts_to_transit_and_signet_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let uri = create_transit_key("fromsops");
    let vars = with_home(dir.path(), bao_env());
    std::fs::write(dir.path().join("secret.yaml"), PLAIN).unwrap();
    let encrypted = sops_ok(
        dir.path(),
        &vars,
        &["encrypt", "--hc-vault-transit", &uri, "secret.yaml"],
    );
    assert!(encrypted.contains("hc_vault"), "{encrypted}");
    assert_eq!(signet_decrypt(&encrypted, &vars).unwrap(), PLAIN);

    // SOPS_VAULT_URIS works the same way.
    let mut vars = vars;
    vars.push(("SOPS_VAULT_URIS".to_owned(), uri.clone()));
    let encrypted = sops_ok(dir.path(), &vars, &["encrypt", "secret.yaml"]);
    assert!(encrypted.contains("vault:v1:"));
    assert_eq!(signet_decrypt(&encrypted, &vars).unwrap(), PLAIN);
}

#[test]
fn vault_namespace_both_ways_with_sops() {
    let dir = tempfile::tempdir().unwrap();
    let (namespace, uri) = create_transit_key_in_namespace("ns");
    let mut vars = with_home(dir.path(), bao_env());
    // Without the namespace the key is not found.
    let outside = signet_encrypt_result(&uri, &vars);
    assert!(outside.is_err());
    vars.push(("VAULT_NAMESPACE".to_owned(), namespace));
    let encrypted = signet_encrypt(PLAIN, vec![KeySpec::vault_list(&uri).unwrap()], None, &vars);
    std::fs::write(dir.path().join("secret.enc.yaml"), &encrypted).unwrap();
    assert_eq!(
        sops_ok(dir.path(), &vars, &["decrypt", "secret.enc.yaml"]),
        PLAIN
    );
    std::fs::write(dir.path().join("secret.yaml"), PLAIN).unwrap();
    let by_sops = sops_ok(
        dir.path(),
        &vars,
        &["encrypt", "--hc-vault-transit", &uri, "secret.yaml"],
    );
    assert_eq!(signet_decrypt(&by_sops, &vars).unwrap(), PLAIN);
}

fn signet_encrypt_result(
    uri: &str,
    vars: &[(String, String)],
) -> Result<signet_sops::metadata::HcVaultEntry, signet_keys::Error> {
    let env = Environment::from_vars(vars.iter().cloned());
    let key = VaultTransitKey::parse_uri(uri).unwrap();
    signet_keys::block_on(VaultClient::new(&env).wrap(&key, &[8u8; 32]))
}

/// An OpenBao dev server with TLS (`-dev-tls`), stopped on drop.
struct TlsBao {
    child: std::process::Child,
    addr: String,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for TlsBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsBao {
    fn start() -> TlsBao {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let child = std::process::Command::new(bao())
            .args([
                "server",
                "-dev",
                "-dev-tls",
                &format!("-dev-tls-cert-dir={}", dir.path().display()),
                "-dev-root-token-id=tls-root",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the bao binary is not installed; run scripts/bootstrap");
        let bao = TlsBao {
            child,
            addr: format!("https://127.0.0.1:{port}"),
            ca: dir.path().join("vault-ca.pem"),
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if bao.ca.exists() && bao.cli(&["secrets", "enable", "transit"]).is_ok() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the TLS OpenBao did not come up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        bao.cli(&["write", "-f", "transit/keys/tlskey"]).unwrap();
        bao
    }

    fn cli(&self, args: &[&str]) -> Result<(), String> {
        let out = std::process::Command::new(bao())
            .env_clear()
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", "tls-root")
            .env("BAO_CACERT", &self.ca)
            .args(args)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

#[test]
fn tls_with_vault_cacert_or_skip_verify() {
    let bao = TlsBao::start();
    let uri = format!("{}/v1/transit/keys/tlskey", bao.addr);
    let key = VaultTransitKey::parse_uri(&uri).unwrap();
    let home = tempfile::tempdir().unwrap();
    let base = vec![
        ("VAULT_TOKEN".to_owned(), "tls-root".to_owned()),
        ("HOME".to_owned(), home.path().display().to_string()),
    ];

    // The dev CA is not trusted by default: refused, naming the key.
    let untrusted = VaultClient::new(&Environment::from_vars(base.clone()));
    let err = signet_keys::block_on(untrusted.wrap(&key, &[6u8; 32])).unwrap_err();
    assert!(err.to_string().contains(&uri), "{err}");

    let mut trusted_vars = base.clone();
    trusted_vars.push(("VAULT_CACERT".to_owned(), bao.ca.display().to_string()));
    let trusted = VaultClient::new(&Environment::from_vars(trusted_vars.clone()));
    let entry = signet_keys::block_on(trusted.wrap(&key, &[6u8; 32])).unwrap();
    let back = signet_keys::block_on(trusted.unwrap_entry(&entry)).unwrap();
    assert_eq!(&back[..], &[6u8; 32]);

    let mut skip_vars = base.clone();
    skip_vars.push(("VAULT_SKIP_VERIFY".to_owned(), "true".to_owned()));
    let skipping = VaultClient::new(&Environment::from_vars(skip_vars));
    let back = signet_keys::block_on(skipping.unwrap_entry(&entry)).unwrap();
    assert_eq!(&back[..], &[6u8; 32]);

    // sops trusts the same VAULT_CACERT for a file signet wrote.
    let encrypted = signet_encrypt(
        PLAIN,
        vec![vec![KeySpec::HcVault(key.clone())]],
        None,
        &trusted_vars,
    );
    std::fs::write(home.path().join("secret.enc.yaml"), &encrypted).unwrap();
    assert_eq!(
        sops_ok(home.path(), &trusted_vars, &["decrypt", "secret.enc.yaml"]),
        PLAIN
    );
}

/// The OpenBao binary the bootstrap installs.
fn bao() -> std::path::PathBuf {
    signet_testkit::peer_path("bao").unwrap_or_else(|e| panic!("{e}"))
}
