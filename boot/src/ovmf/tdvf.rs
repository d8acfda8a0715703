//! The TDX metadata of a TDVF-compatible image: the descriptor and sections that tell QEMU
//! and KVM which parts of the image to add to the TD (and measure into MRTD) before it runs.
//!
//! Sources: Intel TDX Virtual Firmware Design Guide (doc. 733585), §11 "TDVF Metadata":
//! §11.1 "TDVF Metadata Location", §11.2 "TDVF Descriptor" with its TDVF_SECTION entries
//! (fields, section types, attributes); edk2 `OvmfPkg/ResetVector/X64/IntelTdxMetadata.asm` and the
//! `tdxMetadataOffsetStart` entry in `ResetVectorVtf0.asm`; QEMU `hw/i386/tdvf.c`
//! (`tdvf_get_metadata`, `tdvf_parse_and_check_section_entry`), whose per-section checks this
//! parser applies too.

use super::guid_table::GuidTable;
use super::{Guid, PAGE_SIZE};
use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `e47a6535-984a-4798-865e-4685a7bf8ec2`: entry data is a `u32`, the offset of the TDVF
/// descriptor from the end of the image (QEMU `TDX_METADATA_OFFSET_GUID`).
pub const TDX_METADATA_OFFSET_GUID: Guid =
    Guid::new(0xe47a_6535, 0x984a, 0x4798, [0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2]);

/// `"TDVF"`, the descriptor signature.
pub const TDVF_SIGNATURE: [u8; 4] = *b"TDVF";
/// The only descriptor version defined.
pub const TDVF_VERSION: u32 = 1;

/// Section types (Design Guide §11.2; 4 to 6 as td-shim and later guide revisions add).
pub const TDVF_SECTION_TYPE_BFV: u32 = 0;
pub const TDVF_SECTION_TYPE_CFV: u32 = 1;
pub const TDVF_SECTION_TYPE_TD_HOB: u32 = 2;
pub const TDVF_SECTION_TYPE_TEMP_MEM: u32 = 3;
pub const TDVF_SECTION_TYPE_PERM_MEM: u32 = 4;
pub const TDVF_SECTION_TYPE_PAYLOAD: u32 = 5;
pub const TDVF_SECTION_TYPE_PAYLOAD_PARAM: u32 = 6;

/// Attribute bits (Design Guide §11.2): measure the pages with TDH.MR.EXTEND.
pub const TDVF_SECTION_ATTRIBUTES_MR_EXTEND: u32 = 1 << 0;
/// Attribute bits: add the pages after launch with TDH.MEM.PAGE.AUG (not measured).
pub const TDVF_SECTION_ATTRIBUTES_PAGE_AUG: u32 = 1 << 1;

/// The end of the largest guest-physical address space (52-bit MAXPHYADDR).
pub const MAX_GPA_END: u64 = 1 << 52;

/// `TDVF_DESCRIPTOR` (Design Guide §11.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TdvfDescriptor {
    pub signature: [u8; 4],
    /// Size of the descriptor including all section entries.
    pub length: U32,
    pub version: U32,
    pub number_of_section_entry: U32,
}

/// `TDVF_SECTION` (Design Guide §11.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TdvfSectionEntry {
    /// Offset of the section's data in the image.
    pub data_offset: U32,
    /// Size of the data in the image (0 for memory-only sections).
    pub raw_data_size: U32,
    /// GPA the section is added at.
    pub memory_address: U64,
    /// Size of the section in guest memory.
    pub memory_data_size: U64,
    pub section_type: U32,
    pub attributes: U32,
}

const _: () = {
    assert!(core::mem::size_of::<TdvfDescriptor>() == 16);
    assert!(core::mem::offset_of!(TdvfDescriptor, number_of_section_entry) == 12);
    assert!(core::mem::size_of::<TdvfSectionEntry>() == 32);
    assert!(core::mem::offset_of!(TdvfSectionEntry, memory_address) == 8);
    assert!(core::mem::offset_of!(TdvfSectionEntry, memory_data_size) == 16);
    assert!(core::mem::offset_of!(TdvfSectionEntry, section_type) == 24);
    assert!(core::mem::offset_of!(TdvfSectionEntry, attributes) == 28);
};

/// What a section holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdvfSectionType {
    /// Boot firmware volume (code).
    Bfv,
    /// Configuration firmware volume (variables).
    Cfv,
    /// The TD HOB the VMM builds.
    TdHob,
    /// Temporary memory the firmware uses before accepting memory itself.
    TempMem,
    /// Permanent memory, added after launch.
    PermMem,
    /// A payload image.
    Payload,
    /// A payload's parameters.
    PayloadParam,
}

impl TdvfSectionType {
    /// The type for a raw value; `None` for values no revision defines.
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            TDVF_SECTION_TYPE_BFV => Self::Bfv,
            TDVF_SECTION_TYPE_CFV => Self::Cfv,
            TDVF_SECTION_TYPE_TD_HOB => Self::TdHob,
            TDVF_SECTION_TYPE_TEMP_MEM => Self::TempMem,
            TDVF_SECTION_TYPE_PERM_MEM => Self::PermMem,
            TDVF_SECTION_TYPE_PAYLOAD => Self::Payload,
            TDVF_SECTION_TYPE_PAYLOAD_PARAM => Self::PayloadParam,
            _ => return None,
        })
    }

    /// The raw value.
    pub fn raw(self) -> u32 {
        match self {
            Self::Bfv => TDVF_SECTION_TYPE_BFV,
            Self::Cfv => TDVF_SECTION_TYPE_CFV,
            Self::TdHob => TDVF_SECTION_TYPE_TD_HOB,
            Self::TempMem => TDVF_SECTION_TYPE_TEMP_MEM,
            Self::PermMem => TDVF_SECTION_TYPE_PERM_MEM,
            Self::Payload => TDVF_SECTION_TYPE_PAYLOAD,
            Self::PayloadParam => TDVF_SECTION_TYPE_PAYLOAD_PARAM,
        }
    }
}

/// A section's attributes (only the defined bits can be set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdvfAttributes(u32);

impl TdvfAttributes {
    pub const NONE: Self = Self(0);
    pub const MR_EXTEND: Self = Self(TDVF_SECTION_ATTRIBUTES_MR_EXTEND);
    pub const PAGE_AUG: Self = Self(TDVF_SECTION_ATTRIBUTES_PAGE_AUG);
    const DEFINED: u32 = TDVF_SECTION_ATTRIBUTES_MR_EXTEND | TDVF_SECTION_ATTRIBUTES_PAGE_AUG;

    /// The attributes for raw bits; `None` if a reserved bit is set.
    pub fn from_bits(bits: u32) -> Option<Self> {
        (bits & !Self::DEFINED == 0).then_some(Self(bits))
    }

    pub fn bits(self) -> u32 {
        self.0
    }

    /// The pages' contents are measured into MRTD (TDH.MR.EXTEND).
    pub fn mr_extend(self) -> bool {
        self.0 & TDVF_SECTION_ATTRIBUTES_MR_EXTEND != 0
    }

    /// The pages are added after launch (TDH.MEM.PAGE.AUG) rather than at build time.
    pub fn page_aug(self) -> bool {
        self.0 & TDVF_SECTION_ATTRIBUTES_PAGE_AUG != 0
    }
}

/// A validated section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdvfSection {
    pub data_offset: u32,
    pub raw_data_size: u32,
    pub memory_address: u64,
    pub memory_data_size: u64,
    pub section_type: TdvfSectionType,
    pub attributes: TdvfAttributes,
}

impl TdvfSection {
    /// The GPAs of the section's pages, in order.
    pub fn pages(&self) -> impl Iterator<Item = u64> {
        let base = self.memory_address;
        (0..self.memory_data_size / PAGE_SIZE).map(move |i| base + i * PAGE_SIZE)
    }

    fn entry(&self) -> TdvfSectionEntry {
        TdvfSectionEntry {
            data_offset: self.data_offset.into(),
            raw_data_size: self.raw_data_size.into(),
            memory_address: self.memory_address.into(),
            memory_data_size: self.memory_data_size.into(),
            section_type: self.section_type.raw().into(),
            attributes: self.attributes.bits().into(),
        }
    }

    /// Checks one raw entry against the Design Guide and QEMU's `tdvf_parse_and_check_section_entry`.
    fn check(raw: &TdvfSectionEntry, image_len: usize) -> Result<Self, SectionFault> {
        let section_type = TdvfSectionType::from_raw(raw.section_type.get()).ok_or(SectionFault::UnknownType)?;
        let attributes = TdvfAttributes::from_bits(raw.attributes.get()).ok_or(SectionFault::ReservedAttributes)?;
        let s = Self {
            data_offset: raw.data_offset.get(),
            raw_data_size: raw.raw_data_size.get(),
            memory_address: raw.memory_address.get(),
            memory_data_size: raw.memory_data_size.get(),
            section_type,
            attributes,
        };
        if s.memory_data_size < u64::from(s.raw_data_size) {
            return Err(SectionFault::RawLargerThanMemory);
        }
        if !s.memory_address.is_multiple_of(PAGE_SIZE)
            || !s.memory_data_size.is_multiple_of(PAGE_SIZE)
            || s.memory_data_size == 0
        {
            return Err(SectionFault::NotPageAligned);
        }
        // GPAs are at most 52 bits wide (MAXPHYADDR's architectural limit).
        if s.memory_address.checked_add(s.memory_data_size).is_none_or(|end| end > MAX_GPA_END) {
            return Err(SectionFault::AddressOverflow);
        }
        let data_end = u64::from(s.data_offset) + u64::from(s.raw_data_size);
        if data_end > image_len as u64 {
            return Err(SectionFault::DataOutsideImage);
        }
        let must_have_data = matches!(section_type, TdvfSectionType::Bfv | TdvfSectionType::Cfv);
        let must_be_empty =
            matches!(section_type, TdvfSectionType::TdHob | TdvfSectionType::TempMem | TdvfSectionType::PermMem);
        if (must_have_data && s.raw_data_size == 0) || (must_be_empty && s.raw_data_size != 0) {
            return Err(SectionFault::RawSizeForType);
        }
        Ok(s)
    }
}

/// Why a section was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionFault {
    /// A type no Design Guide revision defines.
    UnknownType,
    /// A reserved attribute bit is set.
    ReservedAttributes,
    /// `RawDataSize` exceeds `MemoryDataSize`.
    RawLargerThanMemory,
    /// `MemoryAddress` or `MemoryDataSize` is not a non-zero multiple of 4 KiB.
    NotPageAligned,
    /// `MemoryAddress + MemoryDataSize` overflows or passes the 52-bit physical address space.
    AddressOverflow,
    /// The section's data lies (partly) outside the image.
    DataOutsideImage,
    /// BFV/CFV without data, or TD_HOB/TempMem/PermMem with data (QEMU refuses both).
    RawSizeForType,
}

/// Errors of the TDVF parser and serializer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdvfError {
    /// The [`TDX_METADATA_OFFSET_GUID`] entry's data is not 4 bytes.
    BadEntrySize { len: usize },
    /// The descriptor offset points outside the image.
    BadOffset { offset: u32 },
    /// The descriptor does not start with "TDVF".
    BadSignature,
    /// A version other than [`TDVF_VERSION`].
    UnsupportedVersion(u32),
    /// `Length` disagrees with the entry count, the count is zero, or it reaches past the end.
    BadLength { length: u32, sections: u32 },
    /// A section failed a check.
    BadSection { index: u32, fault: SectionFault },
    /// (Serializer) the output buffer is too small.
    NoRoom,
}

impl core::fmt::Display for TdvfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadEntrySize { len } => write!(f, "TDX metadata offset entry has {len} bytes of data"),
            Self::BadOffset { offset } => write!(f, "descriptor offset {offset:#x} is outside the image"),
            Self::BadSignature => write!(f, "descriptor signature is not \"TDVF\""),
            Self::UnsupportedVersion(v) => write!(f, "unsupported descriptor version {v}"),
            Self::BadLength { length, sections } => {
                write!(f, "descriptor length {length} does not fit {sections} sections")
            }
            Self::BadSection { index, fault } => write!(f, "section {index}: {fault:?}"),
            Self::NoRoom => write!(f, "no room for the descriptor"),
        }
    }
}

impl core::error::Error for TdvfError {}

/// Validated TDVF metadata.
#[derive(Clone, Copy, Debug)]
pub struct TdvfMetadata<'a> {
    /// The section entries' bytes (a multiple of 32, all validated).
    entries: &'a [u8],
}

impl<'a> TdvfMetadata<'a> {
    /// The metadata the table points at, if it has a [`TDX_METADATA_OFFSET_GUID`] entry.
    pub fn find(image: &'a [u8], table: &GuidTable<'a>) -> Result<Option<Self>, TdvfError> {
        match table.find(&TDX_METADATA_OFFSET_GUID) {
            None => Ok(None),
            Some(data) => {
                let raw: [u8; 4] = data.try_into().map_err(|_| TdvfError::BadEntrySize { len: data.len() })?;
                Self::parse_at(image, u32::from_le_bytes(raw)).map(Some)
            }
        }
    }

    /// Parses the descriptor `offset_from_end` bytes before the end of `image`.
    pub fn parse_at(image: &'a [u8], offset_from_end: u32) -> Result<Self, TdvfError> {
        let bad_offset = TdvfError::BadOffset { offset: offset_from_end };
        let start = image.len().checked_sub(offset_from_end as usize).ok_or(bad_offset)?;
        let bytes = &image[start..];
        let (d, _) = TdvfDescriptor::read_from_prefix(bytes).map_err(|_| bad_offset)?;
        if d.signature != TDVF_SIGNATURE {
            return Err(TdvfError::BadSignature);
        }
        if d.version.get() != TDVF_VERSION {
            return Err(TdvfError::UnsupportedVersion(d.version.get()));
        }
        let (length, sections) = (d.length.get(), d.number_of_section_entry.get());
        let bad_length = TdvfError::BadLength { length, sections };
        if sections == 0 || u64::from(length) != 16 + 32 * u64::from(sections) {
            return Err(bad_length);
        }
        let entries = bytes.get(16..length as usize).ok_or(bad_length)?;
        for (index, chunk) in entries.as_chunks::<32>().0.iter().enumerate() {
            let raw = TdvfSectionEntry::read_from_bytes(chunk.as_slice()).map_err(|_| bad_length)?;
            TdvfSection::check(&raw, image.len())
                .map_err(|fault| TdvfError::BadSection { index: index as u32, fault })?;
        }
        Ok(Self { entries })
    }

    /// The sections in table order (the order QEMU adds them to the TD in).
    pub fn sections(&self) -> impl Iterator<Item = TdvfSection> + 'a {
        // Every entry passed `check` in `parse_at`; the image length only mattered there.
        self.entries.as_chunks::<32>().0.iter().filter_map(|chunk| {
            TdvfSection::check(&TdvfSectionEntry::read_from_bytes(chunk.as_slice()).ok()?, usize::MAX).ok()
        })
    }
}

/// Bytes the descriptor for `sections` occupies.
pub fn descriptor_len(sections: usize) -> usize {
    16 + 32 * sections
}

/// Writes the descriptor and `sections` at the start of `out`; returns the bytes written.
pub fn write(sections: &[TdvfSection], out: &mut [u8]) -> Result<usize, TdvfError> {
    let len = descriptor_len(sections.len());
    let count = u32::try_from(sections.len()).map_err(|_| TdvfError::NoRoom)?;
    let length = u32::try_from(len).map_err(|_| TdvfError::NoRoom)?;
    let out = out.get_mut(..len).ok_or(TdvfError::NoRoom)?;
    let d = TdvfDescriptor {
        signature: TDVF_SIGNATURE,
        length: length.into(),
        version: TDVF_VERSION.into(),
        number_of_section_entry: count.into(),
    };
    out[..16].copy_from_slice(d.as_bytes());
    for (s, slot) in sections.iter().zip(out[16..].as_chunks_mut::<32>().0.iter_mut()) {
        slot.copy_from_slice(s.entry().as_bytes());
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovmf::guid_table::{self, TableEntry};
    use crate::ovmf::testing::Mutator;

    fn sections() -> [TdvfSection; 3] {
        [
            TdvfSection {
                data_offset: 0,
                raw_data_size: 0x1000,
                memory_address: 0xffff_e000,
                memory_data_size: 0x1000,
                section_type: TdvfSectionType::Cfv,
                attributes: TdvfAttributes::NONE,
            },
            TdvfSection {
                data_offset: 0x1000,
                raw_data_size: 0x1000,
                memory_address: 0xffff_f000,
                memory_data_size: 0x1000,
                section_type: TdvfSectionType::Bfv,
                attributes: TdvfAttributes::MR_EXTEND,
            },
            TdvfSection {
                data_offset: 0,
                raw_data_size: 0,
                memory_address: 0x80_0000,
                memory_data_size: 0x6000,
                section_type: TdvfSectionType::TempMem,
                attributes: TdvfAttributes::NONE,
            },
        ]
    }

    const AT: usize = 0x2000 - 0x100;

    fn image() -> Vec<u8> {
        let mut image = vec![0u8; 0x2000];
        assert_eq!(write(&sections(), &mut image[AT..]).unwrap(), 16 + 96);
        let offset = 0x100u32.to_le_bytes();
        guid_table::write(&mut image, &[TableEntry { guid: TDX_METADATA_OFFSET_GUID, data: &offset }]).unwrap();
        image
    }

    #[test]
    fn metadata_round_trips() {
        let image = image();
        let table = GuidTable::parse(&image).unwrap();
        let tdvf = TdvfMetadata::find(&image, &table).unwrap().unwrap();
        assert!(tdvf.sections().eq(sections()));
        assert_eq!(&image[AT..AT + 4], b"TDVF");
        assert_eq!(tdvf.sections().nth(2).unwrap().pages().count(), 6);
        assert!(tdvf.sections().nth(1).unwrap().attributes.mr_extend());
    }

    #[test]
    fn malformed_metadata_is_rejected() {
        let good = image();
        let parse = |image: &[u8], offset| TdvfMetadata::parse_at(image, offset).map(|_| ());
        assert_eq!(parse(&good, 0x4000), Err(TdvfError::BadOffset { offset: 0x4000 }));
        assert_eq!(parse(&good, 0xff), Err(TdvfError::BadSignature));
        let mut bad = good.clone();
        bad[AT + 8] = 0;
        assert_eq!(parse(&bad, 0x100), Err(TdvfError::UnsupportedVersion(0)));
        let mut bad = good.clone();
        bad[AT + 12] = 0;
        assert_eq!(parse(&bad, 0x100), Err(TdvfError::BadLength { length: 112, sections: 0 }));
        let entry = |i: usize| AT + 16 + 32 * i;
        let fault = |edit: &dyn Fn(&mut [u8]), index: u32, fault| {
            let mut bad = good.clone();
            edit(&mut bad);
            assert_eq!(parse(&bad, 0x100), Err(TdvfError::BadSection { index, fault }));
        };
        fault(&|b| b[entry(0) + 24] = 7, 0, SectionFault::UnknownType);
        fault(&|b| b[entry(0) + 28] = 4, 0, SectionFault::ReservedAttributes);
        fault(&|b| b[entry(1) + 5] = 0x20, 1, SectionFault::RawLargerThanMemory);
        fault(&|b| b[entry(2) + 8] = 1, 2, SectionFault::NotPageAligned);
        fault(&|b| b[entry(2) + 16..entry(2) + 24].fill(0), 2, SectionFault::NotPageAligned);
        fault(
            &|b| b[entry(2) + 8..entry(2) + 16].copy_from_slice(&(!0xfffu64).to_le_bytes()),
            2,
            SectionFault::AddressOverflow,
        );
        fault(
            &|b| b[entry(1)..entry(1) + 4].copy_from_slice(&0x1800u32.to_le_bytes()),
            1,
            SectionFault::DataOutsideImage,
        );
        fault(&|b| b[entry(2) + 5] = 0x10, 2, SectionFault::RawSizeForType);
        fault(&|b| b[entry(0) + 5] = 0, 0, SectionFault::RawSizeForType);
        assert_eq!(write(&sections(), &mut [0u8; 100]), Err(TdvfError::NoRoom));
    }

    #[test]
    fn mutated_metadata_never_panics() {
        let valid = image();
        let mut m = Mutator::new(0x7d1f);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let input = m.mutate_tail(&valid, 0x100);
            let Ok(table) = GuidTable::parse(&input) else { continue };
            if let Ok(Some(tdvf)) = TdvfMetadata::find(&input, &table) {
                accepted += 1;
                let sections: Vec<_> = tdvf.sections().collect();
                // Re-serialized at the end of a same-sized image, it parses the same.
                let n = descriptor_len(sections.len());
                let mut out = vec![0u8; input.len()];
                let at = out.len() - n;
                write(&sections, &mut out[at..]).unwrap();
                assert!(TdvfMetadata::parse_at(&out, n as u32).unwrap().sections().eq(sections));
            }
        }
        assert!(accepted > 0 && accepted < 20_000, "accepted {accepted}");
    }
}
