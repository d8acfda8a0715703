//! The entry code assembled into the kernel image: the PVH entry stub (`pvh_entry.s`), the
//! firmware reset path (`reset_vector.s`), whose addresses come from [`crate::firmware_layout`],
//! and the firmware entry's SEV-SNP detection (`firmware_entry.s`, rules in [`crate::snp_entry`]).
#![allow(unsafe_code)] // `global_asm!` is the one unsafe construct this crate needs.

use crate::firmware_layout as layout;
use crate::snp_entry as snp;

core::arch::global_asm!(include_str!("pvh_entry.s"), options(att_syntax));

core::arch::global_asm!(
    include_str!("firmware_entry.s"),
    SEV_STATUS_MSR = const snp::SEV_STATUS_MSR,
    SEV_STATUS_SEV = const snp::SEV_STATUS_SEV,
    SEV_STATUS_SEV_ES = const snp::SEV_STATUS_SEV_ES,
    SEV_STATUS_SNP = const snp::SEV_STATUS_SNP,
    GHCB_MSR = const snp::GHCB_MSR,
    CPUID_PAGE = const layout::SNP_CPUID_PAGE_GPA,
    CPUID_PAGE_COUNT_MAX = const snp::CPUID_PAGE_COUNT_MAX,
    CPUID_PAGE_ENTRIES = const snp::CPUID_PAGE_ENTRIES,
    CPUID_ENTRY_SIZE = const snp::CPUID_ENTRY_SIZE,
    CPUID_ENTRY_EAX_IN = const snp::CPUID_ENTRY_EAX_IN,
    CPUID_ENTRY_EAX = const snp::CPUID_ENTRY_EAX,
    CPUID_ENTRY_EBX = const snp::CPUID_ENTRY_EBX,
    ENCRYPTION_LEAF = const snp::ENCRYPTION_LEAF,
    ENCRYPTION_EAX_REQUIRED = const snp::ENCRYPTION_EAX_REQUIRED,
    C_BIT_FIELD = const snp::C_BIT_FIELD,
    C_BIT_MIN = const snp::C_BIT_MIN,
    C_BIT_MAX = const snp::C_BIT_MAX,
    TERMINATE_SNP_UNSUPPORTED = const snp::TERMINATE_SNP_UNSUPPORTED,
    TERMINATE_CPUID_PAGE = const snp::TERMINATE_CPUID_PAGE,
    options(att_syntax)
);

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
