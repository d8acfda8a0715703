//! `make bench`: Halcyon against what its users would run instead — a Linux guest
//! (Debian's cloud kernel, a busybox initramfs) running the same workload in the wasmi
//! CLI — in the same QEMU, with the same vCPU count and RAM. Each measurement runs on
//! both guests alternately, several times; the table shows medians and the
//! Halcyon/Linux ratio from one run, so machine noise cancels in the ratio. The table
//! is printed and written into `docs/PERFORMANCE.md`.
//!
//! `HALCYON_BENCH_QUICK=1` runs a fast smoke version (fewer runs, smaller inputs).
//! `cargo run --release -p halcyon-bench -- net` (or `-- tls`) runs only the network (or
//! TLS) figures.
#![deny(unsafe_code)]

mod cpio;
mod guests;
mod net;
mod tls;

use guests::{boot, boot_with_retry, Guest, Halcyon};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const RAM_MIB: u32 = 256;

struct Settings {
    startup_runs: usize,
    compute_runs: usize,
    coremark_iterations: u64,
    sha256_mib: u64,
    sort_count: u64,
}

fn settings() -> Settings {
    if std::env::var_os("HALCYON_BENCH_QUICK").is_some() {
        Settings { startup_runs: 3, compute_runs: 1, coremark_iterations: 2_000, sha256_mib: 2, sort_count: 100_000 }
    } else {
        Settings { startup_runs: 9, compute_runs: 3, coremark_iterations: 20_000, sha256_mib: 64, sort_count: 1_000_000 }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

fn required(path: PathBuf) -> PathBuf {
    if !path.exists() {
        eprintln!("missing {}: run `make bench` (it builds everything first)", path.display());
        std::process::exit(2);
    }
    path
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Smallest RAM (MiB) in `low..=high` with which the guest boots the workload and
/// completes it, by bisection (assumes more RAM never hurts).
fn smallest_ram(guest: &dyn Guest, mut low: u32, mut high: u32) -> u32 {
    let works = |mib| boot(guest, mib, &["marker"], Duration::from_secs(40)).ok;
    if !works(high) {
        return 0;
    }
    while low < high {
        let mid = (low + high) / 2;
        if works(mid) { high = mid } else { low = mid + 1 }
    }
    high
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let qemu = Command::new("qemu-system-x86_64").arg("--version").output().ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(String::from))
        .unwrap_or_else(|| "QEMU (version unknown)".into());
    format!("{cores} cores ({cpu}); {qemu}; accelerator TCG; 1 vCPU, {RAM_MIB} MiB guest RAM, `-M microvm`, `-cpu max`")
}

fn today() -> String {
    Command::new("date").args(["-u", "+%Y-%m-%d"]).output().ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

struct Row {
    what: String,
    halcyon: f64,
    linux: f64,
    unit: &'static str,
}

impl Row {
    fn markdown(&self) -> String {
        let ratio = if self.linux > 0.0 { format!("{:.3}", self.halcyon / self.linux) } else { "–".into() };
        format!("| {} | {:.1} {} | {:.1} {} | {} |", self.what, self.halcyon, self.unit, self.linux, self.unit, ratio)
    }
}

fn write_into_performance_doc(root: &Path, table: &str) {
    const BEGIN: &str = "<!-- bench:begin (written by `make bench`) -->";
    const END: &str = "<!-- bench:end -->";
    let path = root.join("docs/PERFORMANCE.md");
    let Ok(doc) = std::fs::read_to_string(&path) else { return };
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        eprintln!("bench: docs/PERFORMANCE.md has no bench markers; table not saved");
        return;
    };
    let updated = format!("{}{BEGIN}\n{table}{}", &doc[..b], &doc[e..]);
    if std::fs::write(&path, updated).is_ok() {
        eprintln!("bench: table written to docs/PERFORMANCE.md");
    }
}

/// HAL figures, Halcyon only: `(label, median, unit)` from the `hal_bench` guest.
fn hal_figures(root: &Path, runs: usize, bytes: usize) -> Vec<(String, f64, String)> {
    let halcyon = required(root.join("target/release/halcyon"));
    let image = required(root.join("target/halcyon/halcyon.elf"));
    let guest = required(root.join("target/wasm32-wasip1/release/hal_bench.wasm"));
    let mut samples: Vec<(String, String, Vec<f64>)> = Vec::new();
    for _ in 0..runs {
        let output = Command::new(&halcyon)
            .arg("run").arg("--image").arg(&image).args(["--ram", "256MiB"]).arg(&guest).arg(bytes.to_string())
            .output()
            .expect("halcyon runs");
        assert!(output.status.success(), "hal_bench failed: {}", String::from_utf8_lossy(&output.stderr));
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["result", name, value, unit] = parts[..] {
                let value: f64 = value.parse().unwrap_or(f64::NAN);
                match samples.iter_mut().find(|(n, _, _)| n == name) {
                    Some((_, _, v)) => v.push(value),
                    None => samples.push((name.to_string(), unit.to_string(), vec![value])),
                }
            }
        }
    }
    samples.into_iter().map(|(name, unit, values)| (name, median(values), unit)).collect()
}

/// The TLS section: Halcyon's in-kernel TLS server against `openssl s_server` in Linux.
fn tls_table(root: &Path, linux: &tls::LinuxTls, seconds: u64, bytes: usize, runs: usize) -> String {
    let mut table = format!(
        "\nTLS servers in the guest (`tests/guests/tls_bench`: rustls and the RustCrypto provider in the kernel, \
         against `openssl s_server -WWW` 3.0 in the Linux guest; same QEMU, virtio-net, QEMU user networking; \
         the host's `openssl s_time`/`s_client` as client; P-256 certificates; downloads: median of {runs}).\n\n\
         | measurement | Halcyon | Linux + openssl s_server | Halcyon / Linux |\n|---|---|---|---|\n"
    );
    let load = || std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next().map(String::from)).unwrap_or_default();
    let load_before = load();
    for row in tls::rows(root, linux, seconds, bytes, runs) {
        table.push_str(&row.markdown());
        table.push('\n');
    }
    // These rows move with whatever else the host runs: say how busy it was.
    table.push_str(&format!("\nHost load average (1 min) before and after: {load_before}, {}.\n", load()));
    table
}

fn main() {
    let root = workspace_root();
    let s = settings();
    // `cargo run -p halcyon-bench -- net`: only the network figures (no Linux guest).
    if std::env::args().nth(1).as_deref() == Some("net") {
        for (name, value, unit) in net::figures(&root, s.compute_runs, 16 << 20, 100) {
            println!("| {name} | {value:.1} {unit} |");
        }
        return;
    }
    let quick = std::env::var_os("HALCYON_BENCH_QUICK").is_some();
    // TLS: `s_time` seconds per guest and version, download size, downloads per suite.
    let (tls_seconds, tls_bytes, tls_runs) = if quick { (3, 1 << 20, 1) } else { (10, 4 << 20, 3) };
    if std::env::args().nth(1).as_deref() == Some("tls") {
        let linux = tls::prepare_linux(&root.join("target/baseline/tls"), tls_bytes);
        println!("{}", tls_table(&root, &linux, tls_seconds, tls_bytes, tls_runs));
        return;
    }
    let workload = required(root.join("target/wasm32-wasip1/release/bench_compute.wasm"));
    let halcyon = Halcyon {
        halcyon: required(root.join("target/release/halcyon")),
        image: required(root.join("target/halcyon/halcyon.elf")),
        workload: workload.clone(),
    };
    let linux = guests::prepare_linux(&root, &root.join("target/baseline"), &workload);
    let guests: [&dyn Guest; 2] = [&halcyon, &linux];
    // Generous against the slowest measurement (SHA-256 over 64 MiB: ~60 s under TCG).
    let deadline = Duration::from_secs(240);
    let mut failures: Vec<String> = Vec::new();
    let mut rows = Vec::new();

    rows.push(Row {
        what: "image size (without the workload)".into(),
        halcyon: halcyon.image_bytes() as f64 / 1024.0,
        linux: linux.image_bytes() as f64 / 1024.0,
        unit: "KiB",
    });

    eprintln!("bench: start-up, {} boots per guest", s.startup_runs);
    let mut startup = [Vec::new(), Vec::new()];
    for run in 0..s.startup_runs {
        // Alternate which guest goes first, so drift affects both alike.
        for i in [run % 2, 1 - run % 2] {
            let b = boot_with_retry(guests[i], RAM_MIB, &["marker"], deadline);
            assert!(b.ok, "{} failed to boot the marker workload: {:?}", guests[i].name(), b.console_tail);
            startup[i].push(b.to_marker.as_secs_f64() * 1000.0);
        }
    }
    let [h, l] = startup;
    rows.push(Row { what: "QEMU spawn → first workload output (host wall clock)".into(), halcyon: median(h), linux: median(l), unit: "ms" });

    let coremark = s.coremark_iterations.to_string();
    let sha = s.sha256_mib.to_string();
    let sort = s.sort_count.to_string();
    let compute: [(&str, &str, String); 3] = [
        ("coremark", &coremark, format!("CoreMark-like mix, {coremark} iterations (in-guest time)")),
        ("sha256", &sha, format!("SHA-256 over {sha} MiB (in-guest time)")),
        ("sort", &sort, format!("sort {sort} u32 (in-guest time)")),
    ];
    for (name, size, label) in &compute {
        eprintln!("bench: {label}, {} runs per guest", s.compute_runs);
        let mut times = [Vec::new(), Vec::new()];
        let mut checksums = Vec::new();
        for run in 0..s.compute_runs {
            for i in [run % 2, 1 - run % 2] {
                let b = boot_with_retry(guests[i], RAM_MIB, &[name, size], deadline);
                // A run that failed twice is left out of the median (and said so), rather
                // than throwing away the whole benchmark.
                let Some((ms, checksum)) = b.result else {
                    eprintln!("bench: {} gave no result for {name} twice: {:?}", guests[i].name(), b.console_tail);
                    failures.push(format!("{} failed a {name} run twice", guests[i].name()));
                    continue;
                };
                times[i].push(ms);
                checksums.push(checksum);
            }
        }
        checksums.dedup();
        assert_eq!(checksums.len(), 1, "the guests computed different results for {name}: {checksums:?}");
        let [h, l] = times;
        rows.push(Row { what: label.clone(), halcyon: median(h), linux: median(l), unit: "ms" });
    }

    eprintln!("bench: smallest guest RAM (bisection)");
    rows.push(Row {
        what: "smallest guest RAM that boots and runs the workload".into(),
        halcyon: f64::from(smallest_ram(&halcyon, 1, 64)),
        linux: f64::from(smallest_ram(&linux, 16, 1024)),
        unit: "MiB",
    });

    let mut table = format!(
        "Run of {}: {}.\n\n| measurement | Halcyon | Linux + wasmi CLI | Halcyon / Linux |\n|---|---|---|---|\n",
        today(),
        machine()
    );
    for row in &rows {
        table.push_str(&row.markdown());
        table.push('\n');
    }
    for failure in &failures {
        table.push_str(&format!("\nNote: {failure}; the median is over the remaining runs.\n"));
    }
    let hal_bytes = if std::env::var_os("HALCYON_BENCH_QUICK").is_some() { 1 << 18 } else { 4 << 20 };
    eprintln!("bench: HAL calls and HAL crypto against in-wasm crypto");
    table.push_str(&format!(
        "\nThe HAL inside a Halcyon workload (`tests/guests/hal_bench`, {} KiB inputs, median of {} runs): \
         the same algorithm through the HAL (native code in the kernel) and compiled into the wasm (interpreted).\n\n\
         | measurement | value |\n|---|---|\n",
        hal_bytes / 1024,
        s.compute_runs
    ));
    for (name, value, unit) in hal_figures(&root, s.compute_runs, hal_bytes) {
        table.push_str(&format!("| {name} | {value:.2} {unit} |\n"));
    }
    let (net_bytes, connections) = if quick { (4 << 20, 20) } else { (16 << 20, 100) };
    eprintln!("bench: TCP through --tcplisten");
    table.push_str(&format!(
        "\nNetworking inside Halcyon (`tests/guests/net_bench` on a `--tcplisten` socket, virtio-net + smoltcp, \
         QEMU user networking, measured by the host, median of {} runs). No Linux column yet: the baseline's wasmi \
         CLI has no WASI sockets.\n\n| measurement | value |\n|---|---|\n",
        s.compute_runs
    ));
    for (name, value, unit) in net::figures(&root, s.compute_runs, net_bytes, connections) {
        table.push_str(&format!("| {name} | {value:.1} {unit} |\n"));
    }
    let tls_linux = tls::prepare_linux(&root.join("target/baseline/tls"), tls_bytes);
    table.push_str(&tls_table(&root, &tls_linux, tls_seconds, tls_bytes, tls_runs));
    println!("{table}");
    if std::env::var_os("HALCYON_BENCH_QUICK").is_none() {
        write_into_performance_doc(&root, &table);
    }
}
