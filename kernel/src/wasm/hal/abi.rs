//! The bridge between wasmi host functions and `halcyon_hal::cabi`: the guest's memory
//! and `cabi_realloc` seen through a `Caller`, and ABI errors turned into traps.

use crate::wasm::runner::WorkloadCtx;
use alloc::format;
use halcyon_hal::cabi::{AbiError, Guest};
use wasmi::{Caller, Error, Extern, Memory, TypedFunc};

/// A workload's memory and allocator, for lowering results.
pub struct CallerGuest<'a, 'b> {
    caller: &'a mut Caller<'b, WorkloadCtx>,
    memory: Memory,
    realloc: Option<TypedFunc<(i32, i32, i32, i32), i32>>,
}

impl<'a, 'b> CallerGuest<'a, 'b> {
    pub fn new(caller: &'a mut Caller<'b, WorkloadCtx>) -> Result<Self, AbiError> {
        let memory = caller
            .get_export("memory")
            .and_then(Extern::into_memory)
            .ok_or(AbiError::OutOfBounds { ptr: 0, len: 0 })?;
        let realloc = caller
            .get_export("cabi_realloc")
            .and_then(Extern::into_func)
            .and_then(|f| f.typed::<(i32, i32, i32, i32), i32>(&*caller).ok());
        Ok(Self { caller, memory, realloc })
    }

    pub fn ctx(&mut self) -> &mut WorkloadCtx {
        self.caller.data_mut()
    }

    /// The memory and the store data at once (for lifting arguments while reading state).
    pub fn memory_and_ctx(&mut self) -> (&mut [u8], &mut WorkloadCtx) {
        self.memory.data_and_store_mut(&mut *self.caller)
    }
}

impl Guest for CallerGuest<'_, '_> {
    fn realloc(&mut self, align: u32, size: u32) -> Result<u32, AbiError> {
        let realloc = self.realloc.ok_or(AbiError::Realloc)?;
        let ptr = realloc
            .call(&mut *self.caller, (0, 0, align as i32, size as i32))
            .map_err(|_| AbiError::Realloc)?;
        Ok(ptr as u32)
    }

    fn memory(&mut self) -> &mut [u8] {
        self.memory.data_mut(&mut *self.caller)
    }
}

/// Turns an ABI violation by the workload into a trap that names the import.
pub fn trap(import: &str, error: AbiError) -> Error {
    Error::new(format!("HAL call {import}: {error}"))
}
