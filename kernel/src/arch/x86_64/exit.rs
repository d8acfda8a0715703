//! Ending the VM: QEMU's `isa-debug-exit` device.
//!
//! Writing `v` to its port makes QEMU exit with status `(v << 1) | 1`, which is how the
//! host tool learns whether the kernel completed its run or failed. Without the device
//! (another VMM) the write is ignored and the CPU halts.

use super::port;

/// The port `halcyon run` configures the device at (`-device isa-debug-exit,iobase=0xf4`).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// What the kernel tells the host when it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitStatus {
    /// All workloads ran (each one's own status went over the workload channel).
    /// QEMU exits with status 1.
    RunComplete = 0,
    /// The kernel itself failed (panic, unexpected CPU exception, bad boot data).
    /// QEMU exits with status 3.
    KernelFailure = 1,
}

/// Exits QEMU with `status`; halts if no debug-exit device is present.
pub fn exit_vm(status: ExitStatus) -> ! {
    port::write_u32(DEBUG_EXIT_PORT, status as u32);
    super::halt_forever()
}
