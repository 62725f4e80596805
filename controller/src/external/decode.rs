//! `decodingStrategy` of `data[].remoteRef`, `dataFrom[].extract` and `dataFrom[].find`, as External
//! Secrets Operator decodes: `None` (the default) keeps a value, `Base64` and `Base64URL` decode it
//! as Go's `base64.StdEncoding` / `URLEncoding` do (padding required, `\r` and `\n` skipped, stray
//! bits after the last full byte accepted), `Auto` tries standard base64, then URL-safe base64, and
//! else keeps the value as it is. A value that does not decode is an error naming its key, never
//! the value.

use super::template::Values;
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

/// A decoding strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    /// The value as fetched.
    None,
    /// Standard base64 (`+/`, padded).
    Base64,
    /// URL-safe base64 (`-_`, padded).
    Base64Url,
    /// Standard, else URL-safe, else the value as fetched.
    Auto,
}

impl Decoding {
    /// The strategy a spec names (`None` when it names none); an unknown name is refused, naming
    /// the field `at`.
    pub fn parse(name: Option<&str>, at: &str) -> Result<Decoding, String> {
        match name {
            None | Some("None") => Ok(Decoding::None),
            Some("Base64") => Ok(Decoding::Base64),
            Some("Base64URL") => Ok(Decoding::Base64Url),
            Some("Auto") => Ok(Decoding::Auto),
            Some(other) => Err(format!(
                "{at}.decodingStrategy: {other:?} (None, Base64, Base64URL or Auto)"
            )),
        }
    }

    /// `value` decoded; the error names `key`.
    pub fn decode(
        self,
        key: &str,
        value: Zeroizing<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>, String> {
        let fail = |name: &str| format!("key {key:?} is not valid {name} (decodingStrategy)");
        match self {
            Decoding::None => Ok(value),
            Decoding::Base64 => go_decode(&STANDARD, &value).ok_or_else(|| fail("base64")),
            Decoding::Base64Url => {
                go_decode(&URL_SAFE, &value).ok_or_else(|| fail("URL-safe base64"))
            }
            Decoding::Auto => Ok(go_decode(&STANDARD, &value)
                .or_else(|| go_decode(&URL_SAFE, &value))
                .unwrap_or(value)),
        }
    }

    /// Every value of `values` decoded.
    pub fn decode_all(self, values: Values) -> Result<Values, String> {
        if self == Decoding::None {
            return Ok(values);
        }
        values
            .into_iter()
            .map(|(k, v)| {
                let decoded = self.decode(&k, v)?;
                Ok((k, decoded))
            })
            .collect()
    }
}

/// Go's non-strict decoders: canonical padding, trailing bits allowed.
const GO_CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, GO_CONFIG);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, GO_CONFIG);

/// Decodes as Go's `DecodeString` does: `\r` and `\n` anywhere are skipped.
fn go_decode(engine: &GeneralPurpose, input: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let decoded = if input.contains(&b'\n') || input.contains(&b'\r') {
        let stripped: Zeroizing<Vec<u8>> = Zeroizing::new(
            input
                .iter()
                .copied()
                .filter(|b| !matches!(b, b'\n' | b'\r'))
                .collect(),
        );
        engine.decode(stripped.as_slice())
    } else {
        engine.decode(input)
    };
    decoded.ok().map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(strategy: Decoding, input: &str) -> Result<Vec<u8>, String> {
        strategy
            .decode("k", Zeroizing::new(input.as_bytes().to_vec()))
            .map(|v| v.to_vec())
    }

    #[test]
    fn strategies_are_parsed_and_unknown_ones_refused_naming_the_field() {
        assert_eq!(Decoding::parse(None, "x").unwrap(), Decoding::None);
        assert_eq!(
            Decoding::parse(Some("Base64URL"), "x").unwrap(),
            Decoding::Base64Url
        );
        assert_eq!(Decoding::parse(Some("Auto"), "x").unwrap(), Decoding::Auto);
        let err = Decoding::parse(Some("base64"), "spec.data[0].remoteRef").unwrap_err();
        assert_eq!(
            err,
            "spec.data[0].remoteRef.decodingStrategy: \"base64\" (None, Base64, Base64URL or Auto)"
        );
    }

    #[test]
    fn base64_decodes_as_go_does() {
        assert_eq!(run(Decoding::Base64, "aGVsbG8=").unwrap(), b"hello");
        // Newlines are skipped, as Go skips them.
        assert_eq!(run(Decoding::Base64, "aGVs\r\nbG8=\n").unwrap(), b"hello");
        // Go's StdEncoding requires the padding.
        assert!(run(Decoding::Base64, "aGVsbG8").is_err());
        // Non-zero bits after the last byte are accepted (Go is not Strict by default).
        assert_eq!(run(Decoding::Base64, "aGVsbG9=").unwrap(), b"hello");
        // The URL alphabet is not the standard one.
        assert!(run(Decoding::Base64, "-_8=").is_err());
        assert_eq!(run(Decoding::Base64Url, "-_8=").unwrap(), [0xfb, 0xff]);
        assert!(run(Decoding::Base64Url, "+/8=").is_err());
        assert_eq!(run(Decoding::None, "aGVsbG8=").unwrap(), b"aGVsbG8=");
        assert_eq!(run(Decoding::Base64, "").unwrap(), b"");
    }

    #[test]
    fn auto_tries_standard_then_url_safe_then_keeps_the_value() {
        assert_eq!(run(Decoding::Auto, "aGVsbG8=").unwrap(), b"hello");
        assert_eq!(run(Decoding::Auto, "-_8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(run(Decoding::Auto, "not base64!").unwrap(), b"not base64!");
        // Unpadded is not base64 to Go: kept as it is.
        assert_eq!(run(Decoding::Auto, "aGVsbG8").unwrap(), b"aGVsbG8");
    }

    #[test]
    fn a_failure_names_the_key_and_never_the_value() {
        let values: Values = [
            ("good".to_owned(), Zeroizing::new(b"aGk=".to_vec())),
            ("bad".to_owned(), Zeroizing::new(b"s3cret-canary".to_vec())),
        ]
        .into_iter()
        .collect();
        let err = Decoding::Base64.decode_all(values.clone()).unwrap_err();
        assert_eq!(err, "key \"bad\" is not valid base64 (decodingStrategy)");
        assert!(!err.contains("canary"));
        let kept = Decoding::None.decode_all(values).unwrap();
        assert_eq!(kept["bad"].as_slice(), b"s3cret-canary");
    }
}
