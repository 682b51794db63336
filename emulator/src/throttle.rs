//! ARM's token buckets, per subscription (one bucket set for tenant-level requests).

use std::collections::HashMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One token bucket.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    pub capacity: f64,
    pub refill_per_sec: f64,
}

/// Bucket sizes per request class.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleConfig {
    pub reads: Bucket,
    pub writes: Bucket,
    /// `None`: deletes take from the writes bucket.
    #[serde(default)]
    pub deletes: Option<Bucket>,
}

impl ThrottleConfig {
    /// ARM's 2024 token bucket: reads 250 refilled at 25/s, writes 200 refilled at 10/s.
    pub fn arm_default() -> ThrottleConfig {
        ThrottleConfig {
            reads: Bucket { capacity: 250.0, refill_per_sec: 25.0 },
            writes: Bucket { capacity: 200.0, refill_per_sec: 10.0 },
            deletes: None,
        }
    }
}

/// Request class, from the HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    Read,
    Write,
    Delete,
}

impl Class {
    pub fn of(method: &str) -> Class {
        match method {
            "GET" | "HEAD" => Class::Read,
            "DELETE" => Class::Delete,
            _ => Class::Write,
        }
    }
    pub fn header(self) -> &'static str {
        match self {
            Class::Read => "x-ms-ratelimit-remaining-subscription-reads",
            Class::Write => "x-ms-ratelimit-remaining-subscription-writes",
            Class::Delete => "x-ms-ratelimit-remaining-subscription-deletes",
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Delete => "delete",
        }
    }
    /// What the header says when throttling is off (ARM's legacy hourly limits, minus one).
    pub fn unthrottled_remaining(self) -> u64 {
        match self {
            Class::Read => 11999,
            Class::Write => 1199,
            Class::Delete => 14999,
        }
    }
}

struct State {
    tokens: f64,
    last: Instant,
}

pub(crate) struct Throttler {
    pub config: ThrottleConfig,
    buckets: HashMap<(String, Class), State>,
}

impl Throttler {
    pub fn new(config: ThrottleConfig) -> Throttler {
        Throttler { config, buckets: HashMap::new() }
    }

    /// Take one token. Ok(remaining whole tokens) or Err(seconds until one token is back).
    pub fn take(&mut self, key: &str, class: Class) -> Result<u64, u64> {
        let (class, b) = match class {
            Class::Read => (Class::Read, self.config.reads),
            Class::Write => (Class::Write, self.config.writes),
            Class::Delete => match self.config.deletes {
                Some(d) => (Class::Delete, d),
                None => (Class::Write, self.config.writes),
            },
        };
        let now = Instant::now();
        let s =
            self.buckets.entry((key.to_ascii_lowercase(), class)).or_insert(State { tokens: b.capacity, last: now });
        s.tokens = (s.tokens + now.duration_since(s.last).as_secs_f64() * b.refill_per_sec).min(b.capacity);
        s.last = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            Ok(s.tokens.floor() as u64)
        } else {
            let wait = if b.refill_per_sec > 0.0 { ((1.0 - s.tokens) / b.refill_per_sec).ceil() } else { 3600.0 };
            Err((wait as u64).max(1))
        }
    }
}
