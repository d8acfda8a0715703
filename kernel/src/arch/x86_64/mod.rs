//! x86_64 support: CPU setup, descriptor tables, paging, and the legacy PC devices the
//! kernel uses (serial, PIT, CMOS RTC, QEMU's debug-exit and debug-console ports).

pub mod context;
pub mod cpuid;
pub mod entropy;
pub mod exit;
pub mod gdt;
pub mod interrupts;
pub mod mmio;
mod notes;
pub mod paging;
pub mod paravirt;
pub mod pit;
pub mod port;
pub mod rtc;
pub mod snp;
pub mod tdcall;
pub mod tsc;

/// Loads the kernel's own GDT/TSS and IDT, replacing what the boot stub left.
pub fn init_cpu() {
    gdt::init();
    interrupts::init();
}

/// Stops this CPU for good (interrupts off, `hlt` forever; on a confidential VM, the
/// platform's way of halting, see [`paravirt::Paravirt::halt`]).
pub fn halt_forever() -> ! {
    loop {
        ::x86_64::instructions::interrupts::disable();
        match paravirt::installed() {
            Some(pv) => pv.halt(),
            None => ::x86_64::instructions::hlt(),
        }
    }
}

extern "C" {
    /// Written by the firmware entry (`boot/src/pvh_entry.s`) before paging.
    static halcyon_boot_sev_status: u64;
}

/// The SEV_STATUS MSR as the firmware entry read it, before paging (0 when the PVH entry
/// ran, or on a VM without SEV): SEV-SNP is known from here on without executing CPUID.
pub fn boot_sev_status() -> u64 {
    // SAFETY: a plain u64 in .bss, written only by the boot code before Rust runs.
    unsafe { (&raw const halcyon_boot_sev_status).read() }
}

/// A hint to the CPU that we are spinning (PAUSE).
#[inline]
pub fn spin_hint() {
    core::hint::spin_loop();
}
