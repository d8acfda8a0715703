//! Writes `N` bytes (first argument, default 1 MiB) of the pattern `i % 251` to stdout in
//! writes of varying sizes, then `stderr-tail` to stderr. Byte 0..=255 all occur.
use std::io::Write;

fn main() {
    let total: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1 << 20);
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let mut out = std::io::stdout().lock();
    let mut offset = 0;
    let mut step = 1;
    while offset < total {
        let end = (offset + step).min(total);
        out.write_all(&data[offset..end]).unwrap();
        offset = end;
        step = step * 3 % 70_001 + 1;
    }
    out.flush().unwrap();
    eprint!("stderr-tail");
}
