//! Memory-mapped device registers. The kernel's own MMIO accesses (PCI configuration
//! space) funnel through here, so that a confidential-VM platform routes them through
//! its paravirtual interface (GHCB MMIO exits on SEV-SNP, TDVMCALL MMIO on TDX; see
//! [`super::paravirt`]) in one place. (The virtio driver crate accesses its BARs itself;
//! on a confidential VM those accesses fault and the platform's #VC/#VE handler emulates
//! them.)

use super::paravirt::{installed, Width};

/// Reads a 32-bit device register.
///
/// # Safety
/// `address` must be a 4-byte aligned device register that the kernel maps (identity,
/// uncached) and owns; reading it must have no effect on memory Rust knows about.
pub unsafe fn read_u32(address: u64) -> u32 {
    if let Some(pv) = installed() {
        return pv.mmio_read(address, Width::U32) as u32;
    }
    // SAFETY: per the caller's contract the address is a mapped, aligned register.
    unsafe { (address as *const u32).read_volatile() }
}

/// Writes a 32-bit device register.
///
/// # Safety
/// As for [`read_u32`]; the write must not make the device overwrite kernel memory.
pub unsafe fn write_u32(address: u64, value: u32) {
    if let Some(pv) = installed() {
        return pv.mmio_write(address, Width::U32, value.into());
    }
    // SAFETY: per the caller's contract the address is a mapped, aligned register.
    unsafe { (address as *mut u32).write_volatile(value) }
}
