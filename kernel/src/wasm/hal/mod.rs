//! The ELASTIC TEE HAL imports (`elastic:hal/*@0.1.0`, contract in `wit/`), implemented
//! with the component model's canonical ABI over core wasm (`halcyon_hal::cabi`).
//!
//! Implemented so far: `capabilities`, `clock`, `random`, `resources`, `attestation`
//! (measurements; platform evidence and sealing answer `unsupported` on a plain VM) and
//! `gpu` (which answers `unsupported`), `sockets` and `tls` (DTLS answers `unsupported`). The other interfaces are reported unsupported by `capabilities`; a
//! module importing them fails to link with a message naming the import.

mod abi;
mod attestation;
mod capabilities;
mod clock;
mod crypto;
mod gpu;
mod random;
mod resources;
mod result;
mod sockets;
mod tls;

use super::runner::WorkloadCtx;
use alloc::vec::Vec;
use halcyon_hal::cabi::ResourceTable;
use halcyon_hal::measurement::Measurement;
use halcyon_hal::platform::TeeKind;
use halcyon_hal::support::PlatformFacts;
use wasmi::errors::LinkerError;
use wasmi::Linker;

/// Resource handles one workload may hold, across all HAL resource types.
pub const MAX_HANDLES: usize = 1024;

/// A workload's HAL state: its resource tables and what it may know of the platform.
pub struct HalState {
    pub facts: PlatformFacts,
    /// The measurement log up to and including this workload.
    pub measurements: Vec<Measurement>,
    pub stopwatches: ResourceTable<clock::Stopwatch>,
    pub keys: ResourceTable<halcyon_hal::crypto::Key>,
    pub hashers: ResourceTable<halcyon_hal::crypto::Hasher>,
    pub tcp_sockets: ResourceTable<sockets::TcpSocket>,
    pub udp_sockets: ResourceTable<sockets::UdpSocket>,
    /// TLS certificate chains and private keys (`tls.key-context`).
    pub tls_keys: ResourceTable<crate::tls::certs::KeyContext>,
    pub tls_sessions: ResourceTable<crate::tls::session::Session>,
}

impl HalState {
    pub fn new(tee: TeeKind, measurements: &[Measurement]) -> Self {
        Self {
            facts: PlatformFacts {
                tee,
                entropy: crate::random::available(),
                wall_clock: crate::time::wall_ns().is_some(),
                network: crate::net::available(),
                hardware_root: crate::platform::has_hardware_root(),
            },
            measurements: measurements.to_vec(),
            stopwatches: ResourceTable::new(MAX_HANDLES),
            keys: ResourceTable::new(MAX_HANDLES),
            hashers: ResourceTable::new(MAX_HANDLES),
            tcp_sockets: ResourceTable::new(MAX_HANDLES),
            udp_sockets: ResourceTable::new(MAX_HANDLES),
            tls_keys: ResourceTable::new(MAX_HANDLES),
            tls_sessions: ResourceTable::new(MAX_HANDLES),
        }
    }
}

/// Whether the kernel heap can afford a buffer of `bytes` for a HAL call; calls whose
/// output grows with their input check this first (see `memory::heap::can_afford`).
pub fn heap_can_afford(bytes: usize) -> bool {
    crate::memory::heap::can_afford(bytes)
}

pub fn add_to_linker(linker: &mut Linker<WorkloadCtx>) -> Result<(), LinkerError> {
    capabilities::add_to_linker(linker)?;
    clock::add_to_linker(linker)?;
    crypto::add_to_linker(linker)?;
    random::add_to_linker(linker)?;
    gpu::add_to_linker(linker)?;
    resources::add_to_linker(linker)?;
    attestation::add_to_linker(linker)?;
    sockets::add_to_linker(linker)?;
    tls::add_to_linker(linker)?;
    Ok(())
}
