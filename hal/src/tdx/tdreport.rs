//! TDREPORT_STRUCT: the TD's locally MAC'ed report from TDG.MR.REPORT (Intel TDX Module v1.5
//! ABI Specification, "REPORTMACSTRUCT", "TDINFO_STRUCT" and "TDREPORT_STRUCT" tables).
//!
//! The TDX module writes it into private memory, so it is not host-controlled; the checked
//! constructor still validates the type and that it binds the caller's report data, so a
//! report that does not is never handed on.

use core::fmt;
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// REPORTTYPE.TYPE of a TDX report (ABI "REPORTTYPE": 0x81 = TDX).
pub const REPORT_TYPE_TDX: u8 = 0x81;

/// REPORTMACSTRUCT (256 bytes).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ReportMacStruct {
    /// TYPE, SUBTYPE, VERSION, reserved.
    pub report_type: [u8; 4],
    pub reserved_04: [u8; 12],
    pub cpusvn: [u8; 16],
    pub tee_tcb_info_hash: [u8; 48],
    pub tee_info_hash: [u8; 48],
    pub report_data: [u8; 64],
    pub reserved_c0: [u8; 32],
    pub mac: [u8; 32],
}

/// TDINFO_STRUCT (512 bytes).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct TdInfoStruct {
    pub attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mrtd: [u8; 48],
    pub mrconfigid: [u8; 48],
    pub mrowner: [u8; 48],
    pub mrownerconfig: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub servtd_hash: [u8; 48],
    pub reserved: [u8; 64],
}

/// TDREPORT_STRUCT (1024 bytes).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct TdReport {
    pub report_mac: ReportMacStruct,
    pub tee_tcb_info: [u8; 239],
    pub reserved: [u8; 17],
    pub td_info: TdInfoStruct,
}

const _: () = {
    assert!(size_of::<ReportMacStruct>() == 256);
    assert!(offset_of!(ReportMacStruct, report_data) == 0x80);
    assert!(offset_of!(ReportMacStruct, mac) == 0xE0);
    assert!(size_of::<TdInfoStruct>() == 512);
    assert!(offset_of!(TdInfoStruct, mrtd) == 0x10);
    assert!(offset_of!(TdInfoStruct, rtmr) == 0xD0);
    assert!(size_of::<TdReport>() == 1024);
    assert!(offset_of!(TdReport, tee_tcb_info) == 0x100);
    assert!(offset_of!(TdReport, td_info) == 0x200);
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdReportError {
    WrongSize,
    /// REPORTTYPE.TYPE is not TDX, or SUBTYPE is not 0.
    WrongType,
    /// REPORTDATA is not what was asked for.
    ReportDataMismatch,
}

impl fmt::Display for TdReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WrongSize => "TDREPORT must be 1024 bytes",
            Self::WrongType => "not a TDX report (REPORTTYPE)",
            Self::ReportDataMismatch => "TDREPORT does not bind the requested report data",
        })
    }
}

impl core::error::Error for TdReportError {}

impl TdReport {
    /// Checked view: 1024 bytes, TDX type, sub-type 0, and the expected REPORTDATA.
    pub fn parse<'a>(bytes: &'a [u8], report_data: &[u8; 64]) -> Result<&'a TdReport, TdReportError> {
        let report = TdReport::ref_from_bytes(bytes).map_err(|_| TdReportError::WrongSize)?;
        if report.report_mac.report_type[0] != REPORT_TYPE_TDX || report.report_mac.report_type[1] != 0 {
            return Err(TdReportError::WrongType);
        }
        if &report.report_mac.report_data != report_data {
            return Err(TdReportError::ReportDataMismatch);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_type_and_report_data() {
        let mut bytes = [0u8; 1024];
        bytes[0] = 0x81;
        bytes[0x80..0xC0].copy_from_slice(&[7; 64]);
        bytes[0x210..0x240].copy_from_slice(&[9; 48]);
        let report = TdReport::parse(&bytes, &[7; 64]).unwrap();
        assert_eq!(report.td_info.mrtd, [9; 48]);
        assert_eq!(TdReport::parse(&bytes, &[8; 64]).err(), Some(TdReportError::ReportDataMismatch));
        assert_eq!(TdReport::parse(&bytes[..1023], &[7; 64]).err(), Some(TdReportError::WrongSize));
        bytes[1] = 1;
        assert_eq!(TdReport::parse(&bytes, &[7; 64]).err(), Some(TdReportError::WrongType));
        bytes[1] = 0;
        bytes[0] = 0;
        assert_eq!(TdReport::parse(&bytes, &[7; 64]).err(), Some(TdReportError::WrongType));
    }
}

#[cfg(test)]
mod mutation_tests {
    use super::*;
    use crate::mutation::Mutator;

    #[test]
    fn mutated_reports_never_panic() {
        let mut valid = [0u8; 1024];
        valid[0] = 0x81;
        valid[0x80..0xC0].fill(7);
        let mut m = Mutator::new(0x7d4e);
        for _ in 0..20_000 {
            let input = m.mutate(&valid);
            if let Ok(report) = TdReport::parse(&input, &[7; 64]) {
                assert_eq!(report.report_mac.report_data, [7; 64]);
            }
        }
    }
}
