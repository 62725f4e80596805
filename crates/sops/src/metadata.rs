//! The `sops` metadata block: which master keys wrap the data key, the encryption rule, the MAC and
//! the version. Conversion to and from the tree form that stores read and write lives here too, so
//! every store shares one reading of the metadata.

/// Everything under the `sops:` key of an encrypted file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    /// The master-key groups. Without Shamir there is exactly one group; the flat `age`/`kms`/… lists
    /// of the file are that group.
    pub key_groups: Vec<KeyGroup>,
    /// How many groups are needed to recover the data key (`shamir_threshold`); `None` when the file
    /// has no key groups.
    pub shamir_threshold: Option<usize>,
    /// `lastmodified`, RFC 3339 UTC without fraction, also the MAC's AAD.
    pub last_modified: String,
    /// The encrypted MAC (`ENC[…]`), absent on files that lost it.
    pub mac: Option<String>,
    /// Which leaves are encrypted.
    pub rule: crate::rules::EncryptionRule,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
    /// `version`, the sops version that wrote the file.
    pub version: Option<String>,
}

/// A group of master keys; any one of them unwraps the group's share (or the whole data key).
pub type KeyGroup = Vec<MasterKeyEntry>;

/// One wrapped copy of the data key (or of a Shamir share of it).
#[derive(Debug, Clone, PartialEq)]
pub enum MasterKeyEntry {
    /// An `age` entry.
    Age(AgeEntry),
    /// An AWS KMS entry.
    Kms(KmsEntry),
    /// A Vault / OpenBao transit entry.
    HcVault(HcVaultEntry),
    /// A PGP entry (kept on read and write; Signet does not unwrap PGP).
    Pgp(PgpEntry),
    /// A GCP KMS or Azure Key Vault entry (kept verbatim; not unwrapped by Signet).
    Other(OtherEntry),
}

/// `age:` list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgeEntry {
    /// The recipient string (`age1…`, `age1pq1…`, `ssh-ed25519 …`, plugin recipient).
    pub recipient: String,
    /// An ASCII-armored age file whose payload is the data key (or share).
    pub enc: String,
}

/// `kms:` list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsEntry {
    /// Key ARN or alias ARN.
    pub arn: String,
    /// Optional role to assume.
    pub role: Option<String>,
    /// Encryption context, in file order.
    pub context: Vec<(String, String)>,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Base64 ciphertext blob.
    pub enc: String,
    /// `aws_profile` (empty string when unset, as sops writes it).
    pub aws_profile: String,
}

/// `hc_vault:` list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HcVaultEntry {
    /// e.g. `http://127.0.0.1:8200`.
    pub vault_address: String,
    /// Transit mount, e.g. `transit`.
    pub engine_path: String,
    /// Transit key name.
    pub key_name: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// `vault:v1:…` ciphertext of the base64 data key.
    pub enc: String,
}

/// `pgp:` list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgpEntry {
    /// RFC 3339 creation time.
    pub created_at: String,
    /// Armored PGP message.
    pub enc: String,
    /// Key fingerprint.
    pub fp: String,
}

/// A key entry of a kind Signet carries but does not use (`gcp_kms`, `azure_kv`), kept as its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherEntry {
    /// The metadata list it came from (`gcp_kms`, `azure_kv`).
    pub kind: String,
    /// Its fields in file order.
    pub fields: Vec<(String, String)>,
}
