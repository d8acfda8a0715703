//! Bounds-checked access to a workload's linear memory from host functions.
//!
//! Guest pointers and lengths are untrusted: every access is checked (with overflow-safe
//! arithmetic) against the memory's current size, and a bad one is an `EFAULT` for the
//! workload, never a kernel fault.

use super::wasi::Errno;

pub struct GuestMemory<'a> {
    bytes: &'a mut [u8],
}

/// The same bounds check the HAL's canonical ABI uses; for WASI a violation is `EFAULT`.
fn range(ptr: u32, len: u32, size: usize) -> Result<core::ops::Range<usize>, Errno> {
    halcyon_hal::cabi::checked_range(ptr, len, size).map_err(|_| Errno::FAULT)
}

impl<'a> GuestMemory<'a> {
    pub fn new(bytes: &'a mut [u8]) -> Self {
        Self { bytes }
    }

    pub fn slice(&self, ptr: u32, len: u32) -> Result<&[u8], Errno> {
        Ok(&self.bytes[range(ptr, len, self.bytes.len())?])
    }

    pub fn slice_mut(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], Errno> {
        let r = range(ptr, len, self.bytes.len())?;
        Ok(&mut self.bytes[r])
    }

    fn array<const N: usize>(&self, ptr: u32) -> Result<[u8; N], Errno> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(ptr, N as u32)?);
        Ok(out)
    }

    pub fn read_u16(&self, ptr: u32) -> Result<u16, Errno> {
        self.array(ptr).map(u16::from_le_bytes)
    }

    pub fn read_u32(&self, ptr: u32) -> Result<u32, Errno> {
        self.array(ptr).map(u32::from_le_bytes)
    }

    pub fn read_u64(&self, ptr: u32) -> Result<u64, Errno> {
        self.array(ptr).map(u64::from_le_bytes)
    }

    pub fn write(&mut self, ptr: u32, data: &[u8]) -> Result<(), Errno> {
        let len = u32::try_from(data.len()).map_err(|_| Errno::FAULT)?;
        self.slice_mut(ptr, len)?.copy_from_slice(data);
        Ok(())
    }

    pub fn write_u8(&mut self, ptr: u32, value: u8) -> Result<(), Errno> {
        self.write(ptr, &[value])
    }

    pub fn write_u16(&mut self, ptr: u32, value: u16) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }

    pub fn write_u32(&mut self, ptr: u32, value: u32) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }

    pub fn write_u64(&mut self, ptr: u32, value: u64) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }
}

/// `base + offset` for a field of a guest struct, or `EFAULT` on overflow.
pub fn field(base: u32, offset: u32) -> Result<u32, Errno> {
    base.checked_add(offset).ok_or(Errno::FAULT)
}

/// `base + index * stride` for guest arrays, or `EFAULT` on overflow.
pub fn element(base: u32, index: u32, stride: u32) -> Result<u32, Errno> {
    index.checked_mul(stride).and_then(|off| base.checked_add(off)).ok_or(Errno::FAULT)
}
