//! Bounds on untrusted input, so that no file can make a parser stall, exhaust memory or overflow
//! the stack: the size of a document, the nesting depth of maps and sequences, and how many nodes
//! YAML anchors and aliases may copy (a ~1 KB "billion laughs" file expands to 10⁹ nodes).
//!
//! Every store's `parse` enforces them, so the CLI, the controller and anything else built on this
//! crate share one set. Two can be raised (or lowered) per process with environment variables,
//! because a user may have a legitimately large file: [`INPUT_BYTES_ENV`] and [`ALIAS_NODES_ENV`].
//! The depth limit is fixed: no real secret file nests hundreds of levels deep.

use std::io::Read;
use std::sync::OnceLock;

/// Environment variable raising the largest input, in bytes (default [`DEFAULT_MAX_INPUT_BYTES`]).
pub const INPUT_BYTES_ENV: &str = "SIGNET_MAX_INPUT_BYTES";
/// Environment variable raising how many nodes YAML anchors and aliases may copy (default
/// [`DEFAULT_MAX_ALIAS_NODES`]).
pub const ALIAS_NODES_ENV: &str = "SIGNET_MAX_ALIAS_NODES";
/// Default largest input: 64 MiB.
pub const DEFAULT_MAX_INPUT_BYTES: usize = 64 << 20;
/// Default number of nodes YAML anchors and aliases may copy in one file.
pub const DEFAULT_MAX_ALIAS_NODES: usize = 100_000;
/// Deepest nesting of maps and sequences in any store.
pub const MAX_DEPTH: usize = 200;

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document a store parses (and a file the CLI reads), in bytes.
    pub max_input_bytes: usize,
    /// Most nodes (scalars, maps, sequences) YAML anchors and aliases may copy in one file.
    pub max_alias_nodes: usize,
    /// Deepest nesting of maps and sequences.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            max_alias_nodes: DEFAULT_MAX_ALIAS_NODES,
            max_depth: MAX_DEPTH,
        }
    }
}

impl Limits {
    /// The defaults changed by [`INPUT_BYTES_ENV`] and [`ALIAS_NODES_ENV`]; an error names a
    /// variable whose value is not a whole number.
    pub fn from_env() -> Result<Limits, String> {
        let mut limits = Limits::default();
        for (name, slot) in [
            (INPUT_BYTES_ENV, &mut limits.max_input_bytes),
            (ALIAS_NODES_ENV, &mut limits.max_alias_nodes),
        ] {
            if let Some(value) = std::env::var_os(name) {
                let text = value.to_string_lossy();
                *slot = text
                    .trim()
                    .parse()
                    .map_err(|_| format!("{name}={text:?} is not a whole number"))?;
            }
        }
        Ok(limits)
    }

    /// The limits of this process: [`Limits::from_env`] read once (an invalid variable leaves the
    /// default; the CLI reports it at start-up).
    pub fn get() -> &'static Limits {
        static LIMITS: OnceLock<Limits> = OnceLock::new();
        LIMITS.get_or_init(|| Limits::from_env().unwrap_or_default())
    }

    /// Refuses `len` bytes of `format` input over [`Limits::max_input_bytes`].
    pub fn check_input(&self, format: &'static str, len: usize) -> Result<(), crate::Error> {
        if len > self.max_input_bytes {
            return Err(crate::Error::Limit {
                format,
                location: "the whole document".into(),
                message: input_too_large(len as u64, self.max_input_bytes),
            });
        }
        Ok(())
    }
}

fn input_too_large(len: u64, max: usize) -> String {
    format!("{len} bytes is more than the limit of {max} (raise it with {INPUT_BYTES_ENV})")
}

/// Reads all of `reader`, refusing more than [`Limits::max_input_bytes`] without reading further
/// (so `/dev/zero` or a huge file cannot exhaust memory). The error is
/// [`std::io::ErrorKind::FileTooLarge`] and says how to raise the limit.
pub fn read_bounded(reader: impl Read) -> std::io::Result<Vec<u8>> {
    read_bounded_sized(reader, 0)
}

/// [`read_bounded`] into a buffer sized for `expected` bytes up front (a file's length), so a
/// large input is read without the buffer growing: no reallocation copies it (a plain input
/// would leave unwiped copies behind) and the peak memory is the input, not twice it.
fn read_bounded_sized(reader: impl Read, expected: usize) -> std::io::Result<Vec<u8>> {
    let max = Limits::get().max_input_bytes;
    let too_large = || {
        std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "more than {max} bytes, the input size limit (raise it with {INPUT_BYTES_ENV})"
            ),
        )
    };
    if expected > max {
        return Err(too_large());
    }
    // One byte more than expected: reaching the end needs room to read 0 bytes into.
    let mut buf = Vec::with_capacity(expected.saturating_add(1));
    reader.take(max as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > max {
        return Err(too_large());
    }
    Ok(buf)
}

/// [`read_bounded`] on the file at `path`.
pub fn read_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let len = file
        .metadata()
        .map_or(0, |m| usize::try_from(m.len()).unwrap_or(usize::MAX));
    read_bounded_sized(file, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_read_stops_after_the_limit() {
        let max = Limits::get().max_input_bytes;
        let ok = read_bounded(std::io::repeat(b'a').take(max as u64)).unwrap();
        assert_eq!(ok.len(), max);
        // An endless reader is cut off just past the limit instead of growing without end.
        let err = read_bounded(std::io::repeat(b'a')).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(err.to_string().contains(INPUT_BYTES_ENV), "{err}");
    }

    #[test]
    fn file_reads_whole_and_a_file_over_the_limit_is_refused_before_reading() {
        let dir = std::env::temp_dir().join(format!("signet-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let read = read_file(&path).unwrap();
        assert_eq!(read, data);
        // Sized up front: no growth past the file (plus the byte that sees the end).
        assert!(read.capacity() <= data.len() + 1, "{}", read.capacity());
        let err =
            read_bounded_sized(std::io::empty(), Limits::get().max_input_bytes + 1).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn input_check_names_the_variable() {
        let limits = Limits {
            max_input_bytes: 10,
            ..Limits::default()
        };
        assert!(limits.check_input("json", 10).is_ok());
        let err = limits.check_input("json", 11).unwrap_err().to_string();
        assert!(
            err.contains("11 bytes") && err.contains(INPUT_BYTES_ENV),
            "{err}"
        );
    }
}
