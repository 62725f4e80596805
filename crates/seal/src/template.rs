//! Rendering `spec.template.data`: a small, documented subset of Go's `text/template`.
//!
//! The Bitnami controller renders each template entry with Go templates over a map of the unsealed
//! values (item name -> value). Signet supports:
//!
//! * literal text, copied byte for byte;
//! * `{{ .name }}` — the value of item `name` (letters, digits and `_` only, as in Go field syntax);
//! * `{{ index . "name" }}` and ``{{ index . `name` }}`` — any item name, e.g. `tls.crt`; Go escapes
//!   `\\`, `\"`, `\n`, `\t` are understood in double-quoted names;
//! * trim markers `{{-` and `-}}` (remove adjacent whitespace, as Go does);
//! * comments `{{/* ... */}}`.
//!
//! Anything else (pipelines, functions such as sprig's, conditionals, ranges, variables) is refused with
//! an error naming the template item, never silently rendered wrong. A reference to an item that does
//! not exist is also an error (Go would print `<no value>`).
//!
//! A rendered entry is at most [`MAX_RENDERED_BYTES`] (what a Secret holds): a short template that
//! repeats a large value would otherwise ask for gigabytes.

use crate::SealError;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// Largest rendered entry: a Secret holds at most 1 MiB.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;

/// Renders `template` (the entry `item` of `spec.template.data`) over `values`.
pub fn render(
    item: &str,
    template: &str,
    values: &BTreeMap<String, Zeroizing<Vec<u8>>>,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let fail = |reason: String| SealError::Template {
        key: item.to_owned(),
        reason,
    };
    let mut out = Zeroizing::new(Vec::with_capacity(template.len().min(MAX_RENDERED_BYTES)));
    let append = |out: &mut Vec<u8>, bytes: &[u8]| {
        if out.len().saturating_add(bytes.len()) > MAX_RENDERED_BYTES {
            return Err(fail(format!(
                "renders to more than {MAX_RENDERED_BYTES} bytes, more than a Secret holds"
            )));
        }
        out.extend_from_slice(bytes);
        Ok(())
    };
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        let mut action = &rest[open + 2..];
        if let Some(a) = action.strip_prefix("- ") {
            text = text.trim_end_matches(is_go_space);
            action = a;
        } else if action.starts_with('-') && action[1..].starts_with(is_go_space) {
            text = text.trim_end_matches(is_go_space);
            action = &action[1..];
        }
        append(&mut out, text.as_bytes())?;
        let close = find_close(action).ok_or_else(|| fail("unclosed action".to_owned()))?;
        let mut body = &action[..close];
        let mut after = &action[close + 2..];
        if body.ends_with('-') && body[..body.len() - 1].ends_with(is_go_space) {
            body = &body[..body.len() - 1];
            after = after.trim_start_matches(is_go_space);
        }
        if let Some(name) = parse_action(body.trim_matches(is_go_space)).map_err(&fail)? {
            let value = values
                .get(&name)
                .ok_or_else(|| fail(format!("no item named {name:?}")))?;
            append(&mut out, value)?;
        }
        rest = after;
    }
    append(&mut out, rest.as_bytes())?;
    Ok(out)
}

fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Finds the `}}` that closes an action, skipping quoted strings. Walks bytes and compares bytes
/// only, so text that is not ASCII (a comment `{{/* für */}}`) never lands a slice inside a character.
fn find_close(action: &str) -> Option<usize> {
    let bytes = action.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(b'"') if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'`' => quote = Some(b),
            None if bytes[i..].starts_with(b"}}") => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

/// The item an action refers to, or `None` for a comment.
fn parse_action(body: &str) -> Result<Option<String>, String> {
    if body.starts_with("/*") && body.ends_with("*/") {
        return Ok(None);
    }
    if let Some(field) = body.strip_prefix('.')
        && !field.is_empty()
        && field.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        return Ok(Some(field.to_owned()));
    }
    if let Some(args) = body.strip_prefix("index") {
        let args = args.trim_start_matches(is_go_space);
        if let Some(arg) = args.strip_prefix('.')
            && arg.starts_with(is_go_space)
        {
            return parse_string_literal(arg.trim_matches(is_go_space)).map(Some);
        }
    }
    Err(format!(
        "unsupported action {{{{ {body} }}}}: only {{{{ .name }}}} and {{{{ index . \"name\" }}}} are supported"
    ))
}

fn parse_string_literal(lit: &str) -> Result<String, String> {
    if let Some(raw) = lit.strip_prefix('`').and_then(|l| l.strip_suffix('`'))
        && !raw.contains('`')
    {
        return Ok(raw.to_owned());
    }
    let inner = lit
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .ok_or_else(|| format!("expected a quoted item name after index, got {lit}"))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                other => return Err(format!("unsupported escape \\{}", other.unwrap_or(' '))),
            },
            '"' => return Err("unescaped quote in item name".to_owned()),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<String, Zeroizing<Vec<u8>>> {
        [
            ("user", &b"admin"[..]),
            ("tls.crt", b"CERT\n"),
            ("pass", b"s3cr\xffet"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Zeroizing::new(v.to_vec())))
        .collect()
    }

    fn ok(t: &str) -> Vec<u8> {
        render("item", t, &values()).unwrap().to_vec()
    }

    #[test]
    fn fields_index_and_literal_text() {
        assert_eq!(ok("plain"), b"plain");
        assert_eq!(ok("u={{ .user }} p={{.pass}}"), b"u=admin p=s3cr\xffet");
        assert_eq!(ok(r#"{{ index . "tls.crt" }}"#), b"CERT\n");
        assert_eq!(ok("{{ index . `tls.crt` }}x"), b"CERT\nx");
        assert_eq!(ok("a{{/* note */}}b"), b"ab");
    }

    #[test]
    fn trim_markers_remove_adjacent_whitespace() {
        assert_eq!(ok("a  \n {{- .user -}} \n b"), b"aadminb");
        assert_eq!(ok("a {{ .user }} b"), b"a admin b");
    }

    #[test]
    fn unsupported_and_missing_are_errors_naming_the_item_not_values() {
        for bad in [
            "{{ .missing }}",
            "{{ .user | upper }}",
            "{{ if .user }}x{{ end }}",
            "{{ .user ",
            "{{ index . \"a }}",
        ] {
            let err = render("conn", bad, &values()).unwrap_err().to_string();
            assert!(err.contains("\"conn\""), "{err}");
            assert!(!err.contains("admin"), "{err}");
        }
    }

    #[test]
    fn output_larger_than_a_secret_is_an_error_before_it_is_built() {
        let big: BTreeMap<String, Zeroizing<Vec<u8>>> =
            [("v".to_owned(), Zeroizing::new(vec![b'x'; 600 * 1024]))].into();
        assert_eq!(render("item", "{{ .v }}", &big).unwrap().len(), 600 * 1024);
        // 100,000 copies of 600 KiB would be 60 GB.
        let bomb = "{{ .v }}".repeat(100_000);
        let err = render("item", &bomb, &big).unwrap_err().to_string();
        assert!(err.contains("more than a Secret holds"), "{err}");
    }

    #[test]
    fn text_that_is_not_ascii_inside_and_around_actions_never_panics() {
        // Regression: `{{/* für */}}` sliced a `str` inside `ü` while looking for `}}`.
        assert_eq!(ok("ä{{/* für */}}ö"), "äö".as_bytes());
        for bad in [
            "{{ für }}",
            "{{ .ü",
            "{{ index . \"ü }}",
            "{{-ü-}}",
            "{{ .user -ü}}",
        ] {
            assert!(render("item", bad, &values()).is_err(), "{bad}");
        }
    }
}
