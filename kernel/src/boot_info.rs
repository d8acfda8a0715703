//! What the VMM told us at boot (PVH start info): the memory map, the workload bundle
//! module and the command line. Everything is copied out of guest memory once and parsed
//! by the checked parsers in `halcyon_boot::pvh`.

use core::ops::Range;
use halcyon_boot::pvh::{self, MemoryRegion, MemoryType, PvhError, StartInfo};

/// The boot page tables identity-map the first 4 GiB; boot structures must lie there.
const BOOT_MAPPED_LIMIT: u64 = 4 << 30;
const MAX_REGIONS: usize = pvh::MAX_MEMMAP_ENTRIES as usize;
/// Longest kernel command line we read.
const MAX_CMDLINE: usize = 4096;

pub struct BootInfo {
    regions: [MemoryRegion; MAX_REGIONS],
    region_count: usize,
    /// Physical range of the first PVH module (the workload bundle), if any.
    pub bundle: Option<Range<u64>>,
    /// Physical ranges the boot data occupies (start info, tables, command line).
    pub boot_data: [Range<u64>; 4],
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    /// Where the VMM put the ACPI RSDP (0: not given).
    pub rsdp_paddr: u64,
}

impl BootInfo {
    pub fn regions(&self) -> &[MemoryRegion] {
        &self.regions[..self.region_count]
    }

    /// The kernel command line (QEMU `-append`); empty when absent or not UTF-8.
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    pub fn ram(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.regions().iter().filter(|r| r.kind == MemoryType::Ram).map(|r| r.start..r.end())
    }
}

#[derive(Debug)]
pub enum BootInfoError {
    Pvh(PvhError),
    /// A structure lies outside the memory the boot page tables map.
    OutOfRange(&'static str),
}

impl From<PvhError> for BootInfoError {
    fn from(e: PvhError) -> Self {
        BootInfoError::Pvh(e)
    }
}

impl core::fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootInfoError::Pvh(e) => write!(f, "{e}"),
            BootInfoError::OutOfRange(what) => write!(f, "PVH {what} lies outside low memory"),
        }
    }
}

/// Copies `len` bytes at physical `paddr` into `out` after checking the range is mapped.
fn copy_physical(paddr: u64, out: &mut [u8], what: &'static str) -> Result<(), BootInfoError> {
    let end = paddr.checked_add(out.len() as u64).ok_or(BootInfoError::OutOfRange(what))?;
    if paddr == 0 || end > BOOT_MAPPED_LIMIT {
        return Err(BootInfoError::OutOfRange(what));
    }
    // Volatile byte reads, because the memory is outside the Rust object model.
    for (i, byte) in out.iter_mut().enumerate() {
        // SAFETY: `paddr..end` is non-null and below 4 GiB, which the boot page tables
        // identity-map; the VMM placed the structure there and nothing else writes it
        // during boot; `i < out.len()` keeps the read inside that range.
        *byte = unsafe { (paddr as *const u8).add(i).read_volatile() };
    }
    Ok(())
}

/// Reads the start info at `start_info_paddr` (what the PVH entry received in %ebx).
pub fn read(start_info_paddr: u64) -> Result<BootInfo, BootInfoError> {
    let mut raw = [0u8; pvh::START_INFO_SIZE];
    copy_physical(start_info_paddr, &mut raw, "start info")?;
    let info = StartInfo::parse(&raw)?;

    let mut map = [0u8; MAX_REGIONS * pvh::MEMMAP_ENTRY_SIZE];
    let map = &mut map[..info.memmap_len()];
    copy_physical(info.memmap_paddr, map, "memory map")?;
    let mut regions = [MemoryRegion { start: 0, size: 0, kind: MemoryType::Reserved }; MAX_REGIONS];
    let mut region_count = 0;
    for region in pvh::parse_memory_map(map) {
        regions[region_count] = region?;
        region_count += 1;
    }

    let mut bundle = None;
    let mut modlist_range = 0..0;
    if info.nr_modules > 0 {
        let mut modules = [0u8; pvh::MAX_MODULES as usize * pvh::MODLIST_ENTRY_SIZE];
        let modules = &mut modules[..info.modlist_len()];
        copy_physical(info.modlist_paddr, modules, "module list")?;
        modlist_range = info.modlist_paddr..info.modlist_paddr + modules.len() as u64;
        let first = pvh::parse_modules(modules).next().transpose()?;
        bundle = first.map(|m| m.paddr..m.paddr + m.size);
    }

    let mut cmdline_bytes = [0u8; MAX_CMDLINE];
    let mut cmdline_len = 0;
    let cmdline = if info.cmdline_paddr != 0 {
        copy_physical(info.cmdline_paddr, &mut cmdline_bytes, "command line")?;
        cmdline_len = cmdline_bytes.iter().position(|b| *b == 0).unwrap_or(MAX_CMDLINE);
        info.cmdline_paddr..info.cmdline_paddr.saturating_add(MAX_CMDLINE as u64)
    } else {
        0..0
    };
    Ok(BootInfo {
        regions,
        region_count,
        bundle,
        boot_data: [
            start_info_paddr..start_info_paddr + pvh::START_INFO_SIZE as u64,
            info.memmap_paddr..info.memmap_paddr + info.memmap_len() as u64,
            modlist_range,
            cmdline,
        ],
        cmdline: cmdline_bytes,
        cmdline_len,
        rsdp_paddr: info.rsdp_paddr,
    })
}
