//! X-Wing (ML-KEM-768 + X25519 hybrid KEM, draft-connolly-cfrg-xwing-kem) and single-shot HPKE
//! base mode (RFC 9180) over it with HKDF-SHA256 and ChaCha20-Poly1305 — exactly what age's
//! `mlkem768x25519` stanza needs and nothing more.
//!
//! Built on the primitives the `age` crate already uses (`ml-kem` 0.2, `x25519-dalek`), because
//! the RustCrypto `hpke`/`x-wing` crates need a `kem` release that age 0.12's `ml-kem` cannot
//! build against.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use hkdf::{Hkdf, HkdfExtract};
use ml_kem::kem::Decapsulate;
use ml_kem::{EncapsulateDeterministic, EncodedSizeUser, KemCore, MlKem768};
use sha2::Sha256;
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Digest, Sha3_256, Shake256};
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

type MlKemEncapsulationKey = <MlKem768 as KemCore>::EncapsulationKey;
type MlKemDecapsulationKey = <MlKem768 as KemCore>::DecapsulationKey;

const MLKEM_PUBLIC_KEY_LEN: usize = 1184;
const MLKEM_CIPHERTEXT_LEN: usize = 1088;
/// X-Wing encapsulation key length: ML-KEM-768 key || X25519 key.
pub const XWING_PUBLIC_KEY_LEN: usize = MLKEM_PUBLIC_KEY_LEN + 32;
/// X-Wing ciphertext length: ML-KEM-768 ciphertext || X25519 ephemeral key.
pub const XWING_CIPHERTEXT_LEN: usize = MLKEM_CIPHERTEXT_LEN + 32;
/// The X-Wing combiner's label, `\.//^\`.
const XWING_LABEL: &[u8; 6] = br"\.//^\";

/// HPKE suite: KEM X-Wing (0x647a), KDF HKDF-SHA256 (0x0001), AEAD ChaCha20-Poly1305 (0x0003).
const HPKE_SUITE_ID: [u8; 10] = *b"HPKE\x64\x7a\x00\x01\x00\x03";
const HPKE_VERSION: &[u8] = b"HPKE-v1";
const HPKE_MODE_BASE: u8 = 0;

/// An X-Wing encapsulation key.
#[derive(Clone)]
pub struct PublicKey {
    mlkem: Box<MlKemEncapsulationKey>,
    x25519: X25519Public,
}

impl PublicKey {
    /// From the 1,216-byte encoding (length checked by the caller).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let (m, x) = bytes.split_at(MLKEM_PUBLIC_KEY_LEN);
        let m: &[u8; MLKEM_PUBLIC_KEY_LEN] = m.try_into().expect("split at the ML-KEM length");
        let x: [u8; 32] = x.try_into().expect("32 bytes remain");
        PublicKey {
            mlkem: Box::new(MlKemEncapsulationKey::from_bytes(&(*m).into())),
            x25519: X25519Public::from(x),
        }
    }

    /// The 1,216-byte encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.mlkem.as_bytes().to_vec();
        out.extend_from_slice(self.x25519.as_bytes());
        out
    }
}

/// An X-Wing decapsulation key: the 32-byte seed and what it expands to.
#[derive(Clone)]
pub struct PrivateKey {
    seed: Zeroizing<[u8; 32]>,
    mlkem: Box<MlKemDecapsulationKey>,
    x25519: StaticSecret,
    public: PublicKey,
}

impl PrivateKey {
    /// Expands a seed: SHAKE256(seed) gives ML-KEM's (d, z) and the X25519 secret.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let mut shake = Shake256::default();
        shake.update(seed);
        let mut reader = shake.finalize_xof();
        let mut expanded = Zeroizing::new([0u8; 96]);
        reader.read(&mut expanded[..]);
        let d: [u8; 32] = expanded[0..32].try_into().expect("32 bytes");
        let z: [u8; 32] = expanded[32..64].try_into().expect("32 bytes");
        let x: [u8; 32] = expanded[64..96].try_into().expect("32 bytes");
        let (mlkem, mlkem_public) = MlKem768::generate_deterministic(&d.into(), &z.into());
        let x25519 = StaticSecret::from(x);
        let public = PublicKey {
            mlkem: Box::new(mlkem_public),
            x25519: X25519Public::from(&x25519),
        };
        PrivateKey {
            seed: Zeroizing::new(*seed),
            mlkem: Box::new(mlkem),
            x25519,
            public,
        }
    }

    /// The seed (the identity's encoding).
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The matching encapsulation key.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }
}

fn combiner(ss_m: &[u8], ss_x: &[u8], ct_x: &[u8], pk_x: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut hasher = Sha3_256::new();
    Digest::update(&mut hasher, ss_m);
    Digest::update(&mut hasher, ss_x);
    Digest::update(&mut hasher, ct_x);
    Digest::update(&mut hasher, pk_x);
    Digest::update(&mut hasher, XWING_LABEL);
    Zeroizing::new(hasher.finalize().into())
}

/// X-Wing encapsulation with fresh randomness: (ciphertext, shared secret).
fn encapsulate(public: &PublicKey) -> (Vec<u8>, Zeroizing<[u8; 32]>) {
    let mut randomness = Zeroizing::new([0u8; 64]);
    rand::fill(&mut randomness[..]);
    let m: [u8; 32] = randomness[..32].try_into().expect("32 bytes");
    let (ct_m, ss_m) = public
        .mlkem
        .encapsulate_deterministic(&m.into())
        .expect("ML-KEM encapsulation is infallible");
    let ephemeral = StaticSecret::from(<[u8; 32]>::try_from(&randomness[32..]).expect("32 bytes"));
    let ct_x = X25519Public::from(&ephemeral);
    let ss_x = ephemeral.diffie_hellman(&public.x25519);
    let ss = combiner(
        &ss_m,
        ss_x.as_bytes(),
        ct_x.as_bytes(),
        public.x25519.as_bytes(),
    );
    let mut ct = ct_m.to_vec();
    ct.extend_from_slice(ct_x.as_bytes());
    (ct, ss)
}

/// X-Wing decapsulation (implicit rejection: a foreign ciphertext gives an unrelated secret).
fn decapsulate(private: &PrivateKey, ct: &[u8]) -> Zeroizing<[u8; 32]> {
    let (ct_m, ct_x) = ct.split_at(MLKEM_CIPHERTEXT_LEN);
    let ct_m: &[u8; MLKEM_CIPHERTEXT_LEN] = ct_m.try_into().expect("checked length");
    let ct_x: [u8; 32] = ct_x.try_into().expect("checked length");
    let ss_m = private
        .mlkem
        .decapsulate(&(*ct_m).into())
        .expect("ML-KEM decapsulation is infallible");
    let ss_x = private.x25519.diffie_hellman(&X25519Public::from(ct_x));
    combiner(
        &ss_m,
        ss_x.as_bytes(),
        &ct_x,
        private.public.x25519.as_bytes(),
    )
}

fn labeled_extract(salt: &[u8], label: &[u8], ikm: &[u8]) -> Hkdf<Sha256> {
    let mut extract = HkdfExtract::<Sha256>::new(Some(salt));
    extract.input_ikm(HPKE_VERSION);
    extract.input_ikm(&HPKE_SUITE_ID);
    extract.input_ikm(label);
    extract.input_ikm(ikm);
    extract.finalize().1
}

fn labeled_extract_bytes(salt: &[u8], label: &[u8], ikm: &[u8]) -> Vec<u8> {
    let mut extract = HkdfExtract::<Sha256>::new(Some(salt));
    extract.input_ikm(HPKE_VERSION);
    extract.input_ikm(&HPKE_SUITE_ID);
    extract.input_ikm(label);
    extract.input_ikm(ikm);
    extract.finalize().0.to_vec()
}

fn labeled_expand(prk: &Hkdf<Sha256>, label: &[u8], info: &[u8], out: &mut [u8]) {
    let length = u16::try_from(out.len())
        .expect("short output")
        .to_be_bytes();
    prk.expand_multi_info(&[&length, HPKE_VERSION, &HPKE_SUITE_ID, label, info], out)
        .expect("HKDF output length is small");
}

/// RFC 9180 key schedule, base mode: the AEAD key and base nonce.
fn key_schedule(shared_secret: &[u8], info: &[u8]) -> (Zeroizing<[u8; 32]>, [u8; 12]) {
    let psk_id_hash = labeled_extract_bytes(b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract_bytes(b"", b"info_hash", info);
    let mut context = vec![HPKE_MODE_BASE];
    context.extend_from_slice(&psk_id_hash);
    context.extend_from_slice(&info_hash);
    let secret = labeled_extract(shared_secret, b"secret", b"");
    let mut key = Zeroizing::new([0u8; 32]);
    labeled_expand(&secret, b"key", &context, &mut key[..]);
    let mut nonce = [0u8; 12];
    labeled_expand(&secret, b"base_nonce", &context, &mut nonce);
    (key, nonce)
}

/// HPKE single-shot seal to `public` with empty AAD: (encapsulation, ciphertext with tag).
pub fn hpke_seal(public: &PublicKey, info: &[u8], plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (enc, shared_secret) = encapsulate(public);
    let (key, nonce) = key_schedule(&shared_secret[..], info);
    let cipher = ChaCha20Poly1305::new((&*key).into());
    let sealed = cipher
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: plaintext,
                aad: b"",
            },
        )
        .expect("ChaCha20-Poly1305 encryption of a short message cannot fail");
    (enc, sealed)
}

/// HPKE single-shot open with empty AAD; `None` when authentication fails (not our key).
pub fn hpke_open(
    private: &PrivateKey,
    enc: &[u8],
    info: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if enc.len() != XWING_CIPHERTEXT_LEN {
        return None;
    }
    let shared_secret = decapsulate(private, enc);
    let (key, nonce) = key_schedule(&shared_secret[..], info);
    let cipher = ChaCha20Poly1305::new((&*key).into());
    cipher
        .decrypt(
            (&nonce).into(),
            Payload {
                msg: ciphertext,
                aad: b"",
            },
        )
        .ok()
        .map(Zeroizing::new)
}
