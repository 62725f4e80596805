//! Identity discovery follows sops: every source is read, problems are kept as notices and
//! repeated in the final error, `SOPS_AGE_KEY_CMD` runs without a shell and sees
//! `SOPS_AGE_RECIPIENT`, and the default key file sits under `$XDG_CONFIG_HOME` or
//! `~/.config`.

use std::path::Path;
use std::sync::Arc;

use signet_keys::keygen::{GeneratedIdentity, IdentityKind, generate, identity_file_contents};
use signet_keys::{
    AgeRecipient, Environment, Error, KeySpec, Keyring, NoInteraction, Notice, wrap_data_key,
};
use signet_sops::DataKey;
use signet_sops::metadata::Metadata;

fn write_key(path: &Path, id: &GeneratedIdentity, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, identity_file_contents(id).as_bytes()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn ring(vars: &[(&str, String)]) -> Keyring {
    Keyring::from_environment(
        &Environment::from_vars(vars.iter().cloned()),
        Arc::new(NoInteraction),
    )
}

/// Metadata with one group holding one entry per recipient.
fn metadata_for(recipients: &[&str], key: &DataKey) -> Metadata {
    let group: Vec<KeySpec> = recipients
        .iter()
        .map(|r| KeySpec::Age(AgeRecipient::parse(r).unwrap()))
        .collect();
    Metadata {
        key_groups: wrap_data_key(key, &[group], None).unwrap(),
        ..Default::default()
    }
}

#[test]
fn default_key_file_under_xdg_config_home_then_home_config() {
    let dir = tempfile::tempdir().unwrap();
    let key = DataKey::generate();
    let id = generate(IdentityKind::X25519);
    let meta = metadata_for(&[&id.recipient], &key);

    let xdg = dir.path().join("xdg");
    write_key(&xdg.join("sops/age/keys.txt"), &id, 0o600);
    let found = ring(&[
        ("HOME", dir.path().join("home").display().to_string()),
        ("XDG_CONFIG_HOME", xdg.display().to_string()),
    ]);
    assert_eq!(
        signet_keys::unwrap_data_key(&meta, &found)
            .unwrap()
            .as_bytes(),
        key.as_bytes()
    );
    assert!(found.notices().is_empty(), "{:?}", found.notices());

    let home = dir.path().join("home2");
    write_key(&home.join(".config/sops/age/keys.txt"), &id, 0o600);
    let found = ring(&[("HOME", home.display().to_string())]);
    assert_eq!(
        signet_keys::unwrap_data_key(&meta, &found)
            .unwrap()
            .as_bytes(),
        key.as_bytes()
    );

    // XDG set elsewhere: ~/.config is not consulted.
    let found = ring(&[
        ("HOME", home.display().to_string()),
        (
            "XDG_CONFIG_HOME",
            dir.path().join("empty").display().to_string(),
        ),
    ]);
    assert!(matches!(
        signet_keys::unwrap_data_key(&meta, &found),
        Err(Error::NoIdentityMatched { .. })
    ));
}

#[test]
fn sops_age_key_inline_and_file_and_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = DataKey::generate();
    let a = generate(IdentityKind::X25519);
    let b = generate(IdentityKind::Hybrid);
    let c = generate(IdentityKind::X25519);
    let meta_b = metadata_for(&[&b.recipient], &key);
    let meta_c = metadata_for(&[&c.recipient], &key);

    let c_file = dir.path().join("c.txt");
    write_key(&c_file, &c, 0o600);
    let inline = format!("{} {}", a.identity.as_str(), b.identity.as_str());
    let found = ring(&[
        ("HOME", dir.path().display().to_string()),
        ("SOPS_AGE_KEY", inline),
        ("SOPS_AGE_KEY_FILE", c_file.display().to_string()),
    ]);
    assert_eq!(found.age_identity_count(), 3);
    assert_eq!(
        signet_keys::unwrap_data_key(&meta_b, &found)
            .unwrap()
            .as_bytes(),
        key.as_bytes()
    );
    assert_eq!(
        signet_keys::unwrap_data_key(&meta_c, &found)
            .unwrap()
            .as_bytes(),
        key.as_bytes()
    );

    let missing = dir.path().join("nope.txt");
    let found = ring(&[
        ("HOME", dir.path().display().to_string()),
        ("SOPS_AGE_KEY_FILE", missing.display().to_string()),
    ]);
    let notice = found
        .notices()
        .first()
        .expect("a notice for the missing file")
        .to_string();
    assert!(
        notice.contains("nope.txt") && notice.contains("SOPS_AGE_KEY_FILE"),
        "{notice}"
    );
    let err = signet_keys::unwrap_data_key(&meta_c, &found)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope.txt") && err.contains(&c.recipient),
        "{err}"
    );
    assert!(!err.contains("AGE-SECRET-KEY"), "{err}");
}

#[test]
fn group_readable_key_file_gives_a_permissions_notice() {
    let dir = tempfile::tempdir().unwrap();
    let id = generate(IdentityKind::X25519);
    let file = dir.path().join("keys.txt");
    write_key(&file, &id, 0o644);
    let found = ring(&[
        ("HOME", dir.path().display().to_string()),
        ("SOPS_AGE_KEY_FILE", file.display().to_string()),
    ]);
    assert!(
        found
            .notices()
            .iter()
            .any(|n| matches!(n, Notice::InsecurePermissions { path, .. } if path == &file)),
        "{:?}",
        found.notices()
    );
    assert_eq!(found.age_identity_count(), 1, "still usable");
}

#[test]
fn key_cmd_runs_without_shell_and_sees_the_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let key = DataKey::generate();
    let id = generate(IdentityKind::X25519);
    let meta = metadata_for(&[&id.recipient], &key);
    let file = dir.path().join("k.txt");
    write_key(&file, &id, 0o600);
    let log = dir.path().join("recipient.log");
    let script = dir.path().join("print-key.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$SOPS_AGE_RECIPIENT\" >> '{}'\ncat \"$1\"\n",
            log.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let found = ring(&[
        ("HOME", dir.path().display().to_string()),
        ("PATH", "/usr/bin:/bin".to_owned()),
        (
            "SOPS_AGE_KEY_CMD",
            format!("'{}' '{}'", script.display(), file.display()),
        ),
    ]);
    assert_eq!(
        signet_keys::unwrap_data_key(&meta, &found)
            .unwrap()
            .as_bytes(),
        key.as_bytes()
    );
    // Cached per recipient: a second unwrap does not run the command again.
    signet_keys::unwrap_data_key(&meta, &found).unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("{}\n", id.recipient)
    );

    // A failing command is reported when nothing else matched.
    let found = ring(&[
        ("HOME", dir.path().display().to_string()),
        ("PATH", "/usr/bin:/bin".to_owned()),
        ("SOPS_AGE_KEY_CMD", "false".to_owned()),
    ]);
    let err = signet_keys::unwrap_data_key(&meta, &found)
        .unwrap_err()
        .to_string();
    assert!(err.contains("false") || err.contains("command"), "{err}");
}

#[test]
fn default_ssh_key_in_home_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let ssh = dir.path().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "t", "-f"])
        .arg(ssh.join("id_ed25519"))
        .status()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(status.success());
    let public = std::fs::read_to_string(ssh.join("id_ed25519.pub")).unwrap();
    let recipient = public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let key = DataKey::generate();
    let meta = metadata_for(&[&recipient], &key);
    let found = ring(&[("HOME", dir.path().display().to_string())]);
    assert_eq!(found.age_recipients(), vec![recipient.clone()]);
    assert_eq!(
        signet_keys::unwrap_data_key(&meta, &found)
            .unwrap()
            .as_bytes(),
        key.as_bytes()
    );
}

#[test]
fn malformed_key_file_is_a_notice_naming_the_file_and_line_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.txt");
    std::fs::write(&file, "# comment\nAGE-SECRET-KEY-1NOTAKEYATALL\n").unwrap();
    let found = ring(&[
        ("HOME", dir.path().display().to_string()),
        ("SOPS_AGE_KEY_FILE", file.display().to_string()),
    ]);
    let notices: Vec<String> = found.notices().iter().map(ToString::to_string).collect();
    assert!(
        notices
            .iter()
            .any(|n| n.contains("bad.txt") && n.contains("line 2")),
        "{notices:?}"
    );
    assert!(
        !notices.iter().any(|n| n.contains("NOTAKEY")),
        "{notices:?}"
    );
}

#[test]
fn nothing_found_lists_where_we_looked() {
    let dir = tempfile::tempdir().unwrap();
    let key = DataKey::generate();
    let id = generate(IdentityKind::X25519);
    let meta = metadata_for(&[&id.recipient], &key);
    let found = ring(&[("HOME", dir.path().display().to_string())]);
    assert!(found.is_empty());
    let err = signet_keys::unwrap_data_key(&meta, &found)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SOPS_AGE_KEY_FILE") && err.contains("sops/age/keys.txt"),
        "{err}"
    );
}

#[test]
fn decryption_order_from_the_environment() {
    let found = ring(&[("SOPS_DECRYPTION_ORDER", "kms,age".to_owned())]);
    assert_eq!(found.decryption_order(), ["kms", "age"]);
    assert_eq!(ring(&[]).decryption_order(), ["age", "pgp"]);
}

#[test]
fn plugin_recipients_and_identities_parse_and_a_missing_plugin_is_a_clear_error() {
    use bech32::{Bech32, Hrp};
    let recipient =
        bech32::encode::<Bech32>(Hrp::parse("age1signettest").unwrap(), &[7u8; 20]).unwrap();
    let parsed = AgeRecipient::parse(&recipient).unwrap();
    let err = parsed.encrypt_armored(&[0u8; 32]).unwrap_err().to_string();
    assert!(
        err.contains(&recipient) && err.contains("signettest"),
        "{err}"
    );

    let identity =
        bech32::encode::<Bech32>(Hrp::parse("AGE-PLUGIN-SIGNETTEST-").unwrap(), &[9u8; 20])
            .unwrap()
            .to_uppercase();
    let ids = signet_keys::age_key::parse_identities(&identity, "SOPS_AGE_KEY", true).unwrap();
    assert!(matches!(ids[0], signet_keys::AgeIdentity::Plugin(_)));
}
