//! The SAS interlock around the one dangerous write: denying a hub's shared access. Right before
//! the write, everything that could refuse it is read again, fresh (the hub, every DPS and
//! Device Update instance in reach, the hub's role assignments) and judged by the same pure
//! rules as the plan; right after it, the dependents are read again, and if something now
//! reaches the hub by key (it linked in the window between the two reads), shared access is put
//! back as it was and that is reported. The window is the time from the start of the fresh
//! read to the end of the write; it is measured and logged. The reads are `observe`'s
//! ([`crate::observe::interlock_inputs`], each on an [`Observer`] of its own, so nothing cached
//! is reused); the rules are `plan`'s. I/O: reads and writes through the [`Azure`] trait. The
//! outcomes it hands back are [`crate::outcome::Outcome`]s; `apply` calls it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::azure::{Azure, AzureError, HubAccessChange};
use crate::domain::Access;
use crate::domain::{DependentsObservation, HubId, ObservedHub};
use crate::observe::{Observer, interlock_inputs, interlock_reads};
use crate::outcome::Outcome;
use crate::plan::shared_access::{deny_blockers, dependency_blockers, lockout_blocker};
use crate::plan::{Finding, Reason};

/// What Azure holds after a hub write, compared with what was written: `Done`, or
/// `Overridden` naming each property Azure holds differently (a Modify policy, for one).
fn held(change: &HubAccessChange, after: &ObservedHub) -> Outcome {
    let differs: Vec<String> = change
        .differences(after)
        .into_iter()
        .map(|(name, w, have)| format!("{name} {} (written: {})", have.as_str(), w.as_str()))
        .collect();
    if differs.is_empty() {
        Outcome::Done
    } else {
        Outcome::Overridden(
            format!(
                "hub {} holds {} after the write: something outside the operator (an Azure Policy with the Modify effect, such as 'Configure Azure IoT Hub to disable local authentication') changed it",
                after.id.name,
                differs.join(", ")
            ),
            vec![],
        )
    }
}

/// What a hub write came to: its outcome, the hub as Azure holds it afterwards when that was
/// read (so nobody reads it again), and for a Deny written, the window (fresh read started ->
/// write finished).
pub struct HubOutcome {
    pub outcome: Outcome,
    pub hub: Option<ObservedHub>,
    pub window: Option<Duration>,
}

impl HubOutcome {
    fn new(outcome: Outcome, hub: Option<ObservedHub>, window: Option<Duration>) -> HubOutcome {
        HubOutcome { outcome, hub, window }
    }

    fn failed(e: AzureError) -> HubOutcome {
        HubOutcome { outcome: Outcome::Failed(e), hub: None, window: None }
    }
}

/// Write a hub change that does not deny shared access. When Azure ends up holding shared
/// access denied anyway (a Modify policy), the interlock's fresh view of what that breaks comes
/// with the outcome.
pub async fn write(azure: Arc<dyn Azure>, hub: &HubId, change: &HubAccessChange) -> HubOutcome {
    let (after, written) = match azure.set_hub_access(hub, change).await {
        Ok(w) => (w.hub, w.written),
        Err(e) => return HubOutcome::failed(e),
    };
    let outcome = match nothing_sent(held(change, &after), written) {
        Outcome::Overridden(what, _) if after.shared_access == Access::Deny => {
            let found = match interlock_reads(&Observer::new(azure), after.clone(), true).await {
                // Everything a Deny breaks, nobody left holding a data role included.
                Ok(i) => deny_blockers(&after, &i.dependents, &i.assignments, &i.roles, true),
                Err(e) => {
                    dependency_blockers(&after, &DependentsObservation::Failed(e.to_string()), &[], &NO_ROLES, true)
                }
            };
            Outcome::Overridden(what, found)
        }
        o => o,
    };
    HubOutcome::new(outcome, Some(after), None)
}

/// Deny shared access on `hub` under the interlock.
///
/// Only a Deny this call wrote is ever put back: a hub that is already denied when read fresh
/// (by someone else, or a policy) gets the rest of the change only, and is never re-allowed here.
pub async fn deny(azure: Arc<dyn Azure>, hub: &HubId, change: &HubAccessChange) -> HubOutcome {
    let started = Instant::now();
    let before = match interlock_inputs(&Observer::new(azure.clone()), hub, true).await {
        Ok(i) => i,
        Err(e) => return HubOutcome::failed(e),
    };
    let Some(current) = before.hub else {
        return HubOutcome::failed(AzureError::NotFound {
            code: "ResourceNotFound".into(),
            message: format!("IoT hub {} not found", hub.name),
        });
    };
    if current.shared_access == Access::Deny {
        // Denied by someone else, or a policy, since the plan read: never re-allowed here, and
        // never reported Ready while the fresh view says something needs shared access.
        let broken = deny_blockers(&current, &before.dependents, &before.assignments, &before.roles, true);
        let rest = HubAccessChange { shared_access: None, ..*change };
        let (outcome, written, now) = if rest.device_sas.is_none() && rest.module_sas.is_none() {
            (Outcome::AlreadyDone, false, current)
        } else {
            match azure.set_hub_access(hub, &rest).await {
                Ok(w) => (nothing_sent(held(&rest, &w.hub), w.written), w.written, w.hub),
                Err(e) => return HubOutcome::failed(e),
            }
        };
        let outcome = match outcome {
            Outcome::Done | Outcome::AlreadyDone if !broken.is_empty() => {
                Outcome::DeniedBut { written, blockers: broken }
            }
            Outcome::Overridden(what, _) => Outcome::Overridden(what, broken),
            o => o,
        };
        return HubOutcome::new(outcome, Some(now), None);
    }
    let blockers = deny_blockers(&current, &before.dependents, &before.assignments, &before.roles, false);
    if !blockers.is_empty() {
        return HubOutcome::new(Outcome::Refused(blockers), Some(current), None);
    }
    // `ours`: a PUT of this call was accepted and it replaced a hub allowing shared access, so the
    // Deny is this call's. Anything else (someone else denied it since the fresh read, a 412 after
    // a resend, a PUT whose answer was lost) is not known to be ours: such a Deny is checked and
    // reported like any other, never put back here (re-allowing keys is the side never guessed).
    let (after, written, ours, replaced) = match azure.set_hub_access(hub, change).await {
        Ok(w) => {
            let ours = w.written && w.before.shared_access == Access::Allow;
            (w.hub, w.written, ours, w.before)
        }
        // The PUT may have landed although its answer or its operation failed: look, and if
        // Azure holds the Deny, the check after the write still runs.
        Err(e) => match azure.get_hub(hub).await {
            Ok(Some(h)) if h.shared_access == Access::Deny => (h, true, false, current.clone()),
            _ => return HubOutcome::failed(e),
        },
    };
    let window = started.elapsed();
    tracing::info!(hub = %hub.name, window_ms = window.as_millis() as u64, "shared access denied; checking again what reaches the hub by key");
    if after.shared_access == Access::Allow {
        return HubOutcome::new(held(change, &after), Some(after), Some(window));
    }
    let found = match interlock_reads(&Observer::new(azure.clone()), after.clone(), true).await {
        // Phrased for what is put back when this call wrote the Deny; for the Deny in place when
        // it did not, or when the check failed.
        Ok(i) => {
            let in_place = !ours || matches!(i.dependents, DependentsObservation::Failed(_));
            let mut found = dependency_blockers(&after, &i.dependents, &i.assignments, &i.roles, in_place);
            // Nobody left holding a data role (removed in the window): reported with the Deny.
            found.extend(lockout_blocker(&after, &i.assignments, &i.roles, true));
            found
        }
        Err(e) => dependency_blockers(&after, &DependentsObservation::Failed(e.to_string()), &[], &NO_ROLES, true),
    };
    // What SAS itself breaks (a key link, a Device Update instance) is put back; anything else
    // the fresh check finds (an identity link without a role fails with or without SAS, a check
    // that could not complete) is reported with the Deny in place.
    let (appeared, other): (Vec<Finding>, Vec<Finding>) =
        found.into_iter().partition(|f| matches!(f.reason, Reason::DpsLinked | Reason::DeviceUpdateLinked));
    if appeared.is_empty() || !ours {
        let mut blockers = appeared;
        blockers.extend(other);
        let outcome = match nothing_sent(held(change, &after), written) {
            Outcome::Done | Outcome::AlreadyDone if !blockers.is_empty() => {
                tracing::warn!(hub = %hub.name, "shared access denied, but the check after the write reports blockers");
                Outcome::DeniedBut { written, blockers }
            }
            Outcome::Overridden(what, _) => Outcome::Overridden(what, blockers),
            o => o,
        };
        return HubOutcome::new(outcome, Some(after), Some(window));
    }
    // The hub as the PUT found it: shared access, and whatever else the same write changed.
    let undo = HubAccessChange {
        shared_access: Some(Access::Allow),
        device_sas: change.device_sas.filter(|w| *w != replaced.device_sas).map(|_| replaced.device_sas),
        module_sas: change.module_sas.filter(|w| *w != replaced.module_sas).map(|_| replaced.module_sas),
    };
    let failed = |why: String| {
        Outcome::Failed(AzureError::Transient {
            message: format!(
                "Deny was written on hub {}, then {} appeared; allowing shared access again failed: {why}",
                hub.name,
                appeared.iter().map(|f| f.reason.as_str()).collect::<Vec<_>>().join(", ")
            ),
        })
    };
    match azure.set_hub_access(hub, &undo).await.map(|w| w.hub) {
        Ok(h) if h.shared_access == Access::Allow => {
            tracing::warn!(hub = %hub.name, "a dependent appeared while Deny was written; shared access allowed again");
            HubOutcome::new(Outcome::Reverted(appeared), Some(h), Some(window))
        }
        Ok(h) => {
            HubOutcome::new(failed("Azure still holds Deny after the write (a policy?)".into()), Some(h), Some(window))
        }
        Err(e) => HubOutcome::new(failed(e.to_string()), None, Some(window)),
    }
}

const NO_ROLES: Vec<crate::domain::RoleDefinition> = Vec::new();

/// A write that sent nothing (Azure already held it) is not "done" by this call.
fn nothing_sent(outcome: Outcome, written: bool) -> Outcome {
    match outcome {
        Outcome::Done if !written => Outcome::AlreadyDone,
        o => o,
    }
}
