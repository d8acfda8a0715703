//! The AMD SEV-SNP guest side, above one narrow hardware boundary ([`Vmgexit`]).
//!
//! Specifications (cited per item in each file):
//! - AMD "SEV-ES Guest-Hypervisor Communication Block Standardization", pub. 56421, rev. 2.03
//!   ([`ghcb_msr`], [`ghcb`], [`cert_table`], [`vc`], [`pvalidate`]);
//! - AMD "SEV Secure Nested Paging Firmware ABI Specification", pub. 56860, rev. 1.55
//!   ([`guest_message`], [`secrets_page`], [`cpuid_page`]);
//! - AMD64 Architecture Programmer's Manual vol. 2, §15.34–15.36.
//!
//! Nothing here executes VMGEXIT or PVALIDATE or touches the GHCB MSR: the kernel
//! implements [`Vmgexit`] (and [`pvalidate::Pvalidate`]) with the instructions, the tests
//! with a simulated hypervisor, RMP and PSP (`sim`, test-only) that follow the
//! specifications and can turn hostile.

//! How the kernel uses it, in boot order:
//! 1. SEV_STATUS says SNP ([`crate::platform::tee_from_sev_status`]); the C-bit comes from
//!    the CPUID page ([`cpuid_page::CpuidPage::c_bit_position`]), not the hypervisor.
//! 2. MSR protocol: [`ghcb_msr::negotiate`] (version 2, SNP offered), then
//!    [`ghcb_msr::register_ghcb`] for each vCPU's shared GHCB page. Any failure:
//!    [`ghcb_msr::request_termination`] with a reason, then halt for ever.
//! 3. Memory the launch did not validate: [`pvalidate::validate_range`] (2 MiB where
//!    possible), recording what is validated; bounce buffers: [`pvalidate::share_range`].
//! 4. Device access: [`ghcb::io_in`]/[`ghcb::io_out`], [`ghcb::mmio_read`]/
//!    [`ghcb::mmio_write`], [`ghcb::rdmsr`]/[`ghcb::wrmsr`]; the #VC handlers are [`vc::handle`]
//!    (CPUID) and [`vc::handle_npf`] (MMIO by code that does not use the GHCB itself).
//! 5. A copy of the secrets page goes to [`platform::SnpPlatform::new`] (which keeps only
//!    VMPCK0); the page is then never mapped again. Attestation and sealing go through it.
//!
//! The kernel's [`Vmgexit::exit`] copies the [`Ghcb`] into the per-vCPU shared page with
//! volatile writes, writes the page's GPA to the GHCB MSR, executes VMGEXIT, and copies the
//! page back; interrupts that could use the same GHCB stay off meanwhile (re-entrancy).

pub mod cert_table;
pub mod cpuid_page;
pub mod ghcb;
pub mod ghcb_msr;
pub mod guest_message;
pub mod platform;
pub mod pvalidate;
pub mod secrets_page;
#[cfg(test)]
mod sim;
pub mod vc;

use ghcb::{Ghcb, PAGE_SIZE};

/// The only way the SNP code reaches the hardware: the GHCB MSR protocol, one exit through
/// the GHCB page, and the two shared pages guest messages travel in.
///
/// Shared memory is never handed out as a reference: requests are copied in and answers
/// copied out, so the hypervisor cannot change a value after the guest checked it.
pub trait Vmgexit {
    /// MSR protocol: writes `request` to the GHCB MSR, executes VMGEXIT and returns what
    /// the GHCB MSR holds afterwards (GHCB spec "GHCB MSR Protocol"). The kernel restores the GHCB's GPA
    /// in the MSR afterwards if one is registered.
    fn msr_protocol(&mut self, request: u64) -> u64;

    /// The guest-physical address of this vCPU's registered (shared) GHCB page.
    fn ghcb_gpa(&self) -> u64;

    /// Copies all of `ghcb` into the shared GHCB page, points the GHCB MSR at it, executes
    /// VMGEXIT, and copies the whole page back into `ghcb` (GHCB spec "GHCB Layout", §4.1 "Invoking VMGEXIT").
    fn exit(&mut self, ghcb: &mut Ghcb);

    /// Guest-physical addresses of the shared request and response pages of guest
    /// messages (4 KiB each, page-aligned, distinct from the GHCB).
    fn message_page_gpas(&self) -> (u64, u64);

    /// Copies `page` into the shared request page.
    fn write_request_page(&mut self, page: &[u8; PAGE_SIZE]);

    /// Copies the shared response page into `page`.
    fn read_response_page(&mut self, page: &mut [u8; PAGE_SIZE]);

    /// Waits about `ms` milliseconds (before retrying a throttled guest request).
    fn sleep_ms(&mut self, ms: u32);

    /// The shared buffer the host may put the VCEK/ASK/ARK certificates in (extended
    /// guest requests): its GPA (page-aligned) and length (whole pages). `None`, the
    /// default, means plain guest requests only.
    fn certificate_buffer(&self) -> Option<(u64, usize)> {
        None
    }

    /// Copies `out.len()` bytes at `offset` out of the certificate buffer.
    fn read_certificate_buffer(&mut self, offset: usize, out: &mut [u8]) {
        let _ = offset;
        out.fill(0);
    }
}
