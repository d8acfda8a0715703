//! Prints a line, then traps (the wasm `unreachable` instruction).
fn main() {
    println!("about to trap");
    std::process::abort();
}
