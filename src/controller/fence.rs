//! One writer: with leader election on, every Azure write first proves, from the Lease as the API
//! server holds it now, that this replica is the holder and renewed it within the renew deadline
//! (two thirds of the lease duration, as client-go's leader election). A replica that was paused,
//! partitioned from the API server or replaced stops writing before another can take the Lease
//! over; reads are never gated. Does I/O: one Lease GET per write, a positive answer reused for
//! at most [`RECHECK`] and never past the renew deadline.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use crate::azure::AzureError;
use crate::domain::Scope;
use crate::gate::WriteGate;
use crate::reason::Reason;

/// How long a positive check is reused.
pub const RECHECK: Duration = Duration::from_secs(2);

/// The leader Lease this replica must hold to write.
pub struct Fence {
    leases: Api<Lease>,
    name: String,
    identity: String,
    valid_until: Mutex<Option<Instant>>,
}

impl Fence {
    pub fn new(leases: Api<Lease>, name: &str, identity: &str) -> Fence {
        Fence { leases, name: name.into(), identity: identity.into(), valid_until: Mutex::new(None) }
    }

    /// `Ok` only while this replica provably holds the Lease; fails closed on any doubt.
    pub async fn check(&self) -> Result<(), String> {
        if self.valid_until.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let asked = Instant::now();
        let lease = self
            .leases
            .get(&self.name)
            .await
            .map_err(|e| format!("cannot read the leader Lease {}: {e}", self.name))?;
        let until = verdict(&lease, &self.identity, jiff::Timestamp::now())?;
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(asked + until.min(RECHECK));
        Ok(())
    }
}

/// How much longer `lease` lets `identity` write, judged at `now`; the reason when not at all.
pub fn verdict(lease: &Lease, identity: &str, now: jiff::Timestamp) -> Result<Duration, String> {
    let spec = lease.spec.as_ref().ok_or("the leader Lease has no spec")?;
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder != identity {
        return Err(format!("this replica ({identity}) does not hold the leader Lease (holder: '{holder}')"));
    }
    let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
    let deadline = duration * 2 / 3;
    let renewed =
        spec.renew_time.as_ref().or(spec.acquire_time.as_ref()).ok_or("the leader Lease was never renewed")?;
    let age = now.duration_since(renewed.0);
    let age = Duration::try_from(age).unwrap_or(Duration::ZERO);
    if age >= deadline {
        return Err(format!(
            "the leader Lease was last renewed {:.1} s ago, past the renew deadline of {} s",
            age.as_secs_f64(),
            deadline.as_secs()
        ));
    }
    Ok(deadline - age)
}

#[async_trait]
impl WriteGate for Fence {
    async fn allow(&self, _ids: &[Scope]) -> Result<(), AzureError> {
        self.check().await.map_err(|why| {
            tracing::warn!(reason = %why, "Azure write withheld: not provably the leader");
            AzureError::Withheld { reason: Reason::NotLeader, message: format!("write withheld: {why}") }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed_secs_ago: i64, duration: i32, now: jiff::Timestamp) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(duration),
                renew_time: Some(MicroTime(now - jiff::SignedDuration::from_secs(renewed_secs_ago))),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn the_holder_writes_until_the_renew_deadline_and_nobody_else_ever() {
        let now = jiff::Timestamp::now();
        assert_eq!(verdict(&lease("a", 1, 15, now), "a", now), Ok(Duration::from_secs(9)));
        let late = verdict(&lease("a", 10, 15, now), "a", now).unwrap_err();
        assert!(late.contains("past the renew deadline of 10 s"), "{late}");
        let other = verdict(&lease("b", 0, 15, now), "a", now).unwrap_err();
        assert!(other.contains("holder: 'b'"), "{other}");
        assert!(verdict(&Lease::default(), "a", now).is_err(), "no spec: no write");
    }
}
