//! TLS for workloads: rustls (no std, unbuffered API) over the kernel's TCP sockets, with
//! our RustCrypto provider, key contexts whose private keys stay in the kernel, and the
//! wall clock as time source.

pub mod certs;
pub mod pkcs12;
pub mod provider;
pub mod session;
mod verify;

use alloc::string::String;

/// What a TLS operation reports to the workload (the WIT `tls-error`).
#[derive(Debug)]
pub enum TlsError {
    Socket(crate::net::socket::SocketError),
    BadCertificate(String),
    HandshakeFailed(String),
    BadKeyMaterial(String),
    Unsupported(String),
    Closed,
}

/// Maps a rustls error: certificate problems apart from the rest.
impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> Self {
        use rustls::Error::*;
        match error {
            InvalidCertificate(e) => TlsError::BadCertificate(alloc::format!("{e:?}")),
            NoCertificatesPresented => TlsError::BadCertificate("the peer presented no certificate".into()),
            other => TlsError::HandshakeFailed(alloc::format!("{other}")),
        }
    }
}

/// Time for certificate validity checks: the kernel's wall clock (RTC at boot + TSC).
#[derive(Debug)]
pub struct WallClock;

impl rustls::time_provider::TimeProvider for WallClock {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        crate::time::wall_ns().map(|ns| rustls::pki_types::UnixTime::since_unix_epoch(core::time::Duration::from_nanos(ns)))
    }
}
