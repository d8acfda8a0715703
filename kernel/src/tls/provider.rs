//! The rustls crypto provider (`halcyon_hal::tls::provider`, host-tested there) bound to
//! the kernel DRBG.

pub use halcyon_hal::tls::provider::{bulk_cipher, signing_key, PrivateKey};
use halcyon_hal::tls::provider::TlsCrypto;
use rustls::crypto::{CryptoProvider, GetRandomFailed, SecureRandom};

/// Kernel DRBG bytes; `GetRandomFailed` without an entropy source.
#[derive(Debug)]
struct KernelRandom;

impl SecureRandom for KernelRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        crate::random::fill(buf).map_err(|_| GetRandomFailed)
    }
}

static CRYPTO: TlsCrypto = TlsCrypto::new(&KernelRandom);

/// Every suite, group and algorithm of the provider, randomness from the kernel DRBG.
pub fn provider() -> CryptoProvider {
    CRYPTO.provider()
}
