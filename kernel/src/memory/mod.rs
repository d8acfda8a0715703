//! Physical memory: which frames are free, the kernel page tables, and the heap.
//!
//! At boot the RAM ranges from the PVH memory map, minus everything that is already in
//! use (the low 1 MiB, the kernel image, the boot data and the workload bundle), become
//! the free set. Page tables are taken from it first; the largest remaining range
//! becomes the kernel heap, from which workload memories are allocated.

mod frames;
pub mod shared;
pub mod heap;

use crate::arch::paging;
use crate::boot_info::BootInfo;
use crate::platform;
use core::ops::Range;
use halcyon_hal::ranges::{RangeError, RangeSet};
use spin::Mutex;

const PAGE: u64 = 4096;
const GIB4: u64 = 4 << 30;
/// Real-mode IVT, BIOS data, EBDA, VGA and option ROMs: never handed out.
const LOW_MEMORY_END: u64 = 1 << 20;
const MAX_FREE_RANGES: usize = 64;

/// Frames left over after the heap was carved out (for later DMA and page tables).
static FREE_FRAMES: Mutex<RangeSet<MAX_FREE_RANGES>> = Mutex::new(RangeSet::new());

#[derive(Debug)]
pub enum MemoryError {
    TooManyRanges,
    NoRamForHeap,
    PageTables,
    BundleOutsideRam,
}

impl From<RangeError> for MemoryError {
    fn from(_: RangeError) -> Self {
        MemoryError::TooManyRanges
    }
}

impl core::fmt::Display for MemoryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MemoryError::TooManyRanges => "the memory map is too fragmented",
            MemoryError::NoRamForHeap => "no RAM left for the kernel heap",
            MemoryError::PageTables => "could not build the kernel page tables",
            MemoryError::BundleOutsideRam => "the workload bundle does not lie in RAM",
        })
    }
}

/// What `init` set up, for the boot log.
pub struct MemoryReport {
    pub ram_bytes: u64,
    pub heap: Range<u64>,
    /// RAM the platform validated or accepted (nothing on a plain VM).
    pub accepted: platform::AcceptReport,
}

fn page_outward(range: &Range<u64>) -> Range<u64> {
    range.start & !(PAGE - 1)..range.end.saturating_add(PAGE - 1) & !(PAGE - 1)
}

pub fn init(boot: &BootInfo) -> Result<MemoryReport, MemoryError> {
    let mut ram = RangeSet::<MAX_FREE_RANGES>::new();
    for range in boot.ram() {
        ram.insert(range)?;
    }
    let ram_end = ram.as_slice().last().map_or(0, |r| r.end);

    let mut free = ram.clone();
    free.remove(0..LOW_MEMORY_END)?;
    free.remove(page_outward(&paging::kernel_layout().image()))?;
    for data in &boot.boot_data {
        free.remove(page_outward(data))?;
    }
    if let Some(bundle) = &boot.bundle {
        if !ram.as_slice().iter().any(|r| r.start <= bundle.start && bundle.end <= r.end) {
            return Err(MemoryError::BundleOutsideRam);
        }
        free.remove(page_outward(bundle))?;
    }
    free.align_inward(PAGE);

    // RAM the launch did not validate or accept (SEV-SNP, TDX): below 4 GiB first, which
    // the page-table builder takes its frames from and writes through the boot tables'
    // identity map of 4 GiB; the rest once the kernel's tables map it.
    let mut accepted = platform::accept_memory(free.as_slice().iter().map(|r| r.start..r.end.min(GIB4)));
    paging::build_and_load(
        ram.as_slice(),
        ram_end,
        platform::page_encoding(),
        platform::shared_at_boot(),
        platform::never_mapped(),
        &mut frames::EarlyFrames::new(&mut free),
    )
    .map_err(|_| MemoryError::PageTables)?;
    accepted.add(platform::accept_memory(free.as_slice().iter().map(|r| r.start.max(GIB4)..r.end)));

    let heap = free.take_largest().ok_or(MemoryError::NoRamForHeap)?;
    // SAFETY: the range is RAM that was just removed from the free set, so nothing else
    // owns it, and the new page tables map it writable.
    unsafe { heap::init(heap.clone()) };
    *FREE_FRAMES.lock() = free;
    Ok(MemoryReport { ram_bytes: ram.total(), heap, accepted })
}

/// The kernel's own read-only loaded bytes: the read-only segment's contents (notes and
/// .rodata) and .text, exactly as the ELF file carries them in its `R` and `R X`
/// segments — what the measurement log records for the kernel.
pub fn kernel_image_parts() -> [&'static [u8]; 2] {
    let layout = paging::kernel_layout();
    [layout.rodata_contents, layout.text_contents].map(|range| {
        // SAFETY: both ranges lie inside the kernel image, which is mapped for the kernel's
        // whole life, and are read-only (the page tables map rodata and text without
        // WRITABLE), so shared references to them can never observe a write.
        unsafe { core::slice::from_raw_parts(range.start as *const u8, (range.end - range.start) as usize) }
    })
}

/// The kernel's measurement (SHA-256 of [`kernel_image_parts`]). Computed on first
/// request and cached: the bytes are read-only, so the digest cannot change, and boot
/// does not pay for hashing 1.2 MB (about 18 ms under TCG).
pub fn kernel_measurement() -> &'static halcyon_hal::measurement::Measurement {
    use halcyon_hal::measurement::{MeasurementKind, MeasurementLog};
    static KERNEL: spin::Once<halcyon_hal::measurement::Measurement> = spin::Once::new();
    KERNEL.call_once(|| {
        let mut log = MeasurementLog::new();
        log.record_parts(MeasurementKind::Kernel, "halcyon-kernel", &kernel_image_parts()).clone()
    })
}

/// The workload bundle the VMM loaded as a PVH module.
///
/// # Safety
/// `range` must be the bundle range from [`BootInfo`] after [`init`] succeeded (which
/// checked that it lies in RAM and removed it from every allocator).
pub unsafe fn bundle_bytes(range: &Range<u64>) -> &'static [u8] {
    let len = (range.end - range.start) as usize;
    // SAFETY: per the caller's guarantee the range is mapped RAM that no allocator hands
    // out and nothing writes after boot, so a shared slice for the kernel's life is sound.
    unsafe { core::slice::from_raw_parts(range.start as *const u8, len) }
}
