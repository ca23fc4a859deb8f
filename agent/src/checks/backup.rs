//! `backup`: the newest file matching a pattern in a folder: its age, its size, how many.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use outpost_shared::{ByteSize, HumanDuration, Status};
use serde::Deserialize;

use super::{Check, CheckCommon, CheckFuture, Outcome, RunContext, SettingError, in_words};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    path: PathBuf,
    #[serde(default = "any_file")]
    pattern: String,
    max_age: HumanDuration,
    min_size: Option<ByteSize>,
    #[serde(default)]
    min_count: u32,
}

fn any_file() -> String {
    "*".to_owned()
}

struct Backup {
    common: CheckCommon,
    path: PathBuf,
    pattern: glob::Pattern,
    max_age: HumanDuration,
    min_size: Option<ByteSize>,
    min_count: u32,
}

pub(super) fn build(
    common: CheckCommon,
    table: toml::Table,
) -> Result<Arc<dyn Check>, SettingError> {
    let s: Settings = super::settings(table)?;
    let pattern = glob::Pattern::new(&s.pattern).map_err(|err| {
        SettingError::key(
            "pattern",
            format!(
                "{:?} is not a file pattern ({err}); expected like \"*.tar.gz\" or \"db-*.bak\"",
                s.pattern
            ),
        )
    })?;
    if s.pattern.contains('/') {
        return Err(SettingError::key(
            "pattern",
            "the pattern matches file names inside `path` and cannot contain '/'; put the folder in `path`",
        ));
    }
    if s.max_age.get().is_zero() {
        return Err(SettingError::key(
            "max_age",
            "max_age is 0s; expected how often the backup runs plus some slack, like \"26h\"",
        ));
    }
    Ok(Arc::new(Backup {
        common,
        path: s.path,
        pattern,
        max_age: s.max_age,
        min_size: s.min_size,
        min_count: s.min_count,
    }))
}

/// The matching files in a folder: (count, newest file's modification time and size).
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Files matching the pattern.
    pub count: u32,
    /// The newest one: name, modified, size.
    pub newest: Option<(String, SystemTime, u64)>,
}

/// Lists `dir` for files whose name matches `pattern`.
pub fn scan(dir: &Path, pattern: &glob::Pattern) -> std::io::Result<Found> {
    let mut found = Found {
        count: 0,
        newest: None,
    };
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !pattern.matches(&name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        found.count += 1;
        let modified = meta.modified()?;
        if found.newest.as_ref().is_none_or(|(_, m, _)| modified > *m) {
            found.newest = Some((name, modified, meta.len()));
        }
    }
    Ok(found)
}

impl Backup {
    fn judge(&self, found: std::io::Result<Found>, now: SystemTime) -> Outcome {
        let folder = self.path.display();
        let pattern = self.pattern.as_str();
        let found = match found {
            Ok(found) => found,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Outcome::new(
                    Status::Fail,
                    format!(
                        "The backup folder {folder} is missing (is the backup disk connected?)."
                    ),
                );
            }
            Err(err) => {
                return Outcome::new(
                    Status::Fail,
                    format!("The backup folder {folder} cannot be read: {err}."),
                );
            }
        };
        let Some((name, modified, size)) = found.newest else {
            return Outcome::new(
                Status::Fail,
                format!("No backup file ({pattern}) is in {folder}."),
            )
            .metric("count", 0.0);
        };
        let age = now.duration_since(modified).unwrap_or(Duration::ZERO);
        let every = in_words(self.max_age.get());
        let mut problems = Vec::new();
        if age > self.max_age.get() {
            problems.push(format!(
                "the last backup finished {} ago; it should run at least every {every}",
                in_words(age)
            ));
        }
        if let Some(min) = self.min_size
            && size < min.bytes()
        {
            problems.push(format!(
                "the newest backup {name} is only {} (expected at least {min})",
                ByteSize::new(size)
            ));
        }
        if found.count < self.min_count {
            problems.push(format!(
                "only {} backups are kept (expected at least {})",
                found.count, self.min_count
            ));
        }
        let outcome = if problems.is_empty() {
            Outcome::new(
                Status::Ok,
                format!(
                    "Last backup finished {} ago ({name}, {}).",
                    in_words(age),
                    ByteSize::new(size)
                ),
            )
        } else {
            let mut text = problems.join("; ");
            if let Some(first) = text.get(..1) {
                text = first.to_uppercase() + &text[1..];
            }
            Outcome::new(Status::Fail, format!("{text}."))
        };
        outcome
            .metric("age_s", age.as_secs() as f64)
            .metric("size_bytes", size as f64)
            .metric("count", f64::from(found.count))
    }
}

impl Check for Backup {
    fn common(&self) -> &CheckCommon {
        &self.common
    }

    fn thresholds(&self) -> std::collections::BTreeMap<String, f64> {
        let mut map = std::collections::BTreeMap::new();
        map.insert("max_age_s".into(), self.max_age.get().as_secs() as f64);
        if let Some(min) = self.min_size {
            map.insert("min_size_bytes".into(), min.bytes() as f64);
        }
        if self.min_count > 0 {
            map.insert("min_count".into(), f64::from(self.min_count));
        }
        map
    }

    fn run<'a>(&'a self, _ctx: &'a RunContext) -> CheckFuture<'a> {
        Box::pin(async move {
            let dir = self.path.clone();
            let pattern = self.pattern.clone();
            // A network share may hang: keep the listing off the runtime's threads.
            let found = tokio::task::spawn_blocking(move || scan(&dir, &pattern))
                .await
                .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
            self.judge(found, SystemTime::now())
        })
    }
}
