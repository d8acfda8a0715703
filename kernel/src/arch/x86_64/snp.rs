//! The SEV-SNP instructions: VMGEXIT, PVALIDATE, RMPADJUST, and native access to the GHCB MSR.
//! Everything above them (the GHCB protocol, page validation, the #VC policy) is in
//! `halcyon_hal::snp` and `crate::platform::snp`; this file is the hardware boundary only.

use ::x86_64::registers::model_specific::Msr;

/// The GHCB MSR (GHCB spec 56421 rev. 2.03 §2.3.1). Never intercepted: the guest writes it
/// natively, which is how it talks to the hypervisor at all.
const MSR_GHCB: u32 = 0xC001_0130;

/// Reads the GHCB MSR.
pub fn read_ghcb_msr() -> u64 {
    // SAFETY: the GHCB MSR exists on every SEV-ES/SNP guest (this module is only used
    // after the firmware entry saw SNP in SEV_STATUS) and reading it has no side effects.
    unsafe { Msr::new(MSR_GHCB).read() }
}

/// Writes the GHCB MSR.
///
/// # Safety
/// Only on an SEV-ES/SNP guest; `value` must be a GHCB MSR protocol request or the GPA of
/// the registered GHCB (a wrong GPA makes the next VMGEXIT use the wrong page).
pub unsafe fn write_ghcb_msr(value: u64) {
    // SAFETY: per the caller's contract; writing this MSR touches no memory.
    unsafe { Msr::new(MSR_GHCB).write(value) }
}

/// VMGEXIT (`rep vmmcall`, F3 0F 01 D9; AMD APM vol. 3): hands control to the hypervisor,
/// which reads the request from the GHCB MSR or the GHCB page it points at.
///
/// # Safety
/// Only on an SEV-ES/SNP guest with the GHCB MSR set up for the request; the hypervisor may
/// write the shared GHCB page (and only shared pages), never private memory.
pub unsafe fn vmgexit() {
    // SAFETY: per the caller's contract. No `nomem`: the hypervisor writes the shared page.
    unsafe { core::arch::asm!("rep vmmcall", options(nostack)) };
}

/// PVALIDATE (F2 0F 01 FF; AMD APM vol. 3): sets (`validate`) or clears the RMP Validated bit
/// of the page mapped at `vaddr`, 2 MiB if `huge`. Returns EAX (0 = success, 1 =
/// FAIL_INPUT, 6 = FAIL_SIZEMISMATCH) and rFLAGS.CF (the RMP entry already had that state).
///
/// # Safety
/// `vaddr` must map (with the C-bit) guest memory that nothing uses while its validation
/// changes: rescinding makes the page's contents inaccessible as private memory, and
/// validating a page in use would hide that the hypervisor remapped it.
pub unsafe fn pvalidate(vaddr: u64, huge: bool, validate: bool) -> (u32, bool) {
    let rax: u64;
    let carry: u8;
    // SAFETY: per the caller's contract; PVALIDATE reads rAX/ECX/EDX and writes EAX and the
    // flags only.
    unsafe {
        core::arch::asm!(
            ".byte 0xF2, 0x0F, 0x01, 0xFF",
            "setc {carry}",
            inout("rax") vaddr => rax,
            in("ecx") u32::from(huge),
            in("edx") u32::from(validate),
            carry = out(reg_byte) carry,
            options(nostack)
        );
    }
    (rax as u32, carry != 0)
}

/// RMPADJUST (F3 0F 01 FE; AMD APM vol. 3) of the 4 KiB page at `vaddr` for VMPL 1 with no
/// permissions: succeeds (0) only when the caller runs at VMPL 0, which is how a guest finds
/// out that it is not running under an SVSM (as Linux's SNP boot checks).
///
/// # Safety
/// `vaddr` must map a validated private page of this guest; its VMPL-1 permissions are
/// cleared (nothing runs at VMPL 1 in a Halcyon guest).
pub unsafe fn rmpadjust_vmpl1_none(vaddr: u64) -> u32 {
    let rax: u64;
    // SAFETY: per the caller's contract; RMPADJUST reads rAX/ECX/RDX and writes EAX and the
    // flags only. RDX = target VMPL 1, permissions 0 (APM vol. 3, RMPADJUST, bits 7:0 and 15:8).
    unsafe {
        core::arch::asm!(
            ".byte 0xF3, 0x0F, 0x01, 0xFE",
            inout("rax") vaddr => rax,
            in("ecx") 0u32,
            in("rdx") 1u64,
            options(nostack)
        );
    }
    rax as u32
}
