//! Reconciling `IotHubSharedAccess`: set the hub's `disableLocalAuth` / `disableDeviceSAS` /
//! `disableModuleSAS` only when they differ. Deny is refused, with the blocker in status and an
//! Event, while anything reaches the hub by key (the interlock: DPS and Device Update instances
//! in every subscription in reach, identity links without a role), while that check cannot be
//! completed, or while nobody would keep data access; the write itself is checked again on
//! fresh reads before and after (`interlock`). A denied hub that something reaches by key again
//! is reported not Ready, never re-allowed. Refusals are re-checked every `interlock_recheck`;
//! a policy refusal waits for the resync. Deleting the resource leaves the hub as it is.

use std::sync::Arc;

use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::Event as Finalizer;
use kube::{Api, ResourceExt};

use super::status::{self, READY, reason};
use super::{Context, Kind, ReconcileError, done, finish, in_finalizer, key_of, reconcile_mode};
use crate::apply::{self, Outcome};
use crate::azure::AzureError;
use crate::crd::common::Blocker;
use crate::crd::shared_access::{InterlockStatus, IotHubSharedAccessStatus};
use crate::crd::{Access, IotHubSharedAccess, ReconcileMode};
use crate::desire::desire_shared_access;
use crate::domain::DependentsObservation;
use crate::engine;
use crate::plan::{Finding, Reason, Severity};
use crate::telemetry::ReasonLabels;

const KIND: &str = <IotHubSharedAccess as Kind>::KIND;

/// The controller's entry point for one object.
pub async fn reconcile(obj: Arc<IotHubSharedAccess>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    let api: Api<IotHubSharedAccess> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    in_finalizer(&api, obj, &ctx, |event| async {
        match event {
            Finalizer::Apply(o) => apply_one(&api, &o, &ctx).await,
            Finalizer::Cleanup(o) => {
                ctx.metrics.forget(KIND, &key_of(o.as_ref()));
                Ok(Requeue::await_change())
            }
        }
    })
    .await
}

fn access(disabled: bool) -> Access {
    if disabled { Access::Deny } else { Access::Allow }
}

/// What the interlock searched, for status.
fn interlock_status(dependents: &DependentsObservation) -> InterlockStatus {
    match dependents {
        DependentsObservation::Complete(d) => InterlockStatus {
            checked_at: d.checked_at.clone(),
            subscriptions: d.subscriptions.clone(),
            provisioning_services: d.dps.len() as u32,
            provisioning_services_without_link_types: d.dps.iter().filter(|x| !x.link_types_reported).count() as u32,
            device_update_instances: d.device_update.len() as u32,
            failed: None,
        },
        DependentsObservation::Failed(why) => InterlockStatus {
            checked_at: jiff::Timestamp::now().to_string(),
            failed: Some(why.clone()),
            ..InterlockStatus::default()
        },
    }
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

async fn apply_one(
    api: &Api<IotHubSharedAccess>,
    obj: &IotHubSharedAccess,
    ctx: &Context,
) -> Result<Requeue, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let (mode, mode_problem) = reconcile_mode(obj);
    if mode == ReconcileMode::Skip {
        return Ok(done(ctx, obj));
    }
    let mut st = obj.status.clone().unwrap_or_default();
    let desired = match desire_shared_access(&obj.spec) {
        Ok(d) => d,
        Err(errors) => {
            let msg = errors.to_string();
            finish(api, obj, ctx, st, false, reason::INVALID_SPEC, &msg).await?;
            return Ok(done(ctx, obj));
        }
    };
    let hub_id = desired.hub.arm_id();
    st.hub_id = Some(hub_id.clone());
    if let Err(e) = ctx.check_scopes(&ns, [hub_id.as_str()])? {
        if !status::already_told(&st.conditions, reason::SCOPE_NOT_ALLOWED, None) {
            ctx.event(obj, EventType::Warning, reason::SCOPE_NOT_ALLOWED, e.to_string()).await;
        }
        finish(api, obj, ctx, st, false, reason::SCOPE_NOT_ALLOWED, &e.to_string()).await?;
        return Ok(done(ctx, obj));
    }
    let obs = ctx.observer.get();
    let view = match engine::plan_shared_access(&obs, &desired).await {
        Ok(v) => v,
        Err(e) => {
            let e = ReconcileError::from(e);
            finish(api, obj, ctx, st, false, e.reason(), &e.to_string()).await?;
            return Err(e);
        }
    };
    let plan = &view.plan;
    if let Some(hub) = &view.hub {
        st.shared_access_policies = Some(access(hub.disable_local_auth));
        st.device_sas = Some(access(hub.disable_device_sas));
        st.module_sas = Some(access(hub.disable_module_sas));
    }
    st.interlock = desired.disable_local_auth.then(|| interlock_status(&view.dependents));
    st.blockers = blockers_of(&plan.findings);
    if mode != ReconcileMode::Manage {
        st.pending_actions = status::pending(&plan.actions);
        let (ready, why, msg) = status::observe_verdict(plan, mode_problem);
        finish(api, obj, ctx, st, ready, &why, &msg).await?;
        return Ok(done(ctx, obj));
    }
    st.pending_actions.clear();
    let previously_ready = status::is_true(&st.conditions, READY) && st.observed_generation == obj.metadata.generation;
    let denied = view.hub.as_ref().is_some_and(|h| h.disable_local_auth);
    tell_blockers(obj, ctx, &st, plan.blockers(), denied).await;
    let applied = apply::apply(ctx.azure_for(&ns), plan, ctx.settings.write_concurrency).await;
    ctx.report_writes(obj, KIND, &applied).await;
    let mut verdict: Option<(String, String)> = None;
    for a in &applied {
        match &a.outcome {
            Outcome::Failed(AzureError::PolicyDenied { assignment, definition, message }) => {
                // Permanent until the policy changes: reported, retried at the resync only.
                let msg = format!(
                    "Azure Policy refused the hub write ({}): assignment {assignment}, definition {definition}: {message}",
                    a.action.describe()
                );
                if !status::already_told(&st.conditions, Reason::PolicyDenied.as_str(), None) {
                    ctx.event(obj, EventType::Warning, Reason::PolicyDenied.as_str(), msg.clone()).await;
                }
                verdict = Some((Reason::PolicyDenied.as_str().into(), msg));
            }
            Outcome::Failed(e) => {
                let e = ReconcileError::from(e.clone());
                finish(api, obj, ctx, st, false, e.reason(), &e.to_string()).await?;
                return Err(e);
            }
            Outcome::Refused(found) | Outcome::Reverted(found) => {
                tell_blockers(obj, ctx, &st, found.iter(), false).await;
                st.blockers = blockers_of(found);
            }
            Outcome::Overridden(what) => {
                let interlock = match &view.dependents {
                    DependentsObservation::Complete(_) if !st.blockers.is_empty() => {
                        format!(
                            "; the interlock reports: {}",
                            st.blockers.iter().map(|b| b.reason.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    }
                    DependentsObservation::Failed(why) => format!("; the interlock could not check dependents: {why}"),
                    _ => String::new(),
                };
                verdict = Some((Reason::OverriddenByPolicy.as_str().into(), format!("{what}{interlock}")));
            }
            _ => {}
        }
    }
    if applied.iter().any(|a| !matches!(a.outcome, Outcome::Refused(_) | Outcome::Skipped)) {
        // Status says what Azure holds now, read back, never what was meant to be written.
        obs.forget_hub(&desired.hub);
        if let Ok(Some(hub)) = obs.hub(&desired.hub).await {
            st.shared_access_policies = Some(access(hub.disable_local_auth));
            st.device_sas = Some(access(hub.disable_device_sas));
            st.module_sas = Some(access(hub.disable_module_sas));
        }
        if previously_ready && applied.iter().all(|a| a.outcome.is_ok()) {
            ctx.drift_repaired(obj, "the hub", &applied).await;
        }
    }
    let (ready, why, msg) = match (verdict, st.blockers.first()) {
        (Some((why, msg)), _) => (false, why, msg),
        (None, Some(b)) => {
            (false, b.reason.clone(), st.blockers.iter().map(|b| b.message.as_str()).collect::<Vec<_>>().join("; "))
        }
        (None, None) => (true, reason::RECONCILED.to_string(), "the hub's access settings match the spec".to_string()),
    };
    let recheck = !ready && why != Reason::PolicyDenied.as_str();
    finish(api, obj, ctx, st, ready, &why, &msg).await?;
    let next = done(ctx, obj);
    // Refusals and failing checks depend on Azure alone: look again soon, not at the resync.
    Ok(if recheck { Requeue::requeue(ctx.settings.interlock_recheck) } else { next })
}

/// A Warning Event and the metric for each blocker not reported yet.
async fn tell_blockers<'a>(
    obj: &IotHubSharedAccess,
    ctx: &Context,
    st: &IotHubSharedAccessStatus,
    blockers: impl Iterator<Item = &'a Finding>,
    denied: bool,
) {
    for f in blockers {
        ctx.metrics.shared_access_blocked.get_or_create(&ReasonLabels { reason: f.reason.as_str().into() }).inc();
        if status::already_told(&st.conditions, f.reason.as_str(), None) {
            continue;
        }
        let lead = if denied { "Shared access is denied, but" } else { "Deny refused" };
        ctx.event(
            obj,
            EventType::Warning,
            f.reason.as_str(),
            format!("{lead}: {} ({})", f.message, f.resource_ids.join(", ")),
        )
        .await;
    }
}
