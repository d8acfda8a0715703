//! Halcyon's boot interface: the PVH entry code, the firmware reset path, and the boot-time
//! layouts that the host tool and the kernel both read (the firmware layout description, the
//! OVMF table and SEV/TDVF metadata, PVH start info, QEMU fw_cfg).
//!
//! The entry code (`pvh_entry.s`, `reset_vector.s`) is assembled into the kernel only when
//! building for the bare-metal target; the layouts and their parsers are plain Rust so the
//! host tests them.
#![cfg_attr(not(test), no_std)]
// The only unsafe code is the entry stub's assembly, confined to `entry`.
#![deny(unsafe_code)]

pub mod firmware_layout;
pub mod fw_cfg;
pub mod ovmf;
pub mod pvh;
pub mod snp_entry;

/// The kernel ELF carries a note named [`HALCYON_NOTE_NAME`] of type [`HALCYON_NOTE_TYPE`]
/// whose descriptor is `channel protocol version: u32 LE ++ bundle format version: u32 LE`,
/// so the host tool can refuse an image that speaks another protocol.
pub const HALCYON_NOTE_NAME: &str = "Halcyon";
/// Note type of the version note (see [`HALCYON_NOTE_NAME`]).
pub const HALCYON_NOTE_TYPE: u32 = 1;

#[cfg(target_os = "none")]
mod entry;
