//! Connects out through the HAL `sockets` interface: resolves HOST, connects to PORT,
//! sends MESSAGE, closes its sending side and prints what the server answers.
//!
//! ```sh
//! halcyon run -S inherit-network target/examples/net-client.wasm HOST PORT MESSAGE
//! ```
//! (From inside the VM, QEMU's user network shows the host as 10.0.2.2.)

use elastic_hal::sockets::{self, IpAddress, ShutdownHow, SocketAddress, TcpSocket};

fn show(ip: &IpAddress) -> String {
    match ip {
        IpAddress::Ipv4((a, b, c, d)) => format!("{a}.{b}.{c}.{d}"),
        IpAddress::Ipv6(s) => format!("{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}", s.0, s.1, s.2, s.3, s.4, s.5, s.6, s.7),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, message] = args.as_slice() else {
        eprintln!("usage: net-client HOST PORT MESSAGE");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("PORT is a number");
    let addresses = match sockets::resolve(host) {
        Ok(addresses) => addresses,
        Err(e) => {
            eprintln!("net-client: cannot resolve {host}: {e:?}");
            std::process::exit(1);
        }
    };
    println!("resolved {host}: {}", addresses.iter().map(show).collect::<Vec<_>>().join(" "));
    let Some(address) = addresses.first() else { std::process::exit(1) };
    let socket = match TcpSocket::connect(SocketAddress { address: *address, port }) {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("net-client: cannot connect to {}:{port}: {e:?}", show(address));
            std::process::exit(1);
        }
    };
    let local = socket.local_address().expect("a connected socket has a local address");
    println!("connected from {}:{} to {}:{port}", show(&local.address), local.port, show(address));
    socket.send(message.as_bytes()).expect("send");
    socket.shutdown(ShutdownHow::Send).expect("shutdown");
    let mut answer = Vec::new();
    loop {
        match socket.receive(64 * 1024) {
            Ok(bytes) if bytes.is_empty() => break,
            Ok(bytes) => answer.extend_from_slice(&bytes),
            Err(e) => {
                eprintln!("net-client: receive failed: {e:?}");
                std::process::exit(1);
            }
        }
    }
    println!("received: {}", String::from_utf8_lossy(&answer));
}
