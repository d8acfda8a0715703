//! `elastic:hal/gpu`: Halcyon has no GPU driver. `adapter.request` answers
//! `unsupported`; since no adapter can ever exist, every method and drop receives a
//! handle that is not live, which traps like any invalid handle.

use super::abi::{trap, CallerGuest};
use crate::wasm::runner::WorkloadCtx;
use alloc::vec::Vec;
use halcyon_hal::cabi::{lower_bytes, AbiError, Guest, Writer};
use wasmi::{Caller, Error, FuncType, Linker, Val, ValType};

const MODULE: &str = "elastic:hal/gpu@0.1.0";

/// `[static]adapter.request: func() -> result<adapter, gpu-error>`; size 16, align 4:
/// discriminant @0, gpu-error discriminant @4, its string @8.
fn request(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    let mut guest = CallerGuest::new(caller)?;
    let why = lower_bytes(&mut guest, b"no GPU device or driver in this image")?;
    let mut out = Writer::aligned(guest.memory(), retptr, 16, 4)?;
    out.u8(0, 1)?;
    out.u8(4, 0)?; // gpu-error::unsupported
    out.list(8, why)
}

/// The remaining imports and their flattened parameter counts (all `i32`: the handle
/// first, then arguments and the return pointer).
const HANDLE_FUNCTIONS: &[(&str, usize)] = &[
    ("[method]adapter.info", 2),
    ("[method]adapter.set-features", 4),
    ("[method]adapter.create-device", 2),
    ("[method]device.create-compute-pipeline", 6),
    ("[method]compute-pipeline.dispatch", 7),
    ("[resource-drop]adapter", 1),
    ("[resource-drop]device", 1),
    ("[resource-drop]compute-pipeline", 1),
];

pub fn add_to_linker(linker: &mut Linker<WorkloadCtx>) -> Result<(), wasmi::errors::LinkerError> {
    linker.func_wrap(MODULE, "[static]adapter.request", |mut c: Caller<'_, WorkloadCtx>, ret: u32| -> Result<(), Error> {
        request(&mut c, ret).map_err(|e| trap("gpu.adapter.request", e))
    })?;
    for (name, params) in HANDLE_FUNCTIONS {
        let ty = FuncType::new(core::iter::repeat_n(ValType::I32, *params).collect::<Vec<_>>(), []);
        linker.func_new(MODULE, name, ty, move |_, args: &[Val], _| {
            let handle = args.first().and_then(Val::i32).unwrap_or(0) as u32;
            Err(trap(name, AbiError::InvalidHandle(handle)))
        })?;
    }
    Ok(())
}
