//! Exercises `elastic:hal/crypto` and prints keys, messages, signatures and ciphertexts
//! in hex, one `name=value` per line, so the host test can check them with an
//! independent implementation (OpenSSL).
use elastic_hal::crypto::{self, AeadAlgorithm, HashAlgorithm, KeyAlgorithm, KeyContext, KeyFormat, MacAlgorithm, SignatureAlgorithm};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() {
    println!("sha256-abc={}", hex(&crypto::hash(HashAlgorithm::Sha256, b"abc")));
    let hasher = crypto::Hasher::new(HashAlgorithm::Sha512);
    hasher.update(b"a");
    hasher.update(b"bc");
    println!("sha512-abc={}", hex(&hasher.finish()));

    let mac_key = KeyContext::import(KeyAlgorithm::Mac(MacAlgorithm::HmacSha256), KeyFormat::Raw, &[0xaa; 131]).expect("hmac key");
    let tag = crypto::mac_compute(&mac_key, b"Test Using Larger Than Block-Size Key - Hash Key First").expect("mac");
    println!("hmac={}", hex(&tag));
    assert!(crypto::mac_verify(&mac_key, b"Test Using Larger Than Block-Size Key - Hash Key First", &tag).is_ok());
    assert!(matches!(crypto::mac_verify(&mac_key, b"tampered", &tag), Err(crypto::CryptoError::VerificationFailed)));

    let message = b"Halcyon signs this message";
    println!("message={}", hex(message));
    for (name, algorithm) in [
        ("ed25519", SignatureAlgorithm::Ed25519),
        ("p256", SignatureAlgorithm::EcdsaP256Sha256),
        ("p384", SignatureAlgorithm::EcdsaP384Sha384),
    ] {
        let key = KeyContext::generate(KeyAlgorithm::Signature(algorithm)).expect("generate");
        let public = key.public_key().expect("public key");
        let signature = crypto::sign(&key, message).expect("sign");
        assert!(crypto::verify(algorithm, &public, message, &signature).is_ok());
        assert!(crypto::verify(algorithm, &public, b"other", &signature).is_err());
        println!("{name}-public={}", hex(&public));
        println!("{name}-signature={}", hex(&signature));
    }

    let aead_key_bytes: Vec<u8> = (0u8..32).collect();
    let aead = KeyContext::import(KeyAlgorithm::Aead(AeadAlgorithm::Aes256Gcm), KeyFormat::Raw, &aead_key_bytes).expect("aead key");
    let nonce = [7u8; 12];
    let plaintext = b"confidential payload";
    let sealed = crypto::aead_encrypt(&aead, &nonce, b"header", plaintext).expect("encrypt");
    assert_eq!(crypto::aead_decrypt(&aead, &nonce, b"header", &sealed).expect("decrypt"), plaintext);
    let mut tampered = sealed.clone();
    tampered[0] ^= 1;
    assert!(matches!(crypto::aead_decrypt(&aead, &nonce, b"header", &tampered), Err(crypto::CryptoError::VerificationFailed)));
    println!("aes-key={}", hex(&aead_key_bytes));
    println!("aes-nonce={}", hex(&nonce));
    println!("aes-aad={}", hex(b"header"));
    println!("aes-plaintext={}", hex(plaintext));
    println!("aes-sealed={}", hex(&sealed));
    match aead.public_key() {
        Err(crypto::CryptoError::InvalidKey(why)) => println!("aead-public-key: {why}"),
        other => panic!("a symmetric key answered {other:?}"),
    }

    let recipient = KeyContext::generate(KeyAlgorithm::Hpke(crypto::HpkeSuite::X25519Sha256Aes128gcm)).expect("hpke key");
    let sealed = crypto::hpke_seal(crypto::HpkeSuite::X25519Sha256Aes128gcm, &recipient.public_key().unwrap(), b"info", b"aad", b"to the enclave")
        .expect("hpke seal");
    let opened = crypto::hpke_open(&recipient, b"info", b"aad", &sealed).expect("hpke open");
    assert_eq!(opened, b"to the enclave");
    println!("hpke ok ({} byte enc)", sealed.encapsulated_key.len());
    assert!(matches!(recipient.algorithm(), KeyAlgorithm::Hpke(_)));
    match KeyContext::import(KeyAlgorithm::Aead(AeadAlgorithm::Aes256Gcm), KeyFormat::Raw, &[1; 7]) {
        Err(crypto::CryptoError::InvalidKey(why)) => println!("short-key: {why}"),
        other => panic!("a 7-byte AES key answered {:?}", other.map(|_| ())),
    }
    // An input the kernel heap cannot afford is refused, not a kernel out-of-memory.
    let huge = vec![0u8; 24 << 20];
    match crypto::aead_encrypt(&aead, &nonce, b"", &huge) {
        Err(crypto::CryptoError::LimitExceeded(why)) => println!("huge-aead: {why}"),
        other => panic!("a 24 MiB plaintext answered {:?}", other.map(|c| c.len())),
    }
    drop(huge);
    println!("hal_crypto ok");
}
