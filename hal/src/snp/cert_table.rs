//! The certificate table a host puts in the buffer of an extended guest request (GHCB
//! spec 56421 rev. 2.03, "SNP Extended Guest Request", certificate table).
//!
//! The table is a list of 24-byte entries (GUID, offset, length) ended by an all-zero
//! entry; offsets are from the start of the buffer. Everything in it is the host's and
//! unauthenticated: the parser only makes sure nothing points outside the copy it was
//! given; what the certificates are worth is the verifier's question (they must chain to
//! AMD's root).

use alloc::vec::Vec;
use core::fmt;

pub const ENTRY_SIZE: usize = 24;

/// The GUIDs the GHCB spec assigns, in the byte order of their string form (as AMD's
/// sev-guest tools write the table with `uuid_parse`).
pub const GUID_VCEK: [u8; 16] = guid(0x63da758d, 0xe664, 0x4564, [0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd]);
pub const GUID_VLEK: [u8; 16] = guid(0xa8074bc2, 0xa25a, 0x483e, [0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1]);
pub const GUID_ASK: [u8; 16] = guid(0x4ab7b379, 0xbbac, 0x4fe4, [0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82]);
pub const GUID_ARK: [u8; 16] = guid(0xc0b406a4, 0xa803, 0x4952, [0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae]);

const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let (a, b, c) = (a.to_be_bytes(), b.to_be_bytes(), c.to_be_bytes());
    [a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
}

/// What a table entry holds, by its GUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateKind {
    Vcek,
    Vlek,
    Ask,
    Ark,
    Other,
}

impl CertificateKind {
    pub fn of(guid: &[u8; 16]) -> Self {
        match *guid {
            GUID_VCEK => Self::Vcek,
            GUID_VLEK => Self::Vlek,
            GUID_ASK => Self::Ask,
            GUID_ARK => Self::Ark,
            _ => Self::Other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateEntry {
    pub guid: [u8; 16],
    pub data: Vec<u8>,
}

impl CertificateEntry {
    pub fn kind(&self) -> CertificateKind {
        CertificateKind::of(&self.guid)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertTableError {
    /// The buffer ends before the all-zero terminator.
    Unterminated,
    /// An entry points outside the buffer, into the table itself, or is empty.
    BadEntry { index: usize },
}

impl fmt::Display for CertTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unterminated => f.write_str("certificate table has no terminator"),
            Self::BadEntry { index } => write!(f, "certificate table entry {index} is out of bounds"),
        }
    }
}

impl core::error::Error for CertTableError {}

/// Parses a copy of the certificate buffer.
pub fn parse(buffer: &[u8]) -> Result<Vec<CertificateEntry>, CertTableError> {
    let mut raw = Vec::new();
    let mut at = 0;
    loop {
        let entry = buffer.get(at..at + ENTRY_SIZE).ok_or(CertTableError::Unterminated)?;
        if entry.iter().all(|&b| b == 0) {
            break;
        }
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&entry[..16]);
        let offset = u32::from_le_bytes([entry[16], entry[17], entry[18], entry[19]]) as usize;
        let length = u32::from_le_bytes([entry[20], entry[21], entry[22], entry[23]]) as usize;
        raw.push((guid, offset, length));
        at += ENTRY_SIZE;
    }
    let table_end = at + ENTRY_SIZE;
    raw.into_iter()
        .enumerate()
        .map(|(index, (guid, offset, length))| {
            let end = offset.checked_add(length).filter(|end| *end <= buffer.len());
            match end {
                Some(end) if length > 0 && offset >= table_end => Ok(CertificateEntry { guid, data: buffer[offset..end].to_vec() }),
                _ => Err(CertTableError::BadEntry { index }),
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) fn build(entries: &[([u8; 16], &[u8])], size: usize) -> Vec<u8> {
    let mut buffer = vec![0u8; size];
    let mut offset = (entries.len() + 1) * ENTRY_SIZE;
    for (i, (guid, data)) in entries.iter().enumerate() {
        let e = &mut buffer[i * ENTRY_SIZE..(i + 1) * ENTRY_SIZE];
        e[..16].copy_from_slice(guid);
        e[16..20].copy_from_slice(&(offset as u32).to_le_bytes());
        e[20..24].copy_from_slice(&(data.len() as u32).to_le_bytes());
        buffer[offset..offset + data.len()].copy_from_slice(data);
        offset += data.len();
    }
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutation::Mutator;

    #[test]
    fn guids_match_their_strings() {
        // 63da758d-e664-4564-adc5-f4b93be8accd (GHCB spec, VCEK).
        assert_eq!(GUID_VCEK, [0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd]);
    }

    #[test]
    fn a_table_parses() {
        let buffer = build(&[(GUID_VCEK, b"vcek-der"), (GUID_ASK, b"ask"), (GUID_ARK, b"ark"), ([9; 16], b"x")], 4096);
        let entries = parse(&buffer).unwrap();
        let kinds: Vec<_> = entries.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, [CertificateKind::Vcek, CertificateKind::Ask, CertificateKind::Ark, CertificateKind::Other]);
        assert_eq!(entries[0].data, b"vcek-der");
        assert_eq!(parse(&[0; 24]).unwrap(), vec![]);
    }

    #[test]
    fn bad_tables_are_refused() {
        assert_eq!(parse(&[]), Err(CertTableError::Unterminated));
        assert_eq!(parse(&[1; 4096]), Err(CertTableError::Unterminated));
        let mut buffer = build(&[(GUID_VCEK, b"vcek")], 128);
        buffer[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&buffer), Err(CertTableError::BadEntry { index: 0 }));
        let mut buffer = build(&[(GUID_VCEK, b"vcek")], 128);
        buffer[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse(&buffer), Err(CertTableError::BadEntry { index: 0 }), "pointing into the table");
        let mut buffer = build(&[(GUID_VCEK, b"vcek")], 128);
        buffer[20..24].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse(&buffer), Err(CertTableError::BadEntry { index: 0 }), "empty");
    }

    #[test]
    fn mutated_tables_never_panic() {
        let valid = build(&[(GUID_VCEK, &[1; 40]), (GUID_ASK, &[2; 30]), (GUID_ARK, &[3; 20])], 256);
        let mut m = Mutator::new(0xce27);
        for _ in 0..20_000 {
            let input = m.mutate(&valid);
            if let Ok(entries) = parse(&input) {
                assert!(entries.iter().all(|e| !e.data.is_empty() && e.data.len() <= input.len()));
            }
        }
    }
}
