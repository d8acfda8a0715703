//! The #VE policy: what a virtualization exception means and what the handler does about
//! it (TDX Module ABI "TDG.VP.VEINFO.GET" and Base Architecture spec, "#VE" chapter).
//!
//! Halcyon issues its own port I/O, MMIO and MSR accesses as explicit TDVMCALLs, so the
//! only #VE it expects is CPUID for a leaf the TDX module does not answer itself. That one
//! is emulated through Instruction.CPUID, and RIP advances by the instruction length after
//! checking it is 2 (`0F A2`). Everything else ends the TD with a reason: guessing at an
//! instruction the kernel did not issue would let the host steer the guest.

use super::tdcall::{self, TdCallError, VeInfo};
use super::vmcall::{self, VmCallError, EXIT_REASON_CPUID};
use super::TdCall;
use core::fmt;

/// Length of CPUID (`0F A2`).
pub const CPUID_INSTRUCTION_LENGTH: u32 = 2;

/// The interrupted context's registers the handler reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VeContext {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rip: u64,
}

/// Why a #VE is fatal. The kernel reports it with ReportFatalError and halts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VeFatal {
    /// TDG.VP.VEINFO.GET failed (no #VE information).
    NoVeInfo(TdCallError),
    /// An exit the kernel does not handle in a #VE (the SDM basic exit reason).
    UnexpectedExit(u32),
    /// CPUID with an instruction length other than 2.
    BadInstructionLength(u32),
    /// The host did not answer the CPUID emulation.
    CpuidFailed(VmCallError),
}

impl VeFatal {
    /// The error code for ReportFatalError's R12 (Halcyon's own: the GHCI leaves bits
    /// 31:0 to the TD): 0E00_00xxh for #VE failures, 0E01_xxxxh with the exit reason.
    pub fn code(&self) -> u32 {
        match self {
            VeFatal::NoVeInfo(_) => 0x0E00_0001,
            VeFatal::UnexpectedExit(reason) => 0x0E01_0000 | (reason & 0xFFFF),
            VeFatal::BadInstructionLength(_) => 0x0E00_0002,
            VeFatal::CpuidFailed(_) => 0x0E00_0003,
        }
    }
}

impl fmt::Display for VeFatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVeInfo(e) => write!(f, "#VE without VE info: {e}"),
            Self::UnexpectedExit(reason) => write!(f, "unexpected #VE (exit reason {reason})"),
            Self::BadInstructionLength(len) => write!(f, "#VE for CPUID with instruction length {len}"),
            Self::CpuidFailed(e) => write!(f, "CPUID emulation failed: {e}"),
        }
    }
}

impl core::error::Error for VeFatal {}

/// What to do about a #VE, from its information alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VeDecision {
    /// Emulate CPUID and advance RIP by this many bytes.
    EmulateCpuid { instruction_length: u32 },
    Fatal(VeFatal),
}

/// Decides from the #VE information (pure).
pub fn decide(info: &VeInfo) -> VeDecision {
    match info.exit_reason as u64 {
        EXIT_REASON_CPUID if info.instruction_length == CPUID_INSTRUCTION_LENGTH => {
            VeDecision::EmulateCpuid { instruction_length: info.instruction_length }
        }
        EXIT_REASON_CPUID => VeDecision::Fatal(VeFatal::BadInstructionLength(info.instruction_length)),
        _ => VeDecision::Fatal(VeFatal::UnexpectedExit(info.exit_reason)),
    }
}

/// The whole handler: fetch the #VE information, decide, and for CPUID put the host's
/// answer into the context (zero-extended, as CPUID does) and advance RIP.
pub fn handle(t: &mut impl TdCall, context: &mut VeContext) -> Result<(), VeFatal> {
    let info = tdcall::veinfo_get(t).map_err(VeFatal::NoVeInfo)?;
    match decide(&info) {
        VeDecision::EmulateCpuid { instruction_length } => {
            let [eax, ebx, ecx, edx] = vmcall::cpuid(t, context.rax as u32, context.rcx as u32).map_err(VeFatal::CpuidFailed)?;
            context.rax = eax as u64;
            context.rbx = ebx as u64;
            context.rcx = ecx as u64;
            context.rdx = edx as u64;
            context.rip = context.rip.wrapping_add(instruction_length as u64);
            Ok(())
        }
        VeDecision::Fatal(reason) => Err(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tdx::sim::SimTdx;
    use crate::tdx::vmcall::{EXIT_REASON_EPT_VIOLATION, EXIT_REASON_IO_INSTRUCTION};

    fn ve(exit_reason: u64, instruction_length: u32) -> VeInfo {
        VeInfo { exit_reason: exit_reason as u32, exit_qualification: 0, gla: 0, gpa: 0, instruction_length, instruction_info: 0 }
    }

    #[test]
    fn cpuid_is_emulated_and_rip_advances_by_two() {
        let mut sim = SimTdx::new();
        sim.ve = Some(ve(EXIT_REASON_CPUID, 2));
        let mut ctx = VeContext { rax: 0x4000_0000, rbx: 0xFFFF_FFFF_FFFF_FFFF, rcx: 0, rdx: 7, rip: 0x1000 };
        handle(&mut sim, &mut ctx).unwrap();
        assert_eq!(ctx, VeContext { rax: 0x4000_0001, rbx: 0xB, rcx: 0xC, rdx: 0xD, rip: 0x1002 });
    }

    #[test]
    fn everything_else_is_fatal_with_a_reason() {
        assert_eq!(decide(&ve(EXIT_REASON_CPUID, 3)), VeDecision::Fatal(VeFatal::BadInstructionLength(3)));
        assert_eq!(decide(&ve(EXIT_REASON_CPUID, 0)), VeDecision::Fatal(VeFatal::BadInstructionLength(0)));
        for reason in [EXIT_REASON_EPT_VIOLATION, EXIT_REASON_IO_INSTRUCTION, 12, 31, 32, 54, 0xFFFF_FFFF] {
            assert_eq!(decide(&ve(reason, 2)), VeDecision::Fatal(VeFatal::UnexpectedExit(reason as u32)));
        }
        assert_eq!(VeFatal::UnexpectedExit(48).code(), 0x0E01_0030);
        let mut sim = SimTdx::new();
        let mut ctx = VeContext::default();
        sim.ve = Some(ve(EXIT_REASON_EPT_VIOLATION, 0));
        assert_eq!(handle(&mut sim, &mut ctx), Err(VeFatal::UnexpectedExit(48)));
        assert_eq!(ctx, VeContext::default(), "a fatal #VE changes nothing");
        sim.ve = None;
        assert!(matches!(handle(&mut sim, &mut ctx), Err(VeFatal::NoVeInfo(_))));
        // The host refuses the CPUID: fatal, RIP unchanged.
        sim.ve = Some(ve(EXIT_REASON_CPUID, 2));
        sim.vmcall_status = Some(0x8000_0000_0000_0000);
        assert!(matches!(handle(&mut sim, &mut ctx), Err(VeFatal::CpuidFailed(_))));
        assert_eq!(ctx.rip, 0);
    }
}
