//! `halcyon verify`: what a workload owner runs before trusting a Halcyon VM. Checks an
//! SEV-SNP attestation report ([`snp`]) or a TD quote ([`tdx`]) cryptographically, then
//! against what the owner expects (measurement, report data, policy, event log).
//!
//! Each check that passes adds a line to [`Verified`]; the first that fails ends the
//! verification with a [`VerifyError`], so a caller prints what was verified and why
//! the rest was not.

pub mod amd_roots;
pub mod snp;
pub mod tdx;
#[cfg(test)]
pub(crate) mod testdata;

use halcyon_hal::evidence::EvidenceError;
use halcyon_hal::measurement::{hex, Measurement};
use std::fmt;
use std::time::SystemTime;

/// What the owner expects of the evidence. `None` means "not checked" (and is said so).
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    /// SNP: MEASUREMENT (the launch digest); TDX: MRTD. 48 bytes.
    pub measurement: Option<Vec<u8>>,
    /// REPORT_DATA / REPORTDATA, at most 64 bytes; shorter values are zero-extended, as
    /// the guest's HAL pads the caller's data.
    pub report_data: Option<Vec<u8>>,
    pub policy: Option<PolicyRequirement>,
    /// Accept a guest that allows debugging (its memory is readable by the host).
    pub allow_debug: bool,
    /// TDX: the measurement log to replay into RTMR1 and RTMR2.
    pub event_log: Option<Vec<Measurement>>,
    /// TDX: RTMR values expected outright (index, 48 bytes), e.g. RTMR0 of the firmware.
    pub rtmrs: Vec<(usize, Vec<u8>)>,
    /// TDX: the TCB statuses accepted from the collateral (e.g. `UpToDate`).
    pub tcb_statuses: Vec<String>,
}

/// A policy requirement: `exact=0x…` and/or flags that must be set or clear; `min-abi`
/// (SNP only). Flags are the platform's bit names (SNP guest policy, TD attributes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyRequirement {
    pub exact: Option<u64>,
    pub require: u64,
    pub forbid: u64,
    pub min_abi: Option<(u8, u8)>,
}

impl PolicyRequirement {
    /// Parses a comma-separated list: `exact=0xHEX`, `FLAG` (must be set), `no-FLAG`
    /// (must be clear), `min-abi=MAJOR.MINOR`. `flags` maps lower-case names to bits.
    pub fn parse(spec: &str, flags: &[(&str, u64)], min_abi_allowed: bool) -> Result<Self, VerifyError> {
        let bad = |item: &str| VerifyError::Usage(format!("--policy: `{item}` is not understood (known flags: {})", flag_names(flags)));
        let mut req = PolicyRequirement::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Some(value) = item.strip_prefix("exact=") {
                let digits = value.strip_prefix("0x").unwrap_or(value);
                req.exact = Some(u64::from_str_radix(digits, 16).map_err(|_| bad(item))?);
            } else if let Some(value) = item.strip_prefix("min-abi=") {
                let (major, minor) = value.split_once('.').ok_or_else(|| bad(item))?;
                if !min_abi_allowed {
                    return Err(bad(item));
                }
                req.min_abi = Some((major.parse().map_err(|_| bad(item))?, minor.parse().map_err(|_| bad(item))?));
            } else {
                let (negated, name) = match item.strip_prefix("no-") {
                    Some(name) => (true, name),
                    None => (false, item),
                };
                let bit = lookup_flag(flags, name).ok_or_else(|| bad(item))?;
                if negated { req.forbid |= bit } else { req.require |= bit }
            }
        }
        if req.require & req.forbid != 0 {
            return Err(VerifyError::Usage(format!("--policy `{spec}` both requires and forbids a flag")));
        }
        Ok(req)
    }

    /// Checks `value` (and its ABI version, for SNP); the error says what differs.
    pub fn check(&self, value: u64, abi: Option<(u8, u8)>, flags: &[(&str, u64)]) -> Result<(), String> {
        if let Some(exact) = self.exact {
            if value != exact {
                return Err(format!("is {value:#x}, expected exactly {exact:#x}"));
            }
        }
        for (name, bit) in flags {
            if self.require & bit != 0 && value & bit == 0 {
                return Err(format!("{value:#x} does not set {name}"));
            }
            if self.forbid & bit != 0 && value & bit != 0 {
                return Err(format!("{value:#x} sets {name}"));
            }
        }
        if let (Some(min), Some(abi)) = (self.min_abi, abi) {
            if abi < min {
                return Err(format!("allows ABI {}.{}, older than the required {}.{}", abi.0, abi.1, min.0, min.1));
            }
        }
        Ok(())
    }
}

fn lookup_flag(flags: &[(&str, u64)], name: &str) -> Option<u64> {
    flags.iter().find(|(n, _)| n.eq_ignore_ascii_case(name) || n.replace('_', "-").eq_ignore_ascii_case(name)).map(|(_, b)| *b)
}

fn flag_names(flags: &[(&str, u64)]) -> String {
    flags.iter().map(|(n, _)| n.to_ascii_lowercase().replace('_', "-")).collect::<Vec<_>>().join(", ")
}

/// When the verification happens (certificate and collateral validity); tests and
/// `--now` set it to check old evidence against the collateral of its time.
#[derive(Clone, Copy, Debug)]
pub struct VerifyTime(pub SystemTime);

impl VerifyTime {
    pub fn unix_secs(self) -> u64 {
        self.0.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}

/// What was verified, one line each, in order.
#[derive(Clone, Debug, Default)]
pub struct Verified {
    pub lines: Vec<String>,
}

impl Verified {
    pub fn ok(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}

/// Why evidence is not trusted (or could not be checked). One line each.
#[derive(Debug)]
pub enum VerifyError {
    /// The command line asked for something malformed or inapplicable.
    Usage(String),
    /// The evidence does not parse.
    Evidence(EvidenceError),
    /// A certificate does not parse, is of the wrong kind, or is not valid now.
    Certificate { cert: &'static str, reason: String },
    /// A certificate is not signed by its issuer in the chain.
    Chain(String),
    /// The report's signature does not verify with the endorsement key.
    Signature(String),
    /// The endorsement certificate is for another TCB or chip than the report says.
    Tcb(String),
    /// The quote or its collateral did not verify (the verifier's reason).
    Quote(String),
    /// A value differs from what was expected.
    Mismatch { what: String, expected: String, actual: String },
    /// The guest policy / TD attributes are not acceptable.
    Policy(String),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Usage(s) => f.write_str(s),
            VerifyError::Evidence(e) => write!(f, "{e}"),
            VerifyError::Certificate { cert, reason } => write!(f, "{cert} certificate: {reason}"),
            VerifyError::Chain(s) => write!(f, "certificate chain: {s}"),
            VerifyError::Signature(s) => write!(f, "signature: {s}"),
            VerifyError::Tcb(s) => write!(f, "TCB: {s}"),
            VerifyError::Quote(s) => write!(f, "quote: {s}"),
            VerifyError::Mismatch { what, expected, actual } => write!(f, "{what} is {actual}, expected {expected}"),
            VerifyError::Policy(s) => write!(f, "policy: {s}"),
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<EvidenceError> for VerifyError {
    fn from(e: EvidenceError) -> Self {
        VerifyError::Evidence(e)
    }
}

/// Parses `--rtmr INDEX=HEX` (index 0 to 3, 48 bytes).
pub fn parse_rtmr_arg(text: &str) -> Result<(usize, Vec<u8>), VerifyError> {
    let bad = || VerifyError::Usage(format!("--rtmr `{text}`: expected INDEX=HEX with INDEX 0 to 3 and 48 bytes of hex"));
    let (index, value) = text.split_once('=').ok_or_else(bad)?;
    let index: usize = index.trim().parse().map_err(|_| bad())?;
    let value = parse_hex_arg("--rtmr", value, 48)?;
    if index > 3 || value.len() != 48 {
        return Err(bad());
    }
    Ok((index, value))
}

/// Parses a hex argument of at most `max` bytes (an optional `0x` prefix is allowed).
pub fn parse_hex_arg(flag: &str, text: &str, max: usize) -> Result<Vec<u8>, VerifyError> {
    let digits = text.trim().strip_prefix("0x").unwrap_or(text.trim());
    let bytes = decode_hex(digits).ok_or_else(|| VerifyError::Usage(format!("{flag}: not an even number of hex digits")))?;
    if bytes.len() > max {
        return Err(VerifyError::Usage(format!("{flag}: {} bytes, at most {max}", bytes.len())));
    }
    Ok(bytes)
}

fn decode_hex(digits: &str) -> Option<Vec<u8>> {
    let digits = digits.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let hi = char::from(pair[0]).to_digit(16)?;
            let lo = char::from(pair[1]).to_digit(16)?;
            u8::try_from(hi << 4 | lo).ok()
        })
        .collect()
}

/// Evidence files are binary, or hex text (as published samples often are).
pub fn evidence_bytes(file: &[u8]) -> Vec<u8> {
    let text: Vec<u8> = file.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    if !text.is_empty() && text.iter().all(u8::is_ascii_hexdigit) {
        if let Some(bytes) = std::str::from_utf8(&text).ok().and_then(decode_hex) {
            return bytes;
        }
    }
    file.to_vec()
}

/// Compares `actual` with an expected value (zero-extended to `actual`'s length).
pub(crate) fn check_bytes(out: &mut Verified, what: &str, expected: Option<&[u8]>, actual: &[u8]) -> Result<(), VerifyError> {
    match expected {
        None => {
            out.ok(format!("{what} {} (not compared: nothing expected)", hex(actual)));
            Ok(())
        }
        Some(expected) => {
            let mut padded = expected.to_vec();
            padded.resize(actual.len().max(expected.len()), 0);
            if padded != actual {
                return Err(VerifyError::Mismatch { what: what.into(), expected: hex(&padded), actual: hex(actual) });
            }
            out.ok(format!("{what} {} matches", hex(actual)));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: [(&str, u64); 2] = [("DEBUG", 1 << 19), ("SINGLE_SOCKET", 1 << 20)];

    #[test]
    fn policy_requirements() {
        let req = PolicyRequirement::parse("no-debug, single-socket,min-abi=1.51", &FLAGS, true).unwrap();
        assert_eq!(req, PolicyRequirement { exact: None, require: 1 << 20, forbid: 1 << 19, min_abi: Some((1, 51)) });
        assert!(req.check(1 << 20, Some((1, 55)), &FLAGS).is_ok());
        assert!(req.check(1 << 20, Some((1, 50)), &FLAGS).unwrap_err().contains("older"));
        assert!(req.check(0, Some((1, 55)), &FLAGS).unwrap_err().contains("SINGLE_SOCKET"));
        assert!(req.check(3 << 19, Some((1, 55)), &FLAGS).unwrap_err().contains("DEBUG"));
        let exact = PolicyRequirement::parse("exact=0x30000", &FLAGS, true).unwrap();
        assert!(exact.check(0x30000, None, &FLAGS).is_ok());
        assert!(exact.check(0x30001, None, &FLAGS).is_err());
        for bad in ["smt", "exact=xyz", "min-abi=1", "debug,no-debug"] {
            assert!(PolicyRequirement::parse(bad, &FLAGS, true).is_err(), "{bad}");
        }
        assert!(PolicyRequirement::parse("min-abi=1.0", &FLAGS, false).is_err());
    }

    #[test]
    fn hex_arguments_and_evidence() {
        assert_eq!(parse_hex_arg("--x", "0x00ff", 64).unwrap(), [0, 255]);
        assert!(parse_hex_arg("--x", "abc", 64).is_err());
        assert!(parse_hex_arg("--x", "zz", 64).is_err());
        assert!(parse_hex_arg("--x", &"00".repeat(65), 64).is_err());
        assert_eq!(evidence_bytes(b"0A0b\n"), [10, 11]);
        assert_eq!(evidence_bytes(&[1, 2, 3]), [1, 2, 3]);
        assert_eq!(evidence_bytes(b"abc"), b"abc", "odd hex stays binary");
        let mut out = Verified::default();
        assert!(check_bytes(&mut out, "report data", Some(&[1]), &[1, 0, 0]).is_ok());
        let e = check_bytes(&mut out, "report data", Some(&[2]), &[1, 0]).unwrap_err();
        assert_eq!(e.to_string(), "report data is 0100, expected 0200");
        assert!(check_bytes(&mut out, "m", None, &[1]).is_ok());
        assert_eq!(parse_rtmr_arg(&format!("2={}", "ab".repeat(48))).unwrap(), (2, vec![0xab; 48]));
        for bad in ["2", "4=00", &format!("4={}", "ab".repeat(48)), &format!("x={}", "ab".repeat(48)), "1=abab"] {
            assert!(parse_rtmr_arg(bad).is_err(), "{bad}");
        }
        assert_eq!(out.lines.len(), 2);
    }
}
