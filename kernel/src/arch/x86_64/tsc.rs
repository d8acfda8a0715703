//! The time-stamp counter and its frequency.
//!
//! The frequency comes from CPUID leaf 15h (crystal clock × ratio) when the CPU reports
//! it completely, otherwise from measuring the TSC against the PIT. Either result is
//! checked against plausible bounds before the kernel trusts it as its clock.

use super::{cpuid, pit};

/// Reads the TSC.
#[inline]
pub fn read() -> u64 {
    // SAFETY: RDTSC has no memory effects; CR4.TSD is clear, so it is allowed at CPL 0.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Where the frequency came from, for the boot log.
#[derive(Clone, Copy, Debug)]
pub enum FrequencySource {
    /// CPUID.15H: crystal frequency × EBX/EAX (Intel SDM vol. 2A, CPUID leaf 15H).
    CpuidLeaf15,
    /// Measured against PIT channel 0 over a few milliseconds.
    Pit,
}

const MIN_PLAUSIBLE_HZ: u64 = 50_000_000;
const MAX_PLAUSIBLE_HZ: u64 = 20_000_000_000;

/// Determines the TSC frequency in Hz.
pub fn frequency() -> Option<(u64, FrequencySource)> {
    if let Some(hz) = frequency_from_cpuid().filter(|hz| plausible(*hz)) {
        return Some((hz, FrequencySource::CpuidLeaf15));
    }
    // Two short measurements that must agree guard against a preempted vCPU skewing one.
    let first = measure_against_pit()?;
    let second = measure_against_pit()?;
    let (low, high) = if first < second { (first, second) } else { (second, first) };
    if high - low > high / 50 {
        // Disagree by more than 2 %: take a longer third measurement.
        return measure_against_pit_for(pit::TICKS_PER_SECOND / 50)
            .filter(|hz| plausible(*hz))
            .map(|hz| (hz, FrequencySource::Pit));
    }
    let hz = low / 2 + high / 2;
    plausible(hz).then_some((hz, FrequencySource::Pit))
}

fn plausible(hz: u64) -> bool {
    (MIN_PLAUSIBLE_HZ..=MAX_PLAUSIBLE_HZ).contains(&hz)
}

fn frequency_from_cpuid() -> Option<u64> {
    if cpuid::max_basic_leaf() < 0x15 {
        return None;
    }
    let leaf = cpuid::cpuid(0x15, 0);
    let (denominator, numerator, crystal_hz) = (leaf.eax, leaf.ebx, leaf.ecx);
    if denominator == 0 || numerator == 0 || crystal_hz == 0 {
        return None;
    }
    Some(u64::from(crystal_hz) * u64::from(numerator) / u64::from(denominator))
}

fn measure_against_pit() -> Option<u64> {
    // 1 ms per sample keeps boot fast (1193 PIT ticks: 0.1 % resolution); the two
    // samples are cross-checked above and a longer one is taken if they disagree.
    measure_against_pit_for(pit::TICKS_PER_SECOND / 1000)
}

fn measure_against_pit_for(pit_ticks: u64) -> Option<u64> {
    let mut timer = pit::FreeRunning::start();
    let tsc_start = read();
    let elapsed_ticks = timer.wait_ticks(pit_ticks)?;
    let tsc_end = read();
    let tsc_delta = tsc_end.checked_sub(tsc_start)?;
    let hz = u128::from(tsc_delta) * u128::from(pit::TICKS_PER_SECOND) / u128::from(elapsed_ticks);
    u64::try_from(hz).ok()
}
