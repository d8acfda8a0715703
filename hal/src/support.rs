//! Which HAL functions this runtime supports: the data behind the `capabilities`
//! interface. It names every function of the WIT package `elastic:hal` (a test in
//! `tests/tests/wit.rs` checks the list against `wit/`), so a workload can ask about any
//! of them and the answer is never a guess.
//!
//! Function names follow the WIT, with resource functions written `resource.method`
//! (the constructor is the resource's name, static functions `resource.function`).

use crate::platform::TeeKind;

/// Version of the WIT package this runtime implements.
pub const HAL_VERSION: &str = "0.1.0";

/// What decides whether a function works on this boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Works everywhere.
    Implemented,
    /// Needs the hardware entropy source (RDSEED/RDRAND).
    NeedsEntropy,
    /// Needs a wall clock (the RTC).
    NeedsWallClock,
    /// Needs the VM's network card (`halcyon run --tcplisten` or `-S inherit-network`).
    NeedsNetwork,
    /// Needs a device this image has no driver for.
    NoDevice(&'static str),
    /// Needs hardware-signed evidence: an SEV-SNP report or a TDREPORT (and a quote where the
    /// host offers GetQuote), when the kernel drives the platform's hardware root.
    NeedsEvidence,
    /// Needs a hardware sealing key: SEV-SNP's MSG_KEY_REQ; TDX has none (see
    /// `tdx::platform::NO_SEALING`).
    NeedsSealingKey,
    /// Part of the contract, not implemented by Halcyon yet.
    NotImplemented,
    /// Deliberately not offered, for the reason given (see docs/TLS.md).
    Unsupported(&'static str),
}

/// Runtime facts the availability depends on.
#[derive(Clone, Copy, Debug)]
pub struct PlatformFacts {
    pub tee: TeeKind,
    pub entropy: bool,
    pub wall_clock: bool,
    pub network: bool,
    /// Whether the kernel drives this TEE's hardware root of trust (attestation evidence and
    /// sealing keys through its `Platform`), rather than the stand-in that answers `unsupported`.
    pub hardware_root: bool,
}

/// The answer for one function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionSupport {
    pub interface: &'static str,
    pub function: &'static str,
    pub supported: bool,
    pub hardware_backed: bool,
    pub note: &'static str,
}

use Availability::*;

const NO_GPU: Availability = NoDevice("no GPU device or driver in this image");
/// rustls has no DTLS, and no maintained no_std DTLS 1.2 implementation fits the kernel.
const NO_DTLS: &str = "DTLS unsupported: rustls has none and no maintained no_std DTLS 1.2 implementation fits (docs/TLS.md)";


/// Every function of `elastic:hal@0.1.0`, by interface.
pub const FUNCTIONS: &[(&str, &[(&str, Availability)])] = &[
    ("capabilities", &[("get-platform", Implemented), ("list-support", Implemented), ("is-supported", Implemented), ("get-limits", Implemented)]),
    ("clock", &[
        ("now", NeedsWallClock), ("resolution", Implemented), ("timezone", Implemented), ("monotonic-now", Implemented),
        ("stopwatch", Implemented), ("stopwatch.start", Implemented), ("stopwatch.stop", Implemented),
        ("stopwatch.elapsed", Implemented), ("stopwatch.is-running", Implemented), ("stopwatch.reset", Implemented),
    ]),
    ("random", &[("max-request", Implemented), ("get-random-bytes", NeedsEntropy), ("get-random-u64", NeedsEntropy)]),
    ("crypto", &[
        ("key-context.import", Implemented), ("key-context.generate", NeedsEntropy), ("key-context.algorithm", Implemented),
        ("key-context.public-key", Implemented), ("hash", Implemented), ("hasher", Implemented),
        ("hasher.update", Implemented), ("hasher.finish", Implemented), ("mac-compute", Implemented),
        ("mac-verify", Implemented), ("aead-encrypt", Implemented), ("aead-decrypt", Implemented),
        ("sign", Implemented), ("verify", Implemented), ("hpke-seal", NeedsEntropy), ("hpke-open", Implemented),
    ]),
    ("attestation", &[
        ("runtime-measurements", Implemented), ("supported-evidence", Implemented), ("platform-attestation", NeedsEvidence),
        ("sealing-info", NeedsSealingKey), ("seal", NeedsSealingKey), ("unseal", NeedsSealingKey),
    ]),
    ("storage", &[
        ("container.open", NotImplemented), ("container.name", NotImplemented), ("container.set-key", NotImplemented),
        ("container.read", NotImplemented), ("container.write", NotImplemented), ("container.delete", NotImplemented),
        ("container.list-objects", NotImplemented), ("container.metadata", NotImplemented),
        ("list-containers", NotImplemented), ("delete-container", NotImplemented),
    ]),
    ("sockets", &[
        ("tcp-socket.connect", NeedsNetwork), ("tcp-socket.listen", NeedsNetwork), ("tcp-socket.accept", NeedsNetwork),
        ("tcp-socket.send", NeedsNetwork), ("tcp-socket.receive", NeedsNetwork), ("tcp-socket.shutdown", NeedsNetwork),
        ("tcp-socket.set-blocking", NeedsNetwork), ("tcp-socket.local-address", NeedsNetwork),
        ("tcp-socket.remote-address", NeedsNetwork), ("udp-socket.bind", NeedsNetwork), ("udp-socket.send-to", NeedsNetwork),
        ("udp-socket.receive-from", NeedsNetwork), ("udp-socket.set-blocking", NeedsNetwork),
        ("udp-socket.local-address", NeedsNetwork), ("resolve", NeedsNetwork),
    ]),
    ("tls", &[
        ("key-context.from-pem", Implemented), ("key-context.from-der", Implemented),
        ("key-context.from-pkcs12", Implemented),
        ("key-context.generate-self-signed", NeedsEntropy), ("key-context.certificate-pem", Implemented),
        ("session.connect", NeedsNetwork), ("session.accept", NeedsNetwork), ("session.dtls-connect", Unsupported(NO_DTLS)),
        ("session.dtls-accept", Unsupported(NO_DTLS)), ("session.send", NeedsNetwork), ("session.receive", NeedsNetwork),
        ("session.close", NeedsNetwork), ("session.version", NeedsNetwork), ("session.cipher-suite", NeedsNetwork),
        ("session.peer-certificates", NeedsNetwork),
    ]),
    ("gpu", &[
        ("adapter.request", NO_GPU), ("adapter.info", NO_GPU), ("adapter.set-features", NO_GPU),
        ("adapter.create-device", NO_GPU), ("device.create-compute-pipeline", NO_GPU), ("compute-pipeline.dispatch", NO_GPU),
    ]),
    ("resources", &[("current", Implemented), ("request-memory", Implemented), ("request-fuel", Implemented)]),
    ("events", &[
        ("event-handler", NotImplemented), ("event-handler.uri", NotImplemented), ("event-handler.subscribe", NotImplemented),
        ("event-handler.unsubscribe", NotImplemented), ("event-handler.poll", NotImplemented), ("send", NotImplemented),
    ]),
    ("communication", &[("buffer.open", NotImplemented), ("buffer.push", NotImplemented), ("buffer.read", NotImplemented), ("buffer.peer", NotImplemented)]),
];

fn evaluate(interface: &'static str, function: &'static str, availability: Availability, facts: &PlatformFacts) -> FunctionSupport {
    let (supported, hardware_backed, note) = match availability {
        Implemented => (true, false, ""),
        NeedsEntropy if facts.entropy => (
            true,
            // RDRAND/RDSEED of a plain VM can be intercepted by the hypervisor; inside a
            // TEE they reach the CPU.
            facts.tee.has_hardware_attestation(),
            "ChaCha20 DRBG seeded from the CPU's RDSEED/RDRAND",
        ),
        NeedsEntropy => (false, false, "no hardware entropy source (RDSEED/RDRAND) on this CPU"),
        NeedsWallClock if facts.wall_clock => (true, false, "CMOS RTC read at boot, advanced by the TSC; set by the host"),
        NeedsWallClock => (false, false, "no readable real-time clock"),
        NeedsNetwork if facts.network => (true, false, "virtio-net and smoltcp (IPv4); the host sees the traffic: use TLS"),
        NeedsNetwork => (false, false, "this VM has no network card (halcyon run --tcplisten or -S inherit-network)"),
        NoDevice(why) => (false, false, why),
        NeedsEvidence if facts.hardware_root => (true, true, match facts.tee {
            TeeKind::SevSnp => "AMD SEV-SNP: attestation report from the PSP through the GHCB (MSG_REPORT_REQ)",
            TeeKind::Tdx => "TDREPORT from the TDX module (TDG.MR.REPORT); a quote where the host offers GetQuote",
            _ => "the platform's hardware root of trust",
        }),
        NeedsSealingKey if facts.hardware_root && facts.tee == TeeKind::SevSnp => {
            (true, true, "AMD SEV-SNP: a key the PSP derives from the launch measurement and policy (MSG_KEY_REQ)")
        }
        NeedsEvidence | NeedsSealingKey if facts.tee == TeeKind::None => {
            (false, false, "no hardware root of trust: this is not a confidential VM")
        }
        NeedsSealingKey if facts.tee == TeeKind::Tdx => (false, false, crate::tdx::platform::NO_SEALING),
        NeedsEvidence | NeedsSealingKey => (false, false, "not implemented for this TEE yet"),
        NotImplemented => (false, false, "not implemented by Halcyon yet"),
        Unsupported(why) => (false, false, why),
    };
    FunctionSupport { interface, function, supported, hardware_backed, note }
}

/// The support of every function, given the runtime facts.
pub fn all(facts: PlatformFacts) -> impl Iterator<Item = FunctionSupport> {
    FUNCTIONS.iter().flat_map(move |(interface, functions)| {
        functions.iter().map(move |(function, availability)| evaluate(interface, function, *availability, &facts))
    })
}

/// The support of one function; `None` if the package has no such function.
pub fn lookup(facts: PlatformFacts, interface: &str, function: &str) -> Option<FunctionSupport> {
    all(facts).find(|f| f.interface == interface && f.function == function)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(entropy: bool) -> PlatformFacts {
        PlatformFacts { tee: TeeKind::None, entropy, wall_clock: true, network: false, hardware_root: false }
    }

    #[test]
    fn attestation_follows_the_hardware_root() {
        let plain = lookup(facts(true), "attestation", "platform-attestation").unwrap();
        assert!(!plain.supported && plain.note.contains("not a confidential VM"));
        let snp = PlatformFacts { tee: TeeKind::SevSnp, ..facts(true) };
        let undriven = lookup(snp, "attestation", "seal").unwrap();
        assert!(!undriven.supported && undriven.note.contains("not implemented for this TEE"));
        let driven = PlatformFacts { hardware_root: true, ..snp };
        for function in ["platform-attestation", "sealing-info", "seal", "unseal"] {
            let f = lookup(driven, "attestation", function).unwrap();
            assert!(f.supported && f.hardware_backed && f.note.contains("SEV-SNP"), "{function}");
        }
        assert!(lookup(driven, "random", "get-random-bytes").unwrap().hardware_backed);
    }

    #[test]
    fn entropy_decides_random() {
        assert!(lookup(facts(true), "random", "get-random-bytes").unwrap().supported);
        let without = lookup(facts(false), "random", "get-random-bytes").unwrap();
        assert!(!without.supported);
        assert!(without.note.contains("no hardware entropy"));
        assert!(!lookup(facts(true), "random", "get-random-bytes").unwrap().hardware_backed, "not on a plain VM");
    }

    #[test]
    fn nothing_unimplemented_is_claimed() {
        assert!(lookup(facts(true), "crypto", "sign").unwrap().supported);
        assert!(!lookup(facts(false), "crypto", "key-context.generate").unwrap().supported, "needs entropy");
        assert!(!lookup(facts(true), "storage", "container.open").unwrap().supported);
        assert!(!lookup(facts(true), "gpu", "adapter.request").unwrap().supported);
        assert!(!lookup(facts(true), "sockets", "resolve").unwrap().supported, "no network card");
        let networked = PlatformFacts { network: true, ..facts(true) };
        assert!(lookup(networked, "sockets", "tcp-socket.connect").unwrap().supported);
        assert!(lookup(networked, "tls", "session.accept").unwrap().supported);
        assert!(!lookup(networked, "tls", "session.dtls-connect").unwrap().supported);
        assert!(lookup(networked, "tls", "session.dtls-connect").unwrap().note.contains("DTLS"));
        assert!(!lookup(facts(true), "tls", "session.connect").unwrap().supported, "no network card");
        assert!(lookup(facts(true), "nope", "nope").is_none());
        assert!(!lookup(facts(true), "attestation", "platform-attestation").unwrap().supported, "plain VM");
        // A TD has evidence but no sealing key, and says why.
        let td = PlatformFacts { tee: TeeKind::Tdx, hardware_root: true, ..facts(true) };
        let evidence = lookup(td, "attestation", "platform-attestation").unwrap();
        assert!(evidence.supported && evidence.hardware_backed);
        let seal = lookup(td, "attestation", "seal").unwrap();
        assert!(!seal.supported && seal.note.contains("no hardware sealing key"), "{}", seal.note);
        let snp = PlatformFacts { tee: TeeKind::SevSnp, ..facts(true) };
        assert!(!lookup(snp, "attestation", "platform-attestation").unwrap().supported, "SNP detected, root not driven");
        let names: Vec<_> = all(facts(true)).map(|f| (f.interface, f.function)).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "no function listed twice");
    }
}
