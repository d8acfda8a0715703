//! A simulated TDX module and host behind [`TdCall`] and [`TdxPages`], for the host tests.
//! It follows the TDX Module ABI and GHCI conventions (leaf numbers, register use,
//! GPR exposure, status codes, Secure-EPT page sizes, the GetQuote buffer) and can be told
//! to answer as a hostile host would.
#![cfg(test)]

use super::tdcall::VeInfo;
use super::vmcall::*;
use super::{Registers, TdCall, TdxPages};
use sha2::{Digest, Sha384};
use std::collections::{HashMap, HashSet};

/// A hostile rewrite of bytes the host controls.
pub type Tamper = Box<dyn FnMut(&mut [u8])>;

pub const SCRATCH_GPA: u64 = 0x7000;
pub const QUOTE_GPA: u64 = 0x10_0000;
pub const QUOTE_BUFFER_LEN: usize = 0x2000;
pub const MRTD: [u8; 48] = [0x7D; 48];

const TDX_SUCCESS: u64 = 0;
const TDX_OPERAND_INVALID: u64 = 0xC000_0100_0000_0000;
const TDX_OPERAND_BUSY: u64 = 0x8000_0200_0000_0000;
const TDX_PAGE_ALREADY_ACCEPTED: u64 = 0x0000_0B0A_0000_0000;
const TDX_PAGE_SIZE_MISMATCH: u64 = 0xC000_0B0B_0000_0000;
const TDX_NO_VALID_VE_INFO: u64 = 0xC000_0704_0000_0000;
const RETRY: u64 = 1;
const INVALID_OPERAND: u64 = 0x8000_0000_0000_0000;

/// How the host's quoting service behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteHost {
    /// Completes after this many guest polls (sleeps).
    After(u32),
    /// Never completes (status stays IN_FLIGHT).
    Never,
    /// The VMCALL itself is refused with INVALID_OPERAND (no service).
    NoVmcall,
    /// Answers SERVICE_UNAVAILABLE in the buffer.
    Unavailable,
    /// Answers ERROR in the buffer.
    Error,
    /// Answers SUCCESS with this OUT_LEN.
    OutLen(u32),
    /// Answers SUCCESS with another header version.
    Version(u64),
    /// Answers a quote for other report data.
    OtherReportData,
    /// Answers SUCCESS with an undefined status.
    Status(u64),
    /// Answers a v5 quote.
    V5,
}

pub struct SimTdx {
    pub gpaw: u8,
    pub attributes: u64,
    /// (NUM_VCPUS, MAX_VCPUS)
    pub vcpus: (u32, u32),
    scratch: [u8; 4096],
    quote_buffer: Option<Vec<u8>>,
    pub rtmr: [[u8; 48]; 4],
    pub ve: Option<VeInfo>,
    /// Fail this leaf (RAX) with this status.
    pub fail_leaf: Option<(u64, u64)>,
    /// Force this R10 on every VMCALL.
    pub vmcall_status: Option<u64>,
    pub ports: HashMap<u16, u32>,
    pub mmio: HashMap<u64, u64>,
    pub msrs: HashMap<u32, u64>,
    /// MapGPA calls as (start, length) and the bytes handled per call before RETRY.
    pub map_gpa_calls: Vec<(u64, u64)>,
    pub map_gpa_chunk: u64,
    /// Answer RETRY with this resume address instead of an honest one.
    pub map_gpa_resume: Option<u64>,
    /// MapGPA leaves the pages accepted (a host that did not remove them).
    pub map_gpa_keeps_accepted: bool,
    /// Accepted 4 KiB pages (GPA >> 12) and 2 MiB blocks the host mapped with 4 KiB pages.
    pub accepted: HashSet<u64>,
    pub split_2m: HashSet<u64>,
    /// TDX_OPERAND_BUSY answers still to give.
    pub accept_busy: u32,
    /// Fail the accept of this GPA with this status.
    pub accept_fail: Option<(u64, u64)>,
    pub accept_calls: u64,
    pub quote_host: QuoteHost,
    polls: u32,
    pub slept_ms: u64,
    pub fatal: Option<(u64, Vec<u8>)>,
    /// RCX masks of the VMCALLs.
    pub masks: Vec<u64>,
    /// Rewrites the GetQuote buffer after the host answered (hostile host).
    pub tamper: Option<Tamper>,
}

impl SimTdx {
    pub fn new() -> Self {
        Self {
            gpaw: 52,
            attributes: 1 << 28,
            vcpus: (1, 1),
            scratch: [0; 4096],
            quote_buffer: Some(vec![0; QUOTE_BUFFER_LEN]),
            rtmr: [[0; 48]; 4],
            ve: None,
            fail_leaf: None,
            vmcall_status: None,
            ports: HashMap::new(),
            mmio: HashMap::new(),
            msrs: HashMap::new(),
            map_gpa_calls: Vec::new(),
            map_gpa_chunk: u64::MAX,
            map_gpa_resume: None,
            map_gpa_keeps_accepted: false,
            accepted: HashSet::new(),
            split_2m: HashSet::new(),
            accept_busy: 0,
            accept_fail: None,
            accept_calls: 0,
            quote_host: QuoteHost::After(3),
            polls: 0,
            slept_ms: 0,
            fatal: None,
            masks: Vec::new(),
            tamper: None,
        }
    }

    pub fn without_quote_buffer(mut self) -> Self {
        self.quote_buffer = None;
        self
    }

    fn tdreport(&self, report_data: &[u8]) -> [u8; 1024] {
        let mut r = [0u8; 1024];
        r[0] = 0x81;
        r[0x80..0xC0].copy_from_slice(report_data);
        r[0xE0..0x100].fill(0xAC); // MAC
        r[0x210..0x240].copy_from_slice(&MRTD);
        for (i, rtmr) in self.rtmr.iter().enumerate() {
            r[0x2D0 + i * 48..0x300 + i * 48].copy_from_slice(rtmr);
        }
        r
    }

    fn accept(&mut self, rcx: u64) -> u64 {
        self.accept_calls += 1;
        let (gpa, level) = (rcx & !0xFFF, rcx & 0x7);
        if let Some((at, status)) = self.accept_fail {
            if at == gpa {
                return status;
            }
        }
        if self.accept_busy > 0 {
            self.accept_busy -= 1;
            return TDX_OPERAND_BUSY;
        }
        match level {
            0 => {
                if !self.accepted.insert(gpa >> 12) {
                    return TDX_PAGE_ALREADY_ACCEPTED;
                }
                TDX_SUCCESS
            }
            1 => {
                let pages: Vec<u64> = (0..512).map(|i| (gpa >> 12) + i).collect();
                let done = pages.iter().filter(|p| self.accepted.contains(p)).count();
                if self.split_2m.contains(&(gpa >> 21)) || (done != 0 && done != 512) {
                    TDX_PAGE_SIZE_MISMATCH
                } else if done == 512 {
                    TDX_PAGE_ALREADY_ACCEPTED
                } else {
                    self.accepted.extend(pages);
                    TDX_SUCCESS
                }
            }
            _ => TDX_OPERAND_INVALID,
        }
    }

    /// The host's side of a VMCALL: returns (R10, outputs R11..R15 as Some when written).
    fn host(&mut self, r: &Registers) -> (u64, [Option<u64>; 5]) {
        let mut out = [None; 5];
        let status = match r.r11 {
            EXIT_REASON_IO_INSTRUCTION => {
                let port = r.r14 as u16;
                if r.r13 == 0 {
                    out[0] = Some(*self.ports.get(&port).unwrap_or(&0xFFFF_FFFF) as u64 | 0xDEAD_0000_0000_0000);
                } else {
                    self.ports.insert(port, r.r15 as u32);
                }
                0
            }
            EXIT_REASON_EPT_VIOLATION => {
                if r.r13 == 0 {
                    out[0] = Some(*self.mmio.get(&r.r14).unwrap_or(&0x1122_3344_5566_7788));
                } else {
                    self.mmio.insert(r.r14, r.r15);
                }
                0
            }
            EXIT_REASON_CPUID => {
                out[1] = Some((r.r12 + 1) | 0xFFFF_0000_0000_0000);
                out[2] = Some(0xB);
                out[3] = Some(r.r13 + 0xC);
                out[4] = Some(0xD);
                0
            }
            EXIT_REASON_MSR_READ => match self.msrs.get(&(r.r12 as u32)) {
                Some(v) => {
                    out[0] = Some(*v);
                    0
                }
                None => INVALID_OPERAND,
            },
            EXIT_REASON_MSR_WRITE => {
                self.msrs.insert(r.r12 as u32, r.r13);
                0
            }
            EXIT_REASON_HLT => 0,
            TDVMCALL_MAP_GPA => {
                self.map_gpa_calls.push((r.r12, r.r13));
                if !self.map_gpa_keeps_accepted {
                    let start = (r.r12 & ((1 << (self.gpaw - 1)) - 1)) >> 12;
                    for page in start..start + (r.r13.min(self.map_gpa_chunk) >> 12) {
                        self.accepted.remove(&page);
                    }
                }
                if r.r13 > self.map_gpa_chunk {
                    out[0] = Some(self.map_gpa_resume.unwrap_or(r.r12 + self.map_gpa_chunk));
                    RETRY
                } else {
                    0
                }
            }
            TDVMCALL_GET_QUOTE => self.start_quote(r.r12, r.r13),
            TDVMCALL_REPORT_FATAL_ERROR => {
                let mut text = Vec::new();
                for w in [r.r14, r.r15, r.rbx, r.rdi, r.rsi, r.r8, r.r9, r.rdx] {
                    text.extend_from_slice(&w.to_le_bytes());
                }
                self.fatal = Some((r.r12, text));
                0
            }
            TDVMCALL_SETUP_EVENT_NOTIFY_INTERRUPT => 0,
            _ => INVALID_OPERAND,
        };
        (self.vmcall_status.unwrap_or(status), out)
    }

    fn start_quote(&mut self, gpa: u64, len: u64) -> u64 {
        if self.quote_host == QuoteHost::NoVmcall {
            return INVALID_OPERAND;
        }
        let shared_bit = 1u64 << (self.gpaw - 1);
        assert_eq!(gpa, QUOTE_GPA | shared_bit, "GetQuote needs the shared GPA");
        assert_eq!(len as usize, QUOTE_BUFFER_LEN);
        let buffer = self.quote_buffer.as_mut().unwrap();
        assert_eq!(u64::from_le_bytes(buffer[0..8].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(buffer[8..16].try_into().unwrap()), 0, "guest clears status");
        buffer[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        self.polls = 0;
        if let QuoteHost::After(0) = self.quote_host {
            self.finish_quote();
        }
        0
    }

    fn finish_quote(&mut self) {
        let buffer = self.quote_buffer.as_mut().unwrap();
        let report: Vec<u8> = buffer[24..24 + 1024].to_vec();
        let mut report_data = report[0x80..0xC0].to_vec();
        let (status, version) = match self.quote_host {
            QuoteHost::Unavailable => (0x8000_0000_0000_0001, 1),
            QuoteHost::Error => (0x8000_0000_0000_0000, 1),
            QuoteHost::Version(v) => (0, v),
            QuoteHost::Status(s) => (s, 1),
            _ => (0, 1),
        };
        if self.quote_host == QuoteHost::OtherReportData {
            report_data[0] ^= 1;
        }
        let v5 = self.quote_host == QuoteHost::V5;
        let body = if v5 { 54 } else { 48 };
        let mut quote = vec![0u8; body + 584 + 4 + 64];
        quote[0..2].copy_from_slice(&(if v5 { 5u16 } else { 4 }).to_le_bytes());
        quote[2..4].copy_from_slice(&2u16.to_le_bytes());
        quote[4..8].copy_from_slice(&0x81u32.to_le_bytes());
        if v5 {
            quote[48..50].copy_from_slice(&2u16.to_le_bytes());
            quote[50..54].copy_from_slice(&584u32.to_le_bytes());
        }
        quote[body + 136..body + 184].copy_from_slice(&report[0x210..0x240]); // MRTD
        quote[body + 520..body + 584].copy_from_slice(&report_data);
        let out_len = match self.quote_host {
            QuoteHost::OutLen(len) => len,
            _ => quote.len() as u32,
        };
        let n = quote.len().min(buffer.len() - 24);
        buffer[24..24 + n].copy_from_slice(&quote[..n]);
        buffer[0..8].copy_from_slice(&version.to_le_bytes());
        buffer[8..16].copy_from_slice(&status.to_le_bytes());
        buffer[20..24].copy_from_slice(&out_len.to_le_bytes());
        if let Some(tamper) = self.tamper.as_mut() {
            tamper(buffer);
        }
    }
}

impl TdCall for SimTdx {
    fn tdcall(&mut self, input: &Registers) -> Registers {
        let mut out = *input;
        if let Some((leaf, status)) = self.fail_leaf {
            if leaf == input.rax {
                out.rax = status;
                return out;
            }
        }
        out.rax = match input.rax {
            0 => {
                self.masks.push(input.rcx);
                // RAX, RCX, RSP can never be exposed; R10/R11 must be.
                if input.rcx & 0b1_0011 != 0 || input.rcx & 0xC00 != 0xC00 || input.rcx >> 16 != 0 {
                    TDX_OPERAND_INVALID
                } else {
                    let (r10, outputs) = self.host(input);
                    out.r10 = r10;
                    for (i, value) in outputs.into_iter().enumerate() {
                        // Only exposed registers come back from the host.
                        if let Some(v) = value.filter(|_| input.rcx & (1 << (11 + i)) != 0) {
                            match i {
                                0 => out.r11 = v,
                                1 => out.r12 = v,
                                2 => out.r13 = v,
                                3 => out.r14 = v,
                                _ => out.r15 = v,
                            }
                        }
                    }
                    TDX_SUCCESS
                }
            }
            1 => {
                out.rcx = self.gpaw as u64;
                out.rdx = self.attributes;
                out.r8 = (self.vcpus.1 as u64) << 32 | self.vcpus.0 as u64;
                out.r9 = 0;
                TDX_SUCCESS
            }
            2 => {
                let at = (input.rcx - SCRATCH_GPA) as usize;
                assert_eq!(input.rcx % 64, 0, "extend data must be 64-byte aligned");
                let index = input.rdx as usize;
                let mut h = Sha384::new();
                h.update(self.rtmr[index]);
                h.update(&self.scratch[at..at + 48]);
                self.rtmr[index].copy_from_slice(&h.finalize());
                TDX_SUCCESS
            }
            3 => match self.ve.take() {
                Some(ve) => {
                    out.rcx = ve.exit_reason as u64;
                    out.rdx = ve.exit_qualification;
                    out.r8 = ve.gla;
                    out.r9 = ve.gpa;
                    out.r10 = (ve.instruction_info as u64) << 32 | ve.instruction_length as u64;
                    TDX_SUCCESS
                }
                None => TDX_NO_VALID_VE_INFO,
            },
            4 => {
                assert_eq!(input.rcx % 1024, 0);
                assert_eq!(input.rdx % 64, 0);
                let data_at = (input.rdx - SCRATCH_GPA) as usize;
                let report_data = self.scratch[data_at..data_at + 64].to_vec();
                let report = self.tdreport(&report_data);
                let at = (input.rcx - SCRATCH_GPA) as usize;
                self.scratch[at..at + 1024].copy_from_slice(&report);
                TDX_SUCCESS
            }
            6 => self.accept(input.rcx),
            _ => TDX_OPERAND_INVALID,
        };
        out
    }
}

impl TdxPages for SimTdx {
    fn scratch_gpa(&self) -> u64 {
        SCRATCH_GPA
    }
    fn write_scratch(&mut self, offset: usize, data: &[u8]) {
        self.scratch[offset..offset + data.len()].copy_from_slice(data);
    }
    fn read_scratch(&self, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.scratch[offset..offset + out.len()]);
    }
    fn quote_buffer(&self) -> Option<(u64, usize)> {
        self.quote_buffer.as_ref().map(|b| (QUOTE_GPA, b.len()))
    }
    fn write_quote_buffer(&mut self, offset: usize, data: &[u8]) {
        self.quote_buffer.as_mut().unwrap()[offset..offset + data.len()].copy_from_slice(data);
    }
    fn read_quote_buffer(&self, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.quote_buffer.as_ref().unwrap()[offset..offset + out.len()]);
    }
    fn sleep_ms(&mut self, ms: u32) {
        self.slept_ms += ms as u64;
        self.polls += 1;
        if let QuoteHost::After(n) = self.quote_host {
            if self.polls == n {
                self.finish_quote();
            }
        } else if !matches!(self.quote_host, QuoteHost::Never) && self.polls == 1 {
            self.finish_quote();
        }
    }
}
