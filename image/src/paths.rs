//! Where `halcyon` finds the kernel and the image by default: relative to its own
//! executable, which cargo puts at `<workspace>/target/<profile>/halcyon`.

use std::path::PathBuf;

fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(|profile| profile.parent()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// `target/x86_64-unknown-none/kernel/halcyon-kernel`, as `make kernel` builds it.
pub fn default_kernel() -> PathBuf {
    target_dir().join("x86_64-unknown-none/kernel/halcyon-kernel")
}

/// `target/halcyon/halcyon.elf`, as `make image` writes it.
pub fn default_image() -> PathBuf {
    target_dir().join("halcyon/halcyon.elf")
}

/// `target/halcyon/halcyon.fd`, the firmware form `make image` writes beside the ELF.
pub fn default_firmware() -> PathBuf {
    target_dir().join("halcyon/halcyon.fd")
}
