//! Runs a parsed template as Go's `text/template` does: dot, variables, pipelines (the piped value
//! is the last argument), `if`/`range`/`with`/`template`, Go's built-in functions, and sprig's
//! through [`super::sprig`]. Every step is counted against a [`Budget`] shared by all the entries of
//! one SealedSecret, so no template can loop, recurse or allocate without bound.

use super::parse::{MAX_DEPTH, Node, Parsed, Pipe, Term};
use super::value::{Value, bytes, str_value, zstr};

use super::{Budget, fmt, sprig};
use std::cmp::Ordering;
use zeroize::Zeroizing;

/// What a node's execution asks of the enclosing `range`.
enum Flow {
    Next,
    Break,
    Continue,
}

pub struct Exec<'a> {
    parsed: &'a Parsed,
    vars: Vec<(String, Value)>,
    budget: &'a mut Budget,
    depth: usize,
    /// `missingkey=error`: a missing map entry named as a field is an error, not "no value".
    missing_key_error: bool,
    pub out: Zeroizing<Vec<u8>>,
}

type R<T> = Result<T, String>;

impl<'a> Exec<'a> {
    pub fn new(
        parsed: &'a Parsed,
        root: Value,
        budget: &'a mut Budget,
        missing_key_error: bool,
    ) -> Self {
        Exec {
            parsed,
            vars: vec![("$".to_owned(), root)],
            budget,
            depth: 0,
            missing_key_error,
            out: Zeroizing::new(Vec::new()),
        }
    }

    pub fn run(&mut self) -> R<()> {
        let dot = self.vars[0].1.clone();
        let parsed = self.parsed;
        self.list(&parsed.body, &dot)?;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> R<()> {
        if self.out.len().saturating_add(bytes.len()) > super::MAX_RENDERED_BYTES {
            return Err(format!(
                "renders to more than {} bytes, more than a Secret holds",
                super::MAX_RENDERED_BYTES
            ));
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn list(&mut self, nodes: &[Node], dot: &Value) -> R<Flow> {
        let mark = self.vars.len();
        let result = self.list_inner(nodes, dot);
        self.vars.truncate(mark);
        result
    }

    fn list_inner(&mut self, nodes: &[Node], dot: &Value) -> R<Flow> {
        for node in nodes {
            self.budget.step()?;
            match node {
                Node::Text(t) => self.write(t.as_bytes())?,
                Node::Action(pipe) => {
                    let v = self.pipe(pipe, dot)?;
                    if pipe.vars.is_empty() {
                        let mut buf = Zeroizing::new(Vec::new());
                        print_value(&v, &mut buf)?;
                        self.write(&buf)?;
                    }
                }
                Node::If(pipe, body, otherwise) | Node::With(pipe, body, otherwise) => {
                    let mark = self.vars.len();
                    let v = self.pipe(pipe, dot)?;
                    let is_with = matches!(node, Node::With(..));
                    let flow = if v.truth() {
                        self.list(body, if is_with { &v } else { dot })?
                    } else {
                        self.list(otherwise, dot)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Next) {
                        return Ok(flow);
                    }
                }
                Node::Range(pipe, body, otherwise) => self.range(pipe, body, otherwise, dot)?,
                Node::Template(name, pipe) => {
                    let body = self
                        .parsed
                        .defines
                        .get(name)
                        .ok_or_else(|| format!("no such template {name:?}"))?;
                    let new_dot = match pipe {
                        Some(p) => self.pipe(p, dot)?,
                        None => Value::Nil,
                    };
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(format!("templates nested more than {MAX_DEPTH} deep"));
                    }
                    let saved =
                        std::mem::replace(&mut self.vars, vec![("$".to_owned(), new_dot.clone())]);
                    let result = self.list(body, &new_dot);
                    self.vars = saved;
                    self.depth -= 1;
                    result?;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Next)
    }

    fn range(&mut self, pipe: &Pipe, body: &[Node], otherwise: &[Node], dot: &Value) -> R<()> {
        let mark = self.vars.len();
        // The pipeline's variables are the loop's, set on each iteration.
        let value = self.commands(&pipe.cmds, dot)?;
        let items: Vec<(Value, Value)> = match &value {
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                .collect(),
            Value::Strings(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), Value::Str(v.clone())))
                .collect(),
            Value::Dict(d) => d
                .borrow()
                .iter()
                .map(|(k, v)| (str_value(k.as_bytes()), v.clone()))
                .collect(),
            Value::StrMap(d) => d
                .iter()
                .map(|(k, v)| (str_value(k.as_bytes()), Value::Str(v.clone())))
                .collect(),
            Value::Int(n) | Value::Int64(n) => {
                if *n > super::MAX_LIST_LEN as i64 {
                    return Err(format!(
                        "range over {n}: more than {} iterations",
                        super::MAX_LIST_LEN
                    ));
                }
                (0..(*n).max(0))
                    .map(|i| (Value::Int(i), value_int_like(&value, i)))
                    .collect()
            }
            Value::Missing | Value::Nil => Vec::new(),
            other => return Err(format!("range can't iterate over {}", other.type_name())),
        };
        if items.is_empty() {
            self.list(otherwise, dot)?;
            return Ok(());
        }
        for (key, elem) in items {
            self.budget.step()?;
            match pipe.vars.as_slice() {
                [] => {}
                [v] => self.set_var(v, elem.clone(), false)?,
                [k, v] => {
                    self.set_var(k, key.clone(), false)?;
                    self.set_var(v, elem.clone(), false)?;
                }
                _ => return Err("too many variables in range".to_owned()),
            }
            let flow = self.list(body, &elem)?;
            self.vars.truncate(mark);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn set_var(&mut self, name: &str, value: Value, assign: bool) -> R<()> {
        if assign {
            let slot = self
                .vars
                .iter_mut()
                .rev()
                .find(|(n, _)| n == name)
                .ok_or_else(|| format!("undefined variable: {name}"))?;
            slot.1 = value;
        } else {
            self.vars.push((name.to_owned(), value));
        }
        Ok(())
    }

    fn var(&self, name: &str) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable: {name}"))
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> R<Value> {
        let value = self.commands(&pipe.cmds, dot)?;
        for name in &pipe.vars {
            self.set_var(name, value.clone(), pipe.assign)?;
        }
        Ok(value)
    }

    fn commands(&mut self, cmds: &[Vec<Term>], dot: &Value) -> R<Value> {
        let mut piped: Option<Value> = None;
        for cmd in cmds {
            self.budget.step()?;
            piped = Some(self.command(cmd, dot, piped)?);
        }
        piped.ok_or_else(|| "empty pipeline".to_owned())
    }

    fn command(&mut self, terms: &[Term], dot: &Value, piped: Option<Value>) -> R<Value> {
        let (first, args) = terms.split_first().ok_or("empty command")?;
        if let Term::Func(name) = first {
            return self.call(name, args, dot, piped);
        }
        if !args.is_empty() || piped.is_some() {
            return self.method_call(first, args, dot, piped);
        }
        self.term(first, dot)
    }

    /// `x.Method arg…`: a method given arguments. Only a time (`$t.Format "2006"`) and a semver
    /// version (`$v.LessThan $w`) have such methods; anything else is Go's "non-function" error.
    fn method_call(
        &mut self,
        term: &Term,
        args: &[Term],
        dot: &Value,
        piped: Option<Value>,
    ) -> R<Value> {
        let not_function = || "can't give argument to non-function".to_owned();
        let (receiver, method) = match term {
            Term::Dot(fields) => {
                let (method, path) = fields.split_last().ok_or_else(not_function)?;
                (self.fields_of(dot.clone(), path)?, method)
            }
            Term::Var(name, fields) => {
                let (method, path) = fields.split_last().ok_or_else(not_function)?;
                (self.fields_of(self.var(name)?, path)?, method)
            }
            Term::Paren(pipe, fields) => {
                let (method, path) = fields.split_last().ok_or_else(not_function)?;
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(format!("nested more than {MAX_DEPTH} deep"));
                }
                let v = self.pipe(pipe, dot);
                self.depth -= 1;
                (self.fields_of(v?, path)?, method)
            }
            _ => return Err(not_function()),
        };
        if !matches!(receiver, Value::Time(_) | Value::Semver(_)) {
            return Err(not_function());
        }
        self.budget.step()?;
        let literal = piped.is_none()
            && args.iter().all(|t| {
                matches!(
                    t,
                    Term::Str(_) | Term::Int(_) | Term::Float(_) | Term::Bool(_)
                )
            });
        let constant: Vec<bool> = args.iter().map(|t| matches!(t, Term::Int(_))).collect();
        let mut values = Vec::with_capacity(args.len() + 1);
        for term in args {
            values.push(self.arg(term, dot)?);
        }
        values.extend(piped);
        let result = match &receiver {
            Value::Time(t) => super::sprig_time::method(t, method, &values, &constant),
            Value::Semver(version) => semver_method_call(version, method, &values),
            _ => Err(not_function()),
        }
        .map_err(|e| call_error(method, &e, literal))?;
        self.budget.charge(&result)?;
        Ok(result)
    }

    fn term(&mut self, term: &Term, dot: &Value) -> R<Value> {
        Ok(match term {
            Term::Dot(fields) => self.fields_of(dot.clone(), fields)?,
            Term::Var(name, fields) => self.fields_of(self.var(name)?, fields)?,
            Term::Func(name) => self.call(name, &[], dot, None)?,
            Term::Str(s) => str_value(s.clone()),
            Term::Int(i) => Value::Int(*i),
            Term::Float(f) => Value::Float(*f),
            Term::Bool(b) => Value::Bool(*b),
            Term::Nil => return Err("nil is not a command".to_owned()),
            Term::Paren(pipe, fields) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(format!("nested more than {MAX_DEPTH} deep"));
                }
                let v = self.pipe(pipe, dot);
                self.depth -= 1;
                self.fields_of(v?, fields)?
            }
        })
    }

    fn fields_of(&self, v: Value, fields: &[String]) -> R<Value> {
        fields_of(v, fields, self.missing_key_error)
    }

    /// An argument: `nil` is allowed here (not as a command).
    fn arg(&mut self, term: &Term, dot: &Value) -> R<Value> {
        match term {
            Term::Nil => Ok(Value::Nil),
            t => self.term(t, dot),
        }
    }

    fn call(&mut self, name: &str, args: &[Term], dot: &Value, piped: Option<Value>) -> R<Value> {
        self.budget.step()?;
        // `and` and `or` evaluate their arguments only as far as needed.
        if name == "and" || name == "or" {
            if args.is_empty() && piped.is_none() {
                return Err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let mut last = Value::Nil;
            for term in args {
                last = self.arg(term, dot)?;
                if last.truth() != (name == "and") {
                    return Ok(last);
                }
            }
            return Ok(piped.unwrap_or(last));
        }
        let literal = piped.is_none()
            && args.iter().all(|t| {
                matches!(
                    t,
                    Term::Str(_) | Term::Int(_) | Term::Float(_) | Term::Bool(_) | Term::Nil
                )
            });
        let mut values = Vec::with_capacity(args.len() + 1);
        for term in args {
            values.push(self.arg(term, dot)?);
        }
        values.extend(piped);
        for v in &values {
            self.budget.charge(v)?;
        }
        let result = match builtin(name, &values) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => sprig::call(name, &values, self.budget),
            Err(e) => Err(e),
        }
        .map_err(|e| call_error(name, &e, literal))?;
        self.budget.charge(&result)?;
        Ok(result)
    }
}

fn value_int_like(value: &Value, i: i64) -> Value {
    match value {
        Value::Int64(_) => Value::Int64(i),
        _ => Value::Int(i),
    }
}

/// Function errors whose text holds no argument's content: arity, types and the budget.
const VALUE_FREE_ERRORS: &[&str] = &[
    "wrong number of args",
    "wrong type for value",
    "invalid value; expected",
    "takes more than",
    "its functions produce more than",
    "more than ",
    "renders to more than",
    "depends on the clock",
    "the method ",
    "value nested more than",
    // External Secrets Operator's functions: Go's constant texts, and Signet's bounds.
    "YAML nested more than",
    "YAML expands to more than",
    "error filtering pem: found junk",
    "x509: malformed certificate",
    "x509: trailing data",
    "no leaf certificate found",
    "found multiple leaf or disjunct certificates",
    "constructing chain resulted in cycle",
    "x509: unsupported public key type",
    "x509: unknown key type while marshaling PKCS#8",
    "x509: invalid elliptic curve public key",
    "x509: failed to marshal EC private key",
    "jwk: ",
    "crypto/rsa: invalid RSA private key",
    "printf: a semver version takes only",
    // A semver version's method that does not exist, or that Signet does not call: names only.
    "can't evaluate field ",
    "method ",
];

/// The error of a function call as the object's status may show it. A function's message may
/// quote its arguments (`fail .password`, a regexp or a number that did not parse), and those may
/// be values: it is kept only when every argument is a constant of the template, or when it is
/// one of [`VALUE_FREE_ERRORS`]; otherwise only the function is named.
fn call_error(name: &str, message: &str, literal_args: bool) -> String {
    if literal_args || VALUE_FREE_ERRORS.iter().any(|p| message.starts_with(p)) {
        format!("error calling {name}: {message}")
    } else {
        format!("error calling {name} (its message is withheld: it may hold a value)")
    }
}

/// `v.a.b`: map entries (a missing one is Go's "no value", or an error with `missingkey=error`).
fn fields_of(mut v: Value, fields: &[String], missing_key_error: bool) -> R<Value> {
    for f in fields {
        v = match &v {
            Value::StrMap(m) if missing_key_error && !m.contains_key(f) => {
                return Err(format!("map has no entry for key {f:?}"));
            }
            Value::Dict(d) if missing_key_error && !d.borrow().contains_key(f) => {
                return Err(format!("map has no entry for key {f:?}"));
            }
            Value::StrMap(m) => m.get(f).map_or(Value::Missing, |s| Value::Str(s.clone())),
            Value::Dict(d) => d.borrow().get(f).cloned().unwrap_or(Value::Missing),
            Value::Semver(version) => semver_method(version, f)?,
            Value::Missing | Value::Nil => return Err(format!("nil data; no entry for key {f:?}")),
            // A method without arguments (`$t.Year`).
            Value::Time(t) => super::sprig_time::method(t, f, &[], &[])?,
            other => {
                return Err(format!(
                    "can't evaluate field {f} in type {}",
                    other.type_name()
                ));
            }
        };
    }
    Ok(v)
}

/// `.Method` of a semver version: the methods without arguments that return one value. Those
/// with arguments (`Compare`, `LessThan`, …) are refused: a template cannot call them here.
fn semver_method(v: &super::sprig_semver::Version, method: &str) -> R<Value> {
    let segment = |n: u64| {
        i64::try_from(n).map(Value::Int64).map_err(|_| {
            format!(
                "semver segment {method} above {} is not supported by Signet",
                i64::MAX
            )
        })
    };
    Ok(match method {
        "Major" => segment(v.major)?,
        "Minor" => segment(v.minor)?,
        "Patch" => segment(v.patch)?,
        "Prerelease" => str_value(v.pre.clone()),
        "Metadata" => str_value(v.metadata.clone()),
        "String" => str_value(v.to_bytes()),
        // A pointer-receiver method: not in the method set of a `semver.Version` value.
        "Original" if v.pointer => str_value(v.original.clone()),
        "IncMajor" | "IncMinor" | "IncPatch" => {
            Value::Semver(std::rc::Rc::new(v.incremented(method)))
        }
        "LessThan" | "LessThanEqual" | "GreaterThan" | "GreaterThanEqual" | "Equal" | "Compare"
        | "SetPrerelease" | "SetMetadata" => {
            return Err(format!("wrong number of args for {method}: want 1 got 0"));
        }
        "MarshalJSON" | "MarshalText" | "Value" | "UnmarshalJSON" | "UnmarshalText" | "Scan" => {
            return Err(format!(
                "method {method} of a semver version is not supported by Signet"
            ));
        }
        _ => {
            return Err(format!(
                "can't evaluate field {method} in type {}",
                if v.pointer {
                    "*semver.Version"
                } else {
                    "semver.Version"
                }
            ));
        }
    })
}

/// `.Method arg` of a semver version: the comparisons (pointer receivers, a `*semver.Version`
/// argument) and `SetPrerelease`/`SetMetadata`.
fn semver_method_call(v: &super::sprig_semver::Version, method: &str, args: &[Value]) -> R<Value> {
    use super::sprig_semver::Version;
    let one = |want: &str| -> R<&Value> {
        match args {
            [a] => Ok(a),
            _ => Err(format!(
                "wrong number of args for {method}: want 1 got {}",
                args.len()
            )),
        }
        .and_then(|a| {
            if want == "string" && !a.is_str() {
                return Err(format!(
                    "wrong type for value; expected string; got {}",
                    a.type_name()
                ));
            }
            Ok(a)
        })
    };
    let other = |a: &Value| -> R<std::rc::Rc<Version>> {
        match a {
            Value::Semver(o) if o.pointer => Ok(o.clone()),
            other => Err(format!(
                "wrong type for value; expected *semver.Version; got {}",
                other.type_name()
            )),
        }
    };
    let compare = matches!(
        method,
        "LessThan" | "LessThanEqual" | "GreaterThan" | "GreaterThanEqual" | "Equal" | "Compare"
    );
    if compare && !v.pointer {
        return Err(format!(
            "can't evaluate field {method} in type semver.Version"
        ));
    }
    Ok(match method {
        _ if compare => {
            let o = other(one("*semver.Version")?)?;
            let order = v.compare(&o);
            use std::cmp::Ordering::*;
            match method {
                "LessThan" => Value::Bool(order == Less),
                "LessThanEqual" => Value::Bool(order != Greater),
                "GreaterThan" => Value::Bool(order == Greater),
                "GreaterThanEqual" => Value::Bool(order != Less),
                "Equal" => Value::Bool(order == Equal),
                _ => Value::Int(match order {
                    Less => -1,
                    Equal => 0,
                    Greater => 1,
                }),
            }
        }
        "SetPrerelease" | "SetMetadata" => {
            let Value::Str(s) = one("string")? else {
                unreachable!("checked by one()")
            };
            Value::Semver(std::rc::Rc::new(
                v.with_suffix(method == "SetPrerelease", s)?,
            ))
        }
        _ => {
            return Err(format!(
                "method {method} of a semver version is not supported by Signet"
            ));
        }
    })
}

/// Go's `printValue`: values print with `fmt.Sprint`.
/// A nil interface (what `first` of an empty list or `fromJson` of bad JSON return) prints as
/// `<no value>`, like a missing entry.
pub fn print_value(v: &Value, out: &mut Vec<u8>) -> R<()> {
    match v {
        Value::Nil => v.print(out, 0).map(|()| {
            out.truncate(out.len() - b"<nil>".len());
            out.extend_from_slice(b"<no value>");
        }),
        v => v.print(out, 0),
    }
}

/// Go's predefined functions (`nil` when `name` is not one).
fn builtin(name: &str, a: &[Value]) -> R<Option<Value>> {
    let result: R<Value> = match name {
        "not" => arity(name, a, 1).map(|()| Value::Bool(!a[0].truth())),
        "len" => arity(name, a, 1).and_then(|()| {
            Ok(Value::Int(match &a[0] {
                Value::Str(s) => s.len(),
                Value::List(l) => l.len(),
                Value::Strings(l) => l.len(),
                Value::Dict(d) => d.borrow().len(),
                Value::StrMap(d) => d.len(),
                other => return Err(format!("len of type {}", other.type_name())),
            } as i64))
        }),
        "index" => index(a),
        "print" => sprint(a).map(zstr),
        "println" => sprintln(a).map(zstr),
        "printf" => match a.split_first() {
            Some((Value::Str(f), rest)) => fmt::sprintf(f, rest).map(zstr),
            _ => Err("printf needs a format string".to_owned()),
        },
        "eq" => eq(a),
        "ne" => arity(name, a, 2).and_then(|()| compare_eq(&a[0], &a[1]).map(|e| Value::Bool(!e))),
        "lt" | "le" | "gt" | "ge" => arity(name, a, 2).and_then(|()| {
            let o = compare(&a[0], &a[1])?;
            Ok(Value::Bool(match name {
                "lt" => o == Ordering::Less,
                "le" => o != Ordering::Greater,
                "gt" => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }),
        "html" => sprint(a).map(|t| str_value(html_escape(&t))),
        "js" => sprint(a).map(|t| str_value(js_escape(&t))),
        "urlquery" => sprint(a).map(|t| str_value(url_query_escape(&t))),
        "call" => Err("call: no function values exist in a SealedSecret template".to_owned()),
        _ => return Ok(None),
    };
    result.map(Some)
}

pub fn arity(name: &str, a: &[Value], n: usize) -> R<()> {
    if a.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            a.len()
        ));
    }
    Ok(())
}

/// `fmt.Sprint`: a space between operands when neither is a string.
pub fn sprint(a: &[Value]) -> R<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !v.is_str() && !a[i - 1].is_str() {
            out.push(b' ');
        }
        fmt_arg(v, &mut out)?;
    }
    Ok(out)
}

fn sprintln(a: &[Value]) -> R<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    for (i, v) in a.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        fmt_arg(v, &mut out)?;
    }
    out.push(b'\n');
    Ok(out)
}

/// A value given to `fmt` as an argument (a missing entry arrives as nil).
pub fn fmt_arg(v: &Value, out: &mut Vec<u8>) -> R<()> {
    match v {
        Value::Missing => {
            out.extend_from_slice(b"<nil>");
            Ok(())
        }
        v => v.print(out, 0),
    }
}

fn index(a: &[Value]) -> R<Value> {
    let (first, keys) = a
        .split_first()
        .ok_or("wrong number of args for index: want at least 1 got 0")?;
    let mut v = first.clone();
    for key in keys {
        v = match (&v, key) {
            (Value::StrMap(m), Value::Str(k)) => {
                let k = std::str::from_utf8(k).unwrap_or("\u{fffd}");
                Value::Str(m.get(k).cloned().unwrap_or_else(|| bytes(Vec::new())))
            }
            (Value::Dict(d), Value::Str(k)) => {
                let k = std::str::from_utf8(k).unwrap_or("\u{fffd}");
                d.borrow().get(k).cloned().unwrap_or(Value::Missing)
            }
            (Value::StrMap(_) | Value::Dict(_), Value::Missing | Value::Nil) => {
                return Err("value is nil; should be of type string".to_owned());
            }
            (Value::List(_) | Value::Strings(_) | Value::Str(_), k) => {
                let i = int_index(k)?;
                let len = match &v {
                    Value::List(l) => l.len(),
                    Value::Strings(l) => l.len(),
                    Value::Str(s) => s.len(),
                    _ => 0,
                };
                if i < 0 || i as usize >= len {
                    return Err(format!("error calling index: index out of range: {i}"));
                }
                let i = i as usize;
                match &v {
                    Value::List(l) => l[i].clone(),
                    Value::Strings(l) => Value::Str(l[i].clone()),
                    Value::Str(s) => Value::Int(i64::from(s[i])),
                    _ => unreachable!("matched above"),
                }
            }
            (Value::Missing | Value::Nil, _) => return Err("index of untyped nil".to_owned()),
            (v, _) => return Err(format!("can't index item of type {}", v.type_name())),
        };
    }
    Ok(v)
}

fn int_index(v: &Value) -> R<i64> {
    match v {
        Value::Int(i) | Value::Int64(i) => Ok(*i),
        other => Err(format!(
            "cannot index slice/array with type {}",
            other.type_name()
        )),
    }
}

/// Go's basic kinds for comparisons.
#[derive(PartialEq)]
enum Basic<'v> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'v [u8]),
}

fn basic(v: &Value) -> Option<Basic<'_>> {
    Some(match v {
        Value::Bool(b) => Basic::Bool(*b),
        Value::Int(i) | Value::Int64(i) => Basic::Int(*i),
        Value::Float(f) => Basic::Float(*f),
        Value::Str(s) => Basic::Str(s),
        _ => return None,
    })
}

fn compare_eq(a: &Value, b: &Value) -> R<bool> {
    match (basic(a), basic(b)) {
        (Some(x), Some(y)) => {
            if std::mem::discriminant(&x) != std::mem::discriminant(&y) {
                return Err("incompatible types for comparison".to_owned());
            }
            Ok(x == y)
        }
        _ => match (a, b) {
            // Go compares the struct: instant, and location by identity.
            (Value::Time(x), Value::Time(y)) => Ok(x.same(y)),
            (Value::Time(_), _) | (_, Value::Time(_)) if basic(a).or(basic(b)).is_some() => {
                Err("incompatible types for comparison".to_owned())
            }
            // Go's ==: pointers (what `semver` returns) by identity, structs by their fields.
            (Value::Semver(x), Value::Semver(y)) if x.pointer == y.pointer => Ok(if x.pointer {
                std::rc::Rc::ptr_eq(x, y)
            } else {
                x == y
            }),
            (Value::Nil | Value::Missing, Value::Nil | Value::Missing) => Ok(true),
            (Value::Nil | Value::Missing, _) | (_, Value::Nil | Value::Missing) => Ok(false),
            _ => Err("invalid type for comparison".to_owned()),
        },
    }
}

fn eq(a: &[Value]) -> R<Value> {
    let (first, rest) = a.split_first().ok_or("missing argument for comparison")?;
    if rest.is_empty() {
        return Err("missing argument for comparison".to_owned());
    }
    for other in rest {
        if compare_eq(first, other)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn compare(a: &Value, b: &Value) -> R<Ordering> {
    match (basic(a), basic(b)) {
        (Some(Basic::Int(x)), Some(Basic::Int(y))) => Ok(x.cmp(&y)),
        (Some(Basic::Float(x)), Some(Basic::Float(y))) => x
            .partial_cmp(&y)
            .ok_or_else(|| "NaN in comparison".to_owned()),
        (Some(Basic::Str(x)), Some(Basic::Str(y))) => Ok(x.cmp(y)),
        (Some(_), Some(_)) => Err("incompatible types for comparison".to_owned()),
        _ => Err("invalid type for comparison".to_owned()),
    }
}

/// `template.HTMLEscapeString`.
fn html_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            0 => out.extend_from_slice("\u{fffd}".as_bytes()),
            c => out.push(c),
        }
    }
    out
}

/// `template.JSEscapeString`.
fn js_escape(s: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(s);
    let mut out = String::with_capacity(s.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_ascii() || super::fmt::is_go_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out.into_bytes()
}

/// `url.QueryEscape`.
pub fn url_query_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &c in s {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(c),
            b' ' => out.push(b'+'),
            c => out.extend_from_slice(format!("%{c:02X}").as_bytes()),
        }
    }
    out
}
