//! SNP guest messages to the PSP: MSG_REPORT_REQ and MSG_KEY_REQ, encrypted with
//! AES-256-GCM under VMPCK0 (SNP ABI 56860 rev. 1.55, chapter "Guest Messages" and the MSG_KEY_REQ/MSG_REPORT_REQ sections,
//! sent through the guest-request exit of GHCB spec 56421, "SNP Guest Request").
//!
//! Sequence numbers follow the specification exactly: the PSP keeps a per-VMPCK counter;
//! a request must carry the counter + 1 and the response carries the counter + 2, and
//! both use their sequence number as the AES-GCM IV. Reusing a sequence number with a
//! different plaintext would reuse a GCM nonce, so the context here
//! - advances its counter by two only after a response passed every check;
//! - disables its key for good (wipes it) on any failure after the request left the
//!   guest: an error from the hypervisor or the PSP, a timeout, a bad tag, a wrong
//!   sequence number, type, version, length or header field. The guest cannot know
//!   whether the PSP consumed the sequence number, so it must never send again;
//! - retries a throttled request (VMM error BUSY) with the *same* bytes: the PSP either
//!   did not see it, or rejects the duplicate by its sequence number; no new ciphertext
//!   is ever made under an old IV.

use super::ghcb::{self, Ghcb, GhcbError, PAGE_SIZE, SNP_GUEST_VMM_ERR_BUSY, SNP_GUEST_VMM_ERR_INVALID_LEN};
use super::Vmgexit;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};
use zeroize::{Zeroize, Zeroizing};

/// Message header (SNP ABI table "Message Header Format").
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct MsgHeader {
    /// AES-256-GCM uses bytes 0..16; the rest of the field is unused.
    pub authtag: [u8; 32],
    pub msg_seqno: u64,
    pub reserved_28: [u8; 8],
    pub algo: u8,
    pub hdr_version: u8,
    pub hdr_size: u16,
    pub msg_type: u8,
    pub msg_version: u8,
    pub msg_size: u16,
    pub reserved_38: u32,
    pub msg_vmpck: u8,
    pub reserved_3d: [u8; 35],
}

pub const MSG_HDR_SIZE: usize = 0x60;
/// The associated data is the header from ALGO (30h) to its end (SNP ABI "Guest Messages").
pub const AAD_OFFSET: usize = 0x30;
pub const AUTHTAG_LEN: usize = 16;
/// Payload room in a 4 KiB message page.
pub const MSG_PAYLOAD_MAX: usize = PAGE_SIZE - MSG_HDR_SIZE;

const _: () = {
    assert!(size_of::<MsgHeader>() == MSG_HDR_SIZE);
    assert!(offset_of!(MsgHeader, msg_seqno) == 0x20);
    assert!(offset_of!(MsgHeader, algo) == AAD_OFFSET);
    assert!(offset_of!(MsgHeader, hdr_size) == 0x32);
    assert!(offset_of!(MsgHeader, msg_type) == 0x34);
    assert!(offset_of!(MsgHeader, msg_size) == 0x36);
    assert!(offset_of!(MsgHeader, msg_vmpck) == 0x3C);
};

/// ALGO: AES-256-GCM (SNP ABI table "AEAD Algorithm Encodings").
pub const AEAD_AES_256_GCM: u8 = 1;
/// HDR_VERSION of the header above.
pub const MSG_HDR_VERSION: u8 = 1;
/// MSG_VERSION Halcyon sends for report and key requests (version 1 layouts below).
pub const MSG_VERSION: u8 = 1;

/// Message types (SNP ABI table "Message Type Encodings"); a response is request + 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    KeyReq = 3,
    KeyRsp = 4,
    ReportReq = 5,
    ReportRsp = 6,
}

/// MSG_REPORT_REQ payload (SNP ABI, MSG_REPORT_REQ table).
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ReportRequest {
    pub report_data: [u8; 64],
    /// The VMPL to put in the report; must be >= the requester's VMPL.
    pub vmpl: u32,
    /// Reserved (newer ABIs put KEY_SEL in bits 1:0 of the first word: 0 = default key).
    pub reserved: [u8; 28],
}

/// Size of ATTESTATION_REPORT (SNP ABI, table "ATTESTATION_REPORT Structure").
pub const ATTESTATION_REPORT_SIZE: usize = 0x4A0;
/// Offsets inside ATTESTATION_REPORT (same table).
pub const REPORT_VMPL_OFFSET: usize = 0x30;
pub const REPORT_DATA_OFFSET: usize = 0x50;
pub const REPORT_MEASUREMENT_OFFSET: usize = 0x90;

/// MSG_REPORT_RSP payload (SNP ABI, MSG_REPORT_RSP table).
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ReportResponse {
    pub status: u32,
    pub report_size: u32,
    pub reserved: [u8; 24],
    pub report: [u8; ATTESTATION_REPORT_SIZE],
}

/// MSG_KEY_REQ payload (SNP ABI, MSG_KEY_REQ table).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct KeyRequest {
    /// Bit 0 ROOT_KEY_SELECT: 0 = VCEK, 1 = VMRK.
    pub root_key_select: u32,
    pub reserved: u32,
    /// GUEST_FIELD_SELECT: which guest fields are mixed into the key (bits below).
    pub guest_field_select: u64,
    pub vmpl: u32,
    pub guest_svn: u32,
    pub tcb_version: u64,
}

/// GUEST_FIELD_SELECT bits (SNP ABI, GUEST_FIELD_SELECT in the MSG_KEY_REQ table).
pub mod field_select {
    pub const GUEST_POLICY: u64 = 1 << 0;
    pub const IMAGE_ID: u64 = 1 << 1;
    pub const FAMILY_ID: u64 = 1 << 2;
    pub const MEASUREMENT: u64 = 1 << 3;
    pub const GUEST_SVN: u64 = 1 << 4;
    pub const TCB_VERSION: u64 = 1 << 5;
}

/// MSG_KEY_RSP payload (SNP ABI, MSG_KEY_RSP table).
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct KeyResponse {
    pub status: u32,
    pub reserved: [u8; 28],
    pub derived_key: [u8; 32],
}

const _: () = {
    assert!(size_of::<ReportRequest>() == 0x60);
    assert!(offset_of!(ReportRequest, vmpl) == 0x40);
    assert!(size_of::<ReportResponse>() == 0x20 + ATTESTATION_REPORT_SIZE);
    assert!(offset_of!(ReportResponse, report) == 0x20);
    assert!(size_of::<KeyRequest>() == 0x20);
    assert!(offset_of!(KeyRequest, guest_field_select) == 0x08);
    assert!(offset_of!(KeyRequest, tcb_version) == 0x18);
    assert!(size_of::<KeyResponse>() == 0x40);
    assert!(offset_of!(KeyResponse, derived_key) == 0x20);
};

/// How long a throttled request is retried in total, and the first and largest pause.
/// The GHCB spec leaves the policy to the guest; 60 s matches Linux's sev-guest driver.
pub const BUSY_BUDGET_MS: u32 = 60_000;
const BUSY_FIRST_DELAY_MS: u32 = 1;
const BUSY_MAX_DELAY_MS: u32 = 1_000;

/// What became of the certificate buffer of an extended request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Certificates {
    /// A plain request: no buffer offered.
    NotAsked,
    /// The host accepted the buffer (it may still have left it empty).
    Provided,
    /// The buffer was too small; the report came through a plain request instead.
    TooSmall { pages_needed: u64 },
}

/// The header field a response got wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderField {
    Algo,
    HdrVersion,
    HdrSize,
    MsgVersion,
    Vmpck,
    Reserved,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestMessageError {
    /// An earlier failure disabled the key; no message will be sent with it again.
    KeyDisabled,
    /// The 32-bit sequence space the GHCB stores is used up.
    SequenceExhausted,
    /// The payload does not fit a message page.
    PayloadTooLarge,
    /// The guest-request exit failed at the GHCB level.
    Ghcb(GhcbError),
    /// The hypervisor returned a VMM error (`SW_EXITINFO2[63:32]`).
    Vmm(u32),
    /// The PSP returned a firmware error (`SW_EXITINFO2[31:0]`).
    Firmware(u32),
    /// The hypervisor kept answering BUSY for [`BUSY_BUDGET_MS`].
    Throttled,
    /// A response header field is not what the specification requires.
    Header(HeaderField),
    WrongSequence { expected: u64, got: u64 },
    WrongType { expected: u8, got: u8 },
    WrongLength { expected: usize, got: usize },
    /// The AES-GCM tag does not verify.
    Authentication,
    /// The response decrypted, but its STATUS is not success (key still usable).
    Status(u32),
    /// The report response is well-formed but not for this request (key still usable).
    ReportMismatch,
}

impl fmt::Display for GuestMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyDisabled => f.write_str("VMPCK disabled after an earlier failure"),
            Self::SequenceExhausted => f.write_str("guest message sequence numbers exhausted"),
            Self::PayloadTooLarge => f.write_str("guest message payload too large"),
            Self::Ghcb(e) => write!(f, "guest request exit: {e}"),
            Self::Vmm(code) => write!(f, "hypervisor error {code:#x} on guest request"),
            Self::Firmware(code) => write!(f, "PSP error {code:#x} on guest request"),
            Self::Throttled => f.write_str("guest request throttled for too long"),
            Self::Header(field) => write!(f, "bad {field:?} in guest message response"),
            Self::WrongSequence { expected, got } => write!(f, "response sequence number {got}, expected {expected}"),
            Self::WrongType { expected, got } => write!(f, "response type {got}, expected {expected}"),
            Self::WrongLength { expected, got } => write!(f, "response length {got}, expected {expected}"),
            Self::Authentication => f.write_str("guest message response failed authentication"),
            Self::Status(status) => write!(f, "PSP refused the request (status {status:#x})"),
            Self::ReportMismatch => f.write_str("attestation report does not echo the request"),
        }
    }
}

impl core::error::Error for GuestMessageError {}

impl From<GhcbError> for GuestMessageError {
    fn from(e: GhcbError) -> Self {
        Self::Ghcb(e)
    }
}

fn nonce(seqno: u64) -> aes_gcm::aead::Nonce<Aes256Gcm> {
    // IV = MSG_SEQNO little-endian, zero-extended to 96 bits (SNP ABI "Guest Messages").
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(&seqno.to_le_bytes());
    iv.into()
}

/// A VMPCK and its sequence counter: the guest's end of the channel to the PSP.
pub struct GuestMessageContext {
    vmpck: Zeroizing<[u8; 32]>,
    vmpck_id: u8,
    /// The PSP's counter as this guest last saw it (0 at launch).
    last_seqno: u64,
    disabled: bool,
}

impl GuestMessageContext {
    /// A context for VMPCK `vmpck_id` at the launch state (no message sent yet).
    pub fn new(vmpck: Zeroizing<[u8; 32]>, vmpck_id: u8) -> Self {
        Self::resume(vmpck, vmpck_id, 0)
    }

    /// A context for a key an earlier stage already used: `last_seqno` is the last
    /// sequence number it received (what it left in the secrets page's OS area,
    /// [`super::secrets_page::os_area_msg_seqno`]). Halcyon is the first user of VMPCK0,
    /// so it starts from 0 with [`GuestMessageContext::new`].
    pub fn resume(vmpck: Zeroizing<[u8; 32]>, vmpck_id: u8, last_seqno: u32) -> Self {
        Self { vmpck, vmpck_id, last_seqno: last_seqno as u64, disabled: false }
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// The last sequence number the PSP answered with (even after success).
    pub fn last_seqno(&self) -> u64 {
        self.last_seqno
    }

    fn disable(&mut self) {
        self.vmpck.zeroize();
        self.disabled = true;
    }

    /// Builds the encrypted request page for sequence number `seqno`.
    fn seal(&self, seqno: u64, msg_type: MsgType, payload: &[u8]) -> Box<[u8; PAGE_SIZE]> {
        let mut page = Box::new([0u8; PAGE_SIZE]);
        let header = MsgHeader {
            authtag: [0; 32],
            msg_seqno: seqno,
            reserved_28: [0; 8],
            algo: AEAD_AES_256_GCM,
            hdr_version: MSG_HDR_VERSION,
            hdr_size: MSG_HDR_SIZE as u16,
            msg_type: msg_type as u8,
            msg_version: MSG_VERSION,
            msg_size: payload.len() as u16,
            reserved_38: 0,
            msg_vmpck: self.vmpck_id,
            reserved_3d: [0; 35],
        };
        page[..MSG_HDR_SIZE].copy_from_slice(header.as_bytes());
        let (head, body) = page.split_at_mut(MSG_HDR_SIZE);
        let body = &mut body[..payload.len()];
        body.copy_from_slice(payload);
        let cipher = Aes256Gcm::new_from_slice(self.vmpck.as_ref()).expect("32-byte key");
        let tag = cipher
            .encrypt_inout_detached(&nonce(seqno), &head[AAD_OFFSET..], body.into())
            .expect("a payload of at most 4000 bytes is within AES-GCM's limits");
        head[..AUTHTAG_LEN].copy_from_slice(&tag);
        page
    }

    /// Checks and decrypts a copied-out response page.
    fn open(&self, seqno: u64, request: MsgType, expected_len: usize, page: &[u8; PAGE_SIZE]) -> Result<Zeroizing<Vec<u8>>, GuestMessageError> {
        let Ok((header, _)) = MsgHeader::read_from_prefix(page) else { unreachable!("page > header") };
        if header.msg_seqno != seqno + 1 {
            return Err(GuestMessageError::WrongSequence { expected: seqno + 1, got: header.msg_seqno });
        }
        if header.msg_type != request as u8 + 1 {
            return Err(GuestMessageError::WrongType { expected: request as u8 + 1, got: header.msg_type });
        }
        let checks = [
            (header.algo == AEAD_AES_256_GCM, HeaderField::Algo),
            (header.hdr_version == MSG_HDR_VERSION, HeaderField::HdrVersion),
            (header.hdr_size as usize == MSG_HDR_SIZE, HeaderField::HdrSize),
            (header.msg_version == MSG_VERSION, HeaderField::MsgVersion),
            (header.msg_vmpck == self.vmpck_id, HeaderField::Vmpck),
            (header.reserved_28 == [0; 8] && header.reserved_38 == 0 && header.reserved_3d == [0; 35], HeaderField::Reserved),
        ];
        if let Some((_, field)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(GuestMessageError::Header(*field));
        }
        if header.msg_size as usize != expected_len {
            return Err(GuestMessageError::WrongLength { expected: expected_len, got: header.msg_size as usize });
        }
        let mut payload = Zeroizing::new(page[MSG_HDR_SIZE..MSG_HDR_SIZE + expected_len].to_vec());
        let cipher = Aes256Gcm::new_from_slice(self.vmpck.as_ref()).expect("32-byte key");
        let tag = aes_gcm::aead::Tag::<Aes256Gcm>::try_from(&header.authtag[..AUTHTAG_LEN]).expect("16 bytes");
        cipher
            .decrypt_inout_detached(&nonce(header.msg_seqno), &page[AAD_OFFSET..MSG_HDR_SIZE], payload.as_mut_slice().into(), &tag)
            .map_err(|_| GuestMessageError::Authentication)?;
        Ok(payload)
    }

    /// One request/response exchange; returns the decrypted response payload, which must
    /// be exactly `response_len` bytes.
    pub fn exchange(
        &mut self,
        v: &mut impl Vmgexit,
        ghcb: &mut Ghcb,
        msg_type: MsgType,
        payload: &[u8],
        response_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, GuestMessageError> {
        self.exchange_with(v, ghcb, msg_type, payload, response_len, None).map(|(payload, _)| payload)
    }

    /// [`Self::exchange`], as an extended guest request when `certificates` names the
    /// certificate buffer (GPA, pages). The second value tells whether the host filled it.
    fn exchange_with(
        &mut self,
        v: &mut impl Vmgexit,
        ghcb: &mut Ghcb,
        msg_type: MsgType,
        payload: &[u8],
        response_len: usize,
        certificates: Option<(u64, u64)>,
    ) -> Result<(Zeroizing<Vec<u8>>, Certificates), GuestMessageError> {
        if self.disabled {
            return Err(GuestMessageError::KeyDisabled);
        }
        if payload.len() > MSG_PAYLOAD_MAX || response_len > MSG_PAYLOAD_MAX {
            return Err(GuestMessageError::PayloadTooLarge);
        }
        // The GHCB stores the counter in 32 bits (GHCB spec, secrets-page OS area): the response's
        // number, seqno + 1, must still fit.
        let seqno = self.last_seqno + 1;
        if seqno + 1 > u32::MAX as u64 {
            self.disable();
            return Err(GuestMessageError::SequenceExhausted);
        }
        let request = self.seal(seqno, msg_type, payload);
        v.write_request_page(&request);
        // The request has left: from here on, any failure disables the key.
        match self.send_and_open(v, ghcb, seqno, msg_type, response_len, certificates) {
            Ok(response) => {
                self.last_seqno = seqno + 1;
                Ok(response)
            }
            Err(e) => {
                self.disable();
                Err(e)
            }
        }
    }

    fn send_and_open(
        &mut self,
        v: &mut impl Vmgexit,
        ghcb: &mut Ghcb,
        seqno: u64,
        msg_type: MsgType,
        response_len: usize,
        mut certificates: Option<(u64, u64)>,
    ) -> Result<(Zeroizing<Vec<u8>>, Certificates), GuestMessageError> {
        let (request_gpa, response_gpa) = v.message_page_gpas();
        let mut waited = 0u32;
        let mut delay = BUSY_FIRST_DELAY_MS;
        let mut outcome = if certificates.is_some() { Certificates::Provided } else { Certificates::NotAsked };
        loop {
            let status = match certificates {
                Some((gpa, pages)) => ghcb::extended_guest_request(v, ghcb, request_gpa, response_gpa, gpa, pages)?,
                None => (ghcb::guest_request(v, ghcb, request_gpa, response_gpa)?, 0),
            };
            match status {
                (ghcb::GuestRequestStatus { vmm: 0, firmware: 0 }, _) => break,
                (ghcb::GuestRequestStatus { vmm: SNP_GUEST_VMM_ERR_BUSY, .. }, _) => {
                    if waited >= BUSY_BUDGET_MS {
                        return Err(GuestMessageError::Throttled);
                    }
                    v.sleep_ms(delay);
                    waited = waited.saturating_add(delay);
                    delay = (delay * 2).min(BUSY_MAX_DELAY_MS);
                }
                (ghcb::GuestRequestStatus { vmm: SNP_GUEST_VMM_ERR_INVALID_LEN, .. }, needed) if certificates.is_some() => {
                    // The PSP has not seen the message. Send the same bytes again as a
                    // plain request (as the GHCB spec's "SNP Extended Guest Request" allows, and Linux does) so the PSP consumes
                    // this sequence number: no new ciphertext under an old IV.
                    outcome = Certificates::TooSmall { pages_needed: needed };
                    certificates = None;
                }
                (ghcb::GuestRequestStatus { vmm: 0, firmware }, _) => return Err(GuestMessageError::Firmware(firmware)),
                (ghcb::GuestRequestStatus { vmm, .. }, _) => return Err(GuestMessageError::Vmm(vmm)),
            }
        }
        let mut page = Box::new([0u8; PAGE_SIZE]);
        v.read_response_page(&mut page);
        let result = self.open(seqno, msg_type, response_len, &page);
        page.zeroize();
        Ok((result?, outcome))
    }

    /// MSG_REPORT_REQ: an ATTESTATION_REPORT binding `report_data`, at `vmpl`.
    pub fn report(&mut self, v: &mut impl Vmgexit, ghcb: &mut Ghcb, report_data: &[u8; 64], vmpl: u32) -> Result<Vec<u8>, GuestMessageError> {
        self.report_with(v, ghcb, report_data, vmpl, None).map(|(report, _)| report)
    }

    /// MSG_REPORT_REQ as an extended guest request: the host may also fill the
    /// certificate buffer (`gpa`, `pages`). The certificates are the host's, unauthenticated:
    /// a verifier checks them against AMD's root like any other copy.
    pub fn report_with_certificates(
        &mut self,
        v: &mut impl Vmgexit,
        ghcb: &mut Ghcb,
        report_data: &[u8; 64],
        vmpl: u32,
        certificates: (u64, u64),
    ) -> Result<(Vec<u8>, Certificates), GuestMessageError> {
        self.report_with(v, ghcb, report_data, vmpl, Some(certificates))
    }

    fn report_with(
        &mut self,
        v: &mut impl Vmgexit,
        ghcb: &mut Ghcb,
        report_data: &[u8; 64],
        vmpl: u32,
        certificates: Option<(u64, u64)>,
    ) -> Result<(Vec<u8>, Certificates), GuestMessageError> {
        let request = ReportRequest { report_data: *report_data, vmpl, reserved: [0; 28] };
        let (payload, certificates) = self.exchange_with(v, ghcb, MsgType::ReportReq, request.as_bytes(), size_of::<ReportResponse>(), certificates)?;
        let response = ReportResponse::ref_from_bytes(&payload).expect("length checked by open");
        if response.status != 0 {
            return Err(GuestMessageError::Status(response.status));
        }
        let report = &response.report;
        if response.report_size as usize != ATTESTATION_REPORT_SIZE
            || report[REPORT_DATA_OFFSET..REPORT_DATA_OFFSET + 64] != report_data[..]
            || report[REPORT_VMPL_OFFSET..REPORT_VMPL_OFFSET + 4] != vmpl.to_le_bytes()
        {
            return Err(GuestMessageError::ReportMismatch);
        }
        Ok((report.to_vec(), certificates))
    }

    /// MSG_KEY_REQ: a key derived by the PSP from the root key and the selected fields.
    pub fn derive_key(&mut self, v: &mut impl Vmgexit, ghcb: &mut Ghcb, request: &KeyRequest) -> Result<Zeroizing<[u8; 32]>, GuestMessageError> {
        let payload = self.exchange(v, ghcb, MsgType::KeyReq, request.as_bytes(), size_of::<KeyResponse>())?;
        let response = KeyResponse::ref_from_bytes(&payload).expect("length checked by open");
        if response.status != 0 {
            return Err(GuestMessageError::Status(response.status));
        }
        Ok(Zeroizing::new(response.derived_key))
    }
}

impl ReportResponse {
    /// A zeroed response (for the simulated PSP).
    pub fn zeroed() -> Box<Self> {
        Self::new_box_zeroed().expect("small allocation")
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::snp::sim::{Hostile, SimSnp, MEASUREMENT, VMPCK0};
    use std::collections::HashMap;

    fn setup() -> (SimSnp, Box<Ghcb>, GuestMessageContext) {
        (SimSnp::new(), Ghcb::new_boxed(), GuestMessageContext::new(Zeroizing::new(VMPCK0), 0))
    }

    const KEY_REQUEST: KeyRequest = KeyRequest {
        root_key_select: 0,
        reserved: 0,
        guest_field_select: field_select::GUEST_POLICY | field_select::MEASUREMENT,
        vmpl: 0,
        guest_svn: 0,
        tcb_version: 0,
    };

    #[test]
    fn reports_round_trip_and_sequence_numbers_advance_by_two() {
        let (mut sim, mut ghcb, mut ctx) = setup();
        let report = ctx.report(&mut sim, &mut ghcb, &[7; 64], 0).unwrap();
        assert_eq!(report.len(), ATTESTATION_REPORT_SIZE);
        assert_eq!(&report[REPORT_DATA_OFFSET..REPORT_DATA_OFFSET + 64], &[7; 64]);
        assert_eq!(&report[REPORT_MEASUREMENT_OFFSET..REPORT_MEASUREMENT_OFFSET + 48], &MEASUREMENT);
        assert_eq!(ctx.last_seqno(), 2);
        ctx.report(&mut sim, &mut ghcb, &[8; 64], 0).unwrap();
        assert_eq!(ctx.last_seqno(), 4);
        // Requests carried 1 and 3 (the PSP's counter + 1).
        let seqnos: Vec<u64> = sim.requests.iter().map(|p| u64::from_le_bytes(p[0x20..0x28].try_into().unwrap())).collect();
        assert_eq!(seqnos, [1, 3]);
        assert_eq!(sim.psp.reports, 2);
    }

    #[test]
    fn derived_keys_depend_on_the_measurement() {
        let (mut sim, mut ghcb, mut ctx) = setup();
        let a = ctx.derive_key(&mut sim, &mut ghcb, &KEY_REQUEST).unwrap();
        let b = ctx.derive_key(&mut sim, &mut ghcb, &KEY_REQUEST).unwrap();
        assert_eq!(*a, *b, "same launch, same key");
        let (mut other, mut ghcb2, mut ctx2) = setup();
        other.psp.measurement[0] ^= 1;
        assert_ne!(*ctx2.derive_key(&mut other, &mut ghcb2, &KEY_REQUEST).unwrap(), *a);
    }

    #[test]
    fn a_refused_request_keeps_the_channel_usable() {
        // VMRK without one: the PSP answers (authenticated) with STATUS = INVALID_PARAM.
        let (mut sim, mut ghcb, mut ctx) = setup();
        let vmrk = KeyRequest { root_key_select: 1, ..KEY_REQUEST };
        assert_eq!(ctx.derive_key(&mut sim, &mut ghcb, &vmrk).map(|_| ()), Err(GuestMessageError::Status(0x16)));
        assert!(!ctx.is_disabled());
        assert_eq!(ctx.last_seqno(), 2, "the exchange itself succeeded");
        ctx.derive_key(&mut sim, &mut ghcb, &KEY_REQUEST).unwrap();
    }

    #[test]
    fn busy_is_retried_with_the_same_bytes_within_a_budget() {
        let (mut sim, mut ghcb, mut ctx) = setup();
        sim.hostile = Hostile::Busy(5);
        ctx.report(&mut sim, &mut ghcb, &[1; 64], 0).unwrap();
        assert_eq!(sim.requests.len(), 6);
        assert!(sim.requests.iter().all(|p| p == &sim.requests[0]), "a retry resends identical bytes");
        assert!(sim.slept_ms > 0);
        // A hypervisor that is busy for ever: bounded wait, then the key is gone.
        let (mut sim, mut ghcb, mut ctx) = setup();
        sim.hostile = Hostile::Busy(u32::MAX);
        assert_eq!(ctx.report(&mut sim, &mut ghcb, &[1; 64], 0), Err(GuestMessageError::Throttled));
        assert!(sim.slept_ms >= BUSY_BUDGET_MS as u64 && sim.slept_ms < BUSY_BUDGET_MS as u64 + 2 * BUSY_MAX_DELAY_MS as u64);
        assert!(ctx.is_disabled());
    }

    fn assert_disables(hostile: Hostile, expected: GuestMessageError) {
        let (mut sim, mut ghcb, mut ctx) = setup();
        sim.hostile = hostile;
        assert_eq!(ctx.report(&mut sim, &mut ghcb, &[3; 64], 0), Err(expected), "{hostile:?}");
        assert!(ctx.is_disabled(), "{hostile:?}");
        // Nothing is sent again: no exit, no request.
        let exits = sim.exits.len();
        sim.hostile = Hostile::None;
        assert_eq!(ctx.report(&mut sim, &mut ghcb, &[3; 64], 0), Err(GuestMessageError::KeyDisabled));
        assert_eq!(ctx.derive_key(&mut sim, &mut ghcb, &KEY_REQUEST).map(|_| ()), Err(GuestMessageError::KeyDisabled));
        assert_eq!(sim.exits.len(), exits);
    }

    #[test]
    fn hostile_responses_disable_the_key() {
        assert_disables(Hostile::WrongLength(0x4BF), GuestMessageError::WrongLength { expected: 0x4C0, got: 0x4BF });
        assert_disables(Hostile::WrongLength(0xFFFF), GuestMessageError::WrongLength { expected: 0x4C0, got: 0xFFFF });
        assert_disables(Hostile::WrongSeqno(4), GuestMessageError::WrongSequence { expected: 2, got: 4 });
        assert_disables(Hostile::WrongSeqno(1), GuestMessageError::WrongSequence { expected: 2, got: 1 });
        assert_disables(Hostile::WrongType(4), GuestMessageError::WrongType { expected: 6, got: 4 });
        assert_disables(Hostile::BadTag, GuestMessageError::Authentication);
        assert_disables(Hostile::RequestError(0x16), GuestMessageError::Firmware(0x16));
        assert_disables(Hostile::RequestError(1 << 32), GuestMessageError::Vmm(1));
        assert_disables(Hostile::ExitInfo(2, 4), GuestMessageError::Ghcb(GhcbError::MalformedInput(4)));
        assert_disables(Hostile::ExitInfo(1, 0x8000_030D), GuestMessageError::Ghcb(GhcbError::Exception(ghcb::EventInjection(0x8000_030D))));
    }

    #[test]
    fn a_replayed_response_is_refused() {
        let (mut sim, mut ghcb, mut ctx) = setup();
        sim.hostile = Hostile::Replay;
        ctx.report(&mut sim, &mut ghcb, &[1; 64], 0).unwrap();
        assert_eq!(ctx.report(&mut sim, &mut ghcb, &[2; 64], 0), Err(GuestMessageError::WrongSequence { expected: 4, got: 2 }));
        assert!(ctx.is_disabled());
    }

    #[test]
    fn every_header_bit_flip_is_caught() {
        for byte in 0..MSG_HDR_SIZE {
            for bit in 0..8 {
                let (mut sim, mut ghcb, mut ctx) = setup();
                sim.hostile = Hostile::Flip(byte, bit);
                let result = ctx.report(&mut sim, &mut ghcb, &[9; 64], 0);
                if (AUTHTAG_LEN..32).contains(&byte) {
                    // The unused half of AUTHTAG carries nothing (AES-GCM tags are 16 bytes).
                    assert!(result.is_ok(), "byte {byte:#x} bit {bit}");
                } else {
                    assert!(result.is_err(), "byte {byte:#x} bit {bit}");
                    assert!(ctx.is_disabled());
                }
            }
        }
        // Payload flips fail authentication.
        for byte in [MSG_HDR_SIZE, MSG_HDR_SIZE + 0x70, MSG_HDR_SIZE + 0x4BF] {
            let (mut sim, mut ghcb, mut ctx) = setup();
            sim.hostile = Hostile::Flip(byte, 0);
            assert_eq!(ctx.report(&mut sim, &mut ghcb, &[9; 64], 0), Err(GuestMessageError::Authentication));
        }
    }

    #[test]
    fn sequence_numbers_are_never_reused_with_other_bytes() {
        let (mut sim, mut ghcb, mut ctx) = setup();
        for i in 0..20u8 {
            sim.hostile = if i % 3 == 0 { Hostile::Busy(2) } else { Hostile::None };
            ctx.report(&mut sim, &mut ghcb, &[i; 64], 0).unwrap();
        }
        let mut seen: HashMap<u64, &[u8; 4096]> = HashMap::new();
        for page in &sim.requests {
            let seqno = u64::from_le_bytes(page[0x20..0x28].try_into().unwrap());
            assert_eq!(seqno % 2, 1, "requests use odd numbers, responses even");
            if let Some(earlier) = seen.insert(seqno, page) {
                assert_eq!(earlier, &**page, "seqno {seqno} reused with different bytes");
            }
        }
        assert_eq!(seen.len(), 20);
    }

    #[test]
    fn the_sequence_space_ends_cleanly() {
        let (mut sim, mut ghcb, _) = setup();
        let mut ctx = GuestMessageContext::resume(Zeroizing::new(VMPCK0), 0, u32::MAX - 1);
        assert_eq!(ctx.report(&mut sim, &mut ghcb, &[0; 64], 0), Err(GuestMessageError::SequenceExhausted));
        assert!(ctx.is_disabled() && sim.exits.is_empty());
    }

    #[test]
    fn oversized_payloads_are_refused_before_sending() {
        let (mut sim, mut ghcb, mut ctx) = setup();
        assert_eq!(ctx.exchange(&mut sim, &mut ghcb, MsgType::ReportReq, &[0; MSG_PAYLOAD_MAX + 1], 0x4C0).map(|_| ()), Err(GuestMessageError::PayloadTooLarge));
        assert!(!ctx.is_disabled() && sim.exits.is_empty());
    }

    #[test]
    fn the_report_carries_the_requested_vmpl() {
        let (mut sim, mut ghcb, mut ctx) = setup();
        let report = ctx.report(&mut sim, &mut ghcb, &[5; 64], 1).unwrap();
        assert_eq!(&report[REPORT_VMPL_OFFSET..REPORT_VMPL_OFFSET + 4], &1u32.to_le_bytes());
    }
}

#[cfg(test)]
mod mutation_tests {
    use super::*;
    use crate::mutation::Mutator;
    use crate::snp::sim::{SimSnp, VMPCK0};

    /// Mutated response pages (bit flips, overwrites, shifted bytes, extreme length
    /// fields): `open` returns an error or exactly the PSP's payload, never panics.
    #[test]
    fn mutated_responses_never_panic_or_pass_altered() {
        let mut sim = SimSnp::new();
        let mut ghcb = Ghcb::new_boxed();
        let mut ctx = GuestMessageContext::new(Zeroizing::new(VMPCK0), 0);
        ctx.report(&mut sim, &mut ghcb, &[6; 64], 0).unwrap();
        let mut valid = [0u8; PAGE_SIZE];
        sim.read_response_page(&mut valid);
        let fresh = GuestMessageContext::new(Zeroizing::new(VMPCK0), 0);
        let original = fresh.open(1, MsgType::ReportReq, 0x4C0, &valid).unwrap();
        let mut m = Mutator::new(0x6e55);
        let mut accepted = 0;
        for _ in 0..3_000 {
            let mut bytes = m.mutate(&valid);
            bytes.resize(PAGE_SIZE, 0);
            let page: [u8; PAGE_SIZE] = bytes.try_into().unwrap();
            if let Ok(payload) = fresh.open(1, MsgType::ReportReq, 0x4C0, &page) {
                accepted += 1;
                assert_eq!(*payload, *original);
            }
        }
        // Only mutations in the unused tag half or after the payload leave it valid.
        assert!(accepted < 3_000, "{accepted}");
    }
}
