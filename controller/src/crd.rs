//! What the CustomResourceDefinitions of this controller's kinds share: names, one served and
//! stored version, a status subresource. Each kind's folder holds its own schema.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;

/// What differs between the CustomResourceDefinitions of this controller's kinds (all namespaced
/// unless `plural` says otherwise through [`custom_resource_definition_scoped`], one served and
/// stored version, a status subresource).
pub struct CrdNames<'a> {
    /// API group.
    pub group: &'a str,
    /// The one version.
    pub version: &'a str,
    /// Kind.
    pub kind: &'a str,
    /// Plural resource name.
    pub plural: &'a str,
    /// `kubectl` short names.
    pub short_names: &'a [&'a str],
    /// The OpenAPI v3 schema of the whole object.
    pub schema: serde_json::Value,
    /// `additionalPrinterColumns`.
    pub printer_columns: serde_json::Value,
}

/// A namespaced CustomResourceDefinition.
pub fn custom_resource_definition(names: CrdNames<'_>) -> CustomResourceDefinition {
    custom_resource_definition_scoped(names, "Namespaced")
}

/// A CustomResourceDefinition with the given scope (`Namespaced` or `Cluster`).
pub fn custom_resource_definition_scoped(
    names: CrdNames<'_>,
    scope: &str,
) -> CustomResourceDefinition {
    let mut name_block = json!({
        "kind": names.kind,
        "listKind": format!("{}List", names.kind),
        "plural": names.plural,
        "singular": names.kind.to_lowercase(),
    });
    if !names.short_names.is_empty() {
        name_block["shortNames"] = json!(names.short_names);
    }
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{}", names.plural, names.group)},
        "spec": {
            "group": names.group,
            "names": name_block,
            "scope": scope,
            "versions": [{
                "additionalPrinterColumns": names.printer_columns,
                "name": names.version,
                "schema": {"openAPIV3Schema": names.schema},
                "served": true,
                "storage": true,
                "subresources": {"status": {}}
            }]
        }
    });
    // The literals of the callers are valid CRDs; a failure here is a bug caught by unit tests.
    serde_json::from_value(crd).unwrap_or_default()
}
