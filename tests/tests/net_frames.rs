//! Hostile frames on the wire: the test plays the network itself. QEMU's `socket`
//! netdev carries the guest's Ethernet frames as UDP datagrams to and from the test, which
//! sends thousands of garbage, truncated and corrupted frames, then checks the kernel
//! still answers ARP and still completes a TCP handshake on its listening port.
mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const HOST_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
const GUEST_IP: [u8; 4] = [10, 0, 2, 15];
const HOST_IP: [u8; 4] = [10, 0, 2, 2];

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = GUEST_MAC.to_vec();
    frame.extend_from_slice(&HOST_MAC);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn arp_request() -> Vec<u8> {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&HOST_MAC);
    arp.extend_from_slice(&HOST_IP);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&GUEST_IP);
    let mut frame = ethernet(0x0806, &arp);
    frame[..6].copy_from_slice(&[0xff; 6]);
    frame
}

/// An IPv4 packet (RFC 791) with a correct header checksum.
fn ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut header = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, protocol, 0, 0];
    header[2..4].copy_from_slice(&total.to_be_bytes());
    header.extend_from_slice(&HOST_IP);
    header.extend_from_slice(&GUEST_IP);
    let sum = checksum(&header);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    header.extend_from_slice(payload);
    header
}

/// A TCP segment (RFC 9293) with a correct checksum over the pseudo-header.
fn tcp(source_port: u16, port: u16, flags: u8, seq: u32, data: &[u8]) -> Vec<u8> {
    let mut segment = source_port.to_be_bytes().to_vec();
    segment.extend_from_slice(&port.to_be_bytes());
    segment.extend_from_slice(&seq.to_be_bytes());
    segment.extend_from_slice(&0u32.to_be_bytes());
    segment.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    segment.extend_from_slice(data);
    let mut pseudo = HOST_IP.to_vec();
    pseudo.extend_from_slice(&GUEST_IP);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&segment);
    let sum = checksum(&pseudo);
    segment[16..18].copy_from_slice(&sum.to_be_bytes());
    ethernet(0x0800, &ipv4(6, &segment))
}

fn udp(port: u16, data: &[u8]) -> Vec<u8> {
    let mut datagram = 53u16.to_be_bytes().to_vec();
    datagram.extend_from_slice(&port.to_be_bytes());
    datagram.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    datagram.extend_from_slice(&[0, 0]);
    datagram.extend_from_slice(data);
    ethernet(0x0800, &ipv4(17, &datagram))
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    let mut frame = valid.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(frame.len());
        match rng.below(5) {
            0 if !frame.is_empty() => frame[at] ^= 1 << rng.below(8),
            1 if !frame.is_empty() => frame[at] = [0, 0xff, 0x7f, 0x80, 0x45][rng.below(5)],
            2 => frame.truncate(at),
            3 => frame.extend((0..rng.below(1600)).map(|_| rng.next() as u8)),
            _ => {}
        }
    }
    frame
}

/// Waits for a frame from the guest that `pred` accepts.
fn expect_frame(socket: &UdpSocket, what: &str, pred: impl Fn(&[u8]) -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 2048];
    while Instant::now() < until {
        if let Ok(n) = socket.recv(&mut buf) {
            if pred(&buf[..n]) {
                return;
            }
        }
    }
    panic!("the guest sent no {what}");
}

#[test]
fn garbage_frames_do_not_stop_the_stack() {
    let wire = UdpSocket::bind("127.0.0.1:0").unwrap();
    wire.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let wire_port = wire.local_addr().unwrap().port();
    let qemu_port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let port = 7000 + (std::process::id() % 1000) as u16;

    // A QEMU wrapper that puts the card on a socket netdev instead of user networking.
    let dir = std::env::temp_dir().join(format!("halcyon-frames-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("qemu");
    let netdev = format!("socket,id=halcyon-net,udp=127.0.0.1:{wire_port},localaddr=127.0.0.1:{qemu_port}");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nfor a; do shift; case \"$a\" in user,id=halcyon-net*) a='{netdev}';; esac; set -- \"$@\" \"$a\"; done\nexec qemu-system-x86_64 \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.join("kernel.log");

    let echo = root().join("target/examples/tcp-echo.wasm");
    let listen = format!("127.0.0.1:{port}");
    let mut child = halcyon(&[
        "run", "--timeout", "120", "--qemu", path_str(&wrapper), "--log", path_str(&log),
        "--kernel-arg", "net.ip=10.0.2.15/24", "--tcplisten", &listen, path_str(&echo),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "tcp-echo: listening\n");

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let valid = [arp_request(), tcp(40000, port, 0x02, 1000, &[]), tcp(40001, port, 0x18, 5, b"data"), udp(9, b"hello"), udp(68, &[0; 300])];
    for i in 0..3000 {
        let frame = match i % 4 {
            0 => (0..rng.below(1600)).map(|_| rng.next() as u8).collect(),
            _ => {
                let base = rng.below(valid.len());
                mutate(&mut rng, &valid[base])
            }
        };
        let _ = wire.send_to(&frame, ("127.0.0.1", qemu_port));
        if i % 64 == 0 {
            // Let the guest keep up; QEMU drops what its receive queue cannot take.
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    wire.send_to(&arp_request(), ("127.0.0.1", qemu_port)).unwrap();
    expect_frame(&wire, "ARP reply", |f| f.len() >= 42 && f[12..14] == [8, 6] && f[20..22] == [0, 2] && f[28..32] == GUEST_IP);
    wire.send_to(&tcp(41000, port, 0x02, 7777, &[]), ("127.0.0.1", qemu_port)).unwrap();
    expect_frame(&wire, "SYN-ACK", |f| {
        f.len() >= 54 && f[12..14] == [8, 0] && f[23] == 6 && f[34..36] == port.to_be_bytes() && f[47] & 0x12 == 0x12
    });

    assert!(child.try_wait().unwrap().is_none(), "the VM stopped");
    kill_with_children(&mut child);
    let kernel_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!kernel_log.contains("panic") && !kernel_log.contains("FATAL"), "{kernel_log}");
}
