//! CPUID and MSR access, and the feature bits the kernel asks about.

pub use core::arch::x86_64::CpuidResult;

/// Executes CPUID for `leaf`/`subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    if let Some(pv) = super::paravirt::installed() {
        return pv.cpuid(leaf, subleaf);
    }
    // CPUID is always available in long mode and has no memory effects.
    core::arch::x86_64::__cpuid_count(leaf, subleaf)
}

/// Highest basic leaf (CPUID.0:EAX).
pub fn max_basic_leaf() -> u32 {
    cpuid(0, 0).eax
}

/// Highest extended leaf (CPUID.80000000h:EAX).
pub fn max_extended_leaf() -> u32 {
    cpuid(0x8000_0000, 0).eax
}

/// The 12-byte signature a leaf returns in EBX, EDX, ECX order (the vendor string of
/// leaf 0, or a hypervisor's or the TDX module's signature leaf).
pub fn signature(leaf: u32) -> [u8; 12] {
    let r = cpuid(leaf, 0);
    let mut v = [0u8; 12];
    v[0..4].copy_from_slice(&r.ebx.to_le_bytes());
    v[4..8].copy_from_slice(&r.edx.to_le_bytes());
    v[8..12].copy_from_slice(&r.ecx.to_le_bytes());
    v
}

/// CPUID.01H:ECX.RDRAND[bit 30] (Intel SDM vol. 2A, table 3-10).
pub fn has_rdrand() -> bool {
    cpuid(1, 0).ecx & (1 << 30) != 0
}

/// CPUID.(EAX=07H,ECX=0):EBX.RDSEED[bit 18].
pub fn has_rdseed() -> bool {
    max_basic_leaf() >= 7 && cpuid(7, 0).ebx & (1 << 18) != 0
}

/// Reads a model-specific register.
///
/// # Safety
/// The MSR must exist on this CPU (otherwise #GP), and reading it must have no side
/// effects the caller has not accounted for.
pub unsafe fn read_msr(msr: u32) -> u64 {
    if let Some(pv) = super::paravirt::installed() {
        return pv.read_msr(msr);
    }
    // SAFETY: the caller guarantees the MSR exists.
    unsafe { ::x86_64::registers::model_specific::Msr::new(msr).read() }
}
