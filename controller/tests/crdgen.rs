//! `crdgen` prints a CRD whose schema is compatible with the Bitnami SealedSecret CRD (the fixture is
//! the v0.40.0 Helm chart's `crds/bitnami.com_sealedsecrets.yaml`): same names, scope, versions,
//! printer columns and status subresource, and every property of Bitnami's schema present in ours
//! with the same description, type, format, required list, nullability and unknown-field handling.

use serde_json::Value;
use std::process::Command;

fn crdgen_output() -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_crdgen"))
        .output()
        .expect("crdgen runs");
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    serde_saphyr::from_str(&text).expect("crdgen prints YAML")
}

fn bitnami() -> Value {
    let text = include_str!("fixtures/bitnami-sealedsecrets-crd.yaml");
    serde_saphyr::from_str(text).expect("fixture parses")
}

/// Checks that every constraint of `theirs` holds in `ours`, recursively; collects differences.
fn compare(path: &str, theirs: &Value, ours: &Value, problems: &mut Vec<String>) {
    for key in [
        "description",
        "type",
        "format",
        "required",
        "nullable",
        "x-kubernetes-preserve-unknown-fields",
    ] {
        if theirs.get(key) != ours.get(key) {
            problems.push(format!(
                "{path}.{key}: Bitnami {:?}, ours {:?}",
                theirs.get(key),
                ours.get(key)
            ));
        }
    }
    if let Some(items) = theirs.get("items") {
        match ours.get("items") {
            Some(our_items) => compare(&format!("{path}[]"), items, our_items, problems),
            None => problems.push(format!("{path}: no items schema")),
        }
    }
    if let Some(additional) = theirs.get("additionalProperties") {
        match ours.get("additionalProperties") {
            Some(ours) => compare(&format!("{path}{{*}}"), additional, ours, problems),
            None => problems.push(format!("{path}: no additionalProperties")),
        }
    }
    if let Some(properties) = theirs.get("properties").and_then(Value::as_object) {
        for (name, schema) in properties {
            match ours.pointer(&format!("/properties/{name}")) {
                Some(our_schema) => {
                    compare(&format!("{path}.{name}"), schema, our_schema, problems)
                }
                None => problems.push(format!("{path}.{name}: missing")),
            }
        }
    }
}

#[test]
fn crd_schema_is_compatible_with_bitnami() {
    let ours = crdgen_output();
    let theirs = bitnami();
    assert_eq!(ours["metadata"]["name"], theirs["metadata"]["name"]);
    for key in ["group", "names", "scope"] {
        assert_eq!(ours["spec"][key], theirs["spec"][key], "spec.{key}");
    }
    let (our_version, their_version) =
        (&ours["spec"]["versions"][0], &theirs["spec"]["versions"][0]);
    for key in [
        "name",
        "served",
        "storage",
        "subresources",
        "additionalPrinterColumns",
    ] {
        assert_eq!(our_version[key], their_version[key], "versions[0].{key}");
    }
    let mut problems = Vec::new();
    compare(
        "",
        &their_version["schema"]["openAPIV3Schema"],
        &our_version["schema"]["openAPIV3Schema"],
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:#?}");
    // Signet's extra status fields are optional strings.
    let status = &our_version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
    assert_eq!(status["keyFingerprint"]["type"], "string");
    assert_eq!(status["secretResourceVersion"]["type"], "string");
}
