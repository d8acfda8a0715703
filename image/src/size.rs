//! Human sizes on the command line and in manifests: `65536`, `64KiB`, `16MiB`, `1GiB`
//! (also `K`/`M`/`G` and `KB`/`MB`/`GB`, all binary multiples, as QEMU's `-m` reads them).

use anyhow::{bail, Context, Result};

pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().with_context(|| format!("'{text}' is not a size (try 16MiB)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => bail!("unknown size unit '{other}' in '{text}' (use KiB, MiB or GiB)"),
    };
    number.checked_mul(multiplier).with_context(|| format!("size '{text}' is too large"))
}

/// A size that must not be zero (limits and RAM, where 0 would mean nothing or "none").
pub fn parse_nonzero_size(text: &str) -> Result<u64> {
    match parse_size(text)? {
        0 => bail!("the size must be greater than 0"),
        size => Ok(size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("16M").unwrap(), 16 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size(" 2 mb ").unwrap(), 2 << 20);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("5XB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1.5GiB").is_err());
        assert_eq!(parse_size("0").unwrap(), 0);
        assert!(parse_nonzero_size("0").is_err());
        assert!(parse_nonzero_size("0MiB").is_err());
        assert_eq!(parse_nonzero_size("1").unwrap(), 1);
    }
}
