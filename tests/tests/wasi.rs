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
