//! The PVH entry stub (`pvh_entry.s`), assembled into the kernel image.
#![allow(unsafe_code)] // `global_asm!` is the one unsafe construct this crate needs.

core::arch::global_asm!(include_str!("pvh_entry.s"), options(att_syntax));
