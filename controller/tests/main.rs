//! The integration suites of `signet-controller`, one module each, in one test binary (the
//! end-to-end controller suites are in `tests/`, package `signet-tests`). Run one suite by its
//! module path: `cargo test -p signet-controller --test integration crdgen::`.

mod crdgen;
