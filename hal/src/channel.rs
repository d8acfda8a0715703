//! The workload channel: how the kernel tells the host what its workloads print and how
//! they end.
//!
//! The kernel writes a byte stream of frames to a dedicated I/O port (QEMU's
//! `isa-debugcon`); the host tool decodes it. The kernel log travels separately, so the
//! workload's stdout reaches the user byte for byte. All integers are little-endian:
//!
//! ```text
//! frame  = kind:u8  workload:u8  len:u16  payload[len]
//! 0x01 STDOUT  payload = bytes the workload wrote to fd 1
//! 0x02 STDERR  payload = bytes the workload wrote to fd 2
//! 0x03 START   payload = boot_ns:u64 ++ name     (sent when the kernel takes up the
//!              workload: guest ns since VM reset, UTF-8 name)
//! 0x04 EXIT    payload = outcome:u8 ++ code:i32 ++ reason (UTF-8, may be empty)
//! 0x05 DONE    payload = workloads_run:u32 ++ workloads_failed:u32
//! ```
//! Outcomes: 0 exited (code is the workload's exit status), 1 trap, 2 fuel exhausted,
//! 3 memory limit, 4 invalid module, 5 link error, 6 other.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Bumped whenever the frame format changes; the kernel ELF carries it in a note.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest payload one frame carries.
pub const MAX_PAYLOAD: usize = 0xFFFF;
const HEADER_LEN: usize = 4;

const KIND_STDOUT: u8 = 0x01;
const KIND_STDERR: u8 = 0x02;
const KIND_START: u8 = 0x03;
const KIND_EXIT: u8 = 0x04;
const KIND_DONE: u8 = 0x05;

/// Which output stream bytes belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The workload's fd 1; the host copies it to its stdout.
    Stdout,
    /// The workload's fd 2; the host copies it to its stderr.
    Stderr,
}

/// How a workload ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Returned from `_start` (status 0) or called `proc_exit(status)`.
    Exited(i32),
    /// A WebAssembly trap (unreachable, out-of-bounds access, stack overflow, ...).
    Trap,
    /// The fuel given with `--fuel` ran out.
    FuelExhausted,
    /// The linear memory limit was hit (or the VM ran out of memory for it).
    MemoryLimit,
    /// The module did not decode or validate.
    InvalidModule,
    /// An import could not be satisfied, or there is no `_start` to call.
    LinkError,
    /// Anything else that kept the workload from running.
    Other,
}

impl Outcome {
    fn to_wire(self) -> (u8, i32) {
        match self {
            Outcome::Exited(code) => (0, code),
            Outcome::Trap => (1, 0),
            Outcome::FuelExhausted => (2, 0),
            Outcome::MemoryLimit => (3, 0),
            Outcome::InvalidModule => (4, 0),
            Outcome::LinkError => (5, 0),
            Outcome::Other => (6, 0),
        }
    }

    fn from_wire(tag: u8, code: i32) -> Option<Self> {
        Some(match tag {
            0 => Outcome::Exited(code),
            1 => Outcome::Trap,
            2 => Outcome::FuelExhausted,
            3 => Outcome::MemoryLimit,
            4 => Outcome::InvalidModule,
            5 => Outcome::LinkError,
            6 => Outcome::Other,
            _ => return None,
        })
    }
}

/// A frame as the kernel sends it (borrowed; encoding does not allocate).
///
/// `workload` is the workload's index in the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `STDOUT`/`STDERR`: at most [`MAX_PAYLOAD`] bytes (more is cut off); use
    /// [`encode_output`] for arbitrary lengths.
    Output { stream: Stream, workload: u8, data: &'a [u8] },
    /// `START`: the kernel takes up a workload `boot_ns` after VM reset.
    Start { workload: u8, boot_ns: u64, name: &'a str },
    /// `EXIT`: how a workload ended, with a human-readable reason (may be empty).
    Exit { workload: u8, outcome: Outcome, reason: &'a str },
    /// `DONE`: the boot's run is over; nothing follows.
    Done { workloads_run: u32, workloads_failed: u32 },
}

fn header(kind: u8, workload: u8, len: usize) -> [u8; HEADER_LEN] {
    let len = len.min(MAX_PAYLOAD) as u16;
    let [lo, hi] = len.to_le_bytes();
    [kind, workload, lo, hi]
}

/// Truncates `s` to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Writes one frame to `sink` (header, then payload pieces). Over-long names and reasons
/// are truncated to fit; over-long output is truncated too — send it with
/// [`encode_output`], which splits it.
pub fn encode(frame: &Frame<'_>, sink: &mut dyn FnMut(&[u8])) {
    match *frame {
        Frame::Output { stream, workload, data } => {
            let kind = match stream {
                Stream::Stdout => KIND_STDOUT,
                Stream::Stderr => KIND_STDERR,
            };
            let data = &data[..data.len().min(MAX_PAYLOAD)];
            sink(&header(kind, workload, data.len()));
            sink(data);
        }
        Frame::Start { workload, boot_ns, name } => {
            let name = truncate(name, MAX_PAYLOAD - 8);
            sink(&header(KIND_START, workload, 8 + name.len()));
            sink(&boot_ns.to_le_bytes());
            sink(name.as_bytes());
        }
        Frame::Exit { workload, outcome, reason } => {
            let reason = truncate(reason, MAX_PAYLOAD - 5);
            let (tag, code) = outcome.to_wire();
            sink(&header(KIND_EXIT, workload, 5 + reason.len()));
            sink(&[tag]);
            sink(&code.to_le_bytes());
            sink(reason.as_bytes());
        }
        Frame::Done { workloads_run, workloads_failed } => {
            sink(&header(KIND_DONE, 0, 8));
            sink(&workloads_run.to_le_bytes());
            sink(&workloads_failed.to_le_bytes());
        }
    }
}

/// Writes `data` as as many output frames as it takes (none for empty data).
pub fn encode_output(stream: Stream, workload: u8, data: &[u8], sink: &mut dyn FnMut(&[u8])) {
    for chunk in data.chunks(MAX_PAYLOAD) {
        encode(&Frame::Output { stream, workload, data: chunk }, sink);
    }
}

/// A decoded frame that owns its payload (host side); the fields mean what they mean in
/// [`Frame`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedFrame {
    Output { stream: Stream, workload: u8, data: Vec<u8> },
    Start { workload: u8, boot_ns: u64, name: String },
    Exit { workload: u8, outcome: Outcome, reason: String },
    Done { workloads_run: u32, workloads_failed: u32 },
}

/// Why a byte stream is not a valid channel stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// The frame kind is none of those in the module doc.
    UnknownKind(u8),
    /// A frame's payload is too short for its kind.
    ShortPayload { kind: u8, len: usize },
    /// A fixed-size payload (`DONE`) has bytes beyond its fields.
    LongPayload { kind: u8, len: usize },
    /// An `EXIT` frame's outcome byte is none of 0..=6.
    UnknownOutcome(u8),
    /// A `START` name or `EXIT` reason is not UTF-8.
    InvalidUtf8 { kind: u8 },
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::UnknownKind(k) => write!(f, "unknown frame kind {k:#04x}"),
            ChannelError::ShortPayload { kind, len } => {
                write!(f, "frame kind {kind:#04x} has a {len}-byte payload, too short")
            }
            ChannelError::LongPayload { kind, len } => {
                write!(f, "frame kind {kind:#04x} has a {len}-byte payload, too long")
            }
            ChannelError::UnknownOutcome(o) => write!(f, "unknown workload outcome {o}"),
            ChannelError::InvalidUtf8 { kind } => write!(f, "frame kind {kind:#04x} carries invalid UTF-8"),
        }
    }
}

impl core::error::Error for ChannelError {}

fn parse(kind: u8, workload: u8, payload: &[u8]) -> Result<OwnedFrame, ChannelError> {
    let short = || ChannelError::ShortPayload { kind, len: payload.len() };
    let text = |bytes: &[u8]| {
        core::str::from_utf8(bytes).map(String::from).map_err(|_| ChannelError::InvalidUtf8 { kind })
    };
    match kind {
        KIND_STDOUT | KIND_STDERR => Ok(OwnedFrame::Output {
            stream: if kind == KIND_STDOUT { Stream::Stdout } else { Stream::Stderr },
            workload,
            data: payload.to_vec(),
        }),
        KIND_START => {
            let (ns, name) = payload.split_first_chunk::<8>().ok_or_else(short)?;
            Ok(OwnedFrame::Start { workload, boot_ns: u64::from_le_bytes(*ns), name: text(name)? })
        }
        KIND_EXIT => {
            let (&tag, rest) = payload.split_first().ok_or_else(short)?;
            let (code, reason) = rest.split_first_chunk::<4>().ok_or_else(short)?;
            let outcome = Outcome::from_wire(tag, i32::from_le_bytes(*code))
                .ok_or(ChannelError::UnknownOutcome(tag))?;
            Ok(OwnedFrame::Exit { workload, outcome, reason: text(reason)? })
        }
        KIND_DONE => {
            let (run, rest) = payload.split_first_chunk::<4>().ok_or_else(short)?;
            let (failed, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
            if !rest.is_empty() {
                return Err(ChannelError::LongPayload { kind, len: payload.len() });
            }
            Ok(OwnedFrame::Done {
                workloads_run: u32::from_le_bytes(*run),
                workloads_failed: u32::from_le_bytes(*failed),
            })
        }
        other => Err(ChannelError::UnknownKind(other)),
    }
}

/// Incremental decoder: push bytes as they arrive, pull complete frames.
#[derive(Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    consumed: usize,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes as they arrive, in any pieces (a frame may span many pushes).
    pub fn push(&mut self, bytes: &[u8]) {
        // Drop what was consumed before growing, so the buffer stays one frame large.
        if self.consumed > 0 {
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, `None` if more bytes are needed. After an error the
    /// stream cannot be resynchronised; callers should stop decoding.
    pub fn next_frame(&mut self) -> Option<Result<OwnedFrame, ChannelError>> {
        let pending = &self.buffer[self.consumed..];
        let (head, rest) = pending.split_first_chunk::<HEADER_LEN>()?;
        let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
        let payload = rest.get(..len)?;
        let frame = parse(head[0], head[1], payload);
        self.consumed += HEADER_LEN + len;
        Some(frame)
    }

    /// Bytes received that do not yet form a whole frame (non-zero at the end of the
    /// stream means it was cut off mid-frame).
    pub fn pending(&self) -> usize {
        self.buffer.len() - self.consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frame: &Frame<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        encode(frame, &mut |b| out.extend_from_slice(b));
        out
    }

    fn decode_all(bytes: &[u8]) -> Vec<Result<OwnedFrame, ChannelError>> {
        let mut d = Decoder::new();
        d.push(bytes);
        core::iter::from_fn(|| d.next_frame()).collect()
    }

    #[test]
    fn every_frame_kind_roundtrips() {
        let frames = [
            Frame::Output { stream: Stream::Stdout, workload: 3, data: b"hi\0\xff" },
            Frame::Output { stream: Stream::Stderr, workload: 0, data: b"" },
            Frame::Start { workload: 1, boot_ns: 123_456_789, name: "hello" },
            Frame::Exit { workload: 1, outcome: Outcome::Exited(-3), reason: "" },
            Frame::Exit { workload: 2, outcome: Outcome::FuelExhausted, reason: "all fuel consumed" },
            Frame::Done { workloads_run: 4, workloads_failed: 1 },
        ];
        let mut stream = Vec::new();
        for f in &frames {
            stream.extend(encoded(f));
        }
        let decoded = decode_all(&stream);
        assert_eq!(decoded.len(), frames.len());
        assert_eq!(decoded[0], Ok(OwnedFrame::Output { stream: Stream::Stdout, workload: 3, data: b"hi\0\xff".to_vec() }));
        assert_eq!(decoded[2], Ok(OwnedFrame::Start { workload: 1, boot_ns: 123_456_789, name: "hello".into() }));
        assert_eq!(decoded[3], Ok(OwnedFrame::Exit { workload: 1, outcome: Outcome::Exited(-3), reason: String::new() }));
        assert_eq!(decoded[4], Ok(OwnedFrame::Exit { workload: 2, outcome: Outcome::FuelExhausted, reason: "all fuel consumed".into() }));
        assert_eq!(decoded[5], Ok(OwnedFrame::Done { workloads_run: 4, workloads_failed: 1 }));
    }

    #[test]
    fn every_outcome_roundtrips() {
        let outcomes = [
            Outcome::Exited(0),
            Outcome::Exited(i32::MIN),
            Outcome::Exited(i32::MAX),
            Outcome::Trap,
            Outcome::FuelExhausted,
            Outcome::MemoryLimit,
            Outcome::InvalidModule,
            Outcome::LinkError,
            Outcome::Other,
        ];
        for outcome in outcomes {
            let bytes = encoded(&Frame::Exit { workload: 7, outcome, reason: "why" });
            assert_eq!(bytes[4], outcome.to_wire().0);
            assert_eq!(decode_all(&bytes), [Ok(OwnedFrame::Exit { workload: 7, outcome, reason: "why".into() })]);
        }
    }

    #[test]
    fn large_output_is_split_and_reassembled() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut stream = Vec::new();
        encode_output(Stream::Stdout, 0, &data, &mut |b| stream.extend_from_slice(b));
        let mut out = Vec::new();
        for frame in decode_all(&stream) {
            match frame.unwrap() {
                OwnedFrame::Output { data, .. } => {
                    assert!(data.len() <= MAX_PAYLOAD);
                    out.extend(data)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(out, data);
        let mut none = 0;
        encode_output(Stream::Stdout, 0, &[], &mut |_| none += 1);
        assert_eq!(none, 0);
    }

    #[test]
    fn byte_by_byte_delivery() {
        let bytes = encoded(&Frame::Start { workload: 9, boot_ns: 1, name: "x" });
        let mut d = Decoder::new();
        for (i, b) in bytes.iter().enumerate() {
            assert!(d.next_frame().is_none(), "frame complete too early at byte {i}");
            d.push(&[*b]);
        }
        assert!(matches!(d.next_frame(), Some(Ok(OwnedFrame::Start { workload: 9, .. }))));
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(decode_all(&[0x7f, 0, 0, 0])[0], Err(ChannelError::UnknownKind(0x7f)));
        assert_eq!(decode_all(&[KIND_START, 0, 2, 0, 1, 2])[0], Err(ChannelError::ShortPayload { kind: KIND_START, len: 2 }));
        assert_eq!(decode_all(&[KIND_EXIT, 0, 5, 0, 9, 0, 0, 0, 0])[0], Err(ChannelError::UnknownOutcome(9)));
        assert_eq!(decode_all(&[KIND_EXIT, 0, 6, 0, 1, 0, 0, 0, 0, 0xff])[0], Err(ChannelError::InvalidUtf8 { kind: KIND_EXIT }));
        assert_eq!(decode_all(&[KIND_DONE, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0])[0], Err(ChannelError::ShortPayload { kind: KIND_DONE, len: 7 }));
        assert_eq!(decode_all(&[KIND_DONE, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])[0], Err(ChannelError::LongPayload { kind: KIND_DONE, len: 9 }));
        assert_eq!(decode_all(&[KIND_EXIT, 0, 4, 0, 0, 0, 0, 0])[0], Err(ChannelError::ShortPayload { kind: KIND_EXIT, len: 4 }));
        assert_eq!(decode_all(&[KIND_EXIT, 0, 0, 0])[0], Err(ChannelError::ShortPayload { kind: KIND_EXIT, len: 0 }));
        assert_eq!(decode_all(&[KIND_START, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc3])[0], Err(ChannelError::InvalidUtf8 { kind: KIND_START }));
        assert_eq!(decode_all(&[0, 0, 0, 0])[0], Err(ChannelError::UnknownKind(0)));
        // Every error has a message.
        assert!(!ChannelError::LongPayload { kind: 5, len: 9 }.to_string().is_empty());
    }

    #[test]
    fn a_stream_cut_off_mid_frame_is_pending() {
        let mut bytes = encoded(&Frame::Done { workloads_run: 1, workloads_failed: 0 });
        bytes.extend(&encoded(&Frame::Output { stream: Stream::Stderr, workload: 0, data: b"abc" })[..5]);
        let mut d = Decoder::new();
        d.push(&bytes);
        assert_eq!(d.next_frame(), Some(Ok(OwnedFrame::Done { workloads_run: 1, workloads_failed: 0 })));
        assert_eq!(d.next_frame(), None);
        assert_eq!(d.pending(), 5);
        // A maximal length field waits for its payload instead of failing or allocating.
        let mut d = Decoder::new();
        d.push(&[KIND_STDOUT, 0, 0xff, 0xff, 1]);
        assert_eq!(d.next_frame(), None);
        d.push(&vec![7; MAX_PAYLOAD - 1]);
        assert!(matches!(d.next_frame(), Some(Ok(OwnedFrame::Output { ref data, .. })) if data.len() == MAX_PAYLOAD));
    }

    #[test]
    fn output_frames_carry_stream_and_workload() {
        let mut bytes = Vec::new();
        encode_output(Stream::Stderr, 200, b"oops", &mut |b| bytes.extend_from_slice(b));
        assert_eq!(bytes, [KIND_STDERR, 200, 4, 0, b'o', b'o', b'p', b's']);
        // An over-long single frame is cut to MAX_PAYLOAD rather than mis-framed.
        let big = vec![1u8; MAX_PAYLOAD + 10];
        let bytes = encoded(&Frame::Output { stream: Stream::Stdout, workload: 0, data: &big });
        assert_eq!(bytes.len(), HEADER_LEN + MAX_PAYLOAD);
        assert_eq!(decode_all(&bytes).len(), 1);
    }

    #[test]
    fn long_reasons_are_truncated_on_char_boundaries() {
        let reason = "é".repeat(40_000);
        let bytes = encoded(&Frame::Exit { workload: 0, outcome: Outcome::Trap, reason: &reason });
        match &decode_all(&bytes)[0] {
            Ok(OwnedFrame::Exit { reason, .. }) => assert!(reason.len() <= MAX_PAYLOAD - 5),
            other => panic!("{other:?}"),
        }
    }
}
