//! Port I/O. All of the kernel's port accesses funnel through these functions so that a
//! confidential-VM platform can later route them through its paravirtual interface
//! (GHCB on SEV-SNP, TDVMCALL on TDX) in one place.

use ::x86_64::instructions::port::Port;

/// Writes a byte to an I/O port.
pub fn write_u8(port: u16, value: u8) {
    // SAFETY: port writes cannot violate Rust memory safety here: the kernel identity-maps
    // no port-mapped memory, and callers only address the legacy devices they own.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// Reads a byte from an I/O port.
pub fn read_u8(port: u16) -> u8 {
    // SAFETY: see `write_u8`; reads of the devices the kernel owns have no memory effects.
    unsafe { Port::<u8>::new(port).read() }
}

/// Writes a 16-bit value to an I/O port.
pub fn write_u16(port: u16, value: u16) {
    // SAFETY: see `write_u8`.
    unsafe { Port::<u16>::new(port).write(value) }
}

/// Fills a buffer from one port with `rep insb` (the fw_cfg data register streams an item
/// this way; one instruction instead of one exit per byte under KVM's string I/O).
pub fn read_bytes(port: u16, out: &mut [u8]) {
    if out.is_empty() {
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
    // SAFETY: see `write_u8`.
    unsafe { Port::<u32>::new(port).write(value) }
}

/// Writes a whole buffer to one port with `rep outsb` (one instruction for many bytes,
/// which matters under emulation where every exit is expensive).
pub fn write_bytes(port: u16, bytes: &[u8]) {
    if bytes.is_empty() {
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
    // SAFETY: see `write_u8`.
    unsafe { Port::<u32>::new(port).read() }
}
