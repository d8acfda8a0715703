//! Shared helpers: where the built artifacts are, and running `halcyon` on them.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("workspace root")
}

fn built(path: PathBuf) -> PathBuf {
    assert!(path.exists(), "{} is missing: run `make test`, which builds it first", path.display());
    path
}

pub fn halcyon_bin() -> PathBuf {
    built(root().join("target/release/halcyon"))
}

pub fn image() -> PathBuf {
    built(root().join("target/halcyon/halcyon.elf"))
}

/// A guest test program from `tests/guests/`.
pub fn guest(name: &str) -> PathBuf {
    built(root().join(format!("target/wasm32-wasip1/release/{name}.wasm")))
}

/// `halcyon <args>` with the built image.
pub fn halcyon(args: &[&str]) -> Command {
    let mut command = Command::new(halcyon_bin());
    command.args(args).env("HALCYON_IMAGE", image());
    command
}

/// `halcyon run --timeout 120 <args>`; returns the finished process's output.
pub fn run(args: &[&str]) -> Output {
    let mut all = vec!["run", "--timeout", "120"];
    all.extend_from_slice(args);
    halcyon(&all).output().expect("halcyon runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing both streams when it is wrong.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
        stdout(output),
        stderr(output)
    );
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}
