//! SEV-SNP attestation report verification: the report's ECDSA P-384 signature with a
//! VCEK, the VCEK -> ASK -> ARK chain (RSASSA-PSS with SHA-384) to AMD's published roots,
//! the VCEK's TCB and chip-ID extensions against the report, then the owner's
//! expectations (measurement, report data, guest policy).
//!
//! - SNP ABI 56860 rev 1.58: ATTESTATION_REPORT (parsed by `halcyon_hal::evidence`),
//!   section "Signature Format" (R and S little-endian in the report, over bytes
//!   0x0..0x2A0 hashed with SHA-384).
//! - AMD 57230 "VCEK Certificate and KDS Interface Specification" rev 0.51: certificate
//!   chain ARK (self-signed) -> ASK -> VCEK, all RSASSA-PSS, SHA-384, MGF1 SHA-384, salt 48
//!   (section "Certificate Chain"); table "VCEK Certificate Extensions" (OIDs under
//!   1.3.6.1.4.1.3704.1: productName, blSPL, teeSPL, snpSPL, ucodeSPL, fmcSPL, hwID).

use super::amd_roots::{self, AmdProduct};
use super::{check_bytes, Expectations, PolicyRequirement, Verified, VerifyError, VerifyTime};
use der::asn1::{Ia5StringRef, ObjectIdentifier};
use der::{Decode, DecodePem, Encode};
use halcyon_hal::evidence::snp_report::{AttestationReport, GuestPolicy, SigningKey, TcbLayout};
use halcyon_hal::measurement::hex;
use p384::ecdsa::signature::Verifier;
use rsa::pkcs1::RsaPssParams;
use rsa::pkcs8::DecodePublicKey;
use sha2::Sha384;
use x509_cert::Certificate;

/// id-RSASSA-PSS (RFC 8017, appendix C).
const OID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// id-sha384 (RFC 8017, appendix C / NIST CSOR).
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
/// id-mgf1 (RFC 8017, appendix C).
const OID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
/// id-ecPublicKey (RFC 5480).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp384r1 (RFC 5480).
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// PSS salt length AMD uses (57230, "Certificate Chain"): the SHA-384 output size.
const PSS_SALT_LEN: u8 = 48;

/// VCEK extension OIDs (57230, table "VCEK Certificate Extensions").
const OID_PRODUCT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.2");
const OID_BL_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.1");
const OID_TEE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.2");
const OID_SNP_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.3");
const OID_UCODE_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.8");
const OID_FMC_SPL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.3.9");
const OID_HW_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.3704.1.4");

/// Guest policy flags by name, for `--policy` (56860 table "Guest Policy Structure").
pub fn policy_flags() -> Vec<(&'static str, u64)> {
    GuestPolicy::FLAGS.to_vec()
}

/// Parses a certificate given as DER or PEM. A PEM file may hold a chain (as tools
/// write VCEK, ASK and ARK together): its first certificate is taken; the ASK and ARK
/// used are always AMD's built-in ones.
pub fn parse_certificate(cert: &'static str, bytes: &[u8]) -> Result<Certificate, VerifyError> {
    let bad = |reason: String| VerifyError::Certificate { cert, reason };
    if bytes.starts_with(b"-----BEGIN") {
        const END: &[u8] = b"-----END CERTIFICATE-----";
        let end = bytes.windows(END.len()).position(|w| w == END).ok_or_else(|| bad("the PEM file holds no certificate".into()))?;
        Certificate::from_pem(&bytes[..end + END.len()]).map_err(|e| bad(format!("does not parse: {e}")))
    } else {
        Certificate::from_der(bytes).map_err(|e| bad(format!("does not parse: {e}")))
    }
}

/// The TCB and chip ID a VCEK was issued for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VcekTcb {
    pub product_name: Option<String>,
    pub bl_spl: Option<u8>,
    pub tee_spl: Option<u8>,
    pub snp_spl: Option<u8>,
    pub ucode_spl: Option<u8>,
    pub fmc_spl: Option<u8>,
    pub hw_id: Option<Vec<u8>>,
}

/// Reads the AMD extensions of a VCEK. SPL values are DER INTEGERs inside the
/// extension value; hwID is the raw chip ID (64 bytes; 8 on Turin); productName an IA5String.
pub fn vcek_tcb(vcek: &Certificate) -> Result<VcekTcb, VerifyError> {
    let bad = |what: &str| VerifyError::Certificate { cert: "VCEK", reason: format!("{what} extension is malformed") };
    let mut tcb = VcekTcb::default();
    for ext in vcek.tbs_certificate().extensions().map(|e| e.as_slice()).unwrap_or(&[]) {
        let value = ext.extn_value.as_bytes();
        let spl = |name: &str| u8::from_der(value).map(Some).map_err(|_| bad(name));
        match ext.extn_id {
            id if id == OID_BL_SPL => tcb.bl_spl = spl("blSPL")?,
            id if id == OID_TEE_SPL => tcb.tee_spl = spl("teeSPL")?,
            id if id == OID_SNP_SPL => tcb.snp_spl = spl("snpSPL")?,
            id if id == OID_UCODE_SPL => tcb.ucode_spl = spl("ucodeSPL")?,
            id if id == OID_FMC_SPL => tcb.fmc_spl = spl("fmcSPL")?,
            id if id == OID_HW_ID => tcb.hw_id = Some(value.to_vec()),
            id if id == OID_PRODUCT_NAME => {
                tcb.product_name = Some(Ia5StringRef::from_der(value).map_err(|_| bad("productName"))?.to_string())
            }
            _ => {}
        }
    }
    Ok(tcb)
}

/// Checks that `subject` is signed by `issuer` with RSASSA-PSS / SHA-384 / MGF1-SHA-384 /
/// salt 48, that the names chain, and that `subject` is valid at `now`.
fn verify_pss_signed(issuer: &Certificate, subject: &Certificate, subject_role: &'static str) -> Result<(), VerifyError> {
    let tbs = subject.tbs_certificate();
    let issuer_name = issuer.tbs_certificate().subject();
    let chain_err = |reason: String| VerifyError::Chain(format!("{subject_role} (issued by {}) is not signed by {issuer_name}: {reason}", tbs.issuer()));
    if tbs.issuer() != issuer_name {
        return Err(chain_err("the names differ".into()));
    }
    let alg = subject.signature_algorithm();
    if alg != tbs.signature() {
        return Err(chain_err("signatureAlgorithm differs from the TBS signature field".into()));
    }
    if alg.oid != OID_RSASSA_PSS {
        return Err(chain_err(format!("algorithm {} is not RSASSA-PSS", alg.oid)));
    }
    let params = alg.parameters.as_ref().ok_or_else(|| chain_err("RSASSA-PSS parameters are missing".into()))?;
    let params_der = params.to_der().map_err(|e| chain_err(e.to_string()))?;
    let params = RsaPssParams::<der::Any>::from_der(&params_der).map_err(|e| chain_err(format!("PSS parameters: {e}")))?;
    let mgf_hash = params.mask_gen.parameters.as_ref().map(|p| p.oid);
    if params.hash.oid != OID_SHA384 || params.mask_gen.oid != OID_MGF1 || mgf_hash != Some(OID_SHA384) || params.salt_len != PSS_SALT_LEN {
        return Err(chain_err("PSS parameters are not SHA-384, MGF1 with SHA-384, salt 48".into()));
    }
    let spki = issuer.tbs_certificate().subject_public_key_info().to_der().map_err(|e| chain_err(e.to_string()))?;
    let key = rsa::PublicKey::from_public_key_der(&spki).map_err(|e| chain_err(format!("issuer key: {e}")))?;
    let signature = rsa::pss::Signature::try_from(subject.signature().raw_bytes()).map_err(|e| chain_err(e.to_string()))?;
    let tbs_der = tbs.to_der().map_err(|e| chain_err(e.to_string()))?;
    rsa::pss::VerifyingKey::<Sha384>::new(key).verify(&tbs_der, &signature).map_err(|_| chain_err("signature does not verify".into()))
}

fn check_validity(cert: &Certificate, role: &'static str, now: VerifyTime) -> Result<(), VerifyError> {
    let validity = cert.tbs_certificate().validity();
    let (from, until) = (std::time::SystemTime::from(&validity.not_before), std::time::SystemTime::from(&validity.not_after));
    if now.0 < from || now.0 > until {
        return Err(VerifyError::Certificate {
            cert: role,
            reason: format!("valid from {} to {}, not at the time of verification", validity.not_before, validity.not_after),
        });
    }
    Ok(())
}

/// Verifies VCEK -> ASK -> ARK for one product: ARK self-signed, ASK by ARK, VCEK by ASK,
/// all valid at `now`.
fn verify_chain_for(product: &AmdProduct, vcek: &Certificate, now: VerifyTime) -> Result<(), VerifyError> {
    let ark = parse_certificate("ARK", product.ark_pem)?;
    let ask = parse_certificate("ASK", product.ask_pem)?;
    verify_pss_signed(&ark, &ark, "ARK")?;
    verify_pss_signed(&ark, &ask, "ASK")?;
    verify_pss_signed(&ask, vcek, "VCEK")?;
    check_validity(&ark, "ARK", now)?;
    check_validity(&ask, "ASK", now)?;
    check_validity(vcek, "VCEK", now)
}

/// Verifies the chain to the first known product it chains to; returns that product.
pub fn verify_vcek_chain(vcek: &Certificate, tcb: &VcekTcb, now: VerifyTime) -> Result<AmdProduct, VerifyError> {
    let candidates = amd_roots::candidates(tcb.product_name.as_deref());
    let mut last = VerifyError::Chain(format!(
        "no AMD root is known for product {}",
        tcb.product_name.as_deref().unwrap_or("(none named)")
    ));
    for product in candidates {
        match verify_chain_for(&product, vcek, now) {
            Ok(()) => return Ok(product),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Verifies the report's signature with the VCEK's P-384 key.
pub fn verify_report_signature(report: &AttestationReport, vcek: &Certificate) -> Result<(), VerifyError> {
    let spki = vcek.tbs_certificate().subject_public_key_info();
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    if spki.algorithm.oid != OID_EC_PUBLIC_KEY || curve != Some(OID_SECP384R1) {
        return Err(VerifyError::Certificate { cert: "VCEK", reason: "its key is not an ECDSA P-384 key".into() });
    }
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .map_err(|_| VerifyError::Certificate { cert: "VCEK", reason: "its P-384 public key is not a curve point".into() })?;
    let (r, s) = report
        .signature_rs_be()
        .ok_or_else(|| VerifyError::Signature("R or S is wider than a P-384 scalar".into()))?;
    let signature = p384::ecdsa::Signature::from_scalars(r, s)
        .map_err(|_| VerifyError::Signature("R or S is zero or not below the group order".into()))?;
    key.verify(report.signed_bytes(), &signature)
        .map_err(|_| VerifyError::Signature("the report is not signed by this VCEK".into()))
}

/// The report's REPORTED_TCB and CHIP_ID must be those the VCEK was issued for.
pub fn check_tcb(report: &AttestationReport, tcb: &VcekTcb) -> Result<String, VerifyError> {
    let reported = report.reported_tcb();
    let pairs = [
        ("bootloader", reported.boot_loader, tcb.bl_spl),
        ("tee", reported.tee, tcb.tee_spl),
        ("snp", reported.snp, tcb.snp_spl),
        ("microcode", reported.microcode, tcb.ucode_spl),
    ];
    for (name, in_report, in_cert) in pairs {
        match in_cert {
            None => return Err(VerifyError::Tcb(format!("the VCEK has no {name} SPL extension"))),
            Some(v) if v != in_report => {
                return Err(VerifyError::Tcb(format!("reported {name} SPL {in_report}, the VCEK is for {v}")))
            }
            Some(_) => {}
        }
    }
    if report.tcb_layout() == TcbLayout::Turin && reported.fmc != tcb.fmc_spl {
        return Err(VerifyError::Tcb(format!("reported FMC SPL {:?}, the VCEK is for {:?}", reported.fmc, tcb.fmc_spl)));
    }
    let hw_id = tcb.hw_id.as_deref().ok_or_else(|| VerifyError::Tcb("the VCEK has no hwID extension".into()))?;
    if hw_id.is_empty() || !report.chip_id.starts_with(hw_id) {
        return Err(VerifyError::Tcb(format!("CHIP_ID {} is not the VCEK's hwID {}", hex(&report.chip_id), hex(hw_id))));
    }
    Ok(format!("reported TCB ({reported}) and chip ID are the VCEK's"))
}

/// Full verification of an SNP report with its VCEK, then the owner's expectations.
#[cfg(test)]
pub fn verify(report_bytes: &[u8], vcek_bytes: &[u8], expect: &Expectations, now: VerifyTime) -> Result<Verified, VerifyError> {
    let mut out = Verified::default();
    verify_into(report_bytes, vcek_bytes, expect, now, &mut out).map(|()| out)
}

/// [`verify`], adding each check that passed to `out` (so a failure can be shown after
/// what did verify).
pub fn verify_into(report_bytes: &[u8], vcek_bytes: &[u8], expect: &Expectations, now: VerifyTime, out: &mut Verified) -> Result<(), VerifyError> {
    if expect.event_log.is_some() || !expect.rtmrs.is_empty() {
        return Err(VerifyError::Usage("--event-log, --rtmr: SEV-SNP has no RTMRs".into()));
    }
    let report = AttestationReport::parse(report_bytes).map_err(halcyon_hal::evidence::EvidenceError::from)?;
    out.ok(format!("SNP attestation report, version {}, VMPL {}", report.version.get(), report.vmpl.get()));
    match report.signing_key() {
        SigningKey::Vcek => {}
        SigningKey::Vlek => return Err(VerifyError::Signature("signed with a VLEK; only VCEK-signed reports are supported".into())),
        SigningKey::None => return Err(VerifyError::Signature("the report is not signed (SIGNING_KEY none)".into())),
    }
    if report.mask_chip_key() {
        return Err(VerifyError::Signature("MASK_CHIP_KEY is set: the report is not signed with the chip key".into()));
    }
    let vcek = parse_certificate("VCEK", vcek_bytes)?;
    let tcb = vcek_tcb(&vcek)?;
    let product = verify_vcek_chain(&vcek, &tcb, now)?;
    out.ok(format!("VCEK -> ASK -> ARK chain to AMD's {} root (RSASSA-PSS SHA-384)", product.name));
    // Chip and TCB first: a VCEK for another chip or TCB is the likeliest mistake, and
    // this names it; the signature is checked either way.
    out.ok(check_tcb(report, &tcb)?);
    verify_report_signature(report, &vcek)?;
    out.ok("report signature (ECDSA P-384, SHA-384) by the VCEK");
    check_policy(report, expect, out)?;
    check_bytes(out, "measurement", expect.measurement.as_deref(), &report.measurement)?;
    check_bytes(out, "report data", expect.report_data.as_deref(), &report.report_data)?;
    Ok(())
}

fn check_policy(report: &AttestationReport, expect: &Expectations, out: &mut Verified) -> Result<(), VerifyError> {
    let policy = report.guest_policy();
    if policy.debug_allowed() && !expect.allow_debug {
        return Err(VerifyError::Policy(format!("{policy} allows debugging (pass --allow-debug to accept it)")));
    }
    let flags = policy_flags();
    let requirement = expect.policy.clone().unwrap_or_default();
    requirement
        .check(policy.0, Some((policy.abi_major(), policy.abi_minor())), &flags)
        .map_err(|e| VerifyError::Policy(format!("guest policy {e}")))?;
    let checked = if requirement == PolicyRequirement::default() { "no debugging" } else { "as required" };
    out.ok(format!("guest policy {policy}: {checked}"));
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
