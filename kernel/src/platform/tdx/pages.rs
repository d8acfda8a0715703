//! The memory the TDCALLs with memory operands and GetQuote use (the hal's [`TdxPages`]).

use alloc::boxed::Box;
use halcyon_hal::tdx::TdxPages;

/// One 4 KiB page, page-aligned, for TDCALL memory operands.
#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// The memory TDG.MR.REPORT, TDG.MR.RTMR.EXTEND and GetQuote use: a private scratch page
/// (kernel heap, identity-mapped, so its address is its GPA) and, where the kernel could
/// share pages with the host, the GetQuote buffer.
pub struct KernelTdxPages {
    scratch: Box<Page>,
    quote: Option<crate::memory::shared::SharedPages>,
}

// SAFETY: the value owns its pages outright (`SharedPages` is not `Send` only because it
// holds a raw pointer); they are reached only through this value, which the platform lock
// serialises, so moving it to another context cannot create aliasing access.
unsafe impl Send for KernelTdxPages {}

/// GetQuote buffer: 4 pages (the header, a TDREPORT in, and a quote with its PCK
/// certificate chain out, which takes a few KiB; Linux's tdx-guest driver uses the same size).
pub const QUOTE_BUFFER_PAGES: usize = 4;

impl KernelTdxPages {
    /// The scratch page, and the quote buffer if `with_quote_buffer` and it can be shared.
    pub fn new(with_quote_buffer: bool) -> Self {
        let quote = if with_quote_buffer { crate::memory::shared::SharedPages::new(QUOTE_BUFFER_PAGES) } else { None };
        Self { scratch: Box::new(Page([0; 4096])), quote }
    }

    fn quote_bytes(&self) -> Option<&[u8]> {
        let q = self.quote.as_ref()?;
        // SAFETY: the pages are owned by `q` and `len` bytes long; the host may write them
        // at any time, which is why callers copy out once and check the copy (hal).
        Some(unsafe { core::slice::from_raw_parts(q.as_ptr().as_ptr(), q.len()) })
    }
}

impl TdxPages for KernelTdxPages {
    fn scratch_gpa(&self) -> u64 {
        core::ptr::from_ref(&*self.scratch) as u64
    }

    fn write_scratch(&mut self, offset: usize, data: &[u8]) {
        self.scratch.0[offset..offset + data.len()].copy_from_slice(data);
    }

    fn read_scratch(&self, offset: usize, out: &mut [u8]) {
        // The TDX module wrote the page during TDCALL; read it as memory that changed.
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: a reference to a byte of the owned page (the index is bounds-checked).
            *b = unsafe { core::ptr::from_ref(&self.scratch.0[offset + i]).read_volatile() };
        }
    }

    fn quote_buffer(&self) -> Option<(u64, usize)> {
        self.quote.as_ref().map(|q| (q.physical_address(), q.len()))
    }

    fn write_quote_buffer(&mut self, offset: usize, data: &[u8]) {
        if let Some(q) = &self.quote {
            assert!(offset.checked_add(data.len()).is_some_and(|end| end <= q.len()), "quote buffer write out of range");
            // SAFETY: in bounds (checked above) of the pages `q` owns.
            unsafe { q.as_ptr().as_ptr().add(offset).copy_from_nonoverlapping(data.as_ptr(), data.len()) };
        }
    }

    fn read_quote_buffer(&self, offset: usize, out: &mut [u8]) {
        if let Some(bytes) = self.quote_bytes() {
            for (i, b) in out.iter_mut().enumerate() {
                // SAFETY: the slice index is bounds-checked; volatile because the host writes it.
                *b = unsafe { core::ptr::from_ref(&bytes[offset + i]).read_volatile() };
            }
        }
    }

    /// Spins: the caller holds the platform lock, so yielding to another workload that
    /// asks for evidence too would spin on that lock for ever.
    fn sleep_ms(&mut self, ms: u32) {
        let deadline = crate::time::monotonic_ns().saturating_add(u64::from(ms) * 1_000_000);
        while crate::time::monotonic_ns() < deadline {
            crate::arch::spin_hint();
        }
    }
}
