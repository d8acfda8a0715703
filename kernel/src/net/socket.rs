//! Workload sockets over smoltcp: TCP streams and listeners, UDP sockets, name lookup.
//!
//! Every operation here is non-blocking and answers [`SocketError::WouldBlock`] when it
//! would wait; [`block_on`] turns one into a blocking call that keeps polling the
//! network. WASI and the HAL `sockets` interface both build on these types.
//!
//! Each workload has a [`Quota`]: how many sockets it may hold and how much socket-buffer
//! memory they may take. Exceeding either is an error for that workload, never a kernel
//! allocation failure.

use super::{with_network, Network};
use crate::time;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::Cell;
use core::net::{IpAddr, SocketAddr};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{dns, tcp, udp};
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

/// Receive and send buffer of a connected or connecting TCP socket.
pub const TCP_BUFFER: usize = 64 * 1024;
/// Buffers of the sockets waiting in a listener's backlog (smaller: there may be many).
pub const BACKLOG_BUFFER: usize = 32 * 1024;
/// Payload bytes and datagrams a UDP socket buffers each way.
pub const UDP_BUFFER: usize = 64 * 1024;
const UDP_DATAGRAMS: usize = 64;
/// Largest backlog a listener gets (each waiting connection needs a socket of its own).
pub const MAX_BACKLOG: usize = 64;
/// Per-workload limits (reported by `capabilities`).
pub const MAX_SOCKETS: usize = 256;
pub const MAX_SOCKET_MEMORY: usize = 16 * 1024 * 1024;
/// How long a connect or a name lookup may take.
const CONNECT_TIMEOUT_MS: u64 = 30_000;
const CLOSE_LINGER_NS: u64 = 10_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketError {
    WouldBlock,
    Timeout,
    ConnectionRefused,
    ConnectionReset,
    NotConnected,
    AddressInUse,
    AddressNotAvailable,
    NameUnresolvable,
    LimitExceeded(&'static str),
    InvalidArgument(&'static str),
    /// No network card, or an address family the stack does not speak.
    Unsupported(&'static str),
}

impl core::fmt::Display for SocketError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SocketError::LimitExceeded(why) | SocketError::InvalidArgument(why) | SocketError::Unsupported(why) => {
                f.write_str(why)
            }
            other => write!(f, "{other:?}"),
        }
    }
}

const NO_NETWORK: SocketError = SocketError::Unsupported("this VM has no network card (run with --tcplisten or -S inherit-network)");

fn network<R>(f: impl FnOnce(&mut Network) -> Result<R, SocketError>) -> Result<R, SocketError> {
    with_network(f).unwrap_or(Err(NO_NETWORK))
}

/// One workload's socket allowance, shared by all its sockets (which give back on drop).
pub struct Quota {
    sockets: Cell<usize>,
    memory: Cell<usize>,
}

impl Quota {
    pub fn new() -> Rc<Self> {
        Rc::new(Self { sockets: Cell::new(0), memory: Cell::new(0) })
    }

    /// Takes one socket and `memory` bytes of buffers, or says which limit is hit.
    fn take(&self, memory: usize) -> Result<(), SocketError> {
        if self.sockets.get() >= MAX_SOCKETS {
            return Err(SocketError::LimitExceeded("too many sockets for this workload (capabilities: max-sockets)"));
        }
        if self.memory.get() + memory > MAX_SOCKET_MEMORY {
            return Err(SocketError::LimitExceeded("socket buffers over this workload's limit"));
        }
        if !crate::memory::heap::can_afford(memory) {
            return Err(SocketError::LimitExceeded("the VM has no memory left for socket buffers"));
        }
        self.sockets.set(self.sockets.get() + 1);
        self.memory.set(self.memory.get() + memory);
        Ok(())
    }

    fn give_back(&self, memory: usize) {
        self.sockets.set(self.sockets.get().saturating_sub(1));
        self.memory.set(self.memory.get().saturating_sub(memory));
    }
}

/// A byte buffer of `len` zeroes, or `None` when the heap cannot give it.
fn buffer(len: usize) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).ok()?;
    v.resize(len, 0);
    Some(v)
}

fn new_tcp_socket(buffer_len: usize) -> Result<tcp::Socket<'static>, SocketError> {
    let (Some(rx), Some(tx)) = (buffer(buffer_len), buffer(buffer_len)) else {
        return Err(SocketError::LimitExceeded("the VM has no memory left for socket buffers"));
    };
    let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(rx), tcp::SocketBuffer::new(tx));
    socket.set_nagle_enabled(false);
    // ACK at once: smoltcp's default 10 ms delayed ACK caps a 32 KiB window at ~3 MB/s.
    socket.set_ack_delay(None);
    Ok(socket)
}

fn to_ip(address: IpAddr) -> Result<IpAddress, SocketError> {
    match address {
        IpAddr::V4(v4) => Ok(IpAddress::Ipv4(v4)),
        IpAddr::V6(_) => Err(SocketError::Unsupported("IPv6 is not supported yet")),
    }
}

pub fn to_socket_addr(endpoint: IpEndpoint) -> SocketAddr {
    let IpAddress::Ipv4(v4) = endpoint.addr;
    SocketAddr::new(IpAddr::V4(v4), endpoint.port)
}

fn listen_endpoint(local: SocketAddr) -> Result<IpListenEndpoint, SocketError> {
    if local.port() == 0 {
        return Err(SocketError::InvalidArgument("a listening socket needs a port"));
    }
    let addr = if local.ip().is_unspecified() { None } else { Some(to_ip(local.ip())?) };
    Ok(IpListenEndpoint { addr, port: local.port() })
}

/// A connected (or connecting) TCP socket.
pub struct TcpStream {
    handle: SocketHandle,
    quota: Rc<Quota>,
    memory: usize,
}

impl TcpStream {
    /// Starts connecting to `remote`; [`TcpStream::poll_connected`] says when it is done.
    pub fn connect(remote: SocketAddr, quota: &Rc<Quota>) -> Result<Self, SocketError> {
        let remote_ip = to_ip(remote.ip())?;
        if remote.port() == 0 || remote_ip.is_unspecified() {
            return Err(SocketError::InvalidArgument("cannot connect to port 0 or an unspecified address"));
        }
        network(|net| {
            if net.ipv4_address().is_none() {
                return Err(SocketError::AddressNotAvailable);
            }
            quota.take(2 * TCP_BUFFER)?;
            let mut socket = new_tcp_socket(TCP_BUFFER).inspect_err(|_| quota.give_back(2 * TCP_BUFFER))?;
            socket.set_timeout(Some(smoltcp::time::Duration::from_millis(CONNECT_TIMEOUT_MS)));
            let port = net.ephemeral_port();
            let cx = net.iface.context();
            if socket.connect(cx, IpEndpoint::new(remote_ip, remote.port()), port).is_err() {
                quota.give_back(2 * TCP_BUFFER);
                return Err(SocketError::AddressNotAvailable);
            }
            let handle = net.sockets.add(socket);
            Ok(Self { handle, quota: quota.clone(), memory: 2 * TCP_BUFFER })
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut tcp::Socket<'static>) -> R) -> Result<R, SocketError> {
        network(|net| {
            net.poll();
            Ok(f(net.sockets.get_mut::<tcp::Socket>(self.handle)))
        })
    }

    /// `Ok` once established; `WouldBlock` while the handshake runs.
    pub fn poll_connected(&self) -> Result<(), SocketError> {
        self.with(|s| match s.state() {
            tcp::State::SynSent | tcp::State::SynReceived => Err(SocketError::WouldBlock),
            tcp::State::Closed if s.remote_endpoint().is_none() => Err(SocketError::ConnectionRefused),
            tcp::State::Closed => Err(SocketError::ConnectionRefused),
            _ => Ok(()),
        })?
    }

    /// Queues what fits of `data`; `WouldBlock` when nothing fits now.
    pub fn send(&self, data: &[u8]) -> Result<usize, SocketError> {
        self.with(|s| {
            if !s.may_send() {
                return Err(match s.state() {
                    tcp::State::SynSent | tcp::State::SynReceived => SocketError::WouldBlock,
                    tcp::State::Closed | tcp::State::TimeWait if s.remote_endpoint().is_none() => SocketError::ConnectionReset,
                    _ => SocketError::NotConnected,
                });
            }
            match s.send_slice(data) {
                Ok(0) if !data.is_empty() => Err(SocketError::WouldBlock),
                Ok(n) => Ok(n),
                Err(_) => Err(SocketError::NotConnected),
            }
        })?
    }

    /// Reads what has arrived, at most `out.len()` bytes; `Ok(0)`: the peer closed its side.
    pub fn receive(&self, out: &mut [u8]) -> Result<usize, SocketError> {
        self.with(|s| {
            if s.can_recv() {
                return s.recv_slice(out).map_err(|_| SocketError::ConnectionReset);
            }
            match s.state() {
                tcp::State::SynSent | tcp::State::SynReceived => Err(SocketError::WouldBlock),
                _ if s.may_recv() => Err(SocketError::WouldBlock),
                // Reset by the peer: smoltcp forgets the remote end.
                tcp::State::Closed if s.remote_endpoint().is_none() => Err(SocketError::ConnectionReset),
                _ => Ok(0),
            }
        })?
    }

    /// Bytes ready to read, and whether a read would not block (data, EOF or error).
    pub fn readable(&self) -> bool {
        self.with(|s| s.can_recv() || !s.may_recv() && !matches!(s.state(), tcp::State::SynSent | tcp::State::SynReceived))
            .unwrap_or(true)
    }

    pub fn writable(&self) -> bool {
        self.with(|s| s.can_send() || !s.is_open()).unwrap_or(true)
    }

    /// Shuts the sending half (FIN); the receiving half is only a local promise.
    pub fn shutdown_send(&self) -> Result<(), SocketError> {
        self.with(|s| s.close())
    }

    pub fn local_address(&self) -> Result<SocketAddr, SocketError> {
        self.with(|s| s.local_endpoint().map(to_socket_addr).ok_or(SocketError::NotConnected))?
    }

    pub fn remote_address(&self) -> Result<SocketAddr, SocketError> {
        self.with(|s| s.remote_endpoint().map(to_socket_addr).ok_or(SocketError::NotConnected))?
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        with_network(|net| {
            net.sockets.get_mut::<tcp::Socket>(self.handle).close();
            net.closing.push((self.handle, time::monotonic_ns() + CLOSE_LINGER_NS));
        });
        self.quota.give_back(self.memory);
    }
}

impl Network {
    /// Removes closed sockets, and those whose close has lingered too long (reset).
    pub(super) fn reap_closing(&mut self, _now: smoltcp::time::Instant) {
        let now_ns = time::monotonic_ns();
        let sockets = &mut self.sockets;
        self.closing.retain(|(handle, deadline)| {
            let socket = sockets.get_mut::<tcp::Socket>(*handle);
            if socket.state() == tcp::State::Closed || socket.state() == tcp::State::TimeWait || now_ns >= *deadline {
                socket.abort();
                sockets.remove(*handle);
                false
            } else {
                true
            }
        });
    }
}

/// A listening TCP socket: a backlog of sockets in LISTEN state on one port, each able to
/// take one incoming connection (smoltcp has no accept queue of its own).
pub struct TcpListener {
    local: IpListenEndpoint,
    backlog: Vec<SocketHandle>,
    quota: Rc<Quota>,
}

impl TcpListener {
    pub fn bind(local: SocketAddr, backlog: usize, quota: &Rc<Quota>) -> Result<Self, SocketError> {
        let endpoint = listen_endpoint(local)?;
        let mut listener = Self { local: endpoint, backlog: Vec::new(), quota: quota.clone() };
        network(|net| {
            let in_use = net.sockets.iter().any(|(handle, socket)| {
                matches!(socket, smoltcp::socket::Socket::Tcp(s) if s.is_listening() && s.listen_endpoint().port == endpoint.port)
                    && !net.closing.iter().any(|(h, _)| *h == handle)
            });
            if in_use { Err(SocketError::AddressInUse) } else { Ok(()) }
        })?;
        // The listener itself counts as one socket; its backlog sockets count as memory.
        quota.take(0)?;
        for _ in 0..backlog.clamp(1, MAX_BACKLOG) {
            if listener.add_backlog_socket().is_err() && !listener.backlog.is_empty() {
                break; // a shorter backlog still works
            }
        }
        if listener.backlog.is_empty() {
            return Err(SocketError::LimitExceeded("no memory for a listening socket"));
        }
        crate::kprintln!("net: listening on port {} (backlog {})", endpoint.port, listener.backlog.len());
        Ok(listener)
    }

    fn add_backlog_socket(&mut self) -> Result<(), SocketError> {
        self.quota.memory_take(2 * BACKLOG_BUFFER)?;
        let result = network(|net| {
            let mut socket = new_tcp_socket(BACKLOG_BUFFER)?;
            socket.listen(self.local).map_err(|_| SocketError::AddressInUse)?;
            Ok(net.sockets.add(socket))
        });
        match result {
            Ok(handle) => {
                self.backlog.push(handle);
                Ok(())
            }
            Err(e) => {
                self.quota.memory_give_back(2 * BACKLOG_BUFFER);
                Err(e)
            }
        }
    }

    /// A connection whose handshake completed, with the peer's address.
    pub fn accept(&mut self) -> Result<(TcpStream, SocketAddr), SocketError> {
        let ready = network(|net| {
            net.poll();
            Ok(self.backlog.iter().position(|h| {
                let s = net.sockets.get::<tcp::Socket>(*h);
                !matches!(s.state(), tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed)
            }))
        })?;
        let Some(index) = ready else { return Err(SocketError::WouldBlock) };
        // The connection now counts as a socket of its own.
        self.quota.take(0)?;
        let handle = self.backlog.swap_remove(index);
        let remote = network(|net| Ok(net.sockets.get::<tcp::Socket>(handle).remote_endpoint()))?;
        let stream = TcpStream { handle, quota: self.quota.clone(), memory: 2 * BACKLOG_BUFFER };
        // Refill the backlog; if memory is short it shrinks until connections close.
        let _ = self.add_backlog_socket();
        let remote = remote.map(to_socket_addr).ok_or(SocketError::ConnectionReset)?;
        Ok((stream, remote))
    }

    /// Whether [`TcpListener::accept`] would not block.
    pub fn readable(&self) -> bool {
        network(|net| {
            net.poll();
            Ok(self.backlog.iter().any(|h| {
                !matches!(net.sockets.get::<tcp::Socket>(*h).state(), tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed)
            }))
        })
        .unwrap_or(true)
    }

    pub fn local_address(&self) -> SocketAddr {
        let ip = match self.local.addr {
            Some(IpAddress::Ipv4(v4)) => IpAddr::V4(v4),
            None => IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
        };
        SocketAddr::new(ip, self.local.port)
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        with_network(|net| {
            for handle in self.backlog.drain(..) {
                net.sockets.get_mut::<tcp::Socket>(handle).abort();
                net.sockets.remove(handle);
                self.quota.memory_give_back(2 * BACKLOG_BUFFER);
            }
        });
        self.quota.give_back(0);
    }
}

impl Quota {
    fn memory_take(&self, memory: usize) -> Result<(), SocketError> {
        if self.memory.get() + memory > MAX_SOCKET_MEMORY {
            return Err(SocketError::LimitExceeded("socket buffers over this workload's limit"));
        }
        if !crate::memory::heap::can_afford(memory) {
            return Err(SocketError::LimitExceeded("the VM has no memory left for socket buffers"));
        }
        self.memory.set(self.memory.get() + memory);
        Ok(())
    }

    fn memory_give_back(&self, memory: usize) {
        self.memory.set(self.memory.get().saturating_sub(memory));
    }
}

/// A UDP socket bound to a local port.
pub struct UdpSocket {
    handle: SocketHandle,
    quota: Rc<Quota>,
}

const UDP_MEMORY: usize = 2 * UDP_BUFFER;

impl UdpSocket {
    pub fn bind(local: SocketAddr, quota: &Rc<Quota>) -> Result<Self, SocketError> {
        network(|net| {
            let port = if local.port() == 0 { net.ephemeral_port() } else { local.port() };
            let addr = if local.ip().is_unspecified() { None } else { Some(to_ip(local.ip())?) };
            let in_use = net.sockets.iter().any(|(_, s)| matches!(s, smoltcp::socket::Socket::Udp(u) if u.endpoint().port == port));
            if in_use {
                return Err(SocketError::AddressInUse);
            }
            quota.take(UDP_MEMORY)?;
            let make = || -> Option<udp::Socket<'static>> {
                let meta = |n| {
                    let mut v = Vec::new();
                    v.try_reserve_exact(n).ok()?;
                    v.resize(n, udp::PacketMetadata::EMPTY);
                    Some(v)
                };
                Some(udp::Socket::new(
                    udp::PacketBuffer::new(meta(UDP_DATAGRAMS)?, buffer(UDP_BUFFER)?),
                    udp::PacketBuffer::new(meta(UDP_DATAGRAMS)?, buffer(UDP_BUFFER)?),
                ))
            };
            let Some(mut socket) = make() else {
                quota.give_back(UDP_MEMORY);
                return Err(SocketError::LimitExceeded("the VM has no memory left for socket buffers"));
            };
            if socket.bind(IpListenEndpoint { addr, port }).is_err() {
                quota.give_back(UDP_MEMORY);
                return Err(SocketError::AddressNotAvailable);
            }
            Ok(Self { handle: net.sockets.add(socket), quota: quota.clone() })
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut udp::Socket<'static>) -> R) -> Result<R, SocketError> {
        network(|net| {
            net.poll();
            Ok(f(net.sockets.get_mut::<udp::Socket>(self.handle)))
        })
    }

    pub fn send_to(&self, data: &[u8], remote: SocketAddr) -> Result<usize, SocketError> {
        let endpoint = IpEndpoint::new(to_ip(remote.ip())?, remote.port());
        if remote.port() == 0 {
            return Err(SocketError::InvalidArgument("cannot send to port 0"));
        }
        if data.len() > UDP_BUFFER / 2 {
            return Err(SocketError::InvalidArgument("datagram larger than the socket's send buffer"));
        }
        let sent = self.with(|s| match s.send_slice(data, endpoint) {
            Ok(()) => Ok(data.len()),
            Err(udp::SendError::BufferFull) => Err(SocketError::WouldBlock),
            Err(udp::SendError::Unaddressable) => Err(SocketError::AddressNotAvailable),
        })?;
        // Push it out now rather than at the next poll.
        super::poll();
        sent
    }

    /// One datagram (truncated to `out.len()`) and its sender.
    pub fn receive_from(&self, out: &mut [u8]) -> Result<(usize, SocketAddr), SocketError> {
        self.with(|s| match s.recv_slice(out) {
            Ok((n, meta)) => Ok((n, to_socket_addr(meta.endpoint))),
            Err(udp::RecvError::Exhausted) => Err(SocketError::WouldBlock),
            // A datagram larger than `out`: smoltcp keeps it; take it truncated.
            Err(udp::RecvError::Truncated) => Err(SocketError::InvalidArgument("receive buffer smaller than the datagram")),
        })?
    }

    pub fn local_address(&self) -> Result<SocketAddr, SocketError> {
        self.with(|s| {
            let ep = s.endpoint();
            let ip = match ep.addr {
                Some(IpAddress::Ipv4(v4)) => IpAddr::V4(v4),
                None => IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
            };
            SocketAddr::new(ip, ep.port)
        })
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        with_network(|net| net.sockets.remove(self.handle));
        self.quota.give_back(UDP_MEMORY);
    }
}

/// Resolves `name` (an IPv4 literal, or through DNS) to its addresses.
pub fn resolve(name: &str) -> Result<Vec<IpAddr>, SocketError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(alloc::vec![ip]);
    }
    if name.is_empty() || name.len() > 253 {
        return Err(SocketError::InvalidArgument("a host name has 1 to 253 characters"));
    }
    let query = network(|net| {
        let cx = net.iface.context();
        net.sockets
            .get_mut::<dns::Socket>(net.dns)
            .start_query(cx, name, smoltcp::wire::DnsQueryType::A)
            .map_err(|e| match e {
                dns::StartQueryError::NoFreeSlot => SocketError::LimitExceeded("too many name lookups at once"),
                dns::StartQueryError::InvalidName | dns::StartQueryError::NameTooLong => {
                    SocketError::InvalidArgument("not a valid host name")
                }
            })
    })?;
    let deadline = time::monotonic_ns() + CONNECT_TIMEOUT_MS * 1_000_000;
    block_on(Some(deadline), || {
        network(|net| {
            net.poll();
            match net.sockets.get_mut::<dns::Socket>(net.dns).get_query_result(query) {
                Ok(addresses) => Ok(addresses
                    .iter()
                    .map(|a| match a {
                        IpAddress::Ipv4(v4) => IpAddr::V4(*v4),
                    })
                    .collect()),
                Err(dns::GetQueryResultError::Pending) => Err(SocketError::WouldBlock),
                Err(dns::GetQueryResultError::Failed) => Err(SocketError::NameUnresolvable),
            }
        })
    })
    .inspect_err(|e| {
        if *e == SocketError::Timeout {
            with_network(|net| net.sockets.get_mut::<dns::Socket>(net.dns).cancel_query(query));
        }
    })
}

/// Repeats `op` (which polls the network) until it does not answer `WouldBlock`, or
/// until `deadline` (monotonic ns) passes: then `Timeout`.
pub fn block_on<R>(deadline: Option<u64>, mut op: impl FnMut() -> Result<R, SocketError>) -> Result<R, SocketError> {
    loop {
        match op() {
            Err(SocketError::WouldBlock) => {}
            other => return other,
        }
        if deadline.is_some_and(|d| time::monotonic_ns() >= d) {
            return Err(SocketError::Timeout);
        }
        // Nothing to do until a packet arrives: let other workloads run; the card is
        // polled again on the next round.
        crate::sched::yield_now();
    }
}

/// When a connect that started now must have completed.
pub fn connect_deadline() -> u64 {
    time::monotonic_ns() + CONNECT_TIMEOUT_MS * 1_000_000
}
