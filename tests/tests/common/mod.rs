//! Shared helpers: where the built artifacts are, and running `halcyon` on them.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace root")
}

fn built(path: PathBuf) -> PathBuf {
    assert!(path.exists(), "{} is missing: run `make test`, which builds it first", path.display());
    path
}

pub fn halcyon_bin() -> PathBuf {
    built(root().join("target/release/halcyon"))
}

pub fn image() -> PathBuf {
    built(root().join("target/halcyon/halcyon.elf"))
}

/// A guest test program from `tests/guests/`.
pub fn guest(name: &str) -> PathBuf {
    built(root().join(format!("target/wasm32-wasip1/release/{name}.wasm")))
}

/// `halcyon <args>` with the built image.
pub fn halcyon(args: &[&str]) -> Command {
    let mut command = Command::new(halcyon_bin());
    command.args(args).env("HALCYON_IMAGE", image());
    command
}

/// `halcyon run --timeout 120 <args>`; returns the finished process's output.
pub fn run(args: &[&str]) -> Output {
    let mut all = vec!["run", "--timeout", "120"];
    all.extend_from_slice(args);
    halcyon(&all).output().expect("halcyon runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it is wrong.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
        stdout(output),
        stderr(output)
    );
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// An example program from `examples/`, as `make examples` copies it.
pub fn example(name: &str) -> String {
    let path = root().join(format!("target/examples/{name}.wasm"));
    assert!(path.exists(), "{} is missing: run `make test`, which builds it first", path.display());
    path.to_str().unwrap().to_owned()
}

/// A host port nobody listens on (for `--tcplisten` and host servers).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `halcyon run --timeout 240 <args>` whose stdout lines arrive on a channel;
/// killed when dropped.
pub struct Guest {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Guest {
    pub fn start(args: &[&str]) -> Guest {
        let mut all = vec!["run", "--timeout", "240"];
        all.extend_from_slice(args);
        let mut child = halcyon(&all).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("halcyon starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Guest { child, lines }
    }

    /// The next stdout line starting with `starting` (skipping others), within 60 s each.
    pub fn expect_line(&self, starting: &str) -> String {
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no line starting '{starting}'"));
            if line.starts_with(starting) {
                return line;
            }
        }
    }

    /// Waits for the VM to end; its exit status and the rest of its stdout and stderr.
    pub fn finish(mut self) -> (i32, String, String) {
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let rest: Vec<String> = self.lines.iter().collect();
        (status.code().unwrap_or(-1), rest.join("\n"), stderr)
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        kill_with_children(&mut self.child);
    }
}

/// Kills `halcyon run` and its QEMU: SIGKILL gives `halcyon` no chance to stop its QEMU
/// (it does on SIGTERM, SIGHUP and SIGINT), which would go on serving (the processes come
/// from `/proc/PID/task/PID/children`).
pub fn kill_with_children(child: &mut Child) {
    let pid = child.id();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let _ = child.kill();
    for grandchild in children.split_whitespace() {
        let _ = Command::new("kill").arg("-KILL").arg(grandchild).status();
    }
    let _ = child.wait();
}
