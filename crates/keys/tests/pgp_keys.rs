//! PGP master keys in-process (rPGP, no gpg): the public Flux vector's entry opens with its key
//! file, a fresh wrap is armored as sops stores it and opens again, and hostile `enc`s are refused
//! with every read bounded.

use crate::common;

use pgp::composed::{ArmorOptions, Deserializable, MessageBuilder, SignedSecretKey};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::types::CompressionAlgorithm;
use signet_keys::NoInteraction;
use signet_keys::pgp::{MAX_ENC_LEN, MAX_SECRET_LEN, PgpKeys};

const FLUX_FP: &str = "35C1A64CD7FC0AB6EB66756B2445463C3234ECE1";

fn flux_key_file() -> std::path::PathBuf {
    common::flux_sops().join("keys/pgp.asc")
}

/// The `enc: |-` block of the first `pgp:` entry of a YAML vector.
fn first_pgp_enc(yaml: &str) -> String {
    let lines: Vec<&str> = yaml.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with("enc: |"))
        .expect("an enc block");
    let indent = lines[start + 1].len() - lines[start + 1].trim_start().len();
    lines[start + 1..]
        .iter()
        .take_while(|l| l.len() > indent && l[..indent].trim().is_empty() || l.is_empty())
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_flux_vector_entry_opens_with_its_key_file() {
    let keys = PgpKeys::from_file(&flux_key_file()).unwrap();
    assert_eq!(keys.secret_fingerprints(), vec![FLUX_FP.to_owned()]);
    let debug = format!("{keys:?}");
    assert!(
        debug.contains(FLUX_FP) && !debug.contains("lQcX"),
        "{debug}"
    );
    let yaml = std::fs::read_to_string(common::flux_sops().join("algorithms/pgp.yaml")).unwrap();
    let enc = first_pgp_enc(&yaml);
    assert!(enc.ends_with("-----END PGP MESSAGE-----"), "{enc}");
    let data_key = keys
        .decrypt(&enc, &NoInteraction)
        .unwrap()
        .expect("for this key");
    assert_eq!(data_key.len(), 32);
}

#[test]
fn a_fresh_wrap_is_armored_like_sops_and_opens_again() {
    let keys = PgpKeys::from_file(&flux_key_file()).unwrap();
    let secret = [7u8; 33];
    let enc = keys.encrypt(FLUX_FP, &secret).expect("key found").unwrap();
    assert!(
        enc.starts_with("-----BEGIN PGP MESSAGE-----\n")
            && enc.ends_with("\n-----END PGP MESSAGE-----"),
        "{enc}"
    );
    // By key ID and in lower case too, as gpg accepts them.
    assert!(
        keys.encrypt(&FLUX_FP[24..].to_lowercase(), &secret)
            .is_some()
    );
    assert!(
        keys.encrypt("0123456789ABCDEF0123456789ABCDEF01234567", &secret)
            .is_none()
    );
    let back = keys.decrypt(&enc, &NoInteraction).unwrap().unwrap();
    assert_eq!(back.as_slice(), secret.as_slice());
}

#[test]
fn an_enc_longer_than_any_wrapped_key_is_refused_before_parsing() {
    let keys = PgpKeys::from_file(&flux_key_file()).unwrap();
    let long = format!(
        "-----BEGIN PGP MESSAGE-----\n\n{}\n-----END PGP MESSAGE-----",
        "A".repeat(MAX_ENC_LEN)
    );
    let err = keys.decrypt(&long, &NoInteraction).unwrap_err();
    assert!(
        err.contains(&format!("more than the {MAX_ENC_LEN}")),
        "{err}"
    );
}

/// A message whose compressed literal expands to 8 MiB (a few KiB armored) is refused after at most
/// `MAX_SECRET_LEN + 1` bytes are read: the plaintext is never expanded into memory.
#[test]
fn a_compression_bomb_is_refused_after_a_bounded_read() {
    let file = std::fs::read(flux_key_file()).unwrap();
    let (secret_key, _) = SignedSecretKey::from_armor_single(file.as_slice()).unwrap();
    let public = secret_key.to_public_key();
    let mut rng = rand_core_06::OsRng;
    let mut builder = MessageBuilder::from_bytes("", vec![0u8; 8 << 20])
        .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    builder.compression(CompressionAlgorithm::ZLIB);
    builder
        .encrypt_to_key(&mut rng, &public.public_subkeys[0].key)
        .unwrap();
    let bomb = builder
        .to_armored_string(rng, ArmorOptions::default())
        .unwrap();
    assert!(bomb.len() < MAX_ENC_LEN, "{} bytes", bomb.len());
    let keys = PgpKeys::from_file(&flux_key_file()).unwrap();
    let err = keys.decrypt(&bomb, &NoInteraction).unwrap_err();
    assert!(
        err.contains(&format!("more than the {MAX_SECRET_LEN} bytes")),
        "{err}"
    );
}

#[test]
fn a_key_file_that_is_not_a_key_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.asc");
    std::fs::write(
        &path,
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nnot base64 at all\n-----END PGP PRIVATE KEY BLOCK-----\n",
    )
    .unwrap();
    let err = PgpKeys::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("broken.asc"), "{err}");
    let err = PgpKeys::parse(b"hello", "SIGNET_PGP_KEY")
        .unwrap_err()
        .to_string();
    assert!(err.contains("SIGNET_PGP_KEY"), "{err}");
}

/// Answers every passphrase request with one passphrase, counting the requests.
struct Passphrase(&'static str, std::sync::atomic::AtomicUsize);

impl signet_keys::Interaction for Passphrase {
    fn request_passphrase(&self, description: &str) -> Option<zeroize::Zeroizing<String>> {
        assert!(description.contains("PGP key"), "{description}");
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(zeroize::Zeroizing::new(self.0.to_owned()))
    }
}

/// A key file protected by a passphrase (made by gpg in a temporary `GNUPGHOME`) asks for it
/// through the [`signet_keys::Interaction`]; without one to ask, or with a wrong one, it fails
/// saying so.
#[test]
fn a_passphrase_protected_key_file_asks_for_its_passphrase() {
    let gpg = signet_testkit::peer_path("gpg").unwrap_or_else(|e| panic!("{e}"));
    let home = tempfile::tempdir().unwrap();
    // A cheap S2K for the exported key: the default is calibrated for ~100 ms of optimised code
    // per try, far longer in a debug build.
    std::fs::write(home.path().join("gpg-agent.conf"), "s2k-count 65536\n").unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&gpg)
            .env("GNUPGHOME", home.path())
            .args([
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "s3cret",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&[
        "--quick-gen-key",
        "P <p@example.invalid>",
        "future-default",
        "default",
        "never",
    ]);
    let armored = run(&["--armor", "--export-secret-keys", "p@example.invalid"]);
    let _ = std::process::Command::new("gpgconf")
        .env("GNUPGHOME", home.path())
        .args(["--kill", "all"])
        .status();
    let keys = PgpKeys::parse(&armored, "protected.asc").unwrap();
    let fp = keys.secret_fingerprints().remove(0);
    let enc = keys.encrypt(&fp, &[9u8; 32]).unwrap().unwrap();

    let asked = Passphrase("s3cret", Default::default());
    let back = keys.decrypt(&enc, &asked).unwrap().expect("for this key");
    assert_eq!(back.as_slice(), [9u8; 32].as_slice());
    assert_eq!(asked.1.load(std::sync::atomic::Ordering::SeqCst), 1);

    let err = keys.decrypt(&enc, &NoInteraction).unwrap_err();
    assert!(err.contains(&fp) && err.contains("passphrase"), "{err}");
    assert!(
        keys.decrypt(&enc, &Passphrase("wrong", Default::default()))
            .is_err()
    );
}
