//! What the SEV-SNP #VC and TDX #VE handlers share when they emulate a device access by
//! code that does not use the kernel's paravirtual MMIO path (the virtio driver crate): the
//! instruction bytes, read only from the kernel's own text, and the exception frame seen as
//! the register file `halcyon_hal::mmio_insn` decodes against and completes.

use crate::arch::interrupts::ExceptionFrame;
use halcyon_hal::mmio_insn::{flags, Gpr, Registers, MAX_INSTRUCTION_LEN};

/// The general registers of an exception frame, in encoding order.
pub fn registers(frame: &ExceptionFrame) -> Registers {
    let mut r = Registers { rip: frame.rip, rflags: frame.rflags, ..Registers::default() };
    for (gpr, value) in [
        (Gpr::Rax, frame.rax),
        (Gpr::Rcx, frame.rcx),
        (Gpr::Rdx, frame.rdx),
        (Gpr::Rbx, frame.rbx),
        (Gpr::Rsp, frame.rsp),
        (Gpr::Rbp, frame.rbp),
        (Gpr::Rsi, frame.rsi),
        (Gpr::Rdi, frame.rdi),
        (Gpr::R8, frame.r8),
        (Gpr::R9, frame.r9),
        (Gpr::R10, frame.r10),
        (Gpr::R11, frame.r11),
        (Gpr::R12, frame.r12),
        (Gpr::R13, frame.r13),
        (Gpr::R14, frame.r14),
        (Gpr::R15, frame.r15),
    ] {
        r.set(gpr, value);
    }
    r
}

/// Writes back what an emulated instruction may change: general registers, RIP and the
/// status flags (RSP too: the CPU restores it from the frame, and a MOV into SPL/SP/ESP/RSP
/// changes it).
pub fn write_back(frame: &mut ExceptionFrame, r: &Registers) {
    frame.rax = r.get(Gpr::Rax);
    frame.rcx = r.get(Gpr::Rcx);
    frame.rdx = r.get(Gpr::Rdx);
    frame.rbx = r.get(Gpr::Rbx);
    frame.rsp = r.get(Gpr::Rsp);
    frame.rbp = r.get(Gpr::Rbp);
    frame.rsi = r.get(Gpr::Rsi);
    frame.rdi = r.get(Gpr::Rdi);
    frame.r8 = r.get(Gpr::R8);
    frame.r9 = r.get(Gpr::R9);
    frame.r10 = r.get(Gpr::R10);
    frame.r11 = r.get(Gpr::R11);
    frame.r12 = r.get(Gpr::R12);
    frame.r13 = r.get(Gpr::R13);
    frame.r14 = r.get(Gpr::R14);
    frame.r15 = r.get(Gpr::R15);
    frame.rip = r.rip;
    frame.rflags = (frame.rflags & !flags::STATUS) | (r.rflags & flags::STATUS);
}

/// Up to 15 bytes at `rip`, read only from the kernel's own text (never through RIP
/// anywhere else: a #VC elsewhere is fatal anyway); fewer near the end of the text, none
/// outside it.
pub fn text_bytes(rip: u64, buffer: &mut [u8; MAX_INSTRUCTION_LEN]) -> &[u8] {
    let text = crate::arch::paging::kernel_layout().text_contents;
    if rip < text.start || rip >= text.end {
        return &[];
    }
    let len = (text.end - rip).min(MAX_INSTRUCTION_LEN as u64) as usize;
    for (i, b) in buffer[..len].iter_mut().enumerate() {
        // SAFETY: `rip..rip + len` lies in the kernel's .text, mapped readable for its life.
        *b = unsafe { (rip as *const u8).add(i).read_volatile() };
    }
    &buffer[..len]
}
