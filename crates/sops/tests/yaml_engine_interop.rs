//! The YAML store with the real engine, against upstream sops, over the whole corpus:
//! - a file we encrypt decrypts in `sops -d` (which checks every value's and comment's AAD and the
//!   MAC) to exactly what sops gives for its own encryption of the same file;
//! - our decryption of our encryption gives the original file byte for byte;
//! - our decryption of sops' encryption gives what `sops -d` gives, byte for byte.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{corpus_dir, sops_bin};

use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use signet_sops::metadata::{AgeEntry, MasterKeyEntry};
use signet_sops::stores::yaml::YamlStore;
use signet_sops::{DataKey, Metadata, Store};

struct Sandbox {
    dir: PathBuf,
    recipient: String,
}

impl Sandbox {
    fn new() -> Sandbox {
        // One directory per sandbox: tests run in parallel in one process, and each removes its
        // own when done.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("signet-yaml-engine-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let recipient = common::age_keygen(&dir.join("key.txt"));
        Sandbox { dir, recipient }
    }

    fn run(&self, program: &Path, args: &[&str], stdin: &[u8]) -> Result<Vec<u8>, String> {
        let mut child = Command::new(program)
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .env("SOPS_AGE_KEY_FILE", self.dir.join("key.txt"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn sops(&self, args: &[&str], name: &str, content: &[u8]) -> Result<Vec<u8>, String> {
        let f = self.dir.join(name);
        std::fs::write(&f, content).unwrap();
        let mut a: Vec<&str> = args.to_vec();
        let fs = f.to_str().unwrap().to_owned();
        a.push(&fs);
        self.run(&sops_bin(), &a, b"")
    }

    fn age_wrap(&self, key: &DataKey) -> String {
        let out = common::run_with_stdin(
            Command::new("age").args(["-a", "-r", &self.recipient]),
            key.as_bytes(),
        );
        String::from_utf8(out).unwrap()
    }

    fn age_unwrap(&self, armored: &str) -> DataKey {
        common::age_unwrap(&self.dir.join("key.txt"), armored)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Compares two decrypted outputs line by line. Two differences are expected and allowed:
/// - `key: ...` where sops writes `key: '...'` (libyaml quotes a leading `...` everywhere; YAML
///   only reads it as a document marker at the start of a line, and we keep it plain so files that
///   had it plain round-trip);
/// - a comment neither tool can decrypt (sops writes some foot comments after a deeper block
///   where, read back, yaml.v3 attaches them to another map, so their AAD no longer matches; sops
///   and the engine both keep such a comment encrypted), possibly indented differently;
/// - `key: value #text` where sops writes `#text` on a line of its own above `key: value`: sops
///   3.13 writes a comment that was right of a value back there when it encrypts, but its
///   decryption forgets that (the decrypted comment loses its `Inline` mark), while we keep the
///   file's layout.
///
/// Returns what is unexplained, if anything.
fn unexplained(ours: &[u8], sops: &[u8]) -> Option<String> {
    let (a, b) = (String::from_utf8_lossy(ours), String::from_utf8_lossy(sops));
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let (mut i, mut j) = (0, 0);
    while i < la.len() && j < lb.len() {
        let (x, y) = (la[i], lb[j]);
        let dots = x
            .strip_suffix(" ...")
            .is_some_and(|k| y.strip_suffix(" '...'") == Some(k));
        let undecryptable =
            x.trim_start().starts_with("#ENC[") && y.trim_start().starts_with("#ENC[");
        let kept_inline = y.trim_start().strip_prefix('#').is_some_and(|text| {
            lb.get(j + 1)
                .is_some_and(|next| x.strip_suffix(&format!(" #{text}")) == Some(*next))
        });
        if kept_inline {
            (i, j) = (i + 1, j + 2);
            continue;
        }
        if !(x == y || dots || undecryptable) {
            return Some(format!("line {}: {x:?} vs {y:?}", i + 1));
        }
        (i, j) = (i + 1, j + 1);
    }
    if i < la.len() || j < lb.len() {
        return Some(format!("{} lines vs {}", la.len(), lb.len()));
    }
    None
}

#[test]
fn corpus_through_engine_and_upstream_sops() {
    let sb = Sandbox::new();
    let store = YamlStore::default();
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut problems = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let original = std::fs::read(&path).unwrap();

        // Ours: encrypt with the engine, emit with the store.
        let key = DataKey::generate();
        let mut meta = Metadata {
            key_groups: vec![vec![MasterKeyEntry::Age(AgeEntry {
                recipient: sb.recipient.clone(),
                enc: sb.age_wrap(&key),
            })]],
            ..Metadata::default()
        };
        let mut tree = store.parse(&original).unwrap();
        engine::encrypt(&mut tree, &key, &mut meta, &EncryptOptions::default()).unwrap();
        let ours_enc = store.emit(&tree).unwrap();

        // Our decryption of our encryption: the original bytes.
        let mut back = store.parse(&ours_enc).unwrap();
        engine::decrypt(&mut back, &key, DecryptOptions::default()).unwrap();
        if store.emit(&back).unwrap() != original {
            problems.push(format!(
                "{name}: our decrypt of our encrypt differs from the original"
            ));
        }

        // sops decrypts ours (AADs, comments, MAC all checked) to what it gives for its own.
        let sops_enc = sb
            .sops(
                &[
                    "-e",
                    "--age",
                    &sb.recipient.clone(),
                    "--input-type",
                    "yaml",
                    "--output-type",
                    "yaml",
                ],
                "plain.yaml",
                &original,
            )
            .unwrap();
        let from_ours = match sb.sops(
            &["-d", "--input-type", "yaml", "--output-type", "yaml"],
            "ours.enc.yaml",
            &ours_enc,
        ) {
            Ok(o) => o,
            Err(e) => {
                problems.push(format!("{name}: sops -d rejects our file: {e}"));
                continue;
            }
        };
        let from_sops = sb
            .sops(
                &["-d", "--input-type", "yaml", "--output-type", "yaml"],
                "sops.enc.yaml",
                &sops_enc,
            )
            .unwrap();
        if let Some(why) = unexplained(&from_ours, &from_sops) {
            problems.push(format!(
                "{name}: sops -d of ours differs from sops -d of sops': {why}"
            ));
        }

        // Our decryption of sops' file equals sops' own decryption.
        let mut theirs = store.parse(&sops_enc).unwrap();
        let meta = engine::metadata_of(&theirs).unwrap().unwrap();
        let armored = meta
            .all_keys()
            .find_map(|k| match k {
                MasterKeyEntry::Age(a) => Some(a.enc.clone()),
                _ => None,
            })
            .unwrap();
        let sops_key = sb.age_unwrap(&armored);
        if let Err(e) = engine::decrypt(&mut theirs, &sops_key, DecryptOptions::default()) {
            problems.push(format!("{name}: our decrypt of sops' file fails: {e}"));
            continue;
        }
        let ours_dec = store.emit(&theirs).unwrap();
        if let Some(why) = unexplained(&ours_dec, &from_sops) {
            problems.push(format!(
                "{name}: our decrypt of sops' file differs from sops -d: {why}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Files whose encryption the fuzz campaign broke (a wrapped plain scalar with blanks after it,
/// written as a `>2-` block; a comment after a `...` end marker, after which the `sops` key
/// started a document without `---`), and their neighbours: `sops -d` reads what we write, to
/// what it gives for its own encryption, and our decryption gives the data back.
#[test]
fn fuzz_findings_encrypted_by_us_decrypt_in_upstream_sops() {
    let sb = Sandbox::new();
    let store = YamlStore::default();
    let wrapped = "aaaaaaaaaa bbbbbbbbbbbb cccccccccccc dddddddddddd eeeeeeeeeee ffffffffffff \
                   gggggggggggg\n  hhhhhhhhhhh iiii";
    let inputs = [
        include_str!("fixtures/yaml-crash-plain-multiline-trailing-dash.yaml").to_owned(),
        format!("k: {wrapped}   \nj: v\n"),
        format!("k: {wrapped}\t"),
        format!("k: {wrapped}\n  # c\nj: v\n"),
        format!("k: {wrapped}\n   \nj: v\n"),
        "k: v\n...\n# c\n".to_owned(),
        "k: v\n# d\n...\n# c\n---\nj: w\n...\n".to_owned(),
    ];
    let mut problems = Vec::new();
    for original in &inputs {
        let key = DataKey::generate();
        let mut meta = Metadata {
            key_groups: vec![vec![MasterKeyEntry::Age(AgeEntry {
                recipient: sb.recipient.clone(),
                enc: sb.age_wrap(&key),
            })]],
            ..Metadata::default()
        };
        let mut tree = store.parse(original.as_bytes()).unwrap();
        engine::encrypt(&mut tree, &key, &mut meta, &EncryptOptions::default()).unwrap();
        let ours_enc = store.emit(&tree).unwrap();
        let mut back = store.parse(&ours_enc).unwrap();
        engine::decrypt(&mut back, &key, DecryptOptions::default()).unwrap();

        let yaml = ["--input-type", "yaml", "--output-type", "yaml"];
        let mut encrypt = vec!["-e", "--age", &sb.recipient];
        encrypt.extend(yaml);
        let sops_enc = sb
            .sops(&encrypt, "plain.yaml", original.as_bytes())
            .unwrap();
        let mut decrypt = vec!["-d"];
        decrypt.extend(yaml);
        let from_sops = sb.sops(&decrypt, "sops.enc.yaml", &sops_enc).unwrap();
        match sb.sops(&decrypt, "ours.enc.yaml", &ours_enc) {
            Err(e) => problems.push(format!("{original:?}: sops -d rejects our file: {e}")),
            Ok(from_ours) => {
                if let Some(why) = unexplained(&from_ours, &from_sops) {
                    problems.push(format!("{original:?}: sops -d of ours differs: {why}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
