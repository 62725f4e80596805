//! The `signet` CLI with AWS KMS (moto) and Vault transit (OpenBao) master keys, against upstream sops:
//! files either tool encrypts open with the other, and a wrong KMS encryption context is refused.

use signet_tests::sandbox::Sandbox;

fn moto() -> &'static signet_testkit::Moto {
    signet_testkit::Moto::shared().unwrap_or_else(|e| panic!("{e}"))
}

fn openbao() -> &'static signet_testkit::OpenBao {
    signet_testkit::OpenBao::shared().unwrap_or_else(|e| panic!("{e}"))
}

/// A sandbox with the peers' credentials in its environment and a plain file `s.yaml`.
fn sandbox() -> Sandbox {
    let mut sb = Sandbox::new();
    for (k, v) in moto().env().into_iter().chain(openbao().env()) {
        sb.env(&k, v);
    }
    sb.write("s.yaml", "db:\n  password: hunter2\n  port: 5432\n");
    sb
}

/// Both tools decrypt `file` to the same JSON.
fn both_decrypt(sb: &Sandbox, file: &str) {
    let ours = sb.signet(["decrypt", "--output-type", "json", file]).ok();
    let theirs = sb.peer("sops", ["-d", "--output-type", "json", file]).ok();
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs),
        "{file}"
    );
    assert!(String::from_utf8_lossy(&ours).contains("hunter2"));
}

#[test]
fn kms_with_context_both_ways() {
    let sb = sandbox();
    let arn = moto()
        .create_kms_key(None)
        .unwrap_or_else(|e| panic!("{e}"));
    let flags = [
        "--kms",
        arn.as_str(),
        "--encryption-context",
        "app:web,env:prod",
    ];
    let mut args = vec!["encrypt", "--output", "ours.yaml"];
    args.extend(flags);
    args.push("s.yaml");
    sb.signet(&args).ok();
    let mut sops_args = vec!["-e", "--output", "theirs.yaml"];
    sops_args.extend(flags);
    sops_args.push("s.yaml");
    sb.peer("sops", &sops_args).ok();
    for f in ["ours.yaml", "theirs.yaml"] {
        both_decrypt(&sb, f);
    }
    // A changed context no longer opens the data key (KMS binds the ciphertext to it).
    let ours = String::from_utf8(sb.read("ours.yaml")).unwrap();
    assert!(ours.contains("env: prod"), "{ours}");
    sb.write("wrong.yaml", ours.replace("env: prod", "env: dev"));
    let err = sb.signet(["decrypt", "wrong.yaml"]).fails_with(128);
    assert!(err.contains(&arn), "the error names the key: {err}");
    assert!(!err.contains("hunter2"));
}

#[test]
fn vault_transit_both_ways() {
    let sb = sandbox();
    let uri = openbao()
        .create_transit_key("cli")
        .unwrap_or_else(|e| panic!("{e}"));
    sb.signet([
        "encrypt",
        "--hc-vault-transit",
        &uri,
        "--output",
        "ours.yaml",
        "s.yaml",
    ])
    .ok();
    sb.peer(
        "sops",
        [
            "-e",
            "--hc-vault-transit",
            &uri,
            "--output",
            "theirs.yaml",
            "s.yaml",
        ],
    )
    .ok();
    for f in ["ours.yaml", "theirs.yaml"] {
        both_decrypt(&sb, f);
    }
    let ours = String::from_utf8(sb.read("ours.yaml")).unwrap();
    assert!(
        ours.contains("hc_vault:") && ours.contains("vault:v1:"),
        "{ours}"
    );
}
