//! The age master key: recipients (`age1…` X25519, `age1pq1…` post-quantum hybrid, `age1<plugin>1…`
//! plugins, `ssh-ed25519`/`ssh-rsa` public keys), identities (the matching secret keys, OpenSSH
//! private keys, passphrase-protected identity files) and the `enc` field sops writes: an
//! ASCII-armored age file whose payload is the raw data key or Shamir share.

mod format;
pub mod identity;
pub mod pq;
mod x25519;
mod xwing;

use std::fmt;
use std::io::Read;
use std::str::FromStr;
use std::sync::Arc;

use age::armor::ArmoredReader;
use signet_sops::metadata::{AgeEntry, MasterKeyEntry};
use zeroize::Zeroizing;

pub use identity::{AgeIdentity, parse_identities};
pub use pq::{HybridIdentity, HybridRecipient};
pub use x25519::{X25519Identity, X25519Recipient};

use crate::Error;
use crate::masterkey::{Interaction, KeyFuture, KeyType, MasterKey, NoInteraction};

/// A parsed age recipient, remembering the exact string it came from (sops stores that string).
#[derive(Clone)]
pub struct AgeRecipient {
    text: String,
    kind: RecipientKind,
    interaction: Arc<dyn Interaction>,
}

#[derive(Clone)]
enum RecipientKind {
    X25519(X25519Recipient),
    Hybrid(HybridRecipient),
    Plugin(age::plugin::Recipient),
    Ssh(age::ssh::Recipient),
}

impl AgeRecipient {
    /// Parses one recipient the way sops does: surrounding whitespace is trimmed; `age1pq1…` is
    /// the hybrid type, another `age1…` with more than one `1` is a plugin recipient, other
    /// `age1…` are X25519, and `ssh-…` are OpenSSH public keys.
    pub fn parse(recipient: &str) -> Result<Self, Error> {
        let text = recipient.trim();
        let invalid = |message: String| Error::InvalidRecipient {
            recipient: text.to_owned(),
            message,
        };
        let kind = if text.starts_with("age1pq1") {
            RecipientKind::Hybrid(HybridRecipient::parse(text).map_err(|e| invalid(e.to_owned()))?)
        } else if text.starts_with("age1") && text.matches('1').count() > 1 {
            RecipientKind::Plugin(
                age::plugin::Recipient::from_str(text).map_err(|e| invalid(e.to_owned()))?,
            )
        } else if text.starts_with("age1") {
            RecipientKind::X25519(X25519Recipient::parse(text).map_err(|e| invalid(e.to_owned()))?)
        } else if text.starts_with("ssh-") {
            RecipientKind::Ssh(
                age::ssh::Recipient::from_str(text)
                    .map_err(|e| invalid(format!("not a supported SSH public key: {e:?}")))?,
            )
        } else {
            return Err(invalid("unknown recipient type".to_owned()));
        };
        Ok(AgeRecipient {
            text: text.to_owned(),
            kind,
            interaction: Arc::new(NoInteraction),
        })
    }

    /// Parses a comma-separated list (`--age a,b`, `SOPS_AGE_RECIPIENTS`); empty input gives an
    /// empty list, like sops.
    pub fn parse_list(recipients: &str) -> Result<Vec<Self>, Error> {
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        recipients.split(',').map(AgeRecipient::parse).collect()
    }

    /// Uses `interaction` for plugin prompts while wrapping.
    pub fn with_interaction(mut self, interaction: Arc<dyn Interaction>) -> Self {
        self.interaction = interaction;
        self
    }

    /// The recipient string as sops stores it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Encrypts `secret` to this recipient, returning the armored age file sops stores as `enc`.
    pub fn encrypt_armored(&self, secret: &[u8]) -> Result<String, Error> {
        let wrap_err = |message: String| Error::Wrap {
            key: self.text.clone(),
            message: plain_message(message),
        };
        let plugin;
        let recipient: &dyn age::Recipient = match &self.kind {
            RecipientKind::X25519(r) => r,
            RecipientKind::Hybrid(r) => r,
            RecipientKind::Ssh(r) => r,
            RecipientKind::Plugin(r) => {
                plugin = age::plugin::RecipientPluginV1::new(
                    r.plugin(),
                    std::slice::from_ref(r),
                    &[],
                    AgeCallbacks(self.interaction.clone()),
                )
                .map_err(|e| wrap_err(e.to_string()))?;
                &plugin
            }
        };
        format::encrypt_armored(recipient, secret).map_err(|e| wrap_err(e.to_string()))
    }
}

impl FromStr for AgeRecipient {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        AgeRecipient::parse(s)
    }
}

impl fmt::Display for AgeRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for AgeRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgeRecipient({})", self.text)
    }
}

impl PartialEq for AgeRecipient {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl MasterKey for AgeRecipient {
    fn key_type(&self) -> KeyType {
        KeyType::Age
    }
    fn name(&self) -> String {
        self.text.clone()
    }
    fn wrap<'a>(&'a self, secret: &'a [u8]) -> KeyFuture<'a, MasterKeyEntry> {
        let result = self.encrypt_armored(secret).map(|enc| {
            MasterKeyEntry::Age(AgeEntry {
                recipient: self.text.clone(),
                enc,
            })
        });
        Box::pin(std::future::ready(result))
    }
}

/// Decrypts an armored age `enc` with any of `identities`. `Ok(None)` when none of them matches.
pub fn decrypt_armored(
    enc: &str,
    identities: &[&dyn age::Identity],
    key_name: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    let unwrap_err = |message: String| Error::Unwrap {
        key: key_name.to_owned(),
        message: plain_message(message),
    };
    let decryptor = age::Decryptor::new(ArmoredReader::new(enc.as_bytes()))
        .map_err(|e| unwrap_err(format!("malformed age data: {e}")))?;
    let mut reader = match decryptor.decrypt(identities.iter().copied()) {
        Ok(reader) => reader,
        Err(age::DecryptError::NoMatchingKeys) => return Ok(None),
        Err(e) => return Err(unwrap_err(e.to_string())),
    };
    let mut plain = Zeroizing::new(Vec::with_capacity(33));
    reader
        .read_to_end(&mut plain)
        .map_err(|e| unwrap_err(format!("age payload: {e}")))?;
    Ok(Some(plain))
}

/// age's messages come from Fluent and wrap arguments in Unicode isolation marks; drop them so
/// terminals and logs show plain text.
pub(crate) fn plain_message(message: impl std::fmt::Display) -> String {
    message
        .to_string()
        .chars()
        .filter(|c| !matches!(c, '\u{2068}' | '\u{2069}'))
        .collect()
}

/// Adapts an [`Interaction`] to age's `Callbacks`.
#[derive(Clone)]
pub(crate) struct AgeCallbacks(pub(crate) Arc<dyn Interaction>);

impl age::Callbacks for AgeCallbacks {
    fn display_message(&self, message: &str) {
        self.0.display_message(message);
    }
    fn confirm(&self, message: &str, yes_string: &str, no_string: Option<&str>) -> Option<bool> {
        self.0.confirm(message, yes_string, no_string)
    }
    fn request_public_string(&self, description: &str) -> Option<String> {
        self.0.request_public_string(description)
    }
    fn request_passphrase(&self, description: &str) -> Option<age::secrecy::SecretString> {
        self.0
            .request_passphrase(description)
            .map(|p| age::secrecy::SecretString::from(p.as_str().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(mangle: impl Fn(&str) -> String) -> Option<Zeroizing<Vec<u8>>> {
        let identity = age::x25519::Identity::generate();
        let recipient = AgeRecipient::parse(&identity.to_public().to_string()).unwrap();
        let enc = recipient
            .encrypt_armored(b"0123456789abcdef0123456789abcdef")
            .unwrap();
        decrypt_armored(&mangle(&enc), &[&identity as &dyn age::Identity], "r").unwrap()
    }

    #[test]
    fn enc_survives_crlf_and_a_missing_final_newline() {
        let expected: &[u8] = b"0123456789abcdef0123456789abcdef";
        assert_eq!(round_trip(|e| e.to_owned()).unwrap().as_slice(), expected);
        assert_eq!(
            round_trip(|e| e.trim_end().to_owned()).unwrap().as_slice(),
            expected
        );
        assert_eq!(
            round_trip(|e| e.replace('\n', "\r\n")).unwrap().as_slice(),
            expected
        );
    }

    #[test]
    fn other_identity_is_no_match_and_garbage_is_an_error() {
        let identity = age::x25519::Identity::generate();
        let other = AgeRecipient::parse(&age::x25519::Identity::generate().to_public().to_string())
            .unwrap();
        let enc = other.encrypt_armored(&[1; 32]).unwrap();
        assert!(
            decrypt_armored(&enc, &[&identity as &dyn age::Identity], "r")
                .unwrap()
                .is_none()
        );
        let err =
            decrypt_armored("not age", &[&identity as &dyn age::Identity], "age1xyz").unwrap_err();
        assert!(err.to_string().contains("age1xyz"), "{err}");
    }

    #[test]
    fn recipient_parsing_follows_sops_prefixes() {
        assert!(
            AgeRecipient::parse(
                "  age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29 "
            )
            .is_ok()
        );
        let err = AgeRecipient::parse("pgp:ABCDEF").unwrap_err().to_string();
        assert!(err.contains("unknown recipient type"), "{err}");
        assert!(AgeRecipient::parse("age1qqqq").is_err());
        assert_eq!(AgeRecipient::parse_list("").unwrap().len(), 0);
        let two = AgeRecipient::parse_list(
            "age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29, age1henwn645drkd3fa34t27t2w2x0nsgw3w4h62gmg5x5xflyjpy38s5cncph",
        )
        .unwrap();
        assert_eq!(
            two[1].as_str(),
            "age1henwn645drkd3fa34t27t2w2x0nsgw3w4h62gmg5x5xflyjpy38s5cncph"
        );
    }
}
