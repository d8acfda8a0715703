//! The kernel's side of `halcyon_hal::snp::Vmgexit` and `Pvalidate`: the boot vCPU's shared
//! GHCB page, the GHCB MSR, VMGEXIT and PVALIDATE (instructions in `arch::snp`).
//!
//! Re-entrancy: there is one GHCB page (one vCPU runs the kernel). Every use of it — copy
//! the request in, VMGEXIT, copy the answer out — runs with interrupts off and under
//! [`GHCB_PAGE`]; finding it taken means an exit started inside another one (a kernel bug
//! or an exception in the middle), which ends the VM rather than mixing two requests.

use super::terminate;
use crate::arch::snp as hw;
use halcyon_boot::firmware_layout::SNP_GHCB_GPA;
use halcyon_hal::snp::ghcb::{Ghcb, PAGE_SIZE};
use halcyon_hal::snp::ghcb_msr::{HalcyonReason, TerminationReason};
use halcyon_hal::snp::pvalidate::Pvalidate;
use halcyon_hal::snp::Vmgexit;
use spin::Mutex;
use zerocopy::IntoBytes;

/// The GHCB page's guest-physical (= virtual, identity-mapped) address.
pub const GHCB_GPA: u64 = SNP_GHCB_GPA as u64;

/// Held while the shared GHCB page is in use.
static GHCB_PAGE: Mutex<bool> = Mutex::new(false);

/// Whether the GHCB is registered (then the GHCB MSR is restored to its GPA after MSR
/// protocol requests).
pub fn set_registered() {
    *GHCB_PAGE.lock() = true;
}

/// One user of the boundary. `messages` are the shared request and response pages of
/// guest messages (only the HAL platform has them).
pub struct Exits {
    messages: Option<(u64, u64)>,
}

impl Exits {
    /// For device access and memory changes: no guest-message pages.
    pub const fn new() -> Self {
        Self { messages: None }
    }

    /// For the HAL platform: `request` and `response` are shared pages it owns for good.
    pub const fn with_message_pages(request: u64, response: u64) -> Self {
        Self { messages: Some((request, response)) }
    }

    fn message_pages(&self) -> (u64, u64) {
        self.messages.unwrap_or_else(|| terminate(TerminationReason::Halcyon(HalcyonReason::GhcbResponse)))
    }
}

/// Runs `f` with interrupts off and the GHCB page held; the flag says whether it is registered.
fn with_page<R>(f: impl FnOnce(bool) -> R) -> R {
    ::x86_64::instructions::interrupts::without_interrupts(|| {
        let Some(page) = GHCB_PAGE.try_lock() else {
            terminate(TerminationReason::Halcyon(HalcyonReason::GhcbResponse))
        };
        f(*page)
    })
}

/// Copies `len` bytes between private memory and a shared page with volatile accesses (the
/// hypervisor may change shared memory at any time; each byte is read exactly once).
fn copy_to_shared(gpa: u64, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        // SAFETY: `gpa` is one of the kernel's shared pages (the GHCB or a message page),
        // mapped shared and at least `bytes.len()` (<= 4096) long, used by nothing else now.
        unsafe { (gpa as *mut u8).add(i).write_volatile(*b) };
    }
}

fn copy_from_shared(gpa: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        // SAFETY: as in `copy_to_shared`.
        *b = unsafe { (gpa as *const u8).add(i).read_volatile() };
    }
}

impl Vmgexit for Exits {
    fn msr_protocol(&mut self, request: u64) -> u64 {
        with_page(|registered| {
            // SAFETY: an SNP guest (this module runs only there); `request` is an MSR protocol
            // request, and VMGEXIT with it makes the hypervisor answer in the MSR only.
            unsafe {
                hw::write_ghcb_msr(request);
                hw::vmgexit();
            }
            let answer = hw::read_ghcb_msr();
            if registered {
                // SAFETY: the registered GHCB's GPA.
                unsafe { hw::write_ghcb_msr(GHCB_GPA) };
            }
            answer
        })
    }

    fn ghcb_gpa(&self) -> u64 {
        GHCB_GPA
    }

    fn exit(&mut self, ghcb: &mut Ghcb) {
        with_page(|_| {
            copy_to_shared(GHCB_GPA, ghcb.as_bytes());
            // SAFETY: the GHCB MSR points at the registered, shared GHCB page that now holds
            // the request; the hypervisor writes only that page.
            unsafe {
                hw::write_ghcb_msr(GHCB_GPA);
                hw::vmgexit();
            }
            copy_from_shared(GHCB_GPA, zerocopy::IntoBytes::as_mut_bytes(ghcb));
        })
    }

    fn message_page_gpas(&self) -> (u64, u64) {
        self.message_pages()
    }

    fn write_request_page(&mut self, page: &[u8; PAGE_SIZE]) {
        copy_to_shared(self.message_pages().0, page);
    }

    fn read_response_page(&mut self, page: &mut [u8; PAGE_SIZE]) {
        copy_from_shared(self.message_pages().1, page);
    }

    fn sleep_ms(&mut self, ms: u32) {
        let deadline = crate::time::monotonic_ns().saturating_add(u64::from(ms) * 1_000_000);
        while crate::time::monotonic_ns() < deadline {
            crate::arch::spin_hint();
        }
    }
}

impl Pvalidate for Exits {
    fn pvalidate(&mut self, gpa: u64, huge: bool, validate: bool) -> (u32, bool) {
        // SAFETY: the kernel identity-maps RAM with the C-bit, so `gpa` is also the virtual
        // address; `halcyon_hal::snp::pvalidate` only passes pages being taken in (not yet
        // used) or handed out as shared (owned by the caller, contents given up).
        unsafe { hw::pvalidate(gpa, huge, validate) }
    }
}
