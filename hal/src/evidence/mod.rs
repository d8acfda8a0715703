//! Attestation evidence formats, parsed from untrusted bytes: what a verifier (the
//! host tool `halcyon verify`) or the guest itself reads out of an SEV-SNP attestation
//! report, a TDX TDREPORT or TD quote body, and an RTMR event log.
//!
//! Pure and `no_std` + alloc; nothing here checks a signature (that needs certificates
//! and lives in `image/src/verify/`). Specifications:
//! - AMD SEV Secure Nested Paging Firmware ABI Specification (56860), revision 1.58:
//!   ATTESTATION_REPORT Structure, Guest Policy Structure, TCB_VERSION Structure.
//! - Intel TDX Module ABI Specification (348551), TDREPORT_STRUCT, REPORTMACSTRUCT,
//!   TEE_TCB_INFO, TDINFO_STRUCT; Intel TDX Module Base Architecture Specification
//!   (348549), RTMR extension (TDG.MR.RTMR.EXTEND).
//! - Intel TDX DCAP Quoting Library API (quote format v4/v5), "TD Quote Body".

pub mod rtmr;
pub mod snp_report;
pub mod tdx_report;

/// Everything that can go wrong reading evidence, one variant per module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvidenceError {
    SnpReport(snp_report::SnpReportError),
    TdxReport(tdx_report::TdxReportError),
    Rtmr(rtmr::RtmrError),
}

impl From<snp_report::SnpReportError> for EvidenceError {
    fn from(e: snp_report::SnpReportError) -> Self {
        EvidenceError::SnpReport(e)
    }
}

impl From<tdx_report::TdxReportError> for EvidenceError {
    fn from(e: tdx_report::TdxReportError) -> Self {
        EvidenceError::TdxReport(e)
    }
}

impl From<rtmr::RtmrError> for EvidenceError {
    fn from(e: rtmr::RtmrError) -> Self {
        EvidenceError::Rtmr(e)
    }
}

impl core::fmt::Display for EvidenceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EvidenceError::SnpReport(e) => write!(f, "SNP attestation report: {e}"),
            EvidenceError::TdxReport(e) => write!(f, "TDX report: {e}"),
            EvidenceError::Rtmr(e) => write!(f, "RTMR event log: {e}"),
        }
    }
}

impl core::error::Error for EvidenceError {}
