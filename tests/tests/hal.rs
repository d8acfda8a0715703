//! The HAL imports through real `wit-bindgen` bindings, and the canonical ABI's
//! defences against hostile workloads.
mod common;
use common::*;

/// SHA-256 over the image's read-only segment and then its text segment (file bytes),
/// computed independently of the kernel.
fn kernel_digest() -> String {
    use object::read::elf::{FileHeader, ProgramHeader};
    use sha2::Digest;
    let bytes = std::fs::read(image()).unwrap();
    let header = object::elf::FileHeader64::<object::Endianness>::parse(&*bytes).unwrap();
    let endian = header.endian().unwrap();
    let segments = header.program_headers(endian, &*bytes).unwrap();
    let segment = |flags: u32| {
        let s = segments
            .iter()
            .find(|s| s.p_type(endian) == object::elf::PT_LOAD && s.p_flags(endian) == flags)
            .expect("segment");
        s.data(endian, &*bytes).unwrap()
    };
    let mut hasher = sha2::Sha256::new();
    hasher.update(segment(object::elf::PF_R));
    hasher.update(segment(object::elf::PF_R | object::elf::PF_X));
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn capabilities_clock_random_and_gpu_through_the_bindings() {
    let output = run(&["--memory", "8MiB", path_str(&guest("hal_basics"))]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert!(out.contains("platform=PlatformKind::None hal-version=0.1.0 implementation=halcyon "), "{out}");
    // Only what works is claimed.
    let supported = out.lines().find_map(|l| l.strip_prefix("supported=")).expect("supported line");
    for claimed in supported.split(',') {
        let interface = claimed.split('.').next().unwrap();
        assert!(
            ["capabilities", "clock", "random", "resources", "crypto"].contains(&interface)
                || ["attestation.runtime-measurements", "attestation.supported-evidence"].contains(&claimed)
                // Key contexts need no network card; TLS sessions do.
                || claimed.starts_with("tls.key-context."),
            "claims {claimed}"
        );
    }
    assert!(supported.contains("random.get-random-bytes"));
    assert!(out.contains("is-supported(clock,now)=true\n"));
    assert!(out.contains("is-supported(crypto,sign)=true\n"));
    assert!(out.contains("is-supported(storage,container.open)=false\n"));
    assert!(out.contains("is-supported(nope,nope)=false\n"));
    assert!(out.contains("limits memory=8388608 fuel=None handles=1024\n"), "{out}");
    assert!(out.contains("timezone=UTC offset=0\n"));
    assert!(out.contains("stopwatch ok"));
    assert!(out.contains("too-large=1048577\n"));
    assert!(out.contains("gpu unsupported: no GPU device or driver in this image\n"));
    // The measurement log holds this very module, as the host computes it (sha256sum).
    let sha = std::process::Command::new("sha256sum").arg(guest("hal_basics")).output().unwrap();
    let digest = String::from_utf8_lossy(&sha.stdout).split_whitespace().next().unwrap().to_string();
    assert!(out.contains(&format!("measurement kind=workload name=hal_basics.wasm DigestAlgorithm::Sha256 {digest}\n")), "{out}");
    // ... and the kernel itself: its read-only (R) and text (R X) segments as the image
    // file carries them, hashed in that order.
    let kernel_line = format!("measurement kind=kernel name=halcyon-kernel DigestAlgorithm::Sha256 {}\n", kernel_digest());
    assert!(out.contains(&kernel_line), "expected {kernel_line} in:\n{out}");
    assert!(out.find("kind=kernel").unwrap() < out.find("kind=workload").unwrap(), "the kernel is measured first");
    assert!(out.contains("evidence-formats=0\n"));
    assert!(out.contains("attestation unsupported: no hardware root of trust: this is not a confidential VM\n"));
    assert!(out.contains("report-data 65: report data is limited to 64 bytes\n"));
    assert!(out.contains("seal unsupported: no hardware root of trust"));
    assert!(out.contains("allocation limit=8388608 used="), "{out}");
    assert!(out.contains("1 MiB granted: limit=9437184\n"), "{out}");
    assert!(out.contains("1 TiB refused: "));
    assert!(out.contains("fuel request: ResourceError::Unsupported("), "{out}");
    assert!(out.ends_with("hal_basics ok\n"));

    // The HAL's wall clock agrees with the host's.
    let now: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("now="))
        .and_then(|v| v.split('.').next()?.parse().ok())
        .expect("now line");
    let host = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(now.abs_diff(host) < 60);

    // A fuel-metered workload sees its remaining fuel.
    let output = run(&["--fuel", "50000000", path_str(&guest("hal_basics"))]);
    assert_exit(&output, 0);
    assert!(stdout(&output).contains("fuel=Some("), "{}", stdout(&output));
}

/// Each hostile module makes one bad HAL call. Bundled with a well-behaved workload
/// at the end, they show the kernel traps just that workload and carries on.
#[test]
fn hostile_abi_use_traps_only_that_workload() {
    let dir = std::env::temp_dir().join(format!("halcyon-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: [(&str, &str, &str); 5] = [
        (
            "retptr-out-of-bounds",
            r#"(import "elastic:hal/clock@0.1.0" "now" (func $now (param i32)))
               (func (export "_start") (call $now (i32.const 0xfffffff0)))"#,
            "HAL call clock.now: 24 bytes at 0xfffffff0 lie outside linear memory",
        ),
        (
            "retptr-misaligned",
            r#"(import "elastic:hal/clock@0.1.0" "now" (func $now (param i32)))
               (func (export "_start") (call $now (i32.const 3)))"#,
            "HAL call clock.now: pointer 0x3 is not 8-byte aligned",
        ),
        (
            "forged-handle",
            r#"(import "elastic:hal/clock@0.1.0" "[method]stopwatch.start" (func $start (param i32)))
               (func (export "_start") (call $start (i32.const 77)))"#,
            "HAL call clock.stopwatch.start: invalid resource handle 77",
        ),
        (
            "no-realloc",
            r#"(import "elastic:hal/capabilities@0.1.0" "list-support" (func $list (param i32)))
               (func (export "_start") (call $list (i32.const 64)))"#,
            "HAL call capabilities.list-support: cabi_realloc failed",
        ),
        (
            "string-out-of-bounds",
            r#"(import "elastic:hal/capabilities@0.1.0" "is-supported" (func $is (param i32 i32 i32 i32) (result i32)))
               (func (export "_start") (drop (call $is (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 1))))"#,
            "HAL call capabilities.is-supported: 100 bytes at 0xfffa lie outside linear memory",
        ),
    ];
    let mut modules = Vec::new();
    for (name, body, _) in &cases {
        let wasm = wat::parse_str(format!("(module {body} (memory (export \"memory\") 1))")).unwrap();
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, wasm).unwrap();
        modules.push(path);
    }
    let hello = dir.join("hello.wasm");
    std::fs::copy(guest("hello"), &hello).unwrap();
    modules.push(hello);

    let bundle = dir.join("hostile.hcb");
    let mut args = vec!["bundle", "-o", path_str(&bundle)];
    args.extend(modules.iter().map(|p| path_str(p)));
    assert!(halcyon(&args).status().unwrap().success());
    let output = run(&[path_str(&bundle)]);
    assert_exit(&output, 134);
    let err = stderr(&output);
    for (name, _, message) in &cases {
        assert!(err.contains(&format!("workload '{name}.wasm' trapped: ")), "{name} did not trap:\n{err}");
        assert!(err.contains(message), "missing '{message}' in:\n{err}");
    }
    assert!(stdout(&output).starts_with("hello from halcyon\n"), "the last workload still ran");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_hal_tour_example_runs() {
    let tour = root().join("target/examples/hal-tour.wasm");
    assert!(tour.exists(), "run `make test`, which builds the examples");
    let output = run(&[path_str(&tour)]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    for line in [
        "capabilities.get-platform: PlatformKind::None, HAL 0.1.0",
        "crypto ed25519 signature: ",
        "crypto ecdsa-p256 signature (DER): 30",
        "crypto aes-256-gcm ciphertext+tag: ",
        "crypto.hpke-seal/open: Ok(true)",
        "attestation.platform-attestation: Err(AttestationError::Unsupported(",
        "gpu.adapter.request: Err(GpuError::Unsupported(",
    ] {
        assert!(out.contains(line), "missing '{line}' in:\n{out}");
    }
}
