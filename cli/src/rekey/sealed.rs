//! Files holding SealedSecrets: finding each document's byte range, telling which private key opens
//! each object, and rewriting only the re-sealed values so the rest of the file (comments, other
//! documents, quoting, key order) stays byte for byte. `signet reseal` and `signet rekey` both rewrite
//! through [`reseal_file`] / [`SealedFile::rewrite`].

use super::report::{FileReport, Kind, Status};
use crate::exit::{CliError, CliResult, code};
use crate::seal::{ManifestFormat, render, seal_error};
use serde_json::Value;
use signet_api::SealedSecret;
use signet_seal::convert::{Values, unseal_values};
use signet_seal::{PrivateKeyRing, SealError, SealingCertificate};
use std::ops::Range;
use std::path::Path;

/// One document (or one JSON value) of the file, and the SealedSecrets in it.
#[derive(Debug)]
struct Chunk {
    /// Bytes of the file this document spans.
    range: Range<usize>,
    /// SealedSecrets found in it (a `List` may hold several).
    objects: Vec<SealedSecret>,
    /// The document is exactly one SealedSecret (not a List), so it may be re-rendered whole.
    single: bool,
}

/// A parsed file with at least one SealedSecret.
#[derive(Debug)]
pub struct SealedFile {
    text: String,
    json: bool,
    chunks: Vec<Chunk>,
}

/// Where an object sits in a [`SealedFile`]: (document, object within it).
pub type ObjectIndex = (usize, usize);

impl SealedFile {
    /// Parses `bytes` (named `origin` in errors). `Ok(None)`: no SealedSecret in it. An error when
    /// the file holds SealedSecrets but cannot be split into documents safely.
    pub fn parse(bytes: &[u8], origin: &str) -> CliResult<Option<SealedFile>> {
        let invalid = |m: String| CliError::new(code::INVALID_MANIFEST, format!("{origin}: {m}"));
        let text = std::str::from_utf8(bytes)
            .map_err(|_| invalid("not UTF-8 text".to_owned()))?
            .to_owned();
        let whole =
            signet_seal::manifest::parse_documents(&text).map_err(|e| seal_error(origin, e))?;
        if !whole.iter().any(is_sealed_secret) {
            return Ok(None);
        }
        let (json, ranges) = match json_value_ranges(&text) {
            Some(ranges) => (true, ranges),
            None => (false, yaml_document_ranges(&text)),
        };
        let mut chunks = Vec::with_capacity(ranges.len());
        let mut seen = 0;
        for range in ranges {
            let piece = &text[range.clone()];
            let docs = signet_seal::manifest::parse_documents(piece).map_err(|_| {
                invalid(format!(
                    "cannot split into documents safely (document {} does not parse alone); \
                     left unchanged",
                    chunks.len() + 1
                ))
            })?;
            seen += docs.len();
            let single = docs.len() == 1 && is_sealed_secret(&docs[0]) && !is_list(piece);
            let mut objects = Vec::new();
            for doc in docs.into_iter().filter(is_sealed_secret) {
                let where_ = format!("{origin}: document {}", chunks.len() + 1);
                objects.push(
                    signet_seal::manifest::typed::<SealedSecret>(doc, "SealedSecret")
                        .map_err(|e| seal_error(&where_, e))?,
                );
            }
            chunks.push(Chunk {
                range,
                objects,
                single,
            });
        }
        if seen != whole.len() {
            return Err(invalid(
                "cannot split into documents safely (the documents found one by one differ from \
                 the whole file); left unchanged"
                    .to_owned(),
            ));
        }
        Ok(Some(SealedFile { text, json, chunks }))
    }

    /// Every SealedSecret with its index and a name for messages (`namespace/name`).
    pub fn objects(&self) -> impl Iterator<Item = (ObjectIndex, String, &SealedSecret)> {
        self.chunks.iter().enumerate().flat_map(|(d, chunk)| {
            chunk
                .objects
                .iter()
                .enumerate()
                .map(move |(o, object)| ((d, o), object_name(object), object))
        })
    }

    /// The file with the objects at the given indices replaced. Values are replaced in place (the
    /// rest of the document keeps its bytes); a document where that is not possible is rendered
    /// again whole if it is a single SealedSecret, else the rewrite is refused.
    pub fn rewrite(&self, replaced: &[(ObjectIndex, SealedSecret)]) -> Result<Vec<u8>, String> {
        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        for (d, chunk) in self.chunks.iter().enumerate() {
            let mine: Vec<_> = replaced.iter().filter(|((rd, _), _)| *rd == d).collect();
            if mine.is_empty() {
                continue;
            }
            let piece = &self.text[chunk.range.clone()];
            let mut spliced = Vec::new();
            let mut ok = true;
            for ((_, o), new) in &mine {
                match value_splices(piece, &chunk.objects[*o], new) {
                    Some(found) => spliced.extend(found),
                    None => ok = false,
                }
            }
            if ok {
                edits.extend(
                    spliced
                        .into_iter()
                        .map(|(r, v)| (chunk.range.start + r.start..chunk.range.start + r.end, v)),
                );
            } else if chunk.single {
                edits.push((
                    chunk.range.clone(),
                    self.render_document(piece, &mine[0].1)?,
                ));
            } else {
                return Err(format!(
                    "document {} holds several objects (a List) whose values cannot be replaced in \
                     place; split the List into documents and run again",
                    d + 1
                ));
            }
        }
        edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
        let mut out = self.text.clone();
        for (range, value) in edits {
            out.replace_range(range, &value);
        }
        Ok(out.into_bytes())
    }

    /// `object` rendered to replace the document `piece`, in the file's own format.
    fn render_document(&self, piece: &str, object: &SealedSecret) -> Result<String, String> {
        let format = if self.json {
            ManifestFormat::Json
        } else {
            ManifestFormat::Yaml
        };
        let rendered = render(std::slice::from_ref(object), format).map_err(|e| e.message)?;
        let rendered = String::from_utf8(rendered).map_err(|e| e.to_string())?;
        let lead_len = piece.len() - piece.trim_start().len();
        Ok(if self.json {
            format!("{}{}", &piece[..lead_len], rendered.trim_end())
        } else if piece.trim_start().starts_with("---") {
            format!("{}{rendered}", &piece[..lead_len])
        } else {
            rendered.trim_start_matches("---\n").to_owned()
        })
    }
}

/// The (range in `piece`, new value) pairs that turn `old`'s values into `new`'s, when every old
/// value occurs exactly once in the document and nothing else differs; `None` otherwise.
fn value_splices(
    piece: &str,
    old: &SealedSecret,
    new: &SealedSecret,
) -> Option<Vec<(Range<usize>, String)>> {
    let legacy = old.spec.data.as_deref().is_some_and(|d| !d.is_empty());
    if legacy
        || old.spec.encrypted_data.len() != new.spec.encrypted_data.len()
        || old
            .spec
            .encrypted_data
            .keys()
            .ne(new.spec.encrypted_data.keys())
    {
        return None;
    }
    let mut out = Vec::new();
    for (key, old_value) in &old.spec.encrypted_data {
        let mut found = piece.match_indices(old_value.as_str());
        let (at, _) = found.next()?;
        if old_value.is_empty() || found.next().is_some() {
            return None;
        }
        out.push((
            at..at + old_value.len(),
            new.spec.encrypted_data[key].clone(),
        ));
    }
    Some(out)
}

fn is_sealed_secret(doc: &Value) -> bool {
    doc.get("kind").and_then(Value::as_str) == Some("SealedSecret")
}

fn is_list(piece: &str) -> bool {
    piece.lines().any(|l| {
        let l = l.trim();
        l == "kind: List"
            || l.starts_with("\"kind\": \"List\"")
            || l.starts_with("\"kind\":\"List\"")
    })
}

/// `namespace/name` of an object, for messages.
pub fn object_name(object: &SealedSecret) -> String {
    let name = object.metadata.name.as_deref().unwrap_or("?");
    match object.metadata.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

/// Byte ranges of the values of a JSON stream (leading whitespace excluded), or `None` when the text
/// is not one.
fn json_value_ranges(text: &str) -> Option<Vec<Range<usize>>> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut ranges = Vec::new();
    loop {
        let before = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Err(_)) => return None,
            Some(Ok(_)) => {
                let end = stream.byte_offset();
                let gap = &text[before..end];
                let start = before + (gap.len() - gap.trim_start().len());
                ranges.push(start..end);
            }
        }
    }
    Some(ranges)
}

/// Byte ranges of the documents of a YAML stream: each starts at its `---` line (the first at 0)
/// and runs to the next one.
pub(crate) fn yaml_document_ranges(text: &str) -> Vec<Range<usize>> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let marker = line.strip_prefix("---").is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_whitespace())
        });
        if marker && offset != 0 {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts
        .iter()
        .zip(starts.iter().skip(1).chain(std::iter::once(&text.len())))
        .map(|(s, e)| *s..*e)
        .collect()
}

/// Hex SHA-256 of a public key's SubjectPublicKeyInfo DER: the key fingerprint the controller
/// records (`status.keyFingerprint`) and `keys retire` takes.
pub fn fingerprint(spki_der: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(spki_der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The private keys given, one ring per key (so that which key opened a value is known), plus one
/// ring with all of them.
#[derive(Debug, Default)]
pub struct KeyRings {
    /// `(fingerprint, one-key ring)`.
    pub single: Vec<(String, PrivateKeyRing)>,
    /// Every key.
    pub all: PrivateKeyRing,
}

impl KeyRings {
    /// Reads every key of every file (PEM blocks, or key-backup Secrets / Lists).
    pub fn load(paths: &[std::path::PathBuf]) -> CliResult<KeyRings> {
        let mut rings = KeyRings {
            all: crate::seal::load_ring(paths)?,
            ..KeyRings::default()
        };
        for path in paths {
            let origin = path.display().to_string();
            let bytes = zeroize::Zeroizing::new(crate::io::Input::File(path.clone()).read()?);
            for part in key_parts(&bytes, &origin)? {
                let mut ring = PrivateKeyRing::new();
                match ring.add_from_bytes(&part, &origin) {
                    Ok(_) => {}
                    Err(SealError::NoPrivateKey(_)) => continue,
                    Err(e) => return Err(seal_error(&origin, e)),
                }
                let fp = ring.iter().next().map(|k| fingerprint(k.public_key_der()));
                if let Some(fp) = fp
                    && !rings.single.iter().any(|(f, _)| *f == fp)
                {
                    rings.single.push((fp, ring));
                }
            }
        }
        Ok(rings)
    }

    /// Whether the key with this fingerprint was given.
    pub fn has(&self, fp: &str) -> bool {
        self.single.iter().any(|(f, _)| f == fp)
    }
}

/// A key file cut into pieces holding one key each: PEM blocks, or the `tls.key` of each Secret of
/// a key backup.
fn key_parts(bytes: &[u8], origin: &str) -> CliResult<Vec<zeroize::Zeroizing<Vec<u8>>>> {
    use base64::Engine;
    let text = String::from_utf8_lossy(bytes);
    if text.contains("-----BEGIN ") {
        let mut parts = Vec::new();
        let mut rest = text.as_ref();
        while let Some(begin) = rest.find("-----BEGIN ") {
            let after = &rest[begin..];
            let Some(end_marker) = after.find("-----END ") else {
                break;
            };
            let end = after[end_marker..]
                .find('\n')
                .map_or(after.len(), |n| end_marker + n + 1);
            parts.push(zeroize::Zeroizing::new(after.as_bytes()[..end].to_vec()));
            rest = &after[end..];
        }
        return Ok(parts);
    }
    let docs = signet_seal::manifest::parse_documents(&text).map_err(|e| seal_error(origin, e))?;
    let mut parts = Vec::new();
    let mut stack = docs;
    while let Some(doc) = stack.pop() {
        if let Some(items) = doc.get("items").and_then(Value::as_array) {
            stack.extend(items.iter().cloned());
        } else if let Some(key) = doc.pointer("/data/tls.key").and_then(Value::as_str)
            && let Ok(pem) = base64::engine::general_purpose::STANDARD.decode(key)
        {
            parts.push(zeroize::Zeroizing::new(pem));
        }
    }
    Ok(parts)
}

/// Which key opened a SealedSecret.
pub enum Opened {
    /// The key of the current certificate opened every value.
    Current,
    /// Another single key opened every value.
    Other {
        /// Its fingerprint.
        fingerprint: String,
        /// The values.
        values: Values,
    },
    /// Values sealed to different keys; all keys together opened them.
    Mixed(Values),
    /// No key given opens it.
    Nothing,
}

/// Opens `object` with the current key first, then each other key, then all keys together.
pub fn open_by_key(
    object: &SealedSecret,
    rings: &KeyRings,
    current_fp: &str,
) -> Result<Opened, SealError> {
    let ordered = rings
        .single
        .iter()
        .filter(|(fp, _)| fp == current_fp)
        .chain(rings.single.iter().filter(|(fp, _)| fp != current_fp));
    for (fp, ring) in ordered {
        match unseal_values(object, ring) {
            Ok(values) if fp == current_fp => {
                drop(values);
                return Ok(Opened::Current);
            }
            Ok(values) => {
                return Ok(Opened::Other {
                    fingerprint: fp.clone(),
                    values,
                });
            }
            Err(SealError::Unseal) => {}
            Err(other) => return Err(other),
        }
    }
    match unseal_values(object, &rings.all) {
        Ok(values) if rings.single.len() > 1 => Ok(Opened::Mixed(values)),
        Ok(_) | Err(SealError::Unseal) => Ok(Opened::Nothing),
        Err(other) => Err(other),
    }
}

/// Re-seals every SealedSecret of the file at `path` to `cert` with the keys of `ring`, writing
/// atomically and keeping everything but the sealed values byte for byte where possible. The one
/// implementation of "reseal this SealedSecret file" (`signet reseal`, `signet rekey`).
pub fn reseal_file(path: &Path, ring: &PrivateKeyRing, cert: &SealingCertificate) -> CliResult {
    let origin = path.display().to_string();
    let bytes = crate::io::Input::File(path.to_path_buf()).read()?;
    let file = SealedFile::parse(&bytes, &origin)?.ok_or_else(|| {
        CliError::new(
            code::INVALID_MANIFEST,
            format!("{origin}: no SealedSecret found"),
        )
    })?;
    let mut replaced = Vec::new();
    for (index, name, object) in file.objects() {
        let where_ = format!("{origin}: SealedSecret {name}");
        let values = unseal_values(object, ring).map_err(|e| seal_error(&where_, e))?;
        replaced.push((index, reseal_object(object, &values, cert, &where_)?));
    }
    write_rewritten(&crate::io::AtomicBatch::default(), path, &file, &replaced)
}

/// `object` with `values` sealed to `cert` (see [`signet_seal::reseal_values`]).
pub fn reseal_object(
    object: &SealedSecret,
    values: &Values,
    cert: &SealingCertificate,
    where_: &str,
) -> CliResult<SealedSecret> {
    signet_seal::reseal_values(object, values, cert).map_err(|e| seal_error(where_, e))
}

/// Writes `file` with `replaced` objects to `path`, atomically, as part of `batch`.
pub fn write_rewritten(
    batch: &crate::io::AtomicBatch,
    path: &Path,
    file: &SealedFile,
    replaced: &[(ObjectIndex, SealedSecret)],
) -> CliResult {
    let out = file
        .rewrite(replaced)
        .map_err(|m| CliError::new(code::INVALID_MANIFEST, format!("{}: {m}", path.display())))?;
    batch.write(path, &out)
}

/// What `rekey` needs to judge SealedSecrets: the current certificate and the private keys, or why
/// it cannot.
pub enum SealContext {
    /// Certificate and keys given.
    Ready {
        /// The current sealing certificate (a bare `--cert`), for SealedSecrets of no named cluster.
        cert: Option<SealingCertificate>,
        /// Its fingerprint.
        cert_fp: String,
        /// `--cert NAME=FILE|URL`: the current certificate of each cluster, with its fingerprint,
        /// for SealedSecrets annotated `signet.dev/cluster: NAME` (as `seal --cert … --cert …`
        /// writes them).
        clusters: Vec<(String, SealingCertificate, String)>,
        /// The private keys.
        rings: KeyRings,
        /// `--check`: change nothing.
        check: bool,
    },
    /// SealedSecrets are reported unchecked, for this reason.
    Unchecked(String),
}

/// The annotation `signet seal` writes on each cluster's SealedSecret.
pub const CLUSTER_ANNOTATION: &str = "signet.dev/cluster";

/// Checks and, unless `--check`, re-seals the stale SealedSecrets of one file.
pub fn process(
    ctx: &SealContext,
    batch: &crate::io::AtomicBatch,
    path: &Path,
    name: &str,
    file: &SealedFile,
) -> FileReport {
    let fail = |e: &str| FileReport::failed(name, Kind::SealedSecret, e);
    let (default, default_fp, clusters, rings, check) = match ctx {
        SealContext::Unchecked(reason) => {
            return FileReport::new(name, Kind::SealedSecret, Status::Unchecked)
                .because(vec![reason.clone()]);
        }
        SealContext::Ready {
            cert,
            cert_fp,
            clusters,
            rings,
            check,
        } => (cert.as_ref(), cert_fp, clusters, rings, *check),
    };
    // The certificate an object should be sealed to: its cluster's, else the default.
    let current_for = |object: &SealedSecret| {
        let cluster = object.metadata.annotation(CLUSTER_ANNOTATION);
        cluster
            .and_then(|c| clusters.iter().find(|(n, _, _)| n == c))
            .map(|(_, cert, fp)| (cert, fp.as_str()))
            .or(default.map(|cert| (cert, default_fp.as_str())))
    };
    let mut reasons = Vec::new();
    let mut unopened = Vec::new();
    let mut unknown = Vec::new();
    let mut stale = Vec::new();
    for (index, object_name, object) in file.objects() {
        let Some((cert, cert_fp)) = current_for(object) else {
            unknown.push(object_name);
            continue;
        };
        match open_by_key(object, rings, cert_fp) {
            Ok(Opened::Current) => {}
            Ok(Opened::Other {
                fingerprint,
                values,
            }) => {
                reasons.push(format!(
                    "SealedSecret {object_name}: sealed with certificate {fingerprint} not {cert_fp}"
                ));
                stale.push((index, object_name, object, values, cert));
            }
            Ok(Opened::Mixed(values)) => {
                reasons.push(format!(
                    "SealedSecret {object_name}: values sealed with several certificates, not all \
                     {cert_fp}"
                ));
                stale.push((index, object_name, object, values, cert));
            }
            Ok(Opened::Nothing) => unopened.push((object_name, cert_fp)),
            Err(e) => return fail(&format!("SealedSecret {object_name}: {e}")),
        }
    }
    if !unknown.is_empty() {
        reasons.push(format!(
            "SealedSecret {}: no --cert for its cluster (annotation {CLUSTER_ANNOTATION}) and no \
             default --cert",
            unknown.join(", ")
        ));
        return FileReport::new(name, Kind::SealedSecret, Status::Unchecked).because(reasons);
    }
    if !unopened.is_empty() {
        let names: Vec<&str> = unopened.iter().map(|(n, _)| n.as_str()).collect();
        let names = names.join(", ");
        if let Some((_, cert_fp)) = unopened.iter().find(|(_, fp)| !rings.has(fp)) {
            reasons.push(format!(
                "SealedSecret {names}: no private key given opens it (the key of the current \
                 certificate {cert_fp} was not given, so it may be current)"
            ));
            return FileReport::new(name, Kind::SealedSecret, Status::Unchecked).because(reasons);
        }
        return fail(&format!(
            "SealedSecret {names}: no private key given opens it"
        ));
    }
    if stale.is_empty() {
        return FileReport::new(name, Kind::SealedSecret, Status::Current);
    }
    if check {
        return FileReport::new(name, Kind::SealedSecret, Status::Stale).because(reasons);
    }
    let mut replaced = Vec::with_capacity(stale.len());
    for (index, object_name, object, values, cert) in stale {
        match reseal_object(
            object,
            &values,
            cert,
            &format!("SealedSecret {object_name}"),
        ) {
            Ok(new) => replaced.push((index, new)),
            Err(e) => return fail(&e.message),
        }
    }
    match write_rewritten(batch, path, file, &replaced) {
        Ok(()) => FileReport::new(name, Kind::SealedSecret, Status::Updated).because(reasons),
        Err(e) => fail(&e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(name: &str, value: &str) -> String {
        format!(
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: {name}\n  \
             namespace: ns\nspec:\n  encryptedData:\n    pw: {value}\n  template:\n    \
             metadata:\n      name: {name}\n"
        )
    }

    #[test]
    fn other_documents_and_comments_keep_their_bytes() {
        let text = format!(
            "# leading comment\n{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n\
             data:   {{k:  v}}   # odd spacing kept\n---\n{}",
            sealed("a", "QUFB"),
            sealed("b", "\"QkJC\"")
        );
        let file = SealedFile::parse(text.as_bytes(), "t").unwrap().unwrap();
        let objects: Vec<_> = file.objects().map(|(i, n, o)| (i, n, o.clone())).collect();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[1].1, "ns/b");
        let mut replaced = Vec::new();
        for (index, _, mut object) in objects {
            object
                .spec
                .encrypted_data
                .insert("pw".into(), format!("NEW{}", index.0));
            replaced.push((index, object));
        }
        let out = String::from_utf8(file.rewrite(&replaced).unwrap()).unwrap();
        let expected = text
            .replace("pw: QUFB", "pw: NEW0")
            .replace("pw: \"QkJC\"", "pw: \"NEW2\"");
        assert_eq!(out, expected);
    }

    #[test]
    fn json_streams_are_split_by_value() {
        let one = r#"{"kind":"SealedSecret","apiVersion":"bitnami.com/v1alpha1","metadata":{"name":"a"},"spec":{"encryptedData":{"k":"QUFB"}}}"#;
        let text = format!(
            "{one}\n\n  {{\"kind\": \"ConfigMap\"}}\n{}",
            one.replace("QUFB", "QkJC")
        );
        let file = SealedFile::parse(text.as_bytes(), "t").unwrap().unwrap();
        let (index, _, object) = file.objects().nth(1).unwrap();
        let mut object = object.clone();
        object.spec.encrypted_data.insert("k".into(), "Q0ND".into());
        let out = file.rewrite(&[(index, object)]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            text.replace("QkJC", "Q0ND")
        );
    }

    #[test]
    fn a_value_found_twice_renders_the_document_again() {
        let text = format!("{}# copy: QUFB\n", sealed("a", "QUFB"));
        let file = SealedFile::parse(text.as_bytes(), "t").unwrap().unwrap();
        let (index, _, object) = file.objects().next().unwrap();
        let mut object = object.clone();
        object
            .spec
            .encrypted_data
            .insert("pw".into(), "Q0ND".into());
        let out = String::from_utf8(file.rewrite(&[(index, object)]).unwrap()).unwrap();
        let docs = signet_seal::manifest::parse_documents(&out).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["spec"]["encryptedData"]["pw"], "Q0ND");
    }

    #[test]
    fn files_without_sealed_secrets_are_not_sealed_files() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: SealedSecret}\n";
        assert!(SealedFile::parse(text.as_bytes(), "t").unwrap().is_none());
    }
}
