//! Kernel time: a monotonic clock from the calibrated TSC and the wall clock from the
//! CMOS RTC read once at boot.

use crate::arch::{rtc, tsc};
use core::sync::atomic::{AtomicU64, Ordering};

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// TSC value at kernel entry.
static ENTRY_TSC: AtomicU64 = AtomicU64::new(0);
/// Unix time in ns at TSC = 0 (0 when the RTC could not be read).
static WALL_AT_TSC_ZERO_NS: AtomicU64 = AtomicU64::new(0);

const NS_PER_SEC: u128 = 1_000_000_000;

fn tsc_to_ns(ticks: u64) -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed);
    if hz == 0 {
        return 0;
    }
    (u128::from(ticks) * NS_PER_SEC / u128::from(hz)) as u64
}

/// Records the TSC at kernel entry; the very first thing `halcyon_main` does.
pub fn mark_entry() {
    ENTRY_TSC.store(tsc::read(), Ordering::Relaxed);
}

/// Calibrates the TSC and reads the RTC. Returns a line for the boot log.
pub fn init() -> Result<(), &'static str> {
    let (hz, source) = tsc::frequency().ok_or("cannot determine the TSC frequency")?;
    TSC_HZ.store(hz, Ordering::Relaxed);
    crate::kprintln!("time: TSC {}.{:03} MHz ({:?})", hz / 1_000_000, hz / 1000 % 1000, source);
    match rtc::read_time().and_then(|registers| registers.to_datetime().ok()) {
        Some(now) => {
            let wall_ns = now.to_unix_seconds().saturating_mul(1_000_000_000);
            WALL_AT_TSC_ZERO_NS.store(wall_ns.saturating_sub(tsc_to_ns(tsc::read())), Ordering::Relaxed);
            crate::kprintln!("time: RTC says {now}");
        }
        None => crate::kprintln!("time: no usable RTC; wall clock unavailable"),
    }
    Ok(())
}

/// Nanoseconds `ticks` TSC ticks take; 0 before calibration.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    tsc_to_ns(ticks)
}

/// Nanoseconds since the CPU's TSC started counting (VM reset); 0 before calibration.
pub fn since_reset_ns() -> u64 {
    tsc_to_ns(tsc::read())
}

/// Nanoseconds from VM reset to kernel entry.
pub fn entry_ns() -> u64 {
    tsc_to_ns(ENTRY_TSC.load(Ordering::Relaxed))
}

/// The monotonic clock workloads see: nanoseconds since kernel entry.
pub fn monotonic_ns() -> u64 {
    tsc_to_ns(tsc::read().saturating_sub(ENTRY_TSC.load(Ordering::Relaxed)))
}

/// Unix time in nanoseconds, if the RTC was readable.
pub fn wall_ns() -> Option<u64> {
    let base = WALL_AT_TSC_ZERO_NS.load(Ordering::Relaxed);
    (base != 0).then(|| base.saturating_add(since_reset_ns()))
}

/// Waits until the monotonic clock reaches `deadline_ns`; other workloads run meanwhile
/// (there is no timer interrupt yet, so the CPU never idles).
pub fn wait_until(deadline_ns: u64) {
    while monotonic_ns() < deadline_ns {
        crate::sched::yield_now();
    }
}
