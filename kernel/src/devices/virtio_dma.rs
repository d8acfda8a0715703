//! The DMA hook virtio drivers allocate through: rings and buffers come from
//! [`SharedPages`], and driver buffers the device reads or writes are copied through
//! shared bounce buffers whenever guest memory is private (or `virtio.bounce=on`).

use crate::memory::shared::{self, SharedPages, PAGE_SIZE};
use core::ptr::NonNull;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

pub struct VirtioDma;

// SAFETY: `dma_alloc` returns zeroed, page-aligned pages owned by nobody else until
// `dma_dealloc`; `mmio_phys_to_virt` returns identity-mapped addresses the kernel maps
// uncached (below 4 GiB, outside RAM); `share` returns addresses of memory that stays
// valid until `unshare` (the caller's buffer, or a bounce buffer freed in `unshare`).
unsafe impl Hal for VirtioDma {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match SharedPages::new(pages) {
            Some(shared) => {
                let address = shared.physical_address();
                let (start, _) = shared.into_raw();
                (address, start)
            }
            // The driver turns a zero address into an error; no panic on exhaustion.
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: the driver passes back exactly what `dma_alloc` returned, once.
        drop(unsafe { SharedPages::from_raw(vaddr, pages) });
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // The kernel identity-maps the first 4 GiB (device memory uncached), where the PCI
        // code places every BAR.
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        if !shared::bounce_buffers() {
            return buffer.as_ptr() as *mut u8 as PhysAddr;
        }
        let len = buffer.len();
        let Some(bounce) = SharedPages::new(len.div_ceil(PAGE_SIZE)) else {
            // virtio-drivers cannot report failure here; stopping is the only safe answer.
            crate::fatal!("out of memory for a {len}-byte virtio bounce buffer");
        };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: `buffer` is valid for `len` bytes (the caller's contract) and the
            // bounce buffer has at least `len` bytes; they do not overlap.
            unsafe { bounce.as_ptr().as_ptr().copy_from_nonoverlapping(buffer.as_ptr() as *const u8, len) };
        }
        let address = bounce.physical_address();
        bounce.into_raw();
        address
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        if !shared::bounce_buffers() {
            return;
        }
        let len = buffer.len();
        let start = NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling());
        // SAFETY: `paddr` is what `share` returned for this buffer: a bounce buffer of
        // `len.div_ceil(PAGE_SIZE)` pages, given up with `into_raw`.
        let bounce = unsafe { SharedPages::from_raw(start, len.div_ceil(PAGE_SIZE)) };
        if direction != BufferDirection::DriverToDevice {
            // Copy out of shared memory first; the device's data is then checked only in
            // private memory (by the virtio and network layers).
            // SAFETY: both regions are valid for `len` bytes and do not overlap.
            unsafe { (buffer.as_ptr() as *mut u8).copy_from_nonoverlapping(bounce.as_ptr().as_ptr(), len) };
        }
    }
}
