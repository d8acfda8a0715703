//! The SNP CPUID page: the CPUID values the hypervisor proposed and the PSP checked at
//! launch (SNP ABI 56860 rev. 1.55, SNP_LAUNCH_UPDATE page type CPUID, "CPUID Function
//! Structure" table; GHCB spec 56421 on its use by a #VC handler).
//!
//! An SNP guest answers CPUID from this page, not from the hypervisor, for anything that
//! matters to its security (the C-bit position first of all). The page is private memory
//! the PSP validated, but it is still parsed with checks (entry count, reserved fields).
//! Not done here: Linux-style post-processing of a few leaves that hold per-vCPU or
//! per-CR4 values (APIC IDs in 1/0Bh/1Fh/8000_001Eh, OSXSAVE/OSPKE, XSAVE sizes for
//! XCR0 values other than the page's); the caller fills those where it needs them.

use super::ghcb::CpuidResult;
use core::fmt;
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// One entry ("CPUID Function Structure").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct CpuidFunction {
    pub eax_in: u32,
    pub ecx_in: u32,
    pub xcr0_in: u64,
    pub xss_in: u64,
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
    pub reserved: u64,
}

/// At most 64 entries.
pub const CPUID_COUNT_MAX: usize = 64;

/// The page's header and entries (the rest of the 4 KiB page is reserved).
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct CpuidPageLayout {
    pub count: u32,
    pub reserved_1: u32,
    pub reserved_2: u64,
    pub functions: [CpuidFunction; CPUID_COUNT_MAX],
}

const _: () = {
    assert!(size_of::<CpuidFunction>() == 48);
    assert!(offset_of!(CpuidFunction, eax) == 24);
    assert!(offset_of!(CpuidPageLayout, functions) == 16);
    assert!(size_of::<CpuidPageLayout>() == 16 + 64 * 48);
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuidPageError {
    /// Shorter than the header and 64 entries.
    TooShort,
    /// More than 64 entries, or none.
    BadCount(u32),
    /// A reserved field is not zero.
    Reserved,
    /// Leaf 8000_001Fh (memory encryption) is missing or reports no C-bit.
    NoEncryptionLeaf,
}

impl fmt::Display for CpuidPageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("CPUID page too short"),
            Self::BadCount(n) => write!(f, "CPUID page claims {n} entries"),
            Self::Reserved => f.write_str("reserved CPUID page field set"),
            Self::NoEncryptionLeaf => f.write_str("CPUID page has no usable leaf 8000_001Fh"),
        }
    }
}

impl core::error::Error for CpuidPageError {}

/// Leaves whose ECX input selects a sub-leaf (as Linux's `cpuid_function_is_indexed`).
pub fn is_indexed(leaf: u32) -> bool {
    matches!(leaf, 0x4 | 0x7 | 0xB | 0xD | 0xF | 0x10 | 0x12 | 0x14 | 0x17 | 0x18 | 0x1D | 0x1E | 0x1F | 0x24 | 0x8000_001D)
}

/// A checked copy of the CPUID page.
#[derive(Clone)]
pub struct CpuidPage {
    functions: alloc::vec::Vec<CpuidFunction>,
}

impl CpuidPage {
    /// Parses a copy of the page (4 KiB, or at least the header and 64 entries).
    pub fn parse(bytes: &[u8]) -> Result<Self, CpuidPageError> {
        let (layout, _) = CpuidPageLayout::ref_from_prefix(bytes).map_err(|_| CpuidPageError::TooShort)?;
        let count = layout.count as usize;
        if count == 0 || count > CPUID_COUNT_MAX {
            return Err(CpuidPageError::BadCount(layout.count));
        }
        if layout.reserved_1 != 0 || layout.reserved_2 != 0 || layout.functions[..count].iter().any(|f| f.reserved != 0) {
            return Err(CpuidPageError::Reserved);
        }
        Ok(Self { functions: layout.functions[..count].to_vec() })
    }

    fn max_of(&self, base: u32) -> u32 {
        self.lookup_entry(base, 0).map(|f| f.eax).unwrap_or(0)
    }

    fn lookup_entry(&self, leaf: u32, subleaf: u32) -> Option<&CpuidFunction> {
        self.functions.iter().find(|f| {
            f.eax_in == leaf
                && (!is_indexed(leaf) || f.ecx_in == subleaf)
                // For 0Dh sub-leaves 0 and 1 only the base XSAVE entry (XCR0 = 1 or 3,
                // XSS = 0) holds sizes the page can vouch for.
                && !(leaf == 0xD && subleaf <= 1 && (!(f.xcr0_in == 1 || f.xcr0_in == 3) || f.xss_in != 0))
        })
    }

    /// The page's answer: the entry's values; all zeros for a leaf the page does not list
    /// (in range or not: a missing in-range leaf is an all-zero leaf the hypervisor left
    /// out, an out-of-range leaf is zero by definition here).
    pub fn lookup(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        match self.lookup_entry(leaf, subleaf) {
            Some(f) => CpuidResult { eax: f.eax, ebx: f.ebx, ecx: f.ecx, edx: f.edx },
            None => CpuidResult::default(),
        }
    }

    /// Whether `leaf` is inside the ranges the page's leaves 0, 4000_0000h and
    /// 8000_0000h declare.
    pub fn in_range(&self, leaf: u32) -> bool {
        leaf <= self.max_of(0)
            || (0x4000_0000..=self.max_of(0x4000_0000)).contains(&leaf)
            || (0x8000_0000..=self.max_of(0x8000_0000)).contains(&leaf)
    }

    /// The C-bit position: CPUID 8000_001Fh `EBX[5:0]` (AMD APM vol. 3, E.4.17), from the
    /// PSP-validated page, never from the hypervisor. SEV (EAX bit 1) must be reported.
    pub fn c_bit_position(&self) -> Result<u8, CpuidPageError> {
        let f = self.lookup_entry(0x8000_001F, 0).ok_or(CpuidPageError::NoEncryptionLeaf)?;
        let c_bit = (f.ebx & 0x3F) as u8;
        // A page-table entry's address field ends at bit 51 (APM vol. 2 §5.3.3), and the
        // firmware entry puts the C-bit in an entry's high dword (boot/src/snp_entry.rs).
        if f.eax & (1 << 1) == 0 || !(32..=51).contains(&c_bit) {
            return Err(CpuidPageError::NoEncryptionLeaf);
        }
        Ok(c_bit)
    }
}

#[cfg(test)]
pub(crate) fn build(entries: &[(u32, u32, u64, [u32; 4])]) -> alloc::vec::Vec<u8> {
    let mut layout = <CpuidPageLayout as zerocopy::FromZeros>::new_zeroed();
    layout.count = entries.len() as u32;
    for (slot, (leaf, subleaf, xcr0, regs)) in layout.functions.iter_mut().zip(entries) {
        *slot = CpuidFunction { eax_in: *leaf, ecx_in: *subleaf, xcr0_in: *xcr0, eax: regs[0], ebx: regs[1], ecx: regs[2], edx: regs[3], ..CpuidFunction::default() };
    }
    let mut page = layout.as_bytes().to_vec();
    page.resize(4096, 0);
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutation::Mutator;

    fn page() -> CpuidPage {
        CpuidPage::parse(&build(&[
            (0, 0, 0, [0x10, 1, 2, 3]),
            (7, 0, 0, [0, 0x219C_97A9, 0, 0]),
            (7, 1, 0, [0x1, 0, 0, 0]),
            (0xD, 0, 1, [0x7, 0x240, 0x340, 0]),
            (0xD, 0, 0x7, [0x7, 0x340, 0x340, 0]),
            (0x8000_0000, 0, 0, [0x8000_0021, 0, 0, 0]),
            (0x8000_001F, 0, 0, [0x1_FFFF, 0x0000_4173, 0x1FD, 1]),
        ]))
        .unwrap()
    }

    #[test]
    fn lookups_follow_sub_leaves_and_xsave_rules() {
        let p = page();
        assert_eq!(p.lookup(7, 0).ebx, 0x219C_97A9);
        assert_eq!(p.lookup(7, 1).eax, 1);
        assert_eq!(p.lookup(7, 2), CpuidResult::default());
        assert_eq!(p.lookup(0, 5).eax, 0x10, "leaf 0 is not indexed");
        // 0Dh/0 comes from the base-XSAVE entry only.
        assert_eq!(p.lookup(0xD, 0).ebx, 0x240);
        assert_eq!(p.lookup(0x8000_001F, 0).ebx & 0x3F, 51);
        assert_eq!(p.c_bit_position(), Ok(51));
        assert!(p.in_range(0xF) && !p.in_range(0x11) && p.in_range(0x8000_0008) && !p.in_range(0x8000_0022));
        assert!(!p.in_range(0x4000_0001));
    }

    #[test]
    fn bad_pages_are_refused() {
        assert_eq!(CpuidPage::parse(&[0; 100]).err(), Some(CpuidPageError::TooShort));
        // On the heap (aligned like the page the kernel passes): a promoted `&[0; 4096]`
        // constant may sit at any address in .rodata, and an unaligned one reads as TooShort.
        assert_eq!(CpuidPage::parse(&vec![0u8; 4096]).err(), Some(CpuidPageError::BadCount(0)));
        let mut bytes = build(&[(0, 0, 0, [1, 2, 3, 4])]);
        bytes[0] = 65;
        assert_eq!(CpuidPage::parse(&bytes).err(), Some(CpuidPageError::BadCount(65)));
        let mut bytes = build(&[(0, 0, 0, [1, 2, 3, 4])]);
        bytes[16 + 40] = 1;
        assert_eq!(CpuidPage::parse(&bytes).err(), Some(CpuidPageError::Reserved));
        let no_sev = CpuidPage::parse(&build(&[(0x8000_001F, 0, 0, [0, 51, 0, 0])])).unwrap();
        assert_eq!(no_sev.c_bit_position(), Err(CpuidPageError::NoEncryptionLeaf));
        let missing = CpuidPage::parse(&build(&[(0, 0, 0, [1, 2, 3, 4])])).unwrap();
        assert_eq!(missing.c_bit_position(), Err(CpuidPageError::NoEncryptionLeaf));
    }

    #[test]
    fn mutated_pages_never_panic() {
        let valid = build(&[(0, 0, 0, [0x10, 1, 2, 3]), (0x8000_001F, 0, 0, [2, 51, 0, 0])]);
        let mut m = Mutator::new(0xc9_1d);
        for _ in 0..5_000 {
            if let Ok(p) = CpuidPage::parse(&m.mutate(&valid)) {
                let _ = (p.lookup(0x8000_001F, 0), p.c_bit_position(), p.in_range(7));
            }
        }
    }
}
