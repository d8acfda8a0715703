//! The IDT and the CPU-exception entry path.
//!
//! Stable Rust has no `x86-interrupt` ABI, so each vector gets a tiny assembly stub that
//! pushes a uniform frame (vector, error code, general registers) and calls
//! [`exception_handler`]. Every exception in this kernel is a kernel bug — workloads run
//! in an interpreter and cannot fault the CPU — so the handler reports vector, error code,
//! RIP and CR2 and ends the VM with a failure status. The frame is restorable (the stub
//! pops and `iretq`s if the handler returns) so that the SEV-SNP #VC and TDX #VE handlers
//! can be added on the same path.

use super::gdt;
use core::mem::size_of;
use ::x86_64::structures::DescriptorTablePointer;
use ::x86_64::VirtAddr;

/// The state the stubs save, lowest address first (matches the push order in the asm).
#[repr(C)]
#[derive(Debug)]
pub struct ExceptionFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    // Pushed by the CPU (Intel SDM vol. 3A §6.14.1, 64-bit mode stack frame).
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}
const _: () = assert!(size_of::<ExceptionFrame>() == 22 * 8);

// One stub per exception vector; `has_error_code` marks the vectors for which the CPU
// pushes an error code itself (SDM vol. 3A table 6-1), the others push a zero.
core::arch::global_asm!(
    r#"
.macro EXCEPTION_STUB vector, has_error_code
.balign 16
exception_stub_\vector:
    .if \has_error_code == 0
    pushq $0
    .endif
    pushq $\vector
    jmp exception_common
.endm

.pushsection .text.exceptions, "ax"
EXCEPTION_STUB 0, 0
EXCEPTION_STUB 1, 0
EXCEPTION_STUB 2, 0
EXCEPTION_STUB 3, 0
EXCEPTION_STUB 4, 0
EXCEPTION_STUB 5, 0
EXCEPTION_STUB 6, 0
EXCEPTION_STUB 7, 0
EXCEPTION_STUB 8, 1
EXCEPTION_STUB 9, 0
EXCEPTION_STUB 10, 1
EXCEPTION_STUB 11, 1
EXCEPTION_STUB 12, 1
EXCEPTION_STUB 13, 1
EXCEPTION_STUB 14, 1
EXCEPTION_STUB 15, 0
EXCEPTION_STUB 16, 0
EXCEPTION_STUB 17, 1
EXCEPTION_STUB 18, 0
EXCEPTION_STUB 19, 0
EXCEPTION_STUB 20, 0
EXCEPTION_STUB 21, 1
EXCEPTION_STUB 22, 0
EXCEPTION_STUB 23, 0
EXCEPTION_STUB 24, 0
EXCEPTION_STUB 25, 0
EXCEPTION_STUB 26, 0
EXCEPTION_STUB 27, 0
EXCEPTION_STUB 28, 0
EXCEPTION_STUB 29, 1
EXCEPTION_STUB 30, 1
EXCEPTION_STUB 31, 0

exception_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    movq %rsp, %rbx             /* callee-saved: the frame, to restore after the call */
    andq $-16, %rsp             /* SysV call alignment */
    cld
    call {handler}
    movq %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp              /* vector and error code */
    iretq
.popsection

.pushsection .rodata.exception_stubs, "a"
.balign 8
.global halcyon_exception_stubs
halcyon_exception_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exception_stub_\v
    .endr
.popsection
"#,
    handler = sym exception_handler,
    options(att_syntax)
);

extern "C" {
    static halcyon_exception_stubs: [u64; 32];
}

const EXCEPTION_NAMES: [&str; 32] = [
    "divide error", "debug", "NMI", "breakpoint", "overflow", "bound range exceeded",
    "invalid opcode", "device not available", "double fault", "coprocessor segment overrun",
    "invalid TSS", "segment not present", "stack-segment fault", "general protection",
    "page fault", "reserved", "x87 floating-point", "alignment check", "machine check",
    "SIMD floating-point", "virtualization", "control protection", "reserved", "reserved",
    "reserved", "reserved", "reserved", "reserved", "hypervisor injection",
    "VMM communication (#VC)", "security", "reserved",
];

/// One 64-bit IDT gate descriptor (SDM vol. 3A §6.14.1, figure 6-8).
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}
const _: () = assert!(size_of::<Gate>() == 16);

/// Present, DPL 0, 64-bit interrupt gate (type 0xE): IF is cleared on entry.
const INTERRUPT_GATE: u8 = 0x8E;
const DOUBLE_FAULT_VECTOR: usize = 8;

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attributes: 0,
        offset_mid: 0,
        offset_high: 0,
        reserved: 0,
    };

    fn new(handler: u64, selector: u16, ist: u8) -> Self {
        Gate {
            offset_low: handler as u16,
            selector,
            ist,
            type_attributes: INTERRUPT_GATE,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: spin::Once<Idt> = spin::Once::new();

pub fn init() {
    let idt = IDT.call_once(|| {
        let mut gates = [Gate::MISSING; 256];
        // SAFETY: `halcyon_exception_stubs` is an immutable table of 32 addresses defined
        // in the global_asm above.
        let stubs = unsafe { &halcyon_exception_stubs };
        for (vector, &stub) in stubs.iter().enumerate() {
            let ist = if vector == DOUBLE_FAULT_VECTOR { gdt::DOUBLE_FAULT_IST } else { 0 };
            gates[vector] = Gate::new(stub, gdt::code_selector(), ist);
        }
        Idt(gates)
    });
    let pointer = DescriptorTablePointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: VirtAddr::from_ptr(idt),
    };
    // SAFETY: the IDT lives in a `static` (never freed or moved) and every present gate
    // points at a stub that saves state and calls `exception_handler`.
    unsafe { ::x86_64::instructions::tables::lidt(&pointer) };
}

extern "C" fn exception_handler(frame: &mut ExceptionFrame) {
    if matches!(frame.vector, super::paravirt::VIRTUALIZATION_EXCEPTION | super::paravirt::VMM_COMMUNICATION_EXCEPTION) {
        if let Some(pv) = super::paravirt::installed() {
            return pv.handle_exception(frame);
        }
    }
    let vector = frame.vector as usize;
    let name = EXCEPTION_NAMES.get(vector).copied().unwrap_or("unknown");
    let cr2 = ::x86_64::registers::control::Cr2::read_raw();
    crate::fatal!(
        "CPU exception {vector} ({name}): error code {:#x}, RIP {:#x}, CR2 {cr2:#x}, RSP {:#x}",
        frame.error_code,
        frame.rip,
        frame.rsp
    );
}
