//! The network stack: one virtio-net card, smoltcp on top, DHCPv4 or a static address
//! from the kernel command line, and DNS.
//!
//! Polled: every socket operation, and every wait for one, polls the interface first, so
//! the stack makes progress whenever a workload uses the network. Workloads reach it
//! through [`socket`], which WASI and the HAL `sockets` interface share.

mod nic;
pub mod socket;

use crate::devices::pci::PciBus;
use crate::{kprintln, time};
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use halcyon_hal::net_config::{self, Addressing, NetConfig};
use nic::Nic;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, dns};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};
use spin::Mutex;
use virtio_drivers::transport::pci::PciTransport;

/// virtio vendor ID and the network device's IDs: transitional 0x1000, modern 0x1041
/// (virtio 1.2 §4.1.2).
const VIRTIO_VENDOR: u16 = 0x1AF4;
const VIRTIO_NET_IDS: [u16; 2] = [0x1000, 0x1041];
/// How long boot waits for a DHCP lease before going on without an address.
const DHCP_WAIT_NS: u64 = 3_000_000_000;

pub struct Network {
    iface: Interface,
    nic: Nic,
    sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    dns: SocketHandle,
    /// Name servers from the command line; when empty, DHCP's are used.
    fixed_dns: bool,
    next_ephemeral_port: u16,
    /// TCP sockets their owner closed, kept until the close handshake ends.
    closing: Vec<(SocketHandle, u64)>,
}

static NETWORK: Mutex<Option<Network>> = Mutex::new(None);

fn now() -> Instant {
    Instant::from_micros((time::monotonic_ns() / 1000) as i64)
}

/// Why the network did not come up.
#[derive(Debug)]
pub enum NetInitError {
    Config(net_config::NetConfigError),
    Transport,
    Device(virtio_drivers::Error),
    Pci(&'static str),
}

impl core::fmt::Display for NetInitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetInitError::Config(e) => write!(f, "{e}"),
            NetInitError::Transport => f.write_str("the virtio-net device has no usable virtio-PCI capabilities"),
            NetInitError::Device(e) => write!(f, "virtio-net: {e}"),
            NetInitError::Pci(e) => write!(f, "PCI: {e}"),
        }
    }
}

/// Finds a virtio-net card and brings the interface up. `Ok(false)`: no card (the VM has
/// no network; socket calls say so).
pub fn init(boot: &crate::boot_info::BootInfo) -> Result<bool, NetInitError> {
    let config = net_config::parse(boot.cmdline()).map_err(NetInitError::Config)?;
    let Some(mut bus) = PciBus::discover(boot.rsdp_paddr, boot.ram()) else {
        return Ok(false);
    };
    let Some((function, _)) = bus
        .devices()
        .into_iter()
        .find(|(_, info)| info.vendor_id == VIRTIO_VENDOR && VIRTIO_NET_IDS.contains(&info.device_id))
    else {
        return Ok(false);
    };
    bus.enable(function).map_err(NetInitError::Pci)?;
    let transport = PciTransport::new::<crate::devices::virtio_dma::VirtioDma, _>(&mut bus.root, function)
        .map_err(|_| NetInitError::Transport)?;
    let mut nic = Nic::new(transport).map_err(NetInitError::Device)?;
    let mac = nic.mac_address();
    kprintln!("net: virtio-net at {function}, MAC {}", EthernetAddress(mac));

    let mut seed = [0u8; 8];
    // Without entropy the seed is only the clock: TCP sequence numbers become guessable,
    // which the log says.
    if crate::random::fill(&mut seed).is_err() {
        seed = time::monotonic_ns().to_le_bytes();
        kprintln!("net: no entropy; TCP initial sequence numbers are predictable");
    }
    let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    iface_config.random_seed = u64::from_le_bytes(seed);
    let iface = Interface::new(iface_config, &mut nic, now());
    let mut sockets = SocketSet::new(vec![]);
    let dns = sockets.add(dns::Socket::new(&[], vec![]));
    let mut network = Network {
        iface,
        nic,
        sockets,
        dhcp: None,
        dns,
        fixed_dns: !config.dns_servers.is_empty(),
        next_ephemeral_port: 49152 + (seed[0] as u16) * 64,
        closing: Vec::new(),
    };
    network.configure(&config);
    *NETWORK.lock() = Some(network);

    if matches!(config.addressing, Addressing::Dhcp) {
        let started = time::monotonic_ns();
        let deadline = started + DHCP_WAIT_NS;
        while time::monotonic_ns() < deadline {
            if with_network(|n| {
                n.poll();
                n.iface.ipv4_addr().is_some()
            }) == Some(true)
            {
                break;
            }
            crate::arch::spin_hint();
        }
        match with_network(|n| n.iface.ipv4_addr()).flatten() {
            Some(address) => kprintln!("net: DHCP lease {address} after {} us", (time::monotonic_ns() - started) / 1000),
            None => kprintln!("net: no DHCP lease yet; going on without an address"),
        }
    }
    Ok(true)
}

impl Network {
    fn configure(&mut self, config: &NetConfig) {
        match config.addressing {
            Addressing::Dhcp => self.dhcp = Some(self.sockets.add(dhcpv4::Socket::new())),
            Addressing::Static { address, prefix_len, gateway } => {
                self.set_address(Ipv4Cidr::new(address, prefix_len), gateway);
                kprintln!("net: static address {address}/{prefix_len}");
            }
        }
        if self.fixed_dns {
            self.set_dns(&config.dns_servers);
        }
    }

    fn set_address(&mut self, cidr: Ipv4Cidr, gateway: Option<Ipv4Addr>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            let _ = addrs.push(IpCidr::Ipv4(cidr));
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gateway) = gateway {
            let _ = self.iface.routes_mut().add_default_ipv4_route(gateway);
        }
    }

    fn set_dns(&mut self, servers: &[Ipv4Addr]) {
        let servers: Vec<smoltcp::wire::IpAddress> = servers.iter().map(|s| (*s).into()).collect();
        self.sockets.get_mut::<dns::Socket>(self.dns).update_servers(&servers);
    }

    /// Moves packets between the card and the sockets, and handles DHCP events.
    pub fn poll(&mut self) {
        let timestamp = now();
        self.iface.poll(timestamp, &mut self.nic, &mut self.sockets);
        if let Some(dhcp) = self.dhcp {
            let event = self.sockets.get_mut::<dhcpv4::Socket>(dhcp).poll();
            match event {
                Some(dhcpv4::Event::Configured(lease)) => {
                    let (address, router) = (lease.address, lease.router);
                    let servers: Vec<Ipv4Addr> = lease.dns_servers.iter().copied().collect();
                    self.set_address(address, router);
                    if !self.fixed_dns {
                        self.set_dns(&servers);
                    }
                }
                Some(dhcpv4::Event::Deconfigured) => {
                    self.iface.update_ip_addrs(|addrs| addrs.clear());
                    self.iface.routes_mut().remove_default_ipv4_route();
                }
                None => {}
            }
        }
        self.reap_closing(timestamp);
    }

    /// The next local port for an outgoing connection (IANA dynamic range, RFC 6335 §6).
    fn ephemeral_port(&mut self) -> u16 {
        let port = self.next_ephemeral_port;
        self.next_ephemeral_port = if port == u16::MAX { 49152 } else { port + 1 };
        port
    }

    pub fn ipv4_address(&self) -> Option<Ipv4Addr> {
        self.iface.ipv4_addr()
    }
}

/// Runs `f` with the network; `None` when the VM has no network card.
pub fn with_network<R>(f: impl FnOnce(&mut Network) -> R) -> Option<R> {
    NETWORK.lock().as_mut().map(f)
}

/// Whether the VM has a network card the kernel drives.
pub fn available() -> bool {
    NETWORK.lock().is_some()
}

/// Polls the network if there is one (called while workloads wait).
pub fn poll() {
    with_network(Network::poll);
}

/// Before the VM stops: lets closed connections deliver what they still hold (their
/// close handshake ends), for at most `budget_ns`, so a workload's last bytes are not lost.
pub fn drain(budget_ns: u64) {
    let deadline = time::monotonic_ns().saturating_add(budget_ns);
    while with_network(|n| {
        n.poll();
        !n.closing.is_empty()
    }) == Some(true)
        && time::monotonic_ns() < deadline
    {
        crate::arch::spin_hint();
    }
}
