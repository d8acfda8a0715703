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
use super::vmcall::{self, VmCallError};
use super::TdCall;
use crate::ranges::RangeSet;
use core::fmt;
use core::ops::Range;

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
    /// [`AcceptTracker`]: more disjoint ranges than it has room for.
    TooManyRanges,
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRange => f.write_str("invalid range to accept"),
            Self::Failed { gpa, status, details } => write!(f, "accepting {gpa:#x} failed: {status:?} ({details:#x})"),
            Self::UnknownStatus { gpa, raw } => write!(f, "accepting {gpa:#x}: unknown status {raw:#x}"),
            Self::AlreadyAccepted { gpa } => write!(f, "{gpa:#x} was already accepted"),
            Self::Busy { gpa } => write!(f, "accepting {gpa:#x}: busy for too long"),
            Self::TooManyRanges => f.write_str("too many disjoint accepted ranges to track"),
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
    if !start.is_multiple_of(SIZE_4K) || !end.is_multiple_of(SIZE_4K) || end < start || end >> 52 != 0 {
        return Err(AcceptError::InvalidRange);
    }
    let mut stats = AcceptStats::default();
    let mut gpa = start;
    while gpa < end {
        if gpa.is_multiple_of(SIZE_2M) && end - gpa >= SIZE_2M {
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

/// What is known to be accepted: the memory the launch accepted (the TDVF sections QEMU
/// adds with TDH.MEM.PAGE.ADD: TempMem, TD HOB; TDVF design guide, "TDVF Metadata") and
/// what [`AcceptTracker::accept`] accepted since. The kernel asks it to make RAM usable
/// without ever accepting a page twice: the TDX module answers a second accept with
/// TDX_PAGE_ALREADY_ACCEPTED, and a page the kernel's map says is new but the module says
/// is accepted means the host played with the map, so [`accept_range`] runs strict here.
#[derive(Clone, Debug)]
pub struct AcceptTracker<const N: usize> {
    accepted: RangeSet<N>,
}

impl<const N: usize> AcceptTracker<N> {
    /// `at_launch`: the ranges the launch accepted (4 KiB aligned outward by the caller).
    pub fn new(at_launch: &[Range<u64>]) -> Result<Self, AcceptError> {
        let mut accepted = RangeSet::new();
        for r in at_launch {
            accepted.insert(r.clone()).map_err(|_| AcceptError::TooManyRanges)?;
        }
        Ok(Self { accepted })
    }

    /// Accepts the parts of `range` (4 KiB aligned) that are not accepted yet, 2 MiB at a
    /// time where aligned, and remembers them.
    pub fn accept(&mut self, t: &mut impl TdCall, range: Range<u64>) -> Result<AcceptStats, AcceptError> {
        if !range.start.is_multiple_of(SIZE_4K) || !range.end.is_multiple_of(SIZE_4K) || range.end < range.start {
            return Err(AcceptError::InvalidRange);
        }
        let mut todo: RangeSet<N> = RangeSet::new();
        todo.insert(range).map_err(|_| AcceptError::TooManyRanges)?;
        for done in self.accepted.as_slice() {
            todo.remove(done.clone()).map_err(|_| AcceptError::TooManyRanges)?;
        }
        let mut stats = AcceptStats::default();
        for piece in todo.as_slice() {
            let s = accept_range(t, piece.start, piece.end, false)?;
            self.accepted.insert(piece.clone()).map_err(|_| AcceptError::TooManyRanges)?;
            stats.accepted_2m += s.accepted_2m;
            stats.accepted_4k += s.accepted_4k;
            stats.size_fallbacks += s.size_fallbacks;
            stats.busy_retries += s.busy_retries;
        }
        Ok(stats)
    }

    /// The ranges known to be accepted.
    pub fn accepted(&self) -> &[Range<u64>] {
        self.accepted.as_slice()
    }
}

/// Hands `[start, end)` to the host as shared memory (a bounce buffer): MapGPA with the
/// shared bit (GHCI "`TDG.VP.VMCALL<MapGPA>`"). The private contents are gone; the kernel
/// maps the range with the shared bit set afterwards.
pub fn share_range(t: &mut impl TdCall, start: u64, end: u64, shared_bit: u64) -> Result<(), VmCallError> {
    vmcall::map_gpa(t, start, end.checked_sub(start).ok_or(VmCallError::InvalidArgument)?, true, shared_bit)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnshareError {
    MapGpa(VmCallError),
    Accept(AcceptError),
}

/// Takes `[start, end)` back as private memory: MapGPA without the shared bit, then
/// TDG.MEM.PAGE.ACCEPT of every page. Already-accepted is an error here: the host had
/// to remove the private pages when they were shared, so none can be accepted still.
pub fn unshare_range(t: &mut impl TdCall, start: u64, end: u64, shared_bit: u64) -> Result<AcceptStats, UnshareError> {
    let len = end.checked_sub(start).ok_or(UnshareError::Accept(AcceptError::InvalidRange))?;
    vmcall::map_gpa(t, start, len, false, shared_bit).map_err(UnshareError::MapGpa)?;
    accept_range(t, start, end, false).map_err(UnshareError::Accept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tdx::sim::SimTdx;

    #[test]
    fn aligned_ranges_go_2m_at_a_time() {
        let mut sim = SimTdx::new();
        // 4 KiB head, three 2 MiB blocks, 4 KiB tail.
        let stats = accept_range(&mut sim, 0x1F_F000, 0x80_1000, false).unwrap();
        assert_eq!(stats, AcceptStats { accepted_2m: 3, accepted_4k: 2, ..AcceptStats::default() });
        assert_eq!(sim.accept_calls, 5);
        assert_eq!(stats.bytes(), 0x80_1000 - 0x1F_F000);
        assert_eq!(sim.accepted.len(), 3 * 512 + 2);
    }

    #[test]
    fn size_mismatch_falls_back_to_4k() {
        let mut sim = SimTdx::new();
        sim.split_2m.insert(0x40_0000 >> 21);
        let stats = accept_range(&mut sim, 0x20_0000, 0x80_0000, false).unwrap();
        assert_eq!((stats.accepted_2m, stats.accepted_4k, stats.size_fallbacks), (2, 512, 1));
        assert_eq!(sim.accepted.len(), 3 * 512);
    }

    #[test]
    fn already_accepted_only_where_allowed() {
        let mut sim = SimTdx::new();
        accept_range(&mut sim, 0x20_0000, 0x40_0000, false).unwrap();
        sim.accepted.insert(0x40_3000 >> 12);
        // Strict: the caller's map said nothing here was accepted.
        assert_eq!(accept_range(&mut sim, 0x20_0000, 0x40_0000, false), Err(AcceptError::AlreadyAccepted { gpa: 0x20_0000 }));
        // Permitted: counted, not zeroed, not an error; the partly accepted block falls back to 4 KiB.
        let stats = accept_range(&mut sim, 0x20_0000, 0x60_0000, true).unwrap();
        assert_eq!((stats.already_accepted, stats.accepted_4k, stats.size_fallbacks), (2, 511, 1));
    }

    #[test]
    fn busy_is_retried_a_bounded_number_of_times() {
        let mut sim = SimTdx::new();
        sim.accept_busy = 3;
        let stats = accept_range(&mut sim, 0, 0x1000, false).unwrap();
        assert_eq!((stats.accepted_4k, stats.busy_retries), (1, 3));
        sim.accept_busy = u32::MAX;
        assert_eq!(accept_range(&mut sim, 0x1000, 0x2000, false), Err(AcceptError::Busy { gpa: 0x1000 }));
        assert_eq!(sim.accept_calls, 4 + ACCEPT_MAX_BUSY_RETRIES as u64 + 1);
    }

    #[test]
    fn bounce_buffers_go_shared_and_back() {
        let shared_bit = 1 << 51;
        let mut sim = SimTdx::new();
        accept_range(&mut sim, 0x20_0000, 0x40_0000, false).unwrap();
        share_range(&mut sim, 0x20_0000, 0x20_4000, shared_bit).unwrap();
        assert_eq!(sim.map_gpa_calls.last(), Some(&(0x20_0000 | shared_bit, 0x4000)));
        let stats = unshare_range(&mut sim, 0x20_0000, 0x20_4000, shared_bit).unwrap();
        assert_eq!(stats.accepted_4k, 4);
        assert_eq!(sim.map_gpa_calls.last(), Some(&(0x20_0000, 0x4000)));
        // A host that did not really take the pages away: the accept finds them accepted.
        sim.map_gpa_keeps_accepted = true;
        share_range(&mut sim, 0x20_0000, 0x20_1000, shared_bit).unwrap();
        assert_eq!(unshare_range(&mut sim, 0x20_0000, 0x20_1000, shared_bit), Err(UnshareError::Accept(AcceptError::AlreadyAccepted { gpa: 0x20_0000 })));
    }

    #[test]
    fn the_tracker_accepts_each_page_once() {
        let mut sim = SimTdx::new();
        // The launch accepted the kernel's RAM (TempMem) and the TD HOB.
        let kernel = 0x10_0000..0x40_0000;
        let hob = 0x1_2000..0x1_4000;
        for r in [&kernel, &hob] {
            for page in r.clone().step_by(0x1000) {
                sim.accepted.insert(page >> 12);
            }
        }
        let mut tracker: AcceptTracker<8> = AcceptTracker::new(&[kernel.clone(), hob.clone()]).unwrap();
        // RAM 0..8 MiB: everything but the launch's ranges, 2 MiB where aligned.
        let stats = tracker.accept(&mut sim, 0..0x80_0000).unwrap();
        assert_eq!(stats.bytes(), 0x80_0000 - 0x30_0000 - 0x2000);
        assert_eq!(stats.accepted_2m, 2, "4..8 MiB");
        let everything = 0..0x80_0000;
        assert_eq!(tracker.accepted(), core::slice::from_ref(&everything));
        // Asking again accepts nothing and calls nothing.
        let calls = sim.accept_calls;
        assert_eq!(tracker.accept(&mut sim, 0x20_0000..0x60_0000).unwrap(), AcceptStats::default());
        assert_eq!(sim.accept_calls, calls);
        // A page the map says is new but the module says was accepted: refused.
        sim.accepted.insert(0x80_0000 >> 12);
        assert_eq!(tracker.accept(&mut sim, 0x80_0000..0x80_1000), Err(AcceptError::AlreadyAccepted { gpa: 0x80_0000 }));
        assert_eq!(tracker.accept(&mut sim, 0x80_0800..0x80_1000), Err(AcceptError::InvalidRange));
        // More disjoint ranges than the tracker holds: an error, not a panic.
        let mut small: AcceptTracker<2> = AcceptTracker::new(&[0..0x1000, 0x3000..0x4000]).unwrap();
        assert_eq!(small.accept(&mut SimTdx::new(), 0x6000..0x7000), Err(AcceptError::TooManyRanges));
        assert!(AcceptTracker::<1>::new(&[0..0x1000, 0x3000..0x4000]).is_err());
    }

    #[test]
    fn other_statuses_fail_the_range() {
        let mut sim = SimTdx::new();
        sim.accept_fail = Some((0x3000, 0xC000_0B00_0000_0000));
        assert_eq!(
            accept_range(&mut sim, 0, 0x10_0000, false),
            Err(AcceptError::Failed { gpa: 0x3000, status: TdxStatus::TdxEptWalkFailed, details: 0 })
        );
        sim.accept_fail = Some((0x4000, 0x1234_0000_0000_0000));
        assert_eq!(accept_range(&mut sim, 0x4000, 0x5000, false), Err(AcceptError::UnknownStatus { gpa: 0x4000, raw: 0x1234_0000_0000_0000 }));
        // A 4 KiB accept answered with a size mismatch is an error, not a loop.
        sim.accept_fail = Some((0x5000, 0xC000_0B0B_0000_0000));
        assert!(matches!(accept_range(&mut sim, 0x5000, 0x6000, false), Err(AcceptError::Failed { .. })));
        for (start, end) in [(0x800, 0x1000), (0x1000, 0x1800), (0x2000, 0x1000), (0, 1 << 52)] {
            assert_eq!(accept_range(&mut sim, start, end, false), Err(AcceptError::InvalidRange));
        }
        assert_eq!(accept_range(&mut sim, 0x9000, 0x9000, false), Ok(AcceptStats::default()));
    }
}
