//! Generating age identities and writing them like `age-keygen` does: a `# created:` line
//! (RFC 3339, local time), a `# public key:` line and the secret key, in a file only the owner
//! can read (0600).

use std::io::Write;
use std::path::Path;

use age::secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::Error;
use crate::age_key::HybridIdentity;

/// Which kind of identity to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdentityKind {
    /// Classic X25519 (`AGE-SECRET-KEY-1…` / `age1…`).
    #[default]
    X25519,
    /// Post-quantum hybrid ML-KEM-768 + X25519 (`AGE-SECRET-KEY-PQ-1…` / `age1pq1…`).
    Hybrid,
}

/// A freshly generated identity.
pub struct GeneratedIdentity {
    /// The secret key string.
    pub identity: Zeroizing<String>,
    /// Its public recipient.
    pub recipient: String,
}

impl std::fmt::Debug for GeneratedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GeneratedIdentity({}, <secret redacted>)",
            self.recipient
        )
    }
}

/// Generates a new identity.
pub fn generate(kind: IdentityKind) -> GeneratedIdentity {
    match kind {
        IdentityKind::X25519 => {
            let identity = age::x25519::Identity::generate();
            GeneratedIdentity {
                identity: Zeroizing::new(identity.to_string().expose_secret().to_owned()),
                recipient: identity.to_public().to_string(),
            }
        }
        IdentityKind::Hybrid => {
            let identity = HybridIdentity::generate();
            GeneratedIdentity {
                identity: identity.to_secret_string(),
                recipient: identity.to_public().to_string(),
            }
        }
    }
}

/// The identity file text age-keygen writes.
pub fn identity_file_contents(generated: &GeneratedIdentity) -> Zeroizing<String> {
    let created = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Zeroizing::new(format!(
        "# created: {created}\n# public key: {}\n{}\n",
        generated.recipient,
        generated.identity.as_str()
    ))
}

/// Writes a new identity file with mode 0600, creating missing parent directories 0700 (as
/// `~/.config/sops/age/` on a fresh machine). Refuses to replace an existing file.
pub fn write_identity_file(path: &Path, generated: &GeneratedIdentity) -> Result<(), Error> {
    let io_err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(io_err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            Error::AlreadyExists {
                path: path.to_owned(),
            }
        } else {
            io_err(source)
        }
    })?;
    file.write_all(identity_file_contents(generated).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_file_parses_back_to_its_recipient() {
        for kind in [IdentityKind::X25519, IdentityKind::Hybrid] {
            let generated = generate(kind);
            let text = identity_file_contents(&generated);
            let lines: Vec<&str> = text.lines().collect();
            assert!(lines[0].starts_with("# created: "));
            assert_eq!(lines[1], format!("# public key: {}", generated.recipient));
            let ids = crate::age_key::parse_identities(&text, "gen", false).unwrap();
            assert_eq!(ids.len(), 1);
            assert_eq!(ids[0].recipient().unwrap(), generated.recipient);
            assert!(!format!("{generated:?}").contains("SECRET"));
        }
    }

    #[test]
    fn writes_0600_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.txt");
        let generated = generate(IdentityKind::X25519);
        write_identity_file(&path, &generated).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = write_identity_file(&path, &generate(IdentityKind::X25519));
        assert!(matches!(again, Err(Error::AlreadyExists { .. })));
    }

    /// `keygen -o ~/.config/sops/age/keys.txt` on a fresh machine: the directories are created
    /// private; a failure is worded as a write.
    #[test]
    fn creates_missing_directories_0700_and_says_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".config/sops/age/keys.txt");
        write_identity_file(&path, &generate(IdentityKind::X25519)).unwrap();
        #[cfg(unix)]
        for d in [".config", ".config/sops", ".config/sops/age"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(d))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{d} is {mode:o}");
        }
        std::fs::write(dir.path().join("file"), "").unwrap();
        let under_a_file = dir.path().join("file/keys.txt");
        let err = write_identity_file(&under_a_file, &generate(IdentityKind::X25519))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot write "), "{err}");
    }
}
