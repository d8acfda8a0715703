//! `elastic:hal/attestation`: the runtime measurement log, and platform evidence and
//! sealing through the platform trait (`halcyon_hal::platform::Platform`). A platform
//! without a hardware root of trust answers `unsupported`; nothing is ever fabricated.
//! Sealing itself (`halcyon_hal::sealing`) is the same on every platform; only the key
//! comes from the hardware.

use super::abi::{trap, CallerGuest};
use crate::platform::with_platform;
use crate::wasm::runner::WorkloadCtx;
use alloc::vec::Vec;
use halcyon_hal::cabi::{lift_bytes, lift_enum, lower_byte_lists, lower_bytes, AbiError, Guest, Writer};
use halcyon_hal::measurement::MeasurementKind;
use halcyon_hal::platform::{EvidenceFormat, PlatformError, SealBinding};
use halcyon_hal::sealing;
use wasmi::{Caller, Error, Linker};

const MODULE: &str = "elastic:hal/attestation@0.1.0";
/// Report data binds at most 64 bytes (SNP REPORT_DATA, TDX REPORTDATA).
const MAX_REPORT_DATA: usize = 64;
const FORMATS: [EvidenceFormat; 3] = [EvidenceFormat::SevSnpReport, EvidenceFormat::TdxReport, EvidenceFormat::TdxQuote];
const BINDINGS: [SealBinding; 2] = [SealBinding::LaunchMeasurement, SealBinding::Workload];

/// `attestation-error` cases, in WIT order.
const UNSUPPORTED: u8 = 0;
const INVALID_ARGUMENT: u8 = 1;
const PLATFORM_FAILURE: u8 = 2;
const INTEGRITY_FAILURE: u8 = 3;

fn error_case(error: PlatformError) -> (u8, &'static str) {
    match error {
        PlatformError::Unsupported(why) => (UNSUPPORTED, why),
        PlatformError::InvalidArgument(why) => (INVALID_ARGUMENT, why),
        PlatformError::Failure(why) => (PLATFORM_FAILURE, why),
    }
}

fn format_index(format: EvidenceFormat) -> u8 {
    FORMATS.iter().position(|f| *f == format).unwrap_or(0) as u8
}

/// `runtime-measurements: func() -> list<measurement>`; each record is 28 bytes,
/// align 4: kind @0, name @8, algorithm @16 (0 = sha256), digest @20.
fn runtime_measurements(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    const RECORD: u32 = 28;
    let mut guest = CallerGuest::new(caller)?;
    // The kernel first, then every workload loaded so far, in load order: the log a verifier
    // replays into the RTMRs evidence taken now shows (`hal::evidence::rtmr`).
    let mut entries = alloc::vec![crate::memory::kernel_measurement().clone()];
    entries.extend(crate::wasm::loaded_measurements());
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

/// `supported-evidence: func() -> list<evidence-format>` (one byte per enum).
fn supported_evidence(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32) -> Result<(), AbiError> {
    let formats: Vec<u8> = with_platform(|p| p.evidence_formats().iter().map(|f| format_index(*f)).collect());
    let mut guest = CallerGuest::new(caller)?;
    let list = lower_bytes(&mut guest, &formats)?;
    Writer::aligned(guest.memory(), retptr, 8, 4)?.list(0, list)
}

/// Writes the error arm of a `result<T, attestation-error>` (payload @4, align 4):
/// discriminant @0, case @4, string @8 (none for integrity-failure).
fn write_error(guest: &mut CallerGuest<'_, '_>, retptr: u32, size: u32, case: u8, why: Option<&str>) -> Result<(), AbiError> {
    let why = match why {
        Some(text) => Some(lower_bytes(guest, text.as_bytes())?),
        None => None,
    };
    let mut out = Writer::aligned(guest.memory(), retptr, size, 4)?;
    out.u8(0, 1)?;
    out.u8(4, case)?;
    match why {
        Some(list) => out.list(8, list),
        None => Ok(()),
    }
}

/// `platform-attestation: func(format, report-data) -> result<evidence, attestation-error>`;
/// result size 24, align 4; evidence: format @4, report @8, certificates @16.
fn platform_attestation(caller: &mut Caller<'_, WorkloadCtx>, format: i32, data: (u32, u32), retptr: u32) -> Result<(), AbiError> {
    let format = FORMATS[lift_enum(format, 3)? as usize];
    let mut guest = CallerGuest::new(caller)?;
    let report_data = lift_bytes(guest.memory(), data.0, data.1)?;
    if report_data.len() > MAX_REPORT_DATA {
        return write_error(&mut guest, retptr, 24, INVALID_ARGUMENT, Some("report data is limited to 64 bytes"));
    }
    let mut padded = [0u8; MAX_REPORT_DATA];
    padded[..report_data.len()].copy_from_slice(report_data);
    match with_platform(|p| p.attestation_report(format, &padded)) {
        Ok(evidence) => {
            let report = lower_bytes(&mut guest, &evidence.report)?;
            let certificates: Vec<&[u8]> = evidence.certificates.iter().map(Vec::as_slice).collect();
            let certificates = lower_byte_lists(&mut guest, &certificates)?;
            let mut out = Writer::aligned(guest.memory(), retptr, 24, 4)?;
            out.u8(0, 0)?;
            out.u8(4, format_index(evidence.format))?;
            out.list(8, report)?;
            out.list(16, certificates)
        }
        Err(e) => {
            let (case, why) = error_case(e);
            write_error(&mut guest, retptr, 24, case, Some(why))
        }
    }
}

/// The workload's own digest (the last entry of its measurement log).
fn workload_digest(guest: &mut CallerGuest<'_, '_>) -> [u8; 32] {
    let log = &guest.ctx().hal.measurements;
    log.iter().rev().find(|m| m.kind == MeasurementKind::Workload).map_or([0; 32], |m| m.sha256)
}

/// `sealing-info: func(binding) -> result<sealing-key-info, attestation-error>`;
/// result size 16, align 4: hardware-backed @4, description @8.
fn sealing_info(caller: &mut Caller<'_, WorkloadCtx>, binding: i32, retptr: u32) -> Result<(), AbiError> {
    let binding = BINDINGS[lift_enum(binding, 2)? as usize];
    let mut guest = CallerGuest::new(caller)?;
    let digest = workload_digest(&mut guest);
    match with_platform(|p| p.sealing_key(binding, &digest)) {
        Ok(key) => {
            let description = lower_bytes(&mut guest, key.description.as_bytes())?;
            let mut out = Writer::aligned(guest.memory(), retptr, 16, 4)?;
            out.u8(0, 0)?;
            out.u8(4, u8::from(key.hardware_backed))?;
            out.list(8, description)
        }
        Err(e) => {
            let (case, why) = error_case(e);
            write_error(&mut guest, retptr, 16, case, Some(why))
        }
    }
}

/// `seal` / `unseal: func(binding, data) -> result<list<u8>, attestation-error>`;
/// result size 16, align 4: the list @4.
fn seal_or_unseal(caller: &mut Caller<'_, WorkloadCtx>, binding: i32, data: (u32, u32), retptr: u32, seal: bool) -> Result<(), AbiError> {
    let binding = BINDINGS[lift_enum(binding, 2)? as usize];
    let mut guest = CallerGuest::new(caller)?;
    lift_bytes(guest.memory(), data.0, data.1)?;
    let digest = workload_digest(&mut guest);
    let key = match with_platform(|p| p.sealing_key(binding, &digest)) {
        Ok(key) => key,
        Err(e) => {
            let (case, why) = error_case(e);
            return write_error(&mut guest, retptr, 16, case, Some(why));
        }
    };
    if !super::heap_can_afford(data.1 as usize) {
        return write_error(&mut guest, retptr, 16, INVALID_ARGUMENT, Some("data too large for the VM's free memory"));
    }
    let input = lift_bytes(guest.memory(), data.0, data.1)?.to_vec();
    let result = if seal {
        let mut nonce = [0u8; 12];
        match crate::random::fill(&mut nonce) {
            Ok(()) => sealing::seal(&key.key, binding, nonce, &input).map_err(|_| (PLATFORM_FAILURE, Some("sealing failed"))),
            Err(_) => Err((UNSUPPORTED, Some("no hardware entropy source for the nonce"))),
        }
    } else {
        sealing::unseal(&key.key, binding, &input).map_err(|_| (INTEGRITY_FAILURE, None))
    };
    match result {
        Ok(bytes) => {
            let list = lower_bytes(&mut guest, &bytes)?;
            let mut out = Writer::aligned(guest.memory(), retptr, 16, 4)?;
            out.u8(0, 0)?;
            out.list(4, list)
        }
        Err((case, why)) => write_error(&mut guest, retptr, 16, case, why),
    }
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
        sealing_info(&mut c, b, ret).map_err(|e| trap("attestation.sealing-info", e))
    })?;
    linker.func_wrap(MODULE, "seal", |mut c: C, b: i32, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        seal_or_unseal(&mut c, b, (p, l), ret, true).map_err(|e| trap("attestation.seal", e))
    })?;
    linker.func_wrap(MODULE, "unseal", |mut c: C, b: i32, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        seal_or_unseal(&mut c, b, (p, l), ret, false).map_err(|e| trap("attestation.unseal", e))
    })?;
    Ok(())
}
