//! A tour of the ELASTIC TEE HAL as Halcyon implements it: every call prints one line
//! with its result or its error. Keys, messages, signatures and ciphertexts are in hex
//! so anyone can check them with another implementation (see README).
use elastic_hal::crypto::{self, AeadAlgorithm, HashAlgorithm, KeyAlgorithm, KeyContext, KeyFormat, MacAlgorithm, SignatureAlgorithm};
use elastic_hal::{attestation, capabilities, clock, gpu, random, resources};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() {
    // capabilities
    let p = capabilities::get_platform();
    println!("capabilities.get-platform: {:?}, HAL {}, {}", p.platform, p.hal_version, p.implementation);
    let support = capabilities::list_support();
    let supported = support.iter().filter(|f| f.supported).count();
    println!("capabilities.list-support: {supported} of {} functions supported", support.len());
    for f in &support {
        let state = if f.supported { "yes" } else { "no " };
        let backed = if f.hardware_backed { " (hardware-backed)" } else { "" };
        let note = if f.note.is_empty() { String::new() } else { format!(" - {}", f.note) };
        println!("  {state} {}.{}{backed}{note}", f.interface, f.function);
    }
    let l = capabilities::get_limits();
    println!("capabilities.get-limits: memory {} bytes, fuel {:?}, {} handles, {} sockets", l.memory_bytes, l.fuel, l.max_handles, l.max_sockets);

    // clock
    match clock::now() {
        Ok(t) => println!("clock.now: {}.{:09} s since the Unix epoch", t.seconds, t.nanoseconds),
        Err(e) => println!("clock.now: error {e:?}"),
    }
    let z = clock::timezone();
    println!("clock.timezone: {} (UTC{:+} s)", z.name, z.utc_offset_seconds);
    let watch = clock::Stopwatch::new();
    watch.start();
    let digest = crypto::hash(HashAlgorithm::Sha256, &vec![0u8; 1 << 16]);
    watch.stop();
    println!("clock.stopwatch: SHA-256 of 64 KiB took {} ns", watch.elapsed());

    // random
    match random::get_random_bytes(16) {
        Ok(bytes) => println!("random.get-random-bytes(16): {}", hex(&bytes)),
        Err(e) => println!("random.get-random-bytes(16): error {e:?}"),
    }

    // crypto
    println!("crypto.hash(sha256, 64 KiB of zeros): {}", hex(&digest));
    let mac_key = KeyContext::generate(KeyAlgorithm::Mac(MacAlgorithm::HmacSha256)).expect("hmac key");
    let tag = crypto::mac_compute(&mac_key, b"tour").expect("mac");
    println!("crypto.mac-compute(hmac-sha256): {} (verify: {:?})", hex(&tag), crypto::mac_verify(&mac_key, b"tour", &tag));
    let message = b"Halcyon HAL tour";
    println!("message: {}", hex(message));
    let ed = KeyContext::generate(KeyAlgorithm::Signature(SignatureAlgorithm::Ed25519)).expect("ed25519 key");
    println!("crypto ed25519 public key: {}", hex(&ed.public_key().unwrap()));
    println!("crypto ed25519 signature: {}", hex(&crypto::sign(&ed, message).unwrap()));
    let ec = KeyContext::generate(KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP256Sha256)).expect("p256 key");
    println!("crypto ecdsa-p256 public key (SEC1): {}", hex(&ec.public_key().unwrap()));
    println!("crypto ecdsa-p256 signature (DER): {}", hex(&crypto::sign(&ec, message).unwrap()));
    let key_bytes = random::get_random_bytes(32).expect("key bytes");
    let nonce = random::get_random_bytes(12).expect("nonce");
    let aes = KeyContext::import(KeyAlgorithm::Aead(AeadAlgorithm::Aes256Gcm), KeyFormat::Raw, &key_bytes).expect("aes key");
    let ciphertext = crypto::aead_encrypt(&aes, &nonce, b"", message).expect("encrypt");
    println!("crypto aes-256-gcm key: {}", hex(&key_bytes));
    println!("crypto aes-256-gcm nonce: {}", hex(&nonce));
    println!("crypto aes-256-gcm plaintext: {}", hex(message));
    println!("crypto aes-256-gcm ciphertext+tag: {}", hex(&ciphertext));
    let hpke = KeyContext::generate(KeyAlgorithm::Hpke(crypto::HpkeSuite::X25519Sha256Aes128gcm)).expect("hpke key");
    let sealed = crypto::hpke_seal(crypto::HpkeSuite::X25519Sha256Aes128gcm, &hpke.public_key().unwrap(), b"", b"", message).unwrap();
    println!("crypto.hpke-seal/open: {:?}", crypto::hpke_open(&hpke, b"", b"", &sealed).map(|p| p == message));

    // attestation
    for m in attestation::runtime_measurements() {
        println!("attestation.runtime-measurements: {} {} {:?} {}", m.kind, m.name, m.algorithm, hex(&m.digest));
    }
    println!("attestation.platform-attestation: {:?}", attestation::platform_attestation(attestation::EvidenceFormat::SevSnpReport, &[0; 64]).map(|e| e.data.len()));
    println!("attestation.seal: {:?}", attestation::seal(attestation::SealBinding::Workload, b"secret").map(|s| s.len()));

    // resources
    let a = resources::current();
    println!("resources.current: limit {} used {} fuel {:?} available {}", a.memory_limit, a.memory_used, a.fuel_remaining, a.memory_available);
    println!("resources.request-memory(1 MiB): {:?}", resources::request_memory(1 << 20));
    println!("resources.request-fuel(1000): {:?}", resources::request_fuel(1000));

    // gpu
    println!("gpu.adapter.request: {:?}", gpu::Adapter::request().map(|_| ()));
}
