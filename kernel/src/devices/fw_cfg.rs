//! QEMU's fw_cfg device through its traditional I/O-port interface (QEMU
//! `docs/specs/fw_cfg.rst`): select an item, then stream its bytes from the data register.
//! Everything read is host data; `halcyon_boot::fw_cfg` parses it with checked constructors.

use crate::arch::port;
use halcyon_boot::fw_cfg::{
    self as spec, FileEntry, FwCfgError, FW_CFG_FILE_DIR, FW_CFG_FILE_SIZE, FW_CFG_PORT_DATA, FW_CFG_PORT_SEL,
    FW_CFG_SIGNATURE,
};

/// A present fw_cfg device (its signature was checked).
pub struct FwCfg(());

impl FwCfg {
    /// Finds the device: selecting item 0 must read "QEMU".
    pub fn probe() -> Result<Self, FwCfgError> {
        let device = Self(());
        let mut signature = [0u8; 4];
        device.read_item(FW_CFG_SIGNATURE, &mut signature);
        spec::check_signature(&signature)?;
        Ok(device)
    }

    /// Selects `item` (which rewinds it to offset 0) and reads its first `out.len()` bytes.
    /// Past an item's end the device reads zeros.
    fn read_item(&self, item: u16, out: &mut [u8]) {
        port::write_u16(FW_CFG_PORT_SEL, item);
        port::read_bytes(FW_CFG_PORT_DATA, out);
    }

    /// Looks `name` up in the file directory.
    pub fn find(&self, name: &str) -> Result<Option<FileEntry>, FwCfgError> {
        let mut count = [0u8; 4];
        self.read_item(FW_CFG_FILE_DIR, &mut count);
        let count = spec::parse_dir_count(&count)?;
        // The directory item stays selected: each read continues where the last one ended.
        for _ in 0..count {
            let mut raw = [0u8; FW_CFG_FILE_SIZE];
            port::read_bytes(FW_CFG_PORT_DATA, &mut raw);
            let entry = FileEntry::parse(&raw)?;
            if entry.name() == name {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// Reads the first `out.len()` bytes of `file` (the caller sizes `out` from `file.size`).
    pub fn read_file(&self, file: &FileEntry, out: &mut [u8]) {
        self.read_item(file.select, out);
    }
}
