//! A TLS session over a kernel TCP stream: configuration from the workload's choices,
//! and the rustls unbuffered state machine driven with blocking socket I/O.

use super::certs::KeyContext;
use super::provider::{self, PrivateKey};
use super::verify::Pinned;
use super::{TlsError, WallClock};
use crate::net::socket::{self as net, SocketError, TcpStream};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use rustls::client::UnbufferedClientConnection;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::{UnbufferedServerConnection, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

/// Longest a handshake may take before it fails (a silent or slow peer).
const HANDSHAKE_TIMEOUT_NS: u64 = 30_000_000_000;
/// Most bytes of undecrypted input held: one maximal TLS 1.2/1.3 record
/// (RFC 8446 §5.2: 2^14 + 256 bytes of ciphertext; RFC 5246 §6.2.3: 2^14 + 2048) plus
/// its 5-byte header, with room for the start of the next.
const MAX_INCOMING: usize = 2 * (16384 + 2048 + 5);
/// Most bytes of one encrypted flight or write held before it is sent.
const MAX_OUTGOING: usize = 256 * 1024;
/// Largest plaintext encrypted per step (rustls splits it into records).
const WRITE_CHUNK: usize = 64 * 1024;

/// TLS versions the workload allows (the WIT `protocol-version`, DTLS excluded).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Tls12,
    Tls13,
}

/// Whom to trust.
pub enum Trust {
    Roots(Vec<CertificateDer<'static>>),
    Pinned(Vec<CertificateDer<'static>>),
}

/// The workload's `client-config`, lifted.
pub struct ClientSettings {
    pub server_name: String,
    pub trust: Trust,
    pub client_key: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKey>)>,
    pub versions: Vec<Version>,
    /// Bulk ciphers (`provider::bulk_cipher` numbering); empty: all.
    pub cipher_suites: Vec<u8>,
}

/// The workload's `server-config`, lifted.
pub struct ServerSettings {
    pub key: (Vec<CertificateDer<'static>>, Arc<PrivateKey>),
    pub client_trust: Option<Trust>,
    pub versions: Vec<Version>,
    pub cipher_suites: Vec<u8>,
}

impl KeyContext {
    /// The chain and a shared handle on the key, for a configuration.
    pub fn parts(&self) -> (Vec<CertificateDer<'static>>, Arc<PrivateKey>) {
        (self.chain.clone(), self.key.clone())
    }
}

fn crypto(suites: &[u8]) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut p = provider::provider();
    if !suites.is_empty() {
        p.cipher_suites.retain(|s| suites.contains(&provider::bulk_cipher(s.suite())));
    }
    Ok(Arc::new(p))
}

fn versions(versions: &[Version]) -> Vec<&'static SupportedProtocolVersion> {
    let mut out = Vec::new();
    if versions.is_empty() || versions.contains(&Version::Tls13) {
        out.push(&rustls::version::TLS13);
    }
    if versions.is_empty() || versions.contains(&Version::Tls12) {
        out.push(&rustls::version::TLS12);
    }
    out
}

fn root_store(certs: Vec<CertificateDer<'static>>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certs {
        store.add(cert).map_err(|e| TlsError::BadKeyMaterial(alloc::format!("trust root: {e}")))?;
    }
    Ok(store)
}

fn certified(chain: Vec<CertificateDer<'static>>, key: Arc<PrivateKey>) -> Arc<SingleCertAndKey> {
    Arc::new(SingleCertAndKey::from(CertifiedKey::new(chain, provider::signing_key(key))))
}

fn client_config(settings: ClientSettings) -> Result<(Arc<ClientConfig>, ServerName<'static>), TlsError> {
    let provider = crypto(&settings.cipher_suites)?;
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_details(provider, Arc::new(WallClock)).with_protocol_versions(&versions(&settings.versions))?;
    let builder = match settings.trust {
        Trust::Roots(certs) => builder.with_root_certificates(root_store(certs)?),
        Trust::Pinned(certificates) => builder.dangerous().with_custom_certificate_verifier(Arc::new(Pinned { certificates, algorithms })),
    };
    let config = match settings.client_key {
        Some((chain, key)) => builder.with_client_cert_resolver(certified(chain, key)),
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from(settings.server_name.as_str())
        .map_err(|_| TlsError::BadCertificate(alloc::format!("invalid server name {:?}", settings.server_name)))?
        .to_owned();
    Ok((Arc::new(config), name))
}

fn server_config(settings: ServerSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = crypto(&settings.cipher_suites)?;
    let algorithms = provider.signature_verification_algorithms;
    let builder = ServerConfig::builder_with_details(provider.clone(), Arc::new(WallClock)).with_protocol_versions(&versions(&settings.versions))?;
    let builder = match settings.client_trust {
        None => builder.with_no_client_auth(),
        Some(Trust::Roots(certs)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(root_store(certs)?), provider)
                .build()
                .map_err(|e| TlsError::BadKeyMaterial(alloc::format!("client trust: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        Some(Trust::Pinned(certificates)) => builder.with_client_cert_verifier(Arc::new(Pinned { certificates, algorithms })),
    };
    let (chain, key) = settings.key;
    let mut config = builder.with_cert_resolver(certified(chain, key));
    // No session resumption state is kept for workloads.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

enum Conn {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

/// What a step should do once the connection can carry application data.
enum Action<'a> {
    Nothing,
    Write(&'a [u8]),
    CloseNotify,
}

/// What one step of the state machine did.
enum Step {
    Progress,
    NeedInput,
    /// Application data may be written (nothing was).
    Writable,
    Wrote(usize),
    PeerClosed,
    Closed,
}

struct Io {
    stream: TcpStream,
    incoming: Vec<u8>,
    outgoing: Vec<u8>,
    plaintext: VecDeque<u8>,
}

/// An established (or failed) TLS session.
pub struct Session {
    conn: Conn,
    io: Io,
    peer_closed: bool,
    closed: bool,
    failed: bool,
}

fn insufficient(required: usize, have: usize, out: &mut Vec<u8>) -> Result<(), TlsError> {
    if have + required > MAX_OUTGOING {
        return Err(TlsError::HandshakeFailed("outgoing TLS data exceeds the kernel's buffer".into()));
    }
    out.resize(have + required, 0);
    Ok(())
}

impl Io {
    /// Sends everything encoded so far.
    fn flush(&mut self) -> Result<(), TlsError> {
        let mut sent = 0;
        while sent < self.outgoing.len() {
            sent += net::block_on(None, || self.stream.send(&self.outgoing[sent..])).map_err(TlsError::Socket)?;
        }
        self.outgoing.clear();
        Ok(())
    }

    /// Reads more TLS bytes; `deadline` bounds the wait (handshakes).
    fn fill(&mut self, deadline: Option<u64>) -> Result<(), TlsError> {
        if self.incoming.len() >= MAX_INCOMING {
            return Err(TlsError::HandshakeFailed("TLS record larger than the protocol allows".into()));
        }
        let mut buffer = [0u8; 4096];
        let room = buffer.len().min(MAX_INCOMING - self.incoming.len());
        let n = net::block_on(deadline, || self.stream.receive(&mut buffer[..room])).map_err(|e| match e {
            SocketError::Timeout => TlsError::HandshakeFailed("the peer did not complete the handshake in time".into()),
            e => TlsError::Socket(e),
        })?;
        if n == 0 {
            return Err(TlsError::Closed);
        }
        self.incoming.extend_from_slice(&buffer[..n]);
        Ok(())
    }

    /// Acts on one state; returns the step and extra bytes of input to discard.
    fn handle<Data>(
        outgoing: &mut Vec<u8>,
        plaintext: &mut VecDeque<u8>,
        state: ConnectionState<'_, '_, Data>,
        action: Action<'_>,
    ) -> Result<(Step, usize, bool), TlsError> {
        // (step, extra discard, flush now)
        Ok(match state {
            ConnectionState::ReadTraffic(mut traffic) => {
                let mut extra = 0;
                while let Some(record) = traffic.next_record() {
                    let record = record?;
                    extra += record.discard;
                    plaintext.extend(record.payload);
                }
                (Step::Progress, extra, false)
            }
            ConnectionState::EncodeTlsData(mut encode) => {
                let have = outgoing.len();
                insufficient(4096, have, outgoing)?;
                let n = match encode.encode(&mut outgoing[have..]) {
                    Ok(n) => n,
                    Err(EncodeError::InsufficientSize(e)) => {
                        insufficient(e.required_size, have, outgoing)?;
                        encode.encode(&mut outgoing[have..]).map_err(|_| TlsError::HandshakeFailed("TLS encoding failed".into()))?
                    }
                    Err(_) => return Err(TlsError::HandshakeFailed("TLS encoding failed".into())),
                };
                outgoing.truncate(have + n);
                (Step::Progress, 0, false)
            }
            ConnectionState::TransmitTlsData(transmit) => {
                transmit.done();
                (Step::Progress, 0, true)
            }
            ConnectionState::BlockedHandshake => (Step::NeedInput, 0, false),
            ConnectionState::WriteTraffic(mut traffic) => match action {
                Action::Nothing => (Step::Writable, 0, false),
                Action::Write(data) => {
                    let data = &data[..data.len().min(WRITE_CHUNK)];
                    let have = outgoing.len();
                    // Records add at most 5 + 1 + 16 (+ 8 for TLS 1.2 GCM) bytes per 2^14.
                    let estimate = data.len() + 64 * (data.len() / 16384 + 1);
                    insufficient(estimate, have, outgoing)?;
                    let n = match traffic.encrypt(data, &mut outgoing[have..]) {
                        Ok(n) => n,
                        Err(EncryptError::InsufficientSize(e)) => {
                            insufficient(e.required_size, have, outgoing)?;
                            traffic.encrypt(data, &mut outgoing[have..]).map_err(|_| TlsError::HandshakeFailed("TLS encryption failed".into()))?
                        }
                        Err(_) => return Err(TlsError::HandshakeFailed("TLS encryption failed".into())),
                    };
                    outgoing.truncate(have + n);
                    (Step::Wrote(data.len()), 0, true)
                }
                Action::CloseNotify => {
                    let have = outgoing.len();
                    insufficient(64, have, outgoing)?;
                    let n = traffic.queue_close_notify(&mut outgoing[have..]).map_err(|_| TlsError::HandshakeFailed("TLS encryption failed".into()))?;
                    outgoing.truncate(have + n);
                    (Step::Wrote(0), 0, true)
                }
            },
            ConnectionState::PeerClosed => (Step::PeerClosed, 0, false),
            ConnectionState::Closed => (Step::Closed, 0, false),
            // Early data is never enabled; future states are unknown.
            _ => return Err(TlsError::HandshakeFailed("unexpected TLS state".into())),
        })
    }
}

macro_rules! drive {
    ($conn:expr, $io:expr, $action:expr) => {{
        let Io { stream: _, incoming, outgoing, plaintext } = $io;
        let UnbufferedStatus { discard, state } = $conn.process_tls_records(&mut incoming[..]);
        let handled = match state {
            Ok(state) => Io::handle(outgoing, plaintext, state, $action),
            Err(e) => Err(TlsError::from(e)),
        };
        let extra = handled.as_ref().map(|h| h.1).unwrap_or(0);
        let discard = (discard + extra).min(incoming.len());
        incoming.drain(..discard);
        handled.map(|(step, _, flush)| (step, flush))
    }};
}

impl Session {
    fn new(conn: Conn, stream: TcpStream) -> Self {
        Self {
            conn,
            io: Io { stream, incoming: Vec::new(), outgoing: Vec::new(), plaintext: VecDeque::new() },
            peer_closed: false,
            closed: false,
            failed: false,
        }
    }

    /// Client handshake over a connected stream.
    pub fn connect(stream: TcpStream, settings: ClientSettings) -> Result<Self, TlsError> {
        let (config, name) = client_config(settings)?;
        let conn = UnbufferedClientConnection::new(config, name)?;
        let mut session = Self::new(Conn::Client(conn), stream);
        session.handshake()?;
        Ok(session)
    }

    /// Server handshake over an accepted stream.
    pub fn accept(stream: TcpStream, settings: ServerSettings) -> Result<Self, TlsError> {
        let config = server_config(settings)?;
        let conn = UnbufferedServerConnection::new(config)?;
        let mut session = Self::new(Conn::Server(conn), stream);
        session.handshake()?;
        Ok(session)
    }

    fn step(&mut self, action: Action<'_>) -> Result<Step, TlsError> {
        if self.failed {
            return Err(TlsError::HandshakeFailed("the session failed earlier".into()));
        }
        let result = match &mut self.conn {
            Conn::Client(c) => drive!(c, &mut self.io, action),
            Conn::Server(c) => drive!(c, &mut self.io, action),
        };
        match result {
            Ok((step, flush)) => {
                if flush {
                    self.io.flush()?;
                }
                Ok(step)
            }
            Err(e) => {
                self.failed = true;
                self.send_alert();
                Err(e)
            }
        }
    }

    /// Best effort: sends the alert rustls queued after a fatal error.
    fn send_alert(&mut self) {
        for _ in 0..4 {
            let result = match &mut self.conn {
                Conn::Client(c) => drive!(c, &mut self.io, Action::Nothing),
                Conn::Server(c) => drive!(c, &mut self.io, Action::Nothing),
            };
            match result {
                Ok((Step::Progress, flush)) => {
                    if flush && self.io.flush().is_err() {
                        return;
                    }
                }
                _ => break,
            }
        }
        if !self.io.outgoing.is_empty() {
            let _ = self.io.flush();
        }
    }

    fn is_handshaking(&self) -> bool {
        match &self.conn {
            Conn::Client(c) => c.is_handshaking(),
            Conn::Server(c) => c.is_handshaking(),
        }
    }

    fn handshake(&mut self) -> Result<(), TlsError> {
        let deadline = crate::time::monotonic_ns() + HANDSHAKE_TIMEOUT_NS;
        loop {
            match self.step(Action::Nothing)? {
                Step::Progress => {}
                Step::Writable if !self.is_handshaking() => return Ok(()),
                Step::NeedInput | Step::Writable => self.fill_or_fail(Some(deadline))?,
                Step::Wrote(_) => {}
                Step::PeerClosed | Step::Closed => return Err(TlsError::HandshakeFailed("the peer closed the connection during the handshake".into())),
            }
        }
    }

    fn fill_or_fail(&mut self, deadline: Option<u64>) -> Result<(), TlsError> {
        self.io.fill(deadline).map_err(|e| match e {
            TlsError::Closed if self.is_handshaking() => TlsError::HandshakeFailed("the peer closed the connection during the handshake".into()),
            e => e,
        })
    }

    /// Encrypts and sends all of `data` (blocking).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, TlsError> {
        if self.closed {
            return Err(TlsError::Closed);
        }
        let mut sent = 0;
        while sent < data.len() {
            match self.step(Action::Write(&data[sent..]))? {
                Step::Wrote(n) => sent += n,
                Step::Progress => {}
                Step::NeedInput | Step::Writable => self.fill_or_fail(None)?,
                Step::PeerClosed => self.peer_closed = true,
                Step::Closed => return Err(TlsError::Closed),
            }
        }
        Ok(sent)
    }

    /// Up to `max` decrypted bytes (blocking until some arrive); empty after the peer's
    /// close_notify. A connection cut without close_notify is `Closed` (possible truncation).
    pub fn receive(&mut self, max: usize) -> Result<Vec<u8>, TlsError> {
        if self.closed {
            return Err(TlsError::Closed);
        }
        loop {
            if !self.io.plaintext.is_empty() || max == 0 {
                let n = max.min(self.io.plaintext.len());
                return Ok(self.io.plaintext.drain(..n).collect());
            }
            if self.peer_closed {
                return Ok(Vec::new());
            }
            match self.step(Action::Nothing)? {
                Step::Progress | Step::Wrote(_) => {}
                Step::NeedInput | Step::Writable => self.fill_or_fail(None)?,
                Step::PeerClosed | Step::Closed => self.peer_closed = true,
            }
        }
    }

    /// Sends close_notify and shuts the TCP sending half.
    pub fn close(&mut self) -> Result<(), TlsError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        for _ in 0..16 {
            match self.step(Action::CloseNotify)? {
                Step::Wrote(_) | Step::Closed => break,
                Step::PeerClosed => self.peer_closed = true,
                Step::Progress => {}
                Step::NeedInput | Step::Writable => break,
            }
        }
        self.io.stream.shutdown_send().map_err(TlsError::Socket)
    }

    /// The negotiated version (`Version::Tls13` before the handshake).
    pub fn version(&self) -> Version {
        let v = match &self.conn {
            Conn::Client(c) => c.protocol_version(),
            Conn::Server(c) => c.protocol_version(),
        };
        if v == Some(rustls::ProtocolVersion::TLSv1_2) { Version::Tls12 } else { Version::Tls13 }
    }

    /// The negotiated bulk cipher (`provider::bulk_cipher` numbering).
    pub fn cipher(&self) -> u8 {
        let suite = match &self.conn {
            Conn::Client(c) => c.negotiated_cipher_suite(),
            Conn::Server(c) => c.negotiated_cipher_suite(),
        };
        suite.map(|s| provider::bulk_cipher(s.suite())).unwrap_or(0)
    }

    /// The peer's certificates, DER, leaf first.
    pub fn peer_certificates(&self) -> Vec<Vec<u8>> {
        let certs = match &self.conn {
            Conn::Client(c) => c.peer_certificates(),
            Conn::Server(c) => c.peer_certificates(),
        };
        certs.map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect()).unwrap_or_default()
    }
}
