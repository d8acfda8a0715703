//! The GHCB MSR protocol: the register-only requests an SEV-ES/SNP guest makes before it
//! has a GHCB page (AMD GHCB specification 56421, rev. 2.03, "GHCB MSR Protocol").
//!
//! Every request is one 64-bit value written to the GHCB MSR (C001_0130h) before
//! VMGEXIT; the hypervisor answers in the same MSR. Bits 11:0 (GHCBInfo) name the
//! request or response; the rest is its data. Everything the hypervisor answers is
//! untrusted: the decoders check the response code, reserved bits and echoed values.

use core::fmt;

/// The GHCB MSR (AMD APM vol. 2, SEV-ES chapter "GHCB"; GHCB spec "GHCB MSR Protocol").
pub const MSR_GHCB: u32 = 0xC001_0130;
/// GHCBInfo: bits 11:0 of every MSR-protocol value.
pub const GHCB_INFO_MASK: u64 = 0xFFF;

// GHCBInfo values, GHCB spec table in "GHCB MSR Protocol".
pub const GHCB_MSR_SEV_INFO_RESP: u64 = 0x001;
pub const GHCB_MSR_SEV_INFO_REQ: u64 = 0x002;
pub const GHCB_MSR_CPUID_REQ: u64 = 0x004;
pub const GHCB_MSR_CPUID_RESP: u64 = 0x005;
pub const GHCB_MSR_REG_GPA_REQ: u64 = 0x012;
pub const GHCB_MSR_REG_GPA_RESP: u64 = 0x013;
pub const GHCB_MSR_PSC_REQ: u64 = 0x014;
pub const GHCB_MSR_PSC_RESP: u64 = 0x015;
pub const GHCB_MSR_HV_FT_REQ: u64 = 0x080;
pub const GHCB_MSR_HV_FT_RESP: u64 = 0x081;
pub const GHCB_MSR_TERM_REQ: u64 = 0x100;

/// The GHCB protocol versions this guest speaks. SEV-SNP needs version 2
/// (GHCB spec: page-state change, guest requests and AP creation need version 2).
pub const GHCB_PROTOCOL_MIN: u16 = 2;
pub const GHCB_PROTOCOL_MAX: u16 = 2;

/// The GFN field of a registration or page-state-change request is bits 51:12.
const GFN_BITS: u32 = 40;
const GFN_MAX: u64 = (1 << GFN_BITS) - 1;
/// A registration response whose GFN is all ones means the hypervisor refused it ("GHCB MSR Protocol").
const GFN_REFUSED: u64 = (1 << 52) - 1;

/// Why an MSR-protocol answer was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GhcbMsrError {
    /// GHCBInfo of the answer is not the response to what was asked.
    WrongResponse { expected: u64, got: u64 },
    /// A field the specification reserves is not zero.
    ReservedBitsSet,
    /// The CPUID answer is for another register than the one asked.
    WrongRegister,
    /// The hypervisor offers no GHCB protocol version this guest speaks.
    UnsupportedVersion { min: u16, max: u16 },
    /// The hypervisor refused to register the GHCB, or echoed another GFN.
    RegistrationRefused,
    /// A page-state change answered with a non-zero error code (bits 63:32).
    PageStateChange(u32),
    /// A GFN that does not fit the 40-bit field.
    GfnOutOfRange,
    /// The hypervisor does not offer the SEV-SNP feature (feature bit 0).
    SnpNotOffered,
}

impl fmt::Display for GhcbMsrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongResponse { expected, got } => write!(f, "GHCB MSR response {got:#x}, expected {expected:#x}"),
            Self::ReservedBitsSet => f.write_str("reserved bits set in a GHCB MSR response"),
            Self::WrongRegister => f.write_str("CPUID MSR response for another register"),
            Self::UnsupportedVersion { min, max } => write!(f, "hypervisor speaks GHCB protocol {min}..={max}, guest needs 2"),
            Self::RegistrationRefused => f.write_str("GHCB registration refused"),
            Self::PageStateChange(code) => write!(f, "page-state change failed with error {code:#x}"),
            Self::GfnOutOfRange => f.write_str("GFN out of range"),
            Self::SnpNotOffered => f.write_str("the hypervisor does not offer SEV-SNP"),
        }
    }
}

impl core::error::Error for GhcbMsrError {}

fn expect_info(value: u64, expected: u64) -> Result<(), GhcbMsrError> {
    match value & GHCB_INFO_MASK {
        got if got == expected => Ok(()),
        got => Err(GhcbMsrError::WrongResponse { expected, got }),
    }
}

/// SEV information response (GHCBInfo 001h): protocol range and C-bit position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SevInfo {
    /// Bits 63:48.
    pub max_version: u16,
    /// Bits 47:32.
    pub min_version: u16,
    /// Bits 31:24: the encryption bit position the hypervisor claims. Untrusted: an SNP
    /// guest takes the C-bit from the PSP-validated CPUID page instead.
    pub c_bit: u8,
}

/// SEV information request (GHCBInfo 002h).
pub const fn sev_info_request() -> u64 {
    GHCB_MSR_SEV_INFO_REQ
}

impl SevInfo {
    /// Decodes a response; bits 23:12 are reserved and must be zero.
    pub fn decode(value: u64) -> Result<Self, GhcbMsrError> {
        expect_info(value, GHCB_MSR_SEV_INFO_RESP)?;
        if value & 0x00FF_F000 != 0 {
            return Err(GhcbMsrError::ReservedBitsSet);
        }
        Ok(Self { max_version: (value >> 48) as u16, min_version: (value >> 32) as u16, c_bit: (value >> 24) as u8 })
    }

    /// The highest protocol version both sides speak (the guest must use a version
    /// inside the hypervisor's range and terminate if there is none).
    pub fn negotiate(&self) -> Result<u16, GhcbMsrError> {
        let version = self.max_version.min(GHCB_PROTOCOL_MAX);
        if self.min_version > self.max_version || version < self.min_version.max(GHCB_PROTOCOL_MIN) {
            return Err(GhcbMsrError::UnsupportedVersion { min: self.min_version, max: self.max_version });
        }
        Ok(version)
    }
}

/// The register a CPUID MSR request asks for (bits 31:30).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CpuidRegister {
    Eax = 0,
    Ebx = 1,
    Ecx = 2,
    Edx = 3,
}

/// CPUID request (GHCBInfo 004h): function in bits 63:32, register in 31:30. The MSR
/// protocol has no sub-leaf: ECX is taken as zero.
pub const fn cpuid_request(function: u32, register: CpuidRegister) -> u64 {
    ((function as u64) << 32) | ((register as u64) << 30) | GHCB_MSR_CPUID_REQ
}

/// Decodes a CPUID response (GHCBInfo 005h): the value in bits 63:32, the register echoed
/// in 31:30, bits 29:12 reserved.
pub fn decode_cpuid_response(value: u64, register: CpuidRegister) -> Result<u32, GhcbMsrError> {
    expect_info(value, GHCB_MSR_CPUID_RESP)?;
    if value & 0x3FFF_F000 != 0 {
        return Err(GhcbMsrError::ReservedBitsSet);
    }
    if (value >> 30) & 0b11 != register as u64 {
        return Err(GhcbMsrError::WrongRegister);
    }
    Ok((value >> 32) as u32)
}

/// Register GHCB GPA request (GHCBInfo 012h): the GHCB's GFN in bits 63:12.
pub fn register_ghcb_request(gpa: u64) -> Result<u64, GhcbMsrError> {
    if gpa & 0xFFF != 0 || gpa >> 12 > GFN_MAX {
        return Err(GhcbMsrError::GfnOutOfRange);
    }
    Ok(gpa | GHCB_MSR_REG_GPA_REQ)
}

/// Checks a registration response (GHCBInfo 013h): it must echo the GFN that was asked;
/// all ones means the hypervisor refused.
pub fn decode_register_ghcb_response(value: u64, gpa: u64) -> Result<(), GhcbMsrError> {
    expect_info(value, GHCB_MSR_REG_GPA_RESP)?;
    let gfn = value >> 12;
    if gfn == GFN_REFUSED || gfn != gpa >> 12 {
        return Err(GhcbMsrError::RegistrationRefused);
    }
    Ok(())
}

/// Page operations of a page-state change ("GHCB MSR Protocol" for the MSR form, "SNP Page State Change" for the
/// GHCB form, which adds the PSMASH/UNSMASH hints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PageOperation {
    /// Make the page private (assigned to the guest in the RMP).
    Private = 1,
    /// Make the page shared (hypervisor-owned).
    Shared = 2,
    /// Hint: split a 2 MiB RMP entry (GHCB form only).
    Psmash = 3,
    /// Hint: merge into a 2 MiB RMP entry (GHCB form only).
    Unsmash = 4,
}

/// SNP page-state change request, MSR form (GHCBInfo 014h): one 4 KiB page; GFN in
/// bits 51:12, operation in 55:52.
pub fn page_state_change_request(gpa: u64, operation: PageOperation) -> Result<u64, GhcbMsrError> {
    if gpa & 0xFFF != 0 || gpa >> 12 > GFN_MAX {
        return Err(GhcbMsrError::GfnOutOfRange);
    }
    if !matches!(operation, PageOperation::Private | PageOperation::Shared) {
        // The MSR form only knows the two assignments.
        return Err(GhcbMsrError::ReservedBitsSet);
    }
    Ok(((operation as u64) << 52) | gpa | GHCB_MSR_PSC_REQ)
}

/// Decodes a page-state change response (GHCBInfo 015h): error code in bits 63:32 (zero
/// on success), bits 31:12 reserved.
pub fn decode_page_state_change_response(value: u64) -> Result<(), GhcbMsrError> {
    expect_info(value, GHCB_MSR_PSC_RESP)?;
    if value & 0xFFFF_F000 != 0 {
        return Err(GhcbMsrError::ReservedBitsSet);
    }
    match (value >> 32) as u32 {
        0 => Ok(()),
        code => Err(GhcbMsrError::PageStateChange(code)),
    }
}

/// Hypervisor feature support (GHCBInfo 081h, "Hypervisor Feature Support"):
/// a bitmap in bits 63:12.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HvFeatures(pub u64);

impl HvFeatures {
    /// Bit 0: SEV-SNP (required by an SNP guest).
    pub const SEV_SNP: u64 = 1 << 0;
    /// Bit 1: SEV-SNP AP creation.
    pub const SEV_SNP_AP_CREATION: u64 = 1 << 1;

    pub const fn has(self, feature: u64) -> bool {
        self.0 & feature == feature
    }
}

/// Hypervisor feature request (GHCBInfo 080h).
pub const fn hv_features_request() -> u64 {
    GHCB_MSR_HV_FT_REQ
}

pub fn decode_hv_features_response(value: u64) -> Result<HvFeatures, GhcbMsrError> {
    expect_info(value, GHCB_MSR_HV_FT_RESP)?;
    Ok(HvFeatures(value >> 12))
}

/// Reason code set 0, defined by the GHCB spec ("Termination Request").
pub const REASON_SET_GENERAL: u8 = 0;
/// The set Halcyon's own reason codes use. The specification defines only set 0 and leaves
/// the others to the guest; Linux uses 1 and COCONUT-SVSM 3, so Halcyon takes 0xF so a
/// host log cannot read its codes as theirs.
pub const REASON_SET_HALCYON: u8 = 0xF;

/// Why the guest asks to be terminated: a reason-code set (4 bits) and a code (8 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TerminationReason {
    /// Set 0, code 0: general termination request.
    General,
    /// Set 0, code 1: the GHCB protocol range is not supported.
    ProtocolUnsupported,
    /// Set 0, code 2: SEV-SNP features are not supported.
    SnpUnsupported,
    /// A Halcyon reason (set [`REASON_SET_HALCYON`]).
    Halcyon(HalcyonReason),
}

/// Halcyon's reason codes (set [`REASON_SET_HALCYON`]); the discriminant is the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum HalcyonReason {
    /// SNP was expected but SEV_STATUS or the hypervisor features say otherwise.
    SnpMissing = 0,
    /// The hypervisor refused or garbled the GHCB registration.
    GhcbRegistration = 1,
    /// A page-state change failed.
    PageStateChange = 2,
    /// PVALIDATE failed or found a page validated twice.
    Pvalidate = 3,
    /// The guest does not run at VMPL0.
    NotVmpl0 = 4,
    /// The SNP CPUID page is missing or inconsistent.
    CpuidPage = 5,
    /// The secrets page is missing or malformed.
    SecretsPage = 6,
    /// A #VC the kernel does not handle.
    UnexpectedVc = 7,
    /// A GHCB answer failed validation.
    GhcbResponse = 8,
    /// The memory map handed over at boot is inconsistent.
    MemoryMap = 9,
}

impl TerminationReason {
    /// The (set, code) pair.
    pub const fn set_and_code(self) -> (u8, u8) {
        match self {
            Self::General => (REASON_SET_GENERAL, 0),
            Self::ProtocolUnsupported => (REASON_SET_GENERAL, 1),
            Self::SnpUnsupported => (REASON_SET_GENERAL, 2),
            Self::Halcyon(reason) => (REASON_SET_HALCYON, reason as u8),
        }
    }
}

/// Termination request (GHCBInfo 100h): reason-code set in bits 15:12, code in 23:16.
/// The hypervisor does not answer it; the guest halts if it ever returns.
pub const fn termination_request(reason: TerminationReason) -> u64 {
    let (set, code) = reason.set_and_code();
    (((code as u64) << 16) | (((set & 0xF) as u64) << 12)) | GHCB_MSR_TERM_REQ
}

/// Early-boot sequence over the boundary: SEV information (protocol negotiation), then the
/// hypervisor features (SNP must be offered). Returns the negotiated version.
pub fn negotiate(v: &mut impl super::Vmgexit) -> Result<(u16, HvFeatures), GhcbMsrError> {
    let version = SevInfo::decode(v.msr_protocol(sev_info_request()))?.negotiate()?;
    let features = decode_hv_features_response(v.msr_protocol(hv_features_request()))?;
    if !features.has(HvFeatures::SEV_SNP) {
        return Err(GhcbMsrError::SnpNotOffered);
    }
    Ok((version, features))
}

/// Registers the GHCB at `gpa` (required before its first use under SNP).
pub fn register_ghcb(v: &mut impl super::Vmgexit, gpa: u64) -> Result<(), GhcbMsrError> {
    decode_register_ghcb_response(v.msr_protocol(register_ghcb_request(gpa)?), gpa)
}

/// One CPUID register through the MSR protocol.
pub fn cpuid(v: &mut impl super::Vmgexit, function: u32, register: CpuidRegister) -> Result<u32, GhcbMsrError> {
    decode_cpuid_response(v.msr_protocol(cpuid_request(function, register)), register)
}

/// Changes one 4 KiB page's state through the MSR protocol (before a GHCB exists).
pub fn page_state_change(v: &mut impl super::Vmgexit, gpa: u64, operation: PageOperation) -> Result<(), GhcbMsrError> {
    decode_page_state_change_response(v.msr_protocol(page_state_change_request(gpa, operation)?))
}

/// Asks the hypervisor to end the guest. It should not return; if it does, the caller
/// must halt for ever (never continue).
pub fn request_termination(v: &mut impl super::Vmgexit, reason: TerminationReason) {
    v.msr_protocol(termination_request(reason));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snp::sim::SimSnp;

    #[test]
    fn early_boot_sequence_over_the_boundary() {
        let mut sim = SimSnp::new();
        assert_eq!(negotiate(&mut sim).map(|(v, _)| v), Ok(2));
        register_ghcb(&mut sim, 0x10_0000).unwrap();
        assert_eq!(cpuid(&mut sim, 0x8000_001F, CpuidRegister::Ebx), Ok(0xABCD));
        page_state_change(&mut sim, 0x20_0000, PageOperation::Shared).unwrap();
        request_termination(&mut sim, TerminationReason::Halcyon(HalcyonReason::SnpMissing));
        assert_eq!(sim.msr_log, [0x002, 0x080, 0x10_0012, 0x8000_001F_4000_0004, (2 << 52) | 0x20_0014, 0xF100]);
    }

    #[test]
    fn sev_info_decodes_and_negotiates() {
        // max 2, min 1, C-bit 51.
        let info = SevInfo::decode((2 << 48) | (1 << 32) | (51 << 24) | 0x001).unwrap();
        assert_eq!(info, SevInfo { max_version: 2, min_version: 1, c_bit: 51 });
        assert_eq!(info.negotiate(), Ok(2));
        // A hypervisor that only speaks version 1 cannot host an SNP guest.
        let old = SevInfo::decode((1 << 48) | (1 << 32) | (51 << 24) | 0x001).unwrap();
        assert_eq!(old.negotiate(), Err(GhcbMsrError::UnsupportedVersion { min: 1, max: 1 }));
        // Only newer versions: none in common.
        let new = SevInfo::decode((5 << 48) | (3 << 32) | 0x001).unwrap();
        assert!(new.negotiate().is_err());
        // An inverted range is refused.
        let odd = SevInfo::decode((1 << 48) | (2 << 32) | 0x001).unwrap();
        assert!(odd.negotiate().is_err());
        assert_eq!(SevInfo::decode(0x005), Err(GhcbMsrError::WrongResponse { expected: 1, got: 5 }));
        assert_eq!(SevInfo::decode((2 << 48) | 0x1000 | 0x001), Err(GhcbMsrError::ReservedBitsSet));
        assert_eq!(sev_info_request(), 0x002);
    }

    #[test]
    fn cpuid_request_and_response() {
        assert_eq!(cpuid_request(0x8000_001F, CpuidRegister::Ebx), 0x8000_001F_4000_0004);
        let resp = (0x1234_5678u64 << 32) | (1 << 30) | 0x005;
        assert_eq!(decode_cpuid_response(resp, CpuidRegister::Ebx), Ok(0x1234_5678));
        assert_eq!(decode_cpuid_response(resp, CpuidRegister::Eax), Err(GhcbMsrError::WrongRegister));
        assert_eq!(decode_cpuid_response(resp | 0x1000, CpuidRegister::Ebx), Err(GhcbMsrError::ReservedBitsSet));
        assert!(decode_cpuid_response(resp & !0xFFF | 0x004, CpuidRegister::Ebx).is_err());
    }

    #[test]
    fn ghcb_registration() {
        let gpa = 0x7FFF_E000;
        assert_eq!(register_ghcb_request(gpa), Ok(0x7FFF_E012));
        assert_eq!(register_ghcb_request(gpa + 8), Err(GhcbMsrError::GfnOutOfRange));
        assert_eq!(register_ghcb_request(1 << 52), Err(GhcbMsrError::GfnOutOfRange));
        assert_eq!(decode_register_ghcb_response(gpa | 0x013, gpa), Ok(()));
        assert_eq!(decode_register_ghcb_response((0xF_FFFF_FFFF_FFFF << 12) | 0x013, gpa), Err(GhcbMsrError::RegistrationRefused));
        // Another GFN echoed: refused, not silently accepted.
        assert_eq!(decode_register_ghcb_response((gpa + 0x1000) | 0x013, gpa), Err(GhcbMsrError::RegistrationRefused));
        assert!(decode_register_ghcb_response(gpa | 0x012, gpa).is_err());
    }

    #[test]
    fn page_state_change_msr_form() {
        assert_eq!(page_state_change_request(0x20_0000, PageOperation::Shared), Ok((2 << 52) | 0x20_0000 | 0x014));
        assert_eq!(page_state_change_request(0x20_0000, PageOperation::Private), Ok((1 << 52) | 0x20_0000 | 0x014));
        assert!(page_state_change_request(0x20_0000, PageOperation::Psmash).is_err());
        assert!(page_state_change_request(0x20_0001, PageOperation::Shared).is_err());
        assert!(page_state_change_request(1 << 52, PageOperation::Shared).is_err());
        assert_eq!(decode_page_state_change_response(0x015), Ok(()));
        assert_eq!(decode_page_state_change_response((7 << 32) | 0x015), Err(GhcbMsrError::PageStateChange(7)));
        assert_eq!(decode_page_state_change_response(0x1000 | 0x015), Err(GhcbMsrError::ReservedBitsSet));
    }

    #[test]
    fn hv_features_and_termination() {
        let features = decode_hv_features_response((0b11 << 12) | 0x081).unwrap();
        assert!(features.has(HvFeatures::SEV_SNP) && features.has(HvFeatures::SEV_SNP_AP_CREATION));
        assert!(!decode_hv_features_response(0x081).unwrap().has(HvFeatures::SEV_SNP));
        assert!(decode_hv_features_response(0x080).is_err());
        assert_eq!(hv_features_request(), 0x080);
        assert_eq!(termination_request(TerminationReason::General), 0x100);
        assert_eq!(termination_request(TerminationReason::SnpUnsupported), 0x2_0100);
        assert_eq!(termination_request(TerminationReason::Halcyon(HalcyonReason::Pvalidate)), 0x3_F100);
    }
}
