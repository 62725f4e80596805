//! The functions External Secrets Operator (v0.16.2, engine v2) adds to sprig's in its templates,
//! as far as Signet renders them: [`FUNCTIONS`]. Only [`super::Dialect::ExternalSecrets`]
//! templates may call them; a Bitnami template naming one is refused before rendering ("not
//! defined"), as Bitnami's controller refuses it.

use super::Budget;
use super::exec::arity;
use super::value::Value;

type R<T> = Result<T, String>;

/// ESO's functions Signet renders, byte for byte as ESO does.
pub const FUNCTIONS: &[&str] = &[
    "toYaml",
    "fromYaml",
    "filterPEM",
    "filterCertChain",
    "jwkPublicKeyPem",
    "jwkPrivateKeyPem",
];

/// Calls ESO function `name`, or `None` when `name` is not one of [`FUNCTIONS`].
pub(super) fn call(name: &str, a: &[Value], budget: &mut Budget) -> Option<R<Value>> {
    if !FUNCTIONS.contains(&name) {
        return None;
    }
    Some(dispatch(name, a, budget))
}

fn dispatch(name: &str, a: &[Value], budget: &mut Budget) -> R<Value> {
    let string = |v: &Value| -> R<super::value::Bytes> {
        match v {
            Value::Str(s) => Ok(s.clone()),
            Value::Missing => Err("invalid value; expected string".to_owned()),
            other => Err(format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            )),
        }
    };
    match name {
        "toYaml" => {
            arity(name, a, 1)?;
            super::eso_to_yaml::to_yaml(&a[0])
        }
        "fromYaml" => {
            arity(name, a, 1)?;
            let src = string(&a[0])?;
            // Parsing costs about one step per 64 bytes read.
            budget.spend((src.len() / 64) as u64)?;
            super::eso_yaml::from_yaml(&src)
        }
        "filterPEM" => {
            arity(name, a, 2)?;
            let (kind, input) = (string(&a[0])?, string(&a[1])?);
            super::eso_pem::filter_pem(&kind, &input)
        }
        "filterCertChain" => {
            arity(name, a, 2)?;
            let (kind, input) = (string(&a[0])?, string(&a[1])?);
            super::eso_pem::filter_cert_chain(&kind, &input)
        }
        "jwkPublicKeyPem" => {
            arity(name, a, 1)?;
            super::eso_jwk::public_key_pem(&string(&a[0])?)
        }
        "jwkPrivateKeyPem" => {
            arity(name, a, 1)?;
            super::eso_jwk::private_key_pem(&string(&a[0])?)
        }
        _ => Err(format!("function {name:?} not defined")),
    }
}
