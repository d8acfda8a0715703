//! The few ACPI tables the kernel reads: the RSDP, the XSDT/RSDT and the MCFG (where
//! PCI Express configuration space is memory-mapped).
//!
//! Tables come from the hypervisor, so on a confidential VM they are untrusted input:
//! every length is checked against the bytes actually read, checksums are verified, and
//! the caller supplies the memory reader, which decides what it is willing to read.
//!
//! References: ACPI Specification 6.5, §5.2.5 (RSDP), §5.2.6 (system description table
//! header), §5.2.7/§5.2.8 (RSDT/XSDT); PCI Firmware Specification 3.3, §4.1.2 (MCFG).

use alloc::vec::Vec;
use core::fmt;

/// ACPI 6.5 §5.2.5.3: "RSD PTR " signature, 20-byte v1 structure, 36-byte v2 structure.
pub const RSDP_SIGNATURE: [u8; 8] = *b"RSD PTR ";
pub const RSDP_V1_SIZE: usize = 20;
pub const RSDP_V2_SIZE: usize = 36;
/// ACPI 6.5 §5.2.6, table 5.4: the common description header is 36 bytes.
pub const HEADER_SIZE: usize = 36;
/// PCI Firmware 3.3 §4.1.2: MCFG = header + 8 reserved bytes, then 16-byte allocations.
const MCFG_ALLOCATIONS_OFFSET: usize = HEADER_SIZE + 8;
const MCFG_ALLOCATION_SIZE: usize = 16;
/// Tables larger than this are refused (a real MCFG or XSDT is a few hundred bytes).
pub const MAX_TABLE_SIZE: u32 = 64 * 1024;
/// A root table listing more than this many tables is refused.
const MAX_ROOT_ENTRIES: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// The reader could not (or would not) read the bytes at this address.
    Unreadable(u64),
    BadSignature { expected: [u8; 4] },
    BadRsdp,
    BadChecksum([u8; 4]),
    BadLength([u8; 4]),
    /// No table with this signature is listed.
    NotFound([u8; 4]),
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |s: &[u8; 4]| core::str::from_utf8(s).unwrap_or("????").into();
        let name: fn(&[u8; 4]) -> alloc::string::String = name;
        match self {
            AcpiError::Unreadable(at) => write!(f, "cannot read ACPI data at {at:#x}"),
            AcpiError::BadSignature { expected } => write!(f, "expected ACPI table {}", name(expected)),
            AcpiError::BadRsdp => write!(f, "the RSDP is malformed (signature, checksum or revision)"),
            AcpiError::BadChecksum(s) => write!(f, "ACPI table {} has a bad checksum", name(s)),
            AcpiError::BadLength(s) => write!(f, "ACPI table {} has an impossible length", name(s)),
            AcpiError::NotFound(s) => write!(f, "no ACPI table {}", name(s)),
        }
    }
}

impl core::error::Error for AcpiError {}

/// Reads `len` bytes of guest-physical memory at `address` (a copy: the tables may live
/// in memory the hypervisor can change while they are checked).
pub trait PhysicalReader {
    fn read(&mut self, address: u64, len: usize) -> Option<Vec<u8>>;
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Where the root table is, from a checked RSDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootTable {
    Rsdt(u32),
    Xsdt(u64),
}

/// Parses an RSDP (ACPI 6.5 §5.2.5.3): signature, the v1 checksum over 20 bytes, and for
/// revision ≥ 2 the extended checksum over `length` bytes; prefers the XSDT.
pub fn parse_rsdp(bytes: &[u8]) -> Result<RootTable, AcpiError> {
    if bytes.len() < RSDP_V1_SIZE || bytes[..8] != RSDP_SIGNATURE || !checksum_ok(&bytes[..RSDP_V1_SIZE]) {
        return Err(AcpiError::BadRsdp);
    }
    let revision = bytes[15];
    if revision >= 2 {
        if bytes.len() < RSDP_V2_SIZE {
            return Err(AcpiError::BadRsdp);
        }
        let length = u32_at(bytes, 20) as usize;
        if !(RSDP_V2_SIZE..=bytes.len()).contains(&length) || !checksum_ok(&bytes[..length]) {
            return Err(AcpiError::BadRsdp);
        }
        let xsdt = u64_at(bytes, 24);
        if xsdt != 0 {
            return Ok(RootTable::Xsdt(xsdt));
        }
    }
    Ok(RootTable::Rsdt(u32_at(bytes, 16)))
}

/// Reads one whole table at `address` and checks signature, length and checksum.
pub fn read_table(reader: &mut dyn PhysicalReader, address: u64, signature: [u8; 4]) -> Result<Vec<u8>, AcpiError> {
    let header = reader.read(address, HEADER_SIZE).ok_or(AcpiError::Unreadable(address))?;
    if header.len() != HEADER_SIZE || header[..4] != signature {
        return Err(AcpiError::BadSignature { expected: signature });
    }
    let length = u32_at(&header, 4);
    if (length as usize) < HEADER_SIZE || length > MAX_TABLE_SIZE {
        return Err(AcpiError::BadLength(signature));
    }
    let table = reader.read(address, length as usize).ok_or(AcpiError::Unreadable(address))?;
    // Read again in full: the header we checked could have changed in between.
    if table.len() != length as usize || table[..4] != signature || u32_at(&table, 4) != length {
        return Err(AcpiError::BadLength(signature));
    }
    if !checksum_ok(&table) {
        return Err(AcpiError::BadChecksum(signature));
    }
    Ok(table)
}

/// Finds the table `signature` through the root table; returns its bytes, checked.
pub fn find_table(reader: &mut dyn PhysicalReader, root: RootTable, signature: [u8; 4]) -> Result<Vec<u8>, AcpiError> {
    let (root_address, root_signature, entry_size) = match root {
        RootTable::Rsdt(a) => (u64::from(a), *b"RSDT", 4),
        RootTable::Xsdt(a) => (a, *b"XSDT", 8),
    };
    let root_table = read_table(reader, root_address, root_signature)?;
    let entries = &root_table[HEADER_SIZE..];
    if entries.len() % entry_size != 0 || entries.len() / entry_size > MAX_ROOT_ENTRIES {
        return Err(AcpiError::BadLength(root_signature));
    }
    for entry in entries.chunks_exact(entry_size) {
        let address = if entry_size == 8 { u64_at(entry, 0) } else { u64::from(u32_at(entry, 0)) };
        let Some(head) = reader.read(address, 4) else { continue };
        if head == signature {
            return read_table(reader, address, signature);
        }
    }
    Err(AcpiError::NotFound(signature))
}

/// One MCFG "configuration space base address allocation structure"
/// (PCI Firmware 3.3 §4.1.2, table 4-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcamRegion {
    pub base: u64,
    pub segment: u16,
    pub start_bus: u8,
    pub end_bus: u8,
}

impl EcamRegion {
    /// Bytes of configuration space this region covers (1 MiB per bus).
    pub fn size(&self) -> u64 {
        (u64::from(self.end_bus) - u64::from(self.start_bus) + 1) << 20
    }
}

/// The allocations of a checked MCFG table (from [`read_table`]).
pub fn parse_mcfg(table: &[u8]) -> Result<Vec<EcamRegion>, AcpiError> {
    let Some(allocations) = table.get(MCFG_ALLOCATIONS_OFFSET..) else {
        return Err(AcpiError::BadLength(*b"MCFG"));
    };
    let (allocations, rest) = allocations.as_chunks::<MCFG_ALLOCATION_SIZE>();
    if !rest.is_empty() {
        return Err(AcpiError::BadLength(*b"MCFG"));
    }
    let mut regions = Vec::new();
    for a in allocations {
        let region = EcamRegion {
            base: u64_at(a, 0),
            segment: u16::from_le_bytes([a[8], a[9]]),
            start_bus: a[10],
            end_bus: a[11],
        };
        // An inverted bus range, or a base that is not 1 MiB aligned, cannot be real.
        if region.end_bus < region.start_bus || !region.base.is_multiple_of(1 << 20) {
            return Err(AcpiError::BadLength(*b"MCFG"));
        }
        regions.push(region);
    }
    Ok(regions)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Physical memory made of a few placed byte strings.
    #[derive(Default)]
    pub struct FakeMemory(pub BTreeMap<u64, Vec<u8>>);

    impl PhysicalReader for FakeMemory {
        fn read(&mut self, address: u64, len: usize) -> Option<Vec<u8>> {
            let (start, bytes) = self.0.range(..=address).next_back()?;
            let offset = usize::try_from(address - start).ok()?;
            bytes.get(offset..offset.checked_add(len)?).map(<[u8]>::to_vec)
        }
    }

    fn fix_checksum(bytes: &mut [u8], at: usize) {
        bytes[at] = 0;
        let sum = bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        bytes[at] = 0u8.wrapping_sub(sum);
    }

    pub fn table(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; HEADER_SIZE];
        t[..4].copy_from_slice(signature);
        t.extend_from_slice(body);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        fix_checksum(&mut t, 9);
        t
    }

    pub fn rsdp_v2(xsdt: u64) -> Vec<u8> {
        let mut r = vec![0u8; RSDP_V2_SIZE];
        r[..8].copy_from_slice(&RSDP_SIGNATURE);
        r[15] = 2;
        r[20..24].copy_from_slice(&(RSDP_V2_SIZE as u32).to_le_bytes());
        r[24..32].copy_from_slice(&xsdt.to_le_bytes());
        fix_checksum(&mut r[..RSDP_V1_SIZE], 8);
        fix_checksum(&mut r, 32);
        r
    }

    /// What QEMU's microvm with `pcie=on` describes: one segment, buses 0-255 at 0xE000_0000.
    pub fn microvm_tables() -> FakeMemory {
        let mut mcfg_body = vec![0u8; 8];
        mcfg_body.extend_from_slice(&0xE000_0000u64.to_le_bytes());
        mcfg_body.extend_from_slice(&[0, 0, 0, 255, 0, 0, 0, 0]);
        let mut memory = FakeMemory::default();
        memory.0.insert(0x2000, table(b"FACP", &[0; 100]));
        memory.0.insert(0x3000, table(b"MCFG", &mcfg_body));
        let mut entries = Vec::new();
        entries.extend_from_slice(&0x2000u64.to_le_bytes());
        entries.extend_from_slice(&0x3000u64.to_le_bytes());
        memory.0.insert(0x1000, table(b"XSDT", &entries));
        memory.0.insert(0x500, rsdp_v2(0x1000));
        memory
    }

    #[test]
    fn finds_the_mcfg_through_the_xsdt() {
        let mut memory = microvm_tables();
        let rsdp = memory.read(0x500, RSDP_V2_SIZE).unwrap();
        let root = parse_rsdp(&rsdp).unwrap();
        assert_eq!(root, RootTable::Xsdt(0x1000));
        let mcfg = find_table(&mut memory, root, *b"MCFG").unwrap();
        let regions = parse_mcfg(&mcfg).unwrap();
        assert_eq!(regions, [EcamRegion { base: 0xE000_0000, segment: 0, start_bus: 0, end_bus: 255 }]);
        assert_eq!(regions[0].size(), 256 << 20);
        assert_eq!(find_table(&mut memory, root, *b"HPET"), Err(AcpiError::NotFound(*b"HPET")));
    }

    #[test]
    fn rejects_bad_checksums_and_lengths() {
        let mut memory = microvm_tables();
        memory.0.get_mut(&0x3000).unwrap()[40] ^= 1;
        assert_eq!(find_table(&mut memory, RootTable::Xsdt(0x1000), *b"MCFG"), Err(AcpiError::BadChecksum(*b"MCFG")));

        let mut rsdp = rsdp_v2(0x1000);
        rsdp[3] ^= 1;
        assert_eq!(parse_rsdp(&rsdp), Err(AcpiError::BadRsdp));

        let mut memory = microvm_tables();
        memory.0.get_mut(&0x1000).unwrap()[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(find_table(&mut memory, RootTable::Xsdt(0x1000), *b"MCFG"), Err(AcpiError::BadLength(*b"XSDT")));

        let mut body = vec![0u8; 8];
        body.extend_from_slice(&0xE000_0000u64.to_le_bytes());
        body.extend_from_slice(&[0, 0, 9, 3, 0, 0, 0, 0]); // end bus below start bus
        assert!(parse_mcfg(&table(b"MCFG", &body)).is_err());
    }

    #[test]
    fn mutated_tables_never_panic() {
        let mut mutator = crate::mutation::Mutator::new(0xAC91);
        let valid = microvm_tables();
        for _ in 0..3000 {
            let mut memory = FakeMemory(valid.0.iter().map(|(a, b)| (*a, mutator.mutate(b))).collect());
            if let Some(rsdp) = memory.read(0x500, RSDP_V2_SIZE) {
                if let Ok(root) = parse_rsdp(&rsdp) {
                    if let Ok(mcfg) = find_table(&mut memory, root, *b"MCFG") {
                        let _ = parse_mcfg(&mcfg);
                    }
                }
            }
        }
    }
}
