//! The SNP secrets page: where the PSP puts the VM platform communication keys (VMPCKs)
//! at launch (SNP ABI 56860 rev. 1.55, table "Secrets Page Format").
//!
//! The page is private guest memory the PSP wrote, so it is trusted input, but it is still
//! parsed with checks: a VMPCK that is all zeros is a key the PSP did not provide (or that
//! an earlier user wiped after a failure) and must not be used. Only the one key the
//! caller asks for leaves the parser, in a zeroizing buffer; nothing keeps the page.

use core::fmt;
use core::mem::{offset_of, size_of};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use zeroize::Zeroizing;

/// Secrets page (SNP ABI table "Secrets Page Format"), the fields up to 140h. The OS area (A0h) is the
/// layout the GHCB spec suggests for the guest's own use (GHCB 56421, "Secrets Page").
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct SecretsPageLayout {
    pub version: u32,
    /// Bit 0: IMIEN (interrupt injection mode enabled).
    pub imien: u32,
    pub fms: u32,
    reserved_0c: u32,
    pub gosvw: [u8; 16],
    pub vmpck: [[u8; 32]; 4],
    pub os_area: [u8; 96],
    pub vmsa_tweak_bitmap: [u8; 64],
    reserved_140: [u8; 0xEC0],
}

const _: () = {
    assert!(size_of::<SecretsPageLayout>() == 4096);
    assert!(offset_of!(SecretsPageLayout, gosvw) == 0x10);
    assert!(offset_of!(SecretsPageLayout, vmpck) == 0x20);
    assert!(offset_of!(SecretsPageLayout, os_area) == 0xA0);
    assert!(offset_of!(SecretsPageLayout, vmsa_tweak_bitmap) == 0x100);
};

/// The VMPCK offsets have not moved since the first published secrets-page format (SNP
/// ABI 0.9); later versions only add fields after 140h. Version 0 (an all-zero page) is
/// not a secrets page.
pub const SECRETS_PAGE_MIN_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretsPageError {
    /// Not a page-sized buffer.
    WrongSize,
    /// A version whose layout this code does not know.
    UnknownVersion(u32),
    /// VMPCK index above 3.
    NoSuchKey,
    /// The key is all zeros: not provided, or wiped.
    KeyNotProvided,
}

impl fmt::Display for SecretsPageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongSize => f.write_str("secrets page must be 4096 bytes"),
            Self::UnknownVersion(v) => write!(f, "unknown secrets page version {v}"),
            Self::NoSuchKey => f.write_str("VMPCK index must be 0..=3"),
            Self::KeyNotProvided => f.write_str("VMPCK is all zeros"),
        }
    }
}

impl core::error::Error for SecretsPageError {}

/// Takes VMPCK `index` (0 for the VMPL0 guest Halcyon is) out of a copy of the secrets page.
pub fn vmpck(page: &[u8], index: usize) -> Result<Zeroizing<[u8; 32]>, SecretsPageError> {
    let layout = SecretsPageLayout::ref_from_bytes(page).map_err(|_| SecretsPageError::WrongSize)?;
    if layout.version < SECRETS_PAGE_MIN_VERSION {
        return Err(SecretsPageError::UnknownVersion(layout.version));
    }
    let key = layout.vmpck.get(index).ok_or(SecretsPageError::NoSuchKey)?;
    if key.iter().all(|&b| b == 0) {
        return Err(SecretsPageError::KeyNotProvided);
    }
    Ok(Zeroizing::new(*key))
}

/// The message sequence number an earlier user of VMPCK `index` left in the OS area
/// (the GHCB spec 56421 "Secrets Page" section suggests four 32-bit counters at A0h, one per VMPCK). Only
/// meaningful when an earlier stage followed that convention.
pub fn os_area_msg_seqno(page: &[u8], index: usize) -> Result<u32, SecretsPageError> {
    let layout = SecretsPageLayout::ref_from_bytes(page).map_err(|_| SecretsPageError::WrongSize)?;
    let at = index.checked_mul(4).filter(|at| *at < 16).ok_or(SecretsPageError::NoSuchKey)?;
    Ok(u32::from_le_bytes([layout.os_area[at], layout.os_area[at + 1], layout.os_area[at + 2], layout.os_area[at + 3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(version: u32) -> Vec<u8> {
        let mut page = vec![0u8; 4096];
        page[..4].copy_from_slice(&version.to_le_bytes());
        for (i, b) in page[0x20..0xA0].iter_mut().enumerate() {
            *b = (i / 32 + 1) as u8;
        }
        page
    }

    #[test]
    fn keys_come_from_their_offsets() {
        let page = page(3);
        for index in 0..4 {
            assert_eq!(*vmpck(&page, index).unwrap(), [index as u8 + 1; 32]);
        }
        assert_eq!(vmpck(&page, 4), Err(SecretsPageError::NoSuchKey));
    }

    #[test]
    fn os_area_counters() {
        let mut page = page(3);
        page[0xA4..0xA8].copy_from_slice(&6u32.to_le_bytes());
        assert_eq!(os_area_msg_seqno(&page, 1), Ok(6));
        assert_eq!(os_area_msg_seqno(&page, 0), Ok(0));
        assert_eq!(os_area_msg_seqno(&page, 4), Err(SecretsPageError::NoSuchKey));
    }

    #[test]
    fn bad_pages_are_refused() {
        assert_eq!(vmpck(&page(3)[..4095], 0), Err(SecretsPageError::WrongSize));
        assert_eq!(vmpck(&page(0), 0), Err(SecretsPageError::UnknownVersion(0)));
        let mut wiped = page(2);
        wiped[0x20..0x40].fill(0);
        assert_eq!(vmpck(&wiped, 0), Err(SecretsPageError::KeyNotProvided));
        assert!(vmpck(&wiped, 1).is_ok());
    }
}

#[cfg(test)]
mod mutation_tests {
    use super::*;
    use crate::mutation::Mutator;

    #[test]
    fn mutated_pages_never_panic() {
        let mut valid = vec![0u8; 4096];
        valid[0] = 3;
        valid[0x20..0xA0].fill(0x55);
        let mut m = Mutator::new(0x5ec7);
        for _ in 0..5_000 {
            let input = m.mutate(&valid);
            for index in 0..5 {
                let _ = vmpck(&input, index);
            }
        }
    }
}
