//! QEMU's fw_cfg device (QEMU `docs/specs/fw_cfg.rst`): the signature and feature items
//! through the traditional I/O-port interface (select an item, stream its bytes from the data
//! register), everything else through the DMA interface when the device has it (one port
//! write per transfer instead of one emulated byte read per byte: about 9 ms less for an
//! 87 KB bundle under TCG), else through the ports too.
//! Everything read is host data; `halcyon_boot::fw_cfg` parses it with checked constructors.
//!
//! DMA writes guest memory directly, which on SEV-SNP and TDX works only for shared pages. The
//! boot information is read before the heap (and so `SharedPages`) exists, so when memory is
//! private the device is used through the port interface only, and never pointed at private
//! memory: every byte then arrives as a register value through the platform's paravirtual
//! port I/O (one guest exit per byte; the workload bundle dominates that cost).

use crate::arch::port;
use core::sync::atomic::{compiler_fence, Ordering};
use halcyon_boot::fw_cfg::{
    self as spec, FileEntry, FwCfgDmaAccess, FwCfgError, FW_CFG_DMA_CTL_ERROR, FW_CFG_FILE_DIR, FW_CFG_FILE_SIZE,
    FW_CFG_ID, FW_CFG_PORT_DATA, FW_CFG_PORT_DMA, FW_CFG_PORT_SEL, FW_CFG_SIGNATURE, FW_CFG_VERSION_DMA,
};

/// A present fw_cfg device (its signature was checked).
pub struct FwCfg {
    dma: bool,
}

impl FwCfg {
    /// Finds the device: selecting item 0 must read "QEMU".
    pub fn probe() -> Result<Self, FwCfgError> {
        let mut signature = [0u8; 4];
        read_item_ports(FW_CFG_SIGNATURE, &mut signature);
        spec::check_signature(&signature)?;
        let mut features = [0u8; 4];
        read_item_ports(FW_CFG_ID, &mut features);
        let dma = u32::from_le_bytes(features) & FW_CFG_VERSION_DMA != 0;
        Ok(Self { dma: dma && !crate::platform::memory_is_private() })
    }

    /// Looks `names` up in one pass over the file directory.
    pub fn find<const N: usize>(&self, names: [&str; N]) -> Result<[Option<FileEntry>; N], FwCfgError> {
        /// Directory entries read per transfer.
        const CHUNK: usize = 16;
        let mut found = [None; N];
        let mut count = [0u8; 4];
        self.read(Some(FW_CFG_FILE_DIR), &mut count)?;
        let count = spec::parse_dir_count(&count)? as usize;
        // The directory item stays selected: each read continues where the last one ended.
        let mut raw = [0u8; CHUNK * FW_CFG_FILE_SIZE];
        let mut left = count;
        while left > 0 {
            let n = left.min(CHUNK);
            let chunk = &mut raw[..n * FW_CFG_FILE_SIZE];
            self.read(None, chunk)?;
            for bytes in chunk.as_chunks::<FW_CFG_FILE_SIZE>().0 {
                let entry = FileEntry::parse(bytes)?;
                if let Some(i) = names.iter().position(|n| *n == entry.name()) {
                    found[i].get_or_insert(entry);
                }
            }
            left -= n;
        }
        Ok(found)
    }

    /// Reads the first `out.len()` bytes of `file` (the caller sizes `out` from `file.size`;
    /// past an item's end the device reads zeros).
    pub fn read_file(&self, file: &FileEntry, out: &mut [u8]) -> Result<(), FwCfgError> {
        self.read(Some(file.select), out)
    }

    /// Reads `out.len()` bytes of `select`ed item from its start, or (`None`) of the current
    /// item from where the last read ended: by DMA when the device has it, else through ports.
    fn read(&self, select: Option<u16>, out: &mut [u8]) -> Result<(), FwCfgError> {
        if !self.dma {
            if let Some(item) = select {
                port::write_u16(FW_CFG_PORT_SEL, item);
            }
            port::read_bytes(FW_CFG_PORT_DATA, out);
            return Ok(());
        }
        let length = u32::try_from(out.len()).map_err(|_| FwCfgError::Dma)?;
        // The kernel runs identity-mapped, so a pointer is its physical address.
        let mut access = match select {
            Some(item) => FwCfgDmaAccess::select_and_read(item, length, out.as_mut_ptr() as u64),
            None => FwCfgDmaAccess::read(length, out.as_mut_ptr() as u64),
        };
        let request = &raw mut access;
        let address = request as u64;
        compiler_fence(Ordering::SeqCst);
        port::write_u32(FW_CFG_PORT_DMA, ((address >> 32) as u32).to_be());
        port::write_u32(FW_CFG_PORT_DMA + 4, (address as u32).to_be());
        compiler_fence(Ordering::SeqCst);
        // QEMU finishes the transfer before the port write completes and clears `control`.
        // SAFETY: `request` points at the local `access`, alive and aligned for this read; the
        // device may have written it, hence volatile.
        let control = unsafe { (&raw const (*request).control).read_volatile() }.get();
        if control & FW_CFG_DMA_CTL_ERROR != 0 || control != 0 {
            return Err(FwCfgError::Dma);
        }
        Ok(())
    }
}

/// Selects `item` (which rewinds it to offset 0) and reads its first `out.len()` bytes
/// through the data port.
fn read_item_ports(item: u16, out: &mut [u8]) {
    port::write_u16(FW_CFG_PORT_SEL, item);
    port::read_bytes(FW_CFG_PORT_DATA, out);
}
