//! Every upstream program the suites use is installed (by `scripts/bootstrap`) and runs.
//! A missing one fails here with the bootstrap command that installs it.

use std::process::Command;

use signet_testkit::peer_path;

fn version_output(name: &str, args: &[&str]) -> String {
    let path = peer_path(name).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(&path)
        .args(args)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

#[test]
fn sops_is_upstream_3_13_3() {
    let text = version_output("sops", &["--version", "--disable-version-check"]);
    assert!(text.contains("3.13.3"), "{text}");
}

#[test]
fn kubeseal_and_the_sealed_secrets_controller_are_v0_40() {
    let text = version_output("kubeseal", &["--version"]);
    assert!(text.contains("v0.40.0"), "{text}");
    let text = version_output("sealed-secrets-controller", &["--version"]);
    assert!(text.contains("v0.40.0"), "{text}");
}

#[test]
fn go_age_is_installed() {
    let text = version_output("age", &["--version"]);
    let version = text.trim().trim_start_matches('v');
    assert!(
        version
            .split('.')
            .take(3)
            .all(|part| part.parse::<u32>().is_ok()),
        "age --version should print a version, printed: {text}"
    );
    peer_path("age-keygen").unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn openbao_moto_and_the_apiserver_harness_are_installed() {
    let text = version_output("bao", &["version"]);
    assert!(text.contains("OpenBao"), "{text}");
    peer_path("moto_server").unwrap_or_else(|e| panic!("{e}"));
    peer_path("signet-apiserver").unwrap_or_else(|e| panic!("{e}"));
}
