//! The [`Keyring`]: every identity and credential this process can unwrap data keys with, found
//! exactly where sops looks for them (sops 3.13 `age/keysource.go`):
//!
//! 1. `SOPS_AGE_SSH_PRIVATE_KEY_FILE` (an OpenSSH private key; encrypted keys prompt),
//! 2. `SOPS_AGE_SSH_PRIVATE_KEY_CMD` (run per recipient, stdout = an unencrypted OpenSSH key),
//! 3. `~/.ssh/id_ed25519` and `~/.ssh/id_rsa` when they exist,
//! 4. `SOPS_AGE_KEY` (identities separated by any whitespace),
//! 5. `SOPS_AGE_KEY_FILE` (an identity file, or an age-encrypted one that asks for a passphrase),
//! 6. `SOPS_AGE_KEY_CMD` (split like a shell command line but run without a shell, once per
//!    recipient with `SOPS_AGE_RECIPIENT` set; stdout = identities),
//! 7. `$XDG_CONFIG_HOME/sops/age/keys.txt`, or `~/.config/sops/age/keys.txt` when
//!    `XDG_CONFIG_HOME` is unset (`~/Library/Application Support/…` on macOS).
//!
//! PGP entries are opened with the secret keys of `SIGNET_PGP_KEY_FILE` / `SIGNET_PGP_KEY`, then
//! with the `gpg` binary like sops (see [`crate::pgp`]).
//!
//! AWS KMS ([`crate::kms::KmsClient`]) and Vault transit ([`crate::vault::VaultClient`])
//! entries are unwrapped over the network with the credentials of the same environment, after
//! local keys (the default decryption order is `age,pgp`, then the rest in file order).
//!
//! Like sops, a source that fails to load does not stop the others: its problem is kept as a
//! [`Notice`] and repeated in the error when no key could unwrap the data key. Key files readable
//! by group or others give a notice too; the library never prints.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use signet_sops::metadata::MasterKeyEntry;
use zeroize::Zeroizing;

use crate::age_key::identity::{IdentitySet, SshIdentity, identities_from_bytes};
use crate::age_key::{AgeCallbacks, AgeIdentity, decrypt_armored};
use crate::masterkey::{Interaction, KeyFuture, KeySource, KeyType, NoInteraction};
use crate::pgp::{Gpg, PgpKeys, SIGNET_PGP_KEY, SIGNET_PGP_KEY_FILE};
use crate::{Error, shlex};

/// `SOPS_AGE_KEY`: identities inline.
pub const SOPS_AGE_KEY: &str = "SOPS_AGE_KEY";
/// `SOPS_AGE_KEY_FILE`: path of an identity file.
pub const SOPS_AGE_KEY_FILE: &str = "SOPS_AGE_KEY_FILE";
/// `SOPS_AGE_KEY_CMD`: command printing identities.
pub const SOPS_AGE_KEY_CMD: &str = "SOPS_AGE_KEY_CMD";
/// Passed to the key commands: the recipient whose identity is wanted.
pub const SOPS_AGE_RECIPIENT: &str = "SOPS_AGE_RECIPIENT";
/// `SOPS_AGE_SSH_PRIVATE_KEY_FILE`: path of an OpenSSH private key.
pub const SOPS_AGE_SSH_PRIVATE_KEY_FILE: &str = "SOPS_AGE_SSH_PRIVATE_KEY_FILE";
/// `SOPS_AGE_SSH_PRIVATE_KEY_CMD`: command printing an OpenSSH private key.
pub const SOPS_AGE_SSH_PRIVATE_KEY_CMD: &str = "SOPS_AGE_SSH_PRIVATE_KEY_CMD";

/// A snapshot of environment variables, so discovery can be tested without touching the
/// process environment.
#[derive(Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
}

impl fmt::Debug for Environment {
    // Values may be credentials (`AWS_SECRET_ACCESS_KEY`, `VAULT_TOKEN`, `SOPS_AGE_KEY`): only
    // the names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Environment")
            .field("names", &names)
            .finish()
    }
}

impl Environment {
    /// The current process environment (variables that are not UTF-8 are skipped).
    pub fn from_process() -> Self {
        Environment {
            vars: std::env::vars().collect(),
        }
    }

    /// An environment made of exactly these variables.
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Environment {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// One variable, if set (set-but-empty counts as set, like Go's `LookupEnv`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Every variable, for running a program with exactly this environment.
    pub(crate) fn vars(&self) -> &HashMap<String, String> {
        &self.vars
    }

    fn home(&self) -> Option<PathBuf> {
        self.get("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    }

    /// sops' user config directory: `os.UserConfigDir()`, with `XDG_CONFIG_HOME` honoured on
    /// macOS too.
    pub fn user_config_dir(&self) -> Result<PathBuf, String> {
        if let Some(xdg) = self.get("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
            if cfg!(target_os = "macos") || Path::new(xdg).is_absolute() {
                return Ok(PathBuf::from(xdg));
            }
            return Err("path in $XDG_CONFIG_HOME is relative".to_owned());
        }
        let home = self
            .home()
            .ok_or("neither $XDG_CONFIG_HOME nor $HOME are defined")?;
        if cfg!(target_os = "macos") {
            Ok(home.join("Library/Application Support"))
        } else {
            Ok(home.join(".config"))
        }
    }

    /// The default age key file, `<user config dir>/sops/age/keys.txt`.
    pub fn default_age_key_file(&self) -> Result<PathBuf, String> {
        Ok(self
            .user_config_dir()?
            .join("sops")
            .join("age")
            .join("keys.txt"))
    }
}

/// Something the CLI may want to tell the user about the keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// A key file can be read by group or others.
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key source could not be loaded (the file is missing, unreadable or malformed).
    LoadFailed {
        /// The source: a path or an environment variable name.
        location: String,
        /// What went wrong (no key material).
        message: String,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::InsecurePermissions { path, mode } => write!(
                f,
                "key file {} is accessible by others (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            ),
            Notice::LoadFailed { location, message } => write!(f, "{location}: {message}"),
        }
    }
}

/// Identities a key command printed for one recipient, or why it failed; cached per recipient.
type CommandResults = HashMap<(CommandKind, String), Arc<Result<Vec<AgeIdentity>, String>>>;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum CommandKind {
    AgeKeys,
    SshKey,
}

/// All the ways this process can unwrap data keys.
pub struct Keyring {
    age_identities: Vec<AgeIdentity>,
    key_commands: Vec<(CommandKind, String)>,
    command_results: Mutex<CommandResults>,
    sources: Vec<Box<dyn KeySource>>,
    /// PGP secret keys from key files or Secrets, tried in pure Rust.
    pgp_keys: PgpKeys,
    /// The gpg binary, tried for `pgp` entries after `pgp_keys`; `None` where no
    /// program may be run (the controller).
    gpg: Option<Gpg>,
    /// AWS KMS and Vault transit, tried after local keys; not counted by [`Keyring::is_empty`]
    /// because they only hold credentials, not keys.
    network_sources: Vec<Box<dyn KeySource>>,
    notices: Vec<Notice>,
    unused_locations: Vec<String>,
    decryption_order: Vec<String>,
    interaction: Arc<dyn Interaction>,
    environment: Environment,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("age_identities", &self.age_identities.len())
            .field("key_commands", &self.key_commands.len())
            .field("sources", &self.sources.len())
            .field("pgp_keys", &self.pgp_keys)
            .field("gpg", &self.gpg)
            .field("network_sources", &self.network_sources.len())
            .field("notices", &self.notices)
            .finish()
    }
}

impl Default for Keyring {
    fn default() -> Self {
        Keyring::empty()
    }
}

impl Keyring {
    /// A keyring with no keys.
    pub fn empty() -> Self {
        Keyring {
            age_identities: Vec::new(),
            key_commands: Vec::new(),
            command_results: Mutex::new(HashMap::new()),
            sources: Vec::new(),
            pgp_keys: PgpKeys::default(),
            gpg: None,
            network_sources: Vec::new(),
            notices: Vec::new(),
            unused_locations: Vec::new(),
            decryption_order: vec!["age".to_owned(), "pgp".to_owned()],
            interaction: Arc::new(NoInteraction),
            environment: Environment::default(),
        }
    }

    /// Discovers identities from the process environment and home directory, like sops.
    pub fn from_env(interaction: Arc<dyn Interaction>) -> Self {
        Keyring::from_environment(&Environment::from_process(), interaction)
    }

    /// Discovers identities from `env` (see the module docs for the order).
    pub fn from_environment(env: &Environment, interaction: Arc<dyn Interaction>) -> Self {
        let mut ring = Keyring::empty();
        ring.interaction = interaction;
        ring.environment = env.clone();
        if let Some(order) = env.get("SOPS_DECRYPTION_ORDER").filter(|o| !o.is_empty()) {
            ring.decryption_order = order.split(',').map(str::to_owned).collect();
        }

        match env.get(SOPS_AGE_SSH_PRIVATE_KEY_FILE) {
            Some(path) => {
                if let Err(e) = ring.add_ssh_key_file(Path::new(path)) {
                    ring.load_failed(SOPS_AGE_SSH_PRIVATE_KEY_FILE, e);
                }
            }
            None => ring
                .unused_locations
                .push(SOPS_AGE_SSH_PRIVATE_KEY_FILE.to_owned()),
        }
        match env.get(SOPS_AGE_SSH_PRIVATE_KEY_CMD) {
            Some(cmd) => ring
                .key_commands
                .push((CommandKind::SshKey, cmd.to_owned())),
            None => ring
                .unused_locations
                .push(SOPS_AGE_SSH_PRIVATE_KEY_CMD.to_owned()),
        }
        if let Some(home) = env.home() {
            for name in ["id_ed25519", "id_rsa"] {
                let path = home.join(".ssh").join(name);
                if path.exists() {
                    if let Err(e) = ring.add_ssh_key_file(&path) {
                        ring.load_failed(&path.display().to_string(), e);
                    }
                } else {
                    ring.unused_locations.push(path.display().to_string());
                }
            }
        }

        let mut explicit_sources = 0;
        match env.get(SOPS_AGE_KEY) {
            Some(text) => {
                explicit_sources += 1;
                if let Err(e) = ring.add_identities_text(text, SOPS_AGE_KEY, true) {
                    ring.load_failed(SOPS_AGE_KEY, e);
                }
            }
            None => ring.unused_locations.push(SOPS_AGE_KEY.to_owned()),
        }
        match env.get(SOPS_AGE_KEY_FILE) {
            Some(path) => match ring.add_identity_file(Path::new(path)) {
                Ok(_) => explicit_sources += 1,
                Err(e) => ring.load_failed(SOPS_AGE_KEY_FILE, e),
            },
            None => ring.unused_locations.push(SOPS_AGE_KEY_FILE.to_owned()),
        }
        match env.get(SOPS_AGE_KEY_CMD) {
            Some(cmd) => {
                explicit_sources += 1;
                ring.key_commands
                    .push((CommandKind::AgeKeys, cmd.to_owned()));
            }
            None => ring.unused_locations.push(SOPS_AGE_KEY_CMD.to_owned()),
        }
        match env.default_age_key_file() {
            Ok(path) => {
                if path.exists() {
                    if let Err(e) = ring.add_identity_file(&path) {
                        ring.load_failed(&path.display().to_string(), e);
                    }
                } else if explicit_sources == 0 && ring.age_identities.is_empty() {
                    ring.unused_locations.push(path.display().to_string());
                }
            }
            Err(message) => {
                if explicit_sources == 0 && ring.age_identities.is_empty() {
                    ring.notices.push(Notice::LoadFailed {
                        location: "user config directory".to_owned(),
                        message,
                    });
                }
            }
        }
        match env.get(SIGNET_PGP_KEY_FILE) {
            Some(files) => {
                for path in std::env::split_paths(files).filter(|p| !p.as_os_str().is_empty()) {
                    if let Err(e) = ring.add_pgp_key_file(&path) {
                        ring.load_failed(SIGNET_PGP_KEY_FILE, e);
                    }
                }
            }
            None => ring.unused_locations.push(SIGNET_PGP_KEY_FILE.to_owned()),
        }
        if let Some(text) = env.get(SIGNET_PGP_KEY)
            && let Err(e) = ring.add_pgp_keys_text(text, SIGNET_PGP_KEY)
        {
            ring.load_failed(SIGNET_PGP_KEY, e);
        }
        ring.gpg = Some(Gpg::from_environment(env));
        ring.network_sources
            .push(Box::new(crate::kms::KmsClient::new(env)));
        ring.network_sources
            .push(Box::new(crate::vault::VaultClient::new(env)));
        ring
    }

    fn load_failed(&mut self, location: &str, error: Error) {
        self.notices.push(Notice::LoadFailed {
            location: location.to_owned(),
            message: error.to_string(),
        });
    }

    /// Adds the identities of an identity file (plain or age-encrypted). Returns how many were
    /// added. A missing file is an error naming it.
    pub fn add_identity_file(&mut self, path: &Path) -> Result<usize, Error> {
        let bytes = read_key_file(path, &mut self.notices)?;
        let ids = identities_from_bytes(&bytes, &path.display().to_string(), false)?;
        if ids.is_empty() {
            self.unused_locations.push(path.display().to_string());
        }
        let count = ids.len();
        self.age_identities.extend(ids);
        Ok(count)
    }

    /// Adds identities given as text (`location` names them in errors). With
    /// `multiple_per_line`, any whitespace separates identities (the `SOPS_AGE_KEY` rule).
    pub fn add_identities_text(
        &mut self,
        text: &str,
        location: &str,
        multiple_per_line: bool,
    ) -> Result<usize, Error> {
        let ids = identities_from_bytes(text.as_bytes(), location, multiple_per_line)?;
        let count = ids.len();
        self.age_identities.extend(ids);
        Ok(count)
    }

    /// Adds an OpenSSH private key file as an age identity.
    pub fn add_ssh_key_file(&mut self, path: &Path) -> Result<(), Error> {
        let bytes = read_key_file(path, &mut self.notices)?;
        let identity = SshIdentity::parse(&bytes, &path.display().to_string())?;
        self.age_identities.push(AgeIdentity::Ssh(identity));
        Ok(())
    }

    /// Adds the PGP keys of an armored key file (its secret keys decrypt). Returns how many
    /// secret keys were added.
    pub fn add_pgp_key_file(&mut self, path: &Path) -> Result<usize, Error> {
        let bytes = read_key_file(path, &mut self.notices)?;
        let keys = PgpKeys::parse(&bytes, &path.display().to_string())?;
        Ok(self.add_pgp_keys(keys))
    }

    /// Adds armored PGP keys given as text (`location` names them in errors). Returns how many
    /// secret keys were added.
    pub fn add_pgp_keys_text(&mut self, text: &str, location: &str) -> Result<usize, Error> {
        let keys = PgpKeys::parse(text.as_bytes(), location)?;
        Ok(self.add_pgp_keys(keys))
    }

    fn add_pgp_keys(&mut self, keys: PgpKeys) -> usize {
        let count = keys.secret_fingerprints().len();
        self.pgp_keys.extend(keys);
        count
    }

    /// Never runs `gpg` for `pgp` entries: only the PGP keys added to the keyring are used (the
    /// controller, which must not run programs chosen by its environment for hostile input).
    pub fn disable_gpg(&mut self) {
        self.gpg = None;
    }

    /// Adds one parsed age identity.
    pub fn add_age_identity(&mut self, identity: AgeIdentity) {
        self.age_identities.push(identity);
    }

    /// Adds another key source (AWS KMS, Vault transit, a test double).
    pub fn add_source(&mut self, source: Box<dyn KeySource>) {
        self.sources.push(source);
    }

    /// Sets the order in which key types are tried within a group (`--decryption-order`,
    /// `SOPS_DECRYPTION_ORDER`); types not listed come after, in file order. Default:
    /// `age,pgp`.
    pub fn set_decryption_order(&mut self, order: Vec<String>) {
        self.decryption_order = order;
    }

    /// The decryption order in force.
    pub fn decryption_order(&self) -> &[String] {
        &self.decryption_order
    }

    /// Warnings and load problems collected during discovery, for the CLI to print.
    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// Places looked at that held no key (as sops lists them in its error).
    pub fn unused_locations(&self) -> &[String] {
        &self.unused_locations
    }

    /// Problems worth repeating when no key matched: load failures, and where we looked when
    /// nothing at all was found.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .notices
            .iter()
            .filter(|n| matches!(n, Notice::LoadFailed { .. }))
            .map(ToString::to_string)
            .collect();
        if self.is_empty() && !self.unused_locations.is_empty() {
            problems.push(format!(
                "no identities found; looked in {}",
                self.unused_locations.join(", ")
            ));
        }
        problems
    }

    /// How many age identities were loaded (not counting key commands).
    pub fn age_identity_count(&self) -> usize {
        self.age_identities.len()
    }

    /// Public recipients of the loaded identities that can be derived locally.
    pub fn age_recipients(&self) -> Vec<String> {
        self.age_identities
            .iter()
            .filter_map(AgeIdentity::recipient)
            .collect()
    }

    /// Whether there is nothing at all to try.
    pub fn is_empty(&self) -> bool {
        self.age_identities.is_empty()
            && self.key_commands.is_empty()
            && self.sources.is_empty()
            && self.pgp_keys.has_no_secret_keys()
    }

    /// The identities the key commands give for `recipient`, each command run at most once per
    /// recipient. Failures are returned as messages.
    fn command_identities(&self, recipient: &str) -> Vec<Arc<Result<Vec<AgeIdentity>, String>>> {
        self.key_commands
            .iter()
            .map(|(kind, cmd)| {
                let cache_key = (*kind, recipient.to_owned());
                if let Some(hit) = self.lock_results().get(&cache_key) {
                    return hit.clone();
                }
                let result = Arc::new(self.run_key_command(*kind, cmd, recipient));
                self.lock_results().insert(cache_key, result.clone());
                result
            })
            .collect()
    }

    fn lock_results(&self) -> std::sync::MutexGuard<'_, CommandResults> {
        self.command_results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn run_key_command(
        &self,
        kind: CommandKind,
        cmd: &str,
        recipient: &str,
    ) -> Result<Vec<AgeIdentity>, String> {
        let variable = match kind {
            CommandKind::AgeKeys => SOPS_AGE_KEY_CMD,
            CommandKind::SshKey => SOPS_AGE_SSH_PRIVATE_KEY_CMD,
        };
        let output = run_command(cmd, &self.environment, recipient).map_err(|e| e.to_string())?;
        match kind {
            CommandKind::AgeKeys => {
                identities_from_bytes(&output, variable, false).map_err(|e| e.to_string())
            }
            CommandKind::SshKey => {
                let identity = SshIdentity::parse(&output, variable).map_err(|e| e.to_string())?;
                if identity.is_encrypted() {
                    return Err(format!(
                        "the SSH key returned by running {variable} is password protected, which is unsupported"
                    ));
                }
                Ok(vec![AgeIdentity::Ssh(identity)])
            }
        }
    }

    /// Tries to unwrap one metadata entry with this keyring. `Ok(None)` when no key here is
    /// for it.
    pub async fn unwrap_entry(
        &self,
        entry: &MasterKeyEntry,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        if let MasterKeyEntry::Age(age_entry) = entry {
            let callbacks = AgeCallbacks(self.interaction.clone());
            let command_results = self.command_identities(&age_entry.recipient);
            let mut command_failures = Vec::new();
            let mut sets = vec![IdentitySet {
                identities: &self.age_identities,
                callbacks: callbacks.clone(),
            }];
            for result in &command_results {
                match result.as_ref() {
                    Ok(ids) => sets.push(IdentitySet {
                        identities: ids,
                        callbacks: callbacks.clone(),
                    }),
                    Err(message) => command_failures.push(message.clone()),
                }
            }
            let identities: Vec<&dyn age::Identity> =
                sets.iter().map(|s| s as &dyn age::Identity).collect();
            let result = decrypt_armored(&age_entry.enc, &identities, &age_entry.recipient)?;
            if result.is_none() && !command_failures.is_empty() {
                return Err(Error::Command {
                    command: command_failures.len().to_string() + " key command(s)",
                    message: command_failures.join("; "),
                });
            }
            if result.is_some() {
                return Ok(result);
            }
        }
        if let MasterKeyEntry::Pgp(pgp_entry) = entry {
            let failed = |message: String| Error::Unwrap {
                key: pgp_entry.fp.clone(),
                message,
            };
            if let Some(secret) = self
                .pgp_keys
                .decrypt(&pgp_entry.enc, self.interaction.as_ref())
                .map_err(failed)?
            {
                return Ok(Some(secret));
            }
            if let Some(gpg) = &self.gpg {
                return gpg.decrypt(&pgp_entry.enc).map(Some).map_err(failed);
            }
        }
        for source in self.sources.iter().chain(&self.network_sources) {
            if let Some(secret) = source.unwrap(entry).await? {
                return Ok(Some(secret));
            }
        }
        Ok(None)
    }

    /// The key types this keyring can try, for ordering.
    pub(crate) fn type_rank(&self, key_type: KeyType) -> usize {
        self.decryption_order
            .iter()
            .position(|t| t == key_type.identifier())
            .unwrap_or(self.decryption_order.len())
    }
}

impl KeySource for Keyring {
    fn unwrap<'a>(
        &'a self,
        entry: &'a MasterKeyEntry,
    ) -> KeyFuture<'a, Option<Zeroizing<Vec<u8>>>> {
        Box::pin(self.unwrap_entry(entry))
    }
}

/// Reads a key file, noting loose permissions. The error names the file.
fn read_key_file(path: &Path, notices: &mut Vec<Notice>) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bytes = signet_sops::limits::read_file(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                notices.push(Notice::InsecurePermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = notices;
    Ok(Zeroizing::new(bytes))
}

/// Runs a key command as sops does: split into words (no shell), the environment plus
/// `SOPS_AGE_RECIPIENT`, stdout returned.
fn run_command(cmd: &str, env: &Environment, recipient: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let failed = |message: String| Error::Command {
        command: cmd.to_owned(),
        message,
    };
    let words =
        shlex::split(cmd).ok_or_else(|| failed("cannot parse the command line".to_owned()))?;
    let (program, args) = words
        .split_first()
        .ok_or_else(|| failed("empty command".to_owned()))?;
    let output = Command::new(program)
        .args(args)
        .env_clear()
        .envs(&env.vars)
        .env(SOPS_AGE_RECIPIENT, recipient)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first_line = stderr.lines().next().unwrap_or("").trim();
        return Err(failed(
            format!("{} {first_line}", output.status)
                .trim_end()
                .to_owned(),
        ));
    }
    Ok(Zeroizing::new(output.stdout))
}
