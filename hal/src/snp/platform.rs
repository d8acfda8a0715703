//! [`Platform`] for an SEV-SNP guest, over the [`Vmgexit`] boundary: attestation reports
//! through MSG_REPORT_REQ and sealing keys through MSG_KEY_REQ.
//!
//! Sealing-key choice (SNP ABI 56860 rev. 1.55, MSG_KEY_REQ):
//! - root key: the VCEK (ROOT_KEY_SELECT = 0), so the key is tied to this chip; Halcyon
//!   does not use a VMRK (that needs a migration agent);
//! - GUEST_FIELD_SELECT = GUEST_POLICY | MEASUREMENT: a different image (launch digest)
//!   or a weaker policy (for example one that allows debugging, which lets the host read
//!   guest memory) derives a different key, so neither can unseal. IMAGE_ID, FAMILY_ID,
//!   GUEST_SVN and TCB_VERSION are not selected: Halcyon has no ID block yet, and mixing the
//!   TCB in would make every firmware update lose all sealed data;
//! - VMPL: the guest's own (0 without an SVSM).
//!
//! The PSP's key is never handed out as is: HMAC-SHA256 under it, with a label per
//! binding (and the workload digest for [`SealBinding::Workload`]), gives the sealing key.

use super::cert_table;
use super::ghcb::{Ghcb, PAGE_SIZE};
use super::guest_message::{field_select, Certificates, GuestMessageContext, GuestMessageError, KeyRequest};
use super::secrets_page::{self, SecretsPageError};
use super::Vmgexit;
use crate::platform::{Evidence, EvidenceFormat, Platform, PlatformError, SealBinding, SealingKey, TeeKind};
use alloc::boxed::Box;
use alloc::vec::Vec;
use hmac::{KeyInit, Mac};
use zeroize::Zeroizing;

/// The GUEST_FIELD_SELECT Halcyon's sealing keys use (see the module documentation).
pub const SEALING_FIELD_SELECT: u64 = field_select::GUEST_POLICY | field_select::MEASUREMENT;

const LABEL_LAUNCH: &[u8] = b"halcyon seal v1: launch measurement";
const LABEL_WORKLOAD: &[u8] = b"halcyon seal v1: workload";

/// The SEV-SNP platform: one GHCB, one guest-message channel on VMPCK0.
pub struct SnpPlatform<V: Vmgexit> {
    vmgexit: V,
    ghcb: Box<Ghcb>,
    messages: GuestMessageContext,
    vmpl: u32,
}

impl<V: Vmgexit> SnpPlatform<V> {
    /// Takes VMPCK0 from a copy of the secrets page (the caller wipes its copy and never
    /// maps the page again). `vmpl` is the VMPL the guest runs at (0 without an SVSM).
    pub fn new(vmgexit: V, secrets_page: &[u8], vmpl: u32) -> Result<Self, SecretsPageError> {
        let vmpck = secrets_page::vmpck(secrets_page, 0)?;
        Ok(Self { vmgexit, ghcb: Ghcb::new_boxed(), messages: GuestMessageContext::new(vmpck, 0), vmpl })
    }

    /// The boundary, for the kernel's other exits.
    pub fn vmgexit(&mut self) -> &mut V {
        &mut self.vmgexit
    }

    /// Whether the PSP channel is still usable (false after any failed exchange).
    pub fn channel_usable(&self) -> bool {
        !self.messages.is_disabled()
    }
}

fn platform_error(e: GuestMessageError) -> PlatformError {
    PlatformError::Failure(match e {
        GuestMessageError::KeyDisabled => "the PSP channel is disabled after an earlier failure",
        GuestMessageError::SequenceExhausted => "the PSP channel has used all its sequence numbers",
        GuestMessageError::PayloadTooLarge => "guest message too large",
        GuestMessageError::Ghcb(_) => "the hypervisor rejected the guest request exit",
        GuestMessageError::Vmm(_) => "the hypervisor failed the guest request",
        GuestMessageError::Firmware(_) => "the PSP failed the guest request",
        GuestMessageError::Throttled => "the hypervisor throttled the guest request for too long",
        GuestMessageError::Header(_)
        | GuestMessageError::WrongSequence { .. }
        | GuestMessageError::WrongType { .. }
        | GuestMessageError::WrongLength { .. }
        | GuestMessageError::Authentication => "the PSP's answer was forged or damaged; the channel is now disabled",
        GuestMessageError::Status(_) => "the PSP refused the request",
        GuestMessageError::ReportMismatch => "the attestation report does not match the request",
    })
}

impl<V: Vmgexit> Platform for SnpPlatform<V> {
    fn kind(&self) -> TeeKind {
        TeeKind::SevSnp
    }

    fn evidence_formats(&self) -> &'static [EvidenceFormat] {
        &[EvidenceFormat::SevSnpReport]
    }

    fn attestation_report(&mut self, format: EvidenceFormat, report_data: &[u8; 64]) -> Result<Evidence, PlatformError> {
        if format != EvidenceFormat::SevSnpReport {
            return Err(PlatformError::Unsupported("an SEV-SNP guest produces SEV-SNP attestation reports only"));
        }
        let buffer = self.vmgexit.certificate_buffer().filter(|(gpa, len)| *len > 0 && len % PAGE_SIZE == 0 && gpa % PAGE_SIZE as u64 == 0);
        let Some((gpa, len)) = buffer else {
            let report = self.messages.report(&mut self.vmgexit, &mut self.ghcb, report_data, self.vmpl).map_err(platform_error)?;
            // Without a certificate buffer, a verifier gets the VCEK chain from AMD's KDS
            // or its own copy, keyed by the report's chip ID and reported TCB.
            return Ok(Evidence { format, report, certificates: Vec::new() });
        };
        let pages = (len / PAGE_SIZE) as u64;
        let (report, outcome) = self
            .messages
            .report_with_certificates(&mut self.vmgexit, &mut self.ghcb, report_data, self.vmpl, (gpa, pages))
            .map_err(platform_error)?;
        // The host's certificates are a convenience, unauthenticated: a table that does not
        // parse (or did not fit) leaves them out; the report itself stands on its own.
        let mut certificates = Vec::new();
        if outcome == Certificates::Provided {
            let mut copy = alloc::vec![0u8; len];
            self.vmgexit.read_certificate_buffer(0, &mut copy);
            if let Ok(entries) = cert_table::parse(&copy) {
                certificates = entries.into_iter().map(|e| e.data).collect();
            }
        }
        Ok(Evidence { format, report, certificates })
    }

    fn sealing_key(&mut self, binding: SealBinding, workload_digest: &[u8; 32]) -> Result<SealingKey, PlatformError> {
        let request = KeyRequest {
            root_key_select: 0,
            reserved: 0,
            guest_field_select: SEALING_FIELD_SELECT,
            vmpl: self.vmpl,
            guest_svn: 0,
            tcb_version: 0,
        };
        let root = self.messages.derive_key(&mut self.vmgexit, &mut self.ghcb, &request).map_err(platform_error)?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(root.as_ref()).expect("HMAC takes any key length");
        match binding {
            SealBinding::LaunchMeasurement => mac.update(LABEL_LAUNCH),
            SealBinding::Workload => {
                mac.update(LABEL_WORKLOAD);
                mac.update(workload_digest);
            }
        }
        let key = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
        Ok(SealingKey {
            key,
            hardware_backed: true,
            description: match binding {
                SealBinding::LaunchMeasurement => "SEV-SNP MSG_KEY_REQ (VCEK root, policy + measurement)",
                SealBinding::Workload => "SEV-SNP MSG_KEY_REQ (VCEK root, policy + measurement) + workload digest",
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snp::sim::{Hostile, SimSnp, VMPCK0};

    fn secrets() -> Vec<u8> {
        let mut page = vec![0u8; 4096];
        page[0] = 3;
        page[0x20..0x40].copy_from_slice(&VMPCK0);
        page
    }

    fn platform(sim: SimSnp) -> SnpPlatform<SimSnp> {
        SnpPlatform::new(sim, &secrets(), 0).unwrap()
    }

    #[test]
    fn attestation_binds_the_report_data() {
        let mut p = platform(SimSnp::new());
        assert_eq!(p.kind(), TeeKind::SevSnp);
        assert_eq!(p.evidence_formats(), &[EvidenceFormat::SevSnpReport]);
        let evidence = p.attestation_report(EvidenceFormat::SevSnpReport, &[0xAB; 64]).unwrap();
        assert_eq!(evidence.report.len(), 0x4A0);
        assert_eq!(&evidence.report[0x50..0x90], &[0xAB; 64]);
        assert!(matches!(p.attestation_report(EvidenceFormat::TdxQuote, &[0; 64]), Err(PlatformError::Unsupported(_))));
    }

    #[test]
    fn sealing_keys_are_bound_to_launch_and_workload() {
        let mut p = platform(SimSnp::new());
        let launch = p.sealing_key(SealBinding::LaunchMeasurement, &[0; 32]).unwrap();
        let again = p.sealing_key(SealBinding::LaunchMeasurement, &[1; 32]).unwrap();
        assert_eq!(*launch.key, *again.key, "the launch key ignores the workload digest");
        assert!(launch.hardware_backed);
        let w1 = p.sealing_key(SealBinding::Workload, &[1; 32]).unwrap();
        let w2 = p.sealing_key(SealBinding::Workload, &[2; 32]).unwrap();
        assert_ne!(*w1.key, *w2.key);
        assert_ne!(*w1.key, *launch.key);
        // Another image (measurement) or policy: other keys.
        let mut sim = SimSnp::new();
        sim.psp.measurement[47] ^= 0x80;
        let mut other = platform(sim);
        assert_ne!(*other.sealing_key(SealBinding::LaunchMeasurement, &[0; 32]).unwrap().key, *launch.key);
        let mut sim = SimSnp::new();
        sim.psp.policy |= 1 << 19; // DEBUG allowed
        let mut debug = platform(sim);
        assert_ne!(*debug.sealing_key(SealBinding::LaunchMeasurement, &[0; 32]).unwrap().key, *launch.key);
        // And the same launch on the same chip gets the same key back.
        let mut same = platform(SimSnp::new());
        assert_eq!(*same.sealing_key(SealBinding::LaunchMeasurement, &[0; 32]).unwrap().key, *launch.key);
    }

    #[test]
    fn a_hostile_host_leaves_the_platform_refusing() {
        let mut sim = SimSnp::new();
        sim.hostile = Hostile::BadTag;
        let mut p = platform(sim);
        assert!(matches!(p.attestation_report(EvidenceFormat::SevSnpReport, &[0; 64]), Err(PlatformError::Failure(_))));
        assert!(!p.channel_usable());
        p.vmgexit().hostile = Hostile::None;
        assert_eq!(
            p.sealing_key(SealBinding::LaunchMeasurement, &[0; 32]).map(|_| ()),
            Err(PlatformError::Failure("the PSP channel is disabled after an earlier failure"))
        );
    }

    #[test]
    fn certificates_come_with_the_report_where_the_host_offers_them() {
        use crate::snp::cert_table::{build, GUID_ARK, GUID_ASK, GUID_VCEK};
        let table = build(&[(GUID_VCEK, &[1; 1000]), (GUID_ASK, &[2; 1500]), (GUID_ARK, &[3; 1500])], 4200);
        let mut sim = SimSnp::new();
        sim.cert_buffer = Some(vec![0; 2 * 4096]);
        sim.host_certs = table.clone();
        let mut p = platform(sim);
        let evidence = p.attestation_report(EvidenceFormat::SevSnpReport, &[4; 64]).unwrap();
        assert_eq!(evidence.certificates, vec![vec![1; 1000], vec![2; 1500], vec![3; 1500]]);
        assert_eq!(&evidence.report[0x50..0x90], &[4; 64]);
        // Too small a buffer: the same request goes again as a plain one (same bytes, so
        // no IV reuse); the report arrives without certificates and the channel stays usable.
        let mut sim = SimSnp::new();
        sim.cert_buffer = Some(vec![0; 4096]);
        sim.host_certs = table.clone();
        let mut p = platform(sim);
        let evidence = p.attestation_report(EvidenceFormat::SevSnpReport, &[5; 64]).unwrap();
        assert!(evidence.certificates.is_empty());
        let requests = &p.vmgexit().requests;
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0], requests[1]);
        assert_eq!(p.vmgexit().exits, [0x8000_0012, 0x8000_0011]);
        assert!(p.channel_usable());
        p.attestation_report(EvidenceFormat::SevSnpReport, &[6; 64]).unwrap();
        // A garbage table: the report without certificates.
        let mut sim = SimSnp::new();
        sim.cert_buffer = Some(vec![0; 4096]);
        sim.host_certs = vec![0xFF; 100];
        let mut p = platform(sim);
        assert!(p.attestation_report(EvidenceFormat::SevSnpReport, &[7; 64]).unwrap().certificates.is_empty());
    }

    #[test]
    fn a_secrets_page_without_vmpck0_is_refused() {
        let mut page = secrets();
        page[0x20..0x40].fill(0);
        assert_eq!(SnpPlatform::new(SimSnp::new(), &page, 0).err(), Some(SecretsPageError::KeyNotProvided));
    }
}
