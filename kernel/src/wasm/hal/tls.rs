//! `elastic:hal/tls`: TLS client and server sessions over HAL TCP sockets, and key
//! contexts whose private keys stay in the kernel (`crate::tls`).
//!
//! Canonical-ABI layouts (WIT in `wit/tls.wit`):
//! - `tls-error`: variant, size 16, align 4: case @0, payload @4: `socket-error`
//!   (case @4, string @8) or a string (ptr, len) @4; `closed` has none.
//! - `result<T, tls-error>`: case @0, payload at T's alignment: size 20 (align 4) for
//!   handles, lists and `_`; size 24 (align 8, payload @8) for `u64`.
//! - `client-config` flattened: server-name (2), trust (case, ptr, len), client-key
//!   (option case, handle), versions (2), cipher-suites (2) = 11 values.
//! - `server-config` flattened: key (1), client-trust (option case, trust case, ptr,
//!   len), versions (2), cipher-suites (2) = 9 values.
//! - `dtls-connect` flattens to 22 values > 16, so its arguments arrive in memory
//!   (`own<udp-socket>` first).

use super::abi::{trap, CallerGuest};
use super::result::{self, ErrorValue, GuestError, ResultLayout};
use crate::tls::certs::{certificates_from_pem, KeyContext};
use crate::tls::session::{ClientSettings, ServerSettings, Session, Trust, Version};
use crate::tls::TlsError;
use crate::wasm::runner::WorkloadCtx;
use alloc::string::String;
use alloc::vec::Vec;
use halcyon_hal::cabi::{checked_range, lift_bytes, lift_enum, lift_string, lower_byte_lists, lower_bytes, AbiError, Guest, Writer};
use wasmi::{Caller, Error, Linker};

const MODULE: &str = "elastic:hal/tls@0.1.0";
/// Most bytes one `receive` returns.
const MAX_RECEIVE: u64 = 64 * 1024;
/// Most items in one `list<string>` or `list<list<u8>>` argument.
const MAX_STRINGS: u32 = 256;

const DTLS_UNSUPPORTED: &str = "DTLS is not supported: rustls has none and no maintained no_std DTLS 1.2 implementation fits the kernel (see docs/TLS.md)";

/// `result<own<T>, tls-error>`, `result<list<u8>, tls-error>`, `result<_, tls-error>`.
const RESULT_4: (u32, u32, u32) = (20, 4, 4);
/// `result<u64, tls-error>`.
const RESULT_U64: (u32, u32, u32) = (24, 8, 8);

/// `tls-error` as the guest sees it: `socket` nests a `socket-error`.
impl GuestError for TlsError {
    fn to_guest(self) -> ErrorValue {
        match self {
            TlsError::Socket(e) => {
                let inner = e.to_guest();
                ErrorValue { case: 0, nested: Some(inner.case), message: inner.message }
            }
            TlsError::BadCertificate(m) => ErrorValue { case: 1, nested: None, message: Some(m) },
            TlsError::HandshakeFailed(m) => ErrorValue { case: 2, nested: None, message: Some(m) },
            TlsError::BadKeyMaterial(m) => ErrorValue { case: 3, nested: None, message: Some(m) },
            TlsError::Unsupported(m) => ErrorValue { case: 4, nested: None, message: Some(m) },
            TlsError::Closed => ErrorValue { case: 5, nested: None, message: None },
        }
    }
}

/// Writes `result<T, tls-error>` (`result::finish` with this interface's error).
fn finish(
    caller: &mut Caller<'_, WorkloadCtx>,
    retptr: u32,
    layout: ResultLayout,
    result: Result<impl FnOnce(&mut dyn Guest, u32) -> Result<(), AbiError>, TlsError>,
) -> Result<(), AbiError> {
    result::finish(caller, retptr, layout, result)
}

fn write_handle(handle: u32) -> impl FnOnce(&mut dyn Guest, u32) -> Result<(), AbiError> {
    move |guest, retptr| Writer::new(guest.memory(), retptr, 8)?.u32(4, handle)
}

fn no_payload<T>(result: Result<T, TlsError>) -> Result<impl FnOnce(&mut dyn Guest, u32) -> Result<(), AbiError>, TlsError> {
    result.map(|_| |_: &mut dyn Guest, _: u32| Ok(()))
}

fn read_u32(memory: &[u8], at: u32) -> Result<u32, AbiError> {
    let range = checked_range(at, 4, memory.len())?;
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&memory[range]);
    Ok(u32::from_le_bytes(bytes))
}

/// Lifts a `list<string>` (elements: ptr, len; 8 bytes, align 4).
fn lift_strings(memory: &[u8], ptr: u32, count: u32) -> Result<Vec<String>, AbiError> {
    if count > MAX_STRINGS {
        return Err(AbiError::TooLarge);
    }
    if !ptr.is_multiple_of(4) {
        return Err(AbiError::Misaligned { ptr, align: 4 });
    }
    checked_range(ptr, count * 8, memory.len())?;
    (0..count)
        .map(|i| {
            let (p, l) = (read_u32(memory, ptr + 8 * i)?, read_u32(memory, ptr + 8 * i + 4)?);
            lift_string(memory, p, l).map(String::from)
        })
        .collect()
}

/// Lifts a `list<list<u8>>` (elements: ptr, len; 8 bytes, align 4) as borrowed slices.
fn lift_byte_lists(memory: &[u8], ptr: u32, count: u32) -> Result<Vec<&[u8]>, AbiError> {
    if count > MAX_STRINGS {
        return Err(AbiError::TooLarge);
    }
    if !ptr.is_multiple_of(4) {
        return Err(AbiError::Misaligned { ptr, align: 4 });
    }
    checked_range(ptr, count * 8, memory.len())?;
    (0..count).map(|i| lift_bytes(memory, read_u32(memory, ptr + 8 * i)?, read_u32(memory, ptr + 8 * i + 4)?)).collect()
}

/// Lifts `list<protocol-version>` (u8 elements) into TLS versions; DTLS is dropped.
fn lift_versions(memory: &[u8], ptr: u32, len: u32) -> Result<(Vec<Version>, bool), AbiError> {
    let mut out = Vec::new();
    let bytes = lift_bytes(memory, ptr, len)?;
    for b in bytes {
        match lift_enum(i32::from(*b), 3)? {
            0 => out.push(Version::Tls12),
            1 => out.push(Version::Tls13),
            _ => {}
        }
    }
    Ok((out, !bytes.is_empty()))
}

/// Lifts `list<cipher-suite>` (u8 elements, three cases).
fn lift_suites(memory: &[u8], ptr: u32, len: u32) -> Result<Vec<u8>, AbiError> {
    lift_bytes(memory, ptr, len)?.iter().map(|b| lift_enum(i32::from(*b), 3).map(|v| v as u8)).collect()
}

/// A `trust` value: PEM texts, parsed (a parse failure is the workload's error).
fn lift_trust(memory: &[u8], case: i32, ptr: u32, len: u32) -> Result<Result<Trust, TlsError>, AbiError> {
    let case = lift_enum(case, 2)?;
    let texts = lift_strings(memory, ptr, len)?;
    let mut certs = Vec::new();
    for text in &texts {
        match certificates_from_pem(text) {
            Ok(mut c) => certs.append(&mut c),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(if case == 0 { Trust::Roots(certs) } else { Trust::Pinned(certs) }))
}

fn check_versions((versions, given): (Vec<Version>, bool)) -> Result<Vec<Version>, TlsError> {
    if given && versions.is_empty() {
        return Err(TlsError::Unsupported("no TLS version allowed (DTLS 1.2 is not available over TCP)".into()));
    }
    Ok(versions)
}

/// Takes the `own<tcp-socket>` argument out of the socket table.
fn take_stream(c: &mut Caller<'_, WorkloadCtx>, handle: u32) -> Result<Result<crate::net::socket::TcpStream, TlsError>, AbiError> {
    let socket = c.data_mut().hal.tcp_sockets.remove(handle)?;
    Ok(socket
        .into_stream()
        .ok_or(TlsError::Socket(crate::net::socket::SocketError::InvalidArgument("TLS needs a connected socket, not a listener"))))
}

type Flat11 = (u32, u32, i32, u32, u32, i32, u32, u32, u32, u32, u32);

fn connect(c: &mut Caller<'_, WorkloadCtx>, socket: u32, config: Flat11, retptr: u32) -> Result<(), AbiError> {
    let (name_ptr, name_len, trust_case, trust_ptr, trust_len, key_case, key_handle, ver_ptr, ver_len, suite_ptr, suite_len) = config;
    let settings = {
        let mut guest = CallerGuest::new(c)?;
        let (memory, ctx) = guest.memory_and_ctx();
        let server_name = String::from(lift_string(memory, name_ptr, name_len)?);
        let trust = lift_trust(memory, trust_case, trust_ptr, trust_len)?;
        let client_key = match lift_enum(key_case, 2)? {
            0 => None,
            _ => Some(ctx.hal.tls_keys.get(key_handle)?.parts()),
        };
        let versions = lift_versions(memory, ver_ptr, ver_len)?;
        let cipher_suites = lift_suites(memory, suite_ptr, suite_len)?;
        trust.and_then(|trust| Ok(ClientSettings { server_name, trust, client_key, versions: check_versions(versions)?, cipher_suites }))
    };
    let stream = take_stream(c, socket)?;
    let session = stream.and_then(|stream| settings.and_then(|settings| Session::connect(stream, settings)));
    insert_session(c, session, retptr)
}

type Flat9 = (u32, i32, i32, u32, u32, u32, u32, u32, u32);

fn accept(c: &mut Caller<'_, WorkloadCtx>, socket: u32, config: Flat9, retptr: u32) -> Result<(), AbiError> {
    let (key, trust_some, trust_case, trust_ptr, trust_len, ver_ptr, ver_len, suite_ptr, suite_len) = config;
    let settings = {
        let mut guest = CallerGuest::new(c)?;
        let (memory, ctx) = guest.memory_and_ctx();
        let key = ctx.hal.tls_keys.get(key)?.parts();
        let client_trust = match lift_enum(trust_some, 2)? {
            0 => Ok(None),
            _ => lift_trust(memory, trust_case, trust_ptr, trust_len)?.map(Some),
        };
        let versions = lift_versions(memory, ver_ptr, ver_len)?;
        let cipher_suites = lift_suites(memory, suite_ptr, suite_len)?;
        client_trust.and_then(|client_trust| Ok(ServerSettings { key, client_trust, versions: check_versions(versions)?, cipher_suites }))
    };
    let stream = take_stream(c, socket)?;
    let session = stream.and_then(|stream| settings.and_then(|settings| Session::accept(stream, settings)));
    insert_session(c, session, retptr)
}

fn insert_session(c: &mut Caller<'_, WorkloadCtx>, session: Result<Session, TlsError>, retptr: u32) -> Result<(), AbiError> {
    let handle = match session {
        Ok(session) => Ok(c.data_mut().hal.tls_sessions.insert(session)?),
        Err(e) => Err(e),
    };
    finish(c, retptr, RESULT_4, handle.map(write_handle))
}

fn insert_key(c: &mut Caller<'_, WorkloadCtx>, key: Result<KeyContext, TlsError>, retptr: u32) -> Result<(), AbiError> {
    let handle = match key {
        Ok(key) => Ok(c.data_mut().hal.tls_keys.insert(key)?),
        Err(e) => Err(e),
    };
    finish(c, retptr, RESULT_4, handle.map(write_handle))
}

fn from_pem(c: &mut Caller<'_, WorkloadCtx>, (cp, cl): (u32, u32), (kp, kl): (u32, u32), retptr: u32) -> Result<(), AbiError> {
    let key = {
        let mut guest = CallerGuest::new(c)?;
        let memory = guest.memory();
        // The private key text is read straight from guest memory and not kept.
        KeyContext::from_pem(lift_string(memory, cp, cl)?, lift_string(memory, kp, kl)?)
    };
    insert_key(c, key, retptr)
}

fn from_der(c: &mut Caller<'_, WorkloadCtx>, (cp, cl): (u32, u32), (kp, kl): (u32, u32), retptr: u32) -> Result<(), AbiError> {
    let key = {
        let mut guest = CallerGuest::new(c)?;
        let memory = guest.memory();
        // As with PEM, the private key is read straight from guest memory and not kept.
        KeyContext::from_der(&lift_byte_lists(memory, cp, cl)?, lift_bytes(memory, kp, kl)?)
    };
    insert_key(c, key, retptr)
}

fn from_pkcs12(c: &mut Caller<'_, WorkloadCtx>, (p, l): (u32, u32), (pp, pl): (u32, u32), retptr: u32) -> Result<(), AbiError> {
    let key = {
        let mut guest = CallerGuest::new(c)?;
        let memory = guest.memory();
        crate::tls::pkcs12::key_context(lift_bytes(memory, p, l)?, lift_string(memory, pp, pl)?)
    };
    insert_key(c, key, retptr)
}

fn generate_self_signed(c: &mut Caller<'_, WorkloadCtx>, ptr: u32, len: u32, retptr: u32) -> Result<(), AbiError> {
    let names = {
        let mut guest = CallerGuest::new(c)?;
        lift_strings(guest.memory(), ptr, len)?
    };
    insert_key(c, KeyContext::generate_self_signed(&names), retptr)
}

fn certificate_pem(c: &mut Caller<'_, WorkloadCtx>, handle: u32, retptr: u32) -> Result<(), AbiError> {
    let pem = c.data_mut().hal.tls_keys.get(handle)?.certificate_pem();
    let mut guest = CallerGuest::new(c)?;
    Writer::aligned(guest.memory(), retptr, 8, 4)?;
    let list = lower_bytes(&mut guest, pem.as_bytes())?;
    Writer::aligned(guest.memory(), retptr, 8, 4)?.list(0, list)
}

fn send(c: &mut Caller<'_, WorkloadCtx>, handle: u32, ptr: u32, len: u32, retptr: u32) -> Result<(), AbiError> {
    let data = {
        let mut guest = CallerGuest::new(c)?;
        let bytes = lift_bytes(guest.memory(), ptr, len)?;
        if !super::heap_can_afford(bytes.len()) {
            return finish(c, retptr, RESULT_U64, Err::<fn(&mut dyn Guest, u32) -> _, _>(TlsError::Socket(crate::net::socket::SocketError::LimitExceeded("send larger than the kernel heap can buffer"))));
        }
        bytes.to_vec()
    };
    let sent = c.data_mut().hal.tls_sessions.get_mut(handle)?.send(&data);
    let write = |n: usize| move |guest: &mut dyn Guest, retptr: u32| Writer::new(guest.memory(), retptr, 16)?.u64(8, n as u64);
    finish(c, retptr, RESULT_U64, sent.map(write))
}

fn receive(c: &mut Caller<'_, WorkloadCtx>, handle: u32, max: u64, retptr: u32) -> Result<(), AbiError> {
    let received = c.data_mut().hal.tls_sessions.get_mut(handle)?.receive(max.min(MAX_RECEIVE) as usize);
    let write = |bytes: Vec<u8>| {
        move |guest: &mut dyn Guest, retptr: u32| {
            let list = lower_bytes(guest, &bytes)?;
            Writer::new(guest.memory(), retptr, 12)?.list(4, list)
        }
    };
    finish(c, retptr, RESULT_4, received.map(write))
}

fn close(c: &mut Caller<'_, WorkloadCtx>, handle: u32, retptr: u32) -> Result<(), AbiError> {
    let result = c.data_mut().hal.tls_sessions.get_mut(handle)?.close();
    finish(c, retptr, RESULT_4, no_payload(result))
}

fn peer_certificates(c: &mut Caller<'_, WorkloadCtx>, handle: u32, retptr: u32) -> Result<(), AbiError> {
    let certs = c.data_mut().hal.tls_sessions.get_mut(handle)?.peer_certificates();
    let mut guest = CallerGuest::new(c)?;
    Writer::aligned(guest.memory(), retptr, 8, 4)?;
    let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    let list = lower_byte_lists(&mut guest, &refs)?;
    Writer::aligned(guest.memory(), retptr, 8, 4)?.list(0, list)
}

/// DTLS: the UDP socket passed in is consumed (it was `own`), the answer `unsupported`.
fn dtls(c: &mut Caller<'_, WorkloadCtx>, udp: u32, retptr: u32) -> Result<(), AbiError> {
    c.data_mut().hal.udp_sockets.remove(udp)?;
    finish(c, retptr, RESULT_4, Err::<fn(&mut dyn Guest, u32) -> _, _>(TlsError::Unsupported(DTLS_UNSUPPORTED.into())))
}

fn t(name: &'static str) -> impl Fn(AbiError) -> Error {
    move |e| trap(name, e)
}

pub fn add_to_linker(linker: &mut Linker<WorkloadCtx>) -> Result<(), wasmi::errors::LinkerError> {
    type C<'a> = Caller<'a, WorkloadCtx>;
    linker.func_wrap(MODULE, "[static]key-context.from-pem", |mut c: C, cp: u32, cl: u32, kp: u32, kl: u32, ret: u32| -> Result<(), Error> {
        from_pem(&mut c, (cp, cl), (kp, kl), ret).map_err(t("tls.key-context.from-pem"))
    })?;
    linker.func_wrap(MODULE, "[static]key-context.from-der", |mut c: C, cp: u32, cl: u32, kp: u32, kl: u32, ret: u32| -> Result<(), Error> {
        from_der(&mut c, (cp, cl), (kp, kl), ret).map_err(t("tls.key-context.from-der"))
    })?;
    linker.func_wrap(MODULE, "[static]key-context.from-pkcs12", |mut c: C, p: u32, l: u32, pp: u32, pl: u32, ret: u32| -> Result<(), Error> {
        from_pkcs12(&mut c, (p, l), (pp, pl), ret).map_err(t("tls.key-context.from-pkcs12"))
    })?;
    linker.func_wrap(MODULE, "[static]key-context.generate-self-signed", |mut c: C, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        generate_self_signed(&mut c, p, l, ret).map_err(t("tls.key-context.generate-self-signed"))
    })?;
    linker.func_wrap(MODULE, "[method]key-context.certificate-pem", |mut c: C, h: u32, ret: u32| -> Result<(), Error> {
        certificate_pem(&mut c, h, ret).map_err(t("tls.key-context.certificate-pem"))
    })?;
    linker.func_wrap(MODULE, "[resource-drop]key-context", |mut c: C, h: u32| -> Result<(), Error> {
        c.data_mut().hal.tls_keys.remove(h).map(drop).map_err(t("tls.key-context drop"))
    })?;
    linker.func_wrap(
        MODULE,
        "[static]session.connect",
        |mut c: C, s: u32, np: u32, nl: u32, tc: i32, tp: u32, tl: u32, kc: i32, kh: u32, vp: u32, vl: u32, sp: u32, sl: u32, ret: u32| -> Result<(), Error> {
            connect(&mut c, s, (np, nl, tc, tp, tl, kc, kh, vp, vl, sp, sl), ret).map_err(t("tls.session.connect"))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "[static]session.accept",
        |mut c: C, s: u32, k: u32, ts: i32, tc: i32, tp: u32, tl: u32, vp: u32, vl: u32, sp: u32, sl: u32, ret: u32| -> Result<(), Error> {
            accept(&mut c, s, (k, ts, tc, tp, tl, vp, vl, sp, sl), ret).map_err(t("tls.session.accept"))
        },
    )?;
    linker.func_wrap(MODULE, "[static]session.dtls-connect", |mut c: C, args: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let udp = {
                let mut guest = CallerGuest::new(c)?;
                read_u32(guest.memory(), args)?
            };
            dtls(c, udp, ret)
        };
        run(&mut c).map_err(t("tls.session.dtls-connect"))
    })?;
    linker.func_wrap(
        MODULE,
        "[static]session.dtls-accept",
        |mut c: C, s: u32, _k: u32, _ts: i32, _tc: i32, _tp: u32, _tl: u32, _vp: u32, _vl: u32, _sp: u32, _sl: u32, ret: u32| -> Result<(), Error> {
            dtls(&mut c, s, ret).map_err(t("tls.session.dtls-accept"))
        },
    )?;
    linker.func_wrap(MODULE, "[method]session.send", |mut c: C, h: u32, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        send(&mut c, h, p, l, ret).map_err(t("tls.session.send"))
    })?;
    linker.func_wrap(MODULE, "[method]session.receive", |mut c: C, h: u32, max: u64, ret: u32| -> Result<(), Error> {
        receive(&mut c, h, max, ret).map_err(t("tls.session.receive"))
    })?;
    linker.func_wrap(MODULE, "[method]session.close", |mut c: C, h: u32, ret: u32| -> Result<(), Error> {
        close(&mut c, h, ret).map_err(t("tls.session.close"))
    })?;
    linker.func_wrap(MODULE, "[method]session.version", |mut c: C, h: u32| -> Result<i32, Error> {
        let session = c.data_mut().hal.tls_sessions.get(h).map_err(t("tls.session.version"))?;
        Ok(match session.version() {
            Version::Tls12 => 0,
            Version::Tls13 => 1,
        })
    })?;
    linker.func_wrap(MODULE, "[method]session.cipher-suite", |mut c: C, h: u32| -> Result<i32, Error> {
        let session = c.data_mut().hal.tls_sessions.get(h).map_err(t("tls.session.cipher-suite"))?;
        Ok(i32::from(session.cipher()))
    })?;
    linker.func_wrap(MODULE, "[method]session.peer-certificates", |mut c: C, h: u32, ret: u32| -> Result<(), Error> {
        peer_certificates(&mut c, h, ret).map_err(t("tls.session.peer-certificates"))
    })?;
    linker.func_wrap(MODULE, "[resource-drop]session", |mut c: C, h: u32| -> Result<(), Error> {
        c.data_mut().hal.tls_sessions.remove(h).map(drop).map_err(t("tls.session drop"))
    })?;
    Ok(())
}
