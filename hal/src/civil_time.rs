//! Calendar arithmetic: turning CMOS RTC registers into a date, and dates into Unix time.
//!
//! Pure logic so the odd corners (BCD, 12-hour mode, leap years) are tested on the host.
//! Day counting uses the proleptic Gregorian calendar ("days from civil", as in
//! H. Hinnant's `chrono`-compatible date algorithms).

use core::fmt;

/// A UTC date and time with one-second resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

/// The field a [`CivilTimeError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// The RTC's century register.
    Century,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Year => "year",
            Field::Month => "month",
            Field::Day => "day",
            Field::Hour => "hour",
            Field::Minute => "minute",
            Field::Second => "second",
            Field::Century => "century",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CivilTimeError {
    /// A field is out of range (month 13, February 30, hour 24, year before 1970...).
    OutOfRange(Field),
    /// A register held digits that are not valid BCD.
    InvalidBcd(Field),
}

impl fmt::Display for CivilTimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CivilTimeError::OutOfRange(field) => write!(f, "{field} out of range"),
            CivilTimeError::InvalidBcd(field) => write!(f, "{field} is not valid BCD"),
        }
    }
}

impl core::error::Error for CivilTimeError {}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (valid for years ≥ 1970).
fn days_from_civil(year: u32, month: u8, day: u8) -> u64 {
    // Shift the year to start in March so the leap day is the year's last day.
    let (y, m) = if month <= 2 { (year - 1, u32::from(month) + 9) } else { (year, u32::from(month) - 3) };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + u32::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (u64::from(era) * 146_097 + u64::from(day_of_era)) - 719_468
}

impl DateTime {
    pub const MIN_YEAR: u16 = 1970;
    pub const MAX_YEAR: u16 = 9999;

    /// Validates every field: years 1970–9999, real calendar days (leap years per the
    /// Gregorian rule), a 24-hour clock, and no leap second (the RTC never shows one).
    pub fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Result<Self, CivilTimeError> {
        if !(Self::MIN_YEAR..=Self::MAX_YEAR).contains(&year) {
            return Err(CivilTimeError::OutOfRange(Field::Year));
        }
        if !(1..=12).contains(&month) {
            return Err(CivilTimeError::OutOfRange(Field::Month));
        }
        if day == 0 || day > days_in_month(u32::from(year), month) {
            return Err(CivilTimeError::OutOfRange(Field::Day));
        }
        if hour > 23 {
            return Err(CivilTimeError::OutOfRange(Field::Hour));
        }
        if minute > 59 {
            return Err(CivilTimeError::OutOfRange(Field::Minute));
        }
        if second > 59 {
            return Err(CivilTimeError::OutOfRange(Field::Second));
        }
        Ok(Self { year, month, day, hour, minute, second })
    }

    pub fn year(&self) -> u16 {
        self.year
    }

    /// 1–12.
    pub fn month(&self) -> u8 {
        self.month
    }

    /// 1–31.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// 0–23.
    pub fn hour(&self) -> u8 {
        self.hour
    }

    pub fn minute(&self) -> u8 {
        self.minute
    }

    pub fn second(&self) -> u8 {
        self.second
    }

    /// Seconds since 1970-01-01T00:00:00Z, ignoring leap seconds (as Unix time does).
    pub fn to_unix_seconds(&self) -> u64 {
        let days = days_from_civil(u32::from(self.year), self.month, self.day);
        days * 86_400 + u64::from(self.hour) * 3600 + u64::from(self.minute) * 60 + u64::from(self.second)
    }

    /// The inverse of [`DateTime::to_unix_seconds`]; `None` past 9999-12-31T23:59:59Z.
    pub fn from_unix_seconds(seconds: u64) -> Option<Self> {
        let days = seconds / 86_400;
        let rem = seconds % 86_400;
        // civil_from_days, shifted to the 0000-03-01 epoch.
        let z = days + 719_468;
        let era = z / 146_097;
        let day_of_era = z - era * 146_097;
        let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = year_of_era + era * 400 + u64::from(month <= 2);
        let year = u16::try_from(year).ok()?;
        Self::new(year, month, day, (rem / 3600) as u8, (rem / 60 % 60) as u8, (rem % 60) as u8).ok()
    }
}

impl fmt::Display for DateTime {
    /// ISO 8601, e.g. `2026-11-24T14:05:09Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Decodes one packed-BCD byte (two decimal digits).
pub fn bcd_to_binary(v: u8) -> Option<u8> {
    let (high, low) = (v >> 4, v & 0x0f);
    (high <= 9 && low <= 9).then_some(high * 10 + low)
}

/// MC146818 status register B bits (datasheet, "Register B").
const STATUS_B_24_HOUR: u8 = 1 << 1;
const STATUS_B_BINARY: u8 = 1 << 2;
/// In 12-hour mode, bit 7 of the hours register marks PM.
const HOUR_PM: u8 = 0x80;

/// Raw MC146818 time registers, as read from the CMOS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtcRegisters {
    pub seconds: u8,
    pub minutes: u8,
    pub hours: u8,
    pub day: u8,
    pub month: u8,
    /// Two-digit year.
    pub year: u8,
    /// The century register (ACPI FADT `CENTURY`), if the machine has one.
    pub century: Option<u8>,
    pub status_b: u8,
}

impl RtcRegisters {
    /// Interprets the registers according to status register B (BCD or binary, 12- or
    /// 24-hour) and the century register (20xx when there is none).
    pub fn to_datetime(&self) -> Result<DateTime, CivilTimeError> {
        let binary = self.status_b & STATUS_B_BINARY != 0;
        let twelve_hour = self.status_b & STATUS_B_24_HOUR == 0;
        let decode = |v: u8, field: Field| {
            if binary { Ok(v) } else { bcd_to_binary(v).ok_or(CivilTimeError::InvalidBcd(field)) }
        };
        // The PM flag exists only in 12-hour mode; in 24-hour mode a set bit 7 is garbage
        // and fails decoding or the range check below.
        let (pm, hours) =
            if twelve_hour { (self.hours & HOUR_PM != 0, self.hours & !HOUR_PM) } else { (false, self.hours) };
        let mut hour = decode(hours, Field::Hour)?;
        if twelve_hour {
            // 12-hour clock: 12 AM is midnight, 12 PM is noon.
            if !(1..=12).contains(&hour) {
                return Err(CivilTimeError::OutOfRange(Field::Hour));
            }
            hour = match (hour, pm) {
                (12, false) => 0,
                (12, true) => 12,
                (h, true) => h + 12,
                (h, false) => h,
            };
        }
        // Without a century register, assume 20xx: the RTC cannot say, and an image built
        // this century will not boot with a clock set in the last one.
        let century = match self.century {
            Some(c) => decode(c, Field::Century)?,
            None => 20,
        };
        if century > 99 {
            return Err(CivilTimeError::OutOfRange(Field::Century));
        }
        // Binary mode could hold anything up to 255; the register is two digits.
        let year_of_century = decode(self.year, Field::Year)?;
        if year_of_century > 99 {
            return Err(CivilTimeError::OutOfRange(Field::Year));
        }
        DateTime::new(
            u16::from(century) * 100 + u16::from(year_of_century),
            decode(self.month, Field::Month)?,
            decode(self.day, Field::Day)?,
            hour,
            decode(self.minutes, Field::Minute)?,
            decode(self.seconds, Field::Second)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> DateTime {
        DateTime::new(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn known_unix_times() {
        assert_eq!(dt(1970, 1, 1, 0, 0, 0).to_unix_seconds(), 0);
        assert_eq!(dt(2000, 2, 29, 0, 0, 0).to_unix_seconds(), 951_782_400);
        assert_eq!(dt(2000, 3, 1, 0, 0, 0).to_unix_seconds(), 951_782_400 + 86_400);
        assert_eq!(dt(2038, 1, 19, 3, 14, 8).to_unix_seconds(), 1 << 31);
        assert_eq!(dt(2038, 1, 19, 3, 14, 7).to_unix_seconds(), (1 << 31) - 1);
        assert_eq!(dt(2026, 11, 24, 0, 0, 0).to_unix_seconds(), 1_795_478_400);
        assert_eq!(dt(9999, 12, 31, 23, 59, 59).to_unix_seconds(), 253_402_300_799);
        assert_eq!(dt(2026, 11, 24, 14, 5, 9).to_string(), "2026-11-24T14:05:09Z");
    }

    #[test]
    fn unix_roundtrip() {
        for s in [0u64, 59, 86_399, 951_782_400, 1 << 31, 1_795_478_400, 4_102_444_800, 253_402_300_799] {
            assert_eq!(DateTime::from_unix_seconds(s).unwrap().to_unix_seconds(), s, "{s}");
        }
        let t = DateTime::from_unix_seconds(1 << 31).unwrap();
        let fields = (t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second());
        assert_eq!(fields, (2038, 1, 19, 3, 14, 8));
        assert_eq!(DateTime::from_unix_seconds(253_402_300_800), None);
        assert_eq!(DateTime::from_unix_seconds(u64::MAX), None);
    }

    #[test]
    fn day_counting_matches_a_naive_count() {
        // Walk every day from 1970 to 2500 by adding up month lengths, independently of
        // the era arithmetic, and check both directions at each midnight.
        let mut days = 0u64;
        for year in 1970..=2500u16 {
            for month in 1..=12u8 {
                for day in 1..=days_in_month(u32::from(year), month) {
                    let date = dt(year, month, day, 0, 0, 0);
                    assert_eq!(date.to_unix_seconds(), days * 86_400, "{date}");
                    let later = DateTime::from_unix_seconds(days * 86_400 + 3661);
                    assert_eq!(later, Some(dt(year, month, day, 1, 1, 1)));
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn leap_years() {
        assert!(DateTime::new(2000, 2, 29, 0, 0, 0).is_ok(), "divisible by 400");
        assert!(DateTime::new(2024, 2, 29, 0, 0, 0).is_ok());
        assert!(DateTime::new(2100, 2, 29, 0, 0, 0).is_err(), "divisible by 100");
        assert!(DateTime::new(2026, 2, 29, 0, 0, 0).is_err());
    }

    #[test]
    fn impossible_dates_are_rejected() {
        let out = |f| Err(CivilTimeError::OutOfRange(f));
        assert_eq!(DateTime::new(2026, 13, 1, 0, 0, 0), out(Field::Month));
        assert_eq!(DateTime::new(2026, 0, 1, 0, 0, 0), out(Field::Month));
        assert_eq!(DateTime::new(2024, 2, 30, 0, 0, 0), out(Field::Day));
        assert_eq!(DateTime::new(2024, 4, 31, 0, 0, 0), out(Field::Day));
        assert_eq!(DateTime::new(2024, 1, 0, 0, 0, 0), out(Field::Day));
        assert_eq!(DateTime::new(1969, 12, 31, 0, 0, 0), out(Field::Year));
        assert_eq!(DateTime::new(1900, 2, 28, 0, 0, 0), out(Field::Year));
        assert_eq!(DateTime::new(10_000, 1, 1, 0, 0, 0), out(Field::Year));
        assert_eq!(DateTime::new(2024, 2, 29, 24, 0, 0), out(Field::Hour));
        assert_eq!(DateTime::new(2024, 1, 1, 0, 60, 0), out(Field::Minute));
        assert_eq!(DateTime::new(2024, 1, 1, 0, 0, 60), out(Field::Second));
        assert_eq!(CivilTimeError::OutOfRange(Field::Day).to_string(), "day out of range");
    }

    #[test]
    fn bcd() {
        assert_eq!(bcd_to_binary(0x59), Some(59));
        assert_eq!(bcd_to_binary(0x00), Some(0));
        assert_eq!(bcd_to_binary(0x99), Some(99));
        assert_eq!(bcd_to_binary(0x5a), None);
        assert_eq!(bcd_to_binary(0xa0), None);
        assert_eq!(bcd_to_binary(0xff), None);
    }

    /// 2026-11-24 xx:05:09 in BCD, with the given hours register and status B.
    fn regs(hours: u8, status_b: u8) -> RtcRegisters {
        let century = Some(0x20);
        RtcRegisters { seconds: 0x09, minutes: 0x05, hours, day: 0x24, month: 0x11, year: 0x26, century, status_b }
    }

    /// The same in binary mode.
    fn binary(hours: u8, status_b: u8) -> RtcRegisters {
        let status_b = status_b | STATUS_B_BINARY;
        RtcRegisters { seconds: 9, minutes: 5, hours, day: 24, month: 11, year: 26, century: Some(20), status_b }
    }

    #[test]
    fn rtc_bcd_24_hour() {
        assert_eq!(regs(0x14, STATUS_B_24_HOUR).to_datetime(), Ok(dt(2026, 11, 24, 14, 5, 9)));
        assert_eq!(regs(0x00, STATUS_B_24_HOUR).to_datetime(), Ok(dt(2026, 11, 24, 0, 5, 9)));
        assert_eq!(regs(0x23, STATUS_B_24_HOUR).to_datetime(), Ok(dt(2026, 11, 24, 23, 5, 9)));
    }

    #[test]
    fn rtc_binary_and_no_century() {
        let r = RtcRegisters { century: None, ..binary(14, STATUS_B_24_HOUR) };
        assert_eq!(r.to_datetime(), Ok(dt(2026, 11, 24, 14, 5, 9)));
    }

    #[test]
    fn rtc_century_register() {
        let mut r = regs(0x14, STATUS_B_24_HOUR);
        r.century = Some(0x19);
        r.year = 0x99;
        assert_eq!(r.to_datetime(), Ok(dt(1999, 11, 24, 14, 5, 9)));
        r.year = 0x69;
        assert_eq!(r.to_datetime(), Err(CivilTimeError::OutOfRange(Field::Year)), "before 1970");
        r.century = Some(0x2a);
        assert_eq!(r.to_datetime(), Err(CivilTimeError::InvalidBcd(Field::Century)));
    }

    #[test]
    fn rtc_12_hour_bcd() {
        assert_eq!(regs(0x12, 0).to_datetime(), Ok(dt(2026, 11, 24, 0, 5, 9)), "12 AM is midnight");
        assert_eq!(regs(0x80 | 0x12, 0).to_datetime(), Ok(dt(2026, 11, 24, 12, 5, 9)), "12 PM is noon");
        assert_eq!(regs(0x80 | 0x02, 0).to_datetime(), Ok(dt(2026, 11, 24, 14, 5, 9)));
        assert_eq!(regs(0x80 | 0x11, 0).to_datetime(), Ok(dt(2026, 11, 24, 23, 5, 9)));
        assert_eq!(regs(0x01, 0).to_datetime(), Ok(dt(2026, 11, 24, 1, 5, 9)));
        assert_eq!(regs(0x11, 0).to_datetime(), Ok(dt(2026, 11, 24, 11, 5, 9)));
        assert_eq!(regs(0x13, 0).to_datetime(), Err(CivilTimeError::OutOfRange(Field::Hour)));
        let no_hour_zero = regs(0x00, 0).to_datetime();
        assert_eq!(no_hour_zero, Err(CivilTimeError::OutOfRange(Field::Hour)), "no hour 0 on a 12-hour clock");
        assert_eq!(regs(0x80, 0).to_datetime(), Err(CivilTimeError::OutOfRange(Field::Hour)));
    }

    #[test]
    fn rtc_12_hour_binary() {
        let binary = |hours| binary(hours, 0);
        assert_eq!(binary(12).to_datetime(), Ok(dt(2026, 11, 24, 0, 5, 9)));
        assert_eq!(binary(0x80 | 12).to_datetime(), Ok(dt(2026, 11, 24, 12, 5, 9)));
        assert_eq!(binary(0x80 | 7).to_datetime(), Ok(dt(2026, 11, 24, 19, 5, 9)));
        assert_eq!(binary(13).to_datetime(), Err(CivilTimeError::OutOfRange(Field::Hour)));
    }

    #[test]
    fn rtc_garbage_is_rejected() {
        let bad_bcd = |f| Err(CivilTimeError::InvalidBcd(f));
        let out = |f| Err(CivilTimeError::OutOfRange(f));
        assert_eq!(regs(0x1a, STATUS_B_24_HOUR).to_datetime(), bad_bcd(Field::Hour));
        // The PM bit means nothing in 24-hour mode.
        assert_eq!(regs(0x80 | 0x02, STATUS_B_24_HOUR).to_datetime(), out(Field::Hour));
        assert_eq!(regs(0x24, STATUS_B_24_HOUR).to_datetime(), out(Field::Hour));
        let good = regs(0x14, STATUS_B_24_HOUR);
        assert_eq!(RtcRegisters { month: 0x13, ..good }.to_datetime(), out(Field::Month));
        assert_eq!(RtcRegisters { day: 0x31, ..good }.to_datetime(), out(Field::Day), "November 31");
        assert_eq!(RtcRegisters { day: 0x00, ..good }.to_datetime(), out(Field::Day));
        assert_eq!(RtcRegisters { seconds: 0x60, ..good }.to_datetime(), out(Field::Second));
        assert_eq!(RtcRegisters { minutes: 0x5f, ..good }.to_datetime(), bad_bcd(Field::Minute));
        assert_eq!(RtcRegisters { year: 0xff, ..good }.to_datetime(), bad_bcd(Field::Year));
        let binary = binary(14, STATUS_B_24_HOUR);
        assert_eq!(RtcRegisters { year: 126, ..binary }.to_datetime(), out(Field::Year), "two-digit register");
        assert_eq!(RtcRegisters { century: Some(200), ..binary }.to_datetime(), out(Field::Century));
        assert_eq!(RtcRegisters { hours: 0x80 | 14, ..binary }.to_datetime(), out(Field::Hour));
    }
}
