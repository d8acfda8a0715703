//! The entry code assembled into the kernel image: the PVH entry stub (`pvh_entry.s`) and the
//! firmware reset path (`reset_vector.s`), whose addresses come from [`crate::firmware_layout`].
#![allow(unsafe_code)] // `global_asm!` is the one unsafe construct this crate needs.

use crate::firmware_layout as layout;

core::arch::global_asm!(include_str!("pvh_entry.s"), options(att_syntax));

core::arch::global_asm!(
    include_str!("reset_vector.s"),
    RESET_CS_BASE = const layout::RESET_CS_BASE,
    PAYLOAD_DESCRIPTOR = const layout::PAYLOAD_DESCRIPTOR_GPA,
    PAYLOAD_SIGNATURE = const u32::from_le_bytes(layout::PAYLOAD_SIGNATURE),
    TDX_SIGNATURE_EBX = const layout::TDX_CPUID_SIGNATURE[0],
    TDX_SIGNATURE_EDX = const layout::TDX_CPUID_SIGNATURE[1],
    TDX_SIGNATURE_ECX = const layout::TDX_CPUID_SIGNATURE[2],
    options(att_syntax)
);
