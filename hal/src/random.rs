//! The kernel's deterministic random bit generator, fed by a hardware entropy source.
//!
//! A ChaCha20 keystream generator (`rand_chacha::ChaCha20Rng`) is seeded with 256 bits
//! from the platform's [`EntropySource`] and reseeded from it every [`RESEED_INTERVAL`]
//! bytes. It never produces output it could not seed: with no source, a failed source
//! or a failed health test, [`Drbg::fill`] returns an error.
//!
//! Health tests follow NIST SP 800-90B §4.4: at startup the caller tests a batch of raw
//! 64-bit samples ([`health_check`]), and every seed is checked by the repetition count
//! test (a 64-bit source that repeats a sample, or returns all zeros or all ones, is
//! broken — the classic failure of RDRAND on some AMD parts returned all-ones).

use core::fmt;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// Bytes of output after which the generator reseeds from the entropy source.
pub const RESEED_INTERVAL: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntropyError {
    /// No hardware source, or it stopped delivering.
    Unavailable,
    /// The source's output failed a health test: it is not used.
    HealthCheckFailed,
}

impl fmt::Display for EntropyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntropyError::Unavailable => "no hardware entropy source is available",
            EntropyError::HealthCheckFailed => "the hardware entropy source failed its health test",
        })
    }
}

impl core::error::Error for EntropyError {}

/// Where seeds come from (RDSEED/RDRAND in the kernel; mocks in tests).
pub trait EntropySource {
    /// Fills `out` with full-entropy bytes.
    fn seed(&mut self, out: &mut [u8; 32]) -> Result<(), EntropyError>;
}

/// SP 800-90B §4.4.1 repetition count test for a 64-bit source, plus the stuck-at
/// patterns: no sample may repeat the previous one, or be all zeros or all ones.
/// (With 64-bit samples a genuine repeat has probability 2^-64 per pair.)
pub fn health_check(samples: &[u64]) -> Result<(), EntropyError> {
    if samples.len() < 2 {
        return Err(EntropyError::HealthCheckFailed);
    }
    let stuck = samples.iter().any(|&s| s == 0 || s == u64::MAX);
    let repeats = samples.windows(2).any(|w| w[0] == w[1]);
    if stuck || repeats {
        return Err(EntropyError::HealthCheckFailed);
    }
    Ok(())
}

fn checked_seed(source: &mut impl EntropySource) -> Result<[u8; 32], EntropyError> {
    let mut seed = [0u8; 32];
    source.seed(&mut seed)?;
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(seed.chunks_exact(8)) {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(chunk);
        *word = u64::from_le_bytes(raw);
    }
    health_check(&words)?;
    Ok(seed)
}

/// ChaCha20 DRBG with periodic reseeding from `S`.
pub struct Drbg<S: EntropySource> {
    source: S,
    rng: ChaCha20Rng,
    since_reseed: u64,
    reseeds: u64,
}

impl<S: EntropySource> Drbg<S> {
    /// Seeds a generator; fails if the source cannot deliver a healthy seed.
    pub fn new(mut source: S) -> Result<Self, EntropyError> {
        let seed = checked_seed(&mut source)?;
        Ok(Self { source, rng: ChaCha20Rng::from_seed(seed), since_reseed: 0, reseeds: 0 })
    }

    /// Replaces the generator's state with a fresh seed from the source.
    pub fn reseed(&mut self) -> Result<(), EntropyError> {
        let seed = checked_seed(&mut self.source)?;
        self.rng = ChaCha20Rng::from_seed(seed);
        self.since_reseed = 0;
        self.reseeds += 1;
        Ok(())
    }

    /// How many times the generator has reseeded since it was created.
    pub fn reseeds(&self) -> u64 {
        self.reseeds
    }

    /// Fills `out` with random bytes, reseeding first when the interval is used up.
    /// If reseeding fails, nothing is written and the error is returned.
    pub fn fill(&mut self, out: &mut [u8]) -> Result<(), EntropyError> {
        for chunk in out.chunks_mut(RESEED_INTERVAL as usize) {
            if self.since_reseed + chunk.len() as u64 > RESEED_INTERVAL {
                self.reseed()?;
            }
            self.rng.fill_bytes(chunk);
            self.since_reseed += chunk.len() as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that counts up from a seed (distinct, non-stuck samples).
    struct Counter(u64, u32);
    impl EntropySource for Counter {
        fn seed(&mut self, out: &mut [u8; 32]) -> Result<(), EntropyError> {
            self.1 += 1;
            for chunk in out.chunks_exact_mut(8) {
                self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                chunk.copy_from_slice(&self.0.to_le_bytes());
            }
            Ok(())
        }
    }

    struct Stuck(u64);
    impl EntropySource for Stuck {
        fn seed(&mut self, out: &mut [u8; 32]) -> Result<(), EntropyError> {
            for chunk in out.chunks_exact_mut(8) {
                chunk.copy_from_slice(&self.0.to_le_bytes());
            }
            Ok(())
        }
    }

    struct Gone;
    impl EntropySource for Gone {
        fn seed(&mut self, _: &mut [u8; 32]) -> Result<(), EntropyError> {
            Err(EntropyError::Unavailable)
        }
    }

    #[test]
    fn chacha20_known_answer() {
        // RFC 8439 appendix A.1, test vector #1: key 0, nonce 0, block counter 0.
        let expected: [u8; 64] = [
            0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90, 0x40, 0x5d, 0x6a, 0xe5, 0x53, 0x86,
            0xbd, 0x28, 0xbd, 0xd2, 0x19, 0xb8, 0xa0, 0x8d, 0xed, 0x1a, 0xa8, 0x36, 0xef, 0xcc,
            0x8b, 0x77, 0x0d, 0xc7, 0xda, 0x41, 0x59, 0x7c, 0x51, 0x57, 0x48, 0x8d, 0x77, 0x24,
            0xe0, 0x3f, 0xb8, 0xd8, 0x4a, 0x37, 0x6a, 0x43, 0xb8, 0xf4, 0x15, 0x18, 0xa1, 0x1c,
            0xc3, 0x87, 0xb6, 0x69, 0xb2, 0xee, 0x65, 0x86,
        ];
        let mut out = [0u8; 64];
        ChaCha20Rng::from_seed([0; 32]).fill_bytes(&mut out);
        assert_eq!(out, expected);
    }

    #[test]
    fn outputs_differ_and_reseed_on_schedule() {
        let mut drbg = Drbg::new(Counter(1, 0)).unwrap();
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        drbg.fill(&mut a).unwrap();
        drbg.fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_eq!(drbg.reseeds(), 0);
        let mut big = vec![0u8; RESEED_INTERVAL as usize + 10];
        // 64 bytes already out: the first full interval and the 10-byte tail each need one.
        drbg.fill(&mut big).unwrap();
        assert_eq!(drbg.reseeds(), 2);
        assert_eq!(drbg.source.1, 3);
    }

    #[test]
    fn broken_sources_are_refused() {
        assert_eq!(Drbg::new(Stuck(0x1234)).err(), Some(EntropyError::HealthCheckFailed));
        assert_eq!(Drbg::new(Stuck(u64::MAX)).err(), Some(EntropyError::HealthCheckFailed));
        assert_eq!(Drbg::new(Gone).err(), Some(EntropyError::Unavailable));
        assert_eq!(health_check(&[5]), Err(EntropyError::HealthCheckFailed));
        assert_eq!(health_check(&[1, 2, 2, 3]), Err(EntropyError::HealthCheckFailed));
        assert_eq!(health_check(&[1, 2, 3, 0]), Err(EntropyError::HealthCheckFailed));
        assert_eq!(health_check(&[1, 2, 3, 4]), Ok(()));
    }
}
