//! The TDCALL instruction: the one place the kernel crosses into the Intel TDX module. Every
//! leaf's marshalling, status decoding and checking lives above [`halcyon_hal::tdx::TdCall`]
//! in `hal/src/tdx/`, tested on the host; this file only moves registers.
//!
//! TDCALL (opcode `66 0F 01 CC`; Intel TDX Module v1.5 ABI spec, "TDCALL Instruction" and
//! the guest-side interface functions chapter) takes its leaf in RAX and its operands in
//! RCX, RDX, R8..R15; TDG.VP.VMCALL additionally passes every GPR its RCX bitmap exposes to
//! the host, which may return any value in them (GHCI v1.5 §2.4 "TDG.VP.VMCALL"). The ABI
//! keeps RSP, and leaves the unexposed registers alone, but the cheapest rule that is right
//! for every leaf is: load all fifteen GPRs from the input, and hand all fifteen back as the
//! output. RBX and RBP, which Rust's inline assembly may not name as operands, are saved
//! on the stack around the call.

use halcyon_hal::tdx::{Registers, TdCall};

/// The fifteen GPRs in the order the assembly below loads and stores them.
#[repr(C)]
#[derive(Default)]
struct RawRegisters([u64; 15]);

// Offsets the assembly relies on: RAX, RCX, RDX, RBX, RBP, RSI, RDI, R8..R15 at 8-byte steps.
const _: () = assert!(core::mem::size_of::<RawRegisters>() == 15 * 8);

impl From<&Registers> for RawRegisters {
    fn from(r: &Registers) -> Self {
        Self([r.rax, r.rcx, r.rdx, r.rbx, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15])
    }
}

impl From<&RawRegisters> for Registers {
    fn from(r: &RawRegisters) -> Self {
        let [rax, rcx, rdx, rbx, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15] = r.0;
        Self { rax, rcx, rdx, rbx, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15 }
    }
}

/// Executes TDCALL with all GPRs loaded from `regs`, and stores them all back.
///
/// # Safety
/// Must run inside a TD (elsewhere TDCALL raises #UD). The leaf and operands must not make
/// the TDX module write memory Rust considers live (TDREPORT and RTMR operands go to the
/// platform's own scratch page), nor expose a secret to the host through a VMCALL register.
unsafe fn tdcall_raw(regs: &mut RawRegisters) {
    // SAFETY: the caller guarantees a TD. The block keeps RSP balanced (three pushes, three
    // pops), restores RBX and RBP itself, declares every other GPR clobbered, and reads and
    // writes only `regs` (15 quadwords, exclusively borrowed). Flags are clobbered (no
    // `preserves_flags`); the kernel target has no red zone, so the pushes are safe.
    unsafe {
        core::arch::asm!(
            "push rbp",
            "push rbx",
            "push rdi",
            "mov rax, [rdi + 0]",
            "mov rcx, [rdi + 8]",
            "mov rdx, [rdi + 16]",
            "mov rbx, [rdi + 24]",
            "mov rbp, [rdi + 32]",
            "mov rsi, [rdi + 40]",
            "mov r8, [rdi + 56]",
            "mov r9, [rdi + 64]",
            "mov r10, [rdi + 72]",
            "mov r11, [rdi + 80]",
            "mov r12, [rdi + 88]",
            "mov r13, [rdi + 96]",
            "mov r14, [rdi + 104]",
            "mov r15, [rdi + 112]",
            "mov rdi, [rdi + 48]",
            // TDCALL (the assembler may not know the mnemonic).
            ".byte 0x66, 0x0f, 0x01, 0xcc",
            "xchg rdi, [rsp]",
            "mov [rdi + 0], rax",
            "mov [rdi + 8], rcx",
            "mov [rdi + 16], rdx",
            "mov [rdi + 24], rbx",
            "mov [rdi + 32], rbp",
            "mov [rdi + 40], rsi",
            "mov [rdi + 56], r8",
            "mov [rdi + 64], r9",
            "mov [rdi + 72], r10",
            "mov [rdi + 80], r11",
            "mov [rdi + 88], r12",
            "mov [rdi + 96], r13",
            "mov [rdi + 104], r14",
            "mov [rdi + 112], r15",
            "pop rax",
            "mov [rdi + 48], rax",
            "pop rbx",
            "pop rbp",
            inout("rdi") regs as *mut RawRegisters => _,
            out("rax") _, out("rcx") _, out("rdx") _, out("rsi") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
        );
    }
}

/// The hardware [`TdCall`]. Only constructed once the kernel knows it runs in a TD.
#[derive(Clone, Copy, Debug)]
pub struct HardwareTdCall(());

impl HardwareTdCall {
    /// # Safety
    /// The kernel must be running in a TD (CPUID leaf 21h says "IntelTDX    ").
    pub const unsafe fn new() -> Self {
        Self(())
    }
}

impl TdCall for HardwareTdCall {
    fn tdcall(&mut self, input: &Registers) -> Registers {
        let mut raw = RawRegisters::from(input);
        // SAFETY: `new`'s contract says this is a TD. The hal's leaf functions only pass
        // operand addresses of the platform's own scratch and shared pages, and VMCALLs
        // expose only the registers their arguments are in (hal/src/tdx/vmcall.rs).
        unsafe { tdcall_raw(&mut raw) };
        Registers::from(&raw)
    }
}
