//! Checks a kernel ELF before it is used as the image: that a PVH loader can boot it and
//! that it speaks the protocols this `halcyon` speaks.

use anyhow::{bail, Context, Result};
use halcyon_boot::{HALCYON_NOTE_NAME, HALCYON_NOTE_TYPE};
use halcyon_hal::{bundle, channel};
use object::elf::{FileHeader64, PT_NOTE};
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;
use std::path::Path;

/// `XEN_ELFNOTE_PHYS32_ENTRY` (Xen `public/elfnote.h`): the PVH 32-bit entry point.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// What the image's notes say.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub pvh_entry: u32,
    pub channel_version: u32,
    pub bundle_version: u32,
}

pub fn inspect(bytes: &[u8]) -> Result<ImageInfo> {
    let header = FileHeader64::<Endianness>::parse(bytes).context("not an ELF64 file")?;
    let endian = header.endian().context("unknown ELF byte order")?;
    if header.e_machine(endian) != object::elf::EM_X86_64 {
        bail!("not an x86_64 ELF");
    }
    let mut pvh_entry = None;
    let mut versions = None;
    for segment in header.program_headers(endian, bytes).context("bad program headers")? {
        if segment.p_type(endian) != PT_NOTE {
            continue;
        }
        let Some(mut notes) = segment.notes(endian, bytes).context("bad note segment")? else { continue };
        while let Some(note) = notes.next().context("bad note")? {
            let desc = note.desc();
            match (note.name(), note.n_type(endian)) {
                (b"Xen", XEN_ELFNOTE_PHYS32_ENTRY) if desc.len() >= 4 => {
                    pvh_entry = Some(u32::from_le_bytes(desc[..4].try_into()?));
                }
                (name, HALCYON_NOTE_TYPE) if name == HALCYON_NOTE_NAME.as_bytes() && desc.len() >= 8 => {
                    versions = Some((
                        u32::from_le_bytes(desc[..4].try_into()?),
                        u32::from_le_bytes(desc[4..8].try_into()?),
                    ));
                }
                _ => {}
            }
        }
    }
    let pvh_entry = pvh_entry.context("no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): not a Halcyon kernel")?;
    let (channel_version, bundle_version) = versions.context("no Halcyon version note: not a Halcyon kernel")?;
    Ok(ImageInfo { pvh_entry, channel_version, bundle_version })
}

/// Reads and checks an image, with an actionable error when it is stale.
pub fn check_image(path: &Path) -> Result<ImageInfo> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the image {}", path.display()))?;
    let info = inspect(&bytes).with_context(|| format!("{} is not a usable Halcyon image", path.display()))?;
    if info.channel_version != channel::PROTOCOL_VERSION || info.bundle_version != bundle::VERSION {
        bail!(
            "the image {} speaks channel v{} / bundle v{}, this halcyon speaks v{} / v{}: \
             rebuild it with `make image` (or `halcyon build`)",
            path.display(),
            info.channel_version,
            info.bundle_version,
            channel::PROTOCOL_VERSION,
            bundle::VERSION
        );
    }
    Ok(info)
}
