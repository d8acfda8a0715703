//! Allocates and touches memory in 1 MiB steps until allocation fails (which, for a
//! Rust program, aborts: a trap the host reports as a memory-limit hit).
fn main() {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 1 << 20];
        block[0] = blocks.len() as u8;
        blocks.push(block);
        println!("allocated {} MiB", blocks.len());
    }
}
