//! PCI: configuration-space access, finding devices, and giving memory BARs addresses.
//!
//! Configuration space is reached through ECAM where the ACPI MCFG table gives it (QEMU
//! `microvm,pcie=on`, q35), else through the legacy 0xCF8/0xCFC ports (PCI Local Bus 3.0
//! §3.2.2.3.2). Every access goes through `arch::mmio` / `arch::port`, the funnels a
//! confidential-VM platform redirects to its paravirtual interface.
//!
//! Firmware-assigned BARs are kept. Nobody assigns them on `microvm` (no firmware runs),
//! so unassigned memory BARs get addresses from the window the host bridge forwards.
//!
//! The memory BARs of enabled devices are recorded ([`is_device_register`]): on a
//! confidential VM the #VC/#VE handler emulates a driver's MMIO access only inside them.
//! A BAR that overlaps RAM is refused.

use crate::arch::{mmio, port};
use crate::kprintln;
use alloc::vec::Vec;
use core::ops::Range;
use halcyon_hal::acpi::{self, EcamRegion, PhysicalReader, RootTable};
use halcyon_hal::ranges::RangeSet;
use spin::Mutex;
use virtio_drivers::transport::pci::bus::{BarInfo, Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, PciRoot};

/// PCI Local Bus 3.0 §3.2.2.3.2: CONFIG_ADDRESS and CONFIG_DATA.
const CONFIG_ADDRESS_PORT: u16 = 0xCF8;
const CONFIG_DATA_PORT: u16 = 0xCFC;
const CONFIG_ENABLE: u32 = 1 << 31;

/// QEMU `microvm` with `pcie=on` (include/hw/i386/microvm.h): ECAM at 0xE000_0000 for
/// buses 0-255, and the 32-bit MMIO window forwarded to the PCIe bus is the 512 MiB below
/// it. microvm describes both only in its DSDT's AML (QEMU 7.2 builds no MCFG for it), so
/// the kernel probes that address and accepts it only if QEMU's PCIe host bridge
/// (vendor 1B36, device 0008) answers as function 0:0.0.
const MICROVM_ECAM_BASE: u64 = 0xE000_0000;
const MICROVM_MMIO_WINDOW: Range<u64> = 0xC000_0000..0xE000_0000;
const QEMU_PCIE_HOST_BRIDGE: u32 = 0x0008_1B36;

/// Legacy BIOS area searched for the RSDP when the boot protocol does not give it
/// (ACPI 6.5 §5.2.5.1).
const BIOS_AREA: Range<u64> = 0xE_0000..0x10_0000;

#[derive(Clone, Copy)]
pub enum ConfigSpace {
    /// Memory-mapped (PCI Express Base 5.0 §7.2.2): 4 KiB per function.
    Ecam { base: u64, buses: (u8, u8) },
    /// Legacy configuration mechanism #1 through I/O ports (bus 0-255, offset < 256).
    Ports,
}

impl ConfigSpace {
    fn ecam_address(base: u64, f: DeviceFunction, offset: u8) -> u64 {
        base + (u64::from(f.bus) << 20) + (u64::from(f.device) << 15) + (u64::from(f.function) << 12) + u64::from(offset & 0xFC)
    }

    fn port_address(f: DeviceFunction, offset: u8) -> u32 {
        CONFIG_ENABLE | (u32::from(f.bus) << 16) | (u32::from(f.device) << 11) | (u32::from(f.function) << 8) | u32::from(offset & 0xFC)
    }

    fn covers(&self, f: DeviceFunction) -> bool {
        match self {
            ConfigSpace::Ecam { buses: (first, last), .. } => (*first..=*last).contains(&f.bus) && f.valid(),
            ConfigSpace::Ports => f.valid(),
        }
    }
}

impl ConfigurationAccess for ConfigSpace {
    fn read_word(&self, f: DeviceFunction, offset: u8) -> u32 {
        if !self.covers(f) {
            return u32::MAX; // what an absent function reads as
        }
        match *self {
            // SAFETY: the address lies in the ECAM region the MCFG (or the microvm layout)
            // describes, which the kernel identity-maps uncached below 4 GiB; it is aligned.
            ConfigSpace::Ecam { base, .. } => unsafe { mmio::read_u32(Self::ecam_address(base, f, offset)) },
            ConfigSpace::Ports => {
                port::write_u32(CONFIG_ADDRESS_PORT, Self::port_address(f, offset));
                port::read_u32(CONFIG_DATA_PORT)
            }
        }
    }

    fn write_word(&mut self, f: DeviceFunction, offset: u8, data: u32) {
        if !self.covers(f) {
            return;
        }
        match *self {
            // SAFETY: as in `read_word`; configuration registers are not RAM.
            ConfigSpace::Ecam { base, .. } => unsafe { mmio::write_u32(Self::ecam_address(base, f, offset), data) },
            ConfigSpace::Ports => {
                port::write_u32(CONFIG_ADDRESS_PORT, Self::port_address(f, offset));
                port::write_u32(CONFIG_DATA_PORT, data);
            }
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        *self
    }
}

/// Reads ACPI tables from identity-mapped low memory.
struct LowMemory;

impl PhysicalReader for LowMemory {
    fn read(&mut self, address: u64, len: usize) -> Option<Vec<u8>> {
        let end = address.checked_add(len as u64)?;
        // The tables live in RAM or firmware areas below 4 GiB; refuse anything else
        // (including page 0, which is unmapped).
        if address < 0x1000 || end > (4 << 30) {
            return None;
        }
        let mut out = Vec::new();
        out.try_reserve_exact(len).ok()?;
        for i in 0..len as u64 {
            // SAFETY: `address..end` is below 4 GiB and above page 0, which the kernel
            // identity-maps; the read is a copy, so a concurrent change cannot break it.
            out.push(unsafe { ((address + i) as *const u8).read_volatile() });
        }
        Some(out)
    }
}

fn find_rsdp(hint: u64) -> Option<RootTable> {
    let mut memory = LowMemory;
    if hint != 0 {
        return acpi::parse_rsdp(&memory.read(hint, acpi::RSDP_V2_SIZE)?).ok();
    }
    // On a confidential VM the legacy BIOS area is not validated or accepted memory (a TD
    // touching it ends, SEPT_VE_DISABLE), and no firmware put an RSDP there: do not scan.
    if crate::platform::memory_is_private() {
        return None;
    }
    (BIOS_AREA.start..BIOS_AREA.end).step_by(16).find_map(|at| {
        let head = memory.read(at, 8)?;
        if head != acpi::RSDP_SIGNATURE {
            return None;
        }
        let bytes = memory.read(at, acpi::RSDP_V2_SIZE).or_else(|| memory.read(at, acpi::RSDP_V1_SIZE))?;
        acpi::parse_rsdp(&bytes).ok()
    })
}

fn ecam_from_acpi(rsdp_hint: u64) -> Option<EcamRegion> {
    let root = find_rsdp(rsdp_hint)?;
    let mcfg = acpi::find_table(&mut LowMemory, root, *b"MCFG").ok()?;
    let regions = acpi::parse_mcfg(&mcfg).ok()?;
    // Segment 0 only; its ECAM must lie below 4 GiB, where the kernel maps MMIO.
    regions.into_iter().find(|r| r.segment == 0 && r.base.checked_add(r.size()).is_some_and(|end| end <= 4 << 30))
}

/// Whether anything answers the legacy configuration mechanism (the classic probe: the
/// address register reads back what was written).
fn legacy_ports_present() -> bool {
    port::write_u32(CONFIG_ADDRESS_PORT, CONFIG_ENABLE);
    port::read_u32(CONFIG_ADDRESS_PORT) == CONFIG_ENABLE
}

fn microvm_host_bridge_present() -> bool {
    let first = DeviceFunction { bus: 0, device: 0, function: 0 };
    // SAFETY: the address is below 4 GiB outside RAM (identity-mapped uncached); with no
    // device there the read returns all ones and has no effect.
    let id = unsafe { mmio::read_u32(ConfigSpace::ecam_address(MICROVM_ECAM_BASE, first, 0)) };
    id == QEMU_PCIE_HOST_BRIDGE
}

/// The memory BARs of the devices the kernel enabled: the only device registers a
/// confidential VM's exception handler emulates accesses to.
static DEVICE_REGISTERS: Mutex<RangeSet<16>> = Mutex::new(RangeSet::new());

/// Whether `address..address + len` lies inside one memory BAR of a device the kernel
/// enabled (never RAM: such BARs are refused). Called from the #VC/#VE handler: a lock
/// held by the interrupted code (only while a device is enabled) answers no.
pub fn is_device_register(address: u64, len: u64) -> bool {
    let Some(end) = address.checked_add(len) else { return false };
    let Some(registers) = DEVICE_REGISTERS.try_lock() else { return false };
    registers.as_slice().iter().any(|r| r.start <= address && end <= r.end)
}

/// A PCI bus the kernel can enumerate, and where it may place unassigned BARs.
pub struct PciBus {
    pub root: PciRoot<ConfigSpace>,
    config: ConfigSpace,
    /// Free part of the MMIO window for BARs nobody assigned; `None`: do not assign.
    window: Option<Range<u64>>,
    /// RAM, which no BAR may overlap.
    ram: Vec<Range<u64>>,
}

impl PciBus {
    /// Finds configuration space: ACPI MCFG, else the legacy ports, else microvm's ECAM
    /// (probed only where the memory map has no RAM). `None`: no PCI.
    pub fn discover(rsdp_hint: u64, ram: impl Iterator<Item = Range<u64>>) -> Option<Self> {
        let ram: Vec<Range<u64>> = ram.collect();
        let microvm_ecam_is_ram = ram.iter().any(|r| r.start < MICROVM_ECAM_BASE + (256 << 20) && MICROVM_ECAM_BASE < r.end);
        let config = if let Some(ecam) = ecam_from_acpi(rsdp_hint) {
            crate::kprintln!("pci: ECAM at {:#x} (ACPI MCFG), buses {}-{}", ecam.base, ecam.start_bus, ecam.end_bus);
            ConfigSpace::Ecam { base: ecam.base, buses: (ecam.start_bus, ecam.end_bus) }
        } else if legacy_ports_present() {
            kprintln!("pci: legacy configuration ports");
            ConfigSpace::Ports
        } else if !microvm_ecam_is_ram && microvm_host_bridge_present() {
            kprintln!("pci: ECAM at {MICROVM_ECAM_BASE:#x} (QEMU microvm)");
            ConfigSpace::Ecam { base: MICROVM_ECAM_BASE, buses: (0, 255) }
        } else {
            return None;
        };
        let window = match config {
            ConfigSpace::Ecam { base: MICROVM_ECAM_BASE, .. } => Some(MICROVM_MMIO_WINDOW),
            _ => None,
        };
        Some(Self { root: PciRoot::new(config), config, window, ram })
    }

    /// Every function on the first bus. Devices of the VMs Halcyon runs in (microvm, q35)
    /// sit there; scanning all 256 buses would cost 8192 emulated reads at every boot.
    pub fn devices(&self) -> Vec<(DeviceFunction, DeviceFunctionInfo)> {
        let first = match self.config {
            ConfigSpace::Ecam { buses, .. } => buses.0,
            ConfigSpace::Ports => 0,
        };
        self.root.enumerate_bus(first).collect()
    }

    /// Gives every unassigned memory BAR of `f` an address (naturally aligned, from the
    /// window), records the memory BARs as device registers (refusing any that overlaps
    /// RAM) and turns on memory decoding and bus mastering. I/O BARs are left off.
    pub fn enable(&mut self, f: DeviceFunction) -> Result<(), &'static str> {
        let bars = self.root.bars(f).map_err(|_| "cannot read the BARs")?;
        for (index, bar) in bars.iter().enumerate() {
            let Some(BarInfo::Memory { address: 0, size, .. }) = bar else { continue };
            let window = self.window.as_mut().ok_or("a memory BAR is unassigned and no MMIO window is known")?;
            let size = (*size).max(4096);
            if !size.is_power_of_two() {
                return Err("a BAR size is not a power of two");
            }
            let start = window.start.next_multiple_of(size);
            let end = start.checked_add(size).filter(|end| *end <= window.end).ok_or("the PCI MMIO window is full")?;
            window.start = end;
            if bar.as_ref().is_some_and(BarInfo::takes_two_entries) {
                self.root.set_bar_64(f, index as u8, start);
            } else {
                self.root.set_bar_32(f, index as u8, start as u32);
            }
        }
        let bars = self.root.bars(f).map_err(|_| "cannot read the BARs")?;
        for bar in bars.iter().flatten() {
            let BarInfo::Memory { address, size, .. } = *bar else { continue };
            let end = address.checked_add(size).ok_or("a memory BAR wraps around")?;
            if size == 0 {
                continue;
            }
            if self.ram.iter().any(|r| r.start < end && address < r.end) {
                return Err("a memory BAR overlaps RAM");
            }
            DEVICE_REGISTERS.lock().insert(address..end).map_err(|_| "too many device BARs")?;
        }
        let (_, command) = self.root.get_status_command(f);
        self.root.set_command(f, (command | Command::MEMORY_SPACE | Command::BUS_MASTER) - Command::IO_SPACE);
        Ok(())
    }
}
