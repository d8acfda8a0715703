//! `make bench`: measures what users of Halcyon care about at start-up and prints a
//! Markdown table (the figures in `docs/PERFORMANCE.md` come from here).
//!
//! - image size on disk;
//! - time from spawning `halcyon run` (which spawns QEMU) to the workload's first byte
//!   on the host's stdout, as the host sees it (median of several runs);
//! - the same from inside the guest: VM reset → kernel entry → first workload
//!   instruction, read from the kernel log (TSC-based);
//! - the smallest guest RAM (`--ram`) with which the demo still runs correctly.
#![deny(unsafe_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 15;

struct Paths {
    halcyon: PathBuf,
    image: PathBuf,
    workload: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

fn paths() -> Paths {
    let root = workspace_root();
    let paths = Paths {
        halcyon: root.join("target/release/halcyon"),
        image: root.join("target/halcyon/halcyon.elf"),
        workload: root.join("target/examples/demo.wasm"),
    };
    for p in [&paths.halcyon, &paths.image, &paths.workload] {
        if !p.exists() {
            eprintln!("missing {}: run `make bench` (it builds everything first)", p.display());
            std::process::exit(2);
        }
    }
    paths
}

/// One boot of the demo; returns the host-side latency to the first stdout byte and the
/// kernel log.
fn boot_once(paths: &Paths, ram_mib: u32) -> Option<(Duration, String, bool)> {
    let log = std::env::temp_dir().join(format!("halcyon-bench-{}.log", std::process::id()));
    let start = Instant::now();
    let mut child = Command::new(&paths.halcyon)
        .arg("run")
        .arg("--image")
        .arg(&paths.image)
        .arg("--ram")
        .arg(format!("{ram_mib}MiB"))
        .arg("--log")
        .arg(&log)
        .arg(&paths.workload)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let mut first = [0u8; 1];
    let got_output = stdout.read(&mut first).ok()? == 1;
    let latency = start.elapsed();
    let mut rest = Vec::new();
    let _ = stdout.read_to_end(&mut rest);
    let ok = child.wait().ok()?.success() && got_output;
    let kernel_log = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    Some((latency, kernel_log, ok))
}

/// Pulls "<label> <N> us" style figures out of the kernel log.
fn log_figure_us(log: &str, marker: &str) -> Option<f64> {
    let line = log.lines().find(|l| l.contains(marker))?;
    let after = &line[line.find(marker)? + marker.len()..];
    let number: String = after.trim_start().chars().take_while(|c| c.is_ascii_digit()).collect();
    number.parse::<f64>().ok()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

fn main() {
    let paths = paths();
    let image_bytes = std::fs::metadata(&paths.image).map(|m| m.len()).unwrap_or(0);

    let mut host_ms = Vec::new();
    let mut entry_ms = Vec::new();
    let mut workload_ms = Vec::new();
    for _ in 0..RUNS {
        let Some((latency, log, ok)) = boot_once(&paths, 64) else { continue };
        if !ok {
            eprintln!("a benchmark boot failed; kernel log:\n{log}");
            std::process::exit(1);
        }
        host_ms.push(latency.as_secs_f64() * 1000.0);
        if let Some(us) = log_figure_us(&log, "kernel entered") {
            entry_ms.push(us / 1000.0);
        }
        if let Some(us) = log_figure_us(&log, "first instruction at") {
            workload_ms.push(us / 1000.0);
        }
    }

    // Smallest RAM that still runs the demo to a clean exit: binary search in MiB.
    let (mut low, mut high) = (1u32, 64u32);
    while low + 1 < high {
        let mid = (low + high) / 2;
        let ok = boot_once(&paths, mid).map(|(_, _, ok)| ok).unwrap_or(false);
        if ok { high = mid } else { low = mid }
    }

    println!("| measurement | Halcyon |");
    println!("|---|---|");
    println!("| image size | {:.1} KiB ({} bytes) |", image_bytes as f64 / 1024.0, image_bytes);
    println!(
        "| spawn → first workload output (host wall clock, median of {}) | {:.1} ms |",
        host_ms.len(),
        median(&mut host_ms)
    );
    if !entry_ms.is_empty() {
        println!("| VM reset → kernel entry (guest TSC, median) | {:.2} ms |", median(&mut entry_ms));
    }
    if !workload_ms.is_empty() {
        println!("| VM reset → first workload instruction (guest TSC, median) | {:.2} ms |", median(&mut workload_ms));
    }
    println!("| smallest guest RAM that runs the demo | {high} MiB |");
}
