//! Memory the host may read and write: virtio rings and the bounce buffers device data
//! passes through. One owning type, [`SharedPages`], makes pages shared when allocated and
//! private again when dropped, so nothing else ever hands a device a kernel address.
//!
//! On a plain VM every page is visible to the host anyway and sharing is a no-op. On
//! SEV-SNP and TDX the platform converts the pages (page-state change / MapGPA) in
//! [`crate::platform::set_shared`]; kernel data then reaches devices only as copies made
//! through bounce buffers ([`bounce_buffers`]), never by handing out its own pages.

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

pub const PAGE_SIZE: usize = 4096;

static FORCE_BOUNCE: AtomicBool = AtomicBool::new(false);

/// Copy device data through shared bounce buffers even where every page is shared
/// (kernel command line `virtio.bounce=on`, so the confidential-VM path is exercised on a
/// plain VM too).
pub fn force_bounce_buffers() {
    FORCE_BOUNCE.store(true, Ordering::Relaxed);
}

/// Whether device data must be copied through [`SharedPages`] (private memory is not
/// readable by the host).
pub fn bounce_buffers() -> bool {
    FORCE_BOUNCE.load(Ordering::Relaxed) || crate::platform::memory_is_private()
}

/// Page-aligned, zeroed, physically contiguous pages shared with the host while owned.
pub struct SharedPages {
    start: NonNull<u8>,
    pages: usize,
}

impl SharedPages {
    fn layout(pages: usize) -> Option<Layout> {
        Layout::from_size_align(pages.checked_mul(PAGE_SIZE)?, PAGE_SIZE).ok()
    }

    /// `None` when `pages` is 0 or the heap cannot provide them.
    pub fn new(pages: usize) -> Option<Self> {
        let layout = Self::layout(pages).filter(|l| l.size() > 0)?;
        // SAFETY: the layout has a non-zero size.
        let start = NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) })?;
        let shared = Self { start, pages };
        crate::platform::set_shared(shared.physical_address(), pages, true);
        if crate::platform::memory_is_private() {
            // What the host's view of the converted pages holds is not ours: zero it.
            // SAFETY: the pages are ours (allocated above) and `len` bytes long.
            unsafe { shared.start.as_ptr().write_bytes(0, shared.len()) };
        }
        Some(shared)
    }

    /// The guest-physical address devices use (the kernel identity-maps RAM).
    pub fn physical_address(&self) -> u64 {
        self.start.as_ptr() as u64
    }

    pub fn as_ptr(&self) -> NonNull<u8> {
        self.start
    }

    pub fn len(&self) -> usize {
        self.pages * PAGE_SIZE
    }

    /// Gives up ownership (the pages stay shared) until [`SharedPages::from_raw`].
    pub fn into_raw(self) -> (NonNull<u8>, usize) {
        let raw = (self.start, self.pages);
        core::mem::forget(self);
        raw
    }

    /// # Safety
    /// `start` and `pages` must come from [`SharedPages::into_raw`], once.
    pub unsafe fn from_raw(start: NonNull<u8>, pages: usize) -> Self {
        Self { start, pages }
    }
}

impl Drop for SharedPages {
    fn drop(&mut self) {
        // Whatever the device left there must not survive into private memory.
        // SAFETY: the pages are ours (allocated in `new`) and `len` bytes long.
        unsafe { self.start.as_ptr().write_bytes(0, self.len()) };
        crate::platform::set_shared(self.physical_address(), self.pages, false);
        if let Some(layout) = Self::layout(self.pages) {
            // SAFETY: allocated in `new` with this layout and not freed since.
            unsafe { alloc::alloc::dealloc(self.start.as_ptr(), layout) };
        }
    }
}
