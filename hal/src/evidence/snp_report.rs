//! The SEV-SNP ATTESTATION_REPORT: layout, checked parsing and field decoding (guest
//! policy, TCB versions, platform information, signing-key selection).
//!
//! AMD SEV Secure Nested Paging Firmware ABI Specification (56860) revision 1.58,
//! section 7.3 (MSG_REPORT_RSP), table "ATTESTATION_REPORT Structure"; table "Guest
//! Policy Structure" (section 4.3); table "TCB_VERSION Structure" (section 2.2). Report
//! versions: 2 (rev 1.51), 3 (rev 1.55: CPUID family/model/stepping at 0x188), 4 (same
//! layout as 3) and 5 (rev 1.58: LAUNCH_MIT_VECTOR/CURRENT_MIT_VECTOR at 0x1F8/0x200).
//! The signature (ECDSA P-384 with SHA-384, section "Signature Format") covers bytes
//! 0x000..0x2A0; it is checked by the host verifier, not here.

use core::fmt;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of ATTESTATION_REPORT in bytes (table "ATTESTATION_REPORT Structure").
pub const ATTESTATION_REPORT_SIZE: usize = 0x4A0;
/// The signed part of the report: bytes 0x0 to 0x29F inclusive.
pub const SIGNED_LEN: usize = 0x2A0;
/// SIGNATURE_ALGO value for ECDSA P-384 with SHA-384 (table "Signature Algorithm Encodings").
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// Oldest report version this parser reads (SNP ABI 1.51).
pub const MIN_VERSION: u32 = 2;
/// Newest report version this parser reads (SNP ABI 1.58).
pub const MAX_VERSION: u32 = 5;
/// Size of one ECDSA P-384 signature component as stored in the report (little-endian,
/// zero-extended to 72 bytes; section "ECDSA P-384 with SHA-384 Signature").
pub const ECDSA_COMPONENT_SIZE: usize = 72;

/// ECDSA signature as the firmware writes it (section "Signature Format", table "ECDSA
/// P-384 with SHA-384 Signature"): R and S little-endian, each zero-extended to 72 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct EcdsaP384Signature {
    pub r: [u8; ECDSA_COMPONENT_SIZE],
    pub s: [u8; ECDSA_COMPONENT_SIZE],
    pub reserved: [u8; 0x170],
}

/// ATTESTATION_REPORT, SNP ABI 56860 rev 1.58, table "ATTESTATION_REPORT Structure".
/// Fields are named as in the table; `reserved_XXX` is the reserved range at offset XXX.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
pub struct AttestationReport {
    pub version: U32,
    pub guest_svn: U32,
    pub policy: U64,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: U32,
    pub signature_algo: U32,
    pub current_tcb: U64,
    pub platform_info: U64,
    /// Bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 4:2 SIGNING_KEY, 31:5 reserved.
    pub key_info: U32,
    pub reserved_04c: U32,
    pub report_data: [u8; 64],
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    pub report_id_ma: [u8; 32],
    pub reported_tcb: U64,
    /// Version 3+: CPUID_FAM_ID (extended family + base family); reserved in version 2.
    pub cpuid_fam_id: u8,
    /// Version 3+: CPUID_MOD_ID (extended model + base model).
    pub cpuid_mod_id: u8,
    /// Version 3+: CPUID_STEP.
    pub cpuid_step: u8,
    pub reserved_18b: [u8; 0x15],
    pub chip_id: [u8; 64],
    pub committed_tcb: U64,
    pub current_build: u8,
    pub current_minor: u8,
    pub current_major: u8,
    pub reserved_1eb: u8,
    pub committed_build: u8,
    pub committed_minor: u8,
    pub committed_major: u8,
    pub reserved_1ef: u8,
    pub launch_tcb: U64,
    /// Version 5+: LAUNCH_MIT_VECTOR; reserved before.
    pub launch_mit_vector: U64,
    /// Version 5+: CURRENT_MIT_VECTOR; reserved before.
    pub current_mit_vector: U64,
    pub reserved_208: [u8; 0x98],
    pub signature: EcdsaP384Signature,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<EcdsaP384Signature>() == 0x200);
    assert!(size_of::<AttestationReport>() == ATTESTATION_REPORT_SIZE);
    assert!(offset_of!(AttestationReport, policy) == 0x08);
    assert!(offset_of!(AttestationReport, family_id) == 0x10);
    assert!(offset_of!(AttestationReport, image_id) == 0x20);
    assert!(offset_of!(AttestationReport, vmpl) == 0x30);
    assert!(offset_of!(AttestationReport, signature_algo) == 0x34);
    assert!(offset_of!(AttestationReport, current_tcb) == 0x38);
    assert!(offset_of!(AttestationReport, platform_info) == 0x40);
    assert!(offset_of!(AttestationReport, key_info) == 0x48);
    assert!(offset_of!(AttestationReport, report_data) == 0x50);
    assert!(offset_of!(AttestationReport, measurement) == 0x90);
    assert!(offset_of!(AttestationReport, host_data) == 0xC0);
    assert!(offset_of!(AttestationReport, id_key_digest) == 0xE0);
    assert!(offset_of!(AttestationReport, author_key_digest) == 0x110);
    assert!(offset_of!(AttestationReport, report_id) == 0x140);
    assert!(offset_of!(AttestationReport, report_id_ma) == 0x160);
    assert!(offset_of!(AttestationReport, reported_tcb) == 0x180);
    assert!(offset_of!(AttestationReport, cpuid_fam_id) == 0x188);
    assert!(offset_of!(AttestationReport, chip_id) == 0x1A0);
    assert!(offset_of!(AttestationReport, committed_tcb) == 0x1E0);
    assert!(offset_of!(AttestationReport, current_build) == 0x1E8);
    assert!(offset_of!(AttestationReport, committed_build) == 0x1EC);
    assert!(offset_of!(AttestationReport, launch_tcb) == 0x1F0);
    assert!(offset_of!(AttestationReport, launch_mit_vector) == 0x1F8);
    assert!(offset_of!(AttestationReport, current_mit_vector) == 0x200);
    assert!(offset_of!(AttestationReport, signature) == SIGNED_LEN);
};

/// Why bytes are not an attestation report this parser accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnpReportError {
    /// Not exactly [`ATTESTATION_REPORT_SIZE`] bytes.
    Length { actual: usize },
    /// VERSION outside [`MIN_VERSION`]..=[`MAX_VERSION`].
    UnsupportedVersion(u32),
    /// SIGNATURE_ALGO is not ECDSA P-384 with SHA-384.
    UnsupportedSignatureAlgo(u32),
    /// A reserved field (named by its offset) is not zero, or policy bit 17 is not one.
    Reserved { offset: usize },
    /// SIGNING_KEY names an encoding the specification does not define.
    SigningKey(u32),
}

impl fmt::Display for SnpReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnpReportError::Length { actual } => {
                write!(f, "{actual} bytes, an ATTESTATION_REPORT has {ATTESTATION_REPORT_SIZE}")
            }
            SnpReportError::UnsupportedVersion(v) => {
                write!(f, "version {v} is not supported (versions {MIN_VERSION} to {MAX_VERSION} are)")
            }
            SnpReportError::UnsupportedSignatureAlgo(a) => {
                write!(f, "signature algorithm {a} is not ECDSA P-384 with SHA-384 (1)")
            }
            SnpReportError::Reserved { offset } => write!(f, "reserved bits at offset {offset:#x} are not as specified"),
            SnpReportError::SigningKey(k) => write!(f, "SIGNING_KEY {k} is not defined"),
        }
    }
}

impl core::error::Error for SnpReportError {}

/// Which key signed the report (KEY_INFO bits 4:2, SIGNING_KEY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key (0).
    Vcek,
    /// Versioned Loaded Endorsement Key (1).
    Vlek,
    /// No key: the report is unsigned (7).
    None,
}

impl SigningKey {
    fn from_bits(bits: u32) -> Result<Self, SnpReportError> {
        match bits {
            0 => Ok(SigningKey::Vcek),
            1 => Ok(SigningKey::Vlek),
            7 => Ok(SigningKey::None),
            other => Err(SnpReportError::SigningKey(other)),
        }
    }
}

impl AttestationReport {
    /// Checked constructor for untrusted bytes: exactly [`ATTESTATION_REPORT_SIZE`] bytes,
    /// a known version, ECDSA P-384 signature algorithm, reserved fields zero (for the
    /// report's own version) and guest policy bit 17 set. After it succeeds, no accessor
    /// can fail or panic.
    pub fn parse(bytes: &[u8]) -> Result<&AttestationReport, SnpReportError> {
        let report = AttestationReport::ref_from_bytes(bytes)
            .map_err(|_| SnpReportError::Length { actual: bytes.len() })?;
        let version = report.version.get();
        if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
            return Err(SnpReportError::UnsupportedVersion(version));
        }
        let algo = report.signature_algo.get();
        if algo != SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(SnpReportError::UnsupportedSignatureAlgo(algo));
        }
        if report.key_info.get() >> 5 != 0 {
            return Err(SnpReportError::Reserved { offset: 0x48 });
        }
        SigningKey::from_bits((report.key_info.get() >> 2) & 0x7)?;
        if !GuestPolicy(report.policy.get()).reserved_ok() {
            return Err(SnpReportError::Reserved { offset: 0x08 });
        }
        let zero = |offset: usize, field: &[u8]| {
            if field.iter().all(|&b| b == 0) { Ok(()) } else { Err(SnpReportError::Reserved { offset }) }
        };
        zero(0x4C, report.reserved_04c.as_bytes())?;
        if version < 3 {
            zero(0x188, &[report.cpuid_fam_id, report.cpuid_mod_id, report.cpuid_step])?;
        }
        zero(0x18B, &report.reserved_18b)?;
        zero(0x1EB, &[report.reserved_1eb])?;
        zero(0x1EF, &[report.reserved_1ef])?;
        if version < 5 {
            zero(0x1F8, report.launch_mit_vector.as_bytes())?;
            zero(0x200, report.current_mit_vector.as_bytes())?;
        }
        zero(0x208, &report.reserved_208)?;
        zero(SIGNED_LEN + 2 * ECDSA_COMPONENT_SIZE, &report.signature.reserved)?;
        Ok(report)
    }

    /// The bytes the signature covers (0x000..0x2A0).
    pub fn signed_bytes(&self) -> &[u8] {
        &self.as_bytes()[..SIGNED_LEN]
    }

    pub fn guest_policy(&self) -> GuestPolicy {
        GuestPolicy(self.policy.get())
    }

    pub fn platform_info(&self) -> PlatformInfo {
        PlatformInfo(self.platform_info.get())
    }

    /// SIGNING_KEY; [`AttestationReport::parse`] has checked that it is defined.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_bits((self.key_info.get() >> 2) & 0x7).unwrap_or(SigningKey::None)
    }

    /// AUTHOR_KEY_EN: the digest of the ID-block author key is in AUTHOR_KEY_DIGEST.
    pub fn author_key_en(&self) -> bool {
        self.key_info.get() & 1 != 0
    }

    /// MASK_CHIP_KEY: CHIP_ID is zeroed and the report is not signed with a chip key.
    pub fn mask_chip_key(&self) -> bool {
        self.key_info.get() & 2 != 0
    }

    /// How this report's TCB_VERSION fields are laid out: from CPUID_FAM_ID in version
    /// 3 and later; version 2 reports come only from Milan/Genoa firmware.
    pub fn tcb_layout(&self) -> TcbLayout {
        if self.version.get() >= 3 && self.cpuid_fam_id >= 0x1A {
            TcbLayout::Turin
        } else {
            TcbLayout::MilanGenoa
        }
    }

    pub fn current_tcb(&self) -> TcbVersion {
        TcbVersion::decode(self.current_tcb.get(), self.tcb_layout())
    }

    pub fn reported_tcb(&self) -> TcbVersion {
        TcbVersion::decode(self.reported_tcb.get(), self.tcb_layout())
    }

    pub fn committed_tcb(&self) -> TcbVersion {
        TcbVersion::decode(self.committed_tcb.get(), self.tcb_layout())
    }

    pub fn launch_tcb(&self) -> TcbVersion {
        TcbVersion::decode(self.launch_tcb.get(), self.tcb_layout())
    }

    /// R and S as big-endian 48-byte scalars (the report stores them little-endian,
    /// zero-extended to 72 bytes). `None` if the extension bytes are not zero.
    pub fn signature_rs_be(&self) -> Option<([u8; 48], [u8; 48])> {
        Some((le72_to_be48(&self.signature.r)?, le72_to_be48(&self.signature.s)?))
    }
}

fn le72_to_be48(le: &[u8; ECDSA_COMPONENT_SIZE]) -> Option<[u8; 48]> {
    if le[48..].iter().any(|&b| b != 0) {
        return None;
    }
    let mut be = [0u8; 48];
    for (dst, src) in be.iter_mut().zip(le[..48].iter().rev()) {
        *dst = *src;
    }
    Some(be)
}

/// The guest policy (56860 rev 1.58, section 4.3, table "Guest Policy Structure").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// Bit 16: host SMT allowed.
    pub const SMT: u64 = 1 << 16;
    /// Bit 17: reserved, must be one.
    pub const RESERVED_MBO: u64 = 1 << 17;
    /// Bit 18: association with a migration agent allowed.
    pub const MIGRATE_MA: u64 = 1 << 18;
    /// Bit 19: debugging allowed.
    pub const DEBUG: u64 = 1 << 19;
    /// Bit 20: guest may be activated on one socket only.
    pub const SINGLE_SOCKET: u64 = 1 << 20;
    /// Bit 21: CXL may be populated with devices or memory.
    pub const CXL_ALLOW: u64 = 1 << 21;
    /// Bit 22: AES-256-XTS memory encryption required.
    pub const MEM_AES_256_XTS: u64 = 1 << 22;
    /// Bit 23: RAPL must be disabled.
    pub const RAPL_DIS: u64 = 1 << 23;
    /// Bit 24: ciphertext hiding must be enabled.
    pub const CIPHERTEXT_HIDING: u64 = 1 << 24;
    /// Bit 25: SNP_PAGE_MOVE / SNP_SWAP_OUT / SNP_SWAP_IN disabled for the guest.
    pub const PAGE_SWAP_DISABLE: u64 = 1 << 25;
    /// Bits 63:26: reserved, must be zero.
    pub const RESERVED_MBZ: u64 = !((1 << 26) - 1);

    /// The named flags, in bit order, as `(name, mask)`.
    pub const FLAGS: [(&'static str, u64); 9] = [
        ("SMT", Self::SMT),
        ("MIGRATE_MA", Self::MIGRATE_MA),
        ("DEBUG", Self::DEBUG),
        ("SINGLE_SOCKET", Self::SINGLE_SOCKET),
        ("CXL_ALLOW", Self::CXL_ALLOW),
        ("MEM_AES_256_XTS", Self::MEM_AES_256_XTS),
        ("RAPL_DIS", Self::RAPL_DIS),
        ("CIPHERTEXT_HIDING", Self::CIPHERTEXT_HIDING),
        ("PAGE_SWAP_DISABLE", Self::PAGE_SWAP_DISABLE),
    ];

    pub fn abi_minor(self) -> u8 {
        self.0 as u8
    }
    pub fn abi_major(self) -> u8 {
        (self.0 >> 8) as u8
    }
    pub fn has(self, flag: u64) -> bool {
        self.0 & flag == flag
    }
    pub fn debug_allowed(self) -> bool {
        self.has(Self::DEBUG)
    }
    pub fn smt_allowed(self) -> bool {
        self.has(Self::SMT)
    }
    pub fn migrate_ma_allowed(self) -> bool {
        self.has(Self::MIGRATE_MA)
    }
    pub fn single_socket(self) -> bool {
        self.has(Self::SINGLE_SOCKET)
    }
    /// Bit 17 set and bits 63:26 clear.
    pub fn reserved_ok(self) -> bool {
        self.has(Self::RESERVED_MBO) && self.0 & Self::RESERVED_MBZ == 0
    }
}

impl fmt::Display for GuestPolicy {
    /// `0x30000 (ABI 0.0; SMT)`: the raw value, the minimum ABI and the flags set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x} (ABI {}.{}", self.0, self.abi_major(), self.abi_minor())?;
        let mut sep = "; ";
        for (name, mask) in Self::FLAGS {
            if self.has(mask) {
                write!(f, "{sep}{name}")?;
                sep = ", ";
            }
        }
        f.write_str(")")
    }
}

/// PLATFORM_INFO (56860 rev 1.58, table "PLATFORM_INFO Field").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlatformInfo(pub u64);

impl PlatformInfo {
    pub const SMT_EN: u64 = 1 << 0;
    pub const TSME_EN: u64 = 1 << 1;
    pub const ECC_EN: u64 = 1 << 2;
    pub const RAPL_DIS: u64 = 1 << 3;
    pub const CIPHERTEXT_HIDING_EN: u64 = 1 << 4;
    pub const ALIAS_CHECK_COMPLETE: u64 = 1 << 5;
    pub const TIO_EN: u64 = 1 << 7;

    pub fn has(self, flag: u64) -> bool {
        self.0 & flag == flag
    }
}

/// How a platform lays out TCB_VERSION (56860 rev 1.58, table "TCB_VERSION Structure";
/// Turin (family 1Ah) adds an FMC field and moves the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcbLayout {
    /// Family 19h: BOOT_LOADER 7:0, TEE 15:8, SNP 55:48, MICROCODE 63:56.
    MilanGenoa,
    /// Family 1Ah: FMC 7:0, BOOT_LOADER 15:8, TEE 23:16, SNP 31:24, MICROCODE 63:56.
    Turin,
}

/// A decoded TCB_VERSION: the security version numbers of each firmware component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbVersion {
    pub raw: u64,
    pub fmc: Option<u8>,
    pub boot_loader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl TcbVersion {
    pub fn decode(raw: u64, layout: TcbLayout) -> Self {
        let byte = |n: u32| (raw >> (8 * n)) as u8;
        match layout {
            TcbLayout::MilanGenoa => {
                TcbVersion { raw, fmc: None, boot_loader: byte(0), tee: byte(1), snp: byte(6), microcode: byte(7) }
            }
            TcbLayout::Turin => {
                TcbVersion { raw, fmc: Some(byte(0)), boot_loader: byte(1), tee: byte(2), snp: byte(3), microcode: byte(7) }
            }
        }
    }
}

impl fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fmc) = self.fmc {
            write!(f, "fmc {fmc}, ")?;
        }
        write!(f, "bootloader {}, tee {}, snp {}, microcode {}", self.boot_loader, self.tee, self.snp, self.microcode)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A well-formed (unsigned) version-`version` report with recognisable fields.
    pub(crate) fn sample(version: u32) -> Vec<u8> {
        let mut b = alloc::vec![0u8; ATTESTATION_REPORT_SIZE];
        b[0..4].copy_from_slice(&version.to_le_bytes());
        b[4..8].copy_from_slice(&7u32.to_le_bytes());
        b[0x08..0x10].copy_from_slice(&0x0003_0000u64.to_le_bytes());
        b[0x34..0x38].copy_from_slice(&1u32.to_le_bytes());
        b[0x50..0x90].fill(0xAB);
        b[0x90..0xC0].fill(0xCD);
        b[0x180..0x188].copy_from_slice(&0x1800_0000_0000_0304u64.to_le_bytes());
        if version >= 3 {
            b[0x188] = 0x19;
            b[0x189] = 0x11;
            b[0x18A] = 0x01;
        }
        // R = 1, S = 2 (little-endian).
        b[0x2A0] = 1;
        b[0x2A0 + 72] = 2;
        b
    }

    #[test]
    fn parses_versions_2_3_5() {
        for version in [2, 3, 4, 5] {
            let bytes = sample(version);
            let r = AttestationReport::parse(&bytes).unwrap();
            assert_eq!(r.version.get(), version);
            assert_eq!(r.guest_svn.get(), 7);
            assert_eq!(r.report_data, [0xAB; 64]);
            assert_eq!(r.measurement, [0xCD; 48]);
            assert_eq!(r.signing_key(), SigningKey::Vcek);
            assert_eq!(r.signed_bytes().len(), SIGNED_LEN);
            let tcb = r.reported_tcb();
            assert_eq!((tcb.boot_loader, tcb.tee, tcb.snp, tcb.microcode), (4, 3, 0, 0x18));
            let (rr, ss) = r.signature_rs_be().unwrap();
            assert_eq!((rr[47], ss[47], rr[0]), (1, 2, 0));
        }
    }

    #[test]
    fn rejects_malformed() {
        let good = sample(3);
        assert_eq!(AttestationReport::parse(&good[1..]).map(|_| ()), Err(SnpReportError::Length { actual: 0x49F }));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(AttestationReport::parse(&long), Err(SnpReportError::Length { .. })));
        let with = |at: usize, v: u8| {
            let mut b = good.clone();
            b[at] = v;
            AttestationReport::parse(&b).map(|_| ())
        };
        assert_eq!(with(0, 1), Err(SnpReportError::UnsupportedVersion(1)));
        assert_eq!(with(0, 6), Err(SnpReportError::UnsupportedVersion(6)));
        assert_eq!(with(0x34, 2), Err(SnpReportError::UnsupportedSignatureAlgo(2)));
        assert_eq!(with(0x48, 2 << 2), Err(SnpReportError::SigningKey(2)));
        assert_eq!(with(0x48, 0x20), Err(SnpReportError::Reserved { offset: 0x48 }));
        assert_eq!(with(0x0A, 0), Err(SnpReportError::Reserved { offset: 0x08 }), "policy bit 17 must be one");
        assert_eq!(with(0x0F, 1), Err(SnpReportError::Reserved { offset: 0x08 }));
        assert_eq!(with(0x4C, 1), Err(SnpReportError::Reserved { offset: 0x4C }));
        assert_eq!(with(0x190, 1), Err(SnpReportError::Reserved { offset: 0x18B }));
        assert_eq!(with(0x1F8, 1), Err(SnpReportError::Reserved { offset: 0x1F8 }), "MIT vectors are version 5");
        assert_eq!(with(0x29F, 1), Err(SnpReportError::Reserved { offset: 0x208 }));
        assert_eq!(with(0x4A0 - 1, 1), Err(SnpReportError::Reserved { offset: 0x330 }));
        let mut v2 = sample(2);
        v2[0x188] = 0x19;
        assert_eq!(AttestationReport::parse(&v2).map(|_| ()), Err(SnpReportError::Reserved { offset: 0x188 }));
        let mut v5 = sample(5);
        v5[0x1F8] = 1;
        assert!(AttestationReport::parse(&v5).is_ok());
        // A signature component whose zero extension is not zero is not a P-384 scalar.
        let mut b = good.clone();
        b[0x2A0 + 48] = 1;
        assert_eq!(AttestationReport::parse(&b).unwrap().signature_rs_be(), None);
    }

    #[test]
    fn policy_and_tcb_decoding() {
        // 0x30000: SMT allowed, bit 17 (MBO), ABI 0.0 — QEMU's default SNP policy.
        let p = GuestPolicy(0x30000);
        assert!(p.reserved_ok() && p.smt_allowed() && !p.debug_allowed() && !p.migrate_ma_allowed());
        assert_eq!(p.to_string(), "0x30000 (ABI 0.0; SMT)");
        let p = GuestPolicy(0x000A_1F05 | GuestPolicy::SINGLE_SOCKET);
        assert_eq!((p.abi_major(), p.abi_minor()), (0x1F, 5));
        assert!(p.debug_allowed() && p.single_socket() && !p.smt_allowed());
        assert_eq!(p.to_string(), "0x1a1f05 (ABI 31.5; DEBUG, SINGLE_SOCKET)");
        assert!(!GuestPolicy(0).reserved_ok());
        assert!(!GuestPolicy(0x20000 | 1 << 26).reserved_ok());
        let t = TcbVersion::decode(0x1B00_0000_0000_0B03, TcbLayout::MilanGenoa);
        assert_eq!((t.boot_loader, t.tee, t.snp, t.microcode, t.fmc), (3, 0x0B, 0, 0x1B, None));
        let t = TcbVersion::decode(0x4800_0000_1803_0201, TcbLayout::Turin);
        assert_eq!((t.fmc, t.boot_loader, t.tee, t.snp, t.microcode), (Some(1), 2, 3, 0x18, 0x48));
        assert_eq!(t.to_string(), "fmc 1, bootloader 2, tee 3, snp 24, microcode 72");
        let mut turin = sample(3);
        turin[0x188] = 0x1A;
        assert_eq!(AttestationReport::parse(&turin).unwrap().tcb_layout(), TcbLayout::Turin);
        assert_eq!(AttestationReport::parse(&sample(2)).unwrap().tcb_layout(), TcbLayout::MilanGenoa);
        assert!(PlatformInfo(0x21).has(PlatformInfo::SMT_EN | PlatformInfo::ALIAS_CHECK_COMPLETE));
    }

    #[test]
    fn mutated_reports_never_panic() {
        let mut m = crate::mutation::Mutator::new(0x5e7);
        let valid = sample(3);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let input = m.mutate(&valid);
            if let Ok(r) = AttestationReport::parse(&input) {
                accepted += 1;
                // Every accessor is total after the checked constructor.
                let _ = (r.guest_policy().to_string(), r.current_tcb().to_string(), r.launch_tcb(), r.committed_tcb());
                let _ = (r.signing_key(), r.author_key_en(), r.mask_chip_key(), r.signature_rs_be(), r.platform_info());
                assert_eq!(r.signed_bytes(), &input[..SIGNED_LEN]);
            }
        }
        assert!(accepted > 0 && accepted < 20_000, "accepted {accepted}");
    }
}
