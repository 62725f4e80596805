//! Every end-to-end suite of the workspace, one module each, in one test binary: a binary per suite
//! linked kube, the AWS SDK and the controller again and again, most of the build time and target
//! size. Run one suite by its module path:
//! `cargo test -p signet-tests --test integration controller_sealed_secrets::`.
//!
//! The suites share this process, so they share what a process holds once: the peers that
//! `signet_testkit` starts on first use (`ApiServer::shared`, `Moto::shared`, `OpenBao::shared`),
//! the log capture of [`signet_tests::logs`] and the image of [`signet_tests::image`]. Every suite
//! works in namespaces, mounts and names of its own; a test that changes something cluster-wide
//! (a CRD, a controller watching every namespace, the status of every ClusterSecretStore) runs on
//! an API server of its own.

mod apiserver_testbed;
mod bad_input;
mod chart;
mod chart_node;
#[path = "chart/support.rs"]
mod chart_support;
mod check;
mod controller_binary;
mod controller_bitnami_crd;
mod controller_bitnami_templates;
mod controller_external_secrets;
mod controller_image;
mod controller_leader_election;
mod controller_sealed_secrets;
mod controller_sops_secrets;
mod git_workflow;
mod keys_inventory;
mod peers_moto;
mod peers_openbao;
mod providers_aws;
mod providers_vault;
mod rekey;
mod restart_support;
mod runbooks;
mod seal_cli;
mod seal_interop;
mod seal_multi_cluster;
mod seal_online_proxy;
#[path = "seal/support.rs"]
mod seal_support;
mod sops_cli;
mod sops_interop;
mod sops_pgp;
mod sops_remote_keys;
mod sops_rotation;

/// The layout itself: one integration-test binary per package, and no suite file left out of it.
mod layout {
    use serde_json::Value;
    use std::path::PathBuf;
    use std::process::Command;

    /// With `autotests = false` cargo builds only the declared test target, so a suite file its
    /// root (`main.rs`) does not declare as a module would silently never run; and a second test
    /// target per package would link kube, the AWS SDK and the controller once more.
    #[test]
    fn each_package_has_one_test_binary_that_declares_every_suite_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .args([
                "metadata",
                "--no-deps",
                "--offline",
                "--format-version",
                "1",
            ])
            .current_dir(signet_tests::sandbox::workspace_root())
            .output()
            .expect("running cargo metadata");
        assert!(
            output.status.success(),
            "cargo metadata: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
        let mut roots = Vec::new();
        for package in metadata["packages"].as_array().expect("packages") {
            let tests: Vec<PathBuf> = package["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .filter(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "test"))
                })
                .filter_map(|t| t["src_path"].as_str().map(PathBuf::from))
                .collect();
            assert!(
                tests.len() <= 1,
                "{} has {} integration-test binaries: {tests:?}",
                package["name"],
                tests.len()
            );
            roots.extend(tests);
        }
        assert!(roots.len() >= 6, "test roots found: {roots:?}");
        for root in roots {
            let dir = root.parent().expect("a test root sits in a directory");
            // The suites are modules of the root; `signet-tests`' helpers are modules of its lib.
            let mut declared = std::fs::read_to_string(&root).expect("reading the test root");
            declared += &std::fs::read_to_string(dir.join("lib.rs")).unwrap_or_default();
            for entry in std::fs::read_dir(dir).expect("reading the tests directory") {
                let path = entry.expect("a directory entry").path();
                let module = if path.extension().is_some_and(|e| e == "rs") {
                    path.file_stem()
                } else if path.join("mod.rs").is_file() {
                    path.file_name()
                } else {
                    continue;
                };
                let module = module.and_then(|m| m.to_str()).unwrap_or_default();
                if module == "main" || module == "lib" {
                    continue;
                }
                assert!(
                    declared.lines().any(|line| {
                        let line = line.trim();
                        line == format!("mod {module};") || line == format!("pub mod {module};")
                    }),
                    "{} is not a module of {}: it would never be built or run",
                    path.display(),
                    root.display()
                );
            }
        }
    }
}
