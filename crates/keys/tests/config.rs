//! `.sops.yaml` creation rules, checked against the config files in the shared sops vectors.

use crate::common;

use std::path::Path;

use signet_keys::{Error, KeySpec, MasterKey, SopsConfig, find_config_file};
use signet_sops::rules::EncryptionRule;

const FLUX_AGE: &str = "age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29";

#[test]
fn flux_config_first_match_wins_with_anchors() {
    let dir = common::flux_sops();
    let config = SopsConfig::load(&dir.join(".sops.yaml")).unwrap();
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    assert_eq!(config.stores.yaml_indent, Some(2));
    assert_eq!(config.stores.json_indent, Some(2));

    let rule = config
        .creation_rule_for(&dir.join("algorithms/age.yaml"))
        .unwrap()
        .unwrap();
    assert_eq!(rule.index, 2);
    assert_eq!(
        rule.encryption_rule,
        Some(EncryptionRule::EncryptedRegex("^(data|stringData)$".into()))
    );
    assert_eq!(rule.key_groups.len(), 1);
    assert_eq!(rule.key_groups[0][0].name(), FLUX_AGE);

    let rule = config
        .creation_rule_for(&dir.join("pgp.yaml"))
        .unwrap()
        .unwrap();
    assert_eq!(rule.index, 0);
    assert!(
        matches!(&rule.key_groups[0][0], KeySpec::Pgp(fp) if fp == "35C1A64CD7FC0AB6EB66756B2445463C3234ECE1")
    );

    let rule = config
        .creation_rule_for(&dir.join("x/secret.json.yaml"))
        .unwrap()
        .unwrap();
    assert_eq!(rule.index, 1);
    assert_eq!(
        rule.encryption_rule,
        Some(EncryptionRule::EncryptedRegex(".*".into()))
    );

    let rule = config
        .creation_rule_for(&dir.join("envs/env.env"))
        .unwrap()
        .unwrap();
    assert_eq!((rule.index, rule.encryption_rule.clone()), (3, None));

    // No path_regex: the fallback rule with two key groups.
    let rule = config
        .creation_rule_for(&dir.join("other.bin"))
        .unwrap()
        .unwrap();
    assert_eq!(rule.index, 4);
    assert_eq!(rule.key_groups.len(), 2);
    assert_eq!(rule.key_groups[0][0].name(), FLUX_AGE);
    assert!(matches!(rule.key_groups[1][0], KeySpec::Pgp(_)));
}

#[test]
fn getsops_configs_parse() {
    let root = common::vectors().join("getsops-sops");
    let config = SopsConfig::load(&root.join(".sops.yaml")).unwrap();
    let rule = config
        .creation_rule_for(&root.join("anything.yaml"))
        .unwrap()
        .unwrap();
    let names: Vec<String> = rule.key_groups[0].iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4",
            "D7229043384BCC60326C6FB9D8720D957C3D3074"
        ]
    );

    let functional = root.join("functional-tests");
    let config = SopsConfig::load(&functional.join(".sops.yaml")).unwrap();
    let rule = config
        .creation_rule_for(&functional.join("test_roundtrip_keygroups.yaml"))
        .unwrap()
        .unwrap();
    assert_eq!(rule.key_groups.len(), 2);
    // `key_groups: []` falls back to the flat fields (none here): one empty group.
    let rule = config
        .creation_rule_for(&functional.join("test_zero_keygroups.yaml"))
        .unwrap()
        .unwrap();
    assert_eq!(rule.key_groups, vec![Vec::<KeySpec>::new()]);
    let rule = config
        .creation_rule_for(&functional.join("test_empty_keygroup.yaml"))
        .unwrap()
        .unwrap();
    assert_eq!(rule.key_groups, vec![Vec::<KeySpec>::new()]);
}

#[test]
fn path_is_matched_relative_to_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join(".sops.yaml");
    let text = format!(
        "creation_rules:\n  - path_regex: ^secrets/\n    age: {FLUX_AGE}\n    mac_only_encrypted: true\n    shamir_threshold: 0\n"
    );
    std::fs::write(&config_path, text).unwrap();
    let config = SopsConfig::load(&config_path).unwrap();
    let rule = config
        .creation_rule_for(&dir.path().join("secrets/db.yaml"))
        .unwrap()
        .unwrap();
    assert!(rule.mac_only_encrypted);
    assert_eq!(rule.shamir_threshold, None);
    assert_eq!(
        config.match_path(&dir.path().join("secrets/x/../db.yaml")),
        "secrets/db.yaml"
    );
    // A file outside the config directory is matched by its absolute path, which does not start
    // with "secrets/": no rule, and the error names the config.
    let err = config
        .creation_rule_for(Path::new("/elsewhere/secrets/db.yaml"))
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingRule { .. }));
    assert!(err.to_string().contains(".sops.yaml"), "{err}");
}

#[test]
fn lists_comma_strings_key_groups_kms_and_vault() {
    let text = format!(
        r#"
stores:
  yaml:
    indent: 4
creation_rules:
  - path_regex: list\.yaml$
    age:
      - {FLUX_AGE}
    hc_vault_transit_uri: "http://127.0.0.1:8200/v1/sops/keys/firstkey"
    kms: "arn:aws:kms:us-east-1:1:key/a+arn:aws:iam::1:role/r"
    aws_profile: prod
    some_future_field: ignored
  - path_regex: groups\.yaml$
    shamir_threshold: 2
    key_groups:
      - age: ["{FLUX_AGE}, {FLUX_AGE}"]
        kms:
          - arn: arn:aws:kms:eu-west-1:1:key/b
            role: arn:aws:iam::1:role/x
            context:
              app: web
              env: prod
            aws_profile: p2
      - hc_vault:
          - https://vault.example.com:8200/v1/transit/keys/k
        merge:
          - age: ["{FLUX_AGE}"]
  - path_regex: bad\.yaml$
    encrypted_regex: a
    unencrypted_suffix: b
  - path_regex: typo\.yaml$
    age: not-a-recipient
"#
    );
    let config = SopsConfig::parse(&text, Path::new("/repo/.sops.yaml")).unwrap();
    assert_eq!(config.stores.yaml_indent, Some(4));
    assert_eq!(
        config.warnings(),
        ["creation_rules[0]: unknown field \"some_future_field\" ignored"]
    );

    let rule = config
        .creation_rule_for(Path::new("/repo/list.yaml"))
        .unwrap()
        .unwrap();
    let kinds: Vec<&str> = rule.key_groups[0]
        .iter()
        .map(|k| k.key_type().identifier())
        .collect();
    assert_eq!(kinds, ["age", "kms", "hc_vault"]);
    let KeySpec::Kms(kms) = &rule.key_groups[0][1] else {
        panic!()
    };
    assert_eq!(kms.role.as_deref(), Some("arn:aws:iam::1:role/r"));
    assert_eq!(kms.aws_profile, "prod");
    let KeySpec::HcVault(vault) = &rule.key_groups[0][2] else {
        panic!()
    };
    assert_eq!(
        (vault.engine_path.as_str(), vault.key_name.as_str()),
        ("sops", "firstkey")
    );

    let rule = config
        .creation_rule_for(Path::new("/repo/groups.yaml"))
        .unwrap()
        .unwrap();
    assert_eq!(rule.shamir_threshold, Some(2));
    assert_eq!(rule.key_groups.len(), 2);
    // Duplicates within a group are dropped, like sops.
    assert_eq!(rule.key_groups[0].len(), 2);
    let KeySpec::Kms(kms) = &rule.key_groups[0][1] else {
        panic!()
    };
    assert_eq!(
        kms.context,
        vec![("app".into(), "web".into()), ("env".into(), "prod".into())]
    );
    assert_eq!(kms.aws_profile, "p2");
    let kinds: Vec<&str> = rule.key_groups[1]
        .iter()
        .map(|k| k.key_type().identifier())
        .collect();
    assert_eq!(kinds, ["age", "hc_vault"], "merged keys come first");

    let err = config
        .creation_rule_for(Path::new("/repo/bad.yaml"))
        .unwrap_err();
    assert!(matches!(err, Error::Config { rule: Some(2), .. }), "{err}");
    let err = config
        .creation_rule_for(Path::new("/repo/typo.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("creation_rules[3]") && err.contains("/repo/.sops.yaml"),
        "{err}"
    );
}

#[test]
fn config_without_creation_rules_is_treated_as_absent_and_bad_yaml_names_the_file() {
    let config = SopsConfig::parse(
        "stores:\n  json:\n    indent: 4\n",
        Path::new("/r/.sops.yaml"),
    )
    .unwrap();
    assert!(
        config
            .creation_rule_for(Path::new("/r/a.yaml"))
            .unwrap()
            .is_none()
    );
    assert_eq!(config.stores.json_indent, Some(4));
    let err = SopsConfig::parse("creation_rules: [\n", Path::new("/r/.sops.yaml")).unwrap_err();
    assert!(err.to_string().contains("/r/.sops.yaml"), "{err}");
}

#[test]
fn lookup_walks_up_and_warns_about_sops_yml() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(dir.path().join("a/.sops.yml"), "creation_rules: []\n").unwrap();
    let lookup = find_config_file(&deep);
    assert!(
        lookup
            .warning
            .as_deref()
            .unwrap_or("")
            .contains(".sops.yml")
    );
    std::fs::write(dir.path().join(".sops.yaml"), "creation_rules: []\n").unwrap();
    let lookup = find_config_file(&deep);
    assert_eq!(
        lookup.path.as_deref(),
        Some(dir.path().join(".sops.yaml").as_path())
    );
    assert!(lookup.warning.unwrap().contains("using"));
}

/// `signet git setup` turns these into `.gitattributes` patterns: every rule's, in order.
#[test]
fn path_regexes_lists_every_rule_in_order() {
    let text = "creation_rules:\n  - path_regex: \\.enc\\.yaml$\n    age: a\n  - age: b\n  - path_regex: ''\n    age: c\n";
    let config = SopsConfig::parse(text, Path::new("/r/.sops.yaml")).unwrap();
    assert_eq!(
        config.path_regexes(),
        [Some(r"\.enc\.yaml$"), None, Some("")]
    );
    let none = SopsConfig::parse("stores: {}\n", Path::new("/r/.sops.yaml")).unwrap();
    assert!(none.path_regexes().is_empty());
}
