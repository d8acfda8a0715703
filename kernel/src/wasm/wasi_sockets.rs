//! WASI preview-1 sockets, as `wasmtime run --tcplisten` offers them: listening sockets
//! preopened as fd 3 onwards, `sock_accept`, reads and writes (`fd_read`/`fd_write`,
//! `sock_recv`/`sock_send`), `sock_shutdown`, `fd_close`, non-blocking mode through
//! `fd_fdstat_set_flags`, and readiness for `poll_oneoff`.
//!
//! Constants: WebAssembly/WASI `legacy/preview1/witx/typenames.witx`.

use super::guest_memory::{element, field, GuestMemory};
use super::wasi::Errno;
use crate::net::socket::{self, Quota, SocketError, TcpListener, TcpStream};
use alloc::rc::Rc;
use alloc::vec::Vec;

/// The first descriptor after stdio.
pub const FIRST_SOCKET_FD: u32 = 3;
/// `$fdflags::nonblock`.
pub const FDFLAGS_NONBLOCK: u16 = 1 << 2;
/// `$filetype::socket_stream`.
pub const FILETYPE_SOCKET_STREAM: u8 = 6;
/// `$sdflags`.
const SDFLAGS_WR: u32 = 1 << 1;
const IOVEC_SIZE: u32 = 8;
/// Most bytes one read copies out of the stack at a time.
const MAX_READ_CHUNK: u32 = 64 * 1024;

impl Errno {
    pub const ADDRINUSE: Errno = Errno(3);
    pub const ADDRNOTAVAIL: Errno = Errno(4);
    pub const AGAIN: Errno = Errno(6);
    pub const CONNREFUSED: Errno = Errno(14);
    pub const CONNRESET: Errno = Errno(15);
    pub const MFILE: Errno = Errno(33);
    pub const NOTCONN: Errno = Errno(53);
    pub const NOTSOCK: Errno = Errno(57);
    pub const TIMEDOUT: Errno = Errno(73);
}

impl From<SocketError> for Errno {
    fn from(e: SocketError) -> Self {
        match e {
            SocketError::WouldBlock => Errno::AGAIN,
            SocketError::Timeout => Errno::TIMEDOUT,
            SocketError::ConnectionRefused => Errno::CONNREFUSED,
            SocketError::ConnectionReset => Errno::CONNRESET,
            SocketError::NotConnected => Errno::NOTCONN,
            SocketError::AddressInUse => Errno::ADDRINUSE,
            SocketError::AddressNotAvailable | SocketError::NameUnresolvable => Errno::ADDRNOTAVAIL,
            SocketError::LimitExceeded(_) => Errno::MFILE,
            SocketError::InvalidArgument(_) => Errno::INVAL,
            SocketError::Unsupported(_) => Errno::NOTSUP,
        }
    }
}

pub enum Socket {
    Listener(TcpListener),
    Stream(TcpStream),
}

struct Entry {
    socket: Socket,
    nonblocking: bool,
}

/// A workload's socket descriptors (fd 3 onwards).
pub struct SocketTable {
    entries: Vec<Option<Entry>>,
    pub quota: Rc<Quota>,
}

impl SocketTable {
    /// Opens the preopened listeners; a bad address or a port in use stops the workload.
    pub fn new(listen: &[&str]) -> Result<Self, SocketError> {
        let mut table = Self { entries: Vec::new(), quota: Quota::new() };
        for address in listen {
            let address = address.parse().map_err(|_| SocketError::InvalidArgument("bad listen address"))?;
            let listener = TcpListener::bind(address, socket::MAX_BACKLOG, &table.quota)?;
            table.entries.push(Some(Entry { socket: Socket::Listener(listener), nonblocking: false }));
        }
        Ok(table)
    }

    fn entry(&mut self, fd: u32) -> Result<&mut Entry, Errno> {
        let index = fd.checked_sub(FIRST_SOCKET_FD).ok_or(Errno::BADF)? as usize;
        self.entries.get_mut(index).and_then(Option::as_mut).ok_or(Errno::BADF)
    }

    pub fn is_open(&mut self, fd: u32) -> bool {
        self.entry(fd).is_ok()
    }

    fn insert(&mut self, entry: Entry) -> u32 {
        let index = match self.entries.iter().position(Option::is_none) {
            Some(free) => {
                self.entries[free] = Some(entry);
                free
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        };
        index as u32 + FIRST_SOCKET_FD
    }

    pub fn close(&mut self, fd: u32) -> Result<(), Errno> {
        let index = fd.checked_sub(FIRST_SOCKET_FD).ok_or(Errno::BADF)? as usize;
        self.entries.get_mut(index).and_then(Option::take).map(drop).ok_or(Errno::BADF)
    }

    /// `fd_fdstat_get`: (filetype, fdflags).
    pub fn fdstat(&mut self, fd: u32) -> Result<(u8, u16), Errno> {
        let entry = self.entry(fd)?;
        Ok((FILETYPE_SOCKET_STREAM, if entry.nonblocking { FDFLAGS_NONBLOCK } else { 0 }))
    }

    /// `fd_fdstat_set_flags`: only `nonblock` means something for a socket.
    pub fn set_flags(&mut self, fd: u32, flags: u16) -> Result<(), Errno> {
        if flags & !FDFLAGS_NONBLOCK != 0 {
            return Err(Errno::NOTSUP);
        }
        self.entry(fd)?.nonblocking = flags & FDFLAGS_NONBLOCK != 0;
        Ok(())
    }

    /// `sock_accept`: a new descriptor for the next connection.
    pub fn accept(&mut self, fd: u32, flags: u16) -> Result<u32, Errno> {
        if flags & !FDFLAGS_NONBLOCK != 0 {
            return Err(Errno::INVAL);
        }
        let entry = self.entry(fd)?;
        let nonblocking = entry.nonblocking;
        let Socket::Listener(listener) = &mut entry.socket else { return Err(Errno::NOTSOCK) };
        let (stream, _remote) = if nonblocking {
            listener.accept()?
        } else {
            socket::block_on(None, || listener.accept())?
        };
        Ok(self.insert(Entry { socket: Socket::Stream(stream), nonblocking: flags & FDFLAGS_NONBLOCK != 0 }))
    }

    fn stream(&mut self, fd: u32) -> Result<(&TcpStream, bool), Errno> {
        let entry = self.entry(fd)?;
        match &entry.socket {
            Socket::Stream(s) => Ok((s, entry.nonblocking)),
            Socket::Listener(_) => Err(Errno::NOTCONN),
        }
    }

    pub fn shutdown(&mut self, fd: u32, how: u32) -> Result<(), Errno> {
        if how == 0 || how & !3 != 0 {
            return Err(Errno::INVAL);
        }
        let (stream, _) = self.stream(fd)?;
        if how & SDFLAGS_WR != 0 {
            stream.shutdown_send()?;
        }
        Ok(())
    }

    /// Reads into the iovecs at `iovs`; returns the bytes read (0: end of stream).
    pub fn read(&mut self, mem: &mut GuestMemory<'_>, fd: u32, iovs: u32, iovs_len: u32) -> Result<u32, Errno> {
        let (stream, nonblocking) = self.stream(fd)?;
        // The first non-empty iovec takes the data (a short read is always allowed).
        let mut target = None;
        for i in 0..iovs_len {
            let entry = element(iovs, i, IOVEC_SIZE)?;
            let (buf, len) = (mem.read_u32(entry)?, mem.read_u32(field(entry, 4)?)?);
            mem.slice(buf, len)?;
            if target.is_none() && len > 0 {
                target = Some((buf, len.min(MAX_READ_CHUNK)));
            }
        }
        let Some((buf, len)) = target else { return Ok(0) };
        let out = mem.slice_mut(buf, len)?;
        let n = if nonblocking { stream.receive(out)? } else { socket::block_on(None, || stream.receive(out))? };
        Ok(n as u32)
    }

    /// Writes the iovecs at `iovs`; returns the bytes queued (at least one unless
    /// non-blocking and the send buffer is full).
    pub fn write(&mut self, mem: &GuestMemory<'_>, fd: u32, iovs: u32, iovs_len: u32) -> Result<u32, Errno> {
        let (stream, nonblocking) = self.stream(fd)?;
        let mut slices = Vec::new();
        for i in 0..iovs_len {
            let entry = element(iovs, i, IOVEC_SIZE)?;
            let (buf, len) = (mem.read_u32(entry)?, mem.read_u32(field(entry, 4)?)?);
            slices.try_reserve(1).map_err(|_| Errno::NOMEM)?;
            slices.push(mem.slice(buf, len)?);
        }
        let mut total = 0u32;
        for data in slices {
            if data.is_empty() {
                continue;
            }
            let sent = if nonblocking || total > 0 {
                match stream.send(data) {
                    Err(SocketError::WouldBlock) if total > 0 => return Ok(total),
                    other => other?,
                }
            } else {
                socket::block_on(None, || stream.send(data))?
            };
            total += sent as u32;
            if sent < data.len() {
                break;
            }
        }
        Ok(total)
    }

    /// For `poll_oneoff`: `Some(nbytes)` when a read (or accept) would not block.
    pub fn read_ready(&mut self, fd: u32) -> Result<bool, Errno> {
        Ok(match &self.entry(fd)?.socket {
            Socket::Listener(l) => l.readable(),
            Socket::Stream(s) => s.readable(),
        })
    }

    pub fn write_ready(&mut self, fd: u32) -> Result<bool, Errno> {
        Ok(match &self.entry(fd)?.socket {
            Socket::Listener(_) => false,
            Socket::Stream(s) => s.writable(),
        })
    }
}
