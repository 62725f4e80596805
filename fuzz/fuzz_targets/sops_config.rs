//! `.sops.yaml`: parse the config and choose creation rules for a few file names (path_regex
//! compilation, key groups, age/KMS/Vault key lists, Shamir threshold, the encryption rule).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use signet_keys::SopsConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = SopsConfig::parse(text, Path::new("/repo/.sops.yaml")) else {
        return;
    };
    let _ = config.warnings();
    for file in [
        "/repo/secrets/app.enc.yaml",
        "/repo/.env",
        "/repo/a/b/c.json",
        "/elsewhere/x.ini",
    ] {
        if let Ok(Some(rule)) = config.creation_rule_for(Path::new(file))
            && let Some(rule) = &rule.encryption_rule
        {
            let _ = rule.compile();
        }
    }
});
