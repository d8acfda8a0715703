//! The workload's output reaches the host byte for byte.
mod common;
use common::*;

#[test]
fn one_mebibyte_of_binary_stdout_is_exact_and_stderr_is_separate() {
    let output = run(&[path_str(&guest("bigout")), "1048576"]);
    assert_exit(&output, 0);
    let expected: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    assert_eq!(output.stdout.len(), expected.len());
    assert!(output.stdout == expected, "stdout differs from the pattern");
    assert_eq!(stderr(&output), "stderr-tail");
}

#[test]
fn empty_output_and_small_writes() {
    let output = run(&[path_str(&guest("bigout")), "1"]);
    assert_exit(&output, 0);
    assert_eq!(output.stdout, vec![0u8]);
}

#[test]
fn kernel_log_only_when_asked() {
    let log = std::env::temp_dir().join(format!("halcyon-test-{}.log", std::process::id()));
    let output = run(&["--log", path_str(&log), path_str(&guest("hello"))]);
    assert_exit(&output, 0);
    let kernel_log = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).ok();
    assert!(kernel_log.contains("booting"), "{kernel_log}");
    assert!(kernel_log.contains("sha256 "), "the workload is measured: {kernel_log}");
    assert!(!stdout(&output).contains("booting"));

    let output = run(&["-v", path_str(&guest("hello"))]);
    assert_exit(&output, 0);
    assert!(stderr(&output).contains("booting"));
    assert!(!stdout(&output).contains("booting"));
}

/// `halcyon run` stopped by SIGTERM (a supervisor, `timeout`, `kill`) stops its VM too and
/// exits as a killed process would (128 + 15), instead of leaving QEMU running unread.
#[test]
fn a_stop_signal_stops_the_vm_too() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = halcyon(&["run", "--timeout", "120", path_str(&guest("spin"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("halcyon runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first, "spinning\n", "the workload runs");
    let pid = child.id();
    let qemu: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(qemu.len(), 1, "one QEMU under halcyon");
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if std::path::Path::new(&format!("/proc/{}", qemu[0])).exists() {
        let _ = Command::new("kill").args(["-KILL", &qemu[0]]).status();
        panic!("QEMU {} outlived halcyon", qemu[0]);
    }
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("halcyon: stopped by signal 15; the VM was stopped too"), "{stderr}");
}
