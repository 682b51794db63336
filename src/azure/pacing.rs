//! Client-side pacing inside ARM's token buckets (per subscription: reads 250 tokens refilled at
//! 25/s, writes 200 at 10/s; deletes unverified, configurable), so the operator queues its own
//! requests instead of hammering into 429s. Buckets are kept per subscription (or `tenant` for
//! tenant-level paths) and class, and follow the `x-ms-ratelimit-remaining-*` headers ARM
//! returns. No I/O besides sleeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which bucket a request draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestClass {
    Read,
    Write,
    Delete,
}

impl RequestClass {
    pub fn of_method(method: &str) -> RequestClass {
        match method.to_ascii_uppercase().as_str() {
            "GET" | "HEAD" => RequestClass::Read,
            "DELETE" => RequestClass::Delete,
            _ => RequestClass::Write,
        }
    }

    /// The header ARM reports this bucket's remaining tokens in.
    pub fn remaining_header(self) -> &'static str {
        match self {
            RequestClass::Read => "x-ms-ratelimit-remaining-subscription-reads",
            RequestClass::Write => "x-ms-ratelimit-remaining-subscription-writes",
            RequestClass::Delete => "x-ms-ratelimit-remaining-subscription-deletes",
        }
    }
}

/// One token bucket's shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketConfig {
    /// Burst size.
    pub capacity: f64,
    /// Tokens added per second.
    pub refill_per_sec: f64,
}

/// The buckets, per class. `None` disables pacing for a class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PacingConfig {
    pub reads: Option<BucketConfig>,
    pub writes: Option<BucketConfig>,
    pub deletes: Option<BucketConfig>,
}

impl Default for PacingConfig {
    /// ARM's published token buckets; deletes assumed like writes (unverified).
    fn default() -> Self {
        PacingConfig {
            reads: Some(BucketConfig { capacity: 250.0, refill_per_sec: 25.0 }),
            writes: Some(BucketConfig { capacity: 200.0, refill_per_sec: 10.0 }),
            deletes: Some(BucketConfig { capacity: 200.0, refill_per_sec: 10.0 }),
        }
    }
}

impl PacingConfig {
    pub fn disabled() -> Self {
        PacingConfig { reads: None, writes: None, deletes: None }
    }

    fn bucket(&self, class: RequestClass) -> Option<BucketConfig> {
        match class {
            RequestClass::Read => self.reads,
            RequestClass::Write => self.writes,
            RequestClass::Delete => self.deletes,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    /// May go negative: each waiter reserves its token before sleeping, so waiters queue.
    tokens: f64,
    last: Instant,
}

/// Shared pacer; cheap to call from many tasks.
#[derive(Debug)]
pub struct Pacer {
    config: PacingConfig,
    buckets: Mutex<HashMap<(String, RequestClass), Bucket>>,
}

impl Pacer {
    pub fn new(config: PacingConfig) -> Pacer {
        Pacer { config, buckets: Mutex::new(HashMap::new()) }
    }

    /// How long a request of `class` against `key` must wait; reserves its token.
    fn reserve(&self, key: &str, class: RequestClass) -> Duration {
        let Some(cfg) = self.config.bucket(class) else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry((key.to_string(), class)).or_insert(Bucket { tokens: cfg.capacity, last: now });
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * cfg.refill_per_sec).min(cfg.capacity);
        b.last = now;
        b.tokens -= 1.0;
        if b.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-b.tokens / cfg.refill_per_sec) }
    }

    /// Wait until a request may be sent; returns how long it waited.
    pub async fn acquire(&self, key: &str, class: RequestClass) -> Duration {
        let wait = self.reserve(key, class);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }

    /// Align with what ARM reports as remaining in its bucket (never raises the local count).
    pub fn observe_remaining(&self, key: &str, class: RequestClass, remaining: f64) {
        if self.config.bucket(class).is_none() {
            return;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = buckets.get_mut(&(key.to_string(), class))
            && remaining < b.tokens
        {
            b.tokens = remaining;
        }
    }

    /// Tell the pacer ARM throttled `key`: nothing more goes out for `retry_after`.
    pub fn throttled(&self, key: &str, class: RequestClass, retry_after: Duration) {
        let Some(cfg) = self.config.bucket(class) else {
            return;
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry((key.to_string(), class)).or_insert(Bucket { tokens: 0.0, last: Instant::now() });
        b.tokens = b.tokens.min(-retry_after.as_secs_f64() * cfg.refill_per_sec);
    }
}

/// The bucket key of an ARM path: its subscription id (lower-case), or `tenant`.
pub fn bucket_key(path: &str) -> String {
    let mut parts = path.split('/').filter(|s| !s.is_empty());
    while let Some(p) = parts.next() {
        if p.eq_ignore_ascii_case("subscriptions")
            && let Some(id) = parts.next()
        {
            return id.to_ascii_lowercase();
        }
    }
    "tenant".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_rate() {
        let p = Pacer::new(PacingConfig {
            writes: Some(BucketConfig { capacity: 3.0, refill_per_sec: 10.0 }),
            ..PacingConfig::disabled()
        });
        for _ in 0..3 {
            assert_eq!(p.reserve("s", RequestClass::Write), Duration::ZERO);
        }
        let w = p.reserve("s", RequestClass::Write);
        assert!(w > Duration::from_millis(80) && w <= Duration::from_millis(100), "{w:?}");
        let w2 = p.reserve("s", RequestClass::Write);
        assert!(w2 > Duration::from_millis(180), "queued behind the first: {w2:?}");
        assert_eq!(p.reserve("other", RequestClass::Write), Duration::ZERO, "buckets are per subscription");
        assert_eq!(p.reserve("s", RequestClass::Read), Duration::ZERO, "reads are not paced here");
    }

    #[test]
    fn keys_follow_the_subscription() {
        assert_eq!(bucket_key("/subscriptions/ABC/resourceGroups/rg"), "abc");
        assert_eq!(bucket_key("/providers/Microsoft.Management/managementGroups/mg"), "tenant");
    }
}
