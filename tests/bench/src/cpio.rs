//! A minimal `newc` cpio writer: the Linux baseline's initramfs, built without the
//! `cpio` tool (format: Linux `Documentation/driver-api/early-userspace/buffer-format.rst`).

#[derive(Clone)]
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

const MODE_DIR: u32 = 0o040_000;
const MODE_FILE: u32 = 0o100_000;

impl Archive {
    pub fn new() -> Self {
        Self { bytes: Vec::new(), next_inode: 1 }
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, body: &[u8]) {
        let fields = [self.next_inode, mode, 0, 0, nlink, 0, body.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        self.next_inode += 1;
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(body);
        self.pad();
    }

    pub fn dir(&mut self, name: &str) {
        self.entry(name, MODE_DIR | 0o755, 2, &[]);
    }

    pub fn file(&mut self, name: &str, permissions: u32, body: &[u8]) {
        self.entry(name, MODE_FILE | permissions, 1, body);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, &[]);
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let mut a = Archive::new();
        a.dir("bin");
        a.file("bin/x", 0o755, b"abc");
        let bytes = a.finish();
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
        assert!(bytes.windows(3).any(|w| w == b"abc"));
    }
}
