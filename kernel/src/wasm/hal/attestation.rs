//! `elastic:hal/attestation`: the runtime measurement log, and platform evidence and
//! sealing — which need a hardware root of trust. On a plain VM they answer
//! `unsupported`; no report or key is ever fabricated. (The SEV-SNP and TDX paths will
//! fill them in behind this interface.)

use super::abi::{trap, CallerGuest};
use crate::wasm::runner::WorkloadCtx;
use alloc::vec::Vec;
use halcyon_hal::cabi::{lift_bytes, lift_enum, lower_bytes, AbiError, Guest, Writer};
use halcyon_hal::platform::TeeKind;
use wasmi::{Caller, Error, Linker};

const MODULE: &str = "elastic:hal/attestation@0.1.0";
/// Report data binds at most 64 bytes (SNP REPORT_DATA, TDX REPORTDATA).
const MAX_REPORT_DATA: u32 = 64;
const EVIDENCE_FORMATS: u32 = 3;
const SEAL_BINDINGS: u32 = 2;

/// `attestation-error` cases, in WIT order.
const UNSUPPORTED: u8 = 0;
const INVALID_ARGUMENT: u8 = 1;

fn no_hardware_root(tee: TeeKind) -> &'static str {
    match tee {
        TeeKind::None => "no hardware root of trust: this is not a confidential VM",
        _ => "not implemented for this TEE yet",
    }
}

/// `runtime-measurements: func() -> list<measurement>`; each record is 28 bytes,
/// align 4: kind @0, name @8, algorithm @16 (0 = sha256), digest @20.
fn runtime_measurements(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    const RECORD: u32 = 28;
    let mut guest = CallerGuest::new(caller)?;
    let entries = guest.ctx().hal.measurements.clone();
    let mut records = Vec::new();
    for m in &entries {
        records.push((
            lower_bytes(&mut guest, m.kind.name().as_bytes())?,
            lower_bytes(&mut guest, m.name.as_bytes())?,
            lower_bytes(&mut guest, &m.sha256)?,
        ));
    }
    let count = records.len() as u32;
    let array = if count == 0 { 4 } else { guest.realloc(4, count * RECORD)? };
    let mut out = Writer::aligned(guest.memory(), array, count * RECORD, 4).map_err(|_| AbiError::Realloc)?;
    for (i, (kind, name, digest)) in records.into_iter().enumerate() {
        let at = i as u32 * RECORD;
        out.list(at, kind)?;
        out.list(at + 8, name)?;
        out.u8(at + 16, 0)?;
        out.list(at + 20, digest)?;
    }
    Writer::aligned(guest.memory(), retptr, 8, 4)?.list(0, (array, count))
}

/// `supported-evidence: func() -> list<evidence-format>`: none yet on any platform.
fn supported_evidence(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    let mut guest = CallerGuest::new(caller)?;
    Writer::aligned(guest.memory(), retptr, 8, 4)?.list(0, (1, 0))
}

/// Writes the error arm of a `result<T, attestation-error>` whose payload starts at 4
/// (all of this interface's results: align 4): discriminant @0, case @4, string @8.
fn write_error(guest: &mut CallerGuest<'_, '_>, retptr: u32, size: u32, case: u8, why: &str) -> Result<(), AbiError> {
    let why = lower_bytes(guest, why.as_bytes())?;
    let mut out = Writer::aligned(guest.memory(), retptr, size, 4)?;
    out.u8(0, 1)?;
    out.u8(4, case)?;
    out.list(8, why)
}

/// `platform-attestation: func(format, report-data) -> result<evidence, attestation-error>`
/// (result size 24, align 4).
fn platform_attestation(caller: &mut Caller<'_, WorkloadCtx>, format: i32, data: (u32, u32), retptr: u32) -> Result<(), AbiError> {
    lift_enum(format, EVIDENCE_FORMATS)?;
    let mut guest = CallerGuest::new(caller)?;
    lift_bytes(guest.memory(), data.0, data.1)?;
    if data.1 > MAX_REPORT_DATA {
        return write_error(&mut guest, retptr, 24, INVALID_ARGUMENT, "report data is limited to 64 bytes");
    }
    let tee = guest.ctx().hal.facts.tee;
    write_error(&mut guest, retptr, 24, UNSUPPORTED, no_hardware_root(tee))
}

/// `sealing-info`, `seal` and `unseal`: unsupported until a hardware sealing key
/// exists (results of size 16, align 4). Arguments are still checked.
fn sealing(caller: &mut Caller<'_, WorkloadCtx>, binding: i32, data: Option<(u32, u32)>, retptr: u32) -> Result<(), AbiError> {
    lift_enum(binding, SEAL_BINDINGS)?;
    let mut guest = CallerGuest::new(caller)?;
    if let Some((ptr, len)) = data {
        lift_bytes(guest.memory(), ptr, len)?;
    }
    let tee = guest.ctx().hal.facts.tee;
    write_error(&mut guest, retptr, 16, UNSUPPORTED, no_hardware_root(tee))
}

pub fn add_to_linker(linker: &mut Linker<WorkloadCtx>) -> Result<(), wasmi::errors::LinkerError> {
    type C<'a> = Caller<'a, WorkloadCtx>;
    linker.func_wrap(MODULE, "runtime-measurements", |mut c: C, ret: u32| -> Result<(), Error> {
        runtime_measurements(&mut c, ret).map_err(|e| trap("attestation.runtime-measurements", e))
    })?;
    linker.func_wrap(MODULE, "supported-evidence", |mut c: C, ret: u32| -> Result<(), Error> {
        supported_evidence(&mut c, ret).map_err(|e| trap("attestation.supported-evidence", e))
    })?;
    linker.func_wrap(MODULE, "platform-attestation", |mut c: C, f: i32, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        platform_attestation(&mut c, f, (p, l), ret).map_err(|e| trap("attestation.platform-attestation", e))
    })?;
    linker.func_wrap(MODULE, "sealing-info", |mut c: C, b: i32, ret: u32| -> Result<(), Error> {
        sealing(&mut c, b, None, ret).map_err(|e| trap("attestation.sealing-info", e))
    })?;
    linker.func_wrap(MODULE, "seal", |mut c: C, b: i32, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        sealing(&mut c, b, Some((p, l)), ret).map_err(|e| trap("attestation.seal", e))
    })?;
    linker.func_wrap(MODULE, "unseal", |mut c: C, b: i32, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        sealing(&mut c, b, Some((p, l)), ret).map_err(|e| trap("attestation.unseal", e))
    })?;
    Ok(())
}
