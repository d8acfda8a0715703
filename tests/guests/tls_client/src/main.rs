//! Guest: connects to HOST:PORT through the HAL `sockets` and `tls` interfaces, sends an
//! HTTP/1.0 `GET /`, and prints what it learns: `tls: version=... cipher=... peer-certs=N`,
//! then `body: ...` (the first line that mentions `s_server`, or the whole answer), or
//! `tls-error: <variant>` and exits 1.
//!
//! Arguments: HOST PORT SERVER-NAME, then `key=value` options:
//! `ca=PEM` (trust roots), `pin=PEM` (pinned leaf), `cert=PEM` and `key=PEM` (mutual TLS),
//! `p12=HEX` and `p12pass=PASSWORD` (mutual TLS with a PKCS#12 file, hex-encoded),
//! `certder=HEX[,HEX...]` and `keyder=HEX` (mutual TLS with a DER chain and DER key;
//! prints `der: loaded` or `der: <error>`, and `derkey=` with `mutate=N` mutates the key),
//! `path=/FILE` (request that path instead of `/`; prints `received N bytes in T ms`),
//! `version=tls12|tls13`, `cipher=aes128-gcm|aes256-gcm|chacha20-poly1305`, `pkcs12=1`
//! (asks for `from-pkcs12` with garbage and prints the answer), `dtls=1` (the answer of
//! `dtls-connect`), `mutate=N` (with `p12=` and `cert=`/`key=`: N single-byte
//! mutations and truncations of each, which must all be refused without a trap; prints
//! `mutations: ...` and exits before connecting).

use elastic_hal::sockets::{self, IpAddress, SocketAddress, TcpSocket, UdpSocket};
use elastic_hal::tls::{CipherSuite, ClientConfig, KeyContext, ProtocolVersion, Session, Trust};

fn fail(what: &str, e: impl std::fmt::Debug) -> ! {
    println!("tls-error: {what}: {e:?}");
    std::process::exit(1);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, name, options @ ..] = args.as_slice() else {
        eprintln!("usage: tls_client HOST PORT SERVER-NAME [key=value ...]");
        std::process::exit(2);
    };
    let option = |key: &str| options.iter().find_map(|o| o.strip_prefix(key).and_then(|v| v.strip_prefix('=')).map(str::to_owned));
    if option("pkcs12").is_some() {
        match KeyContext::from_pkcs12(b"not a PFX", "") {
            Ok(_) => println!("pkcs12: ok"),
            Err(e) => println!("pkcs12: {e:?}"),
        }
    }
    let der_key = match (option("certder"), option("keyder")) {
        (Some(chain), Some(key)) => {
            let chain: Vec<Vec<u8>> = chain.split(',').map(hex).collect();
            let key = hex(&key);
            if let Some(n) = option("mutate") {
                mutate_der(n.parse().expect("N"), &chain, &key);
                return;
            }
            match KeyContext::from_der(&chain, &key) {
                Ok(context) => {
                    println!("der: loaded, leaf {} bytes of PEM", context.certificate_pem().len());
                    Some(context)
                }
                Err(e) => {
                    println!("der: {e:?}");
                    std::process::exit(1);
                }
            }
        }
        _ => None,
    };
    if let Some(n) = option("mutate") {
        mutate(n.parse().expect("N"), &hex(&option("p12").expect("p12=")), &option("p12pass").unwrap_or_default(), &option("cert").expect("cert="), &option("key").expect("key="));
        return;
    }
    let address = match sockets::resolve(host) {
        Ok(addresses) if !addresses.is_empty() => addresses[0],
        other => fail("resolve", other),
    };
    let port: u16 = port.parse().expect("PORT is a number");
    if option("dtls").is_some() {
        let udp = UdpSocket::bind(SocketAddress { address: IpAddress::Ipv4((0, 0, 0, 0)), port: 0 }).expect("udp bind");
        let config = ClientConfig { server_name: name.clone(), trust: Trust::Roots(vec![]), client_key: None, versions: vec![], cipher_suites: vec![] };
        match Session::dtls_connect(udp, SocketAddress { address, port }, &config) {
            Ok(_) => println!("dtls: ok"),
            Err(e) => println!("dtls: {e:?}"),
        }
    }
    let socket = TcpSocket::connect(SocketAddress { address, port }).unwrap_or_else(|e| fail("connect", e));
    let trust = match (option("ca"), option("pin")) {
        (_, Some(pin)) => Trust::Pinned(vec![pin]),
        (Some(ca), None) => Trust::Roots(vec![ca]),
        (None, None) => Trust::Roots(vec![]),
    };
    let client_key = match (option("cert"), option("key"), option("p12")) {
        _ if der_key.is_some() => der_key,
        (Some(cert), Some(key), _) => Some(KeyContext::from_pem(&cert, &key).unwrap_or_else(|e| fail("client key", e))),
        (_, _, Some(hex)) => {
            let der = self::hex(&hex);
            let password = option("p12pass").unwrap_or_default();
            let key = KeyContext::from_pkcs12(&der, &password).unwrap_or_else(|e| fail("pkcs12", e));
            println!("pkcs12: loaded, leaf {} bytes of PEM", key.certificate_pem().len());
            Some(key)
        }
        _ => None,
    };
    let versions = match option("version").as_deref() {
        Some("tls12") => vec![ProtocolVersion::Tls12],
        Some("tls13") => vec![ProtocolVersion::Tls13],
        _ => vec![],
    };
    let cipher_suites = match option("cipher").as_deref() {
        Some("aes128-gcm") => vec![CipherSuite::Aes128Gcm],
        Some("aes256-gcm") => vec![CipherSuite::Aes256Gcm],
        Some("chacha20-poly1305") => vec![CipherSuite::Chacha20Poly1305],
        _ => vec![],
    };
    let config = ClientConfig { server_name: name.clone(), trust, client_key: client_key.as_ref(), versions, cipher_suites };
    let session = Session::connect(socket, &config).unwrap_or_else(|e| fail("handshake", e));
    println!("tls: version={:?} cipher={:?} peer-certs={}", session.version(), session.cipher_suite(), session.peer_certificates().len());
    let path = option("path").unwrap_or_else(|| "/".into());
    let started = std::time::Instant::now();
    session.send(format!("GET {path} HTTP/1.0\r\nHost: {name}\r\n\r\n").as_bytes()).unwrap_or_else(|e| fail("send", e));
    let mut answer = Vec::new();
    let mut total = 0usize;
    loop {
        match session.receive(64 * 1024) {
            Ok(bytes) if bytes.is_empty() => break,
            // A file download is counted, not kept (the guest's memory is limited).
            Ok(bytes) if path != "/" && answer.len() > 4096 => total += bytes.len(),
            Ok(bytes) => answer.extend_from_slice(&bytes),
            // openssl s_server -www closes without close_notify after the page.
            Err(e) if !answer.is_empty() => {
                println!("end: {e:?}");
                break;
            }
            Err(e) => fail("receive", e),
        }
    }
    if path != "/" {
        println!("received {} bytes in {} ms", answer.len() + total, started.elapsed().as_millis());
    }
    let answer = String::from_utf8_lossy(&answer);
    let line = answer.lines().find(|l| l.contains("s_server")).unwrap_or(&answer);
    println!("body: {line}");
    let _ = session.close();
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

/// Mutation test of the kernel's DER key-context parser: every truncation of the key must
/// be refused, every flipped bit answered (never a trap); prints the counts.
fn mutate_der(n: usize, chain: &[Vec<u8>], key: &[u8]) {
    assert!(KeyContext::from_der(chain, key).is_ok(), "the unmutated DER loads");
    let (mut truncated, mut truncated_refused, mut flipped, mut flipped_loaded) = (0, 0, 0, 0);
    for i in 0..n {
        let at = i * key.len() / n;
        truncated += 1;
        truncated_refused += usize::from(KeyContext::from_der(chain, &key[..at]).is_err());
        let mut bad = key.to_vec();
        bad[at] ^= 1 << (i % 8);
        flipped += 1;
        flipped_loaded += usize::from(KeyContext::from_der(chain, &bad).is_ok());
        let mut leaf = chain[0].clone();
        let at = i * leaf.len() / n;
        leaf[at] ^= 1 << (i % 8);
        let mut bad_chain = chain.to_vec();
        bad_chain[0] = leaf;
        let _ = KeyContext::from_der(&bad_chain, key);
    }
    println!("mutations: der truncated={truncated} refused={truncated_refused} flipped={flipped} loaded={flipped_loaded}");
}

/// Mutation test of the kernel's PKCS#12 and PEM parsers: every mutated or truncated
/// input must be answered with an error (never a trap or a kernel panic).
fn mutate(n: usize, p12: &[u8], password: &str, cert: &str, key: &str) {
    assert!(KeyContext::from_pkcs12(p12, password).is_ok(), "the unmutated file loads");
    assert!(KeyContext::from_pem(cert, key).is_ok(), "the unmutated PEM loads");
    let (mut tried, mut refused) = (0, 0);
    for i in 0..n {
        let at = i * p12.len() / n;
        let mut bad = p12.to_vec();
        bad[at] ^= 1 << (i % 8);
        tried += 1;
        refused += usize::from(KeyContext::from_pkcs12(&bad, password).is_err());
        tried += 1;
        refused += usize::from(KeyContext::from_pkcs12(&p12[..at], password).is_err());
    }
    println!("mutations: pkcs12 tried={tried} refused={refused}");
    let (mut pem_tried, mut pem_loaded) = (0, 0);
    for i in 0..n {
        for (text, is_cert) in [(cert, true), (key, false)] {
            let at = i * text.len() / n;
            let mut bytes = text.as_bytes().to_vec();
            // Stay in the base64 alphabet so the DER parser, not the PEM decoder, sees it.
            bytes[at] = if bytes[at] == b'A' { b'B' } else if bytes[at].is_ascii_alphanumeric() { b'A' } else { bytes[at] };
            let bad = String::from_utf8(bytes).expect("ASCII");
            let result = if is_cert { KeyContext::from_pem(&bad, key) } else { KeyContext::from_pem(cert, &bad) };
            pem_tried += 1;
            pem_loaded += usize::from(result.is_ok());
        }
    }
    println!("mutations: pem tried={pem_tried} loaded={pem_loaded}");
}
