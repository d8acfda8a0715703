//! Calls the HAL interfaces Halcyon implements so far through the generated bindings
//! and prints one checkable line per result.
use elastic_hal::{attestation, capabilities, clock, gpu, random, resources};

fn main() {
    let platform = capabilities::get_platform();
    println!("platform={:?} hal-version={} implementation={}", platform.platform, platform.hal_version, platform.implementation);
    let support = capabilities::list_support();
    let supported: Vec<String> =
        support.iter().filter(|f| f.supported).map(|f| format!("{}.{}", f.interface, f.function)).collect();
    println!("supported={}", supported.join(","));
    println!("support-entries={}", support.len());
    println!("is-supported(clock,now)={}", capabilities::is_supported("clock", "now"));
    println!("is-supported(crypto,sign)={}", capabilities::is_supported("crypto", "sign"));
    println!("is-supported(storage,container.open)={}", capabilities::is_supported("storage", "container.open"));
    println!("is-supported(nope,nope)={}", capabilities::is_supported("nope", "nope"));
    let limits = capabilities::get_limits();
    println!("limits memory={} fuel={:?} handles={}", limits.memory_bytes, limits.fuel, limits.max_handles);

    let now = clock::now().expect("wall clock");
    println!("now={}.{:09} resolution={}", now.seconds, now.nanoseconds, clock::resolution());
    let zone = clock::timezone();
    println!("timezone={} offset={}", zone.name, zone.utc_offset_seconds);
    let watch = clock::Stopwatch::new();
    assert!(!watch.is_running());
    assert_eq!(watch.elapsed(), 0);
    watch.start();
    // The 2 ms are counted from after `start`, so however long the host stalls the guest
    // between calls, the stopwatch has run at least that long.
    let t0 = clock::monotonic_now();
    let mut spin = 0u64;
    while clock::monotonic_now() < t0 + 2_000_000 {
        spin += 1;
    }
    watch.stop();
    let first = watch.elapsed();
    assert!(first >= 2_000_000, "stopwatch measured {first} ns");
    assert_eq!(watch.elapsed(), first, "a stopped stopwatch stands still");
    watch.reset();
    assert_eq!(watch.elapsed(), 0);
    println!("stopwatch ok ({first} ns, {spin} spins)");
    drop(watch);

    let a = random::get_random_bytes(32).expect("random bytes");
    let b = random::get_random_bytes(32).expect("random bytes");
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    println!("random={}", a.iter().map(|x| format!("{x:02x}")).collect::<String>());
    match random::get_random_bytes(random::max_request() + 1) {
        Err(random::RandomError::TooLarge(n)) => println!("too-large={n}"),
        other => panic!("oversized request answered {other:?}"),
    }
    println!("u64={}", random::get_random_u64().expect("u64"));

    match gpu::Adapter::request() {
        Err(gpu::GpuError::Unsupported(why)) => println!("gpu unsupported: {why}"),
        Err(other) => panic!("gpu answered {other:?}"),
        Ok(_) => panic!("gpu claims an adapter"),
    }
    // Attestation: the measurement log is real; hardware evidence and sealing are not
    // available on a plain VM, and say so.
    for m in attestation::runtime_measurements() {
        let digest: String = m.digest.iter().map(|x| format!("{x:02x}")).collect();
        println!("measurement kind={} name={} {:?} {digest}", m.kind, m.name, m.algorithm);
    }
    println!("evidence-formats={}", attestation::supported_evidence().len());
    match attestation::platform_attestation(attestation::EvidenceFormat::SevSnpReport, &[7; 64]) {
        Err(attestation::AttestationError::Unsupported(why)) => println!("attestation unsupported: {why}"),
        other => panic!("attestation answered {other:?}"),
    }
    match attestation::platform_attestation(attestation::EvidenceFormat::TdxReport, &[7; 65]) {
        Err(attestation::AttestationError::InvalidArgument(why)) => println!("report-data 65: {why}"),
        other => panic!("oversized report data answered {other:?}"),
    }
    match attestation::seal(attestation::SealBinding::Workload, b"secret") {
        Err(attestation::AttestationError::Unsupported(why)) => println!("seal unsupported: {why}"),
        other => panic!("seal answered {other:?}"),
    }

    // Resources: memory grants come from the kernel's headroom and are enforced.
    let before = resources::current();
    println!("allocation limit={} used={} fuel={:?}", before.memory_limit, before.memory_used, before.fuel_remaining);
    match resources::request_memory(1 << 20) {
        Ok(granted) => {
            assert_eq!(granted, before.memory_limit + (1 << 20));
            assert_eq!(resources::current().memory_limit, granted, "the new limit is in force");
            println!("1 MiB granted: limit={granted}");
        }
        Err(e) => println!("1 MiB refused: {e:?}"),
    }
    match resources::request_memory(1 << 40) {
        Err(resources::ResourceError::Refused(why)) => println!("1 TiB refused: {why}"),
        other => panic!("1 TiB answered {other:?}"),
    }
    match resources::request_fuel(1000) {
        Err(e) => println!("fuel request: {e:?}"),
        Ok(f) => panic!("fuel granted {f}"),
    }
    println!("hal_basics ok");
}
