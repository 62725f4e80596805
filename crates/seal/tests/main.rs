//! The integration suites of `signet-seal`, one module each, in one test binary. Run one suite by
//! its module path: `cargo test -p signet-seal --test integration envelope::`.

mod convert;
mod envelope;
mod kat;
mod keys_and_certs;
mod untrusted_input;
