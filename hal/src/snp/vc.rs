//! The #VC policy: what an SEV-ES/SNP "VMM communication" exception means and what the
//! handler does about it (AMD APM vol. 2, SEV-ES chapter "#VC Exception"; GHCB spec 56421).
//!
//! Halcyon issues its own port I/O, MMIO and MSR accesses as explicit GHCB exits, so it
//! expects two kinds of #VC:
//! - CPUID ([`handle`]), answered from the PSP-validated CPUID page (never from the
//!   hypervisor), after checking that the bytes at RIP really are CPUID (`0F A2`); RIP
//!   advances by 2.
//! - MMIO by code the kernel does not route itself (the virtio driver crate's BAR
//!   accesses): a nested page fault, error code `SVM_EXIT_NPF` ([`handle_npf`]). The #VC
//!   does not report the address, so the handler decodes the instruction at RIP
//!   ([`crate::mmio_insn`]: only the MOV/MOVZX/CMP/TEST forms compilers emit for volatile
//!   accesses) and computes the effective
//!   address, which is the guest-physical address because the kernel identity-maps. Only
//!   when that lies in a device range the kernel allows (a caller-supplied predicate; never
//!   RAM) does it perform the access through the GHCB MMIO exits, write the destination
//!   register back with the partial-register rules, and advance RIP by the decoded length.
//!
//! Anything else is fatal: the kernel asks the hypervisor to terminate it with
//! [`VcFatal::reason`], and never continues on a guess. Written to the specifications,
//! unverified on SEV-SNP hardware.

use super::cpuid_page::CpuidPage;
use super::ghcb::{self, Ghcb, GhcbError, SVM_EXIT_CPUID};
use super::ghcb_msr::{HalcyonReason, TerminationReason};
use super::Vmgexit;
use crate::mmio_insn::{self, Access, DecodeError, Registers};
use core::fmt;

/// Nested page fault: the #VC error code of an access to MMIO the hypervisor intercepts
/// (AMD APM vol. 2 appendix C "SVM Intercept Exit Codes", VMEXIT_NPF = 0x400; the #VC
/// error code is the exit code, APM vol. 2 SEV-ES chapter "#VC Exception").
pub const SVM_EXIT_NPF: u64 = 0x400;

/// CPUID's encoding.
pub const CPUID_OPCODE: [u8; 2] = [0x0F, 0xA2];

/// The interrupted context's registers the handler reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcContext {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rip: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcFatal {
    /// A #VC for an exit the kernel does not handle (the error code is the exit code).
    UnexpectedExit(u64),
    /// The error code says CPUID, but the bytes at RIP are not `0F A2`.
    NotCpuid,
    /// An MMIO #VC whose instruction is not one of the accepted MOV forms.
    NotMmioMove(DecodeError),
    /// An MMIO #VC for an address the kernel does not allow as a device register.
    NotDevice { address: u64, width: u8 },
    /// The GHCB MMIO exit failed or its answer did not check out.
    Ghcb(GhcbError),
}

impl VcFatal {
    /// The termination request the kernel sends for it.
    pub const fn reason(&self) -> TerminationReason {
        match self {
            Self::Ghcb(_) => TerminationReason::Halcyon(HalcyonReason::GhcbResponse),
            _ => TerminationReason::Halcyon(HalcyonReason::UnexpectedVc),
        }
    }
}

impl fmt::Display for VcFatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedExit(code) => write!(f, "unexpected #VC (exit code {code:#x})"),
            Self::NotCpuid => f.write_str("#VC for CPUID, but the instruction is not CPUID"),
            Self::NotMmioMove(e) => write!(f, "MMIO #VC for an instruction the kernel does not emulate: {e}"),
            Self::NotDevice { address, width } => {
                write!(f, "MMIO #VC for {width} bytes at {address:#x}, not a device register the kernel maps")
            }
            Self::Ghcb(e) => write!(f, "MMIO #VC: the GHCB MMIO exit failed: {e}"),
        }
    }
}

impl core::error::Error for VcFatal {}

/// Handles a #VC: `error_code` is the exception's error code (the exit code), and
/// `instruction` the bytes at RIP (the kernel reads at least two from its own text).
pub fn handle(page: &CpuidPage, error_code: u64, instruction: &[u8], context: &mut VcContext) -> Result<(), VcFatal> {
    if error_code != SVM_EXIT_CPUID {
        return Err(VcFatal::UnexpectedExit(error_code));
    }
    if instruction.get(..2) != Some(&CPUID_OPCODE[..]) {
        return Err(VcFatal::NotCpuid);
    }
    let r = page.lookup(context.rax as u32, context.rcx as u32);
    context.rax = r.eax as u64;
    context.rbx = r.ebx as u64;
    context.rcx = r.ecx as u64;
    context.rdx = r.edx as u64;
    context.rip = context.rip.wrapping_add(CPUID_OPCODE.len() as u64);
    Ok(())
}

/// Handles an MMIO #VC (`error_code` must be [`SVM_EXIT_NPF`]): decodes `instruction` (the
/// bytes at `regs.rip`, up to 15, read by the kernel from its own text), and if it is an
/// accepted MOV to or from an address `is_device(address, width)` allows, performs it
/// through the GHCB MMIO exits (GHCB spec 56421 "MMIO Access": SVM_VMGEXIT_MMIO_READ /
/// _WRITE), completes the destination register and advances RIP. On any error `regs` is
/// unchanged. `is_device` must say no for all RAM: emulating a RAM access through the
/// hypervisor would hand it private data.
pub fn handle_npf(
    v: &mut impl Vmgexit,
    ghcb: &mut Ghcb,
    error_code: u64,
    instruction: &[u8],
    regs: &mut Registers,
    is_device: impl FnOnce(u64, u64) -> bool,
) -> Result<(), VcFatal> {
    if error_code != SVM_EXIT_NPF {
        return Err(VcFatal::UnexpectedExit(error_code));
    }
    let insn = mmio_insn::decode(instruction, regs).map_err(VcFatal::NotMmioMove)?;
    let width = insn.width.bytes();
    if insn.address.checked_add(width).is_none() || !is_device(insn.address, width) {
        return Err(VcFatal::NotDevice { address: insn.address, width: width as u8 });
    }
    let ghcb_width = match insn.width {
        mmio_insn::Width::U8 => ghcb::Width::Byte,
        mmio_insn::Width::U16 => ghcb::Width::Word,
        mmio_insn::Width::U32 => ghcb::Width::Dword,
        mmio_insn::Width::U64 => ghcb::Width::Qword,
    };
    let value = match insn.access {
        Access::Read { .. } | Access::Compare { .. } => ghcb::mmio_read(v, ghcb, insn.address, ghcb_width).map_err(VcFatal::Ghcb)?,
        Access::WriteRegister { .. } | Access::WriteImmediate { .. } => {
            let value = insn.store_value(regs).unwrap_or_default();
            ghcb::mmio_write(v, ghcb, insn.address, ghcb_width, value).map_err(VcFatal::Ghcb)?;
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
    use crate::snp::cpuid_page::build;
    use crate::snp::sim::{Hostile, SimSnp};

    #[test]
    fn cpuid_comes_from_the_page() {
        let page = CpuidPage::parse(&build(&[(0x8000_001F, 0, 0, [0x1_FFFF, 0x4173, 0x1FD, 1])])).unwrap();
        let mut ctx = VcContext { rax: 0x8000_001F, rbx: u64::MAX, rcx: 0, rdx: 9, rip: 0x1000 };
        handle(&page, 0x72, &[0x0F, 0xA2, 0x90], &mut ctx).unwrap();
        assert_eq!(ctx, VcContext { rax: 0x1_FFFF, rbx: 0x4173, rcx: 0x1FD, rdx: 1, rip: 0x1002 });
        // A leaf the page does not list reads as zeros.
        let mut ctx = VcContext { rax: 0x4000_0000, rip: 0x2000, ..VcContext::default() };
        handle(&page, 0x72, &CPUID_OPCODE, &mut ctx).unwrap();
        assert_eq!(ctx, VcContext { rip: 0x2002, ..VcContext::default() });
    }

    #[test]
    fn everything_else_is_fatal() {
        let page = CpuidPage::parse(&build(&[(0, 0, 0, [1, 2, 3, 4])])).unwrap();
        let mut ctx = VcContext::default();
        assert_eq!(handle(&page, 0x7B, &CPUID_OPCODE, &mut ctx), Err(VcFatal::UnexpectedExit(0x7B)));
        assert_eq!(handle(&page, 0x72, &[0x0F, 0x05], &mut ctx), Err(VcFatal::NotCpuid));
        assert_eq!(handle(&page, 0x72, &[0x0F], &mut ctx), Err(VcFatal::NotCpuid));
        assert_eq!(ctx, VcContext::default(), "a fatal #VC changes nothing");
        assert_eq!(VcFatal::NotCpuid.reason().set_and_code(), (0xF, 7));
    }

    const BAR: core::ops::Range<u64> = 0xFE00_0000..0xFE00_4000;

    fn bar(address: u64, width: u64) -> bool {
        BAR.start <= address && address + width <= BAR.end
    }

    #[test]
    fn mmio_reads_and_writes_go_through_the_ghcb() {
        let (mut sim, mut ghcb) = (SimSnp::new(), Ghcb::new_boxed());
        let mut regs = Registers { rip: 0x20_0000, ..Registers::default() };
        regs.set(Gpr::Rdi, 0xFE00_0000);
        regs.set(Gpr::Rsi, 0xAABB_CCDD);
        // mov dword ptr [rdi+0x14], esi
        handle_npf(&mut sim, &mut ghcb, SVM_EXIT_NPF, &[0x89, 0x77, 0x14, 0xCC], &mut regs, bar).unwrap();
        assert_eq!(sim.mmio[&0xFE00_0014], 0xAABB_CCDD);
        assert_eq!(regs.rip, 0x20_0003);
        // mov byte ptr [rdi+1], 0x80
        handle_npf(&mut sim, &mut ghcb, SVM_EXIT_NPF, &[0xC6, 0x47, 0x01, 0x80], &mut regs, bar).unwrap();
        assert_eq!(sim.mmio[&0xFE00_0001], 0x80);
        // movzx eax, word ptr [rdi+0x14]: zero-extends over the old RAX.
        regs.set(Gpr::Rax, u64::MAX);
        handle_npf(&mut sim, &mut ghcb, SVM_EXIT_NPF, &[0x0F, 0xB7, 0x47, 0x14], &mut regs, bar).unwrap();
        assert_eq!(regs.get(Gpr::Rax), 0xCCDD);
        // mov ah, byte ptr [rdi+0x14]: only bits 15:8 change.
        handle_npf(&mut sim, &mut ghcb, SVM_EXIT_NPF, &[0x8A, 0x67, 0x14], &mut regs, bar).unwrap();
        assert_eq!(regs.get(Gpr::Rax), 0xDDDD);
        // mov rax, qword ptr [rdi+0x100]: a register the device never wrote reads what the
        // simulated device answers.
        handle_npf(&mut sim, &mut ghcb, SVM_EXIT_NPF, &[0x48, 0x8B, 0x87, 0x00, 0x01, 0x00, 0x00], &mut regs, bar).unwrap();
        assert_eq!(regs.get(Gpr::Rax), 0x1122_3344_5566_7788);
        // testb $0xcf, 0x14(%rdi) (the kernel's device-status poll): a read that sets only flags.
        let before = regs;
        handle_npf(&mut sim, &mut ghcb, SVM_EXIT_NPF, &[0xF6, 0x47, 0x14, 0xCF], &mut regs, bar).unwrap();
        assert_eq!(regs.gpr, before.gpr);
        assert_eq!(regs.rflags & mmio_insn::flags::ZF, 0, "0xDD & 0xCF is not zero");
        assert_eq!(regs.rip, 0x20_0000 + 3 + 4 + 4 + 3 + 7 + 4);
        assert_eq!(sim.exits.iter().filter(|&&e| e == ghcb::SVM_VMGEXIT_MMIO_WRITE).count(), 2);
        assert_eq!(sim.exits.iter().filter(|&&e| e == ghcb::SVM_VMGEXIT_MMIO_READ).count(), 4);
    }

    #[test]
    fn mmio_outside_the_devices_or_undecodable_is_fatal() {
        let (mut sim, mut ghcb) = (SimSnp::new(), Ghcb::new_boxed());
        let mut regs = Registers { rip: 0x20_0000, ..Registers::default() };
        regs.set(Gpr::Rdi, 0xFE00_3FFE);
        let before = regs;
        // A 4-byte read crossing the end of the BAR.
        assert_eq!(
            handle_npf(&mut sim, &mut ghcb, SVM_EXIT_NPF, &[0x8B, 0x07], &mut regs, bar),
            Err(VcFatal::NotDevice { address: 0xFE00_3FFE, width: 4 })
        );
        // RAM (the predicate says no) is never emulated through the hypervisor.
        regs.set(Gpr::Rdi, 0x10_0000);
        assert!(matches!(
            handle_npf(&mut sim, &mut ghcb, SVM_EXIT_NPF, &[0x89, 0x07], &mut regs, bar),
            Err(VcFatal::NotDevice { .. })
        ));
        regs = before;
        // Not a MOV (LOCK ADD), truncated, a register form.
        for bytes in [&[0xF0, 0x01, 0x07][..], &[0x8B], &[0x8B, 0xC7]] {
            assert!(matches!(
                handle_npf(&mut sim, &mut ghcb, SVM_EXIT_NPF, bytes, &mut regs, |_, _| true),
                Err(VcFatal::NotMmioMove(_))
            ));
        }
        // An address wrapping past the top.
        regs.set(Gpr::Rdi, u64::MAX - 1);
        assert!(matches!(
            handle_npf(&mut sim, &mut ghcb, SVM_EXIT_NPF, &[0x8B, 0x07], &mut regs, |_, _| true),
            Err(VcFatal::NotDevice { .. })
        ));
        regs = before;
        // Another exit code.
        assert_eq!(
            handle_npf(&mut sim, &mut ghcb, 0x7B, &[0x8B, 0x07], &mut regs, bar),
            Err(VcFatal::UnexpectedExit(0x7B))
        );
        assert!(sim.exits.is_empty(), "nothing reached the hypervisor");
        assert_eq!(regs, before, "a fatal #VC changes nothing");
        assert_eq!(VcFatal::NotMmioMove(DecodeError::Truncated).reason().set_and_code(), (0xF, 7));
    }

    #[test]
    fn a_bad_ghcb_answer_is_fatal_and_changes_nothing() {
        let (mut sim, mut ghcb) = (SimSnp::new(), Ghcb::new_boxed());
        sim.hostile = Hostile::ExitInfo(1, 0x0000_0000_8000_0603);
        let mut regs = Registers { rip: 0x20_0000, ..Registers::default() };
        regs.set(Gpr::Rdi, 0xFE00_0000);
        let before = regs;
        let result = handle_npf(&mut sim, &mut ghcb, SVM_EXIT_NPF, &[0x8B, 0x07], &mut regs, bar);
        assert!(matches!(result, Err(VcFatal::Ghcb(_))), "{result:?}");
        assert_eq!(regs, before);
        assert_eq!(result.unwrap_err().reason().set_and_code(), (0xF, 8));
    }
}
