//! Exercises WASI corners: stdin reads end-of-file, opening a file fails with an error
//! (no preopens, unsupported calls answer ENOSYS/EBADF) instead of trapping, and sleeping
//! through `poll_oneoff` works. Exits 0 when all is as expected.
use std::io::Read;

fn main() {
    let mut input = Vec::new();
    let n = std::io::stdin().read_to_end(&mut input).expect("stdin is readable");
    println!("stdin_bytes={n}");
    assert_eq!(n, 0);

    let err = std::fs::File::open("/etc/passwd").expect_err("no filesystem is exposed");
    println!("open_error={}", err.kind());

    let start = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(10));
    assert!(start.elapsed() >= std::time::Duration::from_millis(10));
    println!("wasi_misc ok");
}
