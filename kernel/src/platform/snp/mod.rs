//! The SEV-SNP guest platform (AMD GHCB spec 56421 rev. 2.03, SNP firmware ABI 56860 rev.
//! 1.55, AMD APM vol. 2 §15.34–15.36). The protocols are `halcyon_hal::snp` (host-tested
//! against a simulated hypervisor and PSP); this module wires them to the kernel:
//!
//! - [`early_init`] (before the log and the boot information): the CPUID page copied and
//!   parsed (the C-bit, the answers to CPUID); GHCB MSR protocol negotiation; a check that
//!   the kernel runs at VMPL 0; the boot vCPU's GHCB page made shared (C-bit cleared in its
//!   boot page-table entry, page-state change to shared; it was never validated) and
//!   registered; the SEV metadata of the firmware read back for what the launch validated;
//!   the secrets page copied (and never mapped again); the paravirt hook installed.
//! - [`GuestPlatform::accept_memory`]: PVALIDATE (2 MiB where possible) of RAM the launch did
//!   not validate, with `halcyon_hal::snp::pvalidate`'s double-validation guard.
//! - [`GuestPlatform::convert`]: PVALIDATE rescind + page-state change for bounce buffers.
//! - device access and #VC: [`paravirt`].
//! - the HAL platform: `halcyon_hal::snp::platform::SnpPlatform` (attestation reports and
//!   sealing keys through the PSP), built from the secrets-page copy, which is then wiped.
//!
//! Written to the specifications; there is no SNP hardware where Halcyon is developed, so
//! none of this has run on a real SNP host yet (see docs/ARCHITECTURE.md).
//!
//! Any failure ends the VM with a GHCB termination request whose reason says why
//! (`HalcyonReason`): an SNP guest never continues on a value it could not check.

mod exits;
mod paravirt;

use super::GuestPlatform;
use crate::arch::paging::PageEncoding;
use crate::memory::shared::SharedPages;
use alloc::boxed::Box;
use core::ops::Range;
use exits::{Exits, GHCB_GPA};
use halcyon_boot::firmware_layout::{SEV_METADATA_GPA, SNP_CPUID_PAGE_GPA, SNP_SECRETS_PAGE_GPA};
use halcyon_boot::ovmf::sev::{SevMetadata, SevSectionType};
use halcyon_hal::platform::{Platform, TeeKind};
use halcyon_hal::ranges::RangeSet;
use halcyon_hal::snp::cpuid_page::CpuidPage;
use halcyon_hal::snp::ghcb::Ghcb;
use halcyon_hal::snp::ghcb_msr::{self, GhcbMsrError, HalcyonReason, PageOperation, TerminationReason};
use halcyon_hal::snp::platform::SnpPlatform;
use halcyon_hal::snp::pvalidate::{self, ValidateError};
use halcyon_hal::snp::secrets_page;
use spin::{Mutex, Once};
use zeroize::Zeroize;

const PAGE: u64 = 4096;
/// Ranges the validated record can hold (pre-validated sections plus accepted RAM; merged).
const MAX_VALIDATED_RANGES: usize = 64;

/// The SNP platform (its state lives in the statics below).
struct Snp;
static SNP: Snp = Snp;

/// The CPUID page, copied at boot: the answers to CPUID.
static CPUID: Once<CpuidPage> = Once::new();
/// The C-bit as a page-table mask.
static C_BIT: Once<u64> = Once::new();
/// Private scratch copy of the GHCB for device access and memory changes.
static GHCB: Once<Mutex<Ghcb>> = Once::new();
/// What is validated: the launch's sections, then every range `accept_memory` validated.
static VALIDATED: Mutex<RangeSet<MAX_VALIDATED_RANGES>> = Mutex::new(RangeSet::new());
/// The secrets page copy until the HAL platform takes VMPCK0 from it (then wiped).
static SECRETS: Mutex<[u8; PAGE as usize]> = Mutex::new([0; PAGE as usize]);
/// The GHCB page, shared since boot.
#[allow(clippy::single_range_in_vec_init)] // one range (a page), not the pages 0..N
static SHARED_AT_BOOT: [Range<u64>; 1] = [GHCB_GPA..GHCB_GPA + PAGE];
/// The secrets page: the kernel's page tables never map it.
#[allow(clippy::single_range_in_vec_init)] // one range (a page), not the pages 0..N
static NEVER_MAPPED: [Range<u64>; 1] = [SNP_SECRETS_PAGE_GPA as u64..SNP_SECRETS_PAGE_GPA as u64 + PAGE];

/// Asks the hypervisor to end the VM (GHCB MSR protocol, GHCB spec 56421 §2.3.6) and halts
/// should it return. Uses the MSR directly: it must work whatever state the GHCB is in.
pub fn terminate(reason: TerminationReason) -> ! {
    // SAFETY: an SNP guest (this module runs only there); the termination request is an MSR
    // protocol value, and nothing runs after it.
    unsafe {
        crate::arch::snp::write_ghcb_msr(ghcb_msr::termination_request(reason));
        crate::arch::snp::vmgexit();
    }
    crate::arch::halt_forever()
}

/// Logs `what` if the log still works, then terminates with `reason`. A failure while
/// logging the first one terminates at once (the log itself needs the GHCB).
fn fail(reason: HalcyonReason, what: core::fmt::Arguments<'_>) -> ! {
    use core::sync::atomic::{AtomicBool, Ordering};
    static FAILING: AtomicBool = AtomicBool::new(false);
    if !FAILING.swap(true, Ordering::SeqCst) && GHCB.is_completed() {
        crate::log::print_fatal(what);
    }
    terminate(TerminationReason::Halcyon(reason))
}

/// Reads a 4 KiB page the boot page tables map (private) into `out`.
fn read_page(gpa: u64, out: &mut [u8; PAGE as usize]) {
    for (i, b) in out.iter_mut().enumerate() {
        // SAFETY: the boot page tables identity-map the first 4 GiB with the C-bit; the
        // callers pass pages the launch validated (CPUID, secrets, the firmware's last page).
        *b = unsafe { (gpa as *const u8).add(i).read_volatile() };
    }
}

/// Brings the SNP platform up (see the module documentation). Called by
/// `platform::early_init` when the firmware entry saw SNP; ends the VM on any failure.
pub fn early_init() -> &'static dyn GuestPlatform {
    let mut page = [0u8; PAGE as usize];
    read_page(SNP_CPUID_PAGE_GPA.into(), &mut page);
    let cpuid = CpuidPage::parse(&page).unwrap_or_else(|_| terminate(TerminationReason::Halcyon(HalcyonReason::CpuidPage)));
    let c_bit = cpuid.c_bit_position().unwrap_or_else(|_| terminate(TerminationReason::Halcyon(HalcyonReason::CpuidPage)));
    CPUID.call_once(|| cpuid);
    C_BIT.call_once(|| 1 << c_bit);

    let mut exits = Exits::new();
    match ghcb_msr::negotiate(&mut exits) {
        Ok(_) => {}
        Err(GhcbMsrError::SnpNotOffered) => terminate(TerminationReason::Halcyon(HalcyonReason::SnpMissing)),
        Err(_) => terminate(TerminationReason::ProtocolUnsupported),
    }
    check_vmpl0();
    share_ghcb_page(&mut exits, 1 << c_bit);

    record_prevalidated();
    read_page(SNP_SECRETS_PAGE_GPA.into(), &mut page);
    if secrets_page::vmpck(&page, 0).is_err() {
        terminate(TerminationReason::Halcyon(HalcyonReason::SecretsPage));
    }
    SECRETS.lock().copy_from_slice(&page);
    page.zeroize();

    GHCB.call_once(|| Mutex::new(<Ghcb as zerocopy::FromZeros>::new_zeroed()));
    crate::arch::paravirt::install(&paravirt::SNP_PARAVIRT);
    &SNP
}

/// A page-aligned private page for the VMPL check (RMPADJUST needs a validated page).
#[repr(C, align(4096))]
struct ProbePage([u8; PAGE as usize]);
static VMPL_PROBE: Mutex<ProbePage> = Mutex::new(ProbePage([0; PAGE as usize]));

/// Halcyon validates its own memory, which only VMPL 0 may do (without an SVSM).
fn check_vmpl0() {
    let probe = VMPL_PROBE.lock();
    // SAFETY: the probe page is in the kernel's .bss, which the launch pre-validated
    // (SNP_SEC_MEM); nothing runs at VMPL 1 whose permissions this clears.
    if unsafe { crate::arch::snp::rmpadjust_vmpl1_none(probe.0.as_ptr() as u64) } != 0 {
        terminate(TerminationReason::Halcyon(HalcyonReason::NotVmpl0));
    }
}

/// Makes the GHCB page shared and registers it (GHCB spec 56421 §2.3.2 "GHCB GPA
/// Registration", §2.3.3 "SNP Page State Change" through the MSR protocol): clear the
/// C-bit in its boot page-table entry (the boot stub maps the first 2 MiB with 4 KiB pages
/// for this), change its state to shared, register it, and zero it.
fn share_ghcb_page(exits: &mut Exits, c_bit: u64) {
    extern "C" {
        /// The boot stub's page table for the first 2 MiB (boot/src/pvh_entry.s).
        static mut boot_pt: [u64; 512];
    }
    let index = (GHCB_GPA / PAGE) as usize;
    // SAFETY: the boot page tables are live and only this CPU uses them; the entry maps
    // the GHCB page, which nothing has used yet; the TLB entry is flushed right after.
    unsafe {
        let entry = (&raw mut boot_pt).cast::<u64>().add(index);
        entry.write_volatile(entry.read_volatile() & !c_bit);
    }
    ::x86_64::instructions::tlb::flush(::x86_64::VirtAddr::new(GHCB_GPA));
    if ghcb_msr::page_state_change(exits, GHCB_GPA, PageOperation::Shared).is_err() {
        terminate(TerminationReason::Halcyon(HalcyonReason::PageStateChange));
    }
    if ghcb_msr::register_ghcb(exits, GHCB_GPA).is_err() {
        terminate(TerminationReason::Halcyon(HalcyonReason::GhcbRegistration));
    }
    exits::set_registered();
    for offset in (0..PAGE).step_by(8) {
        // SAFETY: the GHCB page, now mapped shared and owned by the kernel.
        unsafe { ((GHCB_GPA + offset) as *mut u64).write_volatile(0) };
    }
}

/// Records the SEV metadata's sections (SNP_SEC_MEM, secrets, CPUID) as validated: the
/// launch did it, and validating them again would be a double validation. The metadata is
/// read from the firmware image at the top of 4 GiB, which the launch measured.
fn record_prevalidated() {
    let mut last = [0u8; PAGE as usize];
    let last_page = (1u64 << 32) - PAGE;
    read_page(last_page, &mut last);
    let offset_from_end = ((1u64 << 32) - u64::from(SEV_METADATA_GPA)) as u32;
    let bad = || terminate(TerminationReason::Halcyon(HalcyonReason::MemoryMap));
    let metadata = SevMetadata::parse_at(&last, offset_from_end).unwrap_or_else(|_| bad());
    let mut validated = VALIDATED.lock();
    for section in metadata.sections() {
        if matches!(section.section_type, SevSectionType::SnpSecMem | SevSectionType::SnpSecrets | SevSectionType::Cpuid) {
            let start = u64::from(section.base);
            if validated.insert(start..start + u64::from(section.size)).is_err() {
                bad();
            }
        }
    }
}

fn validate_failed(e: ValidateError) -> ! {
    fail(HalcyonReason::Pvalidate, format_args!("SEV-SNP page validation failed: {e}"))
}

impl GuestPlatform for Snp {
    fn kind(&self) -> TeeKind {
        TeeKind::SevSnp
    }

    fn memory_is_private(&self) -> bool {
        true
    }

    fn page_encoding(&self) -> PageEncoding {
        PageEncoding { private: C_BIT.get().copied().unwrap_or(0), shared: 0 }
    }

    fn accept_memory(&self, range: Range<u64>) -> u64 {
        let mut bytes = 0;
        let result = (|| {
            let mut validated = VALIDATED.lock();
            let mut ghcb = GHCB.get().ok_or(ValidateError::RecordFull)?.lock();
            let mut exits = Exits::new();
            loop {
                let Some(gap) = pvalidate::unvalidated_parts(range.clone(), &validated).next() else { break };
                pvalidate::validate_range(&mut exits, &mut ghcb, gap.start, gap.end, &mut validated)?;
                bytes += gap.end - gap.start;
            }
            Ok(())
        })();
        result.unwrap_or_else(|e| validate_failed(e));
        bytes
    }

    fn convert(&self, paddr: u64, pages: usize, shared: bool) {
        let end = paddr + pages as u64 * PAGE;
        let result = (|| {
            let mut validated = VALIDATED.lock();
            let mut ghcb = GHCB.get().ok_or(ValidateError::RecordFull)?.lock();
            let mut exits = Exits::new();
            if shared {
                pvalidate::share_range(&mut exits, &mut ghcb, paddr, end, &mut validated)
            } else {
                pvalidate::validate_range(&mut exits, &mut ghcb, paddr, end, &mut validated)
            }
        })();
        if let Err(e) = result {
            validate_failed(e);
        }
    }

    fn hal_platform(&self) -> Box<dyn Platform + Send> {
        // Guest messages travel in two shared pages the platform keeps for good.
        let page = || {
            let shared = SharedPages::new(1)
                .unwrap_or_else(|| fail(HalcyonReason::SecretsPage, format_args!("no memory for the guest-message pages")));
            let address = shared.physical_address();
            shared.into_raw();
            address
        };
        let (request, response) = (page(), page());
        let mut secrets = SECRETS.lock();
        let platform = SnpPlatform::new(Exits::with_message_pages(request, response), &secrets[..], 0);
        secrets.zeroize();
        match platform {
            Ok(platform) => Box::new(platform),
            // Checked at boot; a failure here is a broken invariant.
            Err(e) => fail(HalcyonReason::SecretsPage, format_args!("SEV-SNP secrets page: {e}")),
        }
    }

    fn shared_at_boot(&self) -> &'static [Range<u64>] {
        &SHARED_AT_BOOT
    }

    fn never_mapped(&self) -> &'static [Range<u64>] {
        &NEVER_MAPPED
    }
}
