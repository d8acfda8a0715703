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

/// Whether the notes' protocol versions are the ones this `halcyon` speaks; the error
/// names both sides and ends with `remedy`.
pub fn check_versions(info: &ImageInfo, what: &str, remedy: &str) -> Result<()> {
    if info.channel_version != channel::PROTOCOL_VERSION || info.bundle_version != bundle::VERSION {
        bail!(
            "{what} speaks channel v{} / bundle v{}, this halcyon speaks v{} / v{}: {remedy}",
            info.channel_version,
            info.bundle_version,
            channel::PROTOCOL_VERSION,
            bundle::VERSION
        );
    }
    Ok(())
}

/// Reads and checks an image, with an actionable error when it is stale.
pub fn check_image(path: &Path) -> Result<ImageInfo> {
    let bytes = std::fs::read(path).with_context(|| {
        format!("cannot read the image {} (build it with `make image` or `halcyon build`)", path.display())
    })?;
    let info = inspect(&bytes).with_context(|| format!("{} is not a usable Halcyon image", path.display()))?;
    check_versions(
        &info,
        &format!("the image {}", path.display()),
        "rebuild it with `make image` (or `halcyon build`)",
    )?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_elf::Segment;
    use object::elf::{EM_X86_64, PT_NOTE};

    fn note(name: &str, n_type: u32, desc: &[u8]) -> Vec<u8> {
        let pad = |v: &mut Vec<u8>| v.resize(v.len().next_multiple_of(4), 0);
        let mut out = Vec::new();
        out.extend((name.len() as u32 + 1).to_le_bytes());
        out.extend((desc.len() as u32).to_le_bytes());
        out.extend(n_type.to_le_bytes());
        out.extend(name.as_bytes());
        out.push(0);
        pad(&mut out);
        out.extend(desc);
        pad(&mut out);
        out
    }

    /// A minimal ELF64 with one PT_NOTE segment holding `notes`.
    fn elf(machine: u16, notes: &[u8]) -> Vec<u8> {
        let segment = Segment { p_type: PT_NOTE, flags: 4, paddr: 0, data: notes, memsz: notes.len() as u64, align: 4 };
        crate::test_elf::elf(machine, &[segment])
    }

    fn versions(channel: u32, bundle: u32) -> Vec<u8> {
        [channel.to_le_bytes(), bundle.to_le_bytes()].concat()
    }

    #[test]
    fn a_halcyon_kernel_is_recognised() {
        let mut notes = note("Xen", XEN_ELFNOTE_PHYS32_ENTRY, &0x10_0040u32.to_le_bytes());
        notes.extend(note(HALCYON_NOTE_NAME, HALCYON_NOTE_TYPE, &versions(channel::PROTOCOL_VERSION, bundle::VERSION)));
        let info = inspect(&elf(EM_X86_64, &notes)).unwrap();
        assert_eq!(
            info,
            ImageInfo { pvh_entry: 0x10_0040, channel_version: channel::PROTOCOL_VERSION, bundle_version: bundle::VERSION }
        );
        check_versions(&info, "k", "fix it").unwrap();
    }

    #[test]
    fn what_is_wrong_is_said() {
        let err = |bytes: &[u8]| format!("{:#}", inspect(bytes).unwrap_err());
        assert!(err(b"\0asm\x01\0\0\0").contains("not an ELF64 file"));
        let pvh = note("Xen", XEN_ELFNOTE_PHYS32_ENTRY, &0x10_0040u32.to_le_bytes());
        let halcyon = note(HALCYON_NOTE_NAME, HALCYON_NOTE_TYPE, &versions(1, 1));
        assert!(err(&elf(object::elf::EM_AARCH64, &pvh)).contains("not an x86_64 ELF"));
        assert!(err(&elf(EM_X86_64, &halcyon)).contains("no PVH entry note"));
        assert!(err(&elf(EM_X86_64, &pvh)).contains("no Halcyon version note"));

        let info = ImageInfo { pvh_entry: 0, channel_version: channel::PROTOCOL_VERSION + 1, bundle_version: bundle::VERSION };
        let message = check_versions(&info, "the image x", "run `make image`").unwrap_err().to_string();
        assert!(message.starts_with("the image x speaks channel v2"), "{message}");
        assert!(message.ends_with("run `make image`"), "{message}");
    }
}
