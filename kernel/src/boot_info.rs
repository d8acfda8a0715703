//! What the VMM told us at boot: the memory map, the workload bundle and the command line.
//! Booted through PVH (`-kernel`), they come from the PVH start info; booted as firmware
//! (`-bios halcyon.fd`, start info 0), from QEMU's fw_cfg files `etc/e820`,
//! `opt/halcyon/bundle` and `opt/halcyon/cmdline`. Everything is copied out once and parsed
//! by the checked parsers in `halcyon_boot::pvh` and `halcyon_boot::fw_cfg`.

use crate::devices::fw_cfg::FwCfg;
use core::ops::Range;
use halcyon_boot::fw_cfg::{self, FwCfgError};
use halcyon_boot::pvh::{self, MemoryRegion, MemoryType, PvhError, StartInfo};

/// The boot page tables identity-map the first 4 GiB; boot structures must lie there.
const BOOT_MAPPED_LIMIT: u64 = 4 << 30;
const MAX_REGIONS: usize = pvh::MAX_MEMMAP_ENTRIES as usize;
/// The real-mode area, BIOS data and ROMs: never used for boot data (as `memory` never hands it out).
const LOW_MEMORY_END: u64 = 1 << 20;
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
    /// Booted as firmware, and fw_cfg (the only other source) failed.
    FwCfg(FwCfgError),
    /// Booted as firmware, and fw_cfg has no such file.
    FwCfgMissing(&'static str),
    /// A fw_cfg file is larger than the kernel takes.
    FwCfgTooLarge { file: &'static str, size: u32 },
    /// No RAM below 4 GiB (outside the kernel and low memory) holds the bundle.
    NoRoomForBundle { size: u32 },
}

impl From<FwCfgError> for BootInfoError {
    fn from(e: FwCfgError) -> Self {
        BootInfoError::FwCfg(e)
    }
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
            BootInfoError::FwCfg(e) => write!(f, "booted as firmware, but {e}"),
            BootInfoError::FwCfgMissing(file) => write!(f, "booted as firmware, but fw_cfg has no {file}"),
            BootInfoError::FwCfgTooLarge { file, size } => write!(f, "fw_cfg {file} is too large ({size} bytes)"),
            BootInfoError::NoRoomForBundle { size } => {
                write!(f, "no RAM below 4 GiB holds the {size}-byte workload bundle")
            }
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

/// Reads the boot information: the start info at `start_info_paddr` (what the PVH entry
/// received in %ebx), or fw_cfg when that is 0 (the firmware reset path passes 0).
pub fn read(start_info_paddr: u64) -> Result<BootInfo, BootInfoError> {
    if start_info_paddr == 0 {
        return read_fw_cfg();
    }
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

/// The boot information from fw_cfg, for a firmware boot: the memory map from `etc/e820`,
/// the command line from `opt/halcyon/cmdline` and the bundle from `opt/halcyon/bundle`, copied
/// to the top of the highest RAM range below 4 GiB that holds it (outside low memory and the
/// kernel), where [`crate::memory::init`] then keeps it out of every allocator.
fn read_fw_cfg() -> Result<BootInfo, BootInfoError> {
    let device = FwCfg::probe()?;
    let [e820, cmdline_file, bundle_file] =
        device.find([fw_cfg::E820_FILE, fw_cfg::CMDLINE_FILE, fw_cfg::BUNDLE_FILE])?;
    let e820 = e820.ok_or(BootInfoError::FwCfgMissing(fw_cfg::E820_FILE))?;
    let mut map = [0u8; MAX_REGIONS * fw_cfg::E820_ENTRY_SIZE];
    let map = map
        .get_mut(..e820.size as usize)
        .ok_or(BootInfoError::FwCfgTooLarge { file: fw_cfg::E820_FILE, size: e820.size })?;
    device.read_file(&e820, map)?;
    let mut regions = [MemoryRegion { start: 0, size: 0, kind: MemoryType::Reserved }; MAX_REGIONS];
    let mut region_count = 0;
    // `map` holds at most MAX_REGIONS entries, so the zip drops none.
    for (slot, region) in regions.iter_mut().zip(fw_cfg::parse_e820(map)?) {
        *slot = region;
        region_count += 1;
    }

    let mut cmdline = [0u8; MAX_CMDLINE];
    let mut cmdline_len = 0;
    if let Some(file) = cmdline_file {
        let bytes = cmdline
            .get_mut(..file.size as usize)
            .ok_or(BootInfoError::FwCfgTooLarge { file: fw_cfg::CMDLINE_FILE, size: file.size })?;
        device.read_file(&file, bytes)?;
        cmdline_len = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    }

    let mut bundle = None;
    if let Some(file) = bundle_file {
        let kernel = crate::arch::paging::kernel_layout().image();
        let at = fw_cfg::place_above(&regions[..region_count], kernel, LOW_MEMORY_END, BOOT_MAPPED_LIMIT, u64::from(file.size))
            .ok_or(BootInfoError::NoRoomForBundle { size: file.size })?;
        let range = at..at + u64::from(file.size);
        // On a confidential VM this RAM is not validated or accepted yet (`memory::init`
        // does the rest of RAM later, without this range, which it keeps reserved).
        crate::platform::accept_memory(core::iter::once(at & !0xFFF..range.end.next_multiple_of(0x1000)));
        // SAFETY: `place_above` chose RAM below 4 GiB (identity-mapped by the boot page tables)
        // outside low memory and the kernel image; nothing uses it before `memory::init`, which
        // then reserves it. The slice is the exact range, written only here.
        let target = unsafe { core::slice::from_raw_parts_mut(at as *mut u8, file.size as usize) };
        device.read_file(&file, target)?;
        bundle = Some(range);
    }
    Ok(BootInfo {
        regions,
        region_count,
        bundle,
        boot_data: [0..0, 0..0, 0..0, 0..0],
        cmdline,
        cmdline_len,
        rsdp_paddr: 0,
    })
}
