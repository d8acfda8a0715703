//! PKCS#12 (RFC 7292) key contexts, as OpenSSL 3 writes them: the outer HMAC (SHA-2,
//! PKCS#12 KDF, RFC 7292 Appendix B), `data` and `encryptedData` safe contents, PBES2
//! (PBKDF2 + AES-CBC, RFC 8018 §6.2) for encrypted contents and shrouded key bags.
//! Legacy algorithms (SHA-1 MAC, RC2, 3DES) are refused.

use super::certs::KeyContext;
use super::provider::PrivateKey;
use super::TlsError;
use alloc::sync::Arc;
use alloc::vec::Vec;
use der::asn1::{AnyRef, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Tagged};
use pkcs12::kdf::{derive_key_utf8, Pkcs12KeyType};
use pkcs12::safe_bag::SafeContents;
use pkcs12::{CertBag, Pfx, SafeBag};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

/// RFC 5652 §4: id-data; §8: id-encryptedData.
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
/// RFC 7292 §4.2: keyBag, pkcs8ShroudedKeyBag, certBag; Appendix D: x509Certificate.
const KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.1");
const SHROUDED_KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
const X509_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
/// RFC 5754 §2: SHA-256, SHA-384, SHA-512.
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Most KDF iterations accepted (OpenSSL writes 2048; a hostile file could ask for 2^31
/// and hold the kernel for minutes).
const MAX_ITERATIONS: u32 = 1_000_000;
/// Most bags in one file.
const MAX_BAGS: usize = 64;

fn bad(what: &str) -> TlsError {
    TlsError::BadKeyMaterial(alloc::format!("PKCS#12: {what}"))
}

fn der_err(what: &'static str) -> impl Fn(der::Error) -> TlsError {
    move |e| TlsError::BadKeyMaterial(alloc::format!("PKCS#12 {what}: {e}"))
}

/// Checks the outer MAC (RFC 7292 §5.1 step 4, Appendix B.4 key derivation).
fn verify_mac(pfx: &Pfx, auth_safe: &[u8], password: &str) -> Result<(), TlsError> {
    use hmac::{KeyInit, Mac};
    let mac = pfx.mac_data.as_ref().ok_or_else(|| bad("no MAC (integrity-unprotected files are refused)"))?;
    let iterations = u32::try_from(mac.iterations).map_err(|_| bad("bad MAC iteration count"))?;
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(bad("MAC iteration count out of range"));
    }
    let salt = mac.mac_salt.as_bytes();
    let digest = mac.mac.digest.as_bytes();
    macro_rules! check {
        ($hash:ty, $len:expr) => {{
            let key = Zeroizing::new(derive_key_utf8::<$hash>(password, salt, Pkcs12KeyType::Mac, mac.iterations, $len).map_err(der_err("password"))?);
            let mut hmac = <hmac::Hmac<$hash>>::new_from_slice(&key).map_err(|_| bad("MAC key"))?;
            hmac.update(auth_safe);
            hmac.verify_slice(digest).is_ok()
        }};
    }
    let ok = match mac.mac.algorithm.oid {
        SHA256 => check!(sha2::Sha256, 32),
        SHA384 => check!(sha2::Sha384, 48),
        SHA512 => check!(sha2::Sha512, 64),
        _ => return Err(bad("unsupported MAC digest (SHA-256/384/512 expected; legacy SHA-1 files are refused)")),
    };
    if ok { Ok(()) } else { Err(bad("wrong password or corrupted file (MAC mismatch)")) }
}

/// Decrypts PBES2 content, refusing anything but PBKDF2 with a sane iteration count.
fn decrypt(scheme: &pkcs5::EncryptionScheme, password: &str, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    let params = scheme.pbes2().ok_or_else(|| bad("unsupported encryption (PBES2 expected; legacy PBES1 is refused)"))?;
    match &params.kdf {
        pkcs5::pbes2::Kdf::Pbkdf2(kdf) if (1..=MAX_ITERATIONS).contains(&kdf.iteration_count) => {}
        pkcs5::pbes2::Kdf::Pbkdf2(_) => return Err(bad("PBKDF2 iteration count out of range")),
        _ => return Err(bad("unsupported key derivation (PBKDF2 expected)")),
    }
    scheme.decrypt(password.as_bytes(), ciphertext).map(Zeroizing::new).map_err(|_| bad("wrong password or corrupted encrypted content"))
}

/// A bag's value: the content of its `[0] EXPLICIT` wrapper.
fn bag_value(bag: &SafeBag) -> Result<Vec<u8>, TlsError> {
    let any = AnyRef::from_der(&bag.bag_value).map_err(der_err("bag"))?;
    let tag = any.tag();
    if tag.is_context_specific() && tag.is_constructed() {
        Ok(any.value().to_vec())
    } else {
        Ok(bag.bag_value.clone())
    }
}

/// Collects certificates and the private key from one SafeContents.
fn collect(contents: &[u8], password: &str, certs: &mut Vec<CertificateDer<'static>>, key: &mut Option<PrivateKey>) -> Result<(), TlsError> {
    let bags = SafeContents::from_der(contents).map_err(der_err("safe contents"))?;
    if bags.len() > MAX_BAGS {
        return Err(bad("too many bags"));
    }
    for bag in &bags {
        let value = Zeroizing::new(bag_value(bag)?);
        match bag.bag_id {
            CERT_BAG => {
                let cert = CertBag::from_der(&value).map_err(der_err("certificate bag"))?;
                if cert.cert_id == X509_CERTIFICATE {
                    certs.push(CertificateDer::from(cert.cert_value.as_bytes().to_vec()));
                }
            }
            SHROUDED_KEY_BAG | KEY_BAG => {
                if key.is_some() {
                    return Err(bad("more than one private key"));
                }
                let pkcs8 = if bag.bag_id == KEY_BAG {
                    Zeroizing::new(value.to_vec())
                } else {
                    let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(&value).map_err(der_err("shrouded key bag"))?;
                    decrypt(&info.encryption_algorithm, password, info.encrypted_data.as_bytes())?
                };
                let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.as_slice()));
                *key = Some(PrivateKey::from_der(&der).ok_or_else(|| bad("unsupported private key (P-256, P-384 or Ed25519 expected)"))?);
            }
            _ => {} // CRL, secret and nested bags carry nothing a TLS key context needs.
        }
    }
    Ok(())
}

/// Loads a PKCS#12 file: MAC checked, contents decrypted, the certificate matching the
/// key first, the other certificates after it in file order.
pub fn key_context(der: &[u8], password: &str) -> Result<KeyContext, TlsError> {
    let pfx = Pfx::from_der(der).map_err(der_err("PFX"))?;
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(bad("public-key integrity mode is not supported (password mode expected)"));
    }
    let auth_safe = pfx.auth_safe.content.decode_as::<OctetString>().map_err(der_err("authSafe"))?;
    verify_mac(&pfx, auth_safe.as_bytes(), password)?;
    let infos = Vec::<pkcs12::cms::content_info::ContentInfo>::from_der(auth_safe.as_bytes()).map_err(der_err("AuthenticatedSafe"))?;
    let mut certs = Vec::new();
    let mut key = None;
    for info in infos.iter().take(MAX_BAGS) {
        match info.content_type {
            ID_DATA => {
                let contents = info.content.decode_as::<OctetString>().map_err(der_err("data"))?;
                collect(contents.as_bytes(), password, &mut certs, &mut key)?;
            }
            ID_ENCRYPTED_DATA => {
                let data = info.content.decode_as::<pkcs12::cms::encrypted_data::EncryptedData>().map_err(der_err("encryptedData"))?;
                let content = &data.enc_content_info;
                let scheme = pkcs5::EncryptionScheme::from_der(&content.content_enc_alg.to_der().map_err(der_err("algorithm"))?)
                    .map_err(der_err("encryption algorithm"))?;
                let ciphertext = content.encrypted_content.as_ref().ok_or_else(|| bad("encryptedData without content"))?;
                let plain = decrypt(&scheme, password, ciphertext.as_bytes())?;
                collect(&plain, password, &mut certs, &mut key)?;
            }
            _ => return Err(bad("unsupported content type (enveloped data?)")),
        }
    }
    let key = key.ok_or_else(|| bad("no private key"))?;
    let spki = key.public_key_der().ok_or_else(|| bad("public key encoding"))?;
    let leaf = certs
        .iter()
        .position(|c| {
            x509_cert::Certificate::from_der(c.as_ref())
                .ok()
                .and_then(|c| c.tbs_certificate().subject_public_key_info().to_der().ok())
                .is_some_and(|d| d == spki)
        })
        .ok_or_else(|| bad("no certificate for the private key"))?;
    let leaf = certs.remove(leaf);
    certs.insert(0, leaf);
    Ok(KeyContext { chain: certs, key: Arc::new(key) })
}
