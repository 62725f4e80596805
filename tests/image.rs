//! The controller's container image as the suites use it: the OCI archive `scripts/build-image`
//! writes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::sandbox::workspace_root;

/// Names an image archive to use instead of building one (e.g. one CI built earlier).
pub const ARCHIVE_ENV: &str = "SIGNET_IMAGE_ARCHIVE";

/// The controller image archive: `$SIGNET_IMAGE_ARCHIVE` when set, else `scripts/build-image`
/// into `<cargo target dir>/signet-image/signet-controller.tar`, once per test process (cargo
/// rebuilds the binary only when a source changed; the archive is rewritten from it, identical
/// when nothing changed). Panics with the build's failure.
pub fn controller_archive() -> PathBuf {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE
        .get_or_init(|| {
            if let Some(path) = std::env::var_os(ARCHIVE_ENV).filter(|p| !p.is_empty()) {
                let path = PathBuf::from(path);
                assert!(
                    path.is_file(),
                    "{ARCHIVE_ENV}={} is not a file",
                    path.display()
                );
                return path;
            }
            let root = workspace_root();
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            let out = target.join("signet-image/signet-controller.tar");
            let status = Command::new(root.join("scripts/build-image"))
                .arg(&out)
                .current_dir(&root)
                .status()
                .unwrap_or_else(|e| panic!("running scripts/build-image: {e}"));
            assert!(
                status.success(),
                "scripts/build-image {} failed",
                out.display()
            );
            out
        })
        .clone()
}
