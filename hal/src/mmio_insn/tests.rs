use super::*;

/// Every register holds a distinct address-like value: rax 0x10_0000, rcx 0x20_0000, ...
fn regs() -> Registers {
    let mut r = Registers { rip: 0x20_0000_0000, ..Registers::default() };
    for (i, g) in r.gpr.iter_mut().enumerate() {
        *g = 0x10_0000 * (i as u64 + 1);
    }
    r
}

const fn reg(register: Gpr, width: Width) -> RegisterOperand {
    RegisterOperand { register, width, high_byte: false }
}

const fn high(register: Gpr) -> RegisterOperand {
    RegisterOperand { register, width: Width::U8, high_byte: true }
}

const fn read(r: RegisterOperand) -> Access {
    Access::Read { destination: r }
}

const fn write(r: RegisterOperand) -> Access {
    Access::WriteRegister { source: r }
}

const fn imm(value: u64) -> Access {
    Access::WriteImmediate { value }
}

const fn cmp(other: Operand, memory_first: bool) -> Access {
    Access::Compare { op: FlagOp::Cmp, other, memory_first }
}

const fn test(other: Operand) -> Access {
    Access::Compare { op: FlagOp::Test, other, memory_first: true }
}

const fn r(register: Gpr, width: Width) -> Operand {
    Operand::Register(reg(register, width))
}

const fn i(value: u64) -> Operand {
    Operand::Immediate(value)
}

const RIP: u64 = 0x20_0000_0000;

/// (Intel-syntax assembly, its encoding, expected access, access width, address, length).
type Case = (&'static str, &'static [u8], Access, Width, u64, u8);

/// The encodings were produced by GNU as 2.40 and checked with `objdump -d -M intel`; the
/// `as_agrees` test re-assembles the text when `as` is installed.
#[rustfmt::skip]
const CASES: &[Case] = &[
    ("mov eax, dword ptr [rdi]", &[0x8B, 0x07], read(reg(Gpr::Rax, Width::U32)), Width::U32, 0x80_0000, 2),
    ("mov dword ptr [rdi+0x14], esi", &[0x89, 0x77, 0x14], write(reg(Gpr::Rsi, Width::U32)), Width::U32, 0x80_0014, 3),
    ("mov byte ptr [rax], cl", &[0x88, 0x08], write(reg(Gpr::Rcx, Width::U8)), Width::U8, 0x10_0000, 2),
    ("mov cl, byte ptr [rax+rbx*4+0x100]", &[0x8A, 0x8C, 0x98, 0x00, 0x01, 0x00, 0x00], read(reg(Gpr::Rcx, Width::U8)), Width::U8, 0x110_0100, 7),
    ("mov ah, byte ptr [rsi]", &[0x8A, 0x26], read(high(Gpr::Rax)), Width::U8, 0x70_0000, 2),
    ("mov spl, byte ptr [rsi]", &[0x40, 0x8A, 0x26], read(reg(Gpr::Rsp, Width::U8)), Width::U8, 0x70_0000, 3),
    ("mov word ptr [rdx], ax", &[0x66, 0x89, 0x02], write(reg(Gpr::Rax, Width::U16)), Width::U16, 0x30_0000, 3),
    ("mov ax, word ptr [rdx-8]", &[0x66, 0x8B, 0x42, 0xF8], read(reg(Gpr::Rax, Width::U16)), Width::U16, 0x2F_FFF8, 4),
    ("mov rax, qword ptr [r8]", &[0x49, 0x8B, 0x00], read(reg(Gpr::Rax, Width::U64)), Width::U64, 0x90_0000, 3),
    ("mov qword ptr [r13+0], r9", &[0x4D, 0x89, 0x4D, 0x00], write(reg(Gpr::R9, Width::U64)), Width::U64, 0xE0_0000, 4),
    ("mov r10d, dword ptr [r12]", &[0x45, 0x8B, 0x14, 0x24], read(reg(Gpr::R10, Width::U32)), Width::U32, 0xD0_0000, 4),
    ("mov eax, dword ptr [rip+0x10]", &[0x8B, 0x05, 0x10, 0x00, 0x00, 0x00], read(reg(Gpr::Rax, Width::U32)), Width::U32, RIP + 6 + 0x10, 6),
    ("mov dword ptr [rip-0x20], 0x12345678", &[0xC7, 0x05, 0xE0, 0xFF, 0xFF, 0xFF, 0x78, 0x56, 0x34, 0x12], imm(0x1234_5678), Width::U32, RIP + 10 - 0x20, 10),
    ("mov byte ptr [rdi+1], 0x80", &[0xC6, 0x47, 0x01, 0x80], imm(0x80), Width::U8, 0x80_0001, 4),
    ("mov word ptr [rdi], 0xBEEF", &[0x66, 0xC7, 0x07, 0xEF, 0xBE], imm(0xBEEF), Width::U16, 0x80_0000, 5),
    ("mov qword ptr [rdi], -2", &[0x48, 0xC7, 0x07, 0xFE, 0xFF, 0xFF, 0xFF], imm(0xFFFF_FFFF_FFFF_FFFE), Width::U64, 0x80_0000, 7),
    ("movzx eax, byte ptr [rdi]", &[0x0F, 0xB6, 0x07], read(reg(Gpr::Rax, Width::U32)), Width::U8, 0x80_0000, 3),
    ("movzx r11d, word ptr [rsi+rcx*2]", &[0x44, 0x0F, 0xB7, 0x1C, 0x4E], read(reg(Gpr::R11, Width::U32)), Width::U16, 0xB0_0000, 5),
    ("movzx rax, byte ptr [rdi]", &[0x48, 0x0F, 0xB6, 0x07], read(reg(Gpr::Rax, Width::U64)), Width::U8, 0x80_0000, 4),
    ("movzx ax, byte ptr [rdi]", &[0x66, 0x0F, 0xB6, 0x07], read(reg(Gpr::Rax, Width::U16)), Width::U8, 0x80_0000, 4),
    ("mov eax, dword ptr [0x1000]", &[0x8B, 0x04, 0x25, 0x00, 0x10, 0x00, 0x00], read(reg(Gpr::Rax, Width::U32)), Width::U32, 0x1000, 7),
    ("mov eax, dword ptr [r13+r12*8+0x7f]", &[0x43, 0x8B, 0x44, 0xE5, 0x7F], read(reg(Gpr::Rax, Width::U32)), Width::U32, 0xE0_0000 + 0xD0_0000 * 8 + 0x7F, 5),
    ("mov edx, dword ptr [rsp+8]", &[0x8B, 0x54, 0x24, 0x08], read(reg(Gpr::Rdx, Width::U32)), Width::U32, 0x50_0008, 4),
    ("mov eax, dword ptr [r12*2+0x40]", &[0x42, 0x8B, 0x04, 0x65, 0x40, 0x00, 0x00, 0x00], read(reg(Gpr::Rax, Width::U32)), Width::U32, 0xD0_0000 * 2 + 0x40, 8),
    ("mov bh, byte ptr [rax]", &[0x8A, 0x38], read(high(Gpr::Rbx)), Width::U8, 0x10_0000, 2),
    ("mov byte ptr [rax], dh", &[0x88, 0x30], write(high(Gpr::Rdx)), Width::U8, 0x10_0000, 2),
    ("mov byte ptr [rax], dil", &[0x40, 0x88, 0x38], write(reg(Gpr::Rdi, Width::U8)), Width::U8, 0x10_0000, 3),
    ("mov r15b, byte ptr [rax]", &[0x44, 0x8A, 0x38], read(reg(Gpr::R15, Width::U8)), Width::U8, 0x10_0000, 3),
    ("mov dword ptr [rbx+0x12345678], 7", &[0xC7, 0x83, 0x78, 0x56, 0x34, 0x12, 0x07, 0x00, 0x00, 0x00], imm(7), Width::U32, 0x40_0000 + 0x1234_5678, 10),
    ("mov qword ptr [rsi+rdi*8-0x80000000], r15", &[0x4C, 0x89, 0xBC, 0xFE, 0x00, 0x00, 0x00, 0x80], write(reg(Gpr::R15, Width::U64)), Width::U64, (0x70_0000u64 + 0x80_0000 * 8).wrapping_sub(0x8000_0000), 8),
    // CMP and TEST with a folded load; the first two are in the kernel image, on virtio's
    // device status and configuration generation.
    ("test byte ptr [rax+0x14], 0xcf", &[0xF6, 0x40, 0x14, 0xCF], test(i(0xCF)), Width::U8, 0x10_0014, 4),
    ("cmp r12b, byte ptr [r15+0x15]", &[0x45, 0x3A, 0x67, 0x15], cmp(r(Gpr::R12, Width::U8), false), Width::U8, 0x100_0015, 4),
    ("cmp byte ptr [rdi], sil", &[0x40, 0x38, 0x37], cmp(r(Gpr::Rsi, Width::U8), true), Width::U8, 0x80_0000, 3),
    ("cmp dword ptr [rdi], eax", &[0x39, 0x07], cmp(r(Gpr::Rax, Width::U32), true), Width::U32, 0x80_0000, 2),
    ("cmp eax, dword ptr [rdi+4]", &[0x3B, 0x47, 0x04], cmp(r(Gpr::Rax, Width::U32), false), Width::U32, 0x80_0004, 3),
    ("cmp byte ptr [rdi], 1", &[0x80, 0x3F, 0x01], cmp(i(1), true), Width::U8, 0x80_0000, 3),
    ("cmp dword ptr [rdi], 0x12345", &[0x81, 0x3F, 0x45, 0x23, 0x01, 0x00], cmp(i(0x12345), true), Width::U32, 0x80_0000, 6),
    ("cmp qword ptr [rdi], -1", &[0x48, 0x83, 0x3F, 0xFF], cmp(i(u64::MAX), true), Width::U64, 0x80_0000, 4),
    ("cmp word ptr [rdi], -2", &[0x66, 0x83, 0x3F, 0xFE], cmp(i(0xFFFE), true), Width::U16, 0x80_0000, 4),
    ("test dword ptr [rdi], 0x80000000", &[0xF7, 0x07, 0x00, 0x00, 0x00, 0x80], test(i(0x8000_0000)), Width::U32, 0x80_0000, 6),
    ("test word ptr [rdi], 0x100", &[0x66, 0xF7, 0x07, 0x00, 0x01], test(i(0x100)), Width::U16, 0x80_0000, 5),
    ("test byte ptr [rdi], ah", &[0x84, 0x27], test(Operand::Register(high(Gpr::Rax))), Width::U8, 0x80_0000, 2),
    ("test qword ptr [rdi], r9", &[0x4C, 0x85, 0x0F], test(r(Gpr::R9, Width::U64)), Width::U64, 0x80_0000, 3),
];

#[test]
fn every_form_decodes() {
    for &(asm, bytes, access, width, address, length) in CASES {
        let expected = MmioInstruction { access, width, address, length };
        assert_eq!(decode(bytes, &regs()), Ok(expected), "{asm}");
        // Bytes after the instruction (the rest of the text) change nothing.
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(&[0xF0, 0x0F, 0x0B, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC]);
        assert_eq!(decode(&longer, &regs()), Ok(expected), "{asm} with trailing bytes");
    }
}

#[test]
fn every_truncation_is_an_error() {
    for &(asm, bytes, ..) in CASES {
        for n in 0..bytes.len() {
            assert_eq!(decode(&bytes[..n], &regs()), Err(DecodeError::Truncated), "{asm} cut to {n} bytes");
        }
    }
}

/// Assembles the cases' text with GNU as (when installed) and compares the bytes.
#[test]
fn as_agrees() {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("halcyon-mmio-insn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("cases.s");
    let object = dir.join("cases.o");
    let binary = dir.join("cases.bin");
    let mut text = String::from(".intel_syntax noprefix\n");
    for (asm, ..) in CASES {
        text.push_str(asm);
        text.push('\n');
    }
    std::fs::write(&source, text).unwrap();
    let assembled = Command::new("as").arg("--64").arg("-o").arg(&object).arg(&source).status();
    let Ok(status) = assembled else {
        eprintln!("GNU as not installed: the encodings are checked only against the table");
        return;
    };
    assert!(status.success(), "as failed");
    let status = Command::new("objcopy").args(["-O", "binary", "-j", ".text"]).arg(&object).arg(&binary).status().unwrap();
    assert!(status.success(), "objcopy failed");
    let got = std::fs::read(&binary).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut at = 0;
    for (asm, bytes, ..) in CASES {
        assert_eq!(got.get(at..at + bytes.len()), Some(*bytes), "{asm}: as encodes it differently");
        at += bytes.len();
    }
    assert_eq!(at, got.len());
}

#[test]
fn reads_follow_the_partial_register_rules() {
    let old = 0x1111_2222_3333_4444u64;
    let complete = |bytes: &[u8], value: u64| {
        let mut r = Registers { rip: 0x1000, ..Registers::default() };
        r.gpr = [old; 16];
        let insn = decode(bytes, &r).unwrap();
        insn.complete(&mut r, value);
        assert_eq!(r.rip, 0x1000 + u64::from(insn.length));
        r
    };
    let v = 0xAAAA_BBBB_CCCC_DDEEu64;
    // 32-bit destination: zero-extended to 64 bits (value truncated to the access width).
    assert_eq!(complete(&[0x8B, 0x07], v).get(Gpr::Rax), 0xCCCC_DDEE);
    // 16-bit and 8-bit destinations keep the other bits.
    assert_eq!(complete(&[0x66, 0x8B, 0x07], v).get(Gpr::Rax), 0x1111_2222_3333_DDEE);
    assert_eq!(complete(&[0x8A, 0x07], v).get(Gpr::Rax), 0x1111_2222_3333_44EE);
    // AH: bits 15:8 only.
    assert_eq!(complete(&[0x8A, 0x27], v).get(Gpr::Rax), 0x1111_2222_3333_EE44);
    // With REX the same ModRM.reg is SPL, and AH is untouched.
    let r = complete(&[0x40, 0x8A, 0x27], v);
    assert_eq!((r.get(Gpr::Rsp), r.get(Gpr::Rax)), (0x1111_2222_3333_44EE, old));
    // 64-bit.
    assert_eq!(complete(&[0x48, 0x8B, 0x07], v).get(Gpr::Rax), v);
    // MOVZX: the access width is zero-extended to the destination's width.
    assert_eq!(complete(&[0x0F, 0xB6, 0x07], v).get(Gpr::Rax), 0xEE);
    assert_eq!(complete(&[0x0F, 0xB7, 0x07], v).get(Gpr::Rax), 0xDDEE);
    assert_eq!(complete(&[0x48, 0x0F, 0xB7, 0x07], v).get(Gpr::Rax), 0xDDEE);
    assert_eq!(complete(&[0x66, 0x0F, 0xB6, 0x07], v).get(Gpr::Rax), 0x1111_2222_3333_00EE);
    // r8..r15 through REX.R.
    assert_eq!(complete(&[0x44, 0x8B, 0x07], v).get(Gpr::R8), 0xCCCC_DDEE);
    // A write changes no register, only RIP.
    let r = complete(&[0x89, 0x07], v);
    assert_eq!(r.gpr, [old; 16]);
}

#[test]
fn writes_store_the_operand() {
    let mut r = Registers::default();
    r.set(Gpr::Rax, 0x0102_0304_0506_0708);
    r.set(Gpr::Rdx, 0x1122_3344_5566_7788);
    let value = |bytes: &[u8]| decode(bytes, &r).unwrap().store_value(&r);
    assert_eq!(value(&[0x89, 0x07]), Some(0x0506_0708));
    assert_eq!(value(&[0x66, 0x89, 0x07]), Some(0x0708));
    assert_eq!(value(&[0x48, 0x89, 0x07]), Some(0x0102_0304_0506_0708));
    assert_eq!(value(&[0x88, 0x07]), Some(0x08));
    assert_eq!(value(&[0x88, 0x37]), Some(0x77), "DH");
    assert_eq!(value(&[0x88, 0x27]), Some(0x07), "AH");
    assert_eq!(value(&[0xC7, 0x07, 0xFF, 0xFF, 0xFF, 0xFF]), Some(0xFFFF_FFFF));
    assert_eq!(value(&[0x8B, 0x07]), None);
}

#[test]
fn everything_else_is_refused() {
    let r = regs();
    let refused: &[(&[u8], DecodeError)] = &[
        (&[0xF0, 0x89, 0x07], DecodeError::Prefix(0xF0)),
        (&[0xF3, 0x8B, 0x07], DecodeError::Prefix(0xF3)),
        (&[0xF2, 0x8B, 0x07], DecodeError::Prefix(0xF2)),
        (&[0x2E, 0x8B, 0x07], DecodeError::Prefix(0x2E)),
        (&[0x64, 0x8B, 0x07], DecodeError::Prefix(0x64)),
        (&[0x65, 0x8B, 0x07], DecodeError::Prefix(0x65)),
        (&[0x67, 0x8B, 0x07], DecodeError::Prefix(0x67)),
        (&[0x66, 0x66, 0x8B, 0x07], DecodeError::Prefix(0x66)),
        (&[0x48, 0x66, 0x8B, 0x07], DecodeError::Prefix(0x48)),
        (&[0x48, 0x48, 0x8B, 0x07], DecodeError::Prefix(0x48)),
        // Register forms: no memory access.
        (&[0x8B, 0xC7], DecodeError::RegisterOperand),
        (&[0x0F, 0xB6, 0xC0], DecodeError::RegisterOperand),
        // Group opcodes whose ModRM.reg selects another operation: not MOV, CMP or TEST
        // (C7 /1, C6 /1, ADD via 80 /0, OR via 83 /1, NOT via F7 /2, F6 /1 (an undocumented TEST)).
        (&[0xC7, 0x4F, 0x00, 0, 0, 0, 0], DecodeError::Opcode(0xC7)),
        (&[0xC6, 0x0F, 0x00], DecodeError::Opcode(0xC6)),
        (&[0x80, 0x07, 0x01], DecodeError::Opcode(0x80)),
        (&[0x83, 0x0F, 0x01], DecodeError::Opcode(0x83)),
        (&[0xF7, 0x17], DecodeError::Opcode(0xF7)),
        (&[0xF6, 0x0F, 0x01], DecodeError::Opcode(0xF6)),
        (&[0x66, 0x3A, 0x07], DecodeError::OperandSize),
        (&[0x66, 0x88, 0x07], DecodeError::OperandSize),
        (&[0x66, 0xC6, 0x07, 0x01], DecodeError::OperandSize),
        // Other instructions that touch memory: MOVS, XCHG, ADD, MOVSX, CPUID, MOV moffs.
        (&[0xA5], DecodeError::Opcode(0xA5)),
        (&[0x87, 0x07], DecodeError::Opcode(0x87)),
        (&[0x01, 0x07], DecodeError::Opcode(0x01)),
        (&[0x0F, 0xBE, 0x07], DecodeError::Opcode(0xBE)),
        (&[0x0F, 0xA2], DecodeError::Opcode(0xA2)),
        (&[0xA1, 0, 0, 0, 0, 0, 0, 0, 0], DecodeError::Opcode(0xA1)),
        (&[], DecodeError::Truncated),
    ];
    for (bytes, error) in refused {
        assert_eq!(decode(bytes, &r), Err(*error), "{bytes:02x?}");
    }
}

#[test]
fn hostile_bytes_never_panic() {
    let r = regs();
    // Every two-byte start, padded with bytes that complete most encodings.
    for first in 0..=255u8 {
        for second in 0..=255u8 {
            let mut bytes = [0x44u8; 16];
            bytes[0] = first;
            bytes[1] = second;
            for n in 0..=bytes.len() {
                if let Ok(insn) = decode(&bytes[..n], &r) {
                    assert!(usize::from(insn.length) <= n && insn.length <= 15);
                }
            }
        }
    }
    // Random bytes of random lengths (xorshift, fixed seed).
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200_000 {
        let mut bytes = [0u8; 20];
        for b in bytes.iter_mut() {
            *b = next() as u8;
        }
        let n = (next() % 21) as usize;
        if let Ok(insn) = decode(&bytes[..n], &r) {
            assert!(usize::from(insn.length) <= n);
        }
    }
}

/// The status flags of CMP and TEST as the host CPU computes them.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn cpu_flags(op: FlagOp, a: u64, b: u64, width: Width) -> u64 {
    let flags: u64;
    macro_rules! run {
        ($insn:literal, $template:literal, $a:expr, $b:expr, $class:ident) => {
            // SAFETY: a register-only CMP/TEST and a PUSHF/POP pair on the test's own stack;
            // no memory other than that is touched.
            unsafe {
                core::arch::asm!(concat!($insn, " ", $template), "pushfq", "pop {f}",
                    a = in($class) $a, b = in($class) $b, f = out(reg) flags)
            }
        };
    }
    match (op, width) {
        (FlagOp::Cmp, Width::U8) => run!("cmp", "{a}, {b}", a as u8, b as u8, reg_byte),
        (FlagOp::Cmp, Width::U16) => run!("cmp", "{a:x}, {b:x}", a as u16, b as u16, reg),
        (FlagOp::Cmp, Width::U32) => run!("cmp", "{a:e}, {b:e}", a as u32, b as u32, reg),
        (FlagOp::Cmp, Width::U64) => run!("cmp", "{a:r}, {b:r}", a, b, reg),
        (FlagOp::Test, Width::U8) => run!("test", "{a}, {b}", a as u8, b as u8, reg_byte),
        (FlagOp::Test, Width::U16) => run!("test", "{a:x}, {b:x}", a as u16, b as u16, reg),
        (FlagOp::Test, Width::U32) => run!("test", "{a:e}, {b:e}", a as u32, b as u32, reg),
        (FlagOp::Test, Width::U64) => run!("test", "{a:r}, {b:r}", a, b, reg),
    }
    flags & flags::STATUS
}

#[cfg(target_arch = "x86_64")]
#[test]
fn cmp_and_test_flags_match_the_cpu() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let edges = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, i64::MAX as u64, 1 << 63, u64::MAX];
    let mut pairs: Vec<(u64, u64)> = edges.iter().flat_map(|&a| edges.iter().map(move |&b| (a, b))).collect();
    pairs.extend((0..20_000).map(|_| (next(), next())));
    for (a, b) in pairs {
        for width in [Width::U8, Width::U16, Width::U32, Width::U64] {
            let (a, b) = (a & width.mask(), b & width.mask());
            assert_eq!(status_flags(FlagOp::Cmp, a, b, width), cpu_flags(FlagOp::Cmp, a, b, width), "cmp {a:#x}, {b:#x} {width:?}");
            // TEST leaves AF undefined; the decoder clears it.
            let cpu = cpu_flags(FlagOp::Test, a, b, width) & !flags::AF;
            assert_eq!(status_flags(FlagOp::Test, a, b, width), cpu, "test {a:#x}, {b:#x} {width:?}");
        }
    }
}

#[test]
fn cmp_and_test_complete_with_flags_only() {
    let mut r = regs();
    r.rflags = 0x202 | flags::STATUS;
    let before = r;
    // testb $0xcf, 0x14(%rax) reading a reset device status (0): ZF set, loop ends.
    let insn = decode(&[0xF6, 0x40, 0x14, 0xCF], &r).unwrap();
    insn.complete(&mut r, 0);
    assert_eq!(r.gpr, before.gpr);
    assert_eq!(r.rflags, 0x202 | flags::ZF | flags::PF);
    assert_eq!(r.rip, before.rip + 4);
    // ... and a status still set (0x0F): ZF clear.
    insn.complete(&mut r, 0x0F);
    assert_eq!(r.rflags & flags::ZF, 0);
    // cmp r12b, [r15+0x15]: r12b - memory; r12 holds 0xD0_0000, so r12b = 0.
    let insn = decode(&[0x45, 0x3A, 0x67, 0x15], &r).unwrap();
    insn.complete(&mut r, 1);
    assert_eq!(r.rflags & (flags::CF | flags::ZF | flags::SF), flags::CF | flags::SF, "0 - 1 borrows and is negative");
    // cmp byte ptr [rdi], 1 with memory 1: equal.
    let insn = decode(&[0x80, 0x3F, 0x01], &r).unwrap();
    insn.complete(&mut r, 0x301);
    assert_eq!(r.rflags & (flags::CF | flags::ZF), flags::ZF, "the value is cut to the access width");
    assert_eq!(insn.store_value(&r), None);
}
