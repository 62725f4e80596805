//! External Secrets Operator's own functions against what ESO v0.16.2's template engine renders
//! (`testdata/eso-functions.json`, generated with ESO's `FuncMap` over the same values).

use super::{Dialect, Renderer};
use std::collections::BTreeMap;

struct Case {
    name: String,
    template: String,
    ok: bool,
    want: String,
}

fn fixture() -> (BTreeMap<String, Vec<u8>>, Vec<Case>) {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("testdata/eso-functions.json")).unwrap();
    let values = doc["values"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
        .collect();
    let cases = doc["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Case {
            name: e[0].as_str().unwrap().to_owned(),
            template: e[1].as_str().unwrap().to_owned(),
            ok: e[2] == "OK",
            want: e[3].as_str().unwrap().to_owned(),
        })
        .collect();
    (values, cases)
}

fn eso(values: &BTreeMap<String, Vec<u8>>) -> Renderer {
    Renderer::with_dialect(
        values.iter().map(|(k, v)| (k, v.as_slice())),
        Dialect::ExternalSecrets,
    )
}

#[test]
fn eso_functions_render_as_eso_renders_them() {
    let (values, cases) = fixture();
    let mut failures = Vec::new();
    for case in &cases {
        let got = eso(&values).render(&case.name, &case.template);
        match (case.ok, got) {
            (true, Ok(out)) if out.as_slice() == case.want.as_bytes() => {}
            (false, Err(_)) => {}
            (_, got) => failures.push(format!(
                "{}: ESO {} {:?}\n  Signet {:?}",
                case.name,
                if case.ok { "renders" } else { "fails:" },
                case.want,
                got.map(|o| String::from_utf8_lossy(&o).into_owned())
                    .map_err(|e| e.to_string()),
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
