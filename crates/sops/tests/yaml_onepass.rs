//! The one-pass YAML encryption and decryption (`stores::yaml::onepass`) against the full path
//! (parse, encrypt or decrypt, emit): where it gives an output, a decryption is the full path's
//! byte for byte and an encryption is the full path's text but for its random IVs (and decrypts,
//! by the full path, to the input); everything outside its shape, every value that does not
//! decrypt and every MAC that does not match makes it decline.

use crate::common;
use signet_sops::engine::{self, DecryptOptions, EncryptOptions};
use signet_sops::stores::yaml::YamlStore;
use signet_sops::stores::yaml::onepass::{PlainFile, Tail};
use signet_sops::{DataKey, Decryptor, EncryptionRule, Metadata, Store, UnwrappedDataKey};
use std::io::Cursor;

fn encrypt(plain: &[u8], key: &DataKey, rule: &EncryptionRule, mac_only: bool) -> Vec<u8> {
    let store = YamlStore::default();
    let mut tree = store.parse(plain).unwrap();
    let mut meta = Metadata {
        rule: rule.clone(),
        mac_only_encrypted: mac_only,
        ..Metadata::default()
    };
    engine::encrypt(&mut tree, key, &mut meta, &EncryptOptions::default()).unwrap();
    store.emit(&tree).unwrap()
}

fn one_pass_encrypt(
    plain: &[u8],
    key: &DataKey,
    rule: &EncryptionRule,
    mac_only: bool,
) -> Option<Vec<u8>> {
    let mut file = Cursor::new(plain);
    let mut meta = Metadata {
        rule: rule.clone(),
        mac_only_encrypted: mac_only,
        ..Metadata::default()
    };
    let checked = PlainFile::check(&mut file, &meta).unwrap()?;
    let mut out = Vec::new();
    checked
        .encrypt(&mut file, key, &mut meta, 4, &mut out)
        .unwrap();
    Some(out)
}

/// An encrypted file with what is random or of the moment masked: each `ENC[…]` keeps only its
/// type, `lastmodified` its key.
fn masked(encrypted: &[u8]) -> String {
    let text = String::from_utf8_lossy(encrypted);
    let mut out = String::new();
    let mut rest: &str = &text;
    while let Some(at) = rest.find("ENC[AES256_GCM,") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find(']').map_or(rest.len(), |e| at + e + 1);
        let ty = rest[at..end].rsplit("type:").next().unwrap_or("");
        out.push_str(&format!("ENC[{ty}"));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| {
            if l.trim_start().starts_with("lastmodified:") {
                "lastmodified"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Encrypts both ways; panics when the one pass gives an output that is not the full path's text
/// or does not decrypt (by the full path) to what the full path's own output decrypts to. Returns
/// whether the one pass gave one.
fn encrypts_alike(
    name: &str,
    plain: &[u8],
    key: &DataKey,
    rule: &EncryptionRule,
    mac_only: bool,
) -> bool {
    let Some(out) = one_pass_encrypt(plain, key, rule, mac_only) else {
        return false;
    };
    let expected = encrypt(plain, key, rule, mac_only);
    assert_eq!(
        masked(&out),
        masked(&expected),
        "{name}: one pass encrypts unlike the full path\n--- plain\n{}",
        String::from_utf8_lossy(plain)
    );
    let decrypted = full(&out, key)
        .unwrap_or_else(|e| panic!("{name}: the one pass's output does not decrypt: {e}"));
    assert!(
        decrypted == full(&expected, key).unwrap(),
        "{name}: the one pass's output decrypts to other text\n--- plain\n{}",
        String::from_utf8_lossy(plain)
    );
    true
}

fn full(encrypted: &[u8], key: &DataKey) -> Result<Vec<u8>, signet_sops::Error> {
    let store = YamlStore::default();
    let opened = Decryptor::new(store.parse(encrypted)?)?.decrypt(
        UnwrappedDataKey {
            data_key: key.clone(),
            opened_by: Vec::new(),
        },
        DecryptOptions::default(),
    )?;
    store.emit(&opened.tree)
}

fn one_pass(encrypted: &[u8], key: &DataKey) -> Option<Vec<u8>> {
    let mut file = Cursor::new(encrypted);
    let tail = Tail::read(&mut file).unwrap()?;
    let out = tail.decrypt_body(&mut file, key).unwrap()?;
    Some(out.to_vec())
}

/// Decrypts both ways; panics when the one pass gives an output the full path does not. Returns
/// whether the one pass gave one.
fn agrees(name: &str, encrypted: &[u8], key: &DataKey) -> bool {
    let Some(out) = one_pass(encrypted, key) else {
        return false;
    };
    let expected = full(encrypted, key).unwrap_or_else(|e| {
        panic!(
            "{name}: the one pass decrypted what the full path refuses ({e}):\n{}",
            String::from_utf8_lossy(encrypted)
        )
    });
    assert!(
        out == expected,
        "{name}: one pass differs from the full path\n--- encrypted\n{}\n--- one pass\n{}\n--- full\n{}",
        String::from_utf8_lossy(encrypted),
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&expected)
    );
    true
}

/// A small deterministic generator (xorshift), enough to vary documents reproducibly.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Plain-text scalars: most keep the file in the one pass's shape once encrypted; some decrypt to
/// text that must be quoted, a few to several lines (which the one pass leaves to the full path).
const SCALARS: &[&str] = &[
    "hello",
    "42",
    "-7",
    "3.50",
    "true",
    "False",
    "null",
    "~",
    "2024-01-02T03:04:05Z",
    "a b  c",
    "x#y",
    "\"123\"",
    "'yes'",
    "\"with: colon\"",
    "\"tab\\there\"",
    "''",
    "0x1F",
    "1e3",
    "http://example.com/a?b=c",
    "\"ünïcode\"",
    "-",
    "\"line\\nbreak\"",
];

const KEYS: &[&str] = &[
    "name",
    "data",
    "password",
    "value_unencrypted",
    "x.y",
    "k-1",
    "KEY",
    "sops",
    "with space",
];

fn gen_scalar(rng: &mut Rng) -> String {
    let s = rng.pick(SCALARS);
    if s == "-" {
        "-dash".to_owned()
    } else {
        s.to_owned()
    }
}

fn gen_comment(rng: &mut Rng, out: &mut String, col: usize) {
    if rng.chance(20) {
        let text = rng.pick(&[" a comment", "", " key: value # inner", "#double", " ünï"]);
        out.push_str(&format!("{}#{text}\n", " ".repeat(col)));
    }
    if rng.chance(10) {
        out.push('\n');
    }
}

fn gen_map(
    rng: &mut Rng,
    out: &mut String,
    col: usize,
    step: usize,
    depth: usize,
    first_inline: bool,
) {
    let n = 1 + rng.below(4);
    for i in 0..n {
        let inline = first_inline && i == 0;
        if !inline {
            gen_comment(rng, out, col);
            out.push_str(&" ".repeat(col));
        }
        let key = format!("{}{i}", rng.pick(KEYS));
        gen_value(rng, out, &key, col, step, depth);
    }
}

fn gen_value(rng: &mut Rng, out: &mut String, key: &str, col: usize, step: usize, depth: usize) {
    let roll = rng.below(10);
    if depth >= 4 || roll < 6 {
        out.push_str(&format!("{key}: {}\n", gen_scalar(rng)));
    } else if roll < 8 {
        out.push_str(&format!("{key}:\n"));
        gen_map(rng, out, col + step, step, depth + 1, false);
    } else {
        out.push_str(&format!("{key}:\n"));
        let dash = if rng.chance(30) { col } else { col + step };
        for _ in 0..1 + rng.below(3) {
            gen_comment(rng, out, dash);
            out.push_str(&" ".repeat(dash));
            if rng.chance(30) {
                out.push_str("- ");
                gen_map(rng, out, dash + 2, step, depth + 1, true);
            } else {
                out.push_str(&format!("- {}\n", gen_scalar(rng)));
            }
        }
    }
}

fn gen_doc(seed: u64) -> String {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let step = if rng.chance(50) { 2 } else { 4 };
    let mut out = String::new();
    if rng.chance(20) {
        out.push_str("# head of the file\n");
    }
    for i in 0..1 + rng.below(4) {
        gen_comment(&mut rng, &mut out, 0);
        let key = format!("top{i}");
        gen_value(&mut rng, &mut out, &key, 0, step, 0);
    }
    if rng.chance(15) {
        out.push_str("# tail comment\n");
    }
    out
}

#[test]
fn generated_documents_decrypt_in_one_pass_as_the_full_path_does() {
    let rules = [
        (EncryptionRule::default(), false),
        (
            EncryptionRule::EncryptedRegex("^(data|password)".into()),
            false,
        ),
        (
            EncryptionRule::UnencryptedSuffix("_unencrypted".into()),
            true,
        ),
        (EncryptionRule::EncryptedSuffix("0".into()), false),
    ];
    let key = DataKey::generate();
    let (mut took, mut sealed, mut total) = (0, 0, 0);
    for seed in 0..600u64 {
        let doc = gen_doc(seed);
        let store = YamlStore::default();
        if store.parse(doc.as_bytes()).is_err() {
            continue;
        }
        let (rule, mac_only) = &rules[seed as usize % rules.len()];
        let name = format!("seed {seed}");
        let encrypted = encrypt(doc.as_bytes(), &key, rule, *mac_only);
        total += 1;
        took += agrees(&name, &encrypted, &key) as usize;
        sealed += encrypts_alike(&name, doc.as_bytes(), &key, rule, *mac_only) as usize;
    }
    // The generator makes mostly documents of the shape; the check is only worth its name when
    // the one pass really ran.
    eprintln!(
        "of {total} generated documents, the one pass decrypted {took} and encrypted {sealed}"
    );
    assert!(total >= 500, "{total} generated documents parsed");
    assert!(
        took * 2 >= total,
        "the one pass decrypted {took} of {total}"
    );
    assert!(
        sealed * 4 >= total,
        "the one pass encrypted {sealed} of {total}"
    );
}

#[test]
fn corpus_files_decrypt_in_one_pass_as_the_full_path_does() {
    let key = DataKey::generate();
    let dir = common::corpus_dir();
    let (mut took, mut sealed) = (0, 0);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    names.sort();
    for path in &names {
        let plain = std::fs::read(path).unwrap();
        for rule in [
            EncryptionRule::default(),
            EncryptionRule::EncryptedRegex("^(data|stringData|password|token)$".into()),
        ] {
            let encrypted = encrypt(&plain, &key, &rule, false);
            let name = path.display().to_string();
            took += agrees(&name, &encrypted, &key) as usize;
            sealed += encrypts_alike(&name, &plain, &key, &rule, false) as usize;
        }
    }
    eprintln!(
        "of {} corpus files and rules, the one pass decrypted {took} and encrypted {sealed}",
        names.len() * 2
    );
    assert!(took >= 4, "the one pass decrypted {took} corpus files");
    assert!(sealed >= 4, "the one pass encrypted {sealed} corpus files");
}

/// A file well past the chunk size, with comment runs and nested blocks across chunk boundaries.
#[test]
fn a_file_of_many_chunks_decrypts_as_the_full_path_does() {
    let mut plain = String::new();
    for i in 0..3_000 {
        plain.push_str(&format!(
            "service{i}:\n  # settings of {i}\n  # second line\n  name: svc-{i}\n  replicas: {}\n  env:\n    A: {}\n    # between\n    B: \"{i}\"\n  ports:\n  - 80\n  -   name: p{i}\n      port: 8{i}\n",
            i % 7,
            "x".repeat(1 + i % 90)
        ));
    }
    let key = DataKey::generate();
    let encrypted = encrypt(plain.as_bytes(), &key, &EncryptionRule::default(), false);
    assert!(encrypted.len() > 4 << 18, "{} bytes", encrypted.len());
    assert!(agrees("large", &encrypted, &key), "the one pass declined");
    assert_eq!(one_pass(&encrypted, &key).unwrap(), plain.as_bytes());
    let rule = EncryptionRule::default();
    assert!(encrypts_alike(
        "large",
        plain.as_bytes(),
        &key,
        &rule,
        false
    ));

    // A line outside the shape past the first chunks: both directions decline (the reading
    // thread stops as the committing side does, or the other way round) and the full path reads it.
    let from = plain.len() * 3 / 4;
    let at = plain[from..].find("service").unwrap() + from;
    let odd = format!("{}flow: [a, b]\n{}", &plain[..at], &plain[at..]);
    assert!(one_pass_encrypt(odd.as_bytes(), &key, &rule, false).is_none());
    let encrypted = encrypt(odd.as_bytes(), &key, &rule, false);
    assert!(one_pass(&encrypted, &key).is_none());
    assert!(full(&encrypted, &key).unwrap() == odd.as_bytes());
}

fn sample() -> (Vec<u8>, DataKey) {
    let plain = b"# head\na: secret\nn: 5\nlist:\n  - one\n  - k: v\nplain_unencrypted: open\n";
    let key = DataKey::generate();
    let encrypted = encrypt(plain, &key, &EncryptionRule::default(), false);
    assert_eq!(one_pass(&encrypted, &key).unwrap(), plain);
    (encrypted, key)
}

#[test]
fn a_tampered_value_comment_or_unencrypted_value_declines() {
    let (encrypted, key) = sample();
    let text = String::from_utf8(encrypted).unwrap();
    // A value's data, and an unencrypted value (covered by the MAC only): the full path refuses
    // them; a comment's data (comments are not in the MAC; sops keeps one that does not decrypt,
    // and so does the full path).
    for (from, to, refused) in [
        ("a: ENC[AES256_GCM,data:", "a: ENC[AES256_GCM,data:A", true),
        ("plain_unencrypted: open", "plain_unencrypted: opem", true),
        ("#ENC[AES256_GCM,data:", "#ENC[AES256_GCM,data:A", false),
    ] {
        assert!(text.contains(from), "{from}");
        let tampered = text.replacen(from, to, 1);
        assert!(one_pass(tampered.as_bytes(), &key).is_none(), "{to}");
        assert_eq!(full(tampered.as_bytes(), &key).is_err(), refused, "{to}");
    }
    assert!(one_pass(text.as_bytes(), &DataKey::generate()).is_none());
}

#[test]
fn shapes_outside_the_one_pass_decline_and_the_full_path_reads_them() {
    let key = DataKey::generate();
    for plain in [
        "a: [x, y]\n",
        "a: &anchor x\nb: *anchor\n",
        "a: |\n  two\n  lines\n",
        "a: !!str x\n",
        "a:\tx\n",
        "a: x\r\nb: y\r\n",
        "a: ünïcode\n",
        "a: \"two\\nlines\"\nb: |\n  block\n",
        "---\na: x\n---\nb: y\n",
        "a: {b: c}\n",
        "\"quoted key\": x\n",
        "a: x # same-line comment\n",
        "a:\n  # under a, before b at a shallower column\nb: x\n",
    ] {
        let encrypted = encrypt(plain.as_bytes(), &key, &EncryptionRule::default(), false);
        assert!(
            one_pass(&encrypted, &key).is_none(),
            "took the one pass: {plain:?}\n{}",
            String::from_utf8_lossy(&encrypted)
        );
        assert!(full(&encrypted, &key).is_ok(), "{plain:?}");
    }
}

/// Plain scalars and keys with indicator characters inside them, quotes and dashes in odd places:
/// where the one pass takes such a file, in either direction, it agrees with the full path.
#[test]
fn odd_plain_scalars_and_keys_agree_with_the_full_path() {
    let key = DataKey::generate();
    let rule = EncryptionRule::default();
    let lines = [
        "a[b: x",
        "a,b: y",
        "a{b}: z",
        "k: a]b",
        "k: {x",
        "k: x}",
        "k: a,b",
        "k: x:y",
        "k: -x",
        "k: x?",
        "k: a'b",
        "k: a\"b",
        "k: a#b",
        "k: 'a: b'",
        "k: \"a #b\"",
        "k: ''",
        "k: \"\"",
        "k: -1.5e3",
        "k: 0o17",
        "k: +12",
        "k: .5",
        "k: 1_000",
        "k: 2024-01-02",
        "k: ~",
        "k: Null",
        "k: yes",
        "k: 0x1F",
        "k: 1e400",
        "k: .inf",
        "k: -",
        "k:  two  spaces",
        "k: trailing ",
        "k-: v",
        "-k: v",
        "k.: v",
        "k?: v",
        "\"k\": v",
        "k: %x",
        "k: !x",
        "k: &x",
        "k: *x",
        "k: |x",
        "k: >x",
        "k: @x",
    ];
    let mut took = 0;
    for line in lines {
        for plain in [
            format!("{line}\n"),
            format!("top:\n  {line}\n  after: 1\n"),
            format!("list:\n- {line}\n- x\n"),
        ] {
            if YamlStore::default().parse(plain.as_bytes()).is_err() {
                continue;
            }
            let encrypted = encrypt(plain.as_bytes(), &key, &rule, false);
            took += agrees(&plain, &encrypted, &key) as usize;
            took += encrypts_alike(&plain, plain.as_bytes(), &key, &rule, false) as usize;
        }
    }
    eprintln!("the one pass took {took} of the odd scalars' files and directions");
    assert!(took >= 100, "the one pass took {took}");
}

/// The one pass's own bounds: nesting deeper than 100 levels, or more than 64 comment lines in a
/// row, decline; the full path reads both files.
#[test]
fn deep_nesting_and_long_comment_runs_decline() {
    let key = DataKey::generate();
    let rule = EncryptionRule::default();
    let deep: String = (0..150)
        .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
        .chain(std::iter::once(format!("{}v: x\n", "  ".repeat(150))))
        .collect();
    let shallow: String = (0..90)
        .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
        .chain(std::iter::once(format!("{}v: x\n", "  ".repeat(90))))
        .collect();
    let comments = format!("{}a: x\n", "# note\n".repeat(80));
    for (plain, one_pass_reads) in [(&deep, false), (&shallow, true), (&comments, false)] {
        let encrypted = encrypt(plain.as_bytes(), &key, &rule, false);
        assert_eq!(one_pass(&encrypted, &key).is_some(), one_pass_reads);
        assert_eq!(
            one_pass_encrypt(plain.as_bytes(), &key, &rule, false).is_some(),
            one_pass_reads
        );
        assert!(full(&encrypted, &key).unwrap() == plain.as_bytes());
    }
}

/// A key with no value on its line, then more comment lines than the full parser looks past
/// (found by fuzzing `yaml_onepass`): the full path refuses the file, and the one pass declines it
/// in both directions instead of reading it.
#[test]
fn comments_the_full_parser_will_not_look_past_decline() {
    let key = DataKey::generate();
    let rule = EncryptionRule::default();
    let comments = "# note\n".repeat(120);
    let plain = format!("a: 1\nb:\n{comments}c: 2\n");
    assert!(YamlStore::default().parse(plain.as_bytes()).is_err());
    assert!(one_pass_encrypt(plain.as_bytes(), &key, &rule, false).is_none());
    // The same run of plain comments in an encrypted file.
    let encrypted = String::from_utf8(encrypt(b"a: 1\nb:\nc: 2\n", &key, &rule, false)).unwrap();
    let padded = encrypted.replacen("b:\n", &format!("b:\n{comments}"), 1);
    assert!(full(padded.as_bytes(), &key).is_err());
    assert!(one_pass(padded.as_bytes(), &key).is_none());
}

#[test]
fn a_sops_key_before_the_end_or_a_duplicate_key_declines() {
    let (encrypted, key) = sample();
    let text = String::from_utf8(encrypted).unwrap();
    let at = text.find("\nsops:\n").unwrap() + 1;
    let (body, sops) = text.split_at(at);
    // `sops` first, then the body: no `sops` key at the end.
    let reordered = format!("{sops}{body}");
    assert!(one_pass(reordered.as_bytes(), &key).is_none());
    // A key given twice: the full parser refuses the file.
    let first_line = body.lines().nth(1).unwrap();
    let doubled = format!("{first_line}\n{body}{sops}");
    assert!(one_pass(doubled.as_bytes(), &key).is_none());
    assert!(full(doubled.as_bytes(), &key).is_err());
}

#[test]
fn plain_shapes_outside_the_one_pass_decline_and_the_full_path_encrypts_them() {
    let key = DataKey::generate();
    for plain in [
        // A comment a blank line away from the line below: yaml.v3 may keep it above.
        "a:\n  b: 1\n# c\n\nd: 2\n",
        // A comment last in the file, or under a line at another column.
        "a: 1\n# last\n",
        "a:\n  b: 1\n  # deeper\nc: 2\n",
        // No final line break; a blank line last; trailing blanks after a comment.
        "a: 1",
        "a: 1\n\n",
        "# c \na: 1\n",
        "a: [x]\n",
        "a: \"esc\\\"aped\"\n",
        "a: ünï\n",
        "a: |\n  block\n",
    ] {
        assert!(
            one_pass_encrypt(plain.as_bytes(), &key, &EncryptionRule::default(), false).is_none(),
            "took the one pass: {plain:?}"
        );
        let encrypted = encrypt(plain.as_bytes(), &key, &EncryptionRule::default(), false);
        assert!(full(&encrypted, &key).is_ok(), "{plain:?}");
    }
    // Already encrypted, and not a map: for the full path, which refuses them.
    let (encrypted, _) = sample();
    let rule = EncryptionRule::default();
    assert!(one_pass_encrypt(&encrypted, &key, &rule, false).is_none());
    assert!(one_pass_encrypt(b"- a\n", &key, &rule, false).is_none());
    assert!(one_pass_encrypt(b"", &key, &rule, false).is_none());
}
