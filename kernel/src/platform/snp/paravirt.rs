//! Device access and #VC on SEV-SNP: the kernel's `arch::paravirt` hook.
//!
//! Port I/O (serial, debug console, fw_cfg, PCI configuration ports), MMIO through
//! `arch::mmio` (PCI ECAM) and MSRs become explicit GHCB exits (`halcyon_hal::snp::ghcb`), whose
//! answers the hal checks (valid-bitmap, exit info). CPUID is answered from the CPUID page
//! the PSP validated, never by the hypervisor. The #VC handler follows
//! `halcyon_hal::snp::vc`: CPUID after checking the instruction bytes, and MMIO by code
//! that does not go through `arch::mmio` (the virtio driver crate's BAR accesses, a nested
//! page fault): the instruction, read only from the kernel's own text, is decoded and
//! performed through the GHCB MMIO exits if it is a MOV, MOVZX, CMP or TEST on a register of a device
//! the kernel enabled (`devices::pci::is_device_register`). Anything else ends the VM with
//! a reason code. Written to the specifications, unverified on SEV-SNP hardware.

use super::{fail, CPUID, GHCB};
use crate::arch::interrupts::ExceptionFrame;
use crate::arch::paravirt::{CpuidResult, Paravirt, Width, VMM_COMMUNICATION_EXCEPTION};
use halcyon_hal::platform::sev_status;
use halcyon_hal::snp::ghcb::{self, Ghcb, GhcbError};
use halcyon_hal::snp::ghcb_msr::HalcyonReason;
use crate::platform::mmio_fault::{registers, text_bytes, write_back};
use halcyon_hal::mmio_insn::MAX_INSTRUCTION_LEN;
use halcyon_hal::snp::vc::{self, VcContext, VcFatal, CPUID_OPCODE, SVM_EXIT_NPF};

use super::exits::Exits;

pub struct SnpParavirt;
pub static SNP_PARAVIRT: SnpParavirt = SnpParavirt;

fn hal_width(width: Width) -> ghcb::Width {
    match width {
        Width::U8 => ghcb::Width::Byte,
        Width::U16 => ghcb::Width::Word,
        Width::U32 => ghcb::Width::Dword,
        Width::U64 => ghcb::Width::Qword,
    }
}

/// Runs one GHCB exit sequence with the scratch GHCB; a failed or unverifiable answer ends
/// the VM (the caller cannot be handed a made-up value).
fn exit<R>(what: &'static str, f: impl FnOnce(&mut Exits, &mut Ghcb) -> Result<R, GhcbError>) -> R {
    with_ghcb(f).unwrap_or_else(|e| fail(HalcyonReason::GhcbResponse, format_args!("SEV-SNP {what} through the GHCB failed: {e}")))
}

/// Runs `f` with the scratch GHCB; a missing or busy GHCB ends the VM.
fn with_ghcb<R>(f: impl FnOnce(&mut Exits, &mut Ghcb) -> R) -> R {
    let Some(ghcb) = GHCB.get() else { super::terminate(halcyon_hal::snp::ghcb_msr::TerminationReason::Halcyon(HalcyonReason::GhcbResponse)) };
    // Taken means an exit inside an exit (an exception during one): never mix them.
    let Some(mut ghcb) = ghcb.try_lock() else {
        super::terminate(halcyon_hal::snp::ghcb_msr::TerminationReason::Halcyon(HalcyonReason::GhcbResponse))
    };
    f(&mut Exits::new(), &mut ghcb)
}

fn fail_vc(e: VcFatal, rip: u64) -> ! {
    let reason = match e.reason() {
        halcyon_hal::snp::ghcb_msr::TerminationReason::Halcyon(reason) => reason,
        _ => HalcyonReason::UnexpectedVc,
    };
    fail(reason, format_args!("{e} at RIP {rip:#x}"))
}

impl Paravirt for SnpParavirt {
    fn io_in(&self, port: u16, width: Width) -> u32 {
        exit("port input", |v, g| ghcb::io_in(v, g, port, hal_width(width)))
    }

    fn io_out(&self, port: u16, width: Width, value: u32) {
        exit("port output", |v, g| ghcb::io_out(v, g, port, hal_width(width), value))
    }

    fn mmio_read(&self, gpa: u64, width: Width) -> u64 {
        exit("MMIO read", |v, g| ghcb::mmio_read(v, g, gpa, hal_width(width)))
    }

    fn mmio_write(&self, gpa: u64, width: Width, value: u64) {
        exit("MMIO write", |v, g| ghcb::mmio_write(v, g, gpa, hal_width(width), value))
    }

    fn read_msr(&self, msr: u32) -> u64 {
        if msr == sev_status::MSR {
            // Never intercepted, and the hypervisor's version of it would be worthless.
            // SAFETY: SEV_STATUS exists on every SEV guest; reading it has no side effects.
            return unsafe { ::x86_64::registers::model_specific::Msr::new(msr).read() };
        }
        exit("RDMSR", |v, g| ghcb::rdmsr(v, g, msr))
    }

    fn write_msr(&self, msr: u32, value: u64) {
        exit("WRMSR", |v, g| ghcb::wrmsr(v, g, msr, value))
    }

    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        let r = CPUID.get().map(|page| page.lookup(leaf, subleaf)).unwrap_or_default();
        CpuidResult { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
    }

    fn handle_exception(&self, frame: &mut ExceptionFrame) {
        if frame.vector != VMM_COMMUNICATION_EXCEPTION {
            fail(HalcyonReason::UnexpectedVc, format_args!("exception {} on SEV-SNP", frame.vector));
        }
        if frame.error_code == SVM_EXIT_NPF {
            let mut buffer = [0u8; MAX_INSTRUCTION_LEN];
            let instruction = text_bytes(frame.rip, &mut buffer);
            let mut regs = registers(frame);
            let result = with_ghcb(|v, g| {
                vc::handle_npf(v, g, frame.error_code, instruction, &mut regs, crate::devices::pci::is_device_register)
            });
            match result {
                Ok(()) => return write_back(frame, &regs),
                Err(e) => fail_vc(e, frame.rip),
            }
        }
        // The instruction bytes, read only from the kernel's own text (never through RIP
        // anywhere else: a #VC elsewhere is fatal anyway).
        let text = crate::arch::paging::kernel_layout().text_contents;
        let mut instruction = [0u8; CPUID_OPCODE.len()];
        let in_text = frame.rip >= text.start && frame.rip.checked_add(instruction.len() as u64).is_some_and(|end| end <= text.end);
        if in_text {
            for (i, b) in instruction.iter_mut().enumerate() {
                // SAFETY: `rip..rip + 2` lies in the kernel's .text, mapped readable for its life.
                *b = unsafe { (frame.rip as *const u8).add(i).read_volatile() };
            }
        }
        let Some(page) = CPUID.get() else { fail(HalcyonReason::CpuidPage, format_args!("#VC before the CPUID page")) };
        let mut context = VcContext { rax: frame.rax, rbx: frame.rbx, rcx: frame.rcx, rdx: frame.rdx, rip: frame.rip };
        match vc::handle(page, frame.error_code, &instruction, &mut context) {
            Ok(()) => {
                frame.rax = context.rax;
                frame.rbx = context.rbx;
                frame.rcx = context.rcx;
                frame.rdx = context.rdx;
                frame.rip = context.rip;
            }
            Err(e) => {
                let (_, code) = e.reason().set_and_code();
                debug_assert_eq!(code, HalcyonReason::UnexpectedVc as u8);
                fail(HalcyonReason::UnexpectedVc, format_args!("{e} at RIP {:#x}", frame.rip))
            }
        }
    }
}
