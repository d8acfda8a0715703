//! Detecting the confidential-computing platform from CPUID and MSRs.

pub mod tdx;

use crate::arch::cpuid;
use halcyon_hal::platform::{self, sev_status, Evidence, EvidenceFormat, Platform, PlatformError, SealBinding, SealingKey, TeeKind};
use spin::{Mutex, Once};

static DETECTED: Once<TeeKind> = Once::new();

/// AMD memory-encryption capabilities: CPUID 8000_001Fh EAX bit 1 = SEV
/// (AMD APM vol. 3, appendix E.4.17).
const SEV_LEAF: u32 = 0x8000_001F;
const SEV_SUPPORTED: u32 = 1 << 1;

fn detect_once() -> TeeKind {
    if cpuid::max_basic_leaf() >= platform::TDX_CPUID_LEAF
        && cpuid::signature(platform::TDX_CPUID_LEAF) == platform::TDX_VENDOR
    {
        return TeeKind::Tdx;
    }
    if cpuid::max_extended_leaf() >= SEV_LEAF && cpuid::cpuid(SEV_LEAF, 0).eax & SEV_SUPPORTED != 0 {
        // SAFETY: CPUID reports SEV support, so SEV_STATUS exists (APM vol. 2 §15.34.10);
        // reading it has no side effects.
        let status = unsafe { cpuid::read_msr(sev_status::MSR) };
        return platform::tee_from_sev_status(status);
    }
    TeeKind::None
}

/// The first step of the boot, before any port I/O: a confidential-VM platform installs its
/// device-access hook here (TDX: TDG.VP.INFO and the TDVMCALL paravirt).
pub fn early_init() {
    if detect() == TeeKind::Tdx {
        // SAFETY: CPUID leaf 21h carries the TDX signature (`detect_once`): this is a TD.
        unsafe { tdx::early_init() };
    }
}

/// The platform this VM runs on (detected on first call).
pub fn detect() -> TeeKind {
    *DETECTED.call_once(detect_once)
}

/// A VM without a hardware root of trust (plain, or a TEE whose paths Halcyon does not
/// drive yet): it produces no evidence and has no sealing key. It never fabricates
/// either, and says why.
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

static PLATFORM: Once<Mutex<WithoutHardwareRoot>> = Once::new();

/// Runs `f` with the platform picked at boot (the HAL's only way to the hardware).
pub fn with_platform<R>(f: impl FnOnce(&mut dyn Platform) -> R) -> R {
    let platform = PLATFORM.call_once(|| Mutex::new(WithoutHardwareRoot { kind: detect() }));
    f(&mut *platform.lock())
}

/// Whether guest memory is private to the guest (encrypted and integrity-protected), so
/// devices can only use pages explicitly shared with the host. False on a plain VM; the
/// SEV-SNP and TDX paths turn it on when they take over memory.
pub fn memory_is_private() -> bool {
    false
}

/// Makes `pages` 4 KiB pages at `paddr` shared with the host (`shared`) or private again.
/// A plain VM has nothing to convert; SEV-SNP (page-state change, GHCB spec 56421 §4.1.6)
/// and TDX (MapGPA, GHCI §3.2) convert here.
pub fn set_shared(_paddr: u64, _pages: usize, _shared: bool) {}
