//! The platform this kernel runs on — a plain VM, an SEV-SNP guest or a TDX trust domain —
//! picked once at boot, early in `halcyon_main`, and asked for everything that differs
//! between them. Generic code calls the functions of this module and never branches on
//! the TEE kind.
//!
//! # The interface a platform implements ([`GuestPlatform`])
//!
//! One implementation per TEE lives in a submodule (`plain`, `snp`, and `tdx` on the TDX
//! branch) and is installed by [`early_init`]:
//!
//! 1. [`early_init`] runs from `halcyon_main` right after the GDT/IDT are loaded and BEFORE
//!    the log, the boot information or anything else that does port I/O, MMIO, CPUID or
//!    MSR accesses: on SEV-SNP the GHCB must exist before fw_cfg and the serial port are
//!    used, on TDX the #VE/paravirt hook must be installed first. The platform installs
//!    its [`crate::arch::paravirt::Paravirt`] hook there if it needs one.
//! 2. [`page_encoding`]: the bits every page-table entry carries (`arch::paging` applies
//!    them to every mapping): `private` is ORed into RAM mappings (the SNP C-bit), `shared`
//!    into device memory and pages shared with the host (the TDX shared bit). Both are zero
//!    on a plain VM, so its page tables are unchanged.
//! 3. [`accept_memory`]: makes RAM that the launch did not validate (SNP: PVALIDATE) or
//!    accept (TDX: TDG.MEM.PAGE.ACCEPT) usable. `memory::init` calls it for all free RAM
//!    before the heap or the page-table builder touch it, and `boot_info` for the range
//!    fw_cfg copies the workload bundle into. It must tolerate ranges it already accepted
//!    (or pre-accepted at launch) and skip them: accepting twice is an attack signal on
//!    both TEEs. A platform that cannot accept memory ends the VM with its own reason.
//! 4. [`set_shared`]: converts pages between private and shared (SNP: PVALIDATE rescind +
//!    page-state change; TDX: MapGPA) AND rewrites their page-table entries with the
//!    matching encoding (splitting a 2 MiB mapping into 4 KiB ones where needed). The
//!    platform does only the conversion ([`GuestPlatform::convert`]); this module orders it
//!    around the page-table update.
//! 5. [`with_platform`]: the HAL's `Platform` (attestation evidence, sealing keys), built
//!    on first use from [`GuestPlatform::hal_platform`]; [`has_hardware_root`] tells the
//!    capabilities interface whether it reaches real hardware.
//! 6. Page-table inputs besides the encoding: [`shared_at_boot`] (pages shared before the
//!    kernel tables existed, e.g. the SNP GHCB) and [`never_mapped`] (e.g. the SNP secrets
//!    page). Both default to nothing.
//!
//! A TDX implementation adds `platform/tdx/`, a `TeeKind::Tdx => tdx::early_init()` arm in
//! [`early_init`], and implements the trait; nothing else in the kernel changes.
//!
//! Why `set_shared` splits mappings instead of keeping a dedicated pre-shared pool for
//! [`crate::memory::shared::SharedPages`]: a pool needs a size fixed at boot (too small and
//! virtio fails, too large and it wastes private RAM), while on-demand conversion works for
//! any number of bounce buffers and keeps every byte the host can see owned by one
//! `SharedPages`. The price is one conversion per bounce buffer (two guest exits on SNP);
//! a pool in front of `SharedPages` is a later optimisation that needs no interface change.

mod mmio_fault;
mod plain;
mod snp;
pub mod tdx;

use crate::arch::paging::{self, PageEncoding};
use crate::arch::cpuid;
use alloc::boxed::Box;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, Ordering};
use halcyon_hal::evidence::rtmr;
use halcyon_hal::measurement::Measurement;
use halcyon_hal::platform::{self as hal_platform, sev_status, Platform, PlatformError, TeeKind};
use spin::{Mutex, Once};

/// What each TEE implements for the kernel (see the module documentation for the order in
/// which the kernel calls it). Implementations are `'static` singletons.
pub trait GuestPlatform: Sync {
    /// The TEE this implementation drives.
    fn kind(&self) -> TeeKind;

    /// Whether guest memory is private (encrypted and integrity-protected), so devices
    /// can only use pages explicitly shared with the host.
    fn memory_is_private(&self) -> bool;

    /// The page-table bits for private and shared mappings.
    fn page_encoding(&self) -> PageEncoding;

    /// Makes the 4 KiB-aligned RAM `range` usable, skipping whatever is already accepted.
    /// Returns the number of bytes newly accepted. Ends the VM if it cannot.
    fn accept_memory(&self, range: Range<u64>) -> u64;

    /// Converts `pages` 4 KiB pages at `paddr` to shared (`shared`) or private memory, without
    /// touching page tables ([`set_shared`] orders this around the page-table update).
    /// Ends the VM if the conversion fails: a half-converted page cannot be trusted.
    fn convert(&self, paddr: u64, pages: usize, shared: bool);

    /// The HAL platform (evidence, sealing), built on first use after the heap exists.
    fn hal_platform(&self) -> Box<dyn Platform + Send>;

    /// Whether [`GuestPlatform::hal_platform`] reaches the TEE's hardware root of trust
    /// (evidence, sealing keys), so capabilities report those functions as supported.
    fn has_hardware_root(&self) -> bool {
        false
    }

    /// Pages the platform shared with the host before the kernel's page tables existed
    /// (the SNP GHCB): `arch::paging` maps them shared.
    fn shared_at_boot(&self) -> &'static [Range<u64>] {
        &[]
    }

    /// Pages the kernel's page tables must never map (the SNP secrets page, whose copy the
    /// platform keeps).
    fn never_mapped(&self) -> &'static [Range<u64>] {
        &[]
    }
}

static GUEST: Once<&'static dyn GuestPlatform> = Once::new();
static DETECTED: Once<TeeKind> = Once::new();

/// AMD memory-encryption capabilities: CPUID 8000_001Fh EAX bit 1 = SEV
/// (AMD APM vol. 3, appendix E.4.17).
const SEV_LEAF: u32 = 0x8000_001F;
const SEV_SUPPORTED: u32 = 1 << 1;

fn detect_once() -> TeeKind {
    // The firmware entry (boot/src/pvh_entry.s) reads SEV_STATUS before paging, guarded
    // against #GP, because on SEV-SNP it needs the C-bit before it can build page tables.
    // When it saw SNP, CPUID must not be executed here: it would raise #VC before the SNP
    // platform's handler exists.
    if crate::arch::boot_sev_status() & sev_status::SNP_ENABLED != 0 {
        return TeeKind::SevSnp;
    }
    if cpuid::max_basic_leaf() >= hal_platform::TDX_CPUID_LEAF
        && cpuid::signature(hal_platform::TDX_CPUID_LEAF) == hal_platform::TDX_VENDOR
    {
        return TeeKind::Tdx;
    }
    if cpuid::max_extended_leaf() >= SEV_LEAF && cpuid::cpuid(SEV_LEAF, 0).eax & SEV_SUPPORTED != 0 {
        // SAFETY: CPUID reports SEV support, so SEV_STATUS exists (APM vol. 2 §15.34.10);
        // reading it has no side effects.
        let status = unsafe { cpuid::read_msr(sev_status::MSR) };
        return hal_platform::tee_from_sev_status(status);
    }
    TeeKind::None
}

/// The platform this VM runs on (detected on first call).
pub fn detect() -> TeeKind {
    *DETECTED.call_once(detect_once)
}

/// Picks and initialises the platform. Called once from `halcyon_main` before the log and
/// the boot information (see the module documentation); later calls do nothing.
pub fn early_init() {
    GUEST.call_once(|| {
        let kind = detect();
        match kind {
            // SAFETY: `detect` saw the TDX signature in CPUID leaf 21h: this is a TD.
            TeeKind::Tdx => unsafe { tdx::early_init() },
            TeeKind::SevSnp => snp::early_init(),
            _ => plain::without_hardware_root(kind),
        }
    });
}

fn guest() -> &'static dyn GuestPlatform {
    *GUEST.call_once(|| plain::without_hardware_root(detect()))
}

/// The TEE the platform picked at boot drives.
pub fn kind() -> TeeKind {
    guest().kind()
}

/// Whether guest memory is private to the guest (encrypted and integrity-protected), so
/// devices can only use pages explicitly shared with the host. False on a plain VM.
pub fn memory_is_private() -> bool {
    guest().memory_is_private()
}

/// The page-table bits for private and shared mappings (zero on a plain VM).
pub fn page_encoding() -> PageEncoding {
    guest().page_encoding()
}

/// Whether the platform's HAL side reaches a hardware root of trust (for capabilities).
pub fn has_hardware_root() -> bool {
    guest().has_hardware_root()
}

/// Pages shared with the host before the kernel's page tables were built.
pub fn shared_at_boot() -> &'static [Range<u64>] {
    guest().shared_at_boot()
}

/// Pages the kernel's page tables leave unmapped.
pub fn never_mapped() -> &'static [Range<u64>] {
    guest().never_mapped()
}

/// What [`accept_memory`] did, for the boot log.
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptReport {
    /// Bytes newly validated or accepted.
    pub bytes: u64,
    /// TSC ticks spent.
    pub ticks: u64,
}

impl AcceptReport {
    pub fn add(&mut self, other: AcceptReport) {
        self.bytes += other.bytes;
        self.ticks += other.ticks;
    }
}

/// Makes the RAM `ranges` (4 KiB-aligned) usable where the launch did not validate or
/// accept it; a no-op on a plain VM. Ends the VM on failure.
pub fn accept_memory(ranges: impl IntoIterator<Item = Range<u64>>) -> AcceptReport {
    let start = crate::arch::tsc::read();
    let bytes = ranges.into_iter().filter(|r| r.start < r.end).map(|r| guest().accept_memory(r)).sum();
    AcceptReport { bytes, ticks: crate::arch::tsc::read().saturating_sub(start) }
}

/// Makes `pages` 4 KiB pages at `paddr` shared with the host (`shared`) or private again:
/// converts them and rewrites their page-table entries (and flushes their TLB entries). A
/// no-op on a plain VM. The contents do not survive the change: the caller zeroes
/// or copies them afterwards.
pub fn set_shared(paddr: u64, pages: usize, shared: bool) {
    let guest = guest();
    if !guest.memory_is_private() || pages == 0 {
        return;
    }
    let encoding = guest.page_encoding();
    let range = paddr..paddr + pages as u64 * 4096;
    // To shared: convert first, then map shared, so the kernel never has a shared mapping of
    // memory that is still private. To private: map private only after the conversion is done.
    // (Linux orders SNP conversions the same way: arch/x86/mm/pat/set_memory.c.)
    if shared {
        guest.convert(paddr, pages, true);
        paging::set_encoding(range, encoding, true).unwrap_or_else(|e| crate::fatal!("cannot share {paddr:#x}: {e}"));
    } else {
        paging::set_encoding(range, encoding, false).unwrap_or_else(|e| crate::fatal!("cannot unshare {paddr:#x}: {e}"));
        guest.convert(paddr, pages, false);
    }
}

static HAL_PLATFORM: Once<Mutex<Box<dyn Platform + Send>>> = Once::new();

/// Runs `f` with the platform picked at boot (the HAL's only way to the hardware).
pub fn with_platform<R>(f: impl FnOnce(&mut dyn Platform) -> R) -> R {
    let platform = HAL_PLATFORM.call_once(|| Mutex::new(guest().hal_platform()));
    f(&mut **platform.lock())
}

/// Whether the platform said it has no runtime measurement registers (then nothing is
/// extended again), and whether the kernel's own entry is in them yet.
static NO_RUNTIME_REGISTERS: AtomicBool = AtomicBool::new(false);
static KERNEL_EXTENDED: AtomicBool = AtomicBool::new(false);

/// Extends the platform's runtime measurement registers (the TDX RTMRs) with one log
/// entry, so that a verifier replays the measurement log (`hal::evidence::rtmr`: the kernel
/// into RTMR1, workloads into RTMR2, each as its versioned event digest) into the values the
/// evidence reports. The first time a platform takes an entry, the kernel's own measurement
/// goes in too (computed only then: it hashes the kernel image). A platform without such
/// registers answers `Unsupported` once and is not asked again; any other failure is
/// returned, and the caller must not run what it could not measure.
pub fn extend_runtime_measurement(entry: &Measurement) -> Result<(), PlatformError> {
    if NO_RUNTIME_REGISTERS.load(Ordering::Relaxed) {
        return Ok(());
    }
    // Each entry extended is logged as `rtmrN: <event-log line>` (the line format
    // `halcyon verify --event-log` reads), so the kernel log carries the event log.
    let extend = |m: &Measurement| {
        let index = rtmr::rtmr_index(m.kind) as u32;
        with_platform(|p| p.extend_runtime_measurement(index, &rtmr::event_digest(m)))
            .inspect(|()| crate::kprintln!("rtmr{index}: {m}"))
    };
    match extend(entry) {
        Err(PlatformError::Unsupported(_)) => {
            NO_RUNTIME_REGISTERS.store(true, Ordering::Relaxed);
            return Ok(());
        }
        other => other?,
    }
    if !KERNEL_EXTENDED.swap(true, Ordering::Relaxed) {
        extend(crate::memory::kernel_measurement())?;
    }
    Ok(())
}
