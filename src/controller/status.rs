//! Status conditions, kstatus style: `Ready` is `True` only when Azure matches the spec;
//! `lastTransitionTime` only moves when a condition's status changes, and a status equal to the
//! one stored is never written again (no update storms, no watch loops).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::common::PendingAction;
use crate::plan::{Action, Plan, Severity};

pub const READY: &str = "Ready";
pub const LEAST_PRIVILEGE: &str = "LeastPrivilege";

/// Reasons shown in `Ready` (bounded: also a metric label).
pub mod reason {
    pub const RECONCILED: &str = "Reconciled";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const SCOPE_NOT_ALLOWED: &str = "ScopeNotAllowed";
    pub const WAITING_FOR_CUSTOM_ROLE: &str = "WaitingForCustomRole";
    pub const PENDING_CHANGES: &str = "PendingChanges";
    pub const PRINCIPAL_NOT_FOUND: &str = "PrincipalNotFound";
    pub const THROTTLED: &str = "Throttled";
    pub const AZURE_ERROR: &str = "AzureError";
    pub const IN_USE: &str = "InUse";
    pub const DELETING: &str = "Deleting";
    pub const LEAST_PRIVILEGE: &str = "LeastPrivilege";
    pub const UNKNOWN_RECONCILE_MODE: &str = "UnknownReconcileMode";
}

/// Set a condition. Keeps `lastTransitionTime` unless the status flips; returns whether
/// anything changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> bool {
    let status = if status { "True" } else { "False" };
    let message: String = message.chars().take(32768).collect();
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        let same =
            c.status == status && c.reason == reason && c.message == message && c.observed_generation == generation;
        if same {
            return false;
        }
        if c.status != status {
            c.last_transition_time = Time(Timestamp::now());
        }
        c.status = status.into();
        c.reason = reason.into();
        c.message = message;
        c.observed_generation = generation;
        return true;
    }
    conditions.push(Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(Timestamp::now()),
    });
    true
}

/// Is `type_` `True`?
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && c.status == "True")
}

/// The actions as shown in status (`pendingActions`).
pub fn pending(actions: &[Action]) -> Vec<PendingAction> {
    actions.iter().map(|a| PendingAction { action: a.verb().into(), target: a.target() }).collect()
}

/// The `Ready` verdict for a plan that is only reported (observe mode) or already applied.
pub fn plan_verdict(plan: &Plan) -> (bool, String, String) {
    if let Some(b) = plan.blockers().next() {
        let msg = plan.blockers().map(|f| f.message.clone()).collect::<Vec<_>>().join("; ");
        return (false, b.reason.as_str().to_string(), msg);
    }
    if !plan.actions.is_empty() {
        let list = plan.actions.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        return (false, reason::PENDING_CHANGES.into(), format!("observe mode, not written: {list}"));
    }
    (true, reason::RECONCILED.into(), "Azure matches the spec".into())
}

/// The `Ready` verdict in observe mode; an unknown annotation value is reported first.
pub fn observe_verdict(plan: &Plan, mode_problem: Option<String>) -> (bool, String, String) {
    let (ready, why, msg) = plan_verdict(plan);
    match mode_problem {
        Some(p) => (false, reason::UNKNOWN_RECONCILE_MODE.into(), format!("{p}; {msg}")),
        None => (ready, why, msg),
    }
}

/// The `LeastPrivilege` condition from a plan's warnings.
pub fn least_privilege(plan: &Plan) -> (bool, String, String) {
    let warnings: Vec<_> = plan.findings.iter().filter(|f| f.severity == Severity::Warning).collect();
    match warnings.first() {
        None => (true, reason::LEAST_PRIVILEGE.into(), "no broader access than the spec asks for was found".into()),
        Some(first) => (
            false,
            first.reason.as_str().into(),
            warnings.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join("; "),
        ),
    }
}

/// Write `new` as the whole status when it differs from `old` (a JSON patch `add /status`
/// replaces it, clearing fields that went away). Returns whether a write happened.
pub async fn write<K, S>(api: &kube::Api<K>, name: &str, old: Option<&S>, new: &S) -> Result<bool, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: serde::Serialize + PartialEq,
{
    if old == Some(new) {
        return Ok(false);
    }
    let value = serde_json::to_value(new).map_err(kube::Error::SerdeError)?;
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "add", "path": "/status", "value": value}
    ]))
    .map_err(kube::Error::SerdeError)?;
    api.patch_status(name, &kube::api::PatchParams::default(), &kube::api::Patch::<()>::Json(patch)).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_the_status_flips() {
        let mut c = Vec::new();
        assert!(set_condition(&mut c, READY, false, "A", "m", Some(1)));
        let t0 = c[0].last_transition_time.clone();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(!set_condition(&mut c, READY, false, "A", "m", Some(1)), "equal condition is not a change");
        assert!(set_condition(&mut c, READY, false, "B", "other", Some(2)));
        assert_eq!(c[0].last_transition_time, t0, "reason change alone keeps the transition time");
        assert!(set_condition(&mut c, READY, true, "Reconciled", "ok", Some(2)));
        assert_ne!(c[0].last_transition_time, t0);
        assert_eq!(c.len(), 1);
    }
}
