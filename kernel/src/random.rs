//! The kernel's random numbers: a ChaCha20 DRBG (`halcyon_hal::random`) seeded and
//! reseeded from RDSEED/RDRAND. Without a hardware source there are no random numbers:
//! callers get an error, never predictable bytes.

use crate::arch::entropy::{self, Instruction};
use halcyon_hal::random::{health_check, Drbg, EntropyError, EntropySource, STARTUP_SAMPLES};
use spin::Mutex;

struct CpuEntropy {
    instruction: Instruction,
}

impl EntropySource for CpuEntropy {
    fn seed(&mut self, out: &mut [u8; 32]) -> Result<(), EntropyError> {
        for chunk in out.as_chunks_mut::<8>().0 {
            let sample = entropy::sample(self.instruction).ok_or(EntropyError::Unavailable)?;
            chunk.copy_from_slice(&sample.to_le_bytes());
        }
        Ok(())
    }
}

static DRBG: Mutex<Option<Drbg<CpuEntropy>>> = Mutex::new(None);

/// Health-tests the CPU's entropy source and seeds the DRBG from it.
pub fn init() -> Result<Instruction, EntropyError> {
    let instruction = entropy::available().ok_or(EntropyError::Unavailable)?;
    // SP 800-90B §4.3 asks for at least 1024 startup samples (about 1 ms of RDRAND).
    let mut samples = [0u64; STARTUP_SAMPLES];
    for sample in samples.iter_mut() {
        *sample = entropy::sample(instruction).ok_or(EntropyError::Unavailable)?;
    }
    health_check(&samples)?;
    let drbg = Drbg::new(CpuEntropy { instruction })?;
    *DRBG.lock() = Some(drbg);
    Ok(instruction)
}

/// Whether the DRBG is seeded (a hardware entropy source passed its health test).
pub fn available() -> bool {
    DRBG.lock().is_some()
}

/// Fills `out` with cryptographically secure random bytes.
pub fn fill(out: &mut [u8]) -> Result<(), EntropyError> {
    DRBG.lock().as_mut().ok_or(EntropyError::Unavailable)?.fill(out)
}
