//! Fields of cluster objects the controller reads before any decryption, written by tenants: the
//! `signet.dev/restart` annotation (the workloads to roll out) and a SopsSecret's `spec` (its
//! `secretTemplates`, `template`, `suspend`). Needs `--features controller` (links the controller).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(targets) = signet_controller::restart::parse_targets(text) {
        assert!(targets.len() <= signet_controller::restart::MAX_TARGETS);
        for target in &targets {
            assert!(!target.name.contains('/'));
        }
    }
    if let Ok(serde_json::Value::Object(spec)) = serde_json::from_str(text)
        && let Ok(shape) = signet_controller::sops_secret::templates::shape_of(&spec, "object")
    {
        let templates = shape.templates();
        assert!(!templates.is_empty());
        assert!(templates.len() <= signet_controller::sops_secret::open::MAX_TEMPLATES);
        for template in templates {
            assert!(!template.name.contains('/'));
        }
    }
});
