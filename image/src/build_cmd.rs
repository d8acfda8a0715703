//! `halcyon build`: checks the kernel and writes the bootable images: the PVH ELF
//! (`halcyon.elf`, for `-kernel`) and the firmware (`halcyon.fd`, for `-bios`), from the same
//! kernel (see [`firmware::output_paths`] for how `--output` names them).

use crate::{elf_image, firmware, paths};
use anyhow::{Context, Result};
use std::path::PathBuf;

pub fn build(kernel: Option<PathBuf>, output: Option<PathBuf>) -> Result<()> {
    let kernel = kernel.unwrap_or_else(paths::default_kernel);
    let (output, firmware_output) = firmware::output_paths(&output.unwrap_or_else(paths::default_image));
    let bytes = std::fs::read(&kernel).with_context(|| {
        format!("cannot read the kernel {} (build it with `make kernel`)", kernel.display())
    })?;
    let info = elf_image::inspect(&bytes).with_context(|| format!("{} is not a Halcyon kernel", kernel.display()))?;
    elf_image::check_versions(
        &info,
        &format!("the kernel {}", kernel.display()),
        "build the kernel and halcyon from the same tree (`make image`)",
    )?;
    let fd = firmware::build(&bytes).with_context(|| format!("cannot build the firmware from {}", kernel.display()))?;
    write_atomically(&output, &bytes)?;
    write_atomically(&firmware_output, &fd.bytes)?;
    eprintln!(
        "    Finished image {} ({} KiB, PVH entry {:#x}) and firmware {} ({} KiB, loaded at {:#x})",
        output.display(),
        bytes.len() / 1024,
        info.pvh_entry,
        firmware_output.display(),
        fd.bytes.len() / 1024,
        fd.layout.base_gpa()
    );
    Ok(())
}

/// Writes beside the target and renames, so a concurrent `halcyon run` never sees half an image.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    std::fs::write(&partial, bytes).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}
