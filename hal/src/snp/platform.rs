//! [`Platform`] for an SEV-SNP guest, over the [`Vmgexit`] boundary: attestation reports
//! through MSG_REPORT_REQ and sealing keys through MSG_KEY_REQ.
//!
//! Sealing-key choice (SNP ABI 56860 §7.2, MSG_KEY_REQ):
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

use super::ghcb::Ghcb;
use super::guest_message::{field_select, GuestMessageContext, GuestMessageError, KeyRequest};
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
        let report = self.messages.report(&mut self.vmgexit, &mut self.ghcb, report_data, self.vmpl).map_err(platform_error)?;
        // The VCEK chain is not fetched from the host (extended guest request): a verifier
        // gets it from AMD's KDS or its own cache, keyed by the report's chip ID and TCB.
        Ok(Evidence { format, report, certificates: Vec::new() })
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
    fn a_secrets_page_without_vmpck0_is_refused() {
        let mut page = secrets();
        page[0x20..0x40].fill(0);
        assert_eq!(SnpPlatform::new(SimSnp::new(), &page, 0).err(), Some(SecretsPageError::KeyNotProvided));
    }
}
