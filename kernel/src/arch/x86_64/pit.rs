//! The 8254 programmable interval timer, used only as a reference clock to calibrate the
//! TSC. Channel 0 is read by latching its counter, so no PC-speaker gate (port 61h) is
//! needed; QEMU's `microvm` machine has a PIT but no speaker port.

use super::port;

/// The PIT input clock (Intel 8254 datasheet; the IBM PC's 14.31818 MHz / 12).
pub const TICKS_PER_SECOND: u64 = 1_193_182;

const CHANNEL0_DATA: u16 = 0x40;
const MODE_COMMAND: u16 = 0x43;
/// Channel 0, access lobyte/hibyte, mode 2 (rate generator), binary.
const CHANNEL0_RATE_GENERATOR: u8 = 0b0011_0100;
/// Channel 0 counter-latch command.
const CHANNEL0_LATCH: u8 = 0b0000_0000;
/// Longest the kernel will poll before deciding the PIT does not count (in polls).
const MAX_POLLS: u32 = 50_000_000;

/// Channel 0 counting down from 65536 over and over.
pub struct FreeRunning {
    last: u16,
}

impl FreeRunning {
    pub fn start() -> Self {
        port::write_u8(MODE_COMMAND, CHANNEL0_RATE_GENERATOR);
        // A reload value of 0 means 65536.
        port::write_u8(CHANNEL0_DATA, 0);
        port::write_u8(CHANNEL0_DATA, 0);
        // The new count takes effect on the next input clock; read it from there.
        let mut timer = FreeRunning { last: 0 };
        timer.last = read_counter();
        timer
    }

    /// Polls until at least `ticks` PIT ticks have passed; returns how many did, or `None`
    /// if the counter never moves (no PIT).
    pub fn wait_ticks(&mut self, ticks: u64) -> Option<u64> {
        let mut elapsed: u64 = 0;
        for _ in 0..MAX_POLLS {
            let now = read_counter();
            // Counts down, wrapping from 1 to 65536 (read as 0): the difference modulo 2^16
            // is the number of ticks since the last poll, since polls are far closer
            // together than a full 55 ms period.
            elapsed += u64::from(self.last.wrapping_sub(now));
            self.last = now;
            if elapsed >= ticks {
                return Some(elapsed);
            }
        }
        None
    }
}

fn read_counter() -> u16 {
    port::write_u8(MODE_COMMAND, CHANNEL0_LATCH);
    let low = port::read_u8(CHANNEL0_DATA);
    let high = port::read_u8(CHANNEL0_DATA);
    u16::from_le_bytes([low, high])
}
