//! PGP master keys, as sops uses them (`pgp/keysource.go`): the raw data key (or Shamir share) is
//! encrypted as an OpenPGP message to the key with the entry's fingerprint, and the ASCII-armored
//! message is stored in `enc`, with `fp` and `created_at` beside it.
//!
//! Like sops, two ways are tried, in this order:
//!
//! 1. **Key files**, in pure Rust: armored OpenPGP keys named by `SIGNET_PGP_KEY_FILE` (paths
//!    separated like `PATH`) or given inline in `SIGNET_PGP_KEY` (the controller reads them from
//!    Secrets). Secret keys decrypt; the public half of any key encrypts. (sops' own first try
//!    reads `pubring.gpg`/`secring.gpg`, which GnuPG ≥ 2.1 no longer writes.)
//! 2. **The `gpg` binary** (`SOPS_GPG_EXEC` overrides it; `GNUPGHOME` is honoured by gpg itself),
//!    run exactly as sops runs it: `gpg --no-default-recipient --yes --encrypt -a -r FP
//!    --trusted-key SHORTID --no-encrypt-to` and `gpg -d`, so gpg-agent and pinentry ask for
//!    passphrases as they do for sops.
//!
//! The OpenPGP crate is rPGP (`pgp` 0.21), not `sequoia-openpgp` 2.4: both are on crates.io, but
//! Sequoia's pure-Rust backend must be opted into as "experimental" and "variable-time" crypto (its
//! default backend is Nettle, a C library), it is LGPL-2.0-or-later where this workspace is
//! Apache-2.0, and it costs more to build: measured as a lone dependency of an empty crate (debug,
//! cold), rPGP took 67 s of CPU and 451 MB of target, Sequoia 119 s and 694 MB (487 lines of
//! `cargo tree` against 376, and a LALRPOP grammar generated at build time).
//! rPGP is MIT/Apache-2.0 and pure Rust, reads the RSA and Curve25519 keys gpg 2.2 makes and every
//! PGP vector of sops and Flux, and decrypts as a stream, which is what lets every read here be
//! bounded.
//!
//! Every `enc` is hostile input: it is refused above [`MAX_ENC_LEN`], and at most
//! [`MAX_SECRET_LEN`] bytes of plaintext are ever read from it (a compressed packet cannot expand
//! into memory), from rPGP or from gpg alike.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use pgp::composed::{
    ArmorOptions, Esk, Message, MessageBuilder, PublicOrSecret, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Password, Timestamp};
use signet_sops::metadata::PgpEntry;
use zeroize::Zeroizing;

use crate::Error;
use crate::keyring::Environment;
use crate::masterkey::Interaction;

/// `SOPS_PGP_FP`: comma-separated fingerprints to encrypt to when no other key is given.
pub const SOPS_PGP_FP: &str = "SOPS_PGP_FP";
/// `SOPS_GPG_EXEC`: the GnuPG program to run instead of `gpg`.
pub const SOPS_GPG_EXEC: &str = "SOPS_GPG_EXEC";
/// `SIGNET_PGP_KEY_FILE`: armored OpenPGP key files (secret keys decrypt, any key encrypts),
/// separated like `PATH`.
pub const SIGNET_PGP_KEY_FILE: &str = "SIGNET_PGP_KEY_FILE";
/// `SIGNET_PGP_KEY`: armored OpenPGP keys given inline.
pub const SIGNET_PGP_KEY: &str = "SIGNET_PGP_KEY";

/// The largest `enc` read: one message to one key is under 2 KiB armored even for RSA-4096.
pub const MAX_ENC_LEN: usize = 64 << 10;
/// The most plaintext read out of a message: a data key is 32 bytes, a Shamir share 33.
pub const MAX_SECRET_LEN: usize = 64;
/// The most gpg may print (its armored message, or its diagnostics) before it is stopped.
const MAX_GPG_OUTPUT: usize = 256 << 10;

/// OpenPGP keys loaded from key files or Secrets (rPGP zeroizes their secret parts on drop).
#[derive(Clone, Default)]
pub struct PgpKeys {
    secret: Vec<SignedSecretKey>,
    public: Vec<SignedPublicKey>,
}

impl std::fmt::Debug for PgpKeys {
    // Secret key material never reaches a log: only fingerprints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgpKeys")
            .field("secret", &self.secret_fingerprints())
            .field("public", &self.public.len())
            .finish()
    }
}

impl PgpKeys {
    /// Parses armored (or binary) OpenPGP keys: one or more blocks of public or secret keys, as
    /// `gpg --export[-secret-keys] --armor` writes them. `location` names the source in errors.
    pub fn parse(bytes: &[u8], location: &str) -> Result<PgpKeys, Error> {
        let invalid = |message: String| Error::InvalidIdentity {
            location: location.to_owned(),
            message,
        };
        let mut keys = PgpKeys::default();
        for block in armor_blocks(bytes) {
            let (parsed, _headers) = PublicOrSecret::from_reader_many(block)
                .map_err(|e| invalid(format!("not an OpenPGP key: {e}")))?;
            for key in parsed {
                match key.map_err(|e| invalid(format!("not an OpenPGP key: {e}")))? {
                    PublicOrSecret::Secret(key) => {
                        keys.public.push(key.to_public_key());
                        keys.secret.push(key);
                    }
                    PublicOrSecret::Public(key) => keys.public.push(key),
                }
            }
        }
        if keys.public.is_empty() {
            return Err(invalid("no OpenPGP key found".to_owned()));
        }
        Ok(keys)
    }

    /// Reads and parses a key file (bounded like every input).
    pub fn from_file(path: &Path) -> Result<PgpKeys, Error> {
        let bytes = signet_sops::limits::read_file(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        PgpKeys::parse(&Zeroizing::new(bytes), &path.display().to_string())
    }

    /// Adds the keys of `other`.
    pub fn extend(&mut self, other: PgpKeys) {
        self.secret.extend(other.secret);
        self.public.extend(other.public);
    }

    /// Whether no secret key is held (public keys only encrypt).
    pub fn has_no_secret_keys(&self) -> bool {
        self.secret.is_empty()
    }

    /// The primary fingerprints of the secret keys, upper-case hex as sops writes `fp`.
    pub fn secret_fingerprints(&self) -> Vec<String> {
        self.secret
            .iter()
            .map(|k| format!("{:X}", k.primary_key.fingerprint()))
            .collect()
    }

    /// The key whose primary key or a subkey has fingerprint (or 16-digit key ID) `fp`.
    fn find_public(&self, fp: &str) -> Option<&SignedPublicKey> {
        let wanted = normalize_fingerprint(fp);
        self.public.iter().find(|key| {
            std::iter::once(format!("{:X}", key.primary_key.fingerprint()))
                .chain(
                    key.public_subkeys
                        .iter()
                        .map(|s| format!("{:X}", s.key.fingerprint())),
                )
                .any(|have| have == wanted || (wanted.len() == 16 && have.ends_with(&wanted)))
        })
    }

    /// Encrypts `secret` to the key `fp`, armored as sops stores it. `None` when no key here has
    /// that fingerprint.
    pub fn encrypt(&self, fp: &str, secret: &[u8]) -> Option<Result<String, String>> {
        let key = self.find_public(fp)?;
        Some(encrypt_to(key, secret))
    }

    /// Decrypts an `enc` with the secret keys held. `Ok(None)` when none of them is a recipient.
    /// Recipient keys protected by a passphrase ask `interaction` for it.
    pub fn decrypt(
        &self,
        enc: &str,
        interaction: &dyn Interaction,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        check_enc_len(enc)?;
        if self.secret.is_empty() {
            return Ok(None);
        }
        let keys = recipients(enc, &self.secret)?;
        if keys.is_empty() {
            return Ok(None);
        }
        // Every password is tried on every locked key (each try runs the key's S2K), so only the
        // passphrases asked for are given; unlocked keys need none.
        let mut passwords = Vec::new();
        for key in keys.iter().filter(|k| is_protected(k)) {
            let fp = format!("{:X}", key.primary_key.fingerprint());
            let Some(passphrase) =
                interaction.request_passphrase(&format!("Passphrase for PGP key {fp}"))
            else {
                return Err(format!(
                    "PGP key {fp} is protected by a passphrase and none could be asked for"
                ));
            };
            passwords.push(Password::from(passphrase.as_str()));
        }
        if passwords.is_empty() {
            passwords.push(Password::empty());
        }
        match decrypt_with(enc, &keys, passwords.iter().collect()) {
            Ok(secret) => Ok(Some(secret)),
            Err(Failure::NotForUs) => Err(format!(
                "PGP key {} could not open it (wrong passphrase?)",
                keys.iter()
                    .map(|k| format!("{:X}", k.primary_key.fingerprint()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(Failure::Message(m)) => Err(m),
        }
    }
}

/// The keys of `keys` the message is encrypted to (by key ID, or all of them for an anonymous
/// recipient), without decrypting anything.
fn recipients<'k>(
    enc: &str,
    keys: &'k [SignedSecretKey],
) -> Result<Vec<&'k SignedSecretKey>, String> {
    let (message, _headers) = Message::from_armor(enc.trim().as_bytes())
        .map_err(|e| format!("enc is not an armored PGP message: {e}"))?;
    let Message::Encrypted { esk, .. } = &message else {
        return Err("enc is not an encrypted PGP message".to_owned());
    };
    let pkesks: Vec<_> = esk
        .iter()
        .filter_map(|e| match e {
            Esk::PublicKeyEncryptedSessionKey(p) => Some(p),
            Esk::SymKeyEncryptedSessionKey(_) => None,
        })
        .collect();
    Ok(keys
        .iter()
        .filter(|key| {
            pkesks.iter().any(|p| {
                p.match_identity(key.primary_key.public_key())
                    || key
                        .secret_subkeys
                        .iter()
                        .any(|s| p.match_identity(s.public_key()))
            })
        })
        .collect())
}

fn is_protected(key: &SignedSecretKey) -> bool {
    key.primary_key.secret_params().is_encrypted()
        || key
            .secret_subkeys
            .iter()
            .any(|s| s.key.secret_params().is_encrypted())
}

/// Splits text into its armored blocks (a file may hold several, e.g. public and secret keys
/// exported one after the other); binary input is one block.
fn armor_blocks(bytes: &[u8]) -> Vec<&[u8]> {
    const BEGIN: &[u8] = b"-----BEGIN PGP ";
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i..].starts_with(BEGIN))
        .collect();
    if starts.is_empty() {
        return vec![bytes];
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| &bytes[start..starts.get(n + 1).copied().unwrap_or(bytes.len())])
        .collect()
}

/// Upper-case hex without spaces, and without the `!` suffix gpg uses to force a subkey.
fn normalize_fingerprint(fp: &str) -> String {
    fp.trim()
        .trim_end_matches('!')
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

fn check_enc_len(enc: &str) -> Result<(), String> {
    if enc.len() > MAX_ENC_LEN {
        return Err(format!(
            "enc is {} bytes, more than the {MAX_ENC_LEN} a PGP-wrapped data key can take",
            enc.len()
        ));
    }
    Ok(())
}

/// Why a message did not decrypt.
enum Failure {
    /// No key given is a recipient.
    NotForUs,
    /// It was for us (or could not be read) and failed.
    Message(String),
}

fn decrypt_with(
    enc: &str,
    keys: &[&SignedSecretKey],
    passwords: Vec<&Password>,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let fail = |m: String| Failure::Message(m);
    let (message, _headers) = Message::from_armor(enc.trim().as_bytes())
        .map_err(|e| fail(format!("enc is not an armored PGP message: {e}")))?;
    let message = match message.decrypt_with_keys(passwords, keys.to_vec()) {
        Ok(message) => message,
        Err(pgp::errors::Error::MissingKey) => return Err(Failure::NotForUs),
        Err(e) => return Err(fail(format!("cannot decrypt the PGP message: {e}"))),
    };
    read_plaintext(message).map_err(fail)
}

/// Reads the literal data of a decrypted message, at most [`MAX_SECRET_LEN`] bytes, through at
/// most one layer of compression. Reading to the end checks the message's integrity (MDC).
fn read_plaintext(mut message: Message<'_>) -> Result<Zeroizing<Vec<u8>>, String> {
    if message.is_compressed() {
        message = message
            .decompress()
            .map_err(|e| format!("cannot decompress the PGP message: {e}"))?;
    }
    if !(message.is_literal() || message.is_signed()) {
        return Err("the PGP message does not hold literal data".to_owned());
    }
    read_bounded(&mut message)
}

/// At most [`MAX_SECRET_LEN`] bytes of `reader`, and an error (after reading one byte more, never
/// further) when it holds more.
fn read_bounded(reader: impl Read) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut out = Zeroizing::new(Vec::with_capacity(MAX_SECRET_LEN + 1));
    reader
        .take(MAX_SECRET_LEN as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot read the PGP message: {e}"))?;
    if out.len() > MAX_SECRET_LEN {
        return Err(format!(
            "the PGP message holds more than the {MAX_SECRET_LEN} bytes of a data key"
        ));
    }
    Ok(out)
}

/// The newest valid encryption subkey of `key` (or its primary key when that is the only one
/// that may encrypt), as gpg and go-crypto choose.
fn encrypt_to(key: &SignedPublicKey, secret: &[u8]) -> Result<String, String> {
    let fp = format!("{:X}", key.primary_key.fingerprint());
    key.verify_bindings()
        .map_err(|e| format!("key {fp} has an invalid self-signature: {e}"))?;
    let now = Timestamp::now().as_secs();
    let usable = |sigs: &[Signature], created: u32| -> bool {
        let Some(binding) = sigs
            .iter()
            .filter(|s| {
                matches!(
                    s.typ(),
                    Some(SignatureType::SubkeyBinding) | Some(SignatureType::SubkeyRevocation)
                )
            })
            .max_by_key(|s| s.created().map(Timestamp::as_secs))
        else {
            return false;
        };
        if binding.typ() == Some(SignatureType::SubkeyRevocation) {
            return false;
        }
        let flags = binding.key_flags();
        let expired = binding
            .key_expiration_time()
            .is_some_and(|d| d.as_secs() != 0 && created.saturating_add(d.as_secs()) <= now);
        (flags.encrypt_comms() || flags.encrypt_storage()) && !expired
    };
    let subkey = key
        .public_subkeys
        .iter()
        .filter(|s| s.key.algorithm().can_encrypt())
        .filter(|s| usable(&s.signatures, s.key.created_at().as_secs()))
        .max_by_key(|s| s.key.created_at().as_secs());
    let mut rng = rand_core_06::OsRng;
    // Read from the caller's buffer: a `Bytes` copy of the data key could not be zeroized.
    let mut builder =
        MessageBuilder::from_reader("", secret).seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    let added = match subkey {
        Some(subkey) => builder.encrypt_to_key(&mut rng, &subkey.key),
        None if key.primary_key.algorithm().can_encrypt() => {
            builder.encrypt_to_key(&mut rng, &key.primary_key)
        }
        None => return Err(format!("key {fp} has no valid encryption key")),
    };
    added.map_err(|e| format!("cannot encrypt to key {fp}: {e}"))?;
    let armored = builder
        .to_armored_string(rng, ArmorOptions::default())
        .map_err(|e| format!("cannot encrypt to key {fp}: {e}"))?;
    // sops stores the armor without its final newline.
    Ok(armored.trim_end().to_owned())
}

/// The GnuPG program sops would run, with the environment it would see.
#[derive(Clone)]
pub struct Gpg {
    program: String,
    env: Environment,
}

impl std::fmt::Debug for Gpg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpg")
            .field("program", &self.program)
            .finish_non_exhaustive()
    }
}

impl Gpg {
    /// `SOPS_GPG_EXEC`, else `gpg`, run with exactly the variables of `env` (`GNUPGHOME`,
    /// `GPG_TTY`, `PATH`, …).
    pub fn from_environment(env: &Environment) -> Gpg {
        Gpg {
            program: env
                .get(SOPS_GPG_EXEC)
                .filter(|p| !p.is_empty())
                .unwrap_or("gpg")
                .to_owned(),
            env: env.clone(),
        }
    }

    /// Encrypts `secret` to `fp` with the user's GnuPG keyring, as sops does.
    pub fn encrypt(&self, fp: &str, secret: &[u8]) -> Result<String, String> {
        let args = [
            "--no-default-recipient",
            "--yes",
            "--encrypt",
            "-a",
            "-r",
            fp,
            "--trusted-key",
            short_id(fp),
            "--no-encrypt-to",
        ];
        let out = self.run(&args, secret, MAX_GPG_OUTPUT)?;
        let text = String::from_utf8(out.to_vec())
            .map_err(|_| "gpg printed something that is not an armored message".to_owned())?;
        Ok(text.trim().to_owned())
    }

    /// Decrypts an `enc` with the user's GnuPG secret keys (gpg-agent, pinentry), as sops does.
    pub fn decrypt(&self, enc: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        check_enc_len(enc)?;
        let out = self.run(&["-d"], enc.as_bytes(), MAX_SECRET_LEN)?;
        if out.is_empty() {
            // An old gpg drops packets it does not know (AEAD) and prints nothing: sops says so.
            return Err("gpg returned zero bytes".to_owned());
        }
        Ok(out)
    }

    /// Runs gpg with `stdin`, returning its output; more than `limit` bytes is an error, and gpg
    /// is stopped as soon as it prints them.
    fn run(&self, args: &[&str], stdin: &[u8], limit: usize) -> Result<Zeroizing<Vec<u8>>, String> {
        let mut child = Command::new(&self.program)
            .args(args)
            .env_clear()
            .envs(self.env.vars())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {} ({SOPS_GPG_EXEC}): {e}", self.program))?;
        let mut input = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let feed = Zeroizing::new(stdin.to_vec());
        let (out, err) = std::thread::scope(|scope| {
            scope.spawn(move || {
                if let Some(mut pipe) = input.take() {
                    let _ = pipe.write_all(&feed);
                }
            });
            let err = scope.spawn(move || {
                let mut buf = Vec::new();
                if let Some(pipe) = stderr.take() {
                    let _ = pipe.take(MAX_GPG_OUTPUT as u64).read_to_end(&mut buf);
                }
                buf
            });
            let mut out = Zeroizing::new(Vec::new());
            if let Some(pipe) = stdout.take() {
                let _ = pipe.take(limit as u64 + 1).read_to_end(&mut out);
            }
            if out.len() > limit {
                let _ = child.kill();
            }
            (out, err.join().unwrap_or_default())
        });
        let status = child
            .wait()
            .map_err(|e| format!("{} failed: {e}", self.program))?;
        if out.len() > limit {
            return Err(format!(
                "{} printed more than the {limit} bytes expected",
                self.program
            ));
        }
        if !status.success() {
            let stderr = String::from_utf8_lossy(&err);
            let message: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            return Err(format!("{} {status}: {}", self.program, message.join("; ")));
        }
        Ok(out)
    }
}

/// The last 16 hex digits of a fingerprint (with a trailing `!` kept), as sops passes to
/// `--trusted-key`.
fn short_id(fp: &str) -> &str {
    let mut offset = fp.len().saturating_sub(16);
    if fp.ends_with('!') {
        offset = offset.saturating_sub(1);
    }
    fp.get(offset..).unwrap_or(fp)
}

/// Wraps data keys for PGP fingerprints: with the key files' public keys when one matches, else
/// through gpg.
#[derive(Debug, Clone)]
pub struct PgpClient {
    keys: Result<PgpKeys, String>,
    gpg: Gpg,
}

impl PgpClient {
    /// Key files and gpg as configured in `env` (a key file that cannot be read is reported when
    /// encrypting, naming the file).
    pub fn new(env: &Environment) -> Self {
        PgpClient {
            keys: keys_from_environment(env).map_err(|e| e.to_string()),
            gpg: Gpg::from_environment(env),
        }
    }

    /// Encrypts `secret` (the data key or a share) to `fp`, giving the metadata entry.
    pub fn wrap(&self, fp: &str, secret: &[u8]) -> Result<PgpEntry, Error> {
        let fail = |message: String| Error::Wrap {
            key: fp.to_owned(),
            message,
        };
        let keys = self.keys.as_ref().map_err(|e| fail(e.clone()))?;
        let enc = match keys.encrypt(fp, secret) {
            Some(result) => result.map_err(fail)?,
            None => self.gpg.encrypt(fp, secret).map_err(|e| {
                fail(format!(
                    "the key is not in {SIGNET_PGP_KEY_FILE}/{SIGNET_PGP_KEY}, and gpg failed: {e}"
                ))
            })?,
        };
        Ok(PgpEntry {
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            enc,
            fp: fp.to_owned(),
        })
    }
}

/// The keys of `SIGNET_PGP_KEY_FILE` and `SIGNET_PGP_KEY` (none when both are unset).
pub fn keys_from_environment(env: &Environment) -> Result<PgpKeys, Error> {
    let mut keys = PgpKeys::default();
    if let Some(files) = env.get(SIGNET_PGP_KEY_FILE).filter(|f| !f.is_empty()) {
        for path in std::env::split_paths(files).filter(|p| !p.as_os_str().is_empty()) {
            keys.extend(PgpKeys::from_file(&path)?);
        }
    }
    if let Some(text) = env.get(SIGNET_PGP_KEY).filter(|t| !t.trim().is_empty()) {
        keys.extend(PgpKeys::parse(text.as_bytes(), SIGNET_PGP_KEY)?);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_like_sops() {
        assert_eq!(
            short_id("FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"),
            "3D16CEE4A27381B4"
        );
        assert_eq!(
            short_id("FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4!"),
            "3D16CEE4A27381B4!"
        );
        assert_eq!(short_id("ABCD"), "ABCD");
        assert_eq!(normalize_fingerprint(" fbc7 b9e2! "), "FBC7B9E2");
    }

    /// Zeros without end; panics when read past `MAX_SECRET_LEN + 1` bytes.
    struct Tripwire(usize);

    impl Read for Tripwire {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            assert!(self.0 <= MAX_SECRET_LEN + 1, "read {} bytes", self.0);
            buf.fill(0);
            Ok(buf.len())
        }
    }

    #[test]
    fn plaintext_is_read_one_byte_past_a_data_key_and_no_further() {
        let err = read_bounded(Tripwire(0)).unwrap_err();
        assert!(err.contains("more than the 64 bytes"), "{err}");
        assert_eq!(read_bounded(&[1u8; 33][..]).unwrap().len(), 33);
    }

    /// A gpg that never stops printing is stopped after the bytes a data key can take.
    #[test]
    fn endless_gpg_output_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("gpg");
        std::fs::write(&script, "#!/bin/sh\nexec cat /dev/zero\n").unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let gpg = Gpg::from_environment(&Environment::from_vars([(
            SOPS_GPG_EXEC,
            script.display().to_string(),
        )]));
        let err = gpg.decrypt("-----BEGIN PGP MESSAGE-----").unwrap_err();
        assert!(err.contains("more than the 64 bytes"), "{err}");
    }

    #[test]
    fn armor_blocks_are_split() {
        let text = b"junk\n-----BEGIN PGP PUBLIC KEY BLOCK-----\na\n-----END PGP PUBLIC KEY BLOCK-----\n-----BEGIN PGP PRIVATE KEY BLOCK-----\nb\n";
        let blocks = armor_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].starts_with(b"-----BEGIN PGP PRIVATE"));
        assert_eq!(armor_blocks(b"\x99binary").len(), 1);
    }
}
