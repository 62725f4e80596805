//! Key groups mixing age, AWS KMS (moto) and Vault transit (OpenBao), with and without a Shamir
//! threshold, written by signet and read by upstream sops, and the other way round.

use crate::remote;

use remote::*;
use signet_keys::keygen::{IdentityKind, generate, write_identity_file};
use signet_keys::{KeySpec, KmsKey};

struct Setup {
    dir: tempfile::TempDir,
    age_recipient: String,
    arn: String,
    uri: String,
}

impl Setup {
    fn new(label: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(IdentityKind::X25519);
        write_identity_file(&dir.path().join("keys.txt"), &generated).unwrap();
        Setup {
            age_recipient: generated.recipient.clone(),
            arn: create_kms_key(),
            uri: create_transit_key(label),
            dir,
        }
    }

    fn age_vars(&self) -> Vec<(String, String)> {
        with_home(
            self.dir.path(),
            vec![(
                "SOPS_AGE_KEY_FILE".to_owned(),
                self.dir.path().join("keys.txt").display().to_string(),
            )],
        )
    }

    fn all_vars(&self) -> Vec<(String, String)> {
        let mut vars = self.age_vars();
        vars.extend(moto_env());
        vars.extend(bao_env());
        vars
    }

    /// Credentials for everything but age.
    fn remote_vars(&self) -> Vec<(String, String)> {
        let mut vars = with_home(self.dir.path(), moto_env());
        vars.extend(bao_env());
        vars
    }

    fn age_and_kms_vars(&self) -> Vec<(String, String)> {
        let mut vars = self.age_vars();
        vars.extend(moto_env());
        vars
    }

    fn groups(&self) -> Vec<Vec<KeySpec>> {
        vec![
            KeySpec::age_list(&self.age_recipient).unwrap(),
            vec![KeySpec::Kms(KmsKey::from_arn(
                &self.arn,
                &[("team".to_owned(), "payments".to_owned())],
                "",
            ))],
            KeySpec::vault_list(&self.uri).unwrap(),
        ]
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }
}

#[test]
fn signet_threshold_groups_decrypt_with_sops_and_signet() {
    let setup = Setup::new("mixed-signet");
    let encrypted = signet_encrypt(PLAIN, setup.groups(), Some(2), &setup.all_vars());
    assert!(encrypted.contains("shamir_threshold: 2"), "{encrypted}");
    setup.write("secret.enc.yaml", &encrypted);

    // Any two groups suffice, for sops and for signet.
    for vars in [
        setup.all_vars(),
        setup.age_and_kms_vars(),
        setup.remote_vars(),
    ] {
        let plain = sops_ok(setup.dir.path(), &vars, &["decrypt", "secret.enc.yaml"]);
        assert_eq!(plain, PLAIN);
        assert_eq!(signet_decrypt(&encrypted, &vars).unwrap(), PLAIN);
    }

    // One group is not enough: both refuse.
    let (ok, _, _) = run_sops(
        setup.dir.path(),
        &setup.age_vars(),
        &["decrypt", "secret.enc.yaml"],
    );
    assert!(!ok);
    let err = signet_decrypt(&encrypted, &setup.age_vars()).unwrap_err();
    assert!(err.contains("decrypted 1 of the 2"), "{err}");
    assert!(!err.contains("hunter2-canary"));
}

#[test]
fn sops_threshold_groups_decrypt_with_signet() {
    let setup = Setup::new("mixed-sops");
    let config = format!(
        "creation_rules:\n  - path_regex: .*\n    shamir_threshold: 2\n    key_groups:\n      - age:\n          - {}\n      - kms:\n          - arn: {}\n            context:\n              team: payments\n      - hc_vault:\n          - {}\n",
        setup.age_recipient, setup.arn, setup.uri
    );
    setup.write(".sops.yaml", &config);
    setup.write("secret.yaml", PLAIN);
    let encrypted = sops_ok(
        setup.dir.path(),
        &setup.all_vars(),
        &["encrypt", "secret.yaml"],
    );
    assert!(encrypted.contains("shamir_threshold: 2"), "{encrypted}");
    assert!(encrypted.contains("team: payments"), "{encrypted}");
    for vars in [
        setup.all_vars(),
        setup.age_and_kms_vars(),
        setup.remote_vars(),
    ] {
        assert_eq!(signet_decrypt(&encrypted, &vars).unwrap(), PLAIN);
    }
    let err = signet_decrypt(&encrypted, &setup.age_vars()).unwrap_err();
    assert!(err.contains("decrypted 1 of the 2"), "{err}");
}

#[test]
fn one_group_of_age_kms_and_transit_opens_with_any_of_them() {
    let setup = Setup::new("mixed-one");
    let group: Vec<KeySpec> = setup.groups().into_iter().flatten().collect();
    let encrypted = signet_encrypt(PLAIN, vec![group], None, &setup.all_vars());
    setup.write("secret.enc.yaml", &encrypted);
    let bao_only = with_home(setup.dir.path(), bao_env());
    for vars in [setup.age_vars(), bao_only.clone(), setup.remote_vars()] {
        assert_eq!(signet_decrypt(&encrypted, &vars).unwrap(), PLAIN);
        let plain = sops_ok(setup.dir.path(), &vars, &["decrypt", "secret.enc.yaml"]);
        assert_eq!(plain, PLAIN);
    }

    // Nothing usable: the error names every key tried and says why, without secrets.
    let mut nothing = with_home(setup.dir.path(), Vec::new());
    nothing.push((
        "AWS_ENDPOINT_URL".to_owned(),
        "http://127.0.0.1:9".to_owned(),
    ));
    nothing.push(("AWS_ACCESS_KEY_ID".to_owned(), "AKIDEXAMPLE".to_owned()));
    nothing.push((
        "AWS_SECRET_ACCESS_KEY".to_owned(),
        "secret-canary".to_owned(),
    ));
    let err = signet_decrypt(&encrypted, &nothing).unwrap_err();
    assert!(err.contains(&setup.age_recipient), "{err}");
    assert!(err.contains(&setup.arn), "{err}");
    assert!(err.contains(&setup.uri), "{err}");
    assert!(err.contains("VAULT_TOKEN"), "{err}");
    assert!(!err.contains("secret-canary"), "{err}");
}

#[test]
fn signet_follows_the_same_sops_yaml_and_sops_decrypts() {
    let setup = Setup::new("mixed-config");
    let config = format!(
        "creation_rules:\n  - path_regex: flat\\.yaml$\n    age: {age}\n    kms: {arn}\n    hc_vault_transit_uri: {uri}\n  - path_regex: .*\n    shamir_threshold: 2\n    key_groups:\n      - age:\n          - {age}\n      - kms:\n          - arn: {arn}\n            context:\n              team: payments\n      - hc_vault:\n          - {uri}\n",
        age = setup.age_recipient,
        arn = setup.arn,
        uri = setup.uri
    );
    setup.write(".sops.yaml", &config);
    let config = signet_keys::SopsConfig::load(&setup.dir.path().join(".sops.yaml")).unwrap();

    let flat = config
        .creation_rule_for(std::path::Path::new("flat.yaml"))
        .unwrap()
        .unwrap();
    assert_eq!(flat.key_groups.len(), 1);
    assert_eq!(flat.key_groups[0].len(), 3);
    let encrypted = signet_encrypt(PLAIN, flat.key_groups, None, &setup.all_vars());
    setup.write("flat.enc.yaml", &encrypted);
    let bao_only = with_home(setup.dir.path(), bao_env());
    assert_eq!(
        sops_ok(setup.dir.path(), &bao_only, &["decrypt", "flat.enc.yaml"]),
        PLAIN
    );

    let grouped = config
        .creation_rule_for(std::path::Path::new("grouped.yaml"))
        .unwrap()
        .unwrap();
    assert_eq!(grouped.key_groups.len(), 3);
    let encrypted = signet_encrypt(
        PLAIN,
        grouped.key_groups,
        grouped.shamir_threshold,
        &setup.all_vars(),
    );
    assert!(encrypted.contains("shamir_threshold: 2"), "{encrypted}");
    assert!(encrypted.contains("team: payments"), "{encrypted}");
    setup.write("grouped.enc.yaml", &encrypted);
    assert_eq!(
        sops_ok(
            setup.dir.path(),
            &setup.remote_vars(),
            &["decrypt", "grouped.enc.yaml"]
        ),
        PLAIN
    );
}
