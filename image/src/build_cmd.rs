//! `halcyon build`: checks the kernel and writes the bootable image.

use crate::elf_image;
use crate::paths;
use anyhow::{Context, Result};
use std::path::PathBuf;

pub fn build(kernel: Option<PathBuf>, output: Option<PathBuf>) -> Result<()> {
    let kernel = kernel.unwrap_or_else(paths::default_kernel);
    let output = output.unwrap_or_else(paths::default_image);
    let bytes = std::fs::read(&kernel).with_context(|| {
        format!("cannot read the kernel {} (build it with `make kernel`)", kernel.display())
    })?;
    let info = elf_image::inspect(&bytes).with_context(|| format!("{} is not a Halcyon kernel", kernel.display()))?;
    elf_image::check_versions(
        &info,
        &format!("the kernel {}", kernel.display()),
        "build the kernel and halcyon from the same tree (`make image`)",
    )?;
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // Write beside the target and rename, so a concurrent `halcyon run` never sees half an image.
    let partial = output.with_extension("partial");
    std::fs::write(&partial, &bytes).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &output).with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!(
        "    Finished image {} ({} KiB, PVH entry {:#x})",
        output.display(),
        bytes.len() / 1024,
        info.pvh_entry
    );
    Ok(())
}
