//! Changing private memory under SEV-SNP: page-state change then PVALIDATE to take pages
//! in, PVALIDATE-rescind then page-state change to hand them back as shared (bounce
//! buffers), 2 MiB at a time where aligned with a 4 KiB fallback, and a guard against
//! validating anything twice (AMD APM vol. 3, PVALIDATE; vol. 2 SEV-SNP chapter "Page
//! Validation"; GHCB spec 56421 "SNP Page State Change").
//!
//! Why the guard matters: a hypervisor that remaps a guest-physical page to another,
//! already validated system page could make the guest use memory it did not expect.
//! Two checks catch it: this module's own record of what it validated (it never
//! validates a range twice), and PVALIDATE's carry flag, which says the RMP entry already
//! had the requested state; under validation that is fatal, never ignored.

use super::ghcb::{self, Ghcb, GhcbError, PscEntry, PSC_MAX_ENTRIES};
use super::ghcb_msr::PageOperation;
use super::Vmgexit;
use crate::ranges::{RangeError, RangeSet};
use core::fmt;

pub const SIZE_4K: u64 = 0x1000;
pub const SIZE_2M: u64 = 0x20_0000;

/// PVALIDATE return codes in EAX (APM vol. 3, PVALIDATE).
pub const PVALIDATE_SUCCESS: u32 = 0;
pub const PVALIDATE_FAIL_INPUT: u32 = 1;
pub const PVALIDATE_FAIL_SIZEMISMATCH: u32 = 6;

/// The PVALIDATE instruction: the second hardware boundary of SNP memory management.
pub trait Pvalidate {
    /// PVALIDATE on the page at guest-physical `gpa` (the kernel passes its virtual
    /// address), 2 MiB if `huge`, setting the RMP Validated bit to `validate`. Returns
    /// EAX and rFLAGS.CF (set when the RMP entry was already in the requested state).
    fn pvalidate(&mut self, gpa: u64, huge: bool, validate: bool) -> (u32, bool);
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValidateStats {
    pub pages_2m: u64,
    pub pages_4k: u64,
    /// 2 MiB blocks the RMP holds as 4 KiB entries (PVALIDATE size mismatch).
    pub size_fallbacks: u64,
    /// Page-state-change exits issued.
    pub psc_calls: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidateError {
    /// Not 4 KiB aligned, empty-reversed, or beyond 52 bits.
    InvalidRange,
    /// Part of the range is already validated by this guest (the software guard).
    AlreadyValidated { gpa: u64 },
    /// Part of the range to share is not validated private memory of this guest.
    NotValidated { gpa: u64 },
    /// The page-state change failed.
    PageStateChange(GhcbError),
    /// PVALIDATE left the RMP unchanged (CF = 1): validated twice, or remapped.
    NoUpdate { gpa: u64 },
    /// PVALIDATE failed with this code.
    Failed { gpa: u64, code: u32 },
    /// The record of validated ranges is full.
    RecordFull,
}

impl fmt::Display for ValidateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRange => f.write_str("invalid range"),
            Self::AlreadyValidated { gpa } => write!(f, "{gpa:#x} is already validated"),
            Self::NotValidated { gpa } => write!(f, "{gpa:#x} is not validated private memory"),
            Self::PageStateChange(e) => write!(f, "page-state change: {e}"),
            Self::NoUpdate { gpa } => write!(f, "PVALIDATE did not change {gpa:#x}: validated twice or remapped"),
            Self::Failed { gpa, code } => write!(f, "PVALIDATE of {gpa:#x} failed with {code}"),
            Self::RecordFull => f.write_str("too many validated ranges to record"),
        }
    }
}

impl core::error::Error for ValidateError {}

impl From<RangeError> for ValidateError {
    fn from(_: RangeError) -> Self {
        Self::RecordFull
    }
}

/// The pages of `[start, end)`: 2 MiB where aligned and whole, 4 KiB elsewhere. An
/// iterator, not a list: the kernel validates RAM before it has a heap.
fn pages(start: u64, end: u64) -> impl Iterator<Item = (u64, bool)> + Clone {
    let mut gpa = start;
    core::iter::from_fn(move || {
        if gpa >= end {
            return None;
        }
        let huge = gpa.is_multiple_of(SIZE_2M) && end - gpa >= SIZE_2M;
        let page = (gpa, huge);
        gpa += if huge { SIZE_2M } else { SIZE_4K };
        Some(page)
    })
}

fn check_range(start: u64, end: u64) -> Result<(), ValidateError> {
    if !start.is_multiple_of(SIZE_4K) || !end.is_multiple_of(SIZE_4K) || end < start || end >> 52 != 0 {
        return Err(ValidateError::InvalidRange);
    }
    Ok(())
}

fn page_state_change(v: &mut impl Vmgexit, ghcb: &mut Ghcb, pages: impl Iterator<Item = (u64, bool)>, operation: PageOperation, stats: &mut ValidateStats) -> Result<(), ValidateError> {
    // Batches on the stack (about 2 KiB), for the same reason as `pages`.
    let mut entries = [PscEntry(0); PSC_MAX_ENTRIES];
    let mut count = 0;
    let mut pages = pages.peekable();
    while let Some((gpa, huge)) = pages.next() {
        entries[count] = PscEntry::new(gpa, operation, huge).map_err(ValidateError::PageStateChange)?;
        count += 1;
        if count == PSC_MAX_ENTRIES || pages.peek().is_none() {
            ghcb::page_state_change(v, ghcb, &entries[..count]).map_err(ValidateError::PageStateChange)?;
            stats.psc_calls += 1;
            count = 0;
        }
    }
    Ok(())
}

/// PVALIDATE one page, 2 MiB falling back to its 512 4 KiB pages on a size mismatch.
fn pvalidate_page(v: &mut impl Pvalidate, gpa: u64, huge: bool, validate: bool, stats: &mut ValidateStats) -> Result<(), ValidateError> {
    match v.pvalidate(gpa, huge, validate) {
        (PVALIDATE_SUCCESS, false) if huge => stats.pages_2m += 1,
        (PVALIDATE_SUCCESS, false) => stats.pages_4k += 1,
        (PVALIDATE_SUCCESS, true) => return Err(ValidateError::NoUpdate { gpa }),
        (PVALIDATE_FAIL_SIZEMISMATCH, _) if huge => {
            stats.size_fallbacks += 1;
            for page in (gpa..gpa + SIZE_2M).step_by(SIZE_4K as usize) {
                pvalidate_page(v, page, false, validate, stats)?;
            }
        }
        (code, _) => return Err(ValidateError::Failed { gpa, code }),
    }
    Ok(())
}

/// Makes `[start, end)` private and validated: page-state change to private (batched),
/// then PVALIDATE. Refuses any part `validated` already holds, and records the range.
/// After an error part of the range may be validated and unrecorded: the kernel treats
/// every error here as fatal (terminate with `HalcyonReason::Pvalidate`).
pub fn validate_range<V: Vmgexit + Pvalidate, const N: usize>(
    v: &mut V,
    ghcb: &mut Ghcb,
    start: u64,
    end: u64,
    validated: &mut RangeSet<N>,
) -> Result<ValidateStats, ValidateError> {
    check_range(start, end)?;
    if let Some(r) = validated.as_slice().iter().find(|r| r.start < end && start < r.end) {
        return Err(ValidateError::AlreadyValidated { gpa: r.start.max(start) });
    }
    let mut stats = ValidateStats::default();
    page_state_change(v, ghcb, pages(start, end), PageOperation::Private, &mut stats)?;
    for (gpa, huge) in pages(start, end) {
        pvalidate_page(v, gpa, huge, true, &mut stats)?;
    }
    validated.insert(start..end)?;
    Ok(stats)
}

/// The parts of `range` that `validated` does not cover, in address order: what the kernel
/// still has to validate of a RAM range (the launch pre-validated some of it, the SEV
/// metadata's SNP_SEC_MEM, SECRETS and CPUID sections, and earlier calls validated more).
pub fn unvalidated_parts<const N: usize>(range: core::ops::Range<u64>, validated: &RangeSet<N>) -> impl Iterator<Item = core::ops::Range<u64>> + '_ {
    let mut next = range.start;
    let mut covered = validated.as_slice().iter().filter(move |r| r.start < range.end && range.start < r.end);
    core::iter::from_fn(move || loop {
        if next >= range.end {
            return None;
        }
        match covered.next() {
            Some(r) if r.start <= next => next = next.max(r.end),
            Some(r) => {
                let gap = next..r.start;
                next = r.end;
                return Some(gap);
            }
            None => {
                let gap = next..range.end;
                next = range.end;
                return Some(gap);
            }
        }
    })
}

/// Hands `[start, end)` to the hypervisor as shared memory (a bounce buffer): rescinds
/// validation, then a page-state change to shared; the range leaves `validated`. The
/// contents are lost to the guest (the C-bit view changes); callers copy first.
pub fn share_range<V: Vmgexit + Pvalidate, const N: usize>(
    v: &mut V,
    ghcb: &mut Ghcb,
    start: u64,
    end: u64,
    validated: &mut RangeSet<N>,
) -> Result<ValidateStats, ValidateError> {
    check_range(start, end)?;
    if start < end && !validated.as_slice().iter().any(|r| r.start <= start && end <= r.end) {
        return Err(ValidateError::NotValidated { gpa: start });
    }
    let mut stats = ValidateStats::default();
    for (gpa, huge) in pages(start, end) {
        pvalidate_page(v, gpa, huge, false, &mut stats)?;
    }
    // Record first: even if the hypervisor fails the change, these pages are no longer
    // validated, and must be validated afresh to be used as private memory again.
    validated.remove(start..end)?;
    page_state_change(v, ghcb, pages(start, end), PageOperation::Shared, &mut stats)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snp::sim::SimSnp;

    fn setup() -> (SimSnp, alloc::boxed::Box<Ghcb>, RangeSet<16>) {
        (SimSnp::new(), Ghcb::new_boxed(), RangeSet::new())
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // lists of ranges, some with one element
    fn only_what_is_not_validated_is_left_to_validate() {
        let mut record = RangeSet::<8>::new();
        let parts = |record: &RangeSet<8>, r: core::ops::Range<u64>| unvalidated_parts(r, record).collect::<alloc::vec::Vec<_>>();
        assert_eq!(parts(&record, 0x10_0000..0x20_0000), [0x10_0000..0x20_0000]);
        // The launch pre-validated the kernel (SNP_SEC_MEM) and the CPUID and secrets pages.
        record.insert(0x10_0000..0x3C_0000).unwrap();
        record.insert(0x1_0000..0x1_2000).unwrap();
        assert_eq!(parts(&record, 0x10_0000..0x3C_0000), []);
        assert_eq!(parts(&record, 0..0x400_0000), [0..0x1_0000, 0x1_2000..0x10_0000, 0x3C_0000..0x400_0000]);
        assert_eq!(parts(&record, 0x20_0000..0x80_0000), [0x3C_0000..0x80_0000]);
        assert_eq!(parts(&record, 0x1_1000..0x1_3000), [0x1_2000..0x1_3000]);
        // Validated through the guard, a range is never offered again.
        let (mut sim, mut ghcb, _) = setup();
        for gap in parts(&record, 0x3C_0000..0x80_0000) {
            validate_range(&mut sim, &mut ghcb, gap.start, gap.end, &mut record).unwrap();
        }
        assert_eq!(parts(&record, 0x10_0000..0x80_0000), []);
        assert!(validate_range(&mut sim, &mut ghcb, 0x7F_F000, 0x80_0000, &mut record).is_err());
    }

    #[test]
    fn validation_goes_2m_where_it_can() {
        let (mut sim, mut ghcb, mut record) = setup();
        sim.huge_backed.extend([1, 2]); // blocks at 2 MiB and 4 MiB are 2 MiB in the RMP
        let stats = validate_range(&mut sim, &mut ghcb, 0x1F_F000, 0x80_1000, &mut record).unwrap();
        // Head 4K, 2M, 2M, 2M block 3 held as 4K entries, tail 4K.
        assert_eq!(stats, ValidateStats { pages_2m: 2, pages_4k: 2 + 512, size_fallbacks: 1, psc_calls: 1 });
        assert_eq!(sim.validated.len(), 3 * 512 + 2);
        assert_eq!(record.as_slice(), core::slice::from_ref(&(0x1F_F000..0x80_1000)));
    }

    #[test]
    fn nothing_is_validated_twice() {
        let (mut sim, mut ghcb, mut record) = setup();
        validate_range(&mut sim, &mut ghcb, 0x10_0000, 0x20_0000, &mut record).unwrap();
        let exits = sim.exits.len();
        assert_eq!(validate_range(&mut sim, &mut ghcb, 0x1F_F000, 0x20_1000, &mut record), Err(ValidateError::AlreadyValidated { gpa: 0x1F_F000 }));
        assert_eq!(sim.exits.len(), exits, "refused before any exit");
        // A hypervisor that swaps in a page the RMP already holds as validated: CF = 1.
        sim.validated.insert(0x30_0000 >> 12);
        sim.psc_keeps_validated = true;
        assert_eq!(validate_range(&mut sim, &mut ghcb, 0x30_0000, 0x30_2000, &mut record), Err(ValidateError::NoUpdate { gpa: 0x30_0000 }));
    }

    #[test]
    fn a_lying_page_state_change_is_caught_by_pvalidate() {
        let (mut sim, mut ghcb, mut record) = setup();
        sim.psc_lies = true;
        assert_eq!(validate_range(&mut sim, &mut ghcb, 0x40_0000, 0x40_1000, &mut record), Err(ValidateError::Failed { gpa: 0x40_0000, code: PVALIDATE_FAIL_INPUT }));
        assert!(record.as_slice().is_empty());
    }

    #[test]
    fn bounce_buffers_go_shared_and_back() {
        let (mut sim, mut ghcb, mut record) = setup();
        validate_range(&mut sim, &mut ghcb, 0x50_0000, 0x60_0000, &mut record).unwrap();
        share_range(&mut sim, &mut ghcb, 0x50_0000, 0x50_4000, &mut record).unwrap();
        assert_eq!(record.as_slice(), core::slice::from_ref(&(0x50_4000..0x60_0000)));
        assert!(!sim.validated.contains(&(0x50_0000 >> 12)) && !sim.private.contains(&(0x50_3000 >> 12)));
        // Sharing what is not validated private memory is refused.
        assert_eq!(share_range(&mut sim, &mut ghcb, 0x50_0000, 0x50_1000, &mut record), Err(ValidateError::NotValidated { gpa: 0x50_0000 }));
        assert_eq!(share_range(&mut sim, &mut ghcb, 0x5F_F000, 0x60_1000, &mut record), Err(ValidateError::NotValidated { gpa: 0x5F_F000 }));
        // And back to private.
        validate_range(&mut sim, &mut ghcb, 0x50_0000, 0x50_4000, &mut record).unwrap();
        assert_eq!(record.as_slice(), core::slice::from_ref(&(0x50_0000..0x60_0000)));
    }

    #[test]
    fn ranges_are_checked() {
        let (mut sim, mut ghcb, mut record) = setup();
        for (start, end) in [(0x800, 0x1000), (0x2000, 0x1000), (0, 1 << 52)] {
            assert_eq!(validate_range(&mut sim, &mut ghcb, start, end, &mut record), Err(ValidateError::InvalidRange));
        }
        // Large ranges are split into PSC batches of 253 entries.
        let stats = validate_range(&mut sim, &mut ghcb, 0x1000_0000, 0x1000_0000 + 300 * SIZE_4K, &mut record).unwrap();
        assert_eq!((stats.psc_calls, stats.pages_4k), (2, 300));
    }
}
