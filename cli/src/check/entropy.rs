//! High-entropy tokens: the Shannon entropy of a string's characters, and which parts of a value are
//! worth measuring (long runs of token characters that mix upper case, lower case and digits, as
//! generated passwords and API keys do, and as words, names, paths and hex digests do not).

/// Tunables of the detector (`--entropy-threshold`, `--min-length`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntropyConfig {
    /// Bits per character above which a token is reported.
    pub threshold: f64,
    /// Shortest token measured.
    pub min_length: usize,
}

impl Default for EntropyConfig {
    fn default() -> Self {
        EntropyConfig {
            threshold: 3.5,
            min_length: 20,
        }
    }
}

/// Shannon entropy of the characters of `s`, in bits per character (0 for an empty string).
pub fn shannon(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut total = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let n = total as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Characters a generated token is made of (base64, base64url, JWT dots, `~`).
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-' | '.' | '~')
}

/// A token mixes upper case, lower case and digits.
fn mixed(token: &str) -> bool {
    token.chars().any(|c| c.is_ascii_uppercase())
        && token.chars().any(|c| c.is_ascii_lowercase())
        && token.chars().any(|c| c.is_ascii_digit())
}

/// Text that is public by design and often long and random-looking: PEM certificates and public
/// keys, as text or base64-encoded (a webhook's `caBundle`).
fn is_public_material(value: &str) -> bool {
    const MARKERS: [&str; 2] = ["-----BEGIN CERTIFICATE", "-----BEGIN PUBLIC KEY"];
    if MARKERS.iter().any(|m| value.contains(m)) {
        return true;
    }
    use base64::Engine;
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .is_ok_and(|bytes| MARKERS.iter().any(|m| bytes.starts_with(m.as_bytes())))
}

/// The first high-entropy token of `value`, as `(token, entropy)`; a private key block counts as
/// one. `None` when the value looks harmless.
pub fn find<'a>(value: &'a str, config: &EntropyConfig) -> Option<(&'a str, f64)> {
    if value.contains("PRIVATE KEY-----") {
        return Some((value, f64::INFINITY));
    }
    if value.len() < config.min_length || is_public_material(value) {
        return None;
    }
    value
        .split(|c: char| !token_char(c))
        .filter(|t| t.len() >= config.min_length && mixed(t))
        .map(|t| (t, shannon(t)))
        .find(|(_, e)| *e > config.threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_known_strings() {
        assert_eq!(shannon(""), 0.0);
        assert_eq!(shannon("aaaa"), 0.0);
        assert!((shannon("ab") - 1.0).abs() < 1e-12);
        assert!((shannon("abcd") - 2.0).abs() < 1e-12);
        // 16 distinct characters once each: exactly 4 bits.
        assert!((shannon("0123456789abcdef") - 4.0).abs() < 1e-12);
    }

    #[test]
    fn generated_tokens_are_found() {
        let config = EntropyConfig::default();
        for token in [
            "9fQ2xLr7TzK4mWcV1bNs8HjD3gYp",
            "ghp_R7x2Kq9LmT4vWz8NcB1yHs5DfJ3gPa6E",
            "AKIAEXAMPLE/wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
            "postgres://app:Zk3Rq8LmX2vT9wNc4HpB7yJd@db:5432/app",
        ] {
            assert!(find(token, &config).is_some(), "{token}");
        }
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----";
        assert!(find(key, &config).is_some());
    }

    #[test]
    fn ordinary_values_are_not() {
        let config = EntropyConfig::default();
        for value in [
            "registry.k8s.io/ingress-nginx/controller:v1.9.4",
            "sha256:3f8a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "my-application-server-01.example.internal",
            "The quick brown fox jumps over the lazy dog 42 times",
            "ReadWriteOnce",
            "short1A",
            "app.kubernetes.io/managed-by",
        ] {
            assert_eq!(find(value, &config), None, "{value}");
        }
    }

    #[test]
    fn certificates_are_public() {
        use base64::Engine;
        let pem = "-----BEGIN CERTIFICATE-----\nMIIDazCCAlOgAwIBAgIUZk3Rq8LmX2vT9wNc4HpB7yJd\n-----END CERTIFICATE-----\n";
        let config = EntropyConfig::default();
        assert_eq!(find(pem, &config), None);
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        assert_eq!(find(&b64, &config), None);
    }

    #[test]
    fn the_threshold_and_length_are_tunable() {
        let token = "9fQ2xLr7TzK4mWcV1bNs8HjD3gYp";
        let strict = EntropyConfig {
            threshold: 6.0,
            min_length: 20,
        };
        assert_eq!(find(token, &strict), None);
        let long = EntropyConfig {
            threshold: 3.5,
            min_length: 40,
        };
        assert_eq!(find(token, &long), None);
    }
}
