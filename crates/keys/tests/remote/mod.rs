//! Helpers for the tests against moto (AWS KMS) and OpenBao (Vault transit): creating keys,
//! running upstream sops with the peers' environment, and encrypting/decrypting whole files
//! with signet's library the way the CLI does.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use signet_keys::{Environment, KeySpec, Keyring, NoInteraction};
use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use signet_sops::stores::store_for;
use signet_sops::{DataKey, Format, Metadata};

/// The environment moto's clients need.
pub fn moto_env() -> Vec<(String, String)> {
    signet_testkit::Moto::shared()
        .expect("moto could not be started")
        .env()
}

/// The environment OpenBao's clients need.
pub fn bao_env() -> Vec<(String, String)> {
    signet_testkit::OpenBao::shared()
        .expect("OpenBao could not be started")
        .env()
}

/// A fresh symmetric KMS key in moto; its ARN.
pub fn create_kms_key() -> String {
    moto().create_kms_key(None).expect("moto CreateKey")
}

/// A fresh KMS key with an alias `alias/<alias>`; the alias ARN.
pub fn create_kms_alias(alias: &str) -> String {
    moto()
        .create_kms_key(Some(alias))
        .expect("moto CreateAlias")
}

fn moto() -> &'static signet_testkit::Moto {
    signet_testkit::Moto::shared().expect("moto could not be started")
}

fn openbao() -> &'static signet_testkit::OpenBao {
    signet_testkit::OpenBao::shared().expect("OpenBao could not be started")
}

fn bao(args: &[&str]) -> String {
    bao_in(None, args)
}

fn bao_in(namespace: Option<&str>, args: &[&str]) -> String {
    openbao()
        .bao(namespace, args)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh transit mount (its own path, so tests do not collide) with one key; its URI.
pub fn create_transit_key(label: &str) -> String {
    openbao()
        .create_transit_key(label)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh namespace with a transit mount and key; (namespace, key URI).
pub fn create_transit_key_in_namespace(label: &str) -> (String, String) {
    let namespace = unique(label);
    bao(&["namespace", "create", &namespace]);
    bao_in(Some(&namespace), &["secrets", "enable", "transit"]);
    bao_in(Some(&namespace), &["write", "-f", "transit/keys/nskey"]);
    let addr = signet_testkit::OpenBao::shared().unwrap().addr();
    (namespace, format!("{addr}/v1/transit/keys/nskey"))
}

fn unique(label: &str) -> String {
    format!(
        "{label}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Upstream sops.
pub fn sops() -> PathBuf {
    signet_testkit::peer_path("sops").unwrap_or_else(|e| panic!("{e}"))
}

/// Runs sops in `dir` with exactly `vars` (plus PATH/HOME); returns (success, stdout, stderr).
pub fn run_sops(dir: &Path, vars: &[(String, String)], args: &[&str]) -> (bool, String, String) {
    let out = Command::new(sops())
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs sops and insists on success; its stdout.
pub fn sops_ok(dir: &Path, vars: &[(String, String)], args: &[&str]) -> String {
    let (ok, stdout, stderr) = run_sops(dir, vars, args);
    assert!(ok, "sops {args:?} failed: {stderr}");
    stdout
}

/// Encrypts a YAML document with signet's library to `groups` (credentials from `vars`).
pub fn signet_encrypt(
    plain: &str,
    groups: Vec<Vec<KeySpec>>,
    threshold: Option<usize>,
    vars: &[(String, String)],
) -> String {
    let env = Environment::from_vars(vars.iter().cloned());
    let groups: Vec<Vec<_>> = groups
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|k| k.in_environment(env.clone()))
                .collect()
        })
        .collect();
    let store = store_for(Format::Yaml);
    let mut tree = store.parse(plain.as_bytes()).unwrap();
    let data_key = DataKey::generate();
    let key_groups = signet_keys::wrap_data_key(&data_key, &groups, threshold).unwrap();
    let mut meta = Metadata {
        shamir_threshold: signet_keys::shamir_threshold_for(key_groups.len(), threshold),
        key_groups,
        ..Default::default()
    };
    engine::encrypt(&mut tree, &data_key, &mut meta, &EncryptOptions::default()).unwrap();
    String::from_utf8(store.emit(&tree).unwrap()).unwrap()
}

/// Decrypts a YAML file with signet's library and a keyring from `vars`.
pub fn signet_decrypt(encrypted: &str, vars: &[(String, String)]) -> Result<String, String> {
    let env = Environment::from_vars(vars.iter().cloned());
    let keyring = Keyring::from_environment(&env, Arc::new(NoInteraction));
    let store = store_for(Format::Yaml);
    let mut tree = store.parse(encrypted.as_bytes()).unwrap();
    let meta = engine::metadata_of(&tree).unwrap().expect("not encrypted");
    let key = signet_keys::unwrap_data_key(&meta, &keyring).map_err(|e| e.to_string())?;
    engine::decrypt(&mut tree, &key, DecryptOptions::default()).map_err(|e| e.to_string())?;
    Ok(String::from_utf8(store.emit(&tree).unwrap()).unwrap())
}

/// A variable list plus `HOME` pointing at `dir` (so no real key files are picked up).
pub fn with_home(dir: &Path, vars: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut vars = vars;
    vars.push(("HOME".to_owned(), dir.display().to_string()));
    vars
}

/// The plaintext used by these tests.
pub const PLAIN: &str = "app:\n    db_password: hunter2-canary\n    port: 5432\n";
