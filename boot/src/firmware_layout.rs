//! The one layout description of Halcyon's firmware image (`halcyon.fd`): where the kernel
//! payload, the reset code, the payload descriptor, the SEV and TDVF metadata, the OVMF
//! GUIDed table and the reset vector sit, and which memory the launch must provide.
//!
//! The image builder (`image/`) writes the firmware from this module, `halcyon measure` reads
//! it back with `crate::ovmf`, and the reset code (`reset_vector.s`) takes its addresses from
//! the constants here (`global_asm!` `const` operands), so the three cannot drift apart. The
//! linker script places the reset sections at [`RESET_CODE_GPA`] and [`RESET_VECTOR_GPA`];
//! the builder refuses a kernel whose reset segments sit anywhere else.
//!
//! Image layout (QEMU maps a `-bios` image so that it ends at 4 GiB; `x86_bios_rom_init` in
//! `hw/i386/x86.c` also requires its size to be a multiple of 64 KiB):
//!
//! ```text
//! base = 4 GiB - size                 kernel payload: the ELF's PT_LOAD segments as one flat
//!                                     image from their lowest link address, gaps zero
//! ...                                 zero padding
//! 0xFFFF_F000  RESET_CODE_GPA         16-bit reset code, its GDT, 32-bit copy loop
//! 0xFFFF_F400  PAYLOAD_DESCRIPTOR_GPA PayloadDescriptor: where the payload is and goes
//! 0xFFFF_F410  SEV_METADATA_GPA       "ASEV" SEV metadata, then the "TDVF" descriptor
//! ...          OVMF GUIDed table      ends at 4 GiB - 32 (footer GUID at 4 GiB - 48)
//! 0xFFFF_FFF0  RESET_VECTOR_GPA       `jmp` to the reset code (16 bytes)
//! ```
//!
//! Memory the launch provides besides the image (sections of both metadata blocks): the
//! kernel's RAM (its link range, `.bss` and boot stack included) is pre-validated on SEV-SNP
//! (SNP_SEC_MEM) and accepted on TDX (TempMem), so the reset code can copy the kernel there
//! before the kernel validates or accepts anything itself; the SNP CPUID and secrets pages and
//! the TD HOB lie in low memory, which the kernel never hands out (`memory::LOW_MEMORY_END`).

use crate::ovmf::guid_table::{self, TableEntry};
use crate::ovmf::sev::{self, SevEsResetBlock, SevSection, SevSectionType};
use crate::ovmf::tdvf::{self, TdvfAttributes, TdvfSection, TdvfSectionType};
use crate::ovmf::{le_u32, PAGE_SIZE};
use zerocopy::byteorder::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The image ends at 4 GiB.
pub const FIRMWARE_END: u64 = 1 << 32;
/// QEMU accepts `-bios` images whose size is a multiple of 64 KiB (`x86_bios_rom_init`).
pub const FIRMWARE_SIZE_ALIGN: u64 = 64 << 10;
/// The largest image: 16 MiB keeps it above microvm's and the PC's local APIC (0xFEE0_0000)
/// and I/O APIC (0xFEC0_0000).
pub const MAX_FIRMWARE_SIZE: u64 = 16 << 20;

/// The last page of the image: reset code, payload descriptor, metadata, table, reset vector.
pub const RESET_PAGE_GPA: u32 = 0xFFFF_F000;
/// The 16-bit reset code starts the last page; it may take [`RESET_CODE_MAX`] bytes.
pub const RESET_CODE_GPA: u32 = RESET_PAGE_GPA;
/// Room for the reset code and its GDT.
pub const RESET_CODE_MAX: u32 = 0x400;
/// Where the [`PayloadDescriptor`] sits.
pub const PAYLOAD_DESCRIPTOR_GPA: u32 = RESET_PAGE_GPA + RESET_CODE_MAX;
/// Where the SEV metadata starts (the TDVF descriptor follows it, 16-byte aligned).
pub const SEV_METADATA_GPA: u32 = PAYLOAD_DESCRIPTOR_GPA + PAYLOAD_DESCRIPTOR_SIZE as u32;
/// The architectural reset vector: the first instruction fetched after reset is at
/// 0xFFFF_FFF0 (CS base 0xFFFF_0000, IP 0xFFF0; Intel SDM Vol. 3A, "Processor Management and
/// Initialization", §"First Instruction Executed" and the table "Processor State Following
/// Power-up, Reset, or INIT"; AMD APM Vol. 2, §14.1.5 "Fetching the First Instruction").
pub const RESET_VECTOR_GPA: u32 = 0xFFFF_FFF0;
/// CS base at reset, which 16-bit code uses to address its own data (`%cs:` offsets).
pub const RESET_CS_BASE: u32 = 0xFFFF_0000;
/// Bytes at [`RESET_VECTOR_GPA`]: the vector's 16 bytes.
pub const RESET_VECTOR_SIZE: u32 = 16;

/// CPUID leaf 21h's signature in a TD, "IntelTDX    ", as the reset code compares it: EBX,
/// EDX, ECX (Intel TDX Module v1.5 base architecture spec, "CPUID Virtualization": leaf 21h
/// is the TDX module's own and is answered without a #VE).
pub const TDX_CPUID_SIGNATURE: [u32; 3] = {
    let s = *b"IntelTDX    ";
    [
        u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        u32::from_le_bytes([s[4], s[5], s[6], s[7]]),
        u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
    ]
};

/// The reset vector's bytes, which mean the same in real mode (plain VM, SEV-SNP: the CPU's
/// reset state) and in 32-bit protected mode (a TD: the TDX module's initial vCPU state)
/// until they branch on CR0.PE (`reset_vector.s`):
///
/// ```text
/// +0  0F 20 C0     mov %cr0, %eax     MOV from CR0 is 32-bit in both modes (SDM vol. 2B, "MOV—Move to/from Control Registers")
/// +3  A8 01        test $1, %al       CR0.PE
/// +5  74 05        jz +5              real mode: to +12
/// +7  E9 rel32     jmp TD entry       32-bit protected mode only
/// +12 E9 rel16     jmp reset code     real mode only, IP-relative inside CS (base FFFF0000h)
/// +15 F4           hlt                padding, never reached
/// ```
pub const RESET_VECTOR_PREFIX: [u8; 8] = [0x0F, 0x20, 0xC0, 0xA8, 0x01, 0x74, 0x05, 0xE9];

/// Where the two branches of a reset vector lead (see [`RESET_VECTOR_PREFIX`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetVectorTargets {
    /// GPA the real-mode near jump reaches (CS base FFFF0000h + the 16-bit IP).
    pub real_mode: u32,
    /// GPA the 32-bit jump reaches (flat segments in a TD).
    pub protected_mode: u32,
}

impl ResetVectorTargets {
    /// Decodes the 16 vector bytes; `None` unless they follow [`RESET_VECTOR_PREFIX`].
    pub fn decode(vector: &[u8]) -> Option<Self> {
        let v: &[u8; 16] = vector.try_into().ok()?;
        if v[..8] != RESET_VECTOR_PREFIX || v[12] != 0xE9 || v[15] != 0xF4 {
            return None;
        }
        // Both jumps are relative to the next instruction: EIP FFFF_FFFCh (32-bit), IP FFFFh (16-bit).
        let rel32 = u32::from_le_bytes([v[8], v[9], v[10], v[11]]);
        let rel16 = u16::from_le_bytes([v[13], v[14]]);
        let protected_mode = (RESET_VECTOR_GPA + 12).wrapping_add(rel32);
        let real_mode = RESET_CS_BASE + u32::from(0xFFFFu16.wrapping_add(rel16));
        Some(Self { real_mode, protected_mode })
    }

    /// Both targets lie in the reset code (`[RESET_CODE_GPA, RESET_CODE_GPA + len)`), and the
    /// real-mode one is its start, `halcyon_reset16`.
    pub fn inside_reset_code(&self, len: u32) -> bool {
        let code = RESET_CODE_GPA..RESET_CODE_GPA.saturating_add(len);
        self.real_mode == RESET_CODE_GPA && code.contains(&self.protected_mode)
    }
}

/// ELF program header type of the kernel's reset-code segment (`boot/link.ld`): Halcyon's
/// own, in the OS-specific range `PT_LOOS..=PT_HIOS` of the ELF gABI, so PVH loaders skip it.
pub const PT_HALCYON_RESET_CODE: u32 = 0x6848_5253;
/// ELF program header type of the kernel's reset-vector segment (`boot/link.ld`).
pub const PT_HALCYON_RESET_VECTOR: u32 = 0x6848_5256;

/// SNP CPUID page (SEV metadata section type CPUID): low memory, never handed out.
pub const SNP_CPUID_PAGE_GPA: u32 = 0x0001_0000;
/// SNP secrets page (SEV metadata section type SECRETS).
pub const SNP_SECRETS_PAGE_GPA: u32 = 0x0001_1000;
/// The boot vCPU's GHCB (GHCB spec 56421 §2.3): low memory outside every metadata section, so
/// the launch never validates it; the kernel makes it shared and registers it at boot.
pub const SNP_GHCB_GPA: u32 = 0x0001_4000;
/// The TD HOB QEMU writes for a TD (TDVF section type TD_HOB).
pub const TD_HOB_GPA: u32 = 0x0001_2000;
/// Size of the TD HOB area.
pub const TD_HOB_SIZE: u32 = 0x2000;

/// "HPLD": the [`PayloadDescriptor`] signature the reset code checks before copying.
pub const PAYLOAD_SIGNATURE: [u8; 4] = *b"HPLD";
/// Size of a [`PayloadDescriptor`].
pub const PAYLOAD_DESCRIPTOR_SIZE: usize = 16;

/// Where the kernel payload is in the image and where the reset code copies it. Halcyon's own
/// structure (no external specification): read by `reset_vector.s` at [`PAYLOAD_DESCRIPTOR_GPA`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct PayloadDescriptor {
    /// [`PAYLOAD_SIGNATURE`].
    pub signature: [u8; 4],
    /// GPA of the payload inside the mapped image.
    pub source: U32,
    /// The payload's lowest link address (the kernel runs identity-mapped there).
    pub destination: U32,
    /// Payload bytes to copy.
    pub length: U32,
}

const _: () = {
    assert!(core::mem::size_of::<PayloadDescriptor>() == PAYLOAD_DESCRIPTOR_SIZE);
    assert!(core::mem::offset_of!(PayloadDescriptor, source) == 4);
    assert!(core::mem::offset_of!(PayloadDescriptor, destination) == 8);
    assert!(core::mem::offset_of!(PayloadDescriptor, length) == 12);
    // The metadata starts 16-byte aligned and there is room for both blocks and a table.
    assert!(SEV_METADATA_GPA.is_multiple_of(16));
    assert!(RESET_PAGE_GPA as u64 + PAGE_SIZE == FIRMWARE_END);
};

/// Number of SEV metadata sections Halcyon's firmware has.
pub const SEV_SECTIONS: usize = 3;
/// Number of TDVF sections Halcyon's firmware has.
pub const TDVF_SECTIONS: usize = 3;
/// GPA of the TDVF descriptor (after the SEV metadata, 16-byte aligned).
pub const TDVF_METADATA_GPA: u32 = SEV_METADATA_GPA + (16 + 12 * SEV_SECTIONS as u32).next_multiple_of(16);

/// Why a firmware cannot be laid out, or a built one does not match its layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirmwareLayoutError {
    /// The payload is empty, starts off a page, or ends below its start.
    BadPayload,
    /// The payload plus the reset page exceeds [`MAX_FIRMWARE_SIZE`].
    TooLarge { payload: u64 },
    /// The kernel's RAM range is empty, off a page, overlaps low memory or the image.
    BadKernelRange,
    /// The reset code does not fit [`RESET_CODE_MAX`], or the vector is not the dual-mode
    /// one of [`RESET_VECTOR_PREFIX`] with both jumps into the reset code.
    BadResetCode,
    /// The output buffer is not [`FirmwareLayout::size`] bytes.
    WrongImageSize,
    /// The metadata or table did not fit the reset page.
    NoRoom,
    /// (Reader) no payload descriptor, or one that disagrees with the image.
    BadDescriptor,
}

impl core::fmt::Display for FirmwareLayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadPayload => write!(f, "the kernel payload is empty or not page-aligned"),
            Self::TooLarge { payload } => {
                write!(f, "a payload of {payload} bytes makes the firmware larger than {MAX_FIRMWARE_SIZE} bytes")
            }
            Self::BadKernelRange => write!(f, "the kernel's RAM range is empty, unaligned or overlaps the image"),
            Self::BadResetCode => write!(f, "the reset code does not fit its place in the last page"),
            Self::WrongImageSize => write!(f, "the output buffer is not the firmware's size"),
            Self::NoRoom => write!(f, "metadata and table do not fit the last page"),
            Self::BadDescriptor => write!(f, "no valid payload descriptor"),
        }
    }
}

impl core::error::Error for FirmwareLayoutError {}

/// The layout of one firmware image, computed from its kernel payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirmwareLayout {
    /// Image size in bytes (a multiple of [`FIRMWARE_SIZE_ALIGN`]).
    pub size: u32,
    /// Lowest link address of the payload (page-aligned).
    pub payload_link: u32,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// End of the kernel's RAM (its highest link address plus `.bss` and stack), page-aligned.
    pub kernel_ram_end: u32,
}

impl FirmwareLayout {
    /// The layout for a payload of `payload_len` bytes linked at `payload_link`, whose kernel
    /// uses RAM up to `kernel_ram_end`.
    pub fn new(payload_link: u32, payload_len: u32, kernel_ram_end: u32) -> Result<Self, FirmwareLayoutError> {
        let page = PAGE_SIZE as u32;
        if payload_len == 0 || !payload_link.is_multiple_of(page) {
            return Err(FirmwareLayoutError::BadPayload);
        }
        let payload_end = payload_link.checked_add(payload_len).ok_or(FirmwareLayoutError::BadPayload)?;
        let size = (u64::from(payload_len).next_multiple_of(PAGE_SIZE) + PAGE_SIZE).next_multiple_of(FIRMWARE_SIZE_ALIGN);
        if size > MAX_FIRMWARE_SIZE {
            return Err(FirmwareLayoutError::TooLarge { payload: u64::from(payload_len) });
        }
        let kernel_ram_end = kernel_ram_end.checked_next_multiple_of(page).ok_or(FirmwareLayoutError::BadKernelRange)?;
        if kernel_ram_end < payload_end
            || payload_link < TD_HOB_GPA + TD_HOB_SIZE
            || u64::from(kernel_ram_end) > FIRMWARE_END - MAX_FIRMWARE_SIZE
        {
            return Err(FirmwareLayoutError::BadKernelRange);
        }
        Ok(Self { size: size as u32, payload_link, payload_len, kernel_ram_end })
    }

    /// GPA of the image's first byte (and of the payload, which starts the image).
    pub fn base_gpa(&self) -> u32 {
        (FIRMWARE_END - u64::from(self.size)) as u32
    }

    /// Offset in the image of a GPA inside its last page.
    fn offset_of(&self, gpa: u32) -> usize {
        (u64::from(gpa) - u64::from(self.base_gpa())) as usize
    }

    /// The descriptor the reset code reads.
    pub fn payload_descriptor(&self) -> PayloadDescriptor {
        PayloadDescriptor {
            signature: PAYLOAD_SIGNATURE,
            source: self.base_gpa().into(),
            destination: self.payload_link.into(),
            length: self.payload_len.into(),
        }
    }

    /// The SEV metadata sections, in the order QEMU adds them at SNP launch.
    pub fn sev_sections(&self) -> [SevSection; SEV_SECTIONS] {
        [
            SevSection {
                base: self.payload_link,
                size: self.kernel_ram_end - self.payload_link,
                section_type: SevSectionType::SnpSecMem,
            },
            SevSection { base: SNP_SECRETS_PAGE_GPA, size: PAGE_SIZE as u32, section_type: SevSectionType::SnpSecrets },
            SevSection { base: SNP_CPUID_PAGE_GPA, size: PAGE_SIZE as u32, section_type: SevSectionType::Cpuid },
        ]
    }

    /// The TDVF sections, in the order QEMU adds them to the TD: the image itself (BFV,
    /// measured into MRTD), the kernel's RAM (TempMem: accepted, zero) and the TD HOB.
    pub fn tdvf_sections(&self) -> [TdvfSection; TDVF_SECTIONS] {
        [
            TdvfSection {
                data_offset: 0,
                raw_data_size: self.size,
                memory_address: u64::from(self.base_gpa()),
                memory_data_size: u64::from(self.size),
                section_type: TdvfSectionType::Bfv,
                attributes: TdvfAttributes::MR_EXTEND,
            },
            TdvfSection {
                data_offset: 0,
                raw_data_size: 0,
                memory_address: u64::from(self.payload_link),
                memory_data_size: u64::from(self.kernel_ram_end - self.payload_link),
                section_type: TdvfSectionType::TempMem,
                attributes: TdvfAttributes::NONE,
            },
            TdvfSection {
                data_offset: 0,
                raw_data_size: 0,
                memory_address: u64::from(TD_HOB_GPA),
                memory_data_size: u64::from(TD_HOB_SIZE),
                section_type: TdvfSectionType::TdHob,
                attributes: TdvfAttributes::NONE,
            },
        ]
    }

    /// The SEV-ES AP reset block: APs would start at the reset code (CS base 0xFFFF_0000,
    /// IP 0xF000). Halcyon starts no APs yet; QEMU requires the block for SEV-ES and SNP.
    pub fn sev_es_reset_block(&self) -> SevEsResetBlock {
        // RESET_CODE_GPA is non-zero, so `new` cannot fail; keep the error path anyway.
        SevEsResetBlock::new(RESET_CODE_GPA).unwrap_or_else(|_| unreachable!("RESET_CODE_GPA is not zero"))
    }

    /// Writes the whole image into `image` (exactly [`Self::size`] bytes): the payload, the
    /// reset code and vector (as the kernel ELF carries them), the payload descriptor, both
    /// metadata blocks and the GUIDed table. Everything else is zero.
    pub fn write(
        &self,
        image: &mut [u8],
        payload: &[u8],
        reset_code: &[u8],
        reset_vector: &[u8],
    ) -> Result<(), FirmwareLayoutError> {
        if image.len() != self.size as usize {
            return Err(FirmwareLayoutError::WrongImageSize);
        }
        if payload.len() != self.payload_len as usize {
            return Err(FirmwareLayoutError::BadPayload);
        }
        if reset_code.len() > RESET_CODE_MAX as usize
            || !ResetVectorTargets::decode(reset_vector).is_some_and(|t| t.inside_reset_code(reset_code.len() as u32))
        {
            return Err(FirmwareLayoutError::BadResetCode);
        }
        image.fill(0);
        image[..payload.len()].copy_from_slice(payload);
        let code_at = self.offset_of(RESET_CODE_GPA);
        image[code_at..code_at + reset_code.len()].copy_from_slice(reset_code);
        let vector_at = self.offset_of(RESET_VECTOR_GPA);
        image[vector_at..].copy_from_slice(reset_vector);
        let desc_at = self.offset_of(PAYLOAD_DESCRIPTOR_GPA);
        image[desc_at..desc_at + PAYLOAD_DESCRIPTOR_SIZE].copy_from_slice(self.payload_descriptor().as_bytes());

        let sev_at = self.offset_of(SEV_METADATA_GPA);
        let tdvf_at = self.offset_of(TDVF_METADATA_GPA);
        sev::write_metadata(&self.sev_sections(), &mut image[sev_at..tdvf_at]).map_err(|_| FirmwareLayoutError::NoRoom)?;
        let tdvf_len = tdvf::write(&self.tdvf_sections(), &mut image[tdvf_at..]).map_err(|_| FirmwareLayoutError::NoRoom)?;

        let end = image.len();
        let sev_offset = ((end - sev_at) as u32).to_le_bytes();
        let tdvf_offset = ((end - tdvf_at) as u32).to_le_bytes();
        let reset = self.sev_es_reset_block().to_bytes();
        // The order of edk2's OVMF, nearest the footer first: SEV-ES reset block, SEV metadata
        // offset, TDX metadata offset.
        let entries = [
            TableEntry { guid: sev::SEV_ES_RESET_BLOCK_GUID, data: &reset },
            TableEntry { guid: sev::OVMF_SEV_METADATA_GUID, data: &sev_offset },
            TableEntry { guid: tdvf::TDX_METADATA_OFFSET_GUID, data: &tdvf_offset },
        ];
        let table_len = guid_table::table_len(&entries).map_err(|_| FirmwareLayoutError::NoRoom)?;
        // The table must not overwrite the metadata above it or the reset vector below it.
        if tdvf_at + tdvf_len + table_len > end - guid_table::TABLE_END_FROM_END {
            return Err(FirmwareLayoutError::NoRoom);
        }
        guid_table::write(image, &entries).map_err(|_| FirmwareLayoutError::NoRoom)?;
        Ok(())
    }

    /// Reads back the layout of a built image from its payload descriptor (a checked
    /// constructor: the image is whatever file it was given). The kernel's RAM end is taken
    /// from the SNP_SEC_MEM section, which the caller compares with the TDVF metadata.
    pub fn read(image: &[u8]) -> Result<(Self, PayloadDescriptor), FirmwareLayoutError> {
        let bad = FirmwareLayoutError::BadDescriptor;
        let size = u32::try_from(image.len()).map_err(|_| bad)?;
        if u64::from(size) > MAX_FIRMWARE_SIZE || u64::from(size) < PAGE_SIZE {
            return Err(bad);
        }
        let base = (FIRMWARE_END - u64::from(size)) as u32;
        let at = (PAYLOAD_DESCRIPTOR_GPA - base) as usize;
        let bytes = image.get(at..at + PAYLOAD_DESCRIPTOR_SIZE).ok_or(bad)?;
        let desc = PayloadDescriptor::read_from_bytes(bytes).map_err(|_| bad)?;
        if desc.signature != PAYLOAD_SIGNATURE || desc.source.get() != base {
            return Err(bad);
        }
        let sev_at = (SEV_METADATA_GPA - base) as usize;
        // SNP_SEC_MEM is the first section: header 16 bytes, then base, size.
        let sec_base = le_u32(image, sev_at + 16).ok_or(bad)?;
        let sec_size = le_u32(image, sev_at + 20).ok_or(bad)?;
        if sec_base != desc.destination.get() {
            return Err(bad);
        }
        let end = sec_base.checked_add(sec_size).ok_or(bad)?;
        let layout = Self::new(desc.destination.get(), desc.length.get(), end)?;
        if layout.size != size {
            return Err(bad);
        }
        Ok((layout, desc))
    }
}

/// What an SNP launch of a Halcyon firmware validated in guest memory (the SEV metadata's
/// SNP_SEC_MEM, secrets and CPUID sections), read back by the guest from `last_page`: the
/// image's last 4 KiB as mapped at the top of 4 GiB (the launch measured it, so the guest can
/// trust it). The kernel never validates these ranges again, and validates all other RAM.
pub fn snp_prevalidated(last_page: &[u8]) -> Result<impl Iterator<Item = core::ops::Range<u64>> + '_, sev::SevMetadataError> {
    let offset_from_end = (FIRMWARE_END - u64::from(SEV_METADATA_GPA)) as u32;
    let metadata = sev::SevMetadata::parse_at(last_page, offset_from_end)?;
    Ok(metadata
        .sections()
        .filter(|s| matches!(s.section_type, SevSectionType::SnpSecMem | SevSectionType::SnpSecrets | SevSectionType::Cpuid))
        .map(|s| u64::from(s.base)..u64::from(s.base) + u64::from(s.size)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovmf::Firmware;

    fn layout() -> FirmwareLayout {
        FirmwareLayout::new(0x10_0000, 0x17_1058, 0x2b_f000).unwrap()
    }

    /// A dual-mode vector whose real-mode jump reaches the reset code's start and whose
    /// 32-bit jump reaches `td_entry` (hand-assembled, see [`RESET_VECTOR_PREFIX`]).
    fn vector(td_entry: u32) -> [u8; 16] {
        let mut v = [0xF4u8; 16];
        v[..8].copy_from_slice(&RESET_VECTOR_PREFIX);
        v[8..12].copy_from_slice(&td_entry.wrapping_sub(RESET_VECTOR_GPA + 12).to_le_bytes());
        v[12] = 0xE9;
        // 0xFFFF + rel16 = 0xF000 (mod 2^16).
        v[13..15].copy_from_slice(&0xF001u16.to_le_bytes());
        v
    }

    fn build(layout: &FirmwareLayout) -> Vec<u8> {
        let payload: Vec<u8> = (0..layout.payload_len).map(|i| (i % 251) as u8).collect();
        let mut image = vec![0xaa; layout.size as usize];
        layout.write(&mut image, &payload, &[0x90; 0x80], &vector(RESET_CODE_GPA + 0x40)).unwrap();
        image
    }

    #[test]
    fn the_reset_vector_decodes_in_both_modes() {
        let t = ResetVectorTargets::decode(&vector(0xFFFF_F0A0)).unwrap();
        assert_eq!(t, ResetVectorTargets { real_mode: 0xFFFF_F000, protected_mode: 0xFFFF_F0A0 });
        assert!(t.inside_reset_code(0x100));
        assert!(!t.inside_reset_code(0xA0), "the TD entry must be inside the code");
        // The jz skips exactly the 5-byte 32-bit jump: it lands on the real-mode E9 at +12.
        assert_eq!(RESET_VECTOR_PREFIX[6] as usize, 12 - 7);
        // The old real-mode-only vector (a bare E9 rel16) is refused, and so is any other byte.
        let mut old = [0xF4u8; 16];
        old[..3].copy_from_slice(&[0xE9, 0x0D, 0xF0]);
        assert_eq!(ResetVectorTargets::decode(&old), None);
        for i in [0, 2, 5, 6, 7, 12, 15] {
            let mut v = vector(0xFFFF_F0A0);
            v[i] ^= 0x01;
            assert_eq!(ResetVectorTargets::decode(&v), None, "byte {i}");
        }
        assert_eq!(ResetVectorTargets::decode(&vector(0xFFFF_F0A0)[..15]), None);
        // A 32-bit jump out of the reset page is caught by the builder.
        let l = layout();
        let mut image = vec![0; l.size as usize];
        let payload = vec![0; l.payload_len as usize];
        assert_eq!(l.write(&mut image, &payload, &[0; 0x80], &vector(0x10_0000)), Err(FirmwareLayoutError::BadResetCode));
    }

    #[test]
    fn sizes_follow_the_payload() {
        let l = layout();
        // 1.44 MiB of payload + the reset page, rounded up to 64 KiB.
        assert_eq!(l.size, 0x18_0000);
        assert_eq!(l.base_gpa(), 0xffe8_0000);
        assert_eq!(TDVF_METADATA_GPA, 0xffff_f450);
        assert_eq!(FirmwareLayout::new(0x10_0000, 0xf000, 0x11_0000).unwrap().size, 0x1_0000);
        assert_eq!(FirmwareLayout::new(0x10_0000, 0xf001, 0x11_0000).unwrap().size, 0x2_0000);
        assert_eq!(FirmwareLayout::new(0x10_0000, 0, 0x11_0000), Err(FirmwareLayoutError::BadPayload));
        assert_eq!(FirmwareLayout::new(0x10_0800, 1, 0x11_0000), Err(FirmwareLayoutError::BadPayload));
        assert_eq!(
            FirmwareLayout::new(0x10_0000, 16 << 20, 0x200_0000),
            Err(FirmwareLayoutError::TooLarge { payload: 16 << 20 })
        );
        assert_eq!(FirmwareLayout::new(0x10_0000, 0x2000, 0x10_1000), Err(FirmwareLayoutError::BadKernelRange));
        assert_eq!(FirmwareLayout::new(0x1000, 0x1000, 0x2000), Err(FirmwareLayoutError::BadKernelRange));
    }

    #[test]
    fn a_built_image_parses_as_qemu_reads_it() {
        let l = layout();
        let image = build(&l);
        let fw = Firmware::parse(&image).unwrap();
        assert_eq!(fw.base_gpa(), Some(u64::from(l.base_gpa())));
        let sev: Vec<_> = fw.sev_metadata.unwrap().sections().collect();
        assert_eq!(sev, l.sev_sections());
        let tdvf: Vec<_> = fw.tdvf.unwrap().sections().collect();
        assert_eq!(tdvf, l.tdvf_sections());
        assert_eq!(fw.sev_es_reset_block.unwrap().reset_addr(), RESET_CODE_GPA);
        // The payload starts the image; the reset code and vector are where the CPU fetches.
        assert_eq!(&image[..4], &[0, 1, 2, 3]);
        assert_eq!(image[(RESET_CODE_GPA - l.base_gpa()) as usize], 0x90);
        assert_eq!(image[image.len() - 16..image.len() - 8], RESET_VECTOR_PREFIX);
        assert_eq!(FirmwareLayout::read(&image).unwrap(), (l, l.payload_descriptor()));
    }

    #[test]
    fn the_guest_reads_back_what_the_snp_launch_validated() {
        let l = layout();
        let image = build(&l);
        let last_page = &image[image.len() - PAGE_SIZE as usize..];
        let ranges: Vec<_> = snp_prevalidated(last_page).unwrap().collect();
        assert_eq!(
            ranges,
            [0x10_0000..0x2b_f000, 0x1_1000..0x1_2000, 0x1_0000..0x1_1000],
            "kernel RAM, secrets page, CPUID page"
        );
        // The GHCB page is never validated by the launch (the kernel shares it without a
        // PVALIDATE rescind) and collides with nothing the launch provides.
        let ghcb = u64::from(SNP_GHCB_GPA)..u64::from(SNP_GHCB_GPA) + PAGE_SIZE;
        assert!(ghcb.start.is_multiple_of(PAGE_SIZE) && ghcb.end <= 0x10_0000);
        assert!(ranges.iter().all(|r| r.end <= ghcb.start || ghcb.end <= r.start));
        assert!(u64::from(TD_HOB_GPA + TD_HOB_SIZE) <= ghcb.start);
        // A damaged page is an error, not a guess.
        let mut damaged = last_page.to_vec();
        let at = (SEV_METADATA_GPA - RESET_PAGE_GPA) as usize;
        damaged[at] ^= 1;
        assert!(snp_prevalidated(&damaged).is_err());
        assert!(snp_prevalidated(&last_page[..0x100]).is_err());
    }

    #[test]
    fn write_refuses_mismatched_parts() {
        let l = layout();
        let mut image = vec![0; l.size as usize];
        let payload = vec![0; l.payload_len as usize];
        let v = vector(RESET_CODE_GPA + 0x10);
        assert_eq!(l.write(&mut image[1..], &payload, &[0; 0x20], &v), Err(FirmwareLayoutError::WrongImageSize));
        assert_eq!(l.write(&mut image, &payload[1..], &[0; 0x20], &v), Err(FirmwareLayoutError::BadPayload));
        assert_eq!(l.write(&mut image, &payload, &[0; 0x401], &v), Err(FirmwareLayoutError::BadResetCode));
        assert_eq!(l.write(&mut image, &payload, &[0; 0x20], &v[1..]), Err(FirmwareLayoutError::BadResetCode));
        assert_eq!(l.write(&mut image, &payload, &[0; 0x20], &[0; 16]), Err(FirmwareLayoutError::BadResetCode));
        l.write(&mut image, &payload, &[0; 0x20], &v).unwrap();
    }

    #[test]
    fn read_rejects_tampered_descriptors() {
        let l = layout();
        let image = build(&l);
        let desc_at = (PAYLOAD_DESCRIPTOR_GPA - l.base_gpa()) as usize;
        for (offset, value) in [(0usize, 0u8), (4, 0x01), (9, 0x20), (14, 0x7f)] {
            let mut bad = image.clone();
            bad[desc_at + offset] = value;
            assert!(FirmwareLayout::read(&bad).is_err(), "byte {offset}");
        }
        assert!(FirmwareLayout::read(&image[..image.len() - 4096]).is_err());
        assert!(FirmwareLayout::read(&[]).is_err());
        // Mutations never panic.
        let mut m = crate::ovmf::testing::Mutator::new(0x5eed);
        for _ in 0..5_000 {
            let input = m.mutate_tail(&image, 0xc00);
            let _ = FirmwareLayout::read(&input);
        }
    }
}
