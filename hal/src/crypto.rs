//! The cryptography behind the HAL's `crypto` interface (seed table 12), independent of
//! where it runs: the kernel exposes it to workloads through key-context handles, and
//! the host tests it against published vectors.
//!
//! Secret key material lives only inside [`Key`] (zeroized on drop); callers get public
//! keys, signatures, tags and ciphertexts. Encodings are fixed so results can be checked
//! with any other implementation: Ed25519 raw 32-byte public keys and 64-byte signatures
//! (RFC 8032); ECDSA SEC1 uncompressed public keys and DER signatures (RFC 6979
//! deterministic nonces); AEAD ciphertext with the 16-byte tag appended; HPKE base mode
//! (RFC 9180).

use alloc::vec::Vec;
use core::fmt;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoError {
    Unsupported(&'static str),
    InvalidKey(&'static str),
    InvalidArgument(&'static str),
    /// A tag, MAC or signature did not verify.
    VerificationFailed,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::Unsupported(what) => write!(f, "unsupported: {what}"),
            CryptoError::InvalidKey(what) => write!(f, "invalid key: {what}"),
            CryptoError::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            CryptoError::VerificationFailed => write!(f, "verification failed"),
        }
    }
}

impl core::error::Error for CryptoError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacAlgorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeadAlgorithm {
    Aes256Gcm,
    ChaCha20Poly1305,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    Ed25519,
    EcdsaP256Sha256,
    EcdsaP384Sha384,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpkeSuite {
    /// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
    X25519Sha256Aes128Gcm,
    /// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
    X25519Sha256ChaCha20Poly1305,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Mac(MacAlgorithm),
    Aead(AeadAlgorithm),
    Signature(SignatureAlgorithm),
    Hpke(HpkeSuite),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    Raw,
    Pkcs8Der,
    Pkcs8Pem,
}

/// AEAD nonce and tag sizes (both suites).
pub const AEAD_NONCE_LEN: usize = 12;
pub const AEAD_TAG_LEN: usize = 16;
const AEAD_KEY_LEN: usize = 32;

// ---- hashing -------------------------------------------------------------------

/// One-shot hash.
pub fn hash(algorithm: HashAlgorithm, data: &[u8]) -> Vec<u8> {
    let mut hasher = Hasher::new(algorithm);
    hasher.update(data);
    hasher.finish()
}

/// Incremental hashing.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: HashAlgorithm) -> Self {
        use sha2::Digest;
        match algorithm {
            HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest; the hasher starts over.
    pub fn finish(&mut self) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hasher::Sha256(h) => h.finalize_reset().to_vec(),
            Hasher::Sha384(h) => h.finalize_reset().to_vec(),
            Hasher::Sha512(h) => h.finalize_reset().to_vec(),
        }
    }
}

// ---- keys -------------------------------------------------------------------------

enum Material {
    Symmetric(Zeroizing<Vec<u8>>),
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    X25519(<hpke::kem::X25519HkdfSha256 as hpke::Kem>::PrivateKey),
}

/// A key and the one algorithm it may be used with.
pub struct Key {
    algorithm: KeyAlgorithm,
    material: Material,
}

impl fmt::Debug for Key {
    /// Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// Accepted HMAC key lengths: at least 128 bits (NIST SP 800-107 §5.3.4 lets keys be
/// shorter than the output; below 128 bits they are too weak), at most 1 KiB.
const MAC_KEY_LEN: core::ops::RangeInclusive<usize> = 16..=1024;

/// Generated HMAC keys are as long as the hash output (RFC 2104 §3).
fn mac_generated_len(algorithm: MacAlgorithm) -> usize {
    match algorithm {
        MacAlgorithm::HmacSha256 => 32,
        MacAlgorithm::HmacSha384 => 48,
        MacAlgorithm::HmacSha512 => 64,
    }
}

fn pem_text(bytes: &[u8]) -> Result<&str, CryptoError> {
    core::str::from_utf8(bytes).map_err(|_| CryptoError::InvalidKey("PEM is not text"))
}

impl Key {
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Imports secret key material.
    pub fn import(algorithm: KeyAlgorithm, format: KeyFormat, bytes: &[u8]) -> Result<Self, CryptoError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let material = match (algorithm, format) {
            (KeyAlgorithm::Mac(_), KeyFormat::Raw) => {
                if !MAC_KEY_LEN.contains(&bytes.len()) {
                    return Err(CryptoError::InvalidKey("HMAC keys are 16 to 1024 bytes"));
                }
                Material::Symmetric(Zeroizing::new(bytes.to_vec()))
            }
            (KeyAlgorithm::Aead(_), KeyFormat::Raw) => {
                if bytes.len() != AEAD_KEY_LEN {
                    return Err(CryptoError::InvalidKey("AEAD keys are 32 bytes"));
                }
                Material::Symmetric(Zeroizing::new(bytes.to_vec()))
            }
            (KeyAlgorithm::Signature(SignatureAlgorithm::Ed25519), format) => Material::Ed25519(match format {
                KeyFormat::Raw => {
                    let seed: &[u8; 32] = bytes.try_into().map_err(|_| CryptoError::InvalidKey("Ed25519 seeds are 32 bytes"))?;
                    ed25519_dalek::SigningKey::from_bytes(seed)
                }
                KeyFormat::Pkcs8Der => ed25519_dalek::SigningKey::from_pkcs8_der(bytes)
                    .map_err(|_| CryptoError::InvalidKey("not an Ed25519 PKCS#8 key"))?,
                KeyFormat::Pkcs8Pem => ed25519_dalek::SigningKey::from_pkcs8_pem(pem_text(bytes)?)
                    .map_err(|_| CryptoError::InvalidKey("not an Ed25519 PKCS#8 PEM key"))?,
            }),
            (KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP256Sha256), format) => Material::P256(match format {
                KeyFormat::Raw => p256::ecdsa::SigningKey::from_slice(bytes)
                    .map_err(|_| CryptoError::InvalidKey("not a P-256 scalar"))?,
                KeyFormat::Pkcs8Der => p256::ecdsa::SigningKey::from_pkcs8_der(bytes)
                    .map_err(|_| CryptoError::InvalidKey("not a P-256 PKCS#8 key"))?,
                KeyFormat::Pkcs8Pem => p256::ecdsa::SigningKey::from_pkcs8_pem(pem_text(bytes)?)
                    .map_err(|_| CryptoError::InvalidKey("not a P-256 PKCS#8 PEM key"))?,
            }),
            (KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP384Sha384), format) => Material::P384(match format {
                KeyFormat::Raw => p384::ecdsa::SigningKey::from_slice(bytes)
                    .map_err(|_| CryptoError::InvalidKey("not a P-384 scalar"))?,
                KeyFormat::Pkcs8Der => p384::ecdsa::SigningKey::from_pkcs8_der(bytes)
                    .map_err(|_| CryptoError::InvalidKey("not a P-384 PKCS#8 key"))?,
                KeyFormat::Pkcs8Pem => p384::ecdsa::SigningKey::from_pkcs8_pem(pem_text(bytes)?)
                    .map_err(|_| CryptoError::InvalidKey("not a P-384 PKCS#8 PEM key"))?,
            }),
            (KeyAlgorithm::Hpke(_), KeyFormat::Raw) => {
                use hpke::Deserializable as _;
                Material::X25519(
                    <hpke::kem::X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(bytes)
                        .map_err(|_| CryptoError::InvalidKey("X25519 private keys are 32 bytes"))?,
                )
            }
            (KeyAlgorithm::Mac(_) | KeyAlgorithm::Aead(_) | KeyAlgorithm::Hpke(_), _) => {
                return Err(CryptoError::Unsupported("symmetric and X25519 keys are imported raw"))
            }
        };
        Ok(Key { algorithm, material })
    }

    /// Generates a fresh key from `rng`.
    pub fn generate(algorithm: KeyAlgorithm, rng: &mut impl CryptoRng) -> Self {
        let material = match algorithm {
            KeyAlgorithm::Mac(mac) => {
                let mut bytes = Zeroizing::new(alloc::vec![0u8; mac_generated_len(mac)]);
                rng.fill_bytes(&mut bytes);
                Material::Symmetric(bytes)
            }
            KeyAlgorithm::Aead(_) => {
                let mut bytes = Zeroizing::new(alloc::vec![0u8; AEAD_KEY_LEN]);
                rng.fill_bytes(&mut bytes);
                Material::Symmetric(bytes)
            }
            KeyAlgorithm::Signature(SignatureAlgorithm::Ed25519) => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(seed.as_mut());
                Material::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            // A uniformly random scalar: draw until it is in [1, n) (fails with
            // probability about 2^-32 per draw for these curves).
            KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP256Sha256) => Material::P256(loop {
                let mut scalar = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(scalar.as_mut());
                if let Ok(key) = p256::ecdsa::SigningKey::from_slice(scalar.as_ref()) {
                    break key;
                }
            }),
            KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP384Sha384) => Material::P384(loop {
                let mut scalar = Zeroizing::new([0u8; 48]);
                rng.fill_bytes(scalar.as_mut());
                if let Ok(key) = p384::ecdsa::SigningKey::from_slice(scalar.as_ref()) {
                    break key;
                }
            }),
            KeyAlgorithm::Hpke(_) => {
                use hpke::Kem as _;
                Material::X25519(hpke::kem::X25519HkdfSha256::gen_keypair_with_rng(rng).0)
            }
        };
        Key { algorithm, material }
    }

    /// The public key of a signature or HPKE key.
    pub fn public_key(&self) -> Result<Vec<u8>, CryptoError> {
        match &self.material {
            Material::Ed25519(k) => Ok(k.verifying_key().to_bytes().to_vec()),
            Material::P256(k) => Ok(k.verifying_key().to_sec1_point(false).as_bytes().to_vec()),
            Material::P384(k) => Ok(k.verifying_key().to_sec1_point(false).as_bytes().to_vec()),
            Material::X25519(k) => {
                use hpke::{Kem as _, Serializable as _};
                Ok(hpke::kem::X25519HkdfSha256::sk_to_pk(k).to_bytes().to_vec())
            }
            Material::Symmetric(_) => Err(CryptoError::InvalidKey("symmetric keys have no public part")),
        }
    }

    fn symmetric(&self) -> Result<&[u8], CryptoError> {
        match &self.material {
            Material::Symmetric(bytes) => Ok(bytes),
            _ => Err(CryptoError::InvalidKey("not a symmetric key")),
        }
    }

    /// HMAC tag of `data`.
    pub fn mac(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use hmac::{KeyInit, Mac};
        let KeyAlgorithm::Mac(algorithm) = self.algorithm else {
            return Err(CryptoError::InvalidKey("not a MAC key"));
        };
        let key = self.symmetric()?;
        let bad = |_| CryptoError::InvalidKey("HMAC key");
        Ok(match algorithm {
            MacAlgorithm::HmacSha256 => {
                let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).map_err(bad)?;
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            MacAlgorithm::HmacSha384 => {
                let mut m = hmac::Hmac::<sha2::Sha384>::new_from_slice(key).map_err(bad)?;
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            MacAlgorithm::HmacSha512 => {
                let mut m = hmac::Hmac::<sha2::Sha512>::new_from_slice(key).map_err(bad)?;
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        })
    }

    /// Checks an HMAC tag in constant time.
    pub fn mac_verify(&self, data: &[u8], tag: &[u8]) -> Result<(), CryptoError> {
        use subtle_eq::ct_eq;
        let expected = self.mac(data)?;
        if ct_eq(&expected, tag) { Ok(()) } else { Err(CryptoError::VerificationFailed) }
    }

    fn aead_check(&self, nonce: &[u8]) -> Result<(AeadAlgorithm, &[u8]), CryptoError> {
        let KeyAlgorithm::Aead(algorithm) = self.algorithm else {
            return Err(CryptoError::InvalidKey("not an AEAD key"));
        };
        if nonce.len() != AEAD_NONCE_LEN {
            return Err(CryptoError::InvalidArgument("AEAD nonces are 12 bytes"));
        }
        Ok((algorithm, self.symmetric()?))
    }

    /// Authenticated encryption: ciphertext ++ 16-byte tag.
    pub fn aead_encrypt(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let (algorithm, key) = self.aead_check(nonce)?;
        let payload = Payload { msg: plaintext, aad };
        let bad_key = |_| CryptoError::InvalidKey("AEAD key");
        let result = match algorithm {
            AeadAlgorithm::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(key)
                .map_err(bad_key)?
                .encrypt(nonce.try_into().map_err(|_| CryptoError::InvalidArgument("nonce"))?, payload),
            AeadAlgorithm::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
                .map_err(bad_key)?
                .encrypt(nonce.try_into().map_err(|_| CryptoError::InvalidArgument("nonce"))?, payload),
        };
        result.map_err(|_| CryptoError::InvalidArgument("plaintext too long"))
    }

    /// Authenticated decryption; fails without output if anything was altered.
    pub fn aead_decrypt(&self, nonce: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let (algorithm, key) = self.aead_check(nonce)?;
        let payload = Payload { msg: ciphertext, aad };
        let bad_key = |_| CryptoError::InvalidKey("AEAD key");
        let result = match algorithm {
            AeadAlgorithm::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(key)
                .map_err(bad_key)?
                .decrypt(nonce.try_into().map_err(|_| CryptoError::InvalidArgument("nonce"))?, payload),
            AeadAlgorithm::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
                .map_err(bad_key)?
                .decrypt(nonce.try_into().map_err(|_| CryptoError::InvalidArgument("nonce"))?, payload),
        };
        result.map_err(|_| CryptoError::VerificationFailed)
    }

    /// A signature over `message` (Ed25519 raw, ECDSA DER).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use ed25519_dalek::Signer as _;
        match &self.material {
            Material::Ed25519(k) => Ok(k.sign(message).to_bytes().to_vec()),
            Material::P256(k) => {
                let signature: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(k, message);
                Ok(signature.to_der().as_bytes().to_vec())
            }
            Material::P384(k) => {
                let signature: p384::ecdsa::Signature = p384::ecdsa::signature::Signer::sign(k, message);
                Ok(signature.to_der().as_bytes().to_vec())
            }
            _ => Err(CryptoError::InvalidKey("not a signing key")),
        }
    }

    /// HPKE base-mode single-shot open with this recipient key.
    pub fn hpke_open(&self, info: &[u8], aad: &[u8], encapsulated_key: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use hpke::Deserializable as _;
        type X25519 = hpke::kem::X25519HkdfSha256;
        let (KeyAlgorithm::Hpke(suite), Material::X25519(sk)) = (self.algorithm, &self.material) else {
            return Err(CryptoError::InvalidKey("not an HPKE key"));
        };
        let enc = <X25519 as hpke::Kem>::EncappedKey::from_bytes(encapsulated_key)
            .map_err(|_| CryptoError::InvalidArgument("encapsulated key"))?;
        let mode = hpke::OpModeR::Base;
        let result = match suite {
            HpkeSuite::X25519Sha256Aes128Gcm => hpke::single_shot_open::<hpke::aead::AesGcm128, hpke::kdf::HkdfSha256, X25519>(
                &mode, sk, &enc, info, ciphertext, aad,
            ),
            HpkeSuite::X25519Sha256ChaCha20Poly1305 => hpke::single_shot_open::<hpke::aead::ChaCha20Poly1305, hpke::kdf::HkdfSha256, X25519>(
                &mode, sk, &enc, info, ciphertext, aad,
            ),
        };
        result.map_err(|_| CryptoError::VerificationFailed)
    }
}

/// Verifies a signature against a public key in this module's encodings.
pub fn verify(algorithm: SignatureAlgorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    match algorithm {
        SignatureAlgorithm::Ed25519 => {
            let pk: &[u8; 32] = public_key.try_into().map_err(|_| CryptoError::InvalidKey("Ed25519 public keys are 32 bytes"))?;
            let pk = ed25519_dalek::VerifyingKey::from_bytes(pk).map_err(|_| CryptoError::InvalidKey("not an Ed25519 point"))?;
            let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| CryptoError::InvalidArgument("Ed25519 signatures are 64 bytes"))?;
            pk.verify_strict(message, &sig).map_err(|_| CryptoError::VerificationFailed)
        }
        SignatureAlgorithm::EcdsaP256Sha256 => {
            use p256::ecdsa::signature::Verifier as _;
            let pk = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| CryptoError::InvalidKey("not a SEC1 P-256 key"))?;
            let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| CryptoError::InvalidArgument("not a DER ECDSA signature"))?;
            pk.verify(message, &sig).map_err(|_| CryptoError::VerificationFailed)
        }
        SignatureAlgorithm::EcdsaP384Sha384 => {
            use p384::ecdsa::signature::Verifier as _;
            let pk = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| CryptoError::InvalidKey("not a SEC1 P-384 key"))?;
            let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| CryptoError::InvalidArgument("not a DER ECDSA signature"))?;
            pk.verify(message, &sig).map_err(|_| CryptoError::VerificationFailed)
        }
    }
}

/// HPKE base-mode single-shot seal to `recipient_public_key`: `(enc, ciphertext)`.
pub fn hpke_seal(
    suite: HpkeSuite,
    recipient_public_key: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
    use hpke::{Deserializable as _, Serializable as _};
    type X25519 = hpke::kem::X25519HkdfSha256;
    let pk = <X25519 as hpke::Kem>::PublicKey::from_bytes(recipient_public_key)
        .map_err(|_| CryptoError::InvalidKey("X25519 public keys are 32 bytes"))?;
    let mode = hpke::OpModeS::Base;
    let sealed = match suite {
        HpkeSuite::X25519Sha256Aes128Gcm => {
            hpke::single_shot_seal_with_rng::<hpke::aead::AesGcm128, hpke::kdf::HkdfSha256, X25519>(&mode, &pk, info, plaintext, aad, rng)
        }
        HpkeSuite::X25519Sha256ChaCha20Poly1305 => {
            hpke::single_shot_seal_with_rng::<hpke::aead::ChaCha20Poly1305, hpke::kdf::HkdfSha256, X25519>(&mode, &pk, info, plaintext, aad, rng)
        }
    };
    let (enc, ciphertext) = sealed.map_err(|_| CryptoError::InvalidArgument("HPKE seal failed"))?;
    Ok((enc.to_bytes().to_vec(), ciphertext))
}

/// Constant-time comparison (no early exit on the first differing byte).
mod subtle_eq {
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        core::hint::black_box(diff) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::from_seed([42; 32])
    }

    #[test]
    fn sha2_known_answers() {
        // FIPS 180-4 examples, message "abc".
        assert_eq!(hash(HashAlgorithm::Sha256, b"abc"), unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert_eq!(
            hash(HashAlgorithm::Sha384, b"abc"),
            unhex("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7")
        );
        assert_eq!(
            hash(HashAlgorithm::Sha512, b"abc"),
            unhex("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
        );
        let mut h = Hasher::new(HashAlgorithm::Sha256);
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish(), hash(HashAlgorithm::Sha256, b"abc"));
        assert_eq!(h.finish(), hash(HashAlgorithm::Sha256, b""), "finish starts over");
    }

    #[test]
    fn hmac_known_answers() {
        // RFC 4231 test case 4 (25-byte key) and test case 6 (131-byte key).
        let key: Vec<u8> = (1..=25).collect();
        let k = Key::import(KeyAlgorithm::Mac(MacAlgorithm::HmacSha256), KeyFormat::Raw, &key).unwrap();
        let tag = k.mac(&[0xcd; 50]).unwrap();
        assert_eq!(tag, unhex("82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"));
        assert_eq!(k.mac_verify(&[0xcd; 50], &tag), Ok(()));
        assert_eq!(k.mac_verify(&[0xcd; 49], &tag), Err(CryptoError::VerificationFailed));
        assert_eq!(k.mac_verify(&[0xcd; 50], &tag[..31]), Err(CryptoError::VerificationFailed));

        let data = b"Test Using Larger Than Block-Size Key - Hash Key First";
        let k = Key::import(KeyAlgorithm::Mac(MacAlgorithm::HmacSha256), KeyFormat::Raw, &[0xaa; 131]).unwrap();
        assert_eq!(k.mac(data).unwrap(), unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));
        let k = Key::import(KeyAlgorithm::Mac(MacAlgorithm::HmacSha512), KeyFormat::Raw, &[0xaa; 131]).unwrap();
        assert_eq!(
            k.mac(data).unwrap(),
            unhex("80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598")
        );
        assert!(Key::import(KeyAlgorithm::Mac(MacAlgorithm::HmacSha256), KeyFormat::Raw, b"Jefe").is_err(), "32-bit keys are refused");
    }

    #[test]
    fn aes_256_gcm_known_answer() {
        // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 14:
        // zero key, zero IV, one zero block.
        let k = Key::import(KeyAlgorithm::Aead(AeadAlgorithm::Aes256Gcm), KeyFormat::Raw, &[0; 32]).unwrap();
        let out = k.aead_encrypt(&[0; 12], b"", &[0; 16]).unwrap();
        assert_eq!(out, unhex("cea7403d4d606b6e074ec5d3baf39d18 d0d1c8a799996bf0265b98b5d48ab919"));
        assert_eq!(k.aead_decrypt(&[0; 12], b"", &out).unwrap(), vec![0; 16]);
    }

    #[test]
    fn chacha20_poly1305_known_answer() {
        // RFC 8439 §2.8.2.
        let key: Vec<u8> = (0x80..=0x9f).collect();
        let k = Key::import(KeyAlgorithm::Aead(AeadAlgorithm::ChaCha20Poly1305), KeyFormat::Raw, &key).unwrap();
        let nonce = unhex("070000004041424344454647");
        let aad = unhex("50515253c0c1c2c3c4c5c6c7");
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let out = k.aead_encrypt(&nonce, &aad, plaintext).unwrap();
        assert_eq!(out[..16], unhex("d31a8d34648e60db7b86afbc53ef7ec2")[..]);
        assert_eq!(out[out.len() - 16..], unhex("1ae10b594f09e26a7e902ecbd0600691")[..]);
        assert_eq!(k.aead_decrypt(&nonce, &aad, &out).unwrap(), plaintext.to_vec());
    }

    #[test]
    fn aead_rejects_tampering_and_misuse() {
        for algorithm in [AeadAlgorithm::Aes256Gcm, AeadAlgorithm::ChaCha20Poly1305] {
            let k = Key::generate(KeyAlgorithm::Aead(algorithm), &mut rng());
            let mut sealed = k.aead_encrypt(&[1; 12], b"aad", b"secret").unwrap();
            assert_eq!(sealed.len(), 6 + AEAD_TAG_LEN);
            assert_eq!(k.aead_decrypt(&[1; 12], b"aad!", &sealed), Err(CryptoError::VerificationFailed));
            assert_eq!(k.aead_decrypt(&[2; 12], b"aad", &sealed), Err(CryptoError::VerificationFailed));
            sealed[0] ^= 1;
            assert_eq!(k.aead_decrypt(&[1; 12], b"aad", &sealed), Err(CryptoError::VerificationFailed));
            assert_eq!(k.aead_decrypt(&[1; 12], b"aad", &sealed[..5]), Err(CryptoError::VerificationFailed));
            assert!(matches!(k.aead_encrypt(&[1; 11], b"", b""), Err(CryptoError::InvalidArgument(_))));
            assert!(matches!(k.sign(b"x"), Err(CryptoError::InvalidKey(_))));
            assert!(matches!(k.public_key(), Err(CryptoError::InvalidKey(_))));
        }
        assert!(Key::import(KeyAlgorithm::Aead(AeadAlgorithm::Aes256Gcm), KeyFormat::Raw, &[0; 16]).is_err());
    }

    #[test]
    fn ed25519_known_answer() {
        // RFC 8032 §7.1, TEST 1 (empty message).
        let sk = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let k = Key::import(KeyAlgorithm::Signature(SignatureAlgorithm::Ed25519), KeyFormat::Raw, &sk).unwrap();
        let pk = k.public_key().unwrap();
        assert_eq!(pk, unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"));
        let sig = k.sign(b"").unwrap();
        assert_eq!(
            sig,
            unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
        );
        assert_eq!(verify(SignatureAlgorithm::Ed25519, &pk, b"", &sig), Ok(()));
        assert_eq!(verify(SignatureAlgorithm::Ed25519, &pk, b"x", &sig), Err(CryptoError::VerificationFailed));
    }

    #[test]
    fn ecdsa_p256_known_answer() {
        // RFC 6979 appendix A.2.5: P-256, SHA-256, message "sample".
        let x = unhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721");
        let k = Key::import(KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP256Sha256), KeyFormat::Raw, &x).unwrap();
        let pk = k.public_key().unwrap();
        let mut expected_pk = vec![0x04];
        expected_pk.extend(unhex("60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"));
        expected_pk.extend(unhex("7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299"));
        assert_eq!(pk, expected_pk);
        let der = k.sign(b"sample").unwrap();
        let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
        assert_eq!(
            sig.to_bytes().to_vec(),
            unhex("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716 f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8")
        );
        assert_eq!(verify(SignatureAlgorithm::EcdsaP256Sha256, &pk, b"sample", &der), Ok(()));
        assert_eq!(verify(SignatureAlgorithm::EcdsaP256Sha256, &pk, b"samplf", &der), Err(CryptoError::VerificationFailed));
        assert!(matches!(verify(SignatureAlgorithm::EcdsaP256Sha256, &pk, b"sample", &der[..10]), Err(CryptoError::InvalidArgument(_))));
    }

    #[test]
    fn signatures_roundtrip_for_generated_keys() {
        for algorithm in [SignatureAlgorithm::Ed25519, SignatureAlgorithm::EcdsaP256Sha256, SignatureAlgorithm::EcdsaP384Sha384] {
            let k = Key::generate(KeyAlgorithm::Signature(algorithm), &mut rng());
            let pk = k.public_key().unwrap();
            let sig = k.sign(b"message").unwrap();
            assert_eq!(verify(algorithm, &pk, b"message", &sig), Ok(()), "{algorithm:?}");
            assert_eq!(verify(algorithm, &pk, b"massage", &sig), Err(CryptoError::VerificationFailed), "{algorithm:?}");
            let other = Key::generate(KeyAlgorithm::Signature(algorithm), &mut ChaCha20Rng::from_seed([7; 32]));
            assert_eq!(verify(algorithm, &other.public_key().unwrap(), b"message", &sig), Err(CryptoError::VerificationFailed));
        }
        let p384 = Key::generate(KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP384Sha384), &mut rng());
        assert_eq!(p384.public_key().unwrap().len(), 97, "SEC1 uncompressed P-384");
    }

    #[test]
    fn pkcs8_import() {
        // An Ed25519 PKCS#8 v1 key (RFC 8410 §10.3 layout) wrapping the RFC 8032 TEST 1 seed.
        let der = unhex("302e020100300506032b657004220420 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let k = Key::import(KeyAlgorithm::Signature(SignatureAlgorithm::Ed25519), KeyFormat::Pkcs8Der, &der).unwrap();
        assert_eq!(k.public_key().unwrap(), unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"));
        assert!(Key::import(KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP256Sha256), KeyFormat::Pkcs8Der, &der).is_err());
        assert!(Key::import(KeyAlgorithm::Signature(SignatureAlgorithm::Ed25519), KeyFormat::Pkcs8Pem, b"\xff").is_err());
    }

    #[test]
    fn hpke_roundtrip_and_tampering() {
        for suite in [HpkeSuite::X25519Sha256Aes128Gcm, HpkeSuite::X25519Sha256ChaCha20Poly1305] {
            let recipient = Key::generate(KeyAlgorithm::Hpke(suite), &mut rng());
            let pk = recipient.public_key().unwrap();
            assert_eq!(pk.len(), 32);
            let (enc, ct) = hpke_seal(suite, &pk, b"info", b"aad", b"hello", &mut ChaCha20Rng::from_seed([9; 32])).unwrap();
            assert_eq!(recipient.hpke_open(b"info", b"aad", &enc, &ct).unwrap(), b"hello");
            assert_eq!(recipient.hpke_open(b"inf0", b"aad", &enc, &ct), Err(CryptoError::VerificationFailed));
            let mut bad = ct.clone();
            bad[0] ^= 1;
            assert_eq!(recipient.hpke_open(b"info", b"aad", &enc, &bad), Err(CryptoError::VerificationFailed));
            let stranger = Key::generate(KeyAlgorithm::Hpke(suite), &mut ChaCha20Rng::from_seed([3; 32]));
            assert_eq!(stranger.hpke_open(b"info", b"aad", &enc, &ct), Err(CryptoError::VerificationFailed));
            assert!(hpke_seal(suite, &pk[..31], b"", b"", b"", &mut rng()).is_err());
        }
    }

    #[test]
    fn debug_never_shows_key_material() {
        let k = Key::import(KeyAlgorithm::Aead(AeadAlgorithm::Aes256Gcm), KeyFormat::Raw, &[0x5a; 32]).unwrap();
        let shown = format!("{k:?}");
        assert!(shown.contains("Aes256Gcm"));
        assert!(!shown.contains("5a") && !shown.contains("90"), "{shown}");
    }
}
