//! The file-format stores: each turns bytes into a [`crate::tree::Tree`] and back.

pub mod binary;
pub mod dotenv;
pub mod ini;
pub mod json;
pub mod yaml;

use crate::store::{Format, Store};

/// The store for `format`.
///
/// YAML is [`yaml::YamlStore`] with sops' 4-space indent.
pub fn store_for(format: Format) -> Box<dyn Store + Send + Sync> {
    match format {
        Format::Json => Box::new(json::JsonStore),
        Format::Dotenv => Box::new(dotenv::DotenvStore),
        Format::Ini => Box::new(ini::IniStore),
        Format::Binary => Box::new(binary::BinaryStore),
        Format::Yaml => Box::new(yaml::YamlStore::default()),
    }
}

/// Whether `text` is a comment sops encrypted as an item of a list (`ENC[…,type:comment]`): sops
/// writes YAML list comments that way, in YAML and in every format it converts YAML to.
pub(crate) fn is_sops_comment(text: &str) -> bool {
    text.starts_with("ENC[AES256_GCM,") && text.ends_with(",type:comment]")
}

#[cfg(test)]
mod tests {
    use super::store_for;
    use crate::store::Format;
    use crate::tree::{Node, Scalar, Value};

    /// A list holding a string, an int, a map, a comment and a list, as the YAML store reads it.
    fn mixed_list() -> Node {
        let tree = store_for(Format::Yaml)
            .parse(b"l:\n  - one\n  - 2\n  - three: 3\n  # in list\n  - [a, b]\n")
            .unwrap();
        let Node::Map(mut root) = tree.documents.into_iter().next().unwrap().root else {
            panic!("a map")
        };
        root.remove("l").unwrap()
    }

    /// What `sops -d --extract '["l"]' --output-type …` (sops 3.13) prints for the same values.
    #[test]
    fn emit_value_writes_what_sops_emit_value_writes() {
        let emit = |format: Format, node: &Node| {
            store_for(format)
                .emit_value(node)
                .map(|b| String::from_utf8(b).unwrap())
        };
        let int = Node::Scalar(Scalar::new(Value::Int("5432".into())));
        let null = Node::Scalar(Scalar::new(Value::Null));
        let list = mixed_list();
        assert_eq!(emit(Format::Yaml, &int).unwrap(), "5432\n");
        assert_eq!(emit(Format::Yaml, &null).unwrap(), "null\n");
        assert_eq!(
            emit(Format::Yaml, &list).unwrap(),
            "- one\n- 2\n- three: 3\n# in list\n- - a\n  - b\n"
        );
        assert_eq!(emit(Format::Json, &int).unwrap(), "5432");
        assert_eq!(emit(Format::Json, &null).unwrap(), "null");
        assert_eq!(
            emit(Format::Json, &list).unwrap(),
            "[\n\t\"one\",\n\t2,\n\t{\n\t\t\"three\": 3\n\t},\n\t[\n\t\t\"a\",\n\t\t\"b\"\n\t]\n]"
        );
        assert_eq!(emit(Format::Ini, &int).unwrap(), "5432");
        assert_eq!(
            emit(Format::Ini, &list).unwrap(),
            r#"["one",2,[{"Key":"three","Value":3}],{"Value":" in list","Inline":false},["a","b"]]"#
        );
        for format in [Format::Dotenv, Format::Binary] {
            for node in [&int, &null, &list] {
                assert!(
                    matches!(emit(format, node), Err(crate::Error::Emit { .. })),
                    "{format:?} refuses a lone value, as sops does"
                );
            }
        }
    }
}
