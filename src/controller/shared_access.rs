//! Reconciling `IotHubSharedAccess`: set the hub's `disableLocalAuth` / `disableDeviceSAS` /
//! `disableModuleSAS` only when they differ. Deny is refused, with the blocker in status and an
//! Event, while anything reaches the hub by key (the interlock: DPS and Device Update instances
//! in every subscription in reach, identity links without a role), while that check cannot be
//! completed, or while nobody would keep data access; the write itself is checked again on
//! fresh reads before and after (`interlock`). A denied hub that something reaches by key again
//! is reported not Ready, never re-allowed. Refusals are re-checked every `interlock_recheck`;
//! a policy refusal waits for the resync. Deleting the resource leaves the hub as it is.

use std::sync::Arc;

use async_trait::async_trait;
use kube::Api;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;

use super::driver::{self, Steps, Stop, Verdict};
use super::plain_sources;
use super::status;
use super::{Context, Kind, ReconcileError, key_of, owner_of};
use crate::apply::Applied;
use crate::azure::AzureError;
use crate::crd::common::Blocker;
use crate::crd::shared_access::{ExposureStatus, HubDependent, InterlockStatus, IotHubSharedAccessStatus};
use crate::crd::{Access, IotHubSharedAccess, ReconcileMode};
use crate::desire::DesiredSharedAccess;
use crate::domain::{Dependents, DependentsObservation, HubId, LinkAuth, ObservedHub};
use crate::gate::VerdictExt as _;
use crate::outcome::Outcome;
use crate::pipeline::{HubView, Pipeline};
use crate::plan::exposure::Reach;
use crate::plan::shared_access::{self, HubWriteResult, Tell};
use crate::plan::{self, Finding, Plan, Reason, Severity};
use crate::telemetry::ReasonLabels;

/// The controller's entry point for one object.
pub async fn reconcile(obj: Arc<IotHubSharedAccess>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    driver::reconcile(obj, ctx).await
}

/// At most this many dependents are listed in status (the counts are complete).
const LISTED_DEPENDENTS: usize = 20;

/// What the interlock searched, and what it found using `hub`, for status.
fn interlock_status(dependents: &DependentsObservation, hub: Option<&ObservedHub>) -> InterlockStatus {
    match dependents {
        DependentsObservation::Complete(d) => InterlockStatus {
            checked_at: d.checked_at.clone(),
            subscriptions: d.subscriptions.clone(),
            provisioning_services: d.dps.len() as u32,
            provisioning_services_without_link_types: d.dps.iter().filter(|x| !x.link_types_reported).count() as u32,
            device_update_instances: d.device_update.len() as u32,
            dependents: hub.map(|h| using(d, h)).unwrap_or_default(),
            failed: None,
        },
        DependentsObservation::Failed(why) => InterlockStatus {
            checked_at: jiff::Timestamp::now().to_string(),
            failed: Some(why.clone()),
            ..InterlockStatus::default()
        },
    }
}

/// The DPS links and Device Update instances that use `hub`, sorted by id, the first few.
fn using(d: &Dependents, hub: &ObservedHub) -> Vec<HubDependent> {
    let mut out: Vec<HubDependent> = d
        .dps
        .iter()
        .flat_map(|x| x.links.iter().filter(|l| l.links(hub)).map(|l| (x.id.clone(), l.auth.clone())))
        .map(|(id, auth)| HubDependent {
            id,
            authentication: match auth {
                LinkAuth::Key => "KeyBased",
                LinkAuth::SystemAssigned => "SystemAssigned",
                LinkAuth::UserAssigned(_) => "UserAssigned",
            }
            .into(),
        })
        .chain(
            plan::shared_access::device_update_on(hub, d)
                .into_iter()
                .map(|id| HubDependent { id, authentication: "LocalAuthentication".into() }),
        )
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id).then(a.authentication.cmp(&b.authentication)));
    out.dedup();
    out.truncate(LISTED_DEPENDENTS);
    out
}

fn blockers_of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Vec<Blocker> {
    findings
        .into_iter()
        .filter(|f| f.severity == Severity::Blocker)
        .map(|f| Blocker {
            reason: f.reason.as_str().into(),
            message: f.message.clone(),
            resource_ids: f.resource_ids.clone(),
        })
        .collect()
}

fn set_access(st: &mut IotHubSharedAccessStatus, hub: &ObservedHub) {
    st.shared_access_policies = Some(hub.shared_access);
    st.device_sas = Some(hub.device_sas);
    st.module_sas = Some(hub.module_sas);
}

#[async_trait]
impl Steps for IotHubSharedAccess {
    type Desired = DesiredSharedAccess;
    type View = HubView;
    const SUBJECT: &'static str = "the hub";

    async fn desire(&self, ctx: &Context, st: &mut IotHubSharedAccessStatus) -> Result<DesiredSharedAccess, Stop> {
        let d = Pipeline::desire(self, &plain_sources(ctx, self)).map_err(|e| Stop {
            reason: Reason::InvalidSpec,
            message: e.detail(),
            event: true,
            retry: None,
        })?;
        st.hub_id = Some(d.hub.arm_id());
        if let Some(f) = claimed_elsewhere(ctx, self, &d) {
            // Looked at again at the re-check interval: the keeper may go.
            return Err(Stop {
                reason: f.reason,
                message: f.message,
                event: true,
                retry: Some(ctx.settings.interlock_recheck),
            });
        }
        Ok(d)
    }

    async fn plan(
        &self,
        ctx: &Context,
        desired: &DesiredSharedAccess,
        _st: &IotHubSharedAccessStatus,
    ) -> Result<(Plan, HubView), AzureError> {
        Pipeline::plan(self, &ctx.observer_for(self), &plain_sources(ctx, self), desired, ()).await
    }

    fn observed(&self, st: &mut IotHubSharedAccessStatus, desired: &DesiredSharedAccess, plan: &Plan, seen: &HubView) {
        if let Some(hub) = &seen.hub {
            set_access(st, hub);
        }
        st.interlock =
            (desired.shared_access == Access::Deny).then(|| interlock_status(&seen.dependents, seen.hub.as_ref()));
        st.blockers = blockers_of(&plan.findings);
    }

    async fn tell_blockers(&self, ctx: &Context, st: &IotHubSharedAccessStatus, blockers: &[&Finding]) {
        let denied = st.shared_access_policies == Some(Access::Deny);
        tell(self, ctx, st, blockers, denied).await;
    }

    fn absorbs(e: &AzureError) -> bool {
        matches!(e, AzureError::PolicyDenied { .. })
    }

    async fn applied(
        &self,
        ctx: &Context,
        st: &mut IotHubSharedAccessStatus,
        desired: &DesiredSharedAccess,
        plan: &Plan,
        _seen: &HubView,
        applied: &[Applied],
    ) -> Verdict {
        let writes: Vec<HubWriteResult> = applied.iter().map(hub_write).collect();
        for t in shared_access::tells(&writes) {
            match t {
                // Permanent until the policy changes: reported, retried at the resync only.
                Tell::PolicyDenied(msg) => {
                    if !status::already_told(&st.conditions, Reason::PolicyDenied.as_str(), None) {
                        ctx.event(self, EventType::Warning, Reason::PolicyDenied, msg).await;
                    }
                }
                // Not written: told here, with its blockers.
                Tell::Blockers { blockers, denied } => {
                    tell(self, ctx, st, &blockers.iter().collect::<Vec<_>>(), denied).await;
                }
                // Written: the write's own Event (`report_writes`) carries the blockers; counted here.
                Tell::Count(blockers) => count(ctx, &blockers),
            }
        }
        // Status says what Azure holds now, as the write read it back (kept by the observer;
        // read again only when the write could not), never what was meant to be written.
        let hub_after = if shared_access::reads_back(&writes) {
            ctx.observer_for(self).hub(&desired.hub).await.ok().flatten()
        } else {
            None
        };
        if let Some(hub) = &hub_after {
            set_access(st, hub);
        }
        refresh_exposure(self, ctx, st, &desired.hub).await;
        let plan_blockers: Vec<Finding> = plan.blockers().cloned().collect();
        let v = shared_access::verdict(desired, &plan_blockers, &writes, hub_after.as_ref());
        st.blockers = blockers_of(&v.blockers);
        Verdict {
            ready: v.ready,
            reason: v.reason,
            message: v.message,
            requeue: v.recheck.then_some(ctx.settings.interlock_recheck),
        }
    }

    async fn cleanup(&self, _api: &Api<Self>, ctx: &Context) -> Result<Requeue, ReconcileError> {
        // Deleting the resource leaves the hub as it is.
        ctx.metrics.forget(Self::KIND, &key_of(self));
        Ok(Requeue::await_change())
    }
}

/// Another `IotHubSharedAccess` (any namespace) that keeps `desired`'s hub: one that may ask for it
/// (managed, valid, not being deleted, its namespace allowed on the hub now, or not known: fail
/// closed) and was created first.
fn claimed_elsewhere(ctx: &Context, me: &IotHubSharedAccess, desired: &DesiredSharedAccess) -> Option<Finding> {
    let claimant = |o: &IotHubSharedAccess| plan::shared_access::Claimant {
        owner: owner_of(ctx, o),
        created: o.metadata.creation_timestamp.as_ref().map(|t| t.0),
    };
    let mine = claimant(me);
    let others: Vec<_> = ctx
        .shared_access
        .state()
        .into_iter()
        // The hub's name first: most resources are about another hub.
        .filter(|o| o.metadata.deletion_timestamp.is_none() && o.spec.hub.name.eq_ignore_ascii_case(&desired.hub.name))
        .filter(|o| {
            super::reconcile_mode(o.as_ref()).0 == ReconcileMode::Manage
                && crate::desire::desire_shared_access(&o.spec).is_ok_and(|d| d.hub.key() == desired.hub.key())
        })
        .map(|o| claimant(&o))
        .filter(|c| {
            c.owner != mine.owner && ctx.gate.check(&c.owner.namespace, &[desired.hub.scope()]).is_ok_or_unknown()
        })
        .collect();
    plan::shared_access::conflict(&mine, &desired.hub, &others)
}

/// One write's outcome as the pure report step sees it.
fn hub_write(a: &Applied) -> HubWriteResult {
    match &a.outcome {
        Outcome::Failed(AzureError::PolicyDenied { assignment, definition, message }) => HubWriteResult::PolicyDenied {
            action: a.action.describe(),
            assignment: assignment.clone(),
            definition: definition.clone(),
            message: message.clone(),
        },
        Outcome::Refused(found) => HubWriteResult::Refused(found.clone()),
        Outcome::DeniedBut { written, blockers } => {
            HubWriteResult::DeniedBut { written: *written, blockers: blockers.clone() }
        }
        Outcome::Reverted(found) => HubWriteResult::Reverted(found.clone()),
        Outcome::Overridden(what, found) => HubWriteResult::Overridden(what.clone(), found.clone()),
        Outcome::Skipped => HubWriteResult::Skipped,
        Outcome::Done | Outcome::AlreadyDone | Outcome::Adopted(_) | Outcome::Failed(_) => HubWriteResult::Other,
    }
}

/// The blocked metric for each blocker.
fn count(ctx: &Context, blockers: &[Finding]) {
    for f in blockers {
        ctx.metrics.shared_access_blocked.get_or_create(&ReasonLabels { reason: f.reason.as_str().into() }).inc();
    }
}

/// The metric and a Warning Event for each blocker not reported yet.
async fn tell(
    obj: &IotHubSharedAccess,
    ctx: &Context,
    st: &IotHubSharedAccessStatus,
    blockers: &[&Finding],
    denied: bool,
) {
    count(ctx, &blockers.iter().map(|f| (*f).clone()).collect::<Vec<_>>());
    let lead = if denied { "Shared access is denied, but: " } else { "Deny refused: " };
    driver::tell_once(obj, ctx, st, blockers, lead).await;
}

/// Most key holders status names.
const MAX_KEY_HOLDERS: usize = 20;

/// Who can reach the hub, read again once per resync period (or on a reconcile request); a
/// principal that can newly reach the keys while shared access is allowed is a Warning Event.
/// Advisory: a failed read keeps the last summary and is logged.
async fn refresh_exposure(obj: &IotHubSharedAccess, ctx: &Context, st: &mut IotHubSharedAccessStatus, hub: &HubId) {
    let now = jiff::Timestamp::now();
    let fresh_enough = st
        .exposure
        .as_ref()
        .and_then(|e| e.checked_at.parse::<jiff::Timestamp>().ok())
        .is_some_and(|at| now.duration_since(at).unsigned_abs() < ctx.settings.resync_interval);
    if fresh_enough && driver::requested(obj).is_none() {
        return;
    }
    // The hub itself was just read (plan, write, read-back): its setting is in status.
    let shared_access = st.shared_access_policies.unwrap_or(Access::Allow);
    let exposure = match crate::observe::exposure::exposure_of(ctx.azure.as_ref(), hub, shared_access, false).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(hub = %hub, error = %e, "exposure of the hub not read; keeping the last summary");
            return;
        }
    };
    let counts = exposure.counts();
    let holders: Vec<String> =
        exposure.key_holders_while_allowed().iter().map(|p| p.principal_id.clone()).take(MAX_KEY_HOLDERS).collect();
    if let Some(before) = &st.exposure {
        let new: Vec<&String> = holders.iter().filter(|h| !before.key_holders.contains(h)).collect();
        if !new.is_empty() {
            let note = format!(
                "can now reach the keys of hub {} while shared access is allowed: {} (see `iothub-access-operator audit --hub {}`)",
                hub.name,
                new.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                hub.arm_id()
            );
            ctx.event(obj, EventType::Warning, Reason::KeyHolderAppeared, note).await;
        }
    }
    let n = |r| counts.get(&r).copied().unwrap_or(0) as u32;
    st.exposure = Some(ExposureStatus {
        checked_at: now.to_string(),
        keys: n(Reach::Keys),
        grant: n(Reach::Grant),
        data: n(Reach::Data),
        key_holders: holders,
    });
}
