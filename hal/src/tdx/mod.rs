//! The Intel TDX guest side, above one narrow hardware boundary ([`TdCall`]).
//!
//! Specifications (cited per item in each file):
//! - Intel TDX Module v1.5 ABI Specification (doc. 348551) and Base Architecture
//!   Specification (doc. 348549): TDCALL leaves, completion status, TDREPORT_STRUCT;
//! - Intel TDX Guest-Hypervisor Communication Interface (GHCI) v1.5 (doc. 726792):
//!   TDG.VP.VMCALL sub-functions and the GetQuote shared buffer;
//! - Intel TDX DCAP Quoting Library API, appendix "Quote Format" (v4, v5).
//!
//! Nothing here executes TDCALL: the kernel implements [`TdCall`] with the instruction
//! and [`TdxPages`] with its own pages; the tests use a simulated TDX module and host
//! (`sim`, test-only) that follow the specifications and can turn hostile.

//! How the kernel uses it, in boot order:
//! 1. CPUID leaf 21h says TDX ([`crate::platform::TDX_VENDOR`]); [`tdcall::vp_info`] gives
//!    the GPA width and with it the shared bit.
//! 2. Memory the launch did not accept: [`accept::accept_range`] (2 MiB where possible);
//!    bounce buffers: [`accept::share_range`] / [`accept::unshare_range`].
//! 3. Device access: [`vmcall::io_in`]/[`vmcall::io_out`], [`vmcall::mmio_read`]/
//!    [`vmcall::mmio_write`], [`vmcall::rdmsr`]/[`vmcall::wrmsr`]; the #VE handlers are
//!    [`ve::handle`] (CPUID) and [`ve::handle_mmio`] (MMIO by code that does not use
//!    TDVMCALL itself), and a fatal reason goes to [`vmcall::report_fatal_error`] before
//!    halting for ever.
//! 4. [`platform::TdxPlatform`] for TDREPORTs, quotes (GetQuote) and RTMR extension; each
//!    loaded workload's digest goes into an RTMR with `extend_runtime_measurement`.

pub mod accept;
pub mod get_quote;
pub mod platform;
#[cfg(test)]
mod sim;
pub mod tdcall;
pub mod ve;
pub mod vmcall;

/// The general-purpose registers TDCALL reads and writes (RSP is never part of it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rbx: u64,
    pub rbp: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// The only way the TDX code reaches the hardware: one TDCALL.
pub trait TdCall {
    /// Loads `input` into the registers, executes TDCALL, and returns all the registers
    /// as they are afterwards. Which outputs are meaningful depends on the leaf; the
    /// callers here read only those and check them.
    fn tdcall(&mut self, input: &Registers) -> Registers;
}

/// The guest memory that TDCALLs with memory operands and the GetQuote protocol use.
/// Data moves only by copy, so the host cannot change shared bytes after they were checked.
pub trait TdxPages {
    /// Guest-physical address of one private 4 KiB page reserved for TDCALL operands
    /// (4 KiB aligned; see [`tdcall::SCRATCH_TDREPORT`] and the offsets next to it).
    fn scratch_gpa(&self) -> u64;
    fn write_scratch(&mut self, offset: usize, data: &[u8]);
    fn read_scratch(&self, offset: usize, out: &mut [u8]);

    /// The shared buffer for GetQuote, if the kernel set one up: its guest-physical
    /// address without the shared bit, and its length (a multiple of 4 KiB).
    fn quote_buffer(&self) -> Option<(u64, usize)>;
    fn write_quote_buffer(&mut self, offset: usize, data: &[u8]);
    fn read_quote_buffer(&self, offset: usize, out: &mut [u8]);

    /// Waits about `ms` milliseconds (while the host works on a quote).
    fn sleep_ms(&mut self, ms: u32);
}
