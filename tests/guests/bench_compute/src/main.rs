//! CPU-bound benchmarks for `make bench`, compiled once to `wasm32-wasip1` and run
//! unchanged by Halcyon and by the wasmi CLI in the Linux baseline guest.
//!
//! Usage: `bench_compute <marker|coremark|sha256|sort> [size]`. Prints `BENCH-START`
//! first (the host timestamps it as "first workload instruction"), then
//! `result <name> <milliseconds> <checksum>`, timed with the WASI monotonic clock, the
//! same way on both sides. The checksum proves both guests computed the same thing.
use sha2::{Digest, Sha256};
use std::time::Instant;

/// A deterministic generator so both guests see the same data.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A CoreMark-like mix (after EEMBC CoreMark's three kernels, not a certified port):
/// linked-list find/reverse, small integer matrix multiply, a byte state machine,
/// all folded into a CRC-16.
fn coremark(iterations: u64) -> u64 {
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    let mut crc: u16 = 0;
    let mut list: Vec<(u32, usize)> = (0..64).map(|i| ((rng.next() % 1000) as u32, i + 1)).collect();
    let mut a = [[0i32; 8]; 8];
    let mut b = [[0i32; 8]; 8];
    for i in 0..8 {
        for j in 0..8 {
            a[i][j] = (rng.next() % 64) as i32 - 32;
            b[i][j] = (rng.next() % 64) as i32 - 32;
        }
    }
    let input: Vec<u8> = (0..256).map(|_| b"0123456789+-.eE, "[rng.next() as usize % 17]).collect();
    for iteration in 0..iterations {
        // List: walk the "next" links looking for a value, then reverse the links.
        let target = (iteration % 1000) as u32;
        let (mut index, mut found) = (0usize, 0u32);
        while index < list.len() {
            if list[index].0 == target {
                found += 1;
            }
            index = list[index].1;
        }
        list.reverse();
        for (i, node) in list.iter_mut().enumerate() {
            node.1 = i + 1;
            node.0 = node.0.wrapping_add(iteration as u32) % 1000;
        }
        // Matrix: c = a * b, then fold.
        let mut sum = 0i32;
        for i in 0..8 {
            for j in 0..8 {
                let mut c = 0i32;
                for k in 0..8 {
                    c = c.wrapping_add(a[i][k].wrapping_mul(b[k][j]));
                }
                sum = sum.wrapping_add(c);
            }
        }
        a[(iteration % 8) as usize][0] = sum % 97;
        // State machine: classify the input as numbers, signs, exponents and separators.
        let mut state = 0u8;
        let mut transitions = 0u32;
        for &byte in &input {
            let next = match (state, byte) {
                (_, b'0'..=b'9') => 1,
                (1, b'.') => 2,
                (1 | 2, b'e' | b'E') => 3,
                (3, b'+' | b'-') => 4,
                (_, b',' | b' ') => 0,
                _ => 5,
            };
            transitions += u32::from(next != state);
            state = next;
        }
        for value in [found, sum as u32, transitions] {
            for byte in value.to_le_bytes() {
                crc = crc16(crc, byte);
            }
        }
    }
    u64::from(crc)
}

fn crc16(mut crc: u16, byte: u8) -> u16 {
    crc ^= u16::from(byte);
    for _ in 0..8 {
        crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
    }
    crc
}

fn sha256(mebibytes: u64) -> u64 {
    let mut block = vec![0u8; 1 << 20];
    let mut rng = XorShift(42);
    block.iter_mut().for_each(|b| *b = rng.next() as u8);
    let mut hasher = Sha256::new();
    for _ in 0..mebibytes {
        hasher.update(&block);
    }
    let digest = hasher.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn sort(count: u64) -> u64 {
    let mut rng = XorShift(7);
    let mut values: Vec<u32> = (0..count).map(|_| rng.next() as u32).collect();
    values.sort_unstable();
    values.iter().step_by(997).fold(0u64, |acc, v| acc.wrapping_mul(31).wrapping_add(u64::from(*v)))
}

fn main() {
    println!("BENCH-START");
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map(String::as_str).unwrap_or("marker");
    let size: Option<u64> = args.get(2).and_then(|s| s.parse().ok());
    let start = Instant::now();
    let checksum = match name {
        "marker" => 0,
        "coremark" => coremark(size.unwrap_or(20_000)),
        "sha256" => sha256(size.unwrap_or(64)),
        "sort" => sort(size.unwrap_or(1_000_000)),
        other => {
            eprintln!("unknown benchmark '{other}' (marker, coremark, sha256, sort)");
            std::process::exit(2);
        }
    };
    println!("result {name} {:.3} {checksum:x}", start.elapsed().as_secs_f64() * 1000.0);
}
