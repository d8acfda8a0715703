//! Halcyon: a unikernel that boots as a (confidential) VM and runs WebAssembly workloads.
//!
//! Boot order: the PVH stub (`boot/`) enters long mode and calls [`halcyon_main`], which
//! sets up the CPU tables, reads the boot info, builds page tables and the heap,
//! calibrates the clock, detects the platform, seeds the DRBG, and runs each workload of
//! the bundle the host passed in. The VM then exits with a status the host tool reads.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod boot_info;
mod channel;
mod devices;
mod log;
mod memory;
mod net;
mod platform;
mod random;
mod sched;
mod time;
mod tls;
mod wasm;

use arch::exit::{exit_vm, ExitStatus};
use halcyon_hal::measurement::MeasurementLog;

/// Called by the PVH entry stub with the physical address of `hvm_start_info`, or 0 when the
/// firmware reset path (`boot/src/reset_vector.s`) entered it: then fw_cfg has the boot data.
#[no_mangle]
pub extern "C" fn halcyon_main(start_info_paddr: u64) -> ! {
    time::mark_entry();
    arch::init_cpu();
    // Before any port I/O, MMIO, CPUID or MSR access: on a confidential VM these go through
    // the platform's paravirtual interface, which this sets up.
    platform::early_init();
    log::init();
    kprintln!("halcyon {} booting", env!("CARGO_PKG_VERSION"));

    if start_info_paddr == 0 {
        kprintln!("boot: entered from the firmware reset vector; boot information from fw_cfg");
    }
    platform::tdx::log_info();
    let boot_info_start = arch::tsc::read();
    let boot = boot_info::read(start_info_paddr)
        .unwrap_or_else(|e| fatal!("cannot read the boot information: {e}"));
    let boot_info_ticks = arch::tsc::read().saturating_sub(boot_info_start);
    if !boot.cmdline().is_empty() {
        kprintln!("boot: command line: {}", boot.cmdline());
    }
    let memory = memory::init(&boot).unwrap_or_else(|e| fatal!("memory setup failed: {e}"));
    kprintln!(
        "memory: {} MiB RAM, heap {:#x}..{:#x} ({} MiB)",
        memory.ram_bytes >> 20,
        memory.heap.start,
        memory.heap.end,
        (memory.heap.end - memory.heap.start) >> 20
    );

    time::init().unwrap_or_else(|e| fatal!("{e}"));
    kprintln!("time: kernel entered {} us after VM reset", time::entry_ns() / 1000);
    kprintln!("boot: boot information read in {} us", time::ticks_to_ns(boot_info_ticks) / 1000);
    if memory.accepted.bytes > 0 {
        kprintln!(
            "memory: {} KiB of RAM validated/accepted in {} us",
            memory.accepted.bytes >> 10,
            time::ticks_to_ns(memory.accepted.ticks) / 1000
        );
    }

    let tee = platform::kind();
    kprintln!("platform: {tee}");

    match random::init() {
        Ok(instruction) => kprintln!("random: ChaCha20 DRBG seeded from {instruction:?}"),
        Err(e) => kprintln!(
            "random: UNAVAILABLE ({e}); workloads asking for random bytes get an error \
             (run QEMU with `-cpu max` or a CPU model with RDRAND)"
        ),
    }

    if boot.cmdline().split_ascii_whitespace().any(|w| w == "virtio.bounce=on") {
        memory::shared::force_bounce_buffers();
    }
    match net::init(&boot) {
        Ok(true) => {}
        Ok(false) => kprintln!("net: no network card"),
        Err(e) => kprintln!("net: not available: {e}"),
    }

    let mut measurements = MeasurementLog::new();

    let Some(bundle) = &boot.bundle else {
        kprintln!("no workload bundle was passed (QEMU -initrd or fw_cfg opt/halcyon/bundle); nothing to run");
        exit_vm(ExitStatus::RunComplete);
    };
    // SAFETY: `bundle` comes from the boot info and `memory::init` succeeded.
    let bytes = unsafe { memory::bundle_bytes(bundle) };
    wasm::run_bundle(bytes, tee, &mut measurements);
    // Connections the workloads closed may still hold data in flight.
    net::drain(2_000_000_000);
    exit_vm(ExitStatus::RunComplete)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    fatal!("kernel panic: {info}")
}
