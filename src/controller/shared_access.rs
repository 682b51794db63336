//! Reconciling `IotHubSharedAccess`: set the hub's `disableLocalAuth` / `disableDeviceSAS` /
//! `disableModuleSAS` only when they differ. Deny is refused, with the blocker in status and an
//! Event, while a DPS links the hub by key, while that check cannot be completed, or while
//! nobody would keep data access. Deleting the resource leaves the hub as it is.

use std::sync::Arc;

use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::Event as Finalizer;
use kube::{Api, ResourceExt};

use super::status::{self, READY, reason};
use super::{Context, Kind, ReconcileError, done, finish, in_finalizer, key_of, reconcile_mode};
use crate::apply::{self, Outcome};
use crate::crd::common::Blocker;
use crate::crd::{Access, IotHubSharedAccess, ReconcileMode};
use crate::desire::desire_shared_access;
use crate::engine;
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
    let plan = match engine::plan_shared_access(&obs, &desired).await {
        Ok(p) => p,
        Err(e) => {
            let e = ReconcileError::from(e);
            finish(api, obj, ctx, st, false, e.reason(), &e.to_string()).await?;
            return Err(e);
        }
    };
    if let Ok(Some(hub)) = obs.hub(&desired.hub).await {
        st.shared_access_policies = Some(access(hub.disable_local_auth));
        st.device_sas = Some(access(hub.disable_device_sas));
        st.module_sas = Some(access(hub.disable_module_sas));
    }
    st.blockers = plan
        .blockers()
        .map(|f| Blocker {
            reason: f.reason.as_str().into(),
            message: f.message.clone(),
            resource_ids: f.resource_ids.clone(),
        })
        .collect();
    if mode != ReconcileMode::Manage {
        st.pending_actions = status::pending(&plan.actions);
        let (ready, why, msg) = status::observe_verdict(&plan, mode_problem);
        finish(api, obj, ctx, st, ready, &why, &msg).await?;
        return Ok(done(ctx, obj));
    }
    st.pending_actions.clear();
    let previously_ready = status::is_true(&st.conditions, READY) && st.observed_generation == obj.metadata.generation;
    for f in plan.blockers() {
        ctx.metrics.shared_access_blocked.get_or_create(&ReasonLabels { reason: f.reason.as_str().into() }).inc();
        let already_told = status::already_told(&st.conditions, f.reason.as_str(), None);
        if !already_told {
            ctx.event(
                obj,
                EventType::Warning,
                f.reason.as_str(),
                format!("Deny refused: {} ({})", f.message, f.resource_ids.join(", ")),
            )
            .await;
        }
    }
    let applied = apply::apply(ctx.azure_for(&ns), &plan, ctx.settings.write_concurrency).await;
    ctx.report_writes(obj, KIND, &applied).await;
    if let Some(e) = applied.iter().find_map(|a| match &a.outcome {
        Outcome::Failed(e) => Some(e.clone()),
        _ => None,
    }) {
        let e = ReconcileError::from(e);
        finish(api, obj, ctx, st, false, e.reason(), &e.to_string()).await?;
        return Err(e);
    }
    if !applied.is_empty() {
        st.shared_access_policies = Some(access(desired.disable_local_auth));
        if let Some(d) = desired.disable_device_sas {
            st.device_sas = Some(access(d));
        }
        if let Some(m) = desired.disable_module_sas {
            st.module_sas = Some(access(m));
        }
        if previously_ready {
            ctx.drift_repaired(obj, "the hub", &applied).await;
        }
    }
    let (ready, why, msg) = if plan.blockers().next().is_some() {
        status::plan_verdict(&plan)
    } else {
        (true, reason::RECONCILED.to_string(), "the hub's access settings match the spec".to_string())
    };
    finish(api, obj, ctx, st, ready, &why, &msg).await?;
    Ok(done(ctx, obj))
}
