//! The network configuration the host passes on the kernel command line.
//!
//! Words the kernel reads (others are left to other subsystems):
//! - `net.ip=A.B.C.D/PREFIX` static address (without it: DHCPv4)
//! - `net.gateway=A.B.C.D` default route (static configuration only)
//! - `net.dns=A.B.C.D[,A.B.C.D...]` name servers (replace what DHCP offers)
//!
//! The command line comes from the host, which is untrusted on a confidential VM: a word
//! that names one of these keys but does not parse is an error, never a guess.

use alloc::vec::Vec;
use core::fmt;
use core::net::Ipv4Addr;

/// Name servers the kernel uses at most (smoltcp's DNS socket holds few).
pub const MAX_DNS_SERVERS: usize = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addressing {
    Dhcp,
    Static { address: Ipv4Addr, prefix_len: u8, gateway: Option<Ipv4Addr> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    pub addressing: Addressing,
    /// Empty: use what DHCP offers.
    pub dns_servers: Vec<Ipv4Addr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetConfigError {
    /// `key` has a value that does not parse.
    BadValue { key: &'static str },
    /// `net.gateway` without `net.ip`.
    GatewayWithoutAddress,
    TooManyDnsServers,
}

impl fmt::Display for NetConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetConfigError::BadValue { key } => write!(f, "bad value for {key} on the kernel command line"),
            NetConfigError::GatewayWithoutAddress => f.write_str("net.gateway needs net.ip (static configuration)"),
            NetConfigError::TooManyDnsServers => write!(f, "net.dns lists more than {MAX_DNS_SERVERS} servers"),
        }
    }
}

impl core::error::Error for NetConfigError {}

fn parse_cidr(value: &str) -> Option<(Ipv4Addr, u8)> {
    let (address, prefix) = value.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some((address.parse().ok()?, prefix))
}

/// Reads the `net.*` words of a kernel command line.
pub fn parse(cmdline: &str) -> Result<NetConfig, NetConfigError> {
    let mut static_address = None;
    let mut gateway = None;
    let mut dns_servers = Vec::new();
    for word in cmdline.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else { continue };
        match key {
            "net.ip" => static_address = Some(parse_cidr(value).ok_or(NetConfigError::BadValue { key: "net.ip" })?),
            "net.gateway" => gateway = Some(value.parse().map_err(|_| NetConfigError::BadValue { key: "net.gateway" })?),
            "net.dns" => {
                dns_servers.clear();
                for server in value.split(',') {
                    if dns_servers.len() == MAX_DNS_SERVERS {
                        return Err(NetConfigError::TooManyDnsServers);
                    }
                    dns_servers.push(server.parse().map_err(|_| NetConfigError::BadValue { key: "net.dns" })?);
                }
            }
            _ => {}
        }
    }
    let addressing = match static_address {
        Some((address, prefix_len)) => Addressing::Static { address, prefix_len, gateway },
        None if gateway.is_some() => return Err(NetConfigError::GatewayWithoutAddress),
        None => Addressing::Dhcp,
    };
    Ok(NetConfig { addressing, dns_servers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dhcp_by_default_and_static_when_asked() {
        assert_eq!(parse("").unwrap(), NetConfig { addressing: Addressing::Dhcp, dns_servers: vec![] });
        let config = parse("quiet net.ip=10.0.2.15/24 net.gateway=10.0.2.2 net.dns=10.0.2.3,1.1.1.1").unwrap();
        assert_eq!(
            config.addressing,
            Addressing::Static { address: Ipv4Addr::new(10, 0, 2, 15), prefix_len: 24, gateway: Some(Ipv4Addr::new(10, 0, 2, 2)) }
        );
        assert_eq!(config.dns_servers, [Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::new(1, 1, 1, 1)]);
        assert_eq!(parse("net.dns=10.0.2.2").unwrap().addressing, Addressing::Dhcp);
    }

    #[test]
    fn bad_words_are_errors() {
        for (line, error) in [
            ("net.ip=10.0.2.15", NetConfigError::BadValue { key: "net.ip" }),
            ("net.ip=10.0.2.15/33", NetConfigError::BadValue { key: "net.ip" }),
            ("net.ip=host/24", NetConfigError::BadValue { key: "net.ip" }),
            ("net.gateway=10.0.2.2", NetConfigError::GatewayWithoutAddress),
            ("net.dns=1.1.1.1,", NetConfigError::BadValue { key: "net.dns" }),
            ("net.dns=1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4", NetConfigError::TooManyDnsServers),
        ] {
            assert_eq!(parse(line), Err(error), "{line}");
        }
    }
}
