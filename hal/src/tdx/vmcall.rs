//! TDG.VP.VMCALL sub-functions: the guest's requests to the host (Intel TDX GHCI v1.5,
//! ch. 3 "TDG.VP.VMCALL Interface"; the instruction sub-functions use the VMX basic exit
//! reason numbers, Intel SDM vol. 3 appendix C).
//!
//! Convention (GHCI "TDG.VP.VMCALL" leaf): RAX = 0 (the TDCALL leaf), RCX = bitmap of the
//! GPRs exposed to the host (bit n = GPR n in the RAX..R15 order; RAX, RCX and RSP are
//! never exposed), R10 = 0 for a GHCI-standard call, R11 = sub-function, R12..R15 =
//! arguments. On return R10 holds the VMCALL status and R11 (or R12..R15) the outputs.
//! Only the registers a call needs are exposed, and only the outputs it defines are read.

use super::tdcall::{Leaf, TdCallError, TdxStatus};
use super::{Registers, TdCall};
use core::fmt;

// Sub-function numbers (GHCI "TDG.VP.VMCALL codes" table; the SDM basic exit reasons).
pub const EXIT_REASON_CPUID: u64 = 10;
pub const EXIT_REASON_HLT: u64 = 12;
pub const EXIT_REASON_IO_INSTRUCTION: u64 = 30;
pub const EXIT_REASON_MSR_READ: u64 = 31;
pub const EXIT_REASON_MSR_WRITE: u64 = 32;
pub const EXIT_REASON_EPT_VIOLATION: u64 = 48;
pub const TDVMCALL_GET_TD_VM_CALL_INFO: u64 = 0x10000;
pub const TDVMCALL_MAP_GPA: u64 = 0x10001;
pub const TDVMCALL_GET_QUOTE: u64 = 0x10002;
pub const TDVMCALL_REPORT_FATAL_ERROR: u64 = 0x10003;
pub const TDVMCALL_SETUP_EVENT_NOTIFY_INTERRUPT: u64 = 0x10004;

// GPR bits of the RCX exposure mask.
const RDX: u64 = 1 << 2;
const RBX: u64 = 1 << 3;
const RSI: u64 = 1 << 6;
const RDI: u64 = 1 << 7;
const R8: u64 = 1 << 8;
const R9: u64 = 1 << 9;
/// R10..R15: what every standard call exposes.
const R10_R15: u64 = 0xFC00;

/// TDG.VP.VMCALL status codes in R10 (GHCI "TDG.VP.VMCALL Status Codes" table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum VmCallStatus {
    TdgVpVmcallSuccess = 0,
    TdgVpVmcallRetry = 1,
    TdgVpVmcallInvalidOperand = 0x8000_0000_0000_0000,
    TdgVpVmcallGpaInuse = 0x8000_0000_0000_0001,
    TdgVpVmcallAlignError = 0x8000_0000_0000_0002,
}

impl VmCallStatus {
    pub fn decode(r10: u64) -> Result<Self, u64> {
        [Self::TdgVpVmcallSuccess, Self::TdgVpVmcallRetry, Self::TdgVpVmcallInvalidOperand, Self::TdgVpVmcallGpaInuse, Self::TdgVpVmcallAlignError]
            .into_iter()
            .find(|s| *s as u64 == r10)
            .ok_or(r10)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmCallError {
    /// TDCALL itself failed (the TDX module refused the VMCALL, e.g. a bad mask).
    TdCall(TdCallError),
    /// The host answered with a status other than success.
    Status(VmCallStatus),
    /// The host answered with a status the GHCI does not define.
    UnknownStatus(u64),
    /// An argument is out of range (size, alignment, vector).
    InvalidArgument,
    /// MapGPA: the host's resume address is outside the range or not page-aligned.
    MapGpaOutOfRange,
    /// MapGPA: the host asked for retries without making progress.
    MapGpaNoProgress,
}

impl fmt::Display for VmCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TdCall(e) => write!(f, "TDG.VP.VMCALL: {e}"),
            Self::Status(s) => write!(f, "host answered {s:?}"),
            Self::UnknownStatus(raw) => write!(f, "host answered undefined status {raw:#x}"),
            Self::InvalidArgument => f.write_str("invalid TDG.VP.VMCALL argument"),
            Self::MapGpaOutOfRange => f.write_str("MapGPA resume address out of range"),
            Self::MapGpaNoProgress => f.write_str("MapGPA retried without progress"),
        }
    }
}

impl core::error::Error for VmCallError {}

/// One TDG.VP.VMCALL with `mask` | R10..R15 exposed; returns the VMCALL status (R10)
/// and the output registers, after checking the TDCALL status.
fn raw_vmcall(t: &mut impl TdCall, mask: u64, mut regs: Registers) -> Result<(VmCallStatus, Registers), VmCallError> {
    regs.rax = Leaf::TdgVpVmcall as u64;
    regs.rcx = mask | R10_R15;
    regs.r10 = 0;
    let out = t.tdcall(&regs);
    match TdxStatus::decode(out.rax) {
        Ok((TdxStatus::TdxSuccess, _)) => {}
        Ok((status, details)) => return Err(VmCallError::TdCall(TdCallError::Status(status, details))),
        Err(raw) => return Err(VmCallError::TdCall(TdCallError::UnknownStatus(raw))),
    }
    let status = VmCallStatus::decode(out.r10).map_err(VmCallError::UnknownStatus)?;
    Ok((status, out))
}

/// A VMCALL that must succeed.
fn vmcall(t: &mut impl TdCall, mask: u64, regs: Registers) -> Result<Registers, VmCallError> {
    match raw_vmcall(t, mask, regs)? {
        (VmCallStatus::TdgVpVmcallSuccess, out) => Ok(out),
        (status, _) => Err(VmCallError::Status(status)),
    }
}

fn args(sub_function: u64, r12: u64, r13: u64, r14: u64, r15: u64) -> Registers {
    Registers { r11: sub_function, r12, r13, r14, r15, ..Registers::default() }
}

fn size_mask(size: u8, allowed: &[u8]) -> Result<u64, VmCallError> {
    if !allowed.contains(&size) {
        return Err(VmCallError::InvalidArgument);
    }
    Ok(if size == 8 { u64::MAX } else { (1u64 << (size * 8)) - 1 })
}

/// Instruction.IO, IN: R12 = size (1, 2, 4), R13 = 0 (read), R14 = port; data in R11.
pub fn io_in(t: &mut impl TdCall, port: u16, size: u8) -> Result<u32, VmCallError> {
    let mask = size_mask(size, &[1, 2, 4])?;
    let out = vmcall(t, 0, args(EXIT_REASON_IO_INSTRUCTION, size as u64, 0, port as u64, 0))?;
    Ok((out.r11 & mask) as u32)
}

/// Instruction.IO, OUT: R13 = 1 (write), R15 = data.
pub fn io_out(t: &mut impl TdCall, port: u16, size: u8, value: u32) -> Result<(), VmCallError> {
    let mask = size_mask(size, &[1, 2, 4])?;
    vmcall(t, 0, args(EXIT_REASON_IO_INSTRUCTION, size as u64, 1, port as u64, value as u64 & mask))?;
    Ok(())
}

/// #VE.RequestMMIO, read: R12 = size (1, 2, 4, 8), R13 = 0, R14 = the (shared) GPA; data in R11.
pub fn mmio_read(t: &mut impl TdCall, gpa: u64, size: u8) -> Result<u64, VmCallError> {
    let mask = size_mask(size, &[1, 2, 4, 8])?;
    let out = vmcall(t, 0, args(EXIT_REASON_EPT_VIOLATION, size as u64, 0, gpa, 0))?;
    Ok(out.r11 & mask)
}

/// #VE.RequestMMIO, write: R13 = 1, R15 = data.
pub fn mmio_write(t: &mut impl TdCall, gpa: u64, size: u8, value: u64) -> Result<(), VmCallError> {
    let mask = size_mask(size, &[1, 2, 4, 8])?;
    vmcall(t, 0, args(EXIT_REASON_EPT_VIOLATION, size as u64, 1, gpa, value & mask))?;
    Ok(())
}

/// Instruction.CPUID: R12 = leaf, R13 = sub-leaf; EAX..EDX in R12..R15 (upper halves
/// dropped). The host's answer: security-relevant bits must be checked by the caller.
pub fn cpuid(t: &mut impl TdCall, leaf: u32, subleaf: u32) -> Result<[u32; 4], VmCallError> {
    let out = vmcall(t, 0, args(EXIT_REASON_CPUID, leaf as u64, subleaf as u64, 0, 0))?;
    Ok([out.r12 as u32, out.r13 as u32, out.r14 as u32, out.r15 as u32])
}

/// Instruction.RDMSR: R12 = MSR; value in R11.
pub fn rdmsr(t: &mut impl TdCall, msr: u32) -> Result<u64, VmCallError> {
    Ok(vmcall(t, 0, args(EXIT_REASON_MSR_READ, msr as u64, 0, 0, 0))?.r11)
}

/// Instruction.WRMSR: R12 = MSR, R13 = value.
pub fn wrmsr(t: &mut impl TdCall, msr: u32, value: u64) -> Result<(), VmCallError> {
    vmcall(t, 0, args(EXIT_REASON_MSR_WRITE, msr as u64, value, 0, 0))?;
    Ok(())
}

/// Instruction.HLT: R12 = 1 if interrupts are blocked.
pub fn hlt(t: &mut impl TdCall, interrupts_blocked: bool) -> Result<(), VmCallError> {
    vmcall(t, 0, args(EXIT_REASON_HLT, interrupts_blocked as u64, 0, 0, 0))?;
    Ok(())
}

/// How often MapGPA may answer RETRY without progress before the guest gives up.
pub const MAP_GPA_MAX_STALLED_RETRIES: u32 = 3;

/// MapGPA (GHCI "`TDG.VP.VMCALL<MapGPA>`"): R12 = start GPA (with the shared bit to share, without to make
/// private), R13 = length; both 4 KiB aligned. On RETRY the host names in R11 where to
/// resume; that address must lie inside the remaining range and be page-aligned, and
/// RETRY without progress is allowed only [`MAP_GPA_MAX_STALLED_RETRIES`] times in a row.
/// Making pages private again also needs TDG.MEM.PAGE.ACCEPT afterwards (the caller's
/// job, see [`super::accept`]).
pub fn map_gpa(t: &mut impl TdCall, gpa: u64, len: u64, shared: bool, shared_bit: u64) -> Result<(), VmCallError> {
    let end = gpa.checked_add(len).ok_or(VmCallError::InvalidArgument)?;
    if !gpa.is_multiple_of(0x1000) || !len.is_multiple_of(0x1000) || len == 0 || end > shared_bit || !shared_bit.is_power_of_two() {
        return Err(VmCallError::InvalidArgument);
    }
    let flag = if shared { shared_bit } else { 0 };
    // gpa < end <= shared_bit, so adding the flag is exact (an OR would lose it at end == shared_bit).
    let (mut start, end) = (gpa + flag, end + flag);
    let mut stalled = 0;
    loop {
        let (status, out) = raw_vmcall(t, 0, args(TDVMCALL_MAP_GPA, start, end - start, 0, 0))?;
        match status {
            VmCallStatus::TdgVpVmcallSuccess => return Ok(()),
            VmCallStatus::TdgVpVmcallRetry => {}
            other => return Err(VmCallError::Status(other)),
        }
        let resume = out.r11;
        if resume < start || resume >= end || !resume.is_multiple_of(0x1000) {
            return Err(VmCallError::MapGpaOutOfRange);
        }
        if resume == start {
            stalled += 1;
            if stalled > MAP_GPA_MAX_STALLED_RETRIES {
                return Err(VmCallError::MapGpaNoProgress);
            }
        } else {
            stalled = 0;
            start = resume;
        }
    }
}

/// GetQuote (GHCI "`TDG.VP.VMCALL<GetQuote>`"): R12 = shared GPA of the buffer (with the shared bit), R13 =
/// its length (a multiple of 4 KiB). Completion is reported in the buffer's status field.
pub fn get_quote(t: &mut impl TdCall, shared_gpa: u64, len: u64) -> Result<(), VmCallError> {
    if !shared_gpa.is_multiple_of(0x1000) || !len.is_multiple_of(0x1000) || len == 0 {
        return Err(VmCallError::InvalidArgument);
    }
    vmcall(t, 0, args(TDVMCALL_GET_QUOTE, shared_gpa, len, 0, 0))?;
    Ok(())
}

/// ReportFatalError (GHCI "`TDG.VP.VMCALL<ReportFatalError>`"): R12 = error code (bits 31:0; 0 = panic), R13 = 0 (no
/// GPA of extra data); up to 64 bytes of message, NUL-padded, in R14, R15, RBX, RDI, RSI,
/// R8, R9, RDX (in that order, little-endian). The host should end the TD; if it returns,
/// the caller must halt for ever.
pub fn report_fatal_error(t: &mut impl TdCall, code: u32, message: &str) {
    let mut text = [0u8; 64];
    let bytes = message.as_bytes();
    let n = bytes.len().min(64);
    text[..n].copy_from_slice(&bytes[..n]);
    let word = |i: usize| u64::from_le_bytes(text[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let mut regs = args(TDVMCALL_REPORT_FATAL_ERROR, code as u64, 0, word(0), word(1));
    regs.rbx = word(2);
    regs.rdi = word(3);
    regs.rsi = word(4);
    regs.r8 = word(5);
    regs.r9 = word(6);
    regs.rdx = word(7);
    let _ = vmcall(t, RBX | RDI | RSI | R8 | R9 | RDX, regs);
}

/// SetupEventNotifyInterrupt (GHCI "`TDG.VP.VMCALL<SetupEventNotifyInterrupt>`"): R12 = the vector (32..=255) the host raises
/// when a GetQuote completes.
pub fn setup_event_notify_interrupt(t: &mut impl TdCall, vector: u8) -> Result<(), VmCallError> {
    if vector < 32 {
        return Err(VmCallError::InvalidArgument);
    }
    vmcall(t, 0, args(TDVMCALL_SETUP_EVENT_NOTIFY_INTERRUPT, vector as u64, 0, 0, 0))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tdx::sim::SimTdx;

    #[test]
    fn port_mmio_msr_cpuid_round_trip() {
        let mut sim = SimTdx::new();
        io_out(&mut sim, 0x3F8, 1, 0x141).unwrap();
        assert_eq!(sim.ports[&0x3F8], 0x41, "only the access width goes out");
        sim.ports.insert(0xCFC, 0x1234_5678);
        // The host's garbage above the access width is dropped.
        assert_eq!(io_in(&mut sim, 0xCFC, 2).unwrap(), 0x5678);
        assert_eq!(io_in(&mut sim, 0xCFC, 4).unwrap(), 0x1234_5678);
        assert_eq!(io_in(&mut sim, 0xCFC, 3), Err(VmCallError::InvalidArgument));
        mmio_write(&mut sim, 0x8_0000_1000, 8, u64::MAX).unwrap();
        assert_eq!(mmio_read(&mut sim, 0x8_0000_1000, 4).unwrap(), 0xFFFF_FFFF);
        assert_eq!(mmio_read(&mut sim, 0x8_0000_2000, 8).unwrap(), 0x1122_3344_5566_7788);
        wrmsr(&mut sim, 0x1B, 0xFEE0_0900).unwrap();
        assert_eq!(rdmsr(&mut sim, 0x1B).unwrap(), 0xFEE0_0900);
        assert_eq!(rdmsr(&mut sim, 0x99), Err(VmCallError::Status(VmCallStatus::TdgVpVmcallInvalidOperand)));
        assert_eq!(cpuid(&mut sim, 7, 1).unwrap(), [8, 0xB, 0xD, 0xD]);
        hlt(&mut sim, false).unwrap();
        // Every call exposed exactly R10..R15.
        assert!(sim.masks.iter().all(|m| *m == 0xFC00));
    }

    #[test]
    fn host_status_codes_are_decoded() {
        let mut sim = SimTdx::new();
        sim.vmcall_status = Some(0x8000_0000_0000_0002);
        assert_eq!(io_out(&mut sim, 0x80, 1, 0), Err(VmCallError::Status(VmCallStatus::TdgVpVmcallAlignError)));
        sim.vmcall_status = Some(0x42);
        assert_eq!(io_out(&mut sim, 0x80, 1, 0), Err(VmCallError::UnknownStatus(0x42)));
        sim.vmcall_status = None;
        sim.fail_leaf = Some((0, 0xC000_0100_0000_0001));
        assert!(matches!(io_out(&mut sim, 0x80, 1, 0), Err(VmCallError::TdCall(_))));
    }

    #[test]
    fn map_gpa_follows_retries_within_the_range() {
        let shared_bit = 1 << 51;
        let mut sim = SimTdx::new();
        sim.map_gpa_chunk = 0x3000;
        map_gpa(&mut sim, 0x10_0000, 0x8000, true, shared_bit).unwrap();
        let starts: Vec<u64> = sim.map_gpa_calls.iter().map(|c| c.0 & !shared_bit).collect();
        assert_eq!(starts, [0x10_0000, 0x10_3000, 0x10_6000]);
        assert!(sim.map_gpa_calls.iter().all(|c| c.0 & shared_bit != 0), "sharing sets the shared bit");
        let mut sim = SimTdx::new();
        map_gpa(&mut sim, 0x10_0000, 0x1000, false, shared_bit).unwrap();
        assert_eq!(sim.map_gpa_calls, [(0x10_0000, 0x1000)]);
        // Arguments.
        assert_eq!(map_gpa(&mut sim, 0x10_0800, 0x1000, true, shared_bit), Err(VmCallError::InvalidArgument));
        assert_eq!(map_gpa(&mut sim, 0x10_0000, 0, true, shared_bit), Err(VmCallError::InvalidArgument));
        assert_eq!(map_gpa(&mut sim, shared_bit - 0x1000, 0x2000, true, shared_bit), Err(VmCallError::InvalidArgument));
        // The very top of the private space.
        map_gpa(&mut sim, shared_bit - 0x1000, 0x1000, true, shared_bit).unwrap();
        assert_eq!(sim.map_gpa_calls.last(), Some(&(2 * shared_bit - 0x1000, 0x1000)));
    }

    #[test]
    fn hostile_map_gpa_retries_are_refused() {
        let shared_bit = 1 << 47;
        for (resume, expected) in [
            (0x20_0000 | shared_bit, VmCallError::MapGpaOutOfRange), // beyond the range
            (0x0F_F000 | shared_bit, VmCallError::MapGpaOutOfRange), // backwards
            (0x10_0800 | shared_bit, VmCallError::MapGpaOutOfRange), // not page-aligned
            (0x10_0000, VmCallError::MapGpaOutOfRange),              // shared bit dropped
            (0x10_0000 | shared_bit, VmCallError::MapGpaNoProgress), // no progress, for ever
        ] {
            let mut sim = SimTdx::new();
            sim.gpaw = 48;
            sim.map_gpa_chunk = 0x1000;
            sim.map_gpa_resume = Some(resume);
            assert_eq!(map_gpa(&mut sim, 0x10_0000, 0x4000, true, shared_bit), Err(expected), "{resume:#x}");
            assert!(sim.map_gpa_calls.len() <= MAP_GPA_MAX_STALLED_RETRIES as usize + 1);
        }
    }

    #[test]
    fn fatal_error_reports_code_and_message() {
        let mut sim = SimTdx::new();
        report_fatal_error(&mut sim, 0x0E01_0030, "unexpected #VE: EPT violation at 0xfee00000");
        let (code, text) = sim.fatal.clone().unwrap();
        assert_eq!(code, 0x0E01_0030);
        assert!(text.starts_with(b"unexpected #VE: EPT violation at 0xfee00000\0"));
        assert_eq!(*sim.masks.last().unwrap(), 0xFC00 | 1 << 2 | 1 << 3 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 9);
        // A long message is cut at 64 bytes.
        report_fatal_error(&mut sim, 0, &"x".repeat(100));
        assert_eq!(sim.fatal.unwrap().1, vec![b'x'; 64]);
        assert_eq!(setup_event_notify_interrupt(&mut SimTdx::new(), 31), Err(VmCallError::InvalidArgument));
        setup_event_notify_interrupt(&mut SimTdx::new(), 0xEC).unwrap();
    }
}
