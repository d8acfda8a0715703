//! The kernel's deterministic random bit generator, fed by a hardware entropy source.
//!
//! A ChaCha20 keystream generator (`rand_chacha::ChaCha20Rng`, RFC 8439 block function)
//! is seeded with 256 bits from the platform's [`EntropySource`] and reseeded from it
//! every [`RESEED_INTERVAL`] bytes or when asked ([`Drbg::reseed`]). It never produces
//! output it could not seed: a [`Drbg`] only exists once a healthy seed went in, and
//! after the source fails [`Drbg::fill`] returns an error (and zeroes its buffer)
//! until a healthy reseed succeeds — or for good, if the source failed a health test.
//!
//! # Health tests (NIST SP 800-90B §4.3–§4.4)
//!
//! Samples are the source's raw 64-bit outputs (RDSEED/RDRAND words). The tests assume a
//! conservative min-entropy of H = [`ASSUMED_MIN_ENTROPY_BITS`] bits per sample (Intel
//! claims full entropy for RDSEED; we assume half) and a false-positive rate of
//! α = 2^-20, the value SP 800-90B suggests. Both cutoffs then come out at 2:
//!
//! - **Repetition count test** (§4.4.1): C = 1 + ⌈20 / H⌉ = 2, so a sample equal to
//!   the previous one fails. This is what catches a stuck source.
//! - **Adaptive proportion test** (§4.4.2): non-overlapping windows of W = 512 samples;
//!   the first sample of each window must not recur in it (for a healthy source the
//!   chance is about 511 · 2^-32 < α). This catches a source that cycles through a few
//!   values, e.g. one that hands out the same 32-byte seed every time, which the
//!   repetition count test alone would miss.
//! - **Stuck-at patterns** (not in SP 800-90B): an all-zeros or all-ones sample fails.
//!   Some AMD CPUs' RDRAND reported success while returning all ones; catching that on
//!   the very first sample costs nothing.
//!
//! [`health_check`] runs these over a startup batch (SP 800-90B §4.3 item 9 asks for at
//! least [`STARTUP_SAMPLES`]); every [`Drbg`] also runs them continuously, with state
//! carried across seeds, over every sample it takes from its source.

use core::fmt;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use zeroize::Zeroizing;

/// Bytes of output after which the generator reseeds from the entropy source.
pub const RESEED_INTERVAL: u64 = 1 << 20;

/// Min-entropy per 64-bit sample the health-test cutoffs are derived from.
pub const ASSUMED_MIN_ENTROPY_BITS: u32 = 32;

/// Samples SP 800-90B §4.3 item 9 asks the startup test to cover.
pub const STARTUP_SAMPLES: usize = 1024;

/// Adaptive proportion test window for non-binary sources (SP 800-90B §4.4.2).
pub const APT_WINDOW: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntropyError {
    /// No hardware source, or it stopped delivering (e.g. RDSEED/RDRAND retries ran out).
    /// Transient: the next [`Drbg::fill`] tries to reseed again.
    Unavailable,
    /// The source's output failed a health test. Permanent for a [`Drbg`]: a source that
    /// repeats 64-bit values is broken, not busy.
    HealthCheckFailed,
    /// A startup batch was too short to test (fewer than two samples).
    TooFewSamples,
}

impl fmt::Display for EntropyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntropyError::Unavailable => "no hardware entropy source is available",
            EntropyError::HealthCheckFailed => "the hardware entropy source failed its health test",
            EntropyError::TooFewSamples => "too few entropy samples to health-test",
        })
    }
}

impl core::error::Error for EntropyError {}

/// Where seeds come from (RDSEED, falling back to RDRAND, in the kernel; mocks in tests).
pub trait EntropySource {
    /// Fills `out` with four raw 64-bit samples, each stored little-endian, so the
    /// health tests see the source's own outputs. Retries are the source's business;
    /// return [`EntropyError::Unavailable`] once it gives up.
    fn seed(&mut self, out: &mut [u8; 32]) -> Result<(), EntropyError>;
}

/// The SP 800-90B repetition count and adaptive proportion tests (plus the stuck-at
/// patterns) over a stream of 64-bit samples; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct HealthTests {
    /// The previous sample, for the repetition count test.
    last: Option<u64>,
    /// The first sample of the current adaptive-proportion window.
    window_first: u64,
    /// Samples seen in the current window (0 means a new window starts).
    window_seen: usize,
}

impl HealthTests {
    pub const fn new() -> Self {
        Self { last: None, window_first: 0, window_seen: 0 }
    }

    /// Tests the next sample of the stream.
    pub fn check(&mut self, sample: u64) -> Result<(), EntropyError> {
        let stuck = sample == 0 || sample == u64::MAX;
        let repeated = self.last == Some(sample);
        self.last = Some(sample);
        let recurred = if self.window_seen == 0 {
            self.window_first = sample;
            false
        } else {
            sample == self.window_first
        };
        self.window_seen = (self.window_seen + 1) % APT_WINDOW;
        if stuck || repeated || recurred {
            return Err(EntropyError::HealthCheckFailed);
        }
        Ok(())
    }
}

/// Startup health test: runs [`HealthTests`] over a batch of raw samples taken before
/// the source is used (SP 800-90B §4.3 asks for at least [`STARTUP_SAMPLES`]).
pub fn health_check(samples: &[u64]) -> Result<(), EntropyError> {
    if samples.len() < 2 {
        return Err(EntropyError::TooFewSamples);
    }
    let mut tests = HealthTests::new();
    samples.iter().try_for_each(|&sample| tests.check(sample))
}

/// Takes one seed from `source`, passing each of its samples through `tests`.
fn tested_seed(
    source: &mut impl EntropySource,
    tests: &mut HealthTests,
) -> Result<Zeroizing<[u8; 32]>, EntropyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    source.seed(&mut seed)?;
    for chunk in seed.as_chunks::<8>().0 {
        tests.check(u64::from_le_bytes(*chunk))?;
    }
    Ok(seed)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ready,
    /// The last reseed could not get entropy: no output until one succeeds.
    NeedsReseed,
    /// The source failed a health test: no output, ever.
    Failed,
}

/// ChaCha20 DRBG seeded, and periodically reseeded, from `S`.
///
/// There is no unseeded state: [`Drbg::new`] fails unless the source delivers a seed
/// that passes the health tests, so a `Drbg` that exists was seeded from real entropy.
pub struct Drbg<S: EntropySource> {
    source: S,
    rng: ChaCha20Rng,
    health: HealthTests,
    state: State,
    since_reseed: u64,
    reseeds: u64,
}

impl<S: EntropySource> Drbg<S> {
    /// Seeds a generator; fails if the source cannot deliver a healthy seed.
    pub fn new(mut source: S) -> Result<Self, EntropyError> {
        let mut health = HealthTests::new();
        let seed = tested_seed(&mut source, &mut health)?;
        Ok(Self {
            source,
            rng: ChaCha20Rng::from_seed(*seed),
            health,
            state: State::Ready,
            since_reseed: 0,
            reseeds: 0,
        })
    }

    /// Mixes a fresh seed from the source into the generator now (also done
    /// automatically every [`RESEED_INTERVAL`] bytes).
    ///
    /// The new key is the fresh seed XORed with 32 bytes of the old keystream, so the
    /// state never gets weaker than before even if one seed turns out to be poor.
    /// On failure the generator refuses output until a reseed succeeds (or forever,
    /// after [`EntropyError::HealthCheckFailed`]).
    pub fn reseed(&mut self) -> Result<(), EntropyError> {
        if self.state == State::Failed {
            return Err(EntropyError::HealthCheckFailed);
        }
        let mut seed = match tested_seed(&mut self.source, &mut self.health) {
            Ok(seed) => seed,
            Err(error) => {
                self.state =
                    if error == EntropyError::HealthCheckFailed { State::Failed } else { State::NeedsReseed };
                return Err(error);
            }
        };
        let mut carry = Zeroizing::new([0u8; 32]);
        self.rng.fill_bytes(&mut *carry);
        for (s, c) in seed.iter_mut().zip(carry.iter()) {
            *s ^= c;
        }
        self.rng = ChaCha20Rng::from_seed(*seed);
        self.state = State::Ready;
        self.since_reseed = 0;
        self.reseeds += 1;
        Ok(())
    }

    /// How many times the generator has reseeded since it was created.
    pub fn reseeds(&self) -> u64 {
        self.reseeds
    }

    /// Fills `out` with random bytes, reseeding first when the interval is used up.
    /// On error `out` is zeroed (never partly random) and the source's error returned.
    pub fn fill(&mut self, out: &mut [u8]) -> Result<(), EntropyError> {
        let result = self.try_fill(out);
        if result.is_err() {
            out.fill(0);
        }
        result
    }

    fn try_fill(&mut self, out: &mut [u8]) -> Result<(), EntropyError> {
        match self.state {
            State::Ready => {}
            State::NeedsReseed => self.reseed()?,
            State::Failed => return Err(EntropyError::HealthCheckFailed),
        }
        // Chunks no longer than the interval, so one reseed per chunk is always enough.
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

    /// A source of distinct, non-stuck samples (an LCG), counting its calls; it can be
    /// told to be unavailable.
    struct Counter {
        state: u64,
        calls: u32,
        unavailable: bool,
    }

    impl Counter {
        fn new() -> Self {
            Self { state: 1, calls: 0, unavailable: false }
        }
    }

    impl EntropySource for Counter {
        fn seed(&mut self, out: &mut [u8; 32]) -> Result<(), EntropyError> {
            if self.unavailable {
                return Err(EntropyError::Unavailable);
            }
            self.calls += 1;
            for chunk in out.as_chunks_mut::<8>().0 {
                self.state = self.state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                chunk.copy_from_slice(&self.state.to_le_bytes());
            }
            Ok(())
        }
    }

    /// Every sample the same value.
    struct Stuck(u64);
    impl EntropySource for Stuck {
        fn seed(&mut self, out: &mut [u8; 32]) -> Result<(), EntropyError> {
            for chunk in out.as_chunks_mut::<8>().0 {
                chunk.copy_from_slice(&self.0.to_le_bytes());
            }
            Ok(())
        }
    }

    /// Distinct samples within a seed, but the same seed every time.
    struct SameSeed;
    impl EntropySource for SameSeed {
        fn seed(&mut self, out: &mut [u8; 32]) -> Result<(), EntropyError> {
            for (i, chunk) in out.as_chunks_mut::<8>().0.iter_mut().enumerate() {
                chunk.copy_from_slice(&(0x0123_4567_89ab_cdef_u64 + i as u64).to_le_bytes());
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

    fn bytes<const N: usize>(hex: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn chacha20_known_answer_zero_key() {
        // RFC 8439 appendix A.1, test vector #1: key 0, nonce 0, block counter 0.
        let expected: [u8; 64] = bytes(concat!(
            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7",
            "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586",
        ));
        let mut out = [0u8; 64];
        ChaCha20Rng::from_seed([0; 32]).fill_bytes(&mut out);
        assert_eq!(out, expected);
    }

    #[test]
    fn chacha20_known_answer_block_function() {
        // RFC 8439 §2.3.2: key 00..1f, nonce 00000009 0000004a 00000000, counter 1.
        // ChaCha20Rng has a 64-bit counter (state words 12-13) and a 64-bit stream
        // (words 14-15); the RFC's 96-bit nonce fills words 13-15, so its first word is
        // the counter's high half and the rest is the stream.
        let expected: [u8; 64] = bytes(concat!(
            "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e",
            "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e",
        ));
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let mut rng = ChaCha20Rng::from_seed(key);
        rng.set_stream(u64::from(u32::from_le_bytes([0, 0, 0, 0x4a])));
        let block = (u64::from(u32::from_le_bytes([0, 0, 0, 0x09])) << 32) | 1;
        rng.set_word_pos(u128::from(block) * 16);
        let mut out = [0u8; 64];
        rng.fill_bytes(&mut out);
        assert_eq!(out, expected);
    }

    #[test]
    fn drbg_output_is_chacha20_of_the_source_seed() {
        let mut seed = [0u8; 32];
        Counter::new().seed(&mut seed).unwrap();
        let mut expected = [0u8; 48];
        ChaCha20Rng::from_seed(seed).fill_bytes(&mut expected);
        let mut out = [0u8; 48];
        Drbg::new(Counter::new()).unwrap().fill(&mut out).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn outputs_differ_and_reseed_on_schedule() {
        let mut drbg = Drbg::new(Counter::new()).unwrap();
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        drbg.fill(&mut a).unwrap();
        drbg.fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_eq!(drbg.reseeds(), 0);
        // Exactly up to the interval: no reseed yet.
        let mut rest = vec![0u8; RESEED_INTERVAL as usize - 64];
        drbg.fill(&mut rest).unwrap();
        assert_eq!(drbg.reseeds(), 0);
        // One byte past it: reseed.
        drbg.fill(&mut [0u8; 1]).unwrap();
        assert_eq!(drbg.reseeds(), 1);
        // Two intervals and a bit in one call, with one byte of the current interval
        // used: three chunks, each needing a reseed.
        let mut big = vec![0u8; 2 * RESEED_INTERVAL as usize + 10];
        drbg.fill(&mut big).unwrap();
        assert_eq!(drbg.reseeds(), 4);
        assert_eq!(drbg.source.calls, 5);
        assert!(big.iter().any(|&b| b != 0));
    }

    #[test]
    fn reseed_on_request_changes_the_stream() {
        let mut seeded = Drbg::new(Counter::new()).unwrap();
        let mut unchanged = Drbg::new(Counter::new()).unwrap();
        seeded.reseed().unwrap();
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        seeded.fill(&mut a).unwrap();
        unchanged.fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_eq!(seeded.reseeds(), 1);
    }

    #[test]
    fn broken_sources_are_refused() {
        assert_eq!(Drbg::new(Stuck(0x1234)).err(), Some(EntropyError::HealthCheckFailed));
        assert_eq!(Drbg::new(Stuck(0)).err(), Some(EntropyError::HealthCheckFailed));
        assert_eq!(Drbg::new(Stuck(u64::MAX)).err(), Some(EntropyError::HealthCheckFailed));
        assert_eq!(Drbg::new(Gone).err(), Some(EntropyError::Unavailable));
    }

    #[test]
    fn a_source_repeating_its_seed_fails_at_the_next_reseed_for_good() {
        // Each seed alone looks fine; the continuous test spans seeds and catches it.
        let mut drbg = Drbg::new(SameSeed).unwrap();
        assert_eq!(drbg.reseed(), Err(EntropyError::HealthCheckFailed));
        let mut out = [0xaau8; 16];
        assert_eq!(drbg.fill(&mut out), Err(EntropyError::HealthCheckFailed));
        assert_eq!(out, [0; 16], "no output after a health-test failure");
        assert_eq!(drbg.reseed(), Err(EntropyError::HealthCheckFailed), "failure is permanent");
    }

    #[test]
    fn an_unavailable_source_blocks_output_until_it_recovers() {
        let mut drbg = Drbg::new(Counter::new()).unwrap();
        drbg.source.unavailable = true;
        assert_eq!(drbg.reseed(), Err(EntropyError::Unavailable));
        // A requested reseed failed: the old state must not keep serving.
        let mut out = [0xaau8; 16];
        assert_eq!(drbg.fill(&mut out), Err(EntropyError::Unavailable));
        assert_eq!(out, [0; 16]);
        drbg.source.unavailable = false;
        drbg.fill(&mut out).unwrap();
        assert_ne!(out, [0; 16]);
        assert_eq!(drbg.reseeds(), 1);
    }

    #[test]
    fn failing_mid_fill_zeroes_everything() {
        let mut drbg = Drbg::new(Counter::new()).unwrap();
        drbg.source.unavailable = true;
        // The first interval's worth is producible; the rest needs a reseed.
        let mut big = vec![0xaau8; RESEED_INTERVAL as usize + 1];
        assert_eq!(drbg.fill(&mut big), Err(EntropyError::Unavailable));
        assert!(big.iter().all(|&b| b == 0));
    }

    #[test]
    fn startup_health_check() {
        let good: Vec<u64> = (1..=STARTUP_SAMPLES as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
        assert_eq!(health_check(&good), Ok(()));
        assert_eq!(health_check(&[5]), Err(EntropyError::TooFewSamples));
        assert_eq!(health_check(&[]), Err(EntropyError::TooFewSamples));
        // Repetition count test.
        assert_eq!(health_check(&[1, 2, 2, 3]), Err(EntropyError::HealthCheckFailed));
        // Stuck-at patterns.
        assert_eq!(health_check(&[1, 2, 3, 0]), Err(EntropyError::HealthCheckFailed));
        assert_eq!(health_check(&[u64::MAX, 2]), Err(EntropyError::HealthCheckFailed));
        // Adaptive proportion test: a short cycle never repeats back to back.
        assert_eq!(health_check(&[7, 8, 9, 7, 8, 9]), Err(EntropyError::HealthCheckFailed));
        assert_eq!(health_check(&[1, 2, 3, 4]), Ok(()));
    }

    #[test]
    fn adaptive_proportion_windows_do_not_overlap() {
        // The first sample recurring just after its window closed is a new window's
        // reference, not a failure.
        let mut samples: Vec<u64> = (1..=APT_WINDOW as u64).collect();
        samples.push(1);
        assert_eq!(health_check(&samples), Ok(()));
        samples.insert(APT_WINDOW - 1, 1);
        assert_eq!(health_check(&samples), Err(EntropyError::HealthCheckFailed));
    }

    #[test]
    fn errors_display() {
        assert_eq!(EntropyError::Unavailable.to_string(), "no hardware entropy source is available");
        assert!(EntropyError::HealthCheckFailed.to_string().contains("health test"));
    }
}
