//! Port I/O. All of the kernel's port accesses funnel through these functions so that a
//! confidential-VM platform routes them through its paravirtual interface (GHCB on
//! SEV-SNP, TDVMCALL on TDX; see [`super::paravirt`]) in one place.

use super::paravirt::{installed, Width};
use ::x86_64::instructions::port::Port;

/// Writes a byte to an I/O port.
pub fn write_u8(port: u16, value: u8) {
    if let Some(pv) = installed() {
        return pv.io_out(port, Width::U8, value.into());
    }
    // SAFETY: port writes cannot violate Rust memory safety here: the kernel identity-maps
    // no port-mapped memory, and callers only address the legacy devices they own.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// Reads a byte from an I/O port.
pub fn read_u8(port: u16) -> u8 {
    if let Some(pv) = installed() {
        return pv.io_in(port, Width::U8) as u8;
    }
    // SAFETY: see `write_u8`; reads of the devices the kernel owns have no memory effects.
    unsafe { Port::<u8>::new(port).read() }
}

/// Writes a 16-bit value to an I/O port.
pub fn write_u16(port: u16, value: u16) {
    if let Some(pv) = installed() {
        return pv.io_out(port, Width::U16, value.into());
    }
    // SAFETY: see `write_u8`.
    unsafe { Port::<u16>::new(port).write(value) }
}

/// Fills a buffer from one port with `rep insb` (the fw_cfg data register streams an item
/// this way; one instruction instead of one exit per byte under KVM's string I/O).
pub fn read_bytes(port: u16, out: &mut [u8]) {
    if out.is_empty() {
        return;
    }
    if let Some(pv) = installed() {
        // String I/O would make the hypervisor write guest memory; one exit per byte
        // keeps every byte a checked register value.
        out.iter_mut().for_each(|b| *b = pv.io_in(port, Width::U8) as u8);
        return;
    }
    // SAFETY: `rep insb` writes `rcx` bytes starting at `rdi`, which is exactly the mutably
    // borrowed slice; DF is clear per the System V ABI, so it writes forward.
    unsafe {
        core::arch::asm!(
            "rep insb",
            in("dx") port,
            inout("rdi") out.as_mut_ptr() => _,
            inout("rcx") out.len() => _,
            options(nostack, preserves_flags)
        );
    }
}

/// Writes a 32-bit value to an I/O port.
pub fn write_u32(port: u16, value: u32) {
    if let Some(pv) = installed() {
        return pv.io_out(port, Width::U32, value);
    }
    // SAFETY: see `write_u8`.
    unsafe { Port::<u32>::new(port).write(value) }
}

/// Writes a whole buffer to one port with `rep outsb` (one instruction for many bytes,
/// which matters under emulation where every exit is expensive).
pub fn write_bytes(port: u16, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    if let Some(pv) = installed() {
        bytes.iter().for_each(|&b| pv.io_out(port, Width::U8, b.into()));
        return;
    }
    // SAFETY: `rep outsb` reads `rcx` bytes starting at `rsi`, which is exactly the
    // borrowed slice; DF is clear per the System V ABI, so it reads forward.
    unsafe {
        core::arch::asm!(
            "rep outsb",
            in("dx") port,
            inout("rsi") bytes.as_ptr() => _,
            inout("rcx") bytes.len() => _,
            options(nostack, preserves_flags, readonly)
        );
    }
}

/// Reads a 32-bit value from an I/O port.
pub fn read_u32(port: u16) -> u32 {
    if let Some(pv) = installed() {
        return pv.io_in(port, Width::U32);
    }
    // SAFETY: see `write_u8`.
    unsafe { Port::<u32>::new(port).read() }
}
