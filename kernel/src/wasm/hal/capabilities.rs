//! `elastic:hal/capabilities`: what this platform and boot support (from
//! `halcyon_hal::support`, evaluated with the runtime facts).

use super::abi::{trap, CallerGuest};
use super::MAX_HANDLES;
use crate::wasm::runner::WorkloadCtx;
use alloc::vec::Vec;
use halcyon_hal::cabi::{lift_string, lower_bytes, AbiError, Guest, Writer};
use halcyon_hal::platform::TeeKind;
use halcyon_hal::support::{self, HAL_VERSION};
use wasmi::{Caller, Error, Linker};

const MODULE: &str = "elastic:hal/capabilities@0.1.0";
const IMPLEMENTATION: &str = concat!("halcyon ", env!("CARGO_PKG_VERSION"));

/// `platform-kind` case index, in WIT order.
fn platform_kind(tee: TeeKind) -> u8 {
    match tee {
        TeeKind::None => 0,
        TeeKind::Sev => 1,
        TeeKind::SevEs => 2,
        TeeKind::SevSnp => 3,
        TeeKind::Tdx => 4,
    }
}

/// `get-platform: func() -> platform-info`; the record (size 20, align 4: enum @0,
/// hal-version @4, implementation @12) goes to the return area.
fn get_platform(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    let mut guest = CallerGuest::new(caller)?;
    let kind = platform_kind(guest.ctx().hal.facts.tee);
    let version = lower_bytes(&mut guest, HAL_VERSION.as_bytes())?;
    let implementation = lower_bytes(&mut guest, IMPLEMENTATION.as_bytes())?;
    let mut out = Writer::aligned(guest.memory(), retptr, 20, 4)?;
    out.u8(0, kind)?;
    out.list(4, version)?;
    out.list(12, implementation)
}

/// `list-support: func() -> list<function-support>`; each record is 28 bytes, align 4:
/// interface @0, function @8, supported @16, hardware-backed @17, note @20.
fn list_support(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    const RECORD: u32 = 28;
    let mut guest = CallerGuest::new(caller)?;
    let facts = guest.ctx().hal.facts;
    // Every string is its own allocation: the guest takes ownership of each.
    let mut records = Vec::new();
    for f in support::all(facts) {
        let interface = lower_bytes(&mut guest, f.interface.as_bytes())?;
        let function = lower_bytes(&mut guest, f.function.as_bytes())?;
        let note = lower_bytes(&mut guest, f.note.as_bytes())?;
        records.push((interface, function, f.supported, f.hardware_backed, note));
    }
    let count = records.len() as u32;
    let array = guest.realloc(4, count * RECORD)?;
    let mut out = Writer::aligned(guest.memory(), array, count * RECORD, 4).map_err(|_| AbiError::Realloc)?;
    for (i, (interface, function, supported, hardware_backed, note)) in records.into_iter().enumerate() {
        let at = i as u32 * RECORD;
        out.list(at, interface)?;
        out.list(at + 8, function)?;
        out.u8(at + 16, u8::from(supported))?;
        out.u8(at + 17, u8::from(hardware_backed))?;
        out.list(at + 20, note)?;
    }
    Writer::aligned(guest.memory(), retptr, 8, 4)?.list(0, (array, count))
}

/// `is-supported: func(interface: string, function: string) -> bool`.
fn is_supported(caller: &mut Caller<'_, WorkloadCtx>, args: [u32; 4]) -> Result<i32, AbiError> {
    let mut guest = CallerGuest::new(caller)?;
    let (memory, ctx) = guest.memory_and_ctx();
    let interface = lift_string(memory, args[0], args[1])?;
    let function = lift_string(memory, args[2], args[3])?;
    let supported = support::lookup(ctx.hal.facts, interface, function).is_some_and(|f| f.supported);
    Ok(i32::from(supported))
}

/// `get-limits: func() -> limits`; record size 32, align 8: memory-bytes @0,
/// option<u64> fuel @8 (discriminant) / @16 (value), max-handles @24, max-sockets @28.
fn get_limits(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    let fuel = caller.get_fuel().ok();
    let memory_limit = caller.data().limits.memory_limit as u64;
    let mut guest = CallerGuest::new(caller)?;
    let mut out = Writer::aligned(guest.memory(), retptr, 32, 8)?;
    out.u64(0, memory_limit)?;
    out.u8(8, u8::from(fuel.is_some()))?;
    out.u64(16, fuel.unwrap_or(0))?;
    out.u32(24, MAX_HANDLES as u32)?;
    let max_sockets = if crate::net::available() { crate::net::socket::MAX_SOCKETS as u32 } else { 0 };
    out.u32(28, max_sockets)
}

pub fn add_to_linker(linker: &mut Linker<WorkloadCtx>) -> Result<(), wasmi::errors::LinkerError> {
    type C<'a> = Caller<'a, WorkloadCtx>;
    linker.func_wrap(MODULE, "get-platform", |mut c: C, ret: u32| -> Result<(), Error> {
        get_platform(&mut c, ret).map_err(|e| trap("capabilities.get-platform", e))
    })?;
    linker.func_wrap(MODULE, "list-support", |mut c: C, ret: u32| -> Result<(), Error> {
        list_support(&mut c, ret).map_err(|e| trap("capabilities.list-support", e))
    })?;
    linker.func_wrap(MODULE, "is-supported", |mut c: C, a: u32, b: u32, d: u32, e: u32| -> Result<i32, Error> {
        is_supported(&mut c, [a, b, d, e]).map_err(|e| trap("capabilities.is-supported", e))
    })?;
    linker.func_wrap(MODULE, "get-limits", |mut c: C, ret: u32| -> Result<(), Error> {
        get_limits(&mut c, ret).map_err(|e| trap("capabilities.get-limits", e))
    })?;
    Ok(())
}
