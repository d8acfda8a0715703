//! Hands out 4 KiB frames from the free set to the page-table builder.

use halcyon_hal::ranges::RangeSet;
use ::x86_64::structures::paging::{FrameAllocator, PhysFrame, Size4KiB};
use ::x86_64::PhysAddr;

/// New page tables are written through the boot stub's identity map of the first 4 GiB.
const BOOT_MAPPED_LIMIT: u64 = 4 << 30;

pub struct EarlyFrames<'a, const N: usize> {
    free: &'a mut RangeSet<N>,
}

impl<'a, const N: usize> EarlyFrames<'a, N> {
    pub fn new(free: &'a mut RangeSet<N>) -> Self {
        Self { free }
    }
}

// SAFETY: every frame returned is removed from the free set, so it is handed out once and
// is unused RAM.
unsafe impl<const N: usize> FrameAllocator<Size4KiB> for EarlyFrames<'_, N> {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let address = self.free.take(4096, 4096, BOOT_MAPPED_LIMIT)?;
        PhysFrame::from_start_address(PhysAddr::new(address)).ok()
    }
}
