//! The kernel log: COM1 through `uart_16550`, every line stamped with the time since the
//! VM started. Workload output never goes here (see `channel`).

use crate::arch::port;
use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::backend::Backend;
use uart_16550::{Config, Uart16550};

const COM1: u16 = 0x3f8;

/// Routes the UART's register accesses through the kernel's single port-I/O funnel.
struct PortBackend {
    base: u16,
}

impl Backend for PortBackend {
    unsafe fn read(&mut self, register_offset: u8) -> u8 {
        port::read_u8(self.base + u16::from(register_offset))
    }

    unsafe fn write(&mut self, register_offset: u8, value: u8) {
        port::write_u8(self.base + u16::from(register_offset), value)
    }
}

struct Console {
    uart: Option<Uart16550<PortBackend>>,
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(uart) = self.uart.as_mut() {
            uart.send_bytes_exact(s.as_bytes());
        }
        Ok(())
    }
}

static CONSOLE: Mutex<Console> = Mutex::new(Console { uart: None });

/// Sets up COM1. Without a UART (or if it fails its self-test) the log is silent.
pub fn init() {
    // SAFETY: COM1's eight registers belong to this driver alone for the kernel's life.
    let mut uart = unsafe { Uart16550::new_with_backend(PortBackend { base: COM1 }) };
    if uart.init(Config::default()).is_ok() {
        CONSOLE.lock().uart = Some(uart);
    }
}

#[doc(hidden)]
pub fn print(args: fmt::Arguments<'_>) {
    let ns = crate::time::since_reset_ns();
    let mut console = CONSOLE.lock();
    let _ = write!(console, "[{:4}.{:06}] ", ns / 1_000_000_000, ns % 1_000_000_000 / 1000);
    let _ = console.write_fmt(args);
    let _ = console.write_str("\n");
}

/// Last-resort output for fatal errors: takes the console even if a (now dead) context
/// holds the lock, since nothing else will run after this.
#[doc(hidden)]
pub fn print_fatal(args: fmt::Arguments<'_>) {
    // SAFETY: only called on the way to stopping the VM; the interrupted holder of the lock
    // (if any) never resumes, so forcing it open cannot cause concurrent access.
    unsafe { CONSOLE.force_unlock() };
    let mut console = CONSOLE.lock();
    let _ = console.write_str("FATAL: ");
    let _ = console.write_fmt(args);
    let _ = console.write_str("\n");
}

/// Writes a line to the kernel log.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => { $crate::log::print(format_args!($($arg)*)) };
}

/// Logs a fatal kernel error and ends the VM with the kernel-failure status.
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => {{
        $crate::log::print_fatal(format_args!($($arg)*));
        $crate::arch::exit::exit_vm($crate::arch::exit::ExitStatus::KernelFailure)
    }};
}
