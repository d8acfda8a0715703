//! Halcyon's hardware abstraction layer: everything that does not touch hardware.
//!
//! The kernel plugs the platform in through traits (see [`platform`]); the host tool
//! (`image/`) shares the pure formats ([`bundle`], [`channel`]) so both sides of the
//! boundary read and write the same bytes. Tested on the host with `cargo test -p halcyon-hal`.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod bundle;
pub mod cabi;
pub mod channel;
pub mod civil_time;
pub mod crypto;
pub mod evidence;
pub mod measurement;
pub mod mmio_insn;
pub mod net_config;
#[cfg(test)]
mod mutation;
pub mod platform;
pub mod random;
pub mod ranges;
pub mod sealing;
pub mod snp;
pub mod support;
pub mod tdx;
#[cfg(feature = "tls")]
pub mod tls;
