//! Key contexts: certificate chains and private keys from PEM, and self-signed
//! certificates (RFC 5280) for keys generated in the kernel.

use super::provider::PrivateKey;
use super::TlsError;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::str::FromStr;
use core::time::Duration;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::der::asn1::{Ia5String, UtcTime};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfo, SubjectPublicKeyInfoRef};
use x509_cert::time::{Time, Validity};

/// Most certificates one chain or trust list may hold.
pub const MAX_CERTIFICATES: usize = 64;
/// Validity of a generated certificate: ten years from issuance.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A certificate chain (leaf first) and its private key, which never leaves the kernel.
pub struct KeyContext {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKey>,
}

/// Every certificate of a PEM text (`CERTIFICATE` blocks), at least one.
pub fn certificates_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let mut out = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| TlsError::BadKeyMaterial(alloc::format!("certificate PEM: {e:?}")))?;
        if out.len() == MAX_CERTIFICATES {
            return Err(TlsError::BadKeyMaterial("too many certificates".into()));
        }
        // Only well-formed X.509 is accepted, so errors surface here, not mid-handshake.
        x509_cert::Certificate::from_der(cert.as_ref()).map_err(|e| TlsError::BadKeyMaterial(alloc::format!("certificate DER: {e}")))?;
        out.push(cert);
    }
    if out.is_empty() {
        return Err(TlsError::BadKeyMaterial("no CERTIFICATE block in the PEM text".into()));
    }
    Ok(out)
}

impl KeyContext {
    /// Loads a PEM chain and a PEM private key (PKCS#8 or SEC1: P-256, P-384, Ed25519).
    pub fn from_pem(chain: &str, key: &str) -> Result<Self, TlsError> {
        let chain = certificates_from_pem(chain)?;
        let der = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| TlsError::BadKeyMaterial(alloc::format!("private key PEM: {e:?}")))?;
        Self::with_key(chain, der)
    }

    /// Loads a DER chain (leaf first) and a DER private key (PKCS#8, SEC1; an RSA
    /// PKCS#1 key is recognised and refused by name).
    pub fn from_der(chain: &[&[u8]], key: &[u8]) -> Result<Self, TlsError> {
        if chain.is_empty() {
            return Err(TlsError::BadKeyMaterial("empty certificate chain".into()));
        }
        if chain.len() > MAX_CERTIFICATES {
            return Err(TlsError::BadKeyMaterial("too many certificates".into()));
        }
        let mut certificates = Vec::with_capacity(chain.len());
        for (index, der) in chain.iter().enumerate() {
            x509_cert::Certificate::from_der(der).map_err(|e| TlsError::BadKeyMaterial(alloc::format!("certificate {index} DER: {e}")))?;
            certificates.push(CertificateDer::from(der.to_vec()));
        }
        let der = PrivateKeyDer::try_from(key).map_err(|e| TlsError::BadKeyMaterial(alloc::format!("private key DER: {e}")))?;
        Self::with_key(certificates, der.clone_key())
    }

    /// Pairs a chain with a decoded private key, which the leaf must certify.
    fn with_key(chain: Vec<CertificateDer<'static>>, mut der: PrivateKeyDer<'static>) -> Result<Self, TlsError> {
        let key = PrivateKey::from_der(&der);
        let rsa = key.is_none() && is_rsa(&der);
        // The decoded DER is a copy of the secret: wipe it (the RustCrypto key zeroizes itself).
        zeroize::Zeroize::zeroize(&mut der);
        let key = key.ok_or_else(|| {
            TlsError::BadKeyMaterial(if rsa {
                "RSA private keys are not supported for signing: use P-256, P-384 or Ed25519".into()
            } else {
                "unsupported or malformed private key (P-256, P-384 or Ed25519, PKCS#8 or SEC1)".into()
            })
        })?;
        // The leaf must certify this key.
        let leaf = x509_cert::Certificate::from_der(chain[0].as_ref()).map_err(|e| TlsError::BadKeyMaterial(alloc::format!("{e}")))?;
        let leaf_spki = leaf.tbs_certificate().subject_public_key_info().to_der().map_err(|e| TlsError::BadKeyMaterial(alloc::format!("{e}")))?;
        if key.public_key_der().as_deref() != Some(&leaf_spki[..]) {
            return Err(TlsError::BadKeyMaterial("the private key does not match the leaf certificate".into()));
        }
        Ok(Self { chain, key: Arc::new(key) })
    }

    /// Generates an ECDSA P-256 key from the kernel DRBG and a self-signed certificate
    /// naming `names` (DNS names, or IPv4 addresses) as subject alternative names.
    pub fn generate_self_signed(names: &[String]) -> Result<Self, TlsError> {
        let signing = loop {
            let mut scalar = zeroize::Zeroizing::new([0u8; 32]);
            crate::random::fill(scalar.as_mut()).map_err(|_| TlsError::Unsupported("no entropy source for key generation".into()))?;
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(scalar.as_ref()) {
                break key;
            }
        };
        let key = PrivateKey::P256(signing.clone());
        let spki_der = key.public_key_der().ok_or_else(|| TlsError::BadKeyMaterial("public key encoding".into()))?;
        let spki = SubjectPublicKeyInfo::from_der(&spki_der).map_err(|e| TlsError::BadKeyMaterial(alloc::format!("{e}")))?;

        let mut alt_names = Vec::new();
        for name in names {
            alt_names.push(match core::net::Ipv4Addr::from_str(name) {
                Ok(ip) => GeneralName::IpAddress(x509_cert::der::asn1::OctetString::new(ip.octets().to_vec()).map_err(bad)?),
                Err(_) => GeneralName::DnsName(Ia5String::new(name).map_err(bad)?),
            });
        }
        let common_name = names.first().map(String::as_str).unwrap_or("halcyon workload");
        let subject = Name::from_str(&alloc::format!("CN={common_name}")).map_err(bad)?;

        let now = crate::time::wall_ns().map(Duration::from_nanos).ok_or_else(|| TlsError::Unsupported("no wall clock for the certificate's validity".into()))?;
        // Back-date by an hour for clocks slightly behind ours.
        let not_before = now.saturating_sub(Duration::from_secs(3600));
        let validity = Validity::new(
            Time::UtcTime(UtcTime::from_unix_duration(not_before).map_err(bad)?),
            Time::UtcTime(UtcTime::from_unix_duration(now + SELF_SIGNED_VALIDITY).map_err(bad)?),
        );
        let mut serial = [0u8; 16];
        crate::random::fill(&mut serial).map_err(|_| TlsError::Unsupported("no entropy source".into()))?;
        serial[0] &= 0x7f; // positive (RFC 5280 §4.1.2.2)
        let serial = SerialNumber::new(&serial).map_err(bad)?;

        let mut builder = CertificateBuilder::new(SelfSigned(subject), serial, validity, spki).map_err(bad)?;
        if !alt_names.is_empty() {
            builder.add_extension(&SubjectAltName(alt_names)).map_err(bad)?;
        }
        builder.add_extension(&KeyUsage(KeyUsages::DigitalSignature.into())).map_err(bad)?;
        let purposes = alloc::vec![x509_cert::der::oid::db::rfc5280::ID_KP_SERVER_AUTH, x509_cert::der::oid::db::rfc5280::ID_KP_CLIENT_AUTH];
        builder.add_extension(&ExtendedKeyUsage(purposes)).map_err(bad)?;
        let certificate = builder.build::<_, p256::ecdsa::DerSignature>(&signing).map_err(bad)?;
        let der = certificate.to_der().map_err(bad)?;
        Ok(Self { chain: alloc::vec![CertificateDer::from(der)], key: Arc::new(key) })
    }

    /// The leaf certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        pem("CERTIFICATE", self.chain[0].as_ref())
    }
}

/// Whether a key we cannot use is an RSA key (to say so rather than "malformed"): its
/// ASN.1 shape only (RFC 8017 §A.1.2, RFC 5208 §5), no RSA arithmetic.
fn is_rsa(der: &PrivateKeyDer<'_>) -> bool {
    match der {
        PrivateKeyDer::Pkcs1(key) => rsa::pkcs1::RsaPrivateKeyRef::from_der(key.secret_pkcs1_der()).is_ok(),
        PrivateKeyDer::Pkcs8(key) => {
            pkcs8::PrivateKeyInfoRef::from_der(key.secret_pkcs8_der()).is_ok_and(|info| info.algorithm.oid == rsa::pkcs1::ALGORITHM_OID)
        }
        _ => false,
    }
}

fn bad(e: impl core::fmt::Display) -> TlsError {
    TlsError::BadKeyMaterial(e.to_string())
}

/// RFC 7468 §2 textual encoding: base64 lines of 64 characters.
pub fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8) | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = alloc::format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(core::str::from_utf8(line).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(&alloc::format!("-----END {label}-----\n"));
    out
}

/// A self-issued end-entity certificate: issuer = subject, no basic constraints (not a CA).
struct SelfSigned(Name);

impl BuilderProfile for SelfSigned {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }
    fn get_subject(&self) -> Name {
        self.0.clone()
    }
    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<x509_cert::ext::Extension>> {
        Ok(Vec::new())
    }
}
