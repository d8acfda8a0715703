//! The hook through which a confidential-VM platform takes over the kernel's own device
//! access and the exceptions only a confidential VM raises.
//!
//! On a plain VM nothing is installed and the kernel executes IN/OUT, MOV to MMIO, RDMSR,
//! WRMSR and CPUID itself (the hypervisor intercepts them transparently). On SEV-SNP those
//! instructions raise #VC and on TDX #VE, and the values the hypervisor supplies must be
//! asked for explicitly (GHCB exits, TDVMCALLs) and checked. So `arch::port`, `arch::mmio`
//! and `arch::cpuid` ask [`installed`] first, and the exception path hands #VE (vector 20)
//! and #VC (vector 29) to [`Paravirt::handle_exception`].
//!
//! The platform installs itself once, early in boot, before any of those accesses that
//! would otherwise fault; it never uninstalls. A platform that cannot complete an access
//! (the hypervisor refused or answered nonsense) ends the VM: the caller cannot be trusted
//! to handle a made-up value.

use super::interrupts::ExceptionFrame;
pub use core::arch::x86_64::CpuidResult;
use spin::Once;

/// The size of one device access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    U8 = 1,
    U16 = 2,
    U32 = 4,
    #[allow(dead_code)] // no 64-bit device access in the kernel yet; the platforms handle it
    U64 = 8,
}

impl Width {
    #[allow(dead_code)] // for platforms that move data by size (TDX MMIO)
    pub const fn bytes(self) -> usize {
        self as usize
    }
}

/// The x86 exception vectors a confidential VM adds (Intel SDM vol. 3A table 6-1: #VE;
/// AMD APM vol. 2 §8.2.21: #VC).
pub const VIRTUALIZATION_EXCEPTION: u64 = 20;
pub const VMM_COMMUNICATION_EXCEPTION: u64 = 29;

/// Device access and exception handling on a confidential-VM platform.
pub trait Paravirt: Sync {
    fn io_in(&self, port: u16, width: Width) -> u32;
    fn io_out(&self, port: u16, width: Width, value: u32);
    fn mmio_read(&self, gpa: u64, width: Width) -> u64;
    fn mmio_write(&self, gpa: u64, width: Width, value: u64);
    fn read_msr(&self, msr: u32) -> u64;
    #[allow(dead_code)] // the kernel writes no intercepted MSR yet
    fn write_msr(&self, msr: u32, value: u64);
    /// CPUID from the source the platform trusts (the SNP CPUID page; the TDX module, or
    /// the host through TDVMCALL for the leaves the module leaves to it).
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult;
    /// Handles #VE or #VC (`frame.vector`): emulates what the kernel may legitimately
    /// cause (advancing `frame.rip`) and returns, or ends the VM with a reason.
    fn handle_exception(&self, frame: &mut ExceptionFrame);
    /// Halts this CPU until the next event, with interrupts blocked ([`super::halt_forever`]
    /// calls it in a loop). HLT itself, unless the platform traps it (TDX: a #VE, so it
    /// asks the host with TDG.VP.VMCALL<Instruction.HLT> instead).
    fn halt(&self) {
        ::x86_64::instructions::hlt();
    }
}

static INSTALLED: Once<&'static dyn Paravirt> = Once::new();

/// Routes device access through `platform` from now on (once; later calls are ignored).
pub fn install(platform: &'static dyn Paravirt) {
    INSTALLED.call_once(|| platform);
}

/// The installed platform, if any.
#[inline]
pub fn installed() -> Option<&'static dyn Paravirt> {
    INSTALLED.get().copied()
}
