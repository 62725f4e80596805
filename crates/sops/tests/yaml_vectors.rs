//! YAML vectors decrypted with our engine and the YAML store, compared with `sops -d`; plus the
//! rops vectors (no `version` field, which sops refuses, so they are compared with their plaintext
//! twins instead), including `mac_only_encrypted`.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use signet_sops::metadata::MasterKeyEntry;
use signet_sops::stores::store_for;
use signet_sops::{DataKey, Format};

const FLUX: &str = "fluxcd-kustomize-controller/internal/controller/testdata/sops";
const ROPS: &str = "gibbz00-rops/crates/lib/tests/sops_references";
const ROPS_KEY: &str = "gibbz00-rops/derived/rops_mock_age.keys.txt";

fn age_key(meta: &signet_sops::metadata::Metadata, key_file: &str) -> DataKey {
    let MasterKeyEntry::Age(a) = meta
        .all_keys()
        .find(|k| matches!(k, MasterKeyEntry::Age(_)))
        .unwrap()
    else {
        unreachable!()
    };
    common::age_unwrap(&common::vector(key_file), &a.enc)
}

fn decrypt_ours(rel: &str, key_file: &str) -> (Vec<u8>, engine::Decrypted, DataKey) {
    let input = std::fs::read(common::vector(rel)).unwrap();
    decrypt_bytes(rel, &input, key_file)
}

fn decrypt_bytes(rel: &str, input: &[u8], key_file: &str) -> (Vec<u8>, engine::Decrypted, DataKey) {
    let store = store_for(Format::Yaml);
    let mut tree = store.parse(input).unwrap();
    let meta = engine::metadata_of(&tree).unwrap().unwrap();
    let key = age_key(&meta, key_file);
    // Remembering IVs: callers re-encrypt with them.
    let opts = DecryptOptions {
        remember_ivs: true,
        ..DecryptOptions::default()
    };
    let d = engine::decrypt(&mut tree, &key, opts).unwrap_or_else(|e| panic!("{rel}: {e}"));
    (store.emit(&tree).unwrap(), d, key)
}

fn sops_decrypt(path: &Path, key_file: &str) -> Vec<u8> {
    common::stdout_of(
        common::sops_command(&common::vector(key_file))
            .arg("decrypt")
            .arg(path),
    )
}

/// `sops encrypt` of `path` to the flux test age recipient.
fn sops_encrypt_to_flux_age(path: &Path) -> Vec<u8> {
    common::stdout_of(
        common::sops_command(&common::vector(common::FLUX_AGE_KEY))
            .args(["encrypt", "--age", common::FLUX_AGE_RECIPIENT])
            .arg(path),
    )
}

/// Values only: our YAML store keeps the source layout while sops re-renders, so compare the
/// parsed documents, not bytes.
fn same_values(a: &[u8], b: &[u8]) -> bool {
    let store = store_for(Format::Yaml);
    let (x, y) = (store.parse(a).unwrap(), store.parse(b).unwrap());
    fn strip(t: signet_sops::tree::Tree) -> Vec<String> {
        t.documents
            .iter()
            .map(|d| format!("{:?}", values(&d.root)))
            .collect()
    }
    fn values(n: &signet_sops::tree::Node) -> Vec<String> {
        use signet_sops::tree::{Node, SeqItem, Value};
        let mut out = Vec::new();
        match n {
            Node::Scalar(s) => out.push(match &s.value {
                Value::Null => "null".to_owned(),
                Value::Str(v) => format!("str:{v}"),
                Value::Int(v) => format!("int:{v}"),
                Value::Float(v) => format!("float:{v}"),
                Value::Bool(v) => format!("bool:{v}"),
                Value::Time(v) => format!(
                    "time:{}",
                    signet_sops::cipher::normalize_time(v).unwrap_or(v.clone())
                ),
                Value::Bytes(v) => format!("bytes:{v:?}"),
            }),
            Node::Map(m) => {
                for (k, v) in m.pairs() {
                    out.push(k.to_owned());
                    out.extend(values(v));
                }
            }
            Node::Seq(s) => {
                for i in &s.items {
                    if let SeqItem::Node(n) = i {
                        out.extend(values(n));
                    }
                }
            }
        }
        out
    }
    strip(x) == strip(y)
}

#[test]
fn flux_yaml_vectors_match_sops() {
    for (rel, key) in [
        (
            format!("{FLUX}/algorithms/age.yaml"),
            format!("{FLUX}/keys/age.txt"),
        ),
        (
            format!("{FLUX}/global/secret.yaml"),
            format!("{FLUX}/keys/age-global.txt"),
        ),
        (
            format!("{FLUX}/patches/merge1.yaml"),
            format!("{FLUX}/keys/age.txt"),
        ),
        (
            format!("{FLUX}/patches/merge2.yaml"),
            format!("{FLUX}/keys/age.txt"),
        ),
    ] {
        let (ours, d, key_bytes) = decrypt_ours(&rel, &key);
        assert_eq!(d.mac_matched, Some(true));
        let theirs = sops_decrypt(&common::vector(&rel), &key);
        assert!(
            same_values(&ours, &theirs),
            "{rel}:\n{}\n---\n{}",
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );

        // re-encrypt (IV reuse) and let sops read it
        let store = store_for(Format::Yaml);
        let mut tree = store.parse(&ours).unwrap();
        let mut meta = d.metadata.clone();
        engine::encrypt(
            &mut tree,
            &key_bytes,
            &mut meta,
            &EncryptOptions {
                previous: Some(&d.previous),
                last_modified: None,
            },
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("signet-sops-yaml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("re.yaml");
        std::fs::write(&p, store.emit(&tree).unwrap()).unwrap();
        let again = sops_decrypt(&p, &key);
        assert!(same_values(&again, &theirs), "{rel} re-encrypted");
    }
}

#[test]
fn rops_vectors_match_their_plaintext() {
    for name in [
        "age_example",
        "age_empty_value",
        "age_encrypted_regex",
        "age_encrypted_suffix",
        "age_unencrypted_regex",
        "age_unencrypted_suffix",
        "age_mac_only_encrypted",
    ] {
        // rops writes no `version`: sops refuses such files ("Version string empty"), and so do
        // we. With the version line sops would need, the values and the MAC are rops' own.
        let rel = format!("{ROPS}/{name}.yaml");
        let input = std::fs::read(common::vector(&rel)).unwrap();
        let tree = store_for(Format::Yaml).parse(&input).unwrap();
        let refused = engine::metadata_of(&tree).unwrap_err().to_string();
        assert!(
            refused.contains("Version string empty"),
            "{name}: {refused}"
        );
        let input = [&input[..], b"  version: 3.7.3\n"].concat();
        let (ours, d, _) = decrypt_bytes(&rel, &input, ROPS_KEY);
        assert_eq!(d.mac_matched, Some(true), "{name}");
        assert_eq!(
            d.metadata.mac_only_encrypted,
            name.contains("mac_only"),
            "{name}"
        );
        let plain =
            std::fs::read(common::vector(&format!("{ROPS}/{name}_plaintext.yaml"))).unwrap();
        assert!(
            same_values(&ours, &plain),
            "{name}:\n{}",
            String::from_utf8_lossy(&ours)
        );
    }
}

fn gnupg_home() -> &'static Path {
    static HOME: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    HOME.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("signet-sops-yaml-gpg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let status = Command::new("gpg")
            .env("GNUPGHOME", &dir)
            .args(["--batch", "--quiet", "--import"])
            .arg(common::vector(
                "getsops-sops/pgp/sops_functional_tests_key.asc",
            ))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        dir
    })
}

fn pgp_key(meta: &signet_sops::metadata::Metadata) -> DataKey {
    let MasterKeyEntry::Pgp(p) = meta
        .all_keys()
        .find(|k| matches!(k, MasterKeyEntry::Pgp(_)))
        .unwrap()
    else {
        unreachable!()
    };
    let mut child = Command::new("gpg")
        .env("GNUPGHOME", gnupg_home())
        .args(["--batch", "--quiet", "--decrypt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(p.enc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    DataKey::from_slice(&out.stdout).unwrap()
}

#[test]
fn getsops_yaml_vectors_match_sops() {
    for rel in [
        "getsops-sops/example.yaml",
        "getsops-sops/functional-tests/res/comments.enc.yaml",
        "getsops-sops/functional-tests/res/multiple_keys.yaml",
        "getsops-sops/functional-tests/res/format.enc.yaml",
    ] {
        let path = common::vector(rel);
        let store = store_for(Format::Yaml);
        let mut tree = store.parse(&std::fs::read(&path).unwrap()).unwrap();
        let key = pgp_key(&engine::metadata_of(&tree).unwrap().unwrap());
        let d = engine::decrypt(&mut tree, &key, DecryptOptions::default())
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(d.mac_matched, Some(true), "{rel}");
        let ours = store.emit(&tree).unwrap();
        let out = Command::new(common::sops_bin())
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("GNUPGHOME", gnupg_home())
            .arg("decrypt")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            same_values(&ours, &out.stdout),
            "{rel}:\n{}\n---\n{}",
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn file_without_mac_is_refused() {
    let rel = "getsops-sops/functional-tests/res/no_mac.yaml";
    let store = store_for(Format::Yaml);
    let input = std::fs::read(common::vector(rel)).unwrap();
    let mut tree = store.parse(&input).unwrap();
    let key = pgp_key(&engine::metadata_of(&tree).unwrap().unwrap());
    let mut t2 = tree.clone();
    assert!(matches!(
        engine::decrypt(&mut tree, &key, DecryptOptions::default()),
        Err(signet_sops::Error::MacNotFound | signet_sops::Error::MacMismatch)
    ));
    engine::decrypt(
        &mut t2,
        &key,
        DecryptOptions {
            ignore_mac: true,
            ..DecryptOptions::default()
        },
    )
    .unwrap();
}

#[test]
fn multi_document_yaml_shares_key_and_mac_with_sops() {
    let dir = std::env::temp_dir().join(format!("signet-sops-multidoc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("multi.yaml");
    std::fs::write(
        &p,
        "a: 1\n# note\nb: [x, y]\n---\nc: secret\nd_unencrypted: plain\n",
    )
    .unwrap();
    let key_file = common::FLUX_AGE_KEY;
    let encrypted = sops_encrypt_to_flux_age(&p);
    let store = store_for(Format::Yaml);
    let mut tree = store.parse(&encrypted).unwrap();
    assert_eq!(tree.documents.len(), 2);
    let key = age_key(&engine::metadata_of(&tree).unwrap().unwrap(), key_file);
    let d = engine::decrypt(&mut tree, &key, DecryptOptions::default()).unwrap();
    assert_eq!(d.mac_matched, Some(true));
    std::fs::write(dir.join("enc.yaml"), &encrypted).unwrap();
    let theirs = sops_decrypt(&dir.join("enc.yaml"), key_file);
    let ours = store.emit(&tree).unwrap();
    assert!(
        same_values(&ours, &theirs),
        "{}\n---\n{}",
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn yaml_scalar_types_match_sops() {
    let dir = std::env::temp_dir().join(format!("signet-sops-types-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("types.yaml");
    let plain = "t: 2024-01-02T03:04:05.500Z\nd: 2024-01-02\nf: 1.0\ng: 0.1\ni: 0x1F\nj: 42\nb: true\ns: yes\nn: ~\ne: ''\nl:\n  - 1\n  - 2.5\n";
    std::fs::write(&p, plain).unwrap();
    let key_file = common::FLUX_AGE_KEY;
    let encrypted = sops_encrypt_to_flux_age(&p);
    let store = store_for(Format::Yaml);
    // sops -> us: MAC must match
    let mut tree = store.parse(&encrypted).unwrap();
    let meta = engine::metadata_of(&tree).unwrap().unwrap();
    let key = age_key(&meta, key_file);
    let d = engine::decrypt(&mut tree, &key, DecryptOptions::default()).unwrap();
    assert_eq!(d.mac_matched, Some(true));
    // us -> sops: same plaintext encrypted by us must decrypt (MAC included) with sops
    let mut ours = store.parse(plain.as_bytes()).unwrap();
    let mut meta = d.metadata.clone();
    engine::encrypt(&mut ours, &key, &mut meta, &EncryptOptions::default()).unwrap();
    std::fs::write(&p, store.emit(&ours).unwrap()).unwrap();
    let theirs = sops_decrypt(&p, key_file);
    std::fs::write(&p, &encrypted).unwrap();
    assert_eq!(theirs, sops_decrypt(&p, key_file));
    std::fs::remove_dir_all(dir).ok();
}
