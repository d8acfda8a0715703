//! A simulated SNP hypervisor and PSP behind [`Vmgexit`], for the host tests: it answers
//! as the GHCB spec (56421) and SNP ABI (56860) say, keeps its own copy of VMPCK0 and its
//! own sequence counter, and can be told to turn hostile in the ways a real hypervisor
//! could (it sees and controls every shared byte).
#![cfg(test)]

use super::ghcb::*;
use super::guest_message::{AAD_OFFSET, ATTESTATION_REPORT_SIZE, MSG_HDR_SIZE};
use super::Vmgexit;
use aes_gcm::aead::AeadInOut;
use aes_gcm::Aes256Gcm;
use hmac::{KeyInit, Mac};
use std::collections::{HashMap, HashSet};
use zerocopy::{FromBytes, IntoBytes};

/// A hostile rewrite of bytes the host controls.
pub type Tamper = Box<dyn FnMut(&mut [u8])>;

pub const GHCB_GPA: u64 = 0x10_0000;
pub const REQUEST_GPA: u64 = 0x10_1000;
pub const RESPONSE_GPA: u64 = 0x10_2000;
pub const CERT_GPA: u64 = 0x20_0000;
pub const VMPCK0: [u8; 32] = [0x5A; 32];
pub const MEASUREMENT: [u8; 48] = [0x4D; 48];
pub const POLICY: u64 = 0x3_0000;

/// What the hypervisor does wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostile {
    None,
    /// Writes a valid response, then changes MSG_SIZE to this.
    WrongLength(u16),
    /// Writes a valid response, then changes MSG_SEQNO to this.
    WrongSeqno(u64),
    /// Flips a bit of the tag.
    BadTag,
    /// Flips bit `1` of response page byte `0`.
    Flip(usize, u8),
    /// Answers the next guest request with the response it saw for the first one.
    Replay,
    /// Returns this SW_EXITINFO2 for guest requests without calling the PSP.
    RequestError(u64),
    /// Answers BUSY this many times before forwarding.
    Busy(u32),
    /// Sets SW_EXITINFO1 / SW_EXITINFO2 to these for every exit.
    ExitInfo(u64, u64),
    /// Clears the valid bitmap in its answers.
    NoValidBits,
    /// Changes the response type to this.
    WrongType(u8),
    /// Reports the PSC entry the guest gave as done without moving (`cur_entry` stays).
    PscStall,
    /// Rewrites the GFN of the first PSC entry.
    PscRewrite,
}

pub struct Psp {
    vmpck: [u8; 32],
    /// The last sequence number the PSP used.
    seqno: u64,
    pub measurement: [u8; 48],
    pub policy: u64,
    chip_secret: [u8; 32],
    pub reports: u32,
}

impl Psp {
    pub fn new(chip_secret: [u8; 32]) -> Self {
        Self { vmpck: VMPCK0, seqno: 0, measurement: MEASUREMENT, policy: POLICY, chip_secret, reports: 0 }
    }

    /// SNP_GUEST_REQUEST: decrypts the request, answers, encrypts the response. Returns the
    /// firmware status (0 = success), as the hypervisor puts it in `SW_EXITINFO2[31:0]`.
    fn guest_request(&mut self, request: &[u8; 4096], response: &mut [u8; 4096]) -> u32 {
        const INVALID_PARAM: u32 = 0x16;
        let seqno = u64::from_le_bytes(request[0x20..0x28].try_into().unwrap());
        let msg_type = request[0x34];
        let msg_size = u16::from_le_bytes([request[0x36], request[0x37]]) as usize;
        if seqno != self.seqno + 1 || request[0x30] != 1 || request[0x3C] != 0 || msg_size > 4000 {
            return INVALID_PARAM;
        }
        let mut iv = [0u8; 12];
        iv[..8].copy_from_slice(&seqno.to_le_bytes());
        let cipher = Aes256Gcm::new_from_slice(&self.vmpck).unwrap();
        let mut payload = request[MSG_HDR_SIZE..MSG_HDR_SIZE + msg_size].to_vec();
        let tag = aes_gcm::aead::Tag::<Aes256Gcm>::try_from(&request[..16]).unwrap();
        if cipher.decrypt_inout_detached(&iv.into(), &request[AAD_OFFSET..MSG_HDR_SIZE], payload.as_mut_slice().into(), &tag).is_err() {
            return INVALID_PARAM;
        }
        let mut answer = match msg_type {
            5 if msg_size == 0x60 => {
                self.reports += 1;
                let mut rsp = vec![0u8; 0x20 + ATTESTATION_REPORT_SIZE];
                rsp[4..8].copy_from_slice(&(ATTESTATION_REPORT_SIZE as u32).to_le_bytes());
                let report = &mut rsp[0x20..];
                report[0..4].copy_from_slice(&2u32.to_le_bytes());
                report[0x08..0x10].copy_from_slice(&self.policy.to_le_bytes());
                report[0x30..0x34].copy_from_slice(&payload[0x40..0x44]);
                report[0x50..0x90].copy_from_slice(&payload[..64]);
                report[0x90..0xC0].copy_from_slice(&self.measurement);
                rsp
            }
            3 if msg_size == 0x20 => {
                let select = u64::from_le_bytes(payload[8..16].try_into().unwrap());
                let mut rsp = vec![0u8; 0x40];
                if payload[0] & 1 != 0 || select >> 6 != 0 {
                    rsp[..4].copy_from_slice(&0x16u32.to_le_bytes());
                } else {
                    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.chip_secret).unwrap();
                    mac.update(&select.to_le_bytes());
                    if select & 1 != 0 {
                        mac.update(&self.policy.to_le_bytes());
                    }
                    if select & 8 != 0 {
                        mac.update(&self.measurement);
                    }
                    rsp[0x20..].copy_from_slice(&mac.finalize().into_bytes());
                }
                rsp
            }
            _ => return INVALID_PARAM,
        };
        let out_seqno = seqno + 1;
        response.fill(0);
        response[0x20..0x28].copy_from_slice(&out_seqno.to_le_bytes());
        response[0x30] = 1;
        response[0x31] = 1;
        response[0x32..0x34].copy_from_slice(&0x60u16.to_le_bytes());
        response[0x34] = msg_type + 1;
        response[0x35] = 1;
        response[0x36..0x38].copy_from_slice(&(answer.len() as u16).to_le_bytes());
        response[0x3C] = 0;
        let mut iv = [0u8; 12];
        iv[..8].copy_from_slice(&out_seqno.to_le_bytes());
        let (head, body) = response.split_at_mut(MSG_HDR_SIZE);
        let tag = cipher.encrypt_inout_detached(&iv.into(), &head[AAD_OFFSET..], answer.as_mut_slice().into()).unwrap();
        body[..answer.len()].copy_from_slice(&answer);
        head[..16].copy_from_slice(&tag);
        self.seqno = out_seqno;
        0
    }
}

pub struct SimSnp {
    shared: Box<Ghcb>,
    request_page: Box<[u8; 4096]>,
    response_page: Box<[u8; 4096]>,
    recorded: Option<Box<[u8; 4096]>>,
    pub psp: Psp,
    pub hostile: Hostile,
    pub exits: Vec<u64>,
    pub ports: HashMap<u16, u32>,
    pub mmio: HashMap<u64, u64>,
    pub msrs: HashMap<u32, u64>,
    pub slept_ms: u64,
    /// Page-state changes performed: (gfn, operation, 2 MiB).
    pub psc: Vec<(u64, u64, bool)>,
    /// The hypervisor processes at most this many PSC entries per exit.
    pub psc_per_exit: usize,
    pub msr_log: Vec<u64>,
    /// Every request page the hypervisor saw (with each retry).
    pub requests: Vec<Box<[u8; 4096]>>,
    /// Rewrites the page-state-change buffer after each round (hostile hypervisor).
    pub psc_tamper: Option<Tamper>,
    /// The guest's shared certificate buffer, and the table the host puts there.
    pub cert_buffer: Option<Vec<u8>>,
    pub host_certs: Vec<u8>,
    /// The RMP, per 4 KiB GFN: assigned to the guest (private), and validated; and the
    /// 2 MiB blocks (GPA >> 21) the RMP holds as 2 MiB entries.
    pub private: HashSet<u64>,
    pub validated: HashSet<u64>,
    pub huge_backed: HashSet<u64>,
    /// The page-state change reports success but changes nothing.
    pub psc_lies: bool,
    /// Private assignment keeps the Validated bit (a remapped, already validated page).
    pub psc_keeps_validated: bool,
}

impl SimSnp {
    pub fn new() -> Self {
        Self {
            shared: Ghcb::new_boxed(),
            request_page: Box::new([0; 4096]),
            response_page: Box::new([0; 4096]),
            recorded: None,
            psp: Psp::new([0xC4; 32]),
            hostile: Hostile::None,
            exits: Vec::new(),
            ports: HashMap::new(),
            mmio: HashMap::new(),
            msrs: HashMap::new(),
            slept_ms: 0,
            psc: Vec::new(),
            psc_per_exit: usize::MAX,
            msr_log: Vec::new(),
            requests: Vec::new(),
            psc_tamper: None,
            cert_buffer: None,
            host_certs: Vec::new(),
            private: HashSet::new(),
            validated: HashSet::new(),
            huge_backed: HashSet::new(),
            psc_lies: false,
            psc_keeps_validated: false,
        }
    }

    fn valid(&self, offset: usize) -> bool {
        let bit = offset / 8;
        self.shared.valid_bitmap[bit / 8] & (1 << (bit % 8)) != 0
    }

    fn answer(&mut self, offsets: &[usize]) {
        self.shared.valid_bitmap = [0; 16];
        for offset in offsets {
            let bit = offset / 8;
            self.shared.valid_bitmap[bit / 8] |= 1 << (bit % 8);
        }
    }

    fn handle(&mut self) {
        let g = &mut self.shared;
        let code = g.sw_exit_code;
        self.exits.push(code);
        let (info_1, info_2) = (g.sw_exit_info_1, g.sw_exit_info_2);
        g.sw_exit_info_1 = 0;
        g.sw_exit_info_2 = 0;
        match code {
            SVM_EXIT_IOIO => {
                let port = (info_1 >> 16) as u16;
                if info_1 & 1 != 0 {
                    self.shared.rax = *self.ports.get(&port).unwrap_or(&0xFFFF_FFFF) as u64;
                    self.answer(&[0x1F8]);
                } else {
                    assert!(self.valid(0x1F8), "OUT without a valid RAX");
                    self.ports.insert(port, self.shared.rax as u32);
                    self.answer(&[]);
                }
            }
            SVM_VMGEXIT_MMIO_READ | SVM_VMGEXIT_MMIO_WRITE => {
                assert!(self.valid(0x3A8) && self.shared.sw_scratch == GHCB_GPA + 0x800);
                let len = info_2 as usize;
                if code == SVM_VMGEXIT_MMIO_READ {
                    let value = *self.mmio.get(&info_1).unwrap_or(&0x1122_3344_5566_7788);
                    self.shared.shared_buffer[..len].copy_from_slice(&value.to_le_bytes()[..len]);
                } else {
                    let mut bytes = [0u8; 8];
                    bytes[..len].copy_from_slice(&self.shared.shared_buffer[..len]);
                    self.mmio.insert(info_1, u64::from_le_bytes(bytes));
                }
                self.answer(&[]);
            }
            SVM_EXIT_MSR => {
                let msr = self.shared.rcx as u32;
                if info_1 == 0 {
                    match self.msrs.get(&msr) {
                        Some(&v) => {
                            self.shared.rax = v & 0xFFFF_FFFF;
                            self.shared.rdx = v >> 32;
                            self.answer(&[0x1F8, 0x310]);
                        }
                        None => {
                            // #GP: valid, exception type (3), vector 13.
                            self.shared.sw_exit_info_1 = 1;
                            self.shared.sw_exit_info_2 = (1 << 31) | (3 << 8) | 13;
                            self.answer(&[]);
                        }
                    }
                } else {
                    self.msrs.insert(msr, (self.shared.rdx << 32) | (self.shared.rax & 0xFFFF_FFFF));
                    self.answer(&[]);
                }
            }
            SVM_EXIT_CPUID => {
                let leaf = self.shared.rax;
                assert!(leaf != 0xD || self.valid(0x3E8), "CPUID 0Dh needs XCR0 (GHCB spec, CPUID exit)");
                self.shared.rax = leaf + 1;
                self.shared.rbx = 0xB;
                self.shared.rcx += 0xC;
                self.shared.rdx = 0xD;
                self.answer(&[0x1F8, 0x308, 0x310, 0x318]);
            }
            SVM_VMGEXIT_GUEST_REQUEST | SVM_VMGEXIT_EXT_GUEST_REQUEST => {
                assert_eq!((info_1, info_2), (REQUEST_GPA, RESPONSE_GPA));
                self.requests.push(self.request_page.clone());
                if code == SVM_VMGEXIT_EXT_GUEST_REQUEST {
                    assert!(self.valid(0x1F8) && self.valid(0x318) && self.shared.rax == CERT_GPA);
                    let pages = self.shared.rbx as usize;
                    let needed = self.host_certs.len().div_ceil(4096);
                    if needed > pages {
                        self.shared.sw_exit_info_2 = (SNP_GUEST_VMM_ERR_INVALID_LEN as u64) << 32;
                        self.shared.rbx = needed as u64;
                        self.answer(&[0x318]);
                        return;
                    }
                    let buffer = self.cert_buffer.as_mut().unwrap();
                    buffer.fill(0);
                    buffer[..self.host_certs.len()].copy_from_slice(&self.host_certs);
                }
                self.answer(&[]);
                match self.hostile {
                    Hostile::RequestError(code) => {
                        self.shared.sw_exit_info_2 = code;
                        return;
                    }
                    Hostile::Busy(n) if n > 0 => {
                        self.hostile = Hostile::Busy(n - 1);
                        self.shared.sw_exit_info_2 = (SNP_GUEST_VMM_ERR_BUSY as u64) << 32;
                        return;
                    }
                    _ => {}
                }
                let status = self.psp.guest_request(&self.request_page, &mut self.response_page);
                self.shared.sw_exit_info_2 = status as u64;
                if status != 0 {
                    return;
                }
                let page = &mut self.response_page;
                match self.hostile {
                    Hostile::WrongLength(len) => page[0x36..0x38].copy_from_slice(&len.to_le_bytes()),
                    Hostile::WrongSeqno(seqno) => page[0x20..0x28].copy_from_slice(&seqno.to_le_bytes()),
                    Hostile::WrongType(t) => page[0x34] = t,
                    Hostile::BadTag => page[3] ^= 0x10,
                    Hostile::Flip(at, bit) => page[at] ^= 1 << bit,
                    Hostile::Replay => match &self.recorded {
                        None => self.recorded = Some(page.clone()),
                        Some(old) => *page = old.clone(),
                    },
                    _ => {}
                }
            }
            SVM_VMGEXIT_PSC => {
                assert_eq!(self.shared.sw_scratch, GHCB_GPA + 0x800);
                let buffer = &mut self.shared.shared_buffer;
                let (mut header, _) = PscHeader::read_from_prefix(&buffer[..]).unwrap();
                let mut done = 0;
                while header.cur_entry <= header.end_entry && done < self.psc_per_exit && self.hostile != Hostile::PscStall {
                    let at = 8 + header.cur_entry as usize * 8;
                    let entry = u64::from_le_bytes(buffer[at..at + 8].try_into().unwrap());
                    let (gfn, op, huge) = ((entry >> 12) & ((1 << 40) - 1), (entry >> 52) & 0xF, entry >> 56 & 1 == 1);
                    self.psc.push((gfn, op, huge));
                    if !self.psc_lies {
                        for page in gfn..gfn + if huge { 512 } else { 1 } {
                            if op == 1 {
                                self.private.insert(page);
                            } else {
                                self.private.remove(&page);
                            }
                            if !self.psc_keeps_validated {
                                self.validated.remove(&page);
                            }
                        }
                    }
                    header.cur_entry += 1;
                    done += 1;
                }
                if self.hostile == Hostile::PscRewrite {
                    buffer[8 + 1] ^= 0x10;
                }
                buffer[..8].copy_from_slice(header.as_bytes());
                if let Some(tamper) = self.psc_tamper.as_mut() {
                    tamper(buffer);
                }
                self.answer(&[]);
            }
            other => panic!("unexpected exit {other:#x}"),
        }
        match self.hostile {
            Hostile::ExitInfo(i1, i2) => {
                self.shared.sw_exit_info_1 = i1;
                self.shared.sw_exit_info_2 = i2;
            }
            Hostile::NoValidBits => self.shared.valid_bitmap = [0; 16],
            _ => {}
        }
    }
}

impl super::pvalidate::Pvalidate for SimSnp {
    /// PVALIDATE against the simulated RMP (APM vol. 3): size mismatch when the RMP entry
    /// size differs, FAIL_INPUT for pages not assigned to the guest, CF when unchanged.
    fn pvalidate(&mut self, gpa: u64, huge: bool, validate: bool) -> (u32, bool) {
        if huge != self.huge_backed.contains(&(gpa >> 21)) {
            return (6, false);
        }
        let pages: Vec<u64> = if huge { (0..512).map(|i| (gpa >> 12) + i).collect() } else { vec![gpa >> 12] };
        if pages.iter().any(|p| !self.private.contains(p)) {
            return (1, false);
        }
        if pages.iter().all(|p| self.validated.contains(p) == validate) {
            return (0, true);
        }
        for p in pages {
            if validate {
                self.validated.insert(p);
            } else {
                self.validated.remove(&p);
            }
        }
        (0, false)
    }
}

impl Vmgexit for SimSnp {
    fn msr_protocol(&mut self, request: u64) -> u64 {
        self.msr_log.push(request);
        match request & 0xFFF {
            0x002 => (2 << 48) | (1 << 32) | (51 << 24) | 0x001,
            0x004 => (0xABCD << 32) | (request & (3 << 30)) | 0x005,
            0x012 => (request & !0xFFF) | 0x013,
            0x014 => 0x015,
            0x080 => (0b11 << 12) | 0x081,
            _ => 0,
        }
    }

    fn ghcb_gpa(&self) -> u64 {
        GHCB_GPA
    }

    fn exit(&mut self, ghcb: &mut Ghcb) {
        self.shared.as_mut_bytes().copy_from_slice(ghcb.as_bytes());
        self.handle();
        ghcb.as_mut_bytes().copy_from_slice(self.shared.as_bytes());
    }

    fn message_page_gpas(&self) -> (u64, u64) {
        (REQUEST_GPA, RESPONSE_GPA)
    }

    fn write_request_page(&mut self, page: &[u8; 4096]) {
        *self.request_page = *page;
    }

    fn read_response_page(&mut self, page: &mut [u8; 4096]) {
        *page = *self.response_page;
    }

    fn sleep_ms(&mut self, ms: u32) {
        self.slept_ms += ms as u64;
    }

    fn certificate_buffer(&self) -> Option<(u64, usize)> {
        self.cert_buffer.as_ref().map(|b| (CERT_GPA, b.len()))
    }

    fn read_certificate_buffer(&mut self, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.cert_buffer.as_ref().unwrap()[offset..offset + out.len()]);
    }
}
