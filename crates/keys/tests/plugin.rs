//! Plugin recipients and identities go through age's plugin protocol: a tiny test plugin
//! (`age-plugin-signettest`, Python, "wraps" by passing the file key through) is put on `PATH`
//! for a child run of this test, since the process environment cannot be changed safely here.

use std::process::Command;
use std::sync::Arc;

use signet_keys::{AgeRecipient, Environment, Keyring, NoInteraction};
use signet_sops::metadata::{AgeEntry, MasterKeyEntry};

const PLUGIN: &str = r#"#!/usr/bin/env python3
import base64, sys

def b64d(s):
    return base64.b64decode(s + "=" * (-len(s) % 4))

def b64e(b):
    return base64.b64encode(b).decode().rstrip("=")

def read_stanza():
    line = sys.stdin.readline()
    if not line:
        return None, None
    parts = line[3:].rstrip("\n").split(" ")
    body = b""
    while True:
        chunk = sys.stdin.readline().rstrip("\n")
        body += b64d(chunk) if chunk else b""
        if len(chunk) < 64:
            return parts, body

def write_stanza(parts, body):
    enc = b64e(body)
    lines = [enc[i:i + 64] for i in range(0, len(enc), 64)]
    if not lines or len(lines[-1]) == 64:
        lines.append("")
    sys.stdout.write("-> " + " ".join(parts) + "\n" + "\n".join(lines) + "\n")
    sys.stdout.flush()

def phase_one():
    commands = []
    while True:
        parts, body = read_stanza()
        if parts is None or parts[0] == "done":
            return commands
        commands.append((parts, body))

mode = sys.argv[1].split("=", 1)[1]
commands = phase_one()
if mode == "recipient-v1":
    keys = [body for parts, body in commands if parts[0] == "wrap-file-key"]
    for index, key in enumerate(keys):
        write_stanza(["recipient-stanza", str(index), "signettest", "passthrough"], key)
        read_stanza()
elif mode == "identity-v1":
    for parts, body in commands:
        if parts[0] == "recipient-stanza" and parts[2] == "signettest":
            write_stanza(["file-key", parts[1]], body)
            read_stanza()
write_stanza(["done"], b"")
"#;

fn bech32(hrp: &str, data: &[u8]) -> String {
    bech32::encode::<bech32::Bech32>(bech32::Hrp::parse(hrp).unwrap(), data).unwrap()
}

fn child() {
    let recipient = bech32("age1signettest", &[1u8; 16]);
    let identity = bech32("AGE-PLUGIN-SIGNETTEST-", &[2u8; 16]).to_uppercase();
    let secret = [42u8; 32];
    let enc = AgeRecipient::parse(&recipient)
        .unwrap()
        .encrypt_armored(&secret)
        .unwrap();
    assert!(enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));

    let env = Environment::from_vars([("SOPS_AGE_KEY", identity)]);
    let ring = Keyring::from_environment(&env, Arc::new(NoInteraction));
    let entry = MasterKeyEntry::Age(AgeEntry { recipient, enc });
    let got = signet_keys::block_on(ring.unwrap_entry(&entry))
        .unwrap()
        .expect("plugin identity matches");
    assert_eq!(got.as_slice(), &secret);
}

#[test]
fn plugin_recipient_and_identity_round_trip() {
    if std::env::var_os("SIGNET_KEYS_PLUGIN_DIR").is_some() {
        child();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("age-plugin-signettest");
    std::fs::write(&plugin, PLUGIN).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // This test's name in the binary: its module path, less the crate's name, and its own.
    let name = match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::plugin_recipient_and_identity_round_trip"),
        None => "plugin_recipient_and_identity_round_trip".to_owned(),
    };
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--nocapture"])
        .env("PATH", path)
        .env("SIGNET_KEYS_PLUGIN_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
