//! The initial VMSA (SEV-ES save area) of each vCPU as QEMU and KVM launch an SNP guest, and
//! the `-cpu` models whose CPUID signature it carries.
//!
//! The launch digest covers one VMSA page per vCPU, so the expected measurement depends on
//! the reset state KVM writes into them: QEMU's x86 reset state (`target/i386/cpu.c`,
//! `x86_cpu_reset_hold`) as KVM copies it from the VMCB into the VMSA before
//! SNP_LAUNCH_UPDATE (`arch/x86/kvm/svm/sev.c`, `sev_es_sync_vmsa`, with the FPU state that
//! the KVM_SEV_INIT2 VM types sync), APs starting at the SEV-ES reset block's address
//! (QEMU `sev_es_set_reset_vector`). sev-snp-measure (PyPI, "VMM type QEMU") models the same
//! state; the tests compare against it.

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromZeros, Immutable, IntoBytes, KnownLayout};

/// `SEV_FEATURES` bit 0, `SNPActive` (AMD APM Vol. 2, §15.35 "VMSA" SEV_FEATURES field).
pub const SEV_FEATURES_SNP_ACTIVE: u64 = 1 << 0;
/// What KVM sets by default for an SNP guest: SNPActive only. With KVM_SEV_INIT2 (the only
/// SNP init) the other features come from userspace's `vmsa_features`, which QEMU leaves 0.
pub const SEV_FEATURES_KVM_DEFAULT: u64 = SEV_FEATURES_SNP_ACTIVE;

/// The BSP's reset address: CS base 0xffff0000, IP 0xfff0 (the architectural reset vector,
/// 4 GiB - 16).
pub const BSP_RESET_ADDR: u32 = 0xffff_fff0;

/// A VMCB segment register (AMD APM Vol. 2, Table B-2 "VMCB Layout, State Save Area";
/// `attrib` packs descriptor bits 8-15 and 20-23, §15.5.1).
#[derive(Clone, Copy, Debug, Default, IntoBytes, FromZeros, Immutable, KnownLayout)]
#[repr(C)]
pub struct VmcbSegment {
    pub selector: U16,
    pub attrib: U16,
    pub limit: U32,
    pub base: U64,
}

impl VmcbSegment {
    fn new(selector: u16, attrib: u16, limit: u32, base: u64) -> Self {
        Self { selector: selector.into(), attrib: attrib.into(), limit: limit.into(), base: base.into() }
    }
}

/// The SEV-ES/SNP save area, one 4 KiB page (AMD APM Vol. 2 rev. 3.42, Table B-4 "VMSA
/// Layout, State Save Area for SEV-ES"; field names as Linux `struct sev_es_save_area`).
#[derive(IntoBytes, FromZeros, Immutable, KnownLayout)]
#[repr(C)]
pub struct SevEsSaveArea {
    pub es: VmcbSegment,
    pub cs: VmcbSegment,
    pub ss: VmcbSegment,
    pub ds: VmcbSegment,
    pub fs: VmcbSegment,
    pub gs: VmcbSegment,
    pub gdtr: VmcbSegment,
    pub ldtr: VmcbSegment,
    pub idtr: VmcbSegment,
    pub tr: VmcbSegment,
    pub vmpl0_ssp: U64,
    pub vmpl1_ssp: U64,
    pub vmpl2_ssp: U64,
    pub vmpl3_ssp: U64,
    pub u_cet: U64,
    pub reserved_0xc8: [u8; 2],
    pub vmpl: u8,
    pub cpl: u8,
    pub reserved_0xcc: [u8; 4],
    pub efer: U64,
    pub reserved_0xd8: [u8; 104],
    pub xss: U64,
    pub cr4: U64,
    pub cr3: U64,
    pub cr0: U64,
    pub dr7: U64,
    pub dr6: U64,
    pub rflags: U64,
    pub rip: U64,
    /// DR0-DR3.
    pub dr0_3: [U64; 4],
    /// DR0_ADDR_MASK-DR3_ADDR_MASK.
    pub dr0_3_addr_mask: [U64; 4],
    pub reserved_0x1c0: [u8; 24],
    pub rsp: U64,
    pub s_cet: U64,
    pub ssp: U64,
    pub isst_addr: U64,
    pub rax: U64,
    pub star: U64,
    pub lstar: U64,
    pub cstar: U64,
    pub sfmask: U64,
    pub kernel_gs_base: U64,
    pub sysenter_cs: U64,
    pub sysenter_esp: U64,
    pub sysenter_eip: U64,
    pub cr2: U64,
    pub reserved_0x248: [u8; 32],
    pub g_pat: U64,
    pub dbgctl: U64,
    pub br_from: U64,
    pub br_to: U64,
    pub last_excp_from: U64,
    pub last_excp_to: U64,
    pub reserved_0x298: [u8; 80],
    pub pkru: U32,
    pub tsc_aux: U32,
    pub reserved_0x2f0: [u8; 24],
    pub rcx: U64,
    pub rdx: U64,
    pub rbx: U64,
    pub reserved_0x320: U64,
    pub rbp: U64,
    pub rsi: U64,
    pub rdi: U64,
    /// R8-R15.
    pub r8_15: [U64; 8],
    pub reserved_0x380: [u8; 16],
    pub guest_exit_info_1: U64,
    pub guest_exit_info_2: U64,
    pub guest_exit_int_info: U64,
    pub guest_nrip: U64,
    pub sev_features: U64,
    pub vintr_ctrl: U64,
    pub guest_exit_code: U64,
    pub virtual_tom: U64,
    pub tlb_id: U64,
    pub pcpu_id: U64,
    pub event_inj: U64,
    pub xcr0: U64,
    pub reserved_0x3f0: [u8; 16],
    pub x87_dp: U64,
    pub mxcsr: U32,
    pub x87_ftw: U16,
    pub x87_fsw: U16,
    pub x87_fcw: U16,
    pub x87_fop: U16,
    pub x87_ds: U16,
    pub x87_cs: U16,
    pub x87_rip: U64,
    pub fpreg_x87: [u8; 80],
    pub fpreg_xmm: [u8; 256],
    pub fpreg_ymm: [u8; 256],
    pub reserved_0x670: [u8; 0x990],
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<VmcbSegment>() == 16);
    assert!(size_of::<SevEsSaveArea>() == 4096);
    assert!(offset_of!(SevEsSaveArea, vmpl) == 0xca);
    assert!(offset_of!(SevEsSaveArea, efer) == 0xd0);
    assert!(offset_of!(SevEsSaveArea, xss) == 0x140);
    assert!(offset_of!(SevEsSaveArea, rip) == 0x178);
    assert!(offset_of!(SevEsSaveArea, rsp) == 0x1d8);
    assert!(offset_of!(SevEsSaveArea, g_pat) == 0x268);
    assert!(offset_of!(SevEsSaveArea, pkru) == 0x2e8);
    assert!(offset_of!(SevEsSaveArea, rcx) == 0x308);
    assert!(offset_of!(SevEsSaveArea, rdx) == 0x310);
    assert!(offset_of!(SevEsSaveArea, r8_15) == 0x340);
    assert!(offset_of!(SevEsSaveArea, sev_features) == 0x3b0);
    assert!(offset_of!(SevEsSaveArea, xcr0) == 0x3e8);
    assert!(offset_of!(SevEsSaveArea, x87_dp) == 0x400);
    assert!(offset_of!(SevEsSaveArea, mxcsr) == 0x408);
    assert!(offset_of!(SevEsSaveArea, x87_fcw) == 0x410);
    assert!(offset_of!(SevEsSaveArea, fpreg_x87) == 0x420);
    assert!(offset_of!(SevEsSaveArea, reserved_0x670) == 0x670);
};

/// VMCB attribute values of the reset state (type in bits 3:0, S bit 4, P bit 7).
const ATTR_CODE: u16 = 0x9b; // present, code, execute/read, accessed
const ATTR_DATA: u16 = 0x93; // present, data, read/write, accessed
const ATTR_LDT: u16 = 0x82; // present, system, LDT
const ATTR_TSS_BUSY: u16 = 0x8b; // present, system, busy 32-bit TSS (QEMU's reset TR)

/// `EFER.SVME`, which KVM keeps set in every guest's VMCB.
const EFER_SVME: u64 = 1 << 12;
/// `CR4.MCE`, which KVM sets in the VMCB's CR4.
const CR4_MCE: u64 = 1 << 6;
/// `CR0.ET`: QEMU resets CR0 to CD|NW|ET and KVM clears CD and NW in the VMCB.
const CR0_ET: u64 = 1 << 4;
/// The PAT MSR's reset value (AMD APM Vol. 2, §7.8.2 "PAT Register").
const PAT_RESET: u64 = 0x0007_0406_0007_0406;

impl SevEsSaveArea {
    /// The reset state of a vCPU starting at `reset_addr` (CS base = high 16 bits, IP = low
    /// 16 bits), with `rdx` = the processor signature (AMD APM Vol. 2, §14.1.3 "Processor
    /// Initialization State": EDX holds CPUID Fn0000_0001_EAX after reset).
    pub fn reset_state(reset_addr: u32, sev_features: u64, signature: u32) -> Self {
        let mut v = Self::new_zeroed();
        let data = VmcbSegment::new(0, ATTR_DATA, 0xffff, 0);
        v.es = data;
        v.cs = VmcbSegment::new(0xf000, ATTR_CODE, 0xffff, u64::from(reset_addr & 0xffff_0000));
        v.ss = data;
        v.ds = data;
        v.fs = data;
        v.gs = data;
        v.gdtr = VmcbSegment::new(0, 0, 0xffff, 0);
        v.idtr = VmcbSegment::new(0, 0, 0xffff, 0);
        v.ldtr = VmcbSegment::new(0, ATTR_LDT, 0xffff, 0);
        v.tr = VmcbSegment::new(0, ATTR_TSS_BUSY, 0xffff, 0);
        v.efer = EFER_SVME.into();
        v.cr4 = CR4_MCE.into();
        v.cr0 = CR0_ET.into();
        v.dr7 = 0x400u64.into();
        v.dr6 = 0xffff_0ff0u64.into();
        v.rflags = 0x2u64.into();
        v.rip = u64::from(reset_addr & 0xffff).into();
        v.g_pat = PAT_RESET.into();
        v.rdx = u64::from(signature).into();
        v.sev_features = sev_features.into();
        v.xcr0 = 1u64.into();
        v.mxcsr = 0x1f80u32.into();
        v.x87_fcw = 0x37fu16.into();
        v
    }
}

/// A QEMU `-cpu` model: what matters for the launch digest is its family, model and stepping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuType {
    /// The canonical name, as `qemu-system-x86_64 -cpu help` prints it.
    pub name: &'static str,
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
}

/// AMD EPYC models in QEMU's `builtin_x86_defs` (`target/i386/cpu.c`): the base model and its
/// versions, which change feature bits but never family/model/stepping.
const MODELS: &[(&str, u32, u32, u32, &[&str])] = &[
    ("EPYC", 23, 1, 2, &["EPYC-v1", "EPYC-v2", "EPYC-IBPB", "EPYC-v3", "EPYC-v4", "EPYC-v5"]),
    ("EPYC-Rome", 23, 49, 0, &["EPYC-Rome-v1", "EPYC-Rome-v2", "EPYC-Rome-v3", "EPYC-Rome-v4", "EPYC-Rome-v5"]),
    ("EPYC-Milan", 25, 1, 1, &["EPYC-Milan-v1", "EPYC-Milan-v2", "EPYC-Milan-v3"]),
    ("EPYC-Genoa", 25, 17, 0, &["EPYC-Genoa-v1", "EPYC-Genoa-v2"]),
    ("EPYC-Turin", 26, 0, 0, &["EPYC-Turin-v1"]),
];

/// The model QEMU's SEV-SNP documentation launches with (`-cpu EPYC-v4`).
pub const DEFAULT_VCPU_TYPE: &str = "EPYC-v4";

impl VcpuType {
    /// Looks a `-cpu` name up (case-insensitive, as QEMU matches model names).
    pub fn by_name(name: &str) -> Option<Self> {
        MODELS.iter().find_map(|(base, family, model, stepping, versions)| {
            let known = core::iter::once(base).chain(versions.iter()).find(|n| n.eq_ignore_ascii_case(name))?;
            Some(Self { name: known, family: *family, model: *model, stepping: *stepping })
        })
    }

    /// Every name [`VcpuType::by_name`] knows.
    pub fn names() -> impl Iterator<Item = &'static str> {
        MODELS.iter().flat_map(|(base, _, _, _, versions)| core::iter::once(*base).chain(versions.iter().copied()))
    }

    /// CPUID Fn0000_0001_EAX (AMD CPUID Specification 25481, "Family, Model, Stepping
    /// Identifiers"; QEMU `x86_cpuid_version_set_*`): a family above 0xF is BaseFamily 0xF plus
    /// ExtFamily; the model's high nibble is ExtModel.
    pub fn signature(&self) -> u32 {
        let (base_family, ext_family) =
            if self.family > 0xf { (0xf, (self.family - 0xf) & 0xff) } else { (self.family, 0) };
        (ext_family << 20)
            | (((self.model >> 4) & 0xf) << 16)
            | (base_family << 8)
            | ((self.model & 0xf) << 4)
            | (self.stepping & 0xf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_processors() {
        // The silicon's CPUID Fn0000_0001_EAX: Naples B2 0x00800f12, Milan B1 0x00a00f11; QEMU's
        // Genoa model says stepping 0 (the silicon's B1 is 0x00a10f11), Rome model 31h stepping 0.
        assert_eq!(VcpuType::by_name("EPYC").unwrap().signature(), 0x0080_0f12);
        assert_eq!(VcpuType::by_name("epyc-milan-v2").unwrap().signature(), 0x00a0_0f11);
        assert_eq!(VcpuType::by_name("EPYC-Genoa").unwrap().signature(), 0x00a1_0f10);
        assert_eq!(VcpuType::by_name("EPYC-Rome").unwrap().signature(), 0x0083_0f10);
        assert_eq!(VcpuType::by_name("EPYC-v4").unwrap().name, "EPYC-v4");
        assert!(VcpuType::by_name("Skylake-Server").is_none());
        assert!(VcpuType::by_name(DEFAULT_VCPU_TYPE).is_some());
        assert!(VcpuType::names().count() > 15);
    }

    #[test]
    fn reset_state_places_fields_at_their_offsets() {
        let v = SevEsSaveArea::reset_state(0x0080_b004, SEV_FEATURES_KVM_DEFAULT, 0x00a0_0f11);
        let b = v.as_bytes();
        assert_eq!(b.len(), 4096);
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        assert_eq!(u16::from_le_bytes([b[0x10], b[0x11]]), 0xf000, "cs.selector");
        assert_eq!(u64_at(0x18), 0x80_0000, "cs.base");
        assert_eq!(u64_at(0x178), 0xb004, "rip");
        assert_eq!(u64_at(0x310), 0x00a0_0f11, "rdx");
        assert_eq!(u64_at(0x3b0), 1, "sev_features");
        assert_eq!(u64_at(0xd0), 0x1000, "efer");
        let bsp = SevEsSaveArea::reset_state(BSP_RESET_ADDR, 1, 0);
        assert_eq!(u64::from_le_bytes(bsp.as_bytes()[0x18..0x20].try_into().unwrap()), 0xffff_0000);
        assert_eq!(u64::from_le_bytes(bsp.as_bytes()[0x178..0x180].try_into().unwrap()), 0xfff0);
    }
}
