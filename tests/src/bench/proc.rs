//! What a process costs, read from `/proc`: resident memory, CPU time and context switches,
//! sampled once a second on a plain thread while a scenario runs.

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// When it was taken, since sampling began.
    pub at: Duration,
    /// Resident set (VmRSS), bytes.
    pub rss: u64,
    /// Peak resident set so far (VmHWM), bytes.
    pub hwm: u64,
    /// User + system CPU time, clock ticks.
    pub cpu_ticks: u64,
    /// Voluntary + involuntary context switches, summed over the process's threads.
    pub switches: u64,
}

/// Reads one sample of `pid`, or `None` once it has exited.
pub fn read(pid: u32, at: Duration) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| field(&status, key).map_or(0, |v| v * 1024);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ") " come state (field 3) … utime is field 14, stime 15: indexes 11 and 12 here.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(Sample {
        at,
        rss: kib("VmRSS:"),
        hwm: kib("VmHWM:"),
        cpu_ticks: ticks(11) + ticks(12),
        switches: thread_switches(pid),
    })
}

fn field(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `/proc/PID/status` counts the main thread only; a tokio process wakes its workers too.
fn thread_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|s| {
            field(&s, "voluntary_ctxt_switches:").unwrap_or(0)
                + field(&s, "nonvoluntary_ctxt_switches:").unwrap_or(0)
        })
        .sum()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when it cannot be asked).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// The first process whose command line contains `needle` (for children started by helpers
/// that do not expose their pid).
pub fn find_pid(needle: &str) -> Option<u32> {
    let own = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own)
        .find(|pid| {
            std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
}

/// Samples a process every `every` on a background thread until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let (flag, sink) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let Some(sample) = read(pid, started.elapsed()) else {
                    break;
                };
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(sample);
                std::thread::sleep(every);
            }
        });
        Self {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops and returns the samples, oldest first.
    pub fn finish(mut self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let samples = std::mem::take(
            &mut *self
                .samples
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        Usage { samples }
    }
}

/// The samples of one run and the figures drawn from them.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Every sample, oldest first.
    pub samples: Vec<Sample>,
}

impl Usage {
    /// The peak resident set seen (VmHWM of the last sample).
    pub fn peak_rss(&self) -> u64 {
        self.samples
            .iter()
            .map(|s| s.hwm.max(s.rss))
            .max()
            .unwrap_or(0)
    }

    /// Mean resident set over the samples after `skip` (the warm-up).
    pub fn steady_rss(&self, skip: Duration) -> u64 {
        let tail: Vec<u64> = self.after(skip).iter().map(|s| s.rss).collect();
        if tail.is_empty() {
            return self.samples.last().map_or(0, |s| s.rss);
        }
        tail.iter().sum::<u64>() / tail.len() as u64
    }

    /// CPU use as a share of one core (100 = one core busy) after `skip`.
    pub fn cpu_pct(&self, skip: Duration) -> f64 {
        self.per_second(skip, |s| s.cpu_ticks) / clock_ticks() * 100.0
    }

    /// Context switches per second after `skip` (a proxy for wakeups).
    pub fn switches_per_s(&self, skip: Duration) -> f64 {
        self.per_second(skip, |s| s.switches)
    }

    fn after(&self, skip: Duration) -> Vec<Sample> {
        let tail: Vec<Sample> = self
            .samples
            .iter()
            .filter(|s| s.at >= skip)
            .copied()
            .collect();
        if tail.len() >= 2 {
            tail
        } else {
            self.samples.clone()
        }
    }

    fn per_second(&self, skip: Duration, value: impl Fn(&Sample) -> u64) -> f64 {
        let tail = self.after(skip);
        match (tail.first(), tail.last()) {
            (Some(a), Some(b)) if b.at > a.at => {
                value(b).saturating_sub(value(a)) as f64 / b.at.saturating_sub(a.at).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let sample = read(std::process::id(), Duration::ZERO).expect("this process exists");
        assert!(sample.rss > 0 && sample.hwm >= sample.rss);
        assert!(sample.switches > 0);
    }

    #[test]
    fn usage_figures_come_from_the_tail() {
        let s = |at: u64, rss: u64, cpu: u64| Sample {
            at: Duration::from_secs(at),
            rss,
            hwm: rss,
            cpu_ticks: cpu,
            switches: at * 10,
        };
        let usage = Usage {
            samples: vec![s(0, 50, 0), s(1, 10, 100), s(2, 20, 100), s(3, 30, 100)],
        };
        assert_eq!(usage.peak_rss(), 50);
        assert_eq!(usage.steady_rss(Duration::from_secs(1)), 20);
        assert!((usage.switches_per_s(Duration::from_secs(1)) - 10.0).abs() < 1e-9);
    }
}
