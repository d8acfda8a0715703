//! The one place that knows which CPU architecture the kernel runs on.
//!
//! Everything below `arch::x86_64` touches hardware directly (instructions, ports,
//! control registers, descriptor tables); generic kernel code calls the functions
//! re-exported here and never uses `asm!` itself.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use self::x86_64::*;
