//! `elastic:hal/clock`: wall clock, time zone, monotonic clock and stopwatches.

use super::abi::{trap, CallerGuest};
use crate::time;
use crate::wasm::runner::WorkloadCtx;
use halcyon_hal::cabi::{lower_bytes, AbiError, Guest, Writer};
use wasmi::{Caller, Error, Linker};

const MODULE: &str = "elastic:hal/clock@0.1.0";
/// The zone this VM is configured with (no configuration yet: UTC).
const TIMEZONE: &str = "UTC";

/// A `stopwatch` resource: elapsed time while running, accumulated across runs.
pub struct Stopwatch {
    accumulated_ns: u64,
    running_since: Option<u64>,
}

impl Stopwatch {
    fn elapsed(&self) -> u64 {
        let current = self.running_since.map_or(0, |since| time::monotonic_ns().saturating_sub(since));
        self.accumulated_ns.saturating_add(current)
    }
}

/// `now: func() -> result<datetime, clock-error>`; size 24, align 8: discriminant @0;
/// ok: seconds @8, nanoseconds @16; err: clock-error discriminant @8, string @12.
fn now(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    let mut guest = CallerGuest::new(caller)?;
    match time::wall_ns() {
        Some(ns) => {
            let mut out = Writer::aligned(guest.memory(), retptr, 24, 8)?;
            out.u8(0, 0)?;
            out.u64(8, ns / 1_000_000_000)?;
            out.u32(16, (ns % 1_000_000_000) as u32)
        }
        None => {
            let why = lower_bytes(&mut guest, b"no readable real-time clock")?;
            let mut out = Writer::aligned(guest.memory(), retptr, 24, 8)?;
            out.u8(0, 1)?;
            out.u8(8, 0)?; // clock-error::unavailable
            out.list(12, why)
        }
    }
}

/// `timezone: func() -> timezone-info`; size 12, align 4: name @0, utc-offset @8.
fn timezone(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    let mut guest = CallerGuest::new(caller)?;
    let name = lower_bytes(&mut guest, TIMEZONE.as_bytes())?;
    let mut out = Writer::aligned(guest.memory(), retptr, 12, 4)?;
    out.list(0, name)?;
    out.u32(8, 0)
}

fn with_stopwatch<T>(caller: &mut Caller<'_, WorkloadCtx>, handle: u32, f: impl FnOnce(&mut Stopwatch) -> T) -> Result<T, AbiError> {
    caller.data_mut().hal.stopwatches.get_mut(handle).map(f)
}

pub fn add_to_linker(linker: &mut Linker<WorkloadCtx>) -> Result<(), wasmi::errors::LinkerError> {
    type C<'a> = Caller<'a, WorkloadCtx>;
    linker.func_wrap(MODULE, "now", |mut c: C, ret: u32| -> Result<(), Error> {
        now(&mut c, ret).map_err(|e| trap("clock.now", e))
    })?;
    // The TSC-derived clocks count in whole nanoseconds.
    linker.func_wrap(MODULE, "resolution", || -> u64 { 1 })?;
    linker.func_wrap(MODULE, "timezone", |mut c: C, ret: u32| -> Result<(), Error> {
        timezone(&mut c, ret).map_err(|e| trap("clock.timezone", e))
    })?;
    linker.func_wrap(MODULE, "monotonic-now", || -> u64 { time::monotonic_ns() })?;
    linker.func_wrap(MODULE, "[constructor]stopwatch", |mut c: C| -> Result<u32, Error> {
        let watch = Stopwatch { accumulated_ns: 0, running_since: None };
        c.data_mut().hal.stopwatches.insert(watch).map_err(|e| trap("clock.stopwatch", e))
    })?;
    linker.func_wrap(MODULE, "[method]stopwatch.start", |mut c: C, h: u32| -> Result<(), Error> {
        with_stopwatch(&mut c, h, |w| {
            if w.running_since.is_none() {
                w.running_since = Some(time::monotonic_ns());
            }
        })
        .map_err(|e| trap("clock.stopwatch.start", e))
    })?;
    linker.func_wrap(MODULE, "[method]stopwatch.stop", |mut c: C, h: u32| -> Result<(), Error> {
        with_stopwatch(&mut c, h, |w| {
            w.accumulated_ns = w.elapsed();
            w.running_since = None;
        })
        .map_err(|e| trap("clock.stopwatch.stop", e))
    })?;
    linker.func_wrap(MODULE, "[method]stopwatch.elapsed", |mut c: C, h: u32| -> Result<u64, Error> {
        with_stopwatch(&mut c, h, |w| w.elapsed()).map_err(|e| trap("clock.stopwatch.elapsed", e))
    })?;
    linker.func_wrap(MODULE, "[method]stopwatch.is-running", |mut c: C, h: u32| -> Result<i32, Error> {
        with_stopwatch(&mut c, h, |w| i32::from(w.running_since.is_some())).map_err(|e| trap("clock.stopwatch.is-running", e))
    })?;
    linker.func_wrap(MODULE, "[method]stopwatch.reset", |mut c: C, h: u32| -> Result<(), Error> {
        with_stopwatch(&mut c, h, |w| {
            w.accumulated_ns = 0;
            w.running_since = None;
        })
        .map_err(|e| trap("clock.stopwatch.reset", e))
    })?;
    linker.func_wrap(MODULE, "[resource-drop]stopwatch", |mut c: C, h: u32| -> Result<(), Error> {
        c.data_mut().hal.stopwatches.remove(h).map(drop).map_err(|e| trap("clock.stopwatch drop", e))
    })?;
    Ok(())
}
