//! Switching between kernel stacks: the cooperative threads workloads run on
//! (`crate::sched`). A switch saves the System V callee-saved registers on the current
//! stack, stores its stack pointer, and resumes the other stack the same way; everything
//! else is caller-saved, so the compiler has already spilled it around the call.

core::arch::global_asm!(
    r#"
.pushsection .text.context_switch, "ax"
.global halcyon_switch_stack
halcyon_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret

// First `ret` target of a new stack (see `prepare_stack`): r12 = entry, r13 = argument.
halcyon_thread_start:
    movq %r13, %rdi
    callq *%r12
    ud2
.popsection
"#,
    options(att_syntax)
);

extern "C" {
    fn halcyon_switch_stack(save_rsp: *mut u64, resume_rsp: u64);
    fn halcyon_thread_start();
}

/// Lays out a fresh stack (`stack` ends at its top) so that the first switch to the
/// returned stack pointer calls `entry(argument)` with a System V-aligned stack.
pub fn prepare_stack(stack: &mut [u64], entry: extern "C" fn(u64) -> !, argument: u64) -> u64 {
    // Frame popped by `halcyon_switch_stack`: r15, r14, r13, r12, rbx, rbp, return
    // address; after it `rsp` must be 16-byte aligned for the `callq` (SysV ABI §3.2.2).
    let base = stack.as_ptr() as u64;
    let top = (stack.as_ptr_range().end as u64) & !0xF;
    let frame = top - 72;
    let first = ((frame - base) / 8) as usize;
    let slots = [0, 0, argument, entry as *const () as u64, 0, 0, halcyon_thread_start as *const () as u64];
    stack[first..first + slots.len()].copy_from_slice(&slots);
    frame
}

/// Saves the current stack pointer in `*save_rsp` and resumes the stack at `resume_rsp`.
///
/// # Safety
/// `resume_rsp` must come from [`prepare_stack`] or from an earlier switch away from a
/// stack that is still allocated; `save_rsp` must stay valid until this stack is resumed.
pub unsafe fn switch_stack(save_rsp: *mut u64, resume_rsp: u64) {
    // SAFETY: per the contract the target stack holds a frame `halcyon_switch_stack`
    // (or `prepare_stack`) wrote; the callee-saved registers are restored from it.
    unsafe { halcyon_switch_stack(save_rsp, resume_rsp) }
}
