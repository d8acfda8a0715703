//! TD quote verification: the quote's signature, QE report and PCK certificate chain to
//! Intel's SGX root CA, and the platform TCB against Intel's collateral (TCB info, QE
//! identity, CRLs), all by `dcap-qvl` (pure Rust, RustCrypto backend) from collateral
//! given as a file; then the owner's expectations: MRTD, REPORTDATA, TD attributes, and
//! the RTMRs replayed from Halcyon's event log.
//!
//! - Intel TDX DCAP Quote Generation/Verification Library, appendix "TD Quote Format"
//!   (quote versions 4 and 5; header and body read by `halcyon_hal::evidence::tdx_report`,
//!   compared field by field with what the verifier decoded).
//! - Intel PCS API (TCB info v3, QE identity v2), as carried by dcap-qvl's
//!   `QuoteCollateralV3` JSON: `pck_crl_issuer_chain`, `root_ca_crl`, `pck_crl`,
//!   `tcb_info_issuer_chain`, `tcb_info`, `tcb_info_signature`, `qe_identity_issuer_chain`,
//!   `qe_identity`, `qe_identity_signature` (byte fields hex), optionally
//!   `pck_certificate_chain` (PEM) for quotes that do not carry their PCK chain.
//! - The root of trust is Intel's SGX Root CA as dcap-qvl 0.7.1 ships it
//!   (`src/TrustedRootCA.der`, `QuoteVerifier::new_prod`).

use super::{check_bytes, Expectations, PolicyRequirement, Verified, VerifyError, VerifyTime};
use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuoteCollateralV3;
use halcyon_hal::evidence::rtmr::{self, RTMR_KERNEL, RTMR_WORKLOAD};
use halcyon_hal::evidence::tdx_report::{TdAttributes, TdQuote, BODY_TYPE_TD10, BODY_TYPE_TD15};
use halcyon_hal::evidence::EvidenceError;
use halcyon_hal::measurement::{hex, Measurement};

/// The TCB status accepted when none is given.
pub const DEFAULT_TCB_STATUS: &str = "UpToDate";

/// TD attribute flags by name, for `--policy` (TDX Module ABI, table "ATTRIBUTES").
pub fn policy_flags() -> Vec<(&'static str, u64)> {
    vec![
        ("DEBUG", TdAttributes::DEBUG),
        ("SEPT_VE_DISABLE", TdAttributes::SEPT_VE_DISABLE),
        ("MIGRATABLE", TdAttributes::MIGRATABLE),
        ("PKS", TdAttributes::PKS),
        ("KL", TdAttributes::KL),
        ("PERFMON", TdAttributes::PERFMON),
    ]
}

/// Reads collateral JSON (dcap-qvl's `QuoteCollateralV3`, as its `get_collateral` and
/// `dcap-qvl fetch-collateral` write it).
pub fn parse_collateral(json: &[u8]) -> Result<QuoteCollateralV3, VerifyError> {
    serde_json::from_slice(json).map_err(|e| VerifyError::Quote(format!("collateral does not parse: {e}")))
}

/// Full verification of a TD quote with its collateral, then the owner's expectations.
#[cfg(test)]
pub fn verify(quote: &[u8], collateral: &[u8], expect: &Expectations, now: VerifyTime) -> Result<Verified, VerifyError> {
    let mut out = Verified::default();
    verify_into(quote, collateral, expect, now, &mut out).map(|()| out)
}

/// [`verify`], adding each check that passed to `out` (so a failure can be shown after
/// what did verify).
pub fn verify_into(quote: &[u8], collateral: &[u8], expect: &Expectations, now: VerifyTime, out: &mut Verified) -> Result<(), VerifyError> {
    let parsed = TdQuote::parse(quote).map_err(EvidenceError::from)?;
    let body_kind = match parsed.body_type {
        BODY_TYPE_TD10 => "TDX 1.0 body",
        BODY_TYPE_TD15 => "TDX 1.5 body",
        _ => "TDX 1.5 body with extensions",
    };
    // Buffers holding quotes are often zero-padded; anything else after the signature
    // data is not part of the quote, and a changed signature-data length is refused.
    if quote[parsed.end..].iter().any(|&b| b != 0) {
        return Err(VerifyError::Quote(format!("{} bytes after the quote's signature data are not zero padding", quote.len() - parsed.end)));
    }
    out.ok(format!("TD quote, version {}, {body_kind}", parsed.header.version.get()));
    let collateral = parse_collateral(collateral)?;
    let verified = QuoteVerifier::new_prod()
        .allow_debug(expect.allow_debug)
        .verify(quote, &collateral, now.unix_secs())
        .map_err(|e| VerifyError::Quote(format!("{e:#}")))?;
    let advisories = if verified.advisory_ids.is_empty() { String::new() } else { format!(", advisories {}", verified.advisory_ids.join(" ")) };
    out.ok("quote signature, QE report and PCK chain to Intel's SGX Root CA; collateral signatures and CRLs");
    let accepted: Vec<&str> = if expect.tcb_statuses.is_empty() { vec![DEFAULT_TCB_STATUS] } else { expect.tcb_statuses.iter().map(String::as_str).collect() };
    if !accepted.iter().any(|s| s.eq_ignore_ascii_case(&verified.status)) {
        return Err(VerifyError::Quote(format!(
            "platform TCB status is {}{advisories}, accepted: {} (see --tcb-status)",
            verified.status,
            accepted.join(", ")
        )));
    }
    out.ok(format!("platform TCB status {}{advisories}", verified.status));
    let td = verified.report.as_td10().ok_or_else(|| VerifyError::Quote("the verified quote is not a TD quote".into()))?;
    // Defence in depth: what the verifier decoded must be what our layout reads.
    let body = parsed.body;
    let same = td.mr_td == body.mrtd
        && td.report_data == body.reportdata
        && td.td_attributes == body.td_attributes
        && [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3] == body.rtmr;
    if !same {
        return Err(VerifyError::Quote("the verifier's decoding of the TD quote body differs from Halcyon's".into()));
    }
    check_attributes(parsed.td_attributes(), expect, out)?;
    check_bytes(out, "MRTD", expect.measurement.as_deref(), &body.mrtd)?;
    check_bytes(out, "report data", expect.report_data.as_deref(), &body.reportdata)?;
    for (index, expected) in &expect.rtmrs {
        let actual = body.rtmr.get(*index).ok_or_else(|| VerifyError::Usage(format!("there is no RTMR{index}")))?;
        check_bytes(out, &format!("RTMR{index}"), Some(expected), actual)?;
    }
    check_rtmrs(&body.rtmr, expect.event_log.as_deref(), out)?;
    Ok(())
}

fn check_attributes(attributes: TdAttributes, expect: &Expectations, out: &mut Verified) -> Result<(), VerifyError> {
    if attributes.debug() && !expect.allow_debug {
        return Err(VerifyError::Policy(format!("TD attributes {attributes} allow debugging (pass --allow-debug to accept it)")));
    }
    let requirement = expect.policy.clone().unwrap_or_default();
    requirement
        .check(attributes.0, None, &policy_flags())
        .map_err(|e| VerifyError::Policy(format!("TD attributes {e}")))?;
    let checked = if requirement == PolicyRequirement::default() { "no debugging" } else { "as required" };
    out.ok(format!("TD attributes {attributes}: {checked}"));
    Ok(())
}

/// Prints the RTMRs and, given an event log, checks RTMR1 (kernel) and RTMR2 (workloads)
/// against its replay (`halcyon_hal::evidence::rtmr`).
pub fn check_rtmrs(rtmrs: &[[u8; 48]; 4], event_log: Option<&[Measurement]>, out: &mut Verified) -> Result<(), VerifyError> {
    let Some(log) = event_log else {
        for (i, value) in rtmrs.iter().enumerate() {
            out.ok(format!("RTMR{i} {} (not compared: no --event-log)", hex(value)));
        }
        return Ok(());
    };
    let replayed = rtmr::replay(log);
    for index in [RTMR_KERNEL, RTMR_WORKLOAD] {
        if replayed[index] != rtmrs[index] {
            return Err(VerifyError::Mismatch {
                what: format!("RTMR{index}"),
                expected: format!("{} (the event log's {} entries replayed)", hex(&replayed[index]), log.len()),
                actual: hex(&rtmrs[index]),
            });
        }
    }
    out.ok(format!(
        "RTMR{RTMR_KERNEL} {} and RTMR{RTMR_WORKLOAD} {} match the event log ({} entries)",
        hex(&rtmrs[RTMR_KERNEL]),
        hex(&rtmrs[RTMR_WORKLOAD]),
        log.len()
    ));
    Ok(())
}

#[cfg(test)]
mod tests;
