//! QEMU's firmware configuration device (fw_cfg): the selectors, the file directory and the
//! `etc/e820` memory map, as the kernel reads them when it was booted as firmware (no PVH
//! start info).
//!
//! Source: QEMU `docs/specs/fw_cfg.rst` ("QEMU Firmware Configuration (fw_cfg) Device":
//! selector register at I/O port 0x510, data register at 0x511, DMA address at 0x514; items
//! 0x0000 signature "QEMU", 0x0001 feature bitmap, 0x0019 file directory, whose integers are
//! big-endian) and `include/standard-headers/linux/qemu_fw_cfg.h` (`struct fw_cfg_file`);
//! `etc/e820` holds `struct e820_entry` (QEMU `hw/i386/e820_memory_layout.h`: u64 address,
//! u64 length, u32 type, packed, little-endian).
//!
//! The host is outside the trust boundary on SEV-SNP and TDX, so every item is parsed from a
//! copied buffer through checked constructors; no accessor panics afterwards.

use crate::pvh::{MemoryRegion, MemoryType};
use zerocopy::byteorder::big_endian::{U16, U32, U64};
use zerocopy::byteorder::little_endian::{U32 as LeU32, U64 as LeU64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// I/O port of the selector register (16-bit writes).
pub const FW_CFG_PORT_SEL: u16 = 0x510;
/// I/O port of the data register (8-bit reads).
pub const FW_CFG_PORT_DATA: u16 = 0x511;
/// I/O port of the DMA address register (64-bit big-endian: high half at 0x514, low half at
/// 0x518; writing the low half starts the transfer).
pub const FW_CFG_PORT_DMA: u16 = 0x514;
/// Bit 1 of [`FW_CFG_ID`]: the DMA interface is present.
pub const FW_CFG_VERSION_DMA: u32 = 1 << 1;
/// `FWCfgDmaAccess.control` bits (fw_cfg.rst, "FW_CFG_DMA_ADDRESS").
pub const FW_CFG_DMA_CTL_ERROR: u32 = 0x01;
pub const FW_CFG_DMA_CTL_READ: u32 = 0x02;
pub const FW_CFG_DMA_CTL_SKIP: u32 = 0x04;
pub const FW_CFG_DMA_CTL_SELECT: u32 = 0x08;
pub const FW_CFG_DMA_CTL_WRITE: u32 = 0x10;
/// Item 0x0000: reads "QEMU".
pub const FW_CFG_SIGNATURE: u16 = 0x0000;
/// Item 0x0001: feature bitmap (bit 0 traditional interface, bit 1 DMA).
pub const FW_CFG_ID: u16 = 0x0001;
/// Item 0x0019: the file directory.
pub const FW_CFG_FILE_DIR: u16 = 0x0019;
/// What [`FW_CFG_SIGNATURE`] reads.
pub const FW_CFG_SIGNATURE_BYTES: [u8; 4] = *b"QEMU";
/// Bytes of a `struct fw_cfg_file` name field.
pub const FW_CFG_MAX_FILE_PATH: usize = 56;
/// Size of one directory entry (`struct fw_cfg_file`).
pub const FW_CFG_FILE_SIZE: usize = 64;
/// Size of one `struct e820_entry`.
pub const E820_ENTRY_SIZE: usize = 20;
/// More directory entries than any QEMU machine has; bounds what the kernel reads.
pub const MAX_DIR_ENTRIES: u32 = 4096;

/// The file QEMU keeps the memory map in.
pub const E820_FILE: &str = "etc/e820";
/// The workload bundle (`halcyon run --boot firmware`: `-fw_cfg name=opt/halcyon/bundle,file=...`).
pub const BUNDLE_FILE: &str = "opt/halcyon/bundle";
/// The kernel command line (`-fw_cfg name=opt/halcyon/cmdline,file=...`).
pub const CMDLINE_FILE: &str = "opt/halcyon/cmdline";

/// `struct fw_cfg_file` (qemu_fw_cfg.h; fw_cfg.rst "File Directory"): size and select are
/// big-endian, the name is NUL-terminated.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FwCfgFile {
    pub size: U32,
    pub select: U16,
    pub reserved: U16,
    pub name: [u8; FW_CFG_MAX_FILE_PATH],
}

/// `FWCfgDmaAccess` (fw_cfg.rst, "FW_CFG_DMA_ADDRESS"): all fields big-endian; the selector
/// goes in the top 16 bits of `control`; the device clears `control` (or leaves
/// [`FW_CFG_DMA_CTL_ERROR`]) when the transfer is done.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FwCfgDmaAccess {
    pub control: U32,
    pub length: U32,
    pub address: U64,
}

impl FwCfgDmaAccess {
    /// A request to select `item` and read `length` bytes of it to guest-physical `address`.
    pub fn select_and_read(item: u16, length: u32, address: u64) -> Self {
        Self {
            control: ((u32::from(item) << 16) | FW_CFG_DMA_CTL_SELECT | FW_CFG_DMA_CTL_READ).into(),
            length: length.into(),
            address: address.into(),
        }
    }

    /// A request to read `length` more bytes of the selected item to guest-physical `address`.
    pub fn read(length: u32, address: u64) -> Self {
        Self { control: FW_CFG_DMA_CTL_READ.into(), length: length.into(), address: address.into() }
    }
}

/// `struct e820_entry` (QEMU e820_memory_layout.h), packed, little-endian.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct E820Entry {
    pub address: LeU64,
    pub length: LeU64,
    pub entry_type: LeU32,
}

const _: () = {
    assert!(core::mem::size_of::<FwCfgFile>() == FW_CFG_FILE_SIZE);
    assert!(core::mem::offset_of!(FwCfgFile, select) == 4);
    assert!(core::mem::offset_of!(FwCfgFile, name) == 8);
    assert!(core::mem::size_of::<E820Entry>() == E820_ENTRY_SIZE);
    assert!(core::mem::size_of::<FwCfgDmaAccess>() == 16);
    assert!(core::mem::offset_of!(FwCfgDmaAccess, address) == 8);
    assert!(core::mem::offset_of!(E820Entry, entry_type) == 16);
};

/// Errors of this module's parsers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FwCfgError {
    /// The signature item does not read "QEMU": no fw_cfg device.
    NoDevice,
    /// A buffer is shorter than the structure it should hold, or not a whole number of entries.
    Truncated,
    /// The directory claims more entries than [`MAX_DIR_ENTRIES`].
    TooManyFiles(u32),
    /// A file name is not NUL-terminated, or not UTF-8.
    BadName,
    /// A reserved field is not zero.
    Reserved,
    /// A memory region's end overflows the address space.
    Overflow,
    /// A DMA transfer reported an error or did not complete.
    Dma,
}

impl core::fmt::Display for FwCfgError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoDevice => write!(f, "no QEMU fw_cfg device (signature mismatch)"),
            Self::Truncated => write!(f, "fw_cfg item truncated"),
            Self::TooManyFiles(n) => write!(f, "fw_cfg directory lists {n} files"),
            Self::BadName => write!(f, "fw_cfg file name is not a NUL-terminated UTF-8 string"),
            Self::Reserved => write!(f, "fw_cfg directory entry has a non-zero reserved field"),
            Self::Overflow => write!(f, "e820 region wraps around the address space"),
            Self::Dma => write!(f, "fw_cfg DMA transfer failed"),
        }
    }
}

impl core::error::Error for FwCfgError {}

/// Checks the 4 bytes read from [`FW_CFG_SIGNATURE`].
pub fn check_signature(bytes: &[u8]) -> Result<(), FwCfgError> {
    if bytes == FW_CFG_SIGNATURE_BYTES {
        Ok(())
    } else {
        Err(FwCfgError::NoDevice)
    }
}

/// The directory's entry count (the first 4 bytes of [`FW_CFG_FILE_DIR`], big-endian).
pub fn parse_dir_count(bytes: &[u8]) -> Result<u32, FwCfgError> {
    let raw: [u8; 4] = bytes.try_into().map_err(|_| FwCfgError::Truncated)?;
    let count = u32::from_be_bytes(raw);
    if count > MAX_DIR_ENTRIES {
        return Err(FwCfgError::TooManyFiles(count));
    }
    Ok(count)
}

/// One validated directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub size: u32,
    pub select: u16,
    name: [u8; FW_CFG_MAX_FILE_PATH],
    name_len: usize,
}

impl FileEntry {
    /// Parses one 64-byte `struct fw_cfg_file`.
    pub fn parse(bytes: &[u8]) -> Result<Self, FwCfgError> {
        let raw = FwCfgFile::read_from_bytes(bytes).map_err(|_| FwCfgError::Truncated)?;
        if raw.reserved.get() != 0 {
            return Err(FwCfgError::Reserved);
        }
        let name_len = raw.name.iter().position(|b| *b == 0).ok_or(FwCfgError::BadName)?;
        core::str::from_utf8(&raw.name[..name_len]).map_err(|_| FwCfgError::BadName)?;
        Ok(Self { size: raw.size.get(), select: raw.select.get(), name: raw.name, name_len })
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        // `parse` checked that these bytes are UTF-8; `name_len` is at most 56.
        self.name.get(..self.name_len).and_then(|n| core::str::from_utf8(n).ok()).unwrap_or("")
    }
}

/// Parses a copied `etc/e820` file into memory regions.
pub fn parse_e820(bytes: &[u8]) -> Result<impl Iterator<Item = MemoryRegion> + '_, FwCfgError> {
    if !bytes.len().is_multiple_of(E820_ENTRY_SIZE) {
        return Err(FwCfgError::Truncated);
    }
    let entries = bytes.as_chunks::<E820_ENTRY_SIZE>().0;
    for chunk in entries {
        let e = E820Entry::read_from_bytes(chunk.as_slice()).map_err(|_| FwCfgError::Truncated)?;
        e.address.get().checked_add(e.length.get()).ok_or(FwCfgError::Overflow)?;
    }
    Ok(entries.iter().filter_map(|chunk| {
        let e = E820Entry::read_from_bytes(chunk.as_slice()).ok()?;
        Some(MemoryRegion { start: e.address.get(), size: e.length.get(), kind: MemoryType::from(e.entry_type.get()) })
    }))
}

/// Where to copy a `size`-byte file the host gave (the workload bundle): the highest
/// page-aligned address at which it fits in a RAM region of `regions`, inside `low..high`
/// (low memory and what the boot page tables map) and outside `avoid` (the kernel image).
pub fn place_above(regions: &[MemoryRegion], avoid: core::ops::Range<u64>, low: u64, high: u64, size: u64) -> Option<u64> {
    const PAGE: u64 = 4096;
    let avoid = avoid.start & !(PAGE - 1)..avoid.end.checked_next_multiple_of(PAGE).unwrap_or(u64::MAX);
    let mut best = None;
    for r in regions.iter().filter(|r| r.kind == MemoryType::Ram) {
        let start = r.start.max(low);
        let end = r.end().min(high);
        // The parts of the region below and above `avoid`.
        for (lo, hi) in [(start, end.min(avoid.start)), (start.max(avoid.end), end)] {
            let Some(at) = hi.checked_sub(size).map(|a| a & !(PAGE - 1)) else { continue };
            if hi > lo && at >= lo && best.is_none_or(|b| at > b) {
                best = Some(at);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovmf::testing::Mutator;

    fn file(size: u32, select: u16, name: &str) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..4].copy_from_slice(&size.to_be_bytes());
        out[4..6].copy_from_slice(&select.to_be_bytes());
        out[8..8 + name.len()].copy_from_slice(name.as_bytes());
        out
    }

    fn e820(entries: &[(u64, u64, u32)]) -> Vec<u8> {
        entries
            .iter()
            .flat_map(|(a, l, t)| [a.to_le_bytes().as_slice(), &l.to_le_bytes(), &t.to_le_bytes()].concat())
            .collect()
    }

    #[test]
    fn signature_and_count() {
        assert_eq!(check_signature(b"QEMU"), Ok(()));
        assert_eq!(check_signature(b"\xff\xff\xff\xff"), Err(FwCfgError::NoDevice));
        assert_eq!(parse_dir_count(&[0, 0, 0, 0x11]), Ok(17));
        assert_eq!(parse_dir_count(&[0, 0, 0x10, 0x01]), Err(FwCfgError::TooManyFiles(4097)));
        assert_eq!(parse_dir_count(&[0, 0, 1]), Err(FwCfgError::Truncated));
    }

    #[test]
    fn directory_entries_are_big_endian() {
        let e = FileEntry::parse(&file(0x1234, 0x0020, "opt/halcyon/bundle")).unwrap();
        assert_eq!((e.size, e.select, e.name()), (0x1234, 0x20, BUNDLE_FILE));
        let full = "x".repeat(55);
        assert_eq!(FileEntry::parse(&file(1, 0x21, &full)).unwrap().name(), full);
        let mut unterminated = file(1, 0x21, "");
        unterminated[8..].fill(b'a');
        assert_eq!(FileEntry::parse(&unterminated), Err(FwCfgError::BadName));
        let mut reserved = file(1, 0x21, "etc/e820");
        reserved[7] = 1;
        assert_eq!(FileEntry::parse(&reserved), Err(FwCfgError::Reserved));
        let mut utf8 = file(1, 0x21, "etc");
        utf8[8] = 0xff;
        assert_eq!(FileEntry::parse(&utf8), Err(FwCfgError::BadName));
        assert_eq!(FileEntry::parse(&[0; 63]), Err(FwCfgError::Truncated));
    }

    #[test]
    fn dma_requests_are_big_endian() {
        let r = FwCfgDmaAccess::select_and_read(0x0020, 0x1234, 0x0000_0001_0203_0405);
        assert_eq!(r.as_bytes(), &[0, 0x20, 0, 0x0a, 0, 0, 0x12, 0x34, 0, 0, 0, 1, 2, 3, 4, 5]);
        assert_eq!(&FwCfgDmaAccess::read(64, 0x1000).as_bytes()[..8], &[0, 0, 0, 2, 0, 0, 0, 64]);
    }

    #[test]
    fn e820_as_qemu_writes_it() {
        // microvm with 64 MiB: one RAM entry (QEMU hw/i386/microvm.c, e820_add_entry).
        let bytes = e820(&[(0, 64 << 20, 1), (0xfeff_c000, 0x4000, 2)]);
        assert_eq!(bytes.len(), 40);
        let regions: Vec<_> = parse_e820(&bytes).unwrap().collect();
        assert_eq!(
            regions,
            [
                MemoryRegion { start: 0, size: 64 << 20, kind: MemoryType::Ram },
                MemoryRegion { start: 0xfeff_c000, size: 0x4000, kind: MemoryType::Reserved },
            ]
        );
        assert!(matches!(parse_e820(&bytes[..39]), Err(FwCfgError::Truncated)));
        assert!(matches!(parse_e820(&e820(&[(u64::MAX, 2, 1)])), Err(FwCfgError::Overflow)));
        assert_eq!(parse_e820(&[]).unwrap().count(), 0);
    }

    #[test]
    fn bundles_go_to_the_top_of_ram_below_the_limit() {
        let ram = |start, size| MemoryRegion { start, size, kind: MemoryType::Ram };
        let kernel = 0x10_0000..0x2b_f123;
        let (low, high) = (1 << 20, 1 << 32);
        // microvm, 64 MiB: the top of RAM, page-aligned down.
        let microvm = [ram(0, 64 << 20)];
        assert_eq!(place_above(&microvm, kernel.clone(), low, high, 86_866), Some((64 << 20) - 0x16000));
        // Only what lies above the kernel and below the limit counts; reserved ranges never do.
        assert_eq!(place_above(&microvm, kernel.clone(), low, high, (64 << 20) - 0x2c_0000), Some(0x2c_0000));
        assert_eq!(place_above(&microvm, kernel.clone(), low, high, (64 << 20) - 0x2c_0000 + 1), None);
        let reserved = [MemoryRegion { start: 0x400_0000, size: 1 << 30, kind: MemoryType::Reserved }];
        assert_eq!(place_above(&reserved, kernel.clone(), low, high, 4096), None);
        // 6 GiB on a PC: RAM below 3 GiB and above 4 GiB; the bundle stays below 4 GiB.
        let pc = [ram(0, 0x9_fc00), ram(1 << 20, (3 << 30) - (1 << 20)), ram(1 << 32, 3 << 30)];
        assert_eq!(place_above(&pc, kernel.clone(), low, high, 0x1000), Some((3 << 30) - 0x1000));
        // Low memory is never used, even when it is the only room left.
        assert_eq!(place_above(&[ram(0, 0x9_fc00)], kernel.clone(), low, high, 0x1000), None);
        // Room below the kernel counts too.
        assert_eq!(place_above(&[ram(0x20_0000, 0x10_0000)], 0x28_0000..0x30_0000, low, high, 0x8000), Some(0x27_8000));
        // Hostile sizes never overflow.
        assert_eq!(place_above(&microvm, kernel.clone(), low, high, u64::MAX), None);
        assert_eq!(place_above(&[ram(u64::MAX - 0x1000, 0x1000)], kernel, low, u64::MAX, 0x1000), None);
    }

    #[test]
    fn mutated_items_never_panic() {
        let mut m = Mutator::new(0xf00);
        let dir = file(100, 0x22, "opt/halcyon/cmdline");
        let map = e820(&[(0, 0x9fc00, 1), (0x10_0000, 0x3f0_0000, 1), (0xfffc_0000, 0x4_0000, 2)]);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let input = m.mutate_tail(&dir, 64);
            if let Ok(e) = FileEntry::parse(&input) {
                accepted += 1;
                assert!(e.name().len() < FW_CFG_MAX_FILE_PATH);
            }
            let input = m.mutate_tail(&map, map.len());
            if let Ok(regions) = parse_e820(&input) {
                for r in regions {
                    let _ = r.end();
                }
            }
            let _ = parse_dir_count(&input[..input.len().min(4)]);
        }
        assert!(accepted > 0 && accepted < 20_000, "accepted {accepted}");
    }
}
