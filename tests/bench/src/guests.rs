//! The two guests under comparison, each booted in the same QEMU configuration
//! (microvm, TCG, `-cpu max`, one vCPU, the same RAM) with the same workload.

use crate::cpio::Archive;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one boot produced.
pub struct Boot {
    /// Spawn → the workload's `BENCH-START` line on the host.
    pub to_marker: Duration,
    /// The workload's own `result` line: (milliseconds, checksum).
    pub result: Option<(f64, String)>,
    pub ok: bool,
    /// The last lines the guest printed, to explain a failure.
    pub console_tail: Vec<String>,
}

pub trait Guest {
    fn name(&self) -> &'static str;
    /// Bytes on disk needed to boot the guest, without the workload.
    fn image_bytes(&self) -> u64;
    fn command(&self, ram_mib: u32, args: &[&str]) -> Command;
}

/// Boots once and, if that fails, once more (the Linux guest occasionally hangs under
/// TCG: seen once in a CoreMark run that takes 2 s by hand). Retries are reported.
pub fn boot_with_retry(guest: &dyn Guest, ram_mib: u32, args: &[&str], deadline: Duration) -> Boot {
    let first = boot(guest, ram_mib, args, deadline);
    if first.ok {
        return first;
    }
    eprintln!(
        "bench: {} failed a run of {args:?} (console tail: {:?}); retrying once",
        guest.name(),
        first.console_tail
    );
    boot(guest, ram_mib, args, deadline)
}

/// Runs `command`, timestamps the marker, parses the result, enforces a deadline.
pub fn boot(guest: &dyn Guest, ram_mib: u32, args: &[&str], deadline: Duration) -> Boot {
    let start = Instant::now();
    let mut child = match guest.command(ram_mib, args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn() {
        Ok(child) => child,
        Err(e) => panic!("cannot start the {} guest: {e}", guest.name()),
    };
    let stdout = child.stdout.take().expect("piped stdout");
    // The watchdog kills a guest that hangs (for instance Linux thrashing in too little
    // RAM), so the RAM search always terminates.
    let child = std::sync::Arc::new(std::sync::Mutex::new(child));
    let watched = std::sync::Arc::clone(&child);
    let watchdog = std::thread::spawn(move || loop {
        let mut child = watched.lock().expect("child lock");
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        drop(child);
        std::thread::sleep(Duration::from_millis(20));
    });
    let mut to_marker = None;
    let mut result = None;
    let mut console_tail = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if console_tail.len() == 8 {
            console_tail.remove(0);
        }
        console_tail.push(line.clone());
        if line.contains("BENCH-START") && to_marker.is_none() {
            to_marker = Some(start.elapsed());
        }
        if let Some(rest) = line.trim().strip_prefix("result ") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            if let [_, ms, checksum] = parts[..] {
                result = ms.parse().ok().map(|ms| (ms, checksum.to_string()));
            }
        }
    }
    let _ = watchdog.join();
    let ok = to_marker.is_some() && result.is_some() && start.elapsed() < deadline;
    Boot { to_marker: to_marker.unwrap_or(deadline), result, ok, console_tail }
}

pub struct Halcyon {
    pub halcyon: PathBuf,
    pub image: PathBuf,
    pub workload: PathBuf,
}

impl Guest for Halcyon {
    fn name(&self) -> &'static str {
        "Halcyon"
    }

    fn image_bytes(&self) -> u64 {
        std::fs::metadata(&self.image).map(|m| m.len()).unwrap_or(0)
    }

    fn command(&self, ram_mib: u32, args: &[&str]) -> Command {
        let mut command = Command::new(&self.halcyon);
        command.arg("run").arg("--image").arg(&self.image).arg("--ram").arg(format!("{ram_mib}MiB"));
        command.arg(&self.workload).args(args);
        command
    }
}

/// Debian's cloud kernel booting a busybox initramfs whose /init runs the wasmi CLI.
pub struct LinuxWasmi {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// The initramfs without the workload (for the size comparison).
    pub base_bytes: u64,
}

impl Guest for LinuxWasmi {
    fn name(&self) -> &'static str {
        "Linux + wasmi"
    }

    fn image_bytes(&self) -> u64 {
        std::fs::metadata(&self.kernel).map(|m| m.len()).unwrap_or(0) + self.base_bytes
    }

    fn command(&self, ram_mib: u32, args: &[&str]) -> Command {
        let mut command = Command::new("qemu-system-x86_64");
        // The same machine as qemu/plain.args, except that microvm needs its option ROM
        // (linuxboot) to load a bzImage, and the console is the serial port.
        command.args([
            "-M", "microvm,rtc=on,pit=on", "-cpu", "max", "-nodefaults", "-no-user-config",
            "-display", "none", "-monitor", "none", "-no-reboot", "-accel", "tcg", "-smp", "1",
            "-serial", "stdio",
        ]);
        command.arg("-m").arg(format!("{ram_mib}M"));
        command.arg("-kernel").arg(&self.kernel).arg("-initrd").arg(&self.initramfs);
        // Everything after `--` on the kernel command line becomes /init's arguments.
        command.arg("-append").arg(format!("console=ttyS0 quiet panic=-1 rdinit=/init -- {}", args.join(" ")));
        command.stdin(Stdio::null());
        command
    }
}

const INIT: &str = "#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
/bin/wasmi /workload.wasm \"$@\"
/bin/busybox poweroff -f
";

pub fn run(command: &mut Command, what: &str) {
    let status = command.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed ({status})");
}

/// Downloads Debian's cloud kernel and `packages` with `apt-get download` into
/// `dir/debs` and unpacks them into `unpacked` (once: skipped when `unpacked` has them).
/// The kernel image Debian's kernel package unpacked into `unpacked/boot`.
pub fn find_vmlinuz(unpacked: &Path) -> PathBuf {
    std::fs::read_dir(unpacked.join("boot"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
        .expect("vmlinuz in the kernel package")
}

pub fn download_and_unpack(dir: &Path, unpacked: &Path, packages: &[&str]) {
    let debs = dir.join("debs");
    let marker = unpacked.join(format!(".unpacked-{}", packages.join("+")));
    if marker.exists() {
        return;
    }
    eprintln!("bench: fetching the Debian cloud kernel and {} with apt-get download", packages.join(", "));
    std::fs::create_dir_all(&debs).unwrap();
    let depends = Command::new("apt-cache").args(["depends", "linux-image-cloud-amd64"]).output().expect("apt-cache");
    let kernel_package = String::from_utf8_lossy(&depends.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: ").filter(|p| p.starts_with("linux-image-")).map(String::from))
        .expect("linux-image-cloud-amd64 depends on a kernel package (run `apt-get update` first)");
    run(Command::new("apt-get").current_dir(&debs).arg("download").arg(&kernel_package).args(packages), "apt-get download");
    for deb in std::fs::read_dir(&debs).unwrap().flatten() {
        run(Command::new("dpkg-deb").arg("-x").arg(deb.path()).arg(unpacked), "dpkg-deb -x");
    }
    std::fs::write(marker, b"").unwrap();
}

/// Fetches and assembles the baseline under `dir` (once; later runs reuse it).
pub fn prepare_linux(root: &Path, dir: &Path, workload: &Path) -> LinuxWasmi {
    std::fs::create_dir_all(dir).expect("baseline directory");
    let unpacked = dir.join("root");
    if !unpacked.join("bin/busybox").exists() {
        download_and_unpack(dir, &unpacked, &["busybox-static"]);
    }
    let wasmi = dir.join("wasmi-cli/bin/wasmi");
    if !wasmi.exists() {
        // The same wasmi version as the kernel (Cargo.lock), built static for the initramfs.
        eprintln!("bench: building a static wasmi_cli 2.0.0 (a few minutes, once)");
        run(
            Command::new("cargo")
                .current_dir(root)
                .env("RUSTFLAGS", "-C target-feature=+crt-static")
                .args(["install", "wasmi_cli", "--version", "2.0.0", "--locked", "--root"])
                .arg(dir.join("wasmi-cli"))
                .args(["--target", "x86_64-unknown-linux-gnu"]),
            "cargo install wasmi_cli",
        );
        let _ = Command::new("strip").arg(&wasmi).status();
    }
    let kernel = find_vmlinuz(&unpacked);

    let mut archive = Archive::new();
    for d in ["bin", "proc", "dev", "sys"] {
        archive.dir(d);
    }
    archive.file("bin/busybox", 0o755, &std::fs::read(unpacked.join("bin/busybox")).unwrap());
    archive.file("bin/wasmi", 0o755, &std::fs::read(&wasmi).unwrap());
    archive.file("init", 0o755, INIT.as_bytes());
    let base_bytes = archive.clone().finish().len() as u64;
    archive.file("workload.wasm", 0o644, &std::fs::read(workload).unwrap());
    let initramfs = dir.join("initramfs.cpio");
    std::fs::write(&initramfs, archive.finish()).unwrap();
    LinuxWasmi { kernel, initramfs, base_bytes }
}
