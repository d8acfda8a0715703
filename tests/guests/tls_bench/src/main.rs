//! Guest: the TLS server `make bench` measures against `openssl s_server -WWW` in a Linux
//! guest. It answers like `s_server -WWW` does, byte for byte: `GET /bulk.bin` gets BYTES
//! bytes, any other path the 40-byte page; one request per connection, then close_notify.
//! Its key is an ECDSA P-256 key generated in the kernel (the Linux side gets a P-256 key
//! from the host's openssl).
//!
//! Arguments: PORT BYTES. Run with `--tcplisten 127.0.0.1:PORT`; it hands the port from
//! WASI descriptor 3 over to the HAL as `examples/https-server` does. Prints
//! `tls_bench: listening` when ready and serves until the VM is stopped.

use elastic_hal::sockets::{IpAddress, SocketAddress, TcpSocket};
use elastic_hal::tls::{KeyContext, ServerConfig, Session};
use std::os::fd::FromRawFd;

/// The page both servers serve (`index.html` in the Linux guest).
const PAGE: &[u8] = b"Hello from a Halcyon workload over TLS.\n";
/// `openssl s_server -WWW`'s response heads: `.html` files, other files.
const HTML_HEAD: &[u8] = b"HTTP/1.0 200 ok\r\nContent-type: text/html\r\n\r\n";
const PLAIN_HEAD: &[u8] = b"HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n";
/// The bulk body is this pattern repeated (the Linux side's `bulk.bin` is the same).
const PATTERN: &[u8] = b"0123456789abcdef";

fn request_path(session: &Session) -> Option<String> {
    let mut request = Vec::new();
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        match session.receive(16 * 1024) {
            Ok(bytes) if bytes.is_empty() => return None,
            Ok(bytes) => request.extend_from_slice(&bytes),
            Err(_) => return None,
        }
    }
    let text = String::from_utf8_lossy(&request);
    text.split_whitespace().nth(1).map(str::to_owned)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).expect("PORT");
    let bulk: usize = args.get(2).and_then(|n| n.parse().ok()).expect("BYTES");
    let key = KeyContext::generate_self_signed(&["localhost".to_string()]).expect("key generation");
    // SAFETY: descriptor 3 is the preopened listener; nothing else owns it, and dropping
    // the `TcpListener` closes it so the HAL can listen on the same port.
    drop(unsafe { std::net::TcpListener::from_raw_fd(3) });
    let listener = TcpSocket::listen(SocketAddress { address: IpAddress::Ipv4((0, 0, 0, 0)), port }, 16).expect("listen");
    println!("tls_bench: listening");
    let chunk: Vec<u8> = PATTERN.iter().copied().cycle().take(64 * 1024).collect();
    loop {
        let Ok((socket, _)) = listener.accept() else { continue };
        let config = ServerConfig { key: &key, client_trust: None, versions: vec![], cipher_suites: vec![] };
        let Ok(session) = Session::accept(socket, &config) else { continue };
        if let Some(path) = request_path(&session) {
            if path == "/bulk.bin" {
                let _ = session.send(PLAIN_HEAD);
                let mut left = bulk;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if session.send(&chunk[..n]).is_err() {
                        break;
                    }
                    left -= n;
                }
            } else {
                let _ = session.send(&[HTML_HEAD, PAGE].concat());
            }
        }
        let _ = session.close();
    }
}
