//! AWS KMS master keys against moto: wrap/unwrap round trips with an encryption context, a
//! wrong context refused, assume-role, and interop with upstream sops both ways.

use crate::remote;

use std::time::Duration;

use remote::*;
use signet_keys::{Environment, KeySpec, KmsClient, KmsKey};
use signet_sops::metadata::KmsEntry;

fn context() -> Vec<(String, String)> {
    vec![
        ("app".to_owned(), "billing".to_owned()),
        ("env".to_owned(), "prod".to_owned()),
    ]
}

fn client() -> KmsClient {
    KmsClient::new(&Environment::from_vars(moto_env()))
}

fn wrap(key: &KmsKey, secret: &[u8]) -> KmsEntry {
    signet_keys::block_on(client().wrap(key, secret)).unwrap()
}

#[test]
fn round_trip_with_context() {
    let arn = create_kms_key();
    let key = KmsKey::from_arn(&arn, &context(), "");
    let secret = [7u8; 32];
    let entry = wrap(&key, &secret);
    assert_eq!(entry.arn, arn);
    assert_eq!(entry.context, context());
    assert_eq!(entry.role, None);
    assert!(
        chrono::DateTime::parse_from_rfc3339(&entry.created_at).is_ok()
            && entry.created_at.ends_with('Z'),
        "{}",
        entry.created_at
    );
    assert!(!entry.enc.contains(&hex(&secret)));
    let back = signet_keys::block_on(client().unwrap_entry(&entry)).unwrap();
    assert_eq!(&back[..], &secret[..]);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn wrong_context_is_refused_and_the_error_names_the_key() {
    let arn = create_kms_key();
    let key = KmsKey::from_arn(&arn, &context(), "");
    let mut entry = wrap(&key, &[9u8; 32]);
    entry.context = vec![("app".to_owned(), "billing".to_owned())];
    let err = signet_keys::block_on(client().unwrap_entry(&entry)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&arn), "{message}");
    assert!(message.contains("failed to decrypt"), "{message}");
    entry.context = vec![
        ("app".to_owned(), "billing".to_owned()),
        ("env".to_owned(), "dev".to_owned()),
    ];
    assert!(signet_keys::block_on(client().unwrap_entry(&entry)).is_err());
}

#[test]
fn unreachable_endpoint_fails_with_the_arn_within_the_timeout() {
    let arn = create_kms_key();
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut vars = moto_env();
    vars.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    vars.push((
        "AWS_ENDPOINT_URL".to_owned(),
        format!("http://127.0.0.1:{port}"),
    ));
    let client = KmsClient::new(&Environment::from_vars(vars)).with_timeout(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let err =
        signet_keys::block_on(client.wrap(&KmsKey::from_arn(&arn, &[], ""), &[1; 32])).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30));
    let message = err.to_string();
    assert!(message.contains(&arn), "{message}");
    assert!(message.contains("failed to encrypt"), "{message}");
}

#[test]
fn assume_role_through_sts() {
    let arn = create_kms_key();
    let role = "arn:aws:iam::123456789012:role/signet-assume-probe";
    let key = KmsKey::from_arn(&format!("{arn}+{role}"), &context(), "");
    assert_eq!(key.role.as_deref(), Some(role));
    let entry = wrap(&key, &[3u8; 32]);
    assert_eq!(entry.role.as_deref(), Some(role));
    let back = signet_keys::block_on(client().unwrap_entry(&entry)).unwrap();
    assert_eq!(&back[..], &[3u8; 32]);
    // moto recorded the AssumeRole call, with sops' session name.
    let assumed = moto_assumed_roles();
    assert!(
        assumed
            .iter()
            .any(|(r, session)| r == role && session.starts_with("sops@")),
        "{assumed:?}"
    );
}

/// (role ARN, session name) of every AssumeRole moto has served.
fn moto_assumed_roles() -> Vec<(String, String)> {
    let url = format!(
        "{}/moto-api/data.json",
        signet_testkit::Moto::shared().unwrap().endpoint_url()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let data: serde_json::Value =
        runtime.block_on(async { reqwest::get(&url).await.unwrap().json().await.unwrap() });
    data["sts"]["AssumedRole"]
        .as_array()
        .map(|roles| {
            roles
                .iter()
                .map(|r| {
                    (
                        r["role_arn"].as_str().unwrap_or_default().to_owned(),
                        r["session_name"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn signet_encrypts_to_kms_with_context_and_sops_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let arn = create_kms_key();
    let vars = with_home(dir.path(), moto_env());
    let encrypted = signet_encrypt(
        PLAIN,
        vec![vec![KeySpec::Kms(KmsKey::from_arn(&arn, &context(), ""))]],
        None,
        &vars,
    );
    assert!(encrypted.contains(&arn));
    assert!(encrypted.contains("app: billing"), "{encrypted}");
    assert!(!encrypted.contains("hunter2-canary"));
    std::fs::write(dir.path().join("secret.enc.yaml"), &encrypted).unwrap();
    let plain = sops_ok(dir.path(), &vars, &["decrypt", "secret.enc.yaml"]);
    assert_eq!(plain, PLAIN);
}

#[test]
fn signet_encrypts_with_a_role_and_sops_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let arn = create_kms_key();
    let role = "arn:aws:iam::123456789012:role/sops-interop";
    let vars = with_home(dir.path(), moto_env());
    let encrypted = signet_encrypt(
        PLAIN,
        vec![vec![KeySpec::Kms(KmsKey::from_arn(
            &format!("{arn}+{role}"),
            &[],
            "",
        ))]],
        None,
        &vars,
    );
    assert!(encrypted.contains(role), "{encrypted}");
    std::fs::write(dir.path().join("secret.enc.yaml"), &encrypted).unwrap();
    let plain = sops_ok(dir.path(), &vars, &["decrypt", "secret.enc.yaml"]);
    assert_eq!(plain, PLAIN);
}

#[test]
fn sops_encrypts_to_kms_with_context_and_signet_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let arn = create_kms_key();
    let vars = with_home(dir.path(), moto_env());
    std::fs::write(dir.path().join("secret.yaml"), PLAIN).unwrap();
    let encrypted = sops_ok(
        dir.path(),
        &vars,
        &[
            "encrypt",
            "--kms",
            &arn,
            "--encryption-context",
            "app:billing,env:prod",
            "secret.yaml",
        ],
    );
    assert!(encrypted.contains(&arn));
    assert_eq!(signet_decrypt(&encrypted, &vars).unwrap(), PLAIN);

    // The context is part of the ciphertext: changing it in the file makes KMS refuse, and
    // the error names the key.
    let tampered = encrypted.replace("env: prod", "env: dev");
    assert_ne!(tampered, encrypted);
    let err = signet_decrypt(&tampered, &vars).unwrap_err();
    assert!(err.contains(&arn), "{err}");
    assert!(!err.contains("hunter2-canary"));
}

#[test]
fn sops_kms_arn_from_the_environment_decrypts_with_signet() {
    let dir = tempfile::tempdir().unwrap();
    let arn = create_kms_key();
    let mut vars = with_home(dir.path(), moto_env());
    vars.push(("SOPS_KMS_ARN".to_owned(), arn.clone()));
    std::fs::write(dir.path().join("secret.yaml"), PLAIN).unwrap();
    let encrypted = sops_ok(dir.path(), &vars, &["encrypt", "secret.yaml"]);
    assert!(encrypted.contains(&arn));
    assert_eq!(signet_decrypt(&encrypted, &vars).unwrap(), PLAIN);
}

#[test]
fn aws_profile_selects_credentials_from_the_shared_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".aws")).unwrap();
    std::fs::write(
        dir.path().join(".aws/credentials"),
        "[signet-test]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    let arn = create_kms_key();
    // moto's endpoint, but no credentials in the environment: only the profile has them.
    let mut vars: Vec<(String, String)> = moto_env()
        .into_iter()
        .filter(|(k, _)| k == "AWS_ENDPOINT_URL")
        .collect();
    vars = with_home(dir.path(), vars);
    let client =
        KmsClient::new(&Environment::from_vars(vars.clone())).with_timeout(Duration::from_secs(8));
    let key = KmsKey::from_arn(&arn, &[], "signet-test");
    let entry = signet_keys::block_on(client.wrap(&key, &[4u8; 32])).unwrap();
    assert_eq!(entry.aws_profile, "signet-test");
    let back = signet_keys::block_on(client.unwrap_entry(&entry)).unwrap();
    assert_eq!(&back[..], &[4u8; 32]);

    // A profile that does not exist fails, naming the key.
    let mut other = entry.clone();
    other.aws_profile = "no-such-profile".to_owned();
    let err = signet_keys::block_on(client.unwrap_entry(&other)).unwrap_err();
    assert!(err.to_string().contains(&arn), "{err}");

    // sops reads the same profile from the file signet wrote.
    let encrypted = signet_encrypt(PLAIN, vec![vec![KeySpec::Kms(key.clone())]], None, &vars);
    assert!(
        encrypted.contains("aws_profile: signet-test"),
        "{encrypted}"
    );
    std::fs::write(dir.path().join("secret.enc.yaml"), &encrypted).unwrap();
    let plain = sops_ok(dir.path(), &vars, &["decrypt", "secret.enc.yaml"]);
    assert_eq!(plain, PLAIN);
}

#[test]
fn alias_arns_work_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let alias = format!("signet-{}", std::process::id());
    let arn = create_kms_alias(&alias);
    assert!(arn.contains(":alias/"), "{arn}");
    let vars = with_home(dir.path(), moto_env());
    let encrypted = signet_encrypt(
        PLAIN,
        vec![vec![KeySpec::Kms(KmsKey::from_arn(&arn, &context(), ""))]],
        None,
        &vars,
    );
    assert!(encrypted.contains(&arn));
    std::fs::write(dir.path().join("secret.enc.yaml"), &encrypted).unwrap();
    assert_eq!(
        sops_ok(dir.path(), &vars, &["decrypt", "secret.enc.yaml"]),
        PLAIN
    );
    std::fs::write(dir.path().join("secret.yaml"), PLAIN).unwrap();
    let by_sops = sops_ok(
        dir.path(),
        &vars,
        &["encrypt", "--kms", &arn, "secret.yaml"],
    );
    assert_eq!(signet_decrypt(&by_sops, &vars).unwrap(), PLAIN);
}

/// A TCP listener that accepts connections and never answers; counts them.
struct SilentServer {
    url: String,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SilentServer {
    fn start() -> SilentServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(stream);
            }
        });
        SilentServer { url, accepted }
    }

    fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn a_hanging_kms_times_out_with_a_message_naming_the_key() {
    let server = SilentServer::start();
    let arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    let env = Environment::from_vars([
        ("AWS_ENDPOINT_URL", server.url.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ]);
    let client = KmsClient::new(&env).with_timeout(Duration::from_secs(2));
    let err =
        signet_keys::block_on(client.wrap(&KmsKey::from_arn(arn, &[], ""), &[1; 32])).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(arn), "{message}");
    assert!(message.contains("no answer within 2 s"), "{message}");
    assert!(server.connections() >= 1);
}

#[test]
fn local_age_keys_are_tried_before_kms() {
    use signet_keys::keygen::{IdentityKind, generate, write_identity_file};
    let dir = tempfile::tempdir().unwrap();
    let arn = create_kms_key();
    let generated = generate(IdentityKind::X25519);
    write_identity_file(&dir.path().join("keys.txt"), &generated).unwrap();
    let encrypted = signet_encrypt(
        PLAIN,
        vec![vec![
            KeySpec::Kms(KmsKey::from_arn(&arn, &[], "")),
            KeySpec::age_list(&generated.recipient).unwrap().remove(0),
        ]],
        None,
        &with_home(dir.path(), moto_env()),
    );
    // KMS now points at a server that never answers: if it were asked first, it would be
    // contacted.
    let server = SilentServer::start();
    let vars = with_home(
        dir.path(),
        vec![
            ("AWS_ENDPOINT_URL".to_owned(), server.url.clone()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
            (
                "SOPS_AGE_KEY_FILE".to_owned(),
                dir.path().join("keys.txt").display().to_string(),
            ),
        ],
    );
    assert_eq!(signet_decrypt(&encrypted, &vars).unwrap(), PLAIN);
    assert_eq!(server.connections(), 0);
}
