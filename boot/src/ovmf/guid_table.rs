//! The GUIDed table at the end of an OVMF flash image: how QEMU finds the SEV and TDX
//! metadata, the SEV-ES reset block and the other blocks a VMM reads before the guest runs.
//!
//! Layout (edk2 `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm`, the `guidedStructureStart`
//! comment; QEMU `hw/i386/pc_sysfw_ovmf.c`, `pc_system_parse_ovmf_flash` and
//! `pc_system_ovmf_table_find`):
//! - the image ends at 4 GiB; its last 32 bytes are fixed-position code and data, the reset
//!   vector at 4 GiB - 16 ([`RESET_VECTOR_FROM_END`]);
//! - just below them, at 4 GiB - 48 (`0xffffffd0`), the table footer GUID
//!   [`TABLE_FOOTER_GUID`], preceded by a `u16` giving the length of the whole table (all
//!   entries plus the footer's own 18 bytes);
//! - each entry is `data ++ u16 length ++ GUID`, where `length` counts all three, so the
//!   entries are walked backwards from the footer, each length stepping to the next.
//!
//! QEMU stops walking silently at a malformed entry; this parser rejects the whole table
//! instead (a verifier must not measure an image whose table it cannot fully read), and
//! also rejects leftover bytes at the start of the table that cannot form an entry.

use super::{le_u16, Guid};

/// `96b582de-1fb2-45f7-baea-a366c55a082d` (edk2 ResetVectorVtf0.asm; QEMU
/// `OVMF_TABLE_FOOTER_GUID`).
pub const TABLE_FOOTER_GUID: Guid =
    Guid::new(0x96b5_82de, 0x1fb2, 0x45f7, [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d]);

/// The reset vector is 16 bytes before the end of the image (4 GiB - 16 once mapped).
pub const RESET_VECTOR_FROM_END: usize = 16;
/// The table ends 32 bytes before the end of the image (below the reset vector block).
pub const TABLE_END_FROM_END: usize = 32;
/// `u16 length ++ GUID` after each entry's data.
pub const ENTRY_HEADER_SIZE: usize = 2 + 16;
/// The footer GUID sits 48 bytes before the end of the image (QEMU: "48 bytes before the end
/// of the flash file (= 32 bytes after the reset vector + 16 bytes guid)").
pub const FOOTER_GUID_FROM_END: usize = TABLE_END_FROM_END + 16;

/// Errors of [`GuidTable::parse`] and [`write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuidTableError {
    /// The image is too small to hold the reset vector block and a footer.
    ImageTooSmall { len: usize },
    /// No [`TABLE_FOOTER_GUID`] 48 bytes before the end: not an OVMF-compatible image.
    NoFooter,
    /// The footer's table length is smaller than the footer or reaches past the image start.
    BadTableLength { length: u16 },
    /// An entry's length is smaller than its header or larger than what is left of the table.
    BadEntryLength { entry: usize, length: u16 },
    /// Bytes are left at the start of the table that cannot form an entry.
    TrailingBytes { count: usize },
    /// (Serializer) an entry or the whole table does not fit a `u16` length.
    TooLarge,
    /// (Serializer) the image has no room for the table.
    NoRoom,
}

impl core::fmt::Display for GuidTableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ImageTooSmall { len } => write!(f, "image of {len} bytes is too small for the OVMF table"),
            Self::NoFooter => write!(f, "no OVMF table footer GUID 48 bytes before the end of the image"),
            Self::BadTableLength { length } => write!(f, "table length {length} is out of range"),
            Self::BadEntryLength { entry, length } => write!(f, "entry {entry} has invalid length {length}"),
            Self::TrailingBytes { count } => write!(f, "{count} bytes at the table start form no entry"),
            Self::TooLarge => write!(f, "entry or table longer than 65535 bytes"),
            Self::NoRoom => write!(f, "image too small for the table"),
        }
    }
}

impl core::error::Error for GuidTableError {}

/// One table entry: its GUID and its data (without the length and GUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableEntry<'a> {
    pub guid: Guid,
    pub data: &'a [u8],
}

/// A validated table: every entry's length has been checked, so iterating cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct GuidTable<'a> {
    /// The entries' bytes, from the first (lowest) entry to the footer (excluded).
    entries: &'a [u8],
}

impl<'a> GuidTable<'a> {
    /// Finds and validates the table of an image (the whole `-bios` file).
    pub fn parse(image: &'a [u8]) -> Result<Self, GuidTableError> {
        let len = image.len();
        if len < FOOTER_GUID_FROM_END + 2 {
            return Err(GuidTableError::ImageTooSmall { len });
        }
        let guid_at = len - FOOTER_GUID_FROM_END;
        if image.get(guid_at..guid_at + 16) != Some(TABLE_FOOTER_GUID.as_bytes().as_slice()) {
            return Err(GuidTableError::NoFooter);
        }
        let length_at = guid_at - 2;
        let length = le_u16(image, length_at).ok_or(GuidTableError::ImageTooSmall { len })?;
        let body = usize::from(length)
            .checked_sub(ENTRY_HEADER_SIZE)
            .filter(|body| *body <= length_at)
            .ok_or(GuidTableError::BadTableLength { length })?;
        let entries = image.get(length_at - body..length_at).ok_or(GuidTableError::BadTableLength { length })?;
        // Walk once now, so that `entries()` never meets a bad length.
        let mut rest = entries.len();
        let mut index = 0;
        while rest >= ENTRY_HEADER_SIZE {
            let length = le_u16(entries, rest - ENTRY_HEADER_SIZE).ok_or(GuidTableError::TooLarge)?;
            let n = usize::from(length);
            if n < ENTRY_HEADER_SIZE || n > rest {
                return Err(GuidTableError::BadEntryLength { entry: index, length });
            }
            rest -= n;
            index += 1;
        }
        if rest != 0 {
            return Err(GuidTableError::TrailingBytes { count: rest });
        }
        Ok(Self { entries })
    }

    /// The entries, nearest the footer first (the order QEMU searches them in).
    pub fn entries(&self) -> Entries<'a> {
        Entries { rest: self.entries }
    }

    /// The data of the first entry with `guid`, searching from the footer as QEMU does.
    pub fn find(&self, guid: &Guid) -> Option<&'a [u8]> {
        self.entries().find(|e| e.guid == *guid).map(|e| e.data)
    }

    /// Number of bytes the table occupies, footer included.
    pub fn total_len(&self) -> usize {
        self.entries.len() + ENTRY_HEADER_SIZE
    }
}

/// Iterator over a validated table's entries, nearest the footer first.
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = TableEntry<'a>;

    fn next(&mut self) -> Option<TableEntry<'a>> {
        let end = self.rest.len();
        let header = end.checked_sub(ENTRY_HEADER_SIZE)?;
        let length = usize::from(le_u16(self.rest, header)?);
        let start = end.checked_sub(length)?;
        let guid: [u8; 16] = self.rest.get(header + 2..end)?.try_into().ok()?;
        let data = self.rest.get(start..header)?;
        self.rest = self.rest.get(..start)?;
        Some(TableEntry { guid: Guid::from_bytes(guid), data })
    }
}

/// Bytes the table for `entries` occupies, footer included.
pub fn table_len(entries: &[TableEntry<'_>]) -> Result<usize, GuidTableError> {
    let mut total = ENTRY_HEADER_SIZE;
    for entry in entries {
        let n = entry.data.len() + ENTRY_HEADER_SIZE;
        if n > usize::from(u16::MAX) {
            return Err(GuidTableError::TooLarge);
        }
        total += n;
    }
    if total > usize::from(u16::MAX) {
        return Err(GuidTableError::TooLarge);
    }
    Ok(total)
}

/// Writes the table for `entries` (nearest the footer first, the order [`GuidTable::entries`]
/// yields them) so that it ends [`TABLE_END_FROM_END`] bytes before the end of `image`, and
/// returns the offset where it starts. The last 32 bytes of `image` are not touched.
pub fn write(image: &mut [u8], entries: &[TableEntry<'_>]) -> Result<usize, GuidTableError> {
    let total = table_len(entries)?;
    let end = image.len().checked_sub(TABLE_END_FROM_END).ok_or(GuidTableError::NoRoom)?;
    let start = end.checked_sub(total).ok_or(GuidTableError::NoRoom)?;
    let mut at = end;
    let mut put = |at: &mut usize, data: &[u8], guid: &Guid, length: usize| {
        *at -= 16;
        image[*at..*at + 16].copy_from_slice(guid.as_bytes());
        *at -= 2;
        // `table_len` checked every length against u16::MAX.
        image[*at..*at + 2].copy_from_slice(&(length as u16).to_le_bytes());
        *at -= data.len();
        image[*at..*at + data.len()].copy_from_slice(data);
    };
    put(&mut at, &[], &TABLE_FOOTER_GUID, total);
    for entry in entries {
        put(&mut at, entry.data, &entry.guid, entry.data.len() + ENTRY_HEADER_SIZE);
    }
    debug_assert_eq!(at, start);
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovmf::testing::Mutator;

    const A: Guid = Guid::new(1, 2, 3, [4; 8]);
    const B: Guid = Guid::new(5, 6, 7, [8; 8]);

    fn image_with(entries: &[TableEntry<'_>]) -> Vec<u8> {
        let mut image = vec![0xccu8; 512];
        write(&mut image, entries).unwrap();
        image
    }

    #[test]
    fn footer_sits_where_qemu_looks() {
        let image = image_with(&[]);
        assert_eq!(&image[512 - 48..512 - 32], TABLE_FOOTER_GUID.as_bytes());
        assert_eq!(u16::from_le_bytes([image[512 - 50], image[512 - 49]]), 18);
        assert!(image[512 - 32..].iter().all(|b| *b == 0xcc), "reset vector block untouched");
        assert_eq!(GuidTable::parse(&image).unwrap().entries().count(), 0);
    }

    #[test]
    fn entries_round_trip_in_walking_order() {
        let entries = [TableEntry { guid: A, data: &[1, 2, 3, 4] }, TableEntry { guid: B, data: &[] }];
        let image = image_with(&entries);
        let table = GuidTable::parse(&image).unwrap();
        assert!(table.entries().eq(entries.iter().copied()));
        assert_eq!(table.find(&B), Some(&[][..]));
        assert_eq!(table.find(&A), Some(&[1, 2, 3, 4][..]));
        assert_eq!(table.find(&TABLE_FOOTER_GUID), None);
        assert_eq!(table.total_len(), 18 + 22 + 18);
        // Layout: A's data, its length 22 and GUID just below the footer's length.
        let footer_len_at = 512 - 50;
        assert_eq!(&image[footer_len_at - 16..footer_len_at], A.as_bytes());
        assert_eq!(u16::from_le_bytes([image[footer_len_at - 18], image[footer_len_at - 17]]), 22);
    }

    #[test]
    fn first_match_wins_as_in_qemu() {
        let entries = [TableEntry { guid: A, data: &[1] }, TableEntry { guid: A, data: &[2] }];
        let image = image_with(&entries);
        assert_eq!(GuidTable::parse(&image).unwrap().find(&A), Some(&[1][..]));
    }

    #[test]
    fn malformed_tables_are_rejected() {
        assert_eq!(GuidTable::parse(&[0; 49]).unwrap_err(), GuidTableError::ImageTooSmall { len: 49 });
        assert_eq!(GuidTable::parse(&[0; 4096]).unwrap_err(), GuidTableError::NoFooter);
        let good = image_with(&[TableEntry { guid: A, data: &[9; 6] }]);
        let length_at = 512 - 50;
        for (length, err) in [
            (17u16, GuidTableError::BadTableLength { length: 17 }),
            (u16::MAX, GuidTableError::BadTableLength { length: u16::MAX }),
            (18 + 23, GuidTableError::BadEntryLength { entry: 0, length: 24 }),
            (18 + 25, GuidTableError::TrailingBytes { count: 1 }),
        ] {
            let mut image = good.clone();
            image[length_at..length_at + 2].copy_from_slice(&length.to_le_bytes());
            // (For the 23-byte body, the entry keeps its length of 24: more than is left.)
            assert_eq!(GuidTable::parse(&image).unwrap_err(), err, "length {length}");
        }
        let mut image = good.clone();
        image[length_at - 18..length_at - 16].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(GuidTable::parse(&image).unwrap_err(), GuidTableError::BadEntryLength { entry: 0, length: 0 });
    }

    #[test]
    fn serializer_refuses_what_does_not_fit() {
        let big = [0u8; 70_000];
        let mut image = vec![0; 100_000];
        assert_eq!(write(&mut image, &[TableEntry { guid: A, data: &big }]), Err(GuidTableError::TooLarge));
        let mut small = vec![0; 60];
        assert_eq!(write(&mut small, &[TableEntry { guid: A, data: &[0; 20] }]), Err(GuidTableError::NoRoom));
    }

    #[test]
    fn mutated_tables_never_panic() {
        let valid = image_with(&[
            TableEntry { guid: A, data: &[1, 2, 3, 4] },
            TableEntry { guid: B, data: &[5; 8] },
            TableEntry { guid: A, data: &[] },
        ]);
        let mut m = Mutator::new(0x7ab1e);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let input = m.mutate_tail(&valid, 140);
            if let Ok(table) = GuidTable::parse(&input) {
                accepted += 1;
                // Whatever parses re-serializes to a table that parses the same.
                let entries: Vec<_> = table.entries().collect();
                let mut again = vec![0; input.len()];
                write(&mut again, &entries).unwrap();
                assert!(GuidTable::parse(&again).unwrap().entries().eq(entries.iter().copied()));
            }
        }
        assert!(accepted > 0 && accepted < 20_000, "accepted {accepted}");
    }
}
