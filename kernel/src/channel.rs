//! The workload channel: workload stdout/stderr and run status, framed by
//! `halcyon_hal::channel`, written to QEMU's debug console port. The host tool decodes it;
//! the kernel log never mixes in.

use crate::arch::port;
use halcyon_hal::channel::{self, Frame, Stream};
use spin::Mutex;

/// `-device isa-debugcon,iobase=0xe9`: writes reach the chardev synchronously and in
/// full (QEMU writes them with `qemu_chr_fe_write_all`), so output is never dropped.
const DEBUGCON_PORT: u16 = 0xe9;

/// Serialises frames so two writers cannot interleave their bytes.
static CHANNEL: Mutex<()> = Mutex::new(());

fn sink(bytes: &[u8]) {
    port::write_bytes(DEBUGCON_PORT, bytes);
}

/// Sends workload output.
pub fn output(stream: Stream, workload: u8, data: &[u8]) {
    let _guard = CHANNEL.lock();
    channel::encode_output(stream, workload, data, &mut sink);
}

/// Sends a status frame.
pub fn send(frame: &Frame<'_>) {
    let _guard = CHANNEL.lock();
    channel::encode(frame, &mut sink);
}
