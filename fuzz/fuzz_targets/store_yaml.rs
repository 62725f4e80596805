//! The yaml store on arbitrary bytes: parse, emit, and re-read what was emitted. A file Signet wrote
//! must read back to the same data (see `signet_fuzz::store_roundtrip`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| signet_fuzz::store_roundtrip(signet_sops::Format::Yaml, data));
