//! Networking through the real image: virtio-net, smoltcp, WASI sockets (`--tcplisten`)
//! and the HAL `sockets` interface, against real peers on the host.
//!
//! QEMU's user network shows the host to the guest as 10.0.2.2; `--tcplisten` forwards
//! a host port into the guest.
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

/// Sends `data` and reads until the server closes, concurrently.
fn echo_round_trip(port: u16, data: &[u8]) -> Vec<u8> {
    try_echo_round_trip(port, data).unwrap()
}

fn try_echo_round_trip(port: u16, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut reader = stream.try_clone()?;
    let receiver = thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).map(|_| got)
    });
    stream.write_all(data)?;
    stream.shutdown(Shutdown::Write)?;
    receiver.join().unwrap()
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn one_mebibyte_echo(extra: &[&str]) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let echo = example("tcp-echo");
    let mut args = extra.to_vec();
    args.extend(["--tcplisten", &listen, &echo, "1"]);
    let guest = Guest::start(&args);
    guest.expect_line("tcp-echo: listening");
    let data = pattern(1 << 20, 7);
    let got = echo_round_trip(port, &data);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the echoed mebibyte differs");
    let (code, out, err) = guest.finish();
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("connection 1 closed after 1048576 bytes"), "{out}");
}

#[test]
fn tcp_echo_round_trips_one_mebibyte() {
    one_mebibyte_echo(&[]);
}

#[test]
fn tcp_echo_through_bounce_buffers() {
    // The confidential-VM path: every device buffer is copied through shared pages.
    one_mebibyte_echo(&["--kernel-arg", "virtio.bounce=on"]);
}

#[test]
fn fifty_concurrent_connections_all_complete() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let guest = Guest::start(&["--tcplisten", &listen, &example("tcp-echo"), "50"]);
    guest.expect_line("tcp-echo: listening");
    let clients: Vec<_> = (0..50u32)
        .map(|i| {
            thread::spawn(move || {
                let data = pattern(4096, i + 1);
                // QEMU's user-mode NAT accepts host connections on a listen backlog of
                // one and resets some of a simultaneous burst before forwarding them (a
                // packet capture of the guest link shows no trace of those); a client
                // retries a connection reset before any byte came back, as clients do.
                for attempt in 1.. {
                    match try_echo_round_trip(port, &data) {
                        Ok(got) => {
                            assert!(got == data, "connection {i} got the wrong bytes back");
                            break;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && attempt < 5 => continue,
                        Err(e) => panic!("connection {i}: {e}"),
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let (code, out, err) = guest.finish();
    assert_eq!(code, 0, "stderr: {err}");
    // The guest saw exactly 50 connections, each with all of its bytes.
    assert_eq!(out.matches("closed after 4096 bytes").count(), 50, "{out}");
}

#[test]
fn resets_floods_and_garbage_do_not_hurt_the_server() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = tempfile_path("abuse.log");
    let guest = Guest::start(&["--log", &log, "--tcplisten", &listen, &example("tcp-echo")]);
    guest.expect_line("tcp-echo: listening");
    // A flood of connections that close at once, some after sending garbage, some
    // reset mid-stream (SO_LINGER 0 makes close send RST).
    for i in 0..60u32 {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { continue };
        match i % 3 {
            0 => drop(stream),
            1 => {
                let _ = stream.write_all(&pattern(3000, i));
                drop(stream);
            }
            _ => {
                let _ = stream.write_all(&pattern(100_000, i));
                set_linger_zero(&stream);
                drop(stream);
            }
        }
    }
    // The server still echoes correctly afterwards.
    let data = pattern(200_000, 99);
    assert!(echo_round_trip(port, &data) == data);
    assert!(guest.child.id() > 0);
    drop(guest);
    let kernel_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!kernel_log.contains("panic") && !kernel_log.contains("FATAL"), "{kernel_log}");
}

fn tempfile_path(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("halcyon-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name).to_str().unwrap().to_owned()
}

/// `SO_LINGER` with a zero timeout: `close` then resets the connection.
fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        on: i32,
        seconds: i32,
    }
    let linger = Linger { on: 1, seconds: 0 };
    // SOL_SOCKET = 1, SO_LINGER = 13 on Linux.
    extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    // SAFETY: a valid socket descriptor and a correctly sized, live option value.
    #[allow(unsafe_code)]
    unsafe {
        setsockopt(stream.as_raw_fd(), 1, 13, &linger, std::mem::size_of::<Linger>() as u32);
    }
}

/// A DNS server on 127.0.0.1:53 that knows one name (RFC 1035 §4.1).
fn start_dns_server(name: &'static str, answer: [u8; 4]) -> Option<thread::JoinHandle<()>> {
    let socket = UdpSocket::bind("127.0.0.1:53").ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    Some(thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((len, from)) = socket.recv_from(&mut buf) {
            let query = &buf[..len];
            if len < 12 {
                continue;
            }
            // The question: labels from offset 12, then type and class.
            let mut at = 12;
            let mut labels = Vec::new();
            while at < len && query[at] != 0 {
                let l = query[at] as usize;
                labels.push(String::from_utf8_lossy(&query[at + 1..(at + 1 + l).min(len)]).into_owned());
                at += 1 + l;
            }
            let question_end = (at + 5).min(len);
            let known = labels.join(".") == name;
            let mut reply = Vec::new();
            reply.extend_from_slice(&query[..2]);
            reply.extend_from_slice(&[0x81, if known { 0x80 } else { 0x83 }]);
            reply.extend_from_slice(&[0, 1, 0, u8::from(known), 0, 0, 0, 0]);
            reply.extend_from_slice(&query[12..question_end]);
            if known {
                reply.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                reply.extend_from_slice(&answer);
            }
            let _ = socket.send_to(&reply, from);
        }
    }))
}

#[test]
fn guest_resolves_a_name_and_connects_out() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let accepted = thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        let mut message = Vec::new();
        stream.read_to_end(&mut message).unwrap();
        stream.write_all(b"host says: ").unwrap();
        stream.write_all(&message).unwrap();
    });
    let dns = start_dns_server("service.halcyon.test", [10, 0, 2, 2]);
    assert!(dns.is_some(), "cannot bind 127.0.0.1:53 for the test's name server (run the tests as root)");
    let output = run(&["--dns-server", "10.0.2.2", &example("net-client"), "service.halcyon.test", &port.to_string(), "hi from the guest"]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert!(out.contains("resolved service.halcyon.test: 10.0.2.2\n"), "{out}");
    assert!(out.contains("connected from 10.0.2.15:"), "{out}");
    assert!(out.contains("received: host says: hi from the guest\n"), "{out}");
    accepted.join().unwrap();

    // A name the server does not know.
    let output = run(&["--dns-server", "10.0.2.2", &example("net-client"), "nowhere.halcyon.test", "1", "x"]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("cannot resolve nowhere.halcyon.test: SocketError::NameUnresolvable"), "{}", stderr(&output));
}

#[test]
fn udp_datagrams_both_ways() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    socket.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let echo = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..5 {
            let (n, from) = socket.recv_from(&mut buf).unwrap();
            let upper: Vec<u8> = buf[..n].to_ascii_uppercase();
            socket.send_to(&upper, from).unwrap();
        }
    });
    let output = run(&["-S", "inherit-network", path_str(&guest("net_probe")), "udp", "10.0.2.2", &port.to_string(), "5"]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    for i in 0..5 {
        assert!(out.contains(&format!("echo from port {port}: DATAGRAM {i}\n")), "{out}");
    }
    echo.join().unwrap();
}

#[test]
fn socket_errors_and_limits_are_clean() {
    let probe = guest("net_probe");
    let closed_port = free_port().to_string();
    let output = run(&["-S", "inherit-network", path_str(&probe), "refused", "10.0.2.2", &closed_port]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "error: SocketError::ConnectionRefused\n");

    let output = run(&["-S", "inherit-network", path_str(&probe), "limits"]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert!(out.starts_with("limit after "), "{out}");
    assert!(out.contains("after release: bind ok"), "{out}");

    let output = run(&["-S", "inherit-network", path_str(&probe), "nonblocking"]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        "udp receive-from: Some(SocketError::WouldBlock)\ntcp accept: Some(SocketError::WouldBlock)\n\
         second listen: Some(SocketError::AddressInUse)\n\
         ipv6 connect: Some(SocketError::Unsupported(\"IPv6 is not supported yet\"))\n"
    );

    let output = run(&["-S", "inherit-network", path_str(&probe), "caps"]);
    assert_eq!(stdout(&output), "sockets supported: true; max-sockets 256\n");
    // Without a network card the interface says so, and calls answer `unsupported`.
    let output = run(&[path_str(&probe), "caps"]);
    assert_exit(&output, 0);
    assert!(stdout(&output).starts_with("sockets supported: false; max-sockets 0\nresolve: Some(SocketError::Unsupported("), "{}", stdout(&output));
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let output = run(&["--tcplisten", &listen, &example("tcp-echo"), "1"]);
    assert_ne!(output.status.code(), Some(0));
    assert!(stderr(&output).contains(&listen) || stderr(&output).to_lowercase().contains("could not"), "{}", stderr(&output));
}

#[test]
fn a_waiting_workload_lets_the_next_one_run() {
    // Workload 0 blocks until the host answers its datagram; the host answers only after
    // it has seen workload 1's output, which needs workload 1 to run while 0 waits.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    socket.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let dir = std::env::temp_dir().join(format!("halcyon-sched-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("workloads.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[workload]]\nname = \"waiter\"\nmodule = \"{}\"\nargs = [\"wait\", \"10.0.2.2\", \"{port}\"]\n\n\
             [[workload]]\nname = \"hello\"\nmodule = \"{}\"\n",
            path_str(&guest("net_probe")),
            path_str(&guest("hello"))
        ),
    )
    .unwrap();
    let bundle = dir.join("two.hcb");
    let output = halcyon(&["bundle", "-o", path_str(&bundle), path_str(&manifest)]).output().unwrap();
    assert_exit(&output, 0);
    let guest_run = Guest::start(&["-S", "inherit-network", path_str(&bundle)]);
    let mut buf = [0u8; 64];
    let (n, from) = socket.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"waiting");
    guest_run.expect_line("hello from halcyon");
    socket.send_to(b"go on", from).unwrap();
    let (code, out, err) = guest_run.finish();
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("reply: go on"), "{out}");
}
