//! Opening an encrypted document: the one way in, shaped like age's `Decryptor` — the caller hands
//! over the parsed tree and never reads the `sops` metadata itself.
//!
//! 1. [`Decryptor::new`] reads the metadata, once, and refuses a tree that has none.
//! 2. [`Decryptor::metadata`] lets the caller decide before any key is touched (`updatekeys`' key
//!    drift, `rekey --check`, the controller's `mac_only_encrypted` rule).
//! 3. [`Decryptor::unwrap_key`] recovers the data key through a [`KeyUnwrapper`] (signet-keys'
//!    `Keyring` is one), saying which master key opened it.
//! 4. [`Decryptor::decrypt`] decrypts the values under the caller's MAC policy; or
//!    [`Decryptor::into_parts`] hands the still-encrypted tree back to re-wrap its data key.
//!
//! [`Decryptor::open`] is 3 and 4 in one call. Async callers (the controller, whose key sources may
//! call KMS or Vault) unwrap with signet-keys' `unwrap_data_key_with_origin` between 2 and 4, so
//! the CPU-bound steps can run off their runtime.
//!
//! This crate stays free of key sources: unwrapping is behind [`KeyUnwrapper`], implemented where
//! the identities live.

use crate::engine::{self, DecryptOptions, PreviousCiphertexts};
use crate::{DataKey, Error, Metadata, Tree};

/// A recovered data key and the master keys that opened it.
#[derive(Debug, Clone)]
pub struct UnwrappedDataKey {
    /// The data key.
    pub data_key: DataKey,
    /// One line per key group used, `group N: <public key name>` (recipient, ARN, URI): public
    /// names only, safe for logs and status messages.
    pub opened_by: Vec<String>,
}

/// Something that recovers a document's data key from its metadata (identities, credentials).
pub trait KeyUnwrapper {
    /// Why the data key could not be recovered.
    type Error;

    /// Unwraps the data key recorded in `metadata`.
    fn unwrap_data_key(&self, metadata: &Metadata) -> Result<UnwrappedDataKey, Self::Error>;
}

/// An encrypted document whose metadata has been read.
#[derive(Debug, Clone)]
pub struct Decryptor {
    /// Still encrypted, `sops` key in place.
    tree: Tree,
    metadata: Metadata,
}

/// A decrypted document and what it takes to write it back.
#[derive(Debug)]
pub struct Opened {
    /// The plaintext tree (the `sops` key removed).
    pub tree: Tree,
    /// The document's metadata.
    pub metadata: Metadata,
    /// The data key.
    pub data_key: DataKey,
    /// Which master key of which group opened the data key (public names only).
    pub opened_by: Vec<String>,
    /// IVs of the values, for [`engine::EncryptOptions::previous`] (empty unless
    /// [`DecryptOptions::remember_ivs`]).
    pub previous: PreviousCiphertexts,
    /// `Some(true)`/`Some(false)`: the MAC was checked and matched / did not match (only possible
    /// with `ignore_mac`); `None`: there was no MAC.
    pub mac_matched: Option<bool>,
}

/// Why [`Decryptor::open`] failed: the data key, or the document.
#[derive(Debug)]
pub enum OpenError<E> {
    /// No key could recover the data key.
    Key(E),
    /// The document does not decrypt (a value, the MAC).
    Document(Error),
}

impl<E: std::fmt::Display> std::fmt::Display for OpenError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Key(e) => e.fmt(f),
            OpenError::Document(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error> std::error::Error for OpenError<E> {}

impl Decryptor {
    /// Reads the metadata of an encrypted tree. [`Error::NotEncrypted`] when no document has a
    /// `sops` key; any other error is the metadata's.
    pub fn new(mut tree: Tree) -> Result<Decryptor, Error> {
        let metadata = engine::metadata_of(&tree)?.ok_or(Error::NotEncrypted)?;
        // What Git holds: its bytes are no secret.
        tree.mark_source_public();
        Ok(Decryptor { tree, metadata })
    }

    /// The document's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Recovers the data key with `keys`.
    pub fn unwrap_key<K: KeyUnwrapper + ?Sized>(
        &self,
        keys: &K,
    ) -> Result<UnwrappedDataKey, K::Error> {
        keys.unwrap_data_key(&self.metadata)
    }

    /// Decrypts with a recovered data key: verifies the MAC (unless `opts.ignore_mac`) and
    /// replaces every encrypted value and comment with its plaintext.
    pub fn decrypt(self, key: UnwrappedDataKey, opts: DecryptOptions) -> Result<Opened, Error> {
        let Decryptor { mut tree, metadata } = self;
        engine::strip_metadata(&mut tree);
        let (previous, mac_matched) =
            engine::decrypt_detached(&mut tree, &key.data_key, &metadata, opts)?;
        Ok(Opened {
            tree,
            metadata,
            data_key: key.data_key,
            opened_by: key.opened_by,
            previous,
            mac_matched,
        })
    }

    /// [`Decryptor::unwrap_key`], then [`Decryptor::decrypt`].
    pub fn open<K: KeyUnwrapper + ?Sized>(
        self,
        keys: &K,
        opts: DecryptOptions,
    ) -> Result<Opened, OpenError<K::Error>> {
        let key = self.unwrap_key(keys).map_err(OpenError::Key)?;
        self.decrypt(key, opts).map_err(OpenError::Document)
    }

    /// The still-encrypted tree (its `sops` key in place) and the metadata, for re-wrapping the
    /// data key without touching the values.
    pub fn into_parts(self) -> (Tree, Metadata) {
        (self.tree, self.metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EncryptOptions;
    use crate::stores::json::JsonStore;
    use crate::{Format, Store};

    struct Fixed(Option<DataKey>);

    impl KeyUnwrapper for Fixed {
        type Error = &'static str;
        fn unwrap_data_key(&self, _: &Metadata) -> Result<UnwrappedDataKey, &'static str> {
            self.0
                .clone()
                .map(|data_key| UnwrappedDataKey {
                    data_key,
                    opened_by: vec!["group 0: test".into()],
                })
                .ok_or("no key")
        }
    }

    fn encrypted(key: &DataKey) -> Tree {
        let mut tree = JsonStore
            .parse(br#"{"a": "secret", "n": 3, "c": {"d": true}}"#)
            .unwrap();
        engine::encrypt(
            &mut tree,
            key,
            &mut Metadata::default(),
            &EncryptOptions::default(),
        )
        .unwrap();
        tree
    }

    #[test]
    fn opens_with_the_key_and_says_who_opened_it() {
        let key = DataKey::generate();
        let decryptor = Decryptor::new(encrypted(&key)).unwrap();
        assert!(decryptor.metadata().mac.is_some());
        let opened = decryptor
            .open(&Fixed(Some(key.clone())), DecryptOptions::default())
            .unwrap();
        assert_eq!(opened.opened_by, ["group 0: test"]);
        assert_eq!(opened.mac_matched, Some(true));
        assert_eq!(opened.data_key.as_bytes(), key.as_bytes());
        let plain = crate::stores::store_for(Format::Json)
            .emit(&opened.tree)
            .unwrap();
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            "{\n\t\"a\": \"secret\",\n\t\"n\": 3,\n\t\"c\": {\n\t\t\"d\": true\n\t}\n}\n"
        );
    }

    #[test]
    fn refuses_a_plain_tree_and_tells_key_from_document_failures() {
        let plain = JsonStore.parse(br#"{"a": "b"}"#).unwrap();
        assert!(matches!(Decryptor::new(plain), Err(Error::NotEncrypted)));

        let key = DataKey::generate();
        let no_key = Decryptor::new(encrypted(&key))
            .unwrap()
            .open(&Fixed(None), DecryptOptions::default());
        assert!(matches!(no_key, Err(OpenError::Key("no key"))));

        let wrong_key = Decryptor::new(encrypted(&key))
            .unwrap()
            .open(&Fixed(Some(DataKey::generate())), DecryptOptions::default());
        assert!(
            matches!(wrong_key, Err(OpenError::Document(_))),
            "{wrong_key:?}"
        );
    }

    /// An encrypted file's bytes are what Git holds: they skip the wipe on drop a plain input gets.
    #[test]
    fn only_an_encrypted_source_is_public() {
        let yaml = crate::stores::yaml::YamlStore::default();
        let mut tree = yaml.parse(b"a: secret\n").unwrap();
        assert!(!tree.source.as_ref().unwrap().public);
        engine::encrypt(
            &mut tree,
            &DataKey::generate(),
            &mut Metadata::default(),
            &EncryptOptions::default(),
        )
        .unwrap();
        let file = yaml.emit(&tree).unwrap();
        let decryptor = Decryptor::new(yaml.parse(&file).unwrap()).unwrap();
        assert!(decryptor.tree.source.as_ref().unwrap().public);
    }

    #[test]
    fn into_parts_keeps_the_encrypted_tree_as_it_was() {
        let key = DataKey::generate();
        let tree = encrypted(&key);
        let (back, metadata) = Decryptor::new(tree.clone()).unwrap().into_parts();
        assert_eq!(back, tree);
        assert_eq!(Some(metadata), engine::metadata_of(&tree).unwrap());
    }
}
