//! Key and certificate files of `seal`/`unseal`: private keys (PEM PKCS#1/PKCS#8, key-backup
//! manifests) and sealing certificates (PEM).
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use signet_seal::{PrivateKeyRing, SealingCertificate};

fuzz_target!(|data: &[u8]| {
    let mut ring = PrivateKeyRing::new();
    let _ = ring.add_from_bytes(data, "fuzz");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    if let Ok(cert) = SealingCertificate::from_pem_at(data, now) {
        let _ = cert.not_after_unix();
    }
});
