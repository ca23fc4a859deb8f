//! The outcome of one check run.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The status of a check result, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Working as expected.
    Ok,
    /// Working, but a warning threshold is crossed.
    Warn,
    /// Not working.
    Fail,
    /// The check could not tell (timed out, crashed, not permitted).
    Unknown,
}

impl Status {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
            Self::Unknown => "unknown",
        }
    }

    /// A word a site operator understands.
    pub const fn in_words(self) -> &'static str {
        match self {
            Self::Ok => "Working",
            Self::Warn => "Needs a look",
            Self::Fail => "Not working",
            Self::Unknown => "Cannot tell",
        }
    }

    /// How bad it is for sorting "worst first": fail > unknown > warn > ok.
    pub const fn severity(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warn => 1,
            Self::Unknown => 2,
            Self::Fail => 3,
        }
    }

    /// True for results that count towards `fail_after` (fail and unknown).
    pub const fn is_failure(self) -> bool {
        matches!(self, Self::Fail | Self::Unknown)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ok" => Ok(Self::Ok),
            "warn" => Ok(Self::Warn),
            "fail" => Ok(Self::Fail),
            "unknown" => Ok(Self::Unknown),
            other => Err(format!(
                "{other:?} is not a status; expected ok, warn, fail or unknown"
            )),
        }
    }
}
