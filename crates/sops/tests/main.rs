//! The integration suites of `signet-sops`, one module each, in one test binary. Run one suite by
//! its module path: `cargo test -p signet-sops --test integration yaml_vectors::`.

mod common;
mod engine;
mod robustness;
mod shamir_interop;
mod vectors;
mod yaml_corpus;
mod yaml_engine_interop;
mod yaml_onepass;
mod yaml_roundtrip;
mod yaml_sops_interop;
mod yaml_support;
mod yaml_vectors;
