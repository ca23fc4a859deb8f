//! Threshold helpers: grade a measured value against warn/fail limits, the same way on both sides.

use serde::{Deserialize, Serialize};

use crate::Status;

/// Warn and fail limits for one value where higher is worse (loss %, round trip, disk use).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Limits {
    /// At or above this the value is a warning.
    pub warn: Option<f64>,
    /// At or above this the value is a failure.
    pub fail: Option<f64>,
}

impl Limits {
    /// Limits with both bounds.
    pub const fn new(warn: Option<f64>, fail: Option<f64>) -> Self {
        Self { warn, fail }
    }

    /// Grades `value`: `Fail` at or above `fail`, `Warn` at or above `warn`, else `Ok`.
    /// A NaN value cannot be judged and grades `Unknown`.
    pub fn grade(&self, value: f64) -> Status {
        if value.is_nan() {
            return Status::Unknown;
        }
        if self.fail.is_some_and(|f| value >= f) {
            Status::Fail
        } else if self.warn.is_some_and(|w| value >= w) {
            Status::Warn
        } else {
            Status::Ok
        }
    }

    /// A configuration error when warn is above fail, so a value could fail without warning first.
    pub fn check_order(&self, name: &str) -> Result<(), String> {
        match (self.warn, self.fail) {
            (Some(w), Some(f)) if w > f => Err(format!(
                "warn_{name} ({w}) is above fail_{name} ({f}); the warning limit must be the lower one"
            )),
            _ => Ok(()),
        }
    }
}

/// The worst of several statuses, `Ok` for none.
pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Status {
    statuses
        .into_iter()
        .max_by_key(|s| s.severity())
        .unwrap_or(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_by_limits() {
        let limits = Limits::new(Some(20.0), Some(50.0));
        let cases = [
            (0.0, Status::Ok),
            (19.9, Status::Ok),
            (20.0, Status::Warn),
            (49.9, Status::Warn),
            (50.0, Status::Fail),
            (100.0, Status::Fail),
            (f64::NAN, Status::Unknown),
        ];
        for (value, want) in cases {
            assert_eq!(limits.grade(value), want, "{value}");
        }
        assert_eq!(Limits::default().grade(1e9), Status::Ok);
        assert_eq!(Limits::new(None, Some(1.0)).grade(0.5), Status::Ok);
    }

    #[test]
    fn order_is_checked() {
        assert!(
            Limits::new(Some(60.0), Some(50.0))
                .check_order("loss_pct")
                .is_err()
        );
        assert!(
            Limits::new(Some(10.0), Some(50.0))
                .check_order("loss_pct")
                .is_ok()
        );
    }

    #[test]
    fn worst_of() {
        assert_eq!(
            worst([Status::Ok, Status::Warn, Status::Unknown]),
            Status::Unknown
        );
        assert_eq!(worst([Status::Fail, Status::Unknown]), Status::Fail);
        assert_eq!(worst([]), Status::Ok);
    }
}
