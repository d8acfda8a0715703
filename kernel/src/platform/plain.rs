//! A VM without a hardware root of trust: a plain VM, or a TEE whose paths Halcyon does not
//! drive. Memory is not private, nothing needs accepting or converting, page tables carry no
//! extra bits, and the HAL platform produces no evidence and no sealing key. It never
//! fabricates either, and says why.

use super::GuestPlatform;
use crate::arch::paging::PageEncoding;
use alloc::boxed::Box;
use core::ops::Range;
use halcyon_hal::platform::{Evidence, EvidenceFormat, Platform, PlatformError, SealBinding, SealingKey, TeeKind};

/// The kernel side of a VM without a hardware root of trust.
struct Plain {
    kind: TeeKind,
}

static NONE: Plain = Plain { kind: TeeKind::None };
static SEV: Plain = Plain { kind: TeeKind::Sev };
static SEV_ES: Plain = Plain { kind: TeeKind::SevEs };
static SEV_SNP: Plain = Plain { kind: TeeKind::SevSnp };
static TDX: Plain = Plain { kind: TeeKind::Tdx };

/// The platform for `kind` when Halcyon has no driver for its hardware root.
pub fn without_hardware_root(kind: TeeKind) -> &'static dyn GuestPlatform {
    match kind {
        TeeKind::None => &NONE,
        TeeKind::Sev => &SEV,
        TeeKind::SevEs => &SEV_ES,
        TeeKind::SevSnp => &SEV_SNP,
        TeeKind::Tdx => &TDX,
    }
}

impl GuestPlatform for Plain {
    fn kind(&self) -> TeeKind {
        self.kind
    }

    fn memory_is_private(&self) -> bool {
        false
    }

    fn page_encoding(&self) -> PageEncoding {
        PageEncoding::default()
    }

    fn accept_memory(&self, _range: Range<u64>) -> u64 {
        0
    }

    fn convert(&self, _paddr: u64, _pages: usize, _shared: bool) {}

    fn hal_platform(&self) -> Box<dyn Platform + Send> {
        Box::new(WithoutHardwareRoot { kind: self.kind })
    }
}

/// The HAL side: answers `unsupported` with the reason.
struct WithoutHardwareRoot {
    kind: TeeKind,
}

impl WithoutHardwareRoot {
    fn why(&self) -> &'static str {
        match self.kind {
            TeeKind::None => "no hardware root of trust: this is not a confidential VM",
            _ => "not implemented for this TEE yet",
        }
    }
}

impl Platform for WithoutHardwareRoot {
    fn kind(&self) -> TeeKind {
        self.kind
    }

    fn evidence_formats(&self) -> &'static [EvidenceFormat] {
        &[]
    }

    fn attestation_report(&mut self, _: EvidenceFormat, _: &[u8; 64]) -> Result<Evidence, PlatformError> {
        Err(PlatformError::Unsupported(self.why()))
    }

    fn sealing_key(&mut self, _: SealBinding, _: &[u8; 32]) -> Result<SealingKey, PlatformError> {
        Err(PlatformError::Unsupported(self.why()))
    }
}
