//! The CLI's errors are clear and actionable, and nothing starts when it cannot work.
mod common;
use common::*;

#[test]
fn missing_qemu_is_explained() {
    let output = run(&["--qemu", "/nonexistent/qemu-system-x86_64", path_str(&guest("hello"))]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("QEMU not found"), "{}", stderr(&output));
    assert!(stderr(&output).contains("apt-get install qemu-system-x86"));
}

#[test]
fn missing_or_wrong_image_is_explained() {
    let output = run(&["--image", "/nonexistent/halcyon.elf", path_str(&guest("hello"))]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("make image"), "{}", stderr(&output));

    // A file that is not a Halcyon kernel (a wasm module) is refused before booting.
    let output = run(&["--image", path_str(&guest("hello")), path_str(&guest("hello"))]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("not a usable Halcyon image"), "{}", stderr(&output));
}

#[test]
fn confidential_platforms_are_never_emulated() {
    // SEV-SNP needs KVM on an SNP host and the firmware boot: never a TCG or PVH stand-in.
    let output = run(&["--platform", "snp", "--accel", "tcg", path_str(&guest("hello"))]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("needs KVM"), "{}", stderr(&output));
    let output = run(&["--platform", "snp", "--boot", "pvh", path_str(&guest("hello"))]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("firmware image only"), "{}", stderr(&output));
}

#[test]
fn build_checks_the_kernel() {
    let out = std::env::temp_dir().join(format!("halcyon-build-{}.elf", std::process::id()));
    let output = halcyon(&["build", "--kernel", path_str(&guest("hello")), "--output", path_str(&out)]).output().unwrap();
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("not a Halcyon kernel"), "{}", stderr(&output));
    assert!(!out.exists());

    let output = halcyon(&["build", "--kernel", path_str(&image()), "--output", path_str(&out)]).output().unwrap();
    assert_exit(&output, 0);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(image()).unwrap());
    std::fs::remove_file(&out).ok();
}
