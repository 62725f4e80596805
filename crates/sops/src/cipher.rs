//! The `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` value codec (sops' `aes/cipher.go` format).
//!
//! - AES-256-GCM with the file's 32-byte data key and a **32-byte** random IV (GCM with a non-standard
//!   nonce size, as sops uses it); the 16-byte tag is stored apart from the ciphertext.
//! - `data`, `iv`, `tag` are standard base64 with padding.
//! - The AAD is the value's path (see [`crate::engine`]): map keys joined with `:` plus a trailing
//!   `:`; for the MAC it is the `lastmodified` string.
//! - Plaintext forms, exactly as sops writes them: `str` the UTF-8 bytes; `int` decimal;
//!   `float` the shortest decimal that round-trips, never with an exponent (`3.0` → `3`,
//!   `1e21` → `1000000000000000000000`); `bool` `True`/`False`; `time` RFC 3339 with the fraction
//!   trimmed of trailing zeros (Go's `time.RFC3339Nano`), `Z` for UTC; `bytes` raw; `comment` the
//!   comment text after `#`.
//! - Empty strings, empty bytes and empty comments are never encrypted (they stay empty) and an
//!   empty string decrypts to an empty string, as in sops.

use aes_gcm::aead::consts::U32;
use aes_gcm::aes::Aes256;
use aes_gcm::{AeadInOut, AesGcm, KeyInit, Nonce, Tag};
use zeroize::Zeroizing;

use crate::tree::Value;
use crate::{DataKey, Error};

/// Length of the IV sops uses.
pub const IV_LEN: usize = 32;
/// Length of the GCM tag.
pub const TAG_LEN: usize = 16;

/// The `type:` field of an encrypted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `str`
    Str,
    /// `int`
    Int,
    /// `float`
    Float,
    /// `bool`
    Bool,
    /// `time`
    Time,
    /// `bytes`
    Bytes,
    /// `comment`
    Comment,
}

impl ValueType {
    /// The name written after `type:`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Str => "str",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Bool => "bool",
            ValueType::Time => "time",
            ValueType::Bytes => "bytes",
            ValueType::Comment => "comment",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "str" => ValueType::Str,
            "int" => ValueType::Int,
            "float" => ValueType::Float,
            "bool" => ValueType::Bool,
            "time" => ValueType::Time,
            "bytes" => ValueType::Bytes,
            "comment" => ValueType::Comment,
            _ => return None,
        })
    }
}

/// What [`ValueCipher::open_string`] gives: the plaintext, its declared type and the IV.
pub type OpenedValue = (Zeroizing<Vec<u8>>, ValueType, Vec<u8>);

/// The parts of a parsed `ENC[…]` value.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedValue {
    /// Ciphertext without the tag.
    pub data: Vec<u8>,
    /// The IV (sops always writes 32 bytes; any non-empty length is accepted on read, as sops does).
    pub iv: Vec<u8>,
    /// The 16-byte GCM tag.
    pub tag: [u8; TAG_LEN],
    /// The declared plaintext type.
    pub value_type: ValueType,
}

impl std::fmt::Debug for EncryptedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedValue")
            .field("data_len", &self.data.len())
            .field("type", &self.value_type)
            .finish_non_exhaustive()
    }
}

/// `true` if `s` has the `ENC[AES256_GCM,` prefix of a sops value (whether or not it is well formed).
pub fn looks_encrypted(s: &str) -> bool {
    s.starts_with("ENC[AES256_GCM,")
}

impl EncryptedValue {
    /// Parses `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`. `path` names the value in errors.
    pub fn parse(s: &str, path: &str) -> Result<Self, Error> {
        match Self::parse_well_formed(s) {
            Some(value) => Ok(value),
            None => Self::parse_naming_faults(s, path),
        }
    }

    /// [`EncryptedValue::parse`] field by field from the left, naming the first fault.
    fn parse_naming_faults(s: &str, path: &str) -> Result<Self, Error> {
        let bad = |message: &str| Error::MalformedEncValue {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        let body = s
            .strip_prefix("ENC[AES256_GCM,")
            .ok_or_else(|| bad("value is not an ENC[AES256_GCM,…] value"))?
            .strip_suffix(']')
            .ok_or_else(|| bad("missing closing `]`"))?;
        let mut fields = body.split(',');
        let mut field = |name: &str| -> Result<&str, Error> {
            let f = fields
                .next()
                .ok_or_else(|| bad(&format!("missing `{name}` field")))?;
            let v = f
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix(':'))
                .ok_or_else(|| bad(&format!("expected `{name}:` field")))?;
            Ok(v)
        };
        let data_b64 = field("data")?;
        let iv_b64 = field("iv")?;
        let tag_b64 = field("tag")?;
        let type_s = field("type")?;
        if fields.next().is_some() {
            return Err(bad("unexpected extra field"));
        }
        let decode = |name: &str, v: &str| {
            crate::b64::decode(v).ok_or_else(|| bad(&format!("`{name}` is not valid base64")))
        };
        let data = decode("data", data_b64)?;
        let iv = decode("iv", iv_b64)?;
        let tag = decode("tag", tag_b64)?;
        if iv.is_empty() {
            return Err(bad("empty iv"));
        }
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| bad("tag is not 16 bytes"))?;
        let value_type = ValueType::parse(type_s).ok_or_else(|| bad("unknown type"))?;
        Ok(EncryptedValue {
            data,
            iv,
            tag,
            value_type,
        })
    }

    /// [`EncryptedValue::parse`] of a well-formed value, `None` for anything else (which the full
    /// parse then names). Read from the right: the three short fields are found without scanning
    /// the data field, the longest, for commas (splitting at every comma from the left cost more
    /// than the value's AES-GCM). A base64 data field has no comma, so data that decodes is the
    /// one field the left-to-right reading finds.
    fn parse_well_formed(s: &str) -> Option<Self> {
        let parts = WellFormed::of(s)?;
        let data = crate::b64::decode(&s[DATA_AT..parts.data_end])?;
        Some(EncryptedValue {
            data,
            iv: parts.iv,
            tag: parts.tag,
            value_type: parts.value_type,
        })
    }
}

/// Where the data field's digits start in an `ENC[…]` value.
const DATA_AT: usize = "ENC[AES256_GCM,data:".len();

/// The fields of a well-formed `ENC[…]` value but its data (which runs from [`DATA_AT`] to
/// `data_end`, commas not yet ruled out).
struct WellFormed {
    data_end: usize,
    iv: Vec<u8>,
    tag: [u8; TAG_LEN],
    value_type: ValueType,
}

impl WellFormed {
    fn of(s: &str) -> Option<Self> {
        let body = s.strip_prefix("ENC[AES256_GCM,")?.strip_suffix(']')?;
        let [data_b64, iv_b64, tag_b64, type_s] =
            Self::as_sops_writes(body).or_else(|| Self::split(body))?;
        Some(WellFormed {
            data_end: DATA_AT + data_b64.len(),
            value_type: ValueType::parse(type_s)?,
            tag: crate::b64::decode(tag_b64)?.try_into().ok()?,
            iv: crate::b64::decode(iv_b64).filter(|iv| !iv.is_empty())?,
        })
    }

    /// The data, iv, tag and type fields of `body` (without their names), split at the last three
    /// commas.
    fn split(body: &str) -> Option<[&str; 4]> {
        let mut fields = body.rsplitn(4, ',');
        let type_s = fields.next()?.strip_prefix("type:")?;
        let tag = fields.next()?.strip_prefix("tag:")?;
        let iv = fields.next()?.strip_prefix("iv:")?;
        let data = fields.next()?.strip_prefix("data:")?;
        Some([data, iv, tag, type_s])
    }

    /// [`WellFormed::split`] of a value as sops writes it, with a 16-byte tag and a 32-byte IV
    /// (24 and 44 digits), found where they must be instead of by searching. Fields that then
    /// decode hold no comma, so the split is the same.
    fn as_sops_writes(body: &str) -> Option<[&str; 4]> {
        let b = body.as_bytes();
        // The type names are at most 7 letters: its comma is among the last 13 bytes.
        let from_end = b.iter().rev().take(13).position(|&c| c == b',')?;
        let t = b.len() - 1 - from_end;
        let tag = t.checked_sub(24 + ",tag:".len())?;
        let iv = tag.checked_sub(44 + ",iv:".len())?;
        // Byte tests (an index may fall inside a multi-byte character); once they pass, every
        // index below is at an ASCII comma, a character boundary.
        if !(b[t..].starts_with(b",type:")
            && b[tag..].starts_with(b",tag:")
            && b[iv..].starts_with(b",iv:")
            && b.starts_with(b"data:"))
        {
            return None;
        }
        Some([
            body.get("data:".len()..iv)?,
            &body[iv + ",iv:".len()..tag],
            &body[tag + ",tag:".len()..t],
            &body[t + ",type:".len()..],
        ])
    }
}

impl EncryptedValue {
    /// Writes the value back in sops' form.
    pub fn render(&self) -> String {
        render_parts(&self.data, &self.iv, &self.tag, self.value_type)
    }
}

/// `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, written into one buffer of the exact size.
fn render_parts(data: &[u8], iv: &[u8], tag: &[u8; TAG_LEN], ty: ValueType) -> String {
    use crate::b64::{encode_into, encoded_len};
    let mut out = Vec::with_capacity(
        "ENC[AES256_GCM,data:,iv:,tag:,type:]".len()
            + encoded_len(data.len())
            + encoded_len(iv.len())
            + encoded_len(TAG_LEN)
            + ty.as_str().len(),
    );
    out.extend_from_slice(b"ENC[AES256_GCM,data:");
    encode_into(data, &mut out);
    out.extend_from_slice(b",iv:");
    encode_into(iv, &mut out);
    out.extend_from_slice(b",tag:");
    encode_into(tag, &mut out);
    out.extend_from_slice(b",type:");
    out.extend_from_slice(ty.as_str().as_bytes());
    out.push(b']');
    String::from_utf8(out).expect("base64 and the type name are ASCII")
}

/// AES-256-GCM with sops' 32-byte nonce, keyed once and shared by all values of a file (`Sync`).
pub struct ValueCipher {
    gcm: AesGcm<Aes256, U32>,
}

impl std::fmt::Debug for ValueCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueCipher(<redacted>)")
    }
}

impl ValueCipher {
    /// Keys the cipher with the file's data key.
    pub fn new(key: &DataKey) -> Self {
        let gcm = AesGcm::<Aes256, U32>::new_from_slice(key.as_bytes()).expect("32-byte key");
        ValueCipher { gcm }
    }

    /// Encrypts `plaintext` with a fresh random IV.
    pub fn seal(&self, plaintext: &[u8], aad: &str, value_type: ValueType) -> String {
        let mut iv = [0u8; IV_LEN];
        rand::fill(&mut iv[..]);
        self.seal_with_iv(plaintext, aad, value_type, &iv)
    }

    /// Encrypts `plaintext` with the given IV (used to keep unchanged values byte-identical).
    pub fn seal_with_iv(
        &self,
        plaintext: &[u8],
        aad: &str,
        value_type: ValueType,
        iv: &[u8; IV_LEN],
    ) -> String {
        // Plaintext until encrypted in place: wiped when dropped.
        let mut buf = Zeroizing::new(plaintext.to_vec());
        let nonce = Nonce::<U32>::from(*iv);
        let tag = self
            .gcm
            .encrypt_inout_detached(&nonce, aad.as_bytes(), buf.as_mut_slice().into())
            .expect("plaintext within GCM limits");
        render_parts(&buf, iv, &tag.into(), value_type)
    }

    /// Decrypts a parsed value. Fails with [`Error::DecryptFailed`] (naming `path`) when the tag does
    /// not verify.
    pub fn open(
        &self,
        value: &EncryptedValue,
        aad: &str,
        path: &str,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.open_owned(value.clone(), aad, path)
    }

    /// Decrypts an `ENC[…]` string in its own buffer: the data field is decoded to the front of
    /// it and decrypted there, so the plaintext takes over the ciphertext's allocation (a large
    /// file's values need no second allocation each). Returns the plaintext (the buffer keeps its
    /// capacity), the type and the IV. Errors are those of [`EncryptedValue::parse`] then
    /// [`ValueCipher::open_owned`], naming `path`.
    pub fn open_string(&self, enc: String, aad: &str, path: &str) -> Result<OpenedValue, Error> {
        let parts = WellFormed::of(&enc);
        let Some(parts) = parts.filter(|p| !enc.as_bytes()[DATA_AT..p.data_end].contains(&b','))
        else {
            // Malformed (or unusual): the full parse names the fault, or reads it after all.
            let value = EncryptedValue::parse(&enc, path)?;
            let (ty, iv) = (value.value_type, value.iv.clone());
            return Ok((self.open_owned(value, aad, path)?, ty, iv));
        };
        let mut buf = Zeroizing::new(enc.into_bytes());
        buf.truncate(parts.data_end);
        // Data without a comma is the field the full parse would decode first: its refusal is
        // the full parse's.
        let n = crate::b64::decode_in_place(&mut buf, DATA_AT).ok_or_else(|| {
            Error::MalformedEncValue {
                path: path.to_owned(),
                message: "`data` is not valid base64".to_owned(),
            }
        })?;
        buf.truncate(n);
        let value = EncryptedValue {
            data: std::mem::take(&mut *buf),
            iv: parts.iv,
            tag: parts.tag,
            value_type: parts.value_type,
        };
        let iv = value.iv.clone();
        Ok((self.open_owned(value, aad, path)?, parts.value_type, iv))
    }

    /// [`ValueCipher::open`] that decrypts in the value's own buffer (no copy of the ciphertext).
    pub fn open_owned(
        &self,
        value: EncryptedValue,
        aad: &str,
        path: &str,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let EncryptedValue { data, iv, tag, .. } = value;
        let mut buf = Zeroizing::new(data);
        let tag = Tag::<aes_gcm::aead::consts::U16>::from(tag);
        // Other IV lengths are legal in sops' reader (Go sizes the GCM to the IV); none is written
        // by any sops version, so refuse rather than carry a second cipher around.
        let nonce =
            Nonce::<U32>::try_from(iv.as_slice()).map_err(|_| Error::MalformedEncValue {
                path: path.to_owned(),
                message: "iv is not 32 bytes".into(),
            })?;
        self.gcm
            .decrypt_inout_detached(&nonce, aad.as_bytes(), buf.as_mut_slice().into(), &tag)
            .map_err(|_| Error::DecryptFailed {
                path: path.to_owned(),
            })?;
        Ok(buf)
    }

    /// Encrypts a typed value. Returns `None` for values sops leaves as they are (null, empty string,
    /// empty bytes).
    pub fn encrypt_value(&self, value: &Value, aad: &str) -> Option<String> {
        let (bytes, ty) = plaintext_of(value)?;
        if bytes.is_empty() && matches!(ty, ValueType::Str | ValueType::Bytes) {
            return None;
        }
        Some(self.seal(&bytes, aad, ty))
    }

    /// Decrypts an `ENC[…]` string to a typed value (`Value::Str` for comments). An empty string
    /// decrypts to an empty string, as in sops.
    pub fn decrypt_value(
        &self,
        ciphertext: &str,
        aad: &str,
        path: &str,
    ) -> Result<(Value, ValueType), Error> {
        if ciphertext.is_empty() {
            return Ok((Value::Str(String::new()), ValueType::Str));
        }
        let parsed = EncryptedValue::parse(ciphertext, path)?;
        let ty = parsed.value_type;
        let plain = self.open_owned(parsed, aad, path)?;
        Ok((typed_value_owned(plain, ty, path)?, ty))
    }
}

/// The plaintext bytes sops encrypts and hashes for `value`, and its type; `None` for null.
pub fn plaintext_of(value: &Value) -> Option<(Zeroizing<Vec<u8>>, ValueType)> {
    let (bytes, ty) = match value {
        Value::Null => return None,
        Value::Str(s) => (s.as_bytes().to_vec(), ValueType::Str),
        Value::Int(s) => (canonical_int(s).into_bytes(), ValueType::Int),
        Value::Float(f) => (format_float(*f).into_bytes(), ValueType::Float),
        Value::Bool(b) => (
            (if *b { "True" } else { "False" }).as_bytes().to_vec(),
            ValueType::Bool,
        ),
        Value::Time(t) => (
            normalize_time(t).unwrap_or_else(|| t.clone()).into_bytes(),
            ValueType::Time,
        ),
        // sops' walker turns byte slices into strings: bytes are written as `type:str`.
        Value::Bytes(b) => (b.clone(), ValueType::Str),
    };
    Some((Zeroizing::new(bytes), ty))
}

/// Calls `f` with what [`plaintext_of`] returns, borrowing the bytes of strings and bytes instead
/// of copying them (the MAC hashes every value). `None` for null.
pub fn with_plaintext<R>(value: &Value, f: impl FnOnce(&[u8], ValueType) -> R) -> Option<R> {
    match value {
        Value::Null => None,
        Value::Str(s) => Some(f(s.as_bytes(), ValueType::Str)),
        Value::Bytes(b) => Some(f(b, ValueType::Str)),
        Value::Bool(b) => Some(f(
            if *b { b"True" as &[u8] } else { b"False" },
            ValueType::Bool,
        )),
        other => plaintext_of(other).map(|(bytes, ty)| f(&bytes, ty)),
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits, no exponent.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f == f64::INFINITY {
        "+Inf".to_owned()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        // Rust's Display for f64 prints the shortest round-trip digits and never an exponent.
        format!("{f}")
    }
}

/// An integer's text as Go's `strconv.Itoa` would print it: `0x1F` → `31`, `+7` → `7`, `007` →
/// `7`, `1_000` → `1000`. Text that is not an integer (or does not fit in 128 bits) is returned as
/// it is.
pub fn canonical_int(s: &str) -> String {
    let t = s.replace('_', "");
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    let parsed = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i128::from_str_radix(h, 16).ok()
    } else if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        i128::from_str_radix(o, 8).ok()
    } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        i128::from_str_radix(b, 2).ok()
    } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse::<i128>().ok()
    } else {
        None
    };
    match parsed {
        Some(v) => (if neg { -v } else { v }).to_string(),
        None => s.to_owned(),
    }
}

/// Rewrites a timestamp the way Go's `time.Time.MarshalText` prints it (RFC3339Nano: fraction
/// without trailing zeros, `Z` for a zero offset). Accepts RFC 3339 and the YAML timestamp forms
/// sops' YAML parser turns into times (`2001-12-14`, `2001-12-14 21:59:43.10 -5`, lower-case `t`,
/// no zone = UTC). `None` when `s` is none of these.
pub fn normalize_time(s: &str) -> Option<String> {
    let (t, offset) = parse_timestamp(s)?;
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.and_utc().timestamp_subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60));
    }
    Some(out)
}

/// Local date-time and offset (seconds east of UTC) of an RFC 3339 or YAML timestamp.
fn parse_timestamp(s: &str) -> Option<(chrono::NaiveDateTime, i32)> {
    use std::sync::OnceLock;
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:(?:[Tt]|[ \t]+)(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?[ \t]*(Z|[+-]\d{1,2}(?::?\d{2})?)?)?$",
        )
        .expect("timestamp regex")
    });
    let c = re.captures(s.trim())?;
    let num = |i: usize| c.get(i).map_or(Some(0), |m| m.as_str().parse::<u32>().ok());
    let date = chrono::NaiveDate::from_ymd_opt(num(1)? as i32, num(2)?, num(3)?)?;
    let nanos = match c.get(7) {
        Some(f) => {
            let digits: String = f
                .as_str()
                .chars()
                .chain(std::iter::repeat('0'))
                .take(9)
                .collect();
            digits.parse::<u32>().ok()?
        }
        None => 0,
    };
    let time = chrono::NaiveTime::from_hms_nano_opt(num(4)?, num(5)?, num(6)?, nanos)?;
    let offset = match c.get(8).map(|m| m.as_str()) {
        None | Some("Z") => 0,
        Some(z) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let body = z[1..].replace(':', "");
            let (h, m) = if body.len() > 2 {
                body.split_at(body.len() - 2)
            } else {
                (body.as_str(), "0")
            };
            sign * (h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60)
        }
    };
    Some((chrono::NaiveDateTime::new(date, time), offset))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// [`typed_value`] of a buffer it may keep: a string takes the buffer over instead of copying it.
pub fn typed_value_owned(
    mut plain: Zeroizing<Vec<u8>>,
    ty: ValueType,
    path: &str,
) -> Result<Value, Error> {
    match ty {
        ValueType::Str => Ok(match String::from_utf8(std::mem::take(&mut *plain)) {
            Ok(s) => Value::Str(s),
            // binary-store data that is not UTF-8
            Err(e) => Value::Bytes(e.into_bytes()),
        }),
        ValueType::Bytes => Ok(Value::Bytes(std::mem::take(&mut *plain))),
        _ => typed_value(&plain, ty, path),
    }
}

/// Turns decrypted bytes into the value its `type:` names (comments become `Value::Str`).
pub fn typed_value(plain: &[u8], ty: ValueType, path: &str) -> Result<Value, Error> {
    let bad = || Error::BadPlaintextType {
        path: path.to_owned(),
        value_type: ty.as_str().to_owned(),
    };
    let text = || std::str::from_utf8(plain).map_err(|_| bad());
    Ok(match ty {
        ValueType::Str => match std::str::from_utf8(plain) {
            Ok(s) => Value::Str(s.to_owned()),
            // binary-store data that is not UTF-8
            Err(_) => Value::Bytes(plain.to_vec()),
        },
        ValueType::Comment => Value::Str(text()?.to_owned()),
        ValueType::Bytes => Value::Bytes(plain.to_vec()),
        ValueType::Int => {
            let t = text()?;
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            Value::Int(t.to_owned())
        }
        ValueType::Float => {
            let t = text()?;
            let f = match t {
                "+Inf" | "Inf" | "inf" | "+inf" => f64::INFINITY,
                "-Inf" | "-inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                _ => t.parse::<f64>().map_err(|_| bad())?,
            };
            Value::Float(f)
        }
        ValueType::Bool => Value::Bool(parse_go_bool(text()?).ok_or_else(bad)?),
        ValueType::Time => {
            let t = text()?;
            chrono::DateTime::parse_from_rfc3339(t).map_err(|_| bad())?;
            Value::Time(t.to_owned())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_slice(&[9u8; 32]).unwrap()
    }

    /// A well-formed value (AAD `a:`) and variants of it, malformed in every field.
    fn enc_cases() -> (String, Vec<String>) {
        let good = ValueCipher::new(&key()).seal(b"secret, with a comma", "a:", ValueType::Str);
        let body = good
            .strip_prefix("ENC[AES256_GCM,")
            .unwrap()
            .strip_suffix(']')
            .unwrap();
        let fields: Vec<&str> = body.split(',').collect();
        let [data, iv, tag, ty] = fields[..] else {
            panic!("four fields")
        };
        let enc = |parts: &[&str]| format!("ENC[AES256_GCM,{}]", parts.join(","));
        let cases = [
            good.clone(),
            enc(&[data, iv, tag, "type:int"]),
            enc(&[data, iv, tag, "type:nope"]),
            enc(&["data:", iv, tag, ty]),
            enc(&["data:YQ,=", iv, tag, ty]),
            enc(&[data, "extra:x", iv, tag, ty]),
            enc(&[data, iv, tag, ty, "extra:x"]),
            enc(&[iv, data, tag, ty]),
            enc(&[data, iv, ty]),
            enc(&[data, "iv:", tag, ty]),
            enc(&[data, iv, "tag:YQ==", ty]),
            enc(&[data, iv, tag, "type:str,"]),
            enc(&["data:", iv, tag, ty]).replace("data:", "data:,"),
            enc(&["data:YQ", iv, tag, ty]),
            // Fields where sops' layout puts them, but holding commas or misplaced names.
            enc(&[data, iv, &tag[..12], &format!("tag:{}", &tag[16..]), ty]),
            enc(&[data, &iv[..20], &format!("iv:{}", &iv[24..]), tag, ty]),
            enc(&[data, "iv:\u{e9}\u{e9}", tag, ty]),
            enc(&[data, iv, tag, "type:\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}"]),
            enc(&["data:YQ=\u{e9}", iv, tag, ty]),
            good.replace("ENC[AES256_GCM,", "ENC[AES128_GCM,"),
            good.trim_end_matches(']').to_owned(),
            "ENC[AES256_GCM,]".to_owned(),
            "ENC[AES256_GCM,,]".to_owned(),
            String::new(),
        ];
        (good, cases.to_vec())
    }

    /// The right-to-left fast path accepts exactly what the field-by-field parse accepts, with
    /// the same result; what it refuses gets the full parse's message.
    #[test]
    fn fast_parse_agrees_with_the_full_parse() {
        let (good, cases) = enc_cases();
        for case in &cases {
            let full = EncryptedValue::parse_naming_faults(case, "p");
            match EncryptedValue::parse_well_formed(case) {
                Some(fast) => assert_eq!(full.as_ref().ok(), Some(&fast), "{case}"),
                None => assert!(full.is_err(), "{case}: the full parse accepts it"),
            }
            assert_eq!(
                format!("{:?}", EncryptedValue::parse(case, "p")),
                format!("{full:?}"),
                "{case}"
            );
        }
        assert!(EncryptedValue::parse_well_formed(&good).is_some());
    }

    /// Decrypting in the value's own buffer gives what parsing then decrypting gives, errors
    /// included (a wrong AAD fails the tag).
    #[test]
    fn open_string_agrees_with_parse_then_open() {
        let cipher = ValueCipher::new(&key());
        let (good, cases) = enc_cases();
        for aad in ["a:", "b:"] {
            for case in &cases {
                let parsed = EncryptedValue::parse(case, "p").and_then(|v| {
                    let (ty, iv) = (v.value_type, v.iv.clone());
                    Ok((cipher.open_owned(v, aad, "p")?, ty, iv))
                });
                let in_place = cipher.open_string(case.clone(), aad, "p");
                assert_eq!(format!("{in_place:?}"), format!("{parsed:?}"), "{case}");
                if let (Ok(a), Ok(b)) = (&in_place, &parsed) {
                    assert_eq!(a.0.as_slice(), b.0.as_slice());
                }
            }
        }
        let (plain, ty, _) = cipher.open_string(good, "a:", "p").unwrap();
        assert_eq!(
            (plain.as_slice(), ty),
            (&b"secret, with a comma"[..], ValueType::Str)
        );
    }

    #[test]
    fn float_forms_match_go() {
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(1.5e-7), "0.00000015");
        assert_eq!(format_float(-2.5), "-2.5");
        assert_eq!(format_float(1234.56789), "1234.56789");
        assert_eq!(format_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn time_forms_match_go() {
        assert_eq!(
            normalize_time("2024-01-02T03:04:05Z").unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            normalize_time("2024-01-02T03:04:05.120000Z").unwrap(),
            "2024-01-02T03:04:05.12Z"
        );
        assert_eq!(
            normalize_time("2024-01-02T03:04:05+00:00").unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            normalize_time("2024-01-02T03:04:05.000000001-05:30").unwrap(),
            "2024-01-02T03:04:05.000000001-05:30"
        );
        assert!(normalize_time("yesterday").is_none());
        // YAML timestamp forms, as sops' YAML parser reads them
        assert_eq!(
            normalize_time("2024-01-02").unwrap(),
            "2024-01-02T00:00:00Z"
        );
        assert_eq!(
            normalize_time("2001-12-14 21:59:43.10 -5").unwrap(),
            "2001-12-14T21:59:43.1-05:00"
        );
        assert_eq!(
            normalize_time("2001-12-14t21:59:43.10-05:00").unwrap(),
            "2001-12-14T21:59:43.1-05:00"
        );
        assert_eq!(
            normalize_time("2001-12-15 2:59:43.10").unwrap(),
            "2001-12-15T02:59:43.1Z"
        );
    }

    #[test]
    fn ints_are_canonical() {
        assert_eq!(canonical_int("0x1F"), "31");
        assert_eq!(canonical_int("+7"), "7");
        assert_eq!(canonical_int("007"), "7");
        assert_eq!(canonical_int("-0o17"), "-15");
        assert_eq!(canonical_int("1_000"), "1000");
        assert_eq!(
            canonical_int("-12345678901234567890"),
            "-12345678901234567890"
        );
    }

    #[test]
    fn roundtrip_every_type() {
        let c = ValueCipher::new(&key());
        let values = [
            Value::Str("héllo".into()),
            Value::Int("-12345678901234567890".into()),
            Value::Float(3.25),
            Value::Bool(true),
            Value::Bool(false),
            Value::Time("2024-01-02T03:04:05.5Z".into()),
            Value::Bytes(vec![0, 1, 2, 255]),
        ];
        // (bytes are written as type:str, like sops; non-UTF-8 str decrypts to bytes)
        for v in values {
            let enc = c.encrypt_value(&v, "a:b:").unwrap();
            assert!(looks_encrypted(&enc));
            let (back, _) = c.decrypt_value(&enc, "a:b:", "a.b").unwrap();
            assert_eq!(back, v);
        }
    }

    #[test]
    fn layout_of_value() {
        let c = ValueCipher::new(&key());
        let enc = c.seal(b"abc", "x:", ValueType::Str);
        let parsed = EncryptedValue::parse(&enc, "x").unwrap();
        assert_eq!(parsed.data.len(), 3);
        assert_eq!(parsed.iv.len(), 32);
        assert_eq!(parsed.render(), enc);
        assert!(enc.ends_with(",type:str]"));
    }

    #[test]
    fn same_iv_same_output() {
        let c = ValueCipher::new(&key());
        let iv = [4u8; 32];
        assert_eq!(
            c.seal_with_iv(b"v", "k:", ValueType::Str, &iv),
            c.seal_with_iv(b"v", "k:", ValueType::Str, &iv)
        );
    }

    #[test]
    fn empty_values_are_not_encrypted() {
        let c = ValueCipher::new(&key());
        assert!(c.encrypt_value(&Value::Str(String::new()), "a:").is_none());
        assert!(c.encrypt_value(&Value::Null, "a:").is_none());
        assert_eq!(
            c.decrypt_value("", "a:", "a").unwrap().0,
            Value::Str(String::new())
        );
    }

    #[test]
    fn wrong_aad_or_key_or_tamper_fails() {
        let c = ValueCipher::new(&key());
        let enc = c.seal(b"secret", "a:b:", ValueType::Str);
        assert!(matches!(
            c.decrypt_value(&enc, "a:c:", "a.c"),
            Err(Error::DecryptFailed { .. })
        ));
        let other = ValueCipher::new(&DataKey::from_slice(&[8u8; 32]).unwrap());
        assert!(matches!(
            other.decrypt_value(&enc, "a:b:", "a.b"),
            Err(Error::DecryptFailed { .. })
        ));
        let mut p = EncryptedValue::parse(&enc, "p").unwrap();
        p.data[0] ^= 1;
        assert!(c.decrypt_value(&p.render(), "a:b:", "a.b").is_err());
        let mut p = EncryptedValue::parse(&enc, "p").unwrap();
        p.iv[5] ^= 1;
        assert!(c.decrypt_value(&p.render(), "a:b:", "a.b").is_err());
        let mut p = EncryptedValue::parse(&enc, "p").unwrap();
        p.tag[15] ^= 1;
        assert!(c.decrypt_value(&p.render(), "a:b:", "a.b").is_err());
    }

    #[test]
    fn malformed_values_rejected_without_leaking() {
        let c = ValueCipher::new(&key());
        let enc = c.seal(b"secret", "a:", ValueType::Str);
        for bad in [
            &enc[..enc.len() - 1],
            &enc[..20],
            "ENC[AES256_GCM,data:abc,iv:,tag:,type:str]",
            "ENC[AES256_GCM,data:!!!!,iv:AAAA,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]",
            "ENC[AES256_GCM,data:,iv:AAAA,tag:AAAA,type:str]",
            "plain text",
        ] {
            let err = c.decrypt_value(bad, "a:", "a").unwrap_err();
            assert!(
                matches!(err, Error::MalformedEncValue { .. }),
                "{bad}: {err}"
            );
        }
        let with_bad_type = enc.replace("type:str", "type:nope");
        assert!(c.decrypt_value(&with_bad_type, "a:", "a").is_err());
    }
}
