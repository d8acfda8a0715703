//! TD quote verification against the real quotes and Intel collateral the `dcap-qvl`
//! 0.7.1 crates.io package ships in `sample/` (see `verify::testdata`).

use super::*;
use crate::verify::testdata::{self, DCAP_QVL};
use crate::verify::parse_hex_arg;
use halcyon_hal::measurement::{MeasurementKind, MeasurementLog};

/// The latest issueDate of each sample's TCB info and QE identity (inside every
/// certificate's and CRL's validity and before nextUpdate).
const V4_WHEN: u64 = 1_750_329_147; // 2025-06-19T10:32:27Z
const TD15EX_WHEN: u64 = 1_791_418_186; // 2026-10-08T00:09:46Z
const OUTDATED_WHEN: u64 = 1_771_412_331; // 2026-02-18T10:58:51Z

struct Sample {
    quote: Vec<u8>,
    collateral: Vec<u8>,
    when: VerifyTime,
}

fn sample(name: &str, when: u64) -> Option<Sample> {
    Some(Sample {
        quote: testdata::read(DCAP_QVL, &format!("sample/{name}"))?,
        collateral: testdata::read(DCAP_QVL, &format!("sample/{name}_collateral.json"))?,
        when: testdata::unix(when),
    })
}

fn any_status() -> Expectations {
    Expectations { tcb_statuses: ["UpToDate", "SWHardeningNeeded", "OutOfDate", "ConfigurationNeeded", "OutOfDateConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "TDRelaunchAdvised", "TDRelaunchAdvisedConfigurationNeeded"].map(String::from).to_vec(), ..Default::default() }
}

#[test]
fn real_quotes_verify_v4_and_v5() {
    for (name, when, version) in [("tdx_quote", V4_WHEN, "version 4"), ("tdx_quote_td15ex", TD15EX_WHEN, "version 5")] {
        let Some(s) = sample(name, when) else { return };
        let verified = verify(&s.quote, &s.collateral, &any_status(), s.when).unwrap_or_else(|e| panic!("{name}: {e}"));
        let text = verified.lines.join("\n");
        assert!(text.contains(version), "{text}");
        assert!(text.contains("Intel's SGX Root CA"), "{text}");
        assert!(text.contains("MRTD ") && text.contains("RTMR3 "), "{text}");
        // The MRTD and report data as expected values verify too.
        let parsed = TdQuote::parse(&s.quote).unwrap();
        let expect = Expectations {
            measurement: Some(parsed.body.mrtd.to_vec()),
            report_data: Some(parsed.body.reportdata.to_vec()),
            ..any_status()
        };
        let verified = verify(&s.quote, &s.collateral, &expect, s.when).unwrap();
        assert!(verified.lines.iter().any(|l| l.starts_with("MRTD") && l.ends_with("matches")));
    }
}

#[test]
fn tcb_status_is_enforced() {
    let Some(s) = sample("tdx_quote", V4_WHEN) else { return };
    // The sample's platform is up to date; accepting only another status refuses it.
    verify(&s.quote, &s.collateral, &Expectations::default(), s.when).unwrap();
    let expect = Expectations { tcb_statuses: vec!["OutOfDate".into()], ..Default::default() };
    let e = verify(&s.quote, &s.collateral, &expect, s.when).unwrap_err();
    assert!(e.to_string().contains("TCB status is UpToDate, accepted: OutOfDate"), "{e}");
    // A platform below every TCB level of its collateral is refused whatever is accepted.
    let Some(s) = sample("tdx_quote_outdated", OUTDATED_WHEN) else { return };
    let e = verify(&s.quote, &s.collateral, &any_status(), s.when).unwrap_err();
    assert!(e.to_string().contains("No matching TCB level"), "{e}");
}

#[test]
fn changed_quote_bytes_are_rejected() {
    let Some(s) = sample("tdx_quote", V4_WHEN) else { return };
    let expect = any_status();
    assert!(verify(&s.quote, &s.collateral, &expect, s.when).is_ok());
    // Every byte of the header and the TD quote body (MRTD, RTMRs, REPORTDATA, ...),
    // then the signature-data length, the ECDSA signature, the attestation key and the
    // QE report and its signature, in steps.
    // The sample's signature data holds, in order, the ECDSA signature and attestation
    // key, the QE report and its signature, the QE authentication data and the PCK
    // certificate chain as PEM (PCK leaf 1258..3030, platform CA 3031..3986, then a copy of
    // Intel's root CA at 3987..4935, which is not read: the root is dcap-qvl's own).
    let body_end = 48 + 584;
    // (A PEM line break changed into another whitespace character is the same PEM.)
    let offsets = (0..body_end + 4).chain((body_end + 4..3987).step_by(3)).filter(|&at| s.quote[at] != b'\n');
    for at in offsets {
        let mut tampered = s.quote.clone();
        tampered[at] ^= 0x01;
        assert!(verify(&tampered, &s.collateral, &expect, s.when).is_err(), "a change at {at} was accepted");
    }
    // The zero padding after the signature data (the sample has 70 bytes) is not the
    // quote's; truncated signature data is refused.
    assert!(verify(&s.quote[..4936], &s.collateral, &expect, s.when).is_ok());
    assert!(verify(&s.quote[..4935], &s.collateral, &expect, s.when).is_err());
    let mut padded = s.quote.clone();
    padded[4940] = 1;
    assert!(verify(&padded, &s.collateral, &expect, s.when).is_err());
}

#[test]
fn wrong_or_changed_collateral_is_rejected() {
    let (Some(v4), Some(outdated)) = (sample("tdx_quote", V4_WHEN), sample("tdx_quote_outdated", OUTDATED_WHEN)) else { return };
    let expect = any_status();
    // Another platform's collateral (other FMSPC) for this quote.
    assert!(verify(&v4.quote, &outdated.collateral, &expect, outdated.when).is_err());
    // The TCB info changed by one character: its signature no longer verifies.
    let mut collateral = parse_collateral(&v4.collateral).unwrap();
    collateral.tcb_info = collateral.tcb_info.replacen("\"tcbEvaluationDataNumber\":", "\"tcbEvaluationDataNumber\": ", 1);
    let json = serde_json::to_vec(&collateral).unwrap();
    assert!(verify(&v4.quote, &json, &expect, v4.when).is_err());
    // Expired collateral (a year after).
    assert!(verify(&v4.quote, &v4.collateral, &expect, testdata::unix(V4_WHEN + 365 * 86400)).is_err());
    assert!(matches!(verify(&v4.quote, b"{", &expect, v4.when), Err(VerifyError::Quote(_))));
}

#[test]
fn expectation_mismatches_are_reported() {
    let Some(s) = sample("tdx_quote", V4_WHEN) else { return };
    let mut expect = Expectations { measurement: Some(vec![0; 48]), ..any_status() };
    let e = verify(&s.quote, &s.collateral, &expect, s.when).unwrap_err();
    assert!(matches!(&e, VerifyError::Mismatch { what, .. } if what == "MRTD"), "{e}");
    expect.measurement = None;
    expect.report_data = Some(parse_hex_arg("--report-data", "01", 64).unwrap());
    let e = verify(&s.quote, &s.collateral, &expect, s.when).unwrap_err();
    assert!(matches!(&e, VerifyError::Mismatch { what, .. } if what == "report data"), "{e}");
    // An event log that is not what this TD ran.
    let mut log = MeasurementLog::new();
    log.record(MeasurementKind::Workload, "hello", b"\0asm");
    let expect = Expectations { event_log: Some(log.entries().to_vec()), ..any_status() };
    let e = verify(&s.quote, &s.collateral, &expect, s.when).unwrap_err();
    assert!(e.to_string().contains("RTMR1 is "), "{e}");
    // TD attribute requirements.
    let flags = policy_flags();
    let parsed = TdQuote::parse(&s.quote).unwrap();
    let attributes = parsed.td_attributes();
    let spec = if attributes.0 & TdAttributes::SEPT_VE_DISABLE != 0 { "no-sept-ve-disable" } else { "sept-ve-disable" };
    let expect = Expectations { policy: Some(PolicyRequirement::parse(spec, &flags, false).unwrap()), ..any_status() };
    let e = verify(&s.quote, &s.collateral, &expect, s.when).unwrap_err();
    assert!(e.to_string().contains("SEPT_VE_DISABLE"), "{e}");
}

#[test]
fn event_log_replay_checks_rtmr1_and_rtmr2() {
    let mut log = MeasurementLog::new();
    log.record(MeasurementKind::Kernel, "halcyon", b"kernel");
    log.record(MeasurementKind::Workload, "a", b"A");
    log.record(MeasurementKind::Workload, "b", b"B");
    let mut rtmrs = rtmr::replay(&log);
    rtmrs[0] = [9; 48]; // firmware's, not replayed
    let mut out = Verified::default();
    check_rtmrs(&rtmrs, Some(log.entries()), &mut out).unwrap();
    assert!(out.lines[0].contains("match the event log (3 entries)"));
    // A missing or reordered workload, a renamed one, or a missing kernel entry is a
    // mismatch (the order of entries in different RTMRs is not recorded by them).
    let entries = log.entries();
    let reordered = [entries[0].clone(), entries[2].clone(), entries[1].clone()];
    let renamed = {
        let mut e = entries.to_vec();
        e[1].name = "c".into();
        e
    };
    for wrong in [&entries[..2], &entries[1..], &reordered[..], &renamed[..]] {
        assert!(matches!(check_rtmrs(&rtmrs, Some(wrong), &mut out), Err(VerifyError::Mismatch { .. })));
    }
    let mut out = Verified::default();
    check_rtmrs(&rtmrs, None, &mut out).unwrap();
    assert_eq!(out.lines.len(), 4);
}

#[test]
fn debug_tds_are_refused_unless_allowed() {
    let mut out = Verified::default();
    let debug = TdAttributes(TdAttributes::DEBUG);
    assert!(check_attributes(debug, &Expectations::default(), &mut out).unwrap_err().to_string().contains("allow debugging"));
    let allow = Expectations { allow_debug: true, ..Default::default() };
    assert!(check_attributes(debug, &allow, &mut out).is_ok());
}

#[test]
fn mutated_collateral_never_panics_or_verifies() {
    let Some(s) = sample("tdx_quote", V4_WHEN) else { return };
    let mut state = 0xc011_u64;
    let expect = any_status();
    for _ in 0..300 {
        let collateral = crate::verify::snp::tests::mutate(&mut state, &s.collateral);
        if collateral == s.collateral {
            continue;
        }
        // JSON whitespace is not signed, nor are the copies of Intel's root certificate in
        // the issuer chains (the root is dcap-qvl's own); the TCB info and QE identity
        // and their signatures are, and must be unchanged in anything that verifies.
        if verify(&s.quote, &collateral, &expect, s.when).is_ok() {
            let (original, changed) = (parse_collateral(&s.collateral).unwrap(), parse_collateral(&collateral).unwrap());
            assert!(changed.tcb_info == original.tcb_info && changed.tcb_info_signature == original.tcb_info_signature);
            assert!(changed.qe_identity == original.qe_identity && changed.qe_identity_signature == original.qe_identity_signature);
        }
    }
}

#[test]
fn quote_layouts_agree_with_dcap_qvl() {
    // Halcyon's TD quote layout (hal) reads the same fields as dcap-qvl's decoder, for
    // v4 (TDX 1.0 body), v5 type 3 (TDX 1.5) and v5 type 4 (TDX 1.5 with extensions).
    for (name, body_type) in [("tdx_quote", 2), ("tdx_quote_outdated", 3), ("tdx_quote_td15ex", 4)] {
        let Some(quote) = testdata::read(DCAP_QVL, &format!("sample/{name}")) else { return };
        let ours = TdQuote::parse(&quote).unwrap();
        let theirs = dcap_qvl::quote::Quote::parse(&quote).unwrap();
        assert_eq!(ours.body_type, body_type, "{name}");
        assert_eq!(ours.header.version.get(), theirs.header.version, "{name}");
        let td = theirs.report.as_td10().unwrap();
        assert_eq!(ours.body.mrtd, td.mr_td, "{name}");
        assert_eq!(ours.body.rtmr, [td.rt_mr0, td.rt_mr1, td.rt_mr2, td.rt_mr3], "{name}");
        assert_eq!(ours.body.reportdata, td.report_data, "{name}");
        assert_eq!(ours.body.td_attributes, td.td_attributes, "{name}");
        assert_eq!(ours.body.mrseam, td.mr_seam, "{name}");
        match (ours.td15, theirs.report.as_td15()) {
            (Some(a), Some(b)) => assert_eq!((a.tee_tcb_svn2, a.mrservicetd), (b.tee_tcb_svn2, b.mr_service_td), "{name}"),
            (None, None) => {}
            _ => panic!("{name}: TDX 1.5 body seen by one parser only"),
        }
        // The signature data ends where dcap-qvl's does; what follows is padding.
        assert!(quote[ours.end..].iter().all(|&b| b == 0), "{name}");
    }
}
