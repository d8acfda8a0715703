//! The MC146818-compatible CMOS real-time clock: raw register reads. Interpreting them
//! (BCD, 12-hour mode, century) is pure logic in `halcyon_hal::civil_time`.

use super::port;
use halcyon_hal::civil_time::RtcRegisters;

const INDEX: u16 = 0x70;
const DATA: u16 = 0x71;
/// Setting bit 7 of the index keeps NMIs disabled while we talk to the RTC.
const NMI_DISABLE: u8 = 0x80;
const REG_SECONDS: u8 = 0x00;
const REG_MINUTES: u8 = 0x02;
const REG_HOURS: u8 = 0x04;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_STATUS_A: u8 = 0x0A;
const REG_STATUS_B: u8 = 0x0B;
/// Status A bit 7: an update is in progress; the time registers may be inconsistent.
const STATUS_A_UPDATE_IN_PROGRESS: u8 = 0x80;
/// The century register QEMU's RTC implements (the ACPI FADT names it; QEMU uses 32h).
const REG_CENTURY: u8 = 0x32;

fn read_register(register: u8) -> u8 {
    port::write_u8(INDEX, NMI_DISABLE | register);
    port::read_u8(DATA)
}

fn snapshot() -> RtcRegisters {
    RtcRegisters {
        seconds: read_register(REG_SECONDS),
        minutes: read_register(REG_MINUTES),
        hours: read_register(REG_HOURS),
        day: read_register(REG_DAY),
        month: read_register(REG_MONTH),
        year: read_register(REG_YEAR),
        century: Some(read_register(REG_CENTURY)),
        status_b: read_register(REG_STATUS_B),
    }
}

/// Reads the time: waits out an update in progress and re-reads until two snapshots
/// agree, so a rollover between two register reads cannot produce a torn time.
pub fn read_time() -> Option<RtcRegisters> {
    for _ in 0..16 {
        let mut spins = 0u32;
        while read_register(REG_STATUS_A) & STATUS_A_UPDATE_IN_PROGRESS != 0 {
            spins += 1;
            if spins > 1_000_000 {
                return None;
            }
            core::hint::spin_loop();
        }
        let first = snapshot();
        let second = snapshot();
        if first == second {
            return Some(first);
        }
    }
    None
}
