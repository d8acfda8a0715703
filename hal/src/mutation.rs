//! Deterministic mutation testing for the parsers of untrusted bytes.
//!
//! Each parser (`bundle::parse`, `channel::Decoder`, `boot`'s PVH parsers) gets many
//! mutated copies of valid input — bit flips, byte overwrites with boundary values,
//! truncations, insertions, and length fields set to extremes — and must return a value
//! or an error, never panic or allocate without bound. Runs on stable Rust in
//! `make test`; the mutator is seeded, so a failure reproduces.
#![cfg(test)]

/// xorshift64*: small, seeded, good enough to drive mutations.
pub struct Mutator(u64);

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }

    /// One to four mutations of `input`.
    pub fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(out.len());
            match self.below(6) {
                0 if !out.is_empty() => out[at] ^= 1 << self.below(8),
                1 if !out.is_empty() => out[at] = [0, 1, 0x7f, 0x80, 0xff][self.below(5)],
                2 => out.truncate(at),
                3 => out.insert(at, self.next() as u8),
                // A 32-bit little-endian field set to an extreme (lengths, counts).
                4 if at + 4 <= out.len() => {
                    let value: u32 = [0, 1, u32::MAX, u32::MAX / 2, 0x1_0000][self.below(5)];
                    out[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
                _ if !out.is_empty() => {
                    out.remove(at);
                }
                _ => {}
            }
        }
        out
    }
}

mod bundle_parser {
    use super::Mutator;
    use crate::bundle::{encode, parse, Workload};

    #[test]
    fn mutated_bundles_never_panic() {
        let valid = encode(&[
            Workload { name: "a", wasm: b"\0asm\x01\0\0\0", args: vec!["a", "-x"], env: vec!["K=V"], tcp_listen: vec!["0.0.0.0:80"], fuel: Some(5), memory_limit: None },
            Workload { name: "b", wasm: &[7; 100], args: vec![], env: vec![], tcp_listen: vec![], fuel: None, memory_limit: Some(1 << 20) },
        ]);
        let mut m = Mutator::new(0xb0d1e);
        let mut accepted = 0;
        for _ in 0..20_000 {
            let input = m.mutate(&valid);
            if let Ok(workloads) = parse(&input) {
                accepted += 1;
                // Whatever parses must also re-encode to something that parses the same.
                assert_eq!(parse(&encode(&workloads)).unwrap(), workloads);
            }
        }
        // Some mutations (inside module bytes) leave the bundle valid; most must not.
        assert!(accepted > 0 && accepted < 20_000, "accepted {accepted}");
    }
}

mod channel_decoder {
    use super::Mutator;
    use crate::channel::{encode, encode_output, Decoder, Frame, Outcome, Stream};

    #[test]
    fn mutated_streams_never_panic() {
        let mut valid = Vec::new();
        let mut sink = |b: &[u8]| valid.extend_from_slice(b);
        encode(&Frame::Start { workload: 0, boot_ns: 99, name: "w" }, &mut sink);
        encode_output(Stream::Stdout, 0, b"hello", &mut sink);
        encode(&Frame::Exit { workload: 0, outcome: Outcome::Trap, reason: "boom" }, &mut sink);
        encode(&Frame::Done { workloads_run: 1, workloads_failed: 1 }, &mut sink);
        let mut m = Mutator::new(0xc4a7);
        for _ in 0..20_000 {
            let input = m.mutate(&valid);
            let mut decoder = Decoder::new();
            // Delivered in uneven pieces, as a pipe would.
            for piece in input.chunks(1 + m.below(7)) {
                decoder.push(piece);
                while let Some(frame) = decoder.next_frame() {
                    if frame.is_err() {
                        break;
                    }
                }
            }
        }
    }
}
