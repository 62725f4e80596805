//! sops files under `rekey`: is the file's key set what its creation rule (in the nearest
//! `.sops.yaml`) wants, and if not, re-wrap its data key (or, with `--rotate`, give it a new one).
//! The key-set comparison and the re-wrapping are `updatekeys`' own ([`crate::sops::rotation`]).

use super::report::{FileReport, Kind, Status};
use crate::sops::rotation::{KeyDrift, WantedKeys, rewrap_data_key, rotate_data_key};
use signet_keys::{Keyring, NoInteraction, SopsConfig};
use signet_sops::engine::DecryptOptions;
use signet_sops::{Decryptor, Format, stores};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The markers that say a file is a sops file even when it does not parse (what Flux looks for).
const SOPS_MARKERS: [&[u8]; 4] = [
    b"mac: ENC[",
    b"\"mac\": \"ENC[",
    b"sops_mac=ENC[",
    b"[sops]",
];

/// Shared by every file of a run: the keyring (built on first use), the parsed `.sops.yaml` files
/// and what to do.
pub struct SopsContext {
    /// `--check`: change nothing.
    pub check: bool,
    /// `--rotate`: new data keys.
    pub rotate: bool,
    /// `--config`: one `.sops.yaml` for every file instead of the nearest.
    pub config: Option<PathBuf>,
    keyring: OnceLock<Keyring>,
    configs: Mutex<HashMap<PathBuf, Arc<Result<SopsConfig, String>>>>,
}

impl SopsContext {
    /// A context for one run.
    pub fn new(check: bool, rotate: bool, config: Option<PathBuf>) -> Self {
        SopsContext {
            check,
            rotate,
            config,
            keyring: OnceLock::new(),
            configs: Mutex::new(HashMap::new()),
        }
    }

    /// Identities from the environment, as sops finds them; no prompts (files run in parallel).
    pub(crate) fn keyring(&self) -> &Keyring {
        self.keyring
            .get_or_init(|| crate::sops::keys::keyring_with(Arc::new(NoInteraction)))
    }

    /// The `.sops.yaml` for `file`: `--config`, else the nearest walking up from the file.
    pub(crate) fn config_for(&self, file: &Path) -> Option<Arc<Result<SopsConfig, String>>> {
        let path = match &self.config {
            Some(p) => p.clone(),
            None => {
                let dir = file
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                signet_keys::find_config_file(dir).path?
            }
        };
        let mut cache = self.configs.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cache.entry(path.clone()).or_insert_with(|| {
            let loaded = SopsConfig::load(&path).map_err(|e| e.to_string());
            if let Ok(config) = &loaded {
                for warning in config.warnings() {
                    eprintln!("signet: warning: {}: {warning}", path.display());
                }
            }
            Arc::new(loaded)
        });
        Some(Arc::clone(entry))
    }
}

/// A sops file read from disk, its metadata read.
pub struct SopsFile {
    /// The store its name selects.
    pub format: Format,
    /// Its tree and metadata.
    pub decryptor: Decryptor,
}

/// `Ok(Some)` when `bytes` are a sops file (metadata found in the store its name selects),
/// `Ok(None)` when they are not, `Err` when they look like one but cannot be read.
pub fn recognise(path: &Path, bytes: &[u8]) -> Result<Option<SopsFile>, String> {
    if !contains(bytes, b"sops") {
        return Ok(None);
    }
    let format = Format::from_path(path);
    let looks_like_sops = SOPS_MARKERS.iter().any(|m| contains(bytes, m));
    let tree = match stores::store_for(format).parse(bytes) {
        Ok(tree) => tree,
        Err(e) if looks_like_sops => return Err(e.to_string()),
        Err(_) => return Ok(None),
    };
    match Decryptor::new(tree) {
        Ok(decryptor) => Ok(Some(SopsFile { format, decryptor })),
        Err(signet_sops::Error::NotEncrypted) => Ok(None),
        Err(e) => Err(format!("unreadable sops metadata: {e}")),
    }
}

/// Whether `bytes` carry a marker only sops metadata has (a MAC line, an INI `[sops]` section).
pub(crate) fn looks_like_sops(bytes: &[u8]) -> bool {
    SOPS_MARKERS.iter().any(|m| contains(bytes, m))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Checks and, unless `--check`, brings one sops file up to date.
pub fn process(
    ctx: &SopsContext,
    batch: &crate::io::AtomicBatch,
    path: &Path,
    name: &str,
    file: SopsFile,
) -> FileReport {
    let fail = |e: &str| FileReport::failed(name, Kind::Sops, e);
    let SopsFile { format, decryptor } = file;
    let meta = decryptor.metadata();
    let wanted = match ctx.config_for(path).as_deref() {
        None => None,
        Some(Err(e)) => return fail(e),
        Some(Ok(config)) => match config.creation_rule_for(path) {
            Ok(Some(rule)) => Some(WantedKeys::of_rule(&rule, None)),
            Ok(None) | Err(signet_keys::Error::NoMatchingRule { .. }) => None,
            Err(e) => return fail(&e.to_string()),
        },
    };
    let mut reasons = match &wanted {
        Some(wanted) => match KeyDrift::between(meta, wanted) {
            Ok(drift) => drift.reasons(),
            Err(e) => return fail(&e.to_string()),
        },
        None if !ctx.rotate => {
            return FileReport::new(name, Kind::Sops, Status::Unchecked).because(vec![
                "no creation rule in a .sops.yaml above it matches this file".to_owned(),
            ]);
        }
        None => Vec::new(),
    };
    if ctx.rotate {
        reasons.push("data key to rotate (--rotate)".to_owned());
    }
    if reasons.is_empty() {
        return FileReport::new(name, Kind::Sops, Status::Current);
    }
    if ctx.check {
        return FileReport::new(name, Kind::Sops, Status::Stale).because(reasons);
    }
    let key = match decryptor.unwrap_key(ctx.keyring()) {
        Ok(key) => key,
        Err(e) => return fail(&format!("cannot open the data key: {e}")),
    };
    let result = if ctx.rotate {
        let wanted = match wanted {
            Some(w) => w,
            None => match signet_keys::key_specs_from_metadata(meta) {
                Ok(groups) => WantedKeys {
                    threshold: signet_keys::shamir_threshold_for(
                        groups.len(),
                        meta.shamir_threshold,
                    ),
                    groups,
                },
                Err(e) => return fail(&e.to_string()),
            },
        };
        rotate_data_key(name, decryptor, key, &wanted)
    } else {
        // Re-wrapping alone never reads the values; check the MAC first so a tampered file is
        // reported, not re-blessed with new recipients.
        if let Err(e) = decryptor
            .clone()
            .decrypt(key.clone(), DecryptOptions::default())
        {
            return fail(&e.to_string());
        }
        let Some(wanted) = wanted else {
            return fail("no creation rule matches");
        };
        let (mut tree, mut meta) = decryptor.into_parts();
        rewrap_data_key(name, &mut tree, &mut meta, &key.data_key, &wanted).map(|()| tree)
    };
    let tree = match result {
        Ok(tree) => tree,
        Err(e) => return fail(&e.message),
    };
    let out = match stores::store_for(format).emit(&tree) {
        Ok(out) => zeroize::Zeroizing::new(out),
        Err(e) => return fail(&e.to_string()),
    };
    match batch.write(path, &out) {
        Ok(()) => FileReport::new(name, Kind::Sops, Status::Updated).because(reasons),
        Err(e) => fail(&e.message),
    }
}
