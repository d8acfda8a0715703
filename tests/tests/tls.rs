//! TLS through the real image (HAL `tls`, rustls in the kernel with our RustCrypto
//! provider), against the host's OpenSSL and curl:
//! - `examples/https-server` (key pair made in the kernel) reached with `curl --cacert`
//!   and `openssl s_client`, TLS 1.2 and 1.3, every suite and group, and malformed input;
//! - the `tls_client` guest fetching from `openssl s_server` on the host (10.0.2.2 from
//!   the guest) with a CA the test makes with the openssl CLI: right and wrong CA, wrong
//!   name, pinning, RSA/P-384/Ed25519 chains, mutual TLS (PEM, DER and PKCS#12), and the
//!   `unsupported` DTLS answer.
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::Duration;

/// A tool from the host (installed by `.ci/ensure-tools`).
fn tool(name: &str) -> Command {
    assert!(
        Command::new(name).arg("--version").output().is_ok() || Command::new(name).arg("version").output().is_ok(),
        "{name} is missing: run .ci/ensure-tools"
    );
    Command::new(name)
}

/// A fresh scratch directory for this test's keys and certificates.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("halcyon-tls-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = tool("openssl").current_dir(dir).args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A self-signed CA with a P-256 key, or `key` (e.g. `["rsa:2048"]`, `["ec", "-pkeyopt",
/// "ec_paramgen_curve:P-384"]`), and leaf certificates it signs (`name`: SAN DNS name).
fn make_ca(dir: &Path, ca: &str) {
    make_ca_with(dir, ca, &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
}

fn make_ca_with(dir: &Path, ca: &str, key: &[&str]) {
    let (k, pem, subject) = (format!("{ca}.key"), format!("{ca}.pem"), format!("/CN={ca} test CA"));
    let mut args = vec!["req", "-x509", "-newkey"];
    args.extend_from_slice(key);
    args.extend(["-nodes", "-keyout", &k, "-out", &pem, "-days", "2", "-subj", &subject]);
    openssl(dir, &args);
}

fn make_leaf(dir: &Path, ca: &str, leaf: &str, name: &str, usage: &str, rsa: bool) {
    let key = if rsa { vec!["-newkey", "rsa:2048"] } else { vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] };
    make_leaf_with(dir, ca, leaf, name, usage, &key);
}

fn make_leaf_with(dir: &Path, ca: &str, leaf: &str, name: &str, usage: &str, key: &[&str]) {
    let key = key.to_vec();
    let mut args = vec!["req"];
    args.extend(key);
    let (k, csr, ext, pem) = (format!("{leaf}.key"), format!("{leaf}.csr"), format!("{leaf}.ext"), format!("{leaf}.pem"));
    args.extend(["-nodes", "-keyout", &k, "-out", &csr, "-subj"]);
    let subject = format!("/CN={name}");
    args.push(&subject);
    openssl(dir, &args);
    std::fs::write(dir.join(&ext), format!("subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage={usage}\n")).unwrap();
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(dir, &["x509", "-req", "-in", &csr, "-CA", &ca_pem, "-CAkey", &ca_key, "-CAcreateserial", "-out", &pem, "-days", "2", "-extfile", &ext]);
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

/// A process killed when the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server -www` on a free port, ready to accept.
fn s_server(dir: &Path, leaf: &str, extra: &[&str]) -> (Killed, u16) {
    let port = free_port();
    let accept = port.to_string();
    let (cert, key) = (format!("{leaf}.pem"), format!("{leaf}.key"));
    let mut args = vec!["s_server", "-accept", &accept, "-cert", &cert, "-key", &key, "-www"];
    args.extend_from_slice(extra);
    let server = Killed(tool("openssl").current_dir(dir).args(&args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (server, port);
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("openssl s_server did not start");
}

/// Runs the `tls_client` guest against the host's port.
fn tls_client(port: u16, name: &str, options: &[String]) -> Output {
    let client = guest("tls_client");
    let port = port.to_string();
    let mut args = vec!["-S", "inherit-network", path_str(&client), "10.0.2.2", &port, name];
    args.extend(options.iter().map(String::as_str));
    run(&args)
}

/// The https-server example, booted; its certificate PEM and stdout lines.
struct HttpsServer {
    guest: Guest,
    port: u16,
    certificate: PathBuf,
}

impl HttpsServer {
    fn start(dir: &Path) -> HttpsServer {
        Self::start_with(dir, &[])
    }

    /// `extra`: COUNT and CLIENT-CA arguments of the example.
    fn start_with(dir: &Path, extra: &[&str]) -> HttpsServer {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let server = example("https-server");
        let port_arg = port.to_string();
        let mut args = vec!["--tcplisten", &listen, &server, &port_arg];
        args.extend_from_slice(extra);
        let guest = Guest::start(&args);
        let mut pem = String::new();
        loop {
            let line = guest.lines.recv_timeout(Duration::from_secs(60)).expect("the https-server prints its certificate");
            if line.starts_with("https-server: listening") {
                break;
            }
            pem.push_str(&line);
            pem.push('\n');
        }
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----") && pem.trim_end().ends_with("-----END CERTIFICATE-----"), "{pem}");
        let certificate = dir.join("https-server.pem");
        std::fs::write(&certificate, pem).unwrap();
        HttpsServer { guest, port, certificate }
    }

    fn expect_line(&self, starting: &str) -> String {
        self.guest.expect_line(starting)
    }
}

const BODY: &str = "Hello from a Halcyon workload over TLS.";

fn s_client(server: &HttpsServer, args: &[&str]) -> String {
    let connect = format!("127.0.0.1:{}", server.port);
    let mut all = vec!["s_client", "-connect", &connect, "-servername", "localhost", "-CAfile", path_str(&server.certificate), "-verify_return_error", "-ign_eof"];
    all.extend_from_slice(args);
    let mut child = tool("openssl").args(&all).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn https_server_answers_curl_and_openssl_with_tls12_and_tls13() {
    let dir = scratch("server");
    let server = HttpsServer::start(&dir);
    let text = tool("openssl").args(["x509", "-noout", "-text", "-in", path_str(&server.certificate)]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("DNS:localhost") && text.contains("prime256v1"), "{text}");

    // curl verifies the printed certificate and the name `localhost`.
    let url = format!("https://localhost:{}/", server.port);
    let curl = tool("curl").args(["-sS", "--max-time", "60", "--cacert", path_str(&server.certificate), &url]).output().unwrap();
    assert!(curl.status.success(), "curl: {}", String::from_utf8_lossy(&curl.stderr));
    assert_eq!(String::from_utf8_lossy(&curl.stdout).trim_end(), BODY);
    server.expect_line("https-server: connection 1: ProtocolVersion::Tls13");
    // Without the certificate curl refuses the server (exit 60: peer certificate).
    let untrusted = tool("curl").args(["-sS", "--max-time", "60", &url]).output().unwrap();
    assert_eq!(untrusted.status.code(), Some(60), "{}", String::from_utf8_lossy(&untrusted.stderr));

    for (version, suites) in [
        ("-tls1_2", ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"]),
        ("-tls1_3", ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]),
    ] {
        for suite in suites {
            let select = if version == "-tls1_2" { "-cipher" } else { "-ciphersuites" };
            let out = s_client(&server, &[version, select, suite]);
            let protocol = if version == "-tls1_2" { "TLSv1.2" } else { "TLSv1.3" };
            assert!(out.contains(&format!("New, {protocol}, Cipher is {suite}")), "{version} {suite}: {out}");
            assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
            assert!(out.contains(BODY), "{version} {suite}: {out}");
        }
    }
    for group in ["X25519", "P-256", "P-384"] {
        let out = s_client(&server, &["-groups", group]);
        assert!(out.contains(BODY), "{group}: {out}");
    }

    // Garbage: an oversized handshake record, then plain HTTP; the server answers with
    // an alert and goes on serving.
    let mut raw = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut oversized = vec![0x16, 0x03, 0x03, 0xff, 0xff];
    oversized.extend(std::iter::repeat_n(0x41, 20_000));
    let _ = raw.write_all(&oversized);
    let mut alert = [0u8; 7];
    raw.read_exact(&mut alert).unwrap();
    assert_eq!(alert[0], 0x15, "an alert record: {alert:?}");
    server.expect_line("https-server: handshake");
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    drop(plain);
    server.expect_line("https-server: handshake");
    let out = s_client(&server, &[]);
    assert!(out.contains(BODY), "still serving: {out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn guest_client_verifies_openssl_server() {
    let dir = scratch("client");
    make_ca(&dir, "ca");
    make_ca(&dir, "other");
    make_leaf(&dir, "ca", "server", "tls-test.example", "serverAuth", false);
    let (_server, port) = s_server(&dir, "server", &[]);
    let ca = format!("ca={}", read(&dir, "ca.pem"));

    let out = tls_client(port, "tls-test.example", std::slice::from_ref(&ca));
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("tls: version=ProtocolVersion::Tls13") && text.contains("peer-certs=1"), "{text}");
    assert!(text.contains("body: s_server -accept"), "{text}");

    for (version, cipher, expect) in [
        ("tls12", "chacha20-poly1305", "version=ProtocolVersion::Tls12 cipher=CipherSuite::Chacha20Poly1305"),
        ("tls12", "aes256-gcm", "version=ProtocolVersion::Tls12 cipher=CipherSuite::Aes256Gcm"),
        ("tls13", "chacha20-poly1305", "version=ProtocolVersion::Tls13 cipher=CipherSuite::Chacha20Poly1305"),
    ] {
        let out = tls_client(port, "tls-test.example", &[ca.clone(), format!("version={version}"), format!("cipher={cipher}")]);
        assert_exit(&out, 0);
        assert!(stdout(&out).contains(expect), "{}", stdout(&out));
    }

    // A CA that did not sign the server: unknown issuer.
    let out = tls_client(port, "tls-test.example", &[format!("ca={}", read(&dir, "other.pem"))]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("tls-error: handshake: TlsError::BadCertificate(\"UnknownIssuer\")"), "{}", stdout(&out));
    // The right CA, the wrong name.
    let out = tls_client(port, "wrong.example", std::slice::from_ref(&ca));
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("tls-error: handshake: TlsError::BadCertificate(\"NotValidForName"), "{}", stdout(&out));
    // Pinning the server's certificate needs no CA; pinning another one fails.
    let out = tls_client(port, "tls-test.example", &[format!("pin={}", read(&dir, "server.pem"))]);
    assert_exit(&out, 0);
    let out = tls_client(port, "tls-test.example", &[format!("pin={}", read(&dir, "ca.pem"))]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("BadCertificate"), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn guest_client_verifies_rsa_p384_and_ed25519_chains() {
    let dir = scratch("algorithms");
    // RSA CA (sha256WithRSAEncryption, PKCS#1 v1.5) over an RSA server: TLS 1.3 signs
    // with RSA-PSS, TLS 1.2 negotiates ECDHE-RSA.
    make_ca_with(&dir, "rsaca", &["rsa:2048"]);
    make_leaf(&dir, "rsaca", "rsa", "rsa.example", "serverAuth", true);
    let (_rsa, port) = s_server(&dir, "rsa", &[]);
    let ca = format!("ca={}", read(&dir, "rsaca.pem"));
    for version in ["tls13", "tls12"] {
        let out = tls_client(port, "rsa.example", &[ca.clone(), format!("version={version}")]);
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("body: s_server"), "{version}: {}", stdout(&out));
    }
    // P-384 CA (ecdsa-with-SHA384) over an Ed25519 server (TLS 1.3 only).
    make_ca_with(&dir, "p384ca", &["ec", "-pkeyopt", "ec_paramgen_curve:P-384"]);
    make_leaf_with(&dir, "p384ca", "ed", "ed25519.example", "serverAuth", &["-newkey", "ed25519"]);
    let (_ed, port) = s_server(&dir, "ed", &[]);
    let out = tls_client(port, "ed25519.example", &[format!("ca={}", read(&dir, "p384ca.pem"))]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("tls: version=ProtocolVersion::Tls13"), "{}", stdout(&out));
    assert!(stdout(&out).contains("body: s_server"), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn guest_client_mutual_tls_and_unsupported_answers() {
    let dir = scratch("mtls");
    make_ca(&dir, "ca");
    make_leaf(&dir, "ca", "server", "tls-test.example", "serverAuth", false);
    make_leaf(&dir, "ca", "client", "halcyon-client", "clientAuth", false);
    let (_server, port) = s_server(&dir, "server", &["-Verify", "1", "-CAfile", "ca.pem"]);
    let ca = format!("ca={}", read(&dir, "ca.pem"));
    let cert = format!("cert={}", read(&dir, "client.pem"));
    let key = format!("key={}", read(&dir, "client.key"));

    for version in ["tls13", "tls12"] {
        let out = tls_client(port, "tls-test.example", &[ca.clone(), cert.clone(), key.clone(), format!("version={version}")]);
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("body: s_server"), "{version}: {}", stdout(&out));
    }
    // Without a client certificate the server refuses (TLS 1.3: after the client's
    // handshake, so the first read reports it).
    let out = tls_client(port, "tls-test.example", std::slice::from_ref(&ca));
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("CertificateRequired"), "{}", stdout(&out));
    // A key that does not match the certificate is refused before connecting.
    let wrong_key = format!("key={}", read(&dir, "server.key"));
    let out = tls_client(port, "tls-test.example", &[ca.clone(), cert.clone(), wrong_key]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("BadKeyMaterial(\"the private key does not match"), "{}", stdout(&out));

    // The client key from a PKCS#12 file (OpenSSL 3 defaults: PBES2 AES-256-CBC,
    // HMAC-SHA256 MAC), with the CA in the bundle too.
    openssl(&dir, &["pkcs12", "-export", "-in", "client.pem", "-inkey", "client.key", "-certfile", "ca.pem", "-passout", "pass:s3cret", "-out", "client.p12"]);
    let p12: String = std::fs::read(dir.join("client.p12")).unwrap().iter().map(|b| format!("{b:02x}")).collect();
    for version in ["tls13", "tls12"] {
        let out = tls_client(port, "tls-test.example", &[ca.clone(), format!("p12={p12}"), "p12pass=s3cret".into(), format!("version={version}")]);
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("pkcs12: loaded") && stdout(&out).contains("body: s_server"), "{version}: {}", stdout(&out));
    }
    let out = tls_client(port, "tls-test.example", &[ca.clone(), format!("p12={p12}"), "p12pass=wrong".into()]);
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("BadKeyMaterial(\"PKCS#12: wrong password"), "{}", stdout(&out));

    // Mutation test of the PKCS#12 and PEM parsers in the kernel: every flipped bit and
    // truncation of the PKCS#12 file is refused (its MAC covers the contents); mutated
    // PEM never traps (a flip in a signature or unused bits may still load).
    let client = tls_client(port, "tls-test.example", &["mutate=96".into(), format!("p12={p12}"), "p12pass=s3cret".into(), cert.clone(), key.clone()]);
    assert_exit(&client, 0);
    assert!(stdout(&client).contains("mutations: pkcs12 tried=192 refused=192"), "{}", stdout(&client));
    assert!(stdout(&client).contains("mutations: pem tried=192"), "{}", stdout(&client));

    // Garbage as PKCS#12 is bad key material; DTLS answers `unsupported` with the reason.
    let out = tls_client(port, "tls-test.example", &[ca, "pkcs12=1".into(), "dtls=1".into(), cert, key]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("pkcs12: TlsError::BadKeyMaterial(\"PKCS#12 PFX"), "{text}");
    assert!(text.contains("dtls: TlsError::Unsupported(\"DTLS"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn der_hex(dir: &Path, file: &str) -> String {
    std::fs::read(dir.join(file)).unwrap().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn guest_client_key_context_from_der() {
    let dir = scratch("der");
    make_ca(&dir, "ca");
    make_leaf(&dir, "ca", "server", "tls-test.example", "serverAuth", false);
    make_leaf(&dir, "ca", "client", "halcyon-client", "clientAuth", false);
    make_leaf_with(&dir, "ca", "edclient", "halcyon-ed25519-client", "clientAuth", &["-newkey", "ed25519"]);
    make_leaf(&dir, "ca", "rsaclient", "halcyon-rsa-client", "clientAuth", true);
    // DER as `openssl` converts it: certificates, PKCS#8 and SEC1 (EC) and PKCS#1 (RSA) keys.
    for cert in ["client", "edclient", "rsaclient", "ca"] {
        openssl(&dir, &["x509", "-in", &format!("{cert}.pem"), "-outform", "DER", "-out", &format!("{cert}.der")]);
    }
    for key in ["client", "edclient"] {
        openssl(&dir, &["pkcs8", "-topk8", "-nocrypt", "-in", &format!("{key}.key"), "-outform", "DER", "-out", &format!("{key}.p8.der")]);
    }
    openssl(&dir, &["ec", "-in", "client.key", "-outform", "DER", "-out", "client.sec1.der"]);
    openssl(&dir, &["rsa", "-in", "rsaclient.key", "-traditional", "-outform", "DER", "-out", "rsaclient.pkcs1.der"]);
    let (_server, port) = s_server(&dir, "server", &["-Verify", "1", "-CAfile", "ca.pem"]);
    let ca = format!("ca={}", read(&dir, "ca.pem"));
    let chain = format!("certder={},{}", der_hex(&dir, "client.der"), der_hex(&dir, "ca.der"));

    // Mutual TLS with the DER chain (leaf and CA) and each DER key format.
    for (key, version) in [("client.p8.der", "tls13"), ("client.sec1.der", "tls12"), ("client.sec1.der", "tls13")] {
        let out = tls_client(port, "tls-test.example", &[ca.clone(), chain.clone(), format!("keyder={}", der_hex(&dir, key)), format!("version={version}")]);
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("der: loaded") && stdout(&out).contains("body: s_server"), "{key} {version}: {}", stdout(&out));
    }
    let ed = [ca.clone(), format!("certder={}", der_hex(&dir, "edclient.der")), format!("keyder={}", der_hex(&dir, "edclient.p8.der"))];
    let out = tls_client(port, "tls-test.example", &ed);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("body: s_server"), "Ed25519: {}", stdout(&out));

    // Clear errors, before any connection: an RSA key (which key contexts cannot sign
    // with), a key that is not DER, a certificate that is not DER, a mismatched key.
    let cases = [
        (format!("certder={}", der_hex(&dir, "rsaclient.der")), format!("keyder={}", der_hex(&dir, "rsaclient.pkcs1.der")), "BadKeyMaterial(\"RSA private keys are not supported"),
        (chain.clone(), "keyder=0badc0de".to_owned(), "BadKeyMaterial(\"private key DER"),
        (chain.clone(), "keyder=300602010102010a".to_owned(), "BadKeyMaterial(\"unsupported or malformed private key"),
        ("certder=3003020100".to_owned(), format!("keyder={}", der_hex(&dir, "client.p8.der")), "BadKeyMaterial(\"certificate 0 DER"),
        (chain.clone(), format!("keyder={}", der_hex(&dir, "edclient.p8.der")), "BadKeyMaterial(\"the private key does not match"),
    ];
    for (certs, key, expected) in cases {
        let out = tls_client(port, "tls-test.example", &[ca.clone(), certs, key]);
        assert_exit(&out, 1);
        assert!(stdout(&out).contains(expected), "{expected}: {}", stdout(&out));
    }

    // Mutation test of the DER path in the kernel: every truncated key is refused, flipped
    // bits in the key and the leaf are answered without a trap.
    let out = tls_client(port, "tls-test.example", &["mutate=64".into(), chain, format!("keyder={}", der_hex(&dir, "client.sec1.der"))]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("mutations: der truncated=64 refused=64"), "{}", stdout(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn https_server_requires_client_certificates_when_given_a_ca() {
    let dir = scratch("server-mtls");
    make_ca(&dir, "ca");
    make_ca(&dir, "other");
    make_leaf(&dir, "ca", "client", "halcyon-client", "clientAuth", false);
    make_leaf(&dir, "other", "stranger", "stranger", "clientAuth", false);
    let ca = read(&dir, "ca.pem");
    let server = HttpsServer::start_with(&dir, &["0", &ca]);
    let url = format!("https://localhost:{}/", server.port);
    let curl = |cert: Option<&str>| {
        let mut args = vec!["-sS", "--max-time", "60", "--cacert", path_str(&server.certificate)];
        let (c, k);
        if let Some(name) = cert {
            c = dir.join(format!("{name}.pem"));
            k = dir.join(format!("{name}.key"));
            args.extend(["--cert", path_str(&c), "--key", path_str(&k)]);
        }
        args.push(&url);
        tool("curl").args(&args).output().unwrap()
    };
    let ok = curl(Some("client"));
    assert!(ok.status.success(), "curl: {}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim_end(), BODY);
    server.expect_line("https-server: connection 1: ProtocolVersion::Tls13");
    // No client certificate, or one from another CA: the handshake fails in the guest.
    assert!(!curl(None).status.success());
    let line = server.expect_line("https-server: handshake 2 failed");
    assert!(line.contains("BadCertificate(\"NoCertificatesPresented") || line.contains("the peer presented no certificate"), "{line}");
    assert!(!curl(Some("stranger")).status.success());
    let line = server.expect_line("https-server: handshake 3 failed");
    assert!(line.contains("BadCertificate(\"UnknownIssuer\")"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}
