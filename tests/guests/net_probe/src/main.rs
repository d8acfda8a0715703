//! Guest for the networking tests: `net_probe COMMAND ...`, one line of output per result.
//! - `udp HOST PORT COUNT`: sends COUNT datagrams to HOST:PORT and prints each echo.
//! - `wait HOST PORT`: sends one datagram and blocks until the host answers.
//! - `refused HOST PORT`: connects where nobody listens; prints the error.
//! - `limits`: binds UDP sockets until the per-workload limit; prints how many and the error.
//! - `nonblocking`: non-blocking calls that would wait, a port in use, IPv6.
//! - `caps`: prints whether the sockets interface is supported and max-sockets.

use elastic_hal::capabilities;
use elastic_hal::sockets::{self, IpAddress, SocketAddress, SocketError, TcpSocket, UdpSocket};

fn address(host: &str, port: &str) -> SocketAddress {
    let ip = sockets::resolve(host).expect("resolve")[0];
    SocketAddress { address: ip, port: port.parse().expect("port") }
}

fn any_port() -> SocketAddress {
    SocketAddress { address: IpAddress::Ipv4((0, 0, 0, 0)), port: 0 }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["udp", host, port, count] => {
            let socket = UdpSocket::bind(any_port()).expect("bind");
            let local = socket.local_address().expect("local address");
            println!("bound port {}", local.port);
            let remote = address(host, port);
            for i in 0..count.parse::<u32>().expect("count") {
                let message = format!("datagram {i}");
                socket.send_to(message.as_bytes(), remote).expect("send-to");
                let (data, from) = socket.receive_from(2048).expect("receive-from");
                println!("echo from port {}: {}", from.port, String::from_utf8_lossy(&data));
            }
        }
        ["wait", host, port] => {
            // Blocks in receive-from until the host answers; meanwhile other workloads run.
            let socket = UdpSocket::bind(any_port()).expect("bind");
            socket.send_to(b"waiting", address(host, port)).expect("send-to");
            let (data, _) = socket.receive_from(2048).expect("receive-from");
            println!("reply: {}", String::from_utf8_lossy(&data));
        }
        ["refused", host, port] => match TcpSocket::connect(address(host, port)) {
            Ok(_) => println!("connected?"),
            Err(e) => println!("error: {e:?}"),
        },
        ["limits"] => {
            let mut held = Vec::new();
            loop {
                match UdpSocket::bind(any_port()) {
                    Ok(socket) => held.push(socket),
                    Err(SocketError::LimitExceeded(why)) => {
                        println!("limit after {} sockets: {why}", held.len());
                        break;
                    }
                    Err(e) => {
                        println!("unexpected error after {} sockets: {e:?}", held.len());
                        break;
                    }
                }
            }
            drop(held);
            println!("after release: {}", if UdpSocket::bind(any_port()).is_ok() { "bind ok" } else { "bind failed" });
        }
        ["nonblocking"] => {
            let udp = UdpSocket::bind(any_port()).expect("bind");
            udp.set_blocking(false);
            println!("udp receive-from: {:?}", udp.receive_from(100).err());
            let listener = TcpSocket::listen(SocketAddress { address: IpAddress::Ipv4((0, 0, 0, 0)), port: 4444 }, 4).expect("listen");
            listener.set_blocking(false);
            println!("tcp accept: {:?}", listener.accept().err());
            println!("second listen: {:?}", TcpSocket::listen(SocketAddress { address: IpAddress::Ipv4((0, 0, 0, 0)), port: 4444 }, 4).err());
            println!("ipv6 connect: {:?}", TcpSocket::connect(SocketAddress { address: IpAddress::Ipv6((0, 0, 0, 0, 0, 0, 0, 1)), port: 80 }).err());
        }
        ["caps"] => {
            let supported = capabilities::is_supported("sockets", "tcp-socket.connect");
            println!("sockets supported: {supported}; max-sockets {}", capabilities::get_limits().max_sockets);
            if !supported {
                println!("resolve: {:?}", sockets::resolve("example.org").err());
            }
        }
        _ => {
            eprintln!("usage: net_probe udp|refused|limits|caps ...");
            std::process::exit(2);
        }
    }
}
