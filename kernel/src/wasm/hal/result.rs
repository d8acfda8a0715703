//! Lowering `result<T, E>` into a host function's return area, shared by the interfaces
//! whose error variants carry a case, an optional nested case and an optional string
//! (`sockets.socket-error`, `tls.tls-error`).
//!
//! Canonical ABI: the result's case (0 ok, 1 err) @0, the payload at `payload` (T's or
//! E's alignment). An error variant's case @payload; a nested variant's case @payload+4;
//! the string (ptr, len) after them, 4-aligned.

use super::abi::CallerGuest;
use crate::wasm::runner::WorkloadCtx;
use halcyon_hal::cabi::{lower_bytes, AbiError, Guest, Writer};
use wasmi::Caller;

/// `(size, align, payload offset)` of a `result<T, E>` in memory.
pub type ResultLayout = (u32, u32, u32);

/// An error variant as the guest sees it.
pub struct ErrorValue {
    /// The variant's case.
    pub case: u8,
    /// The case of a nested variant payload (e.g. `tls-error.socket(socket-error)`).
    pub nested: Option<u8>,
    /// The string payload, for the cases that carry one.
    pub message: Option<alloc::string::String>,
}

/// An error type the guest receives as a variant.
pub trait GuestError {
    fn to_guest(self) -> ErrorValue;
}

/// Writes `result<T, E>` at `retptr`: for `Ok`, `write_ok` writes T's payload (it may
/// lower lists into the guest first); for `Err`, the error's string is lowered, then its
/// cases and the string's pointer and length are written.
pub fn finish<E: GuestError>(
    caller: &mut Caller<'_, WorkloadCtx>,
    retptr: u32,
    (size, align, payload): ResultLayout,
    result: Result<impl FnOnce(&mut dyn Guest, u32) -> Result<(), AbiError>, E>,
) -> Result<(), AbiError> {
    let mut guest = CallerGuest::new(caller)?;
    match result {
        Ok(write_ok) => {
            // Check the return area before lowering lists into the guest.
            Writer::aligned(guest.memory(), retptr, size, align)?;
            write_ok(&mut guest, retptr)?;
            Writer::aligned(guest.memory(), retptr, size, align)?.u8(0, 0)
        }
        Err(error) => {
            let ErrorValue { case, nested, message } = error.to_guest();
            let list = match &message {
                Some(text) => Some(lower_bytes(&mut guest, text.as_bytes())?),
                None => None,
            };
            let mut out = Writer::aligned(guest.memory(), retptr, size, align)?;
            out.u8(0, 1)?;
            out.u8(payload, case)?;
            let mut at = payload + 4;
            if let Some(nested) = nested {
                out.u8(at, nested)?;
                at += 4;
            }
            match list {
                Some(list) => out.list(at, list),
                None => Ok(()),
            }
        }
    }
}
