//! The SEV-SNP decisions of the firmware entry (`firmware_entry.s`), written once: the
//! constants the assembly takes as `const` operands, and [`decide`], the same rules in Rust
//! so the host can test them (the assembly runs before paging and cannot be unit-tested).
//!
//! Why the entry needs them: with SEV-SNP active, the page tables must carry the C-bit on
//! every private page before paging is turned on, and its position must come from the
//! PSP-validated CPUID page (SNP ABI 56860 rev. 1.55, SNP_LAUNCH_UPDATE page type CPUID),
//! never from the hypervisor's CPUID. Detection avoids CPUID altogether (under SEV-ES/SNP
//! it raises #VC, for which there is no handler yet): the entry reads SEV_STATUS
//! (C001_0131h, AMD APM vol. 2 §15.34.10) with a #GP handler installed, because that RDMSR
//! raises #GP on CPUs without the MSR (Intel, or KVM without SEV); QEMU's TCG reads it as 0.
//! Either way a plain VM sees "no SEV" and boots as before.

/// SEV_STATUS MSR and its bits (AMD APM vol. 2 §15.34.10, "SEV_STATUS MSR").
pub const SEV_STATUS_MSR: u32 = 0xC001_0131;
pub const SEV_STATUS_SEV: u32 = 1 << 0;
pub const SEV_STATUS_SEV_ES: u32 = 1 << 1;
pub const SEV_STATUS_SNP: u32 = 1 << 2;

/// The GHCB MSR (GHCB spec 56421 rev. 2.03 §2.3.1), for the termination request.
pub const GHCB_MSR: u32 = 0xC001_0130;

/// CPUID page layout (SNP ABI 56860 rev. 1.55, "CPUID Function Structure"; the same layout as
/// `halcyon_hal::snp::cpuid_page`): a count, 12 reserved bytes, then 48-byte entries.
pub const CPUID_PAGE_COUNT_MAX: u32 = 64;
pub const CPUID_PAGE_ENTRIES: u32 = 16;
pub const CPUID_ENTRY_SIZE: u32 = 48;
pub const CPUID_ENTRY_EAX_IN: u32 = 0;
pub const CPUID_ENTRY_EAX: u32 = 24;
pub const CPUID_ENTRY_EBX: u32 = 28;

/// CPUID Fn8000_001F: EAX bit 1 = SEV, bit 4 = SEV-SNP, EBX[5:0] = C-bit position (AMD APM
/// vol. 3, appendix E.4.17).
pub const ENCRYPTION_LEAF: u32 = 0x8000_001F;
pub const ENCRYPTION_EAX_REQUIRED: u32 = (1 << 1) | (1 << 4);
pub const C_BIT_FIELD: u32 = 0x3F;
/// The C-bit must be a physical-address bit above 4 GiB (the entry puts it in the high
/// dword of each entry) and within a page-table entry's address field (bits 51:12).
pub const C_BIT_MIN: u32 = 32;
pub const C_BIT_MAX: u32 = 51;

/// GHCB MSR termination request (GHCB spec 56421 rev. 2.03 §2.3.6, GHCBInfo 100h): reason
/// code in bits 23:16, reason-code set in 15:12.
const fn termination(set: u32, code: u32) -> u32 {
    (code << 16) | (set << 12) | 0x100
}
/// Set 0, code 2: "SEV-SNP features not supported" (SEV or SEV-ES without SNP).
pub const TERMINATE_SNP_UNSUPPORTED: u32 = termination(0, 2);
/// Halcyon's set 0xF, code 5: the CPUID page is missing or inconsistent (the value of
/// `halcyon_hal::snp::ghcb_msr::HalcyonReason::CpuidPage`).
pub const TERMINATE_CPUID_PAGE: u32 = termination(0xF, 5);

/// What the entry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryDecision {
    /// No SEV: page tables without a C-bit.
    Plain,
    /// SEV-SNP: page tables with the C-bit at this position.
    Snp { c_bit: u32 },
    /// Ask the hypervisor to end the VM with this GHCB MSR value, then halt.
    Terminate(u32),
    /// SEV without SEV-ES: no GHCB to report through; halt.
    Halt,
}

fn read_u32(page: &[u8], offset: u32) -> Option<u32> {
    let at = offset as usize;
    Some(u32::from_le_bytes(page.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// The entry's rules: `sev_status` is the low half of SEV_STATUS (0 when RDMSR faulted),
/// `cpuid_page` the SNP CPUID page (read only when SNP is on).
pub fn decide(sev_status: u32, cpuid_page: &[u8]) -> EntryDecision {
    if sev_status & SEV_STATUS_SEV == 0 && sev_status & (SEV_STATUS_SEV_ES | SEV_STATUS_SNP) == 0 {
        return EntryDecision::Plain;
    }
    let all = SEV_STATUS_SEV | SEV_STATUS_SEV_ES | SEV_STATUS_SNP;
    if sev_status & all != all {
        // Halcyon drives SNP only; with SEV-ES (or a nonsensical status) the GHCB MSR
        // protocol is there to say so.
        if sev_status & (SEV_STATUS_SEV_ES | SEV_STATUS_SNP) == 0 {
            return EntryDecision::Halt;
        }
        return EntryDecision::Terminate(TERMINATE_SNP_UNSUPPORTED);
    }
    let bad = EntryDecision::Terminate(TERMINATE_CPUID_PAGE);
    let Some(count) = read_u32(cpuid_page, 0) else { return bad };
    if count == 0 || count > CPUID_PAGE_COUNT_MAX {
        return bad;
    }
    for i in 0..count {
        let entry = CPUID_PAGE_ENTRIES + i * CPUID_ENTRY_SIZE;
        if read_u32(cpuid_page, entry + CPUID_ENTRY_EAX_IN) != Some(ENCRYPTION_LEAF) {
            continue;
        }
        let (Some(eax), Some(ebx)) = (read_u32(cpuid_page, entry + CPUID_ENTRY_EAX), read_u32(cpuid_page, entry + CPUID_ENTRY_EBX)) else {
            return bad;
        };
        let c_bit = ebx & C_BIT_FIELD;
        if eax & ENCRYPTION_EAX_REQUIRED != ENCRYPTION_EAX_REQUIRED || !(C_BIT_MIN..=C_BIT_MAX).contains(&c_bit) {
            return bad;
        }
        return EntryDecision::Snp { c_bit };
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(entries: &[(u32, u32, u32)]) -> [u8; 4096] {
        let mut page = [0u8; 4096];
        page[..4].copy_from_slice(&(entries.len() as u32).to_le_bytes());
        for (i, (leaf, eax, ebx)) in entries.iter().enumerate() {
            let at = (CPUID_PAGE_ENTRIES + i as u32 * CPUID_ENTRY_SIZE) as usize;
            page[at..at + 4].copy_from_slice(&leaf.to_le_bytes());
            page[at + 24..at + 28].copy_from_slice(&eax.to_le_bytes());
            page[at + 28..at + 32].copy_from_slice(&ebx.to_le_bytes());
        }
        page
    }

    #[test]
    fn a_plain_vm_never_reads_the_cpuid_page() {
        assert_eq!(decide(0, &[]), EntryDecision::Plain);
    }

    #[test]
    fn snp_takes_the_c_bit_from_the_cpuid_page() {
        // Milan/Genoa: C-bit 51 (EBX = 0x0000_4173 → 0x33).
        let good = page(&[(0, 0x10, 0), (ENCRYPTION_LEAF, 0x1_019F, 0x4173)]);
        assert_eq!(decide(0x7, &good), EntryDecision::Snp { c_bit: 51 });
        // Higher SEV_STATUS bits (other SNP features) do not matter here.
        assert_eq!(decide(0x7 | 1 << 16, &good), EntryDecision::Snp { c_bit: 51 });
        assert_eq!(decide(0x7, &page(&[(ENCRYPTION_LEAF, 0x12, 47)])), EntryDecision::Snp { c_bit: 47 });
    }

    #[test]
    fn sev_without_snp_is_refused() {
        assert_eq!(decide(SEV_STATUS_SEV, &[]), EntryDecision::Halt);
        assert_eq!(decide(0x3, &[]), EntryDecision::Terminate(0x2_0100));
        // SNP without SEV and SEV-ES is inconsistent.
        assert_eq!(decide(SEV_STATUS_SNP, &[]), EntryDecision::Terminate(TERMINATE_SNP_UNSUPPORTED));
    }

    #[test]
    fn a_missing_or_inconsistent_cpuid_page_terminates() {
        let bad = EntryDecision::Terminate(TERMINATE_CPUID_PAGE);
        assert_eq!(TERMINATE_CPUID_PAGE, 0x5_F100);
        assert_eq!(decide(0x7, &[0u8; 4096]), bad, "empty page");
        let mut too_many = page(&[(ENCRYPTION_LEAF, 0x12, 51)]);
        too_many[..4].copy_from_slice(&65u32.to_le_bytes());
        assert_eq!(decide(0x7, &too_many), bad, "count above 64");
        assert_eq!(decide(0x7, &page(&[(0x8000_0000, 0x8000_001F, 0)])), bad, "no encryption leaf");
        assert_eq!(decide(0x7, &page(&[(ENCRYPTION_LEAF, 0x02, 51)])), bad, "SNP not reported");
        assert_eq!(decide(0x7, &page(&[(ENCRYPTION_LEAF, 0x12, 31)])), bad, "C-bit below 4 GiB");
        assert_eq!(decide(0x7, &page(&[(ENCRYPTION_LEAF, 0x12, 52)])), bad, "C-bit above bit 51");
        // The leaf past the declared count is not looked at.
        let mut hidden = page(&[(0, 0, 0), (ENCRYPTION_LEAF, 0x12, 51)]);
        hidden[..4].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(decide(0x7, &hidden), bad);
    }
}
