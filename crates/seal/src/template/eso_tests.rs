//! External Secrets Operator's own functions against what ESO v0.16.2's template engine renders
//! (`testdata/eso-functions.json`, generated with ESO's `FuncMap` over the same values).

use super::{Dialect, Renderer};
use std::collections::BTreeMap;

struct Case {
    name: String,
    template: String,
    ok: bool,
    want: String,
}

fn fixture() -> (BTreeMap<String, Vec<u8>>, Vec<Case>) {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("testdata/eso-functions.json")).unwrap();
    let values = doc["values"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
        .collect();
    let cases = doc["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Case {
            name: e[0].as_str().unwrap().to_owned(),
            template: e[1].as_str().unwrap().to_owned(),
            ok: e[2] == "OK",
            want: e[3].as_str().unwrap().to_owned(),
        })
        .collect();
    (values, cases)
}

fn eso(values: &BTreeMap<String, Vec<u8>>) -> Renderer {
    Renderer::with_dialect(
        values.iter().map(|(k, v)| (k, v.as_slice())),
        Dialect::ExternalSecrets,
    )
}

#[test]
fn eso_functions_render_as_eso_renders_them() {
    let (values, cases) = fixture();
    let mut failures = Vec::new();
    for case in &cases {
        let got = eso(&values).render(&case.name, &case.template);
        match (case.ok, got) {
            (true, Ok(out)) if out.as_slice() == case.want.as_bytes() => {}
            (false, Err(_)) => {}
            (_, got) => failures.push(format!(
                "{}: ESO {} {:?}\n  Signet {:?}",
                case.name,
                if case.ok { "renders" } else { "fails:" },
                case.want,
                got.map(|o| String::from_utf8_lossy(&o).into_owned())
                    .map_err(|e| e.to_string()),
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn render_eso(pairs: &[(&str, &[u8])], template: &str) -> Result<Vec<u8>, String> {
    let values: BTreeMap<String, Vec<u8>> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    eso(&values)
        .render("out", template)
        .map(|o| o.to_vec())
        .map_err(|e| e.to_string())
}

/// Bitnami's controller does not define ESO's functions: a SealedSecret template naming one is
/// refused before anything renders, as Bitnami refuses it.
#[test]
fn bitnami_templates_cannot_call_eso_functions() {
    let values = BTreeMap::from([("a".to_owned(), zeroize::Zeroizing::new(b"x: 1".to_vec()))]);
    for f in super::eso::FUNCTIONS {
        let t = format!("{{{{ {f} .a }}}}");
        let e = super::render("item", &t, &values).unwrap_err().to_string();
        assert!(e.contains("not defined"), "{f}: {e}");
    }
    // ESO's sprig fork: its camelcase differs from sprig's, and it has no sha512sum.
    let e = render_eso(&[("a", b"x")], "{{ camelcase .a }}").unwrap_err();
    assert!(e.contains("not supported by Signet"), "{e}");
    let e = render_eso(&[("a", b"x")], "{{ sha512sum .a }}").unwrap_err();
    assert!(e.contains("not defined"), "{e}");
    assert!(super::render("item", "{{ camelcase \"a_b\" }}", &values).is_ok());
    // ESO keeps getHostByName, Bitnami removes it: refused in both, each saying why.
    let e = render_eso(&[("a", b"x")], "{{ getHostByName .a }}").unwrap_err();
    assert!(e.contains("a DNS lookup"), "{e}");
    let e = super::render("item", "{{ getHostByName .a }}", &values)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not defined"), "{e}");
    for f in ["getSecretKey", "getSecretKeyRef", "pkcs12key", "pkcs12cert"] {
        let e = render_eso(&[("a", b"x")], &format!("{{{{ {f} .a }}}}")).unwrap_err();
        assert!(e.contains("not supported by Signet"), "{f}: {e}");
    }
    let e = render_eso(&[], "{{ getSecretKey \"db\" \"password\" }}").unwrap_err();
    assert!(
        e.contains("sees only the values its ExternalSecret fetched"),
        "{e}"
    );
}

/// Nine anchors of ten aliases each ("billion laughs") would copy 10⁹ nodes; fromYaml stops at
/// `MAX_YAML_NODES` with an error naming the bound.
#[test]
fn from_yaml_alias_bombs_stop_at_the_node_bound() {
    let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..6 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let e = render_eso(&[("y", doc.as_bytes())], "{{ fromYaml .y | len }}").unwrap_err();
    assert!(e.contains("more than 100000 nodes"), "{e}");
    // Below the bound, the same shape renders.
    let small: String = doc.lines().take(4).map(|l| format!("{l}\n")).collect();
    assert_eq!(
        render_eso(&[("y", small.as_bytes())], "{{ fromYaml .y | len }}").unwrap(),
        b"4"
    );
}

/// Nesting is bounded, written out or built from aliases.
#[test]
fn from_yaml_nesting_is_bounded() {
    let deep = format!("a: {}{}", "[".repeat(70), "]".repeat(70));
    let e = render_eso(&[("y", deep.as_bytes())], "{{ fromYaml .y | len }}").unwrap_err();
    assert!(e.contains("nested more than 64 deep"), "{e}");
    let half = format!(
        "a: &n {}{}\nb: {}*n{}",
        "[".repeat(40),
        "]".repeat(40),
        "[".repeat(40),
        "]".repeat(40)
    );
    let e = render_eso(&[("y", half.as_bytes())], "{{ fromYaml .y | len }}").unwrap_err();
    assert!(e.contains("nested more than 64 deep"), "{e}");
    let fine = format!("a: {}{}", "[".repeat(30), "]".repeat(30));
    assert!(render_eso(&[("y", fine.as_bytes())], "{{ fromYaml .y | len }}").is_ok());
}

/// A dict that holds itself has no YAML; toYaml stops at the nesting bound instead of recursing
/// until the stack overflows.
#[test]
fn to_yaml_of_a_dict_holding_itself_is_an_error() {
    let e = render_eso(
        &[],
        "{{ $d := dict \"a\" 1 }}{{ $_ := set $d \"self\" $d }}{{ toYaml $d }}",
    )
    .unwrap_err();
    assert!(e.contains("nested more than 64 deep"), "{e}");
}

/// toYaml's output may be four times its input (`\x01` is written `"\x01"`): it is bounded
/// itself, not only when written.
#[test]
fn to_yaml_output_is_bounded() {
    let big = vec![1u8; 400 * 1024];
    let e = render_eso(&[("v", &big)], "{{ toYaml .v | len }}").unwrap_err();
    assert!(e.contains("more than 1048576 bytes"), "{e}");
    let e = render_eso(&[("v", &big)], "{{ filterPEM \"A\" (printf \"-----BEGIN A-----\\n%s\\n-----END A-----\\n\" (b64enc (repeat 3 .v))) | len }}")
        .unwrap_err();
    assert!(e.contains("more than"), "{e}");
}

/// Errors of ESO's functions are Go's own texts, which hold no value: they are shown; values never
/// are.
#[test]
fn eso_function_errors_name_no_values() {
    let secret: &[u8] = b"-----BEGIN CERTIFICATE-----\nczNjcjN0\n-----END CERTIFICATE-----\n";
    let e = render_eso(&[("c", secret)], "{{ filterCertChain \"leaf\" .c }}").unwrap_err();
    assert!(e.contains("x509: malformed certificate"), "{e}");
    assert!(!e.contains("czNjcjN0") && !e.contains("s3cr3t"), "{e}");
    let e = render_eso(&[("c", b"s3cr3t")], "{{ filterPEM \"A\" .c }}").unwrap_err();
    assert!(e.ends_with("error filtering pem: found junk"), "{e}");
    let e = render_eso(&[("c", b"s3cr3t")], "{{ filterCertChain \"root\" .c }}").unwrap_err();
    assert!(e.ends_with("no leaf certificate found"), "{e}");
}

proptest::proptest! {
    /// Any bytes, any PEM-ish or YAML-ish text: every function returns (a value or an error),
    /// never panics, and stays within the output bound.
    #[test]
    fn eso_functions_never_panic(
        input in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just(b"-----BEGIN A-----\n".to_vec()),
                proptest::strategy::Just(b"\n-----END A-----\n".to_vec()),
                proptest::strategy::Just(b"aGk=".to_vec()),
                proptest::strategy::Just(b"k: v\n".to_vec()),
                proptest::strategy::Just(b"- &a [*a, {b: *a}]\n".to_vec()),
                proptest::strategy::Just(b"<<: ".to_vec()),
                proptest::strategy::Just("\u{85}\u{2028}\u{feff}".as_bytes().to_vec()),
                proptest::collection::vec(proptest::num::u8::ANY, 0..8),
            ],
            0..24,
        )
    ) {
        let input: Vec<u8> = input.concat();
        for t in [
            "{{ toYaml .v }}",
            "{{ fromYaml .v | toYaml }}",
            "{{ filterPEM \"A\" .v }}",
            "{{ filterCertChain \"leaf\" .v }}",
            "{{ toYaml (dict .v .v) }}",
            "{{ jwkPublicKeyPem .v }}",
            "{{ jwkPrivateKeyPem .v }}",
        ] {
            if let Ok(out) = render_eso(&[("v", &input)], t) {
                proptest::prop_assert!(out.len() <= super::MAX_RENDERED_BYTES);
            }
        }
    }
}

/// The YAML 1.1 line breaks go-yaml reads (NEL, LS, PS) give fromYaml's `Error` entry, in
/// Signet's words, rather than a map read differently from ESO's.
#[test]
fn from_yaml_refuses_yaml_1_1_line_breaks_in_its_error_entry() {
    for doc in ["a: x\u{85}b: y", "a: \"x\u{2028}y\"", "a: 1\u{2029}"] {
        let out = render_eso(&[("y", doc.as_bytes())], "{{ fromYaml .y | toJson }}").unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("{\"Error\":") && out.contains("U+0085, U+2028 and U+2029"),
            "{out}"
        );
    }
}

/// docs/external-secrets.md names every ESO function Signet refuses, and every one it renders.
#[test]
fn the_docs_list_eso_functions() {
    let docs = include_str!("../../../../docs/external-secrets.md");
    for f in super::sprig::EXTERNAL_SECRETS_UNSUPPORTED
        .iter()
        .chain(super::eso::FUNCTIONS)
    {
        let base = f.trim_end_matches("Pass");
        assert!(docs.contains(&format!("`{base}")), "{f}");
    }
}

/// An RSA private JWK without its CRT values (`dp`, `dq`, `qi`) is refused: Go derives them (or,
/// for an inconsistent key, writes a broken structure), Signet does not.
#[test]
fn jwk_private_rsa_keys_need_their_crt_values() {
    let (values, _) = fixture();
    let mut key: serde_json::Value = serde_json::from_slice(&values["jwk_rsa_priv"]).unwrap();
    key.as_object_mut().unwrap().remove("qi");
    let e = render_eso(
        &[("k", key.to_string().as_bytes())],
        "{{ jwkPrivateKeyPem .k }}",
    )
    .unwrap_err();
    assert!(e.contains("needs p, q, dp, dq and qi"), "{e}");
    assert!(!e.contains(key["d"].as_str().unwrap()), "{e}");
}

/// A 2048-bit RSA private JWK whose CRT values do not fit its primes is refused, as Go's
/// `MarshalPKCS8PrivateKey` refuses it; the same key, consistent, renders.
#[test]
fn jwk_private_rsa_keys_of_common_sizes_are_checked() {
    let key = |dq: Option<&str>| {
        let mut k: serde_json::Value = serde_json::from_str(RSA_2048).unwrap();
        if let Some(dq) = dq {
            k["dq"] = dq.into();
        }
        k.to_string()
    };
    let good = render_eso(&[("k", key(None).as_bytes())], "{{ jwkPrivateKeyPem .k }}").unwrap();
    assert!(good.starts_with(b"-----BEGIN PRIVATE KEY-----\n"));
    let dp = serde_json::from_str::<serde_json::Value>(RSA_2048).unwrap()["dp"]
        .as_str()
        .unwrap()
        .to_owned();
    let e = render_eso(
        &[("k", key(Some(&dp)).as_bytes())],
        "{{ jwkPrivateKeyPem .k }}",
    )
    .unwrap_err();
    assert!(e.ends_with("crypto/rsa: invalid RSA private key"), "{e}");
}

/// A test key (2048-bit RSA, generated for this test only).
const RSA_2048: &str = include_str!("testdata/rsa-2048-private.jwk.json");

/// Inputs shaped to make a naive PEM reader quadratic (BEGIN lines without END, END lines without
/// BEGIN, one header line after another), a megabyte each: every one is read in one pass, and
/// none holds a block.
#[test]
fn pem_functions_read_hostile_megabytes_in_one_pass() {
    let shapes: [&[u8]; 4] = [
        b"-----BEGIN A-----\n",
        b"\n-----END A-----",
        b"-----BEGIN A-----\nk: v\n",
        b"-----BEGIN A-----\n-----END B-----\n",
    ];
    for shape in shapes {
        let input = shape.repeat(1024 * 1024 / shape.len());
        let e = render_eso(&[("v", &input)], "{{ filterPEM \"A\" .v }}").unwrap_err();
        assert!(e.ends_with("found junk"), "{e}");
        let e = render_eso(&[("v", &input)], "{{ filterCertChain \"leaf\" .v }}").unwrap_err();
        assert!(e.ends_with("no leaf certificate found"), "{e}");
    }
}
