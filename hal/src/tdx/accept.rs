//! Accepting private memory: TDG.MEM.PAGE.ACCEPT over a physical range, 2 MiB at a time
//! where the range is 2 MiB aligned, 4 KiB otherwise (Intel TDX Module v1.5 ABI, leaf
//! TDG.MEM.PAGE.ACCEPT, and its completion status codes).
//!
//! - TDX_PAGE_SIZE_MISMATCH on a 2 MiB accept means the host mapped that block with
//!   4 KiB pages: the block is accepted 4 KiB at a time instead.
//! - TDX_OPERAND_BUSY: another vCPU holds the Secure-EPT entry; retried a bounded number
//!   of times.
//! - TDX_PAGE_ALREADY_ACCEPTED is a warning status (bit 63 clear: the ABI classes it as a
//!   successful completion that did nothing): the page is accepted, but this call did not
//!   zero it. It counts as success only when the caller allows it (memory it does not
//!   expect to be zero); otherwise it is an error, since the caller's map said the page
//!   was never accepted. Every other status fails the range.

use super::tdcall::{self, PageLevel, TdCallError, TdxStatus};
use super::TdCall;
use core::fmt;

pub const SIZE_4K: u64 = 0x1000;
pub const SIZE_2M: u64 = 0x20_0000;
/// TDX_OPERAND_BUSY retries per page.
pub const ACCEPT_MAX_BUSY_RETRIES: u32 = 16;

/// What an accept pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AcceptStats {
    pub accepted_2m: u64,
    pub accepted_4k: u64,
    /// Pages (either size) the module reported as already accepted.
    pub already_accepted: u64,
    /// 2 MiB blocks that had to be done 4 KiB at a time.
    pub size_fallbacks: u64,
    /// TDX_OPERAND_BUSY answers that were retried.
    pub busy_retries: u64,
}

impl AcceptStats {
    /// Bytes now accepted by this pass (without the already-accepted pages).
    pub fn bytes(&self) -> u64 {
        self.accepted_2m * SIZE_2M + self.accepted_4k * SIZE_4K
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptError {
    /// Start or end not 4 KiB aligned, end before start, or beyond 52 bits.
    InvalidRange,
    /// The module failed this page.
    Failed { gpa: u64, status: TdxStatus, details: u32 },
    /// A status this code does not know.
    UnknownStatus { gpa: u64, raw: u64 },
    /// The page was already accepted and the caller did not allow that.
    AlreadyAccepted { gpa: u64 },
    /// TDX_OPERAND_BUSY more than [`ACCEPT_MAX_BUSY_RETRIES`] times.
    Busy { gpa: u64 },
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRange => f.write_str("invalid range to accept"),
            Self::Failed { gpa, status, details } => write!(f, "accepting {gpa:#x} failed: {status:?} ({details:#x})"),
            Self::UnknownStatus { gpa, raw } => write!(f, "accepting {gpa:#x}: unknown status {raw:#x}"),
            Self::AlreadyAccepted { gpa } => write!(f, "{gpa:#x} was already accepted"),
            Self::Busy { gpa } => write!(f, "accepting {gpa:#x}: busy for too long"),
        }
    }
}

impl core::error::Error for AcceptError {}

enum Outcome {
    Accepted,
    AlreadyAccepted,
    SizeMismatch,
}

fn accept_one(t: &mut impl TdCall, gpa: u64, level: PageLevel, stats: &mut AcceptStats) -> Result<Outcome, AcceptError> {
    let mut busy = 0;
    loop {
        let status = tdcall::page_accept(t, gpa, level).map_err(|_: TdCallError| AcceptError::InvalidRange)?;
        return match status {
            Ok((TdxStatus::TdxSuccess, _)) => Ok(Outcome::Accepted),
            Ok((TdxStatus::TdxPageAlreadyAccepted, _)) => Ok(Outcome::AlreadyAccepted),
            Ok((TdxStatus::TdxPageSizeMismatch, _)) if level == PageLevel::Size2M => Ok(Outcome::SizeMismatch),
            Ok((TdxStatus::TdxOperandBusy, _)) if busy < ACCEPT_MAX_BUSY_RETRIES => {
                busy += 1;
                stats.busy_retries += 1;
                continue;
            }
            Ok((TdxStatus::TdxOperandBusy, _)) => Err(AcceptError::Busy { gpa }),
            Ok((status, details)) => Err(AcceptError::Failed { gpa, status, details }),
            Err(raw) => Err(AcceptError::UnknownStatus { gpa, raw }),
        };
    }
}

fn count(outcome: Outcome, gpa: u64, level: PageLevel, already_accepted_ok: bool, stats: &mut AcceptStats) -> Result<(), AcceptError> {
    match (outcome, level) {
        (Outcome::Accepted, PageLevel::Size2M) => stats.accepted_2m += 1,
        (Outcome::Accepted, PageLevel::Size4K) => stats.accepted_4k += 1,
        (Outcome::AlreadyAccepted, _) if already_accepted_ok => stats.already_accepted += 1,
        (Outcome::AlreadyAccepted, _) => return Err(AcceptError::AlreadyAccepted { gpa }),
        (Outcome::SizeMismatch, _) => unreachable!("handled by the caller"),
    }
    Ok(())
}

/// Accepts `[start, end)`. `already_accepted_ok`: whether a page the module reports as
/// already accepted counts as done (see the module documentation).
pub fn accept_range(t: &mut impl TdCall, start: u64, end: u64, already_accepted_ok: bool) -> Result<AcceptStats, AcceptError> {
    if start % SIZE_4K != 0 || end % SIZE_4K != 0 || end < start || end >> 52 != 0 {
        return Err(AcceptError::InvalidRange);
    }
    let mut stats = AcceptStats::default();
    let mut gpa = start;
    while gpa < end {
        if gpa % SIZE_2M == 0 && end - gpa >= SIZE_2M {
            match accept_one(t, gpa, PageLevel::Size2M, &mut stats)? {
                Outcome::SizeMismatch => {
                    stats.size_fallbacks += 1;
                    for page in (gpa..gpa + SIZE_2M).step_by(SIZE_4K as usize) {
                        let outcome = accept_one(t, page, PageLevel::Size4K, &mut stats)?;
                        count(outcome, page, PageLevel::Size4K, already_accepted_ok, &mut stats)?;
                    }
                }
                outcome => count(outcome, gpa, PageLevel::Size2M, already_accepted_ok, &mut stats)?,
            }
            gpa += SIZE_2M;
        } else {
            let outcome = accept_one(t, gpa, PageLevel::Size4K, &mut stats)?;
            count(outcome, gpa, PageLevel::Size4K, already_accepted_ok, &mut stats)?;
            gpa += SIZE_4K;
        }
    }
    Ok(stats)
}
