//! Known-answer tests of the provider against published vectors (each cites its source),
//! record-layer vectors cross-checked with OpenSSL, and in-process rustls handshakes that
//! use only this provider, for every suite and group it offers.

use super::*;
use rustls::crypto::hmac::Hmac as _;
use rustls::crypto::tls12::Prf as _;
use rustls::crypto::tls13::Hkdf as _;
use rustls::crypto::{GetRandomFailed, SecureRandom};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, ClientConnection, ConnectionCommon, RootCertStore, ServerConfig, ServerConnection, SupportedProtocolVersion};
use std::io::{Read, Write};
use std::ops::DerefMut;
use std::sync::atomic::{AtomicU64, Ordering};

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.chunks(2).map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap()).collect()
}

/// A source that hands out fixed bytes: the private keys of the key-exchange vectors.
#[derive(Debug)]
struct Fixed(&'static str);

impl SecureRandom for Fixed {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        let bytes = hex(self.0);
        if bytes.len() != buf.len() {
            return Err(GetRandomFailed);
        }
        buf.copy_from_slice(&bytes);
        Ok(())
    }
}

/// Distinct test bytes (SHA-256 of a counter): deterministic, never repeating in a run.
#[derive(Debug)]
struct Counter;

impl SecureRandom for Counter {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        use sha2::Digest;
        static NEXT: AtomicU64 = AtomicU64::new(1);
        for chunk in buf.chunks_mut(32) {
            let block = sha2::Sha256::digest(NEXT.fetch_add(1, Ordering::Relaxed).to_le_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

static CRYPTO: TlsCrypto = TlsCrypto::new(&Counter);

// ---- AEADs ------------------------------------------------------------------------------

/// Seals and opens one vector through the provider's `Cipher`, and refuses it tampered.
fn check_aead(kind: AeadKind, key: &str, nonce: &str, aad: &str, plain: &[u8], cipher: &str, tag: &str) {
    let sealer = kind.cipher(&hex(key));
    let nonce: [u8; NONCE_LEN] = hex(nonce).try_into().unwrap();
    let mut buffer = plain.to_vec();
    let got = sealer.seal(&nonce, &hex(aad), &mut buffer).unwrap();
    assert_eq!(buffer, hex(cipher));
    assert_eq!(got.to_vec(), hex(tag));
    sealer.open(&nonce, &hex(aad), &mut buffer, &got).unwrap();
    assert_eq!(buffer, plain);

    let mut bad_tag = got;
    bad_tag[0] ^= 1;
    let mut buffer = hex(cipher);
    assert!(matches!(sealer.open(&nonce, &hex(aad), &mut buffer, &bad_tag), Err(Error::DecryptError)));
}

#[test]
fn aes_128_gcm_nist_cavp() {
    // NIST CAVP, gcmEncryptExtIV128.rsp ([Keylen = 128] [IVlen = 96] [PTlen = 128]
    // [AADlen = 128] [Taglen = 128], Count = 0).
    check_aead(
        AeadKind::Aes128Gcm,
        "c939cc13397c1d37de6ae0e1cb7c423c",
        "b3d8cc017cbb89b39e0f67e2",
        "24825602bd12a984e0092d3e448eda5f",
        &hex("c3b3c41f113a31b73d9a5cd432103069"),
        "93fe7d9e9bfd10348a5606e5cafa7354",
        "0032a1dc85f1c9786925a2e71d8272dd",
    );
}

#[test]
fn aes_256_gcm_nist_cavp() {
    // NIST CAVP, gcmEncryptExtIV256.rsp ([Keylen = 256] [IVlen = 96] [PTlen = 128]
    // [AADlen = 128] [Taglen = 128], Count = 0).
    check_aead(
        AeadKind::Aes256Gcm,
        "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
        "ac93a1a6145299bde902f21a",
        "1e0889016f67601c8ebea4943bc23ad6",
        &hex("2d71bcfa914e4ac045b2aa60955fad24"),
        "8995ae2e6df3dbf96fac7b7137bae67f",
        "eca5aa77d51d4a0a14d9c51e1da474ab",
    );
}

#[test]
fn chacha20_poly1305_rfc8439() {
    // RFC 8439 §2.8.2 (AEAD_CHACHA20_POLY1305 example).
    check_aead(
        AeadKind::ChaCha20Poly1305,
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
        "070000004041424344454647",
        "50515253c0c1c2c3c4c5c6c7",
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116",
        "1ae10b594f09e26a7e902ecbd0600691",
    );
}

// ---- Record layer -----------------------------------------------------------------------

const RECORD_KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
const RECORD_KEY_256: &str = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
const RECORD_IV: &str = "404142434445464748494a4b";
const RECORD_PLAIN: &[u8] = b"Halcyon record layer";
const RECORD_SEQ: u64 = 5;

fn application_data(payload: &[u8]) -> OutboundPlainMessage<'_> {
    OutboundPlainMessage {
        typ: ContentType::ApplicationData,
        version: ProtocolVersion::TLSv1_2,
        payload: rustls::crypto::cipher::OutboundChunks::Single(payload),
    }
}

/// Encrypts `RECORD_PLAIN` as record `RECORD_SEQ`, compares the whole record, decrypts it
/// back, then checks that a flipped bit anywhere and a short record are `DecryptError`s.
fn check_record(mut encrypter: Box<dyn MessageEncrypter>, mut decrypter: Box<dyn MessageDecrypter>, expected: &str) {
    let record = encrypter.encrypt(application_data(RECORD_PLAIN), RECORD_SEQ).unwrap().encode();
    assert_eq!(record, hex(expected));

    let mut payload = record[5..].to_vec();
    let plain = decrypter.decrypt(InboundOpaqueMessage::new(ContentType::ApplicationData, ProtocolVersion::TLSv1_2, &mut payload), RECORD_SEQ).unwrap();
    assert_eq!(plain.typ, ContentType::ApplicationData);
    assert_eq!(plain.payload, RECORD_PLAIN);

    for at in [0, record.len() - 6 - TAG_LEN, record.len() - 6] {
        let mut tampered = record[5..].to_vec();
        tampered[at] ^= 0x01;
        let result = decrypter.decrypt(InboundOpaqueMessage::new(ContentType::ApplicationData, ProtocolVersion::TLSv1_2, &mut tampered), RECORD_SEQ);
        assert!(matches!(result, Err(Error::DecryptError)), "flipped byte {at}");
    }
    // The right bytes under another sequence number (a replayed or reordered record).
    let mut replayed = record[5..].to_vec();
    let result = decrypter.decrypt(InboundOpaqueMessage::new(ContentType::ApplicationData, ProtocolVersion::TLSv1_2, &mut replayed), RECORD_SEQ + 1);
    assert!(matches!(result, Err(Error::DecryptError)));
    let mut short = [0u8; TAG_LEN - 1];
    let result = decrypter.decrypt(InboundOpaqueMessage::new(ContentType::ApplicationData, ProtocolVersion::TLSv1_2, &mut short), 0);
    assert!(matches!(result, Err(Error::DecryptError)));
}

fn tls13_record(kind: AeadKind, key: &str) -> Box<Tls13Record> {
    let iv: [u8; NONCE_LEN] = hex(RECORD_IV).try_into().unwrap();
    Box::new(Tls13Record { cipher: kind.cipher(&hex(key)), iv: Iv::new(iv) })
}

// The expected records below were computed with OpenSSL 3 (through python-cryptography's
// AESGCM and ChaCha20Poly1305) from the constructions of RFC 8446 §5.2-5.3 (TLS 1.3:
// nonce = iv XOR seq, AAD = the record header, inner plaintext = data || content type),
// RFC 5288 §3 with RFC 5246 §6.2.3.3 (TLS 1.2 GCM: nonce = 4-byte salt || 8-byte explicit
// part sent before the ciphertext, AAD = seq || type || version || length) and RFC 7905
// §2 (TLS 1.2 ChaCha20-Poly1305: nonce = 12-byte iv XOR seq): key RECORD_KEY_*, iv (or
// salt || explicit) RECORD_IV, sequence number 5, plaintext "Halcyon record layer".

#[test]
fn tls13_records_match_openssl() {
    for (kind, key, expected) in [
        (AeadKind::Aes128Gcm, RECORD_KEY_128, "17030300252ac4181aaab3883f6d10639eb6db41e62fcd73b3c1f43ad367c6708ce523d3f32c8964359f"),
        (AeadKind::Aes256Gcm, RECORD_KEY_256, "1703030025fd4adc3ee34c7ce9282c1733507143cf396b99d5f21a99673892dd550dbea9775c8be49e66"),
        (AeadKind::ChaCha20Poly1305, RECORD_KEY_256, "1703030025775d604f62a0a930d9438f7f963b51d5e4877f39b83a9247f4d6b1568247808e8e4ccbcc4e"),
    ] {
        check_record(tls13_record(kind, key), tls13_record(kind, key), expected);
    }
}

#[test]
fn tls13_record_without_content_type_is_refused() {
    // An all-zero inner plaintext has no content type (RFC 8446 §5.4): rustls reports it.
    let mut encrypter = tls13_record(AeadKind::Aes128Gcm, RECORD_KEY_128);
    let record = encrypter.encrypt(application_data(b"x"), 0).unwrap().encode();
    let mut payload = record[5..].to_vec();
    // Re-seal an inner plaintext of only padding with the same key and nonce.
    let cipher = AeadKind::Aes128Gcm.cipher(&hex(RECORD_KEY_128));
    let nonce = Nonce::new(&Iv::new(hex(RECORD_IV).try_into().unwrap()), 0).0;
    let mut body = [0u8; 2];
    let tag = cipher.seal(&nonce, &make_tls13_aad(payload.len()), &mut body).unwrap();
    payload[..2].copy_from_slice(&body);
    payload[2..].copy_from_slice(&tag);
    let mut decrypter = tls13_record(AeadKind::Aes128Gcm, RECORD_KEY_128);
    let result = decrypter.decrypt(InboundOpaqueMessage::new(ContentType::ApplicationData, ProtocolVersion::TLSv1_2, &mut payload), 0);
    assert!(matches!(result, Err(Error::PeerMisbehaved(rustls::PeerMisbehaved::IllegalTlsInnerPlaintext))), "{result:?}");
}

#[test]
fn tls12_records_match_openssl() {
    let iv = hex(RECORD_IV);
    for (kind, key, expected) in [
        (AeadKind::Aes128Gcm, RECORD_KEY_128, "170303002c4445464748494a4e2ac4181aaab3883f6d10639eb6db41e62fcd73b35b7fc85f376a47bbf536a6fcc16e01e5"),
        (AeadKind::Aes256Gcm, RECORD_KEY_256, "170303002c4445464748494a4efd4adc3ee34c7ce9282c1733507143cf396b99d55a443f984c15ce6aa0c769dfd8707ff6"),
        (AeadKind::ChaCha20Poly1305, RECORD_KEY_256, "1703030024775d604f62a0a930d9438f7f963b51d5e4877f397078a9423456fe31834e914f95d7186b"),
    ] {
        let aead = Tls12Aead(kind);
        let shape = aead.key_block_shape();
        let (fixed, explicit) = iv.split_at(shape.fixed_iv_len);
        let encrypter = Box::new(aead.record(&hex(key), fixed, explicit));
        let decrypter = Box::new(aead.record(&hex(key), fixed, &[]));
        check_record(encrypter, decrypter, expected);
    }
}

#[test]
fn tls12_gcm_record_shorter_than_its_explicit_nonce_and_tag_is_refused() {
    let aead = Tls12Aead(AeadKind::Aes256Gcm);
    let mut decrypter = aead.record(&hex(RECORD_KEY_256), &hex("40414243"), &[]);
    let mut payload = [0u8; GCM_EXPLICIT_LEN + TAG_LEN - 1];
    let result = decrypter.decrypt(InboundOpaqueMessage::new(ContentType::ApplicationData, ProtocolVersion::TLSv1_2, &mut payload), 0);
    assert!(matches!(result, Err(Error::DecryptError)));
}

// ---- Key exchange -----------------------------------------------------------------------

/// Starts `group` with our private key drawn from `Fixed`, checks our public share, and
/// completes with the peer's share.
fn check_exchange(group: &dyn SupportedKxGroup, our_public: &str, peer_public: &str, shared: &str) {
    let exchange = group.start().unwrap();
    assert_eq!(exchange.pub_key(), hex(our_public));
    assert_eq!(exchange.group(), group.name());
    let secret = exchange.complete(&hex(peer_public)).unwrap();
    assert_eq!(secret.secret_bytes(), hex(shared));
}

#[test]
fn x25519_rfc7748() {
    // RFC 7748 §6.1: Alice's private key, Alice's and Bob's public keys, the shared secret.
    static ALICE: Fixed = Fixed("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    check_exchange(
        &X25519Group(&ALICE),
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
    );
    // A low-order peer point gives an all-zero secret (RFC 7748 §6.1, RFC 8446 §7.4.2).
    let exchange = X25519Group(&ALICE).start().unwrap();
    assert!(exchange.complete(&[0u8; 32]).is_err());
    let exchange = X25519Group(&ALICE).start().unwrap();
    assert!(exchange.complete(&[9u8; 31]).is_err());
}

#[test]
fn secp256r1_rfc5903() {
    // RFC 5903 §8.1 (256-bit random ECP group): i, g^i = 04 || gix || giy, g^r, and the
    // x-coordinate of g^ir.
    static INITIATOR: Fixed = Fixed("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433");
    check_exchange(
        &P256Group(&INITIATOR),
        "04 DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180
            5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
        "04 D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63
            56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
        "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE",
    );
}

#[test]
fn secp384r1_rfc5903() {
    // RFC 5903 §8.2 (384-bit random ECP group).
    static INITIATOR: Fixed = Fixed("099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655E35B538041E649EE3FAEF896783AB194");
    check_exchange(
        &P384Group(&INITIATOR),
        "04 667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6DE3AC808ACB4BDB4C88732AEE95F41AA
            9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C",
        "04 E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D0D1AC43A0336DEF96FDA41D0774A3571
            DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FFF83FA40142209DFF5EAAD96DB9E6386C",
        "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4D603135569B9E9D09CF5D4A270F59746",
    );
}

#[test]
fn nist_groups_refuse_compressed_invalid_and_off_curve_shares() {
    static INITIATOR: Fixed = Fixed("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433");
    let valid = hex("04D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF6356FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB");
    let mut compressed = vec![0x02 | (valid[64] & 1)];
    compressed.extend_from_slice(&valid[1..33]);
    let mut off_curve = valid.clone();
    off_curve[64] ^= 1;
    for share in [compressed, off_curve, valid[..40].to_vec(), vec![], vec![4u8; 65]] {
        let exchange = P256Group(&INITIATOR).start().unwrap();
        assert!(exchange.complete(&share).is_err(), "{share:02x?}");
    }
}

// ---- HKDF and the TLS 1.2 PRF -----------------------------------------------------------

#[test]
fn hkdf_sha256_rfc5869() {
    // RFC 5869 Appendix A.1 (Test Case 1).
    let ikm = [0x0bu8; 22];
    let salt = hex("000102030405060708090a0b0c");
    let info = hex("f0f1f2f3f4f5f6f7f8f9");
    let okm = hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    let prk = hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");

    let expander = HKDF_SHA256.extract_from_secret(Some(&salt), &ikm);
    let mut out = [0u8; 42];
    expander.expand_slice(&[&info], &mut out).unwrap();
    assert_eq!(out.to_vec(), okm);
    // Expanding from the published PRK gives the same OKM.
    let expander = HKDF_SHA256.expander_for_okm(&rustls::crypto::tls13::OkmBlock::new(&prk));
    let mut out = [0u8; 42];
    expander.expand_slice(&[&info], &mut out).unwrap();
    assert_eq!(out.to_vec(), okm);
    // HKDF-Expand stops at 255 hash lengths (RFC 5869 §2.3).
    let mut too_long = vec![0u8; 255 * 32 + 1];
    assert!(expander.expand_slice(&[&info], &mut too_long).is_err());
}

#[test]
fn hmac_sha384_rfc4231() {
    // RFC 4231 §4.2 (Test Case 1), HMAC-SHA-384.
    let key = HMAC_SHA384.with_key(&[0x0b; 20]);
    let tag = key.sign(&[b"Hi There"]);
    assert_eq!(
        tag.as_ref(),
        hex("afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6")
    );
}

#[test]
fn tls12_prf_sha256_and_sha384() {
    // The TLS 1.2 PRF vectors posted to the IETF TLS list
    // (https://mailarchive.ietf.org/arch/msg/tls/fzVCzk-z3FShgGJ6DOXqM1ydxms/): secret, seed,
    // label "test label", the first 100 (SHA-256) and 148 (SHA-384) output bytes.
    let mut out = [0u8; 100];
    PRF_SHA256.for_secret(&mut out, &hex("9bbe436ba940f017b17652849a71db35"), b"test label", &hex("a0ba9f936cda311827a6f796ffd5198c"));
    assert_eq!(
        out.to_vec(),
        hex("e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66")
    );
    let mut out = [0u8; 148];
    PRF_SHA384.for_secret(&mut out, &hex("b80b733d6ceefcdc71566ea48e5567df"), b"test label", &hex("cd665cf6a8447dd6ff8b27555edb7465"));
    assert_eq!(
        out.to_vec(),
        hex("7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d9184259b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e0990703d73e56f")
    );
}

// ---- Signatures -------------------------------------------------------------------------

/// Accepts `signature` and refuses it with the message, the signature or the key altered.
fn check_signature(algorithm: &dyn SignatureVerificationAlgorithm, key: &[u8], message: &[u8], signature: &[u8]) {
    algorithm.verify_signature(key, message, signature).unwrap();
    let mut other_message = message.to_vec();
    other_message.push(b'!');
    assert!(algorithm.verify_signature(key, &other_message, signature).is_err());
    let mut tampered = signature.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert!(algorithm.verify_signature(key, message, &tampered).is_err());
    assert!(algorithm.verify_signature(key, message, &signature[..signature.len() - 1]).is_err());
    let mut other_key = key.to_vec();
    other_key[key.len() / 2] ^= 0x01;
    assert!(algorithm.verify_signature(&other_key, message, signature).is_err());
    assert!(algorithm.verify_signature(&[], message, signature).is_err());
}

#[test]
fn ed25519_rfc8032() {
    // RFC 8032 §7.1, TEST 1 (empty message).
    check_signature(
        &ED25519,
        &hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
        b"",
        &hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    );
}

#[test]
fn ecdsa_p256_sha256_rfc6979() {
    // RFC 6979 §A.2.5 (ECDSA, 256 bits (prime field)): public key U = (Ux, Uy), message
    // "sample" with SHA-256, signature (r, s), DER-encoded as TLS carries it.
    let key = hex(
        "04 60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6
            7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299",
    );
    let signature = hex(
        "3046 022100EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716
              022100F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
    );
    check_signature(&ECDSA_P256_SHA256, &key, b"sample", &signature);
    // The same signature under SHA-384 or as a P-384 key is refused.
    assert!(ECDSA_P256_SHA384.verify_signature(&key, b"sample", &signature).is_err());
    assert!(ECDSA_P384_SHA256.verify_signature(&key, b"sample", &signature).is_err());
}

#[test]
fn rsa_pkcs1_and_pss_signatures_from_openssl() {
    // testdata/make.sh: `openssl dgst -sha{256,384,512} -sign rsa.key` (PKCS#1 v1.5) and
    // with `-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest` over `message`.
    let key = include_bytes!("testdata/rsa.pub.der");
    let message = include_bytes!("testdata/message");
    let cases: [(&dyn SignatureVerificationAlgorithm, &[u8]); 6] = [
        (&RSA_PKCS1_SHA256, include_bytes!("testdata/rsa-pkcs1-sha256.sig")),
        (&RSA_PKCS1_SHA384, include_bytes!("testdata/rsa-pkcs1-sha384.sig")),
        (&RSA_PKCS1_SHA512, include_bytes!("testdata/rsa-pkcs1-sha512.sig")),
        (&RSA_PSS_SHA256, include_bytes!("testdata/rsa-pss-sha256.sig")),
        (&RSA_PSS_SHA384, include_bytes!("testdata/rsa-pss-sha384.sig")),
        (&RSA_PSS_SHA512, include_bytes!("testdata/rsa-pss-sha512.sig")),
    ];
    for (algorithm, signature) in cases {
        check_signature(algorithm, key, message, signature);
    }
    // A PKCS#1 v1.5 signature is not a PSS one, nor one over another hash.
    assert!(RSA_PSS_SHA256.verify_signature(key, message, cases[0].1).is_err());
    assert!(RSA_PKCS1_SHA384.verify_signature(key, message, cases[0].1).is_err());
}

#[test]
fn own_keys_sign_what_the_verifiers_accept() {
    for pem in [&include_bytes!("testdata/p256.key")[..], include_bytes!("testdata/p384.key"), include_bytes!("testdata/ed25519.key")] {
        let der = PrivateKeyDer::from_pem_slice(pem).unwrap();
        let key = PrivateKey::from_der(&der).unwrap();
        let spki = key.public_key_der().unwrap();
        // The key bits are the last bytes of the SubjectPublicKeyInfo (uncompressed point
        // or Ed25519 key) for these small keys.
        let (verifier, point_len): (&dyn SignatureVerificationAlgorithm, usize) = match key {
            PrivateKey::P256(_) => (&ECDSA_P256_SHA256, 65),
            PrivateKey::P384(_) => (&ECDSA_P384_SHA384, 97),
            PrivateKey::Ed25519(_) => (&ED25519, 32),
        };
        let public = &spki[spki.len() - point_len..];
        check_signature(verifier, public, b"signed in the kernel", &key.sign(b"signed in the kernel"));
    }
    // RSA keys are not ours to sign with; garbage is no key.
    assert!(PrivateKey::from_der(&PrivateKeyDer::from_pem_slice(include_bytes!("testdata/rsa.key")).unwrap()).is_none());
    assert!(Keys.load_private_key(PrivateKeyDer::Pkcs8(vec![0x30, 0x03, 0x02, 0x01, 0x00].into())).is_err());
}

// ---- In-process handshakes --------------------------------------------------------------

fn chain(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().unwrap()
}

fn roots() -> RootCertStore {
    let mut store = RootCertStore::empty();
    store.add(chain(include_bytes!("testdata/ca.pem")).remove(0)).unwrap();
    store
}

/// A test-only RSA signer (PKCS#1 v1.5 SHA-256) for the TLS 1.2 ECDHE_RSA suites: the
/// provider verifies RSA but the kernel's own keys are ECDSA or Ed25519.
#[derive(Debug)]
struct TestRsaKey(rsa::PrivateKey);

impl SigningKey for TestRsaKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered.contains(&SignatureScheme::RSA_PKCS1_SHA256).then(|| Box::new(TestRsaSigner(self.0.clone())) as Box<dyn Signer>)
    }
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

#[derive(Debug)]
struct TestRsaSigner(rsa::PrivateKey);

impl Signer for TestRsaSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        use rsa::signature::{SignatureEncoding, Signer as _};
        let key = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(self.0.clone());
        Ok(key.try_sign(message).map_err(|e| Error::General(format!("{e}")))?.to_vec())
    }
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::RSA_PKCS1_SHA256
    }
}

/// The server's certificate and key: P-256, P-384 or Ed25519 through the provider's key
/// loading, RSA through the test signer.
fn server_key(name: &str) -> Arc<CertifiedKey> {
    let (pem, key): (&[u8], &[u8]) = match name {
        "p256" => (include_bytes!("testdata/p256.pem"), include_bytes!("testdata/p256.key")),
        "p384" => (include_bytes!("testdata/p384.pem"), include_bytes!("testdata/p384.key")),
        "ed25519" => (include_bytes!("testdata/ed25519.pem"), include_bytes!("testdata/ed25519.key")),
        "rsa" => (include_bytes!("testdata/rsa.pem"), include_bytes!("testdata/rsa.key")),
        _ => unreachable!(),
    };
    let der = PrivateKeyDer::from_pem_slice(key).unwrap();
    let signing: Arc<dyn SigningKey> = if name == "rsa" {
        use pkcs8::DecodePrivateKey;
        Arc::new(TestRsaKey(rsa::PrivateKey::from_pkcs8_der(der.secret_der()).unwrap()))
    } else {
        Keys.load_private_key(der).unwrap()
    };
    Arc::new(CertifiedKey::new(chain(pem), signing))
}

/// The provider restricted to one suite and one group.
fn only(suite: SupportedCipherSuite, group: NamedGroup) -> Arc<CryptoProvider> {
    let mut provider = CRYPTO.provider();
    provider.cipher_suites.retain(|s| s.suite() == suite.suite());
    provider.kx_groups.retain(|g| g.name() == group);
    Arc::new(provider)
}

fn version_of(suite: SupportedCipherSuite) -> &'static SupportedProtocolVersion {
    match suite {
        SupportedCipherSuite::Tls13(_) => &rustls::version::TLS13,
        SupportedCipherSuite::Tls12(_) => &rustls::version::TLS12,
    }
}

/// Moves everything `from` has to send into `to`, optionally altering the bytes on the
/// way; `to`'s processing result is returned.
fn transfer<A, B, DA, DB>(from: &mut A, to: &mut B, alter: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error>
where
    A: DerefMut<Target = ConnectionCommon<DA>>,
    B: DerefMut<Target = ConnectionCommon<DB>>,
{
    let mut wire = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut wire).unwrap();
    }
    alter(&mut wire);
    let mut input = &wire[..];
    while !input.is_empty() {
        to.read_tls(&mut input).unwrap();
        to.process_new_packets()?;
    }
    Ok(())
}

fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), Error> {
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
        transfer(client, server, |_| {})?;
        transfer(server, client, |_| {})?;
    }
    panic!("handshake did not finish in 10 flights");
}

fn connect(suite: SupportedCipherSuite, group: NamedGroup, key: &str, client_auth: bool) -> (ClientConnection, ServerConnection) {
    let provider = only(suite, group);
    let versions = [version_of(suite)];
    let server = ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions).unwrap();
    let server = if client_auth {
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots()), provider.clone()).build().unwrap();
        server.with_client_cert_verifier(verifier)
    } else {
        server.with_no_client_auth()
    };
    let server = server.with_cert_resolver(Arc::new(SingleCertAndKey::from(server_key(key))));
    let client = ClientConfig::builder_with_provider(provider).with_protocol_versions(&versions).unwrap().with_root_certificates(roots());
    let client = if client_auth {
        client.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(server_key("p256"))))
    } else {
        client.with_no_client_auth()
    };
    let mut client = ClientConnection::new(Arc::new(client), "localhost".try_into().unwrap()).unwrap();
    let mut server = ServerConnection::new(Arc::new(server)).unwrap();
    handshake(&mut client, &mut server).unwrap_or_else(|e| panic!("{:?} {group:?} {key}: {e}", suite.suite()));
    (client, server)
}

/// After the handshake, data flows both ways under the negotiated suite and group.
fn exchange_data(client: &mut ClientConnection, server: &mut ServerConnection) {
    client.writer().write_all(b"ping from the client").unwrap();
    transfer(client, server, |_| {}).unwrap();
    let mut got = [0u8; 20];
    server.reader().read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping from the client");
    // Several full records (rustls holds at most 16 KiB of received plaintext at once).
    for round in 0..4u8 {
        let block = vec![round; 16_384];
        server.writer().write_all(&block).unwrap();
        transfer(server, client, |_| {}).unwrap();
        let mut got = vec![0u8; block.len()];
        client.reader().read_exact(&mut got).unwrap();
        assert_eq!(got, block);
    }
}

#[test]
fn handshakes_with_every_suite_and_group() {
    let groups = [NamedGroup::X25519, NamedGroup::secp256r1, NamedGroup::secp384r1];
    let mut count = 0;
    for &suite in ALL_SUITES {
        let key = match suite {
            SupportedCipherSuite::Tls12(s) if s.sign == RSA_SCHEMES => "rsa",
            _ => "p256",
        };
        for group in groups {
            let (mut client, mut server) = connect(suite, group, key, false);
            assert_eq!(client.negotiated_cipher_suite().map(|s| s.suite()), Some(suite.suite()));
            assert_eq!(server.negotiated_key_exchange_group().map(|g| g.name()), Some(group));
            assert_eq!(client.protocol_version(), Some(version_of(suite).version));
            exchange_data(&mut client, &mut server);
            count += 1;
        }
    }
    assert_eq!(count, 27);
}

#[test]
fn handshakes_with_p384_and_ed25519_server_keys_and_mutual_tls() {
    for suite in [ALL_SUITES[0], ALL_SUITES[3]] {
        for key in ["p384", "ed25519"] {
            let (mut client, mut server) = connect(suite, NamedGroup::X25519, key, false);
            exchange_data(&mut client, &mut server);
        }
        let (mut client, mut server) = connect(suite, NamedGroup::secp256r1, "p256", true);
        assert_eq!(server.peer_certificates().map(|c| c.len()), Some(1));
        exchange_data(&mut client, &mut server);
    }
}

#[test]
fn tampered_records_fail_cleanly() {
    for suite in [ALL_SUITES[0], ALL_SUITES[2], ALL_SUITES[3], ALL_SUITES[5]] {
        // A flipped bit in the last byte (the tag) of application data.
        let (mut client, mut server) = connect(suite, NamedGroup::X25519, "p256", false);
        client.writer().write_all(b"attack at dawn").unwrap();
        let result = transfer(&mut client, &mut server, |wire| *wire.last_mut().unwrap() ^= 0x80);
        assert!(matches!(result, Err(Error::DecryptError)), "{:?}: {result:?}", suite.suite());
        // The connection is dead after that, and says so instead of panicking.
        assert!(server.process_new_packets().is_err());

        // A record cut short below its tag: an error too, never a panic.
        let (mut client, mut server) = connect(suite, NamedGroup::X25519, "p256", false);
        client.writer().write_all(b"x").unwrap();
        let result = transfer(&mut client, &mut server, |wire| {
            wire.truncate(5 + 4);
            wire[3..5].copy_from_slice(&4u16.to_be_bytes());
        });
        assert!(result.is_err(), "{:?}", suite.suite());
    }
}

#[test]
fn tampered_handshake_signature_fails_the_handshake() {
    // The server signs with another P-256 key than its certificate's: its CertificateVerify
    // (TLS 1.3) or ServerKeyExchange (TLS 1.2) signature does not verify.
    for suite in [ALL_SUITES[0], ALL_SUITES[3]] {
        let provider = only(suite, NamedGroup::X25519);
        let versions = [version_of(suite)];
        let other_p256 = Keys.load_private_key(PrivateKeyDer::from_pem_slice(include_bytes!("testdata/ca.key")).unwrap()).unwrap();
        let wrong = CertifiedKey::new(chain(include_bytes!("testdata/p256.pem")), other_p256);
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(wrong)));
        let client = ClientConfig::builder_with_provider(provider).with_protocol_versions(&versions).unwrap().with_root_certificates(roots()).with_no_client_auth();
        let mut client = ClientConnection::new(Arc::new(client), "localhost".try_into().unwrap()).unwrap();
        let mut server = ServerConnection::new(Arc::new(server)).unwrap();
        let error = handshake(&mut client, &mut server).unwrap_err();
        assert_eq!(error, Error::InvalidCertificate(rustls::CertificateError::BadSignature), "{:?}", suite.suite());
    }
}

#[test]
fn wrong_name_and_unknown_issuer_are_certificate_errors() {
    let suite = ALL_SUITES[0];
    let provider = only(suite, NamedGroup::X25519);
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(server_key("p256"))));
    let server = Arc::new(server);
    // Another name than the certificate's SAN.
    let client = ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(&[&rustls::version::TLS13]).unwrap().with_root_certificates(roots()).with_no_client_auth();
    let mut client = ClientConnection::new(Arc::new(client), "example.com".try_into().unwrap()).unwrap();
    let mut server_conn = ServerConnection::new(server.clone()).unwrap();
    assert!(matches!(handshake(&mut client, &mut server_conn), Err(Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. }))));
    // A root store without our CA.
    let mut other = RootCertStore::empty();
    other.add(chain(include_bytes!("testdata/p256.pem")).remove(0)).unwrap();
    let client = ClientConfig::builder_with_provider(provider).with_protocol_versions(&[&rustls::version::TLS13]).unwrap().with_root_certificates(other).with_no_client_auth();
    let mut client = ClientConnection::new(Arc::new(client), "localhost".try_into().unwrap()).unwrap();
    let mut server_conn = ServerConnection::new(server).unwrap();
    assert!(matches!(handshake(&mut client, &mut server_conn), Err(Error::InvalidCertificate(_))));
}
