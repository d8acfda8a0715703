//! The SEV blocks of an OVMF-compatible image: the SEV metadata ("ASEV": the ranges QEMU
//! pre-validates or fills at SNP launch), the SEV-ES AP reset block, and the SEV hash-table
//! and launch-secret blocks.
//!
//! Sources: edk2 `OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm` (header and section layout,
//! section types) and `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm` (the GUIDed entries);
//! QEMU `target/i386/sev.c` (`OvmfSevMetadata`, `OvmfSevMetadataDesc`, `SEV_DESC_TYPE_*`,
//! `pc_system_parse_sev_metadata`, `sev_es_parse_reset_block`).

use super::guid_table::GuidTable;
use super::{le_u32, Guid, PAGE_SIZE};
use zerocopy::byteorder::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `dc886566-984a-4798-a75e-5585a7bf67cc`: entry data is a `u32`, the offset of the SEV
/// metadata header from the end of the image (QEMU `OVMF_SEV_META_DATA_GUID`).
pub const OVMF_SEV_METADATA_GUID: Guid =
    Guid::new(0xdc88_6566, 0x984a, 0x4798, [0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc]);
/// `00f771de-1a7e-4fcb-890e-68c77e2fb44e`: the SEV-ES AP reset block (QEMU
/// `SEV_INFO_BLOCK_GUID`; edk2 `sevEsResetBlockStart`).
pub const SEV_ES_RESET_BLOCK_GUID: Guid =
    Guid::new(0x00f7_71de, 0x1a7e, 0x4fcb, [0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e]);
/// `7255371f-3a3b-4b04-927b-1da6efa8d454`: base and size of the kernel/initrd/cmdline hash
/// table QEMU fills for measured direct boot (QEMU `SEV_HASH_TABLE_RV_GUID`).
pub const SEV_HASH_TABLE_GUID: Guid =
    Guid::new(0x7255_371f, 0x3a3b, 0x4b04, [0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54]);
/// `4c2eb361-7d9b-4cc3-8081-127c90d3d294`: base and size of the SEV/SEV-ES launch-secret
/// area (QEMU `SEV_SECRET_GUID`).
pub const SEV_SECRET_GUID: Guid =
    Guid::new(0x4c2e_b361, 0x7d9b, 0x4cc3, [0x80, 0x81, 0x12, 0x7c, 0x90, 0xd3, 0xd2, 0x94]);

/// `"ASEV"`, the metadata signature.
pub const SEV_METADATA_SIGNATURE: [u8; 4] = *b"ASEV";
/// The only metadata version defined (edk2 `OVMF_SEV_METADATA_VERSION`).
pub const SEV_METADATA_VERSION: u32 = 1;

/// Section types (QEMU `SEV_DESC_TYPE_*`, edk2 `OVMF_SECTION_TYPE_*`).
pub const SEV_DESC_TYPE_SNP_SEC_MEM: u32 = 1;
pub const SEV_DESC_TYPE_SNP_SECRETS: u32 = 2;
pub const SEV_DESC_TYPE_CPUID: u32 = 3;
pub const SEV_DESC_TYPE_SNP_SVSM_CAA: u32 = 4;
pub const SEV_DESC_TYPE_SNP_KERNEL_HASHES: u32 = 0x10;

/// The metadata header (`OvmfSevMetadata` in QEMU; `_DescriptorSev` in edk2
/// OvmfSevMetadata.asm): signature, length of header plus sections, version, section count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SevMetadataHeader {
    pub signature: [u8; 4],
    pub length: U32,
    pub version: U32,
    pub num_desc: U32,
}

/// One section descriptor (`OvmfSevMetadataDesc` in QEMU): GPA, length, type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SevMetadataDesc {
    pub base: U32,
    pub len: U32,
    pub desc_type: U32,
}

const _: () = {
    assert!(core::mem::size_of::<SevMetadataHeader>() == 16);
    assert!(core::mem::offset_of!(SevMetadataHeader, num_desc) == 12);
    assert!(core::mem::size_of::<SevMetadataDesc>() == 12);
    assert!(core::mem::offset_of!(SevMetadataDesc, desc_type) == 8);
};

/// What a section is for, and so how QEMU adds it at SNP launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SevSectionType {
    /// Memory the firmware uses before it can validate pages itself: pre-validated, zeroed.
    SnpSecMem,
    /// The SNP secrets page.
    SnpSecrets,
    /// The SNP CPUID page.
    Cpuid,
    /// The SVSM calling area.
    SvsmCaa,
    /// The kernel/initrd/cmdline hashes page of measured direct boot.
    SnpKernelHashes,
    /// A type this module does not know.
    Other(u32),
}

impl From<u32> for SevSectionType {
    fn from(raw: u32) -> Self {
        match raw {
            SEV_DESC_TYPE_SNP_SEC_MEM => Self::SnpSecMem,
            SEV_DESC_TYPE_SNP_SECRETS => Self::SnpSecrets,
            SEV_DESC_TYPE_CPUID => Self::Cpuid,
            SEV_DESC_TYPE_SNP_SVSM_CAA => Self::SvsmCaa,
            SEV_DESC_TYPE_SNP_KERNEL_HASHES => Self::SnpKernelHashes,
            other => Self::Other(other),
        }
    }
}

impl From<SevSectionType> for u32 {
    fn from(t: SevSectionType) -> u32 {
        match t {
            SevSectionType::SnpSecMem => SEV_DESC_TYPE_SNP_SEC_MEM,
            SevSectionType::SnpSecrets => SEV_DESC_TYPE_SNP_SECRETS,
            SevSectionType::Cpuid => SEV_DESC_TYPE_CPUID,
            SevSectionType::SvsmCaa => SEV_DESC_TYPE_SNP_SVSM_CAA,
            SevSectionType::SnpKernelHashes => SEV_DESC_TYPE_SNP_KERNEL_HASHES,
            SevSectionType::Other(raw) => raw,
        }
    }
}

/// A validated section: page-aligned, non-empty, below 4 GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SevSection {
    pub base: u32,
    pub size: u32,
    pub section_type: SevSectionType,
}

impl SevSection {
    /// The GPAs of the section's pages, in order.
    pub fn pages(&self) -> impl Iterator<Item = u64> {
        let base = u64::from(self.base);
        (0..u64::from(self.size) / PAGE_SIZE).map(move |i| base + i * PAGE_SIZE)
    }
}

/// Errors of the SEV parsers and serializers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SevMetadataError {
    /// A GUIDed entry's data has the wrong size.
    BadEntrySize { guid: Guid, len: usize },
    /// The metadata offset points outside the image.
    BadOffset { offset: u32 },
    /// The header does not start with "ASEV".
    BadSignature,
    /// A version other than [`SEV_METADATA_VERSION`].
    UnsupportedVersion(u32),
    /// The header length disagrees with the section count or reaches past the image end.
    BadLength { length: u32, sections: u32 },
    /// A section is empty, not page-aligned, or reaches past 4 GiB.
    BadSection { index: u32 },
    /// The SEV-ES reset address is zero (QEMU refuses it too).
    ZeroResetAddress,
    /// (Serializer) the output buffer is too small, or too many sections.
    NoRoom,
}

impl core::fmt::Display for SevMetadataError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadEntrySize { guid, len } => write!(f, "entry {guid} has {len} bytes of data"),
            Self::BadOffset { offset } => write!(f, "metadata offset {offset:#x} is outside the image"),
            Self::BadSignature => write!(f, "metadata signature is not \"ASEV\""),
            Self::UnsupportedVersion(v) => write!(f, "unsupported metadata version {v}"),
            Self::BadLength { length, sections } => {
                write!(f, "metadata length {length} does not fit {sections} sections")
            }
            Self::BadSection { index } => {
                write!(f, "section {index} is empty, not page-aligned or above 4 GiB")
            }
            Self::ZeroResetAddress => write!(f, "SEV-ES reset address is zero"),
            Self::NoRoom => write!(f, "no room for the metadata"),
        }
    }
}

impl core::error::Error for SevMetadataError {}

/// Data of a GUIDed entry that must be exactly `N` bytes.
fn entry_data<const N: usize>(table: &GuidTable<'_>, guid: Guid) -> Result<Option<[u8; N]>, SevMetadataError> {
    match table.find(&guid) {
        None => Ok(None),
        Some(data) => data.try_into().map(Some).map_err(|_| SevMetadataError::BadEntrySize { guid, len: data.len() }),
    }
}

/// Validated SEV metadata.
#[derive(Clone, Copy, Debug)]
pub struct SevMetadata<'a> {
    /// The section descriptors' bytes (a multiple of 12, all validated).
    descs: &'a [u8],
}

impl<'a> SevMetadata<'a> {
    /// The metadata the table points at, if it has an [`OVMF_SEV_METADATA_GUID`] entry.
    pub fn find(image: &'a [u8], table: &GuidTable<'a>) -> Result<Option<Self>, SevMetadataError> {
        match entry_data::<4>(table, OVMF_SEV_METADATA_GUID)? {
            None => Ok(None),
            Some(raw) => Self::parse_at(image, u32::from_le_bytes(raw)).map(Some),
        }
    }

    /// Parses the metadata `offset_from_end` bytes before the end of `image`.
    pub fn parse_at(image: &'a [u8], offset_from_end: u32) -> Result<Self, SevMetadataError> {
        let bad_offset = SevMetadataError::BadOffset { offset: offset_from_end };
        let start = image.len().checked_sub(offset_from_end as usize).ok_or(bad_offset)?;
        let bytes = &image[start..];
        let (header, _) = SevMetadataHeader::read_from_prefix(bytes).map_err(|_| bad_offset)?;
        if header.signature != SEV_METADATA_SIGNATURE {
            return Err(SevMetadataError::BadSignature);
        }
        if header.version.get() != SEV_METADATA_VERSION {
            return Err(SevMetadataError::UnsupportedVersion(header.version.get()));
        }
        let (length, sections) = (header.length.get(), header.num_desc.get());
        let bad_length = SevMetadataError::BadLength { length, sections };
        let expected = u64::from(sections) * 12 + 16;
        if u64::from(length) != expected || length > offset_from_end {
            return Err(bad_length);
        }
        let descs = bytes.get(16..length as usize).ok_or(bad_length)?;
        let metadata = Self { descs };
        for (index, desc) in descs.as_chunks::<12>().0.iter().enumerate() {
            let raw = (le_u32(desc, 0), le_u32(desc, 4));
            let (Some(base), Some(size)) = raw else { return Err(bad_length) };
            let end = u64::from(base) + u64::from(size);
            if size == 0
                || !u64::from(base).is_multiple_of(PAGE_SIZE)
                || !u64::from(size).is_multiple_of(PAGE_SIZE)
                || end > 1 << 32
            {
                return Err(SevMetadataError::BadSection { index: index as u32 });
            }
        }
        Ok(metadata)
    }

    /// The sections, in table order (the order QEMU adds them in).
    pub fn sections(&self) -> impl Iterator<Item = SevSection> + 'a {
        self.descs.as_chunks::<12>().0.iter().filter_map(|desc| {
            let d = SevMetadataDesc::read_from_bytes(desc.as_slice()).ok()?;
            Some(SevSection { base: d.base.get(), size: d.len.get(), section_type: d.desc_type.get().into() })
        })
    }
}

/// Bytes the metadata for `sections` occupies.
pub fn metadata_len(sections: usize) -> usize {
    16 + 12 * sections
}

/// Writes the "ASEV" header and `sections` at the start of `out`; returns the bytes written.
pub fn write_metadata(sections: &[SevSection], out: &mut [u8]) -> Result<usize, SevMetadataError> {
    let len = metadata_len(sections.len());
    let num_desc = u32::try_from(sections.len()).map_err(|_| SevMetadataError::NoRoom)?;
    let length = u32::try_from(len).map_err(|_| SevMetadataError::NoRoom)?;
    let out = out.get_mut(..len).ok_or(SevMetadataError::NoRoom)?;
    let header = SevMetadataHeader {
        signature: SEV_METADATA_SIGNATURE,
        length: length.into(),
        version: SEV_METADATA_VERSION.into(),
        num_desc: num_desc.into(),
    };
    out[..16].copy_from_slice(header.as_bytes());
    for (s, slot) in sections.iter().zip(out[16..].as_chunks_mut::<12>().0.iter_mut()) {
        let desc =
            SevMetadataDesc { base: s.base.into(), len: s.size.into(), desc_type: u32::from(s.section_type).into() };
        slot.copy_from_slice(desc.as_bytes());
    }
    Ok(len)
}

/// The SEV-ES AP reset block (edk2 `sevEsResetBlockStart`): a `u32` whose low 16 bits are the
/// IP and high 16 bits the top of the CS base; the VMM starts APs at CS base `addr & !0xffff`,
/// IP `addr & 0xffff` (QEMU `sev_es_parse_reset_block`, `sev_es_set_reset_vector`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SevEsResetBlock {
    reset_addr: u32,
}

impl SevEsResetBlock {
    /// A reset block for a non-zero address.
    pub fn new(reset_addr: u32) -> Result<Self, SevMetadataError> {
        if reset_addr == 0 {
            return Err(SevMetadataError::ZeroResetAddress);
        }
        Ok(Self { reset_addr })
    }

    /// The block from the table, if it has a [`SEV_ES_RESET_BLOCK_GUID`] entry.
    pub fn find(table: &GuidTable<'_>) -> Result<Option<Self>, SevMetadataError> {
        entry_data::<4>(table, SEV_ES_RESET_BLOCK_GUID)?.map(|raw| Self::new(u32::from_le_bytes(raw))).transpose()
    }

    /// The raw reset address (`EIP` as sev-snp-measure and QEMU name it).
    pub fn reset_addr(&self) -> u32 {
        self.reset_addr
    }

    /// The AP's CS base.
    pub fn cs_base(&self) -> u32 {
        self.reset_addr & 0xffff_0000
    }

    /// The AP's IP.
    pub fn ip(&self) -> u16 {
        (self.reset_addr & 0xffff) as u16
    }

    /// The entry data to write into the table.
    pub fn to_bytes(&self) -> [u8; 4] {
        self.reset_addr.to_le_bytes()
    }
}

/// A `u32 base ++ u32 size` block: [`SEV_HASH_TABLE_GUID`] or [`SEV_SECRET_GUID`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SevRangeBlock {
    pub base: u32,
    pub size: u32,
}

impl SevRangeBlock {
    /// The block with `guid` from the table, if present.
    pub fn find(table: &GuidTable<'_>, guid: Guid) -> Result<Option<Self>, SevMetadataError> {
        Ok(entry_data::<8>(table, guid)?.map(|raw| Self {
            base: u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
            size: u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]),
        }))
    }

    /// The entry data to write into the table.
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut out = [0; 8];
        out[..4].copy_from_slice(&self.base.to_le_bytes());
        out[4..].copy_from_slice(&self.size.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovmf::guid_table::{self, TableEntry};
    use crate::ovmf::testing::Mutator;

    fn sections() -> [SevSection; 4] {
        [
            SevSection { base: 0x80_0000, size: 0x9000, section_type: SevSectionType::SnpSecMem },
            SevSection { base: 0x80_d000, size: 0x1000, section_type: SevSectionType::SnpSecrets },
            SevSection { base: 0x80_e000, size: 0x1000, section_type: SevSectionType::Cpuid },
            SevSection { base: 0x80_f000, size: 0x1000, section_type: SevSectionType::SnpKernelHashes },
        ]
    }

    fn image() -> Vec<u8> {
        let mut image = vec![0u8; 0x1000];
        let at = 0x1000 - 0x200;
        assert_eq!(write_metadata(&sections(), &mut image[at..]).unwrap(), 64);
        let offset = 0x200u32.to_le_bytes();
        let reset = SevEsResetBlock::new(0x0080_b004).unwrap().to_bytes();
        let hashes = SevRangeBlock { base: 0x80_f000, size: 0x400 }.to_bytes();
        guid_table::write(
            &mut image,
            &[
                TableEntry { guid: SEV_ES_RESET_BLOCK_GUID, data: &reset },
                TableEntry { guid: SEV_HASH_TABLE_GUID, data: &hashes },
                TableEntry { guid: OVMF_SEV_METADATA_GUID, data: &offset },
            ],
        )
        .unwrap();
        image
    }

    #[test]
    fn metadata_round_trips() {
        let image = image();
        let table = GuidTable::parse(&image).unwrap();
        let metadata = SevMetadata::find(&image, &table).unwrap().unwrap();
        assert!(metadata.sections().eq(sections()));
        assert_eq!(&image[0x1000 - 0x200..][..4], b"ASEV");
        assert_eq!(metadata.sections().next().unwrap().pages().collect::<Vec<_>>().len(), 9);
        let reset = SevEsResetBlock::find(&table).unwrap().unwrap();
        assert_eq!((reset.cs_base(), reset.ip(), reset.reset_addr()), (0x80_0000, 0xb004, 0x0080_b004));
        let hashes = SevRangeBlock::find(&table, SEV_HASH_TABLE_GUID).unwrap().unwrap();
        assert_eq!(hashes, SevRangeBlock { base: 0x80_f000, size: 0x400 });
        assert_eq!(SevRangeBlock::find(&table, SEV_SECRET_GUID).unwrap(), None);
    }

    #[test]
    fn malformed_metadata_is_rejected() {
        let good = image();
        let at = 0x1000 - 0x200;
        let parse = |image: &[u8], offset| SevMetadata::parse_at(image, offset).map(|_| ());
        assert_eq!(parse(&good, 0x2000), Err(SevMetadataError::BadOffset { offset: 0x2000 }));
        assert_eq!(parse(&good, 8), Err(SevMetadataError::BadOffset { offset: 8 }));
        assert_eq!(parse(&good, 0x1ff), Err(SevMetadataError::BadSignature));
        let mut bad = good.clone();
        bad[at + 8] = 2;
        assert_eq!(parse(&bad, 0x200), Err(SevMetadataError::UnsupportedVersion(2)));
        let mut bad = good.clone();
        bad[at + 12] = 5;
        assert_eq!(parse(&bad, 0x200), Err(SevMetadataError::BadLength { length: 64, sections: 5 }));
        let mut bad = good.clone();
        bad[at + 16 + 12 + 1] = 0x01; // second section's base no longer page-aligned
        assert_eq!(parse(&bad, 0x200), Err(SevMetadataError::BadSection { index: 1 }));
        let mut bad = good.clone();
        bad[at + 16 + 4..at + 16 + 8].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse(&bad, 0x200), Err(SevMetadataError::BadSection { index: 0 }));
        let mut bad = good.clone();
        bad[at + 16..at + 20].copy_from_slice(&0xffff_f000u32.to_le_bytes()); // + 0x9000 passes 4 GiB
        assert_eq!(parse(&bad, 0x200), Err(SevMetadataError::BadSection { index: 0 }));
        // The metadata must end inside the image: a 28-byte one claimed 24 bytes from the end.
        let mut one = vec![0u8; 28];
        write_metadata(&sections()[..1], &mut one).unwrap();
        let mut tiny = vec![0u8; 0x40];
        tiny[0x40 - 24..].copy_from_slice(&one[..24]);
        assert_eq!(parse(&tiny, 24), Err(SevMetadataError::BadLength { length: 28, sections: 1 }));
        assert_eq!(write_metadata(&sections(), &mut tiny[0x10..]), Err(SevMetadataError::NoRoom));
        assert!(SevEsResetBlock::new(0).is_err());
    }

    #[test]
    fn wrong_entry_sizes_are_rejected() {
        let mut image = vec![0u8; 0x400];
        guid_table::write(&mut image, &[TableEntry { guid: SEV_ES_RESET_BLOCK_GUID, data: &[1, 2, 3] }]).unwrap();
        let table = GuidTable::parse(&image).unwrap();
        assert_eq!(
            SevEsResetBlock::find(&table),
            Err(SevMetadataError::BadEntrySize { guid: SEV_ES_RESET_BLOCK_GUID, len: 3 })
        );
    }

    #[test]
    fn mutated_metadata_never_panics() {
        let valid = image();
        let mut m = Mutator::new(0x5e7);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let input = m.mutate_tail(&valid, 0x200);
            let Ok(table) = GuidTable::parse(&input) else { continue };
            if let Ok(Some(metadata)) = SevMetadata::find(&input, &table) {
                accepted += 1;
                let sections: Vec<_> = metadata.sections().collect();
                let mut out = vec![0; metadata_len(sections.len())];
                write_metadata(&sections, &mut out).unwrap();
                let n = out.len() as u32;
                assert!(SevMetadata::parse_at(&out, n).unwrap().sections().eq(sections));
            }
            let _ = SevEsResetBlock::find(&table);
        }
        assert!(accepted > 0 && accepted < 20_000, "accepted {accepted}");
    }
}
