//! The admin API under `/_emulator/`: no authentication, no faults, not counted in stats.
//!
//! `GET state`, `GET stats`, `POST reset-stats`, `GET|PUT faults`, `PUT throttle`,
//! `POST principals`, `PUT subscriptions/{id}` (`{"access":"Read"|"Forbidden"|"Hidden"}`,
//! creates the subscription if new), `GET|PUT policies` (the whole list).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::SubscriptionAccess;
use crate::ctx::{Ctx, Reply};

#[derive(Deserialize)]
struct SubscriptionBody {
    access: Option<SubscriptionAccess>,
}

/// `/_emulator/...`: no auth, no faults, not counted.
pub(crate) fn admin(ctx: &Ctx, rest: &str) -> Reply {
    let inner = &ctx.inner;
    match (ctx.method.as_str(), rest) {
        ("GET", "state") => Reply::json(200, serde_json::to_value(inner.lock_state().to_seed()).unwrap_or(Value::Null)),
        ("GET", "stats") => {
            let s = inner.lock_stats().clone();
            Reply::json(
                200,
                json!({"requests": s.requests, "total": s.total(), "reads": s.reads(), "writes": s.writes(),
                       "throttled": s.throttled(), "faultsInjected": s.faults_injected(),
                       "readOnlySent": s.read_only_sent}),
            )
        }
        ("POST", "reset-stats") => {
            *inner.lock_stats() = crate::Stats::default();
            Reply::empty(204)
        }
        ("PUT", "faults") => match serde_json::from_slice::<crate::Faults>(&ctx.body) {
            Ok(f) => {
                *inner.faults.lock().unwrap_or_else(|e| e.into_inner()) = crate::faults::FaultState::new(f.clone());
                Reply::json(200, serde_json::to_value(f).unwrap_or(Value::Null))
            }
            Err(e) => Reply::arm_error(400, "InvalidFaults", e.to_string()),
        },
        ("GET", "faults") => {
            let f = inner.faults.lock().unwrap_or_else(|e| e.into_inner()).faults.clone();
            Reply::json(200, serde_json::to_value(f).unwrap_or(Value::Null))
        }
        ("PUT", "throttle") => match serde_json::from_slice::<Option<crate::ThrottleConfig>>(&ctx.body) {
            Ok(t) => {
                *inner.throttle.lock().unwrap_or_else(|e| e.into_inner()) = t.map(crate::throttle::Throttler::new);
                Reply::json(200, serde_json::to_value(t).unwrap_or(Value::Null))
            }
            Err(e) => Reply::arm_error(400, "InvalidThrottle", e.to_string()),
        },
        ("POST", "principals") => match serde_json::from_slice::<crate::Principal>(&ctx.body) {
            Ok(p) if !p.id.is_empty() => {
                inner.lock_state().add_principal(p.clone());
                inner.persist();
                Reply::json(201, serde_json::to_value(p).unwrap_or(Value::Null))
            }
            Ok(_) => Reply::arm_error(400, "InvalidPrincipal", "id is required"),
            Err(e) => Reply::arm_error(400, "InvalidPrincipal", e.to_string()),
        },
        ("PUT", "policies") => match serde_json::from_slice::<Vec<crate::PolicyAssignment>>(&ctx.body) {
            Ok(p) => {
                inner.lock_state().set_policies(p.clone());
                inner.persist();
                Reply::json(200, serde_json::to_value(p).unwrap_or(Value::Null))
            }
            Err(e) => Reply::arm_error(400, "InvalidPolicies", e.to_string()),
        },
        ("GET", "policies") => {
            Reply::json(200, serde_json::to_value(&inner.lock_state().policies).unwrap_or(Value::Null))
        }
        ("PUT", r) if r.starts_with("subscriptions/") && r.len() > "subscriptions/".len() => {
            let id = &r["subscriptions/".len()..];
            match serde_json::from_slice::<SubscriptionBody>(&ctx.body) {
                Ok(b) => {
                    let s = {
                        let mut st = inner.lock_state();
                        st.set_subscription_access(id, b.access.unwrap_or_default());
                        st.subscription(id)
                    };
                    inner.persist();
                    Reply::json(200, serde_json::to_value(s).unwrap_or(Value::Null))
                }
                Err(e) => Reply::arm_error(400, "InvalidSubscription", e.to_string()),
            }
        }
        _ => Reply::arm_error(404, "NotFound", format!("No admin route '{} /_emulator/{rest}'.", ctx.method)),
    }
}
