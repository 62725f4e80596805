//! The renderer's own rules: Go's output for a few constructs (the whole function set is compared
//! with the Bitnami controller itself in `tests/controller_bitnami_templates.rs`), the refusals and
//! every bound.

use super::*;
use std::time::{Duration, Instant};

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

fn err(t: &str) -> String {
    render("conn", t, &values()).unwrap_err().to_string()
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
fn missing_items_render_as_go_renders_them() {
    // Go: a missing map entry prints "<no value>"; `index` of one gives the zero value "".
    assert_eq!(ok("[{{ .missing }}]"), b"[<no value>]");
    assert_eq!(ok(r#"[{{ index . "missing" }}]"#), b"[]");
    assert_eq!(ok(r#"{{ .missing | default "d" }}"#), b"d");
}

#[test]
fn trim_markers_remove_adjacent_whitespace() {
    assert_eq!(ok("a  \n {{- .user -}} \n b"), b"aadminb");
    assert_eq!(ok("a {{ .user }} b"), b"a admin b");
}

#[test]
fn pipelines_control_flow_and_functions() {
    assert_eq!(ok("{{ .user | upper | quote }}"), b"\"ADMIN\"");
    assert_eq!(
        ok(r#"{{ range $i, $v := splitList "," "a,b" }}{{ $i }}{{ $v }}{{ end }}"#),
        b"0a1b"
    );
    assert_eq!(
        ok("{{ if eq .user \"admin\" }}yes{{ else }}no{{ end }}"),
        b"yes"
    );
    assert_eq!(
        ok(r#"{{ $d := dict "a" 1 }}{{ $_ := set $d "b" 2 }}{{ toJson $d }}"#),
        br#"{"a":1,"b":2}"#
    );
    assert_eq!(
        ok(r#"{{ printf "%05.1f|%-3s|%q" 3.14159 "a" "x" }}"#),
        b"003.1|a  |\"x\""
    );
    assert_eq!(
        ok("{{ 1e6 }} {{ div 7 2 }} {{ typeOf (add 1 2) }}"),
        b"1e+06 3 int64"
    );
}

#[test]
fn functions_bitnami_removes_or_signet_cannot_match_are_refused_before_rendering() {
    for (template, says) in [
        (
            "{{ env \"HOME\" }}",
            "\"env\" not defined (Bitnami v0.40.0 does not enable it either)",
        ),
        ("{{ expandenv \"$HOME\" }}", "\"expandenv\" not defined"),
        ("{{ getHostByName \"x\" }}", "\"getHostByName\" not defined"),
        ("{{ nosuchfunc }}", "\"nosuchfunc\" not defined"),
        (
            "{{ randAlphaNum 8 }}",
            "\"randAlphaNum\" is enabled by Bitnami but not supported by Signet",
        ),
        (
            "{{ now }}",
            "\"now\" is enabled by Bitnami but not supported by Signet",
        ),
        (
            "{{ genPrivateKey \"rsa\" }}",
            "\"genPrivateKey\" is enabled by Bitnami but not supported",
        ),
        // Refused even in a branch that would not run, as Go refuses unknown names when parsing.
        (
            "{{ if false }}{{ env \"X\" }}{{ end }}",
            "\"env\" not defined",
        ),
    ] {
        let e = err(template);
        assert!(e.contains(says), "{template}: {e}");
        assert!(e.contains("\"conn\""), "{e}");
    }
}

#[test]
fn malformed_templates_are_errors_naming_the_item_not_values() {
    for bad in [
        "{{ .user ",
        "{{ index . \"a }}",
        "{{ if .user }}x",
        "{{ end }}",
        "{{ .user | }}",
        "{{ (upper .user }}",
        "{{ template \"nope\" }}",
        "{{ $undefined }}",
        "{{ fail \"stop\" }}",
        "{{ .user.field }}",
    ] {
        let e = err(bad);
        assert!(e.contains("\"conn\""), "{bad}: {e}");
        assert!(!e.contains("admin"), "{bad}: {e}");
    }
}

#[test]
fn output_larger_than_a_secret_is_an_error_before_it_is_built() {
    let big: BTreeMap<String, Zeroizing<Vec<u8>>> =
        [("v".to_owned(), Zeroizing::new(vec![b'x'; 600 * 1024]))].into();
    assert_eq!(render("item", "{{ .v }}", &big).unwrap().len(), 600 * 1024);
    // 100,000 copies of 600 KiB would be 60 GB.
    let bomb = "{{ .v }}".repeat(100_000);
    let e = render("item", &bomb, &big).unwrap_err().to_string();
    assert!(e.contains("more than a Secret holds"), "{e}");
    let e = err("{{ repeat 100000000 .user }}");
    assert!(e.contains("more than 1048576 bytes"), "{e}");
}

/// Every bound of a hostile template: loops, recursion, list sizes, nesting and the bytes its
/// functions produce all stop with an error, quickly.
#[test]
fn hostile_templates_stop_quickly_with_an_error() {
    let nested_parens = format!("{{{{ {}1{} }}}}", "(".repeat(500), ")".repeat(500));
    let nested_ifs = format!("{}x{}", "{{ if 1 }}".repeat(500), "{{ end }}".repeat(500));
    for (template, says) in [
        (
            "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}",
            "steps",
        ),
        ("{{ range 100000000 }}{{ end }}", "iterations"),
        ("{{ until 100000000 }}", "more than 100000 items"),
        (
            r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#,
            "nested",
        ),
        (nested_parens.as_str(), "nested"),
        (nested_ifs.as_str(), "nested"),
        (
            r#"{{ $s := repeat 1000000 "x" }}{{ range until 1000 }}{{ $_ := sha256sum $s }}{{ end }}"#,
            "bytes in all",
        ),
        (
            r#"{{ $d := dict }}{{ $_ := set $d "self" $d }}{{ $d }}"#,
            "nested more than",
        ),
        (r#"{{ regexMatch "(a{1000}){1000}" "a" }}"#, "regexp"),
        (
            r#"{{ range until 100000 }}{{ regexMatch "(a|b)*c{1,100}" "x" }}{{ end }}"#,
            "steps",
        ),
        ("{{ uniq (until 100000) }}", "steps"),
    ] {
        let started = Instant::now();
        let e = err(template);
        assert!(
            e.contains(says),
            "{}: {e}",
            &template[..template.len().min(80)]
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{template} took too long"
        );
    }
}

#[test]
fn one_budget_is_shared_by_all_entries_of_a_sealed_secret() {
    let values = values();
    let mut renderer = Renderer::new(values.iter().map(|(k, v)| (k, v.as_slice())));
    let loop_ = "{{ range until 50000 }}{{ end }}";
    // Three fit, the fifth does not: a SealedSecret cannot multiply the bound by its entry count.
    for i in 0..3 {
        renderer.render(&format!("e{i}"), loop_).unwrap();
    }
    let e = (3..10)
        .find_map(|i| renderer.render(&format!("e{i}"), loop_).err())
        .expect("the shared budget ran out");
    assert!(e.to_string().contains("steps"), "{e}");
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
        "{{ 'ü",
        "{{ \"\\u12",
        "{{ 0x }}",
    ] {
        let _ = render("item", bad, &values());
    }
}

/// `set $d "self" $d` makes a cycle that reference counting alone never frees: a template doing
/// it at every reconcile would leak memory. The budget empties every dict `set` changed when it
/// goes.
#[test]
fn dicts_that_hold_themselves_are_freed_after_rendering() {
    let mut budget = Budget::default();
    let dict = sprig::call("dict", &[], &mut budget).unwrap();
    let Value::Dict(d) = &dict else {
        panic!("dict makes a dict")
    };
    let weak = Rc::downgrade(d);
    let key = value::str_value(b"self".to_vec());
    sprig::call("set", &[dict.clone(), key, dict.clone()], &mut budget).unwrap();
    drop(dict);
    assert!(weak.upgrade().is_some(), "the cycle keeps it alive");
    drop(budget);
    assert!(weak.upgrade().is_none(), "freed with the budget");
    // And through the renderer: the same template renders (and is bounded) as before.
    let e = err(r#"{{ $d := dict }}{{ $_ := set $d "self" $d }}{{ $d }}"#);
    assert!(e.contains("nested more than"), "{e}");
    let (a, b) = (
        r#"{{ $a := dict }}{{ $_ := set $a "x" $a }}"#,
        r#"{{ $b := dict }}{{ $_ := set $b "x" $b }}{{ deepEqual $a $b }}"#,
    );
    assert_eq!(ok(&format!("{a}{b}")), b"false");
}

#[test]
fn arithmetic_at_the_edges_of_int64_does_not_overflow() {
    for t in [
        "{{ untilStep 9223372036854775806 9223372036854775807 5 }}",
        "{{ seq 9223372036854775807 }}",
        "{{ seq -9223372036854775807 -9223372036854775807 }}",
        "{{ abbrevboth 9 9223372036854775807 \"abcdefghijklmnopqrstuvwxyz\" }}",
        "{{ trunc -9223372036854775807 \"abc\" }}",
        "{{ div -9223372036854775807 -1 }} {{ mod 5 -1 }} {{ mul 9223372036854775807 2 }}",
        "{{ printf \"%d\" -9223372036854775807 }}",
    ] {
        let _ = render("item", t, &values());
    }
}

/// What Bitnami's renderer refuses (checked against Go's text/template and sprig v3.3.0), Signet
/// refuses too: a Secret never appears under one controller and not the other.
#[test]
fn what_go_refuses_is_refused() {
    for template in [
        r#"{{ eq 1 "1" }}"#,
        r#"{{ len 3 }}"#,
        r#"{{ range "abc" }}{{ . }}{{ end }}"#,
        r#"{{ .user.x }}"#,
        r#"{{ indent 0 "a" }}|{{ nindent -2 "b" }}|{{ indent 3 "" }}"#,
        r#"{{ substr 2 1 "hello" }}"#,
        r#"{{ repeat 0 "x" }}|{{ repeat -1 "x" }}"#,
        r#"{{ first "abc" }}"#,
        r#"{{ ternary 1 2 "true" }}"#,
        r#"{{ regexFind "(" "x" }}"#,
        r#"{{ mustRegexMatch "(" "x" }}"#,
        r#"{{ index . }}|{{ index (dict "a" (dict "b" "c")) "a" "b" }}|{{ index (list 1 2) 5 }}"#,
        r#"{{ slice "abc" 1 }}"#,
        r#"{{ and }}"#,
        r#"{{ add1 "x" }} {{ add "1" 2.9 true }} {{ sub 1.9 0.9 }} {{ max }} "#,
        r#"{{ max 1 }} {{ min 3 "2" }} {{ maxf }} "#,
        r#"{{ chunk 0 (list 1) }}"#,
        r#"{{ hasKey . "user" }}"#,
        r#"{{ keys . }}"#,
        r#"{{ len .missing }}"#,
        r#"{{ .missing | b64enc }}"#,
        r#"{{ lt .missing 1 }}"#,
    ] {
        assert!(render("item", template, &values()).is_err(), "{template}");
    }
}

/// docs/bitnami-compatibility.md lists exactly the functions Signet refuses.
#[test]
fn the_docs_list_the_refused_functions() {
    let docs = include_str!("../../../../docs/bitnami-compatibility.md");
    let start = docs.find("- **Refused functions.**").expect("the bullet");
    let bullet = &docs[start..];
    let bullet = &bullet[..bullet.find("\n- ").expect("the next bullet")];
    let mut listed: Vec<&str> = bullet
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .filter(|name| *name != "TemplateFailed" && *name != "UNSUPPORTED")
        .collect();
    listed.sort_unstable();
    let mut refused = sprig::UNSUPPORTED.to_vec();
    refused.sort_unstable();
    assert_eq!(listed, refused);
    let rendered = sprig::BITNAMI_FUNCTIONS.len() - sprig::UNSUPPORTED.len();
    assert!(docs.contains(&format!("**{rendered} of sprig's functions**")));
    assert!(refused.iter().all(|f| sprig::BITNAMI_FUNCTIONS.contains(f)));
}

/// A function's message may quote its arguments: `fail .user` would put a value into the
/// object's status. The message is kept only when the arguments are the template's constants.
#[test]
fn function_errors_never_show_values() {
    for t in [
        "{{ fail .user }}",
        "{{ .user | fail }}",
        "{{ (list .user) | mustFirst | fail }}",
        "{{ .user | mustToJson | fail }}",
        "{{ mustFromJson .user }}",
        "{{ mustRegexMatch (printf \"(%s\" .user) \"x\" }}",
        "{{ index (list 1) (len .user) }}",
    ] {
        let e = err(t);
        assert!(!e.contains("admin"), "{t}: {e}");
        assert!(
            e.contains("\"conn\"") && e.contains("error calling"),
            "{t}: {e}"
        );
    }
    assert!(err("{{ fail \"stop\" }}").ends_with("error calling fail: stop"));
    let e = err("{{ .user | int64 | fail }}");
    assert!(
        e.ends_with("wrong type for value; expected string; got int64"),
        "{e}"
    );
}

/// What `json.Marshal` refuses (NaN, ±Inf): sprig's `toJson` and `toPrettyJson` print nothing, its
/// `toRawJson` and the `must` forms fail (Go 1.26 + sprig v3.3.0's answers).
#[test]
fn json_of_what_go_cannot_encode() {
    assert_eq!(
        ok(r#"[{{ toJson (float64 "NaN") }}][{{ toPrettyJson (list (float64 "inf")) }}]"#),
        b"[][]"
    );
    for (t, function) in [
        (
            r#"{{ toRawJson (dict "a" (float64 "-Inf")) }}"#,
            "toRawJson",
        ),
        (r#"{{ mustToJson (float64 "NaN") }}"#, "mustToJson"),
        (
            r#"{{ mustToPrettyJson (float64 "NaN") }}"#,
            "mustToPrettyJson",
        ),
    ] {
        assert!(err(t).contains(&format!("error calling {function}")), "{t}");
    }
}

/// Integer constants span Go's int64: `-9223372036854775808` is one, one more is not.
#[test]
fn integer_constants_span_int64() {
    assert_eq!(
        ok("{{ -9223372036854775808 }}|{{ add -9223372036854775808 1 }}|{{ 0x7fffffffffffffff }}"),
        b"-9223372036854775808|-9223372036854775807|9223372036854775807"
    );
    for t in ["{{ 9223372036854775808 }}", "{{ -9223372036854775809 }}"] {
        assert!(render("item", t, &values()).is_err(), "{t}");
    }
}
