//! The Secrets a SopsSecret describes, before any decryption: one named like the object from
//! `spec.template` (the single shape), or one per entry of `spec.secretTemplates` (the shape of
//! sops-secrets-operator: `name`, `labels`, `annotations`, `type`, `immutable`, and its own
//! `data` / `stringData`, which [`super::open`] decrypts).
//!
//! Every Secret is written in the object's own namespace (a template has no namespace field), its
//! name a valid Secret name, unique in the list, at most [`MAX_TEMPLATES`] of them.

use super::open::{MAX_TEMPLATES, TEMPLATES_FIELD};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The non-secret part of one Secret to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretTemplate {
    /// The Secret's name (in the object's namespace).
    pub name: String,
    /// Labels besides the owner label.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// `type`; `None` leaves it to the API server (Opaque).
    pub type_: Option<String>,
    /// `immutable`.
    pub immutable: Option<bool>,
}

/// Which shape the object has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `spec.template` and top-level `data`/`stringData`: one Secret named like the object.
    Single(SecretTemplate),
    /// `spec.secretTemplates`: one Secret per entry, in list order.
    Many(Vec<SecretTemplate>),
}

impl Shape {
    /// The Secrets, in order.
    pub fn templates(&self) -> &[SecretTemplate] {
        match self {
            Shape::Single(one) => std::slice::from_ref(one),
            Shape::Many(many) => many,
        }
    }
}

/// The shape of `spec` for an object named `object_name`. The error says which field is wrong.
pub fn shape_of(spec: &Map<String, Value>, object_name: &str) -> Result<Shape, String> {
    let Some(list) = spec.get(TEMPLATES_FIELD) else {
        let template = spec.get("template");
        let single = SecretTemplate {
            name: object_name.to_owned(),
            labels: string_map(template.and_then(|t| t.pointer("/metadata/labels"))),
            annotations: string_map(template.and_then(|t| t.pointer("/metadata/annotations"))),
            type_: template
                .and_then(|t| t.get("type"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            immutable: template
                .and_then(|t| t.get("immutable"))
                .and_then(Value::as_bool),
        };
        return Ok(Shape::Single(single));
    };
    if spec.contains_key("data") || spec.contains_key("stringData") {
        return Err(format!(
            "spec.{TEMPLATES_FIELD} and spec.data/spec.stringData cannot be combined: move the values into a template"
        ));
    }
    let list = list
        .as_array()
        .ok_or_else(|| format!("spec.{TEMPLATES_FIELD} is not a list"))?;
    if list.is_empty() {
        return Err(format!("spec.{TEMPLATES_FIELD} is empty"));
    }
    if list.len() > MAX_TEMPLATES {
        return Err(format!(
            "spec.{TEMPLATES_FIELD} has {} entries; at most {MAX_TEMPLATES} are accepted",
            list.len()
        ));
    }
    let mut names = BTreeSet::new();
    let mut templates = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let at = format!("spec.{TEMPLATES_FIELD}[{index}]");
        let entry = entry
            .as_object()
            .ok_or_else(|| format!("{at} is not a map"))?;
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}.name is missing"))?;
        if !signet_api::sops_secret::is_dns_subdomain(name) {
            return Err(format!(
                "{at}.name {name:?} is not a Secret name (lowercase letters, digits, '-' and '.', at most 253)"
            ));
        }
        if !names.insert(name) {
            return Err(format!("{at}.name {name:?} is used by an earlier template"));
        }
        templates.push(SecretTemplate {
            name: name.to_owned(),
            labels: string_map(entry.get("labels")),
            annotations: string_map(entry.get("annotations")),
            type_: entry.get("type").and_then(Value::as_str).map(str::to_owned),
            immutable: entry.get("immutable").and_then(Value::as_bool),
        });
    }
    Ok(Shape::Many(templates))
}

/// A string map, or empty (the CRD schema guarantees the type).
fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// Whether `spec.suspend` is true.
pub fn suspended(spec: &Map<String, Value>) -> bool {
    spec.get("suspend").and_then(Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_single_shape_is_named_like_the_object() {
        let shape = shape_of(
            &spec(json!({"template": {"type": "t", "immutable": true,
                "metadata": {"labels": {"a": "b"}}}, "data": {}})),
            "db",
        )
        .unwrap();
        let Shape::Single(one) = shape else {
            panic!("not single")
        };
        assert_eq!(one.name, "db");
        assert_eq!(one.labels["a"], "b");
        assert_eq!(
            (one.type_.as_deref(), one.immutable),
            (Some("t"), Some(true))
        );
    }

    #[test]
    fn templates_follow_the_sops_secrets_operator_shape() {
        let shape = shape_of(
            &spec(json!({"secretTemplates": [
                {"name": "a", "labels": {"x": "y"}, "annotations": {"n": "m"},
                 "type": "kubernetes.io/tls", "data": {}},
                {"name": "b.v2", "immutable": true, "stringData": {}}
            ]})),
            "obj",
        )
        .unwrap();
        let templates = shape.templates();
        assert_eq!(templates.len(), 2);
        assert_eq!(templates[0].name, "a");
        assert_eq!(templates[0].labels["x"], "y");
        assert_eq!(templates[0].annotations["n"], "m");
        assert_eq!(templates[0].type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(
            (templates[1].name.as_str(), templates[1].immutable),
            ("b.v2", Some(true))
        );
    }

    #[test]
    fn names_stay_valid_unique_and_bounded() {
        let refused = |value: Value| shape_of(&spec(value), "obj").unwrap_err();
        assert!(
            refused(json!({"secretTemplates": [{"name": "../x"}]})).contains("not a Secret name")
        );
        assert!(
            refused(json!({"secretTemplates": [{"name": "ns/x"}]})).contains("not a Secret name")
        );
        assert!(refused(json!({"secretTemplates": [{"name": "A"}]})).contains("[0].name"));
        assert!(refused(json!({"secretTemplates": [{}]})).contains("[0].name is missing"));
        assert!(
            refused(json!({"secretTemplates": [{"name": "a"}, {"name": "a"}]}))
                .contains("[1].name \"a\" is used by an earlier template")
        );
        assert!(refused(json!({"secretTemplates": []})).contains("is empty"));
        assert!(refused(json!({"secretTemplates": {}})).contains("not a list"));
        assert!(
            refused(json!({"secretTemplates": [{"name": "a"}], "data": {}}))
                .contains("cannot be combined")
        );
        let many: Vec<Value> = (0..=MAX_TEMPLATES)
            .map(|i| json!({"name": format!("s{i}")}))
            .collect();
        assert!(refused(json!({"secretTemplates": many})).contains("at most 32"));
        let most: Vec<Value> = (0..MAX_TEMPLATES)
            .map(|i| json!({"name": format!("s{i}")}))
            .collect();
        assert_eq!(
            shape_of(&spec(json!({"secretTemplates": most})), "obj")
                .unwrap()
                .templates()
                .len(),
            MAX_TEMPLATES
        );
    }

    #[test]
    fn suspend_is_only_a_true_boolean() {
        assert!(suspended(&spec(json!({"suspend": true}))));
        assert!(!suspended(&spec(json!({"suspend": "true"}))));
        assert!(!suspended(&spec(json!({}))));
    }
}
