//! RTMR extension and the replay of Halcyon's measurement log into the RTMR values a TD
//! quote must show, plus the text form of that log a verifier is given.
//!
//! Extension (Intel TDX Module Base Architecture Specification 348549, section
//! "Measurement Registers", TDG.MR.RTMR.EXTEND): `RTMR_new = SHA-384(RTMR_old || D)` with
//! D the 48-byte extend data; RTMRs start as 48 zero bytes at TD build.
//!
//! How a [`Measurement`] becomes D (Halcyon's definition, version 1): the log holds
//! SHA-256 digests (see `measurement.rs`), shorter than an RTMR's 48 bytes, and a bare
//! digest would not bind what it was of. So each entry is encoded and hashed:
//!
//! ```text
//! D = SHA-384( "halcyon-rtmr-event-v1" || 0x00
//!              || KIND || 0x00                      (ASCII "kernel" or "workload")
//!              || u32-le(len(NAME)) || NAME         (UTF-8, as recorded)
//!              || SHA256 )                          (the log entry's 32-byte digest)
//! ```
//!
//! and extended into RTMR [`rtmr_index`]`(KIND)`: the kernel into RTMR1 (the OS slot in
//! the TDVF convention, RTMR0 being firmware configuration), workloads into RTMR2 (the
//! application slot), in log order. RTMR3 is left to runtime use and is not replayed.
//!
//! The event-log file is text, one entry per line exactly as `Measurement`'s `Display`
//! prints it (`workload hello sha256:<64 hex>`), so the kernel's printed log can be
//! handed to the verifier as it is. Blank lines and lines starting with `#` are ignored.

use crate::measurement::{hex, Measurement, MeasurementKind};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use sha2::{Digest, Sha384};

/// Number of run-time measurement registers.
pub const RTMR_COUNT: usize = 4;
/// One RTMR (or extend value): a SHA-384 digest.
pub type Rtmr = [u8; 48];
/// Domain separator of the event encoding (version 1).
pub const EVENT_DOMAIN: &[u8] = b"halcyon-rtmr-event-v1";
/// RTMR for the kernel's own measurement.
pub const RTMR_KERNEL: usize = 1;
/// RTMR for workloads.
pub const RTMR_WORKLOAD: usize = 2;
/// Longest event-log line accepted (a name plus the fixed parts).
pub const MAX_LINE_LEN: usize = 4096;

/// Why an event-log file does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtmrError {
    /// Line (1-based) has fewer than three fields or is longer than [`MAX_LINE_LEN`].
    Malformed { line: usize },
    /// Line's first field is not a measurement kind.
    UnknownKind { line: usize },
    /// Line's last field is not `sha256:` and 64 hex digits.
    Digest { line: usize },
    /// A name cannot be written on one line (it holds a line break).
    NameNotOneLine,
}

impl fmt::Display for RtmrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtmrError::Malformed { line } => write!(f, "line {line}: expected `KIND NAME sha256:HEX`"),
            RtmrError::UnknownKind { line } => write!(f, "line {line}: kind is not `kernel` or `workload`"),
            RtmrError::Digest { line } => write!(f, "line {line}: digest is not `sha256:` and 64 hex digits"),
            RtmrError::NameNotOneLine => f.write_str("a measurement name holds a line break"),
        }
    }
}

impl core::error::Error for RtmrError {}

/// `rtmr = SHA-384(rtmr || value)`.
pub fn extend(rtmr: &mut Rtmr, value: &Rtmr) {
    let mut h = Sha384::new();
    h.update(&rtmr[..]);
    h.update(value);
    *rtmr = h.finalize().into();
}

/// The RTMR an entry of this kind is extended into.
pub const fn rtmr_index(kind: MeasurementKind) -> usize {
    match kind {
        MeasurementKind::Kernel => RTMR_KERNEL,
        MeasurementKind::Workload => RTMR_WORKLOAD,
    }
}

/// The 48-byte extend value of one log entry (see the module documentation).
pub fn event_digest(m: &Measurement) -> Rtmr {
    let mut h = Sha384::new();
    h.update(EVENT_DOMAIN);
    h.update([0]);
    h.update(m.kind.name().as_bytes());
    h.update([0]);
    // Names are bounded well below 4 GiB by the bundle format; saturate rather than wrap.
    let len = u32::try_from(m.name.len()).unwrap_or(u32::MAX);
    h.update(len.to_le_bytes());
    h.update(m.name.as_bytes());
    h.update(m.sha256);
    h.finalize().into()
}

/// The RTMR values a TD shows after extending `entries` in order from all-zero RTMRs.
pub fn replay<'a>(entries: impl IntoIterator<Item = &'a Measurement>) -> [Rtmr; RTMR_COUNT] {
    let mut rtmrs = [[0u8; 48]; RTMR_COUNT];
    for m in entries {
        extend(&mut rtmrs[rtmr_index(m.kind)], &event_digest(m));
    }
    rtmrs
}

/// Parses an event-log file (untrusted: it comes from the host or the network).
pub fn parse_event_log(text: &str) -> Result<Vec<Measurement>, RtmrError> {
    let mut entries = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim_end_matches('\r');
        if trimmed.trim().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.len() > MAX_LINE_LEN {
            return Err(RtmrError::Malformed { line });
        }
        let (kind, rest) = trimmed.split_once(' ').ok_or(RtmrError::Malformed { line })?;
        let (name, digest) = rest.rsplit_once(' ').ok_or(RtmrError::Malformed { line })?;
        let kind = match kind {
            "kernel" => MeasurementKind::Kernel,
            "workload" => MeasurementKind::Workload,
            _ => return Err(RtmrError::UnknownKind { line }),
        };
        let sha256 = parse_sha256(digest).ok_or(RtmrError::Digest { line })?;
        entries.push(Measurement { kind, name: String::from(name), sha256 });
    }
    Ok(entries)
}

/// Writes entries in the event-log file format [`parse_event_log`] reads.
pub fn format_event_log<'a>(entries: impl IntoIterator<Item = &'a Measurement>) -> Result<String, RtmrError> {
    use core::fmt::Write;
    let mut out = String::new();
    for m in entries {
        if m.name.contains(['\n', '\r']) {
            return Err(RtmrError::NameNotOneLine);
        }
        // Writing into a String cannot fail.
        let _ = writeln!(out, "{m}");
    }
    Ok(out)
}

fn parse_sha256(field: &str) -> Option<[u8; 32]> {
    let digits = field.strip_prefix("sha256:")?.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let nibble = |c: u8| char::from(c).to_digit(16);
    for (i, byte) in out.iter_mut().enumerate() {
        let (hi, lo) = (*digits.get(2 * i)?, *digits.get(2 * i + 1)?);
        *byte = u8::try_from(nibble(hi)? << 4 | nibble(lo)?).ok()?;
    }
    Some(out)
}

/// Lower-case hex of an RTMR (as `halcyon verify` prints it).
pub fn rtmr_hex(rtmr: &Rtmr) -> String {
    hex(rtmr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measurement::MeasurementLog;

    fn h384(parts: &[&[u8]]) -> Rtmr {
        let mut h = Sha384::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    #[test]
    fn extend_is_sha384_of_old_and_value() {
        // SHA-384 of 96 zero bytes (an RTMR at reset extended with zeros), cross-checked
        // with `head -c 96 /dev/zero | sha384sum`.
        let mut r = [0u8; 48];
        extend(&mut r, &[0u8; 48]);
        assert_eq!(
            hex(&r),
            "f57bb7ed82c6ae4a29e6c9879338c592c7d42a39135583e8ccbe3940f2344b0eb6eb8503db0ffd6a39ddd00cd07d8317"
        );
        let mut s = [0u8; 48];
        extend(&mut s, &[7u8; 48]);
        assert_eq!(s, h384(&[&[0u8; 48], &[7u8; 48]]));
    }

    #[test]
    fn event_digest_binds_kind_name_and_digest() {
        let mut log = MeasurementLog::new();
        log.record(MeasurementKind::Workload, "hello", b"abc");
        let m = &log.entries()[0];
        let mut expected_input = Vec::new();
        expected_input.extend_from_slice(b"halcyon-rtmr-event-v1\0workload\0");
        expected_input.extend_from_slice(&5u32.to_le_bytes());
        expected_input.extend_from_slice(b"hello");
        expected_input.extend_from_slice(&m.sha256);
        assert_eq!(event_digest(m), h384(&[&expected_input]));
        let renamed = Measurement { name: "hellp".into(), ..m.clone() };
        let rekinded = Measurement { kind: MeasurementKind::Kernel, ..m.clone() };
        let redigested = Measurement { sha256: [0; 32], ..m.clone() };
        for other in [renamed, rekinded, redigested] {
            assert_ne!(event_digest(&other), event_digest(m));
        }
    }

    #[test]
    fn replay_goes_to_the_right_registers_in_order() {
        let mut log = MeasurementLog::new();
        log.record(MeasurementKind::Kernel, "halcyon", b"kernel bytes");
        log.record(MeasurementKind::Workload, "a", b"A");
        log.record(MeasurementKind::Workload, "b", b"B");
        let rtmrs = replay(&log);
        assert_eq!(rtmrs[0], [0; 48]);
        assert_eq!(rtmrs[3], [0; 48]);
        let mut kernel = [0u8; 48];
        extend(&mut kernel, &event_digest(&log.entries()[0]));
        assert_eq!(rtmrs[1], kernel);
        let mut workloads = [0u8; 48];
        extend(&mut workloads, &event_digest(&log.entries()[1]));
        extend(&mut workloads, &event_digest(&log.entries()[2]));
        assert_eq!(rtmrs[2], workloads);
        // Order matters.
        let swapped = [log.entries()[0].clone(), log.entries()[2].clone(), log.entries()[1].clone()];
        assert_ne!(replay(&swapped)[2], rtmrs[2]);
    }

    #[test]
    fn event_log_text_round_trips() {
        let mut log = MeasurementLog::new();
        log.record(MeasurementKind::Kernel, "halcyon", b"k");
        log.record(MeasurementKind::Workload, "name with spaces", b"w");
        let text = format_event_log(&log).unwrap();
        assert!(text.starts_with("kernel halcyon sha256:"));
        let mut with_noise = String::from("# Halcyon event log\n\n");
        with_noise.push_str(&text.replace('\n', "\r\n"));
        let parsed = parse_event_log(&with_noise).unwrap();
        assert_eq!(parsed, log.entries());
        assert_eq!(replay(&parsed), replay(&log));
        let bad = Measurement { name: "a\nb".into(), ..log.entries()[0].clone() };
        assert_eq!(format_event_log([&bad]), Err(RtmrError::NameNotOneLine));
    }

    #[test]
    fn event_log_rejects_malformed_lines() {
        let digest = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(parse_event_log("kernel").unwrap_err(), RtmrError::Malformed { line: 1 });
        assert_eq!(parse_event_log(&format!("\nkernel {digest}")).unwrap_err(), RtmrError::Malformed { line: 2 });
        assert_eq!(parse_event_log(&format!("firmware x {digest}")).unwrap_err(), RtmrError::UnknownKind { line: 1 });
        assert_eq!(parse_event_log("workload x sha256:00").unwrap_err(), RtmrError::Digest { line: 1 });
        assert_eq!(parse_event_log("workload x sha384:00").unwrap_err(), RtmrError::Digest { line: 1 });
        let not_hex = format!("workload x sha256:{}", "g".repeat(64));
        assert_eq!(parse_event_log(&not_hex).unwrap_err(), RtmrError::Digest { line: 1 });
        let long = format!("workload {} {digest}", "n".repeat(MAX_LINE_LEN));
        assert_eq!(parse_event_log(&long).unwrap_err(), RtmrError::Malformed { line: 1 });
        let ok = parse_event_log(&format!("workload  {digest}")).unwrap();
        assert_eq!(ok[0].name, "", "an empty name is representable");
    }

    #[test]
    fn mutated_event_logs_never_panic() {
        let mut log = MeasurementLog::new();
        log.record(MeasurementKind::Kernel, "halcyon", b"k");
        log.record(MeasurementKind::Workload, "w", b"w");
        let valid = format_event_log(&log).unwrap().into_bytes();
        let mut m = crate::mutation::Mutator::new(0xe7e7);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let input = m.mutate(&valid);
            let Ok(text) = core::str::from_utf8(&input) else { continue };
            if let Ok(entries) = parse_event_log(text) {
                accepted += 1;
                let _ = replay(&entries);
            }
        }
        assert!(accepted > 0, "accepted {accepted}");
    }
}
