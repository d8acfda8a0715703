//! What kind of (confidential) VM the kernel runs in.
//!
//! Detected once at boot by the kernel's arch code and kept for the capabilities
//! interface; generic code asks the platform object for services and never branches on
//! the kind itself.

use core::fmt;

/// The trusted-execution technology protecting this VM, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeeKind {
    /// A plain VM: the hypervisor can read and change all guest memory.
    None,
    /// AMD SEV: memory encrypted, register state not protected.
    Sev,
    /// AMD SEV-ES: memory and register state encrypted.
    SevEs,
    /// AMD SEV-SNP: adds memory integrity (RMP) and attestation through the PSP.
    SevSnp,
    /// Intel TDX: a trust domain managed by the TDX module.
    Tdx,
}

impl TeeKind {
    /// Stable lower-case name, as shown to workloads and in the boot log.
    pub const fn name(self) -> &'static str {
        match self {
            TeeKind::None => "none",
            TeeKind::Sev => "sev",
            TeeKind::SevEs => "sev-es",
            TeeKind::SevSnp => "sev-snp",
            TeeKind::Tdx => "tdx",
        }
    }

    /// Whether this platform can produce hardware-signed attestation evidence.
    pub const fn has_hardware_attestation(self) -> bool {
        matches!(self, TeeKind::SevSnp | TeeKind::Tdx)
    }
}

impl fmt::Display for TeeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// AMD SEV_STATUS MSR (C001_0131h) bits, AMD APM vol. 2 §15.34.10, table 15-34.
pub mod sev_status {
    pub const MSR: u32 = 0xC001_0131;
    pub const SEV_ENABLED: u64 = 1 << 0;
    pub const SEV_ES_ENABLED: u64 = 1 << 1;
    pub const SNP_ENABLED: u64 = 1 << 2;
}

/// Decodes the SEV_STATUS MSR into a [`TeeKind`] (the strongest feature that is on).
pub fn tee_from_sev_status(status: u64) -> TeeKind {
    if status & sev_status::SNP_ENABLED != 0 {
        TeeKind::SevSnp
    } else if status & sev_status::SEV_ES_ENABLED != 0 {
        TeeKind::SevEs
    } else if status & sev_status::SEV_ENABLED != 0 {
        TeeKind::Sev
    } else {
        TeeKind::None
    }
}

/// CPUID leaf 21h vendor string of a TD: "IntelTDX    " in EBX, EDX, ECX
/// (Intel TDX Module ABI spec, "CPUID virtualization", leaf 0x21).
pub const TDX_CPUID_LEAF: u32 = 0x21;
pub const TDX_VENDOR: [u8; 12] = *b"IntelTDX    ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sev_status_decoding() {
        assert_eq!(tee_from_sev_status(0), TeeKind::None);
        assert_eq!(tee_from_sev_status(0b001), TeeKind::Sev);
        assert_eq!(tee_from_sev_status(0b011), TeeKind::SevEs);
        assert_eq!(tee_from_sev_status(0b111), TeeKind::SevSnp);
        assert_eq!(TeeKind::SevSnp.to_string(), "sev-snp");
        assert!(!TeeKind::None.has_hardware_attestation());
    }
}

/// Evidence formats a platform can produce (`attestation.evidence-format` in the WIT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidenceFormat {
    /// AMD SEV-SNP ATTESTATION_REPORT (SNP ABI spec 56860, "Attestation Report").
    SevSnpReport,
    /// Intel TDX TDREPORT_STRUCT (TDX module ABI, TDG.MR.REPORT).
    TdxReport,
    /// Intel TDX quote (DCAP), signed by the quoting enclave.
    TdxQuote,
}

/// Hardware-signed evidence and the certificates that come with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub format: EvidenceFormat,
    pub report: alloc::vec::Vec<u8>,
    pub certificates: alloc::vec::Vec<alloc::vec::Vec<u8>>,
}

/// What a sealing key is bound to (`attestation.seal-binding` in the WIT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealBinding {
    LaunchMeasurement,
    Workload,
}

/// A 256-bit sealing key; zeroized when dropped.
pub struct SealingKey {
    pub key: zeroize::Zeroizing<[u8; 32]>,
    /// True only when a hardware secret derives it (e.g. SNP MSG_KEY_REQ).
    pub hardware_backed: bool,
    pub description: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformError {
    /// This platform cannot do it (for example, no hardware root of trust).
    Unsupported(&'static str),
    InvalidArgument(&'static str),
    /// The security processor or TDX module refused or failed.
    Failure(&'static str),
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlatformError::Unsupported(why) => write!(f, "unsupported: {why}"),
            PlatformError::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            PlatformError::Failure(why) => write!(f, "platform failure: {why}"),
        }
    }
}

impl core::error::Error for PlatformError {}

/// What only the TEE hardware can do. The kernel has one implementation per platform
/// (plain VM, SEV-SNP, TDX), picks one at boot, and the HAL talks to nothing else, so
/// generic code never asks which platform it is on.
pub trait Platform {
    fn kind(&self) -> TeeKind;
    /// The evidence formats [`Platform::attestation_report`] can produce.
    fn evidence_formats(&self) -> &'static [EvidenceFormat];
    /// Evidence binding the caller's 64 bytes of report data.
    fn attestation_report(&mut self, format: EvidenceFormat, report_data: &[u8; 64]) -> Result<Evidence, PlatformError>;
    /// The sealing key for `binding` (for `Workload`, `workload_digest` is mixed in).
    fn sealing_key(&mut self, binding: SealBinding, workload_digest: &[u8; 32]) -> Result<SealingKey, PlatformError>;
    /// Extends runtime measurement register `index` with a SHA-384 `digest` (the TDX
    /// RTMRs). Platforms without such registers answer `Unsupported`, the default.
    fn extend_runtime_measurement(&mut self, index: u32, digest: &[u8; 48]) -> Result<(), PlatformError> {
        let _ = (index, digest);
        Err(PlatformError::Unsupported("this platform has no runtime measurement registers"))
    }
}
