//! TLS for workloads: rustls (no std) over the kernel's TCP sockets.

pub mod provider;
