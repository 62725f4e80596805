//! Secret <-> SealedSecret mapping.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use signet_api::sealed_secret::{CLUSTER_WIDE_ANNOTATION, NAMESPACE_WIDE_ANNOTATION};
use signet_api::{SealedSecret, Secret};
use signet_seal::convert::{SealOptions, merge_into, seal_secret, unseal_sealed_secret};
use signet_seal::{PrivateKeyRing, Scope, SealError, SealingCertificate};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/seal/kat")
            .join(name),
    )
    .unwrap()
}

fn keys() -> (SealingCertificate, PrivateKeyRing) {
    let mut ring = PrivateKeyRing::new();
    ring.add_from_bytes(&fixture("key.pem"), "key.pem").unwrap();
    (
        SealingCertificate::from_pem(&fixture("cert.pem")).unwrap(),
        ring,
    )
}

const SECRET: &str = r#"
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: prod
  uid: 1234
  resourceVersion: "99"
  creationTimestamp: "2024-01-01T00:00:00Z"
  managedFields: [{manager: kubectl}]
  ownerReferences: [{apiVersion: v1, kind: Pod, name: p, uid: u}]
  labels: {app: db}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"stringData":{"password":"CANARY-last-applied"}}'
    team: storage
type: kubernetes.io/basic-auth
immutable: true
data:
  username: YWRtaW4=
  password: b2xk
stringData:
  password: CANARY-new
"#;

#[test]
fn sealing_maps_fields_like_kubeseal() {
    let (cert, ring) = keys();
    let secret: Secret = serde_saphyr::from_str(SECRET).unwrap();
    let sealed = seal_secret(&secret, &cert, &SealOptions::default()).unwrap();
    let json = serde_json::to_string(&sealed).unwrap();
    assert!(!json.contains("CANARY"), "{json}");
    for gone in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "ownerReferences",
        "last-applied",
    ] {
        assert!(!json.contains(gone), "{gone} in {json}");
    }
    assert_eq!(sealed.kind, "SealedSecret");
    assert_eq!(sealed.api_version, "bitnami.com/v1alpha1");
    assert_eq!(
        sealed.metadata.annotations, None,
        "strict scope has no annotation"
    );
    let template = &sealed.spec.template;
    assert_eq!(template.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(template.immutable, Some(true));
    assert_eq!(template.metadata.annotation("team"), Some("storage"));
    assert_eq!(template.metadata.labels.as_ref().unwrap()["app"], "db");
    assert_eq!(
        sealed.spec.encrypted_data.keys().collect::<Vec<_>>(),
        ["password", "username"]
    );

    let back = unseal_sealed_secret(&sealed, &ring).unwrap();
    let data = back.data.as_ref().unwrap();
    assert_eq!(
        data["password"], "Q0FOQVJZLW5ldw==",
        "stringData wins over data"
    );
    assert_eq!(data["username"], "YWRtaW4=");
    assert_eq!(back.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    assert_eq!(back.immutable, Some(true));
    assert_eq!(back.metadata.name.as_deref(), Some("db"));
    assert_eq!(back.metadata.namespace.as_deref(), Some("prod"));
    assert!(
        !format!("{back:?}").contains("Q0FOQVJZ"),
        "Debug hides values"
    );
}

#[test]
fn scope_annotations_on_both_metadata_blocks_and_binding() {
    let (cert, ring) = keys();
    let secret: Secret = serde_saphyr::from_str(SECRET).unwrap();
    for (scope, annotation) in [
        (Scope::NamespaceWide, Some(NAMESPACE_WIDE_ANNOTATION)),
        (Scope::ClusterWide, Some(CLUSTER_WIDE_ANNOTATION)),
        (Scope::Strict, None),
    ] {
        let sealed = seal_secret(
            &secret,
            &cert,
            &SealOptions {
                scope: Some(scope),
                ..SealOptions::default()
            },
        )
        .unwrap();
        if let Some(a) = annotation {
            assert_eq!(sealed.metadata.annotation(a), Some("true"));
            assert_eq!(sealed.spec.template.metadata.annotation(a), Some("true"));
        }
        let renamed = |ns: &str, name: &str| {
            let mut s = sealed.clone();
            s.metadata.namespace = Some(ns.to_owned());
            s.metadata.name = Some(name.to_owned());
            unseal_sealed_secret(&s, &ring)
        };
        assert_eq!(
            renamed("prod", "other").is_ok(),
            scope != Scope::Strict,
            "{scope} renamed"
        );
        assert_eq!(
            renamed("dev", "db").is_ok(),
            scope == Scope::ClusterWide,
            "{scope} other namespace"
        );
        // Changing the scope annotation changes the label: refused.
        let mut flipped = sealed.clone();
        let other = if scope == Scope::ClusterWide {
            Scope::Strict
        } else {
            Scope::ClusterWide
        };
        other.annotate(&mut flipped.metadata);
        assert!(matches!(
            unseal_sealed_secret(&flipped, &ring),
            Err(SealError::Unseal)
        ));
    }
}

#[test]
fn empty_data_needs_permission_and_names_are_required() {
    let (cert, _) = keys();
    let empty: Secret =
        serde_saphyr::from_str("kind: Secret\nmetadata: {name: e, namespace: n1}\n").unwrap();
    assert!(seal_secret(&empty, &cert, &SealOptions::default()).is_err());
    let sealed = seal_secret(
        &empty,
        &cert,
        &SealOptions {
            allow_empty_data: true,
            ..SealOptions::default()
        },
    )
    .unwrap();
    assert!(sealed.spec.encrypted_data.is_empty());
    let nameless: Secret =
        serde_saphyr::from_str("kind: Secret\nmetadata: {namespace: n1}\nstringData: {a: b}\n")
            .unwrap();
    assert!(seal_secret(&nameless, &cert, &SealOptions::default()).is_err());
    let options = SealOptions {
        default_name: Some("given".into()),
        default_namespace: Some("ns2".into()),
        ..SealOptions::default()
    };
    let nsless: Secret =
        serde_saphyr::from_str("kind: Secret\nmetadata: {}\nstringData: {a: b}\n").unwrap();
    let sealed = seal_secret(&nsless, &cert, &options).unwrap();
    assert_eq!(sealed.metadata.namespace.as_deref(), Some("ns2"));
    assert_eq!(sealed.metadata.name.as_deref(), Some("given"));
    let not_secret: Secret = serde_saphyr::from_str(
        "kind: ConfigMap\nmetadata: {name: c, namespace: n}\ndata: {a: b}\n",
    )
    .unwrap();
    assert!(seal_secret(&not_secret, &cert, &SealOptions::default()).is_err());
}

#[test]
fn templates_render_over_unsealed_values_and_merge_adds_items() {
    let (cert, ring) = keys();
    let secret: Secret = serde_saphyr::from_str("kind: Secret\nmetadata: {name: app, namespace: prod}\nstringData:\n  user: admin\n  tls.crt: CERT\n").unwrap();
    let mut sealed: SealedSecret = seal_secret(&secret, &cert, &SealOptions::default()).unwrap();
    sealed.spec.template.data = Some(
        [(
            "dsn".to_owned(),
            Some(r#"u={{ .user }};c={{ index . "tls.crt" }}"#.to_owned()),
        )]
        .into(),
    );
    let back = unseal_sealed_secret(&sealed, &ring).unwrap();
    assert_eq!(back.data.as_ref().unwrap()["dsn"], "dT1hZG1pbjtjPUNFUlQ=");

    let extra: Secret = serde_saphyr::from_str(
        "kind: Secret\nmetadata: {name: ignored}\nstringData: {user: root, new: v}\n",
    )
    .unwrap();
    merge_into(&mut sealed, &extra, &cert).unwrap();
    let back = unseal_sealed_secret(&sealed, &ring).unwrap();
    let data = back.data.unwrap();
    assert_eq!(data["user"], "cm9vdA==");
    assert_eq!(data["new"], "dg==");
    assert_eq!(data["tls.crt"], "Q0VSVA==");
}

#[test]
fn deprecated_spec_data_still_unseals() {
    let (cert, ring) = keys();
    let inner = r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"old","namespace":"prod"},"data":{"a":"b2xk"}}"#;
    let mut sealed = SealedSecret::new(signet_api::ObjectMeta {
        name: Some("old".into()),
        namespace: Some("prod".into()),
        ..Default::default()
    });
    sealed.spec.data = Some(signet_seal::seal(&cert, b"prod/old", inner.as_bytes()).unwrap());
    sealed.spec.encrypted_data.insert(
        "b".into(),
        signet_seal::seal(&cert, b"prod/old", b"new").unwrap(),
    );
    let back = unseal_sealed_secret(&sealed, &ring).unwrap();
    let data = back.data.unwrap();
    assert_eq!(data["a"], "b2xk");
    assert_eq!(data["b"], "bmV3");
    sealed.metadata.name = Some("renamed".into());
    assert!(matches!(
        unseal_sealed_secret(&sealed, &ring),
        Err(SealError::Unseal)
    ));
}

#[test]
fn input_scope_annotations_choose_the_scope_unless_overridden() {
    let (cert, ring) = keys();
    let secret: Secret = serde_saphyr::from_str(
        "kind: Secret\nmetadata:\n  name: s\n  namespace: prod\n  annotations:\n    sealedsecrets.bitnami.com/cluster-wide: \"true\"\nstringData: {a: b}\n",
    )
    .unwrap();
    let sealed = seal_secret(&secret, &cert, &SealOptions::default()).unwrap();
    assert_eq!(
        sealed.metadata.annotation(CLUSTER_WIDE_ANNOTATION),
        Some("true")
    );
    let mut moved = sealed.clone();
    moved.metadata.namespace = Some("elsewhere".into());
    assert!(unseal_sealed_secret(&moved, &ring).is_ok());
    let strict = seal_secret(
        &secret,
        &cert,
        &SealOptions {
            scope: Some(Scope::Strict),
            ..SealOptions::default()
        },
    )
    .unwrap();
    assert_eq!(strict.metadata.annotations, None);
    assert_eq!(
        strict
            .spec
            .template
            .metadata
            .annotation(CLUSTER_WIDE_ANNOTATION),
        None
    );
}

/// Bitnami v0.37/v0.40 semantics: templates see the other entries' plain text (a sealed value
/// wins a clash), a template never replaces a sealed value of its name, `null` drops an item.
#[test]
fn template_entries_see_plain_siblings_never_shadow_sealed_values_and_null_drops() {
    let (cert, ring) = keys();
    let secret: Secret = serde_saphyr::from_str(
        "kind: Secret\nmetadata: {name: app, namespace: prod}\nstringData:\n  pass: p4ss\n  user: sealed-user\n  tls.key: KEY\n",
    )
    .unwrap();
    let mut sealed: SealedSecret = seal_secret(&secret, &cert, &SealOptions::default()).unwrap();
    sealed.spec.template.data = Some(
        [
            ("host", Some("db.example")),
            ("user", Some("plain-user")),
            ("dsn", Some("{{ .user }}:{{ .pass }}@{{ .host }}")),
            ("pass", Some("{{ .pass | upper }}")),
            ("tls.key", None),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)))
        .collect(),
    );
    let data = unseal_sealed_secret(&sealed, &ring).unwrap().data.unwrap();
    let text = |k: &str| String::from_utf8(STANDARD.decode(&data[k]).unwrap()).unwrap();
    assert_eq!(text("dsn"), "sealed-user:p4ss@db.example");
    assert_eq!(text("host"), "db.example");
    assert_eq!(
        text("pass"),
        "p4ss",
        "a template never replaces a sealed value"
    );
    assert_eq!(text("user"), "sealed-user");
    assert!(!data.contains_key("tls.key"), "null drops the item");
    // The null survives a JSON round trip (what the API server and /v1/rotate hand back).
    let json = serde_json::to_string(&sealed).unwrap();
    assert!(json.contains(r#""tls.key":null"#), "{json}");
    let back: SealedSecret = serde_json::from_str(&json).unwrap();
    assert_eq!(back.spec.template.data, sealed.spec.template.data);
}
