//! The sprig functions of [`super::sprig_case`], [`super::sprig_decimal`], [`super::sprig_url`],
//! [`super::sprig_semver`] and [`super::sprig_crypto`]: their arguments taken as Go's template
//! engine hands them over, their results as Go's values.

use super::Budget;
use super::exec::arity;
use super::sprig_decimal::Op;
use super::value::{Value, str_value, zstr};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

type R<T> = Result<T, String>;

/// The functions this module renders.
pub const FUNCTIONS: &[&str] = &[
    "snakecase",
    "camelcase",
    "kebabcase",
    "add1f",
    "addf",
    "subf",
    "divf",
    "mulf",
    "semver",
    "semverCompare",
    "urlParse",
    "urlJoin",
    "derivePassword",
    "decryptAES",
];

/// Bytes of input to the case functions that cost one step of the budget.
const CASE_BYTES_PER_STEP: u64 = 16;

/// Longest semver constraint accepted (Go has no bound; rewriting `A - B` ranges is quadratic).
pub const MAX_CONSTRAINT_BYTES: usize = 16 * 1024;

/// A `string` parameter.
fn s(v: &Value) -> R<&[u8]> {
    match v {
        Value::Str(s) => Ok(s),
        Value::Missing => Err("invalid value; expected string".to_owned()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

/// spf13/cast's `ToFloat64`, as sprig's float functions use it.
fn f(v: &Value) -> f64 {
    super::sprig::to_float64(v)
}

fn at_least(name: &str, a: &[Value], k: usize) -> R<()> {
    if a.len() < k {
        return Err(format!(
            "wrong number of args for {name}: want at least {k} got {}",
            a.len()
        ));
    }
    Ok(())
}

/// Calls `name`, one of [`FUNCTIONS`].
pub(super) fn call(name: &str, a: &[Value], budget: &mut Budget) -> R<Value> {
    Ok(match name {
        "snakecase" | "kebabcase" | "camelcase" => {
            arity(name, a, 1)?;
            let v = s(&a[0])?;
            // Several Unicode lookups per character: a step per 16 bytes keeps a loop over a large
            // value within the budget's time.
            budget.spend(v.len() as u64 / CASE_BYTES_PER_STEP)?;
            str_value(match name {
                "snakecase" => super::sprig_case::to_lower_case(v, '_'),
                "kebabcase" => super::sprig_case::to_lower_case(v, '-'),
                _ => super::sprig_case::pascal_case(v),
            })
        }
        "add1f" => {
            arity(name, a, 1)?;
            Value::Float(super::sprig_decimal::exec(f(&a[0]), &[1.0], Op::Add)?)
        }
        "addf" | "subf" | "mulf" | "divf" => {
            let (first, rest) = if name == "addf" {
                (0.0, a)
            } else {
                at_least(name, a, 1)?;
                (f(&a[0]), &a[1..])
            };
            let rest: Vec<f64> = rest.iter().map(f).collect();
            budget.spend(rest.len() as u64)?;
            let op = match name {
                "addf" => Op::Add,
                "subf" => Op::Sub,
                "mulf" => Op::Mul,
                _ => Op::Div,
            };
            Value::Float(super::sprig_decimal::exec(first, &rest, op)?)
        }
        "semver" => {
            arity(name, a, 1)?;
            Value::Semver(Rc::new(super::sprig_semver::Version::parse(s(&a[0])?)?))
        }
        "semverCompare" => {
            arity(name, a, 2)?;
            let (constraint, version) = (s(&a[0])?, s(&a[1])?);
            if constraint.len() > MAX_CONSTRAINT_BYTES {
                return Err(format!(
                    "more than {MAX_CONSTRAINT_BYTES} bytes in a semver constraint"
                ));
            }
            let mut steps = |n| budget.spend(n);
            Value::Bool(super::sprig_semver::compare(
                constraint, version, &mut steps,
            )?)
        }
        "urlParse" => {
            arity(name, a, 1)?;
            let url = super::sprig_url::parse(s(&a[0])?)
                .map_err(|e| format!("unable to parse url: {e}"))?;
            let entries = [
                ("scheme", url.scheme.clone()),
                ("host", url.host.clone()),
                ("hostname", url.hostname().to_vec()),
                ("path", url.path.clone()),
                ("query", url.raw_query.clone()),
                ("opaque", url.opaque.clone()),
                ("fragment", url.fragment.clone()),
                ("userinfo", url.userinfo()),
            ];
            let map: BTreeMap<String, Value> = entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), str_value(v)))
                .collect();
            Value::Dict(Rc::new(RefCell::new(map)))
        }
        "urlJoin" => {
            arity(name, a, 1)?;
            let Value::Dict(d) = &a[0] else {
                return Err(format!(
                    "wrong type for value; expected map[string]interface {{}}; got {}",
                    a[0].type_name()
                ));
            };
            let d = d.borrow();
            // sprig's dictGetOrEmpty: absent is "", anything but a string panics.
            let get = |key: &str| -> R<Vec<u8>> {
                match d.get(key) {
                    None => Ok(Vec::new()),
                    Some(Value::Str(v)) => Ok(v.to_vec()),
                    Some(Value::Nil | Value::Missing) => Err(
                        "runtime error: invalid memory address or nil pointer dereference"
                            .to_owned(),
                    ),
                    Some(other) => Err(format!(
                        "unable to parse {key} key, must be of type string, but {} found",
                        other.kind_name()
                    )),
                }
            };
            let parts = [
                get("scheme")?,
                get("host")?,
                get("path")?,
                get("query")?,
                get("opaque")?,
                get("fragment")?,
            ];
            let userinfo = get("userinfo")?;
            let url = super::sprig_url::Url::from_parts(
                [
                    &parts[0], &parts[1], &parts[2], &parts[3], &parts[4], &parts[5],
                ],
                &userinfo,
            )?;
            str_value(url.to_bytes())
        }
        "derivePassword" => {
            arity(name, a, 5)?;
            // A uint32 parameter: Go converts a non-negative integer constant; any other value is
            // the wrong type.
            let counter = match &a[0] {
                // reflect's SetUint keeps the low 32 bits of a larger constant.
                Value::Int(i) if *i >= 0 => *i as u32,
                Value::Int(i) => return Err(format!("expected unsigned integer; found {i}")),
                Value::Missing => return Err("invalid value; expected uint32".to_owned()),
                other => {
                    return Err(format!(
                        "wrong type for value; expected uint32; got {}",
                        other.type_name()
                    ));
                }
            };
            let (kind, password, user, site) = (s(&a[1])?, s(&a[2])?, s(&a[3])?, s(&a[4])?);
            budget.expensive_call()?;
            zstr(super::sprig_crypto::derive_password(
                counter, kind, password, user, site,
            )?)
        }
        "decryptAES" => {
            arity(name, a, 2)?;
            zstr(super::sprig_crypto::decrypt_aes(s(&a[0])?, s(&a[1])?)?)
        }
        other => return Err(format!("function {other:?} is not supported by Signet")),
    })
}

/// Byte-for-byte agreement with Go is shown by the side-by-side fixture; these pin the bounds,
/// the refusals and the hostile inputs.
#[cfg(test)]
mod tests {
    use super::super::{Renderer, render};
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};
    use zeroize::Zeroizing;

    const CANARY: &str = "http://[zz%canary-7f3a";

    fn values() -> BTreeMap<String, Zeroizing<Vec<u8>>> {
        [
            ("secret", CANARY.as_bytes()),
            ("userinfo", b"%zz canary-7f3a"),
            ("user", b"admin"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Zeroizing::new(v.to_vec())))
        .collect()
    }

    fn ok(t: &str) -> String {
        let out = render("item", t, &values()).unwrap_or_else(|e| panic!("{t}: {e}"));
        String::from_utf8(out.to_vec()).unwrap()
    }

    fn err(t: &str) -> String {
        render("item", t, &values())
            .map(|o| String::from_utf8_lossy(&o).into_owned())
            .expect_err(t)
            .to_string()
    }

    /// Each `derivePassword` is an scrypt of 32 MiB: a template calling it in a loop stops at the
    /// fifth call of the object instead of holding a controller thread for minutes.
    #[test]
    fn derive_password_calls_are_bounded_per_object() {
        let call = r#"{{ derivePassword 1 "long" "password" "user" "example.com" }}"#;
        // Go's output (sprig v3.3.0).
        assert_eq!(ok(call), "ZedaFaxcZaso9*");
        assert_eq!(ok(&call.repeat(4)).len(), 4 * 14);
        // Go takes the counter only from a constant (a variable is an `int`, not a `uint32`);
        // Signet takes it from either.
        assert_eq!(
            ok(r#"{{ $c := 1 }}{{ derivePassword $c "long" "password" "user" "example.com" }}"#),
            "ZedaFaxcZaso9*"
        );
        let started = Instant::now();
        let e = err(&format!("{{{{ range until 100 }}}}{call}{{{{ end }}}}"));
        assert!(e.contains("more than 4 derivePassword calls"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(60));
        // The bound is per object: entries share it.
        let values = values();
        let mut renderer = Renderer::new(values.iter().map(|(k, v)| (k, v.as_slice())));
        for i in 0..4 {
            renderer.render(&format!("e{i}"), call).unwrap();
        }
        let e = renderer.render("e4", call).unwrap_err().to_string();
        assert!(e.contains("derivePassword calls"), "{e}");
    }

    /// sprig's decryptAES slices and indexes without checks: short input, partial blocks, an IV
    /// alone and a pad byte longer than the plaintext panic in Go (a template error there); here
    /// they are errors, and nothing panics.
    #[test]
    fn decrypt_aes_never_panics_on_hostile_ciphertexts() {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        // Made with sprig's format (IV "0123456789abcdef", PKCS#7), decrypted by Go to "hello world".
        let good = "MDEyMzQ1Njc4OWFiY2RlZo+Xfp56WiwUYa1JC5v52QQ=";
        assert_eq!(
            ok(&format!(r#"{{{{ decryptAES "secretkey" "{good}" }}}}"#)),
            "hello world"
        );
        for (len, says) in [
            (5, "slice bounds out of range [:16]"),
            (16, "index out of range"),
            (20, "not full blocks"),
        ] {
            let e = err(&format!(
                r#"{{{{ decryptAES "k" "{}" }}}}"#,
                b64(&vec![b'x'; len])
            ));
            assert!(e.contains(says), "{len}: {e}");
        }
        for len in 0..80 {
            for last in [0u8, 1, 15, 16, 17, 32, 200, 255] {
                let mut raw = vec![b'a'; len];
                if let Some(l) = raw.last_mut() {
                    *l = last;
                }
                for key in ["", "k", &"long".repeat(20)] {
                    let _ = super::super::sprig_crypto::decrypt_aes(
                        key.as_bytes(),
                        b64(&raw).as_bytes(),
                    );
                }
            }
        }
    }

    /// The case functions cost a step per 16 bytes: a loop over a large value runs out of steps
    /// instead of spending minutes in Unicode lookups.
    #[test]
    fn case_functions_on_large_values_are_bounded() {
        let values: BTreeMap<String, Zeroizing<Vec<u8>>> = [(
            "v".to_owned(),
            Zeroizing::new("aB1_ HTTPServer2xx 日ǅ²".repeat(40_000).into_bytes()),
        )]
        .into();
        let started = Instant::now();
        let e = render(
            "item",
            "{{ range until 200 }}{{ $_ := snakecase $.v }}{{ end }}",
            &values,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("steps"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    /// A chain of `mulf` multiplies digit counts; past 5,000 digits it is an error, not a
    /// quadratic big-number computation.
    #[test]
    fn decimal_chains_are_bounded() {
        let long = format!("{{{{ mulf {} }}}}", "1.2345678901234567 ".repeat(400));
        let e = err(&long);
        assert!(e.contains("more than 5000 digits"), "{e}");
        assert_eq!(
            ok("{{ mulf 1.5 2 2 }} {{ divf 1 3 }} {{ addf 0.1 0.2 }}"),
            "6 0.3333333333333333 0.3"
        );
        let e = err("{{ divf 1 0 }}");
        assert!(e.contains("decimal division by 0"), "{e}");
        // 755180643385.6562 is exactly halfway between two 16-digit decimals: Go's shortest digits
        // (and so its decimal) take the even one.
        assert_eq!(
            ok("{{ subf 755180643385.6562 0.3 }} {{ 755180643385.6562 }}"),
            "7.551806433853562e+11 7.551806433856562e+11"
        );
        let e = err(r#"{{ addf "inf" }}"#);
        assert!(e.contains("Cannot create a Decimal from +Inf"), "{e}");
    }

    #[test]
    fn semver_versions_print_and_answer_their_methods() {
        // Go's outputs (Masterminds/semver v3.4.0).
        assert_eq!(
            ok(
                r#"{{ $v := semver "v1.2.3-beta.1+build.5" }}{{ $v }} {{ $v.Major }} {{ $v.Prerelease }} {{ $v.Original }} {{ $v.IncMinor }} {{ typeOf $v }} {{ toJson $v }}"#
            ),
            r#"1.2.3-beta.1+build.5 1 beta.1 v1.2.3-beta.1+build.5 1.3.0 *semver.Version "1.2.3-beta.1+build.5""#
        );
        assert_eq!(
            ok(
                r#"{{ $v := semver "1.2.3-b" }}{{ $v.Compare (semver "1.2.3") }} {{ semver "3.0.0" | $v.LessThan }} {{ $v.SetPrerelease "rc.1" }}"#
            ),
            "-1 true 1.2.3-rc.1"
        );
        // A pointer: `eq` by identity, `deepEqual` (and `has`, `uniq`) by value; copystructure's
        // deep copy keeps no unexported field.
        assert_eq!(
            ok(
                r#"{{ $v := semver "1.2.3" }}{{ eq $v $v }} {{ eq $v (semver "1.2.3") }} {{ deepEqual $v (semver "1.2.3") }} {{ has $v (list (semver "1.2.3")) }} {{ deepCopy $v }}"#
            ),
            "true false true true 0.0.0"
        );
        assert_eq!(
            ok(
                r#"{{ semverCompare "^1.2.3" "1.9.9" }} {{ semverCompare "1.2.3 - 2.3.4" "2.3.5" }}"#
            ),
            "true false"
        );
    }

    /// `%T` names the argument's type (it printed `%!T(int=1)`).
    #[test]
    fn printf_t_names_the_type_as_go_does() {
        // Go's output.
        assert_eq!(
            ok(
                r#"{{ printf "%T|%10T|%-8T|%.3T|%T|%T|%T" nil 1 "s" (dict) . (semver "1") (semver "1").IncMajor }}"#
            ),
            "<nil>|       int|string  |map|map[string]string|*semver.Version|semver.Version"
        );
    }

    /// What Signet cannot do with a version is an error that says so, never a wrong output.
    #[test]
    fn semver_methods_signet_cannot_call_are_refused_clearly() {
        for (t, says) in [
            (
                r#"{{ (semver "1.2.3").MarshalJSON }}"#,
                "method MarshalJSON of a semver version is not supported by Signet",
            ),
            (
                r#"{{ printf "%d" (semver "1.2.3") }}"#,
                "a semver version takes only the verbs %v %s %q %x %X in Signet",
            ),
            (
                r#"{{ (semver "9223372036854775808.0.0").Major }}"#,
                "above 9223372036854775807 is not supported by Signet",
            ),
            (
                r#"{{ (semver "1.2.3").Nope }}"#,
                "can't evaluate field Nope in type *semver.Version",
            ),
            (
                r#"{{ (semver "1.2.3").IncMajor.LessThan (semver "2.0.0") }}"#,
                "can't evaluate field LessThan in type semver.Version",
            ),
        ] {
            let e = err(t);
            assert!(e.contains(says), "{t}: {e}");
        }
    }

    #[test]
    fn semver_constraints_are_bounded() {
        let huge = "1.2.3 - 2.3.4 ".repeat(1300);
        let e = err(&format!(r#"{{{{ semverCompare "{huge}" "1.5.0" }}}}"#));
        assert!(
            e.contains("more than 16384 bytes in a semver constraint"),
            "{e}"
        );
        let within = "1.2.3 - 2.3.4 ".repeat(1100);
        let started = Instant::now();
        assert_eq!(
            ok(&format!(r#"{{{{ semverCompare "{within}" "1.5.0" }}}}"#)),
            "true"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    /// Go's messages for these quote the URL, the constraint or the version: with a value as the
    /// argument, Signet names the function and withholds the message.
    #[test]
    fn errors_of_the_new_functions_never_show_values() {
        for t in [
            "{{ urlParse .secret }}",
            "{{ urlJoin (dict \"userinfo\" .userinfo) }}",
            "{{ semver .secret }}",
            "{{ semverCompare .secret \"1.0.0\" }}",
            "{{ semverCompare \">1\" .secret }}",
            "{{ decryptAES \"k\" .secret }}",
            "{{ divf 1 (subf .secret .secret) }}",
        ] {
            let e = err(t);
            assert!(!e.contains("canary"), "{t}: {e}");
            assert!(e.contains("error calling"), "{t}: {e}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Any bytes through every parser here: an output or an error, never a panic.
        #[test]
        fn any_value_renders_or_fails_without_panicking(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let values: BTreeMap<String, Zeroizing<Vec<u8>>> =
                [("v".to_owned(), Zeroizing::new(v))].into();
            for t in [
                "{{ snakecase .v }}{{ kebabcase .v }}{{ camelcase .v }}",
                "{{ urlParse .v }}",
                "{{ urlJoin (urlParse .v) }}",
                "{{ urlJoin (dict \"userinfo\" .v \"host\" .v \"path\" .v) }}",
                "{{ semver .v }}",
                "{{ semverCompare .v \"1.0.0\" }}",
                "{{ semverCompare \">=1\" .v }}",
                "{{ decryptAES .v .v }}",
                "{{ addf .v .v }}{{ divf .v .v }}",
            ] {
                let _ = render("item", t, &values);
            }
        }
    }
}
