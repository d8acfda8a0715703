//! The kernel's Intel TDX platform: what runs when CPUID leaf 21h says "IntelTDX    ".
//!
//! Boot order (the steps `hal/src/tdx/mod.rs` lists): [`early_init`] runs first in
//! `halcyon_main`, before any port I/O — in a TD the serial port, fw_cfg and PCI are
//! reachable only through TDG.VP.VMCALL, and an IN or OUT would raise a #VE. It reads
//! TDG.VP.INFO (GPA width, hence the shared bit; attributes) and installs [`TdxParavirt`]
//! as the kernel's device-access hook. Everything is written to the Intel TDX Module v1.5
//! ABI and base architecture specifications and GHCI v1.5; there is no TDX hardware where
//! Halcyon is developed, so this path is host-tested above the TDCALL boundary only.

pub mod paravirt;

use crate::arch::paravirt as arch_paravirt;
use crate::arch::tdcall::HardwareTdCall;
use halcyon_hal::tdx::tdcall::{self, TdInfo};
pub use paravirt::TdxParavirt;
use spin::Once;

static INFO: Once<TdInfo> = Once::new();
static PARAVIRT: Once<TdxParavirt> = Once::new();

/// ReportFatalError code when TDG.VP.INFO fails or answers out of range (Halcyon's own).
const FATAL_VP_INFO: u32 = 0x0D00_0001;

/// Reads TDG.VP.INFO and installs the TDX device-access hook.
///
/// # Safety
/// Only in a TD: the caller has seen the TDX signature in CPUID leaf 21h.
pub unsafe fn early_init() {
    // SAFETY: the caller guarantees a TD.
    let mut t = unsafe { HardwareTdCall::new() };
    // GPAW other than 48 or 52, or vCPU counts that contradict each other, are refused
    // (`hal::tdx::tdcall::vp_info`): the shared bit is derived from it.
    let info = match tdcall::vp_info(&mut t) {
        Ok(info) => info,
        Err(_) => paravirt::fail(FATAL_VP_INFO, "TDG.VP.INFO failed or answered out of range"),
    };
    let info = INFO.call_once(|| info);
    let pv = PARAVIRT.call_once(|| TdxParavirt { shared_bit: info.shared_bit() });
    arch_paravirt::install(pv);
}

/// What TDG.VP.INFO said, once [`early_init`] ran.
pub fn info() -> Option<&'static TdInfo> {
    INFO.get()
}

/// The boot log lines about the TD (after the log is up).
pub fn log_info() {
    let Some(info) = info() else { return };
    crate::kprintln!(
        "tdx: GPA width {} (shared bit {:#x}), {} of at most {} vCPUs, attributes {:#x}",
        info.gpaw,
        info.shared_bit(),
        info.num_vcpus,
        info.max_vcpus,
        info.attributes
    );
    if info.debug() {
        crate::kprintln!("tdx: WARNING: this is a DEBUG TD: the host can read and change its memory and registers");
    }
    if !info.sept_ve_disabled() {
        crate::kprintln!("tdx: SEPT_VE_DISABLE is clear: a touch of unaccepted memory raises a #VE, which is fatal here");
    }
}
