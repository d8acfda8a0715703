//! Guest for the network benchmark, on the socket `--tcplisten` preopens (fd 3):
//! - `sink`: one connection, read and discard until EOF, then print the byte count.
//! - `source BYTES`: one connection, write BYTES, close.
//! - `connections N`: N connections one after another: read until EOF, answer one byte.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::FromRawFd;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // SAFETY: fd 3 is the listening socket the runtime preopened.
    let listener = unsafe { TcpListener::from_raw_fd(3) };
    println!("net_bench: listening");
    let mut buf = vec![0u8; 64 * 1024];
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["sink"] => {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut total = 0u64;
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => total += n as u64,
                    Err(e) => panic!("read: {e}"),
                }
            }
            stream.write_all(b"k").expect("ack");
            println!("net_bench: received {total}");
        }
        ["source", bytes] => {
            let mut left: u64 = bytes.parse().expect("BYTES");
            let (mut stream, _) = listener.accept().expect("accept");
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                stream.write_all(&buf[..n]).expect("write");
                left -= n as u64;
            }
        }
        ["connections", n] => {
            for _ in 0..n.parse::<usize>().expect("N") {
                let (mut stream, _) = listener.accept().expect("accept");
                while stream.read(&mut buf).map(|n| n > 0).unwrap_or(false) {}
                let _ = stream.write_all(b"k");
            }
        }
        _ => {
            eprintln!("usage: net_bench sink | source BYTES | connections N");
            std::process::exit(2);
        }
    }
}
