//! `resources`: disk use of one or more paths, memory use and load per CPU of the host.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use outpost_shared::{Status, threshold::Limits, threshold::worst};
use serde::Deserialize;

use super::{Check, CheckCommon, CheckFuture, Outcome, RunContext, SettingError};

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    disk_path: Option<OneOrMany>,
    warn_disk_pct: Option<f64>,
    fail_disk_pct: Option<f64>,
    warn_memory_pct: Option<f64>,
    fail_memory_pct: Option<f64>,
    warn_load_per_cpu: Option<f64>,
    fail_load_per_cpu: Option<f64>,
}

struct Resources {
    common: CheckCommon,
    gauge: Arc<Gauge>,
}

/// What one run measures; shared with the blocking thread that measures it.
struct Gauge {
    title: String,
    disk_paths: Vec<PathBuf>,
    disk: Limits,
    memory: Limits,
    load: Limits,
    /// A measurement is running (statfs on a hung network mount never returns).
    busy: AtomicBool,
}

pub(super) fn build(
    common: CheckCommon,
    table: toml::Table,
) -> Result<Arc<dyn Check>, SettingError> {
    let s: Settings = super::settings(table)?;
    let disk_paths = match s.disk_path {
        None => vec![PathBuf::from("/")],
        Some(OneOrMany::One(p)) => vec![p],
        Some(OneOrMany::Many(v)) => v,
    };
    if let Some(rel) = disk_paths.iter().find(|p| !p.is_absolute()) {
        return Err(SettingError::key(
            "disk_path",
            format!(
                "{} is not an absolute path; expected like \"/\" or \"/data\"",
                rel.display()
            ),
        ));
    }
    let disk = Limits::new(
        s.warn_disk_pct.or(Some(85.0)),
        s.fail_disk_pct.or(Some(95.0)),
    );
    let memory = Limits::new(s.warn_memory_pct.or(Some(90.0)), s.fail_memory_pct);
    let load = Limits::new(s.warn_load_per_cpu.or(Some(2.0)), s.fail_load_per_cpu);
    super::limits_in_order("disk_pct", disk)?;
    super::limits_in_order("memory_pct", memory)?;
    super::limits_in_order("load_per_cpu", load)?;
    Ok(Arc::new(Resources {
        gauge: Arc::new(Gauge {
            title: common.title.clone(),
            disk_paths,
            disk,
            memory,
            load,
            busy: AtomicBool::new(false),
        }),
        common,
    }))
}

/// Use of the disk holding `path`, in percent: the mount point with the longest matching prefix.
fn disk_use_pct(disks: &sysinfo::Disks, path: &Path) -> Option<f64> {
    let disk = disks
        .list()
        .iter()
        .filter(|d| path.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())?;
    let total = disk.total_space();
    (total > 0).then(|| (total - disk.available_space().min(total)) as f64 * 100.0 / total as f64)
}

impl Gauge {
    fn measure(&self) -> Outcome {
        let mut findings: Vec<(Status, String)> = Vec::new();
        let mut outcome = Outcome::new(Status::Ok, String::new());
        let disks = sysinfo::Disks::new_with_refreshed_list();
        for path in &self.disk_paths {
            let shown = path.display();
            match disk_use_pct(&disks, path) {
                Some(pct) => {
                    let status = self.disk.grade(pct);
                    outcome = outcome.metric(&format!("disk_pct:{shown}"), pct);
                    if status != Status::Ok {
                        findings.push((status, format!("the disk for {shown} is {pct:.0}% full")));
                    }
                }
                None => findings.push((Status::Unknown, format!("no disk was found for {shown}"))),
            }
        }
        let mut system = sysinfo::System::new();
        system.refresh_memory();
        let total = system.total_memory();
        if total > 0 {
            let pct = system.used_memory() as f64 * 100.0 / total as f64;
            outcome = outcome.metric("memory_pct", pct);
            let status = self.memory.grade(pct);
            if status != Status::Ok {
                findings.push((status, format!("memory is {pct:.0}% used")));
            }
        }
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let per_cpu = sysinfo::System::load_average().one / cpus as f64;
        outcome = outcome.metric("load_per_cpu", per_cpu);
        let status = self.load.grade(per_cpu);
        if status != Status::Ok {
            findings.push((
                status,
                format!("the processor is overloaded ({per_cpu:.1} per CPU)"),
            ));
        }
        outcome.status = worst(findings.iter().map(|(s, _)| *s));
        outcome.summary = if findings.is_empty() {
            format!(
                "{}: disk space, memory and processor load are fine.",
                self.title
            )
        } else {
            let parts: Vec<&str> = findings.iter().map(|(_, t)| t.as_str()).collect();
            format!("{}: {}.", self.title, parts.join("; "))
        };
        outcome
    }
}

impl Check for Resources {
    fn common(&self) -> &CheckCommon {
        &self.common
    }

    fn thresholds(&self) -> std::collections::BTreeMap<String, f64> {
        let mut map = std::collections::BTreeMap::new();
        super::put_limits(&mut map, "disk_pct", self.gauge.disk);
        super::put_limits(&mut map, "memory_pct", self.gauge.memory);
        super::put_limits(&mut map, "load_per_cpu", self.gauge.load);
        map
    }

    fn run<'a>(&'a self, _ctx: &'a RunContext) -> CheckFuture<'a> {
        // sysinfo reads /proc and calls statfs, which blocks (forever on a hung network
        // mount): on a blocking thread, and never two at once.
        Box::pin(async move {
            if self.gauge.busy.swap(true, Ordering::AcqRel) {
                return Outcome::new(
                    Status::Unknown,
                    format!(
                        "{}: the last measurement has not finished; a network drive may hang.",
                        self.gauge.title
                    ),
                );
            }
            let gauge = self.gauge.clone();
            tokio::task::spawn_blocking(move || {
                let outcome = gauge.measure();
                gauge.busy.store(false, Ordering::Release);
                outcome
            })
            .await
            .unwrap_or_else(|_| {
                self.gauge.busy.store(false, Ordering::Release);
                Outcome::new(Status::Unknown, "Measuring disks and memory failed.")
            })
        })
    }
}
