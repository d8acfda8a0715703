//! The kernel's GDT and TSS. The TSS exists for its interrupt stack table: a double fault
//! (for instance from running off the boot stack into its guard page) switches to a stack
//! of its own, so the handler can still report what happened.

use ::x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use ::x86_64::instructions::tables::load_tss;
use ::x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use ::x86_64::structures::tss::TaskStateSegment;
use ::x86_64::VirtAddr;
use core::cell::UnsafeCell;
use spin::Once;

/// IST slot (1-based in the IDT gate, 0-based in the TSS array) for the double-fault stack.
pub const DOUBLE_FAULT_IST: u8 = 1;
const DOUBLE_FAULT_STACK_SIZE: usize = 16 * 1024;

/// Interior mutability keeps the stack in writable `.bss` (an immutable zeroed static
/// would be placed in read-only memory, and the CPU could not push the fault frame).
#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; DOUBLE_FAULT_STACK_SIZE]>);

// SAFETY: Rust code never accesses the stack's contents; only the CPU writes to it, when
// it delivers a double fault, which is handled without returning.
unsafe impl Sync for Stack {}

static DOUBLE_FAULT_STACK: Stack = Stack(UnsafeCell::new([0; DOUBLE_FAULT_STACK_SIZE]));

struct Tables {
    gdt: GlobalDescriptorTable,
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

static TSS: Once<TaskStateSegment> = Once::new();
static TABLES: Once<Tables> = Once::new();

pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        let stack = DOUBLE_FAULT_STACK.0.get();
        let stack_top = VirtAddr::from_ptr(stack) + DOUBLE_FAULT_STACK_SIZE as u64;
        tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST - 1)] = stack_top;
        tss
    });
    let tables = TABLES.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        Tables { gdt, code, data, tss }
    });
    tables.gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which lives in a
    // `static` and therefore outlives every use of the segment registers.
    unsafe {
        CS::set_reg(tables.code);
        DS::set_reg(tables.data);
        ES::set_reg(tables.data);
        SS::set_reg(tables.data);
        load_tss(tables.tss);
    }
}

/// The kernel code selector (for IDT gates).
pub fn code_selector() -> u16 {
    TABLES.get().map(|t| t.code.0).unwrap_or(0x08)
}
