//! TLS pieces that need no kernel: the rustls crypto provider on RustCrypto crates
//! (feature `tls`, which the kernel enables and the host tool does not).
//!
//! The kernel (`kernel/src/tls`) adds sessions over its sockets, key contexts and the
//! wall clock; here the provider is tested on the host against published vectors and
//! with in-process rustls handshakes (`cargo test -p halcyon-hal --features tls`, tests in `provider/tests.rs`).

pub mod provider;

