//! The kernel heap (`linked_list_allocator`), sized at boot to the largest free RAM range.

use core::ops::Range;
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// # Safety
/// `range` must be unused, writable RAM that nothing else will ever touch; call once.
pub unsafe fn init(range: Range<u64>) {
    let size = (range.end - range.start) as usize;
    // SAFETY: per the caller's guarantee, the memory is ours alone for the kernel's life.
    unsafe { HEAP.lock().init(range.start as *mut u8, size) };
}

/// Bytes of the heap not currently allocated.
pub fn free_bytes() -> usize {
    HEAP.lock().free()
}

/// Bytes of the heap currently allocated.
pub fn used_bytes() -> usize {
    HEAP.lock().used()
}

/// Whether the heap can afford `bytes` for a request a workload drives (with room for the
/// copies and temporaries it makes). Such requests check first and answer an error,
/// because a failed kernel allocation would stop the whole VM, not just the workload.
pub fn can_afford(bytes: usize) -> bool {
    free_bytes() / 4 >= bytes.saturating_add(64 * 1024)
}
