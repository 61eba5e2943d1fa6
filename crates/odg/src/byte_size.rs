//! Byte sizes as operators write them: `256MiB`, `1GiB`, `512KB`, `1048576`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a byte size (e.g. 256MiB, 1GiB, 1048576)"))?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "ki" | "kib" => 1 << 10,
            "m" | "mb" => 1000 * 1000,
            "mi" | "mib" => 1 << 20,
            "g" | "gb" => 1000 * 1000 * 1000,
            "gi" | "gib" => 1 << 30,
            "t" | "tb" => 1000 * 1000 * 1000 * 1000,
            "ti" | "tib" => 1 << 40,
            other => return Err(format!("unknown byte unit {other:?} in {text:?}")),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl ByteSize {
    /// The size as an operator would write it: in the largest binary unit that divides it
    /// (`256MiB`, `1GiB`, `1000`), so help texts can state defaults from their constants.
    pub fn in_binary_units(bytes: u64) -> String {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        UNITS
            .iter()
            .find(|(size, _)| bytes >= *size && bytes % size == 0)
            .map_or_else(
                || bytes.to_string(),
                |(size, unit)| format!("{}{unit}", bytes / size),
            )
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(bytes) => Ok(ByteSize(bytes)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_binary_units_read_back_as_the_same_size() {
        for (bytes, text) in [
            (256 << 20, "256MiB"),
            (1 << 30, "1GiB"),
            (512 * 1024, "512KiB"),
            (1000, "1000"),
            (3 << 40, "3TiB"),
            (0, "0"),
        ] {
            assert_eq!(ByteSize::in_binary_units(bytes), text);
            assert_eq!(text.parse::<ByteSize>().unwrap().0, bytes);
        }
    }

    #[test]
    fn units() {
        assert_eq!("256MiB".parse::<ByteSize>().unwrap().0, 256 << 20);
        assert_eq!("1GiB".parse::<ByteSize>().unwrap().0, 1 << 30);
        assert_eq!("512KB".parse::<ByteSize>().unwrap().0, 512_000);
        assert_eq!("1048576".parse::<ByteSize>().unwrap().0, 1 << 20);
        assert_eq!(" 2 mib ".parse::<ByteSize>().unwrap().0, 2 << 20);
        assert!("lots".parse::<ByteSize>().is_err());
        assert!("12XB".parse::<ByteSize>().is_err());
        assert!("99999999999TiB".parse::<ByteSize>().is_err());
    }
}
