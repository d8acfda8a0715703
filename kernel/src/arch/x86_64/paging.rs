//! The kernel's page tables.
//!
//! Physical memory stays identity-mapped (virtual = physical), as the boot stub set it
//! up, but with real permissions: the kernel image gets 4 KiB pages (text read-only and
//! executable, rodata read-only, data writable, everything else no-execute), page 0 and
//! the boot stack's guard page are unmapped, and the rest of the address space up to the
//! end of RAM (at least 4 GiB, to reach the LAPIC/IO-APIC and PCI MMIO holes) is mapped
//! with 2 MiB no-execute pages, uncached where there is no RAM.

use core::ops::Range;
use ::x86_64::registers::control::{Cr3, Cr3Flags};
use ::x86_64::structures::paging::mapper::{MapToError, Mapper};
use ::x86_64::structures::paging::{
    FrameAllocator, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame,
    Size2MiB, Size4KiB,
};
use ::x86_64::{PhysAddr, VirtAddr};

const KIB4: u64 = 4096;
const MIB2: u64 = 2 << 20;
const GIB1: u64 = 1 << 30;
const GIB4: u64 = 4 << 30;
/// One PDPT's worth; the kernel does not map physical memory beyond this.
pub const MAX_IDENTITY_MAPPED: u64 = 512 * GIB1;

extern "C" {
    static __kernel_start: u8;
    static __rodata_end: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __data_start: u8;
    static __boot_stack_guard: u8;
    static __kernel_end: u8;
}

/// Where the linker put the parts of the kernel image (see `boot/link.ld`).
#[derive(Clone, Debug)]
pub struct KernelLayout {
    /// The read-only segment up to the page boundary before text.
    pub rodata: Range<u64>,
    /// The bytes the linker put in the read-only segment (notes and .rodata).
    pub rodata_contents: Range<u64>,
    pub text: Range<u64>,
    /// The bytes of .text, without the padding to the next page.
    pub text_contents: Range<u64>,
    pub data: Range<u64>,
    pub stack_guard: u64,
}

impl KernelLayout {
    /// The whole image, including .bss and the boot stack.
    pub fn image(&self) -> Range<u64> {
        self.rodata.start..self.data.end
    }
}

fn symbol_address(symbol: &u8) -> u64 {
    symbol as *const u8 as u64
}

pub fn kernel_layout() -> KernelLayout {
    // SAFETY: these are linker-script symbols; only their addresses are taken, never
    // their (meaningless) contents.
    unsafe {
        let text_start = symbol_address(&__text_start);
        KernelLayout {
            rodata: symbol_address(&__kernel_start)..text_start,
            rodata_contents: symbol_address(&__kernel_start)..symbol_address(&__rodata_end),
            text: text_start..symbol_address(&__text_end).next_multiple_of(KIB4),
            text_contents: text_start..symbol_address(&__text_end),
            data: symbol_address(&__data_start)..symbol_address(&__kernel_end),
            stack_guard: symbol_address(&__boot_stack_guard),
        }
    }
}

/// Builds the kernel's page tables and switches to them.
///
/// `ram` lists the physical RAM ranges (for cacheability) and `ram_end` the highest RAM
/// address; `frames` provides zeroable physical frames, all below 4 GiB (the boot stub
/// identity-maps only that much, and the new tables are written through it).
pub fn build_and_load(
    ram: &[Range<u64>],
    ram_end: u64,
    frames: &mut impl FrameAllocator<Size4KiB>,
) -> Result<(), MapToError<Size4KiB>> {
    let layout = kernel_layout();
    let pml4_frame = frames.allocate_frame().ok_or(MapToError::FrameAllocationFailed)?;
    let pml4_ptr = pml4_frame.start_address().as_u64() as *mut PageTable;
    // SAFETY: the frame is fresh from the allocator (owned by nobody else), below 4 GiB and
    // therefore identity-mapped by the boot page tables, and page-aligned.
    let pml4 = unsafe {
        pml4_ptr.write(PageTable::new());
        &mut *pml4_ptr
    };
    // SAFETY: all physical memory the mapper will touch is identity-mapped (offset 0).
    let mut mapper = unsafe { OffsetPageTable::new(pml4, VirtAddr::new(0)) };

    let small_end = layout.image().end.next_multiple_of(MIB2);
    for address in (0..small_end).step_by(KIB4 as usize) {
        let Some(flags) = kernel_page_flags(&layout, address) else { continue };
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(address));
        let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(address));
        // SAFETY: identity mapping of the kernel's own image with the permissions the
        // linker script promises; nothing else aliases these virtual addresses.
        unsafe { mapper.map_to(page, frame, flags, frames)?.ignore() };
    }

    let limit = ram_end.next_multiple_of(GIB1).clamp(GIB4, MAX_IDENTITY_MAPPED);
    for address in (small_end..limit).step_by(MIB2 as usize) {
        let mut flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE;
        let range = address..address + MIB2;
        if !ram.iter().any(|r| r.start < range.end && range.start < r.end) {
            flags |= Flags::NO_CACHE | Flags::WRITE_THROUGH;
        }
        let page = Page::<Size2MiB>::containing_address(VirtAddr::new(address));
        let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(address));
        // SAFETY: identity mapping of physical memory outside the kernel image.
        unsafe {
            mapper
                .map_to(page, frame, flags, frames)
                .map_err(|e| match e {
                    MapToError::FrameAllocationFailed => MapToError::FrameAllocationFailed,
                    MapToError::ParentEntryHugePage => MapToError::ParentEntryHugePage,
                    MapToError::PageAlreadyMapped(_) => MapToError::ParentEntryHugePage,
                })?
                .ignore()
        };
    }

    // SAFETY: the new tables identity-map everything the kernel touches (its image with
    // the same addresses, its stack, the heap and boot data in RAM), so execution continues
    // seamlessly after the switch.
    unsafe { Cr3::write(pml4_frame, Cr3Flags::empty()) };
    Ok(())
}

/// Flags for one 4 KiB page below the end of the kernel image, or `None` to leave it
/// unmapped (page 0, to catch null pointers; the stack guard, to catch overflows).
fn kernel_page_flags(layout: &KernelLayout, address: u64) -> Option<Flags> {
    if address == 0 || address == layout.stack_guard {
        return None;
    }
    let flags = if layout.text.contains(&address) {
        Flags::PRESENT
    } else if layout.rodata.contains(&address) {
        Flags::PRESENT | Flags::NO_EXECUTE
    } else {
        Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE
    };
    Some(flags)
}
