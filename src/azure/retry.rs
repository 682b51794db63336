//! The retry policy for Azure calls: wait what a 429 asks (`Retry-After`), back off
//! exponentially with full jitter on transient failures, retry `PrincipalNotFound` for a bounded
//! time (directory replication delay), give up on everything else at once. Bounded in attempts
//! and time. No I/O besides sleeping.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;

use super::AzureError;

/// How hard to retry.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts for transient failures (5xx, timeouts, resets), including the first.
    pub max_attempts: u32,
    /// First backoff; doubles each attempt, capped by `max_delay`, fully jittered.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How many 429s one call will wait out before giving up.
    pub max_throttle_waits: u32,
    /// Longest single `Retry-After` honoured; a longer one is returned to the caller.
    pub max_throttle_wait: Duration,
    /// How long `PrincipalNotFound` is retried (a new principal replicating) before it is
    /// reported: the principal id may simply be wrong.
    pub principal_not_found_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_throttle_waits: 10,
            max_throttle_wait: Duration::from_secs(120),
            principal_not_found_timeout: Duration::from_secs(300),
        }
    }
}

/// Counters a caller can export as metrics.
#[derive(Debug, Default)]
pub struct RetryStats {
    pub throttle_waits: AtomicU64,
    pub throttle_wait_millis: AtomicU64,
    pub transient_retries: AtomicU64,
    pub principal_retries: AtomicU64,
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let cap = exp.min(self.max_delay);
        let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
    }

    /// Run `op` until it succeeds, fails for good, or the policy is spent.
    pub async fn run<T, F, Fut>(&self, stats: &RetryStats, mut op: F) -> Result<T, AzureError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AzureError>>,
    {
        let started = Instant::now();
        let (mut transient, mut throttled) = (0u32, 0u32);
        loop {
            let err = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let wait = match &err {
                AzureError::Throttled { retry_after, .. } => {
                    throttled += 1;
                    if throttled > self.max_throttle_waits || *retry_after > self.max_throttle_wait {
                        return Err(err);
                    }
                    stats.throttle_waits.fetch_add(1, Ordering::Relaxed);
                    let jitter = Duration::from_millis(rand::rng().random_range(0..=250));
                    let wait = *retry_after + jitter;
                    stats
                        .throttle_wait_millis
                        .fetch_add(u64::try_from(wait.as_millis()).unwrap_or(0), Ordering::Relaxed);
                    wait
                }
                AzureError::Transient { .. } => {
                    transient += 1;
                    if transient >= self.max_attempts {
                        return Err(err);
                    }
                    stats.transient_retries.fetch_add(1, Ordering::Relaxed);
                    self.backoff(transient)
                }
                AzureError::PrincipalNotFound { .. } => {
                    if started.elapsed() >= self.principal_not_found_timeout {
                        return Err(err);
                    }
                    stats.principal_retries.fetch_add(1, Ordering::Relaxed);
                    transient += 1;
                    self.backoff(transient).min(self.principal_not_found_timeout.saturating_sub(started.elapsed()))
                }
                _ => return Err(err),
            };
            tracing::debug!(error = %err, wait_ms = wait.as_millis() as u64, "retrying Azure request");
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            principal_not_found_timeout: Duration::from_millis(50),
            ..RetryPolicy::default()
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_then_reported() {
        let calls = AtomicU32::new(0);
        let stats = RetryStats::default();
        let r: Result<(), _> = fast()
            .run(&stats, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(AzureError::Transient { message: "503".into() })
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn throttling_waits_what_azure_asks() {
        let calls = AtomicU32::new(0);
        let stats = RetryStats::default();
        let started = Instant::now();
        let r = fast()
            .run(&stats, || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(AzureError::Throttled { retry_after: Duration::from_millis(300), message: "429".into() })
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r, Ok(7));
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(stats.throttle_waits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn invalid_requests_are_not_retried_and_principal_not_found_is_bounded() {
        let calls = AtomicU32::new(0);
        let stats = RetryStats::default();
        let r: Result<(), _> = fast()
            .run(&stats, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(AzureError::Invalid { code: "InvalidRoleDefinitionId".into(), message: String::new() })
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let started = Instant::now();
        let r: Result<(), _> =
            fast().run(&stats, || async { Err(AzureError::PrincipalNotFound { message: String::new() }) }).await;
        assert!(matches!(r, Err(AzureError::PrincipalNotFound { .. })));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
