//! The expected SEV-SNP launch digest (MEASUREMENT) of an OVMF-compatible firmware as QEMU
//! and KVM launch it.
//!
//! SNP ABI 56860 (rev. 1.55) §8.17 SNP_LAUNCH_UPDATE: each page added at launch updates the
//! launch digest as `DIGEST = SHA-384(PAGE_INFO)`, where PAGE_INFO (§8.17.2, Table 67) holds
//! the current digest, the SHA-384 of the page's contents (zero for page types whose contents
//! are not measured), the page type and the page's GPA. The pages, in QEMU's order
//! (`target/i386/sev.c`: the flash first, then `snp_populate_metadata_pages`, then KVM's
//! LAUNCH_FINISH adding one VMSA per vCPU in vCPU order):
//! 1. the whole `-bios` image as NORMAL pages, ending at 4 GiB;
//! 2. each SEV metadata section: SNP_SEC_MEM, SVSM_CAA, kernel hashes (without `-kernel`)
//!    and unknown types as ZERO pages, the secrets page as SECRETS, the CPUID page as CPUID
//!    (`snp_metadata_desc_to_page_type`);
//! 3. one VMSA page per vCPU, at KVM's `INITIAL_VMSA_GPA` 0xFFFFFFFFF000
//!    (`arch/x86/kvm/svm/sev.c`): the BSP at the reset vector, APs at the SEV-ES reset block.

use super::vmsa::{SevEsSaveArea, VcpuType, BSP_RESET_ADDR};
use super::MeasureError;
use halcyon_boot::ovmf::sev::SevSectionType;
use halcyon_boot::ovmf::{Firmware, PAGE_SIZE};
use sha2::{Digest, Sha384};
use zerocopy::byteorder::little_endian::{U16, U64};
use zerocopy::{Immutable, IntoBytes, KnownLayout};

/// PAGE_TYPE values of SNP_LAUNCH_UPDATE (SNP ABI §8.17.2).
pub const PAGE_TYPE_NORMAL: u8 = 0x01;
pub const PAGE_TYPE_VMSA: u8 = 0x02;
pub const PAGE_TYPE_ZERO: u8 = 0x03;
/// Not used by QEMU launches; listed with its siblings.
#[allow(dead_code)]
pub const PAGE_TYPE_UNMEASURED: u8 = 0x04;
pub const PAGE_TYPE_SECRETS: u8 = 0x05;
pub const PAGE_TYPE_CPUID: u8 = 0x06;

/// The GPA KVM gives VMSA pages in SNP_LAUNCH_UPDATE (Linux `INITIAL_VMSA_GPA`).
pub const INITIAL_VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

/// Size of a digest (SHA-384).
pub const DIGEST_LEN: usize = 48;

/// PAGE_INFO (SNP ABI 56860 rev. 1.55, §8.17.2, Table 67).
#[derive(IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct PageInfo {
    pub digest_cur: [u8; DIGEST_LEN],
    pub contents: [u8; DIGEST_LEN],
    /// Length of this structure, 0x70.
    pub length: U16,
    pub page_type: u8,
    /// Bit 0: IMI_PAGE; bits 7:1 reserved.
    pub imi_page: u8,
    pub vmpl3_perms: u8,
    pub vmpl2_perms: u8,
    pub vmpl1_perms: u8,
    pub reserved: u8,
    pub gpa: U64,
}

const _: () = {
    assert!(core::mem::size_of::<PageInfo>() == 0x70);
    assert!(core::mem::offset_of!(PageInfo, length) == 0x60);
    assert!(core::mem::offset_of!(PageInfo, page_type) == 0x62);
    assert!(core::mem::offset_of!(PageInfo, vmpl3_perms) == 0x64);
    assert!(core::mem::offset_of!(PageInfo, gpa) == 0x68);
};

/// A launch digest being built, one SNP_LAUNCH_UPDATE page at a time.
#[derive(Clone, Debug)]
pub struct LaunchDigest([u8; DIGEST_LEN]);

impl Default for LaunchDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl LaunchDigest {
    /// The digest of a fresh guest context: SNP_LAUNCH_START starts it at zero.
    pub fn new() -> Self {
        Self([0; DIGEST_LEN])
    }

    /// Extends the digest with one page.
    pub fn update(&mut self, page_type: u8, gpa: u64, contents: [u8; DIGEST_LEN]) {
        let info = PageInfo {
            digest_cur: self.0,
            contents,
            length: (core::mem::size_of::<PageInfo>() as u16).into(),
            page_type,
            imi_page: 0,
            vmpl3_perms: 0,
            vmpl2_perms: 0,
            vmpl1_perms: 0,
            reserved: 0,
            gpa: gpa.into(),
        };
        self.0 = Sha384::digest(info.as_bytes()).into();
    }

    /// A NORMAL page: its contents are measured.
    pub fn normal_page(&mut self, gpa: u64, page: &[u8]) {
        self.update(PAGE_TYPE_NORMAL, gpa, Sha384::digest(page).into());
    }

    /// A page whose contents are not measured (ZERO, UNMEASURED, SECRETS, CPUID).
    pub fn unmeasured_page(&mut self, page_type: u8, gpa: u64) {
        self.update(page_type, gpa, [0; DIGEST_LEN]);
    }

    /// A VMSA page.
    pub fn vmsa_page(&mut self, vmsa: &SevEsSaveArea) {
        self.update(PAGE_TYPE_VMSA, INITIAL_VMSA_GPA, Sha384::digest(vmsa.as_bytes()).into());
    }

    /// The digest so far.
    pub fn digest(&self) -> [u8; DIGEST_LEN] {
        self.0
    }
}

/// How the guest is launched, besides its firmware.
#[derive(Clone, Copy, Debug)]
pub struct SnpLaunch {
    /// Number of vCPUs (one VMSA each).
    pub vcpus: u32,
    /// The `-cpu` model (its signature is in each VMSA's RDX).
    pub vcpu_type: VcpuType,
    /// The VMSA's SEV_FEATURES ([`super::vmsa::SEV_FEATURES_KVM_DEFAULT`] unless QEMU is told otherwise).
    pub sev_features: u64,
}

/// The SNP page type QEMU gives a metadata section (`snp_metadata_desc_to_page_type`).
fn section_page_type(t: SevSectionType) -> u8 {
    match t {
        SevSectionType::SnpSecrets => PAGE_TYPE_SECRETS,
        SevSectionType::Cpuid => PAGE_TYPE_CPUID,
        // SNP_SEC_MEM ("unmeasured pre-validated pages as a zero page"), the kernel hashes page
        // when QEMU has no -kernel to hash, the SVSM calling area, and any other type.
        SevSectionType::SnpSecMem
        | SevSectionType::SnpKernelHashes
        | SevSectionType::SvsmCaa
        | SevSectionType::Other(_) => PAGE_TYPE_ZERO,
    }
}

/// The expected launch digest of `image` (a whole `-bios` file) launched with `launch`.
pub fn launch_digest(image: &[u8], launch: &SnpLaunch) -> Result<[u8; DIGEST_LEN], MeasureError> {
    if launch.vcpus == 0 {
        return Err(MeasureError::NoVcpus);
    }
    let fw = Firmware::parse(image)?;
    let base = fw.base_gpa().ok_or(MeasureError::ImageTooLarge { len: image.len() })?;
    if !(image.len() as u64).is_multiple_of(PAGE_SIZE) {
        return Err(MeasureError::ImageNotPageSized { len: image.len() });
    }
    let metadata = fw.sev_metadata.ok_or(MeasureError::NoSevMetadata)?;
    let reset = fw.sev_es_reset_block.ok_or(MeasureError::NoSevEsResetBlock)?;
    super::check_page_count(metadata.sections().map(|s| u64::from(s.size) / PAGE_SIZE))?;

    let mut digest = LaunchDigest::new();
    for (gpa, page) in (base..).step_by(PAGE_SIZE as usize).zip(image.chunks(PAGE_SIZE as usize)) {
        digest.normal_page(gpa, page);
    }
    for section in metadata.sections() {
        let page_type = section_page_type(section.section_type);
        for gpa in section.pages() {
            digest.unmeasured_page(page_type, gpa);
        }
    }
    let signature = launch.vcpu_type.signature();
    let bsp = SevEsSaveArea::reset_state(BSP_RESET_ADDR, launch.sev_features, signature);
    digest.vmsa_page(&bsp);
    if launch.vcpus > 1 {
        let ap = SevEsSaveArea::reset_state(reset.reset_addr(), launch.sev_features, signature);
        for _ in 1..launch.vcpus {
            digest.vmsa_page(&ap);
        }
    }
    Ok(digest.digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_info_is_hashed_as_the_abi_lays_it_out() {
        // One NORMAL page at GPA 0x1000 from a zero digest, with the PAGE_INFO bytes built by hand.
        let page = [0xabu8; 4096];
        let mut digest = LaunchDigest::new();
        digest.normal_page(0x1000, &page);
        let mut info = vec![0u8; 48];
        info.extend_from_slice(&Sha384::digest(page));
        info.extend_from_slice(&[0x70, 0x00, 0x01, 0x00, 0, 0, 0, 0]);
        info.extend_from_slice(&0x1000u64.to_le_bytes());
        assert_eq!(info.len(), 0x70);
        let expected: [u8; 48] = Sha384::digest(&info).into();
        assert_eq!(digest.digest(), expected);
    }
}
