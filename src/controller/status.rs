//! Status conditions, kstatus style: `Ready` is `True` only when Azure matches the spec;
//! `Reconciling` (work under way that finishes by itself) and `Stalled` (a refusal or an error a
//! person must fix) are present only while `True`, the "abnormal-true" conditions that the kstatus
//! library (Flux, `helm --wait`) reads to call a resource InProgress or Failed. `lastTransitionTime`
//! only moves when a condition's status changes, and a status equal to the one stored is never
//! written again (no update storms, no watch loops). No I/O but [`write`].

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::common::PendingAction;
use crate::plan::{Action, Plan, Severity};
use crate::reason::Reason;

pub const READY: &str = "Ready";
pub const LEAST_PRIVILEGE: &str = "LeastPrivilege";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// Where a resource stands, as GitOps tools read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing left to do: Azure matches, or observe mode reports what it would do.
    Done,
    /// Work under way or retried by itself (throttling, a transient Azure error, a custom role
    /// still being created).
    Working,
    /// Refused or failed until a person changes something (a blocker, an invalid spec, a scope
    /// not allowed...). Unknown reasons count here: a stall is never hidden.
    Stalled,
}

/// The [`Progress`] of a `Ready` verdict.
pub fn progress(ready: bool, why: Reason) -> Progress {
    if ready {
        return Progress::Done;
    }
    match why {
        Reason::PendingChanges => Progress::Done,
        Reason::WaitingForCustomRole
        | Reason::PrincipalRefNotFound
        | Reason::Throttled
        | Reason::AzureError
        | Reason::KubernetesError
        | Reason::ScopesUnknown
        | Reason::Deleting
        | Reason::Progressing
        | Reason::Drifted => Progress::Working,
        _ => Progress::Stalled,
    }
}

/// Set `Reconciling` / `Stalled` for `p`, removing the one that is not `True`.
pub fn set_progress(conditions: &mut Vec<Condition>, p: Progress, why: Reason, message: &str, generation: Option<i64>) {
    for (type_, on) in [(RECONCILING, p == Progress::Working), (STALLED, p == Progress::Stalled)] {
        if on {
            set_condition(conditions, type_, true, why.as_str(), message, generation);
        } else {
            conditions.retain(|c| c.type_ != type_);
        }
    }
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

/// Status types with kstatus conditions and `observedGeneration`.
pub trait Conditioned: Clone + Default + PartialEq + serde::Serialize + Send + Sync {
    fn conditions(&self) -> &[Condition];
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    fn observed_generation(&self) -> Option<i64>;
    fn set_observed_generation(&mut self, generation: Option<i64>);
    /// Changes observe mode would make (`pendingActions`).
    fn pending_actions_mut(&mut self) -> &mut Vec<PendingAction>;
    /// The last reconcile request token handled (`lastHandledReconcileAt`).
    fn last_handled_reconcile_at(&self) -> Option<&str>;
    fn set_last_handled_reconcile_at(&mut self, token: Option<String>);
}

macro_rules! conditioned {
    ($($t:ty),*) => {$(
        impl Conditioned for $t {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
            fn conditions_mut(&mut self) -> &mut Vec<Condition> {
                &mut self.conditions
            }
            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
            fn pending_actions_mut(&mut self) -> &mut Vec<PendingAction> {
                &mut self.pending_actions
            }
            fn last_handled_reconcile_at(&self) -> Option<&str> {
                self.last_handled_reconcile_at.as_deref()
            }
            fn set_last_handled_reconcile_at(&mut self, token: Option<String>) {
                self.last_handled_reconcile_at = token;
            }
        }
    )*};
}
conditioned!(
    crate::crd::IotHubRoleAssignmentStatus,
    crate::crd::IotHubCustomRoleStatus,
    crate::crd::IotHubSharedAccessStatus
);

/// Has `Ready` already told this (same reason, and same message when one is given)? Used to
/// publish a Warning Event once per new problem, not on every resync.
pub fn already_told(conditions: &[Condition], reason: &str, message: Option<&str>) -> bool {
    conditions.iter().any(|c| c.type_ == READY && c.reason == reason && message.is_none_or(|m| c.message == m))
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
pub fn plan_verdict(plan: &Plan) -> (bool, Reason, String) {
    if let Some(b) = plan.blockers().next() {
        let msg = crate::plan::messages(plan.blockers());
        return (false, b.reason, msg);
    }
    if !plan.actions.is_empty() {
        let list = plan.actions.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        return (false, Reason::PendingChanges, format!("observe mode, not written: {list}"));
    }
    (true, Reason::Reconciled, "Azure matches the spec".into())
}

/// The `Ready` verdict in observe mode; an unknown annotation value is reported first.
pub fn observe_verdict(plan: &Plan, mode_problem: Option<String>) -> (bool, Reason, String) {
    let (ready, why, msg) = plan_verdict(plan);
    match mode_problem {
        Some(p) => (false, Reason::UnknownReconcileMode, format!("{p}; {msg}")),
        None => (ready, why, msg),
    }
}

/// The `LeastPrivilege` condition from a plan's warnings.
pub fn least_privilege(plan: &Plan) -> (bool, Reason, String) {
    let warnings: Vec<_> = plan.findings.iter().filter(|f| f.severity == Severity::Warning).collect();
    match warnings.first() {
        None => (true, Reason::LeastPrivilege, "no broader access than the spec asks for was found".into()),
        Some(first) => (false, first.reason, crate::plan::messages(warnings.iter().copied())),
    }
}

/// Write `new` as the whole status of `obj` when it differs from the status `obj` holds (a JSON
/// patch `add /status` replaces it, clearing fields that went away). Optimistic concurrency: the
/// patch carries the `resourceVersion` the decision was made on, so the API server refuses it
/// (409 Conflict) when the object changed meanwhile, and the reconcile runs again on fresh data.
/// Returns the object as written, `None` when nothing needed writing.
pub async fn write<K, S>(api: &kube::Api<K>, obj: &K, old: Option<&S>, new: &S) -> Result<Option<K>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: serde::Serialize + PartialEq,
{
    if old == Some(new) {
        return Ok(None);
    }
    let value = serde_json::to_value(new).map_err(kube::Error::SerdeError)?;
    let mut ops = Vec::new();
    if let Some(rv) = &obj.meta().resource_version {
        ops.push(serde_json::json!({"op": "replace", "path": "/metadata/resourceVersion", "value": rv}));
    }
    ops.push(serde_json::json!({"op": "add", "path": "/status", "value": value}));
    let patch: json_patch::Patch =
        serde_json::from_value(serde_json::Value::Array(ops)).map_err(kube::Error::SerdeError)?;
    let name = obj.meta().name.clone().unwrap_or_default();
    let written =
        api.patch_status(&name, &kube::api::PatchParams::default(), &kube::api::Patch::<()>::Json(patch)).await?;
    Ok(Some(written))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_stall_transient_errors_progress_and_observe_mode_is_done() {
        assert_eq!(progress(true, Reason::Reconciled), Progress::Done);
        assert_eq!(progress(false, Reason::PendingChanges), Progress::Done);
        for working in [
            Reason::Throttled,
            Reason::AzureError,
            Reason::WaitingForCustomRole,
            Reason::PrincipalRefNotFound,
            Reason::Progressing,
            Reason::Drifted,
        ] {
            assert_eq!(progress(false, working), Progress::Working, "{working}");
        }
        for stalled in [
            Reason::DpsLinked,
            Reason::DpsCheckFailed,
            Reason::DpsIdentityLacksRole,
            Reason::DeviceUpdateLinked,
            Reason::PolicyDenied,
            Reason::DelegationDenied,
            Reason::OverriddenByPolicy,
            Reason::WouldLockOut,
            Reason::HubNotFound,
            Reason::RoleNameTaken,
            Reason::InvalidSpec,
            Reason::ScopeNotAllowed,
            Reason::PrincipalNotFound,
            Reason::UnknownReconcileMode,
        ] {
            assert_eq!(progress(false, stalled), Progress::Stalled, "{stalled}");
        }
    }

    #[test]
    fn only_the_true_progress_condition_is_present() {
        let mut c = Vec::new();
        set_progress(&mut c, Progress::Working, Reason::Throttled, "wait", Some(1));
        assert_eq!(
            c.iter().map(|c| (c.type_.as_str(), c.status.as_str())).collect::<Vec<_>>(),
            [(RECONCILING, "True")]
        );
        set_progress(&mut c, Progress::Stalled, Reason::DpsLinked, "linked", Some(1));
        assert_eq!(c.iter().map(|c| (c.type_.as_str(), c.status.as_str())).collect::<Vec<_>>(), [(STALLED, "True")]);
        set_progress(&mut c, Progress::Done, Reason::Reconciled, "ok", Some(1));
        assert!(c.is_empty());
    }

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
