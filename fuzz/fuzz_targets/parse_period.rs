//! The controller's period flags (`--key-renew-period`, `--resync-period`, …): `0` or numbers with
//! units `d`, `h`, `m`, `s`, `ms` run together. Needs `--features controller` (links the controller).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = signet_controller::config::parse_period(text);
});
