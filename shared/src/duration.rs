//! Human-friendly durations (`"90s"`, `"15m"`, `"26h"`, `"7d"`, `"1h30m"`) and sizes (`"256MB"`).

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};

/// Why a duration or size string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}: {reason}; {expected}")]
pub struct ParseUnitError {
    what: &'static str,
    value: String,
    reason: &'static str,
    expected: &'static str,
}

const DURATION_EXPECTED: &str =
    "expected a number with a unit (ms, s, m, h, d), like \"90s\", \"15m\", \"26h\" or \"1h30m\"";
const SIZE_EXPECTED: &str =
    "expected a number with a unit (B, KB, MB, GB, KiB, MiB, GiB), like \"256MB\"";

/// A duration written for people. Displays in its shortest exact form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HumanDuration(Duration);

impl HumanDuration {
    /// Wraps a std duration (sub-millisecond parts are kept but not displayed).
    pub const fn new(d: Duration) -> Self {
        Self(d)
    }

    /// Whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }

    /// The std duration.
    pub const fn get(self) -> Duration {
        self.0
    }

    /// The duration as a signed jiff span, saturating at about 292 years.
    pub fn to_signed(self) -> jiff::SignedDuration {
        jiff::SignedDuration::try_from(self.0).unwrap_or(jiff::SignedDuration::MAX)
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

impl FromStr for HumanDuration {
    type Err = ParseUnitError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseUnitError {
            what: "duration",
            value: value.to_owned(),
            reason,
            expected: DURATION_EXPECTED,
        };
        let text = value.trim();
        if text.is_empty() {
            return Err(err("it is empty"));
        }
        let mut total_ms: u128 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err("a number is missing before the unit"));
            }
            let number: u128 = rest[..digits]
                .parse()
                .map_err(|_| err("the number is too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit_ms: u128 = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "" => return Err(err("the unit is missing")),
                _ => return Err(err("the unit is unknown")),
            };
            rest = rest[unit_len..].trim_start();
            total_ms = number
                .checked_mul(unit_ms)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(|| err("the number is too large"))?;
        }
        let ms = u64::try_from(total_ms).map_err(|_| err("the number is too large"))?;
        Ok(Self(Duration::from_millis(ms)))
    }
}

impl TryFrom<String> for HumanDuration {
    type Error = ParseUnitError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<HumanDuration> for String {
    fn from(d: HumanDuration) -> String {
        d.to_string()
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HumanDuration({self})")
    }
}

/// A size in bytes written for people: `"256MB"` (powers of 1000) or `"256MiB"` (powers of 1024).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ByteSize(u64);

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn new(bytes: u64) -> Self {
        Self(bytes)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = ParseUnitError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseUnitError {
            what: "size",
            value: value.to_owned(),
            reason,
            expected: SIZE_EXPECTED,
        };
        let text = value.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("a number is missing"));
        }
        let number: u64 = text[..digits]
            .parse()
            .map_err(|_| err("the number is too large"))?;
        let factor: u64 = match text[digits..].trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => return Err(err("the unit is unknown")),
        };
        number
            .checked_mul(factor)
            .map(Self)
            .ok_or_else(|| err("the number is too large"))
    }
}

impl TryFrom<String> for ByteSize {
    type Error = ParseUnitError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ByteSize> for String {
    fn from(s: ByteSize) -> String {
        s.to_string()
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, size) in [
            ("GiB", 1u64 << 30),
            ("GB", 1_000_000_000),
            ("MiB", 1 << 20),
            ("MB", 1_000_000),
            ("KiB", 1 << 10),
            ("KB", 1_000),
        ] {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ByteSize({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_parse() {
        let cases = [
            ("90s", 90_000),
            ("15m", 900_000),
            ("26h", 93_600_000),
            ("7d", 604_800_000),
            ("1h30m", 5_400_000),
            ("1h 30m", 5_400_000),
            ("250ms", 250),
            ("0s", 0),
        ];
        for (text, ms) in cases {
            let d: HumanDuration = text.parse().expect(text);
            assert_eq!(d.get().as_millis(), ms, "{text}");
        }
    }

    #[test]
    fn bad_durations_say_what_is_valid() {
        for text in [
            "",
            "10",
            "s",
            "10x",
            "-5s",
            "1.5h",
            "99999999999999999999999d",
        ] {
            let err = text.parse::<HumanDuration>().expect_err(text).to_string();
            assert!(
                err.contains("expected a number with a unit"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn durations_display_shortest() {
        assert_eq!(HumanDuration::from_secs(5400).to_string(), "1h30m");
        assert_eq!(HumanDuration::from_secs(86_400 * 7).to_string(), "7d");
        assert_eq!(HumanDuration::from_secs(0).to_string(), "0s");
    }

    #[test]
    fn sizes_parse_and_display() {
        assert_eq!(
            "256MB".parse::<ByteSize>().map(ByteSize::bytes),
            Ok(256_000_000)
        );
        assert_eq!(
            "1MiB".parse::<ByteSize>().map(ByteSize::bytes),
            Ok(1_048_576)
        );
        assert_eq!("17".parse::<ByteSize>().map(ByteSize::bytes), Ok(17));
        assert_eq!(ByteSize::new(256_000_000).to_string(), "256MB");
        assert!("12 parsecs".parse::<ByteSize>().is_err());
    }

    proptest! {
        #[test]
        fn duration_display_round_trips(ms in 0u64..10_000_000_000_000) {
            let d = HumanDuration::new(Duration::from_millis(ms));
            prop_assert_eq!(d.to_string().parse::<HumanDuration>(), Ok(d));
        }

        #[test]
        fn size_display_round_trips(bytes in any::<u64>()) {
            let s = ByteSize::new(bytes);
            prop_assert_eq!(s.to_string().parse::<ByteSize>(), Ok(s));
        }

        #[test]
        fn duration_parser_never_panics(text in ".{0,40}") {
            let _ = text.parse::<HumanDuration>();
        }
    }
}
