//! The Secret keys of a `dataFrom` entry, as External Secrets Operator makes them: the keys the
//! provider gave go through the entry's `rewrite[]` operations in order, or, when it has none,
//! through its `conversionStrategy`.
//!
//! * `conversionStrategy: Default` turns every character a Secret key cannot hold (not a letter,
//!   digit, `-`, `.` or `_`) into `_`; `Unicode` into `_UXXXX_` (its code point, four or more
//!   lower-case hex digits).
//! * `rewrite[].regexp: {source, target}` replaces every match of `source` in each key, as Go's
//!   `Regexp.ReplaceAllString`: in `target`, `$name` / `${name}` is a capture group by number or
//!   name (`name` the longest run of letters, digits and `_`, so `$1x` is the group named `1x`,
//!   which is empty unless there is one), `$$` a `$`, and a `$` not starting a reference is kept.
//!   The expression is the `regex` crate's, RE2 syntax like Go's; one difference: `\d`, `\w`, `\s`
//!   and `\b` match Unicode characters here and ASCII ones in Go.
//! * `rewrite[].transform: {template}` renders the template (ESO's engine v2 dialect) with `.value`
//!   the key; its output is the new key.
//!
//! Bounds: at most [`MAX_REWRITES`] operations per entry; a `source` or a template of at most
//! [`MAX_PATTERN_BYTES`] / [`MAX_TEMPLATE_BYTES`], a compiled expression of at most
//! [`REGEX_SIZE_LIMIT`] bytes; every transform of one ExternalSecret shares one template budget.
//!
//! Where ESO silently keeps one of two keys that a rewrite makes equal (which one depends on Go's
//! map order), Signet fails the sync naming both; so it does for a key that is empty or that a
//! Secret cannot hold, naming the key (keys are names, never values).

use super::template::Values;
use super::{Rewrite, RewriteRegexp};
use regex::{Regex, RegexBuilder};
use signet_seal::template::{Dialect, Renderer};
use std::collections::BTreeMap;

/// Most `rewrite` operations on one `dataFrom` entry.
pub const MAX_REWRITES: usize = 32;
/// Longest `rewrite[].regexp.source` or `target`.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// Longest `rewrite[].transform.template`.
pub const MAX_TEMPLATE_BYTES: usize = 4096;
/// Most memory a compiled `rewrite[].regexp.source` may take.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// `conversionStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// An invalid character becomes `_`.
    Default,
    /// An invalid character becomes `_UXXXX_`.
    Unicode,
}

impl Conversion {
    /// The strategy a spec names (`Default` when it names none); an unknown name is refused,
    /// naming the field `at`.
    pub fn parse(name: Option<&str>, at: &str) -> Result<Conversion, String> {
        match name {
            None | Some("Default") => Ok(Conversion::Default),
            Some("Unicode") => Ok(Conversion::Unicode),
            Some(other) => Err(format!(
                "{at}.conversionStrategy: {other:?} (Default or Unicode)"
            )),
        }
    }

    /// `name` as a Secret key.
    pub fn convert(self, name: &str) -> String {
        let mut out = String::with_capacity(name.len());
        for c in name.chars() {
            if valid_key_char(c) {
                out.push(c);
            } else {
                match self {
                    Conversion::Default => out.push('_'),
                    Conversion::Unicode => out.push_str(&format!("_U{:04x}_", c as u32)),
                }
            }
        }
        out
    }
}

/// The keys of `values` converted with `conversion`; two names made one key fail (as in ESO),
/// naming the field `at`.
pub fn convert_keys(conversion: Conversion, values: Values, at: &str) -> Result<Values, String> {
    let mut out = Values::new();
    for (name, value) in values {
        let key = conversion.convert(&name);
        if out.contains_key(&key) {
            return Err(format!(
                "{at}: two names become the Secret key {key:?} (conversionStrategy); use rewrite to tell them apart"
            ));
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// Whether a Secret key may hold `c`.
pub fn valid_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
}

/// One checked operation.
enum Operation<'a> {
    Regexp(Regex, &'a str),
    Transform(&'a str),
}

/// The rewrites of one entry, checked and compiled; refuses (naming the field `at`) more than
/// [`MAX_REWRITES`], an operation with neither or both of `regexp` and `transform`, an expression
/// that does not compile or is too large, a template too long.
pub struct Rewrites<'a> {
    operations: Vec<Operation<'a>>,
}

impl<'a> Rewrites<'a> {
    /// Checks and compiles `rewrites`.
    pub fn compile(rewrites: &'a [Rewrite], at: &str) -> Result<Rewrites<'a>, String> {
        if rewrites.len() > MAX_REWRITES {
            return Err(format!(
                "{at}.rewrite: {} operations, at most {MAX_REWRITES}",
                rewrites.len()
            ));
        }
        let mut operations = Vec::with_capacity(rewrites.len());
        for (i, rewrite) in rewrites.iter().enumerate() {
            let here = format!("{at}.rewrite[{i}]");
            operations.push(match (&rewrite.regexp, &rewrite.transform) {
                (Some(regexp), None) => Operation::Regexp(compile(regexp, &here)?, &regexp.target),
                (None, Some(transform)) => {
                    if transform.template.len() > MAX_TEMPLATE_BYTES {
                        return Err(format!(
                            "{here}.transform.template: longer than {MAX_TEMPLATE_BYTES} bytes"
                        ));
                    }
                    Operation::Transform(&transform.template)
                }
                _ => {
                    return Err(format!(
                        "{here}: exactly one of regexp and transform (Signet does not support merge)"
                    ));
                }
            });
        }
        Ok(Rewrites { operations })
    }

    /// Whether there is no operation (then the conversion strategy applies).
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// `values` with their keys rewritten by every operation in turn; transforms render with
    /// `renderer`'s budget. Fails, naming the field `at`, when a key becomes empty or two keys
    /// become one; the result's keys are then checked as Secret keys.
    pub fn apply(
        &self,
        values: Values,
        renderer: &mut Renderer,
        at: &str,
    ) -> Result<Values, String> {
        let mut current = values;
        for (i, operation) in self.operations.iter().enumerate() {
            let here = format!("{at}.rewrite[{i}]");
            let mut next = Values::new();
            // The key each new key came from, to name both of a collision.
            let mut from: BTreeMap<String, String> = BTreeMap::new();
            for (key, value) in current {
                let new_key = match operation {
                    Operation::Regexp(re, target) => go_replace_all(re, &key, target),
                    Operation::Transform(template) => {
                        transform(renderer, template, &key).map_err(|e| format!("{here}: {e}"))?
                    }
                };
                if new_key.is_empty() {
                    return Err(format!("{here}: key {key:?} becomes empty"));
                }
                if let Some(earlier) = from.get(&new_key) {
                    return Err(format!(
                        "{here}: keys {earlier:?} and {key:?} both become {new_key:?}"
                    ));
                }
                from.insert(new_key.clone(), key);
                next.insert(new_key, value);
            }
            current = next;
        }
        if let Some(bad) = current.keys().find(|k| !k.chars().all(valid_key_char)) {
            return Err(format!(
                "{at}.rewrite: key {bad:?} is not a valid Secret key (letters, digits, '-', '_', '.')"
            ));
        }
        Ok(current)
    }
}

/// A renderer for transforms: ESO's dialect, one budget for every transform of an ExternalSecret.
pub fn transform_renderer() -> Renderer {
    Renderer::with_dialect(std::iter::empty(), Dialect::ExternalSecrets)
}

fn compile(regexp: &RewriteRegexp, at: &str) -> Result<Regex, String> {
    if regexp.source.len() > MAX_PATTERN_BYTES || regexp.target.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "{at}.regexp: source and target are at most {MAX_PATTERN_BYTES} bytes"
        ));
    }
    RegexBuilder::new(&regexp.source)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let reason = match e {
                regex::Error::CompiledTooBig(_) => {
                    format!("compiles to more than {REGEX_SIZE_LIMIT} bytes")
                }
                other => other.to_string(),
            };
            format!("{at}.regexp.source: {reason}")
        })
}

/// `.value` = `key` rendered through `template`.
fn transform(renderer: &mut Renderer, template: &str, key: &str) -> Result<String, String> {
    let name = "value".to_owned();
    renderer.set_values([(&name, key.as_bytes())]);
    let out = renderer
        .render("transform", template)
        .map_err(|e| match e {
            signet_seal::SealError::Template { reason, .. } => format!("transform: {reason}"),
            other => format!("transform: {other}"),
        })?;
    String::from_utf8(out.to_vec())
        .map_err(|_| format!("transform: the new name of key {key:?} is not UTF-8"))
}

/// Go's `Regexp.ReplaceAllString(src, template)`.
fn go_replace_all(re: &Regex, src: &str, template: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut last = 0;
    for caps in re.captures_iter(src) {
        let Some(whole) = caps.get(0) else { continue };
        out.push_str(&src[last..whole.start()]);
        go_expand(re, &caps, template, &mut out);
        last = whole.end();
    }
    out.push_str(&src[last..]);
    out
}

/// Go's `Regexp.expand`: `$$`, `$name`, `${name}`; a malformed reference keeps its `$`.
fn go_expand(re: &Regex, caps: &regex::Captures<'_>, template: &str, out: &mut String) {
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = go_reference(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let group = match go_group_number(name) {
            Some(n) => caps.get(n),
            None => re
                .capture_names()
                .position(|n| n == Some(name))
                .and_then(|i| caps.get(i)),
        };
        if let Some(m) = group {
            out.push_str(m.as_str());
        }
    }
    out.push_str(rest);
}

/// Go's `extract`: a name (letters, digits, `_`, Unicode ones too) after a `$`, braced or not,
/// and what follows it.
fn go_reference(s: &str) -> Option<(&str, &str)> {
    let (body, braced) = match s.strip_prefix('{') {
        Some(inner) => (inner, true),
        None => (s, false),
    };
    let end = body
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let (name, after) = body.split_at(end);
    if braced {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

/// A group number as Go reads it: ASCII digits, no leading zero, below 10^8.
fn go_group_number(name: &str) -> Option<usize> {
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    let mut n: usize = 0;
    for b in name.bytes() {
        if !b.is_ascii_digit() || n >= 100_000_000 {
            return None;
        }
        n = n * 10 + usize::from(b - b'0');
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn values(keys: &[&str]) -> Values {
        keys.iter()
            .map(|k| (k.to_string(), Zeroizing::new(format!("v-{k}").into_bytes())))
            .collect()
    }

    fn rewrites(json: serde_json::Value) -> Vec<Rewrite> {
        serde_json::from_value(json).unwrap()
    }

    fn apply(ops: &[Rewrite], keys: &[&str]) -> Result<Vec<(String, String)>, String> {
        let compiled = Rewrites::compile(ops, "spec.dataFrom[0]")?;
        let out = compiled.apply(values(keys), &mut transform_renderer(), "spec.dataFrom[0]")?;
        Ok(out
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.to_vec()).unwrap()))
            .collect())
    }

    fn replace(source: &str, src: &str, target: &str) -> String {
        go_replace_all(&Regex::new(source).unwrap(), src, target)
    }

    #[test]
    fn conversion_strategies_make_secret_keys_as_eso_does() {
        assert_eq!(Conversion::Default.convert("/app/db key"), "_app_db_key");
        assert_eq!(
            Conversion::Unicode.convert("/app/db"),
            "_U002f_app_U002f_db"
        );
        assert_eq!(Conversion::Unicode.convert("é-😀"), "_U00e9_-_U1f600_");
        assert_eq!(Conversion::Default.convert("ok-key_1.x"), "ok-key_1.x");
        assert_eq!(
            Conversion::parse(Some("Unicode"), "x").unwrap(),
            Conversion::Unicode
        );
        assert_eq!(
            Conversion::parse(Some("unicode"), "spec.dataFrom[1].find").unwrap_err(),
            "spec.dataFrom[1].find.conversionStrategy: \"unicode\" (Default or Unicode)"
        );
    }

    #[test]
    fn names_converted_to_one_key_fail_as_in_eso() {
        let err = convert_keys(
            Conversion::Default,
            values(&["a/b", "a b"]),
            "spec.dataFrom[2].find",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "spec.dataFrom[2].find: two names become the Secret key \"a_b\" (conversionStrategy); use rewrite to tell them apart"
        );
        // Unicode keeps them apart.
        let out = convert_keys(Conversion::Unicode, values(&["a/b", "a b"]), "x").unwrap();
        let keys: Vec<&str> = out.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a_U0020_b", "a_U002f_b"]);
    }

    #[test]
    fn replacement_expands_references_as_go_does() {
        assert_eq!(replace("^path/to/(.*)$", "path/to/user", "$1"), "user");
        assert_eq!(
            replace("(?P<env>dev|prod)-(.*)", "dev-pass", "${2}_${env}"),
            "pass_dev"
        );
        // `$1x` is the group named "1x" (none: empty), not group 1 then "x".
        assert_eq!(replace("(a)(b)", "ab", "$1x"), "");
        assert_eq!(replace("(a)(b)", "ab", "${1}x"), "ax");
        // `$$` is a dollar; a `$` not starting a reference stays.
        assert_eq!(replace("a", "a", "$$1"), "$1");
        assert_eq!(replace("a", "a", "x$-y"), "x$-y");
        assert_eq!(replace("a", "a", "${1"), "${1");
        // A leading zero makes it a name, not a number.
        assert_eq!(replace("(a)", "a", "$01"), "");
        // Unknown groups are empty; every match is replaced; empty matches as Go.
        assert_eq!(replace("(a)", "a", "[$7]"), "[]");
        assert_eq!(replace("/", "a/b/c", "-"), "a-b-c");
        assert_eq!(replace("x*", "abc", "-"), "-a-b-c-");
        // The documented difference: `\d` is Unicode here (Go's is ASCII); `[0-9]` is exact.
        assert_eq!(replace(r"\d", "a\u{663}1", "#"), "a##");
        assert_eq!(replace("[0-9]", "a\u{663}1", "#"), "a\u{663}#");
    }

    #[test]
    fn rewrites_apply_in_order_to_the_keys() {
        let ops = rewrites(serde_json::json!([
            {"regexp": {"source": "^secrets/(dev|prod)/", "target": "${1}_"}},
            {"transform": {"template": "{{ .value | upper }}"}},
            {"regexp": {"source": "_", "target": "-"}}
        ]));
        let got = apply(
            &ops,
            &["secrets/dev/password", "secrets/prod/password", "other"],
        )
        .unwrap();
        assert_eq!(
            got,
            [
                (
                    "DEV-PASSWORD".to_owned(),
                    "v-secrets/dev/password".to_owned()
                ),
                ("OTHER".to_owned(), "v-other".to_owned()),
                (
                    "PROD-PASSWORD".to_owned(),
                    "v-secrets/prod/password".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn collisions_empty_and_invalid_keys_fail_naming_the_keys() {
        let strip = rewrites(serde_json::json!([
            {"regexp": {"source": "^(dev|prod)/", "target": ""}}
        ]));
        let err = apply(&strip, &["dev/password", "prod/password"]).unwrap_err();
        assert_eq!(
            err,
            "spec.dataFrom[0].rewrite[0]: keys \"dev/password\" and \"prod/password\" both become \"password\""
        );
        let empty = rewrites(serde_json::json!([{"regexp": {"source": ".*", "target": ""}}]));
        let err = apply(&empty, &["a"]).unwrap_err();
        assert_eq!(err, "spec.dataFrom[0].rewrite[0]: key \"a\" becomes empty");
        let slash = rewrites(serde_json::json!([{"regexp": {"source": "^x", "target": "y"}}]));
        let err = apply(&slash, &["x/a"]).unwrap_err();
        assert!(
            err.contains("key \"y/a\" is not a valid Secret key"),
            "{err}"
        );
        let transform_empty =
            rewrites(serde_json::json!([{"transform": {"template": "{{ if false }}x{{ end }}"}}]));
        assert!(
            apply(&transform_empty, &["a"])
                .unwrap_err()
                .contains("becomes empty")
        );
    }

    #[test]
    fn bad_operations_are_refused_naming_the_field() {
        let neither = rewrites(serde_json::json!([{}]));
        assert!(
            apply(&neither, &["a"])
                .unwrap_err()
                .starts_with("spec.dataFrom[0].rewrite[0]: exactly one of regexp and transform")
        );
        let both = rewrites(serde_json::json!([{
            "regexp": {"source": "a", "target": "b"}, "transform": {"template": "x"}}]));
        assert!(apply(&both, &["a"]).unwrap_err().contains("exactly one of"));
        let bad = rewrites(serde_json::json!([{"regexp": {"source": "(", "target": ""}}]));
        assert!(
            apply(&bad, &["a"])
                .unwrap_err()
                .starts_with("spec.dataFrom[0].rewrite[0].regexp.source: ")
        );
        let huge = rewrites(
            serde_json::json!([{"regexp": {"source": "\\w{1000}\\w{1000}", "target": ""}}]),
        );
        let err = apply(&huge, &["a"]).unwrap_err();
        assert!(err.contains("compiles to more than"), "{err}");
        let many: Vec<Rewrite> = (0..=MAX_REWRITES)
            .map(|_| {
                rewrites(serde_json::json!([{"regexp": {"source": "a", "target": "b"}}])).remove(0)
            })
            .collect();
        assert!(apply(&many, &["a"]).unwrap_err().contains("at most 32"));
        let long = rewrites(
            serde_json::json!([{"transform": {"template": "x".repeat(MAX_TEMPLATE_BYTES + 1)}}]),
        );
        assert!(apply(&long, &["a"]).unwrap_err().contains("longer than"));
        let undefined =
            rewrites(serde_json::json!([{"transform": {"template": "{{ .missing }}"}}]));
        let err = apply(&undefined, &["a"]).unwrap_err();
        assert!(
            err.starts_with("spec.dataFrom[0].rewrite[0]: transform: "),
            "{err}"
        );
    }

    /// Transforms of many keys share one budget: a slow template stops instead of running once
    /// per key.
    #[test]
    fn transforms_share_one_budget() {
        let slow = rewrites(serde_json::json!([{"transform": {"template":
            "{{ range until 5000 }}{{ end }}{{ .value }}"}}]));
        let few: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let few: Vec<&str> = few.iter().map(String::as_str).collect();
        assert!(apply(&slow, &few).is_ok());
        let many: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(apply(&slow, &many).unwrap_err().contains("steps"));
    }
}
