//! Fairness between sites: a token bucket per site, counted in records. A site may send
//! `rate` records per second on average and `burst` at once (a backlog after an outage);
//! beyond that its messages are dropped before they are even decoded, so a noisy or hostile
//! site costs the collector little and cannot crowd the others out of the store writer.
//!
//! Pure: time comes in as a parameter, so every rule is tested without a clock.

use std::{collections::HashMap, time::Instant};

use outpost_shared::topic::ROOT;

/// One token bucket per site.
#[derive(Debug)]
pub struct SiteLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<String, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// May go below zero (down to `-burst`): a batch larger than what is left is admitted
    /// whole, and the site then waits until it has paid it off.
    tokens: f64,
    at: Instant,
}

impl SiteLimiter {
    /// Past this many sites, buckets that are full again are forgotten (a full bucket is the
    /// same as none), so made-up site names cannot grow memory without bound.
    const CAP: usize = 50_000;

    /// `rate` records per second per site on average, `burst` at once (both at least 1).
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Whether `site` may send now: its bucket holds at least one record's worth.
    pub fn admits(&mut self, site: &str, now: Instant) -> bool {
        self.refilled(site, now).is_none_or(|b| b.tokens >= 1.0)
    }

    /// Charges `records` (at least 1: births and states count as one) to `site`.
    pub fn charge(&mut self, site: &str, records: usize, now: Instant) {
        let cost = records.max(1) as f64;
        let burst = self.burst;
        if let Some(bucket) = self.refilled(site, now) {
            bucket.tokens = (bucket.tokens - cost).max(-burst);
            return;
        }
        if self.buckets.len() >= Self::CAP {
            self.forget_full(now);
        }
        self.buckets.insert(
            site.to_owned(),
            Bucket {
                tokens: (burst - cost).max(-burst),
                at: now,
            },
        );
    }

    /// How many sites are tracked.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// The site's bucket brought up to `now`, when it has one.
    fn refilled(&mut self, site: &str, now: Instant) -> Option<&mut Bucket> {
        let (rate, burst) = (self.rate, self.burst);
        let bucket = self.buckets.get_mut(site)?;
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        Some(bucket)
    }

    fn forget_full(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            b.tokens + elapsed * rate < burst
        });
    }
}

/// The site segment of an agent topic (`outpost/v1/site/{site}/...`), unchecked: the limit
/// applies before validation, and a malformed topic is rejected by it afterwards anyway.
pub fn site_of(topic: &str) -> Option<&str> {
    topic
        .strip_prefix(ROOT)?
        .strip_prefix("/site/")?
        .split('/')
        .next()
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_site_gets_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut limiter = SiteLimiter::new(10, 100);
        let mut admitted = 0;
        for _ in 0..150 {
            if limiter.admits("a", t0) {
                limiter.charge("a", 1, t0);
                admitted += 1;
            }
        }
        assert_eq!(admitted, 100, "the burst, no more");
        // One second later: ten more.
        let t1 = t0 + Duration::from_secs(1);
        let mut later = 0;
        while limiter.admits("a", t1) {
            limiter.charge("a", 1, t1);
            later += 1;
        }
        assert_eq!(later, 10);
    }

    #[test]
    fn sites_do_not_share_a_bucket() {
        let t0 = Instant::now();
        let mut limiter = SiteLimiter::new(1, 5);
        limiter.charge("noisy", 1000, t0);
        assert!(!limiter.admits("noisy", t0));
        assert!(limiter.admits("quiet", t0));
        limiter.charge("quiet", 1, t0);
        assert!(limiter.admits("quiet", t0));
    }

    #[test]
    fn a_large_batch_is_admitted_whole_and_paid_off_later() {
        let t0 = Instant::now();
        let mut limiter = SiteLimiter::new(100, 50);
        assert!(limiter.admits("a", t0));
        // 500 records: more than the burst; admitted, then the debt is capped at -burst.
        limiter.charge("a", 500, t0);
        assert!(!limiter.admits("a", t0));
        // -50 + 100/s: back above one token after a little over half a second.
        assert!(!limiter.admits("a", t0 + Duration::from_millis(500)));
        assert!(limiter.admits("a", t0 + Duration::from_millis(520)));
    }

    #[test]
    fn births_and_states_cost_one() {
        let t0 = Instant::now();
        let mut limiter = SiteLimiter::new(1, 2);
        limiter.charge("a", 0, t0);
        assert!(limiter.admits("a", t0));
        limiter.charge("a", 0, t0);
        assert!(!limiter.admits("a", t0));
    }

    #[test]
    fn full_buckets_are_forgotten_past_the_cap() {
        let t0 = Instant::now();
        let mut limiter = SiteLimiter::new(1000, 10);
        for i in 0..SiteLimiter::CAP {
            limiter.charge(&format!("s{i}"), 1, t0);
        }
        assert_eq!(limiter.tracked(), SiteLimiter::CAP);
        // A second later every bucket is full again: they are dropped to make room.
        limiter.charge("new", 1, t0 + Duration::from_secs(1));
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn site_segment() {
        let cases = [
            (
                "outpost/v1/site/plant-leeds/pc/records",
                Some("plant-leeds"),
            ),
            ("outpost/v1/site/plant-leeds", Some("plant-leeds")),
            ("outpost/v1/site//pc/records", None),
            ("outpost/v1/collector/state", None),
            ("elsewhere/x", None),
        ];
        for (topic, site) in cases {
            assert_eq!(site_of(topic), site, "{topic}");
        }
    }
}
