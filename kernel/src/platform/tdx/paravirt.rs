//! Device access and #VE handling in a TD: the kernel's port I/O, MMIO, MSR and CPUID go to
//! the host as explicit TDG.VP.VMCALLs (GHCI v1.5 §3: Instruction.IO, #VE.RequestMMIO,
//! Instruction.RDMSR/WRMSR, Instruction.CPUID), marshalled and checked by
//! `halcyon_hal::tdx::vmcall` above the kernel's one TDCALL ([`HardwareTdCall`]).
//!
//! What the host answers is untrusted: `hal` keeps only the bits of the access width, and
//! a refused or malformed answer ends the TD ([`fail`]) instead of handing the caller a
//! made-up value. The kernel expects two kinds of #VE, which `hal::tdx::ve` emulates: CPUID
//! of a leaf the TDX module leaves to the host, and MMIO by the virtio driver crate (its
//! BAR accesses are EPT violations on shared memory): the instruction, read only from the
//! kernel's text, is decoded and performed through TDVMCALL<#VE.RequestMMIO> if it is a
//! MOV, MOVZX, CMP or TEST on a register of a device the kernel enabled
//! (`devices::pci::is_device_register`) and agrees with the VE information. Everything
//! else is fatal. Written to the specifications, unverified on TDX hardware.

use crate::arch::interrupts::ExceptionFrame;
use crate::arch::paravirt::{CpuidResult, Paravirt, Width};
use crate::arch::tdcall::HardwareTdCall;
use crate::platform::mmio_fault::{registers, text_bytes, write_back};
use halcyon_hal::mmio_insn::MAX_INSTRUCTION_LEN;
use halcyon_hal::tdx::tdcall;
use halcyon_hal::tdx::ve::{self, VeContext, VeFatal};
use halcyon_hal::tdx::vmcall::{self, EXIT_REASON_EPT_VIOLATION};

/// CPUID leaves the TDX module always hands to the host with a #VE: the hypervisor range
/// 4000_0000h..=4FFF_FFFFh (TDX module v1.5 base architecture spec, "CPUID Virtualization").
/// The kernel asks the host for them directly instead of taking the #VE.
pub const HYPERVISOR_CPUID_LEAVES: core::ops::RangeInclusive<u32> = 0x4000_0000..=0x4FFF_FFFF;

/// The TDX [`Paravirt`]: stateless apart from the shared bit, which MMIO addresses carry
/// (device memory is shared memory in a TD; GHCI §3.7 "#VE.RequestMMIO" takes the GPA as
/// the guest maps it).
pub struct TdxParavirt {
    pub shared_bit: u64,
}

impl TdxParavirt {
    fn tdcall() -> HardwareTdCall {
        // SAFETY: a `TdxParavirt` exists only after `super::early_init` found the TDX CPUID
        // signature and TDG.VP.INFO succeeded, so this is a TD.
        unsafe { HardwareTdCall::new() }
    }
}

/// Ends the TD: ReportFatalError with `code` and `message` (GHCI §3.4), then halts for
/// ever. Used where the host refused an access the kernel cannot do without; nothing here
/// goes through the (failing) device paths, so this cannot recurse.
pub fn fail(code: u32, message: &str) -> ! {
    let mut t = TdxParavirt::tdcall();
    vmcall::report_fatal_error(&mut t, code, message);
    halt_loop()
}

/// Halts for ever the TD way: HLT would raise a #VE, so TDG.VP.VMCALL<Instruction.HLT>
/// with interrupts blocked (GHCI §3.11); if the host returns, ask again.
pub fn halt_loop() -> ! {
    let mut t = TdxParavirt::tdcall();
    loop {
        if vmcall::hlt(&mut t, true).is_err() {
            core::hint::spin_loop();
        }
    }
}

/// Halcyon's own ReportFatalError codes (GHCI leaves R12[31:0] to the TD) for refused
/// device accesses: 0D0x_0000h | the port or the low bits of the address.
const FATAL_IO: u32 = 0x0D01_0000;
const FATAL_MMIO: u32 = 0x0D02_0000;
const FATAL_MSR: u32 = 0x0D03_0000;
const FATAL_CPUID: u32 = 0x0D04_0000;

impl Paravirt for TdxParavirt {
    fn io_in(&self, port: u16, width: Width) -> u32 {
        vmcall::io_in(&mut Self::tdcall(), port, width.bytes() as u8)
            .unwrap_or_else(|_| fail(FATAL_IO | u32::from(port), "TDVMCALL<Instruction.IO> IN refused"))
    }

    fn io_out(&self, port: u16, width: Width, value: u32) {
        vmcall::io_out(&mut Self::tdcall(), port, width.bytes() as u8, value)
            .unwrap_or_else(|_| fail(FATAL_IO | u32::from(port), "TDVMCALL<Instruction.IO> OUT refused"))
    }

    fn mmio_read(&self, gpa: u64, width: Width) -> u64 {
        vmcall::mmio_read(&mut Self::tdcall(), gpa | self.shared_bit, width.bytes() as u8)
            .unwrap_or_else(|_| fail(FATAL_MMIO | (gpa as u32 & 0xFFFF), "TDVMCALL<#VE.RequestMMIO> read refused"))
    }

    fn mmio_write(&self, gpa: u64, width: Width, value: u64) {
        vmcall::mmio_write(&mut Self::tdcall(), gpa | self.shared_bit, width.bytes() as u8, value)
            .unwrap_or_else(|_| fail(FATAL_MMIO | (gpa as u32 & 0xFFFF), "TDVMCALL<#VE.RequestMMIO> write refused"))
    }

    /// The kernel reads no MSR in a TD today (SEV_STATUS only on AMD); any it adds goes to
    /// the host, whose answer is as untrusted as any device's.
    fn read_msr(&self, msr: u32) -> u64 {
        vmcall::rdmsr(&mut Self::tdcall(), msr)
            .unwrap_or_else(|_| fail(FATAL_MSR | (msr & 0xFFFF), "TDVMCALL<Instruction.RDMSR> refused"))
    }

    fn write_msr(&self, msr: u32, value: u64) {
        vmcall::wrmsr(&mut Self::tdcall(), msr, value)
            .unwrap_or_else(|_| fail(FATAL_MSR | (msr & 0xFFFF), "TDVMCALL<Instruction.WRMSR> refused"))
    }

    /// The TDX module answers most leaves itself (with values the TD's measured
    /// configuration fixes), so CPUID runs natively; the hypervisor leaves go to the host
    /// directly, and any other leaf the module leaves to the host arrives as a #VE that
    /// [`Self::handle_exception`] emulates the same way.
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        if HYPERVISOR_CPUID_LEAVES.contains(&leaf) {
            let [eax, ebx, ecx, edx] = vmcall::cpuid(&mut Self::tdcall(), leaf, subleaf)
                .unwrap_or_else(|_| fail(FATAL_CPUID | (leaf & 0xFFFF), "TDVMCALL<Instruction.CPUID> refused"));
            return CpuidResult { eax, ebx, ecx, edx };
        }
        // CPUID has no memory effects; a #VE it raises is handled below.
        core::arch::x86_64::__cpuid_count(leaf, subleaf)
    }

    fn handle_exception(&self, frame: &mut ExceptionFrame) {
        let mut t = Self::tdcall();
        // TDG.VP.VEINFO.GET once per #VE (it invalidates the information).
        let info = match tdcall::veinfo_get(&mut t) {
            Ok(info) => info,
            Err(e) => fail_ve(VeFatal::NoVeInfo(e), frame.rip),
        };
        if u64::from(info.exit_reason) == EXIT_REASON_EPT_VIOLATION {
            let mut buffer = [0u8; MAX_INSTRUCTION_LEN];
            let instruction = text_bytes(frame.rip, &mut buffer);
            let mut regs = registers(frame);
            match ve::handle_mmio(&mut t, &info, instruction, &mut regs, self.shared_bit, crate::devices::pci::is_device_register) {
                Ok(()) => return write_back(frame, &regs),
                Err(fatal) => fail_ve(fatal, frame.rip),
            }
        }
        let mut context = VeContext { rax: frame.rax, rbx: frame.rbx, rcx: frame.rcx, rdx: frame.rdx, rip: frame.rip };
        match ve::handle_cpuid(&mut t, &info, &mut context) {
            Ok(()) => {
                frame.rax = context.rax;
                frame.rbx = context.rbx;
                frame.rcx = context.rcx;
                frame.rdx = context.rdx;
                frame.rip = context.rip;
            }
            Err(fatal) => fail_ve(fatal, frame.rip),
        }
    }

    fn halt(&self) {
        if vmcall::hlt(&mut Self::tdcall(), true).is_err() {
            core::hint::spin_loop();
        }
    }
}

/// Ends the TD for a #VE it cannot handle. The serial log still works (explicit TDVMCALLs,
/// no #VE); the reason goes to the host in ReportFatalError as well.
fn fail_ve(fatal: VeFatal, rip: u64) -> ! {
    crate::log::print_fatal(format_args!("{fatal} at RIP {rip:#x}"));
    fail(fatal.code(), "unexpected #VE")
}
