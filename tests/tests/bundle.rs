//! Several workloads in one boot: each runs in order, a failing one does not stop the
//! next, and every one gets its own arguments, environment and limits.
mod common;
use common::*;

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("halcyon-bundle-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["hello", "trap", "spin", "hog", "clock"] {
        std::fs::copy(guest(name), dir.join(format!("{name}.wasm"))).unwrap();
    }
    dir
}

#[test]
fn failures_are_contained_and_the_next_workload_runs() {
    let dir = scratch("contained");
    std::fs::write(dir.join("garbage.wasm"), b"garbage").unwrap();
    std::fs::write(
        dir.join("workloads.toml"),
        r#"
[[workload]]
name = "first"
module = "hello.wasm"
args = ["one"]
env = { TEST_WHO = "first" }

[[workload]]
name = "trapper"
module = "trap.wasm"

[[workload]]
name = "spinner"
module = "spin.wasm"
fuel = 100000

[[workload]]
name = "hog"
module = "hog.wasm"
memory = "4MiB"

[[workload]]
name = "bad"
module = "garbage.wasm"

[[workload]]
name = "last"
module = "hello.wasm"
args = ["two", "--exit", "5"]
env = { TEST_WHO = "last" }
"#,
    )
    .unwrap();
    let bundle = dir.join("run.hcb");
    let status = halcyon(&["bundle", "--output", path_str(&bundle), path_str(&dir.join("workloads.toml"))]).status().unwrap();
    assert!(status.success());

    let output = run(&[path_str(&bundle)]);
    // The first non-zero status: the trap.
    assert_exit(&output, 134);
    let out = stdout(&output);
    let err = stderr(&output);
    assert!(out.starts_with("hello from halcyon\narg[0]=hello.wasm\narg[1]=one\nenv TEST_WHO=first\n"), "{out}");
    assert!(out.contains("about to trap\n"));
    assert!(out.contains("spinning\n"));
    assert!(out.ends_with("hello from halcyon\narg[0]=hello.wasm\narg[1]=two\narg[2]=--exit\narg[3]=5\nenv TEST_WHO=last\n"), "{out}");
    for line in [
        "halcyon: workload 'trapper' trapped",
        "halcyon: workload 'spinner' ran out of fuel",
        "halcyon: workload 'hog' hit its memory limit",
        "halcyon: workload 'bad' is not a valid module",
    ] {
        assert!(err.contains(line), "missing '{line}' in:\n{err}");
    }
    // Workloads run in order: the trap's message precedes the last workload's stderr line.
    assert!(err.find("trapped").unwrap() < err.rfind("this line goes to stderr").unwrap());
}

#[test]
fn modules_listed_on_the_command_line() {
    let dir = scratch("list");
    let bundle = dir.join("two.hcb");
    let output = halcyon(&[
        "bundle", "-o", path_str(&bundle), path_str(&dir.join("hello.wasm")), path_str(&dir.join("clock.wasm")),
    ])
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(&[path_str(&bundle)]);
    assert_exit(&output, 0);
    assert!(stdout(&output).starts_with("hello from halcyon\n"));
    assert!(stdout(&output).ends_with("clock ok\n"));

    // A bundle carries its own arguments: extra ones are refused rather than ignored.
    let output = run(&[path_str(&bundle), "extra"]);
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("is a bundle"));
}
