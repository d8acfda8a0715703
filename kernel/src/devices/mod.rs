//! Device discovery and drivers' glue: PCI, and the DMA hook virtio drivers use.

pub mod fw_cfg;
pub mod pci;
pub mod virtio_dma;
