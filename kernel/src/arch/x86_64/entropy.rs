//! The CPU's hardware random number instructions.
//!
//! RDSEED returns conditioned entropy meant for seeding (Intel DRNG guide §5.3); RDRAND
//! returns DRBG output reseeded by the same source. Both may transiently fail (CF = 0);
//! Intel's guidance is to retry RDRAND up to 10 times, and RDSEED more patiently.

use super::cpuid;

const RDRAND_RETRIES: u32 = 10;
const RDSEED_RETRIES: u32 = 128;

/// Which instruction backs the kernel's entropy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instruction {
    Rdseed,
    Rdrand,
}

/// The best instruction this CPU offers, if any.
pub fn available() -> Option<Instruction> {
    if cpuid::has_rdseed() {
        Some(Instruction::Rdseed)
    } else if cpuid::has_rdrand() {
        Some(Instruction::Rdrand)
    } else {
        None
    }
}

/// One 64-bit sample, or `None` after the retries ran out.
pub fn sample(instruction: Instruction) -> Option<u64> {
    match instruction {
        Instruction::Rdseed => {
            for _ in 0..RDSEED_RETRIES {
                // SAFETY: `available()` saw CPUID report RDSEED before this was chosen.
                if let Some(v) = unsafe { rdseed64() } {
                    return Some(v);
                }
                core::hint::spin_loop();
            }
            None
        }
        Instruction::Rdrand => {
            for _ in 0..RDRAND_RETRIES {
                // SAFETY: `available()` saw CPUID report RDRAND before this was chosen.
                if let Some(v) = unsafe { rdrand64() } {
                    return Some(v);
                }
            }
            None
        }
    }
}

/// # Safety
/// The CPU must support RDSEED (CPUID.07H:EBX[18]).
#[target_feature(enable = "rdseed")]
unsafe fn rdseed64() -> Option<u64> {
    let mut value = 0u64;
    let ok = core::arch::x86_64::_rdseed64_step(&mut value);
    (ok == 1).then_some(value)
}

/// # Safety
/// The CPU must support RDRAND (CPUID.01H:ECX[30]).
#[target_feature(enable = "rdrand")]
unsafe fn rdrand64() -> Option<u64> {
    let mut value = 0u64;
    let ok = core::arch::x86_64::_rdrand64_step(&mut value);
    (ok == 1).then_some(value)
}
