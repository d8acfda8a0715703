//! The OVMF-compatible firmware formats that QEMU and KVM read from a `-bios` image: the
//! GUIDed table at the end of the flash, the SEV metadata and SEV-ES reset block, and the
//! TDX (TDVF) metadata.
//!
//! Each format has a checked parser (for untrusted images: a verifier measures whatever it
//! is given) and a serializer (so the image builder writes them from one layout description).
//! Sources, cited in each module:
//! - edk2 `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm` (the GUIDed table, the SEV-ES reset
//!   block, the metadata offset entries) and `OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm`,
//!   `IntelTdxMetadata.asm` (stable202211, as Debian 12's `ovmf` 2022.11 ships it);
//! - QEMU `hw/i386/pc_sysfw_ovmf.c` (how the table is found and walked), `target/i386/sev.c`
//!   (SEV metadata, reset block), `hw/i386/tdvf.c` (TDVF metadata checks);
//! - Intel TDX Virtual Firmware Design Guide (doc. 733585), §11 "TDVF Metadata".

pub mod guid_table;
pub mod sev;
pub mod tdvf;

pub use guid_table::{GuidTable, GuidTableError, TableEntry};
pub use sev::{SevEsResetBlock, SevMetadata, SevMetadataError};
pub use tdvf::{TdvfError, TdvfMetadata};

/// Size of a page as the launch commands (SNP_LAUNCH_UPDATE, TDH.MEM.PAGE.ADD) take it.
pub const PAGE_SIZE: u64 = 0x1000;

/// An `EFI_GUID` as firmware stores it (UEFI Specification 2.10, Appendix A "GUID and Time
/// Formats"): `Data1` u32 LE, `Data2` u16 LE, `Data3` u16 LE, then `Data4` 8 bytes in order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid([u8; 16]);

impl Guid {
    /// The GUID written `d1-d2-d3-d4[0..2]-d4[2..8]`.
    pub const fn new(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Self([a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6], d4[7]])
    }

    /// The GUID from its 16 stored bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes as stored in the image.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl core::fmt::Display for Guid {
    /// The canonical lowercase form, e.g. `96b582de-1fb2-45f7-baea-a366c55a082d`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl core::fmt::Debug for Guid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// Any error of this module's parsers and serializers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OvmfError {
    /// The GUIDed table at the end of the image.
    Table(GuidTableError),
    /// The SEV metadata or an SEV GUIDed entry.
    Sev(SevMetadataError),
    /// The TDX (TDVF) metadata.
    Tdvf(TdvfError),
}

impl From<GuidTableError> for OvmfError {
    fn from(e: GuidTableError) -> Self {
        Self::Table(e)
    }
}

impl From<SevMetadataError> for OvmfError {
    fn from(e: SevMetadataError) -> Self {
        Self::Sev(e)
    }
}

impl From<TdvfError> for OvmfError {
    fn from(e: TdvfError) -> Self {
        Self::Tdvf(e)
    }
}

impl core::fmt::Display for OvmfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Table(e) => write!(f, "OVMF GUIDed table: {e}"),
            Self::Sev(e) => write!(f, "OVMF SEV metadata: {e}"),
            Self::Tdvf(e) => write!(f, "TDVF metadata: {e}"),
        }
    }
}

impl core::error::Error for OvmfError {}

/// What an OVMF-compatible image tells the VMM, validated: the table and, where the image
/// carries them, the SEV metadata, the SEV-ES reset block and the TDVF metadata.
#[derive(Clone, Debug)]
pub struct Firmware<'a> {
    /// The whole image, mapped by QEMU so that it ends at 4 GiB.
    pub image: &'a [u8],
    /// The GUIDed table.
    pub table: GuidTable<'a>,
    /// The SEV metadata, if the table points at one.
    pub sev_metadata: Option<SevMetadata<'a>>,
    /// The SEV-ES AP reset block, if present.
    pub sev_es_reset_block: Option<SevEsResetBlock>,
    /// The TDVF metadata, if the table points at one.
    pub tdvf: Option<TdvfMetadata<'a>>,
}

impl<'a> Firmware<'a> {
    /// Parses every format this module knows from `image`. An image without the table
    /// footer is [`GuidTableError::NoFooter`]; an entry that is present but malformed is an
    /// error, never silently skipped.
    pub fn parse(image: &'a [u8]) -> Result<Self, OvmfError> {
        let table = GuidTable::parse(image)?;
        let sev_metadata = SevMetadata::find(image, &table)?;
        let sev_es_reset_block = SevEsResetBlock::find(&table)?;
        let tdvf = TdvfMetadata::find(image, &table)?;
        Ok(Self { image, table, sev_metadata, sev_es_reset_block, tdvf })
    }

    /// The guest-physical address of the image's first byte: QEMU maps `-bios` so that it
    /// ends at 4 GiB (`x86_bios_rom_init` in `hw/i386/x86.c`, later `x86-common.c`). `None` for
    /// an image larger than 4 GiB.
    pub fn base_gpa(&self) -> Option<u64> {
        (1u64 << 32).checked_sub(self.image.len() as u64)
    }
}

/// `u32` read from an untrusted slice; `None` past its end.
pub(crate) fn le_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let field = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes([field[0], field[1], field[2], field[3]]))
}

/// `u16` read from an untrusted slice; `None` past its end.
pub(crate) fn le_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    let field = bytes.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_le_bytes([field[0], field[1]]))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A deterministic mutator (as `hal/src/mutation.rs`) and a synthetic OVMF-like image.

    /// xorshift64*, seeded so a failure reproduces.
    pub struct Mutator(u64);

    impl Mutator {
        pub fn new(seed: u64) -> Self {
            Self(seed.max(1))
        }

        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }

        /// One to four mutations of `input`, aimed at the `window` last bytes (where the
        /// table and metadata live) so most mutations hit a parsed field.
        pub fn mutate_tail(&mut self, input: &[u8], window: usize) -> Vec<u8> {
            let mut out = input.to_vec();
            for _ in 0..1 + self.below(4) {
                let len = out.len();
                let start = len.saturating_sub(window);
                let at = start + self.below(len - start);
                match self.below(6) {
                    0 if at < len => out[at] ^= 1 << self.below(8),
                    1 if at < len => out[at] = [0, 1, 0x7f, 0x80, 0xff][self.below(5)],
                    2 if at + 4 <= len => {
                        let value: u32 = [0, 1, u32::MAX, u32::MAX / 2, 0x1_0000, 0x1000][self.below(6)];
                        out[at..at + 4].copy_from_slice(&value.to_le_bytes());
                    }
                    3 if at + 2 <= len => {
                        let value: u16 = [0, 1, 17, 18, 19, u16::MAX][self.below(6)];
                        out[at..at + 2].copy_from_slice(&value.to_le_bytes());
                    }
                    4 if at < len => {
                        out.remove(at);
                    }
                    _ => out.insert(at.min(len), self.next() as u8),
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sev::{SevSection, SevSectionType, SEV_ES_RESET_BLOCK_GUID};
    use super::tdvf::{TdvfAttributes, TdvfSection, TdvfSectionType};
    use super::testing::Mutator;
    use super::*;

    #[test]
    fn guid_text_form_matches_the_stored_bytes() {
        let footer = guid_table::TABLE_FOOTER_GUID;
        assert_eq!(footer.to_string(), "96b582de-1fb2-45f7-baea-a366c55a082d");
        // Data1 is little-endian in the image.
        assert_eq!(&footer.as_bytes()[..4], &[0xde, 0x82, 0xb5, 0x96]);
        assert_eq!(SEV_ES_RESET_BLOCK_GUID.to_string(), "00f771de-1a7e-4fcb-890e-68c77e2fb44e");
    }

    /// A 64 KiB image laid out like edk2's OvmfPkgX64 (both metadata blocks, the reset block),
    /// written with this module's serializers.
    pub(crate) fn synthetic_image() -> Vec<u8> {
        let size = 0x10000usize;
        let mut image: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
        let base = (1u64 << 32) - size as u64;
        // TDVF metadata at end - 0x400, SEV metadata at end - 0x300.
        let tdvf_at = size - 0x400;
        let sections = [
            TdvfSection {
                data_offset: 0,
                raw_data_size: 0x8000,
                memory_address: base,
                memory_data_size: 0x8000,
                section_type: TdvfSectionType::Bfv,
                attributes: TdvfAttributes::MR_EXTEND,
            },
            TdvfSection {
                data_offset: 0x8000,
                raw_data_size: 0x8000,
                memory_address: base + 0x8000,
                memory_data_size: 0x8000,
                section_type: TdvfSectionType::Cfv,
                attributes: TdvfAttributes::NONE,
            },
            TdvfSection {
                data_offset: 0,
                raw_data_size: 0,
                memory_address: 0x80_9000,
                memory_data_size: 0x2000,
                section_type: TdvfSectionType::TdHob,
                attributes: TdvfAttributes::NONE,
            },
        ];
        let n = tdvf::write(&sections, &mut image[tdvf_at..]).unwrap();
        assert_eq!(n, 16 + 3 * 32);
        let sev_at = size - 0x300;
        let sev_sections = [
            SevSection { base: 0x80_0000, size: 0x9000, section_type: SevSectionType::SnpSecMem },
            SevSection { base: 0x80_d000, size: 0x1000, section_type: SevSectionType::SnpSecrets },
            SevSection { base: 0x80_e000, size: 0x1000, section_type: SevSectionType::Cpuid },
        ];
        sev::write_metadata(&sev_sections, &mut image[sev_at..]).unwrap();
        let tdvf_offset = ((size - tdvf_at) as u32).to_le_bytes();
        let sev_offset = ((size - sev_at) as u32).to_le_bytes();
        let reset = 0x0080_b004u32.to_le_bytes();
        let hashes = [0u8; 8];
        let entries = [
            TableEntry { guid: SEV_ES_RESET_BLOCK_GUID, data: &reset },
            TableEntry { guid: sev::SEV_HASH_TABLE_GUID, data: &hashes },
            TableEntry { guid: sev::OVMF_SEV_METADATA_GUID, data: &sev_offset },
            TableEntry { guid: tdvf::TDX_METADATA_OFFSET_GUID, data: &tdvf_offset },
        ];
        guid_table::write(&mut image, &entries).unwrap();
        image
    }

    #[test]
    fn a_synthetic_image_round_trips() {
        let image = synthetic_image();
        let fw = Firmware::parse(&image).unwrap();
        assert_eq!(fw.table.entries().count(), 4);
        assert_eq!(fw.base_gpa(), Some((1 << 32) - 0x10000));
        let reset = fw.sev_es_reset_block.unwrap();
        assert_eq!((reset.cs_base(), reset.ip()), (0x80_0000, 0xb004));
        let sev = fw.sev_metadata.unwrap();
        assert_eq!(sev.sections().count(), 3);
        assert_eq!(sev.sections().nth(1).unwrap().section_type, SevSectionType::SnpSecrets);
        let tdvf = fw.tdvf.unwrap();
        assert_eq!(tdvf.sections().count(), 3);
        assert_eq!(tdvf.sections().next().unwrap().attributes, TdvfAttributes::MR_EXTEND);
    }

    /// edk2's OVMF (OvmfPkgX64) as Debian's `ovmf` package ships it; `.ci/ensure-tools`
    /// installs it. Missing, the test fails and says so.
    const DEBIAN_OVMF: &str = "/usr/share/ovmf/OVMF.fd";
    /// SHA-256 of that file in Debian 12's `ovmf` 2022.11-6+deb12u2.
    const DEBIAN_OVMF_SHA256: &str = "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773";

    #[test]
    fn reads_debian_ovmf_as_qemu_does() {
        use sha2::Digest;
        let image = std::fs::read(DEBIAN_OVMF).unwrap_or_else(|e| {
            panic!("{DEBIAN_OVMF}: {e}. This test needs Debian's `ovmf` package: run .ci/ensure-tools")
        });
        let fw = Firmware::parse(&image).unwrap();
        // Every block QEMU looks for is there and well-formed.
        assert!(fw.sev_metadata.is_some() && fw.sev_es_reset_block.is_some() && fw.tdvf.is_some());
        let hex: String = sha2::Sha256::digest(&image).iter().map(|b| format!("{b:02x}")).collect();
        if hex != DEBIAN_OVMF_SHA256 {
            println!("note: {DEBIAN_OVMF} is not Debian 12's 2022.11-6+deb12u2 build; exact table not compared");
            return;
        }
        // The table as QEMU walks it from the footer (read independently with a script following
        // pc_system_ovmf_table_find): reset block, secret, hash table, SEV metadata offset, TDX offset.
        let entries: Vec<_> = fw.table.entries().map(|e| (e.guid.to_string(), e.data.to_vec())).collect();
        let expected: [(&str, &[u8]); 5] = [
            ("00f771de-1a7e-4fcb-890e-68c77e2fb44e", &[0x04, 0xb0, 0x80, 0x00]),
            ("4c2eb361-7d9b-4cc3-8081-127c90d3d294", &[0; 8]),
            ("7255371f-3a3b-4b04-927b-1da6efa8d454", &[0; 8]),
            ("dc886566-984a-4798-a75e-5585a7bf67cc", &[0x2c, 0x05, 0, 0]),
            ("e47a6535-984a-4798-865e-4685a7bf8ec2", &[0x40, 0x08, 0, 0]),
        ];
        let expected: Vec<_> = expected.iter().map(|(g, d)| (g.to_string(), d.to_vec())).collect();
        assert_eq!(entries, expected);
        assert_eq!(fw.table.total_len(), 136);
        let sev: Vec<_> =
            fw.sev_metadata.unwrap().sections().map(|s| (s.base, s.size, u32::from(s.section_type))).collect();
        assert_eq!(
            sev,
            [
                (0x80_0000, 0x9000, 1),
                (0x80_a000, 0x3000, 1),
                (0x80_d000, 0x1000, 2),
                (0x80_e000, 0x1000, 3),
                (0x80_f000, 0x1_1000, 1)
            ]
        );
        let tdvf: Vec<_> = fw
            .tdvf
            .unwrap()
            .sections()
            .map(|s| {
                (
                    s.data_offset,
                    s.raw_data_size,
                    s.memory_address,
                    s.memory_data_size,
                    s.section_type.raw(),
                    s.attributes.bits(),
                )
            })
            .collect();
        assert_eq!(
            tdvf,
            [
                (0x2_0000, 0x1e_0000, 0xffe2_0000, 0x1e_0000, 0, 1),
                (0, 0x2_0000, 0xffe0_0000, 0x2_0000, 1, 0),
                (0, 0, 0x81_0000, 0x1_0000, 3, 0),
                (0, 0, 0x80_b000, 0x2000, 3, 0),
                (0, 0, 0x80_9000, 0x2000, 2, 0),
                (0, 0, 0x80_0000, 0x6000, 3, 0),
            ]
        );
    }

    #[test]
    fn mutated_images_never_panic() {
        let valid = synthetic_image();
        let mut m = Mutator::new(0x0f_f00d);
        let mut rejected = 0;
        for _ in 0..20_000 {
            let input = m.mutate_tail(&valid, 0x480);
            match Firmware::parse(&input) {
                Ok(fw) => {
                    // Whatever parses is consistent: every section iterates without panicking.
                    let _ = fw.table.entries().count();
                    if let Some(sev) = fw.sev_metadata {
                        for s in sev.sections() {
                            assert!(s.size > 0);
                        }
                    }
                    if let Some(t) = fw.tdvf {
                        for s in t.sections() {
                            assert!(s.memory_data_size >= u64::from(s.raw_data_size));
                        }
                    }
                }
                Err(_) => rejected += 1,
            }
        }
        assert!(rejected > 0 && rejected < 20_000, "rejected {rejected}");
    }
}
