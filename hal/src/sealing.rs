//! Sealed blobs: data encrypted and authenticated under a platform sealing key, so only
//! the same platform state (and, if bound so, the same workload) can open them.
//!
//! Layout: `version:u8 (1) ++ binding:u8 ++ nonce[12] ++ ChaCha20-Poly1305(ciphertext ++ tag)`,
//! with the version and binding bytes as associated data: a blob cannot be replayed
//! under another binding or format version, and any change to it fails authentication.

use crate::crypto::{AeadAlgorithm, CryptoError, Key, KeyAlgorithm, KeyFormat, AEAD_NONCE_LEN, AEAD_TAG_LEN};
use crate::platform::SealBinding;
use alloc::vec::Vec;

pub const SEALED_VERSION: u8 = 1;
const HEADER_LEN: usize = 2 + AEAD_NONCE_LEN;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// Not a sealed blob of this version and binding, truncated, tampered with, or sealed
    /// under another key.
    IntegrityFailure,
}

fn binding_byte(binding: SealBinding) -> u8 {
    match binding {
        SealBinding::LaunchMeasurement => 0,
        SealBinding::Workload => 1,
    }
}

fn aead(key: &[u8; 32]) -> Key {
    // A 32-byte key is always a valid ChaCha20-Poly1305 key.
    Key::import(KeyAlgorithm::Aead(AeadAlgorithm::ChaCha20Poly1305), KeyFormat::Raw, key).expect("32-byte AEAD key")
}

/// Seals `plaintext` with a fresh `nonce` (which must never repeat under one key: draw
/// it from the DRBG).
pub fn seal(key: &[u8; 32], binding: SealBinding, nonce: [u8; AEAD_NONCE_LEN], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let header = [SEALED_VERSION, binding_byte(binding)];
    let body = aead(key).aead_encrypt(&nonce, &header, plaintext)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens a blob from [`seal`].
pub fn unseal(key: &[u8; 32], binding: SealBinding, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < HEADER_LEN + AEAD_TAG_LEN || sealed[0] != SEALED_VERSION || sealed[1] != binding_byte(binding) {
        return Err(SealError::IntegrityFailure);
    }
    let (header, rest) = sealed.split_at(2);
    let (nonce, body) = rest.split_at(AEAD_NONCE_LEN);
    aead(key).aead_decrypt(nonce, header, body).map_err(|_| SealError::IntegrityFailure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_every_tampering_fails() {
        let key = [3u8; 32];
        let sealed = seal(&key, SealBinding::Workload, [9; 12], b"model weights").unwrap();
        assert_eq!(unseal(&key, SealBinding::Workload, &sealed).unwrap(), b"model weights");
        assert_eq!(unseal(&key, SealBinding::LaunchMeasurement, &sealed), Err(SealError::IntegrityFailure));
        assert_eq!(unseal(&[4; 32], SealBinding::Workload, &sealed), Err(SealError::IntegrityFailure));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            assert_eq!(unseal(&key, SealBinding::Workload, &bad), Err(SealError::IntegrityFailure), "byte {i}");
        }
        for len in 0..sealed.len() {
            assert_eq!(unseal(&key, SealBinding::Workload, &sealed[..len]), Err(SealError::IntegrityFailure));
        }
    }
}
