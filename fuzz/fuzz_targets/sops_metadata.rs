//! The `sops` metadata block of a YAML or JSON file (first byte picks the store): read it, write it
//! back and read it again; from then on writing and reading is the identity (the first write may
//! fill in defaults such as `version`). Also the flattened form dotenv and INI files use.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sops::metadata::{Metadata, flatten, unflatten};
use signet_sops::{Format, engine, stores::store_for};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = if selector & 1 == 0 {
        Format::Yaml
    } else {
        Format::Json
    };
    let Ok(tree) = store_for(format).parse(body) else {
        return;
    };
    let Ok(Some(meta)) = engine::metadata_of(&tree) else {
        return;
    };
    let node = meta.to_node();
    let written = Metadata::from_node(&node).expect("written metadata reads back");
    let again = Metadata::from_node(&written.to_node()).expect("written metadata reads back");
    assert_eq!(written, again, "metadata changed on a write/read cycle");
    let flat = flatten(&node, "sops");
    let _ = unflatten(&flat);
});
