//! Intel TDX evidence layouts: TDREPORT_STRUCT (what TDG.MR.REPORT returns to the guest)
//! and the TD quote header and body (what a verifier reads MRTD, RTMRs and REPORTDATA from).
//!
//! - Intel TDX Module ABI Specification (348551-004/005), section "TDREPORT_STRUCT":
//!   tables REPORTMACSTRUCT, REPORTTYPE, TEE_TCB_INFO and TDINFO_STRUCT; section
//!   "ATTRIBUTES" (TD attributes bits).
//! - Intel TDX DCAP Quote Generation / Verification Library, appendix "TD Quote Format":
//!   tables "Quote Header" (48 bytes, version 4 and 5), "TD Quote Body" (TDX 1.0, 584
//!   bytes) and "TD Quote Body Descriptor" (version 5: body type 2 = TDX 1.0 body,
//!   3 = TDX 1.5 body with TEE_TCB_SVN2 and MRSERVICETD, 648 bytes; 4 = TDX 1.5 body
//!   followed by extensions (TD 1.5 "ex", as quotes from newer DCAP releases carry it):
//!   only its leading TDX 1.5 body is read here).

use core::fmt;
use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of TDREPORT_STRUCT.
pub const TDREPORT_SIZE: usize = 1024;
/// REPORTTYPE.TYPE for TDX (0x00 is SGX).
pub const REPORTTYPE_TDX: u8 = 0x81;
/// Highest REPORTTYPE.VERSION known: 0 (TDX 1.0, TDINFO without SERVTD_HASH), 1 (TDX 1.5).
pub const MAX_REPORTTYPE_VERSION: u8 = 1;
/// Size of a SHA-384 measurement register.
pub const MR_SIZE: usize = 48;
/// Quote header TEE_TYPE for TDX.
pub const TEE_TYPE_TDX: u32 = 0x81;
/// Size of the quote header.
pub const QUOTE_HEADER_SIZE: usize = 48;
/// Version 5 TD Quote Body Descriptor TYPE values.
pub const BODY_TYPE_TD10: u16 = 2;
pub const BODY_TYPE_TD15: u16 = 3;
pub const BODY_TYPE_TD15_EX: u16 = 4;
/// Upper bound on a version 5 body size (a sanity limit; type 4 bodies are < 1 KiB).
pub const MAX_BODY_SIZE: u32 = 64 * 1024;

/// REPORTMACSTRUCT (TDX Module ABI, table "REPORTMACSTRUCT"), 256 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct ReportMacStruct {
    /// REPORTTYPE: TYPE, SUBTYPE, VERSION, RESERVED.
    pub report_type: [u8; 4],
    pub reserved1: [u8; 12],
    pub cpusvn: [u8; 16],
    pub tee_tcb_info_hash: [u8; 48],
    pub tee_info_hash: [u8; 48],
    pub reportdata: [u8; 64],
    pub reserved2: [u8; 32],
    pub mac: [u8; 32],
}

/// TEE_TCB_INFO (TDX Module ABI, table "TEE_TCB_INFO"), 239 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TeeTcbInfo {
    pub valid: [u8; 8],
    pub tee_tcb_svn: [u8; 16],
    pub mrseam: [u8; 48],
    pub mrsignerseam: [u8; 48],
    pub attributes: [u8; 8],
    /// TDX 1.5; reserved (zero) before.
    pub tee_tcb_svn2: [u8; 16],
    pub reserved: [u8; 95],
}

/// TDINFO_STRUCT (TDX Module ABI, table "TDINFO_STRUCT"), 512 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TdInfo {
    pub attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mrtd: [u8; 48],
    pub mrconfigid: [u8; 48],
    pub mrowner: [u8; 48],
    pub mrownerconfig: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    /// REPORTTYPE.VERSION 1 (TDX 1.5); reserved (zero) in version 0.
    pub servtd_hash: [u8; 48],
    pub reserved: [u8; 64],
}

/// TDREPORT_STRUCT (TDX Module ABI, section "TDREPORT_STRUCT"), 1024 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TdReport {
    pub report_mac: ReportMacStruct,
    pub tee_tcb_info: TeeTcbInfo,
    pub reserved: [u8; 17],
    pub td_info: TdInfo,
}

/// Quote header (DCAP "Quote Header", versions 4 and 5), 48 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct QuoteHeader {
    pub version: U16,
    pub att_key_type: U16,
    pub tee_type: U32,
    pub qe_svn: U16,
    pub pce_svn: U16,
    pub qe_vendor_id: [u8; 16],
    pub user_data: [u8; 20],
}

/// TD Quote Body for TDX 1.0 (DCAP "TD Quote Body", 584 bytes); the TDX 1.5 body
/// ([`TdQuoteBody15`]) appends TEE_TCB_SVN2 and MRSERVICETD.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TdQuoteBody10 {
    pub tee_tcb_svn: [u8; 16],
    pub mrseam: [u8; 48],
    pub mrsignerseam: [u8; 48],
    pub seam_attributes: [u8; 8],
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mrtd: [u8; 48],
    pub mrconfigid: [u8; 48],
    pub mrowner: [u8; 48],
    pub mrownerconfig: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub reportdata: [u8; 64],
}

/// TD Quote Body for TDX 1.5 (version 5 body type 3), 648 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct TdQuoteBody15 {
    pub td10: TdQuoteBody10,
    pub tee_tcb_svn2: [u8; 16],
    pub mrservicetd: [u8; 48],
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<ReportMacStruct>() == 256);
    assert!(offset_of!(ReportMacStruct, cpusvn) == 16);
    assert!(offset_of!(ReportMacStruct, reportdata) == 128);
    assert!(offset_of!(ReportMacStruct, mac) == 224);
    assert!(size_of::<TeeTcbInfo>() == 239);
    assert!(offset_of!(TeeTcbInfo, mrseam) == 24);
    assert!(offset_of!(TeeTcbInfo, tee_tcb_svn2) == 128);
    assert!(size_of::<TdInfo>() == 512);
    assert!(offset_of!(TdInfo, mrtd) == 16);
    assert!(offset_of!(TdInfo, rtmr) == 208);
    assert!(offset_of!(TdInfo, servtd_hash) == 400);
    assert!(size_of::<TdReport>() == TDREPORT_SIZE);
    assert!(offset_of!(TdReport, tee_tcb_info) == 256);
    assert!(offset_of!(TdReport, td_info) == 512);
    assert!(size_of::<QuoteHeader>() == QUOTE_HEADER_SIZE);
    assert!(size_of::<TdQuoteBody10>() == 584);
    assert!(offset_of!(TdQuoteBody10, td_attributes) == 120);
    assert!(offset_of!(TdQuoteBody10, mrtd) == 136);
    assert!(offset_of!(TdQuoteBody10, rtmr) == 328);
    assert!(offset_of!(TdQuoteBody10, reportdata) == 520);
    assert!(size_of::<TdQuoteBody15>() == 648);
};

/// Why bytes are not a TDREPORT or TD quote this parser accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdxReportError {
    /// Too short (or, for a TDREPORT, not exactly 1024 bytes).
    Length { actual: usize, expected: usize },
    /// REPORTTYPE is not TDX (TYPE 0x81, SUBTYPE 0) of a known VERSION.
    ReportType([u8; 4]),
    /// A reserved field (named by its offset in the structure) is not zero.
    Reserved { offset: usize },
    /// Quote header version other than 4 or 5.
    QuoteVersion(u16),
    /// Quote header TEE_TYPE is not TDX (SGX quotes are not TD quotes).
    TeeType(u32),
    /// Version 5 body descriptor of an unknown type, or whose size does not match it.
    BodyDescriptor { body_type: u16, size: u32 },
    /// The signature data length is not that of its parts.
    SignatureDataLength(usize),
    /// The outer certification data is not QE report certification data (type 6).
    CertificationDataType(u16),
}

impl fmt::Display for TdxReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TdxReportError::Length { actual, expected } => write!(f, "{actual} bytes, expected {expected}"),
            TdxReportError::ReportType(t) => write!(f, "REPORTTYPE {t:02x?} is not a TDX report"),
            TdxReportError::Reserved { offset } => write!(f, "reserved bytes at offset {offset} are not zero"),
            TdxReportError::QuoteVersion(v) => write!(f, "quote version {v} is not a TD quote version (4 or 5)"),
            TdxReportError::TeeType(t) => write!(f, "quote TEE type {t:#x} is not TDX (0x81)"),
            TdxReportError::BodyDescriptor { body_type, size } => {
                write!(f, "quote body type {body_type} of {size} bytes is not a TD quote body")
            }
            TdxReportError::CertificationDataType(t) => write!(f, "certification data type {t} is not 6 (QE report)"),
            TdxReportError::SignatureDataLength(len) => {
                write!(f, "signature data length {len} is not that of its signature, key and certification data")
            }
        }
    }
}

impl core::error::Error for TdxReportError {}

fn zero(offset: usize, field: &[u8]) -> Result<(), TdxReportError> {
    if field.iter().all(|&b| b == 0) { Ok(()) } else { Err(TdxReportError::Reserved { offset }) }
}

impl TdReport {
    /// Checked constructor: exactly 1024 bytes, REPORTTYPE TDX of a known version, and
    /// the reserved fields zero. The MAC is not checked (only the TDX module can).
    pub fn parse(bytes: &[u8]) -> Result<&TdReport, TdxReportError> {
        let report = TdReport::ref_from_bytes(bytes)
            .map_err(|_| TdxReportError::Length { actual: bytes.len(), expected: TDREPORT_SIZE })?;
        let t = report.report_mac.report_type;
        if t[0] != REPORTTYPE_TDX || t[1] != 0 || t[2] > MAX_REPORTTYPE_VERSION || t[3] != 0 {
            return Err(TdxReportError::ReportType(t));
        }
        zero(4, &report.report_mac.reserved1)?;
        zero(192, &report.report_mac.reserved2)?;
        zero(256 + 144, &report.tee_tcb_info.reserved)?;
        zero(495, &report.reserved)?;
        if t[2] == 0 {
            zero(512 + 400, &report.td_info.servtd_hash)?;
        }
        zero(512 + 448, &report.td_info.reserved)?;
        Ok(report)
    }

    pub fn td_attributes(&self) -> TdAttributes {
        TdAttributes(u64::from_le_bytes(self.td_info.attributes))
    }
}

/// The TD attributes (TDX Module ABI, table "ATTRIBUTES").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdAttributes(pub u64);

impl TdAttributes {
    /// Bit 0: the TD runs in debug mode (its memory and state are readable by the host).
    pub const DEBUG: u64 = 1 << 0;
    /// Bit 28: EPT violations on pending pages are not turned into #VE.
    pub const SEPT_VE_DISABLE: u64 = 1 << 28;
    /// Bit 29: the TD may be migrated (TDX 1.5).
    pub const MIGRATABLE: u64 = 1 << 29;
    /// Bit 30: supervisor protection keys.
    pub const PKS: u64 = 1 << 30;
    /// Bit 31: key locker.
    pub const KL: u64 = 1 << 31;
    /// Bit 63: the TD may use performance monitoring.
    pub const PERFMON: u64 = 1 << 63;

    pub fn debug(self) -> bool {
        self.0 & Self::DEBUG != 0
    }
}

impl fmt::Display for TdAttributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)?;
        let names = [
            ("DEBUG", Self::DEBUG),
            ("SEPT_VE_DISABLE", Self::SEPT_VE_DISABLE),
            ("MIGRATABLE", Self::MIGRATABLE),
            ("PKS", Self::PKS),
            ("KL", Self::KL),
            ("PERFMON", Self::PERFMON),
        ];
        let mut sep = " (";
        for (name, mask) in names {
            if self.0 & mask != 0 {
                write!(f, "{sep}{name}")?;
                sep = ", ";
            }
        }
        if sep == ", " {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// The parts of a TD quote a verifier reads: header and body, borrowed from the quote.
/// Nothing here is authenticated: use it only after the quote's signature and
/// certification chain verified (or to cross-check a verifier).
#[derive(Clone, Copy, Debug)]
pub struct TdQuote<'a> {
    pub header: &'a QuoteHeader,
    pub body: &'a TdQuoteBody10,
    /// TDX 1.5 fields of a version 5, body type 3 or 4 quote.
    pub td15: Option<&'a TdQuoteBody15>,
    /// The body type (version 4 quotes: [`BODY_TYPE_TD10`]).
    pub body_type: u16,
    /// Where the signature data (whose u32 length follows the body) ends in the quote:
    /// what follows is not part of the quote (buffers are often zero-padded).
    pub end: usize,
}

/// `rest` starts with the u32 signature data length; returns the offset in `quote` of
/// the end of the signature data, which must fit.
fn signature_data_end(quote: &[u8], rest: &[u8]) -> Result<usize, TdxReportError> {
    let start = quote.len() - rest.len();
    let (len, data) = U32::ref_from_prefix(rest).map_err(|_| TdxReportError::Length { actual: quote.len(), expected: start + 4 })?;
    let len = usize::try_from(len.get()).unwrap_or(usize::MAX);
    if len > data.len() {
        return Err(TdxReportError::Length { actual: quote.len(), expected: start.saturating_add(4).saturating_add(len) });
    }
    // "ECDSA 256-bit Quote Signature Data Structure": signature (64), attestation key
    // (64), QE certification data type (u16) and size (u32), then that many bytes; the
    // outer length must be exactly that, so the framing has one reading.
    let certification_size = data
        .get(ECDSA_SIG_DATA_FIXED - 4..ECDSA_SIG_DATA_FIXED)
        .and_then(|b| U32::read_from_bytes(b).ok())
        .map(|size| usize::try_from(size.get()).unwrap_or(usize::MAX));
    if certification_size.and_then(|size| size.checked_add(ECDSA_SIG_DATA_FIXED)) != Some(len) {
        return Err(TdxReportError::SignatureDataLength(len));
    }
    // Version 4/5 TD quotes carry "QE Report Certification Data" (type 6) here.
    let certification_type = data.get(128..130).and_then(|b| U16::read_from_bytes(b).ok()).map(|t| t.get());
    if certification_type != Some(CERTIFICATION_DATA_QE_REPORT) {
        return Err(TdxReportError::CertificationDataType(certification_type.unwrap_or(0)));
    }
    Ok(start + 4 + len)
}

/// Fixed part of the ECDSA quote signature data: signature, attestation key, QE
/// certification data type and size.
pub const ECDSA_SIG_DATA_FIXED: usize = 64 + 64 + 2 + 4;
/// Certification data type "QE Report Certification Data".
pub const CERTIFICATION_DATA_QE_REPORT: u16 = 6;

impl<'a> TdQuote<'a> {
    /// Checked constructor over the start of a quote (header and body; the signature
    /// data that follows is left to the verifier). Version 4: body right after the
    /// header. Version 5: a descriptor (TYPE u16, SIZE u32), then the body it describes.
    pub fn parse(quote: &'a [u8]) -> Result<TdQuote<'a>, TdxReportError> {
        let short = |expected| TdxReportError::Length { actual: quote.len(), expected };
        let (header, rest) = QuoteHeader::ref_from_prefix(quote).map_err(|_| short(QUOTE_HEADER_SIZE))?;
        let tee_type = header.tee_type.get();
        if tee_type != TEE_TYPE_TDX {
            return Err(TdxReportError::TeeType(tee_type));
        }
        match header.version.get() {
            4 => {
                let (body, rest) = TdQuoteBody10::ref_from_prefix(rest).map_err(|_| short(QUOTE_HEADER_SIZE + 584))?;
                let end = signature_data_end(quote, rest)?;
                Ok(TdQuote { header, body, td15: None, body_type: BODY_TYPE_TD10, end })
            }
            5 => {
                let (body_type, rest) = U16::ref_from_prefix(rest).map_err(|_| short(QUOTE_HEADER_SIZE + 6))?;
                let (size, rest) = U32::ref_from_prefix(rest).map_err(|_| short(QUOTE_HEADER_SIZE + 6))?;
                let (body_type, size) = (body_type.get(), size.get());
                match (body_type, size) {
                    (BODY_TYPE_TD10, 584) => {
                        let (body, rest) = TdQuoteBody10::ref_from_prefix(rest).map_err(|_| short(QUOTE_HEADER_SIZE + 6 + 584))?;
                        let end = signature_data_end(quote, rest)?;
                        Ok(TdQuote { header, body, td15: None, body_type, end })
                    }
                    (BODY_TYPE_TD15, 648) | (BODY_TYPE_TD15_EX, 648..=MAX_BODY_SIZE) => {
                        let (body, _) = TdQuoteBody15::ref_from_prefix(rest).map_err(|_| short(QUOTE_HEADER_SIZE + 6 + 648))?;
                        // The descriptor's SIZE (checked >= 648) says where the body ends.
                        let body_len = usize::try_from(size).map_err(|_| short(usize::MAX))?;
                        let after = rest.get(body_len..).ok_or_else(|| short(QUOTE_HEADER_SIZE + 6 + body_len))?;
                        let end = signature_data_end(quote, after)?;
                        Ok(TdQuote { header, body: &body.td10, td15: Some(body), body_type, end })
                    }
                    _ => Err(TdxReportError::BodyDescriptor { body_type, size }),
                }
            }
            other => Err(TdxReportError::QuoteVersion(other)),
        }
    }

    pub fn td_attributes(&self) -> TdAttributes {
        TdAttributes(u64::from_le_bytes(self.body.td_attributes))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn sample_tdreport(version: u8) -> Vec<u8> {
        let mut b = alloc::vec![0u8; TDREPORT_SIZE];
        b[0] = REPORTTYPE_TDX;
        b[2] = version;
        b[128..192].fill(0x11); // REPORTDATA
        b[512..520].copy_from_slice(&(TdAttributes::SEPT_VE_DISABLE).to_le_bytes());
        b[512 + 16..512 + 64].fill(0x22); // MRTD
        for i in 0..4 {
            let at = 512 + 208 + 48 * i;
            b[at..at + 48].fill(0x30 + i as u8);
        }
        b
    }

    pub(crate) fn sample_quote(version: u16, td15: bool) -> Vec<u8> {
        let mut q = alloc::vec![0u8; QUOTE_HEADER_SIZE];
        q[0..2].copy_from_slice(&version.to_le_bytes());
        q[2..4].copy_from_slice(&2u16.to_le_bytes()); // ECDSA-256 with P-256
        q[4..8].copy_from_slice(&TEE_TYPE_TDX.to_le_bytes());
        let mut body = alloc::vec![0u8; if td15 { 648 } else { 584 }];
        body[136..184].fill(0x22);
        body[328..520].fill(0x33);
        body[520..584].fill(0x44);
        if version == 5 {
            let ty = if td15 { BODY_TYPE_TD15 } else { BODY_TYPE_TD10 };
            q.extend_from_slice(&ty.to_le_bytes());
            q.extend_from_slice(&(body.len() as u32).to_le_bytes());
        }
        q.extend_from_slice(&body);
        // Signature data: signature, key, certification data type 5 and 16 bytes of it.
        q.extend_from_slice(&(ECDSA_SIG_DATA_FIXED as u32 + 16).to_le_bytes());
        q.extend_from_slice(&[0xEE; 128]);
        q.extend_from_slice(&CERTIFICATION_DATA_QE_REPORT.to_le_bytes());
        q.extend_from_slice(&16u32.to_le_bytes());
        q.extend_from_slice(&[0xCE; 16]);
        q
    }

    #[test]
    fn tdreport_fields() {
        for version in [0, 1] {
            let bytes = sample_tdreport(version);
            let r = TdReport::parse(&bytes).unwrap();
            assert_eq!(r.report_mac.reportdata, [0x11; 64]);
            assert_eq!(r.td_info.mrtd, [0x22; 48]);
            assert_eq!(r.td_info.rtmr[3], [0x33; 48]);
            assert!(!r.td_attributes().debug());
            assert_eq!(r.td_attributes().to_string(), "0x0000000010000000 (SEPT_VE_DISABLE)");
        }
        assert_eq!(TdAttributes(0).to_string(), "0x0000000000000000");
    }

    #[test]
    fn tdreport_rejects_malformed() {
        let good = sample_tdreport(0);
        let with = |at: usize, v: u8| {
            let mut b = good.clone();
            b[at] = v;
            TdReport::parse(&b).map(|_| ())
        };
        assert_eq!(TdReport::parse(&good[..1023]).map(|_| ()), Err(TdxReportError::Length { actual: 1023, expected: 1024 }));
        assert_eq!(with(0, 0), Err(TdxReportError::ReportType([0, 0, 0, 0])));
        assert_eq!(with(2, 2), Err(TdxReportError::ReportType([0x81, 0, 2, 0])));
        assert_eq!(with(5, 1), Err(TdxReportError::Reserved { offset: 4 }));
        assert_eq!(with(200, 1), Err(TdxReportError::Reserved { offset: 192 }));
        assert_eq!(with(500, 1), Err(TdxReportError::Reserved { offset: 495 }));
        assert_eq!(with(512 + 400, 1), Err(TdxReportError::Reserved { offset: 912 }), "SERVTD_HASH is version 1");
        assert_eq!(with(1023, 1), Err(TdxReportError::Reserved { offset: 960 }));
        let mut v1 = sample_tdreport(1);
        v1[512 + 400] = 1;
        assert!(TdReport::parse(&v1).is_ok());
    }

    #[test]
    fn quote_bodies_v4_v5() {
        for (version, td15) in [(4, false), (5, false), (5, true)] {
            let q = sample_quote(version, td15);
            let parsed = TdQuote::parse(&q).unwrap();
            assert_eq!(parsed.body.mrtd, [0x22; 48]);
            assert_eq!(parsed.body.rtmr[0], [0x33; 48]);
            assert_eq!(parsed.body.reportdata, [0x44; 64]);
            assert_eq!(parsed.td15.is_some(), td15);
            assert_eq!(parsed.end, q.len());
        }
        let mut q = sample_quote(4, false);
        q.extend_from_slice(&[0; 8]);
        assert_eq!(TdQuote::parse(&q).unwrap().end, q.len() - 8, "padding is not signature data");
        let at = QUOTE_HEADER_SIZE + 584;
        q[at] += 1;
        assert_eq!(TdQuote::parse(&q).map(|_| ()), Err(TdxReportError::SignatureDataLength(151)));
        q[at] += 8;
        assert!(matches!(TdQuote::parse(&q), Err(TdxReportError::Length { .. })), "signature data past the end");
        q[at] -= 9;
        q[at + 4 + 128] = 5;
        assert_eq!(TdQuote::parse(&q).map(|_| ()), Err(TdxReportError::CertificationDataType(5)));
        let mut q = sample_quote(3, false);
        assert_eq!(TdQuote::parse(&q).map(|_| ()), Err(TdxReportError::QuoteVersion(3)));
        q[0] = 4;
        q[4] = 0;
        assert_eq!(TdQuote::parse(&q).map(|_| ()), Err(TdxReportError::TeeType(0)));
        let mut q = sample_quote(5, true);
        q[48] = 4;
        assert!(TdQuote::parse(&q).unwrap().td15.is_some(), "type 4 starts with the TDX 1.5 body");
        q[48] = 9;
        assert_eq!(TdQuote::parse(&q).map(|_| ()), Err(TdxReportError::BodyDescriptor { body_type: 9, size: 648 }));
        let q = sample_quote(4, false);
        assert!(matches!(TdQuote::parse(&q[..600]), Err(TdxReportError::Length { .. })));
    }

    #[test]
    fn mutated_reports_and_quotes_never_panic() {
        let mut m = crate::mutation::Mutator::new(0x7d5);
        let report = sample_tdreport(1);
        let quotes = [sample_quote(4, false), sample_quote(5, true)];
        let (mut reports_ok, mut quotes_ok) = (0, 0);
        for i in 0..20_000 {
            if let Ok(r) = TdReport::parse(&m.mutate(&report)) {
                reports_ok += 1;
                let _ = r.td_attributes().to_string();
            }
            if let Ok(q) = TdQuote::parse(&m.mutate(&quotes[i % 2])) {
                quotes_ok += 1;
                let _ = q.td_attributes().to_string();
            }
        }
        assert!(reports_ok > 0 && reports_ok < 20_000, "{reports_ok}");
        assert!(quotes_ok > 0 && quotes_ok < 20_000, "{quotes_ok}");
    }
}
