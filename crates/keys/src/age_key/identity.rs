//! age identities and how sops reads them: identity files (one identity per line, `#` comments,
//! blank lines, CRLF), `SOPS_AGE_KEY` (identities separated by any whitespace), age-encrypted
//! identity files opened with a passphrase, and OpenSSH private keys (encrypted ones too).

use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use age::secrecy::SecretString;
use age_core::format::{FileKey, Stanza};
use base64::Engine;
use base64::prelude::{BASE64_STANDARD, BASE64_STANDARD_NO_PAD};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::AgeCallbacks;
use super::pq::HybridIdentity;
use super::x25519::X25519Identity;
use crate::Error;

/// One age identity (private key or private-key reference).
pub enum AgeIdentity {
    /// `AGE-SECRET-KEY-1…`.
    X25519(X25519Identity),
    /// `AGE-SECRET-KEY-PQ-1…`.
    Hybrid(HybridIdentity),
    /// `AGE-PLUGIN-…`, handled by the `age-plugin-<name>` binary on `$PATH`.
    Plugin(age::plugin::Identity),
    /// An OpenSSH private key (`ssh-ed25519` or `ssh-rsa`).
    Ssh(SshIdentity),
    /// An age-encrypted (passphrase) identity file, opened on first use.
    Encrypted(EncryptedIdentityFile),
}

impl fmt::Debug for AgeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgeIdentity::X25519(_) => f.write_str("AgeIdentity::X25519(<redacted>)"),
            AgeIdentity::Hybrid(_) => f.write_str("AgeIdentity::Hybrid(<redacted>)"),
            AgeIdentity::Plugin(p) => write!(f, "AgeIdentity::Plugin({})", p.plugin()),
            AgeIdentity::Ssh(s) => write!(f, "AgeIdentity::Ssh({})", s.location),
            AgeIdentity::Encrypted(e) => write!(f, "AgeIdentity::Encrypted({})", e.location),
        }
    }
}

impl AgeIdentity {
    /// Parses one identity string the way sops does (by prefix). The error never echoes the
    /// input, which is secret.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.starts_with("AGE-PLUGIN-") {
            age::plugin::Identity::from_str(s)
                .map(AgeIdentity::Plugin)
                .map_err(|_| "malformed plugin identity")
        } else if s.starts_with("AGE-SECRET-KEY-PQ-1") {
            HybridIdentity::parse(s).map(AgeIdentity::Hybrid)
        } else if s.starts_with("AGE-SECRET-KEY-1") {
            X25519Identity::parse(s).map(AgeIdentity::X25519)
        } else {
            Err("unknown identity type")
        }
    }

    /// The public recipient of this identity, when it can be derived locally.
    pub fn recipient(&self) -> Option<String> {
        match self {
            AgeIdentity::X25519(i) => Some(i.to_public().to_string()),
            AgeIdentity::Hybrid(i) => Some(i.to_public().to_string()),
            AgeIdentity::Ssh(s) => s.recipient.clone(),
            AgeIdentity::Plugin(_) | AgeIdentity::Encrypted(_) => None,
        }
    }

    /// Tries this identity on `stanzas` (the header of one age file), using `callbacks` for
    /// passphrases and plugin prompts.
    pub(crate) fn unwrap_stanzas(
        &self,
        stanzas: &[Stanza],
        callbacks: &AgeCallbacks,
    ) -> Option<Result<FileKey, age::DecryptError>> {
        use age::Identity as _;
        match self {
            AgeIdentity::X25519(i) => i.unwrap_stanzas(stanzas),
            AgeIdentity::Hybrid(i) => i.unwrap_stanzas(stanzas),
            AgeIdentity::Plugin(i) => {
                match age::plugin::IdentityPluginV1::new(
                    i.plugin(),
                    std::slice::from_ref(i),
                    callbacks.clone(),
                ) {
                    Ok(plugin) => plugin.unwrap_stanzas(stanzas),
                    Err(e) => Some(Err(age::DecryptError::PluginResolve(e))),
                }
            }
            AgeIdentity::Ssh(s) => s.unwrap_stanzas(stanzas, callbacks),
            AgeIdentity::Encrypted(e) => e.unwrap_stanzas(stanzas, callbacks),
        }
    }
}

/// Lets a set of identities act as one `age::Identity` for the decryptor.
pub(crate) struct IdentitySet<'a> {
    pub(crate) identities: &'a [AgeIdentity],
    pub(crate) callbacks: AgeCallbacks,
}

impl age::Identity for IdentitySet<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        self.identities
            .iter()
            .find_map(|identity| identity.unwrap_stanzas(stanzas, &self.callbacks))
    }
}

/// Parses identities from text as sops does. One identity per line unless
/// `multiple_per_line` (used for `SOPS_AGE_KEY`, where any whitespace separates identities);
/// lines that are empty or start with `#` are skipped; a trailing `\r` is dropped. The error
/// names `location` and the line number, never the line.
pub fn parse_identities(
    text: &str,
    location: &str,
    multiple_per_line: bool,
) -> Result<Vec<AgeIdentity>, Error> {
    let mut identities = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let invalid = |message: &str| Error::InvalidIdentity {
            location: location.to_owned(),
            message: format!("line {}: {message}", index + 1),
        };
        if multiple_per_line {
            for word in line.split_whitespace() {
                identities.push(AgeIdentity::parse(word).map_err(invalid)?);
            }
        } else {
            identities.push(AgeIdentity::parse(line).map_err(invalid)?);
        }
    }
    Ok(identities)
}

/// Reads identities from the bytes of a key file or command output: an age-encrypted file
/// (binary or armored) becomes one passphrase-protected identity, anything else is parsed with
/// [`parse_identities`].
pub fn identities_from_bytes(
    bytes: &[u8],
    location: &str,
    multiple_per_line: bool,
) -> Result<Vec<AgeIdentity>, Error> {
    if bytes.starts_with(b"age-encryption") || bytes.starts_with(b"-----BEGIN AGE") {
        return Ok(vec![AgeIdentity::Encrypted(EncryptedIdentityFile {
            location: location.to_owned(),
            contents: bytes.to_vec(),
            opened: OnceLock::new(),
            lock: Mutex::new(()),
        })]);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Error::InvalidIdentity {
        location: location.to_owned(),
        message: "not UTF-8 text".to_owned(),
    })?;
    parse_identities(text, location, multiple_per_line)
}

/// An age identity file encrypted with a passphrase (scrypt), opened on first use.
pub struct EncryptedIdentityFile {
    location: String,
    contents: Vec<u8>,
    opened: OnceLock<Vec<AgeIdentity>>,
    lock: Mutex<()>,
}

impl EncryptedIdentityFile {
    fn open(&self, callbacks: &AgeCallbacks) -> Result<&[AgeIdentity], age::DecryptError> {
        if let Some(ids) = self.opened.get() {
            return Ok(ids);
        }
        // One passphrase prompt even when several entries are tried at once.
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ids) = self.opened.get() {
            return Ok(ids);
        }
        let passphrase = callbacks
            .0
            .request_passphrase(&format!(
                "Enter passphrase for identity '{}':",
                self.location
            ))
            .ok_or(age::DecryptError::KeyDecryptionFailed)?;
        let scrypt = age::scrypt::Identity::new(SecretString::from(passphrase.as_str().to_owned()));
        let mut plain = Zeroizing::new(Vec::new());
        let identity = std::iter::once(&scrypt as &dyn age::Identity);
        if self.contents.starts_with(b"-----BEGIN AGE") {
            let mut reader =
                age::Decryptor::new(age::armor::ArmoredReader::new(&self.contents[..]))?
                    .decrypt(identity)?;
            std::io::Read::read_to_end(&mut reader, &mut plain).map_err(age::DecryptError::Io)?;
        } else {
            let mut reader = age::Decryptor::new(&self.contents[..])?.decrypt(identity)?;
            std::io::Read::read_to_end(&mut reader, &mut plain).map_err(age::DecryptError::Io)?;
        }
        let ids = identities_from_bytes(&plain, &self.location, false)
            .map_err(|_| age::DecryptError::KeyDecryptionFailed)?;
        Ok(self.opened.get_or_init(|| ids))
    }

    fn unwrap_stanzas(
        &self,
        stanzas: &[Stanza],
        callbacks: &AgeCallbacks,
    ) -> Option<Result<FileKey, age::DecryptError>> {
        match self.open(callbacks) {
            Ok(ids) => ids
                .iter()
                .find_map(|i| i.unwrap_stanzas(stanzas, callbacks)),
            Err(e) => Some(Err(e)),
        }
    }
}

/// An OpenSSH private key used as an age identity. Encrypted keys ask for their passphrase
/// only when a stanza is addressed to them, and only once.
pub struct SshIdentity {
    location: String,
    key: age::ssh::Identity,
    recipient: Option<String>,
    /// The 4-byte key tag age puts in `ssh-ed25519`/`ssh-rsa` stanzas, base64 without padding.
    stanza_tag: Option<String>,
    unlocked: OnceLock<age::ssh::Identity>,
    lock: Mutex<()>,
}

impl SshIdentity {
    /// Parses an OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----` or PEM RSA).
    pub fn parse(bytes: &[u8], location: &str) -> Result<Self, Error> {
        let invalid = |message: String| Error::InvalidIdentity {
            location: location.to_owned(),
            message,
        };
        let key = age::ssh::Identity::from_buffer(bytes, Some(location.to_owned()))
            .map_err(|e| invalid(format!("malformed SSH identity: {e}")))?;
        if let age::ssh::Identity::Unsupported(unsupported) = &key {
            struct Show<'a>(&'a age::ssh::UnsupportedKey, &'a str);
            impl fmt::Display for Show<'_> {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    self.0.display(f, Some(self.1))
                }
            }
            return Err(invalid(super::plain_message(Show(unsupported, location))));
        }
        let recipient = age::ssh::Recipient::try_from(key.clone())
            .ok()
            .map(|r| r.to_string());
        let stanza_tag = recipient.as_deref().and_then(ssh_stanza_tag);
        Ok(SshIdentity {
            location: location.to_owned(),
            key,
            recipient,
            stanza_tag,
            unlocked: OnceLock::new(),
            lock: Mutex::new(()),
        })
    }

    /// Whether the key is passphrase-protected.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.key, age::ssh::Identity::Encrypted(_))
    }

    fn unwrap_stanzas(
        &self,
        stanzas: &[Stanza],
        callbacks: &AgeCallbacks,
    ) -> Option<Result<FileKey, age::DecryptError>> {
        use age::Identity as _;
        let age::ssh::Identity::Encrypted(encrypted) = &self.key else {
            return self.key.unwrap_stanzas(stanzas);
        };
        let addressed_to_us = stanzas.iter().any(|s| {
            (s.tag == "ssh-ed25519" || s.tag == "ssh-rsa")
                && match &self.stanza_tag {
                    Some(tag) => s.args.first() == Some(tag),
                    None => true,
                }
        });
        if !addressed_to_us {
            return None;
        }
        if self.unlocked.get().is_none() {
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            if self.unlocked.get().is_none() {
                let passphrase = callbacks
                    .0
                    .request_passphrase(&format!("Enter passphrase for \"{}\":", self.location))?;
                match encrypted.decrypt(SecretString::from(passphrase.as_str().to_owned())) {
                    Ok(key) => {
                        let _ = self.unlocked.set(age::ssh::Identity::Unencrypted(key));
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        self.unlocked.get()?.unwrap_stanzas(stanzas)
    }
}

/// age's stanza tag for an SSH recipient: base64 (no padding) of the first 4 bytes of SHA-256
/// of the public key in SSH wire format.
fn ssh_stanza_tag(recipient: &str) -> Option<String> {
    let wire = BASE64_STANDARD
        .decode(recipient.split_whitespace().nth(1)?)
        .ok()?;
    Some(BASE64_STANDARD_NO_PAD.encode(&Sha256::digest(&wire)[..4]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str =
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";

    #[test]
    fn skips_comments_blank_lines_and_crlf() {
        let x = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let text = format!(
            "# created: now\r\n\r\n# public key: {}\r\n{}\r\n\n",
            x.to_public(),
            x.to_string().expose_secret()
        );
        let ids = parse_identities(&text, "keys.txt", false).unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].recipient().unwrap(), x.to_public().to_string());
    }

    #[test]
    fn multiple_keys_per_line_only_when_allowed() {
        let a = age::x25519::Identity::generate();
        let b = HybridIdentity::generate();
        use age::secrecy::ExposeSecret;
        let line = format!(
            "{} \t{}",
            a.to_string().expose_secret(),
            b.to_secret_string().as_str()
        );
        assert_eq!(
            parse_identities(&line, "SOPS_AGE_KEY", true).unwrap().len(),
            2
        );
        let err = parse_identities(&line, "keys.txt", false).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("keys.txt") && message.contains("line 1"),
            "{message}"
        );
        assert!(
            !message.contains("AGE-SECRET-KEY"),
            "error leaks the key: {message}"
        );
    }

    #[test]
    fn bad_line_error_names_location_and_line_but_not_content() {
        let text = format!("# ok\n{KEY_A}x\n");
        let err = parse_identities(&text, "/tmp/k.txt", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/tmp/k.txt") && err.contains("line 2"),
            "{err}"
        );
        assert!(!err.contains("GFPYYSJZ"), "{err}");
    }

    #[test]
    fn ssh_tag_is_four_bytes_of_sha256() {
        let tag = ssh_stanza_tag(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN",
        )
        .unwrap();
        assert_eq!(BASE64_STANDARD_NO_PAD.decode(&tag).unwrap().len(), 4);
    }
}
