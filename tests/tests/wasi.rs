//! WASI preview 1 through `halcyon run`, compared with what `wasmtime run` does.
mod common;
use common::*;

#[test]
fn hello_world_with_args_env_and_exit_code() {
    let hello = guest("hello");
    let output = halcyon(&[
        "run", "--timeout", "120", "--env", "TEST_A=1", "--env", "TEST_INHERITED", "--env", "TEST_EMPTY=",
        path_str(&hello), "x", "y z", "--exit", "3",
    ])
    .env("TEST_INHERITED", "from host")
    .env("TEST_NOT_PASSED", "secret")
    .output()
    .unwrap();
    assert_exit(&output, 3);
    assert_eq!(
        stdout(&output),
        "hello from halcyon\narg[0]=hello.wasm\narg[1]=x\narg[2]=y z\narg[3]=--exit\narg[4]=3\n\
         env TEST_A=1\nenv TEST_EMPTY=\nenv TEST_INHERITED=from host\n"
    );
    // The workload's stderr, and nothing from the kernel.
    assert_eq!(stderr(&output), "this line goes to stderr\n");
}

#[test]
fn exit_codes_and_argv0() {
    let hello = guest("hello");
    let output = run(&["--argv0", "custom-name", path_str(&hello), "--exit", "42"]);
    assert_exit(&output, 42);
    assert!(stdout(&output).contains("arg[0]=custom-name\n"));
    let output = run(&[path_str(&hello)]);
    assert_exit(&output, 0);
}

#[test]
fn clocks_are_plausible_and_monotonic() {
    let output = run(&[path_str(&guest("clock"))]);
    assert_exit(&output, 0);
    let out = stdout(&output);
    assert!(out.contains("clock ok"), "{out}");
    // The guest's wall clock agrees with the host's to within a minute.
    let guest_wall: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("wall_seconds="))
        .and_then(|v| v.parse().ok())
        .expect("wall_seconds line");
    let host_wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(guest_wall.abs_diff(host_wall) < 60, "guest {guest_wall} vs host {host_wall}");
}

fn random_lines(output: &std::process::Output) -> Vec<String> {
    assert_exit(output, 0);
    stdout(output)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.to_string()))
        .collect()
}

#[test]
fn random_bytes_differ_between_calls_and_boots() {
    let first = random_lines(&run(&[path_str(&guest("random"))]));
    let second = random_lines(&run(&[path_str(&guest("random"))]));
    assert_eq!(first.len(), 2);
    assert_eq!(second.len(), 2);
    let mut all: Vec<&String> = first.iter().chain(second.iter()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 4, "random values repeated: {first:?} {second:?}");
    assert!(all.iter().all(|v| v.len() == 64));
}

#[test]
fn stdin_eof_unsupported_calls_and_sleep() {
    let output = run(&[path_str(&guest("wasi_misc"))]);
    assert_exit(&output, 0);
    assert!(stdout(&output).contains("stdin_bytes=0\n"));
    assert!(stdout(&output).contains("wasi_misc ok\n"));
}

/// Without RDRAND/RDSEED the kernel hands out no "random" bytes: `random_get` fails and
/// the workload sees the error. (A QEMU wrapper appends `-cpu qemu64`, which under TCG
/// has neither instruction; the last `-cpu` wins.)
#[test]
fn no_hardware_entropy_means_no_random_bytes() {
    let dir = std::env::temp_dir().join(format!("halcyon-nordrand-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("qemu-without-rdrand");
    std::fs::write(&wrapper, "#!/bin/sh\nexec qemu-system-x86_64 \"$@\" -cpu qemu64\n").unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let log = dir.join("kernel.log");

    let output = run(&["--qemu", path_str(&wrapper), "--log", path_str(&log), path_str(&guest("random"))]);
    // The guest asserts errno 0 and so panics (a trap) when random_get is refused.
    assert_exit(&output, 134);
    assert!(stderr(&output).contains("random_get failed with errno 58"), "{}", stderr(&output));
    let kernel_log = std::fs::read_to_string(&log).unwrap();
    assert!(kernel_log.contains("random: UNAVAILABLE"), "{kernel_log}");
    std::fs::remove_dir_all(&dir).ok();
}
