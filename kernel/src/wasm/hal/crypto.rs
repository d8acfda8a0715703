//! `elastic:hal/crypto`: key contexts held by the kernel (`halcyon_hal::crypto`), with
//! the workload holding only handles. Layouts follow the canonical ABI: every result is
//! `result<T, crypto-error>` with the discriminant @0 and the payload @4 (align 4);
//! `crypto-error` is a variant whose case is @4 and whose string (if any) is @8.

use super::abi::{trap, CallerGuest};
use crate::wasm::runner::WorkloadCtx;
use alloc::vec::Vec;
use halcyon_hal::cabi::{lift_bytes, lift_enum, lower_bytes, AbiError, Guest, Writer};
use halcyon_hal::crypto::{
    self, AeadAlgorithm, CryptoError, HashAlgorithm, Hasher, HpkeSuite, Key, KeyAlgorithm, KeyFormat, MacAlgorithm,
    SignatureAlgorithm,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use wasmi::{Caller, Error, Linker};

const MODULE: &str = "elastic:hal/crypto@0.1.0";

/// What a successful call returns, before lowering.
enum Success {
    Unit,
    Handle(u32),
    Bytes(Vec<u8>),
    /// `hpke-sealed { encapsulated-key, ciphertext }`.
    Sealed(Vec<u8>, Vec<u8>),
}

/// `crypto-error` case index and message (cases in WIT order).
fn error_case(error: &CryptoError) -> (u8, Option<&'static str>) {
    match error {
        CryptoError::Unsupported(why) => (0, Some(why)),
        CryptoError::InvalidKey(why) => (1, Some(why)),
        CryptoError::InvalidArgument(why) => (2, Some(why)),
        CryptoError::VerificationFailed => (3, None),
    }
}

const LIMIT_EXCEEDED: u8 = 4;
const TOO_LARGE: &str = "input too large for the VM's free memory";

fn write_result(guest: &mut CallerGuest<'_, '_>, retptr: u32, result: Result<Success, (u8, Option<&str>)>) -> Result<(), AbiError> {
    match result {
        Ok(success) => {
            let size = if matches!(success, Success::Sealed(..)) { 20 } else { 16 };
            let lowered = match &success {
                Success::Bytes(b) => Some((lower_bytes(guest, b)?, None)),
                Success::Sealed(enc, ct) => Some((lower_bytes(guest, enc)?, Some(lower_bytes(guest, ct)?))),
                _ => None,
            };
            let mut out = Writer::aligned(guest.memory(), retptr, size, 4)?;
            out.u8(0, 0)?;
            match (success, lowered) {
                (Success::Handle(h), _) => out.u32(4, h),
                (_, Some((first, None))) => out.list(4, first),
                (_, Some((first, Some(second)))) => {
                    out.list(4, first)?;
                    out.list(12, second)
                }
                _ => Ok(()),
            }
        }
        Err((case, why)) => {
            let why = match why {
                Some(text) => Some(lower_bytes(guest, text.as_bytes())?),
                None => None,
            };
            let mut out = Writer::aligned(guest.memory(), retptr, 16, 4)?;
            out.u8(0, 1)?;
            out.u8(4, case)?;
            match why {
                Some(list) => out.list(8, list),
                None => Ok(()),
            }
        }
    }
}

fn finish(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32, result: Result<Success, CryptoError>) -> Result<(), AbiError> {
    let mut guest = CallerGuest::new(caller)?;
    let result = result.map_err(|e| error_case(&e));
    write_result(&mut guest, retptr, result)
}

fn hash_algorithm(raw: i32) -> Result<HashAlgorithm, AbiError> {
    Ok([HashAlgorithm::Sha256, HashAlgorithm::Sha384, HashAlgorithm::Sha512][lift_enum(raw, 3)? as usize])
}

fn signature_algorithm(raw: i32) -> Result<SignatureAlgorithm, AbiError> {
    Ok([SignatureAlgorithm::Ed25519, SignatureAlgorithm::EcdsaP256Sha256, SignatureAlgorithm::EcdsaP384Sha384][lift_enum(raw, 3)? as usize])
}

fn hpke_suite(raw: i32) -> Result<HpkeSuite, AbiError> {
    Ok([HpkeSuite::X25519Sha256Aes128Gcm, HpkeSuite::X25519Sha256ChaCha20Poly1305][lift_enum(raw, 2)? as usize])
}

/// `key-algorithm`: a variant whose four cases each carry an enum.
fn key_algorithm(case: i32, payload: i32) -> Result<KeyAlgorithm, AbiError> {
    Ok(match lift_enum(case, 4)? {
        0 => KeyAlgorithm::Mac([MacAlgorithm::HmacSha256, MacAlgorithm::HmacSha384, MacAlgorithm::HmacSha512][lift_enum(payload, 3)? as usize]),
        1 => KeyAlgorithm::Aead([AeadAlgorithm::Aes256Gcm, AeadAlgorithm::ChaCha20Poly1305][lift_enum(payload, 2)? as usize]),
        2 => KeyAlgorithm::Signature(signature_algorithm(payload)?),
        _ => KeyAlgorithm::Hpke(hpke_suite(payload)?),
    })
}

fn key_algorithm_repr(algorithm: KeyAlgorithm) -> (u8, u8) {
    match algorithm {
        KeyAlgorithm::Mac(m) => (0, m as u8),
        KeyAlgorithm::Aead(a) => (1, a as u8),
        KeyAlgorithm::Signature(s) => (2, s as u8),
        KeyAlgorithm::Hpke(h) => (3, h as u8),
    }
}

/// A ChaCha20 generator seeded from the kernel DRBG, for key generation and HPKE.
fn kernel_rng() -> Result<ChaCha20Rng, CryptoError> {
    let mut seed = [0u8; 32];
    crate::random::fill(&mut seed).map_err(|_| CryptoError::Unsupported("no hardware entropy source"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

fn store_key(caller: &mut Caller<'_, WorkloadCtx>, retptr: u32, key: Result<Key, CryptoError>) -> Result<(), AbiError> {
    let key = match key {
        Ok(key) => key,
        Err(e) => return finish(caller, retptr, Err(e)),
    };
    match caller.data_mut().hal.keys.insert(key) {
        Ok(handle) => finish(caller, retptr, Ok(Success::Handle(handle))),
        Err(_) => {
            let mut guest = CallerGuest::new(caller)?;
            write_result(&mut guest, retptr, Err((LIMIT_EXCEEDED, Some("too many key contexts"))))
        }
    }
}

/// Runs `f` with the guest memory and the key behind `handle`.
fn with_key<T>(caller: &mut Caller<'_, WorkloadCtx>, handle: u32, f: impl FnOnce(&[u8], &Key) -> Result<T, AbiError>) -> Result<T, AbiError> {
    let mut guest = CallerGuest::new(caller)?;
    let (memory, ctx) = guest.memory_and_ctx();
    let key = ctx.hal.keys.get(handle)?;
    f(memory, key)
}

type C<'a> = Caller<'a, WorkloadCtx>;

pub fn add_to_linker(linker: &mut Linker<WorkloadCtx>) -> Result<(), wasmi::errors::LinkerError> {
    linker.func_wrap(MODULE, "[static]key-context.import", |mut c: C, case: i32, payload: i32, format: i32, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let algorithm = key_algorithm(case, payload)?;
            let format = [KeyFormat::Raw, KeyFormat::Pkcs8Der, KeyFormat::Pkcs8Pem][lift_enum(format, 3)? as usize];
            let mut guest = CallerGuest::new(c)?;
            let key = Key::import(algorithm, format, lift_bytes(guest.memory(), p, l)?);
            store_key(c, ret, key)
        };
        run(&mut c).map_err(|e| trap("crypto.key-context.import", e))
    })?;
    linker.func_wrap(MODULE, "[static]key-context.generate", |mut c: C, case: i32, payload: i32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let algorithm = key_algorithm(case, payload)?;
            let key = kernel_rng().map(|mut rng| Key::generate(algorithm, &mut rng));
            store_key(c, ret, key)
        };
        run(&mut c).map_err(|e| trap("crypto.key-context.generate", e))
    })?;
    linker.func_wrap(MODULE, "[method]key-context.algorithm", |mut c: C, h: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let (case, payload) = key_algorithm_repr(c.data().hal.keys.get(h)?.algorithm());
            let mut guest = CallerGuest::new(c)?;
            let mut out = Writer::aligned(guest.memory(), ret, 2, 1)?;
            out.u8(0, case)?;
            out.u8(1, payload)
        };
        run(&mut c).map_err(|e| trap("crypto.key-context.algorithm", e))
    })?;
    linker.func_wrap(MODULE, "[method]key-context.public-key", |mut c: C, h: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let result = c.data().hal.keys.get(h)?.public_key().map(Success::Bytes);
            finish(c, ret, result)
        };
        run(&mut c).map_err(|e| trap("crypto.key-context.public-key", e))
    })?;
    linker.func_wrap(MODULE, "[resource-drop]key-context", |mut c: C, h: u32| -> Result<(), Error> {
        c.data_mut().hal.keys.remove(h).map(drop).map_err(|e| trap("crypto.key-context drop", e))
    })?;

    linker.func_wrap(MODULE, "hash", |mut c: C, alg: i32, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let algorithm = hash_algorithm(alg)?;
            let mut guest = CallerGuest::new(c)?;
            let digest = crypto::hash(algorithm, lift_bytes(guest.memory(), p, l)?);
            let list = lower_bytes(&mut guest, &digest)?;
            Writer::aligned(guest.memory(), ret, 8, 4)?.list(0, list)
        };
        run(&mut c).map_err(|e| trap("crypto.hash", e))
    })?;
    linker.func_wrap(MODULE, "[constructor]hasher", |mut c: C, alg: i32| -> Result<u32, Error> {
        let run = |c: &mut C| {
            let hasher = Hasher::new(hash_algorithm(alg)?);
            c.data_mut().hal.hashers.insert(hasher)
        };
        run(&mut c).map_err(|e| trap("crypto.hasher", e))
    })?;
    linker.func_wrap(MODULE, "[method]hasher.update", |mut c: C, h: u32, p: u32, l: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let mut guest = CallerGuest::new(c)?;
            let (memory, ctx) = guest.memory_and_ctx();
            let data = lift_bytes(memory, p, l)?;
            ctx.hal.hashers.get_mut(h)?.update(data);
            Ok(())
        };
        run(&mut c).map_err(|e| trap("crypto.hasher.update", e))
    })?;
    linker.func_wrap(MODULE, "[method]hasher.finish", |mut c: C, h: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let digest = c.data_mut().hal.hashers.get_mut(h)?.finish();
            let mut guest = CallerGuest::new(c)?;
            let list = lower_bytes(&mut guest, &digest)?;
            Writer::aligned(guest.memory(), ret, 8, 4)?.list(0, list)
        };
        run(&mut c).map_err(|e| trap("crypto.hasher.finish", e))
    })?;
    linker.func_wrap(MODULE, "[resource-drop]hasher", |mut c: C, h: u32| -> Result<(), Error> {
        c.data_mut().hal.hashers.remove(h).map(drop).map_err(|e| trap("crypto.hasher drop", e))
    })?;

    linker.func_wrap(MODULE, "mac-compute", |mut c: C, h: u32, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let result = with_key(c, h, |m, key| Ok(key.mac(lift_bytes(m, p, l)?).map(Success::Bytes)))?;
            finish(c, ret, result)
        };
        run(&mut c).map_err(|e| trap("crypto.mac-compute", e))
    })?;
    linker.func_wrap(MODULE, "mac-verify", |mut c: C, h: u32, p: u32, l: u32, tp: u32, tl: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let result = with_key(c, h, |m, key| Ok(key.mac_verify(lift_bytes(m, p, l)?, lift_bytes(m, tp, tl)?).map(|()| Success::Unit)))?;
            finish(c, ret, result)
        };
        run(&mut c).map_err(|e| trap("crypto.mac-verify", e))
    })?;
    for (name, encrypt) in [("aead-encrypt", true), ("aead-decrypt", false)] {
        linker.func_wrap(MODULE, name, move |mut c: C, h: u32, np: u32, nl: u32, ap: u32, al: u32, dp: u32, dl: u32, ret: u32| -> Result<(), Error> {
            let run = |c: &mut C| {
                if !super::heap_can_afford(dl as usize) {
                    let mut guest = CallerGuest::new(c)?;
                    return write_result(&mut guest, ret, Err((LIMIT_EXCEEDED, Some(TOO_LARGE))));
                }
                let result = with_key(c, h, |m, key| {
                    let (nonce, aad, data) = (lift_bytes(m, np, nl)?, lift_bytes(m, ap, al)?, lift_bytes(m, dp, dl)?);
                    let out = if encrypt { key.aead_encrypt(nonce, aad, data) } else { key.aead_decrypt(nonce, aad, data) };
                    Ok(out.map(Success::Bytes))
                })?;
                finish(c, ret, result)
            };
            run(&mut c).map_err(|e| trap(if encrypt { "crypto.aead-encrypt" } else { "crypto.aead-decrypt" }, e))
        })?;
    }
    linker.func_wrap(MODULE, "sign", |mut c: C, h: u32, p: u32, l: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let result = with_key(c, h, |m, key| Ok(key.sign(lift_bytes(m, p, l)?).map(Success::Bytes)))?;
            finish(c, ret, result)
        };
        run(&mut c).map_err(|e| trap("crypto.sign", e))
    })?;
    linker.func_wrap(MODULE, "verify", |mut c: C, alg: i32, kp: u32, kl: u32, mp: u32, ml: u32, sp: u32, sl: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let algorithm = signature_algorithm(alg)?;
            let mut guest = CallerGuest::new(c)?;
            let m = guest.memory();
            let result = crypto::verify(algorithm, lift_bytes(m, kp, kl)?, lift_bytes(m, mp, ml)?, lift_bytes(m, sp, sl)?);
            finish(c, ret, result.map(|()| Success::Unit))
        };
        run(&mut c).map_err(|e| trap("crypto.verify", e))
    })?;
    linker.func_wrap(MODULE, "hpke-seal", |mut c: C, suite: i32, kp: u32, kl: u32, ip: u32, il: u32, ap: u32, al: u32, pp: u32, pl: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            let suite = hpke_suite(suite)?;
            let mut guest = CallerGuest::new(c)?;
            if !super::heap_can_afford(pl as usize) {
                return write_result(&mut guest, ret, Err((LIMIT_EXCEEDED, Some(TOO_LARGE))));
            }
            let m = guest.memory();
            let (key, info, aad, plaintext) = (lift_bytes(m, kp, kl)?, lift_bytes(m, ip, il)?, lift_bytes(m, ap, al)?, lift_bytes(m, pp, pl)?);
            let result = kernel_rng()
                .and_then(|mut rng| crypto::hpke_seal(suite, key, info, aad, plaintext, &mut rng))
                .map(|(enc, ct)| Success::Sealed(enc, ct));
            finish(c, ret, result)
        };
        run(&mut c).map_err(|e| trap("crypto.hpke-seal", e))
    })?;
    linker.func_wrap(MODULE, "hpke-open", |mut c: C, h: u32, ip: u32, il: u32, ap: u32, al: u32, ep: u32, el: u32, cp: u32, cl: u32, ret: u32| -> Result<(), Error> {
        let run = |c: &mut C| {
            if !super::heap_can_afford(cl as usize) {
                let mut guest = CallerGuest::new(c)?;
                return write_result(&mut guest, ret, Err((LIMIT_EXCEEDED, Some(TOO_LARGE))));
            }
            let result = with_key(c, h, |m, key| {
                let (info, aad, enc, ct) = (lift_bytes(m, ip, il)?, lift_bytes(m, ap, al)?, lift_bytes(m, ep, el)?, lift_bytes(m, cp, cl)?);
                Ok(key.hpke_open(info, aad, enc, ct).map(Success::Bytes))
            })?;
            finish(c, ret, result)
        };
        run(&mut c).map_err(|e| trap("crypto.hpke-open", e))
    })?;
    Ok(())
}
