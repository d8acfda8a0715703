//! SNP verification against the real Milan report and VCEKs the `sev` 8.0.0 crates.io
//! package ships (see `verify::testdata`), and AMD's roots from the same package.

use super::*;
use crate::verify::testdata::{self, SEV};
use crate::verify::{evidence_bytes, parse_hex_arg};
use halcyon_hal::evidence::snp_report::SIGNED_LEN;

/// MEASUREMENT and REPORT_DATA of `sev` 8.0.0 `tests/certs_data/report_milan.hex`.
const MILAN_MEASUREMENT: &str = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f";
const MILAN_REPORT_DATA: &str = "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd";
/// 2025-01-01T00:00:00Z: inside the Milan VCEK's validity (2023-04-03 to 2030-04-03).
const WHEN: u64 = 1_735_689_600;

fn milan() -> Option<(Vec<u8>, Vec<u8>)> {
    let report = evidence_bytes(&testdata::read(SEV, "tests/certs_data/report_milan.hex")?);
    let vcek = testdata::read(SEV, "tests/certs_data/vcek_milan.der")?;
    Some((report, vcek))
}

fn expecting(measurement: &str, report_data: &str) -> Expectations {
    Expectations {
        measurement: Some(parse_hex_arg("m", measurement, 48).unwrap()),
        report_data: Some(parse_hex_arg("r", report_data, 64).unwrap()),
        ..Expectations::default()
    }
}

#[test]
fn real_milan_report_verifies() {
    let Some((report, vcek)) = milan() else { return };
    let verified = verify(&report, &vcek, &expecting(MILAN_MEASUREMENT, MILAN_REPORT_DATA), testdata::unix(WHEN)).unwrap();
    let text = verified.lines.join("\n");
    assert!(text.contains("version 2"), "{text}");
    assert!(text.contains("AMD's Milan root"), "{text}");
    assert!(text.contains("bootloader 3, tee 0, snp 8, microcode 115"), "{text}");
    assert!(text.contains("guest policy 0x30000 (ABI 0.0; SMT)"), "{text}");
    assert!(text.contains(&format!("measurement {MILAN_MEASUREMENT} matches")), "{text}");
    // Nothing expected: still verified, and said so.
    let verified = verify(&report, &vcek, &Expectations::default(), testdata::unix(WHEN)).unwrap();
    assert!(verified.lines.iter().any(|l| l.contains("not compared")));
    // The VCEK as PEM works as well as DER.
    let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &vcek).unwrap();
    assert!(verify(&report, pem.as_bytes(), &Expectations::default(), testdata::unix(WHEN)).is_ok());
    // ... and a PEM chain file whose first certificate is the VCEK.
    let Some(chain) = testdata::read(SEV, "tests/certs_data/cert_chain_milan") else { return };
    let mut with_chain = pem.into_bytes();
    with_chain.extend_from_slice(&chain);
    assert!(verify(&report, &with_chain, &Expectations::default(), testdata::unix(WHEN)).is_ok());
    // A chain whose first certificate is the ASK is not a VCEK.
    assert!(verify(&report, &chain, &Expectations::default(), testdata::unix(WHEN)).is_err());
}

#[test]
fn fields_agree_with_the_sev_crate_parser() {
    use sev::parser::ByteParser;
    let Some((report, vcek)) = milan() else { return };
    let ours = AttestationReport::parse(&report).unwrap();
    let theirs = sev::firmware::guest::AttestationReport::from_bytes(&report).unwrap();
    assert_eq!(ours.measurement, theirs.measurement);
    assert_eq!(ours.report_data, theirs.report_data);
    assert_eq!(ours.chip_id, theirs.chip_id);
    assert_eq!(ours.policy.get(), u64::from(theirs.policy));
    let (tcb, sev_tcb) = (ours.reported_tcb(), theirs.reported_tcb);
    assert_eq!((tcb.boot_loader, tcb.tee, tcb.snp, tcb.microcode), (sev_tcb.bootloader, sev_tcb.tee, sev_tcb.snp, sev_tcb.microcode));
    let tcb = vcek_tcb(&parse_certificate("VCEK", &vcek).unwrap()).unwrap();
    assert_eq!(tcb.product_name.as_deref(), Some("Milan-B0"));
    assert_eq!((tcb.bl_spl, tcb.tee_spl, tcb.snp_spl, tcb.ucode_spl), (Some(3), Some(0), Some(8), Some(0x73)));
    assert_eq!(tcb.hw_id.as_deref(), Some(&ours.chip_id[..]));
}

#[test]
fn every_single_byte_change_is_rejected() {
    let Some((report, vcek)) = milan() else { return };
    let vcek = parse_certificate("VCEK", &vcek).unwrap();
    let tcb = vcek_tcb(&vcek).unwrap();
    // The signature and TCB checks of `verify` (the chain does not depend on the report).
    let accept = |bytes: &[u8]| -> bool {
        AttestationReport::parse(bytes).is_ok_and(|r| verify_report_signature(r, &vcek).is_ok() && check_tcb(r, &tcb).is_ok())
    };
    assert!(accept(&report));
    for at in 0..report.len() {
        for flip in [0x01, 0x80] {
            let mut tampered = report.clone();
            tampered[at] ^= flip;
            assert!(!accept(&tampered), "a change at {at:#x} was accepted");
        }
    }
    // And through the whole verification, a measured field and the signature.
    for at in [0x08, 0x50, 0x90, 0xC0, 0x180, 0x1A0, 0x2A0, 0x2A0 + 72] {
        let mut tampered = report.clone();
        tampered[at] ^= 1;
        assert!(verify(&tampered, &der_of(&vcek), &Expectations::default(), testdata::unix(WHEN)).is_err(), "{at:#x}");
    }
}

fn der_of(cert: &Certificate) -> Vec<u8> {
    cert.to_der().unwrap()
}

#[test]
fn wrong_chains_are_rejected() {
    let Some((report, vcek_der)) = milan() else { return };
    let vcek = parse_certificate("VCEK", &vcek_der).unwrap();
    let when = testdata::unix(WHEN);
    // The Milan VCEK does not chain to Genoa's or Turin's roots.
    for product in &amd_roots::PRODUCTS[1..] {
        let e = verify_chain_for(product, &vcek, when).unwrap_err();
        assert!(matches!(e, VerifyError::Chain(_)), "{}: {e}", product.name);
    }
    // A changed byte inside the VCEK's signed part breaks the chain (its key is then
    // another, or its extensions are).
    let tbs_len = vcek.tbs_certificate().to_der().unwrap().len();
    for at in [40, 200, tbs_len - 10, vcek_der.len() - 5] {
        let mut tampered = vcek_der.clone();
        tampered[at] ^= 0x01;
        let outcome = verify(&report, &tampered, &Expectations::default(), when);
        assert!(outcome.is_err(), "VCEK byte {at} changed, still verified");
    }
    // Another chip's VCEK (Turin) with a chain of its own: not this report's key.
    let Some(turin) = testdata::read(SEV, "tests/certs_data/vcek_turin.der") else { return };
    let turin_cert = parse_certificate("VCEK", &turin).unwrap();
    let turin_tcb = vcek_tcb(&turin_cert).unwrap();
    assert_eq!(turin_tcb.product_name.as_deref(), Some("Turin"));
    assert_eq!(turin_tcb.hw_id.as_ref().map(Vec::len), Some(8), "Turin hwIDs are 8 bytes");
    let product = verify_vcek_chain(&turin_cert, &turin_tcb, when).expect("the Turin VCEK chains to Turin's roots");
    assert_eq!(product.name, "Turin");
    let e = verify(&report, &turin, &Expectations::default(), when).unwrap_err();
    assert!(matches!(e, VerifyError::Tcb(_)), "{e}");
    // A report of another chip at the same TCB: only the signature can tell.
    let chip_tcb = VcekTcb { fmc_spl: None, ..vcek_tcb(&vcek).unwrap() };
    assert!(check_tcb(AttestationReport::parse(&report).unwrap(), &chip_tcb).is_ok());
    assert!(matches!(verify_report_signature(AttestationReport::parse(&report).unwrap(), &turin_cert), Err(VerifyError::Signature(_))));
    // Out of the VCEK's validity.
    let e = verify(&report, &vcek_der, &Expectations::default(), testdata::unix(1_924_992_000)).unwrap_err();
    assert!(e.to_string().contains("VCEK certificate: valid from"), "{e}");
}

#[test]
fn published_chains_match_the_builtin_roots() {
    // `cert_chain_milan`/`cert_chain_turin` are AMD KDS's ASK + ARK as fetched by the
    // sev authors; the roots we ship (the same package's builtin constants) must agree.
    for (file, product) in [("cert_chain_milan", 0), ("cert_chain_turin", 2)] {
        let Some(pem) = testdata::read(SEV, &format!("tests/certs_data/{file}")) else { return };
        let chain = Certificate::load_pem_chain(&pem).unwrap();
        let ark = parse_certificate("ARK", amd_roots::PRODUCTS[product].ark_pem).unwrap();
        let ask = parse_certificate("ASK", amd_roots::PRODUCTS[product].ask_pem).unwrap();
        assert_eq!(chain, [ask, ark], "{file}");
    }
}

#[test]
fn expectation_mismatches_are_reported() {
    let Some((report, vcek)) = milan() else { return };
    let when = testdata::unix(WHEN);
    let mut wrong_measurement = MILAN_MEASUREMENT.to_string();
    wrong_measurement.replace_range(0..2, "7b");
    let e = verify(&report, &vcek, &expecting(&wrong_measurement, MILAN_REPORT_DATA), when).unwrap_err();
    assert!(matches!(&e, VerifyError::Mismatch { what, .. } if what == "measurement"), "{e}");
    assert!(e.to_string().starts_with(&format!("measurement is {MILAN_MEASUREMENT}, expected 7b")), "{e}");
    let e = verify(&report, &vcek, &expecting(MILAN_MEASUREMENT, "d447"), when).unwrap_err();
    assert!(matches!(&e, VerifyError::Mismatch { what, .. } if what == "report data"), "{e}");
    // Policy requirements: the report's policy is 0x30000 (SMT allowed).
    let flags = policy_flags();
    let mut expect = Expectations { policy: Some(PolicyRequirement::parse("no-smt", &flags, true).unwrap()), ..Default::default() };
    let e = verify(&report, &vcek, &expect, when).unwrap_err();
    assert!(e.to_string().contains("sets SMT"), "{e}");
    expect.policy = Some(PolicyRequirement::parse("exact=0x30000,no-debug,no-migrate-ma", &flags, true).unwrap());
    assert!(verify(&report, &vcek, &expect, when).is_ok());
    expect.policy = Some(PolicyRequirement::parse("min-abi=1.51", &flags, true).unwrap());
    assert!(verify(&report, &vcek, &expect, when).unwrap_err().to_string().contains("older"));
    // SNP has no RTMRs.
    let expect = Expectations { event_log: Some(Vec::new()), ..Default::default() };
    assert!(matches!(verify(&report, &vcek, &expect, when), Err(VerifyError::Usage(_))));
}

#[test]
fn debug_policies_and_unsigned_reports_are_refused() {
    // Synthetic (unsigned) reports exercise the checks that come before or apart from
    // the signature.
    let mut bytes = vec![0u8; 0x4A0];
    bytes[0] = 2;
    bytes[0x08..0x10].copy_from_slice(&(0x30000u64 | GuestPolicy::DEBUG).to_le_bytes());
    bytes[0x34] = 1;
    let report = AttestationReport::parse(&bytes).unwrap();
    let mut out = Verified::default();
    let e = check_policy(report, &Expectations::default(), &mut out).unwrap_err();
    assert!(e.to_string().contains("allows debugging"), "{e}");
    let allow = Expectations { allow_debug: true, ..Default::default() };
    assert!(check_policy(report, &allow, &mut out).is_ok());
    bytes[0x48] = 7 << 2; // SIGNING_KEY none
    let e = verify(&bytes, b"", &Expectations::default(), testdata::unix(WHEN)).unwrap_err();
    assert!(e.to_string().contains("not signed"), "{e}");
    bytes[0x48] = 1 << 2; // VLEK
    assert!(verify(&bytes, b"", &Expectations::default(), testdata::unix(WHEN)).unwrap_err().to_string().contains("VLEK"));
    bytes[0x48] = 2; // MASK_CHIP_KEY
    assert!(verify(&bytes, b"", &Expectations::default(), testdata::unix(WHEN)).unwrap_err().to_string().contains("MASK_CHIP_KEY"));
    assert!(matches!(verify(&bytes[1..], b"", &Expectations::default(), testdata::unix(WHEN)), Err(VerifyError::Evidence(_))));
}

#[test]
fn every_builtin_root_signs_its_ask() {
    // AMD's Milan, Genoa and Turin ARKs are self-signed and sign their ASKs with the
    // RSASSA-PSS parameters this verifier requires; each ARK signs no other product's ASK.
    for (i, product) in amd_roots::PRODUCTS.iter().enumerate() {
        let ark = parse_certificate("ARK", product.ark_pem).unwrap();
        let ask = parse_certificate("ASK", product.ask_pem).unwrap();
        verify_pss_signed(&ark, &ark, "ARK").unwrap_or_else(|e| panic!("{}: {e}", product.name));
        verify_pss_signed(&ark, &ask, "ASK").unwrap_or_else(|e| panic!("{}: {e}", product.name));
        check_validity(&ark, "ARK", testdata::unix(WHEN)).unwrap();
        let other = &amd_roots::PRODUCTS[(i + 1) % amd_roots::PRODUCTS.len()];
        let other_ask = parse_certificate("ASK", other.ask_pem).unwrap();
        assert!(verify_pss_signed(&ark, &other_ask, "ASK").is_err(), "{} signs {}", product.name, other.name);
    }
}

/// xorshift64*, seeded: the same mutation scheme as hal's `mutation.rs`, for the
/// host-side parsers (report, VCEK certificate) behind `verify`.
pub(crate) fn mutate(state: &mut u64, input: &[u8]) -> Vec<u8> {
    let mut next = || {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut out = input.to_vec();
    for _ in 0..1 + next() % 3 {
        let at = (next() as usize) % out.len().max(1);
        match next() % 4 {
            0 if !out.is_empty() => out[at] ^= 1 << (next() % 8),
            1 if !out.is_empty() => out[at] = [0, 1, 0x7f, 0x80, 0xff][(next() % 5) as usize],
            2 => out.truncate(at),
            _ => out.insert(at, next() as u8),
        }
    }
    out
}

#[test]
fn mutated_reports_and_vceks_never_panic_or_verify() {
    let Some((report, vcek)) = milan() else { return };
    let mut state = 0x5eed_u64;
    for i in 0..400 {
        let (r, v) = if i % 2 == 0 { (mutate(&mut state, &report), vcek.clone()) } else { (report.clone(), mutate(&mut state, &vcek)) };
        if r == report && v == vcek {
            continue;
        }
        // A mutated VCEK may still verify only if the change is outside what is signed
        // and read (none such exists in DER); a mutated report never does.
        if let Ok(verified) = verify(&r, &v, &Expectations::default(), testdata::unix(WHEN)) {
            assert!(r == report, "mutated report verified: {:?}", verified.lines);
            panic!("mutated VCEK verified");
        }
    }
}

/// Verifies a published report with its VCEK, then checks that any change to a signed
/// byte is refused (signature and TCB checks, as in `every_single_byte_change_is_rejected`).
fn verify_published(report: &[u8], vcek_bytes: &[u8], when: u64, product: &str, measurement: &str) {
    let verified = verify(report, vcek_bytes, &Expectations::default(), testdata::unix(when)).unwrap();
    assert!(verified.lines.iter().any(|l| l.contains(&format!("AMD's {product} root"))), "{:?}", verified.lines);
    assert_eq!(hex(&AttestationReport::parse(report).unwrap().measurement), measurement);
    let vcek = parse_certificate("VCEK", vcek_bytes).unwrap();
    let tcb = vcek_tcb(&vcek).unwrap();
    for at in 0..SIGNED_LEN {
        let mut tampered = report.to_vec();
        tampered[at] ^= 0x01;
        let accepted = AttestationReport::parse(&tampered)
            .is_ok_and(|r| verify_report_signature(r, &vcek).is_ok() && check_tcb(r, &tcb).is_ok());
        assert!(!accepted, "{product}: a change at {at:#x} was accepted");
    }
}


#[test]
fn published_genoa_report_verifies() {
    // confidential-containers/trustee, deps/verifier/test_data/az-snp-vtpm/: an Azure
    // CVM's evidence (its "report" is an HCL report: a 32-byte header, then the SNP
    // ATTESTATION_REPORT, version 3, from a Genoa part) and that chip's VCEK.
    let (Some(evidence), Some(vcek)) =
        (testdata::shared("snp/trustee/evidence-genoa.json"), testdata::shared("snp/trustee/vcek-genoa.pem"))
    else {
        return;
    };
    let evidence: serde_json::Value = serde_json::from_slice(&evidence).unwrap();
    let hcl: Vec<u8> = serde_json::from_value(evidence["report"].clone()).unwrap();
    let report = &hcl[32..32 + 0x4A0];
    // 2025-06-01: inside the VCEK's validity (2025-01-24 to 2032-01-24).
    verify_published(report, &vcek, 1_748_736_000, "Genoa",
        "f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae");
}

#[test]
fn published_milan_report_of_another_chip_verifies() {
    // confidential-containers/trustee, deps/verifier/test_data/snp/: test-report.bin
    // (version 2, Milan) and its VCEK; test-vlek-report.bin is signed with a VLEK.
    let (Some(report), Some(vcek)) = (testdata::shared("snp/trustee/test-report.bin"), testdata::shared("snp/trustee/test-vcek.der"))
    else {
        return;
    };
    verify_published(&report, &vcek, WHEN, "Milan",
        "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c");
    // The sev package's Milan VCEK is another chip's.
    let Some((_, other_vcek)) = milan() else { return };
    assert!(matches!(verify(&report, &other_vcek, &Expectations::default(), testdata::unix(WHEN)), Err(VerifyError::Tcb(_))));
    let Some(vlek_report) = testdata::shared("snp/trustee/test-vlek-report.bin") else { return };
    let e = verify(&vlek_report, &vcek, &Expectations::default(), testdata::unix(WHEN)).unwrap_err();
    assert!(e.to_string().contains("VLEK"), "{e}");
}
