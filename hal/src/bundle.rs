//! The workload bundle: the workloads (modules, arguments, environment, limits) the host
//! hands the kernel at boot as the PVH module (`qemu -initrd`).
//!
//! The bundle is untrusted input to the kernel. Parsing checks every length against
//! what remains, allocates nothing beyond what the input itself could hold, rejects
//! non-zero reserved fields and trailing bytes, and reports which entry is bad.
//!
//! Layout (all integers little-endian):
//! ```text
//! bundle   = magic "HCYBNDL\0" ++ version:u32 ++ count:u32 ++ workload{count}
//! workload = size:u32 (bytes of the rest of this workload) ++ name:bytes ++ wasm:bytes
//!            ++ args:list ++ env:list ++ tcp_listen:list ++ fuel:u64 (0 = unlimited)
//!            ++ memory_limit:u64 (0 = kernel default) ++ reserved:u32 (0)
//! bytes    = len:u32 ++ byte{len}
//! list     = count:u32 ++ bytes{count}      (each a UTF-8 string)
//! ```
//! `args` include argv[0]; each `env` entry is `KEY=VALUE`; each `tcp_listen` entry is a
//! guest socket address (`IP:PORT`) the kernel opens as a listening TCP socket and hands
//! the workload as a preopened WASI descriptor (fd 3 onwards, in order), as
//! `wasmtime run --tcplisten` does. A workload's `size` lets a
//! reader skip it and bounds every length inside it. Workloads run in bundle order and
//! are numbered from 0, which is their index on the workload channel.

use alloc::vec::Vec;
use core::fmt;

/// The first eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"HCYBNDL\0";
/// Bumped whenever the layout changes; the kernel ELF carries it in a note.
pub const VERSION: u32 = 2;
/// Preopened listening sockets one workload may ask for.
pub const MAX_TCP_LISTEN: usize = 16;
/// The channel identifies workloads by a `u8`.
pub const MAX_WORKLOADS: usize = 255;

/// One workload, borrowing from the bundle bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload<'a> {
    /// Shown in messages about the workload (usually the module's file name).
    pub name: &'a str,
    /// The WebAssembly module (binary format; validated by the kernel, not here).
    pub wasm: &'a [u8],
    /// The WASI arguments, argv[0] included.
    pub args: Vec<&'a str>,
    /// The WASI environment, `KEY=VALUE` each.
    pub env: Vec<&'a str>,
    /// Listening TCP sockets preopened for the workload (fd 3 onwards), `IP:PORT` each.
    pub tcp_listen: Vec<&'a str>,
    /// Fuel the workload may burn; `None` runs it unmetered.
    pub fuel: Option<u64>,
    /// Cap on the workload's linear memory in bytes; `None` for the kernel's default.
    pub memory_limit: Option<u64>,
}

/// What is wrong with a bundle.
///
/// `workload` is the index of the offending workload (`None`: the bundle header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// The input does not start with [`MAGIC`].
    BadMagic,
    /// The version field is not [`VERSION`].
    UnsupportedVersion(u32),
    /// The count field exceeds [`MAX_WORKLOADS`].
    TooManyWorkloads(u32),
    /// A length or count runs past the end of its container.
    Truncated { workload: Option<u32>, field: &'static str },
    /// A name, argument or environment entry is not UTF-8.
    InvalidUtf8 { workload: u32, field: &'static str },
    /// An environment entry without `=`.
    BadEnvironment { workload: u32 },
    /// A `tcp_listen` entry that is not an `IP:PORT` socket address, or too many of them.
    BadListenAddress { workload: u32 },
    /// The reserved field after the limits is not zero.
    ReservedNotZero { workload: u32 },
    /// Bytes left over inside a workload record or after the last one.
    TrailingBytes { workload: Option<u32> },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |f: &mut fmt::Formatter<'_>, w: &Option<u32>| match w {
            Some(i) => write!(f, " in workload {i}"),
            None => Ok(()),
        };
        match self {
            BundleError::BadMagic => write!(f, "not a Halcyon bundle (bad magic)"),
            BundleError::UnsupportedVersion(v) => {
                write!(f, "bundle format version {v} is not supported (this kernel reads {VERSION})")
            }
            BundleError::TooManyWorkloads(n) => write!(f, "{n} workloads, at most {MAX_WORKLOADS}"),
            BundleError::Truncated { workload, field } => {
                write!(f, "truncated {field}")?;
                at(f, workload)
            }
            BundleError::InvalidUtf8 { workload, field } => {
                write!(f, "invalid UTF-8 in {field} of workload {workload}")
            }
            BundleError::BadEnvironment { workload } => {
                write!(f, "environment entry without '=' in workload {workload}")
            }
            BundleError::BadListenAddress { workload } => {
                write!(f, "bad TCP listen address (IP:PORT, at most {MAX_TCP_LISTEN}) in workload {workload}")
            }
            BundleError::ReservedNotZero { workload } => {
                write!(f, "reserved field is not zero in workload {workload}")
            }
            BundleError::TrailingBytes { workload } => {
                write!(f, "trailing bytes")?;
                at(f, workload)
            }
        }
    }
}

impl core::error::Error for BundleError {}

/// A cursor over bytes whose every read is checked.
struct Reader<'a> {
    bytes: &'a [u8],
    workload: Option<u32>,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], BundleError> {
        let (head, rest) = self
            .bytes
            .split_at_checked(len)
            .ok_or(BundleError::Truncated { workload: self.workload, field })?;
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], BundleError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or(BundleError::Truncated { workload: self.workload, field })?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, BundleError> {
        self.array(field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, BundleError> {
        self.array(field).map(u64::from_le_bytes)
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], BundleError> {
        // A length that does not fit usize cannot fit the input either.
        let len = usize::try_from(self.u32(field)?).unwrap_or(usize::MAX);
        self.take(len, field)
    }

    fn str(&mut self, field: &'static str) -> Result<&'a str, BundleError> {
        let workload = self.workload.unwrap_or(0);
        core::str::from_utf8(self.bytes(field)?)
            .map_err(|_| BundleError::InvalidUtf8 { workload, field })
    }

    fn list(&mut self, field: &'static str) -> Result<Vec<&'a str>, BundleError> {
        let count = usize::try_from(self.u32(field)?).unwrap_or(usize::MAX);
        // Each entry takes at least its 4-byte length: a count the remaining bytes cannot
        // hold is rejected before anything is reserved for it.
        if count > self.bytes.len() / 4 {
            return Err(BundleError::Truncated { workload: self.workload, field });
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(self.str(field)?);
        }
        Ok(items)
    }
}

fn parse_workload<'a>(bytes: &'a [u8], index: u32) -> Result<Workload<'a>, BundleError> {
    let mut r = Reader { bytes, workload: Some(index) };
    let name = r.str("name")?;
    let wasm = r.bytes("module")?;
    let args = r.list("arguments")?;
    let env = r.list("environment")?;
    if env.iter().any(|e| !e.contains('=')) {
        return Err(BundleError::BadEnvironment { workload: index });
    }
    let tcp_listen = r.list("TCP listen addresses")?;
    if tcp_listen.len() > MAX_TCP_LISTEN || tcp_listen.iter().any(|a| a.parse::<core::net::SocketAddr>().is_err()) {
        return Err(BundleError::BadListenAddress { workload: index });
    }
    let fuel = r.u64("fuel")?;
    let memory_limit = r.u64("memory limit")?;
    if r.u32("reserved")? != 0 {
        return Err(BundleError::ReservedNotZero { workload: index });
    }
    if !r.bytes.is_empty() {
        return Err(BundleError::TrailingBytes { workload: Some(index) });
    }
    Ok(Workload {
        name,
        wasm,
        args,
        env,
        tcp_listen,
        fuel: (fuel != 0).then_some(fuel),
        memory_limit: (memory_limit != 0).then_some(memory_limit),
    })
}

/// Whether `bytes` start like a bundle (for telling bundles from modules).
pub fn is_bundle(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Parses a whole bundle.
pub fn parse(bytes: &[u8]) -> Result<Vec<Workload<'_>>, BundleError> {
    let mut r = Reader { bytes, workload: None };
    if r.take(MAGIC.len(), "magic").map_err(|_| BundleError::BadMagic)? != MAGIC {
        return Err(BundleError::BadMagic);
    }
    let version = r.u32("version")?;
    if version != VERSION {
        return Err(BundleError::UnsupportedVersion(version));
    }
    let count = r.u32("workload count")?;
    if usize::try_from(count).map_or(true, |n| n > MAX_WORKLOADS) {
        return Err(BundleError::TooManyWorkloads(count));
    }
    // Each workload takes at least its 4-byte size field.
    let mut workloads = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(r.bytes.len() / 4));
    for index in 0..count {
        r.workload = Some(index);
        let record = r.bytes("workload record")?;
        workloads.push(parse_workload(record, index)?);
    }
    if !r.bytes.is_empty() {
        return Err(BundleError::TrailingBytes { workload: None });
    }
    Ok(workloads)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A length or count as the layout's `u32`.
fn wire_len(len: usize) -> u32 {
    u32::try_from(len).expect("bundle field longer than 4 GiB (callers check sizes first)")
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, wire_len(b.len()));
    out.extend_from_slice(b);
}

/// Encodes workloads into a bundle (host side). The result parses back to `workloads`
/// with [`parse`] if they satisfy its rules (at most [`MAX_WORKLOADS`], `=` in every
/// environment entry).
///
/// # Panics
/// If a workload's record (module, strings and fixed fields together) exceeds 4 GiB,
/// which the layout cannot express. Callers bound their inputs first.
pub fn encode(workloads: &[Workload<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    put_u32(&mut out, VERSION);
    put_u32(&mut out, wire_len(workloads.len()));
    for w in workloads {
        let mut rec = Vec::with_capacity(w.wasm.len() + 256);
        put_bytes(&mut rec, w.name.as_bytes());
        put_bytes(&mut rec, w.wasm);
        for list in [&w.args, &w.env, &w.tcp_listen] {
            put_u32(&mut rec, wire_len(list.len()));
            for item in list.iter() {
                put_bytes(&mut rec, item.as_bytes());
            }
        }
        rec.extend_from_slice(&w.fuel.unwrap_or(0).to_le_bytes());
        rec.extend_from_slice(&w.memory_limit.unwrap_or(0).to_le_bytes());
        put_u32(&mut rec, 0);
        put_bytes(&mut out, &rec);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Workload<'static>> {
        vec![
            Workload {
                name: "hello",
                wasm: b"\0asm\x01\0\0\0",
                args: vec!["hello.wasm", "a b", ""],
                env: vec!["KEY=VALUE", "EMPTY="],
                tcp_listen: vec!["0.0.0.0:8080", "[::]:9000"],
                fuel: Some(1000),
                memory_limit: None,
            },
            Workload { name: "two", wasm: b"", args: vec![], env: vec![], tcp_listen: vec![], fuel: None, memory_limit: Some(65536) },
        ]
    }

    #[test]
    fn roundtrip() {
        let bytes = encode(&sample());
        assert!(is_bundle(&bytes));
        assert_eq!(parse(&bytes).unwrap(), sample());
        assert_eq!(parse(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            assert!(parse(&bytes[..len]).is_err(), "truncated to {len} parsed");
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&sample());
        bytes.push(0);
        assert_eq!(parse(&bytes), Err(BundleError::TrailingBytes { workload: None }));
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(VERSION.to_le_bytes());
        bytes.extend(u32::MAX.to_le_bytes());
        assert_eq!(parse(&bytes), Err(BundleError::TooManyWorkloads(u32::MAX)));

        // A workload whose argument count claims four billion entries.
        let mut rec = Vec::new();
        put_bytes(&mut rec, b"n");
        put_bytes(&mut rec, b"");
        put_u32(&mut rec, u32::MAX);
        let mut bytes = MAGIC.to_vec();
        bytes.extend(VERSION.to_le_bytes());
        bytes.extend(1u32.to_le_bytes());
        put_bytes(&mut bytes, &rec);
        assert!(matches!(parse(&bytes), Err(BundleError::Truncated { workload: Some(0), field: "arguments" })));
    }

    #[test]
    fn bad_header_fields() {
        assert_eq!(parse(b"nope"), Err(BundleError::BadMagic));
        let mut bytes = encode(&sample());
        bytes[8] = 1;
        assert_eq!(parse(&bytes), Err(BundleError::UnsupportedVersion(1)));
    }

    #[test]
    fn errors_name_the_workload_and_field() {
        let mut w = sample();
        w[1].args = vec!["ok"];
        let mut bytes = encode(&w);
        // Corrupt the last byte of workload 1's only argument ("ok" -> "o\xff").
        let at = bytes.windows(2).rposition(|p| p == b"ok").unwrap() + 1;
        bytes[at] = 0xff;
        assert_eq!(parse(&bytes), Err(BundleError::InvalidUtf8 { workload: 1, field: "arguments" }));

        // A record one byte longer than its fields.
        let mut rec = Vec::new();
        put_bytes(&mut rec, b"n");
        put_bytes(&mut rec, b"");
        put_u32(&mut rec, 0);
        put_u32(&mut rec, 0);
        put_u32(&mut rec, 0);
        rec.extend([0; 8 + 8 + 4 + 1]);
        let mut bytes = MAGIC.to_vec();
        bytes.extend(VERSION.to_le_bytes());
        bytes.extend(1u32.to_le_bytes());
        put_bytes(&mut bytes, &rec);
        assert_eq!(parse(&bytes), Err(BundleError::TrailingBytes { workload: Some(0) }));
        assert_eq!(parse(&bytes).unwrap_err().to_string(), "trailing bytes in workload 0");

        // A record size beyond the input.
        let mut bytes = encode(&sample()[1..]);
        bytes[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&bytes), Err(BundleError::Truncated { workload: Some(0), field: "workload record" }));
    }

    #[test]
    fn limits_of_zero_mean_none() {
        let w = Workload { name: "z", wasm: b"", args: vec![], env: vec![], tcp_listen: vec![], fuel: Some(0), memory_limit: Some(0) };
        let bytes = encode(&[w]);
        let parsed = parse(&bytes).unwrap();
        assert_eq!((parsed[0].fuel, parsed[0].memory_limit), (None, None));
        let w = Workload { name: "m", wasm: b"", args: vec![], env: vec![], tcp_listen: vec![], fuel: Some(u64::MAX), memory_limit: Some(u64::MAX) };
        let bytes = encode(&[w]);
        let parsed = parse(&bytes).unwrap();
        assert_eq!((parsed[0].fuel, parsed[0].memory_limit), (Some(u64::MAX), Some(u64::MAX)));
    }

    #[test]
    fn the_workload_limit_is_enforced() {
        let w = Workload { name: "", wasm: b"", args: vec![], env: vec![], tcp_listen: vec![], fuel: None, memory_limit: None };
        let many = vec![w; MAX_WORKLOADS];
        assert_eq!(parse(&encode(&many)).unwrap().len(), MAX_WORKLOADS);
        let too_many = vec![many[0].clone(); MAX_WORKLOADS + 1];
        assert_eq!(parse(&encode(&too_many)), Err(BundleError::TooManyWorkloads(256)));
        assert!(!is_bundle(b"HCYBNDL"));
        assert!(!is_bundle(b"\0asm\x01\0\0\0"));
    }

    #[test]
    fn bad_fields_are_reported() {
        let mut w = sample();
        w[0].env = vec!["NOEQUALS"];
        assert_eq!(parse(&encode(&w)), Err(BundleError::BadEnvironment { workload: 0 }));
        for bad in ["8080", "localhost:80", "1.2.3.4:99999"] {
            let mut w = sample();
            w[1].tcp_listen = vec![bad];
            assert_eq!(parse(&encode(&w)), Err(BundleError::BadListenAddress { workload: 1 }), "{bad}");
        }
        let mut w = sample();
        w[0].tcp_listen = vec!["0.0.0.0:1"; MAX_TCP_LISTEN + 1];
        assert_eq!(parse(&encode(&w)), Err(BundleError::BadListenAddress { workload: 0 }));

        let mut bytes = encode(&sample()[1..]);
        let reserved_at = bytes.len() - 4;
        bytes[reserved_at] = 1;
        assert_eq!(parse(&bytes), Err(BundleError::ReservedNotZero { workload: 0 }));

        let mut bytes = encode(&sample()[1..]);
        // name "two" starts after magic, version, count, record size, name length.
        bytes[8 + 4 + 4 + 4 + 4] = 0xff;
        assert_eq!(parse(&bytes), Err(BundleError::InvalidUtf8 { workload: 0, field: "name" }));
    }
}
