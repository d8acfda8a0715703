//! The virtio-net card as smoltcp's `Device`: tokens that receive one frame from the
//! device's receive queue or hand one frame to its transmit queue.

use crate::devices::virtio_dma::VirtioDma;
use core::cell::RefCell;
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use virtio_drivers::device::net::{RxBuffer, VirtIONet};
use virtio_drivers::transport::pci::PciTransport;

/// Descriptors per virtqueue (QEMU offers 256; 64 receive buffers absorb a burst).
pub const QUEUE_SIZE: usize = 64;
/// Room for a 1514-byte Ethernet frame plus the virtio-net header, rounded up.
const RX_BUFFER_LEN: usize = 2048;
/// `struct virtio_net_hdr` with `num_buffers`, the header of the modern transport
/// (virtio 1.2 §5.1.6); the legacy header is shorter, so this bound is the safe one.
const VIRTIO_NET_HDR_LEN: usize = 12;
/// The largest Ethernet frame (without FCS) smoltcp may send.
const MTU: usize = 1514;

pub type VirtioNet = VirtIONet<VirtioDma, PciTransport, QUEUE_SIZE>;

pub struct Nic {
    device: RefCell<VirtioNet>,
}

impl Nic {
    pub fn new(transport: PciTransport) -> Result<Self, virtio_drivers::Error> {
        let mut device = VirtioNet::new(transport, RX_BUFFER_LEN)?;
        // Polled: the kernel checks the queues whenever it polls the network.
        device.disable_interrupts();
        Ok(Self { device: RefCell::new(device) })
    }

    pub fn mac_address(&self) -> [u8; 6] {
        self.device.borrow().mac_address()
    }
}

pub struct RxToken<'a> {
    device: &'a RefCell<VirtioNet>,
    buffer: RxBuffer,
}

pub struct TxToken<'a> {
    device: &'a RefCell<VirtioNet>,
}

impl Device for Nic {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let device = self.device.get_mut();
        loop {
            let buffer = device.receive().ok()?;
            // The used-ring length comes from the device, which a confidential VM does not
            // trust: a frame longer than the buffer it was given is dropped here, before
            // `RxBuffer::packet` would slice past the buffer.
            if buffer.packet_len() + VIRTIO_NET_HDR_LEN <= buffer.as_bytes().len() {
                return Some((RxToken { device: &self.device, buffer }, TxToken { device: &self.device }));
            }
            let _ = device.recycle_rx_buffer(buffer);
        }
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        self.device.get_mut().can_send().then_some(TxToken { device: &self.device })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(QUEUE_SIZE / 2);
        caps
    }
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let result = f(self.buffer.packet());
        // A buffer that cannot be requeued only shrinks the receive queue.
        let _ = self.device.borrow_mut().recycle_rx_buffer(self.buffer);
        result
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut device = self.device.borrow_mut();
        let mut buffer = device.new_tx_buffer(len);
        let result = f(buffer.packet_mut());
        // A frame the device refuses is lost like one dropped on the wire; TCP resends.
        let _ = device.send(buffer);
        result
    }
}
