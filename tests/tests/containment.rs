//! A workload's failure is reported with its reason and the right exit status; the
//! kernel survives it.
mod common;
use common::*;

#[test]
fn trap_is_contained() {
    let output = run(&[path_str(&guest("trap"))]);
    assert_exit(&output, 134);
    assert_eq!(stdout(&output), "about to trap\n");
    assert!(stderr(&output).contains("halcyon: workload 'trap.wasm' trapped: "), "{}", stderr(&output));
}

#[test]
fn fuel_exhaustion_is_contained() {
    let output = run(&["--fuel", "100000", path_str(&guest("spin"))]);
    assert_exit(&output, 134);
    assert!(stderr(&output).contains("halcyon: workload 'spin.wasm' ran out of fuel"), "{}", stderr(&output));
}

#[test]
fn memory_limit_is_contained() {
    let output = run(&["--memory", "4MiB", path_str(&guest("hog"))]);
    assert_exit(&output, 134);
    let err = stderr(&output);
    assert!(err.contains("halcyon: workload 'hog.wasm' hit its memory limit"), "{err}");
    assert!(err.contains("limit is 4096 KiB"), "{err}");
    // It got as far as the limit allows, no further.
    assert!(stdout(&output).contains("allocated 2 MiB\n"));
    assert!(!stdout(&output).contains("allocated 5 MiB\n"));
}

#[test]
fn malformed_modules_are_rejected() {
    let dir = tempfile_dir("malformed");
    let garbage = dir.join("garbage.wasm");
    std::fs::write(&garbage, b"this is not webassembly at all").unwrap();
    let output = run(&[path_str(&garbage)]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("halcyon: workload 'garbage.wasm' is not a valid module: "));
    assert_eq!(stderr(&output).lines().count(), 1, "one-line reason: {}", stderr(&output));

    let hello = std::fs::read(guest("hello")).unwrap();
    let truncated = dir.join("truncated.wasm");
    std::fs::write(&truncated, &hello[..hello.len() / 2]).unwrap();
    let output = run(&[path_str(&truncated)]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("is not a valid module"), "{}", stderr(&output));
}

#[test]
fn unknown_import_is_a_link_error() {
    // (module (import "env" "nope" (func))) — hand-assembled.
    let module: &[u8] = b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0\x02\x0c\x01\x03env\x04nope\0\0";
    let path = tempfile_dir("import").join("import.wasm");
    std::fs::write(&path, module).unwrap();
    let output = run(&[path_str(&path)]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("failed to link"), "{}", stderr(&output));
    assert!(stderr(&output).contains("env"), "names the import: {}", stderr(&output));
}

#[test]
fn missing_module_fails_fast_without_booting() {
    let start = std::time::Instant::now();
    let output = run(&["/nonexistent/module.wasm"]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("cannot read /nonexistent/module.wasm"), "{}", stderr(&output));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("halcyon-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
