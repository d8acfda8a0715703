//! [`Platform`] for a TDX guest, over the [`TdCall`] and [`TdxPages`] boundary: TDREPORTs
//! through TDG.MR.REPORT, quotes through GetQuote where the host offers a quoting
//! service, RTMR extension through TDG.MR.RTMR.EXTEND.
//!
//! Sealing: TDX has no instruction that derives a key from the TD's measurement (there
//! is no counterpart of SEV-SNP's MSG_KEY_REQ), so this platform answers `Unsupported`
//! and never makes a key up. A key released by a verifier after attestation (a key
//! broker) would be the way to add it; that is not implemented.

use super::get_quote::{self, QuoteError};
use super::tdcall::{self, TdCallError, TdInfo};
use crate::evidence::tdx_report::TdReport;
use super::{TdCall, TdxPages};
use crate::platform::{Evidence, EvidenceFormat, Platform, PlatformError, SealBinding, SealingKey, TeeKind};
use alloc::vec::Vec;

const WITHOUT_QUOTES: &[EvidenceFormat] = &[EvidenceFormat::TdxReport];
const WITH_QUOTES: &[EvidenceFormat] = &[EvidenceFormat::TdxReport, EvidenceFormat::TdxQuote];

pub const NO_SEALING: &str = "TDX has no hardware sealing key (no key derivation bound to the measurement); \
     a key released after attestation is not implemented";

/// The TDX platform.
pub struct TdxPlatform<T: TdCall + TdxPages> {
    t: T,
    info: TdInfo,
    /// Whether the host's quoting service answered; `None` until the first attempt.
    quote_offered: Option<bool>,
}

impl<T: TdCall + TdxPages> TdxPlatform<T> {
    /// Reads TDG.VP.INFO (GPA width, attributes) once.
    pub fn new(mut t: T) -> Result<Self, TdCallError> {
        let info = tdcall::vp_info(&mut t)?;
        let quote_offered = if t.quote_buffer().is_none() { Some(false) } else { None };
        Ok(Self { t, info, quote_offered })
    }

    pub fn info(&self) -> &TdInfo {
        &self.info
    }

    /// The boundary, for the kernel's other calls.
    pub fn tdcall(&mut self) -> &mut T {
        &mut self.t
    }

    fn tdreport(&mut self, report_data: &[u8; 64]) -> Result<[u8; 1024], PlatformError> {
        let report = tdcall::mr_report(&mut self.t, report_data).map_err(|e| match e {
            TdCallError::Status(tdcall::TdxStatus::TdxOperandInvalid, _) => PlatformError::InvalidArgument("TDG.MR.REPORT refused its operands"),
            _ => PlatformError::Failure("TDG.MR.REPORT failed"),
        })?;
        let parsed = TdReport::parse(&report).map_err(|_| PlatformError::Failure("the TDX module returned a malformed TDREPORT"))?;
        if &parsed.report_mac.reportdata != report_data {
            return Err(PlatformError::Failure("the TDREPORT does not bind the requested report data"));
        }
        Ok(report)
    }
}

fn quote_error(e: QuoteError) -> PlatformError {
    match e {
        QuoteError::NoBuffer | QuoteError::NotOffered => PlatformError::Unsupported("the host offers no TD quoting service"),
        QuoteError::Busy => PlatformError::Failure("an earlier quote request is still in flight"),
        QuoteError::Timeout => PlatformError::Failure("the host's quoting service did not answer in time"),
        QuoteError::HostError => PlatformError::Failure("the host's quoting service failed"),
        QuoteError::BufferTooSmall => PlatformError::Failure("the GetQuote buffer is too small"),
        QuoteError::VmCall(_) => PlatformError::Failure("the GetQuote call failed"),
        QuoteError::BadVersion(_) | QuoteError::UnknownStatus(_) | QuoteError::BadLength(_) | QuoteError::NotAQuote | QuoteError::ReportDataMismatch => {
            PlatformError::Failure("the host returned a malformed quote")
        }
    }
}

impl<T: TdCall + TdxPages> Platform for TdxPlatform<T> {
    fn kind(&self) -> TeeKind {
        TeeKind::Tdx
    }

    fn evidence_formats(&self) -> &'static [EvidenceFormat] {
        match self.quote_offered {
            Some(false) => WITHOUT_QUOTES,
            _ => WITH_QUOTES,
        }
    }

    fn attestation_report(&mut self, format: EvidenceFormat, report_data: &[u8; 64]) -> Result<Evidence, PlatformError> {
        match format {
            EvidenceFormat::TdxReport => {
                let report = self.tdreport(report_data)?;
                Ok(Evidence { format, report: report.to_vec(), certificates: Vec::new() })
            }
            EvidenceFormat::TdxQuote => {
                if self.quote_offered == Some(false) {
                    return Err(quote_error(QuoteError::NotOffered));
                }
                let report = self.tdreport(report_data)?;
                match get_quote::get_quote(&mut self.t, &report, report_data, self.info.shared_bit()) {
                    Ok(quote) => {
                        self.quote_offered = Some(true);
                        // The PCK certificate chain travels inside the quote's signature data.
                        Ok(Evidence { format, report: quote, certificates: Vec::new() })
                    }
                    Err(e) => {
                        if matches!(e, QuoteError::NotOffered | QuoteError::NoBuffer) {
                            self.quote_offered = Some(false);
                        }
                        Err(quote_error(e))
                    }
                }
            }
            EvidenceFormat::SevSnpReport => Err(PlatformError::Unsupported("a TD produces TDX reports and quotes only")),
        }
    }

    fn sealing_key(&mut self, _: SealBinding, _: &[u8; 32]) -> Result<SealingKey, PlatformError> {
        Err(PlatformError::Unsupported(NO_SEALING))
    }

    fn extend_runtime_measurement(&mut self, index: u32, digest: &[u8; 48]) -> Result<(), PlatformError> {
        tdcall::rtmr_extend(&mut self.t, index, digest).map_err(|e| match e {
            TdCallError::InvalidArgument => PlatformError::InvalidArgument("RTMR index must be 0..=3"),
            _ => PlatformError::Failure("TDG.MR.RTMR.EXTEND failed"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tdx::sim::{QuoteHost, SimTdx, MRTD};
    use sha2::{Digest, Sha384};

    #[test]
    fn reports_and_quotes() {
        let mut p = TdxPlatform::new(SimTdx::new()).unwrap();
        assert_eq!(p.kind(), TeeKind::Tdx);
        assert_eq!(p.evidence_formats(), WITH_QUOTES);
        let report = p.attestation_report(EvidenceFormat::TdxReport, &[0x11; 64]).unwrap();
        assert_eq!(report.report.len(), 1024);
        assert_eq!(&report.report[0x80..0xC0], &[0x11; 64]);
        assert_eq!(&report.report[0x210..0x240], &MRTD);
        let quote = p.attestation_report(EvidenceFormat::TdxQuote, &[0x22; 64]).unwrap();
        assert_eq!(&quote.report[48 + 520..48 + 584], &[0x22; 64]);
        assert!(matches!(p.attestation_report(EvidenceFormat::SevSnpReport, &[0; 64]), Err(PlatformError::Unsupported(_))));
    }

    #[test]
    fn quotes_only_where_the_host_offers_them() {
        let mut p = TdxPlatform::new(SimTdx::new().without_quote_buffer()).unwrap();
        assert_eq!(p.evidence_formats(), WITHOUT_QUOTES);
        assert!(matches!(p.attestation_report(EvidenceFormat::TdxQuote, &[0; 64]), Err(PlatformError::Unsupported(_))));
        let mut sim = SimTdx::new();
        sim.quote_host = QuoteHost::NoVmcall;
        let mut p = TdxPlatform::new(sim).unwrap();
        assert_eq!(p.evidence_formats(), WITH_QUOTES, "unknown until asked");
        assert!(matches!(p.attestation_report(EvidenceFormat::TdxQuote, &[0; 64]), Err(PlatformError::Unsupported(_))));
        assert_eq!(p.evidence_formats(), WITHOUT_QUOTES);
        // Reports still work.
        p.attestation_report(EvidenceFormat::TdxReport, &[0; 64]).unwrap();
        let mut sim = SimTdx::new();
        sim.quote_host = QuoteHost::OtherReportData;
        let mut p = TdxPlatform::new(sim).unwrap();
        assert_eq!(p.attestation_report(EvidenceFormat::TdxQuote, &[0; 64]).map(|_| ()), Err(PlatformError::Failure("the host returned a malformed quote")));
    }

    #[test]
    fn no_sealing_key_is_made_up() {
        let mut p = TdxPlatform::new(SimTdx::new()).unwrap();
        assert_eq!(p.sealing_key(SealBinding::LaunchMeasurement, &[0; 32]).map(|_| ()), Err(PlatformError::Unsupported(NO_SEALING)));
        assert_eq!(p.sealing_key(SealBinding::Workload, &[0; 32]).map(|_| ()), Err(PlatformError::Unsupported(NO_SEALING)));
    }

    #[test]
    fn rtmr_extension_is_replayable() {
        let mut p = TdxPlatform::new(SimTdx::new()).unwrap();
        let digest: [u8; 48] = Sha384::digest(b"workload").into();
        p.extend_runtime_measurement(2, &digest).unwrap();
        // A verifier replays the event log: RTMR = SHA-384(RTMR || digest), from zero.
        let expected: [u8; 48] = Sha384::new().chain_update([0u8; 48]).chain_update(digest).finalize().into();
        let report = p.attestation_report(EvidenceFormat::TdxReport, &[0; 64]).unwrap();
        assert_eq!(&report.report[0x2D0 + 2 * 48..0x2D0 + 3 * 48], &expected);
        assert!(matches!(p.extend_runtime_measurement(4, &digest), Err(PlatformError::InvalidArgument(_))));
    }

    /// The kernel's order (`platform::extend_runtime_measurement`): each workload's entry
    /// as it loads, the kernel's own after the first one. The TDREPORT's RTMRs equal what a
    /// verifier replays from the log in log order, whatever the interleaving across RTMRs.
    #[test]
    fn the_kernel_order_of_extensions_replays_from_the_log() {
        use crate::evidence::rtmr;
        use crate::evidence::tdx_report::TdReport;
        use crate::measurement::{MeasurementKind, MeasurementLog};
        let mut p = TdxPlatform::new(SimTdx::new()).unwrap();
        let mut log = MeasurementLog::new();
        log.record(MeasurementKind::Kernel, "halcyon", b"kernel image");
        let extend = |p: &mut TdxPlatform<SimTdx>, m: &crate::measurement::Measurement| {
            p.extend_runtime_measurement(rtmr::rtmr_index(m.kind) as u32, &rtmr::event_digest(m)).unwrap()
        };
        for (i, name) in ["first", "second"].into_iter().enumerate() {
            let m = log.record(MeasurementKind::Workload, name, name.as_bytes()).clone();
            extend(&mut p, &m);
            if i == 0 {
                let kernel = log.entries()[0].clone();
                extend(&mut p, &kernel);
            }
        }
        let report = p.attestation_report(EvidenceFormat::TdxReport, &[0; 64]).unwrap();
        let parsed = TdReport::parse(&report.report).unwrap();
        let expected = rtmr::replay(log.entries());
        assert_eq!(parsed.td_info.rtmr, expected);
        assert_ne!(expected[rtmr::RTMR_KERNEL], [0; 48]);
        // The text log the kernel prints round-trips through the verifier's parser.
        let text = rtmr::format_event_log(log.entries()).unwrap();
        assert_eq!(rtmr::replay(&rtmr::parse_event_log(&text).unwrap()), expected);
    }

    #[test]
    fn a_bad_vp_info_stops_construction() {
        let mut sim = SimTdx::new();
        sim.gpaw = 0;
        assert!(TdxPlatform::new(sim).is_err());
    }
}
