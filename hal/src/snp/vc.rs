//! The #VC policy: what an SEV-ES/SNP "VMM communication" exception means and what the
//! handler does about it (AMD APM vol. 2, SEV-ES chapter "#VC Exception"; GHCB spec 56421).
//!
//! Halcyon issues its own port I/O, MMIO and MSR accesses as explicit GHCB exits, so the
//! only #VC it expects is CPUID. That one is answered from the PSP-validated CPUID page
//! (never from the hypervisor), after checking that the bytes at RIP really are CPUID
//! (`0F A2`), and RIP advances by 2. Anything else is fatal: the kernel asks the
//! hypervisor to terminate it with [`VcFatal::reason`], and never continues on a guess.

use super::cpuid_page::CpuidPage;
use super::ghcb::SVM_EXIT_CPUID;
use super::ghcb_msr::{HalcyonReason, TerminationReason};
use core::fmt;

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
}

impl VcFatal {
    /// The termination request the kernel sends for it.
    pub const fn reason(&self) -> TerminationReason {
        TerminationReason::Halcyon(HalcyonReason::UnexpectedVc)
    }
}

impl fmt::Display for VcFatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedExit(code) => write!(f, "unexpected #VC (exit code {code:#x})"),
            Self::NotCpuid => f.write_str("#VC for CPUID, but the instruction is not CPUID"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snp::cpuid_page::build;

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
}
