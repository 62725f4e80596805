//! Private key inputs (PEM, key backups) and certificate rules (first cert, RSA only, expiry, the
//! controller's certificate shape).

use signet_seal::{
    PrivateKeyRing, SealError, SealingCertificate, generate_sealing_key, open, seal,
};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use x509_parser::prelude::{FromDer, X509Certificate};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/seal/kat")
            .join(name),
    )
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn key_backup_secret_list_and_multi_document_yaml_and_json() {
    let key = b64(&fixture("key.pem"));
    let other = generate_sealing_key(2048, Duration::from_secs(60), "").unwrap();
    let other_key = b64(other.private_key_pem.as_bytes());
    let list_yaml = format!(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: sealed-secrets-keyabc\n  type: kubernetes.io/tls\n  data:\n    tls.crt: {cert}\n    tls.key: {key}\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: k2\n  data:\n    tls.key: {other_key}\n",
        cert = b64(&fixture("cert.pem")),
    );
    let mut ring = PrivateKeyRing::new();
    assert_eq!(
        ring.add_from_bytes(list_yaml.as_bytes(), "backup.yaml")
            .unwrap(),
        2
    );

    let json = format!(
        r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"k"}},"data":{{"tls.key":"{key}"}}}}"#
    );
    let mut ring = PrivateKeyRing::new();
    assert_eq!(
        ring.add_from_bytes(json.as_bytes(), "backup.json").unwrap(),
        1
    );

    let multi = format!(
        "kind: Secret\ndata:\n  tls.key: {key}\n---\nkind: Secret\ndata:\n  tls.key: {other_key}\n"
    );
    let mut ring = PrivateKeyRing::new();
    assert_eq!(
        ring.add_from_bytes(multi.as_bytes(), "multi.yaml").unwrap(),
        2
    );
    let sealed = seal(
        &SealingCertificate::from_pem(other.certificate_pem.as_bytes()).unwrap(),
        b"",
        b"v",
    )
    .unwrap();
    assert_eq!(&open(&ring, b"", &sealed).unwrap()[..], b"v");
}

#[test]
fn inputs_without_usable_keys_are_errors_without_key_bytes() {
    let mut ring = PrivateKeyRing::new();
    assert!(matches!(
        ring.add_from_bytes(&fixture("cert.pem"), "cert.pem"),
        Err(SealError::NoPrivateKey(_))
    ));
    assert!(matches!(
        ring.add_from_bytes(b"kind: Secret\ndata: {}\n", "empty.yaml"),
        Err(SealError::NoPrivateKey(_))
    ));
    let ec = "-----BEGIN EC PRIVATE KEY-----\nAQID\n-----END EC PRIVATE KEY-----\n";
    let err = ring
        .add_from_bytes(ec.as_bytes(), "ec.pem")
        .unwrap_err()
        .to_string();
    assert!(err.contains("ec.pem") && err.contains("RSA"), "{err}");
    let mut truncated = fixture("key.pem");
    truncated.truncate(400);
    truncated.extend_from_slice(b"\n-----END PRIVATE KEY-----\n");
    let err = ring
        .add_from_bytes(&truncated, "bad.pem")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.pem"), "{err}");
    assert!(ring.is_empty());
}

#[test]
fn certificate_rules() {
    let cert_pem = fixture("cert.pem");
    // The first certificate counts; trailing junk and further blocks are ignored.
    let mut with_more = cert_pem.clone();
    with_more.extend_from_slice(&fixture("key.pem"));
    assert_eq!(
        SealingCertificate::from_pem(&with_more)
            .unwrap()
            .key_size_bits(),
        2048
    );
    // Expired: check as if far in the future.
    let later = SystemTime::now() + Duration::from_secs(200 * 365 * 24 * 3600);
    assert!(matches!(
        SealingCertificate::from_pem_at(&cert_pem, later),
        Err(SealError::CertificateExpired(_))
    ));
    // Not RSA.
    let ec_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ec_cert = rcgen::CertificateParams::new(vec!["x".to_owned()])
        .unwrap()
        .self_signed(&ec_key)
        .unwrap();
    let err = SealingCertificate::from_pem(ec_cert.pem().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not RSA"), "{err}");
    assert!(SealingCertificate::from_pem(b"nothing here").is_err());
}

#[test]
fn a_bare_public_key_is_accepted() {
    let cert = SealingCertificate::from_pem(&fixture("cert.pem")).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert.public_key_der());
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n");
    let from_key = SealingCertificate::from_pem(pem.as_bytes()).unwrap();
    let mut ring = PrivateKeyRing::new();
    ring.add_from_bytes(&fixture("key.pem"), "key.pem").unwrap();
    assert_eq!(
        &open(&ring, b"a/b", &seal(&from_key, b"a/b", b"x").unwrap()).unwrap()[..],
        b"x"
    );
}

#[test]
fn generated_certificate_has_the_controllers_shape() {
    let generated =
        generate_sealing_key(4096, Duration::from_secs(10 * 24 * 3600), "sealed-secret").unwrap();
    let pem_block = x509_parser::pem::parse_x509_pem(generated.certificate_pem.as_bytes())
        .unwrap()
        .1;
    let (_, cert) = X509Certificate::from_der(&pem_block.contents).unwrap();
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.encipher_only());
    assert!(!usage.key_encipherment() && !usage.digital_signature());
    assert!(cert.basic_constraints().unwrap().unwrap().value.ca);
    assert_eq!(cert.subject().to_string(), "CN=sealed-secret");
    assert_eq!(cert.subject(), cert.issuer());
    assert!(cert.raw_serial().len() <= 16 && cert.raw_serial().len() >= 8);
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert_eq!(lifetime, 10 * 24 * 3600);
    let sealing = SealingCertificate::from_pem(generated.certificate_pem.as_bytes()).unwrap();
    assert_eq!(sealing.key_size_bits(), 4096);
    let mut ring = PrivateKeyRing::new();
    ring.add_from_bytes(generated.private_key_pem.as_bytes(), "gen")
        .unwrap();
    assert_eq!(
        ring.iter().next().unwrap().public_key_der(),
        sealing.public_key_der()
    );
    assert!(generate_sealing_key(1024, Duration::from_secs(1), "").is_err());
    assert!(!format!("{generated:?}").contains("PRIVATE KEY"));
}
