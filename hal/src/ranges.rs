//! A fixed-capacity set of disjoint address ranges, for bookkeeping free physical memory
//! before the heap exists (so it cannot allocate).

use core::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// More disjoint ranges than the set has room for.
    Full,
}

/// Disjoint, sorted, non-empty `u64` ranges; at most `N` of them.
#[derive(Clone, Debug)]
pub struct RangeSet<const N: usize> {
    ranges: [Range<u64>; N],
    len: usize,
}

impl<const N: usize> Default for RangeSet<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RangeSet<N> {
    pub const fn new() -> Self {
        Self { ranges: [const { 0..0 }; N], len: 0 }
    }

    pub fn as_slice(&self) -> &[Range<u64>] {
        &self.ranges[..self.len]
    }

    pub fn total(&self) -> u64 {
        self.as_slice().iter().map(|r| r.end - r.start).sum()
    }

    /// Adds `range`, merging it with any range it touches or overlaps.
    pub fn insert(&mut self, range: Range<u64>) -> Result<(), RangeError> {
        if range.start >= range.end {
            return Ok(());
        }
        let mut merged = range;
        let mut kept = Self::new();
        for r in self.as_slice() {
            if r.end < merged.start || merged.end < r.start {
                kept.push_sorted(r.clone())?;
            } else {
                merged = merged.start.min(r.start)..merged.end.max(r.end);
            }
        }
        kept.push_sorted(merged)?;
        *self = kept;
        Ok(())
    }

    /// Removes `hole` from every range (splitting one in two where needed).
    pub fn remove(&mut self, hole: Range<u64>) -> Result<(), RangeError> {
        if hole.start >= hole.end {
            return Ok(());
        }
        let mut kept = Self::new();
        for r in self.as_slice() {
            if r.end <= hole.start || hole.end <= r.start {
                kept.push_sorted(r.clone())?;
                continue;
            }
            if r.start < hole.start {
                kept.push_sorted(r.start..hole.start)?;
            }
            if hole.end < r.end {
                kept.push_sorted(hole.end..r.end)?;
            }
        }
        *self = kept;
        Ok(())
    }

    /// Shrinks every range inward to multiples of `align` (a power of two), dropping
    /// those that vanish.
    pub fn align_inward(&mut self, align: u64) {
        let mut kept = Self::new();
        for r in self.as_slice() {
            let start = r.start.checked_next_multiple_of(align);
            let end = r.end & !(align - 1);
            if let Some(start) = start.filter(|s| *s < end) {
                // Cannot overflow capacity: at most as many ranges as before.
                let _ = kept.push_sorted(start..end);
            }
        }
        *self = kept;
    }

    /// Takes `size` bytes aligned to `align` from the lowest range that has room below
    /// `limit`.
    pub fn take(&mut self, size: u64, align: u64, limit: u64) -> Option<u64> {
        let found = self.as_slice().iter().find_map(|r| {
            let start = r.start.checked_next_multiple_of(align)?;
            let end = start.checked_add(size)?;
            (end <= r.end && end <= limit).then_some(start..end)
        })?;
        self.remove(found.clone()).ok()?;
        Some(found.start)
    }

    /// Removes and returns the largest range.
    pub fn take_largest(&mut self) -> Option<Range<u64>> {
        let largest = self.as_slice().iter().max_by_key(|r| r.end - r.start)?.clone();
        self.remove(largest.clone()).ok()?;
        Some(largest)
    }

    fn push_sorted(&mut self, range: Range<u64>) -> Result<(), RangeError> {
        if self.len == N {
            return Err(RangeError::Full);
        }
        let at = self.as_slice().iter().position(|r| r.start > range.start).unwrap_or(self.len);
        self.ranges[at..=self.len].rotate_right(1);
        self.ranges[at] = range;
        self.len += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_merges_and_sorts() {
        let mut s = RangeSet::<4>::new();
        s.insert(100..200).unwrap();
        s.insert(0..10).unwrap();
        s.insert(200..250).unwrap();
        s.insert(5..20).unwrap();
        assert_eq!(s.as_slice(), &[0..20, 100..250]);
        assert_eq!(s.total(), 170);
    }

    #[test]
    fn remove_splits() {
        let mut s = RangeSet::<4>::new();
        s.insert(0..100).unwrap();
        s.remove(10..20).unwrap();
        s.remove(90..200).unwrap();
        assert_eq!(s.as_slice(), &[0..10, 20..90]);
        s.remove(0..1000).unwrap();
        assert!(s.as_slice().is_empty());
    }

    #[test]
    fn capacity_is_enforced() {
        let mut s = RangeSet::<2>::new();
        s.insert(0..10).unwrap();
        s.insert(20..30).unwrap();
        assert_eq!(s.insert(40..50), Err(RangeError::Full));
        assert_eq!(s.remove(2..4), Err(RangeError::Full));
    }

    #[test]
    fn take_respects_alignment_and_limit() {
        let mut s = RangeSet::<4>::new();
        s.insert(0x1001..0x3000).unwrap();
        s.insert(0x10000..0x20000).unwrap();
        assert_eq!(s.take(0x1000, 0x1000, u64::MAX), Some(0x2000));
        assert_eq!(s.take(0x2000, 0x1000, 0x11000), None);
        assert_eq!(s.take(0x2000, 0x1000, u64::MAX), Some(0x10000));
        assert_eq!(s.take_largest(), Some(0x12000..0x20000));
    }

    #[test]
    fn align_inward_drops_slivers() {
        let mut s = RangeSet::<4>::new();
        s.insert(0x10..0x20).unwrap();
        s.insert(0x1800..0x5800).unwrap();
        s.align_inward(0x1000);
        assert_eq!(s.as_slice().len(), 1);
        assert_eq!(s.as_slice()[0], 0x2000..0x5000);
    }
}
