//! Interop with Go age (`/usr/bin/age`, `age-keygen`, Debian's 1.1.1) and the `enc` format of
//! upstream sops: what we wrap Go decrypts, what Go encrypts we unwrap, for X25519, ssh-ed25519,
//! ssh-rsa and passphrase-protected ssh keys.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use signet_keys::{AgeRecipient, Environment, Interaction, Keyring, NoInteraction};
use signet_sops::metadata::{AgeEntry, MasterKeyEntry};
use zeroize::Zeroizing;

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/root/.cache/signet/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed; run scripts/bootstrap (Debian package `age`, openssh-client)");
}

fn run(cmd: &mut Command, stdin: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn age_keygen(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("keys.txt");
    run(Command::new(tool("age-keygen")).arg("-o").arg(&path), b"");
    let text = std::fs::read_to_string(&path).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned();
    (path, recipient)
}

fn ssh_keygen(dir: &Path, kind: &str, passphrase: &str) -> (PathBuf, String) {
    let path = dir.join(format!("id_{kind}"));
    let mut cmd = Command::new(tool("ssh-keygen"));
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", "test", "-f"])
        .arg(&path);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    run(&mut cmd, b"");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let recipient = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    (path, recipient)
}

fn data_key() -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(vec![0u8; 32]);
    for (i, b) in key.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    key
}

fn go_decrypt(enc: &str, identity: &Path) -> Vec<u8> {
    run(
        Command::new(tool("age")).arg("-d").arg("-i").arg(identity),
        enc.as_bytes(),
    )
}

fn go_encrypt_armored(args: &[&str], plaintext: &[u8]) -> String {
    String::from_utf8(run(
        Command::new(tool("age")).arg("-e").arg("-a").args(args),
        plaintext,
    ))
    .unwrap()
}

fn entry(recipient: &str, enc: String) -> MasterKeyEntry {
    MasterKeyEntry::Age(AgeEntry {
        recipient: recipient.to_owned(),
        enc,
    })
}

fn keyring(vars: &[(&str, &Path)], interaction: Arc<dyn Interaction>) -> Keyring {
    let env = Environment::from_vars(
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.display().to_string())),
    );
    Keyring::from_environment(&env, interaction)
}

#[test]
fn x25519_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let (key_file, recipient) = age_keygen(dir.path());
    let secret = data_key();

    let ours = AgeRecipient::parse(&recipient)
        .unwrap()
        .encrypt_armored(&secret)
        .unwrap();
    assert_eq!(go_decrypt(&ours, &key_file), *secret);

    let theirs = go_encrypt_armored(&["-r", &recipient], &secret);
    let ring = keyring(&[("SOPS_AGE_KEY_FILE", &key_file)], Arc::new(NoInteraction));
    let got = signet_keys::block_on(ring.unwrap_entry(&entry(&recipient, theirs))).unwrap();
    assert_eq!(
        got.as_deref().map(|v| v.as_slice()),
        Some(secret.as_slice())
    );
}

#[test]
fn enc_is_armored_like_sops_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (key_file, recipient) = age_keygen(dir.path());
    let plain = dir.path().join("x.yaml");
    std::fs::write(&plain, "a: b\n").unwrap();
    let out = run(
        Command::new(tool("sops"))
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("SOPS_AGE_KEY_FILE", &key_file)
            .args(["-e", "--age", &recipient])
            .arg(&plain),
        b"",
    );
    let sops_yaml = String::from_utf8(out).unwrap();
    let (sops_recipient, sops_enc) = common::age_entries(&sops_yaml).remove(0);
    assert_eq!(sops_recipient, recipient);

    let ours = AgeRecipient::parse(&recipient)
        .unwrap()
        .encrypt_armored(&data_key())
        .unwrap();
    // Same shape: header, 64-column base64 lines, a shorter last line, footer, final newline;
    // an X25519 stanza and a 32-byte payload give the same length.
    let shape = |s: &str| s.lines().map(str::len).collect::<Vec<_>>();
    assert_eq!(shape(&ours), shape(&sops_enc));
    assert!(ours.ends_with("-----END AGE ENCRYPTED FILE-----\n"));
    assert_eq!(ours.lines().next(), sops_enc.lines().next());

    // And the key sops wrapped is the one its MAC was made with (unwrapped by us).
    let ring = keyring(&[("SOPS_AGE_KEY_FILE", &key_file)], Arc::new(NoInteraction));
    let key = signet_sops::DataKey::from_slice(
        &signet_keys::block_on(ring.unwrap_entry(&entry(&recipient, sops_enc)))
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(key.as_bytes().len(), 32);
}

#[test]
fn ssh_ed25519_and_rsa_both_directions() {
    for kind in ["ed25519", "rsa"] {
        let dir = tempfile::tempdir().unwrap();
        let (private, recipient) = ssh_keygen(dir.path(), kind, "");
        let secret = data_key();

        let ours = AgeRecipient::parse(&recipient)
            .unwrap()
            .encrypt_armored(&secret)
            .unwrap();
        assert_eq!(go_decrypt(&ours, &private), *secret, "{kind}");

        let theirs = go_encrypt_armored(
            &["-R", &private.with_extension("pub").display().to_string()],
            &secret,
        );
        let ring = keyring(
            &[("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &private)],
            Arc::new(NoInteraction),
        );
        let got = signet_keys::block_on(ring.unwrap_entry(&entry(&recipient, theirs))).unwrap();
        assert_eq!(
            got.as_deref().map(|v| v.as_slice()),
            Some(secret.as_slice()),
            "{kind}"
        );
    }
}

struct Passphrase {
    value: &'static str,
    asked: AtomicUsize,
}

impl Interaction for Passphrase {
    fn request_passphrase(&self, _description: &str) -> Option<Zeroizing<String>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Some(Zeroizing::new(self.value.to_owned()))
    }
}

#[test]
fn encrypted_ssh_key_asks_once_and_only_for_its_own_stanzas() {
    let dir = tempfile::tempdir().unwrap();
    let (private, recipient) = ssh_keygen(dir.path(), "ed25519", "correct horse");
    let (_, other_recipient) = age_keygen(dir.path());
    let secret = data_key();
    let prompt = Arc::new(Passphrase {
        value: "correct horse",
        asked: AtomicUsize::new(0),
    });
    let ring = keyring(
        &[("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &private)],
        prompt.clone(),
    );

    // Not addressed to this key: no prompt, no match.
    let foreign = go_encrypt_armored(&["-r", &other_recipient], &secret);
    assert!(
        signet_keys::block_on(ring.unwrap_entry(&entry(&other_recipient, foreign)))
            .unwrap()
            .is_none()
    );
    assert_eq!(prompt.asked.load(Ordering::SeqCst), 0);

    let pub_path = private.with_extension("pub").display().to_string();
    for _ in 0..2 {
        let theirs = go_encrypt_armored(&["-R", &pub_path], &secret);
        let got = signet_keys::block_on(ring.unwrap_entry(&entry(&recipient, theirs))).unwrap();
        assert_eq!(
            got.as_deref().map(|v| v.as_slice()),
            Some(secret.as_slice())
        );
    }
    assert_eq!(prompt.asked.load(Ordering::SeqCst), 1);

    let wrong = Arc::new(Passphrase {
        value: "wrong",
        asked: AtomicUsize::new(0),
    });
    let ring = keyring(&[("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &private)], wrong);
    let theirs = go_encrypt_armored(&["-R", &pub_path], &secret);
    assert!(signet_keys::block_on(ring.unwrap_entry(&entry(&recipient, theirs))).is_err());
}

#[test]
fn passphrase_protected_identity_file() {
    use age::secrecy::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let contents = format!(
        "# public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    );
    let encryptor = age::Encryptor::with_user_passphrase(age::secrecy::SecretString::from(
        "hunter2".to_owned(),
    ));
    let mut armored = Vec::new();
    let armor =
        age::armor::ArmoredWriter::wrap_output(&mut armored, age::armor::Format::AsciiArmor)
            .unwrap();
    let mut writer = encryptor.wrap_output(armor).unwrap();
    writer.write_all(contents.as_bytes()).unwrap();
    writer.finish().unwrap().finish().unwrap();
    let key_file = dir.path().join("keys.age");
    std::fs::write(&key_file, &armored).unwrap();

    let secret = data_key();
    let theirs = go_encrypt_armored(&["-r", &recipient], &secret);
    let prompt = Arc::new(Passphrase {
        value: "hunter2",
        asked: AtomicUsize::new(0),
    });
    let ring = keyring(&[("SOPS_AGE_KEY_FILE", &key_file)], prompt.clone());
    let got = signet_keys::block_on(ring.unwrap_entry(&entry(&recipient, theirs.clone()))).unwrap();
    assert_eq!(
        got.as_deref().map(|v| v.as_slice()),
        Some(secret.as_slice())
    );
    assert_eq!(prompt.asked.load(Ordering::SeqCst), 1);

    // Without a way to ask, the file cannot be opened and that is an error, not a silent miss.
    let ring = keyring(&[("SOPS_AGE_KEY_FILE", &key_file)], Arc::new(NoInteraction));
    assert!(signet_keys::block_on(ring.unwrap_entry(&entry(&recipient, theirs))).is_err());
}

#[test]
fn go_age_reads_keygen_output() {
    let dir = tempfile::tempdir().unwrap();
    let generated = signet_keys::keygen::generate(signet_keys::keygen::IdentityKind::X25519);
    let path = dir.path().join("new.txt");
    signet_keys::keygen::write_identity_file(&path, &generated).unwrap();
    let enc = go_encrypt_armored(&["-r", &generated.recipient], b"payload");
    assert_eq!(go_decrypt(&enc, &path), b"payload");
    // age-keygen -y derives the same recipient from our file.
    let derived = run(Command::new(tool("age-keygen")).arg("-y").arg(&path), b"");
    assert_eq!(
        String::from_utf8(derived).unwrap().trim(),
        generated.recipient
    );
}
