//! Minimal x86_64 ELF64 executables for unit tests (ELF gABI: "ELF Header", "Program
//! Header"): just an ELF header and program headers, then the segments' bytes in order.

use object::elf::{ELFCLASS64, ELFDATA2LSB, ET_EXEC, EV_CURRENT};

/// One program header and its file contents.
pub struct Segment<'a> {
    pub p_type: u32,
    pub flags: u32,
    pub paddr: u64,
    pub data: &'a [u8],
    pub memsz: u64,
    pub align: u64,
}

/// An ELF64 for `machine` (EM_*) with `segments` (virtual = physical addresses).
pub fn elf(machine: u16, segments: &[Segment<'_>]) -> Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let mut out = vec![0x7f, b'E', b'L', b'F', ELFCLASS64, ELFDATA2LSB, EV_CURRENT, 0];
    out.resize(16, 0);
    out.extend(ET_EXEC.to_le_bytes());
    out.extend(machine.to_le_bytes());
    out.extend(u32::from(EV_CURRENT).to_le_bytes());
    out.extend(0x10_0000u64.to_le_bytes()); // e_entry
    out.extend((EHDR as u64).to_le_bytes()); // e_phoff
    out.extend(0u64.to_le_bytes()); // e_shoff
    out.extend(0u32.to_le_bytes()); // e_flags
    out.extend((EHDR as u16).to_le_bytes());
    out.extend((PHDR as u16).to_le_bytes());
    out.extend((segments.len() as u16).to_le_bytes());
    out.extend(64u16.to_le_bytes()); // e_shentsize
    out.extend([0u8; 4]); // e_shnum, e_shstrndx
    assert_eq!(out.len(), EHDR);
    let mut offset = (EHDR + PHDR * segments.len()) as u64;
    for s in segments {
        out.extend(s.p_type.to_le_bytes());
        out.extend(s.flags.to_le_bytes());
        out.extend(offset.to_le_bytes());
        out.extend(s.paddr.to_le_bytes()); // p_vaddr
        out.extend(s.paddr.to_le_bytes()); // p_paddr
        out.extend((s.data.len() as u64).to_le_bytes());
        out.extend(s.memsz.to_le_bytes());
        out.extend(s.align.to_le_bytes());
        offset += s.data.len() as u64;
    }
    for s in segments {
        out.extend(s.data);
    }
    out
}
