//! The measurement log: a SHA-256 digest of everything the kernel loads and runs, in
//! order, so attestation can tell a verifier exactly what this VM executed.

use alloc::string::String;
use alloc::vec::Vec;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasurementKind {
    /// The kernel's read-only loaded segments (rodata, then text), as in the image file.
    Kernel,
    /// A workload's WebAssembly module.
    Workload,
}

impl MeasurementKind {
    pub const fn name(self) -> &'static str {
        match self {
            MeasurementKind::Kernel => "kernel",
            MeasurementKind::Workload => "workload",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measurement {
    pub kind: MeasurementKind,
    pub name: String,
    pub sha256: [u8; 32],
}

#[derive(Default)]
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

    /// Hashes the concatenation of `parts` and appends the measurement.
    pub fn record_parts(&mut self, kind: MeasurementKind, name: &str, parts: &[&[u8]]) -> &Measurement {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        let sha256: [u8; 32] = hasher.finalize().into();
        self.entries.push(Measurement { kind, name: String::from(name), sha256 });
        &self.entries[self.entries.len() - 1]
    }

    pub fn entries(&self) -> &[Measurement] {
        &self.entries
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answers() {
        // FIPS 180-4 examples (NIST CSRC "SHA256.pdf"): "abc" and the empty message.
        let mut log = MeasurementLog::new();
        let abc = log.record(MeasurementKind::Workload, "abc", b"abc").clone();
        assert_eq!(hex(&abc.sha256), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let empty = log.record(MeasurementKind::Workload, "empty", b"").clone();
        assert_eq!(hex(&empty.sha256), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(log.entries().len(), 2);
        let split = log.record_parts(MeasurementKind::Kernel, "k", &[b"a", b"bc"]).clone();
        assert_eq!(split.sha256, abc.sha256, "parts hash as their concatenation");
        assert_eq!(log.entries()[0].name, "abc");
    }
}
