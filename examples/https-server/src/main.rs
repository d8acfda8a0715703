//! Serves `GET /` over TLS with a key pair generated inside the kernel (the private key
//! never leaves it): prints its self-signed certificate (subject alternative name
//! `localhost`), then answers HTTPS requests on the port `--tcplisten` forwards.
//!
//! ```sh
//! halcyon run --tcplisten 127.0.0.1:8443 target/examples/https-server.wasm 8443 > out.txt &
//! # copy the PEM block from out.txt to cert.pem, then:
//! curl --cacert cert.pem https://localhost:8443/
//! ```
//!
//! `--tcplisten` preopens the port as WASI descriptor 3. TLS sessions take HAL TCP
//! sockets, so the server hands the port over: it closes descriptor 3 and listens on the
//! same port (the guest port equals the host port) with `tcp-socket.listen`.
//! Arguments: PORT (default 8443), then how many connections to serve (default or 0:
//! forever), then optionally a PEM CA certificate: clients must then present a
//! certificate it signed (mutual TLS), e.g. `curl --cert client.pem --key client.key`.

use elastic_hal::sockets::{IpAddress, SocketAddress, TcpSocket};
use elastic_hal::tls::{KeyContext, ServerConfig, Session, Trust};
use std::os::fd::FromRawFd;

const BODY: &str = "Hello from a Halcyon workload over TLS.\n";

/// Reads the request head (up to the blank line, at most 16 KiB).
fn read_request(session: &Session) -> Option<String> {
    let mut request = Vec::new();
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match session.receive(16 * 1024) {
            Ok(bytes) if bytes.is_empty() => return None,
            Ok(bytes) => request.extend_from_slice(&bytes),
            Err(e) => {
                eprintln!("https-server: receive failed: {e:?}");
                return None;
            }
        }
        if request.len() > 16 * 1024 {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&request).into_owned())
}

fn respond(session: &Session, request: &str) {
    let first = request.lines().next().unwrap_or("");
    let (status, body) = if first.starts_with("GET / ") { ("200 OK", BODY) } else { ("404 Not Found", "not found\n") };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Err(e) = session.send(response.as_bytes()) {
        eprintln!("https-server: send failed: {e:?}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).map(|p| p.parse().expect("PORT is a number")).unwrap_or(8443);
    let limit: Option<u64> = args.get(2).map(|n| n.parse().expect("COUNT is a number")).filter(|n| *n > 0);
    let client_trust = args.get(3).map(|pem| Trust::Roots(vec![pem.clone()]));

    let key = KeyContext::generate_self_signed(&["localhost".to_string()]).unwrap_or_else(|e| {
        eprintln!("https-server: cannot generate a key: {e:?}");
        std::process::exit(1);
    });
    // Hand the preopened port over to the HAL: close descriptor 3 (if `--tcplisten`
    // opened it), then listen on the same port.
    // SAFETY: descriptor 3 is the preopened listener or nothing; nothing else owns it,
    // and the `TcpListener` is dropped at once, which closes it.
    drop(unsafe { std::net::TcpListener::from_raw_fd(3) });
    let any = SocketAddress { address: IpAddress::Ipv4((0, 0, 0, 0)), port };
    let listener = TcpSocket::listen(any, 16).unwrap_or_else(|e| {
        eprintln!("https-server: cannot listen on port {port}: {e:?}");
        std::process::exit(1);
    });
    print!("{}", key.certificate_pem());
    println!("https-server: listening on port {port}");

    let mut served = 0u64;
    while limit.is_none_or(|n| served < n) {
        let (socket, _peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("https-server: accept failed: {e:?}");
                continue;
            }
        };
        served += 1;
        let config = ServerConfig { key: &key, client_trust: client_trust.clone(), versions: vec![], cipher_suites: vec![] };
        let session = match Session::accept(socket, &config) {
            Ok(session) => session,
            Err(e) => {
                println!("https-server: handshake {served} failed: {e:?}");
                continue;
            }
        };
        let client_certs = session.peer_certificates().len();
        println!("https-server: connection {served}: {:?} {:?} client-certs={client_certs}", session.version(), session.cipher_suite());
        if let Some(request) = read_request(&session) {
            respond(&session, &request);
        }
        let _ = session.close();
    }
}
