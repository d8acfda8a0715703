//! The measurement log: a SHA-256 digest of everything the kernel loads and runs, in
//! order, so attestation can tell a verifier exactly what this VM executed.
//!
//! This is the log only. Extending a running composite digest into TDX RTMRs or SEV-SNP
//! measurements is a later step that replays these entries in order; that is why the
//! log is append-only and keeps the order things were loaded in.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use sha2::{Digest, Sha256};

/// What a measurement is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasurementKind {
    /// The kernel's read-only loaded segments (rodata, then text), as in the image file.
    Kernel,
    /// A workload's WebAssembly module.
    Workload,
}

impl MeasurementKind {
    /// Stable lower-case name, as shown in logs and to workloads.
    pub const fn name(self) -> &'static str {
        match self {
            MeasurementKind::Kernel => "kernel",
            MeasurementKind::Workload => "workload",
        }
    }
}

impl fmt::Display for MeasurementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One loaded thing and its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measurement {
    pub kind: MeasurementKind,
    pub name: String,
    pub sha256: [u8; 32],
}

impl fmt::Display for Measurement {
    /// `workload hello sha256:ba78…15ad` (the full digest).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} sha256:", self.kind, self.name)?;
        write_hex(f, &self.sha256)
    }
}

/// Append-only, in load order.
#[derive(Clone, Debug, Default)]
pub struct MeasurementLog {
    entries: Vec<Measurement>,
}

impl MeasurementLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Hashes `data` and appends the measurement.
    pub fn record(&mut self, kind: MeasurementKind, name: &str, data: &[u8]) -> &Measurement {
        self.record_parts(kind, name, &[data])
    }

    /// Hashes the concatenation of `parts` and appends the measurement (for things that
    /// are loaded in pieces, like the kernel's segments, without copying them together).
    pub fn record_parts(&mut self, kind: MeasurementKind, name: &str, parts: &[&[u8]]) -> &Measurement {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        let sha256: [u8; 32] = hasher.finalize().into();
        let index = self.entries.len();
        self.entries.push(Measurement { kind, name: String::from(name), sha256 });
        &self.entries[index]
    }

    /// The measurements in the order they were recorded.
    pub fn entries(&self) -> &[Measurement] {
        &self.entries
    }

    pub fn iter(&self) -> core::slice::Iter<'_, Measurement> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<'a> IntoIterator for &'a MeasurementLog {
    type Item = &'a Measurement;
    type IntoIter = core::slice::Iter<'a, Measurement>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn write_hex(f: &mut impl fmt::Write, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        f.write_char(char::from(HEX_DIGITS[usize::from(b >> 4)]))?;
        f.write_char(char::from(HEX_DIGITS[usize::from(b & 0xf)]))?;
    }
    Ok(())
}

/// Lower-case hex of `bytes` (how digests are printed and compared with `sha256sum`).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    // Writing into a String cannot fail.
    let _ = write_hex(&mut s, bytes);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answers() {
        // FIPS 180-4 examples (NIST CSRC "SHA256.pdf" and "SHA2_Additional.pdf"): "abc",
        // the empty message, and the 448-bit two-block message.
        let mut log = MeasurementLog::new();
        let abc = log.record(MeasurementKind::Workload, "abc", b"abc").clone();
        assert_eq!(hex(&abc.sha256), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let empty = log.record(MeasurementKind::Workload, "empty", b"").clone();
        assert_eq!(hex(&empty.sha256), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let two_blocks = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        let long = log.record(MeasurementKind::Workload, "448-bit", two_blocks).clone();
        assert_eq!(hex(&long.sha256), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        let split = log.record_parts(MeasurementKind::Kernel, "k", &[b"a", b"bc"]).clone();
        assert_eq!(split.sha256, abc.sha256, "parts hash as their concatenation");
        let none = log.record_parts(MeasurementKind::Kernel, "nothing", &[]).clone();
        assert_eq!(none.sha256, empty.sha256);
    }

    #[test]
    fn log_keeps_load_order() {
        let mut log = MeasurementLog::new();
        assert!(log.is_empty());
        log.record_parts(MeasurementKind::Kernel, "first", &[b"abc"]);
        log.record(MeasurementKind::Workload, "second", b"");
        assert_eq!(log.len(), 2);
        let names: Vec<&str> = log.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["first", "second"]);
        assert_eq!((&log).into_iter().count(), 2);
        let kinds: Vec<&str> = log.entries().iter().map(|m| m.kind.name()).collect();
        assert_eq!(kinds, ["kernel", "workload"]);
    }

    #[test]
    fn printing() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
        let mut log = MeasurementLog::new();
        let m = log.record(MeasurementKind::Workload, "abc", b"abc");
        assert_eq!(
            m.to_string(),
            "workload abc sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
