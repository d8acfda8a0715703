//! Expected launch measurements of an OVMF-compatible firmware as QEMU and KVM launch it:
//! the SEV-SNP launch digest ([`snp`], with the VMSAs of [`vmsa`]) and the TDX MRTD ([`tdx`]),
//! and the `halcyon measure` command that prints them.
//!
//! Both read the firmware through `halcyon_boot::ovmf`, the same layout code the image builder
//! will write it with.

pub mod snp;
pub mod tdx;
pub mod vmsa;

use anyhow::Context;
use halcyon_boot::ovmf::tdvf::TdvfSectionType;
use halcyon_boot::ovmf::{GuidTable, GuidTableError, OvmfError};
use std::path::PathBuf;
use vmsa::VcpuType;

/// Why a firmware cannot be measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeasureError {
    /// The firmware's table or metadata is malformed (or absent: no footer).
    Firmware(OvmfError),
    /// Zero vCPUs.
    NoVcpus,
    /// The image is larger than 4 GiB, below which QEMU maps it.
    ImageTooLarge { len: usize },
    /// The image is not a whole number of pages, which SNP_LAUNCH_UPDATE needs.
    ImageNotPageSized { len: usize },
    /// No SEV metadata: QEMU refuses to launch such a firmware as an SNP guest.
    NoSevMetadata,
    /// No SEV-ES reset block: QEMU refuses to launch such a firmware as an SEV-ES/SNP guest.
    NoSevEsResetBlock,
    /// No TDVF metadata.
    NoTdvfMetadata,
    /// Fewer than the two sections QEMU requires.
    TdvfTooFewSections { count: usize },
    /// A section type upstream QEMU refuses.
    TdvfSectionUnsupportedByQemu { index: usize, section_type: TdvfSectionType },
    /// A measured section's pages lie outside the image.
    TdvfSectionOutsideImage { index: usize },
    /// A measured section whose contents QEMU generates (the TD HOB).
    TdvfUnmeasurableSection { index: usize },
    /// The metadata adds more pages at launch than [`MAX_LAUNCH_PAGES`].
    TooManyPages { pages: u64 },
}

/// Most pages a launch may add besides the firmware (4 GiB): far more than any firmware asks
/// for, and a bound on the work a hostile image can make `halcyon measure` do.
pub const MAX_LAUNCH_PAGES: u64 = 1 << 20;

/// Checks that `pages` (summed per section) stays within [`MAX_LAUNCH_PAGES`].
fn check_page_count(pages: impl Iterator<Item = u64>) -> Result<(), MeasureError> {
    let mut total = 0u64;
    for n in pages {
        total = total.saturating_add(n);
    }
    if total > MAX_LAUNCH_PAGES {
        return Err(MeasureError::TooManyPages { pages: total });
    }
    Ok(())
}

impl From<OvmfError> for MeasureError {
    fn from(e: OvmfError) -> Self {
        Self::Firmware(e)
    }
}

impl std::fmt::Display for MeasureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Firmware(e) => write!(f, "{e}"),
            Self::NoVcpus => write!(f, "a guest needs at least one vCPU"),
            Self::ImageTooLarge { len } => write!(f, "firmware of {len} bytes does not fit below 4 GiB"),
            Self::ImageNotPageSized { len } => {
                write!(f, "firmware of {len} bytes is not a whole number of 4 KiB pages")
            }
            Self::NoSevMetadata => write!(f, "firmware has no SEV metadata, so QEMU cannot launch it as an SNP guest"),
            Self::NoSevEsResetBlock => {
                write!(f, "firmware has no SEV-ES reset block, so QEMU cannot launch it as an SNP guest")
            }
            Self::NoTdvfMetadata => write!(f, "firmware has no TDVF metadata, so QEMU cannot launch it as a TD"),
            Self::TdvfTooFewSections { count } => write!(f, "TDVF metadata has {count} sections; QEMU needs 2 or more"),
            Self::TdvfSectionUnsupportedByQemu { index, section_type } => {
                write!(f, "TDVF section {index} has type {section_type:?}, which QEMU does not load")
            }
            Self::TdvfSectionOutsideImage { index } => write!(f, "TDVF section {index} reaches past the firmware"),
            Self::TdvfUnmeasurableSection { index } => {
                write!(f, "TDVF section {index} is measured but its contents are built by QEMU")
            }
            Self::TooManyPages { pages } => {
                write!(f, "metadata adds {pages} pages at launch, more than the {MAX_LAUNCH_PAGES} accepted")
            }
        }
    }
}

impl std::error::Error for MeasureError {}

/// Which launch measurement `halcyon measure` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MeasurePlatform {
    /// AMD SEV-SNP: the launch digest (MEASUREMENT in the attestation report)
    Snp,
    /// Intel TDX: MRTD
    Tdx,
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `halcyon measure`: the expected measurement of `firmware` (default: Halcyon's image), hex.
pub fn measure(
    platform: MeasurePlatform,
    vcpus: Option<u32>,
    vcpu_type: Option<&str>,
    firmware: Option<PathBuf>,
) -> anyhow::Result<String> {
    let (mut path, is_default) = match firmware {
        Some(path) => (path, false),
        None => (crate::paths::default_firmware(), true),
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| {
            if is_default {
                format!("cannot read Halcyon's firmware {} (build it with `make image`, or give FIRMWARE)", path.display())
            } else {
                format!("cannot read {}", path.display())
            }
        })
    };
    let mut image = read(&path)?;
    // Halcyon's PVH ELF (say, from HALCYON_IMAGE) stands for the firmware `halcyon build`
    // wrote beside it.
    if image.starts_with(b"\x7fELF") {
        let (_, fd) = crate::firmware::output_paths(&path);
        image = read(&fd).with_context(|| format!("{} is an ELF; its firmware form {} is missing", path.display(), fd.display()))?;
        path = fd;
    }
    if let Err(GuidTableError::NoFooter | GuidTableError::ImageTooSmall { .. }) = GuidTable::parse(&image) {
        anyhow::bail!(
            "{} is not an OVMF-compatible firmware (no GUIDed table footer 48 bytes before its end)",
            path.display()
        );
    }
    let digest = match platform {
        MeasurePlatform::Snp => {
            let name = vcpu_type.unwrap_or(vmsa::DEFAULT_VCPU_TYPE);
            let vcpu_type = VcpuType::by_name(name).with_context(|| {
                let known: Vec<_> = VcpuType::names().collect();
                format!("unknown --vcpu-type {name} (known: {})", known.join(", "))
            })?;
            let launch =
                snp::SnpLaunch { vcpus: vcpus.unwrap_or(1), vcpu_type, sev_features: vmsa::SEV_FEATURES_KVM_DEFAULT };
            snp::launch_digest(&image, &launch).with_context(|| format!("cannot measure {}", path.display()))?
        }
        MeasurePlatform::Tdx => {
            if vcpus.is_some() || vcpu_type.is_some() {
                anyhow::bail!("--vcpus and --vcpu-type apply to --platform snp only: MRTD does not depend on them");
            }
            tdx::mrtd(&image).with_context(|| format!("cannot measure {}", path.display()))?
        }
    };
    Ok(hex(&digest))
}

#[cfg(test)]
mod tests;
