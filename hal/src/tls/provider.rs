//! rustls crypto provider on RustCrypto primitives: the suites, key exchanges and
//! signature algorithms the kernel's TLS speaks, randomness from the kernel DRBG.
//!
//! Suites (RFC 8446 §B.4, RFC 5289 §3, RFC 7905 §2): TLS 1.3 AES-128-GCM-SHA256,
//! AES-256-GCM-SHA384, CHACHA20-POLY1305-SHA256; TLS 1.2 ECDHE-{ECDSA,RSA} with the same
//! three AEADs. Groups: X25519, secp256r1, secp384r1. Verification: ECDSA P-256/P-384
//! (SHA-256/384), Ed25519, RSA PKCS#1 v1.5 and PSS (SHA-256/384/512). Signing: ECDSA
//! P-256/P-384 and Ed25519 keys (the kernel's own key contexts).
//!
//! Randomness (ephemeral key shares, rustls' nonces) comes from the [`SecureRandom`] the
//! [`TlsCrypto`] is built with: the kernel passes its DRBG, the host tests a seeded one.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use rustls::crypto::cipher::{
    make_tls12_aad, make_tls13_aad, AeadKey, InboundOpaqueMessage, InboundPlainMessage, Iv, KeyBlockShape, MessageDecrypter,
    MessageEncrypter, Nonce, OutboundOpaqueMessage, OutboundPlainMessage, PrefixedPayload, Tls12AeadAlgorithm, Tls13AeadAlgorithm,
    UnsupportedOperationError, NONCE_LEN,
};
use rustls::crypto::{hash, hmac, ActiveKeyExchange, CryptoProvider, KeyProvider, SecureRandom, SharedSecret, SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::{alg_id, AlgorithmIdentifier, InvalidSignature, PrivateKeyDer, SignatureVerificationAlgorithm};
use rustls::sign::{Signer, SigningKey};
use rustls::{
    CipherSuite, CipherSuiteCommon, ConnectionTrafficSecrets, ContentType, Error, NamedGroup, ProtocolVersion, SignatureAlgorithm,
    SignatureScheme, SupportedCipherSuite, Tls12CipherSuite, Tls13CipherSuite,
};
use zeroize::Zeroizing;

/// The provider's parts bound to one random source; built once, as a `static`:
///
/// ```ignore
/// static CRYPTO: TlsCrypto = TlsCrypto::new(&KernelRandom);
/// let provider = CRYPTO.provider();
/// ```
pub struct TlsCrypto {
    random: &'static dyn SecureRandom,
    x25519: X25519Group,
    secp256r1: P256Group,
    secp384r1: P384Group,
}

impl TlsCrypto {
    /// Key shares and rustls' own randomness come from `random`.
    pub const fn new(random: &'static dyn SecureRandom) -> Self {
        TlsCrypto { random, x25519: X25519Group(random), secp256r1: P256Group(random), secp384r1: P384Group(random) }
    }

    /// The provider: every suite, group and algorithm of this module.
    pub fn provider(&'static self) -> CryptoProvider {
        CryptoProvider {
            cipher_suites: ALL_SUITES.to_vec(),
            kx_groups: alloc::vec![&self.x25519 as &dyn SupportedKxGroup, &self.secp256r1, &self.secp384r1],
            signature_verification_algorithms: VERIFICATION,
            secure_random: self.random,
            key_provider: &Keys,
        }
    }
}

fn random<const N: usize>(source: &dyn SecureRandom) -> Result<Zeroizing<[u8; N]>, Error> {
    let mut bytes = Zeroizing::new([0u8; N]);
    source.fill(bytes.as_mut()).map_err(|_| Error::FailedToGetRandomBytes)?;
    Ok(bytes)
}

// ---- Hashes and HMAC -------------------------------------------------------------------

struct Sha<D>(hash::HashAlgorithm, core::marker::PhantomData<D>);

struct ShaContext<D>(D);

impl<D: sha2::Digest + Clone + Send + Sync + 'static> hash::Hash for Sha<D> {
    fn start(&self) -> Box<dyn hash::Context> {
        Box::new(ShaContext(D::new()))
    }
    fn hash(&self, data: &[u8]) -> hash::Output {
        hash::Output::new(&D::digest(data)[..])
    }
    fn output_len(&self) -> usize {
        <D as sha2::Digest>::output_size()
    }
    fn algorithm(&self) -> hash::HashAlgorithm {
        self.0
    }
}

impl<D: sha2::Digest + Clone + Send + Sync + 'static> hash::Context for ShaContext<D> {
    fn fork_finish(&self) -> hash::Output {
        hash::Output::new(&self.0.clone().finalize()[..])
    }
    fn fork(&self) -> Box<dyn hash::Context> {
        Box::new(ShaContext(self.0.clone()))
    }
    fn finish(self: Box<Self>) -> hash::Output {
        hash::Output::new(&self.0.finalize()[..])
    }
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}

static SHA256: Sha<sha2::Sha256> = Sha(hash::HashAlgorithm::SHA256, core::marker::PhantomData);
static SHA384: Sha<sha2::Sha384> = Sha(hash::HashAlgorithm::SHA384, core::marker::PhantomData);

struct Hmac<D>(core::marker::PhantomData<D>);

struct HmacKey<M>(M);

macro_rules! hmac_impl {
    ($digest:ty, $len:expr) => {
        impl hmac::Hmac for Hmac<$digest> {
            fn with_key(&self, key: &[u8]) -> Box<dyn hmac::Key> {
                use ::hmac::KeyInit;
                // HMAC takes keys of any length (RFC 2104 §2).
                Box::new(HmacKey(<::hmac::Hmac<$digest>>::new_from_slice(key).expect("HMAC accepts any key length")))
            }
            fn hash_output_len(&self) -> usize {
                $len
            }
        }
        impl hmac::Key for HmacKey<::hmac::Hmac<$digest>> {
            fn sign_concat(&self, first: &[u8], middle: &[&[u8]], last: &[u8]) -> hmac::Tag {
                use ::hmac::Mac;
                let mut mac = self.0.clone();
                mac.update(first);
                for part in middle {
                    mac.update(part);
                }
                mac.update(last);
                hmac::Tag::new(&mac.finalize().into_bytes()[..])
            }
            fn tag_len(&self) -> usize {
                $len
            }
        }
    };
}
hmac_impl!(sha2::Sha256, 32);
hmac_impl!(sha2::Sha384, 48);

static HMAC_SHA256: Hmac<sha2::Sha256> = Hmac(core::marker::PhantomData);
static HMAC_SHA384: Hmac<sha2::Sha384> = Hmac(core::marker::PhantomData);
static HKDF_SHA256: rustls::crypto::tls13::HkdfUsingHmac<'static> = rustls::crypto::tls13::HkdfUsingHmac(&HMAC_SHA256);
static HKDF_SHA384: rustls::crypto::tls13::HkdfUsingHmac<'static> = rustls::crypto::tls13::HkdfUsingHmac(&HMAC_SHA384);
static PRF_SHA256: rustls::crypto::tls12::PrfUsingHmac<'static> = rustls::crypto::tls12::PrfUsingHmac(&HMAC_SHA256);
static PRF_SHA384: rustls::crypto::tls12::PrfUsingHmac<'static> = rustls::crypto::tls12::PrfUsingHmac(&HMAC_SHA384);

// ---- AEADs -----------------------------------------------------------------------------

/// One of the three AEADs, with its key.
enum Cipher {
    Aes128(Box<aes_gcm::Aes128Gcm>),
    Aes256(Box<aes_gcm::Aes256Gcm>),
    ChaCha(Box<chacha20poly1305::ChaCha20Poly1305>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AeadKind {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

const TAG_LEN: usize = 16;

impl AeadKind {
    fn key_len(self) -> usize {
        match self {
            AeadKind::Aes128Gcm => 16,
            _ => 32,
        }
    }

    fn cipher(self, key: &[u8]) -> Cipher {
        use aes_gcm::KeyInit;
        // rustls derives the `AeadKey` with exactly `key_len` bytes.
        match self {
            AeadKind::Aes128Gcm => Cipher::Aes128(Box::new(aes_gcm::Aes128Gcm::new_from_slice(key).expect("16-byte key"))),
            AeadKind::Aes256Gcm => Cipher::Aes256(Box::new(aes_gcm::Aes256Gcm::new_from_slice(key).expect("32-byte key"))),
            AeadKind::ChaCha20Poly1305 => {
                Cipher::ChaCha(Box::new(chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).expect("32-byte key")))
            }
        }
    }

    fn secrets(self, key: AeadKey, iv: Iv) -> ConnectionTrafficSecrets {
        match self {
            AeadKind::Aes128Gcm => ConnectionTrafficSecrets::Aes128Gcm { key, iv },
            AeadKind::Aes256Gcm => ConnectionTrafficSecrets::Aes256Gcm { key, iv },
            AeadKind::ChaCha20Poly1305 => ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv },
        }
    }
}

impl Cipher {
    /// Encrypts `buffer` in place and returns the tag.
    fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buffer: &mut [u8]) -> Result<[u8; TAG_LEN], Error> {
        use aes_gcm::aead::AeadInOut;
        let tag = match self {
            Cipher::Aes128(c) => c.encrypt_inout_detached(nonce.into(), aad, buffer.into()).map(|t| t.into()),
            Cipher::Aes256(c) => c.encrypt_inout_detached(nonce.into(), aad, buffer.into()).map(|t| t.into()),
            Cipher::ChaCha(c) => c.encrypt_inout_detached(nonce.into(), aad, buffer.into()).map(|t| t.into()),
        };
        tag.map_err(|_| Error::EncryptError)
    }

    /// Checks `tag` and decrypts `buffer` in place.
    fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buffer: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), Error> {
        use aes_gcm::aead::AeadInOut;
        match self {
            Cipher::Aes128(c) => c.decrypt_inout_detached(nonce.into(), aad, buffer.into(), tag.into()),
            Cipher::Aes256(c) => c.decrypt_inout_detached(nonce.into(), aad, buffer.into(), tag.into()),
            Cipher::ChaCha(c) => c.decrypt_inout_detached(nonce.into(), aad, buffer.into(), tag.into()),
        }
        .map_err(|_| Error::DecryptError)
    }
}

/// Splits the tag off the end of an inbound record's payload.
fn split_tag(payload: &mut [u8]) -> Result<(&mut [u8], [u8; TAG_LEN]), Error> {
    let at = payload.len().checked_sub(TAG_LEN).ok_or(Error::DecryptError)?;
    let (body, tag) = payload.split_at_mut(at);
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag);
    Ok((body, out))
}

/// TLS 1.3 record protection (RFC 8446 §5.2): nonce = iv XOR seq, inner content type last.
struct Tls13Aead(AeadKind);

struct Tls13Record {
    cipher: Cipher,
    iv: Iv,
}

impl Tls13AeadAlgorithm for Tls13Aead {
    fn encrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageEncrypter> {
        Box::new(Tls13Record { cipher: self.0.cipher(key.as_ref()), iv })
    }
    fn decrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageDecrypter> {
        Box::new(Tls13Record { cipher: self.0.cipher(key.as_ref()), iv })
    }
    fn key_len(&self) -> usize {
        self.0.key_len()
    }
    fn extract_keys(&self, key: AeadKey, iv: Iv) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        Ok(self.0.secrets(key, iv))
    }
}

impl MessageEncrypter for Tls13Record {
    fn encrypt(&mut self, msg: OutboundPlainMessage<'_>, seq: u64) -> Result<OutboundOpaqueMessage, Error> {
        let total = self.encrypted_payload_len(msg.payload.len());
        let mut payload = PrefixedPayload::with_capacity(total);
        payload.extend_from_chunks(&msg.payload);
        payload.extend_from_slice(&msg.typ.to_array());
        let nonce = Nonce::new(&self.iv, seq).0;
        let tag = self.cipher.seal(&nonce, &make_tls13_aad(total), payload.as_mut())?;
        payload.extend_from_slice(&tag);
        Ok(OutboundOpaqueMessage::new(ContentType::ApplicationData, ProtocolVersion::TLSv1_2, payload))
    }
    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + 1 + TAG_LEN
    }
}

impl MessageDecrypter for Tls13Record {
    fn decrypt<'a>(&mut self, mut msg: InboundOpaqueMessage<'a>, seq: u64) -> Result<InboundPlainMessage<'a>, Error> {
        let aad = make_tls13_aad(msg.payload.len());
        let nonce = Nonce::new(&self.iv, seq).0;
        let plain_len = {
            let (body, tag) = split_tag(&mut msg.payload)?;
            self.cipher.open(&nonce, &aad, body, &tag)?;
            body.len()
        };
        msg.payload.truncate(plain_len);
        msg.into_tls13_unpadded_message()
    }
}

/// TLS 1.2 GCM (RFC 5288 §3: 4-byte salt, 8-byte explicit nonce carried in the record) and
/// ChaCha20-Poly1305 (RFC 7905 §2: 12-byte IV XOR seq, no explicit nonce).
struct Tls12Aead(AeadKind);

struct Tls12Record {
    cipher: Cipher,
    kind: AeadKind,
    /// GCM: salt (4) || explicit (8) for sending; ChaCha: the 12-byte IV.
    iv: [u8; NONCE_LEN],
}

const GCM_EXPLICIT_LEN: usize = 8;

impl Tls12Aead {
    fn record(&self, key: &[u8], iv: &[u8], extra: &[u8]) -> Tls12Record {
        // rustls passes `key_block_shape` lengths: 12-byte IV for ChaCha, 4-byte salt and
        // (encrypter only) 8 explicit bytes for GCM. Anything else leaves zeros, never panics.
        let mut full = [0u8; NONCE_LEN];
        match self.0 {
            AeadKind::ChaCha20Poly1305 => {
                if let Some(iv) = iv.get(..NONCE_LEN) {
                    full.copy_from_slice(iv);
                }
            }
            _ => {
                if let Some(salt) = iv.get(..4) {
                    full[..4].copy_from_slice(salt);
                }
                if let Some(explicit) = extra.get(..GCM_EXPLICIT_LEN) {
                    full[4..].copy_from_slice(explicit);
                }
            }
        }
        Tls12Record { cipher: self.0.cipher(key), kind: self.0, iv: full }
    }
}

impl Tls12AeadAlgorithm for Tls12Aead {
    fn encrypter(&self, key: AeadKey, iv: &[u8], extra: &[u8]) -> Box<dyn MessageEncrypter> {
        Box::new(self.record(key.as_ref(), iv, extra))
    }
    fn decrypter(&self, key: AeadKey, iv: &[u8]) -> Box<dyn MessageDecrypter> {
        Box::new(self.record(key.as_ref(), iv, &[]))
    }
    fn key_block_shape(&self) -> KeyBlockShape {
        match self.0 {
            AeadKind::ChaCha20Poly1305 => KeyBlockShape { enc_key_len: 32, fixed_iv_len: 12, explicit_nonce_len: 0 },
            kind => KeyBlockShape { enc_key_len: kind.key_len(), fixed_iv_len: 4, explicit_nonce_len: GCM_EXPLICIT_LEN },
        }
    }
    fn extract_keys(&self, key: AeadKey, iv: &[u8], explicit: &[u8]) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        let mut full = [0u8; NONCE_LEN];
        match (self.0, iv.len(), explicit.len()) {
            (AeadKind::ChaCha20Poly1305, NONCE_LEN, _) => full.copy_from_slice(iv),
            (AeadKind::Aes128Gcm | AeadKind::Aes256Gcm, 4, GCM_EXPLICIT_LEN) => {
                full[..4].copy_from_slice(iv);
                full[4..].copy_from_slice(explicit);
            }
            _ => return Err(UnsupportedOperationError),
        }
        Ok(self.0.secrets(key, Iv::new(full)))
    }
}

impl MessageEncrypter for Tls12Record {
    fn encrypt(&mut self, msg: OutboundPlainMessage<'_>, seq: u64) -> Result<OutboundOpaqueMessage, Error> {
        let total = self.encrypted_payload_len(msg.payload.len());
        let mut payload = PrefixedPayload::with_capacity(total);
        let aad = make_tls12_aad(seq, msg.typ, msg.version, msg.payload.len());
        let nonce = match self.kind {
            AeadKind::ChaCha20Poly1305 => Nonce::new(&Iv::new(self.iv), seq).0,
            _ => {
                // The explicit part is the random per-connection value XOR seq, sent in clear.
                let nonce = Nonce::new(&Iv::new(self.iv), seq).0;
                payload.extend_from_slice(&nonce[4..]);
                nonce
            }
        };
        let start = payload.as_ref().len();
        payload.extend_from_chunks(&msg.payload);
        let tag = self.cipher.seal(&nonce, &aad, &mut payload.as_mut()[start..])?;
        payload.extend_from_slice(&tag);
        Ok(OutboundOpaqueMessage::new(msg.typ, msg.version, payload))
    }
    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        match self.kind {
            AeadKind::ChaCha20Poly1305 => payload_len + TAG_LEN,
            _ => payload_len + GCM_EXPLICIT_LEN + TAG_LEN,
        }
    }
}

impl MessageDecrypter for Tls12Record {
    fn decrypt<'a>(&mut self, mut msg: InboundOpaqueMessage<'a>, seq: u64) -> Result<InboundPlainMessage<'a>, Error> {
        let explicit = if self.kind == AeadKind::ChaCha20Poly1305 { 0 } else { GCM_EXPLICIT_LEN };
        let plain_len = msg.payload.len().checked_sub(explicit + TAG_LEN).ok_or(Error::DecryptError)?;
        let mut nonce = self.iv;
        if explicit == 0 {
            nonce = Nonce::new(&Iv::new(self.iv), seq).0;
        } else {
            nonce[4..].copy_from_slice(&msg.payload[..GCM_EXPLICIT_LEN]);
        }
        let aad = make_tls12_aad(seq, msg.typ, msg.version, plain_len);
        {
            let (body, tag) = split_tag(&mut msg.payload[explicit..])?;
            self.cipher.open(&nonce, &aad, body, &tag)?;
        }
        if explicit != 0 {
            msg.payload.copy_within(explicit..explicit + plain_len, 0);
        }
        msg.payload.truncate(plain_len);
        Ok(msg.into_plain_message())
    }
}

// ---- Suites ----------------------------------------------------------------------------

/// AES-GCM: 2^24 records per key (RFC 8446 §5.5 and the AEBounds analysis rustls cites).
const GCM_LIMIT: u64 = 1 << 24;

static TLS13_AES_128_GCM_SHA256: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon { suite: CipherSuite::TLS13_AES_128_GCM_SHA256, hash_provider: &SHA256, confidentiality_limit: GCM_LIMIT },
    hkdf_provider: &HKDF_SHA256,
    aead_alg: &Tls13Aead(AeadKind::Aes128Gcm),
    quic: None,
};
static TLS13_AES_256_GCM_SHA384: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon { suite: CipherSuite::TLS13_AES_256_GCM_SHA384, hash_provider: &SHA384, confidentiality_limit: GCM_LIMIT },
    hkdf_provider: &HKDF_SHA384,
    aead_alg: &Tls13Aead(AeadKind::Aes256Gcm),
    quic: None,
};
static TLS13_CHACHA20_POLY1305_SHA256: Tls13CipherSuite = Tls13CipherSuite {
    common: CipherSuiteCommon { suite: CipherSuite::TLS13_CHACHA20_POLY1305_SHA256, hash_provider: &SHA256, confidentiality_limit: u64::MAX },
    hkdf_provider: &HKDF_SHA256,
    aead_alg: &Tls13Aead(AeadKind::ChaCha20Poly1305),
    quic: None,
};

static ECDSA_SCHEMES: &[SignatureScheme] =
    &[SignatureScheme::ECDSA_NISTP256_SHA256, SignatureScheme::ECDSA_NISTP384_SHA384, SignatureScheme::ED25519];
static RSA_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

macro_rules! tls12_suite {
    ($name:ident, $suite:ident, $hash:expr, $prf:expr, $sign:expr, $aead:expr, $limit:expr) => {
        static $name: Tls12CipherSuite = Tls12CipherSuite {
            common: CipherSuiteCommon { suite: CipherSuite::$suite, hash_provider: $hash, confidentiality_limit: $limit },
            prf_provider: $prf,
            kx: rustls::crypto::KeyExchangeAlgorithm::ECDHE,
            sign: $sign,
            aead_alg: &Tls12Aead($aead),
        };
    };
}
tls12_suite!(ECDHE_ECDSA_AES128, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, &SHA256, &PRF_SHA256, ECDSA_SCHEMES, AeadKind::Aes128Gcm, GCM_LIMIT);
tls12_suite!(ECDHE_ECDSA_AES256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, &SHA384, &PRF_SHA384, ECDSA_SCHEMES, AeadKind::Aes256Gcm, GCM_LIMIT);
tls12_suite!(ECDHE_ECDSA_CHACHA, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, &SHA256, &PRF_SHA256, ECDSA_SCHEMES, AeadKind::ChaCha20Poly1305, u64::MAX);
tls12_suite!(ECDHE_RSA_AES128, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, &SHA256, &PRF_SHA256, RSA_SCHEMES, AeadKind::Aes128Gcm, GCM_LIMIT);
tls12_suite!(ECDHE_RSA_AES256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, &SHA384, &PRF_SHA384, RSA_SCHEMES, AeadKind::Aes256Gcm, GCM_LIMIT);
tls12_suite!(ECDHE_RSA_CHACHA, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, &SHA256, &PRF_SHA256, RSA_SCHEMES, AeadKind::ChaCha20Poly1305, u64::MAX);

/// Every suite, TLS 1.3 first, in order of preference.
pub static ALL_SUITES: &[SupportedCipherSuite] = &[
    SupportedCipherSuite::Tls13(&TLS13_AES_128_GCM_SHA256),
    SupportedCipherSuite::Tls13(&TLS13_AES_256_GCM_SHA384),
    SupportedCipherSuite::Tls13(&TLS13_CHACHA20_POLY1305_SHA256),
    SupportedCipherSuite::Tls12(&ECDHE_ECDSA_AES128),
    SupportedCipherSuite::Tls12(&ECDHE_ECDSA_AES256),
    SupportedCipherSuite::Tls12(&ECDHE_ECDSA_CHACHA),
    SupportedCipherSuite::Tls12(&ECDHE_RSA_AES128),
    SupportedCipherSuite::Tls12(&ECDHE_RSA_AES256),
    SupportedCipherSuite::Tls12(&ECDHE_RSA_CHACHA),
];

/// The bulk cipher of a suite: 0 AES-128-GCM, 1 AES-256-GCM, 2 ChaCha20-Poly1305 (the
/// WIT `cipher-suite` cases).
pub fn bulk_cipher(suite: CipherSuite) -> u8 {
    match suite {
        CipherSuite::TLS13_AES_256_GCM_SHA384
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        | CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        | CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => 2,
        _ => 0,
    }
}

// ---- Key exchange ----------------------------------------------------------------------

/// X25519 (RFC 7748), its secrets drawn from the given source.
#[derive(Debug)]
struct X25519Group(&'static dyn SecureRandom);

struct X25519Exchange {
    secret: x25519_dalek::StaticSecret,
    public: [u8; 32],
}

impl SupportedKxGroup for X25519Group {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let secret = x25519_dalek::StaticSecret::from(*random::<32>(self.0)?);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        Ok(Box::new(X25519Exchange { secret, public }))
    }
    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

impl ActiveKeyExchange for X25519Exchange {
    fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
        let peer: [u8; 32] = peer.try_into().map_err(|_| rustls::PeerMisbehaved::InvalidKeyShare)?;
        let shared = self.secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        // RFC 8446 §7.4.2: an all-zero result (a low-order peer point) is an error.
        if !shared.was_contributory() {
            return Err(rustls::PeerMisbehaved::InvalidKeyShare.into());
        }
        Ok(SharedSecret::from(&shared.as_bytes()[..]))
    }
    fn pub_key(&self) -> &[u8] {
        &self.public
    }
    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

macro_rules! nist_group {
    ($group:ident, $exchange:ident, $curve:ident, $len:expr, $name:ident) => {
        /// ECDHE on a NIST curve (SEC 1 §3.3.1), its scalars drawn from the given source.
        #[derive(Debug)]
        struct $group(&'static dyn SecureRandom);

        struct $exchange {
            secret: $curve::SecretKey,
            public: Vec<u8>,
        }

        impl SupportedKxGroup for $group {
            fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
                // A uniformly random scalar: draw until it is in [1, n).
                let secret = loop {
                    if let Ok(secret) = $curve::SecretKey::from_slice(random::<$len>(self.0)?.as_ref()) {
                        break secret;
                    }
                };
                // RFC 8446 §4.2.8.2: uncompressed SEC1 point.
                use $curve::elliptic_curve::sec1::ToSec1Point;
                let public = secret.public_key().to_sec1_point(false).as_bytes().to_vec();
                Ok(Box::new($exchange { secret, public }))
            }
            fn name(&self) -> NamedGroup {
                NamedGroup::$name
            }
        }

        impl ActiveKeyExchange for $exchange {
            fn complete(self: Box<Self>, peer: &[u8]) -> Result<SharedSecret, Error> {
                // Only the uncompressed form is allowed (RFC 8446 §4.2.8.2).
                if peer.first() != Some(&4) {
                    return Err(rustls::PeerMisbehaved::InvalidKeyShare.into());
                }
                let peer = $curve::PublicKey::from_sec1_bytes(peer).map_err(|_| rustls::PeerMisbehaved::InvalidKeyShare)?;
                let shared = $curve::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
                Ok(SharedSecret::from(&shared.raw_secret_bytes()[..]))
            }
            fn pub_key(&self) -> &[u8] {
                &self.public
            }
            fn group(&self) -> NamedGroup {
                NamedGroup::$name
            }
        }
    };
}
nist_group!(P256Group, P256Exchange, p256, 32, secp256r1);
nist_group!(P384Group, P384Exchange, p384, 48, secp384r1);

// ---- Signature verification (certificates and handshake signatures) --------------------

#[derive(Debug, Clone, Copy)]
enum Verify {
    EcdsaP256Sha256,
    EcdsaP256Sha384,
    EcdsaP384Sha256,
    EcdsaP384Sha384,
    Ed25519,
    RsaPkcs1(Hash),
    RsaPss(Hash),
}

#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Debug)]
struct Verifier(Verify);

fn ecdsa_prehash(hash: Hash, message: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    match hash {
        Hash::Sha256 => sha2::Sha256::digest(message).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(message).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(message).to_vec(),
    }
}

fn rsa_verify(hash: Hash, pss: bool, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), InvalidSignature> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::signature::Verifier as _;
    let key = rsa::PublicKey::from_pkcs1_der(public_key).map_err(|_| InvalidSignature)?;
    // webpki accepts 2048..=8192-bit RSA keys for these algorithms.
    let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
    if !(2048..=8192).contains(&bits) {
        return Err(InvalidSignature);
    }
    macro_rules! check {
        ($digest:ty) => {
            if pss {
                let sig = rsa::pss::Signature::try_from(signature).map_err(|_| InvalidSignature)?;
                rsa::pss::VerifyingKey::<$digest>::new(key).verify(message, &sig)
            } else {
                let sig = rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| InvalidSignature)?;
                rsa::pkcs1v15::VerifyingKey::<$digest>::new(key).verify(message, &sig)
            }
        };
    }
    match hash {
        Hash::Sha256 => check!(sha2::Sha256),
        Hash::Sha384 => check!(sha2::Sha384),
        Hash::Sha512 => check!(sha2::Sha512),
    }
    .map_err(|_| InvalidSignature)
}

impl SignatureVerificationAlgorithm for Verifier {
    fn verify_signature(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), InvalidSignature> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        match self.0 {
            Verify::EcdsaP256Sha256 | Verify::EcdsaP256Sha384 => {
                let hash = if matches!(self.0, Verify::EcdsaP256Sha256) { Hash::Sha256 } else { Hash::Sha384 };
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
                key.verify_prehash(&ecdsa_prehash(hash, message), &sig).map_err(|_| InvalidSignature)
            }
            Verify::EcdsaP384Sha256 | Verify::EcdsaP384Sha384 => {
                let hash = if matches!(self.0, Verify::EcdsaP384Sha256) { Hash::Sha256 } else { Hash::Sha384 };
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
                key.verify_prehash(&ecdsa_prehash(hash, message), &sig).map_err(|_| InvalidSignature)
            }
            Verify::Ed25519 => {
                let key: &[u8; 32] = public_key.try_into().map_err(|_| InvalidSignature)?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(key).map_err(|_| InvalidSignature)?;
                let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| InvalidSignature)?;
                key.verify_strict(message, &sig).map_err(|_| InvalidSignature)
            }
            Verify::RsaPkcs1(hash) => rsa_verify(hash, false, public_key, message, signature),
            Verify::RsaPss(hash) => rsa_verify(hash, true, public_key, message, signature),
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        match self.0 {
            Verify::EcdsaP256Sha256 | Verify::EcdsaP256Sha384 => alg_id::ECDSA_P256,
            Verify::EcdsaP384Sha256 | Verify::EcdsaP384Sha384 => alg_id::ECDSA_P384,
            Verify::Ed25519 => alg_id::ED25519,
            Verify::RsaPkcs1(_) | Verify::RsaPss(_) => alg_id::RSA_ENCRYPTION,
        }
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        match self.0 {
            Verify::EcdsaP256Sha256 | Verify::EcdsaP384Sha256 => alg_id::ECDSA_SHA256,
            Verify::EcdsaP256Sha384 | Verify::EcdsaP384Sha384 => alg_id::ECDSA_SHA384,
            Verify::Ed25519 => alg_id::ED25519,
            Verify::RsaPkcs1(Hash::Sha256) => alg_id::RSA_PKCS1_SHA256,
            Verify::RsaPkcs1(Hash::Sha384) => alg_id::RSA_PKCS1_SHA384,
            Verify::RsaPkcs1(Hash::Sha512) => alg_id::RSA_PKCS1_SHA512,
            Verify::RsaPss(Hash::Sha256) => alg_id::RSA_PSS_SHA256,
            Verify::RsaPss(Hash::Sha384) => alg_id::RSA_PSS_SHA384,
            Verify::RsaPss(Hash::Sha512) => alg_id::RSA_PSS_SHA512,
        }
    }
}

static ECDSA_P256_SHA256: Verifier = Verifier(Verify::EcdsaP256Sha256);
static ECDSA_P256_SHA384: Verifier = Verifier(Verify::EcdsaP256Sha384);
static ECDSA_P384_SHA256: Verifier = Verifier(Verify::EcdsaP384Sha256);
static ECDSA_P384_SHA384: Verifier = Verifier(Verify::EcdsaP384Sha384);
static ED25519: Verifier = Verifier(Verify::Ed25519);
static RSA_PKCS1_SHA256: Verifier = Verifier(Verify::RsaPkcs1(Hash::Sha256));
static RSA_PKCS1_SHA384: Verifier = Verifier(Verify::RsaPkcs1(Hash::Sha384));
static RSA_PKCS1_SHA512: Verifier = Verifier(Verify::RsaPkcs1(Hash::Sha512));
static RSA_PSS_SHA256: Verifier = Verifier(Verify::RsaPss(Hash::Sha256));
static RSA_PSS_SHA384: Verifier = Verifier(Verify::RsaPss(Hash::Sha384));
static RSA_PSS_SHA512: Verifier = Verifier(Verify::RsaPss(Hash::Sha512));

static VERIFICATION: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        &ECDSA_P256_SHA256,
        &ECDSA_P256_SHA384,
        &ECDSA_P384_SHA256,
        &ECDSA_P384_SHA384,
        &ED25519,
        &RSA_PKCS1_SHA256,
        &RSA_PKCS1_SHA384,
        &RSA_PKCS1_SHA512,
        &RSA_PSS_SHA256,
        &RSA_PSS_SHA384,
        &RSA_PSS_SHA512,
    ],
    // TLS 1.3 binds each ECDSA scheme to one curve (RFC 8446 §4.2.3); rustls checks that.
    mapping: &[
        (SignatureScheme::ECDSA_NISTP384_SHA384, &[&ECDSA_P384_SHA384, &ECDSA_P256_SHA384]),
        (SignatureScheme::ECDSA_NISTP256_SHA256, &[&ECDSA_P256_SHA256, &ECDSA_P384_SHA256]),
        (SignatureScheme::ED25519, &[&ED25519]),
        (SignatureScheme::RSA_PSS_SHA512, &[&RSA_PSS_SHA512]),
        (SignatureScheme::RSA_PSS_SHA384, &[&RSA_PSS_SHA384]),
        (SignatureScheme::RSA_PSS_SHA256, &[&RSA_PSS_SHA256]),
        (SignatureScheme::RSA_PKCS1_SHA512, &[&RSA_PKCS1_SHA512]),
        (SignatureScheme::RSA_PKCS1_SHA384, &[&RSA_PKCS1_SHA384]),
        (SignatureScheme::RSA_PKCS1_SHA256, &[&RSA_PKCS1_SHA256]),
    ],
};

// ---- Signing with the kernel's keys ----------------------------------------------------

/// A private key held by the kernel (zeroized on drop by the RustCrypto types).
#[derive(Clone)]
pub enum PrivateKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl core::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print key material.
        f.write_str(match self {
            PrivateKey::P256(_) => "PrivateKey::P256",
            PrivateKey::P384(_) => "PrivateKey::P384",
            PrivateKey::Ed25519(_) => "PrivateKey::Ed25519",
        })
    }
}

impl PrivateKey {
    fn scheme(&self) -> SignatureScheme {
        match self {
            PrivateKey::P256(_) => SignatureScheme::ECDSA_NISTP256_SHA256,
            PrivateKey::P384(_) => SignatureScheme::ECDSA_NISTP384_SHA384,
            PrivateKey::Ed25519(_) => SignatureScheme::ED25519,
        }
    }

    /// Decodes a PKCS#8 or SEC1 private key (P-256, P-384, Ed25519).
    pub fn from_der(der: &PrivateKeyDer<'_>) -> Option<Self> {
        use pkcs8::DecodePrivateKey;
        match der {
            PrivateKeyDer::Pkcs8(der) => {
                let bytes = der.secret_pkcs8_der();
                p256::ecdsa::SigningKey::from_pkcs8_der(bytes)
                    .map(PrivateKey::P256)
                    .or_else(|_| p384::ecdsa::SigningKey::from_pkcs8_der(bytes).map(PrivateKey::P384))
                    .or_else(|_| ed25519_dalek::SigningKey::from_pkcs8_der(bytes).map(PrivateKey::Ed25519))
                    .ok()
            }
            PrivateKeyDer::Sec1(der) => {
                let bytes = der.secret_sec1_der();
                p256::SecretKey::from_sec1_der(bytes)
                    .map(|k| PrivateKey::P256(k.into()))
                    .or_else(|_| p384::SecretKey::from_sec1_der(bytes).map(|k| PrivateKey::P384(k.into())))
                    .ok()
            }
            _ => None,
        }
    }

    /// The DER SubjectPublicKeyInfo of the public half.
    pub fn public_key_der(&self) -> Option<Vec<u8>> {
        use pkcs8::EncodePublicKey;
        match self {
            PrivateKey::P256(k) => k.verifying_key().to_public_key_der().ok(),
            PrivateKey::P384(k) => k.verifying_key().to_public_key_der().ok(),
            PrivateKey::Ed25519(k) => k.verifying_key().to_public_key_der().ok(),
        }
        .map(|d| d.into_vec())
    }

    /// Signs `message` as `scheme()` demands (ECDSA: DER signature).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer as _;
        match self {
            PrivateKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            PrivateKey::P384(k) => {
                let sig: p384::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            PrivateKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }
}

#[derive(Debug)]
struct TlsSigningKey(Arc<PrivateKey>);

#[derive(Debug)]
struct TlsSigner(Arc<PrivateKey>);

impl SigningKey for TlsSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered.contains(&self.0.scheme()).then(|| Box::new(TlsSigner(self.0.clone())) as Box<dyn Signer>)
    }
    fn algorithm(&self) -> SignatureAlgorithm {
        match *self.0 {
            PrivateKey::Ed25519(_) => SignatureAlgorithm::ED25519,
            _ => SignatureAlgorithm::ECDSA,
        }
    }
}

impl Signer for TlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.0.sign(message))
    }
    fn scheme(&self) -> SignatureScheme {
        self.0.scheme()
    }
}

/// A rustls signing key over one of our private keys.
pub fn signing_key(key: Arc<PrivateKey>) -> Arc<dyn SigningKey> {
    Arc::new(TlsSigningKey(key))
}

#[derive(Debug)]
struct Keys;

impl KeyProvider for Keys {
    fn load_private_key(&self, der: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, Error> {
        PrivateKey::from_der(&der)
            .map(|k| signing_key(Arc::new(k)))
            .ok_or_else(|| Error::General("unsupported private key (P-256, P-384 or Ed25519 PKCS#8/SEC1 expected)".into()))
    }
}

#[cfg(test)]
mod tests;
