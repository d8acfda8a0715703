//! TLS server figures: full handshakes per second and bulk download MB/s, measured from
//! the host with the openssl CLI (`s_time -new`, `s_client`) against
//! - Halcyon running `tests/guests/tls_bench` (rustls + our provider in the kernel, key
//!   generated in the kernel) behind `--tcplisten`, and
//! - a Linux guest (the same Debian cloud kernel as the other rows, a busybox initramfs
//!   with Debian's `openssl` and its libraries) running `openssl s_server -WWW`,
//!
//! in the same QEMU (microvm, TCG, 1 vCPU, 256 MiB, virtio-net on QEMU user networking
//! with a host forward), serving the same bytes: a 40-byte page and BYTES of `bulk.bin`,
//! with the same headers. Both have a P-256 ECDSA certificate; the client fixes version,
//! suite and group (X25519, the openssl client's first).

use crate::cpio::Archive;
use crate::guests::{download_and_unpack, find_vmlinuz, run};
use crate::{median, Row, RAM_MIB};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The page both servers serve for `/index.html`.
const PAGE: &[u8] = b"Hello from a Halcyon workload over TLS.\n";
/// `bulk.bin` is this pattern repeated (as `tls_bench` sends it).
const PATTERN: &[u8] = b"0123456789abcdef";
/// Port `openssl s_server` listens on inside the Linux guest.
const LINUX_PORT: u16 = 4433;

/// The Linux guest's /init: load virtio-net (modules, in dependency order), configure
/// QEMU's user network statically, serve.
const INIT: &str = "#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox mount -t sysfs sys /sys
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net; do
    /bin/busybox insmod /lib/modules/$m.ko
done
/bin/busybox ip link set lo up
/bin/busybox ip addr add 10.0.2.15/24 dev eth0
/bin/busybox ip link set eth0 up
cd /srv
/usr/bin/openssl s_server -quiet -accept 4433 -cert cert.pem -key key.pem -WWW
/bin/busybox poweroff -f
";

/// Module paths under `lib/modules/<version>/kernel/`, in load order.
const MODULES: [&str; 8] = [
    "drivers/virtio/virtio_ring",
    "drivers/virtio/virtio",
    "drivers/virtio/virtio_pci_modern_dev",
    "drivers/virtio/virtio_pci_legacy_dev",
    "drivers/virtio/virtio_pci",
    "net/core/failover",
    "drivers/net/net_failover",
    "drivers/net/virtio_net",
];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn bulk_body(bytes: usize) -> Vec<u8> {
    PATTERN.iter().copied().cycle().take(bytes).collect()
}

/// A guest serving TLS on `port` of the host; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        // `halcyon run` killed alone cannot stop its QEMU: kill that child first.
        let pid = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for child in children.split_whitespace() {
            let _ = Command::new("kill").arg("-KILL").arg(child).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the guest's stdout until a line contains `ready` (at most 120 s), then keeps
/// draining it in the background so the guest never blocks on a full pipe.
fn wait_ready(child: &mut Child, ready: &'static str) {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if line.contains(ready) {
                let _ = tx.send(());
                break;
            }
        }
        for _ in lines {}
    });
    rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| panic!("the TLS server did not print {ready:?} in 120 s"));
}

fn start_halcyon(root: &Path, bulk: usize) -> Server {
    let port = free_port();
    let mut child = Command::new(root.join("target/release/halcyon"))
        .arg("run")
        .arg("--image")
        .arg(root.join("target/halcyon/halcyon.elf"))
        .args(["--ram", &format!("{RAM_MIB}MiB"), "--timeout", "900", "--tcplisten", &format!("127.0.0.1:{port}")])
        .arg(crate::required(root.join("target/wasm32-wasip1/release/tls_bench.wasm")))
        .args([port.to_string(), bulk.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("halcyon runs");
    wait_ready(&mut child, "tls_bench: listening");
    Server { child, port }
}

/// The Linux guest's kernel and initramfs (with `bulk.bin` of the given size).
pub struct LinuxTls {
    kernel: PathBuf,
    initramfs: PathBuf,
}

/// Fetches Debian's kernel, busybox and openssl (once, under `dir`) and writes the
/// initramfs with a P-256 key and certificate from the host's openssl.
pub fn prepare_linux(dir: &Path, bulk: usize) -> LinuxTls {
    let unpacked = dir.join("root");
    download_and_unpack(dir, &unpacked, &["busybox-static", "openssl", "libssl3", "libc6"]);
    let modules = std::fs::read_dir(unpacked.join("lib/modules")).unwrap().flatten().next().expect("kernel modules").path();
    let kernel = find_vmlinuz(&unpacked);
    run(
        Command::new("openssl").current_dir(dir).args([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "key.pem", "-out",
            "cert.pem", "-days", "30", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
        ]),
        "openssl req",
    );

    let mut archive = Archive::new();
    for d in ["bin", "proc", "dev", "sys", "srv", "tmp", "lib", "lib/modules", "lib64", "lib/x86_64-linux-gnu", "usr", "usr/bin", "usr/lib", "usr/lib/x86_64-linux-gnu"] {
        archive.dir(d);
    }
    let read = |path: &Path| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    archive.file("bin/busybox", 0o755, &read(&unpacked.join("bin/busybox")));
    for module in MODULES {
        let name = Path::new(module).file_name().unwrap().to_string_lossy();
        archive.file(&format!("lib/modules/{name}.ko"), 0o644, &read(&modules.join("kernel").join(format!("{module}.ko"))));
    }
    archive.file("usr/bin/openssl", 0o755, &read(&unpacked.join("usr/bin/openssl")));
    for lib in ["libssl.so.3", "libcrypto.so.3"] {
        archive.file(&format!("usr/lib/x86_64-linux-gnu/{lib}"), 0o755, &read(&unpacked.join("usr/lib/x86_64-linux-gnu").join(lib)));
    }
    archive.file("lib/x86_64-linux-gnu/libc.so.6", 0o755, &read(&unpacked.join("lib/x86_64-linux-gnu/libc.so.6")));
    // /lib64/ld-linux-x86-64.so.2 is an absolute symlink in the package: store the file.
    archive.file("lib64/ld-linux-x86-64.so.2", 0o755, &read(&unpacked.join("lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")));
    archive.file("srv/index.html", 0o644, PAGE);
    archive.file("srv/bulk.bin", 0o644, &bulk_body(bulk));
    archive.file("srv/cert.pem", 0o644, &read(&dir.join("cert.pem")));
    archive.file("srv/key.pem", 0o600, &read(&dir.join("key.pem")));
    archive.file("init", 0o755, INIT.as_bytes());
    let initramfs = dir.join("initramfs-tls.cpio");
    std::fs::write(&initramfs, archive.finish()).unwrap();
    LinuxTls { kernel, initramfs }
}

fn start_linux(linux: &LinuxTls) -> Server {
    let port = free_port();
    let child = Command::new("qemu-system-x86_64")
        // As `guests::LinuxWasmi`, plus the network card Halcyon gets with --tcplisten
        // (virtio-net-pci on microvm's PCIe bridge, QEMU user networking, a host forward).
        .args([
            "-M", "microvm,rtc=on,pit=on,pcie=on", "-cpu", "max", "-nodefaults", "-no-user-config", "-display", "none",
            "-monitor", "none", "-no-reboot", "-accel", "tcg", "-smp", "1", "-serial", "stdio",
        ])
        .arg("-m")
        .arg(format!("{RAM_MIB}M"))
        .arg("-kernel")
        .arg(&linux.kernel)
        .arg("-initrd")
        .arg(&linux.initramfs)
        // tsc_early_khz: on a busy host Linux fails to calibrate the TSC against the PIT
        // under TCG and then waits forever for its clock; a fixed value stands in.
        .args(["-append", "console=ttyS0 quiet panic=-1 rdinit=/init tsc_early_khz=2000000"])
        .args(["-netdev", &format!("user,id=net,hostfwd=tcp:127.0.0.1:{port}-:{LINUX_PORT}")])
        .args(["-device", "virtio-net-pci,netdev=net,romfile="])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 runs");
    // `s_server -quiet` prints nothing when it is ready: wait for the port to answer TLS.
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if fetch(port, "/index.html", &["-tls1_3"]).is_some_and(|body| body.ends_with(PAGE)) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut server = server;
    let _ = server.child.kill();
    let mut console = String::new();
    let _ = server.child.stdout.take().map(|mut s| s.read_to_string(&mut console));
    panic!("the Linux TLS guest did not serve in 120 s: {}", console.chars().rev().take(2000).collect::<String>().chars().rev().collect::<String>());
}

/// One `GET path` over a fresh connection with `openssl s_client`: the response bytes.
fn fetch(port: u16, path: &str, tls: &[&str]) -> Option<Vec<u8>> {
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &format!("127.0.0.1:{port}")])
        .args(tls)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).ok()?;
    let mut body = Vec::new();
    child.stdout.take()?.read_to_end(&mut body).ok()?;
    child.wait().ok()?;
    Some(body)
}

/// Full handshakes per second: `openssl s_time -new` for `seconds`, each connection a
/// handshake and one page; the host's wall clock over the connections it reports.
fn handshakes(port: u16, seconds: u64, tls: &[&str]) -> f64 {
    let started = Instant::now();
    let output = Command::new("openssl")
        .args(["s_time", "-connect", &format!("127.0.0.1:{port}"), "-new", "-www", "/index.html", "-time", &seconds.to_string()])
        .args(tls)
        .output()
        .expect("openssl s_time");
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&output.stdout);
    // "N connections in T real seconds, B bytes read per connection"
    let line = text.lines().find(|l| l.contains("real seconds")).unwrap_or_else(|| panic!("s_time printed no result: {text}"));
    let count: f64 = line.split_whitespace().next().and_then(|n| n.parse().ok()).expect("connection count");
    let per_connection = line.split(", ").nth(1).and_then(|s| s.split_whitespace().next()).and_then(|n| n.parse::<usize>().ok());
    assert_eq!(per_connection, Some(44 + PAGE.len()), "a different page was served: {line}");
    count / elapsed.as_secs_f64()
}

/// MB/s of one `bulk.bin` download (handshake included, a few ms of seconds).
fn bulk(port: u16, bytes: usize, tls: &[&str]) -> f64 {
    let started = Instant::now();
    let body = fetch(port, "/bulk.bin", tls).expect("s_client");
    let elapsed = started.elapsed();
    let expected_len = 45 + bytes;
    assert_eq!(body.len(), expected_len, "bulk download: {} bytes, expected {expected_len}", body.len());
    assert!(body.ends_with(&bulk_body(bytes)[bytes.saturating_sub(4096)..]), "bulk download: wrong bytes");
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

const TLS13_AES128: &[&str] = &["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"];
const TLS13_CHACHA: &[&str] = &["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"];
const TLS12_AES128: &[&str] = &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"];

/// Rows for the report: every measurement on one Halcyon boot, then on one Linux boot;
/// one `seconds`-long `s_time` per version, the median of `runs` downloads per suite.
pub fn rows(root: &Path, linux: &LinuxTls, seconds: u64, bulk_bytes: usize, runs: usize) -> Vec<Row> {
    let mib = bulk_bytes as f64 / f64::from(1 << 20);
    let handshake_cases = [("TLS 1.3 AES-128-GCM X25519", TLS13_AES128), ("TLS 1.2 ECDHE-ECDSA-AES128-GCM", TLS12_AES128)];
    let bulk_cases = [("TLS 1.3 AES-128-GCM", TLS13_AES128), ("TLS 1.3 ChaCha20-Poly1305", TLS13_CHACHA)];
    let measure_all = |port: u16, guest: &str| -> Vec<f64> {
        let mut values = Vec::new();
        for (label, tls) in handshake_cases {
            eprintln!("bench: {guest}: TLS handshakes, {label}, {seconds} s");
            values.push(handshakes(port, seconds, tls));
        }
        for (label, tls) in bulk_cases {
            eprintln!("bench: {guest}: TLS download of {mib:.0} MiB, {label}, {runs} runs");
            values.push(median((0..runs).map(|_| bulk(port, bulk_bytes, tls)).collect()));
        }
        values
    };
    let halcyon = {
        let server = start_halcyon(root, bulk_bytes);
        measure_all(server.port, "Halcyon")
    };
    let linux = {
        let server = start_linux(linux);
        measure_all(server.port, "Linux")
    };
    let labels = handshake_cases
        .iter()
        .map(|(label, _)| (format!("TLS full handshakes + 1 page, {label} (openssl s_time -new)"), "per s"))
        .chain(bulk_cases.iter().map(|(label, _)| (format!("TLS download of {mib:.0} MiB, {label} (guest → host)"), "MB/s")));
    labels.zip(halcyon.into_iter().zip(linux)).map(|((what, unit), (halcyon, linux))| Row { what, halcyon, linux, unit }).collect()
}
