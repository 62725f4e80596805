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
mod controller_binary;
mod controller_bitnami_crd;
mod controller_external_secrets;
mod controller_image;
mod controller_leader_election;
mod controller_sealed_secrets;
mod controller_sops_secrets;
mod peers_moto;
mod peers_openbao;
mod providers_aws;
mod providers_vault;
mod rekey;
mod runbooks;
mod seal_cli;
mod seal_interop;
mod seal_online_proxy;
#[path = "seal/support.rs"]
mod seal_support;
mod sops_cli;
mod sops_interop;
mod sops_remote_keys;
mod sops_rotation;
