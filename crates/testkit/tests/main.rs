//! The integration suites of `signet-testkit`, one module each, in one test binary. Run one suite by
//! its module path: `cargo test -p signet-testkit --test integration upstream_peers::`.

mod dev_cluster;
mod upstream_peers;
