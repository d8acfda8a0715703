//! The firmware image (`halcyon.fd`): the kernel ELF turned into a `-bios` image laid out by
//! `halcyon_boot::firmware_layout`, carrying the OVMF GUIDed table, SEV and TDVF metadata.

use anyhow::{bail, Context, Result};
use halcyon_boot::firmware_layout::{
    FirmwareLayout, PT_HALCYON_RESET_CODE, PT_HALCYON_RESET_VECTOR, RESET_CODE_GPA, RESET_VECTOR_GPA,
};
use object::elf::{FileHeader64, PT_LOAD};
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;
use std::path::{Path, PathBuf};

/// A built firmware image and the layout it was written from.
pub struct FirmwareImage {
    pub layout: FirmwareLayout,
    pub bytes: Vec<u8>,
}

/// Builds the firmware from a kernel ELF: its PT_LOAD segments become one flat payload from
/// their lowest physical (= link) address, gaps and the `.bss` tail left out or zero; its
/// reset-code and reset-vector segments go where the layout says the CPU fetches them.
pub fn build(elf: &[u8]) -> Result<FirmwareImage> {
    let header = FileHeader64::<Endianness>::parse(elf).context("not an ELF64 file")?;
    let endian = header.endian().context("unknown ELF byte order")?;
    let segments = header.program_headers(endian, elf).context("bad program headers")?;
    let mut loads = Vec::new();
    let (mut reset_code, mut reset_vector) = (None, None);
    for segment in segments {
        let paddr = segment.p_paddr(endian);
        let data = segment.data(endian, elf).map_err(|()| anyhow::anyhow!("segment data outside the file"))?;
        match segment.p_type(endian) {
            PT_LOAD => loads.push((paddr, data, segment.p_memsz(endian))),
            PT_HALCYON_RESET_CODE => reset_code = Some((paddr, data)),
            PT_HALCYON_RESET_VECTOR => reset_vector = Some((paddr, data)),
            _ => {}
        }
    }
    let (Some((code_at, reset_code)), Some((vector_at, reset_vector))) = (reset_code, reset_vector) else {
        bail!("the kernel has no firmware reset segments (boot/link.ld): rebuild it with `make kernel`");
    };
    if code_at != u64::from(RESET_CODE_GPA) || vector_at != u64::from(RESET_VECTOR_GPA) {
        bail!(
            "the kernel's reset segments are at {code_at:#x} and {vector_at:#x}, not where firmware_layout.rs says \
             ({RESET_CODE_GPA:#x}, {RESET_VECTOR_GPA:#x}): boot/link.ld and firmware_layout.rs disagree"
        );
    }
    let start = loads.iter().map(|(paddr, ..)| *paddr).min().context("the kernel has no PT_LOAD segments")?;
    let mut file_end = start;
    let mut ram_end = start;
    for (paddr, data, memsz) in &loads {
        let end = paddr.checked_add(data.len() as u64).context("segment wraps")?;
        file_end = file_end.max(end);
        ram_end = ram_end.max(paddr.checked_add(*memsz).context("segment wraps")?);
    }
    let to_u32 = |v: u64, what: &str| u32::try_from(v).with_context(|| format!("the kernel's {what} is above 4 GiB"));
    let layout = FirmwareLayout::new(
        to_u32(start, "load address")?,
        to_u32(file_end - start, "payload")?,
        to_u32(ram_end, "end")?,
    )
    .context("cannot lay out the firmware")?;
    let mut payload = vec![0u8; layout.payload_len as usize];
    for (paddr, data, _) in &loads {
        let at = (paddr - start) as usize;
        payload[at..at + data.len()].copy_from_slice(data);
    }
    let mut bytes = vec![0u8; layout.size as usize];
    layout.write(&mut bytes, &payload, reset_code, reset_vector).context("cannot write the firmware")?;
    Ok(FirmwareImage { layout, bytes })
}

/// Where `halcyon build --output PATH` writes the two images: a PATH ending in `.fd` names the
/// firmware and the ELF goes beside it as `.elf`; any other PATH names the ELF and the
/// firmware goes beside it with the extension `.fd`. Returns `(elf, firmware)`.
pub fn output_paths(output: &Path) -> (PathBuf, PathBuf) {
    if output.extension().is_some_and(|e| e == "fd") {
        (output.with_extension("elf"), output.to_path_buf())
    } else {
        (output.to_path_buf(), output.with_extension("fd"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_pair_elf_and_fd() {
        let pair = |p: &str| {
            let (e, f) = output_paths(Path::new(p));
            (e.to_string_lossy().into_owned(), f.to_string_lossy().into_owned())
        };
        assert_eq!(pair("t/halcyon.elf"), ("t/halcyon.elf".into(), "t/halcyon.fd".into()));
        assert_eq!(pair("t/x.fd"), ("t/x.elf".into(), "t/x.fd".into()));
        assert_eq!(pair("img"), ("img".into(), "img.fd".into()));
    }

    #[test]
    fn an_elf_without_reset_segments_is_refused() {
        assert!(build(b"not an elf").is_err());
    }
}
