//! Measures, inside a workload: the cost of an empty HAL call, and SHA-256 and
//! AES-256-GCM throughput through the HAL (native code in the kernel) against the same
//! algorithms compiled into the wasm (RustCrypto's portable code, interpreted).
//! Prints `result <name> <value> <unit>` lines for `make bench`.
use aes_gcm::aead::{Aead, KeyInit};
use elastic_hal::crypto::{self, AeadAlgorithm, HashAlgorithm, KeyAlgorithm, KeyContext, KeyFormat};
use elastic_hal::clock;
use sha2::Digest;

fn mb_per_s(bytes: usize, ns: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / (ns as f64 / 1e9)
}

fn time<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let start = clock::monotonic_now();
    let out = f();
    (out, clock::monotonic_now() - start)
}

fn main() {
    let size: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1 << 20);
    let calls = 100_000u64;
    let ((), ns) = time(|| {
        for _ in 0..calls {
            std::hint::black_box(clock::resolution());
        }
    });
    println!("result empty-hal-call {:.1} ns", ns as f64 / calls as f64);

    let data = vec![0x5au8; size];
    let (hal, ns) = time(|| crypto::hash(HashAlgorithm::Sha256, &data));
    println!("result sha256-hal {:.2} MB/s", mb_per_s(size, ns));
    let (wasm, ns) = time(|| sha2::Sha256::digest(&data).to_vec());
    println!("result sha256-wasm {:.2} MB/s", mb_per_s(size, ns));
    assert_eq!(hal, wasm);

    let key = [7u8; 32];
    let nonce = [9u8; 12];
    let ctx = KeyContext::import(KeyAlgorithm::Aead(AeadAlgorithm::Aes256Gcm), KeyFormat::Raw, &key).unwrap();
    let (hal, ns) = time(|| crypto::aead_encrypt(&ctx, &nonce, b"", &data).unwrap());
    println!("result aes256gcm-hal {:.2} MB/s", mb_per_s(size, ns));
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
    let (wasm, ns) = time(|| cipher.encrypt((&nonce).into(), data.as_slice()).unwrap());
    println!("result aes256gcm-wasm {:.2} MB/s", mb_per_s(size, ns));
    assert_eq!(hal, wasm);
}
