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

    /// The firmware entry's SNP constants (boot crate, used by assembly) agree with the
    /// guest protocol crate: termination codes and the CPUID page layout.
    #[test]
    fn firmware_entry_speaks_the_same_snp_protocol_as_hal() {
        use halcyon_boot::snp_entry as entry;
        use halcyon_hal::snp::cpuid_page::{CpuidFunction, CpuidPageLayout, CPUID_COUNT_MAX};
        use halcyon_hal::snp::ghcb_msr::{termination_request, HalcyonReason, TerminationReason, MSR_GHCB};
        use std::mem::{offset_of, size_of};
        assert_eq!(u64::from(entry::TERMINATE_SNP_UNSUPPORTED), termination_request(TerminationReason::SnpUnsupported));
        assert_eq!(
            u64::from(entry::TERMINATE_CPUID_PAGE),
            termination_request(TerminationReason::Halcyon(HalcyonReason::CpuidPage))
        );
        assert_eq!(entry::GHCB_MSR, MSR_GHCB);
        assert_eq!(entry::SEV_STATUS_MSR, halcyon_hal::platform::sev_status::MSR);
        assert_eq!(entry::CPUID_PAGE_COUNT_MAX as usize, CPUID_COUNT_MAX);
        assert_eq!(entry::CPUID_PAGE_ENTRIES as usize, offset_of!(CpuidPageLayout, functions));
        assert_eq!(entry::CPUID_ENTRY_SIZE as usize, size_of::<CpuidFunction>());
        assert_eq!(entry::CPUID_ENTRY_EAX_IN as usize, offset_of!(CpuidFunction, eax_in));
        assert_eq!(entry::CPUID_ENTRY_EAX as usize, offset_of!(CpuidFunction, eax));
        assert_eq!(entry::CPUID_ENTRY_EBX as usize, offset_of!(CpuidFunction, ebx));
        // The entry and hal's CPUID page parser agree on the C-bit.
        let mut layout = <CpuidPageLayout as zerocopy::FromZeros>::new_zeroed();
        layout.count = 1;
        layout.functions[0] = CpuidFunction { eax_in: 0x8000_001F, eax: 0x1_019F, ebx: 0x4173, ..CpuidFunction::default() };
        let mut page = zerocopy::IntoBytes::as_bytes(&layout).to_vec();
        page.resize(4096, 0);
        let c_bit = halcyon_hal::snp::cpuid_page::CpuidPage::parse(&page).unwrap().c_bit_position().unwrap();
        assert_eq!(entry::decide(0x7, &page), entry::EntryDecision::Snp { c_bit: c_bit.into() });
    }

    /// A minimal x86_64 ELF64 whose program headers are `(type, paddr, data, memsz)`.
    fn elf(segments: &[(u32, u64, &[u8], u64)]) -> Vec<u8> {
        let segments: Vec<_> = segments
            .iter()
            .map(|&(p_type, paddr, data, memsz)| crate::test_elf::Segment { p_type, flags: 5, paddr, data, memsz, align: 8 })
            .collect();
        crate::test_elf::elf(object::elf::EM_X86_64, &segments)
    }

    /// The dual-mode vector (`halcyon_boot::firmware_layout::RESET_VECTOR_PREFIX`): real mode
    /// jumps to the reset code's start, protected mode (a TD) to 4 bytes into it.
    const VECTOR: [u8; 16] = [0x0f, 0x20, 0xc0, 0xa8, 0x01, 0x74, 0x05, 0xe9, 0x08, 0xf0, 0xff, 0xff, 0xe9, 0x01, 0xf0, 0xf4];

    #[test]
    fn segments_become_a_flat_payload_and_the_reset_page() {
        let kernel = elf(&[
            (PT_LOAD, 0x10_0000, &[0xaa; 0x10], 0x10),
            (PT_LOAD, 0x10_2000, &[0xbb; 8], 0x3000),
            (PT_HALCYON_RESET_CODE, u64::from(RESET_CODE_GPA), &[0x90; 8], 8),
            (PT_HALCYON_RESET_VECTOR, u64::from(RESET_VECTOR_GPA), &VECTOR, 16),
        ]);
        let fw = build(&kernel).unwrap();
        let l = fw.layout;
        assert_eq!((l.payload_link, l.payload_len, l.kernel_ram_end, l.size), (0x10_0000, 0x2008, 0x10_5000, 0x1_0000));
        let image = &fw.bytes;
        assert!(image[..0x10].iter().all(|b| *b == 0xaa));
        assert!(image[0x10..0x2000].iter().all(|b| *b == 0), "gaps are zero");
        assert!(image[0x2000..0x2008].iter().all(|b| *b == 0xbb));
        let code_at = (RESET_CODE_GPA - l.base_gpa()) as usize;
        assert_eq!(&image[code_at..code_at + 9], &[0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0]);
        assert_eq!(&image[image.len() - 16..], &VECTOR);
        let parsed = halcyon_boot::ovmf::Firmware::parse(image).unwrap();
        assert_eq!(parsed.sev_metadata.unwrap().sections().collect::<Vec<_>>(), l.sev_sections());
        assert_eq!(FirmwareLayout::read(image).unwrap().0, l);
    }

    #[test]
    fn misplaced_or_missing_reset_segments_are_refused() {
        let load = (PT_LOAD, 0x10_0000, &[0xaa; 0x10][..], 0x10);
        let code = (PT_HALCYON_RESET_CODE, u64::from(RESET_CODE_GPA), &[0x90; 8][..], 8);
        let vector = (PT_HALCYON_RESET_VECTOR, u64::from(RESET_VECTOR_GPA), &VECTOR[..], 16);
        let err = |segments: &[(u32, u64, &[u8], u64)]| format!("{:#}", build(&elf(segments)).err().unwrap());
        assert!(err(&[load, code]).contains("no firmware reset segments"));
        assert!(err(&[load, (code.0, 0xffff_e000, code.2, 8), vector]).contains("disagree"));
        assert!(err(&[code, vector]).contains("no PT_LOAD"));
        assert!(err(&[load, (code.0, code.1, &[0x90; 0x401], 0x401), vector]).contains("cannot write the firmware"));
        // A real-mode-only vector (no TD entry) is refused too.
        let old_vector = [0xe9, 0x0d, 0xf0, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4, 0xf4];
        assert!(err(&[load, code, (vector.0, vector.1, &old_vector[..], 16)]).contains("cannot write the firmware"));
        assert!(err(&[(PT_LOAD, 0x10_0000, &[0; 0x10], 0x1_0000_0000), code, vector]).contains("above 4 GiB"));
        assert!(build(b"not an elf").is_err());
    }
}
