//! The HAL's crypto interface from a guest, checked on the host with independent
//! implementations: signatures with the `openssl` CLI, AES-256-GCM with `ring`.
mod common;
use common::*;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Wraps a raw public key in a SubjectPublicKeyInfo PEM (RFC 5280) for OpenSSL.
fn public_key_pem(spki_prefix: &str, key: &[u8]) -> String {
    let mut der = unhex(spki_prefix);
    der.extend_from_slice(key);
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            b64.push(if i <= chunk.len() { B64[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    let body: Vec<String> = b64.as_bytes().chunks(64).map(|l| String::from_utf8(l.to_vec()).unwrap()).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", body.join("\n"))
}

fn openssl_verifies(dir: &Path, name: &str, pem: &str, message: &[u8], signature: &[u8], digest: Option<&str>) -> bool {
    let (key, msg, sig) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.msg")), dir.join(format!("{name}.sig")));
    std::fs::write(&key, pem).unwrap();
    std::fs::write(&msg, message).unwrap();
    std::fs::write(&sig, signature).unwrap();
    let mut command = Command::new("openssl");
    match digest {
        // ECDSA: OpenSSL hashes the message and checks the DER signature.
        Some(digest) => command.args(["dgst", digest, "-verify"]).arg(&key).arg("-signature").arg(&sig).arg(&msg),
        // Ed25519 signs the raw message (RFC 8032 PureEdDSA).
        None => command.args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"]).arg(&key).arg("-in").arg(&msg).arg("-sigfile").arg(&sig),
    };
    let output = command.output().expect("openssl runs (apt-get install openssl)");
    output.status.success()
}

#[test]
fn guest_crypto_checks_out_with_independent_implementations() {
    let output = run(&[path_str(&guest("hal_crypto"))]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert!(out.ends_with("hal_crypto ok\n"), "{out}");
    let values: HashMap<&str, Vec<u8>> = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(_, v)| v.chars().all(|c| c.is_ascii_hexdigit()))
        .map(|(k, v)| (k, unhex(v)))
        .collect();
    // Known answers computed in the guest: FIPS 180-4 "abc", RFC 4231 test case 6.
    assert_eq!(values["sha256-abc"], unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    assert_eq!(values["hmac"], unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"));

    let dir = std::env::temp_dir().join(format!("halcyon-crypto-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let message = &values["message"];
    let cases = [
        // (name, SPKI DER prefix for the raw key, digest for openssl dgst)
        ("ed25519", "302a300506032b6570032100", None),
        ("p256", "3059301306072a8648ce3d020106082a8648ce3d030107034200", Some("-sha256")),
        ("p384", "3076301006072a8648ce3d020106052b81040022036200", Some("-sha384")),
    ];
    for (name, prefix, digest) in cases {
        let pem = public_key_pem(prefix, &values[format!("{name}-public").as_str()]);
        let signature = &values[format!("{name}-signature").as_str()];
        assert!(openssl_verifies(&dir, name, &pem, message, signature, digest), "OpenSSL rejects the guest's {name} signature");
        let mut forged = signature.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(!openssl_verifies(&dir, &format!("{name}-forged"), &pem, message, &forged, digest), "OpenSSL accepts a forged {name} signature");
    }
    std::fs::remove_dir_all(&dir).ok();

    // AES-256-GCM: decrypt the guest's ciphertext with ring.
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &values["aes-key"]).unwrap());
    let nonce = Nonce::try_assume_unique_for_key(&values["aes-nonce"]).unwrap();
    let mut sealed = values["aes-sealed"].clone();
    let plaintext = key.open_in_place(nonce, Aad::from(&values["aes-aad"]), &mut sealed).expect("ring opens the guest's ciphertext");
    assert_eq!(plaintext, values["aes-plaintext"].as_slice());
    assert!(out.contains("aead-public-key: symmetric keys have no public part\n"));
    assert!(out.contains("short-key: AEAD keys are 32 bytes\n"));
    assert!(out.contains("huge-aead: input too large for the VM's free memory\n"), "{out}");
}
