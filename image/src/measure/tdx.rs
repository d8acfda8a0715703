//! The expected MRTD of a TDVF-compatible firmware as QEMU and KVM build the TD.
//!
//! MRTD is one SHA-384 computation over 128-byte extension buffers, finalized by
//! TDH.MR.FINALIZE (Intel TDX Module Base Architecture Specification, §"Measurement and
//! Attestation", MRTD; TDX Module ABI Reference, TDH.MEM.PAGE.ADD and TDH.MR.EXTEND leaves):
//! - TDH.MEM.PAGE.ADD extends one buffer: `"MEM.PAGE.ADD"` (12 bytes, zero-padded to 16),
//!   the page's GPA (u64 LE) at byte 16, zeros to 128;
//! - TDH.MR.EXTEND extends one buffer `"MR.EXTEND"` (9 bytes, zero-padded to 16), the chunk's
//!   GPA at byte 16, zeros to 128, then the 256-byte chunk itself as two more buffers.
//!
//! QEMU (`target/i386/kvm/tdx.c`, `tdx_init_fw_mem_region`) calls KVM_TDX_INIT_MEM_REGION for
//! every TDVF section in table order, with KVM_TDX_MEASURE_MEMORY_REGION when the section has
//! the MR.EXTEND attribute; KVM (`arch/x86/kvm/vmx/tdx.c`, `tdx_gmem_post_populate`) then
//! issues, page by page, TDH.MEM.PAGE.ADD followed by the page's 16 TDH.MR.EXTENDs. Upstream
//! QEMU accepts only BFV, CFV, TD_HOB and TempMem sections (`hw/i386/tdvf.c`), copies BFV/CFV
//! pages from the image at `DataOffset`, and fills the others with zeros (TempMem) or its HOB
//! (TD_HOB). It does not look at PAGE.AUG.

use super::MeasureError;
use halcyon_boot::ovmf::tdvf::{TdvfSection, TdvfSectionType};
use halcyon_boot::ovmf::{Firmware, PAGE_SIZE};
use sha2::{Digest, Sha384};

/// Size of one MRTD extension buffer.
pub const MRTD_EXTENSION_BUFFER_SIZE: usize = 128;
/// TDH.MR.EXTEND measures this many bytes per call.
pub const TDH_MR_EXTEND_GRANULARITY: usize = 256;
/// Size of a digest (SHA-384).
pub const DIGEST_LEN: usize = 48;

/// An MRTD being built, one TDX module operation at a time.
#[derive(Clone, Debug, Default)]
pub struct Mrtd(Sha384);

impl Mrtd {
    /// MRTD at TDH.MNG.INIT.
    pub fn new() -> Self {
        Self(Sha384::new())
    }

    fn header(&mut self, op: &[u8], gpa: u64) {
        let mut buffer = [0u8; MRTD_EXTENSION_BUFFER_SIZE];
        buffer[..op.len()].copy_from_slice(op);
        buffer[16..24].copy_from_slice(&gpa.to_le_bytes());
        self.0.update(buffer);
    }

    /// TDH.MEM.PAGE.ADD of the page at `gpa`.
    pub fn mem_page_add(&mut self, gpa: u64) {
        self.header(b"MEM.PAGE.ADD", gpa);
    }

    /// TDH.MR.EXTEND of the 256-byte `chunk` at `gpa`.
    pub fn mr_extend(&mut self, gpa: u64, chunk: &[u8; TDH_MR_EXTEND_GRANULARITY]) {
        self.header(b"MR.EXTEND", gpa);
        self.0.update(chunk);
    }

    /// TDH.MR.FINALIZE.
    pub fn finalize(self) -> [u8; DIGEST_LEN] {
        self.0.finalize().into()
    }
}

/// The contents QEMU gives a measured page of `section`, or why they cannot be known.
fn page_contents<'a>(
    image: &'a [u8],
    index: usize,
    section: &TdvfSection,
    page: u64,
) -> Result<Option<&'a [u8]>, MeasureError> {
    match section.section_type {
        TdvfSectionType::Bfv | TdvfSectionType::Cfv => {
            // QEMU maps MemoryDataSize bytes of the image from DataOffset.
            let start = u64::from(section.data_offset) + page * PAGE_SIZE;
            let end = start + PAGE_SIZE;
            image.get(start as usize..end as usize).map(Some).ok_or(MeasureError::TdvfSectionOutsideImage { index })
        }
        TdvfSectionType::TempMem => Ok(None),
        _ => Err(MeasureError::TdvfUnmeasurableSection { index }),
    }
}

/// In which order the host issues the measuring operations of a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MrtdOrder {
    /// Upstream KVM (Linux 6.16+, `tdx_gmem_post_populate`) with QEMU 10.1+: each page's
    /// TDH.MEM.PAGE.ADD, then that page's TDH.MR.EXTENDs.
    PerPage,
    /// The pre-upstream TDX stacks (KVM_TDX_INIT_MEM_REGION that added a whole region, then
    /// extended it): all of a section's TDH.MEM.PAGE.ADDs, then all its TDH.MR.EXTENDs.
    /// (Library API for verifiers of such hosts; `halcyon measure` prints the upstream value.)
    #[cfg_attr(not(test), allow(dead_code))]
    PerSection,
}

/// The expected MRTD of `image` (a whole `-bios` file) under upstream QEMU and KVM.
pub fn mrtd(image: &[u8]) -> Result<[u8; DIGEST_LEN], MeasureError> {
    mrtd_with_order(image, MrtdOrder::PerPage)
}

/// The expected MRTD of `image` with the host issuing operations in `order`.
pub fn mrtd_with_order(image: &[u8], order: MrtdOrder) -> Result<[u8; DIGEST_LEN], MeasureError> {
    let fw = Firmware::parse(image)?;
    let tdvf = fw.tdvf.ok_or(MeasureError::NoTdvfMetadata)?;
    let sections: Vec<TdvfSection> = tdvf.sections().collect();
    // hw/i386/tdvf.c: "Invalid number of fw entries" below 2, and only types 0-3.
    if sections.len() < 2 {
        return Err(MeasureError::TdvfTooFewSections { count: sections.len() });
    }
    for (index, s) in sections.iter().enumerate() {
        if !matches!(
            s.section_type,
            TdvfSectionType::Bfv | TdvfSectionType::Cfv | TdvfSectionType::TdHob | TdvfSectionType::TempMem
        ) {
            return Err(MeasureError::TdvfSectionUnsupportedByQemu { index, section_type: s.section_type });
        }
    }
    super::check_page_count(sections.iter().map(|s| s.memory_data_size / PAGE_SIZE))?;
    let zero = [0u8; PAGE_SIZE as usize];
    let mut mrtd = Mrtd::new();
    let extend = |mrtd: &mut Mrtd, index: usize, s: &TdvfSection, page: usize, gpa: u64| {
        let contents = page_contents(image, index, s, page as u64)?.unwrap_or(&zero);
        for (i, chunk) in contents.as_chunks::<TDH_MR_EXTEND_GRANULARITY>().0.iter().enumerate() {
            mrtd.mr_extend(gpa + (i * TDH_MR_EXTEND_GRANULARITY) as u64, chunk);
        }
        Ok::<(), MeasureError>(())
    };
    for (index, s) in sections.iter().enumerate() {
        for (page, gpa) in s.pages().enumerate() {
            mrtd.mem_page_add(gpa);
            if order == MrtdOrder::PerPage && s.attributes.mr_extend() {
                extend(&mut mrtd, index, s, page, gpa)?;
            }
        }
        if order == MrtdOrder::PerSection && s.attributes.mr_extend() {
            for (page, gpa) in s.pages().enumerate() {
                extend(&mut mrtd, index, s, page, gpa)?;
            }
        }
    }
    Ok(mrtd.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_laid_out_as_the_abi_says() {
        // One added and extended page at GPA 0x2000, the hash input built by hand.
        let page: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        let mut m = Mrtd::new();
        m.mem_page_add(0x2000);
        for (i, chunk) in page.as_chunks::<256>().0.iter().enumerate() {
            m.mr_extend(0x2000 + 256 * i as u64, chunk);
        }
        let mut input = Vec::new();
        let mut add = [0u8; 128];
        add[..12].copy_from_slice(b"MEM.PAGE.ADD");
        add[16..24].copy_from_slice(&0x2000u64.to_le_bytes());
        input.extend_from_slice(&add);
        for i in 0..16 {
            let mut ext = [0u8; 128];
            ext[..9].copy_from_slice(b"MR.EXTEND");
            ext[16..24].copy_from_slice(&(0x2000u64 + 256 * i as u64).to_le_bytes());
            input.extend_from_slice(&ext);
            input.extend_from_slice(&page[256 * i..256 * (i + 1)]);
        }
        assert_eq!(input.len(), 128 + 16 * 384);
        let expected: [u8; 48] = Sha384::digest(&input).into();
        assert_eq!(m.finalize(), expected);
    }

    #[test]
    fn the_two_host_orders_differ_only_in_order() {
        // A two-page measured BFV and a TempMem page, measured in both orders by hand.
        use halcyon_boot::ovmf::guid_table::{self, TableEntry};
        use halcyon_boot::ovmf::tdvf::{self, TdvfAttributes, TDX_METADATA_OFFSET_GUID};
        let size = 0x2000usize;
        let base = (1u64 << 32) - size as u64;
        let mut image: Vec<u8> = (0..size).map(|i| (i / 7) as u8).collect();
        let bfv = TdvfSection {
            data_offset: 0,
            raw_data_size: size as u32,
            memory_address: base,
            memory_data_size: size as u64,
            section_type: TdvfSectionType::Bfv,
            attributes: TdvfAttributes::MR_EXTEND,
        };
        let temp = TdvfSection {
            data_offset: 0,
            raw_data_size: 0,
            memory_address: 0x1000,
            memory_data_size: 0x1000,
            section_type: TdvfSectionType::TempMem,
            attributes: TdvfAttributes::NONE,
        };
        tdvf::write(&[bfv, temp], &mut image[size - 0x100..]).unwrap();
        let offset = 0x100u32.to_le_bytes();
        guid_table::write(&mut image, &[TableEntry { guid: TDX_METADATA_OFFSET_GUID, data: &offset }]).unwrap();
        let extend_page = |m: &mut Mrtd, page: usize| {
            let bytes = &image[page * 4096..(page + 1) * 4096];
            for (i, chunk) in bytes.as_chunks::<256>().0.iter().enumerate() {
                m.mr_extend(base + (page * 4096 + i * 256) as u64, chunk);
            }
        };
        let mut per_page = Mrtd::new();
        per_page.mem_page_add(base);
        extend_page(&mut per_page, 0);
        per_page.mem_page_add(base + 0x1000);
        extend_page(&mut per_page, 1);
        per_page.mem_page_add(0x1000);
        let mut per_section = Mrtd::new();
        per_section.mem_page_add(base);
        per_section.mem_page_add(base + 0x1000);
        extend_page(&mut per_section, 0);
        extend_page(&mut per_section, 1);
        per_section.mem_page_add(0x1000);
        let (a, b) = (per_page.finalize(), per_section.finalize());
        assert_ne!(a, b);
        assert_eq!(mrtd(&image).unwrap(), a);
        assert_eq!(mrtd_with_order(&image, MrtdOrder::PerSection).unwrap(), b);
    }
}
