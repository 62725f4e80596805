//! The `spec.template.data` renderer (Go text/template with sprig functions) over fixed values.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

fuzz_target!(|data: &[u8]| {
    let Ok(template) = std::str::from_utf8(data) else {
        return;
    };
    let values: BTreeMap<String, Zeroizing<Vec<u8>>> = [
        ("user", &b"admin"[..]),
        ("tls.crt", b"-----BEGIN CERTIFICATE-----"),
        ("empty", b""),
        ("bin\u{e9}", b"\xff\x00"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Zeroizing::new(v.to_vec())))
    .collect();
    if let Ok(out) = signet_seal::template::render("item", template, &values)
        && !template.contains("{{")
    {
        assert_eq!(
            out.as_slice(),
            template.as_bytes(),
            "literal text must be copied"
        );
    }
});
