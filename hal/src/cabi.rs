//! The component model's canonical ABI, host side: how HAL imports read their arguments
//! from a workload's linear memory and write their results back.
//!
//! Source: WebAssembly component-model `design/mvp/CanonicalABI.md` (lifting and
//! lowering of `string`, `list`, records, variants, `option`, `result`, and resource
//! handles; results that flatten to more than one core value go through a return
//! pointer the caller passes as the last argument; lists the host returns are
//! allocated with the guest's exported `cabi_realloc`).
//!
//! Everything the guest hands over is untrusted: every pointer and length is checked
//! against the memory's size with overflow-safe arithmetic and every alignment the ABI
//! requires is enforced. A violation is an [`AbiError`], which the kernel turns into a
//! trap of that workload — never a kernel fault.

use alloc::vec::Vec;
use core::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiError {
    /// A pointer/length pair reaches outside linear memory.
    OutOfBounds { ptr: u32, len: u32 },
    /// A pointer is not aligned as the ABI requires for its type.
    Misaligned { ptr: u32, align: u32 },
    /// A `string` is not valid UTF-8.
    InvalidUtf8,
    /// A discriminant (enum, variant, option, result, bool) out of range.
    InvalidDiscriminant(u32),
    /// A resource handle that is not live in this workload's table.
    InvalidHandle(u32),
    /// The workload holds as many handles as it may.
    TooManyHandles(usize),
    /// `cabi_realloc` is missing, trapped, or returned an unusable pointer.
    Realloc,
    /// A host result too large to express in 32-bit memory.
    TooLarge,
}

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbiError::OutOfBounds { ptr, len } => write!(f, "{len} bytes at {ptr:#x} lie outside linear memory"),
            AbiError::Misaligned { ptr, align } => write!(f, "pointer {ptr:#x} is not {align}-byte aligned"),
            AbiError::InvalidUtf8 => write!(f, "string argument is not valid UTF-8"),
            AbiError::InvalidDiscriminant(d) => write!(f, "invalid discriminant {d}"),
            AbiError::InvalidHandle(h) => write!(f, "invalid resource handle {h}"),
            AbiError::TooManyHandles(n) => write!(f, "too many resource handles (limit {n})"),
            AbiError::Realloc => write!(f, "cabi_realloc failed or returned a bad pointer"),
            AbiError::TooLarge => write!(f, "result too large for linear memory"),
        }
    }
}

impl core::error::Error for AbiError {}

/// The checked range `ptr .. ptr + len` within a memory of `size` bytes.
pub fn checked_range(ptr: u32, len: u32, size: usize) -> Result<core::ops::Range<usize>, AbiError> {
    let start = ptr as usize;
    let end = start.checked_add(len as usize).ok_or(AbiError::OutOfBounds { ptr, len })?;
    if end > size {
        return Err(AbiError::OutOfBounds { ptr, len });
    }
    Ok(start..end)
}

fn check_align(ptr: u32, align: u32) -> Result<(), AbiError> {
    if !ptr.is_multiple_of(align) {
        return Err(AbiError::Misaligned { ptr, align });
    }
    Ok(())
}

/// `offset` rounded up to `align` (a power of two), as the ABI lays out fields.
pub const fn align_to(offset: u32, align: u32) -> u32 {
    (offset + align - 1) & !(align - 1)
}

/// Lifts a `list<u8>` argument.
pub fn lift_bytes(memory: &[u8], ptr: u32, len: u32) -> Result<&[u8], AbiError> {
    Ok(&memory[checked_range(ptr, len, memory.len())?])
}

/// Lifts a `string` argument (UTF-8, byte length).
pub fn lift_string(memory: &[u8], ptr: u32, len: u32) -> Result<&str, AbiError> {
    core::str::from_utf8(lift_bytes(memory, ptr, len)?).map_err(|_| AbiError::InvalidUtf8)
}

/// Lifts a `bool` (any non-zero is true, per the ABI).
pub fn lift_bool(value: i32) -> bool {
    value != 0
}

/// Lifts an `enum` with `cases` cases.
pub fn lift_enum(value: i32, cases: u32) -> Result<u32, AbiError> {
    let value = value as u32;
    if value >= cases {
        return Err(AbiError::InvalidDiscriminant(value));
    }
    Ok(value)
}

/// The workload side the host needs while lowering: its memory and its allocator.
pub trait Guest {
    /// Calls the guest's `cabi_realloc(0, 0, align, size)` and returns the new block.
    fn realloc(&mut self, align: u32, size: u32) -> Result<u32, AbiError>;
    /// The guest's linear memory as it is now (a realloc may have grown it).
    fn memory(&mut self) -> &mut [u8];
}

/// Copies `bytes` into a fresh guest allocation (`list<u8>` / `string` lowering);
/// returns `(ptr, len)`.
pub fn lower_bytes(guest: &mut dyn Guest, bytes: &[u8]) -> Result<(u32, u32), AbiError> {
    let len = u32::try_from(bytes.len()).map_err(|_| AbiError::TooLarge)?;
    if len == 0 {
        // An empty list needs no storage; any aligned pointer is valid.
        return Ok((1, 0));
    }
    let ptr = guest.realloc(1, len)?;
    let memory = guest.memory();
    let range = checked_range(ptr, len, memory.len()).map_err(|_| AbiError::Realloc)?;
    memory[range].copy_from_slice(bytes);
    Ok((ptr, len))
}

/// Lowers a `list<list<u8>>`: the outer list holds `(ptr, len)` pairs (8 bytes each,
/// 4-aligned).
pub fn lower_byte_lists(guest: &mut dyn Guest, lists: &[&[u8]]) -> Result<(u32, u32), AbiError> {
    let count = u32::try_from(lists.len()).map_err(|_| AbiError::TooLarge)?;
    let mut pairs = Vec::with_capacity(lists.len());
    for list in lists {
        pairs.push(lower_bytes(guest, list)?);
    }
    if count == 0 {
        return Ok((4, 0));
    }
    let size = count.checked_mul(8).ok_or(AbiError::TooLarge)?;
    let ptr = guest.realloc(4, size)?;
    check_align(ptr, 4).map_err(|_| AbiError::Realloc)?;
    let mut out = Writer::new(guest.memory(), ptr, size).map_err(|_| AbiError::Realloc)?;
    for (i, (p, l)) in pairs.into_iter().enumerate() {
        out.u32(i as u32 * 8, p)?;
        out.u32(i as u32 * 8 + 4, l)?;
    }
    Ok((ptr, count))
}

/// Writes a value's fields into a return area (or any record) at a guest address,
/// after checking the whole area lies in memory and is aligned.
pub struct Writer<'a> {
    area: &'a mut [u8],
}

impl<'a> Writer<'a> {
    /// The `size`-byte area at `ptr`, which must be aligned to `align`... checked by
    /// [`Writer::aligned`]; this constructor checks bounds only.
    pub fn new(memory: &'a mut [u8], ptr: u32, size: u32) -> Result<Self, AbiError> {
        let range = checked_range(ptr, size, memory.len())?;
        Ok(Self { area: &mut memory[range] })
    }

    /// A return area: in bounds and aligned to the result type's alignment.
    pub fn aligned(memory: &'a mut [u8], ptr: u32, size: u32, align: u32) -> Result<Self, AbiError> {
        check_align(ptr, align)?;
        Self::new(memory, ptr, size)
    }

    fn put(&mut self, offset: u32, bytes: &[u8]) -> Result<(), AbiError> {
        let len = bytes.len() as u32;
        let range = checked_range(offset, len, self.area.len())?;
        self.area[range].copy_from_slice(bytes);
        Ok(())
    }

    pub fn u8(&mut self, offset: u32, value: u8) -> Result<(), AbiError> {
        self.put(offset, &[value])
    }

    pub fn u16(&mut self, offset: u32, value: u16) -> Result<(), AbiError> {
        self.put(offset, &value.to_le_bytes())
    }

    pub fn u32(&mut self, offset: u32, value: u32) -> Result<(), AbiError> {
        self.put(offset, &value.to_le_bytes())
    }

    pub fn u64(&mut self, offset: u32, value: u64) -> Result<(), AbiError> {
        self.put(offset, &value.to_le_bytes())
    }

    /// A `list`/`string` field: `(ptr, len)` as two `u32`s.
    pub fn list(&mut self, offset: u32, (ptr, len): (u32, u32)) -> Result<(), AbiError> {
        self.u32(offset, ptr)?;
        self.u32(offset + 4, len)
    }
}

/// A workload's table of live resource handles of one kind. Handles are small
/// integers starting at 1 (0 is never valid), reused after a drop, and bounded.
pub struct ResourceTable<T> {
    slots: Vec<Option<T>>,
    live: usize,
    limit: usize,
}

impl<T> ResourceTable<T> {
    pub fn new(limit: usize) -> Self {
        Self { slots: Vec::new(), live: 0, limit }
    }

    pub fn insert(&mut self, value: T) -> Result<u32, AbiError> {
        if self.live >= self.limit {
            return Err(AbiError::TooManyHandles(self.limit));
        }
        let index = match self.slots.iter().position(Option::is_none) {
            Some(free) => {
                self.slots[free] = Some(value);
                free
            }
            None => {
                self.slots.push(Some(value));
                self.slots.len() - 1
            }
        };
        self.live += 1;
        u32::try_from(index + 1).map_err(|_| AbiError::TooLarge)
    }

    fn slot(handle: u32) -> Option<usize> {
        (handle as usize).checked_sub(1)
    }

    pub fn get(&self, handle: u32) -> Result<&T, AbiError> {
        Self::slot(handle)
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
            .ok_or(AbiError::InvalidHandle(handle))
    }

    pub fn get_mut(&mut self, handle: u32) -> Result<&mut T, AbiError> {
        Self::slot(handle)
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or(AbiError::InvalidHandle(handle))
    }

    /// `[resource-drop]`: removes and returns the value.
    pub fn remove(&mut self, handle: u32) -> Result<T, AbiError> {
        let value = Self::slot(handle)
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::take)
            .ok_or(AbiError::InvalidHandle(handle))?;
        self.live -= 1;
        Ok(value)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest with a bump allocator, like wit-bindgen's `cabi_realloc` over a Vec.
    struct MockGuest {
        memory: Vec<u8>,
        next: u32,
        fail: bool,
    }

    impl Guest for MockGuest {
        fn realloc(&mut self, align: u32, size: u32) -> Result<u32, AbiError> {
            if self.fail {
                return Err(AbiError::Realloc);
            }
            let ptr = align_to(self.next, align);
            self.next = ptr + size;
            Ok(ptr)
        }

        fn memory(&mut self) -> &mut [u8] {
            &mut self.memory
        }
    }

    fn guest() -> MockGuest {
        MockGuest { memory: vec![0; 4096], next: 1024, fail: false }
    }

    #[test]
    fn lifting_checks_bounds_and_utf8() {
        let mut memory = vec![0u8; 64];
        memory[8..13].copy_from_slice(b"hello");
        assert_eq!(lift_string(&memory, 8, 5), Ok("hello"));
        assert_eq!(lift_bytes(&memory, 64, 0), Ok(&[][..]));
        assert_eq!(lift_bytes(&memory, 60, 5), Err(AbiError::OutOfBounds { ptr: 60, len: 5 }));
        assert_eq!(lift_bytes(&memory, u32::MAX, 2), Err(AbiError::OutOfBounds { ptr: u32::MAX, len: 2 }));
        assert_eq!(lift_bytes(&memory, 1, u32::MAX), Err(AbiError::OutOfBounds { ptr: 1, len: u32::MAX }));
        memory[20] = 0xff;
        assert_eq!(lift_string(&memory, 20, 1), Err(AbiError::InvalidUtf8));
        assert_eq!(lift_enum(2, 3), Ok(2));
        assert_eq!(lift_enum(3, 3), Err(AbiError::InvalidDiscriminant(3)));
        assert_eq!(lift_enum(-1, 3), Err(AbiError::InvalidDiscriminant(u32::MAX)));
        assert!(lift_bool(2));
    }

    #[test]
    fn lowering_allocates_through_the_guest() {
        let mut g = guest();
        let (ptr, len) = lower_bytes(&mut g, b"abc").unwrap();
        assert_eq!((ptr, len), (1024, 3));
        assert_eq!(&g.memory[1024..1027], b"abc");
        assert_eq!(lower_bytes(&mut g, b"").unwrap().1, 0);

        let (outer, count) = lower_byte_lists(&mut g, &[b"x", b"yz"]).unwrap();
        assert_eq!(count, 2);
        assert_eq!(outer % 4, 0);
        let read = |m: &[u8], at: usize| u32::from_le_bytes(m[at..at + 4].try_into().unwrap());
        let (p0, l0) = (read(&g.memory, outer as usize), read(&g.memory, outer as usize + 4));
        assert_eq!(&g.memory[p0 as usize..(p0 + l0) as usize], b"x");
        let (p1, l1) = (read(&g.memory, outer as usize + 8), read(&g.memory, outer as usize + 12));
        assert_eq!(&g.memory[p1 as usize..(p1 + l1) as usize], b"yz");
    }

    #[test]
    fn hostile_realloc_results_are_errors() {
        // A guest whose allocator returns a block past the end of memory.
        let mut g = MockGuest { memory: vec![0; 64], next: 60, fail: false };
        assert_eq!(lower_bytes(&mut g, b"too long"), Err(AbiError::Realloc));
        let mut g = MockGuest { memory: vec![0; 64], next: 0, fail: true };
        assert_eq!(lower_bytes(&mut g, b"x"), Err(AbiError::Realloc));
    }

    #[test]
    fn return_areas_are_checked() {
        let mut memory = vec![0u8; 32];
        assert_eq!(Writer::aligned(&mut memory, 2, 8, 4).err(), Some(AbiError::Misaligned { ptr: 2, align: 4 }));
        assert!(Writer::aligned(&mut memory, 28, 8, 4).is_err());
        let mut w = Writer::aligned(&mut memory, 8, 16, 8).unwrap();
        w.u8(0, 1).unwrap();
        w.u64(8, 0x0102_0304_0506_0708).unwrap();
        assert!(w.u64(12, 0).is_err(), "writes stay inside the area");
        assert_eq!(memory[8], 1);
        assert_eq!(memory[16], 8);
    }

    #[test]
    fn resource_tables() {
        let mut t = ResourceTable::new(2);
        let a = t.insert("a").unwrap();
        let b = t.insert("b").unwrap();
        assert_eq!((a, b), (1, 2));
        assert_eq!(t.insert("c"), Err(AbiError::TooManyHandles(2)));
        assert_eq!(t.get(0), Err(AbiError::InvalidHandle(0)));
        assert_eq!(t.get(3), Err(AbiError::InvalidHandle(3)));
        assert_eq!(t.remove(a), Ok("a"));
        assert_eq!(t.remove(a), Err(AbiError::InvalidHandle(a)), "no double drop");
        assert_eq!(t.insert("d").unwrap(), 1, "slots are reused");
        assert_eq!(*t.get(1).unwrap(), "d");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn layout_helpers() {
        assert_eq!(align_to(0, 4), 0);
        assert_eq!(align_to(1, 4), 4);
        assert_eq!(align_to(9, 8), 16);
        assert_eq!(checked_range(0, 0, 0), Ok(0..0));
    }
}
