//! The GetQuote shared-buffer protocol: the TD hands its TDREPORT to the host's quoting
//! service and gets a DCAP quote back (Intel TDX GHCI v1.5, "`TDG.VP.VMCALL<GetQuote>`",
//! table "GetQuote shared buffer format").
//!
//! The buffer is shared, so the host can write it at any time: the guest reads the header
//! and the quote once each, into private memory, and validates the copies (version,
//! status, lengths inside the buffer, a quote for a TDX report that binds the caller's
//! report data). The wait is bounded; a request the host still holds after the budget
//! keeps the buffer busy so it is not reused while the host may still write it.

use super::vmcall::{self, VmCallError, VmCallStatus};
use super::{TdCall, TdxPages};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Header of the GetQuote buffer (GHCI "GetQuote shared buffer format"); the TDREPORT
/// goes in after it, the quote comes back in the same place.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct QuoteBufferHeader {
    /// Structure version, 1.
    pub version: u64,
    /// Written by the host; the guest sets it to 0 before the call.
    pub status: u64,
    /// Length of the TDREPORT the guest put in.
    pub in_len: u32,
    /// Length of the quote the host put back.
    pub out_len: u32,
}

pub const QUOTE_HEADER_SIZE: usize = 24;
const _: () = {
    assert!(size_of::<QuoteBufferHeader>() == QUOTE_HEADER_SIZE);
    assert!(offset_of!(QuoteBufferHeader, status) == 8);
    assert!(offset_of!(QuoteBufferHeader, out_len) == 20);
};

pub const GET_QUOTE_BUFFER_VERSION: u64 = 1;
pub const TDREPORT_SIZE: usize = 1024;

/// Status codes of the buffer's status field (GHCI GetQuote table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum GetQuoteStatus {
    GetQuoteSuccess = 0,
    GetQuoteInFlight = 0xFFFF_FFFF_FFFF_FFFF,
    GetQuoteError = 0x8000_0000_0000_0000,
    GetQuoteServiceUnavailable = 0x8000_0000_0000_0001,
}

/// Total time the guest waits for the host's quote, and its first and largest pause.
pub const QUOTE_WAIT_BUDGET_MS: u32 = 30_000;
const FIRST_DELAY_MS: u32 = 1;
const MAX_DELAY_MS: u32 = 100;

/// DCAP quote header facts used for the local check (Intel TDX DCAP Quoting Library API,
/// appendix "Quote Format": a 48-byte header with VERSION (u16) at 0 and TEE_TYPE (u32)
/// at 4; v4 is followed by the TD report body, v5 by a body type (u16) and size (u32)).
pub const QUOTE_HEADER_LEN: usize = 48;
pub const QUOTE_TEE_TYPE_TDX: u32 = 0x81;
/// REPORTDATA's offset inside the TD report body (after TEE_TCB_SVN .. RTMR3).
pub const BODY_REPORT_DATA_OFFSET: usize = 520;
/// v5 body types of a TD report (2 = TDX 1.0, 3 = TDX 1.5, 4 = TDX 1.5 "ex", Intel's
/// `sgx_quote_5.h`); each starts with the TDX 1.0 body, so REPORTDATA sits at the same place.
pub const V5_BODY_TD10: u16 = 2;
pub const V5_BODY_TD15: u16 = 3;
pub const V5_BODY_TD15_EX: u16 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteError {
    /// The kernel set up no shared buffer.
    NoBuffer,
    /// The buffer is smaller than a header and a TDREPORT, or not whole pages.
    BufferTooSmall,
    /// An earlier request is still in flight: the host owns the buffer.
    Busy,
    /// The GetQuote VMCALL failed.
    VmCall(VmCallError),
    /// The host has no quoting service (INVALID_OPERAND or SERVICE_UNAVAILABLE).
    NotOffered,
    /// The host reported an error.
    HostError,
    /// No answer within [`QUOTE_WAIT_BUDGET_MS`].
    Timeout,
    /// The header came back with another version.
    BadVersion(u64),
    /// A status the GHCI does not define.
    UnknownStatus(u64),
    /// OUT_LEN is zero, too small for a quote, or beyond the buffer.
    BadLength(u32),
    /// The bytes are not a TDX quote (version or TEE type).
    NotAQuote,
    /// The quote is for other report data.
    ReportDataMismatch,
}

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoBuffer => f.write_str("no GetQuote buffer"),
            Self::BufferTooSmall => f.write_str("GetQuote buffer too small"),
            Self::Busy => f.write_str("a GetQuote request is still in flight"),
            Self::VmCall(e) => write!(f, "GetQuote: {e}"),
            Self::NotOffered => f.write_str("the host offers no quoting service"),
            Self::HostError => f.write_str("the host failed to produce a quote"),
            Self::Timeout => f.write_str("no quote within the time budget"),
            Self::BadVersion(v) => write!(f, "GetQuote buffer version {v}"),
            Self::UnknownStatus(s) => write!(f, "undefined GetQuote status {s:#x}"),
            Self::BadLength(len) => write!(f, "quote length {len} out of range"),
            Self::NotAQuote => f.write_str("not a TDX quote"),
            Self::ReportDataMismatch => f.write_str("the quote does not bind the requested report data"),
        }
    }
}

impl core::error::Error for QuoteError {}

fn read_header(t: &impl TdxPages) -> QuoteBufferHeader {
    let mut bytes = [0u8; QUOTE_HEADER_SIZE];
    t.read_quote_buffer(0, &mut bytes);
    QuoteBufferHeader::read_from_bytes(&bytes).expect("24 bytes")
}

/// Checks that `quote` is a TDX quote (v4 or v5) whose TD report body carries `report_data`.
pub fn check_quote(quote: &[u8], report_data: &[u8; 64]) -> Result<(), QuoteError> {
    let u16_at = |at: usize| quote.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let version = u16_at(0).ok_or(QuoteError::NotAQuote)?;
    let tee_type = quote.get(4..8).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok_or(QuoteError::NotAQuote)?;
    if tee_type != QUOTE_TEE_TYPE_TDX {
        return Err(QuoteError::NotAQuote);
    }
    let body = match version {
        4 => QUOTE_HEADER_LEN,
        5 => match u16_at(QUOTE_HEADER_LEN) {
            Some(V5_BODY_TD10 | V5_BODY_TD15 | V5_BODY_TD15_EX) => QUOTE_HEADER_LEN + 6,
            _ => return Err(QuoteError::NotAQuote),
        },
        _ => return Err(QuoteError::NotAQuote),
    };
    let at = body + BODY_REPORT_DATA_OFFSET;
    match quote.get(at..at + 64) {
        Some(found) if found == report_data => Ok(()),
        Some(_) => Err(QuoteError::ReportDataMismatch),
        None => Err(QuoteError::NotAQuote),
    }
}

/// Asks the host for a quote of `tdreport` (which binds `report_data`) and waits for it.
pub fn get_quote(t: &mut (impl TdCall + TdxPages), tdreport: &[u8; TDREPORT_SIZE], report_data: &[u8; 64], shared_bit: u64) -> Result<Vec<u8>, QuoteError> {
    let (gpa, len) = t.quote_buffer().ok_or(QuoteError::NoBuffer)?;
    if len < QUOTE_HEADER_SIZE + TDREPORT_SIZE || !len.is_multiple_of(0x1000) {
        return Err(QuoteError::BufferTooSmall);
    }
    if read_header(t).status == GetQuoteStatus::GetQuoteInFlight as u64 {
        return Err(QuoteError::Busy);
    }
    let header = QuoteBufferHeader { version: GET_QUOTE_BUFFER_VERSION, status: 0, in_len: TDREPORT_SIZE as u32, out_len: 0 };
    t.write_quote_buffer(0, header.as_bytes());
    t.write_quote_buffer(QUOTE_HEADER_SIZE, tdreport);
    match vmcall::get_quote(t, gpa | shared_bit, len as u64) {
        Ok(()) => {}
        Err(VmCallError::Status(VmCallStatus::TdgVpVmcallInvalidOperand)) => return Err(QuoteError::NotOffered),
        Err(e) => return Err(QuoteError::VmCall(e)),
    }
    let mut waited = 0u32;
    let mut delay = FIRST_DELAY_MS;
    let header = loop {
        let header = read_header(t);
        if header.status != GetQuoteStatus::GetQuoteInFlight as u64 {
            break header;
        }
        if waited >= QUOTE_WAIT_BUDGET_MS {
            return Err(QuoteError::Timeout);
        }
        t.sleep_ms(delay);
        waited = waited.saturating_add(delay);
        delay = (delay * 2).min(MAX_DELAY_MS);
    };
    // `header` is the private copy every check below uses.
    if header.version != GET_QUOTE_BUFFER_VERSION {
        return Err(QuoteError::BadVersion(header.version));
    }
    match header.status {
        s if s == GetQuoteStatus::GetQuoteSuccess as u64 => {}
        s if s == GetQuoteStatus::GetQuoteServiceUnavailable as u64 => return Err(QuoteError::NotOffered),
        s if s == GetQuoteStatus::GetQuoteError as u64 => return Err(QuoteError::HostError),
        s => return Err(QuoteError::UnknownStatus(s)),
    }
    let out_len = header.out_len as usize;
    if out_len < QUOTE_HEADER_LEN || out_len > len - QUOTE_HEADER_SIZE {
        return Err(QuoteError::BadLength(header.out_len));
    }
    let mut quote = vec![0u8; out_len];
    t.read_quote_buffer(QUOTE_HEADER_SIZE, &mut quote);
    check_quote(&quote, report_data)?;
    Ok(quote)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tdx::sim::{QuoteHost, SimTdx, QUOTE_BUFFER_LEN};
    use crate::tdx::tdcall;

    const SHARED: u64 = 1 << 51;

    fn quote(sim: &mut SimTdx) -> Result<Vec<u8>, QuoteError> {
        let report = tdcall::mr_report(sim, &[0x33; 64]).unwrap();
        get_quote(sim, &report, &[0x33; 64], SHARED)
    }

    #[test]
    fn a_quote_comes_back_after_polling() {
        let mut sim = SimTdx::new();
        let q = quote(&mut sim).unwrap();
        assert_eq!(&q[0..2], &4u16.to_le_bytes());
        assert_eq!(&q[48 + 520..48 + 584], &[0x33; 64]);
        assert!(sim.slept_ms > 0);
        let mut sim = SimTdx::new();
        sim.quote_host = QuoteHost::After(0);
        quote(&mut sim).unwrap();
        assert_eq!(sim.slept_ms, 0, "synchronous hosts need no wait");
        let mut sim = SimTdx::new();
        sim.quote_host = QuoteHost::V5;
        quote(&mut sim).unwrap();
    }

    #[test]
    fn hostile_or_absent_services_are_reported() {
        let cases = [
            (QuoteHost::NoVmcall, QuoteError::NotOffered),
            (QuoteHost::Unavailable, QuoteError::NotOffered),
            (QuoteHost::Error, QuoteError::HostError),
            (QuoteHost::OutLen(0), QuoteError::BadLength(0)),
            (QuoteHost::OutLen(47), QuoteError::BadLength(47)),
            (QuoteHost::OutLen(QUOTE_BUFFER_LEN as u32 - 23), QuoteError::BadLength(QUOTE_BUFFER_LEN as u32 - 23)),
            (QuoteHost::OutLen(u32::MAX), QuoteError::BadLength(u32::MAX)),
            (QuoteHost::Version(2), QuoteError::BadVersion(2)),
            (QuoteHost::Status(7), QuoteError::UnknownStatus(7)),
            (QuoteHost::OtherReportData, QuoteError::ReportDataMismatch),
        ];
        for (host, expected) in cases {
            let mut sim = SimTdx::new();
            sim.quote_host = host;
            assert_eq!(quote(&mut sim), Err(expected), "{host:?}");
        }
        assert_eq!(quote(&mut SimTdx::new().without_quote_buffer()), Err(QuoteError::NoBuffer));
    }

    #[test]
    fn the_wait_is_bounded_and_the_buffer_stays_busy() {
        let mut sim = SimTdx::new();
        sim.quote_host = QuoteHost::Never;
        assert_eq!(quote(&mut sim), Err(QuoteError::Timeout));
        assert!(sim.slept_ms >= QUOTE_WAIT_BUDGET_MS as u64 && sim.slept_ms < QUOTE_WAIT_BUDGET_MS as u64 + 2 * MAX_DELAY_MS as u64);
        // The host still owns the buffer: no second request into it.
        assert_eq!(quote(&mut sim), Err(QuoteError::Busy));
    }

    #[test]
    fn quote_checks() {
        let mut q = vec![0u8; 48 + 584];
        q[0] = 4;
        q[4] = 0x81;
        q[568..632].fill(1);
        assert_eq!(check_quote(&q, &[1; 64]), Ok(()));
        assert_eq!(check_quote(&q, &[2; 64]), Err(QuoteError::ReportDataMismatch));
        assert_eq!(check_quote(&q[..600], &[1; 64]), Err(QuoteError::NotAQuote));
        q[4] = 0;
        assert_eq!(check_quote(&q, &[1; 64]), Err(QuoteError::NotAQuote), "SGX quotes are not TD quotes");
        q[4] = 0x81;
        q[0] = 3;
        assert_eq!(check_quote(&q, &[1; 64]), Err(QuoteError::NotAQuote));
        assert_eq!(check_quote(&[], &[1; 64]), Err(QuoteError::NotAQuote));
    }
}

#[cfg(test)]
mod published_quotes {
    use super::*;
    use std::path::PathBuf;

    /// The sample TD quotes the crates.io package `dcap-qvl` 0.7.1 ships in `sample/`
    /// (real quotes from TDX hosts; the workspace's verifier depends on that package, so
    /// `cargo fetch` puts it in the registry). Skipped, with a note, when absent.
    fn sample(name: &str) -> Option<Vec<u8>> {
        let home = std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        let registry = home.join("registry/src");
        for index in std::fs::read_dir(registry).ok()?.flatten() {
            let path = index.path().join("dcap-qvl-0.7.1/sample").join(name);
            if let Ok(bytes) = std::fs::read(&path) {
                return Some(bytes);
            }
        }
        println!("note: dcap-qvl-0.7.1/sample/{name} not in the cargo registry; skipped");
        None
    }

    /// The quote's own structure confirms the offsets independently: after the body comes
    /// the signature-data length, and header + body + 4 + that length must fit the file.
    fn body_offset_from_structure(quote: &[u8]) -> usize {
        let u16_at = |at: usize| u16::from_le_bytes([quote[at], quote[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(quote[at..at + 4].try_into().unwrap()) as usize;
        let (body, body_len) = match u16_at(0) {
            4 => (QUOTE_HEADER_LEN, 584),
            5 => (QUOTE_HEADER_LEN + 6, u32_at(QUOTE_HEADER_LEN + 2)),
            v => panic!("version {v}"),
        };
        let signature_len = u32_at(body + body_len);
        assert!(body + body_len + 4 + signature_len <= quote.len());
        assert!(body_len >= BODY_REPORT_DATA_OFFSET + 64);
        body
    }

    #[test]
    fn real_quotes_pass_the_local_check() {
        for name in ["tdx_quote", "tdx_quote_outdated", "tdx_quote_td15ex"] {
            let Some(quote) = sample(name) else { continue };
            let body = body_offset_from_structure(&quote);
            let mut report_data = [0u8; 64];
            report_data.copy_from_slice(&quote[body + BODY_REPORT_DATA_OFFSET..body + BODY_REPORT_DATA_OFFSET + 64]);
            assert_eq!(check_quote(&quote, &report_data), Ok(()), "{name}");
            report_data[63] ^= 1;
            assert_eq!(check_quote(&quote, &report_data), Err(QuoteError::ReportDataMismatch), "{name}");
        }
    }
}

#[cfg(test)]
mod mutation_tests {
    use super::*;
    use crate::mutation::Mutator;
    use crate::tdx::sim::{SimTdx, QUOTE_BUFFER_LEN};
    use crate::tdx::tdcall;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A host that rewrites the whole answer (header and quote) with mutated bytes: the
    /// guest returns a checked quote or an error, never panics, never reads past the buffer.
    #[test]
    fn mutated_host_answers_never_panic() {
        let mut honest = SimTdx::new();
        let report = tdcall::mr_report(&mut honest, &[0x33; 64]).unwrap();
        get_quote(&mut honest, &report, &[0x33; 64], 1 << 51).unwrap();
        let mut valid = vec![0u8; QUOTE_BUFFER_LEN];
        honest.read_quote_buffer(0, &mut valid);
        let valid_quote_len = u32::from_le_bytes(valid[20..24].try_into().unwrap()) as usize;
        let mutator = Rc::new(RefCell::new(Mutator::new(0x9_07e)));
        let mut accepted = 0;
        for _ in 0..3_000 {
            let mut sim = SimTdx::new();
            sim.quote_host = crate::tdx::sim::QuoteHost::After(0);
            let (m, v) = (mutator.clone(), valid.clone());
            sim.tamper = Some(Box::new(move |buffer: &mut [u8]| {
                let mut bytes = m.borrow_mut().mutate(&v);
                bytes.resize(buffer.len(), 0);
                buffer.copy_from_slice(&bytes);
            }));
            let report = tdcall::mr_report(&mut sim, &[0x33; 64]).unwrap();
            if let Ok(quote) = get_quote(&mut sim, &report, &[0x33; 64], 1 << 51) {
                accepted += 1;
                assert!(quote.len() <= QUOTE_BUFFER_LEN - QUOTE_HEADER_SIZE);
                assert_eq!(check_quote(&quote, &[0x33; 64]), Ok(()));
            }
        }
        assert!(accepted < 3_000, "{accepted}");
        assert!(valid_quote_len > QUOTE_HEADER_LEN);
    }

    #[test]
    fn mutated_quotes_never_panic() {
        let mut q = vec![0u8; 48 + 584 + 70];
        q[0] = 4;
        q[4] = 0x81;
        q[568..632].fill(1);
        let mut m = Mutator::new(0x0c0de);
        for _ in 0..20_000 {
            let _ = check_quote(&m.mutate(&q), &[1; 64]);
        }
    }
}
