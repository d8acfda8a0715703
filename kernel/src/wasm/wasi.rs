//! WASI preview 1 (`wasi_snapshot_preview1`), the part a command-line program needs:
//! arguments, environment, stdio, clocks, random numbers, sleeping, exit, and TCP
//! sockets preopened with `--tcplisten` (`wasi_sockets`). Every other
//! preview-1 function is defined with its exact signature and answers `ENOSYS`, so an
//! ordinary `wasm32-wasip1` program links, and a call it cannot make fails cleanly.
//!
//! Layouts and constants: WebAssembly/WASI `legacy/preview1/witx/typenames.witx` and
//! `wasi_snapshot_preview1.witx`.

use super::guest_memory::{element, field, GuestMemory};
use super::runner::WorkloadCtx;
use super::wasi_sockets::{SocketTable, FIRST_SOCKET_FD};
use crate::{channel, random, time};
use alloc::vec::Vec;
use halcyon_hal::channel::Stream;
use halcyon_hal::platform::TeeKind;
use wasmi::errors::LinkerError;
use wasmi::{Caller, Error, Extern, FuncType, Linker, Val, ValType};

const MODULE: &str = "wasi_snapshot_preview1";

/// A WASI errno (`typenames.witx`, `$errno`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub u16);

impl Errno {
    pub const SUCCESS: Errno = Errno(0);
    pub const BADF: Errno = Errno(8);
    pub const FAULT: Errno = Errno(21);
    pub const INVAL: Errno = Errno(28);
    pub const NOMEM: Errno = Errno(48);
    pub const NOSYS: Errno = Errno(52);
    pub const NOTSUP: Errno = Errno(58);
    pub const OVERFLOW: Errno = Errno(61);
    pub const SPIPE: Errno = Errno(70);
}

// `$clockid`
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const CLOCK_PROCESS_CPUTIME: u32 = 2;
const CLOCK_THREAD_CPUTIME: u32 = 3;
// `$filetype`
const FILETYPE_CHARACTER_DEVICE: u8 = 2;
// `$rights` bits
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;
const RIGHT_FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
const RIGHT_POLL_FD_READWRITE: u64 = 1 << 27;
const RIGHT_SOCK_SHUTDOWN: u64 = 1 << 28;
const RIGHT_SOCK_ACCEPT: u64 = 1 << 29;
// `$eventtype`
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
// `$subclockflags` / `$eventrwflags`
const SUBSCRIPTION_CLOCK_ABSTIME: u16 = 1 << 0;
const EVENT_FD_READWRITE_HANGUP: u16 = 1 << 0;
const SUBSCRIPTION_SIZE: u32 = 48;
const EVENT_SIZE: u32 = 32;
const IOVEC_SIZE: u32 = 8;
const FDSTAT_SIZE: u32 = 24;
/// Bytes `poll_oneoff` reports writable on stdout/stderr (the channel never blocks long).
const STDIO_WRITE_WINDOW: u64 = 64 * 1024;

/// Per-workload WASI state.
pub struct WasiCtx {
    workload: u8,
    /// NUL-terminated, as `args_get` hands them out.
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    started_ns: u64,
    /// Socket descriptors, fd 3 onwards (preopened listeners first).
    pub sockets: SocketTable,
}

fn nul_terminated(items: &[&str]) -> Vec<Vec<u8>> {
    items
        .iter()
        .map(|s| {
            let mut v = Vec::with_capacity(s.len() + 1);
            v.extend_from_slice(s.as_bytes());
            v.push(0);
            v
        })
        .collect()
}

impl WasiCtx {
    /// Fails when a preopened listener cannot be opened (no network, port in use).
    pub fn new(workload: u8, args: &[&str], env: &[&str], tcp_listen: &[&str], tee: TeeKind) -> Result<Self, crate::net::socket::SocketError> {
        let mut env = nul_terminated(env);
        // Workloads can tell where they run before the HAL capabilities interface exists.
        if !env.iter().any(|e| e.starts_with(b"HALCYON_PLATFORM=")) {
            env.extend(nul_terminated(&[&alloc::format!("HALCYON_PLATFORM={tee}")]));
        }
        let sockets = SocketTable::new(tcp_listen)?;
        Ok(Self { workload, args: nul_terminated(args), env, started_ns: time::monotonic_ns(), sockets })
    }
}

/// Splits the caller into its exported linear memory and the store data.
fn memory_and_ctx<'a>(
    caller: &'a mut Caller<'_, WorkloadCtx>,
) -> Result<(GuestMemory<'a>, &'a mut WorkloadCtx), Errno> {
    let memory = caller.get_export("memory").and_then(Extern::into_memory).ok_or(Errno::FAULT)?;
    let (bytes, ctx) = memory.data_and_store_mut(caller);
    Ok((GuestMemory::new(bytes), ctx))
}

fn errno_result(result: Result<(), Errno>) -> Result<i32, Error> {
    Ok(i32::from(match result {
        Ok(()) => Errno::SUCCESS.0,
        Err(e) => e.0,
    }))
}

fn sizes_get(mut caller: Caller<'_, WorkloadCtx>, count_ptr: u32, size_ptr: u32, env: bool) -> Result<(), Errno> {
    let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
    let items = if env { &ctx.wasi.env } else { &ctx.wasi.args };
    let count = u32::try_from(items.len()).map_err(|_| Errno::OVERFLOW)?;
    let size = items.iter().map(Vec::len).sum::<usize>();
    let size = u32::try_from(size).map_err(|_| Errno::OVERFLOW)?;
    mem.write_u32(count_ptr, count)?;
    mem.write_u32(size_ptr, size)
}

fn strings_get(mut caller: Caller<'_, WorkloadCtx>, ptrs: u32, buf: u32, env: bool) -> Result<(), Errno> {
    let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
    let items = if env { &ctx.wasi.env } else { &ctx.wasi.args };
    let mut offset = buf;
    for (i, item) in items.iter().enumerate() {
        mem.write_u32(element(ptrs, i as u32, 4)?, offset)?;
        mem.write(offset, item)?;
        offset = offset.checked_add(item.len() as u32).ok_or(Errno::FAULT)?;
    }
    Ok(())
}

fn clock_now(ctx: &WorkloadCtx, id: u32) -> Result<u64, Errno> {
    match id {
        CLOCK_REALTIME => time::wall_ns().ok_or(Errno::NOTSUP),
        CLOCK_MONOTONIC => Ok(time::monotonic_ns()),
        // One workload runs at a time on the CPU, so its CPU time is its run time.
        CLOCK_PROCESS_CPUTIME | CLOCK_THREAD_CPUTIME => {
            Ok(time::monotonic_ns().saturating_sub(ctx.wasi.started_ns))
        }
        _ => Err(Errno::INVAL),
    }
}

fn fd_write(mut caller: Caller<'_, WorkloadCtx>, fd: u32, iovs: u32, iovs_len: u32, nwritten: u32) -> Result<(), Errno> {
    let stream = match fd {
        1 => Stream::Stdout,
        2 => Stream::Stderr,
        0 => return Err(Errno::BADF),
        _ => {
            let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
            let written = ctx.wasi.sockets.write(&mem, fd, iovs, iovs_len)?;
            return mem.write_u32(nwritten, written);
        }
    };
    let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
    // Check every iovec before writing any, so a bad one fails the call without a
    // partial write the workload was told failed.
    let mut total: u32 = 0;
    for i in 0..iovs_len {
        let entry = element(iovs, i, IOVEC_SIZE)?;
        let (buf, len) = (mem.read_u32(entry)?, mem.read_u32(field(entry, 4)?)?);
        mem.slice(buf, len)?;
        total = total.checked_add(len).ok_or(Errno::OVERFLOW)?;
    }
    for i in 0..iovs_len {
        let entry = element(iovs, i, IOVEC_SIZE)?;
        let data = mem.slice(mem.read_u32(entry)?, mem.read_u32(field(entry, 4)?)?)?;
        channel::output(stream, ctx.wasi.workload, data);
    }
    mem.write_u32(nwritten, total)
}

fn fd_read(mut caller: Caller<'_, WorkloadCtx>, fd: u32, iovs: u32, iovs_len: u32, nread: u32) -> Result<(), Errno> {
    if fd >= FIRST_SOCKET_FD {
        let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
        let read = ctx.wasi.sockets.read(&mut mem, fd, iovs, iovs_len)?;
        return mem.write_u32(nread, read);
    }
    if fd != 0 {
        return Err(Errno::BADF);
    }
    // Standard input is empty: every read is end-of-file.
    let (mut mem, _) = memory_and_ctx(&mut caller)?;
    mem.write_u32(nread, 0)
}

fn fd_fdstat_get(mut caller: Caller<'_, WorkloadCtx>, fd: u32, stat: u32) -> Result<(), Errno> {
    let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
    let (filetype, flags, rights) = match fd {
        0 => (FILETYPE_CHARACTER_DEVICE, 0, RIGHT_FD_READ | RIGHT_POLL_FD_READWRITE),
        1 | 2 => (FILETYPE_CHARACTER_DEVICE, 0, RIGHT_FD_WRITE | RIGHT_POLL_FD_READWRITE),
        _ => {
            let (filetype, flags) = ctx.wasi.sockets.fdstat(fd)?;
            (filetype, flags, RIGHT_FD_READ | RIGHT_FD_WRITE | RIGHT_POLL_FD_READWRITE | RIGHT_SOCK_SHUTDOWN | RIGHT_SOCK_ACCEPT | RIGHT_FD_FDSTAT_SET_FLAGS)
        }
    };
    mem.slice_mut(stat, FDSTAT_SIZE)?.fill(0);
    mem.write_u8(stat, filetype)?;
    mem.write_u16(field(stat, 2)?, flags)?;
    mem.write_u64(field(stat, 8)?, rights)?;
    mem.write_u64(field(stat, 16)?, 0)
}

fn clock_res_get(mut caller: Caller<'_, WorkloadCtx>, id: u32, res: u32) -> Result<(), Errno> {
    let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
    clock_now(ctx, id)?;
    mem.write_u64(res, 1)
}

fn clock_time_get(mut caller: Caller<'_, WorkloadCtx>, id: u32, _precision: u64, out: u32) -> Result<(), Errno> {
    let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
    let now = clock_now(ctx, id)?;
    mem.write_u64(out, now)
}

fn random_get(mut caller: Caller<'_, WorkloadCtx>, buf: u32, len: u32) -> Result<(), Errno> {
    let (mut mem, _) = memory_and_ctx(&mut caller)?;
    random::fill(mem.slice_mut(buf, len)?).map_err(|_| Errno::NOTSUP)
}

/// One parsed `$subscription`.
struct Subscription {
    userdata: u64,
    kind: SubscriptionKind,
}

enum SubscriptionKind {
    /// Monotonic deadline in ns, or the error to report for a bad clock.
    Clock(Result<u64, Errno>),
    FdRead(u32),
    FdWrite(u32),
    Unknown,
}

fn read_subscription(mem: &GuestMemory<'_>, ctx: &WorkloadCtx, at: u32) -> Result<Subscription, Errno> {
    let userdata = mem.read_u64(at)?;
    let kind = match mem.slice(field(at, 8)?, 1)?[0] {
        EVENTTYPE_CLOCK => {
            let id = mem.read_u32(field(at, 16)?)?;
            let timeout = mem.read_u64(field(at, 24)?)?;
            let flags = mem.read_u16(field(at, 40)?)?;
            SubscriptionKind::Clock(clock_now(ctx, id).map(|now| {
                let mono_now = time::monotonic_ns();
                if flags & SUBSCRIPTION_CLOCK_ABSTIME != 0 {
                    // Absolute time on clock `id`: convert to a monotonic deadline.
                    mono_now.saturating_add(timeout.saturating_sub(now))
                } else {
                    mono_now.saturating_add(timeout)
                }
            }))
        }
        EVENTTYPE_FD_READ => SubscriptionKind::FdRead(mem.read_u32(field(at, 16)?)?),
        EVENTTYPE_FD_WRITE => SubscriptionKind::FdWrite(mem.read_u32(field(at, 16)?)?),
        _ => SubscriptionKind::Unknown,
    };
    Ok(Subscription { userdata, kind })
}

fn write_event(mem: &mut GuestMemory<'_>, at: u32, sub: &Subscription, error: Errno, kind: u8, nbytes: u64, flags: u16) -> Result<(), Errno> {
    mem.slice_mut(at, EVENT_SIZE)?.fill(0);
    mem.write_u64(at, sub.userdata)?;
    mem.write_u16(field(at, 8)?, error.0)?;
    mem.write_u8(field(at, 10)?, kind)?;
    mem.write_u64(field(at, 16)?, nbytes)?;
    mem.write_u16(field(at, 24)?, flags)
}

fn poll_oneoff(mut caller: Caller<'_, WorkloadCtx>, subs: u32, events: u32, count: u32, nevents: u32) -> Result<(), Errno> {
    if count == 0 {
        return Err(Errno::INVAL);
    }
    let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
    // Both arrays must lie in memory before anything is parsed; this also bounds `count`
    // by the memory size, so the vector below cannot be made arbitrarily large.
    mem.slice(subs, count.checked_mul(SUBSCRIPTION_SIZE).ok_or(Errno::FAULT)?)?;
    mem.slice(events, count.checked_mul(EVENT_SIZE).ok_or(Errno::FAULT)?)?;
    // Fallible: a workload may ask for millions of subscriptions, and a failed kernel
    // allocation must not stop the VM.
    let mut subscriptions = Vec::new();
    subscriptions.try_reserve_exact(count as usize).map_err(|_| Errno::NOMEM)?;
    for i in 0..count {
        subscriptions.push(read_subscription(&mem, ctx, element(subs, i, SUBSCRIPTION_SIZE)?)?);
    }

    // stdio is always ready and bad descriptors fail at once; sockets are ready when
    // the network says so. Until something is ready, wait for the earliest clock while
    // polling the network.
    let earliest = subscriptions
        .iter()
        .filter_map(|s| match s.kind {
            SubscriptionKind::Clock(Ok(deadline)) => Some(deadline),
            _ => None,
        })
        .min();
    let sockets = &mut ctx.wasi.sockets;
    let mut ready_now = |sub: &Subscription| match &sub.kind {
        SubscriptionKind::Clock(Ok(deadline)) => *deadline <= time::monotonic_ns(),
        SubscriptionKind::FdRead(fd) if *fd >= FIRST_SOCKET_FD => sockets.read_ready(*fd).unwrap_or(true),
        SubscriptionKind::FdWrite(fd) if *fd >= FIRST_SOCKET_FD => sockets.write_ready(*fd).unwrap_or(true),
        _ => true,
    };
    let has_sockets = subscriptions.iter().any(|s| matches!(s.kind, SubscriptionKind::FdRead(fd) | SubscriptionKind::FdWrite(fd) if fd >= FIRST_SOCKET_FD));
    if !has_sockets {
        if !subscriptions.iter().any(&mut ready_now) {
            if let Some(deadline) = earliest {
                time::wait_until(deadline);
            }
        }
    } else {
        while !subscriptions.iter().any(&mut ready_now) {
            crate::sched::yield_now();
        }
    }

    let now = time::monotonic_ns();
    let mut written = 0u32;
    for sub in &subscriptions {
        let at = element(events, written, EVENT_SIZE)?;
        let ready = match &sub.kind {
            SubscriptionKind::Clock(Ok(deadline)) if *deadline <= now => {
                Some((Errno::SUCCESS, EVENTTYPE_CLOCK, 0, 0))
            }
            SubscriptionKind::Clock(Ok(_)) => None,
            SubscriptionKind::Clock(Err(e)) => Some((*e, EVENTTYPE_CLOCK, 0, 0)),
            SubscriptionKind::FdRead(0) => {
                Some((Errno::SUCCESS, EVENTTYPE_FD_READ, 0, EVENT_FD_READWRITE_HANGUP))
            }
            SubscriptionKind::FdWrite(1 | 2) => {
                Some((Errno::SUCCESS, EVENTTYPE_FD_WRITE, STDIO_WRITE_WINDOW, 0))
            }
            SubscriptionKind::FdRead(fd) if ctx.wasi.sockets.is_open(*fd) => {
                ctx.wasi.sockets.read_ready(*fd).unwrap_or(false).then_some((Errno::SUCCESS, EVENTTYPE_FD_READ, 1, 0))
            }
            SubscriptionKind::FdWrite(fd) if ctx.wasi.sockets.is_open(*fd) => {
                ctx.wasi.sockets.write_ready(*fd).unwrap_or(false).then_some((Errno::SUCCESS, EVENTTYPE_FD_WRITE, 1, 0))
            }
            SubscriptionKind::FdRead(_) => Some((Errno::BADF, EVENTTYPE_FD_READ, 0, 0)),
            SubscriptionKind::FdWrite(_) => Some((Errno::BADF, EVENTTYPE_FD_WRITE, 0, 0)),
            SubscriptionKind::Unknown => Some((Errno::INVAL, EVENTTYPE_CLOCK, 0, 0)),
        };
        if let Some((error, kind, nbytes, flags)) = ready {
            write_event(&mut mem, at, sub, error, kind, nbytes, flags)?;
            written += 1;
        }
    }
    mem.write_u32(nevents, written)
}

fn fd_prestat(_fd: u32) -> Result<(), Errno> {
    // No preopened directories (yet): tells the guest's libc its preopen scan is done.
    Err(Errno::BADF)
}

fn fd_close(mut caller: Caller<'_, WorkloadCtx>, fd: u32) -> Result<(), Errno> {
    if fd <= 2 {
        return Ok(());
    }
    caller.data_mut().wasi.sockets.close(fd)
}

fn fd_fdstat_set_flags(mut caller: Caller<'_, WorkloadCtx>, fd: u32, flags: u32) -> Result<(), Errno> {
    let flags = u16::try_from(flags).map_err(|_| Errno::INVAL)?;
    match fd {
        0..=2 => Err(Errno::NOTSUP),
        _ => caller.data_mut().wasi.sockets.set_flags(fd, flags),
    }
}

fn sock_accept(mut caller: Caller<'_, WorkloadCtx>, fd: u32, flags: u32, new_fd: u32) -> Result<(), Errno> {
    let flags = u16::try_from(flags).map_err(|_| Errno::INVAL)?;
    let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
    mem.slice(new_fd, 4)?;
    let accepted = ctx.wasi.sockets.accept(fd, flags)?;
    mem.write_u32(new_fd, accepted)
}

/// `sock_recv(fd, ri_data, ri_data_len, ri_flags, ro_datalen, ro_flags)`; `ri_flags`
/// (peek, wait-all) are not supported.
fn sock_recv(mut caller: Caller<'_, WorkloadCtx>, fd: u32, iovs: u32, iovs_len: u32, flags: u32, out_len: u32, out_flags: u32) -> Result<(), Errno> {
    if flags != 0 {
        return Err(Errno::NOTSUP);
    }
    let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
    mem.slice(out_len, 4)?;
    mem.slice(out_flags, 2)?;
    let read = ctx.wasi.sockets.read(&mut mem, fd, iovs, iovs_len)?;
    mem.write_u32(out_len, read)?;
    mem.write_u16(out_flags, 0)
}

fn sock_send(mut caller: Caller<'_, WorkloadCtx>, fd: u32, iovs: u32, iovs_len: u32, _flags: u32, out_len: u32) -> Result<(), Errno> {
    let (mut mem, ctx) = memory_and_ctx(&mut caller)?;
    mem.slice(out_len, 4)?;
    let written = ctx.wasi.sockets.write(&mem, fd, iovs, iovs_len)?;
    mem.write_u32(out_len, written)
}

fn sock_shutdown(mut caller: Caller<'_, WorkloadCtx>, fd: u32, how: u32) -> Result<(), Errno> {
    caller.data_mut().wasi.sockets.shutdown(fd, how)
}

fn fd_seek(fd: u32) -> Result<(), Errno> {
    if fd <= 2 { Err(Errno::SPIPE) } else { Err(Errno::BADF) }
}

/// Preview-1 functions that answer `ENOSYS`, with their exact core-wasm signatures
/// (`I` = i32, `L` = i64; all return an errno `i32`).
const UNSUPPORTED: &[(&str, &str)] = &[
    ("fd_advise", "ILLI"),
    ("fd_allocate", "ILL"),
    ("fd_datasync", "I"),
    ("fd_fdstat_set_rights", "ILL"),
    ("fd_filestat_get", "II"),
    ("fd_filestat_set_size", "IL"),
    ("fd_filestat_set_times", "ILLI"),
    ("fd_pread", "IIILI"),
    ("fd_pwrite", "IIILI"),
    ("fd_readdir", "IIILI"),
    ("fd_renumber", "II"),
    ("fd_sync", "I"),
    ("fd_tell", "II"),
    ("path_create_directory", "III"),
    ("path_filestat_get", "IIIII"),
    ("path_filestat_set_times", "IIIILLI"),
    ("path_link", "IIIIIII"),
    ("path_open", "IIIIILLII"),
    ("path_readlink", "IIIIII"),
    ("path_remove_directory", "III"),
    ("path_rename", "IIIIII"),
    ("path_symlink", "IIIII"),
    ("path_unlink_file", "III"),
    ("proc_raise", "I"),
];

fn signature(params: &str) -> FuncType {
    let params = params.bytes().map(|c| if c == b'L' { ValType::I64 } else { ValType::I32 });
    FuncType::new(params.collect::<Vec<_>>(), [ValType::I32])
}

/// Defines all of `wasi_snapshot_preview1` in `linker`.
pub fn add_to_linker(linker: &mut Linker<WorkloadCtx>) -> Result<(), LinkerError> {
    type C<'a> = Caller<'a, WorkloadCtx>;
    linker.func_wrap(MODULE, "args_sizes_get", |c: C, a: u32, b: u32| errno_result(sizes_get(c, a, b, false)))?;
    linker.func_wrap(MODULE, "args_get", |c: C, a: u32, b: u32| errno_result(strings_get(c, a, b, false)))?;
    linker.func_wrap(MODULE, "environ_sizes_get", |c: C, a: u32, b: u32| errno_result(sizes_get(c, a, b, true)))?;
    linker.func_wrap(MODULE, "environ_get", |c: C, a: u32, b: u32| errno_result(strings_get(c, a, b, true)))?;
    linker.func_wrap(MODULE, "fd_write", |c: C, fd: u32, iovs: u32, n: u32, out: u32| errno_result(fd_write(c, fd, iovs, n, out)))?;
    linker.func_wrap(MODULE, "fd_read", |c: C, fd: u32, iovs: u32, n: u32, out: u32| errno_result(fd_read(c, fd, iovs, n, out)))?;
    linker.func_wrap(MODULE, "fd_fdstat_get", |c: C, fd: u32, out: u32| errno_result(fd_fdstat_get(c, fd, out)))?;
    linker.func_wrap(MODULE, "fd_prestat_get", |_: C, fd: u32, _out: u32| errno_result(fd_prestat(fd)))?;
    linker.func_wrap(MODULE, "fd_prestat_dir_name", |_: C, fd: u32, _p: u32, _l: u32| errno_result(fd_prestat(fd)))?;
    linker.func_wrap(MODULE, "fd_close", |c: C, fd: u32| errno_result(fd_close(c, fd)))?;
    linker.func_wrap(MODULE, "fd_fdstat_set_flags", |c: C, fd: u32, flags: u32| errno_result(fd_fdstat_set_flags(c, fd, flags)))?;
    linker.func_wrap(MODULE, "sock_accept", |c: C, fd: u32, flags: u32, out: u32| errno_result(sock_accept(c, fd, flags, out)))?;
    linker.func_wrap(MODULE, "sock_recv", |c: C, fd: u32, iovs: u32, n: u32, flags: u32, out: u32, out_flags: u32| {
        errno_result(sock_recv(c, fd, iovs, n, flags, out, out_flags))
    })?;
    linker.func_wrap(MODULE, "sock_send", |c: C, fd: u32, iovs: u32, n: u32, flags: u32, out: u32| errno_result(sock_send(c, fd, iovs, n, flags, out)))?;
    linker.func_wrap(MODULE, "sock_shutdown", |c: C, fd: u32, how: u32| errno_result(sock_shutdown(c, fd, how)))?;
    linker.func_wrap(MODULE, "fd_seek", |_: C, fd: u32, _o: i64, _w: u32, _out: u32| errno_result(fd_seek(fd)))?;
    linker.func_wrap(MODULE, "clock_res_get", |c: C, id: u32, out: u32| errno_result(clock_res_get(c, id, out)))?;
    linker.func_wrap(MODULE, "clock_time_get", |c: C, id: u32, p: u64, out: u32| errno_result(clock_time_get(c, id, p, out)))?;
    linker.func_wrap(MODULE, "random_get", |c: C, buf: u32, len: u32| errno_result(random_get(c, buf, len)))?;
    linker.func_wrap(MODULE, "poll_oneoff", |c: C, i: u32, o: u32, n: u32, out: u32| errno_result(poll_oneoff(c, i, o, n, out)))?;
    linker.func_wrap(MODULE, "sched_yield", |_: C| errno_result(Ok(())))?;
    linker.func_wrap(MODULE, "proc_exit", |_: C, code: i32| -> Result<(), Error> { Err(Error::i32_exit(code)) })?;
    for (name, params) in UNSUPPORTED {
        linker.func_new(MODULE, name, signature(params), |_, _: &[Val], results: &mut [Val]| {
            results[0] = Val::I32(i32::from(Errno::NOSYS.0));
            Ok(())
        })?;
    }
    Ok(())
}
