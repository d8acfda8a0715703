//! Network figures for Halcyon (`tests/guests/net_bench` on a `--tcplisten` socket):
//! TCP throughput each way and connections per second, measured by the host.
//!
//! No Linux column yet: the baseline guest's wasmi CLI has no WASI sockets, so the same
//! workload cannot run there (see docs/PERFORMANCE.md).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Halcyon VM running `net_bench ARGS` behind `--tcplisten 127.0.0.1:PORT`.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(root: &Path, args: &[&str]) -> Server {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new(root.join("target/release/halcyon"))
            .arg("run")
            .arg("--image")
            .arg(root.join("target/halcyon/halcyon.elf"))
            .args(["--ram", "256MiB", "--timeout", "300", "--tcplisten", &format!("127.0.0.1:{port}")])
            .arg(root.join("target/wasm32-wasip1/release/net_bench.wasm"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("halcyon runs");
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
        assert!(first.starts_with("net_bench: listening"), "net_bench did not start: {first:?}");
        Server { child, port }
    }

    fn connect(&self) -> TcpStream {
        TcpStream::connect(("127.0.0.1", self.port)).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.wait_timeout_or_kill();
    }
}

trait WaitOrKill {
    fn wait_timeout_or_kill(&mut self) -> std::io::Result<()>;
}

impl WaitOrKill for Child {
    fn wait_timeout_or_kill(&mut self) -> std::io::Result<()> {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if self.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill()
    }
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

/// Host → guest: send `bytes`, wait for the guest's one-byte acknowledgement.
fn host_to_guest(root: &Path, bytes: u64) -> f64 {
    let server = Server::start(root, &["sink"]);
    let mut stream = server.connect();
    let chunk = vec![0x5au8; 64 * 1024];
    let started = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stream.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    stream.shutdown(Shutdown::Write).unwrap();
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack).unwrap();
    mb_per_s(bytes, started.elapsed())
}

/// Guest → host: read `bytes` to the end.
fn guest_to_host(root: &Path, bytes: u64) -> f64 {
    let size = bytes.to_string();
    let server = Server::start(root, &["source", &size]);
    let mut stream = server.connect();
    let started = Instant::now();
    let mut received = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).unwrap() {
            0 => break,
            n => received += n as u64,
        }
    }
    assert_eq!(received, bytes, "the guest sent a different amount");
    mb_per_s(bytes, started.elapsed())
}

/// Sequential connect / send / receive / close cycles per second.
fn connections_per_second(root: &Path, count: usize) -> f64 {
    let n = count.to_string();
    let server = Server::start(root, &["connections", &n]);
    let started = Instant::now();
    for _ in 0..count {
        let mut stream = server.connect();
        stream.write_all(b"x").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut ack = [0u8; 1];
        stream.read_exact(&mut ack).unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// `(label, value, unit)` rows, medians of `runs`.
pub fn figures(root: &Path, runs: usize, bytes: u64, connections: usize) -> Vec<(String, f64, String)> {
    let median = |f: &dyn Fn() -> f64| crate::median((0..runs).map(|_| f()).collect());
    let mib = bytes >> 20;
    vec![
        (format!("TCP host → guest, {mib} MiB (--tcplisten, QEMU user networking)"), median(&|| host_to_guest(root, bytes)), "MB/s".into()),
        (format!("TCP guest → host, {mib} MiB"), median(&|| guest_to_host(root, bytes)), "MB/s".into()),
        (format!("TCP connections (connect, 1 byte each way, close), {connections} in a row"), median(&|| connections_per_second(root, connections)), "per s".into()),
    ]
}
