//! `elastic:hal/resources`: a workload's memory and CPU (fuel) allocation, and requests
//! for more, granted from the kernel heap's headroom and enforced by the limiter.

use super::abi::{trap, CallerGuest};
use crate::memory::heap;
use crate::wasm::runner::WorkloadCtx;
use halcyon_hal::cabi::{lower_bytes, AbiError, Guest, Writer};
use wasmi::{Caller, Error, Linker};

const MODULE: &str = "elastic:hal/resources@0.1.0";

/// Memory the kernel can still promise: half the free heap, because growing a linear
/// memory briefly needs the old and the new buffer.
fn grantable() -> u64 {
    heap::free_bytes() as u64 / 2
}

/// `current: func() -> allocation`; size 40, align 8: memory-limit @0, memory-used @8,
/// option<u64> fuel-remaining @16/@24, memory-available @32.
fn current(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    let fuel = caller.get_fuel().ok();
    let limit = caller.data().limits.memory_limit as u64;
    let mut guest = CallerGuest::new(caller)?;
    let used = guest.memory().len() as u64;
    let mut out = Writer::aligned(guest.memory(), retptr, 40, 8)?;
    out.u64(0, limit)?;
    out.u64(8, used)?;
    out.u8(16, u8::from(fuel.is_some()))?;
    out.u64(24, fuel.unwrap_or(0))?;
    out.u64(32, grantable())
}

/// Writes `result<u64, resource-error>` (size 24, align 8): discriminant @0, ok @8;
/// resource-error discriminant @8 (0 refused, 1 unsupported), its string @12.
fn write_result(guest: &mut CallerGuest<'_, '_>, retptr: u32, result: Result<u64, (u8, &str)>) -> Result<(), AbiError> {
    match result {
        Ok(value) => {
            let mut out = Writer::aligned(guest.memory(), retptr, 24, 8)?;
            out.u8(0, 0)?;
            out.u64(8, value)
        }
        Err((case, why)) => {
            let why = lower_bytes(guest, why.as_bytes())?;
            let mut out = Writer::aligned(guest.memory(), retptr, 24, 8)?;
            out.u8(0, 1)?;
            out.u8(8, case)?;
            out.list(12, why)
        }
    }
}

const REFUSED: u8 = 0;
const UNSUPPORTED: u8 = 1;

/// `request-memory: func(bytes: u64) -> result<u64, resource-error>`: raises the
/// limit if the heap can cover everything promised to this workload and not yet used.
fn request_memory(caller: &mut Caller<'_, WorkloadCtx>, bytes: u64, retptr: u32) -> Result<(), AbiError> {
    let limit = caller.data().limits.memory_limit as u64;
    let mut guest = CallerGuest::new(caller)?;
    let used = guest.memory().len() as u64;
    let promised = limit.saturating_sub(used);
    let new_limit = limit.checked_add(bytes).and_then(|l| usize::try_from(l).ok());
    let result = match new_limit {
        Some(new_limit) if promised.saturating_add(bytes) <= grantable() => {
            guest.ctx().limits.memory_limit = new_limit;
            Ok(new_limit as u64)
        }
        _ => Err((REFUSED, "the VM has not enough free memory for this request")),
    };
    write_result(&mut guest, retptr, result)
}

/// `request-fuel: func(fuel: u64) -> result<u64, resource-error>`.
fn request_fuel(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    let metered = caller.get_fuel().is_ok();
    let mut guest = CallerGuest::new(caller)?;
    let result = if metered {
        // The operator's `--fuel` is the CPU budget; the kernel does not exceed it.
        Err((REFUSED, "fuel is capped by the operator's limit (halcyon run --fuel)"))
    } else {
        Err((UNSUPPORTED, "this workload runs without fuel metering: its CPU use is not limited"))
    };
    write_result(&mut guest, retptr, result)
}

pub fn add_to_linker(linker: &mut Linker<WorkloadCtx>) -> Result<(), wasmi::errors::LinkerError> {
    type C<'a> = Caller<'a, WorkloadCtx>;
    linker.func_wrap(MODULE, "current", |mut c: C, ret: u32| -> Result<(), Error> {
        current(&mut c, ret).map_err(|e| trap("resources.current", e))
    })?;
    linker.func_wrap(MODULE, "request-memory", |mut c: C, bytes: u64, ret: u32| -> Result<(), Error> {
        request_memory(&mut c, bytes, ret).map_err(|e| trap("resources.request-memory", e))
    })?;
    linker.func_wrap(MODULE, "request-fuel", |mut c: C, _fuel: u64, ret: u32| -> Result<(), Error> {
        request_fuel(&mut c, ret).map_err(|e| trap("resources.request-fuel", e))
    })?;
    Ok(())
}
