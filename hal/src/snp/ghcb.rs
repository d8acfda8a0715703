//! The GHCB page: its layout, the requests the kernel makes through it, and the checks on
//! what the hypervisor writes back (AMD GHCB specification 56421, rev. 2.03, "GHCB Layout" and §4.1 "Invoking VMGEXIT" with its per-exit sections).
//!
//! The page is shared with the hypervisor, so the code here never reads it in place: the
//! [`super::Vmgexit`] boundary copies the whole page into a private [`Ghcb`]
//! after the exit, and every check and every value taken runs on that copy (no
//! time-of-check/time-of-use window).

use super::ghcb_msr::PageOperation;
use super::Vmgexit;
use alloc::boxed::Box;
use core::fmt;
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

pub const PAGE_SIZE: usize = 4096;

// SW_EXITCODE values, GHCB spec table "List of Supported Non-Automatic Events"
// and AMD APM vol. 2 appendix C (SVM intercept codes).
pub const SVM_EXIT_CPUID: u64 = 0x72;
pub const SVM_EXIT_IOIO: u64 = 0x7B;
pub const SVM_EXIT_MSR: u64 = 0x7C;
pub const SVM_VMGEXIT_MMIO_READ: u64 = 0x8000_0001;
pub const SVM_VMGEXIT_MMIO_WRITE: u64 = 0x8000_0002;
pub const SVM_VMGEXIT_PSC: u64 = 0x8000_0010;
pub const SVM_VMGEXIT_GUEST_REQUEST: u64 = 0x8000_0011;
pub const SVM_VMGEXIT_EXT_GUEST_REQUEST: u64 = 0x8000_0012;
pub const SVM_VMGEXIT_HV_FEATURES: u64 = 0x8000_FFFD;

/// GHCB_USAGE 0: the standard GHCB format ("GHCB Layout").
pub const GHCB_USAGE_STANDARD: u32 = 0;
/// Protocol version written into every request (see [`super::ghcb_msr::GHCB_PROTOCOL_MAX`]).
pub const GHCB_VERSION: u16 = 2;

// SW_EXITINFO1[31:0] after the exit (§4.1 "Invoking VMGEXIT").
pub const GHCB_HV_RESP_NO_ACTION: u32 = 0;
pub const GHCB_HV_RESP_ISSUE_EXCEPTION: u32 = 1;
pub const GHCB_HV_RESP_MALFORMED_INPUT: u32 = 2;

/// The GHCB page (GHCB spec 56421 rev. 2.03, table "GHCB Layout"; the save-area
/// offsets are those of the VMSA, AMD APM vol. 2 table B-4). Only the fields Halcyon uses
/// are named; the rest is kept as opaque bytes.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Ghcb {
    reserved_000: [u8; 0x1F8],
    pub rax: u64,
    reserved_200: [u8; 0x108],
    pub rcx: u64,
    pub rdx: u64,
    pub rbx: u64,
    reserved_320: [u8; 0x70],
    pub sw_exit_code: u64,
    pub sw_exit_info_1: u64,
    pub sw_exit_info_2: u64,
    pub sw_scratch: u64,
    reserved_3b0: [u8; 0x38],
    pub xcr0: u64,
    pub valid_bitmap: [u8; 16],
    reserved_400: [u8; 0x400],
    pub shared_buffer: [u8; SHARED_BUFFER_SIZE],
    reserved_ff0: [u8; 0xA],
    pub protocol_version: u16,
    pub ghcb_usage: u32,
}

/// The shared buffer at offset 800h ("GHCB Layout").
pub const SHARED_BUFFER_SIZE: usize = 0x7F0;
pub const SHARED_BUFFER_OFFSET: usize = 0x800;

const _: () = {
    assert!(size_of::<Ghcb>() == PAGE_SIZE);
    assert!(offset_of!(Ghcb, rax) == 0x1F8);
    assert!(offset_of!(Ghcb, rcx) == 0x308);
    assert!(offset_of!(Ghcb, rdx) == 0x310);
    assert!(offset_of!(Ghcb, rbx) == 0x318);
    assert!(offset_of!(Ghcb, sw_exit_code) == 0x390);
    assert!(offset_of!(Ghcb, sw_exit_info_1) == 0x398);
    assert!(offset_of!(Ghcb, sw_exit_info_2) == 0x3A0);
    assert!(offset_of!(Ghcb, sw_scratch) == 0x3A8);
    assert!(offset_of!(Ghcb, xcr0) == 0x3E8);
    assert!(offset_of!(Ghcb, valid_bitmap) == 0x3F0);
    assert!(offset_of!(Ghcb, shared_buffer) == SHARED_BUFFER_OFFSET);
    assert!(offset_of!(Ghcb, protocol_version) == 0xFFA);
    assert!(offset_of!(Ghcb, ghcb_usage) == 0xFFC);
};

/// A save-area field, named by its offset: its bit in the valid bitmap is offset / 8 ("GHCB Layout").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Rax,
    Rcx,
    Rdx,
    Rbx,
    SwExitCode,
    SwExitInfo1,
    SwExitInfo2,
    SwScratch,
    Xcr0,
}

impl Field {
    const fn offset(self) -> usize {
        match self {
            Field::Rax => offset_of!(Ghcb, rax),
            Field::Rcx => offset_of!(Ghcb, rcx),
            Field::Rdx => offset_of!(Ghcb, rdx),
            Field::Rbx => offset_of!(Ghcb, rbx),
            Field::SwExitCode => offset_of!(Ghcb, sw_exit_code),
            Field::SwExitInfo1 => offset_of!(Ghcb, sw_exit_info_1),
            Field::SwExitInfo2 => offset_of!(Ghcb, sw_exit_info_2),
            Field::SwScratch => offset_of!(Ghcb, sw_scratch),
            Field::Xcr0 => offset_of!(Ghcb, xcr0),
        }
    }

    const fn bit(self) -> usize {
        self.offset() / 8
    }
}

impl Ghcb {
    /// A zeroed page on the heap (4 KiB does not belong on a kernel stack).
    pub fn new_boxed() -> Box<Self> {
        Self::new_box_zeroed().expect("a 4 KiB allocation")
    }

    pub fn is_valid(&self, field: Field) -> bool {
        let bit = field.bit();
        self.valid_bitmap[bit / 8] & (1 << (bit % 8)) != 0
    }

    fn set(&mut self, field: Field, value: u64) {
        match field {
            Field::Rax => self.rax = value,
            Field::Rcx => self.rcx = value,
            Field::Rdx => self.rdx = value,
            Field::Rbx => self.rbx = value,
            Field::SwExitCode => self.sw_exit_code = value,
            Field::SwExitInfo1 => self.sw_exit_info_1 = value,
            Field::SwExitInfo2 => self.sw_exit_info_2 = value,
            Field::SwScratch => self.sw_scratch = value,
            Field::Xcr0 => self.xcr0 = value,
        }
        let bit = field.bit();
        self.valid_bitmap[bit / 8] |= 1 << (bit % 8);
    }

    /// Starts a request: clears every register field and the valid bitmap (so no stale
    /// value of an earlier exit reaches the hypervisor), then sets the exit code and infos.
    fn begin(&mut self, exit_code: u64, info_1: u64, info_2: u64) {
        self.rax = 0;
        self.rcx = 0;
        self.rdx = 0;
        self.rbx = 0;
        self.sw_scratch = 0;
        self.xcr0 = 0;
        self.valid_bitmap = [0; 16];
        self.protocol_version = GHCB_VERSION;
        self.ghcb_usage = GHCB_USAGE_STANDARD;
        self.set(Field::SwExitCode, exit_code);
        self.set(Field::SwExitInfo1, info_1);
        self.set(Field::SwExitInfo2, info_2);
    }

    fn require(&self, field: Field) -> Result<u64, GhcbError> {
        if !self.is_valid(field) {
            return Err(GhcbError::MissingOutput(field));
        }
        Ok(match field {
            Field::Rax => self.rax,
            Field::Rcx => self.rcx,
            Field::Rdx => self.rdx,
            Field::Rbx => self.rbx,
            Field::SwExitCode => self.sw_exit_code,
            Field::SwExitInfo1 => self.sw_exit_info_1,
            Field::SwExitInfo2 => self.sw_exit_info_2,
            Field::SwScratch => self.sw_scratch,
            Field::Xcr0 => self.xcr0,
        })
    }

    /// Checks SW_EXITINFO1 after an exit (§4.1 "Invoking VMGEXIT"): 0 is success; 1 asks the guest to raise
    /// the exception in SW_EXITINFO2; 2 reports malformed input with a reason in
    /// SW_EXITINFO2; anything else is not in the specification.
    pub fn check_exit_info(&self) -> Result<(), GhcbError> {
        match self.sw_exit_info_1 as u32 {
            GHCB_HV_RESP_NO_ACTION => Ok(()),
            GHCB_HV_RESP_ISSUE_EXCEPTION => Err(GhcbError::Exception(EventInjection(self.sw_exit_info_2))),
            GHCB_HV_RESP_MALFORMED_INPUT => Err(GhcbError::MalformedInput(self.sw_exit_info_2 as u32)),
            other => Err(GhcbError::UnknownResponse(other)),
        }
    }
}

/// SW_EXITINFO2 of a "raise an exception" answer: the EVENTINJ format (APM vol. 2 "Event Injection"):
/// vector in bits 7:0, type in 10:8, valid in bit 31.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventInjection(pub u64);

impl EventInjection {
    pub const fn vector(self) -> u8 {
        self.0 as u8
    }
    pub const fn is_valid(self) -> bool {
        self.0 & (1 << 31) != 0
    }
}

/// Why a GHCB exit failed or its answer was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GhcbError {
    /// The hypervisor asks the guest to raise an exception (#GP for an MSR it refuses...).
    Exception(EventInjection),
    /// The hypervisor found the request malformed (SW_EXITINFO2 reason, §4.1 "Invoking VMGEXIT").
    MalformedInput(u32),
    /// SW_EXITINFO1 holds a value the specification does not define.
    UnknownResponse(u32),
    /// A field the answer must carry is not marked valid.
    MissingOutput(Field),
    /// The request itself is invalid (size, alignment, length).
    InvalidRequest,
    /// A page-state change failed: SW_EXITINFO2 was not zero ("SNP Page State Change").
    PageStateChange(u64),
    /// The hypervisor rewrote the page-state-change buffer inconsistently.
    PageStateChangeTampered,
    /// The hypervisor stopped making progress on a page-state change.
    PageStateChangeStalled,
}

impl fmt::Display for GhcbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exception(event) => write!(f, "hypervisor asks to raise exception {}", event.vector()),
            Self::MalformedInput(reason) => write!(f, "hypervisor reports malformed GHCB input (reason {reason})"),
            Self::UnknownResponse(code) => write!(f, "undefined SW_EXITINFO1 {code:#x}"),
            Self::MissingOutput(field) => write!(f, "GHCB answer lacks a valid {field:?}"),
            Self::InvalidRequest => f.write_str("invalid GHCB request"),
            Self::PageStateChange(code) => write!(f, "page-state change failed ({code:#x})"),
            Self::PageStateChangeTampered => f.write_str("page-state-change buffer rewritten inconsistently"),
            Self::PageStateChangeStalled => f.write_str("page-state change made no progress"),
        }
    }
}

impl core::error::Error for GhcbError {}

/// Access width of a port or MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    Byte = 1,
    Word = 2,
    Dword = 4,
    Qword = 8,
}

impl Width {
    const fn mask(self) -> u64 {
        match self {
            Width::Byte => 0xFF,
            Width::Word => 0xFFFF,
            Width::Dword => 0xFFFF_FFFF,
            Width::Qword => u64::MAX,
        }
    }
}

// IOIO intercept information, APM vol. 2 "I/O Intercepts" (EXITINFO1 of IOIO: TYPE bit 0, SZ8/16/32 bits 4-6, A16/32/64 bits 7-9, PORT 31:16).
const IOIO_TYPE_IN: u64 = 1 << 0;
const IOIO_SZ8: u64 = 1 << 4;
const IOIO_SZ16: u64 = 1 << 5;
const IOIO_SZ32: u64 = 1 << 6;
const IOIO_A64: u64 = 1 << 9;

fn ioio_info(port: u16, width: Width, input: bool) -> Result<u64, GhcbError> {
    let size = match width {
        Width::Byte => IOIO_SZ8,
        Width::Word => IOIO_SZ16,
        Width::Dword => IOIO_SZ32,
        Width::Qword => return Err(GhcbError::InvalidRequest),
    };
    Ok(((port as u64) << 16) | IOIO_A64 | size | if input { IOIO_TYPE_IN } else { 0 })
}

/// Port input (IN): SW_EXITINFO1 = IOIO info, the answer in RAX (which must be valid).
pub fn io_in(v: &mut impl Vmgexit, ghcb: &mut Ghcb, port: u16, width: Width) -> Result<u32, GhcbError> {
    ghcb.begin(SVM_EXIT_IOIO, ioio_info(port, width, true)?, 0);
    v.exit(ghcb);
    ghcb.check_exit_info()?;
    Ok((ghcb.require(Field::Rax)? & width.mask()) as u32)
}

/// Port output (OUT): the value in RAX.
pub fn io_out(v: &mut impl Vmgexit, ghcb: &mut Ghcb, port: u16, width: Width, value: u32) -> Result<(), GhcbError> {
    ghcb.begin(SVM_EXIT_IOIO, ioio_info(port, width, false)?, 0);
    ghcb.set(Field::Rax, value as u64 & width.mask());
    v.exit(ghcb);
    ghcb.check_exit_info()
}

/// MMIO read through the shared buffer ("MMIO Access" exits): SW_EXITINFO1 = GPA, SW_EXITINFO2 =
/// length, SW_SCRATCH = the shared buffer's GPA, which receives the data.
pub fn mmio_read(v: &mut impl Vmgexit, ghcb: &mut Ghcb, gpa: u64, width: Width) -> Result<u64, GhcbError> {
    let scratch = v.ghcb_gpa() + SHARED_BUFFER_OFFSET as u64;
    ghcb.begin(SVM_VMGEXIT_MMIO_READ, gpa, width as u64);
    ghcb.set(Field::SwScratch, scratch);
    ghcb.shared_buffer[..8].fill(0);
    v.exit(ghcb);
    ghcb.check_exit_info()?;
    let mut bytes = [0u8; 8];
    bytes[..width as usize].copy_from_slice(&ghcb.shared_buffer[..width as usize]);
    Ok(u64::from_le_bytes(bytes))
}

/// MMIO write through the shared buffer ("MMIO Access" exits).
pub fn mmio_write(v: &mut impl Vmgexit, ghcb: &mut Ghcb, gpa: u64, width: Width, value: u64) -> Result<(), GhcbError> {
    let scratch = v.ghcb_gpa() + SHARED_BUFFER_OFFSET as u64;
    ghcb.begin(SVM_VMGEXIT_MMIO_WRITE, gpa, width as u64);
    ghcb.set(Field::SwScratch, scratch);
    ghcb.shared_buffer[..width as usize].copy_from_slice(&value.to_le_bytes()[..width as usize]);
    v.exit(ghcb);
    ghcb.check_exit_info()
}

/// RDMSR (SW_EXITINFO1 = 0, MSR in RCX): the value in EDX:EAX, both must be valid.
pub fn rdmsr(v: &mut impl Vmgexit, ghcb: &mut Ghcb, msr: u32) -> Result<u64, GhcbError> {
    ghcb.begin(SVM_EXIT_MSR, 0, 0);
    ghcb.set(Field::Rcx, msr as u64);
    v.exit(ghcb);
    ghcb.check_exit_info()?;
    let low = ghcb.require(Field::Rax)? & 0xFFFF_FFFF;
    let high = ghcb.require(Field::Rdx)? & 0xFFFF_FFFF;
    Ok(high << 32 | low)
}

/// WRMSR (SW_EXITINFO1 = 1, MSR in RCX, value in EDX:EAX).
pub fn wrmsr(v: &mut impl Vmgexit, ghcb: &mut Ghcb, msr: u32, value: u64) -> Result<(), GhcbError> {
    ghcb.begin(SVM_EXIT_MSR, 1, 0);
    ghcb.set(Field::Rcx, msr as u64);
    ghcb.set(Field::Rax, value & 0xFFFF_FFFF);
    ghcb.set(Field::Rdx, value >> 32);
    v.exit(ghcb);
    ghcb.check_exit_info()
}

/// CPUID result registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuidResult {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// CPUID through the GHCB (leaf in RAX, sub-leaf in RCX, XCR0 for leaf 0Dh): all four
/// registers must come back valid. The answer is the hypervisor's; an SNP guest checks it
/// against the CPUID page before trusting security-relevant bits.
pub fn cpuid(v: &mut impl Vmgexit, ghcb: &mut Ghcb, leaf: u32, subleaf: u32, xcr0: u64) -> Result<CpuidResult, GhcbError> {
    ghcb.begin(SVM_EXIT_CPUID, 0, 0);
    ghcb.set(Field::Rax, leaf as u64);
    ghcb.set(Field::Rcx, subleaf as u64);
    if leaf == 0xD {
        ghcb.set(Field::Xcr0, xcr0);
    }
    v.exit(ghcb);
    ghcb.check_exit_info()?;
    Ok(CpuidResult {
        eax: ghcb.require(Field::Rax)? as u32,
        ebx: ghcb.require(Field::Rbx)? as u32,
        ecx: ghcb.require(Field::Rcx)? as u32,
        edx: ghcb.require(Field::Rdx)? as u32,
    })
}

/// SW_EXITINFO2 of an SNP guest request ("SNP Guest Request"): the VMM's error in bits 63:32, the
/// firmware's (SNP_GUEST_REQUEST status) in bits 31:0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestRequestStatus {
    pub vmm: u32,
    pub firmware: u32,
}

/// VMM error: the certificate buffer is too small (extended requests only).
pub const SNP_GUEST_VMM_ERR_INVALID_LEN: u32 = 1;
/// VMM error: the request was throttled; retry it unchanged later ("SNP Guest Request").
pub const SNP_GUEST_VMM_ERR_BUSY: u32 = 2;

/// One SNP guest request exit (SW_EXITINFO1 = request page GPA, SW_EXITINFO2 = response
/// page GPA). Returns the status pair; the caller decides about retries and the key.
pub fn guest_request(v: &mut impl Vmgexit, ghcb: &mut Ghcb, request_gpa: u64, response_gpa: u64) -> Result<GuestRequestStatus, GhcbError> {
    ghcb.begin(SVM_VMGEXIT_GUEST_REQUEST, request_gpa, response_gpa);
    v.exit(ghcb);
    ghcb.check_exit_info()?;
    let info_2 = ghcb.sw_exit_info_2;
    Ok(GuestRequestStatus { vmm: (info_2 >> 32) as u32, firmware: info_2 as u32 })
}

/// One SNP extended guest request exit ("SNP Extended Guest Request"): as [`guest_request`], plus RAX = GPA
/// of the shared certificate buffer and RBX = its size in pages. When the buffer is too
/// small the hypervisor answers VMM error INVALID_LEN without calling the PSP and puts
/// the pages it needs in RBX (which must then be valid); that is the second value.
pub fn extended_guest_request(
    v: &mut impl Vmgexit,
    ghcb: &mut Ghcb,
    request_gpa: u64,
    response_gpa: u64,
    certificates_gpa: u64,
    pages: u64,
) -> Result<(GuestRequestStatus, u64), GhcbError> {
    ghcb.begin(SVM_VMGEXIT_EXT_GUEST_REQUEST, request_gpa, response_gpa);
    ghcb.set(Field::Rax, certificates_gpa);
    ghcb.set(Field::Rbx, pages);
    v.exit(ghcb);
    ghcb.check_exit_info()?;
    let info_2 = ghcb.sw_exit_info_2;
    let status = GuestRequestStatus { vmm: (info_2 >> 32) as u32, firmware: info_2 as u32 };
    let needed = if status.vmm == SNP_GUEST_VMM_ERR_INVALID_LEN { ghcb.require(Field::Rbx)? } else { 0 };
    Ok((status, needed))
}

/// Header of the page-state-change buffer ("SNP Page State Change", header table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct PscHeader {
    pub cur_entry: u16,
    pub end_entry: u16,
    pub reserved: u32,
}

const _: () = assert!(size_of::<PscHeader>() == 8);

/// Entries that fit the shared buffer after the header: (0x7F0 - 8) / 8 = 253.
pub const PSC_MAX_ENTRIES: usize = (SHARED_BUFFER_SIZE - size_of::<PscHeader>()) / 8;

/// One page-state-change entry ("SNP Page State Change"): current page 11:0, GFN 51:12, operation 55:52,
/// page size 56 (1 = 2 MiB), 63:57 reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PscEntry(pub u64);

impl PscEntry {
    pub fn new(gpa: u64, operation: PageOperation, huge: bool) -> Result<Self, GhcbError> {
        let align = if huge { 0x20_0000 } else { 0x1000 };
        if !gpa.is_multiple_of(align) || gpa >> 52 != 0 {
            return Err(GhcbError::InvalidRequest);
        }
        Ok(Self(gpa | ((operation as u64) << 52) | ((huge as u64) << 56)))
    }
    pub const fn cur_page(self) -> u64 {
        self.0 & 0xFFF
    }
    pub const fn gfn(self) -> u64 {
        (self.0 >> 12) & ((1 << 40) - 1)
    }
}

/// How many rounds in a row the hypervisor may answer "interrupted, retry" without
/// processing anything before the guest gives up.
pub const PSC_MAX_STALLED_ROUNDS: u32 = 64;

/// Page-state change through the GHCB ("SNP Page State Change") for up to [`PSC_MAX_ENTRIES`] entries.
///
/// The hypervisor walks the entries and advances `cur_entry` (and an entry's `cur_page`
/// inside a 2 MiB page); the guest re-issues the exit until `cur_entry > end_entry`.
/// Every round's buffer is copied out and checked: no error in SW_EXITINFO2, the reserved
/// field zero, `end_entry` and every entry's GFN, operation and size unchanged, and no
/// step backwards. The caller still PVALIDATEs what became private: a hypervisor that
/// claims success without changing the RMP is caught there, not here.
pub fn page_state_change(v: &mut impl Vmgexit, ghcb: &mut Ghcb, entries: &[PscEntry]) -> Result<(), GhcbError> {
    if entries.is_empty() || entries.len() > PSC_MAX_ENTRIES {
        return Err(GhcbError::InvalidRequest);
    }
    let end_entry = (entries.len() - 1) as u16;
    let mut buffer = [0u8; SHARED_BUFFER_SIZE];
    let header = PscHeader { cur_entry: 0, end_entry, reserved: 0 };
    buffer[..8].copy_from_slice(header.as_bytes());
    for (i, entry) in entries.iter().enumerate() {
        buffer[8 + i * 8..16 + i * 8].copy_from_slice(&entry.0.to_le_bytes());
    }
    let mut progress = (0u16, 0u64);
    let mut stalled = 0;
    loop {
        ghcb.begin(SVM_VMGEXIT_PSC, 0, 0);
        ghcb.set(Field::SwScratch, v.ghcb_gpa() + SHARED_BUFFER_OFFSET as u64);
        ghcb.shared_buffer = buffer;
        v.exit(ghcb);
        ghcb.check_exit_info()?;
        if ghcb.sw_exit_info_2 != 0 {
            return Err(GhcbError::PageStateChange(ghcb.sw_exit_info_2));
        }
        // The private copy from now on: `ghcb` is already a copy of the shared page.
        let answer = ghcb.shared_buffer;
        let Ok((header, _)) = PscHeader::read_from_prefix(&answer) else { unreachable!("8 <= buffer size") };
        if header.reserved != 0 || header.end_entry != end_entry || header.cur_entry < progress.0 {
            return Err(GhcbError::PageStateChangeTampered);
        }
        for (i, entry) in entries.iter().enumerate() {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&answer[8 + i * 8..16 + i * 8]);
            let returned = u64::from_le_bytes(raw);
            if returned & !0xFFF != entry.0 & !0xFFF {
                return Err(GhcbError::PageStateChangeTampered);
            }
        }
        if header.cur_entry > end_entry {
            return Ok(());
        }
        let mut raw = [0u8; 8];
        let at = 8 + header.cur_entry as usize * 8;
        raw.copy_from_slice(&answer[at..at + 8]);
        let position = (header.cur_entry, PscEntry(u64::from_le_bytes(raw)).cur_page());
        if position == progress {
            stalled += 1;
            if stalled > PSC_MAX_STALLED_ROUNDS {
                return Err(GhcbError::PageStateChangeStalled);
            }
        } else if position.0 == progress.0 && position.1 < progress.1 {
            return Err(GhcbError::PageStateChangeTampered);
        } else {
            stalled = 0;
        }
        progress = position;
        buffer = answer;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snp::sim::{Hostile, SimSnp, GHCB_GPA};

    fn setup() -> (SimSnp, Box<Ghcb>) {
        (SimSnp::new(), Ghcb::new_boxed())
    }

    #[test]
    fn port_io_round_trips_and_masks_to_width() {
        let (mut sim, mut ghcb) = setup();
        io_out(&mut sim, &mut ghcb, 0x3F8, Width::Byte, 0x1_41).unwrap();
        assert_eq!(sim.ports[&0x3F8], 0x41, "OUT sends only the access width");
        sim.ports.insert(0xCFC, 0xDEAD_BEEF);
        assert_eq!(io_in(&mut sim, &mut ghcb, 0xCFC, Width::Dword).unwrap(), 0xDEAD_BEEF);
        assert_eq!(io_in(&mut sim, &mut ghcb, 0xCFC, Width::Word).unwrap(), 0xBEEF);
        assert_eq!(io_in(&mut sim, &mut ghcb, 0xCFC, Width::Qword), Err(GhcbError::InvalidRequest));
        // IOIO info for `in eax, dx` on port CFCh: port, SZ32, A64, IN.
        assert_eq!(ioio_info(0xCFC, Width::Dword, true).unwrap(), 0x0CFC_0000 | 1 << 9 | 1 << 6 | 1);
    }

    #[test]
    fn mmio_goes_through_the_shared_buffer() {
        let (mut sim, mut ghcb) = setup();
        mmio_write(&mut sim, &mut ghcb, 0xFEB0_0000, Width::Dword, 0xAABB_CCDD_1122_3344).unwrap();
        assert_eq!(sim.mmio[&0xFEB0_0000], 0x1122_3344);
        assert_eq!(mmio_read(&mut sim, &mut ghcb, 0xFEB0_0000, Width::Word).unwrap(), 0x3344);
        assert_eq!(mmio_read(&mut sim, &mut ghcb, 0xFEB0_1000, Width::Qword).unwrap(), 0x1122_3344_5566_7788);
        assert_eq!(ghcb.sw_scratch, GHCB_GPA + 0x800);
    }

    #[test]
    fn msr_and_cpuid() {
        let (mut sim, mut ghcb) = setup();
        wrmsr(&mut sim, &mut ghcb, 0x4B56_4D00, 0x1234_5678_9ABC_DEF0).unwrap();
        assert_eq!(rdmsr(&mut sim, &mut ghcb, 0x4B56_4D00).unwrap(), 0x1234_5678_9ABC_DEF0);
        // An MSR the hypervisor refuses: it asks for #GP (vector 13); the guest gets it as an error.
        match rdmsr(&mut sim, &mut ghcb, 0x1234) {
            Err(GhcbError::Exception(event)) => assert!(event.is_valid() && event.vector() == 13),
            other => panic!("{other:?}"),
        }
        let r = cpuid(&mut sim, &mut ghcb, 0xD, 1, 0b111).unwrap();
        assert_eq!(r, CpuidResult { eax: 0xE, ebx: 0xB, ecx: 0xD, edx: 0xD });
    }

    #[test]
    fn answers_without_valid_outputs_are_refused() {
        let (mut sim, mut ghcb) = setup();
        sim.hostile = Hostile::NoValidBits;
        assert_eq!(io_in(&mut sim, &mut ghcb, 0x60, Width::Byte), Err(GhcbError::MissingOutput(Field::Rax)));
        sim.msrs.insert(0x10, 5);
        assert_eq!(rdmsr(&mut sim, &mut ghcb, 0x10), Err(GhcbError::MissingOutput(Field::Rax)));
        assert!(matches!(cpuid(&mut sim, &mut ghcb, 0, 0, 1), Err(GhcbError::MissingOutput(_))));
    }

    #[test]
    fn exit_info_errors_are_decoded() {
        let (mut sim, mut ghcb) = setup();
        sim.hostile = Hostile::ExitInfo(2, 5);
        assert_eq!(io_out(&mut sim, &mut ghcb, 0x80, Width::Byte, 0), Err(GhcbError::MalformedInput(5)));
        sim.hostile = Hostile::ExitInfo(7, 0);
        assert_eq!(io_out(&mut sim, &mut ghcb, 0x80, Width::Byte, 0), Err(GhcbError::UnknownResponse(7)));
        // Only bits 31:0 carry the code (§4.1 "Invoking VMGEXIT").
        sim.hostile = Hostile::ExitInfo(0xFFFF_FFFF_0000_0000, 0);
        assert_eq!(io_out(&mut sim, &mut ghcb, 0x80, Width::Byte, 0), Ok(()));
    }

    #[test]
    fn requests_clear_stale_state() {
        let (mut sim, mut ghcb) = setup();
        sim.msrs.insert(0x10, 5);
        rdmsr(&mut sim, &mut ghcb, 0x10).unwrap();
        // The next request must not carry the old RAX/RDX or their valid bits.
        ghcb.begin(SVM_EXIT_IOIO, 0, 0);
        assert!(!ghcb.is_valid(Field::Rax) && !ghcb.is_valid(Field::Rdx) && ghcb.rax == 0);
        assert!(ghcb.is_valid(Field::SwExitCode) && ghcb.protocol_version == 2 && ghcb.ghcb_usage == 0);
    }

    #[test]
    fn page_state_change_in_rounds() {
        let (mut sim, mut ghcb) = setup();
        let entries: Vec<_> = (0..10).map(|i| PscEntry::new(0x4000_0000 + i * 0x20_0000, PageOperation::Shared, true).unwrap()).collect();
        sim.psc_per_exit = 3;
        page_state_change(&mut sim, &mut ghcb, &entries).unwrap();
        assert_eq!(sim.psc.len(), 10);
        assert_eq!(sim.psc[9], ((0x4000_0000 + 9 * 0x20_0000) >> 12, 2, true));
        assert_eq!(sim.exits.len(), 4, "10 entries at 3 per exit");
        assert!(PscEntry::new(0x1000, PageOperation::Private, true).is_err(), "2 MiB entries need 2 MiB alignment");
        assert_eq!(page_state_change(&mut sim, &mut ghcb, &[]), Err(GhcbError::InvalidRequest));
        let too_many = vec![entries[0]; PSC_MAX_ENTRIES + 1];
        assert_eq!(page_state_change(&mut sim, &mut ghcb, &too_many), Err(GhcbError::InvalidRequest));
        assert_eq!(PSC_MAX_ENTRIES, 253);
    }

    #[test]
    fn hostile_page_state_changes_are_caught() {
        let entry = [PscEntry::new(0x20_0000, PageOperation::Private, false).unwrap(), PscEntry::new(0x20_1000, PageOperation::Private, false).unwrap()];
        let (mut sim, mut ghcb) = setup();
        sim.hostile = Hostile::PscStall;
        assert_eq!(page_state_change(&mut sim, &mut ghcb, &entry), Err(GhcbError::PageStateChangeStalled));
        assert_eq!(sim.exits.len() as u32, PSC_MAX_STALLED_ROUNDS + 1, "bounded, not a livelock");
        let (mut sim, mut ghcb) = setup();
        sim.hostile = Hostile::PscRewrite;
        sim.psc_per_exit = 1;
        assert_eq!(page_state_change(&mut sim, &mut ghcb, &entry), Err(GhcbError::PageStateChangeTampered));
        let (mut sim, mut ghcb) = setup();
        sim.hostile = Hostile::ExitInfo(0, 2);
        assert_eq!(page_state_change(&mut sim, &mut ghcb, &entry), Err(GhcbError::PageStateChange(2)));
    }
}

#[cfg(test)]
mod mutation_tests {
    use super::*;
    use crate::mutation::Mutator;
    use crate::snp::sim::SimSnp;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A hypervisor that rewrites the page-state-change buffer with mutated bytes after
    /// every round: the guest finishes, or stops with an error, in a bounded number of exits.
    #[test]
    fn mutated_psc_answers_terminate() {
        let entries: Vec<_> = (0..8).map(|i| PscEntry::new(0x100_0000 + i * 0x1000, PageOperation::Shared, false).unwrap()).collect();
        let mutator = Rc::new(RefCell::new(Mutator::new(0x95c)));
        for _ in 0..2_000 {
            let mut sim = SimSnp::new();
            sim.psc_per_exit = 2;
            let m = mutator.clone();
            sim.psc_tamper = Some(Box::new(move |buffer: &mut [u8]| {
                let mut bytes = m.borrow_mut().mutate(&buffer[..80]);
                bytes.resize(80, 0);
                buffer[..80].copy_from_slice(&bytes);
            }));
            let mut ghcb = Ghcb::new_boxed();
            let _ = page_state_change(&mut sim, &mut ghcb, &entries);
            assert!(sim.exits.len() <= 8 * (PSC_MAX_STALLED_ROUNDS as usize + 1) + 8);
        }
    }
}
