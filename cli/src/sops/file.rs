//! Reading a file into a sops tree and writing a tree out, with the format chosen the way sops chooses
//! it (flag, else extension of `--filename-override` or the file, else binary).

use super::args::{FormatArg, InputArgs, OutputArgs};
use crate::exit::{CliError, CliResult, code};
use crate::io::Input;
use signet_sops::stores::yaml::YamlStore;
use signet_sops::tree::Tree;
use signet_sops::{Decryptor, Format, Store};
use std::path::{Path, PathBuf};

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Yaml => Format::Yaml,
            FormatArg::Json => Format::Json,
            FormatArg::Dotenv => Format::Dotenv,
            FormatArg::Ini => Format::Ini,
            FormatArg::Binary => Format::Binary,
        }
    }
}

/// A file read and parsed.
pub struct Loaded {
    /// Where it came from.
    pub input: Input,
    /// The path used for format detection and creation-rule matching.
    pub rule_path: Option<PathBuf>,
    /// Its format.
    pub format: Format,
    /// The parsed tree.
    pub tree: Tree,
}

impl Loaded {
    /// `path: message`, for errors about this file.
    pub fn err(&self, code: u8, message: impl std::fmt::Display) -> CliError {
        CliError::new(code, format!("{}: {message}", self.input.display_name()))
    }
}

/// An encrypted file read and parsed, its metadata read (once) by the [`Decryptor`].
pub struct Encrypted {
    /// Where it came from.
    pub input: Input,
    /// Its format.
    pub format: Format,
    /// The document, ready to unwrap its data key and decrypt.
    pub decryptor: Decryptor,
}

/// Reads and parses an encrypted input; exit 1 when it has no sops metadata.
pub fn load_encrypted(args: &InputArgs) -> CliResult<Encrypted> {
    let Loaded {
        input,
        format,
        tree,
        ..
    } = load(args)?;
    let name = input.display_name();
    let decryptor = Decryptor::new(tree).map_err(|e| match e {
        signet_sops::Error::NotEncrypted => CliError::new(
            code::ERROR_GENERIC,
            format!("{name}: sops metadata not found: the file is not encrypted"),
        ),
        e => engine_error(&name, e),
    })?;
    Ok(Encrypted {
        input,
        format,
        decryptor,
    })
}

/// The store for `format`, with the YAML indentation given (sops' 4 by default).
pub fn store(format: Format, yaml_indent: Option<usize>) -> Box<dyn Store + Send + Sync> {
    match (format, yaml_indent) {
        (Format::Yaml, Some(indent)) => Box::new(YamlStore::new(indent)),
        _ => signet_sops::stores::store_for(format),
    }
}

/// Reads and parses the input named by `args`.
pub fn load(args: &InputArgs) -> CliResult<Loaded> {
    load_tree(args)?.map_err(|(e, name)| engine_error(&name, e))
}

/// [`load`], with the store's refusal to parse returned as is (with the input's display name),
/// for callers that handle some refusals themselves.
pub fn load_tree(args: &InputArgs) -> CliResult<Result<Loaded, (signet_sops::Error, String)>> {
    let (input, rule_path, format) = detect(args)?;
    // Handed to the store, which keeps it as the tree's source (YAML) or wipes it after parsing.
    let bytes = input.read()?;
    let tree = match store(format, None).parse_owned(bytes) {
        Ok(tree) => tree,
        Err(e) => return Ok(Err((e, input.display_name()))),
    };
    Ok(Ok(Loaded {
        input,
        rule_path,
        format,
        tree,
    }))
}

/// The input named by `args`, the path used for format detection and creation-rule matching, and
/// the format: the flag, else the extension of `--filename-override` or the file.
pub fn detect(args: &InputArgs) -> CliResult<(Input, Option<PathBuf>, Format)> {
    let input = Input::from_arg(args.file.as_deref());
    let rule_path = args
        .filename_override
        .clone()
        .or_else(|| input.path().map(Path::to_path_buf));
    let format = match (args.input_type, &rule_path) {
        (Some(t), _) => t.into(),
        (None, Some(p)) => Format::from_path(p),
        (None, None) => {
            return Err(CliError::new(
                code::ERROR_GENERIC,
                "reading stdin needs --input-type (or --filename-override) to know the format",
            ));
        }
    };
    Ok((input, rule_path, format))
}

/// Renders `tree` in the output format (keeping the source layout when the format is unchanged,
/// else dropping it from the tree).
pub fn render(
    loaded_format: Format,
    tree: &mut Tree,
    out: &OutputArgs,
    yaml_indent: Option<usize>,
) -> CliResult<zeroize::Zeroizing<Vec<u8>>> {
    output_store(loaded_format, tree, out, yaml_indent)
        .emit(tree)
        .map(zeroize::Zeroizing::new)
        .map_err(dump_error)
}

/// The store [`render`] writes with (a tree converted to another format loses its source).
fn output_store(
    loaded_format: Format,
    tree: &mut Tree,
    out: &OutputArgs,
    yaml_indent: Option<usize>,
) -> Box<dyn Store + Send + Sync> {
    let format = out.output_type.map(Format::from).unwrap_or(loaded_format);
    if format != loaded_format {
        tree.source = None;
    }
    store(format, out.indent.or(yaml_indent))
}

fn dump_error(e: signet_sops::Error) -> CliError {
    CliError::new(code::ERROR_DUMPING_TREE, e.to_string())
}

/// [`render`] then [`write()`]; to stdout the output is streamed as it is rendered (the output of
/// a large file is not held whole), to a file it is rendered first and written atomically.
pub fn render_and_write(
    loaded_format: Format,
    tree: &mut Tree,
    out: &OutputArgs,
    yaml_indent: Option<usize>,
    input: &Input,
) -> CliResult {
    if out.in_place || out.output.is_some() {
        let bytes = render(loaded_format, tree, out, yaml_indent)?;
        return write(&bytes, out, input);
    }
    let store = output_store(loaded_format, tree, out, yaml_indent);
    store
        .emit_to(tree, &mut std::io::stdout().lock())
        .map_err(dump_error)?
        .map_err(crate::io::stdout_error)
}

/// Renders one value (`--extract` of a number, bool, null, time or list) in the output format.
pub fn render_value(
    loaded_format: Format,
    node: &signet_sops::tree::Node,
    out: &OutputArgs,
) -> CliResult<zeroize::Zeroizing<Vec<u8>>> {
    let format = out.output_type.map(Format::from).unwrap_or(loaded_format);
    store(format, out.indent)
        .emit_value(node)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| CliError::new(code::ERROR_DUMPING_TREE, e.to_string()))
}

/// Writes the rendered output where `out` says: in place over the input, `--output`, or stdout.
pub fn write(bytes: &[u8], out: &OutputArgs, input: &Input) -> CliResult {
    let in_place = if out.in_place {
        Some(input.path().ok_or_else(|| {
            CliError::new(
                code::ERROR_CONFLICTING_PARAMETERS,
                "--in-place needs a file, not stdin",
            )
        })?)
    } else {
        None
    };
    crate::io::write_output(bytes, out.output.as_deref(), in_place)
}

/// Maps an engine error to sops' exit code, prefixed with the file name.
pub fn engine_error(name: &str, e: signet_sops::Error) -> CliError {
    use signet_sops::Error as E;
    let code = match &e {
        // sops exits 2 when it cannot read a file, its alias bomb ("excessive aliasing") included.
        E::Parse { .. } | E::Limit { .. } => code::COULD_NOT_READ_INPUT_FILE,
        // sops refuses non-string keys while walking the tree: encrypting (23) or decrypting (25).
        E::NonStringKey {
            encrypted: false, ..
        } => code::ERROR_ENCRYPTING_TREE,
        E::NonStringKey {
            encrypted: true, ..
        } => code::ERROR_DECRYPTING_TREE,
        E::Emit { .. } => code::ERROR_DUMPING_TREE,
        E::AlreadyEncrypted => code::FILE_ALREADY_ENCRYPTED,
        E::RootNotAMap { .. } => code::ERROR_ENCRYPTING_TREE,
        E::MacMismatch | E::MacNotFound => code::MAC_MISMATCH,
        // sops: "Cannot decrypt MAC", exit 51 like a mismatch.
        E::DecryptFailed { path } if path == "sops.mac" => code::MAC_MISMATCH,
        // sops exits 1 for a missing or malformed `version`.
        E::InvalidVersion { .. } => code::ERROR_GENERIC,
        E::DecryptFailed { .. } | E::MalformedEncValue { .. } | E::BadPlaintextType { .. } => {
            code::ERROR_DECRYPTING_TREE
        }
        E::Path { .. } => code::INVALID_TREE_PATH_FORMAT,
        // As sops: a missing key is a generic failure, a malformed path code 91.
        E::PathNotFound { .. } => code::ERROR_GENERIC,
        _ => code::ERROR_GENERIC,
    };
    CliError::new(code, format!("{name}: {e}"))
}
