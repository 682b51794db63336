//! Fault injection: latency, 5xx, 429, connection resets before or after processing, timeouts.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};

/// What to inject. `Default` injects nothing. JSON/YAML: camelCase, durations as `"20ms"`,
/// `"1.5s"`, `"2m"` or a JSON number of milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Added before every affected request.
    #[serde(with = "duration_str")]
    pub latency: Duration,
    /// Up to this much more, uniformly.
    #[serde(with = "duration_str")]
    pub latency_jitter: Duration,
    /// 500 `InternalServerError` or 503 `ServiceUnavailable`, request not processed.
    pub error_rate: f64,
    /// 429 with `Retry-After: throttle_retry_after_secs`, request not processed.
    pub throttle_rate: f64,
    pub throttle_retry_after_secs: u64,
    /// Connection closed without an answer; request not processed.
    pub reset_before_rate: f64,
    /// Request processed, then the connection closed without an answer.
    pub reset_after_rate: f64,
    /// Request held for `timeout_hold`, then dropped unprocessed.
    pub timeout_rate: f64,
    #[serde(with = "duration_str")]
    pub timeout_hold: Duration,
    /// Reproducible runs.
    pub rng_seed: Option<u64>,
    /// Only these operation names (see `Stats`); `None`: every ARM operation.
    pub only_operations: Option<Vec<String>>,
    /// Also inject into the token endpoint and IMDS.
    pub include_token: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            error_rate: 0.0,
            throttle_rate: 0.0,
            throttle_retry_after_secs: 1,
            reset_before_rate: 0.0,
            reset_after_rate: 0.0,
            timeout_rate: 0.0,
            timeout_hold: Duration::from_secs(30),
            rng_seed: None,
            only_operations: None,
            include_token: false,
        }
    }
}

/// The fault picked for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Timeout,
    ResetBefore,
    Error(u16),
    Throttle,
    ResetAfter,
}

pub(crate) struct FaultState {
    pub faults: Faults,
    rng: StdRng,
}

impl FaultState {
    pub fn new(faults: Faults) -> FaultState {
        let rng = match faults.rng_seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        FaultState { faults, rng }
    }

    pub fn applies(&self, op: &str, is_token: bool) -> bool {
        if is_token && !self.faults.include_token {
            return false;
        }
        self.faults.only_operations.as_ref().is_none_or(|ops| ops.iter().any(|o| o == op))
    }

    /// Latency to add and the fault to inject, if any.
    pub fn roll(&mut self) -> (Duration, Option<Fault>) {
        let f = &self.faults;
        let mut latency = f.latency;
        if !f.latency_jitter.is_zero() {
            latency += f.latency_jitter.mul_f64(self.rng.random::<f64>());
        }
        let u: f64 = self.rng.random();
        let mut acc = 0.0;
        let mut pick = None;
        for (rate, fault) in [
            (f.timeout_rate, Fault::Timeout),
            (f.reset_before_rate, Fault::ResetBefore),
            (f.error_rate, Fault::Error(500)),
            (f.throttle_rate, Fault::Throttle),
            (f.reset_after_rate, Fault::ResetAfter),
        ] {
            acc += rate.max(0.0);
            if rate > 0.0 && u < acc {
                pick = Some(fault);
                break;
            }
        }
        if pick == Some(Fault::Error(500)) && self.rng.random_bool(0.5) {
            pick = Some(Fault::Error(503));
        }
        (latency, pick)
    }
}

/// Parse `"20ms"`, `"1.5s"`, `"2m"`, `"100us"`, `"1h"`: the project's one duration syntax. A
/// unit is required (a bare number reads as milliseconds to one person and seconds to another).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let idx = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(idx);
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit.trim() {
        "" => return Err(format!("{s:?}: add a unit, e.g. {s}s, {s}ms or 10m")),
        "ms" => n / 1000.0,
        "s" => n,
        "us" | "µs" => n / 1_000_000.0,
        "ns" => n / 1_000_000_000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("unknown duration unit {u:?} in {s:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Serde for `Duration` as a human string (`"250ms"`), also accepting a JSON number of
/// milliseconds or `{secs, nanos}`.
pub mod duration_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_nanos().is_multiple_of(1_000_000) {
            s.serialize_str(&format!("{}ms", d.as_millis()))
        } else {
            s.serialize_str(&format!("{}us", d.as_micros()))
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Text(String),
        Millis(f64),
        Std { secs: u64, nanos: u32 },
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Text(t) => super::parse_duration(&t).map_err(serde::de::Error::custom),
            Repr::Millis(m) => Duration::try_from_secs_f64(m / 1000.0).map_err(serde::de::Error::custom),
            Repr::Std { secs, nanos } => Ok(Duration::new(secs, nanos)),
        }
    }
}
