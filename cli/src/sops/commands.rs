//! One function per sops-style subcommand, each a short script over [`super::file`] and
//! [`super::keys`].

use super::args::{DecryptArgs, InputArgs, KeyArgs, OutputArgs};
use super::editor::{self, Edited};
use super::file::{self, engine_error};
use super::keys;
use crate::exit::{CliError, CliResult, code};
use clap::Args;
use signet_sops::decryptor::OpenError;
use signet_sops::engine::{self, DecryptOptions, EncryptOptions, Extracted};
use signet_sops::metadata::Metadata;
use signet_sops::stores::yaml::YamlStore;
use signet_sops::tree::{Node, Scalar, Tree, Value};
use signet_sops::{DataKey, Format, UnwrappedDataKey};
use std::path::PathBuf;

/// `signet encrypt`.
#[derive(Debug, Args)]
pub struct EncryptCmd {
    /// `SopsSecret`: turn a Secret manifest into a `signet.dev/v1alpha1` SopsSecret for
    /// signet-controller, bound to its namespace and name (implies `--mac-only-encrypted
    /// --encrypted-regex '^(data|stringData|binding)$'`).
    #[arg(long, value_name = "KIND", value_parser = ["SopsSecret"])]
    kind: Option<String>,
    /// With --kind SopsSecret: where the controller may open it — `strict` (the default: this
    /// name in this namespace), `namespace-wide` (any name in this namespace) or `cluster-wide`
    /// (anywhere). Written, encrypted, as `spec.binding`.
    #[arg(long, value_enum, requires = "kind")]
    scope: Option<crate::seal::ScopeArg>,
    /// With --kind SopsSecret: the namespace, for a Secret whose manifest names none.
    #[arg(long, requires = "kind")]
    namespace: Option<String>,
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    keys: KeyArgs,
}

/// `signet decrypt`.
#[derive(Debug, Args)]
pub struct DecryptCmd {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    decrypt: DecryptArgs,
}

/// `signet edit`.
#[derive(Debug, Args)]
pub struct EditCmd {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    keys: KeyArgs,
    /// Decrypt even when the MAC does not match.
    #[arg(long)]
    ignore_mac: bool,
}

/// `signet set FILE PATH VALUE`.
#[derive(Debug, Args)]
pub struct SetCmd {
    /// The encrypted file (changed in place).
    file: PathBuf,
    /// Where to set, e.g. `'["data"]["password"]'`.
    path: String,
    /// The value as JSON (`'"text"'`, `42`, `{"a": 1}`); with --value-file, the file holding it
    /// (kept out of process listings); with --value-stdin, omit it.
    value: Option<String>,
    /// Read the JSON value from stdin.
    #[arg(long, conflicts_with_all = ["value", "value_file"])]
    value_stdin: bool,
    /// VALUE names a file to read the JSON value from (as `sops set --value-file`).
    #[arg(long, requires = "value")]
    value_file: bool,
    /// Do nothing (and leave the file untouched) when the value is already set.
    #[arg(long)]
    idempotent: bool,
    #[command(flatten)]
    formats: RewriteFormats,
}

/// The formats `set` and `unset` read and write the file in.
#[derive(Debug, Args)]
pub struct RewriteFormats {
    /// Input format; default: from the extension.
    #[arg(long, value_enum)]
    input_type: Option<super::args::FormatArg>,
    /// Format to write the file back in; default: the input format.
    #[arg(long, value_enum)]
    output_type: Option<super::args::FormatArg>,
}

/// `signet unset FILE PATH`.
#[derive(Debug, Args)]
pub struct UnsetCmd {
    /// The encrypted file (changed in place).
    file: PathBuf,
    /// What to remove, e.g. `'["data"]["old"]'`.
    path: String,
    /// Succeed (without writing) when the path does not exist.
    #[arg(long)]
    idempotent: bool,
    #[command(flatten)]
    formats: RewriteFormats,
}

/// `signet exec-env FILE COMMAND`.
#[derive(Debug, Args)]
pub struct ExecEnvCmd {
    /// The encrypted file.
    file: PathBuf,
    /// The command, run by `sh -c`, with the file's top-level values in its environment.
    command: String,
    /// Run the command with only the decrypted variables in its environment.
    #[arg(long)]
    pristine: bool,
    /// Replace this process by the command (`exec`) instead of running it as a child, so it
    /// gets signals directly and keeps the process id.
    #[arg(long)]
    same_process: bool,
}

/// `signet exec-file FILE COMMAND`.
#[derive(Debug, Args)]
pub struct ExecFileCmd {
    /// The encrypted file.
    file: PathBuf,
    /// The command, run by `sh -c`; `{}` is replaced by the path of the decrypted file.
    command: String,
    /// Use a 0600 temp file instead of a FIFO (for programs that seek or read twice).
    #[arg(long)]
    no_fifo: bool,
    /// Name of the decrypted file (its extension may matter to the command).
    #[arg(long, default_value = "tmp-file")]
    filename: String,
    /// Format of the decrypted file; default: the input format.
    #[arg(long, value_enum)]
    output_type: Option<super::args::FormatArg>,
}

/// `signet filestatus FILE`: prints `{"encrypted":true|false}`.
#[derive(Debug, Args)]
pub struct FilestatusCmd {
    #[command(flatten)]
    input: InputArgs,
}

/// `signet keygen`: a new age identity.
#[derive(Debug, Args)]
pub struct KeygenCmd {
    /// Write the identity here (0600) instead of stdout; an existing file is never overwritten.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// A post-quantum hybrid identity (`AGE-SECRET-KEY-PQ-1…`, recipient `age1pq1…`).
    #[arg(long)]
    pq: bool,
}

/// A decrypted file and what it takes to write it back.
struct Opened {
    input: crate::io::Input,
    format: Format,
    doc: signet_sops::Opened,
}

/// Reads and decrypts a file.
fn open(input: &InputArgs, opts: DecryptOptions) -> CliResult<Opened> {
    open_with(input, opts, None)
}

/// [`open`], with the data key already unwrapped from `metadata` when it is given (it is used
/// when the file's metadata is that one, and unwrapped again otherwise).
fn open_with(
    input: &InputArgs,
    opts: DecryptOptions,
    unwrapped: Option<Box<Unwrapped>>,
) -> CliResult<Opened> {
    let file::Encrypted {
        input,
        format,
        decryptor,
    } = file::load_encrypted(input)?;
    let name = input.display_name();
    let doc = match unwrapped.map(|u| *u) {
        Some((metadata, key)) if &metadata == decryptor.metadata() => decryptor
            .decrypt(key, opts)
            .map_err(|e| engine_error(&name, e))?,
        _ => decryptor
            .open(&keys::keyring(), opts)
            .map_err(|e| match e {
                OpenError::Key(e) => keys::no_data_key(&name, e),
                OpenError::Document(e) => engine_error(&name, e),
            })?,
    };
    if doc.mac_matched == Some(false) {
        eprintln!("signet: warning: {name}: MAC mismatch ignored (--ignore-mac)");
    }
    Ok(Opened { input, format, doc })
}

/// Re-encrypts an opened file's (edited) tree with its own data key and keys, reusing the IVs of
/// unchanged values. (In this tool `reseal` is the Sealed Secrets command, not this.)
pub(crate) fn reencrypt_edited(
    tree: &mut Tree,
    opened: &signet_sops::Opened,
) -> Result<(), signet_sops::Error> {
    let mut meta = opened.metadata.clone();
    meta.bump_version();
    engine::encrypt(
        tree,
        &opened.data_key,
        &mut meta,
        &EncryptOptions {
            previous: Some(&opened.previous),
            last_modified: None,
        },
    )
}

fn yaml_indent(config: Option<&signet_keys::SopsConfig>) -> Option<usize> {
    config.and_then(|c| c.stores.yaml_indent)
}

/// `signet encrypt`.
pub fn encrypt(cmd: EncryptCmd) -> CliResult {
    if cmd.kind.is_none() && encrypt_in_one_pass(&cmd)? {
        return Ok(());
    }
    let mut loaded = file::load(&cmd.input)?;
    let name = loaded.input.display_name();
    if engine::is_encrypted(&loaded.tree) {
        return Err(loaded.err(
            code::FILE_ALREADY_ENCRYPTED,
            "the file is already encrypted",
        ));
    }
    if loaded.tree.documents.is_empty() {
        return Err(loaded.err(
            code::NEED_AT_LEAST_ONE_DOCUMENT,
            "nothing to encrypt: the file has no document",
        ));
    }
    let mut key_args = cmd.keys.clone();
    if cmd.kind.is_some() {
        let plain = zeroize::Zeroizing::new(
            file::store(loaded.format, None)
                .emit(&loaded.tree)
                .map_err(|e| loaded.err(code::COULD_NOT_READ_INPUT_FILE, e))?,
        );
        let placement = super::sops_secret::Placement {
            scope: cmd.scope.unwrap_or(crate::seal::ScopeArg::Strict),
            namespace: cmd.namespace.as_deref(),
        };
        let converted = super::sops_secret::from_secret(&plain, loaded.format, &name, &placement)?;
        loaded.tree = file::store(loaded.format, None)
            .parse(&converted)
            .map_err(|e| loaded.err(code::COULD_NOT_READ_INPUT_FILE, e))?;
        key_args.k8s = false;
        key_args.encrypted_regex = Some(signet_api::sops_secret::ENCRYPTED_REGEX.to_owned());
        key_args.unencrypted_regex = None;
        key_args.encrypted_suffix = None;
        key_args.unencrypted_suffix = None;
        key_args.mac_only_encrypted = true;
    }
    let config = keys::config(cmd.input.config.as_deref())?;
    let plan = NewFile::plan(&key_args, config.as_ref(), loaded.rule_path.as_deref())?;
    plan.encrypt(&mut loaded.tree, &name)?;
    file::render_and_write(
        loaded.format,
        &mut loaded.tree,
        &cmd.output,
        yaml_indent(config.as_ref()),
        &loaded.input,
    )?;
    // One file per process: the exit frees the tree at once.
    loaded.tree.discard();
    Ok(())
}

/// `signet decrypt`.
pub fn decrypt(cmd: DecryptCmd) -> CliResult {
    let mut unwrapped = None;
    if cmd.decrypt.extract.is_none() {
        match decrypt_in_one_pass(&cmd)? {
            OnePass::Written => return Ok(()),
            OnePass::FullPath(key) => unwrapped = key,
        }
    }
    let opened = open_with(
        &cmd.input,
        DecryptOptions {
            ignore_mac: cmd.decrypt.ignore_mac,
            ..DecryptOptions::default()
        },
        unwrapped,
    )?;
    let name = opened.input.display_name();
    let format = opened.format;
    let mut tree = opened.doc.tree;
    if let Some(path) = &cmd.decrypt.extract {
        let steps = signet_sops::path::parse_path(path).map_err(|e| engine_error(&name, e))?;
        let out = match engine::extract(&tree, &steps).map_err(|e| engine_error(&name, e))? {
            Extracted::Tree(mut sub) => file::render(format, &mut sub, &cmd.output, None)?,
            Extracted::Text(text) => text,
            Extracted::Value(node) => file::render_value(format, &node, &cmd.output)?,
        };
        return file::write(&out, &cmd.output, &opened.input);
    }
    file::render_and_write(format, &mut tree, &cmd.output, None, &opened.input)?;
    // One file per process: the exit frees the tree at once.
    tree.discard();
    Ok(())
}

/// A data key already unwrapped, and the metadata it was unwrapped from.
type Unwrapped = (Metadata, UnwrappedDataKey);

/// What [`decrypt_in_one_pass`] did.
enum OnePass {
    /// The plaintext is written.
    Written,
    /// The file is for the full path; the data key is given when it was unwrapped already.
    FullPath(Option<Box<Unwrapped>>),
}

/// The input of a one-pass command, opened: a named YAML file whose output is YAML too, with the
/// path for creation rules. `None`: for the full path (which reports a file that does not open).
fn one_pass_file(
    input: &InputArgs,
    output: &OutputArgs,
) -> CliResult<Option<(crate::io::Input, Option<PathBuf>, std::fs::File)>> {
    let (input, rule_path, format) = file::detect(input)?;
    let same_format = output.output_type.is_none_or(|t| Format::from(t) == format);
    if format != Format::Yaml || !same_format {
        return Ok(None);
    }
    let opened = input.path().and_then(|p| std::fs::File::open(p).ok());
    Ok(opened.map(|f| (input, rule_path, f)))
}

/// Decrypts a YAML file written to the output unchanged in format, in one pass without a tree
/// (`signet_sops::stores::yaml::onepass`), when the file has the shape that path reads; else
/// leaves it to the full path, which reports every problem (a file that does not read, a value
/// that does not decrypt, a MAC that does not match).
fn decrypt_in_one_pass(cmd: &DecryptCmd) -> CliResult<OnePass> {
    use signet_sops::stores::yaml::onepass::Tail;
    let full_path = Ok(OnePass::FullPath(None));
    let Some((input, _, mut f)) = one_pass_file(&cmd.input, &cmd.output)? else {
        return full_path;
    };
    if cmd.output.indent.is_some() {
        return full_path;
    }
    let Ok(Some(tail)) = Tail::read(&mut f) else {
        return full_path;
    };
    let key = match tail.decryptor().unwrap_key(&keys::keyring()) {
        Ok(key) => key,
        Err(e) => {
            // As sops does, a file that does not read is reported before a key that is missing
            // (and the key is not asked for twice).
            file::load_encrypted(&cmd.input)?;
            return Err(keys::no_data_key(&input.display_name(), e));
        }
    };
    match tail.decrypt_body(&mut f, &key.data_key) {
        Ok(Some(plain)) => {
            file::write(&plain, &cmd.output, &input)?;
            Ok(OnePass::Written)
        }
        _ => Ok(OnePass::FullPath(Some(Box::new((
            tail.decryptor().metadata().clone(),
            key,
        ))))),
    }
}

/// Encrypts a YAML file written out unchanged in format in one pass without a tree
/// (`signet_sops::stores::yaml::onepass`), when the file has the shape that path writes and its
/// keys are at hand; `false` leaves it to the full path, which reports every problem (a file that
/// does not read or is encrypted already before a missing key, as sops does).
fn encrypt_in_one_pass(cmd: &EncryptCmd) -> CliResult<bool> {
    use signet_sops::stores::yaml::onepass::PlainFile;
    let Some((input, rule_path, mut f)) = one_pass_file(&cmd.input, &cmd.output)? else {
        return Ok(false);
    };
    let Ok(config) = keys::config(cmd.input.config.as_deref()) else {
        return Ok(false);
    };
    let Ok(plan) = NewFile::plan(&cmd.keys, config.as_ref(), rule_path.as_deref()) else {
        return Ok(false);
    };
    let Ok(Some(checked)) = PlainFile::check(&mut f, &plan.unkeyed_metadata()) else {
        return Ok(false);
    };
    let name = input.display_name();
    let (key, mut meta) = plan.new_key(&name)?;
    let indent = cmd
        .output
        .indent
        .or(yaml_indent(config.as_ref()))
        .unwrap_or(YamlStore::default().indent);
    let read_error =
        |e: std::io::Error| CliError::new(code::COULD_NOT_READ_INPUT_FILE, format!("{name}: {e}"));
    if cmd.output.in_place || cmd.output.output.is_some() {
        let mut out = Vec::new();
        checked
            .encrypt(&mut f, &key, &mut meta, indent, &mut out)
            .map_err(read_error)?;
        file::write(&out, &cmd.output, &input)?;
    } else {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        // Output errors are told apart from input errors by where they happened.
        let mut sink = ErrorTaggingWriter::new(&mut out);
        match checked.encrypt(&mut f, &key, &mut meta, indent, &mut sink) {
            Ok(()) => {}
            Err(e) if sink.failed => return Err(crate::io::stdout_error(e)),
            Err(e) => return Err(read_error(e)),
        }
        std::io::Write::flush(&mut out).map_err(crate::io::stdout_error)?;
    }
    Ok(true)
}

/// A writer that remembers whether a write failed.
struct ErrorTaggingWriter<W> {
    inner: W,
    failed: bool,
}

impl<W> ErrorTaggingWriter<W> {
    fn new(inner: W) -> Self {
        ErrorTaggingWriter {
            inner,
            failed: false,
        }
    }
}

impl<W: std::io::Write> std::io::Write for ErrorTaggingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.failed |= r.is_err();
        r
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.failed |= r.is_err();
        r
    }
}

/// The bare text of a scalar, as `exec-env` passes it.
fn scalar_text(v: &Value) -> zeroize::Zeroizing<Vec<u8>> {
    zeroize::Zeroizing::new(match v {
        Value::Null => Vec::new(),
        Value::Str(s) | Value::Int(s) | Value::Time(s) => s.clone().into_bytes(),
        Value::Float(f) => signet_sops::cipher::format_float(*f).into_bytes(),
        Value::Bool(b) => b.to_string().into_bytes(),
        Value::Bytes(b) => b.clone(),
    })
}

/// `signet edit`.
pub fn edit(cmd: EditCmd) -> CliResult {
    let path = cmd
        .input
        .file
        .clone()
        .ok_or_else(|| CliError::new(code::NO_FILE_SPECIFIED, "edit needs a file"))?;
    if !path.exists() {
        return edit_new(cmd, path);
    }
    // Re-encrypted with the IVs of unchanged values, so they stay byte-identical.
    let opened = open(
        &cmd.input,
        DecryptOptions {
            ignore_mac: cmd.ignore_mac,
            remember_ivs: true,
        },
    )?;
    let name = opened.input.display_name();
    let format = opened.format;
    let store = file::store(format, None);
    let plain = zeroize::Zeroizing::new(
        store
            .emit(&opened.doc.tree)
            .map_err(|e| engine_error(&name, e))?,
    );
    edit_session(&plain, &path, &name, store.as_ref(), |tree| {
        reencrypt_edited(tree, &opened.doc).map_err(|e| engine_error(&name, e))
    })
}

/// Runs the editor on `plain` and, once the result parses and `seal` has encrypted it, writes it
/// atomically to `path`. Exit 200 when nothing changed.
fn edit_session(
    plain: &[u8],
    path: &std::path::Path,
    name: &str,
    store: &(dyn signet_sops::Store + Send + Sync),
    mut seal: impl FnMut(&mut Tree) -> CliResult,
) -> CliResult {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let edited = editor::edit(plain, &file_name, |bytes| {
        let mut tree = store.parse(bytes).map_err(|e| {
            CliError::new(
                code::COULD_NOT_READ_INPUT_FILE,
                format!("{name} (edited): {e}"),
            )
        })?;
        if engine::is_encrypted(&tree) {
            return Err(CliError::new(
                code::ERROR_GENERIC,
                format!("{name} (edited): remove the `sops` key; metadata is managed by signet"),
            ));
        }
        seal(&mut tree)?;
        Ok(tree)
    })?;
    match edited {
        Edited::Unchanged => Err(CliError::new(
            code::FILE_HAS_NOT_BEEN_MODIFIED,
            format!("{name}: file has not been modified"),
        )),
        Edited::Changed(tree) => {
            let out =
                zeroize::Zeroizing::new(store.emit(&tree).map_err(|e| engine_error(name, e))?);
            crate::io::write_atomic(path, &out)
        }
    }
}

/// `signet edit` on a file that does not exist yet: start from an example document, encrypt with the
/// creation rule (or flags) on save.
fn edit_new(cmd: EditCmd, path: PathBuf) -> CliResult {
    let format = cmd.input.input_type.map(Format::from).unwrap_or_else(|| {
        Format::from_path(cmd.input.filename_override.as_ref().unwrap_or(&path))
    });
    let example: &[u8] = match format {
        Format::Yaml => b"hello: Welcome to Signet! Edit this file as you please!\n",
        Format::Json => {
            b"{\n\t\"hello\": \"Welcome to Signet! Edit this file as you please!\"\n}\n"
        }
        Format::Dotenv => b"hello=Welcome to Signet! Edit this file as you please!\n",
        Format::Ini => b"[section]\nhello = Welcome to Signet! Edit this file as you please!\n",
        Format::Binary => b"Welcome to Signet! Edit this file as you please!\n",
    };
    let name = path.display().to_string();
    let config = keys::config(cmd.input.config.as_deref())?;
    let rule_path = cmd
        .input
        .filename_override
        .clone()
        .unwrap_or_else(|| path.clone());
    let plan = NewFile::plan(&cmd.keys, config.as_ref(), Some(&rule_path))?;
    let store = file::store(format, yaml_indent(config.as_ref()));
    edit_session(example, &path, &name, store.as_ref(), |tree| {
        plan.encrypt(tree, &name)
    })
}

/// How a new file is encrypted: its master keys, Shamir threshold, rule and MAC mode, from flags and
/// the matching `.sops.yaml` creation rule.
struct NewFile {
    groups: Vec<Vec<signet_keys::KeySpec>>,
    threshold: Option<usize>,
    rule: signet_sops::rules::EncryptionRule,
    mac_only_encrypted: bool,
}

impl NewFile {
    fn plan(
        args: &super::args::KeyArgs,
        config: Option<&signet_keys::SopsConfig>,
        rule_path: Option<&std::path::Path>,
    ) -> CliResult<Self> {
        let rule = keys::creation_rule(config, rule_path)?;
        let (groups, threshold) = keys::key_groups(args, rule.as_ref())?;
        Ok(NewFile {
            groups,
            threshold,
            rule: keys::encryption_rule(args, rule.as_ref()),
            mac_only_encrypted: args.mac_only_encrypted
                || rule.as_ref().is_some_and(|r| r.mac_only_encrypted),
        })
    }

    /// The metadata of a new file before its values are encrypted: the rule and MAC mode, and no
    /// master keys yet.
    fn unkeyed_metadata(&self) -> Metadata {
        Metadata {
            shamir_threshold: self.threshold,
            rule: self.rule.clone(),
            mac_only_encrypted: self.mac_only_encrypted,
            ..Metadata::default()
        }
    }

    /// A fresh data key, and [`NewFile::unkeyed_metadata`] with it wrapped for every master key.
    fn new_key(&self, name: &str) -> CliResult<(DataKey, Metadata)> {
        let key = DataKey::generate();
        let key_groups = signet_keys::wrap_data_key(&key, &self.groups, self.threshold)
            .map_err(|e| CliError::new(code::ERROR_ENCRYPTING_TREE, format!("{name}: {e}")))?;
        let meta = Metadata {
            key_groups,
            ..self.unkeyed_metadata()
        };
        Ok((key, meta))
    }

    /// Encrypts `tree` with a fresh data key wrapped for every master key.
    fn encrypt(&self, tree: &mut Tree, name: &str) -> CliResult {
        let (key, mut meta) = self.new_key(name)?;
        engine::encrypt(tree, &key, &mut meta, &EncryptOptions::default())
            .map_err(|e| engine_error(name, e))
    }
}

/// Opens FILE, applies `change` to the decrypted first document, and writes it back re-encrypted
/// (unless `change` reports nothing changed).
fn modify(
    file: &std::path::Path,
    formats: &RewriteFormats,
    change: impl FnOnce(&mut Node, &str) -> CliResult<bool>,
) -> CliResult {
    let input = InputArgs {
        input_type: formats.input_type,
        ..InputArgs::file(file)
    };
    let opened = open(
        &input,
        DecryptOptions {
            remember_ivs: true,
            ..DecryptOptions::default()
        },
    )?;
    let name = opened.input.display_name();
    let mut tree = opened.doc.tree.clone();
    let root = &mut tree
        .documents
        .first_mut()
        .ok_or_else(|| {
            CliError::new(
                code::NEED_AT_LEAST_ONE_DOCUMENT,
                format!("{name}: no document"),
            )
        })?
        .root;
    if !change(root, &name)? {
        return Ok(());
    }
    reencrypt_edited(&mut tree, &opened.doc).map_err(|e| engine_error(&name, e))?;
    let out = file::render(
        opened.format,
        &mut tree,
        &OutputArgs {
            output_type: formats.output_type,
            ..OutputArgs::default()
        },
        None,
    )?;
    crate::io::write_atomic(file, &out)
}

/// `signet set`.
pub fn set(cmd: SetCmd) -> CliResult {
    let text = zeroize::Zeroizing::new(match (&cmd.value, cmd.value_stdin, cmd.value_file) {
        (Some(f), _, true) => {
            let f = PathBuf::from(f);
            String::from_utf8(crate::io::Input::File(f.clone()).read()?).map_err(|_| {
                CliError::new(
                    code::ERROR_INVALID_SET_FORMAT,
                    format!("{}: not UTF-8", f.display()),
                )
            })?
        }
        (Some(v), _, false) => v.clone(),
        (None, true, _) => String::from_utf8(crate::io::Input::Stdin.read()?).map_err(|_| {
            CliError::new(
                code::ERROR_INVALID_SET_FORMAT,
                "the value on stdin is not UTF-8",
            )
        })?,
        (None, false, _) => {
            return Err(CliError::new(
                code::ERROR_INVALID_SET_FORMAT,
                "set needs a VALUE (JSON), --value-stdin or --value-file",
            ));
        }
    });
    let value = json_to_node(&text).ok_or_else(|| {
        CliError::new(
            code::ERROR_INVALID_SET_FORMAT,
            "the value is not valid JSON (strings need quotes: '\"text\"')",
        )
    })?;
    let steps = signet_sops::path::parse_path(&cmd.path)
        .map_err(|e| engine_error(&cmd.file.display().to_string(), e))?;
    modify(&cmd.file, &cmd.formats, |root, name| {
        if cmd.idempotent
            && signet_sops::path::get(root, &steps).is_ok_and(|n| same_value(n, &value))
        {
            return Ok(false);
        }
        signet_sops::path::set(root, &steps, value).map_err(|e| engine_error(name, e))?;
        Ok(true)
    })
}

/// `signet unset`.
pub fn unset(cmd: UnsetCmd) -> CliResult {
    let steps = signet_sops::path::parse_path(&cmd.path)
        .map_err(|e| engine_error(&cmd.file.display().to_string(), e))?;
    modify(&cmd.file, &cmd.formats, |root, name| {
        if cmd.idempotent && signet_sops::path::get(root, &steps).is_err() {
            return Ok(false);
        }
        signet_sops::path::unset(root, &steps).map_err(|e| engine_error(name, e))?;
        Ok(true)
    })
}

/// Compares values ignoring source positions.
pub(crate) fn same_value(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Scalar(x), Node::Scalar(y)) => x.value == y.value,
        (Node::Map(x), Node::Map(y)) => {
            let (xs, ys): (Vec<_>, Vec<_>) = (x.pairs().collect(), y.pairs().collect());
            xs.len() == ys.len()
                && xs
                    .iter()
                    .zip(&ys)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
        }
        (Node::Seq(x), Node::Seq(y)) => {
            use signet_sops::tree::SeqItem;
            let items = |s: &signet_sops::tree::Seq| {
                s.items
                    .iter()
                    .filter_map(|i| match i {
                        SeqItem::Node(n) => Some(n.clone()),
                        SeqItem::Comment(_) => None,
                    })
                    .collect::<Vec<_>>()
            };
            let (xs, ys) = (items(x), items(y));
            xs.len() == ys.len() && xs.iter().zip(&ys).all(|(p, q)| same_value(p, q))
        }
        _ => false,
    }
}

/// A JSON value as a tree node (order kept).
fn json_to_node(text: &str) -> Option<Node> {
    let wrapped = zeroize::Zeroizing::new(format!("{{\"v\": {text}}}"));
    let tree = signet_sops::stores::store_for(Format::Json)
        .parse(wrapped.as_bytes())
        .ok()?;
    match tree.documents.into_iter().next()?.root {
        Node::Map(mut m) => m.remove("v").map(strip_origins),
        _ => None,
    }
}

/// Drops source positions so the node renders fresh wherever it is put.
pub(crate) fn strip_origins(node: Node) -> Node {
    use signet_sops::tree::{MapEntry, SeqItem};
    match node {
        Node::Scalar(s) => Node::Scalar(Scalar::new(s.value)),
        Node::Map(mut m) => {
            m.origin = None;
            m.entries = m
                .entries
                .into_iter()
                .map(|e| match e {
                    MapEntry::Pair(mut p) => {
                        p.origin = None;
                        p.value = strip_origins(p.value);
                        MapEntry::Pair(p)
                    }
                    MapEntry::Comment(mut c) => {
                        c.origin = None;
                        c.changed = true;
                        MapEntry::Comment(c)
                    }
                })
                .collect();
            Node::Map(m)
        }
        Node::Seq(mut s) => {
            s.origin = None;
            s.items = s
                .items
                .into_iter()
                .map(|i| match i {
                    SeqItem::Node(n) => SeqItem::Node(strip_origins(n)),
                    SeqItem::Comment(mut c) => {
                        c.origin = None;
                        c.changed = true;
                        SeqItem::Comment(c)
                    }
                })
                .collect();
            Node::Seq(s)
        }
    }
}

/// `signet exec-env`.
pub fn exec_env(cmd: ExecEnvCmd) -> CliResult {
    let opened = open(&InputArgs::file(&cmd.file), DecryptOptions::default())?;
    let mut vars = Vec::new();
    for doc in &opened.doc.tree.documents {
        if let Node::Map(m) = &doc.root {
            for (k, v) in m.pairs() {
                if let Node::Scalar(s) = v {
                    let text = scalar_text(&s.value);
                    let value =
                        zeroize::Zeroizing::new(String::from_utf8_lossy(&text).into_owned());
                    vars.push((k.to_owned(), value));
                }
            }
        }
    }
    let status = super::exec::exec_env(&cmd.command, &vars, cmd.pristine, cmd.same_process)?;
    exit_with(status)
}

/// `signet exec-file`.
pub fn exec_file(cmd: ExecFileCmd) -> CliResult {
    let opened = open(&InputArgs::file(&cmd.file), DecryptOptions::default())?;
    let name = opened.input.display_name();
    let format = cmd.output_type.map(Format::from).unwrap_or(opened.format);
    let mut tree = opened.doc.tree.clone();
    if format != opened.format {
        tree.source = None;
    }
    let plain = zeroize::Zeroizing::new(
        file::store(format, None)
            .emit(&tree)
            .map_err(|e| engine_error(&name, e))?,
    );
    let status = super::exec::exec_file(&cmd.command, &plain, &cmd.filename, cmd.no_fifo)?;
    exit_with(status)
}

/// Passes a child's exit status on.
fn exit_with(status: i32) -> CliResult {
    if status == 0 {
        Ok(())
    } else {
        Err(CliError::new(
            u8::try_from(status).unwrap_or(1),
            String::new(),
        ))
    }
}

/// `signet filestatus`.
pub fn filestatus(cmd: FilestatusCmd) -> CliResult {
    // sops reads a file with non-string keys for `filestatus` (only encrypting or decrypting its
    // tree refuses them), so its metadata still decides.
    let encrypted = match file::load_tree(&cmd.input)? {
        Ok(loaded) => engine::has_complete_metadata(&loaded.tree),
        Err((
            signet_sops::Error::NonStringKey {
                complete_metadata, ..
            },
            _,
        )) => complete_metadata,
        Err((e, name)) => return Err(file::engine_error(&name, e)),
    };
    crate::io::write_stdout(format!("{{\"encrypted\":{encrypted}}}\n").as_bytes())
}

/// `signet keygen`.
pub fn keygen(cmd: KeygenCmd) -> CliResult {
    use signet_keys::keygen::{
        IdentityKind, generate, identity_file_contents, write_identity_file,
    };
    let kind = if cmd.pq {
        IdentityKind::Hybrid
    } else {
        IdentityKind::X25519
    };
    let generated = generate(kind);
    match &cmd.output {
        Some(path) => {
            write_identity_file(path, &generated)
                .map_err(|e| CliError::new(code::COULD_NOT_WRITE_OUTPUT_FILE, e.to_string()))?;
            eprintln!("Public key: {}", generated.recipient);
            Ok(())
        }
        None => crate::io::write_stdout(identity_file_contents(&generated).as_bytes()),
    }
}
