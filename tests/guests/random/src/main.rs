//! Prints two 32-byte draws from WASI `random_get` in hex and checks they differ.
#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn random_get(buf: *mut u8, len: usize) -> u16;
}

fn draw() -> [u8; 32] {
    let mut buf = [0u8; 32];
    // SAFETY: `random_get` writes exactly `len` bytes into the buffer we own.
    let errno = unsafe { random_get(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(errno, 0, "random_get failed with errno {errno}");
    buf
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() {
    let (a, b) = (draw(), draw());
    println!("random1={}", hex(&a));
    println!("random2={}", hex(&b));
    assert_ne!(a, b, "two draws were equal");
    assert_ne!(a, [0u8; 32], "all-zero random bytes");
}
