//! Vault transit master keys against OpenBao: wrap/unwrap round trips, token lookup, errors
//! that name the key, and interop with upstream sops both ways.

mod remote;

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
