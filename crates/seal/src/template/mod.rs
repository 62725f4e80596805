//! Rendering `spec.template.data` as the Bitnami controller (v0.40.0) does: Go's `text/template`
//! over a `map[string]string` of the unsealed items, with the sprig functions Bitnami enables.
//!
//! * The language: text, `{{ pipeline }}` with `|`, variables (`$x := …`, `$x = …`, `$`), fields
//!   (`.name`, `$d.a.b`, `(pipe).a`), string/raw/number/char/bool/nil constants, `if`/`else if`/
//!   `else`, `range` (lists, maps in key order, integers; `break`/`continue`; `$i, $v :=`),
//!   `with`, `define`/`template`/`block`, comments and the `{{-`/`-}}` trim markers. A missing
//!   item prints `<no value>` and `index` of a missing item gives `""`, as in Go.
//! * Go's functions: `and or not len index print printf println eq ne lt le gt ge html js
//!   urlquery` (`call` is refused: there are no function values; sprig's `slice` replaces Go's,
//!   as in Bitnami).
//! * sprig's: see [`sprig::BITNAMI_FUNCTIONS`]; those in [`sprig::UNSUPPORTED`] (random, the clock,
//!   key generation) are refused before rendering with a
//!   message naming the function, as is any function Bitnami does not enable (`env`, `expandenv`,
//!   `getHostByName`, or unknown names).
//!
//! Every rendering is bounded: a rendered entry (and all entries together) hold at most
//! [`MAX_RENDERED_BYTES`]; the templates of one SealedSecret share one [`Budget`] of steps and of
//! bytes consumed and produced by functions, and of [`MAX_EXPENSIVE_CALLS`] scrypt-based
//! `derivePassword` calls; lists hold at most [`MAX_LIST_LEN`] items; nesting is at most 64 levels.
//! A hostile template fails with an error naming its item instead of stalling the controller.

pub mod eso;
mod eso_jwk;
mod eso_pem;
mod eso_to_yaml;
mod eso_yaml;
mod exec;
mod fmt;
mod go_strconv;
mod parse;
pub mod sprig;
mod sprig_case;
mod sprig_crypto;
mod sprig_decimal;
mod sprig_extra;
mod sprig_semver;
mod sprig_time;
mod sprig_url;
mod value;

use crate::SealError;
use std::collections::BTreeMap;
use std::rc::Rc;
use value::{Bytes, Value, bytes};
use zeroize::Zeroizing;

/// Largest rendered entry: a Secret holds at most 1 MiB.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;
/// Most items in a list a template builds (`until`, `splitList`, …).
pub const MAX_LIST_LEN: usize = 100_000;
/// Most steps (actions, commands, function calls, loop iterations) for all the templates of one
/// SealedSecret.
pub const MAX_STEPS: u64 = 200_000;
/// Most bytes the function calls of one SealedSecret's templates may consume and produce
/// together.
pub const MAX_WORK_BYTES: usize = 64 * 1024 * 1024;

/// Most `derivePassword` calls (each an scrypt with N=32768, r=8: 32 MiB and a few hundred
/// milliseconds of CPU) in all the templates of one SealedSecret.
pub const MAX_EXPENSIVE_CALLS: u32 = 4;

/// Go's predefined template functions.
pub const GO_BUILTINS: &[&str] = &[
    "and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt",
    "ge", "html", "js", "urlquery", "call",
];

/// What the templates of one SealedSecret may still spend, and the dicts they changed.
#[derive(Debug)]
pub struct Budget {
    steps: u64,
    bytes: usize,
    /// Every dict `set` changed: only `set` can make a dict hold itself, a cycle that reference
    /// counting never frees. They are emptied when the budget goes, so no template leaks memory
    /// at every reconcile.
    changed: Vec<value::Dict>,
    /// `derivePassword` calls left: each is an scrypt of 32 MiB and a few hundred milliseconds.
    expensive_calls: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            steps: MAX_STEPS,
            bytes: MAX_WORK_BYTES,
            changed: Vec::new(),
            expensive_calls: MAX_EXPENSIVE_CALLS,
        }
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        for dict in self.changed.drain(..) {
            if let Ok(mut entries) = dict.try_borrow_mut() {
                entries.clear();
            }
        }
    }
}

impl Budget {
    fn mutated(&mut self, dict: &value::Dict) {
        self.changed.push(Rc::clone(dict));
    }

    fn step(&mut self) -> Result<(), String> {
        self.spend(1)
    }

    fn spend(&mut self, steps: u64) -> Result<(), String> {
        self.steps = self.steps.checked_sub(steps).ok_or_else(|| {
            format!("takes more than {MAX_STEPS} steps (a loop or recursion too large)")
        })?;
        Ok(())
    }

    /// Counts one call of a CPU- and memory-heavy function (`derivePassword`).
    fn expensive_call(&mut self) -> Result<(), String> {
        self.expensive_calls = self.expensive_calls.checked_sub(1).ok_or_else(|| {
            format!("takes more than {MAX_EXPENSIVE_CALLS} derivePassword calls (each is an scrypt of 32 MiB)")
        })?;
        Ok(())
    }

    fn charge(&mut self, v: &Value) -> Result<(), String> {
        self.bytes = self.bytes.checked_sub(v.weight()).ok_or_else(|| {
            format!("its functions produce more than {MAX_WORK_BYTES} bytes in all")
        })?;
        Ok(())
    }
}

/// Whose template language a template is written in. Both are Go's `text/template` with sprig;
/// they differ in the functions they enable and in a missing map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The Bitnami controller's (v0.40.0): sprig minus `env`, `expandenv` and `getHostByName`;
    /// `.missing` prints `<no value>`.
    Bitnami,
    /// External Secrets Operator's engine v2: the same sprig functions, and ESO's own
    /// [`eso::FUNCTIONS`] (`toYaml`, `fromYaml`, `filterPEM`, `filterCertChain`, `jwkPublicKeyPem`,
    /// `jwkPrivateKeyPem`; the rest of ESO's additions, [`sprig::EXTERNAL_SECRETS_UNSUPPORTED`], are
    /// refused); `.missing` is an error, as ESO runs its templates with `missingkey=error`.
    ExternalSecrets,
}

/// Renders the template entries of one object over its values, sharing one budget.
pub struct Renderer {
    root: Rc<BTreeMap<String, Bytes>>,
    budget: Budget,
    dialect: Dialect,
}

impl Renderer {
    /// A renderer of Bitnami templates that see `values` (item name → plaintext) as `.`.
    pub fn new<'a>(values: impl IntoIterator<Item = (&'a String, &'a [u8])>) -> Self {
        Self::with_dialect(values, Dialect::Bitnami)
    }

    /// A renderer of `dialect` templates that see `values` (name → plaintext) as `.`.
    pub fn with_dialect<'a>(
        values: impl IntoIterator<Item = (&'a String, &'a [u8])>,
        dialect: Dialect,
    ) -> Self {
        let root = values
            .into_iter()
            .map(|(k, v)| (k.clone(), bytes(v.to_vec())))
            .collect();
        Renderer {
            root: Rc::new(root),
            budget: Budget::default(),
            dialect,
        }
    }

    /// Replaces the values later templates see, keeping what the budget has spent: one budget
    /// for templates rendered over different values (one per Secret key, say).
    pub fn set_values<'a>(&mut self, values: impl IntoIterator<Item = (&'a String, &'a [u8])>) {
        let root = values
            .into_iter()
            .map(|(k, v)| (k.clone(), bytes(v.to_vec())))
            .collect();
        self.root = Rc::new(root);
    }

    /// Renders `template`, the entry `item` of `spec.template.data`.
    pub fn render(&mut self, item: &str, template: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let fail = |reason: String| SealError::Template {
            key: item.to_owned(),
            reason,
        };
        let parsed = parse::parse(template).map_err(fail)?;
        check_functions(&parsed, self.dialect).map_err(fail)?;
        let mut exec = exec::Exec::new(
            &parsed,
            Value::StrMap(Rc::clone(&self.root)),
            &mut self.budget,
            self.dialect == Dialect::ExternalSecrets,
        );
        exec.run().map_err(fail)?;
        Ok(std::mem::take(&mut exec.out))
    }
}

/// External Secrets Operator's reading of a `KeysAndValues` template's output: YAML into a
/// `map[string]string` (numbers and booleans written as strings, a null as `""`, a list or map
/// refused), as sigs.k8s.io/yaml v1.4.0 reads it.
pub fn eso_string_map(src: &[u8]) -> Result<BTreeMap<String, String>, String> {
    eso_yaml::string_map(src)
}

/// Renders one template over `values` with a budget of its own.
pub fn render(
    item: &str,
    template: &str,
    values: &BTreeMap<String, Zeroizing<Vec<u8>>>,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    Renderer::new(values.iter().map(|(k, v)| (k, v.as_slice()))).render(item, template)
}

/// Refuses, before anything runs, a template naming a function that is not Go's, not enabled by
/// the dialect, or not supported by Signet (Go too checks function names when parsing).
fn check_functions(parsed: &parse::Parsed, dialect: Dialect) -> Result<(), String> {
    use parse::{Node, Pipe, Term};
    fn pipe(p: &Pipe, dialect: Dialect) -> Result<(), String> {
        for cmd in &p.cmds {
            for term in cmd {
                match term {
                    Term::Func(name) => {
                        if let Some(why) = sprig::refusal(name, dialect) {
                            return Err(why);
                        }
                    }
                    Term::Paren(inner, _) => pipe(inner, dialect)?,
                    _ => {}
                }
            }
        }
        Ok(())
    }
    fn nodes(list: &[Node], dialect: Dialect) -> Result<(), String> {
        for node in list {
            match node {
                Node::Action(p) => pipe(p, dialect)?,
                Node::If(p, a, b) | Node::Range(p, a, b) | Node::With(p, a, b) => {
                    pipe(p, dialect)?;
                    nodes(a, dialect)?;
                    nodes(b, dialect)?;
                }
                Node::Template(_, Some(p)) => pipe(p, dialect)?,
                _ => {}
            }
        }
        Ok(())
    }
    nodes(&parsed.body, dialect)?;
    parsed
        .defines
        .values()
        .try_for_each(|body| nodes(body, dialect))
}

#[cfg(test)]
mod eso_tests;
#[cfg(test)]
mod tests;
