//! The PVH boot ABI's start-of-day structures, as the VMM hands them to the kernel.
//!
//! Source: Xen `xen/include/public/arch-x86/hvm/start_info.h` (the "PVH boot ABI",
//! also implemented by QEMU's `pvh.bin` option ROM and Firecracker/Cloud Hypervisor).
//! The VMM is outside the trust boundary on SEV-SNP and TDX, so everything here is parsed
//! from a copied byte buffer through checked constructors: bad lengths, counts or
//! versions are errors, and no accessor can panic afterwards.

/// `hvm_start_info.magic`: "xEn3" with the top bit of 'E' cleared.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Size of `struct hvm_start_info` for version 1 (which adds the memory map).
pub const START_INFO_SIZE: usize = 56;
/// Size of `struct hvm_modlist_entry`.
pub const MODLIST_ENTRY_SIZE: usize = 32;
/// Size of `struct hvm_memmap_table_entry`.
pub const MEMMAP_ENTRY_SIZE: usize = 24;
/// More entries than any sane VMM produces; bounds what the kernel copies.
pub const MAX_MEMMAP_ENTRIES: u32 = 128;
/// Halcyon takes one module (the workload bundle); a few more are tolerated and ignored.
pub const MAX_MODULES: u32 = 16;

/// `XEN_HVM_MEMMAP_TYPE_*` from start_info.h (they follow the E820 numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryType {
    Ram,
    Reserved,
    Acpi,
    Nvs,
    Unusable,
    Disabled,
    Persistent,
    Other(u32),
}

impl From<u32> for MemoryType {
    fn from(raw: u32) -> Self {
        match raw {
            1 => Self::Ram,
            2 => Self::Reserved,
            3 => Self::Acpi,
            4 => Self::Nvs,
            5 => Self::Unusable,
            6 => Self::Disabled,
            7 => Self::Persistent,
            other => Self::Other(other),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvhError {
    /// The buffer is shorter than the structure it should hold.
    Truncated,
    /// `magic` is not [`START_INFO_MAGIC`].
    BadMagic(u32),
    /// Version 0 has no memory map, which Halcyon needs.
    UnsupportedVersion(u32),
    /// A count is larger than the kernel is willing to copy.
    TooMany { what: &'static str, count: u32 },
    /// A region's end overflows the address space.
    Overflow,
}

impl core::fmt::Display for PvhError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => write!(f, "PVH structure truncated"),
            Self::BadMagic(m) => write!(f, "PVH start info has bad magic {m:#x}"),
            Self::UnsupportedVersion(v) => write!(f, "PVH start info version {v} has no memory map"),
            Self::TooMany { what, count } => write!(f, "PVH start info lists {count} {what}"),
            Self::Overflow => write!(f, "PVH region wraps around the address space"),
        }
    }
}

impl core::error::Error for PvhError {}

fn u32_at(bytes: &[u8], offset: usize) -> Result<u32, PvhError> {
    let field = bytes.get(offset..offset + 4).ok_or(PvhError::Truncated)?;
    let mut raw = [0u8; 4];
    raw.copy_from_slice(field);
    Ok(u32::from_le_bytes(raw))
}

fn u64_at(bytes: &[u8], offset: usize) -> Result<u64, PvhError> {
    let field = bytes.get(offset..offset + 8).ok_or(PvhError::Truncated)?;
    let mut raw = [0u8; 8];
    raw.copy_from_slice(field);
    Ok(u64::from_le_bytes(raw))
}

/// `struct hvm_start_info` (version 1), validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    pub version: u32,
    pub flags: u32,
    pub nr_modules: u32,
    pub modlist_paddr: u64,
    pub cmdline_paddr: u64,
    pub rsdp_paddr: u64,
    pub memmap_paddr: u64,
    pub memmap_entries: u32,
}

impl StartInfo {
    /// Parses the first [`START_INFO_SIZE`] bytes at the start info address.
    pub fn parse(bytes: &[u8]) -> Result<Self, PvhError> {
        if bytes.len() < START_INFO_SIZE {
            return Err(PvhError::Truncated);
        }
        let magic = u32_at(bytes, 0)?;
        if magic != START_INFO_MAGIC {
            return Err(PvhError::BadMagic(magic));
        }
        let version = u32_at(bytes, 4)?;
        if version < 1 {
            return Err(PvhError::UnsupportedVersion(version));
        }
        let info = Self {
            version,
            flags: u32_at(bytes, 8)?,
            nr_modules: u32_at(bytes, 12)?,
            modlist_paddr: u64_at(bytes, 16)?,
            cmdline_paddr: u64_at(bytes, 24)?,
            rsdp_paddr: u64_at(bytes, 32)?,
            memmap_paddr: u64_at(bytes, 40)?,
            memmap_entries: u32_at(bytes, 48)?,
        };
        if info.memmap_entries > MAX_MEMMAP_ENTRIES {
            return Err(PvhError::TooMany { what: "memory map entries", count: info.memmap_entries });
        }
        if info.nr_modules > MAX_MODULES {
            return Err(PvhError::TooMany { what: "modules", count: info.nr_modules });
        }
        Ok(info)
    }

    /// Bytes the memory map occupies at `memmap_paddr`.
    pub fn memmap_len(&self) -> usize {
        self.memmap_entries as usize * MEMMAP_ENTRY_SIZE
    }

    /// Bytes the module list occupies at `modlist_paddr`.
    pub fn modlist_len(&self) -> usize {
        self.nr_modules as usize * MODLIST_ENTRY_SIZE
    }
}

/// One `struct hvm_memmap_table_entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    pub start: u64,
    pub size: u64,
    pub kind: MemoryType,
}

impl MemoryRegion {
    /// Exclusive end address; construction guarantees it does not overflow.
    pub fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// Parses a copied memory map of `entries` entries.
pub fn parse_memory_map(
    bytes: &[u8],
) -> impl Iterator<Item = Result<MemoryRegion, PvhError>> + '_ {
    bytes.chunks(MEMMAP_ENTRY_SIZE).map(|entry| {
        if entry.len() != MEMMAP_ENTRY_SIZE {
            return Err(PvhError::Truncated);
        }
        let start = u64_at(entry, 0)?;
        let size = u64_at(entry, 8)?;
        start.checked_add(size).ok_or(PvhError::Overflow)?;
        Ok(MemoryRegion { start, size, kind: MemoryType::from(u32_at(entry, 16)?) })
    })
}

/// One `struct hvm_modlist_entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    pub paddr: u64,
    pub size: u64,
    pub cmdline_paddr: u64,
}

/// Parses a copied module list.
pub fn parse_modules(bytes: &[u8]) -> impl Iterator<Item = Result<Module, PvhError>> + '_ {
    bytes.chunks(MODLIST_ENTRY_SIZE).map(|entry| {
        if entry.len() != MODLIST_ENTRY_SIZE {
            return Err(PvhError::Truncated);
        }
        let paddr = u64_at(entry, 0)?;
        let size = u64_at(entry, 8)?;
        paddr.checked_add(size).ok_or(PvhError::Overflow)?;
        Ok(Module { paddr, size, cmdline_paddr: u64_at(entry, 16)? })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start_info(version: u32, modules: u32, entries: u32) -> [u8; START_INFO_SIZE] {
        let mut b = [0u8; START_INFO_SIZE];
        b[0..4].copy_from_slice(&START_INFO_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&version.to_le_bytes());
        b[12..16].copy_from_slice(&modules.to_le_bytes());
        b[16..24].copy_from_slice(&0x9000u64.to_le_bytes());
        b[40..48].copy_from_slice(&0xa000u64.to_le_bytes());
        b[48..52].copy_from_slice(&entries.to_le_bytes());
        b
    }

    #[test]
    fn parses_version_1() {
        let info = StartInfo::parse(&start_info(1, 1, 3)).unwrap();
        assert_eq!(info.nr_modules, 1);
        assert_eq!(info.modlist_paddr, 0x9000);
        assert_eq!(info.memmap_paddr, 0xa000);
        assert_eq!(info.memmap_len(), 3 * MEMMAP_ENTRY_SIZE);
    }

    #[test]
    fn rejects_bad_input() {
        let good = start_info(1, 1, 3);
        for len in 0..START_INFO_SIZE {
            assert_eq!(StartInfo::parse(&good[..len]), Err(PvhError::Truncated));
        }
        let mut bad = good;
        bad[0] ^= 1;
        assert!(matches!(StartInfo::parse(&bad), Err(PvhError::BadMagic(_))));
        assert_eq!(StartInfo::parse(&start_info(0, 1, 3)), Err(PvhError::UnsupportedVersion(0)));
        assert!(matches!(
            StartInfo::parse(&start_info(1, 1, MAX_MEMMAP_ENTRIES + 1)),
            Err(PvhError::TooMany { .. })
        ));
        assert!(matches!(
            StartInfo::parse(&start_info(1, MAX_MODULES + 1, 3)),
            Err(PvhError::TooMany { .. })
        ));
    }

    #[test]
    fn memory_map_entries() {
        let mut map = [0u8; 2 * MEMMAP_ENTRY_SIZE];
        map[8..16].copy_from_slice(&0x9fc00u64.to_le_bytes());
        map[16..20].copy_from_slice(&1u32.to_le_bytes());
        map[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        map[32..40].copy_from_slice(&2u64.to_le_bytes());
        let regions: Vec<_> = parse_memory_map(&map).collect();
        assert_eq!(regions[0], Ok(MemoryRegion { start: 0, size: 0x9fc00, kind: MemoryType::Ram }));
        assert_eq!(regions[1], Err(PvhError::Overflow));
        assert!(parse_memory_map(&map[..30]).any(|r| r == Err(PvhError::Truncated)));
    }
}

#[cfg(test)]
mod mutation_tests {
    use super::*;

    /// Seeded byte mutations of valid PVH structures: the parsers return values or
    /// errors, never panic (the VMM is untrusted on confidential platforms).
    #[test]
    fn mutated_start_info_and_tables_never_panic() {
        let mut valid = [0u8; START_INFO_SIZE + 3 * MEMMAP_ENTRY_SIZE];
        valid[0..4].copy_from_slice(&START_INFO_MAGIC.to_le_bytes());
        valid[4..8].copy_from_slice(&1u32.to_le_bytes());
        valid[48..52].copy_from_slice(&3u32.to_le_bytes());
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut input = valid;
            for k in 0..4 {
                let at = ((state >> (k * 16)) as usize) % input.len();
                input[at] = (state >> (k * 8 + 3)) as u8;
            }
            let cut = (state as usize) % (input.len() + 1);
            let bytes = &input[..cut];
            if let Ok(info) = StartInfo::parse(bytes) {
                assert!(info.memmap_entries <= MAX_MEMMAP_ENTRIES);
                assert!(info.nr_modules <= MAX_MODULES);
            }
            let tail = bytes.get(START_INFO_SIZE..).unwrap_or(&[]);
            for region in parse_memory_map(tail).flatten() {
                assert!(region.start.checked_add(region.size).is_some());
                let _ = region.end();
            }
            for module in parse_modules(tail).flatten() {
                assert!(module.paddr.checked_add(module.size).is_some());
            }
        }
    }
}
