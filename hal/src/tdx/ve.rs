//! The #VE policy: what a virtualization exception means and what the handler does about
//! it (TDX Module ABI "TDG.VP.VEINFO.GET" and Base Architecture spec, "#VE" chapter).
//!
//! Halcyon issues its own port I/O, MMIO and MSR accesses as explicit TDVMCALLs, so it
//! expects two kinds of #VE:
//! - CPUID for a leaf the TDX module does not answer itself ([`handle_cpuid`]), emulated
//!   through Instruction.CPUID; RIP advances by the instruction length after checking it
//!   is 2 (`0F A2`).
//! - MMIO by code that does not use the kernel's TDVMCALL path (the virtio driver crate's
//!   BAR accesses), an EPT violation on shared memory ([`handle_mmio`]; GHCI v1.5 §3.7
//!   "#VE.RequestMMIO", TDX module base architecture "#VE" chapter: the VE information
//!   gives the GPA and the instruction length). The instruction at RIP, read by the kernel
//!   from its own text, is decoded ([`crate::mmio_insn`]); the handler requires the GPA to
//!   carry the shared bit and to be the decoded effective address (the kernel maps devices
//!   at their GPA without the shared bit in the virtual address), the decoded length to be
//!   the VE information's, and the address to be a device register the kernel allows (a
//!   caller-supplied predicate, never RAM). Then it performs the access through
//!   TDVMCALL<#VE.RequestMMIO>, writes the destination register back with the
//!   partial-register rules (status flags for CMP/TEST) and advances RIP.
//!
//! Everything else ends the TD with a reason: guessing at an instruction the kernel did not
//! issue would let the host steer the guest. Written to the specifications, unverified on
//! TDX hardware.

use super::tdcall::{self, TdCallError, VeInfo};
use super::vmcall::{self, VmCallError, EXIT_REASON_CPUID, EXIT_REASON_EPT_VIOLATION};
use super::TdCall;
use crate::mmio_insn::{self, Access, DecodeError, Registers};
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
    /// An MMIO #VE whose GPA lacks the shared bit (private memory).
    MmioNotShared(u64),
    /// An MMIO #VE whose instruction is not one of the accepted forms.
    NotMmioMove(DecodeError),
    /// The decoded instruction disagrees with the VE information (length or address).
    MmioMismatch { decoded_length: u8, ve_length: u32, decoded_address: u64, gpa: u64 },
    /// An MMIO #VE for an address the kernel does not allow as a device register.
    NotDevice { address: u64, width: u8 },
    /// The host did not perform the MMIO access.
    MmioFailed(VmCallError),
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
            VeFatal::MmioNotShared(_) => 0x0E00_0004,
            VeFatal::NotMmioMove(_) => 0x0E00_0005,
            VeFatal::MmioMismatch { .. } => 0x0E00_0006,
            VeFatal::NotDevice { .. } => 0x0E00_0007,
            VeFatal::MmioFailed(_) => 0x0E00_0008,
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
            Self::MmioNotShared(gpa) => write!(f, "MMIO #VE for private GPA {gpa:#x}"),
            Self::NotMmioMove(e) => write!(f, "MMIO #VE for an instruction the kernel does not emulate: {e}"),
            Self::MmioMismatch { decoded_length, ve_length, decoded_address, gpa } => write!(
                f,
                "MMIO #VE: decoded {decoded_length} bytes at {decoded_address:#x}, VE information says {ve_length} bytes, GPA {gpa:#x}"
            ),
            Self::NotDevice { address, width } => {
                write!(f, "MMIO #VE for {width} bytes at {address:#x}, not a device register the kernel maps")
            }
            Self::MmioFailed(e) => write!(f, "MMIO emulation failed: {e}"),
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

/// The whole CPUID handler: fetch the #VE information and hand it to [`handle_cpuid`].
pub fn handle(t: &mut impl TdCall, context: &mut VeContext) -> Result<(), VeFatal> {
    let info = tdcall::veinfo_get(t).map_err(VeFatal::NoVeInfo)?;
    handle_cpuid(t, &info, context)
}

/// For a #VE whose information the caller fetched ([`tdcall::veinfo_get`], which may be
/// called once per #VE): decide, and for CPUID put the host's answer into the context
/// (zero-extended, as CPUID does) and advance RIP.
pub fn handle_cpuid(t: &mut impl TdCall, info: &VeInfo, context: &mut VeContext) -> Result<(), VeFatal> {
    match decide(info) {
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

/// Handles an EPT-violation #VE on shared memory (see the module documentation):
/// `instruction` is up to 15 bytes at `regs.rip` from the kernel's text, `shared_bit` the
/// TD's shared GPA bit, `is_device(address, width)` the kernel's device-register policy.
/// On any error `regs` is unchanged.
pub fn handle_mmio(
    t: &mut impl TdCall,
    info: &VeInfo,
    instruction: &[u8],
    regs: &mut Registers,
    shared_bit: u64,
    is_device: impl FnOnce(u64, u64) -> bool,
) -> Result<(), VeFatal> {
    if u64::from(info.exit_reason) != EXIT_REASON_EPT_VIOLATION {
        return Err(VeFatal::UnexpectedExit(info.exit_reason));
    }
    if shared_bit == 0 || info.gpa & shared_bit == 0 {
        return Err(VeFatal::MmioNotShared(info.gpa));
    }
    let insn = mmio_insn::decode(instruction, regs).map_err(VeFatal::NotMmioMove)?;
    if u32::from(insn.length) != info.instruction_length || insn.address != info.gpa & !shared_bit {
        return Err(VeFatal::MmioMismatch {
            decoded_length: insn.length,
            ve_length: info.instruction_length,
            decoded_address: insn.address,
            gpa: info.gpa,
        });
    }
    let width = insn.width.bytes();
    if insn.address.checked_add(width).is_none() || !is_device(insn.address, width) {
        return Err(VeFatal::NotDevice { address: insn.address, width: width as u8 });
    }
    let value = match insn.access {
        Access::Read { .. } | Access::Compare { .. } => {
            vmcall::mmio_read(t, info.gpa, width as u8).map_err(VeFatal::MmioFailed)?
        }
        Access::WriteRegister { .. } | Access::WriteImmediate { .. } => {
            let value = insn.store_value(regs).unwrap_or_default();
            vmcall::mmio_write(t, info.gpa, width as u8, value).map_err(VeFatal::MmioFailed)?;
            0
        }
    };
    insn.complete(regs, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmio_insn::Gpr;
    use crate::tdx::sim::SimTdx;
    use crate::tdx::vmcall::EXIT_REASON_IO_INSTRUCTION;

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

    const SHARED: u64 = 1 << 51;
    const BAR: core::ops::Range<u64> = 0xC000_0000..0xC000_4000;

    fn bar(address: u64, width: u64) -> bool {
        BAR.start <= address && address + width <= BAR.end
    }

    fn mmio_ve(gpa: u64, instruction_length: u32) -> VeInfo {
        VeInfo { gpa, ..ve(EXIT_REASON_EPT_VIOLATION, instruction_length) }
    }

    #[test]
    fn mmio_is_emulated_through_request_mmio() {
        let mut sim = SimTdx::new();
        let mut regs = Registers { rip: 0x20_0000, ..Registers::default() };
        regs.set(Gpr::Rdi, 0xC000_0000);
        regs.set(Gpr::Rsi, 0x1234);
        // mov word ptr [rdi+0x16], si (the kernel's queue notify)
        let store = [0x66, 0x89, 0x77, 0x16];
        handle_mmio(&mut sim, &mmio_ve(SHARED | 0xC000_0016, 4), &store, &mut regs, SHARED, bar).unwrap();
        assert_eq!(sim.mmio[&(SHARED | 0xC000_0016)], 0x1234);
        assert_eq!(regs.rip, 0x20_0004);
        // movzx ecx, word ptr [rdi+0x16]
        regs.set(Gpr::Rcx, u64::MAX);
        handle_mmio(&mut sim, &mmio_ve(SHARED | 0xC000_0016, 4), &[0x0F, 0xB7, 0x4F, 0x16], &mut regs, SHARED, bar).unwrap();
        assert_eq!(regs.get(Gpr::Rcx), 0x1234);
        assert_eq!(regs.rip, 0x20_0008);
    }

    #[test]
    fn mmio_that_does_not_check_out_is_fatal() {
        let mut sim = SimTdx::new();
        let mut regs = Registers { rip: 0x20_0000, ..Registers::default() };
        regs.set(Gpr::Rdi, 0xC000_0000);
        let before = regs;
        let load = [0x8B, 0x07]; // mov eax, dword ptr [rdi]
        let run = |sim: &mut SimTdx, regs: &mut Registers, info: VeInfo, bytes: &[u8]| handle_mmio(sim, &info, bytes, regs, SHARED, bar);
        // A private GPA.
        assert_eq!(run(&mut sim, &mut regs, mmio_ve(0xC000_0000, 2), &load), Err(VeFatal::MmioNotShared(0xC000_0000)));
        // The VE information's length or GPA disagrees with the instruction.
        assert!(matches!(run(&mut sim, &mut regs, mmio_ve(SHARED | 0xC000_0000, 3), &load), Err(VeFatal::MmioMismatch { .. })));
        assert!(matches!(run(&mut sim, &mut regs, mmio_ve(SHARED | 0xC000_0004, 2), &load), Err(VeFatal::MmioMismatch { .. })));
        // Not an accepted instruction.
        assert!(matches!(run(&mut sim, &mut regs, mmio_ve(SHARED | 0xC000_0000, 3), &[0xF0, 0x01, 0x07]), Err(VeFatal::NotMmioMove(_))));
        // Outside the device's BAR.
        regs.set(Gpr::Rdi, 0xC000_4000);
        assert_eq!(
            run(&mut sim, &mut regs, mmio_ve(SHARED | 0xC000_4000, 2), &load),
            Err(VeFatal::NotDevice { address: 0xC000_4000, width: 4 })
        );
        regs = before;
        // Another exit reason.
        assert_eq!(run(&mut sim, &mut regs, ve(EXIT_REASON_CPUID, 2), &load), Err(VeFatal::UnexpectedExit(10)));
        assert!(sim.mmio.is_empty());
        // The host refuses.
        sim.vmcall_status = Some(0x8000_0000_0000_0000);
        assert!(matches!(run(&mut sim, &mut regs, mmio_ve(SHARED | 0xC000_0000, 2), &load), Err(VeFatal::MmioFailed(_))));
        assert_eq!(regs, before, "a fatal #VE changes nothing");
        assert_eq!(VeFatal::NotDevice { address: 0, width: 1 }.code(), 0x0E00_0007);
    }
}
