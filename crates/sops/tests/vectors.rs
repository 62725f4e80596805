//! Known-answer tests against the public sops vectors in `<shared>/vectors/sops`: the data key is
//! unwrapped with the real Go `age` (or `gpg` for PGP files), the file is decrypted with our
//! engine and store, and the result must equal `sops -d` of the same file byte for byte. Then the
//! decrypted tree is re-encrypted and upstream sops must decrypt our output to the same bytes.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{run_with_stdin, vector};
use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use signet_sops::metadata::MasterKeyEntry;
use signet_sops::stores::store_for;
use signet_sops::{DataKey, Format};

const FLUX: &str = "fluxcd-kustomize-controller/internal/controller/testdata/sops";

/// A private GNUPGHOME with the sops functional-test and flux PGP keys imported.
fn gnupg_home() -> &'static Path {
    static HOME: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("signet-sops-gpg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        for key in [
            "getsops-sops/pgp/sops_functional_tests_key.asc",
            &format!("{FLUX}/keys/pgp.asc"),
        ] {
            let status = Command::new("gpg")
                .env("GNUPGHOME", &dir)
                .args(["--batch", "--quiet", "--import"])
                .arg(vector(key))
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "gpg import {key}");
        }
        dir
    })
}

/// Unwraps the data key from the first entry we can open.
fn data_key(meta: &signet_sops::metadata::Metadata, age_key: Option<&str>) -> DataKey {
    for entry in meta.all_keys() {
        match entry {
            MasterKeyEntry::Age(a) if age_key.is_some() => {
                return common::age_unwrap(&vector(age_key.unwrap()), &a.enc);
            }
            MasterKeyEntry::Pgp(p) if age_key.is_none() => {
                let out = run_with_stdin(
                    Command::new("gpg").env("GNUPGHOME", gnupg_home()).args([
                        "--batch",
                        "--quiet",
                        "--decrypt",
                    ]),
                    p.enc.as_bytes(),
                );
                return DataKey::from_slice(&out).expect("32-byte data key");
            }
            _ => {}
        }
    }
    panic!("no usable key entry");
}

fn sops_decrypt(path: &Path, format: Format, age_key: Option<&str>) -> Vec<u8> {
    let mut cmd = Command::new(common::sops_bin());
    cmd.env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("GNUPGHOME", gnupg_home())
        .args([
            "decrypt",
            "--input-type",
            format.name(),
            "--output-type",
            format.name(),
        ])
        .arg(path);
    if let Some(k) = age_key {
        cmd.env("SOPS_AGE_KEY_FILE", vector(k));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "sops -d {path:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Decrypts `rel` with our code, compares with sops, then re-encrypts and has sops decrypt that.
fn check_vector(rel: &str, format: Format, age_key: Option<&str>) {
    let path = vector(rel);
    let input = std::fs::read(&path).unwrap();
    let store = store_for(format);
    let mut tree = store.parse(&input).unwrap();
    let meta = engine::metadata_of(&tree).unwrap().expect("encrypted");
    let key = data_key(&meta, age_key);
    let decrypted = engine::decrypt(
        &mut tree,
        &key,
        DecryptOptions {
            remember_ivs: true,
            ..DecryptOptions::default()
        },
    )
    .unwrap();
    assert_eq!(decrypted.mac_matched, Some(true));
    let ours = store.emit(&tree).unwrap();
    let theirs = sops_decrypt(&path, format, age_key);
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs),
        "{rel}"
    );

    // Re-encrypt with the same data key and metadata; sops must read it.
    let mut meta = decrypted.metadata.clone();
    let mut plain = store.parse(&ours).unwrap();
    let opts = EncryptOptions {
        previous: Some(&decrypted.previous),
        last_modified: None,
    };
    engine::encrypt(&mut plain, &key, &mut meta, &opts).unwrap();
    let reencrypted = store.emit(&plain).unwrap();
    let dir = tempdir();
    let out_path = dir.join(path.file_name().unwrap());
    std::fs::write(&out_path, &reencrypted).unwrap();
    let again = sops_decrypt(&out_path, format, age_key);
    assert_eq!(
        String::from_utf8_lossy(&again),
        String::from_utf8_lossy(&theirs),
        "{rel} re-encrypted"
    );
    std::fs::remove_dir_all(dir).ok();
}

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "signet-sops-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

use common::FLUX_AGE_KEY as FLUX_AGE;

#[test]
fn flux_dotenv_age() {
    for f in ["envs/env.env", "component/env.env", "remote/env.env"] {
        check_vector(&format!("{FLUX}/{f}"), Format::Dotenv, Some(FLUX_AGE));
    }
}

#[test]
fn flux_binary_age() {
    check_vector(
        &format!("{FLUX}/files/file.txt"),
        Format::Binary,
        Some(FLUX_AGE),
    );
}

#[test]
fn getsops_json_pgp() {
    check_vector("getsops-sops/example.json", Format::Json, None);
    check_vector(
        "getsops-sops/functional-tests/res/format.enc.json",
        Format::Json,
        None,
    );
}

#[test]
fn getsops_dotenv_pgp() {
    check_vector(
        "getsops-sops/functional-tests/res/format.enc.env",
        Format::Dotenv,
        None,
    );
}

#[test]
fn getsops_binary_pgp() {
    check_vector("getsops-sops/example.txt", Format::Binary, None);
}

#[test]
fn getsops_ini_pgp() {
    check_vector("getsops-sops/example.ini", Format::Ini, None);
    check_vector(
        "getsops-sops/functional-tests/res/format.enc.ini",
        Format::Ini,
        None,
    );
    check_vector(
        "getsops-sops/functional-tests/res/format-2.enc.ini",
        Format::Ini,
        None,
    );
}
