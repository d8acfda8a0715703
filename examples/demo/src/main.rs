//! Halcyon's demo workload: an ordinary `wasm32-wasip1` program that shows where it runs
//! (platform, wall-clock time), draws random bytes from the kernel's DRBG, and computes
//! something measurable.
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn random_get(buf: *mut u8, len: usize) -> u16;
}

fn random_bytes<const N: usize>() -> Result<[u8; N], u16> {
    let mut buf = [0u8; N];
    // SAFETY: `random_get` writes exactly `len` bytes into the buffer we own.
    match unsafe { random_get(buf.as_mut_ptr(), N) } {
        0 => Ok(buf),
        errno => Err(errno),
    }
}

/// UTC calendar date from Unix seconds (proleptic Gregorian, days-from-civil inverse).
fn utc(seconds: u64) -> String {
    let (days, rem) = (seconds / 86_400, seconds % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem / 60 % 60, rem % 60)
}

fn count_primes(limit: usize) -> usize {
    let mut composite = vec![false; limit];
    let mut count = 0;
    for n in 2..limit {
        if !composite[n] {
            count += 1;
            (n * n..limit).step_by(n).for_each(|m| composite[m] = true);
        }
    }
    count
}

fn main() {
    println!("Halcyon demo: a WebAssembly workload in a unikernel");
    let platform = std::env::var("HALCYON_PLATFORM").unwrap_or_else(|_| "unknown".into());
    println!("  platform      : {platform} (confidential VM: {})", if platform == "none" { "no" } else { "yes" });
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(now) => println!("  wall clock    : {}", utc(now.as_secs())),
        Err(_) => println!("  wall clock    : unavailable"),
    }
    match random_bytes::<16>() {
        Ok(bytes) => println!("  random bytes  : {}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        Err(errno) => println!("  random bytes  : refused (errno {errno}): no hardware entropy source"),
    }
    let start = Instant::now();
    let primes = count_primes(1_000_000);
    println!("  computation   : {primes} primes below 1 000 000 in {:.1} ms", start.elapsed().as_secs_f64() * 1000.0);
}
