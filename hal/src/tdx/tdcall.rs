//! TDCALL leaves, their register conventions and completion status (Intel TDX Module v1.5
//! ABI Specification: the guest-side TDCALL interface function chapter, one section per
//! leaf, and "Function Completion Status Codes").

use super::{Registers, TdCall, TdxPages};
use core::fmt;

/// TDCALL leaf numbers (RAX), ABI spec "TDCALL Interface Functions" (leaf table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Leaf {
    TdgVpVmcall = 0,
    TdgVpInfo = 1,
    TdgMrRtmrExtend = 2,
    TdgVpVeinfoGet = 3,
    TdgMrReport = 4,
    TdgVpCpuidveSet = 5,
    TdgMemPageAccept = 6,
}

/// Known completion status codes (bits 63:32 of RAX; bits 31:0 carry details such as the
/// operand ID). ABI spec "Function Completion Status Codes": bit 63 = error, bit 62 = non-recoverable; a status with
/// bit 63 clear and a non-zero class is a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum TdxStatus {
    TdxSuccess = 0x0000_0000_0000_0000,
    TdxNonRecoverableVcpu = 0x4000_0001_0000_0000,
    TdxNonRecoverableTd = 0x6000_0002_0000_0000,
    TdxOperandInvalid = 0xC000_0100_0000_0000,
    TdxOperandAddrRangeError = 0xC000_0101_0000_0000,
    TdxOperandBusy = 0x8000_0200_0000_0000,
    TdxPageAlreadyAccepted = 0x0000_0B0A_0000_0000,
    TdxPageSizeMismatch = 0xC000_0B0B_0000_0000,
    TdxEptWalkFailed = 0xC000_0B00_0000_0000,
    TdxEptEntryStateIncorrect = 0xC000_0B0D_0000_0000,
    TdxNoValidVeInfo = 0xC000_0704_0000_0000,
}

const STATUS_MASK: u64 = 0xFFFF_FFFF_0000_0000;

impl TdxStatus {
    const ALL: [TdxStatus; 11] = [
        TdxStatus::TdxSuccess,
        TdxStatus::TdxNonRecoverableVcpu,
        TdxStatus::TdxNonRecoverableTd,
        TdxStatus::TdxOperandInvalid,
        TdxStatus::TdxOperandAddrRangeError,
        TdxStatus::TdxOperandBusy,
        TdxStatus::TdxPageAlreadyAccepted,
        TdxStatus::TdxPageSizeMismatch,
        TdxStatus::TdxEptWalkFailed,
        TdxStatus::TdxEptEntryStateIncorrect,
        TdxStatus::TdxNoValidVeInfo,
    ];

    /// Decodes RAX after TDCALL: the known status and the details (bits 31:0), or the raw
    /// value when the status is not one of the above.
    pub fn decode(rax: u64) -> Result<(TdxStatus, u32), u64> {
        Self::ALL.iter().find(|s| **s as u64 == rax & STATUS_MASK).map(|s| (*s, rax as u32)).ok_or(rax)
    }
}

/// Why a TDCALL failed or its answer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdCallError {
    /// The TDX module returned this status (details in bits 31:0).
    Status(TdxStatus, u32),
    /// A status code this code does not know (raw RAX).
    UnknownStatus(u64),
    /// An argument is out of range (alignment, index, size).
    InvalidArgument,
    /// An output register holds a value the specification rules out.
    BadOutput,
}

impl fmt::Display for TdCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status, details) => write!(f, "TDCALL failed: {status:?} ({details:#x})"),
            Self::UnknownStatus(raw) => write!(f, "TDCALL failed with unknown status {raw:#x}"),
            Self::InvalidArgument => f.write_str("invalid TDCALL argument"),
            Self::BadOutput => f.write_str("TDCALL output out of range"),
        }
    }
}

impl core::error::Error for TdCallError {}

/// Runs one leaf and turns a non-success status into an error.
pub fn call(t: &mut impl TdCall, leaf: Leaf, mut input: Registers) -> Result<Registers, TdCallError> {
    input.rax = leaf as u64;
    let output = t.tdcall(&input);
    match TdxStatus::decode(output.rax) {
        Ok((TdxStatus::TdxSuccess, _)) => Ok(output),
        Ok((status, details)) => Err(TdCallError::Status(status, details)),
        Err(raw) => Err(TdCallError::UnknownStatus(raw)),
    }
}

/// TD attributes (ABI spec "ATTRIBUTES" definition): bit 0 DEBUG, bit 28 SEPT_VE_DISABLE.
pub const ATTR_DEBUG: u64 = 1 << 0;
pub const ATTR_SEPT_VE_DISABLE: u64 = 1 << 28;

/// TDG.VP.INFO outputs (ABI spec, TDG.VP.INFO leaf): `RCX[5:0]` GPAW, RDX ATTRIBUTES,
/// R8 NUM_VCPUS (31:0) / MAX_VCPUS (63:32), `R9[31:0]` VCPU_INDEX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdInfo {
    /// Guest-physical address width: 48 or 52.
    pub gpaw: u8,
    pub attributes: u64,
    pub num_vcpus: u32,
    pub max_vcpus: u32,
    pub vcpu_index: u32,
}

impl TdInfo {
    /// The shared bit: bit GPAW-1 of a guest-physical address (ABI spec "GPA.SHARED").
    pub const fn shared_bit(&self) -> u64 {
        1 << (self.gpaw - 1)
    }
    /// DEBUG: the host can read and change the TD's state; no secret belongs in such a TD.
    pub const fn debug(&self) -> bool {
        self.attributes & ATTR_DEBUG != 0
    }
    /// SEPT_VE_DISABLE: an access to unaccepted private memory ends the TD instead of
    /// raising a #VE the kernel could not handle safely; Halcyon expects it set.
    pub const fn sept_ve_disabled(&self) -> bool {
        self.attributes & ATTR_SEPT_VE_DISABLE != 0
    }
}

/// TDG.VP.INFO, with its outputs checked (GPAW must be 48 or 52; the vCPU counts consistent).
pub fn vp_info(t: &mut impl TdCall) -> Result<TdInfo, TdCallError> {
    let out = call(t, Leaf::TdgVpInfo, Registers::default())?;
    let gpaw = (out.rcx & 0x3F) as u8;
    let info = TdInfo {
        gpaw,
        attributes: out.rdx,
        num_vcpus: out.r8 as u32,
        max_vcpus: (out.r8 >> 32) as u32,
        vcpu_index: out.r9 as u32,
    };
    if !matches!(gpaw, 48 | 52) || info.num_vcpus == 0 || info.num_vcpus > info.max_vcpus || info.vcpu_index >= info.num_vcpus {
        return Err(TdCallError::BadOutput);
    }
    Ok(info)
}

/// Page sizes of TDG.MEM.PAGE.ACCEPT (RCX bits 2:0: 0 = 4 KiB, 1 = 2 MiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum PageLevel {
    Size4K = 0,
    Size2M = 1,
}

impl PageLevel {
    pub const fn bytes(self) -> u64 {
        match self {
            PageLevel::Size4K => 0x1000,
            PageLevel::Size2M => 0x20_0000,
        }
    }
}

/// TDG.MEM.PAGE.ACCEPT of one page: RCX = GPA (aligned to the level) | level. Returns the
/// raw status so [`super::accept`] can act on size mismatch, busy and already-accepted.
pub fn page_accept(t: &mut impl TdCall, gpa: u64, level: PageLevel) -> Result<Result<(TdxStatus, u32), u64>, TdCallError> {
    if !gpa.is_multiple_of(level.bytes()) || gpa >> 52 != 0 {
        return Err(TdCallError::InvalidArgument);
    }
    let input = Registers { rax: Leaf::TdgMemPageAccept as u64, rcx: gpa | level as u64, ..Registers::default() };
    Ok(TdxStatus::decode(t.tdcall(&input).rax))
}

/// Where TDCALL memory operands live in the scratch page: TDREPORT_STRUCT (1024 bytes,
/// 1024-aligned), REPORTDATA (64 bytes, 64-aligned), RTMR extend data (48 bytes, 64-aligned).
pub const SCRATCH_TDREPORT: usize = 0;
pub const SCRATCH_REPORTDATA: usize = 0x400;
pub const SCRATCH_EXTEND: usize = 0x440;

/// TDG.MR.REPORT (sub-type 0): RCX = TDREPORT_STRUCT GPA, RDX = REPORTDATA GPA, R8 = 0.
pub fn mr_report(t: &mut (impl TdCall + TdxPages), report_data: &[u8; 64]) -> Result<[u8; 1024], TdCallError> {
    let base = t.scratch_gpa();
    t.write_scratch(SCRATCH_REPORTDATA, report_data);
    let input = Registers { rcx: base + SCRATCH_TDREPORT as u64, rdx: base + SCRATCH_REPORTDATA as u64, r8: 0, ..Registers::default() };
    call(t, Leaf::TdgMrReport, input)?;
    let mut report = [0u8; 1024];
    t.read_scratch(SCRATCH_TDREPORT, &mut report);
    Ok(report)
}

/// Number of RTMRs (ABI spec: RTMR[0..3]).
pub const RTMR_COUNT: u32 = 4;

/// TDG.MR.RTMR.EXTEND: RCX = GPA of the 48-byte SHA-384 value, RDX = RTMR index.
pub fn rtmr_extend(t: &mut (impl TdCall + TdxPages), index: u32, digest: &[u8; 48]) -> Result<(), TdCallError> {
    if index >= RTMR_COUNT {
        return Err(TdCallError::InvalidArgument);
    }
    let base = t.scratch_gpa();
    t.write_scratch(SCRATCH_EXTEND, digest);
    call(t, Leaf::TdgMrRtmrExtend, Registers { rcx: base + SCRATCH_EXTEND as u64, rdx: index as u64, ..Registers::default() })?;
    Ok(())
}

/// TDG.VP.VEINFO.GET outputs (ABI spec): `RCX[31:0]` exit reason, RDX exit qualification,
/// R8 guest linear address, R9 guest-physical address, `R10[31:0]` instruction length,
/// `R10[63:32]` instruction information.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VeInfo {
    pub exit_reason: u32,
    pub exit_qualification: u64,
    pub gla: u64,
    pub gpa: u64,
    pub instruction_length: u32,
    pub instruction_info: u32,
}

pub fn veinfo_get(t: &mut impl TdCall) -> Result<VeInfo, TdCallError> {
    let out = call(t, Leaf::TdgVpVeinfoGet, Registers::default())?;
    Ok(VeInfo {
        exit_reason: out.rcx as u32,
        exit_qualification: out.rdx,
        gla: out.r8,
        gpa: out.r9,
        instruction_length: out.r10 as u32,
        instruction_info: (out.r10 >> 32) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tdx::sim::SimTdx;

    #[test]
    fn status_decoding_keeps_details_and_unknowns() {
        assert_eq!(TdxStatus::decode(0), Ok((TdxStatus::TdxSuccess, 0)));
        assert_eq!(TdxStatus::decode(0xC000_0100_0000_0002), Ok((TdxStatus::TdxOperandInvalid, 2)));
        assert_eq!(TdxStatus::decode(0x0000_0B0A_0000_0000), Ok((TdxStatus::TdxPageAlreadyAccepted, 0)));
        assert_eq!(TdxStatus::decode(0xC000_0B0B_0000_0000), Ok((TdxStatus::TdxPageSizeMismatch, 0)));
        assert_eq!(TdxStatus::decode(0xDEAD_0000_0000_0000), Err(0xDEAD_0000_0000_0000));
        assert_eq!(Leaf::TdgMemPageAccept as u64, 6);
    }

    #[test]
    fn vp_info_is_checked() {
        let mut sim = SimTdx::new();
        let info = vp_info(&mut sim).unwrap();
        assert_eq!((info.gpaw, info.shared_bit()), (52, 1 << 51));
        assert!(!info.debug() && info.sept_ve_disabled());
        sim.gpaw = 47;
        assert_eq!(vp_info(&mut sim), Err(TdCallError::BadOutput));
        sim.gpaw = 48;
        assert_eq!(vp_info(&mut sim).unwrap().shared_bit(), 1 << 47);
        sim.vcpus = (2, 1);
        assert_eq!(vp_info(&mut sim), Err(TdCallError::BadOutput));
    }

    #[test]
    fn report_and_rtmr_extend_use_the_scratch_page() {
        let mut sim = SimTdx::new();
        let report = mr_report(&mut sim, &[0x42; 64]).unwrap();
        assert_eq!(&report[0x80..0xC0], &[0x42; 64]);
        assert_eq!(report[0], 0x81);
        rtmr_extend(&mut sim, 2, &[1; 48]).unwrap();
        assert_ne!(sim.rtmr[2], [0; 48]);
        assert_eq!(rtmr_extend(&mut sim, 4, &[1; 48]), Err(TdCallError::InvalidArgument));
        sim.fail_leaf = Some((Leaf::TdgMrReport as u64, 0xC000_0100_0000_0002));
        assert_eq!(mr_report(&mut sim, &[0; 64]), Err(TdCallError::Status(TdxStatus::TdxOperandInvalid, 2)));
    }
}
