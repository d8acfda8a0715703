//! The kernel's page tables.
//!
//! Physical memory stays identity-mapped (virtual = physical), as the boot stub set it
//! up, but with real permissions: the kernel image gets 4 KiB pages (text read-only and
//! executable, rodata read-only, data writable, everything else no-execute), page 0 and
//! the boot stack's guard page are unmapped, and the rest of the address space up to the
//! end of RAM (at least 4 GiB, to reach the LAPIC/IO-APIC and PCI MMIO holes) is mapped
//! with 2 MiB no-execute pages, uncached where there is no RAM.
//!
//! On a confidential VM every leaf entry also carries the platform's [`PageEncoding`]: RAM
//! is mapped private (the SEV-SNP C-bit set), device memory and pages shared with the host
//! shared (the TDX shared bit set, the C-bit clear). A 2 MiB region that holds a shared
//! page is mapped with 4 KiB pages. Intermediate entries carry no encoding bits: page-table
//! walks are always private accesses under SEV (AMD APM vol. 2 §15.34.5 "Page Table
//! Support") and TDX requires private page tables (the shared bit clear).

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
/// Physical-address bits of a page-table entry (AMD APM vol. 2 §5.3.3: bits 51:12).
const ENTRY_ADDRESS: u64 = 0x000F_FFFF_FFFF_F000;

/// The page-table bits that make a mapping private or shared on a confidential VM, from
/// the platform (`crate::platform::page_encoding`). Both are zero on a plain VM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageEncoding {
    /// ORed into mappings of private memory (SEV-SNP: the C-bit, `1 << cbit`).
    pub private: u64,
    /// ORed into mappings of shared memory and devices (TDX: the shared GPA bit).
    pub shared: u64,
}

impl PageEncoding {
    fn bits(&self, shared: bool) -> u64 {
        if shared { self.shared } else { self.private }
    }

    fn mask(&self) -> u64 {
        self.private | self.shared
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodingError {
    /// The address is not mapped by the kernel page tables.
    NotMapped(u64),
    /// No memory for the page table a 2 MiB mapping is split into.
    NoMemory,
}

impl core::fmt::Display for EncodingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncodingError::NotMapped(address) => write!(f, "{address:#x} is not mapped"),
            EncodingError::NoMemory => f.write_str("no memory for a page table"),
        }
    }
}

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
/// `ram` lists the physical RAM ranges (for cacheability and the private encoding) and
/// `ram_end` the highest RAM address; `shared` the pages already shared with the host
/// (mapped with `encoding.shared`); `hidden` pages in the kernel's 4 KiB-mapped low range
/// to leave unmapped; `frames` provides zeroable physical frames, all below
/// 4 GiB (the boot stub identity-maps only that much, and the new tables are written
/// through it).
pub fn build_and_load(
    ram: &[Range<u64>],
    ram_end: u64,
    encoding: PageEncoding,
    shared: &[Range<u64>],
    hidden: &[Range<u64>],
    frames: &mut impl FrameAllocator<Size4KiB>,
) -> Result<(), MapToError<Size4KiB>> {
    let overlaps = |ranges: &[Range<u64>], range: &Range<u64>| ranges.iter().any(|r| r.start < range.end && range.start < r.end);
    // Device memory and shared pages are shared; RAM (and the rest of the kernel's own
    // low range, which it never hands to devices) is private.
    let encode = |address: u64, size: u64, is_ram: bool| -> u64 {
        let range = address..address + size;
        address | encoding.bits(overlaps(shared, &range) || !is_ram)
    };
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
        if hidden.iter().any(|r| r.contains(&address)) {
            continue;
        }
        let Some(flags) = kernel_page_flags(&layout, address) else { continue };
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(address));
        // The kernel's low range is private (only registered shared pages are not).
        let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(encode(address, KIB4, true)));
        // SAFETY: identity mapping of the kernel's own image with the permissions the
        // linker script promises; nothing else aliases these virtual addresses.
        unsafe { mapper.map_to(page, frame, flags, frames)?.ignore() };
    }

    let limit = ram_end.next_multiple_of(GIB1).clamp(GIB4, MAX_IDENTITY_MAPPED);
    for address in (small_end..limit).step_by(MIB2 as usize) {
        let mut flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE;
        let range = address..address + MIB2;
        let is_ram = overlaps(ram, &range);
        if !is_ram {
            flags |= Flags::NO_CACHE | Flags::WRITE_THROUGH;
        }
        if overlaps(shared, &range) {
            // A shared page inside: map this region with 4 KiB pages, each encoded alone.
            for small in range.step_by(KIB4 as usize) {
                let page = Page::<Size4KiB>::containing_address(VirtAddr::new(small));
                let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(encode(small, KIB4, is_ram)));
                // SAFETY: identity mapping of physical memory outside the kernel image.
                unsafe { mapper.map_to(page, frame, flags, frames)?.ignore() };
            }
            continue;
        }
        let page = Page::<Size2MiB>::containing_address(VirtAddr::new(address));
        let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(encode(address, MIB2, is_ram)));
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

/// Rewrites the leaf entries of the 4 KiB pages in `range` (page-aligned, identity-mapped by
/// the kernel tables) to the `shared` or private encoding, splitting 2 MiB mappings into
/// 4 KiB ones where needed (the new page table comes from the heap and is kept for good),
/// and flushes the changed translations. Permissions and cacheability are kept.
pub fn set_encoding(range: Range<u64>, encoding: PageEncoding, shared: bool) -> Result<(), EncodingError> {
    for address in range.step_by(KIB4 as usize) {
        let entry = leaf_entry(address, encoding)?;
        // SAFETY: `leaf_entry` returned a pointer to a present 4 KiB leaf entry of the live
        // kernel page tables, which only this CPU uses; changing the encoding bits changes
        // how the page is accessed, which the caller (`platform::set_shared`) orders with
        // the page's conversion.
        unsafe { entry.write_volatile((entry.read_volatile() & !encoding.mask()) | encoding.bits(shared)) };
        ::x86_64::instructions::tlb::flush(VirtAddr::new(address));
    }
    Ok(())
}

/// Flags of a present entry, and of a 2 MiB (PS) one (AMD APM vol. 2 §5.3.3).
const ENTRY_PRESENT: u64 = 1 << 0;
const ENTRY_WRITABLE: u64 = 1 << 1;
const ENTRY_HUGE: u64 = 1 << 7;

/// The 4 KiB leaf entry that maps `address`, splitting a 2 MiB mapping if it is one.
fn leaf_entry(address: u64, encoding: PageEncoding) -> Result<*mut u64, EncodingError> {
    let not_mapped = EncodingError::NotMapped(address);
    let (pml4, _) = Cr3::read();
    let mut table = pml4.start_address().as_u64();
    // PML4, PDPT, then the page directory: the 2 MiB level.
    for shift in [39u32, 30] {
        let entry = table_entry(table, address, shift);
        // SAFETY: `entry` points into a page table of the live hierarchy (identity-mapped).
        let raw = unsafe { entry.read_volatile() };
        if raw & ENTRY_PRESENT == 0 || raw & ENTRY_HUGE != 0 {
            return Err(not_mapped);
        }
        table = raw & ENTRY_ADDRESS & !encoding.mask();
    }
    let pde = table_entry(table, address, 21);
    // SAFETY: as above.
    let raw = unsafe { pde.read_volatile() };
    if raw & ENTRY_PRESENT == 0 {
        return Err(not_mapped);
    }
    if raw & ENTRY_HUGE != 0 {
        split_2mib(pde, raw)?;
    }
    // SAFETY: as above.
    let page_table = unsafe { pde.read_volatile() } & ENTRY_ADDRESS & !encoding.mask();
    let pte = table_entry(page_table, address, 12);
    // SAFETY: as above.
    if unsafe { pte.read_volatile() } & ENTRY_PRESENT == 0 {
        return Err(not_mapped);
    }
    Ok(pte)
}

/// Pointer to the entry of the table at physical `table` that translates `address` at the
/// level whose index starts at bit `shift`.
fn table_entry(table: u64, address: u64, shift: u32) -> *mut u64 {
    let index = (address >> shift) & 511;
    (table + index * 8) as *mut u64
}

/// Replaces the 2 MiB mapping `raw` held by the entry `pde` with a page table of 512
/// 4 KiB entries mapping the same memory with the same flags and encoding.
fn split_2mib(pde: *mut u64, raw: u64) -> Result<(), EncodingError> {
    let layout = core::alloc::Layout::new::<PageTable>();
    // SAFETY: the layout is that of a page table: non-zero size, 4 KiB aligned.
    let table = unsafe { alloc::alloc::alloc_zeroed(layout) } as *mut u64;
    if table.is_null() {
        return Err(EncodingError::NoMemory);
    }
    // The PS bit becomes the 4 KiB entries' PAT bit; Halcyon never sets PAT (bit 12 of a
    // 2 MiB entry), so the base keeps everything but PS.
    let base = raw & !ENTRY_HUGE;
    for i in 0..512u64 {
        // SAFETY: `table` is a fresh 4096-byte allocation, `i < 512`.
        unsafe { table.add(i as usize).write(base + i * KIB4) };
    }
    // Heap memory is identity-mapped RAM: its address is the physical one. Intermediate
    // entries are permissive; the leaves carry NX and write protection.
    // SAFETY: `pde` is a present 2 MiB entry of the live tables; the new table maps exactly
    // the same memory, so nothing changes for its users, and the whole TLB is flushed.
    unsafe { pde.write_volatile(table as u64 | ENTRY_PRESENT | ENTRY_WRITABLE) };
    ::x86_64::instructions::tlb::flush_all();
    Ok(())
}
