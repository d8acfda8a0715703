//! The kernel's Intel TDX platform: what runs when CPUID leaf 21h says "IntelTDX    ".
//!
//! Boot order (the steps `hal/src/tdx/mod.rs` lists, in the order `platform/mod.rs` calls a
//! [`GuestPlatform`]):
//! 1. [`early_init`], before any port I/O — in a TD the serial port, fw_cfg and PCI are
//!    reachable only through TDG.VP.VMCALL, and an IN or OUT would raise a #VE: TDG.VP.INFO
//!    (GPA width, hence the shared bit; attributes) and the [`TdxParavirt`] hook.
//! 2. Page tables: RAM private (no extra bit), device memory and shared pages with the
//!    shared bit (TDX module v1.5 base architecture spec, "GPA.SHARED").
//! 3. [`GuestPlatform::accept_memory`]: RAM the launch did not accept, from the memory map
//!    the kernel already reads (fw_cfg `etc/e820`, which QEMU provides for a TD as for any
//!    q35 VM; the TD HOB QEMU writes at `TD_HOB_GPA` carries the same map with acceptance
//!    state, but it is host input just the same, and what the launch accepted is known from
//!    the kernel's own measured metadata: TempMem = the kernel's RAM, and the TD HOB).
//! 4. [`GuestPlatform::convert`]: MapGPA to share bounce buffers, MapGPA + accept back.
//! 5. The HAL platform: `hal::tdx::platform::TdxPlatform` over the kernel's TDCALL and pages.
//!
//! Everything is written to the Intel TDX Module v1.5 ABI and base architecture
//! specifications, GHCI v1.5 and the TDVF design guide; there is no TDX hardware where
//! Halcyon is developed, so this path is host-tested above the TDCALL boundary only.

mod pages;
pub mod paravirt;

use super::GuestPlatform;
use crate::arch::paging::PageEncoding;
use crate::arch::paravirt as arch_paravirt;
use crate::arch::tdcall::HardwareTdCall;
use alloc::boxed::Box;
use core::ops::Range;
use halcyon_boot::firmware_layout::{TD_HOB_GPA, TD_HOB_SIZE};
use halcyon_hal::platform::{Platform, TeeKind};
use halcyon_hal::tdx::accept::{self, AcceptTracker};
use halcyon_hal::tdx::platform::TdxPlatform;
use halcyon_hal::tdx::tdcall::{self, TdInfo};
use halcyon_hal::tdx::{Registers, TdCall, TdxPages};
use pages::KernelTdxPages;
pub use paravirt::TdxParavirt;
use spin::{Mutex, Once};

static INFO: Once<TdInfo> = Once::new();
static PARAVIRT: Once<TdxParavirt> = Once::new();
static GUEST: Once<TdxGuest> = Once::new();

/// Disjoint accepted ranges the tracker can hold (the launch's two, one per e820 RAM
/// range, the bundle): far more than QEMU's memory maps have.
const MAX_ACCEPTED_RANGES: usize = 32;

/// ReportFatalError code when TDG.VP.INFO fails or answers out of range (Halcyon's own).
const FATAL_VP_INFO: u32 = 0x0D00_0001;

/// Reads TDG.VP.INFO, installs the TDX device-access hook and returns the TDX platform.
///
/// # Safety
/// Only in a TD: the caller has seen the TDX signature in CPUID leaf 21h.
pub unsafe fn early_init() -> &'static dyn GuestPlatform {
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
    // The launch accepted the kernel's RAM (TempMem: from its lowest link address to the end
    // of .bss and the boot stack, `firmware_layout::tdvf_sections`) and the TD HOB.
    let kernel = crate::arch::paging::kernel_layout().image();
    let at_launch = [kernel.start & !0xFFF..kernel.end.next_multiple_of(0x1000), TD_HOB_GPA.into()..(TD_HOB_GPA + TD_HOB_SIZE).into()];
    let tracker = AcceptTracker::new(&at_launch).unwrap_or_else(|_| paravirt::fail(FATAL_ACCEPT, "cannot track accepted memory"));
    GUEST.call_once(|| TdxGuest { shared_bit: info.shared_bit(), accepted: Mutex::new(tracker) })
}

/// ReportFatalError codes for memory failures (Halcyon's own).
const FATAL_ACCEPT: u32 = 0x0D00_0002;
const FATAL_CONVERT: u32 = 0x0D00_0003;

/// The kernel side of a TD.
struct TdxGuest {
    shared_bit: u64,
    accepted: Mutex<AcceptTracker<MAX_ACCEPTED_RANGES>>,
}

impl TdxGuest {
    fn tdcall() -> HardwareTdCall {
        // SAFETY: a `TdxGuest` exists only after `early_init`, which runs in a TD.
        unsafe { HardwareTdCall::new() }
    }
}

impl GuestPlatform for TdxGuest {
    fn kind(&self) -> TeeKind {
        TeeKind::Tdx
    }

    fn memory_is_private(&self) -> bool {
        true
    }

    fn page_encoding(&self) -> PageEncoding {
        PageEncoding { private: 0, shared: self.shared_bit }
    }

    /// TDG.MEM.PAGE.ACCEPT of what in `range` is not accepted yet, 2 MiB at a time where
    /// aligned with a 4 KiB fallback (`hal::tdx::accept`). Accepting zeroes the pages.
    fn accept_memory(&self, range: Range<u64>) -> u64 {
        let what = range.clone();
        match self.accepted.lock().accept(&mut Self::tdcall(), range) {
            Ok(stats) => {
                if stats.bytes() > 0 {
                    crate::kprintln!(
                        "tdx: accepted {:#x}..{:#x}: {} KiB ({} x 2 MiB, {} x 4 KiB, {} 2 MiB blocks split by the host, {} busy retries)",
                        what.start,
                        what.end,
                        stats.bytes() >> 10,
                        stats.accepted_2m,
                        stats.accepted_4k,
                        stats.size_fallbacks,
                        stats.busy_retries
                    );
                }
                stats.bytes()
            }
            Err(e) => {
                crate::log::print_fatal(format_args!("tdx: accepting {:#x}..{:#x} failed: {e}", what.start, what.end));
                paravirt::fail(FATAL_ACCEPT, "TDG.MEM.PAGE.ACCEPT failed")
            }
        }
    }

    /// MapGPA with the shared bit to share; MapGPA without it and TDG.MEM.PAGE.ACCEPT of
    /// every page to take them back (GHCI v1.5 §3.2 "TDG.VP.VMCALL<MapGPA>").
    fn convert(&self, paddr: u64, pages: usize, shared: bool) {
        let end = paddr + pages as u64 * accept::SIZE_4K;
        let result = if shared {
            accept::share_range(&mut Self::tdcall(), paddr, end, self.shared_bit).map(|_| ()).map_err(|_| ())
        } else {
            accept::unshare_range(&mut Self::tdcall(), paddr, end, self.shared_bit).map(|_| ()).map_err(|_| ())
        };
        if result.is_err() {
            crate::log::print_fatal(format_args!("tdx: converting {paddr:#x} (+{pages} pages, shared {shared}) failed"));
            paravirt::fail(FATAL_CONVERT, "MapGPA or the accept after it failed");
        }
    }

    fn hal_platform(&self) -> Box<dyn Platform + Send> {
        let boundary = TdBoundary { t: Self::tdcall(), pages: KernelTdxPages::new(true) };
        match TdxPlatform::new(boundary) {
            Ok(platform) => Box::new(platform),
            // TDG.VP.INFO worked at early init; if it stops working, no evidence at all.
            Err(_) => paravirt::fail(FATAL_VP_INFO, "TDG.VP.INFO failed after boot"),
        }
    }

    /// TDREPORTs (and quotes) come from the TDX module; sealing answers why not.
    fn has_hardware_root(&self) -> bool {
        true
    }
}

/// The hal's TDX boundary: the kernel's TDCALL and its pages, in one value.
struct TdBoundary {
    t: HardwareTdCall,
    pages: KernelTdxPages,
}

impl TdCall for TdBoundary {
    fn tdcall(&mut self, input: &Registers) -> Registers {
        self.t.tdcall(input)
    }
}

impl TdxPages for TdBoundary {
    fn scratch_gpa(&self) -> u64 {
        self.pages.scratch_gpa()
    }
    fn write_scratch(&mut self, offset: usize, data: &[u8]) {
        self.pages.write_scratch(offset, data)
    }
    fn read_scratch(&self, offset: usize, out: &mut [u8]) {
        self.pages.read_scratch(offset, out)
    }
    fn quote_buffer(&self) -> Option<(u64, usize)> {
        self.pages.quote_buffer()
    }
    fn write_quote_buffer(&mut self, offset: usize, data: &[u8]) {
        self.pages.write_quote_buffer(offset, data)
    }
    fn read_quote_buffer(&self, offset: usize, out: &mut [u8]) {
        self.pages.read_quote_buffer(offset, out)
    }
    fn sleep_ms(&mut self, ms: u32) {
        self.pages.sleep_ms(ms)
    }
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
