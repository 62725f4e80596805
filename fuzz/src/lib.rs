//! Fixtures shared by the fuzz targets: fixed test keys (never real secrets), store selection and a
//! formatting-independent view of a tree for round-trip comparisons.

use std::sync::OnceLock;

use signet_keys::{AgeIdentity, Keyring};
use signet_sops::stores::dotenv::val_to_string;
use signet_sops::tree::{MapEntry, Node, SeqItem, Value};
use signet_sops::{DataKey, Format, KeyUnwrapper, Metadata, Tree, UnwrappedDataKey};

/// The fixed data key of the round-trip targets (a test value, like the IVs are not).
pub fn data_key() -> DataKey {
    DataKey::from_slice(&[0x5a; 32]).expect("32 bytes")
}

/// The five stores, chosen by a selector byte.
pub fn format_of(selector: u8) -> Format {
    match selector % 5 {
        0 => Format::Yaml,
        1 => Format::Json,
        2 => Format::Dotenv,
        3 => Format::Ini,
        _ => Format::Binary,
    }
}

/// A value as text, as sops' MAC sees it, integers canonical; a float with an integral value reads as the integer
/// (JSON, dotenv and INI write `2.0` as `2` and `3E+15` as `3000000000000000`, as sops does, and read it back as an integer).
fn text_of(value: &Value) -> String {
    match value {
        // Display: shortest round-trip digits, no exponent, no `.0` (as Go's JSON writes them).
        // (`+ 0.0`: -0.0 reads back as the integer 0, in sops too.)
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{}", f + 0.0),
        // Integers are written in canonical decimal (`-0` as `0`, as sops does).
        Value::Int(text) => signet_sops::cipher::canonical_int(text),
        other => val_to_string(other),
    }
}

/// Every leaf of `tree` as (document, path, value as text), without comments, positions or styles:
/// what a decrypt must give back whatever the formatting. Values compare by their text, as sops'
/// MAC does (a value's type is not authenticated beyond its text, in sops as here). A scalar at the
/// top-level `sops` key is left out: that key is reserved for the metadata, which stores rewrite.
pub fn leaves(tree: &Tree) -> Vec<(usize, String, String)> {
    fn walk(node: &Node, doc: usize, path: &mut String, out: &mut Vec<(usize, String, String)>) {
        let len = path.len();
        match node {
            Node::Map(map) => {
                for entry in &map.entries {
                    if let MapEntry::Pair(pair) = entry {
                        path.push_str(&format!("[{:?}]", pair.key));
                        walk(&pair.value, doc, path, out);
                        path.truncate(len);
                    }
                }
            }
            Node::Seq(seq) => {
                for (i, item) in seq.items.iter().enumerate() {
                    if let SeqItem::Node(n) = item {
                        path.push_str(&format!("[{i}]"));
                        walk(n, doc, path, out);
                        path.truncate(len);
                    }
                }
            }
            Node::Scalar(s) => out.push((doc, path.clone(), text_of(&s.value))),
        }
    }
    let mut out = Vec::new();
    for (i, d) in tree.documents.iter().enumerate() {
        walk(&d.root, i, &mut String::new(), &mut out);
    }
    out.retain(|(_, path, _)| path != "[\"sops\"]");
    out
}

/// The public test identities of ../shared/vectors (copied to fuzz/keys) and the Signet example key:
/// with them the decrypt target reaches past the data key into values and MAC of real sops files.
pub fn vector_keyring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        let mut ring = Keyring::empty();
        for text in [
            include_str!("../keys/sops_mock_identity.keys.txt"),
            include_str!("../keys/flux_age.txt"),
            include_str!("../keys/flux_age_global.txt"),
            include_str!("../keys/flux_age_pq.txt"),
            include_str!("../keys/rops_mock_age.keys.txt"),
            include_str!("../../keys-example/age.agekey"),
        ] {
            for identity in signet_keys::age_key::identity::parse_identities(text, "fuzz", false)
                .expect("fixture identities parse")
            {
                ring.add_age_identity(identity);
            }
        }
        ring.add_age_identity(AgeIdentity::Ssh(ssh_identity()));
        for (text, name) in PGP_KEYS {
            ring.add_pgp_keys_text(text, name)
                .expect("fixture PGP keys parse");
        }
        ring
    })
}

/// The public test PGP secret keys of the shared vectors (Flux's, sops' functional tests').
const PGP_KEYS: [(&str, &str); 2] = [
    (include_str!("../keys/flux_pgp.asc"), "flux_pgp.asc"),
    (
        include_str!("../keys/sops_functional_tests_pgp.asc"),
        "sops_functional_tests_pgp.asc",
    ),
];

/// The fingerprint of `keys/fuzz_pgp.asc`, an ed25519/cv25519 key made by gpg for fuzzing
/// (Curve25519 keeps an execution fast, where the vectors' RSA-4096 key takes milliseconds).
pub const FUZZ_PGP_FP: &str = "90C9E7D7B5E7671652342132A61B2236AD14E187";

/// `keys/fuzz_pgp.asc` parsed once.
pub fn pgp_keys() -> &'static signet_keys::PgpKeys {
    static KEYS: OnceLock<signet_keys::PgpKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        signet_keys::PgpKeys::parse(include_bytes!("../keys/fuzz_pgp.asc"), "fuzz_pgp.asc")
            .expect("fixture PGP key parses")
    })
}

/// [`vector_keyring`] behind a memo of its answers, keyed by the key groups and threshold the
/// metadata lists: unwrapping is a pure function of those (the identities are fixed), and it is
/// most of an execution's cost (every identity against every stanza: X25519, ML-KEM, SSH), while
/// most mutations leave the key groups alone. A changed stanza misses the memo and is unwrapped
/// for real, so the stanza paths keep their coverage. Bounded: cleared when full.
pub struct MemoKeyring {
    memo: std::sync::Mutex<std::collections::HashMap<String, Option<UnwrappedDataKey>>>,
}

/// The most answers [`MemoKeyring`] keeps.
const MEMO_CAPACITY: usize = 4096;

impl MemoKeyring {
    /// The memo shared by a fuzz process.
    pub fn shared() -> &'static MemoKeyring {
        static MEMO: OnceLock<MemoKeyring> = OnceLock::new();
        MEMO.get_or_init(|| MemoKeyring {
            memo: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }
}

impl KeyUnwrapper for MemoKeyring {
    type Error = ();

    fn unwrap_data_key(&self, metadata: &Metadata) -> Result<UnwrappedDataKey, ()> {
        let key = format!("{:?}/{:?}", metadata.key_groups, metadata.shamir_threshold);
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(answer) = memo.get(&key) {
            return answer.clone().ok_or(());
        }
        let answer = vector_keyring().unwrap_data_key(metadata).ok();
        if memo.len() >= MEMO_CAPACITY {
            memo.clear();
        }
        memo.insert(key, answer.clone());
        answer.ok_or(())
    }
}

/// The ed25519 OpenSSH test key in fuzz/keys.
pub fn ssh_identity() -> signet_keys::age_key::identity::SshIdentity {
    signet_keys::age_key::identity::SshIdentity::parse(
        include_bytes!("../keys/ssh_ed25519"),
        "fuzz/keys/ssh_ed25519",
    )
    .expect("fixture ssh key parses")
}

/// A 2048-bit sealing key generated once per process (2048 keeps RSA decryption cheap enough to fuzz).
pub fn sealing_key() -> &'static (signet_seal::SealingCertificate, signet_seal::PrivateKeyRing) {
    static KEY: OnceLock<(signet_seal::SealingCertificate, signet_seal::PrivateKeyRing)> =
        OnceLock::new();
    KEY.get_or_init(|| {
        let generated = signet_seal::generate_sealing_key(
            2048,
            signet_seal::cert::DEFAULT_CERT_VALIDITY,
            "signet-fuzz",
        )
        .expect("key generation");
        let cert = signet_seal::SealingCertificate::from_pem(generated.certificate_pem.as_bytes())
            .expect("generated certificate parses");
        let mut ring = signet_seal::PrivateKeyRing::new();
        ring.add_from_bytes(generated.private_key_pem.as_bytes(), "fuzz")
            .expect("generated key parses");
        (cert, ring)
    })
}

/// The recipients of [`vector_keyring`], derived once (the post-quantum one costs an ML-KEM keygen).
pub fn vector_recipients() -> &'static [String] {
    static RECIPIENTS: OnceLock<Vec<String>> = OnceLock::new();
    RECIPIENTS.get_or_init(|| vector_keyring().age_recipients())
}

/// The store targets' property: what a store emits parses again, to the same data.
///
/// INI exceptions, shared with sops (go-ini): a key or value holding a backtick or a newline is
/// written in `"""…"""`, so a `"` in it may merge with the closing quotes; keys are read trimmed,
/// so blanks around a key are lost.
pub fn store_roundtrip(format: Format, data: &[u8]) {
    let store = signet_sops::stores::store_for(format);
    let Ok(tree) = store.parse(data) else { return };
    let Ok(out) = store.emit(&tree) else { return };
    let written = String::from_utf8_lossy(&out);
    let again = store
        .parse(&out)
        .unwrap_or_else(|e| panic!("a file the store emitted must parse again: {e:?}\n{written}"));
    let before = leaves(&tree);
    if format == Format::Ini && ini_lossy(&tree) {
        return;
    }
    assert_eq!(
        before,
        leaves(&again),
        "emit then parse changed the data; written:\n{written}"
    );
}

/// Whether an INI tree holds a key or value go-ini cannot write and read back (see
/// [`store_roundtrip`]).
fn ini_lossy(tree: &Tree) -> bool {
    let Some(Node::Map(root)) = tree.documents.first().map(|d| &d.root) else {
        return false;
    };
    root.pairs().any(|(_, section)| {
        let Node::Map(section) = section else {
            return false;
        };
        section.pairs().any(|(key, value)| {
            key.trim() != key || triple_quoted(key) || holds_triple_quoted(value, key)
        })
    })
}

/// A key or value go-ini writes in `"""…"""` and that holds a `"` (which may merge with the quotes).
fn triple_quoted(s: &str) -> bool {
    s.contains(['`', '\n']) && s.contains('"')
}

/// Whether any leaf under `node` is [`triple_quoted`]: the `[sops]` section is read back into
/// nested maps and lists (`pgp__list_0__map_enc`), so its values sit below the section's pairs,
/// and the key written is the whole flattened path (`path`, so far): a backtick in one part and a
/// quote in another make it triple-quoted too (found by the campaign).
fn holds_triple_quoted(node: &Node, path: &str) -> bool {
    match node {
        Node::Scalar(s) => triple_quoted(&text_of(&s.value)),
        Node::Map(map) => map.pairs().any(|(key, value)| {
            let path = format!("{path}__map_{key}");
            triple_quoted(&path) || path.trim() != path || holds_triple_quoted(value, &path)
        }),
        Node::Seq(seq) => seq.items.iter().any(|item| match item {
            SeqItem::Node(n) => holds_triple_quoted(n, &format!("{path}__list_0")),
            SeqItem::Comment(_) => false,
        }),
    }
}
