//! Where the upstream programs live: `$SIGNET_PEER_BIN`, then `~/.cache/signet/bin`, then the
//! moto/OpenBao venv, then `PATH`.

use std::path::{Path, PathBuf};

use crate::Error;

/// The directories searched for peer programs, in order.
pub fn peer_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("SIGNET_PEER_BIN").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    let cache = std::env::var_os("SIGNET_CACHE")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/signet")));
    if let Some(cache) = cache {
        dirs.push(cache.join("bin"));
        dirs.push(cache.join("venv/bin"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// The `scripts/bootstrap` argument that installs `name`.
fn bootstrap_arg(name: &str) -> &str {
    match name {
        "age" | "age-keygen" => "age",
        "bao" => "openbao",
        "moto_server" => "moto",
        "signet-apiserver" => "apiserver",
        "signet-nodetool" | "signet-nodetool.tar" | "signet-pause.tar" => "node",
        "runc" | "umoci" | "skopeo" | "containerd" | "ctr" => "image-tools",
        other => other,
    }
}

/// Finds an upstream program: `"sops"`, `"kubeseal"`, `"sealed-secrets-controller"`, `"age"`,
/// `"age-keygen"`, `"bao"`, `"moto_server"` or `"signet-apiserver"` (any other name is searched
/// the same way).
///
/// A missing program is an [`Error::PeerMissing`] naming the `scripts/bootstrap` command that
/// installs it; under `CI=true` this function panics with that message instead, so a CI run can
/// never pass by not finding its peers.
pub fn peer_path(name: &str) -> Result<PathBuf, Error> {
    find_peer(name, is_executable)
}

/// Finds a file a peer needs (an image archive such as `"signet-nodetool.tar"`) where
/// [`peer_path`] looks for programs, failing as it does.
pub fn peer_file(name: &str) -> Result<PathBuf, Error> {
    find_peer(name, |p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
}

fn find_peer(name: &str, usable: impl Fn(&Path) -> bool) -> Result<PathBuf, Error> {
    let dirs = peer_dirs();
    for dir in &dirs {
        let candidate = dir.join(name);
        if usable(&candidate) {
            return Ok(candidate);
        }
    }
    let searched = std::env::join_paths(&dirs)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let error = Error::PeerMissing {
        name: name.to_owned(),
        searched,
        bootstrap: bootstrap_arg(name).to_owned(),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and a required peer is missing: {error}");
    }
    Err(error)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_names_match_the_script() {
        assert_eq!(bootstrap_arg("moto_server"), "moto");
        assert_eq!(bootstrap_arg("bao"), "openbao");
        assert_eq!(bootstrap_arg("age-keygen"), "age");
        assert_eq!(bootstrap_arg("runc"), "image-tools");
        assert_eq!(
            bootstrap_arg("sealed-secrets-controller"),
            "sealed-secrets-controller"
        );
    }

    #[test]
    fn a_missing_peer_names_its_bootstrap_command() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            // Under CI the lookup panics by design; the message is checked by the next test.
            return;
        }
        let err = peer_path("signet-no-such-peer-xyz").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("scripts/bootstrap signet-no-such-peer-xyz"),
            "{text}"
        );
    }

    #[test]
    fn installed_peers_are_found() {
        // `sh` is on every PATH this runs on; it proves the PATH fallback works.
        let sh = peer_path("sh").expect("sh on PATH");
        assert!(sh.ends_with("sh"));
    }
}
