//! `elastic:hal/sockets`: TCP client and server sockets, UDP sockets, name lookup, over
//! the kernel's network stack (`net::socket`).
//!
//! Canonical-ABI layouts (WIT in `wit/sockets.wit`):
//! - `ip-address`: variant, size 18, align 2: case @0, payload @2 (4 × u8 or 8 × u16).
//!   Flattened as parameters: case, then 8 × i32 (the joined payload).
//! - `socket-address`: size 20, align 2: ip-address @0, port @18. Flattened: 10 × i32.
//! - `socket-error`: size 12, align 4: case @0, string (ptr, len) @4 for the string cases.
//! - `result<T, socket-error>`: case @0, payload at T's alignment (4, or 8 for u64).

use super::abi::{trap, CallerGuest};
use super::result::{self, ErrorValue, GuestError, ResultLayout};
use crate::net::socket::{self as net, SocketError, TcpListener, TcpStream};
use crate::wasm::runner::WorkloadCtx;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use halcyon_hal::cabi::{lift_bytes, lift_enum, lift_string, lower_bytes, AbiError, Guest, Writer};
use wasmi::{Caller, Error, Linker};

const MODULE: &str = "elastic:hal/sockets@0.1.0";
/// Most bytes one `receive` returns (the guest's `max` is capped to it).
const MAX_RECEIVE: u64 = 64 * 1024;

/// A `tcp-socket` resource: listening or connected.
pub struct TcpSocket {
    kind: TcpKind,
    blocking: bool,
}

enum TcpKind {
    Listener(TcpListener),
    Stream(TcpStream),
}

impl TcpSocket {
    /// The connected stream, for a TLS session that takes the socket over; `None` for
    /// a listener.
    pub(super) fn into_stream(self) -> Option<TcpStream> {
        match self.kind {
            TcpKind::Stream(stream) => Some(stream),
            TcpKind::Listener(_) => None,
        }
    }
}

pub struct UdpSocket {
    socket: net::UdpSocket,
    blocking: bool,
}

/// An `ip-address` flattened into parameters: the case, then the joined payload.
type FlatIp = (i32, [i32; 8]);

fn lift_ip((case, p): FlatIp) -> Result<IpAddr, AbiError> {
    match lift_enum(case, 2)? {
        0 => Ok(IpAddr::V4(Ipv4Addr::new(p[0] as u8, p[1] as u8, p[2] as u8, p[3] as u8))),
        _ => Ok(IpAddr::V6(Ipv6Addr::new(
            p[0] as u16, p[1] as u16, p[2] as u16, p[3] as u16, p[4] as u16, p[5] as u16, p[6] as u16, p[7] as u16,
        ))),
    }
}

fn lift_address(ip: FlatIp, port: i32) -> Result<SocketAddr, AbiError> {
    Ok(SocketAddr::new(lift_ip(ip)?, port as u16))
}

/// Writes an `ip-address` (18 bytes) at `at`.
fn write_ip(out: &mut Writer<'_>, at: u32, ip: IpAddr) -> Result<(), AbiError> {
    match ip {
        IpAddr::V4(v4) => {
            out.u8(at, 0)?;
            for (i, octet) in v4.octets().iter().enumerate() {
                out.u8(at + 2 + i as u32, *octet)?;
            }
        }
        IpAddr::V6(v6) => {
            out.u8(at, 1)?;
            for (i, segment) in v6.segments().iter().enumerate() {
                out.u16(at + 2 + 2 * i as u32, *segment)?;
            }
        }
    }
    Ok(())
}

fn write_address(out: &mut Writer<'_>, at: u32, address: SocketAddr) -> Result<(), AbiError> {
    write_ip(out, at, address.ip())?;
    out.u16(at + 18, address.port())
}

/// The case of `socket-error` and its message, for the string cases.
impl GuestError for SocketError {
    fn to_guest(self) -> ErrorValue {
        let (case, message) = match self {
            SocketError::WouldBlock => (0, None),
            SocketError::Timeout => (1, None),
            SocketError::ConnectionRefused => (2, None),
            SocketError::ConnectionReset => (3, None),
            SocketError::NotConnected => (4, None),
            SocketError::AddressInUse => (5, None),
            SocketError::AddressNotAvailable => (6, None),
            SocketError::NameUnresolvable => (7, Some("the name server has no address for this name")),
            SocketError::LimitExceeded(why) => (8, Some(why)),
            SocketError::InvalidArgument(why) => (9, Some(why)),
            SocketError::Unsupported(why) => (10, Some(why)),
        };
        ErrorValue { case, nested: None, message: message.map(String::from) }
    }
}

/// Writes `result<T, socket-error>` (`result::finish` with this interface's error).
fn finish(
    caller: &mut Caller<'_, WorkloadCtx>,
    retptr: u32,
    layout: ResultLayout,
    result: Result<impl FnOnce(&mut dyn Guest, u32) -> Result<(), AbiError>, SocketError>,
) -> Result<(), AbiError> {
    result::finish(caller, retptr, layout, result)
}

/// `result<own<T>, socket-error>`: size 16, align 4.
const RESULT_HANDLE: (u32, u32, u32) = (16, 4, 4);
/// `result<u64, socket-error>`: size 24, align 8, payload @8.
const RESULT_U64: (u32, u32, u32) = (24, 8, 8);
/// `result<list<u8>, socket-error>` and `result<_, socket-error>`: size 16, align 4.
const RESULT_LIST: (u32, u32, u32) = (16, 4, 4);
/// `result<socket-address, socket-error>`: size 24, align 4.
const RESULT_ADDRESS: (u32, u32, u32) = (24, 4, 4);
/// `result<tuple<own<tcp-socket>, socket-address>, socket-error>`: size 28, align 4.
const RESULT_ACCEPTED: (u32, u32, u32) = (28, 4, 4);
/// `result<tuple<list<u8>, socket-address>, socket-error>`: size 32, align 4.
const RESULT_DATAGRAM: (u32, u32, u32) = (32, 4, 4);

fn write_u32_at(offset: u32, value: u32) -> impl FnOnce(&mut dyn Guest, u32) -> Result<(), AbiError> {
    move |guest, retptr| Writer::new(guest.memory(), retptr, offset + 4)?.u32(offset, value)
}

fn write_unit() -> impl FnOnce(&mut dyn Guest, u32) -> Result<(), AbiError> {
    |_, _| Ok(())
}

fn write_bytes_at(offset: u32, bytes: Vec<u8>) -> impl FnOnce(&mut dyn Guest, u32) -> Result<(), AbiError> {
    move |guest, retptr| {
        let list = lower_bytes(guest, &bytes)?;
        Writer::new(guest.memory(), retptr, offset + 8)?.list(offset, list)
    }
}

fn quota(caller: &Caller<'_, WorkloadCtx>) -> alloc::rc::Rc<net::Quota> {
    caller.data().wasi.sockets.quota.clone()
}

fn tcp_connect(c: &mut Caller<'_, WorkloadCtx>, remote: Result<SocketAddr, AbiError>, retptr: u32) -> Result<(), AbiError> {
    let remote = remote?;
    let quota = quota(c);
    let stream = TcpStream::connect(remote, &quota)
        .and_then(|stream| net::block_on(Some(net::connect_deadline()), || stream.poll_connected()).map(|()| stream));
    let handle = match stream {
        Ok(stream) => c.data_mut().hal.tcp_sockets.insert(TcpSocket { kind: TcpKind::Stream(stream), blocking: true }).map_err(Err),
        Err(e) => Err(Ok(e)),
    };
    match handle {
        Ok(handle) => finish(c, retptr, RESULT_HANDLE, Ok(write_u32_at(4, handle))),
        Err(Ok(e)) => finish(c, retptr, RESULT_HANDLE, Err::<fn(&mut dyn Guest, u32) -> _, _>(e)),
        Err(Err(abi)) => Err(abi),
    }
}

fn tcp_listen(c: &mut Caller<'_, WorkloadCtx>, local: Result<SocketAddr, AbiError>, backlog: u32, retptr: u32) -> Result<(), AbiError> {
    let local = local?;
    let quota = quota(c);
    match TcpListener::bind(local, backlog as usize, &quota) {
        Ok(listener) => {
            let handle = c.data_mut().hal.tcp_sockets.insert(TcpSocket { kind: TcpKind::Listener(listener), blocking: true })?;
            finish(c, retptr, RESULT_HANDLE, Ok(write_u32_at(4, handle)))
        }
        Err(e) => finish(c, retptr, RESULT_HANDLE, Err::<fn(&mut dyn Guest, u32) -> _, _>(e)),
    }
}

fn tcp_accept(c: &mut Caller<'_, WorkloadCtx>, handle: u32, retptr: u32) -> Result<(), AbiError> {
    let socket = c.data_mut().hal.tcp_sockets.get_mut(handle)?;
    let blocking = socket.blocking;
    let accepted = match &mut socket.kind {
        TcpKind::Listener(listener) if blocking => net::block_on(None, || listener.accept()),
        TcpKind::Listener(listener) => listener.accept(),
        TcpKind::Stream(_) => Err(SocketError::InvalidArgument("accept needs a listening socket")),
    };
    match accepted {
        Ok((stream, remote)) => {
            let new = c.data_mut().hal.tcp_sockets.insert(TcpSocket { kind: TcpKind::Stream(stream), blocking: true })?;
            let write = move |guest: &mut dyn Guest, retptr: u32| {
                let mut out = Writer::new(guest.memory(), retptr, 28)?;
                out.u32(4, new)?;
                write_address(&mut out, 8, remote)
            };
            finish(c, retptr, RESULT_ACCEPTED, Ok(write))
        }
        Err(e) => finish(c, retptr, RESULT_ACCEPTED, Err::<fn(&mut dyn Guest, u32) -> _, _>(e)),
    }
}

fn with_stream<T>(c: &mut Caller<'_, WorkloadCtx>, handle: u32, f: impl FnOnce(&TcpStream, bool) -> Result<T, SocketError>) -> Result<Result<T, SocketError>, AbiError> {
    let socket = c.data_mut().hal.tcp_sockets.get_mut(handle)?;
    Ok(match &socket.kind {
        TcpKind::Stream(stream) => f(stream, socket.blocking),
        TcpKind::Listener(_) => Err(SocketError::NotConnected),
    })
}

fn tcp_send(c: &mut Caller<'_, WorkloadCtx>, handle: u32, ptr: u32, len: u32, retptr: u32) -> Result<(), AbiError> {
    let data = {
        let mut guest = CallerGuest::new(c)?;
        let bytes = lift_bytes(guest.memory(), ptr, len)?;
        let mut data = Vec::new();
        data.try_reserve_exact(bytes.len()).map_err(|_| AbiError::OutOfBounds { ptr, len })?;
        data.extend_from_slice(bytes);
        data
    };
    let sent = with_stream(c, handle, |stream, blocking| {
        if blocking {
            // A blocking send queues everything, as a blocking POSIX send does.
            let mut sent = 0;
            while sent < data.len() {
                sent += net::block_on(None, || stream.send(&data[sent..]))?;
            }
            Ok(sent)
        } else {
            stream.send(&data)
        }
    })?;
    let write = move |guest: &mut dyn Guest, retptr: u32| Writer::new(guest.memory(), retptr, 16)?.u64(8, sent.unwrap_or(0) as u64);
    finish(c, retptr, RESULT_U64, sent.map(|_| write))
}

fn tcp_receive(c: &mut Caller<'_, WorkloadCtx>, handle: u32, max: u64, retptr: u32) -> Result<(), AbiError> {
    let mut buffer = vec![0u8; max.min(MAX_RECEIVE) as usize];
    let received = with_stream(c, handle, |stream, blocking| {
        if buffer.is_empty() {
            return Ok(0);
        }
        if blocking { net::block_on(None, || stream.receive(&mut buffer)) } else { stream.receive(&mut buffer) }
    })?;
    let result = received.map(|n| {
        buffer.truncate(n);
        write_bytes_at(4, buffer)
    });
    finish(c, retptr, RESULT_LIST, result)
}

fn tcp_shutdown(c: &mut Caller<'_, WorkloadCtx>, handle: u32, how: i32, retptr: u32) -> Result<(), AbiError> {
    let how = lift_enum(how, 3)?;
    let result = with_stream(c, handle, |stream, _| if how == 0 { Ok(()) } else { stream.shutdown_send() })?;
    finish(c, retptr, RESULT_LIST, result.map(|()| write_unit()))
}

fn tcp_address(c: &mut Caller<'_, WorkloadCtx>, handle: u32, remote: bool, retptr: u32) -> Result<(), AbiError> {
    let socket = c.data_mut().hal.tcp_sockets.get_mut(handle)?;
    let address = match (&socket.kind, remote) {
        (TcpKind::Listener(l), false) => Ok(l.local_address()),
        (TcpKind::Listener(_), true) => Err(SocketError::NotConnected),
        (TcpKind::Stream(s), false) => s.local_address(),
        (TcpKind::Stream(s), true) => s.remote_address(),
    };
    let write = |address: SocketAddr| move |guest: &mut dyn Guest, retptr: u32| write_address(&mut Writer::new(guest.memory(), retptr, 24)?, 4, address);
    finish(c, retptr, RESULT_ADDRESS, address.map(write))
}

fn udp_bind(c: &mut Caller<'_, WorkloadCtx>, local: Result<SocketAddr, AbiError>, retptr: u32) -> Result<(), AbiError> {
    let local = local?;
    let quota = quota(c);
    match net::UdpSocket::bind(local, &quota) {
        Ok(socket) => {
            let handle = c.data_mut().hal.udp_sockets.insert(UdpSocket { socket, blocking: true })?;
            finish(c, retptr, RESULT_HANDLE, Ok(write_u32_at(4, handle)))
        }
        Err(e) => finish(c, retptr, RESULT_HANDLE, Err::<fn(&mut dyn Guest, u32) -> _, _>(e)),
    }
}

fn udp_send_to(c: &mut Caller<'_, WorkloadCtx>, handle: u32, (ptr, len): (u32, u32), remote: Result<SocketAddr, AbiError>, retptr: u32) -> Result<(), AbiError> {
    let remote = remote?;
    let sent = {
        let mut guest = CallerGuest::new(c)?;
        let (memory, ctx) = guest.memory_and_ctx();
        let data = lift_bytes(memory, ptr, len)?;
        let socket = ctx.hal.udp_sockets.get_mut(handle)?;
        if socket.blocking {
            net::block_on(None, || socket.socket.send_to(data, remote))
        } else {
            socket.socket.send_to(data, remote)
        }
    };
    let write = move |n: usize| move |guest: &mut dyn Guest, retptr: u32| Writer::new(guest.memory(), retptr, 16)?.u64(8, n as u64);
    finish(c, retptr, RESULT_U64, sent.map(write))
}

fn udp_receive_from(c: &mut Caller<'_, WorkloadCtx>, handle: u32, max: u64, retptr: u32) -> Result<(), AbiError> {
    let mut buffer = vec![0u8; max.min(MAX_RECEIVE) as usize];
    let socket = c.data_mut().hal.udp_sockets.get_mut(handle)?;
    let received = if socket.blocking {
        net::block_on(None, || socket.socket.receive_from(&mut buffer))
    } else {
        socket.socket.receive_from(&mut buffer)
    };
    let result = received.map(|(n, from)| {
        buffer.truncate(n);
        move |guest: &mut dyn Guest, retptr: u32| {
            let list = lower_bytes(guest, &buffer)?;
            let mut out = Writer::new(guest.memory(), retptr, 32)?;
            out.list(4, list)?;
            write_address(&mut out, 12, from)
        }
    });
    finish(c, retptr, RESULT_DATAGRAM, result)
}

fn udp_local_address(c: &mut Caller<'_, WorkloadCtx>, handle: u32, retptr: u32) -> Result<(), AbiError> {
    let address = c.data_mut().hal.udp_sockets.get_mut(handle)?.socket.local_address();
    let write = |address: SocketAddr| move |guest: &mut dyn Guest, retptr: u32| write_address(&mut Writer::new(guest.memory(), retptr, 24)?, 4, address);
    finish(c, retptr, RESULT_ADDRESS, address.map(write))
}

/// `resolve: func(name: string) -> result<list<ip-address>, socket-error>`.
fn resolve(c: &mut Caller<'_, WorkloadCtx>, ptr: u32, len: u32, retptr: u32) -> Result<(), AbiError> {
    let name = {
        let mut guest = CallerGuest::new(c)?;
        alloc::string::String::from(lift_string(guest.memory(), ptr, len)?)
    };
    let addresses = net::resolve(&name);
    let write = |addresses: Vec<IpAddr>| {
        move |guest: &mut dyn Guest, retptr: u32| {
            // list<ip-address>: 18-byte elements, align 2.
            let count = addresses.len() as u32;
            let list_ptr = guest.realloc(2, count * 18)?;
            let mut out = Writer::new(guest.memory(), list_ptr, count * 18)?;
            for (i, ip) in addresses.iter().enumerate() {
                write_ip(&mut out, i as u32 * 18, *ip)?;
            }
            Writer::new(guest.memory(), retptr, 12)?.list(4, (list_ptr, count))
        }
    };
    finish(c, retptr, RESULT_LIST, addresses.map(write))
}

/// Turns an ABI violation into a trap naming the import.
fn t(name: &'static str) -> impl Fn(AbiError) -> Error {
    move |e| trap(name, e)
}

pub fn add_to_linker(linker: &mut Linker<WorkloadCtx>) -> Result<(), wasmi::errors::LinkerError> {
    type C<'a> = Caller<'a, WorkloadCtx>;
    linker.func_wrap(
        MODULE,
        "[static]tcp-socket.connect",
        |mut c: C, k: i32, a: i32, b: i32, d: i32, e: i32, f: i32, g: i32, h: i32, i: i32, port: i32, ret: u32| -> Result<(), Error> {
            tcp_connect(&mut c, lift_address((k, [a, b, d, e, f, g, h, i]), port), ret).map_err(t("sockets.tcp-socket.connect"))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "[static]tcp-socket.listen",
        |mut c: C, k: i32, a: i32, b: i32, d: i32, e: i32, f: i32, g: i32, h: i32, i: i32, port: i32, backlog: u32, ret: u32| -> Result<(), Error> {
            tcp_listen(&mut c, lift_address((k, [a, b, d, e, f, g, h, i]), port), backlog, ret).map_err(t("sockets.tcp-socket.listen"))
        },
    )?;
    linker.func_wrap(MODULE, "[method]tcp-socket.accept", |mut c: C, h: u32, ret: u32| -> Result<(), Error> {
        tcp_accept(&mut c, h, ret).map_err(t("sockets.tcp-socket.accept"))
    })?;
    linker.func_wrap(MODULE, "[method]tcp-socket.send", |mut c: C, h: u32, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        tcp_send(&mut c, h, p, l, ret).map_err(t("sockets.tcp-socket.send"))
    })?;
    linker.func_wrap(MODULE, "[method]tcp-socket.receive", |mut c: C, h: u32, max: u64, ret: u32| -> Result<(), Error> {
        tcp_receive(&mut c, h, max, ret).map_err(t("sockets.tcp-socket.receive"))
    })?;
    linker.func_wrap(MODULE, "[method]tcp-socket.shutdown", |mut c: C, h: u32, how: i32, ret: u32| -> Result<(), Error> {
        tcp_shutdown(&mut c, h, how, ret).map_err(t("sockets.tcp-socket.shutdown"))
    })?;
    linker.func_wrap(MODULE, "[method]tcp-socket.set-blocking", |mut c: C, h: u32, blocking: i32| -> Result<(), Error> {
        let socket = c.data_mut().hal.tcp_sockets.get_mut(h).map_err(t("sockets.tcp-socket.set-blocking"))?;
        socket.blocking = blocking != 0;
        Ok(())
    })?;
    linker.func_wrap(MODULE, "[method]tcp-socket.local-address", |mut c: C, h: u32, ret: u32| -> Result<(), Error> {
        tcp_address(&mut c, h, false, ret).map_err(t("sockets.tcp-socket.local-address"))
    })?;
    linker.func_wrap(MODULE, "[method]tcp-socket.remote-address", |mut c: C, h: u32, ret: u32| -> Result<(), Error> {
        tcp_address(&mut c, h, true, ret).map_err(t("sockets.tcp-socket.remote-address"))
    })?;
    linker.func_wrap(MODULE, "[resource-drop]tcp-socket", |mut c: C, h: u32| -> Result<(), Error> {
        c.data_mut().hal.tcp_sockets.remove(h).map(drop).map_err(t("sockets.tcp-socket drop"))
    })?;
    linker.func_wrap(
        MODULE,
        "[static]udp-socket.bind",
        |mut c: C, k: i32, a: i32, b: i32, d: i32, e: i32, f: i32, g: i32, h: i32, i: i32, port: i32, ret: u32| -> Result<(), Error> {
            udp_bind(&mut c, lift_address((k, [a, b, d, e, f, g, h, i]), port), ret).map_err(t("sockets.udp-socket.bind"))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "[method]udp-socket.send-to",
        |mut c: C, s: u32, p: u32, l: u32, k: i32, a: i32, b: i32, d: i32, e: i32, f: i32, g: i32, h: i32, i: i32, port: i32, ret: u32| -> Result<(), Error> {
            udp_send_to(&mut c, s, (p, l), lift_address((k, [a, b, d, e, f, g, h, i]), port), ret).map_err(t("sockets.udp-socket.send-to"))
        },
    )?;
    linker.func_wrap(MODULE, "[method]udp-socket.receive-from", |mut c: C, h: u32, max: u64, ret: u32| -> Result<(), Error> {
        udp_receive_from(&mut c, h, max, ret).map_err(t("sockets.udp-socket.receive-from"))
    })?;
    linker.func_wrap(MODULE, "[method]udp-socket.set-blocking", |mut c: C, h: u32, blocking: i32| -> Result<(), Error> {
        let socket = c.data_mut().hal.udp_sockets.get_mut(h).map_err(t("sockets.udp-socket.set-blocking"))?;
        socket.blocking = blocking != 0;
        Ok(())
    })?;
    linker.func_wrap(MODULE, "[method]udp-socket.local-address", |mut c: C, h: u32, ret: u32| -> Result<(), Error> {
        udp_local_address(&mut c, h, ret).map_err(t("sockets.udp-socket.local-address"))
    })?;
    linker.func_wrap(MODULE, "[resource-drop]udp-socket", |mut c: C, h: u32| -> Result<(), Error> {
        c.data_mut().hal.udp_sockets.remove(h).map(drop).map_err(t("sockets.udp-socket drop"))
    })?;
    linker.func_wrap(MODULE, "resolve", |mut c: C, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        resolve(&mut c, p, l, ret).map_err(t("sockets.resolve"))
    })?;
    Ok(())
}
