//! A TCP echo server written against plain `std`, as for `wasmtime run --tcplisten`:
//! the host preopens a listening socket as file descriptor 3.
//!
//! ```sh
//! halcyon run --tcplisten 127.0.0.1:7000 target/examples/tcp-echo.wasm [CONNECTIONS]
//! ```
//! Serves connections one after another, echoing each until the client closes its side;
//! with CONNECTIONS it exits after that many, otherwise it serves forever.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::FromRawFd;

fn main() {
    let limit: Option<usize> = std::env::args().nth(1).map(|n| n.parse().expect("CONNECTIONS is a number"));
    // SAFETY: fd 3 is the listening socket the runtime preopened for `--tcplisten`.
    let listener = unsafe { TcpListener::from_raw_fd(3) };
    println!("tcp-echo: listening");
    let mut served = 0;
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("tcp-echo: accept failed: {e}");
                continue;
            }
        };
        let mut buf = [0u8; 16 * 1024];
        let mut echoed = 0usize;
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Err(e) = stream.write_all(&buf[..n]) {
                        eprintln!("tcp-echo: write failed: {e}");
                        break;
                    }
                    echoed += n;
                }
                Err(e) => {
                    eprintln!("tcp-echo: read failed: {e}");
                    break;
                }
            }
        }
        drop(stream);
        served += 1;
        println!("tcp-echo: connection {served} closed after {echoed} bytes");
        if limit == Some(served) {
            break;
        }
    }
}
