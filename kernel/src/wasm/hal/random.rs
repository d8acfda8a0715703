//! `elastic:hal/random`: bytes from the kernel DRBG, refused without hardware entropy.

use super::abi::{trap, CallerGuest};
use crate::wasm::runner::WorkloadCtx;
use alloc::vec;
use halcyon_hal::cabi::{lower_bytes, AbiError, Guest, Writer};
use wasmi::{Caller, Error, Linker};

const MODULE: &str = "elastic:hal/random@0.1.0";
/// Most bytes one call returns (bounds the kernel buffer a workload can demand).
const MAX_REQUEST: u64 = 1 << 20;

/// Both results are `result<T, random-error>` with size 24, align 8: discriminant @0,
/// ok payload @8; random-error discriminant @8 and payload @16 (string or u64).
fn write_error(guest: &mut CallerGuest<'_, '_>, retptr: u32, too_large: Option<u64>) -> Result<(), AbiError> {
    match too_large {
        Some(requested) => {
            let mut out = Writer::aligned(guest.memory(), retptr, 24, 8)?;
            out.u8(0, 1)?;
            out.u8(8, 1)?; // random-error::too-large
            out.u64(16, requested)
        }
        None => {
            let why = lower_bytes(guest, b"no hardware entropy source (RDSEED/RDRAND)")?;
            let mut out = Writer::aligned(guest.memory(), retptr, 24, 8)?;
            out.u8(0, 1)?;
            out.u8(8, 0)?; // random-error::unavailable
            out.list(16, why)
        }
    }
}

fn get_random_bytes(caller: &mut Caller<'_, WorkloadCtx>, len: u64, retptr: u32) -> Result<(), AbiError> {
    let mut guest = CallerGuest::new(caller)?;
    if len > MAX_REQUEST {
        return write_error(&mut guest, retptr, Some(len));
    }
    let mut bytes = vec![0u8; len as usize];
    if crate::random::fill(&mut bytes).is_err() {
        return write_error(&mut guest, retptr, None);
    }
    let list = lower_bytes(&mut guest, &bytes)?;
    let mut out = Writer::aligned(guest.memory(), retptr, 24, 8)?;
    out.u8(0, 0)?;
    out.list(8, list)
}

fn get_random_u64(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    let mut guest = CallerGuest::new(caller)?;
    let mut bytes = [0u8; 8];
    if crate::random::fill(&mut bytes).is_err() {
        return write_error(&mut guest, retptr, None);
    }
    let mut out = Writer::aligned(guest.memory(), retptr, 24, 8)?;
    out.u8(0, 0)?;
    out.u64(8, u64::from_le_bytes(bytes))
}

pub fn add_to_linker(linker: &mut Linker<WorkloadCtx>) -> Result<(), wasmi::errors::LinkerError> {
    type C<'a> = Caller<'a, WorkloadCtx>;
    linker.func_wrap(MODULE, "max-request", || -> u64 { MAX_REQUEST })?;
    linker.func_wrap(MODULE, "get-random-bytes", |mut c: C, len: u64, ret: u32| -> Result<(), Error> {
        get_random_bytes(&mut c, len, ret).map_err(|e| trap("random.get-random-bytes", e))
    })?;
    linker.func_wrap(MODULE, "get-random-u64", |mut c: C, ret: u32| -> Result<(), Error> {
        get_random_u64(&mut c, ret).map_err(|e| trap("random.get-random-u64", e))
    })?;
    Ok(())
}
