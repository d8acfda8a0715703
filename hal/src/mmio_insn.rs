//! A strict decoder of the x86-64 instructions compilers emit for volatile device register
//! accesses, for the confidential-VM MMIO handlers (SEV-SNP #VC, TDX #VE).
//!
//! On SEV-SNP and TDX, a plain load or store to device memory (the virtio driver crate's
//! BAR accesses) faults into the kernel, which must perform the access through the
//! hypervisor itself: it needs the direction, width, register operand and instruction
//! length, and on SEV-SNP the address (the #VC does not report it; the kernel
//! identity-maps, so the effective address is the guest-physical address).
//!
//! Accepted, in 64-bit mode only (Intel SDM vol. 2A ch. 2 "Instruction Format", tables
//! 2-1..2-3 for ModRM/SIB and §2.2.1 for REX; the MOV and MOVZX pages in vol. 2B):
//! - `88 /r` MOV r/m8, r8; `89 /r` MOV r/m16/32/64, r; `8A /r` MOV r8, r/m8;
//!   `8B /r` MOV r, r/m16/32/64;
//! - `C6 /0 ib` MOV r/m8, imm8; `C7 /0 iw/id` MOV r/m16/32/64, imm16/imm32 (sign-extended
//!   to 64 with REX.W);
//! - `0F B6 /r` MOVZX r16/32/64, r/m8; `0F B7 /r` MOVZX r32/64, r/m16;
//! - CMP and TEST with a memory operand (`38`/`39`/`3A`/`3B /r`, `80 /7 ib`, `81 /7 iw/id`,
//!   `83 /7 ib`; `84`/`85 /r`, `F6 /0 ib`, `F7 /0 iw/id`): LLVM folds a volatile load into
//!   them, and the kernel image has them on virtio registers (`testb $0xcf, 0x14(%rax)`
//!   polling the device status, `cmp 0x15(%r15), %r12b` on the configuration generation).
//!   They only read; [`MmioInstruction::complete`] sets the arithmetic flags as the CPU
//!   would (SDM vol. 1 §3.4.3.1 and appendix A "EFLAGS Cross-Reference").
//! - prefixes: at most one operand-size `66` (not with the byte forms), then at most one REX
//!   immediately before the opcode.
//!
//! Everything else is an error, never a guess: other opcodes, LOCK, REP/REPNE, segment and
//! address-size prefixes, repeated prefixes, register (mod = 11) forms, truncated bytes.
//! The decoder never panics on any input (tested with every prefix of every encoding and
//! with random bytes).

use core::fmt;

/// The longest x86 instruction (SDM vol. 2A §2.3.11 "Instruction length").
pub const MAX_INSTRUCTION_LEN: usize = 15;

/// General-purpose registers in encoding order (SDM vol. 2A table 2-2 and §2.2.1.2: REX.R/X/B
/// extend the 3-bit fields to r8..r15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Gpr {
    Rax = 0,
    Rcx = 1,
    Rdx = 2,
    Rbx = 3,
    Rsp = 4,
    Rbp = 5,
    Rsi = 6,
    Rdi = 7,
    R8 = 8,
    R9 = 9,
    R10 = 10,
    R11 = 11,
    R12 = 12,
    R13 = 13,
    R14 = 14,
    R15 = 15,
}

impl Gpr {
    const ALL: [Gpr; 16] = [
        Gpr::Rax,
        Gpr::Rcx,
        Gpr::Rdx,
        Gpr::Rbx,
        Gpr::Rsp,
        Gpr::Rbp,
        Gpr::Rsi,
        Gpr::Rdi,
        Gpr::R8,
        Gpr::R9,
        Gpr::R10,
        Gpr::R11,
        Gpr::R12,
        Gpr::R13,
        Gpr::R14,
        Gpr::R15,
    ];

    /// The register with 4-bit encoding `n` (only the low 4 bits are used).
    pub const fn from_encoding(n: u8) -> Self {
        Self::ALL[(n & 0xF) as usize]
    }
}

/// The interrupted context's general registers, indexed by [`Gpr`], RIP and RFLAGS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
}

/// RFLAGS arithmetic status bits (SDM vol. 1 §3.4.3.1, figure 3-8).
pub mod flags {
    pub const CF: u64 = 1 << 0;
    pub const PF: u64 = 1 << 2;
    pub const AF: u64 = 1 << 4;
    pub const ZF: u64 = 1 << 6;
    pub const SF: u64 = 1 << 7;
    pub const OF: u64 = 1 << 11;
    /// All six status flags CMP and TEST write.
    pub const STATUS: u64 = CF | PF | AF | ZF | SF | OF;
}

impl Registers {
    pub fn get(&self, r: Gpr) -> u64 {
        self.gpr[r as usize]
    }

    pub fn set(&mut self, r: Gpr, value: u64) {
        self.gpr[r as usize] = value;
    }
}

/// The size of a memory access or register operand, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    U8 = 1,
    U16 = 2,
    U32 = 4,
    U64 = 8,
}

impl Width {
    pub const fn bytes(self) -> u64 {
        self as u64
    }

    pub const fn mask(self) -> u64 {
        match self {
            Width::U8 => 0xFF,
            Width::U16 => 0xFFFF,
            Width::U32 => 0xFFFF_FFFF,
            Width::U64 => u64::MAX,
        }
    }
}

/// A register operand: which register, how wide, and for 8-bit operands without REX
/// whether it is the legacy high byte (AH, CH, DH, BH: SDM vol. 2A §3.7.2.1 / table 3-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterOperand {
    pub register: Gpr,
    pub width: Width,
    pub high_byte: bool,
}

impl RegisterOperand {
    /// The operand's value as read from `regs`.
    pub fn read(&self, regs: &Registers) -> u64 {
        let full = regs.get(self.register);
        if self.high_byte { (full >> 8) & 0xFF } else { full & self.width.mask() }
    }

    /// Writes `value` (truncated to the operand width) with the partial-register rules of
    /// 64-bit mode (SDM vol. 1 §3.4.1.1): a 32-bit destination zero-extends to 64 bits;
    /// 8- and 16-bit destinations leave the other bits unchanged.
    pub fn write(&self, regs: &mut Registers, value: u64) {
        let old = regs.get(self.register);
        let new = match (self.width, self.high_byte) {
            (_, true) => (old & !0xFF00) | ((value & 0xFF) << 8),
            (Width::U32, false) => value & 0xFFFF_FFFF,
            (Width::U64, false) => value,
            (w, false) => (old & !w.mask()) | (value & w.mask()),
        };
        regs.set(self.register, new);
    }
}

/// What the instruction does with the device register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load of [`MmioInstruction::width`] bytes into `destination`, zero-extended first
    /// (MOVZX, or a plain MOV whose destination is as wide as the access).
    Read { destination: RegisterOperand },
    /// A store of the register's low [`MmioInstruction::width`] bytes.
    WriteRegister { source: RegisterOperand },
    /// A store of an immediate (already sign-extended and truncated to the access width).
    WriteImmediate { value: u64 },
    /// A read whose value only sets the status flags: CMP (`memory - other`, or
    /// `other - memory` when `memory_first` is false) or TEST (`memory & other`).
    Compare { op: FlagOp, other: Operand, memory_first: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagOp {
    Cmp,
    Test,
}

/// The non-memory operand of CMP and TEST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    Register(RegisterOperand),
    /// Already sign-extended and truncated to the access width.
    Immediate(u64),
}

/// A decoded device access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioInstruction {
    pub access: Access,
    /// Width of the memory access.
    pub width: Width,
    /// The effective (here: guest-physical) address.
    pub address: u64,
    /// Instruction length in bytes; RIP advances by it.
    pub length: u8,
}

impl MmioInstruction {
    /// The value a write stores (`None` for a read).
    pub fn store_value(&self, regs: &Registers) -> Option<u64> {
        match self.access {
            Access::Read { .. } | Access::Compare { .. } => None,
            Access::WriteRegister { source } => Some(source.read(regs) & self.width.mask()),
            Access::WriteImmediate { value } => Some(value),
        }
    }

    /// Completes a read with the device's `value` (truncated to the access width, then
    /// zero-extended into the destination per the partial-register rules; for CMP and TEST
    /// the status flags set from it), and advances RIP. A write only advances RIP (`value`
    /// is ignored).
    pub fn complete(&self, regs: &mut Registers, value: u64) {
        let value = value & self.width.mask();
        match self.access {
            Access::Read { destination } => destination.write(regs, value),
            Access::Compare { op, other, memory_first } => {
                let other = match other {
                    Operand::Register(r) => r.read(regs) & self.width.mask(),
                    Operand::Immediate(v) => v,
                };
                let (a, b) = if memory_first { (value, other) } else { (other, value) };
                regs.rflags = (regs.rflags & !flags::STATUS) | status_flags(op, a, b, self.width);
            }
            Access::WriteRegister { .. } | Access::WriteImmediate { .. } => {}
        }
        regs.rip = regs.rip.wrapping_add(u64::from(self.length));
    }
}

/// The status flags of `a - b` (CMP) or `a & b` (TEST) at `width` (SDM vol. 2A "CMP":
/// flags as SUB; "TEST": CF and OF cleared, AF undefined, here cleared).
fn status_flags(op: FlagOp, a: u64, b: u64, width: Width) -> u64 {
    let mask = width.mask();
    let sign = 1u64 << (width.bytes() * 8 - 1);
    let (result, mut f) = match op {
        FlagOp::Cmp => {
            let r = a.wrapping_sub(b) & mask;
            let mut f = 0;
            if a < b {
                f |= flags::CF;
            }
            if (a ^ b) & (a ^ r) & sign != 0 {
                f |= flags::OF;
            }
            if (a ^ b ^ r) & 0x10 != 0 {
                f |= flags::AF;
            }
            (r, f)
        }
        FlagOp::Test => (a & b & mask, 0),
    };
    if result == 0 {
        f |= flags::ZF;
    }
    if result & sign != 0 {
        f |= flags::SF;
    }
    // PF: even parity of the result's low byte.
    if (result as u8).count_ones().is_multiple_of(2) {
        f |= flags::PF;
    }
    f
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the instruction does.
    Truncated,
    /// A prefix other than one `66` and one REX (LOCK, REP, segment, address size, repeats,
    /// or REX not right before the opcode).
    Prefix(u8),
    /// Not one of the accepted opcodes (or a group opcode, `80`/`81`/`83`/`C6`/`C7`/`F6`/`F7`,
    /// whose ModRM.reg selects another operation).
    Opcode(u8),
    /// A register (mod = 11) operand: no memory access.
    RegisterOperand,
    /// Operand-size prefix on a byte-only form.
    OperandSize,
    /// Longer than 15 bytes.
    TooLong,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("instruction bytes end early"),
            Self::Prefix(p) => write!(f, "prefix {p:#04x} not accepted for MMIO"),
            Self::Opcode(o) => write!(f, "opcode {o:#04x} is not an accepted MOV form"),
            Self::RegisterOperand => f.write_str("register operand (mod = 11): no memory access"),
            Self::OperandSize => f.write_str("operand-size prefix on a byte MOV"),
            Self::TooLong => f.write_str("instruction longer than 15 bytes"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// A bounded reader over the instruction bytes (never reads past 15 bytes).
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn u8(&mut self) -> Result<u8, DecodeError> {
        if self.at >= MAX_INSTRUCTION_LEN {
            return Err(DecodeError::TooLong);
        }
        let b = *self.bytes.get(self.at).ok_or(DecodeError::Truncated)?;
        self.at += 1;
        Ok(b)
    }

    fn le(&mut self, n: usize) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for i in 0..n {
            v |= u64::from(self.u8()?) << (8 * i);
        }
        Ok(v)
    }

    /// A signed little-endian immediate or displacement of `n` (1, 2 or 4) bytes, sign-extended.
    fn signed(&mut self, n: usize) -> Result<u64, DecodeError> {
        let v = self.le(n)?;
        let shift = 64 - 8 * n as u32;
        Ok((((v << shift) as i64) >> shift) as u64)
    }
}

const OPERAND_SIZE: u8 = 0x66;
const fn is_rex(b: u8) -> bool {
    b & 0xF0 == 0x40
}
const REX_W: u8 = 8;
const REX_R: u8 = 4;
const REX_X: u8 = 2;
const REX_B: u8 = 1;

/// Decodes the instruction at the start of `bytes` (the bytes at `regs.rip`; more than
/// needed may follow) and computes its effective address from `regs`.
pub fn decode(bytes: &[u8], regs: &Registers) -> Result<MmioInstruction, DecodeError> {
    let mut c = Cursor { bytes, at: 0 };
    let mut operand_size = false;
    let mut rex: Option<u8> = None;
    let opcode = loop {
        let b = c.u8()?;
        if let Some(r) = rex {
            // REX must be the last prefix: anything but an opcode after it is refused.
            if b == OPERAND_SIZE || is_rex(b) {
                return Err(DecodeError::Prefix(r));
            }
            break b;
        }
        match b {
            OPERAND_SIZE if !operand_size => operand_size = true,
            _ if is_rex(b) => rex = Some(b),
            // LOCK, REPNE, REP, segment overrides, address size, a second 66.
            0xF0 | 0xF2 | 0xF3 | 0x26 | 0x2E | 0x36 | 0x3E | 0x64 | 0x65 | 0x67 | OPERAND_SIZE => {
                return Err(DecodeError::Prefix(b))
            }
            _ => break b,
        }
    };
    let rex_bits = rex.unwrap_or(0);
    let wide = if rex_bits & REX_W != 0 {
        Width::U64
    } else if operand_size {
        Width::U16
    } else {
        Width::U32
    };

    enum Form {
        Store,
        Load,
        StoreImm,
        LoadZx,
        /// CMP/TEST with a register; `memory_first`: the memory operand is the minuend.
        CompareRegister(FlagOp, bool),
        /// CMP/TEST with an immediate (memory first); `sign8`: imm8 sign-extended (`83`).
        CompareImmediate(FlagOp, bool),
    }
    use FlagOp::{Cmp, Test};
    // (form, access width, register-operand width, the ModRM.reg a group opcode requires)
    let (form, width, reg_width, group) = match opcode {
        0x88 => (Form::Store, Width::U8, Width::U8, None),
        0x89 => (Form::Store, wide, wide, None),
        0x8A => (Form::Load, Width::U8, Width::U8, None),
        0x8B => (Form::Load, wide, wide, None),
        0xC6 => (Form::StoreImm, Width::U8, Width::U8, Some(0)),
        0xC7 => (Form::StoreImm, wide, wide, Some(0)),
        0x38 => (Form::CompareRegister(Cmp, true), Width::U8, Width::U8, None),
        0x39 => (Form::CompareRegister(Cmp, true), wide, wide, None),
        0x3A => (Form::CompareRegister(Cmp, false), Width::U8, Width::U8, None),
        0x3B => (Form::CompareRegister(Cmp, false), wide, wide, None),
        0x84 => (Form::CompareRegister(Test, true), Width::U8, Width::U8, None),
        0x85 => (Form::CompareRegister(Test, true), wide, wide, None),
        0x80 => (Form::CompareImmediate(Cmp, false), Width::U8, Width::U8, Some(7)),
        0x81 => (Form::CompareImmediate(Cmp, false), wide, wide, Some(7)),
        0x83 => (Form::CompareImmediate(Cmp, true), wide, wide, Some(7)),
        0xF6 => (Form::CompareImmediate(Test, false), Width::U8, Width::U8, Some(0)),
        0xF7 => (Form::CompareImmediate(Test, false), wide, wide, Some(0)),
        0x0F => match c.u8()? {
            0xB6 => (Form::LoadZx, Width::U8, wide, None),
            0xB7 => (Form::LoadZx, Width::U16, wide, None),
            other => return Err(DecodeError::Opcode(other)),
        },
        other => return Err(DecodeError::Opcode(other)),
    };
    if operand_size && matches!(opcode, 0x88 | 0x8A | 0xC6 | 0x38 | 0x3A | 0x84 | 0x80 | 0xF6) {
        return Err(DecodeError::OperandSize);
    }

    // ModRM (SDM vol. 2A table 2-2), SIB (table 2-3), displacement.
    let modrm = c.u8()?;
    let (mode, reg_field, rm) = (modrm >> 6, (modrm >> 3) & 7, modrm & 7);
    if mode == 0b11 {
        return Err(DecodeError::RegisterOperand);
    }
    if group.is_some_and(|g| g != reg_field) {
        return Err(DecodeError::Opcode(opcode));
    }
    let mut rip_relative = false;
    let mut sib_disp32 = false;
    let mut base_index = 0u64;
    if rm == 0b100 {
        let sib = c.u8()?;
        let (scale, index, base) = (sib >> 6, (sib >> 3) & 7, sib & 7);
        let index = index | if rex_bits & REX_X != 0 { 8 } else { 0 };
        // Index 100 without REX.X means no index (rsp cannot be an index).
        if index != 0b100 {
            base_index = base_index.wrapping_add(regs.get(Gpr::from_encoding(index)) << scale);
        }
        // Base 101 with mod 00 means no base, disp32 follows (also with REX.B).
        sib_disp32 = base == 0b101 && mode == 0b00;
        if !sib_disp32 {
            let base = base | if rex_bits & REX_B != 0 { 8 } else { 0 };
            base_index = base_index.wrapping_add(regs.get(Gpr::from_encoding(base)));
        }
    } else if rm == 0b101 && mode == 0b00 {
        // RIP + disp32 in 64-bit mode (SDM vol. 2A §2.2.1.6), also with REX.B.
        rip_relative = true;
    } else {
        let rm = rm | if rex_bits & REX_B != 0 { 8 } else { 0 };
        base_index = regs.get(Gpr::from_encoding(rm));
    }
    let displacement = match mode {
        0b01 => c.signed(1)?,
        0b10 => c.signed(4)?,
        _ if rip_relative || sib_disp32 => c.signed(4)?,
        _ => 0,
    };

    // imm8/imm16/imm32 by operand size, imm32 sign-extended to 64 bits under REX.W; or
    // imm8 sign-extended (`83`); truncated to the access width.
    let mut immediate = |sign8: bool| -> Result<u64, DecodeError> {
        let imm = match width {
            _ if sign8 => c.signed(1)?,
            Width::U8 => c.le(1)?,
            Width::U16 => c.le(2)?,
            Width::U32 | Width::U64 => c.signed(4)?,
        };
        Ok(imm & width.mask())
    };
    let reg = reg_field | if rex_bits & REX_R != 0 { 8 } else { 0 };
    // Without REX, byte registers 4..7 are AH, CH, DH, BH (rax..rbx's bits 15:8).
    let high_byte = reg_width == Width::U8 && rex.is_none() && (4..8).contains(&reg);
    let register = Gpr::from_encoding(if high_byte { reg - 4 } else { reg });
    let operand = RegisterOperand { register, width: reg_width, high_byte };
    let access = match form {
        Form::StoreImm => Access::WriteImmediate { value: immediate(false)? },
        Form::CompareImmediate(op, sign8) => {
            Access::Compare { op, other: Operand::Immediate(immediate(sign8)?), memory_first: true }
        }
        Form::CompareRegister(op, memory_first) => Access::Compare { op, other: Operand::Register(operand), memory_first },
        Form::Store => Access::WriteRegister { source: operand },
        Form::Load | Form::LoadZx => Access::Read { destination: operand },
    };
    // The cursor never reads past 15 bytes, so this always holds; checked anyway.
    let length = u8::try_from(c.at).ok().filter(|&l| usize::from(l) <= MAX_INSTRUCTION_LEN).ok_or(DecodeError::TooLong)?;
    let base = if rip_relative { regs.rip.wrapping_add(u64::from(length)) } else { base_index };
    Ok(MmioInstruction { access, width, address: base.wrapping_add(displacement), length })
}

#[cfg(test)]
mod tests;
