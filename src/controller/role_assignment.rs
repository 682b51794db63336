//! Reconciling `IotHubRoleAssignment`: resolve the role (waiting for a referenced
//! `IotHubCustomRole` to be Ready), check the guardrail, plan through the engine, write, and
//! record what the resource owns so cleanup deletes exactly that.

use std::sync::Arc;

use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::Event as Finalizer;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::status::{self, LEAST_PRIVILEGE, READY, reason};
use super::{
    ClusterWants, Context, Kind, ReconcileError, done, finish, in_finalizer, key_of, owner_of, reconcile_mode,
};
use crate::apply::{self, Outcome};
use crate::crd::{
    IotHubCustomRole, IotHubCustomRoleSpec, IotHubRoleAssignment, IotHubRoleAssignmentStatus, ReconcileMode,
};
use crate::desire::{DesireError, DesiredAssignment, desire_role_assignment};
use crate::domain::RoleAssignmentId;
use crate::engine::{self, AssignmentRequest};
use crate::plan::{Action, Mode, Reason};

const KIND: &str = <IotHubRoleAssignment as Kind>::KIND;

/// The controller's entry point for one object.
pub async fn reconcile(obj: Arc<IotHubRoleAssignment>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    let api: Api<IotHubRoleAssignment> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    in_finalizer(&api, obj, &ctx, |event| async {
        match event {
            Finalizer::Apply(o) => apply_one(&api, &o, &ctx).await,
            Finalizer::Cleanup(o) => cleanup(&o, &ctx).await,
        }
    })
    .await
}

/// The `IotHubCustomRole` named `name` in `ns`, from the controller's cache.
fn custom_role(ctx: &Context, ns: &str, name: &str) -> Option<Arc<IotHubCustomRole>> {
    ctx.custom_roles.get(&ObjectRef::new(name).within(ns))
}

/// Looks up the spec a `customRoleRef` names.
fn custom_role_lookup<'a>(ctx: &'a Context, ns: &'a str) -> impl Fn(&str) -> Option<IotHubCustomRoleSpec> + 'a {
    move |name: &str| custom_role(ctx, ns, name).map(|r| r.spec.clone())
}

/// Is the referenced custom role Ready for its current generation (and not being deleted)?
fn custom_role_ready(ctx: &Context, ns: &str, name: &str) -> bool {
    custom_role(ctx, ns, name).is_some_and(|r| {
        r.metadata.deletion_timestamp.is_none()
            && r.status.as_ref().is_some_and(|s| {
                status::is_true(&s.conditions, READY) && s.observed_generation == r.metadata.generation
            })
    })
}

fn parse_owned(status: &IotHubRoleAssignmentStatus) -> Vec<RoleAssignmentId> {
    status.owned_assignment_ids.iter().filter_map(|s| RoleAssignmentId::parse(s).ok()).collect()
}

fn fill_resolved(st: &mut IotHubRoleAssignmentStatus, d: &DesiredAssignment) {
    st.role_definition_id = Some(d.role_definition_id());
    st.role_name = Some(d.role.display_name());
    st.scope = Some(d.scope.to_string());
    st.effective_data_actions = d
        .role
        .definition
        .as_ref()
        .map(|def| def.effective_data_actions().into_iter().map(str::to_string).collect())
        .unwrap_or_default();
}

async fn apply_one(
    api: &Api<IotHubRoleAssignment>,
    obj: &IotHubRoleAssignment,
    ctx: &Context,
) -> Result<Requeue, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let (mode, mode_problem) = reconcile_mode(obj);
    if mode == ReconcileMode::Skip {
        return Ok(done(ctx, obj));
    }
    let mut st = obj.status.clone().unwrap_or_default();
    let lookup = custom_role_lookup(ctx, &ns);
    let owner = owner_of(ctx, obj);
    let desired = match desire_role_assignment(&obj.spec, &lookup, &owner) {
        Ok(d) => d,
        Err(DesireError::Invalid(errors)) => {
            let msg = errors.to_string();
            if !status::already_told(&st.conditions, reason::INVALID_SPEC, Some(&msg)) {
                ctx.event(obj, EventType::Warning, reason::INVALID_SPEC, msg.clone()).await;
            }
            finish(api, obj, ctx, st, false, reason::INVALID_SPEC, &msg).await?;
            return Ok(done(ctx, obj));
        }
        Err(e) => {
            finish(api, obj, ctx, st, false, reason::WAITING_FOR_CUSTOM_ROLE, &e.to_string()).await?;
            return Ok(done(ctx, obj));
        }
    };
    fill_resolved(&mut st, &desired);
    if let Some(r) = &obj.spec.role.custom_role_ref
        && !custom_role_ready(ctx, &ns, &r.name)
    {
        let msg = format!("waiting for IotHubCustomRole {ns}/{} to be Ready", r.name);
        finish(api, obj, ctx, st, false, reason::WAITING_FOR_CUSTOM_ROLE, &msg).await?;
        return Ok(done(ctx, obj));
    }
    let hub_id = desired.hub.arm_id();
    let scope_id = desired.scope.to_string();
    if let Err(e) = ctx.check_scopes(&ns, [hub_id.as_str(), scope_id.as_str()])? {
        if !status::already_told(&st.conditions, reason::SCOPE_NOT_ALLOWED, None) {
            ctx.event(obj, EventType::Warning, reason::SCOPE_NOT_ALLOWED, e.to_string()).await;
        }
        finish(api, obj, ctx, st, false, reason::SCOPE_NOT_ALLOWED, &e.to_string()).await?;
        return Ok(done(ctx, obj));
    }
    let owned = parse_owned(&st);
    let req = AssignmentRequest {
        mode: Mode::Apply,
        desired: Some(desired.clone()),
        owner,
        others: ClusterWants::or_unknown(ctx),
        owned: owned.clone(),
        deletion_policy: obj.spec.deletion_policy,
        allowed_roles: ctx.settings.allowed_roles.clone(),
    };
    let obs = ctx.observer.get();
    let plan = match engine::plan_assignment(&obs, &req).await {
        Ok(p) => p,
        Err(e) => {
            let e = ReconcileError::from(e);
            finish(api, obj, ctx, st, false, e.reason(), &e.to_string()).await?;
            return Err(e);
        }
    };
    let (lp_ok, lp_reason, lp_msg) = status::least_privilege(&plan);
    status::set_condition(&mut st.conditions, LEAST_PRIVILEGE, lp_ok, &lp_reason, &lp_msg, obj.metadata.generation);
    let adopted_finding = assignment_found(&plan, Reason::AdoptedExisting);

    if mode != ReconcileMode::Manage {
        st.pending_actions = status::pending(&plan.actions);
        let (ready, why, msg) = status::observe_verdict(&plan, mode_problem);
        st.assignment_id = adopted_finding.as_ref().map(ToString::to_string).or(st.assignment_id);
        finish(api, obj, ctx, st, ready, &why, &msg).await?;
        return Ok(done(ctx, obj));
    }
    st.pending_actions.clear();
    let blocked = plan.blockers().next().is_some();
    for f in plan.blockers() {
        if !status::already_told(&st.conditions, f.reason.as_str(), None) {
            let note = format!("{} ({})", f.message, f.resource_ids.join(", "));
            ctx.event(obj, EventType::Warning, f.reason.as_str(), note).await;
        }
    }

    let drift = status::is_true(&st.conditions, READY)
        && st.observed_generation == obj.metadata.generation
        && plan.actions.iter().any(|a| matches!(a, Action::CreateRoleAssignment { .. }));
    let applied = apply::apply(ctx.azure_for(&ns), &plan, ctx.settings.write_concurrency).await;
    ctx.report_writes(obj, KIND, &applied).await;
    if drift {
        ctx.drift_repaired(obj, "the role assignment", &applied).await;
    }

    // What status reports (a hint for the next reconcile, never an authority): the grant this
    // resource holds (the one it made, or one made for a resource that is gone) and old ones
    // not yet deleted.
    let desired_id = assignment_found(&plan, Reason::TakenOver).unwrap_or_else(|| desired.id());
    let mut owned_now: Vec<RoleAssignmentId> = owned;
    let mut adopted = adopted_finding;
    // A refused plan creates nothing: ownership stays as it was.
    let mut created_or_present = adopted.is_none() && !blocked;
    for a in &applied {
        match (&a.action, &a.outcome) {
            (Action::CreateRoleAssignment { .. }, Outcome::Done) => created_or_present = true,
            (Action::CreateRoleAssignment { .. }, Outcome::Adopted(id)) => {
                adopted = Some(id.clone());
                created_or_present = false;
            }
            (Action::CreateRoleAssignment { .. }, _) => created_or_present = false,
            (Action::DeleteRoleAssignment { id }, o) if o.is_ok() => owned_now.retain(|x| x != id),
            _ => {}
        }
    }
    if created_or_present && !owned_now.contains(&desired_id) {
        owned_now.push(desired_id.clone());
    }
    st.owned_assignment_ids = owned_now.iter().map(ToString::to_string).collect();
    st.adopted_assignment_id = adopted.as_ref().map(ToString::to_string);
    st.assignment_id = adopted.map(|a| a.to_string()).or_else(|| created_or_present.then(|| desired_id.to_string()));

    if let Some(failed) = applied.iter().find_map(|a| match &a.outcome {
        Outcome::Failed(e) => Some(e.clone()),
        _ => None,
    }) {
        let e = ReconcileError::from(failed);
        finish(api, obj, ctx, st, false, e.reason(), &e.to_string()).await?;
        return Err(e);
    }
    let (ready, why, msg) = if blocked {
        status::plan_verdict(&plan)
    } else {
        (true, reason::RECONCILED.to_string(), format!("{} holds the role", desired.principal_id))
    };
    finish(api, obj, ctx, st, ready, &why, &msg).await?;
    Ok(done(ctx, obj))
}

/// The assignment a finding of `reason` names.
fn assignment_found(plan: &crate::plan::Plan, reason: Reason) -> Option<RoleAssignmentId> {
    let finding = plan.findings.iter().find(|f| f.reason == reason)?;
    RoleAssignmentId::parse(finding.resource_ids.first()?).ok()
}

async fn cleanup(obj: &IotHubRoleAssignment, ctx: &Context) -> Result<Requeue, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    ctx.metrics.forget(KIND, &key_of(obj));
    let (mode, _) = reconcile_mode(obj);
    if mode != ReconcileMode::Manage {
        ctx.event(obj, EventType::Normal, "LeftInAzure", "not managed (reconcile annotation): Azure left as is".into())
            .await;
        return Ok(Requeue::await_change());
    }
    let st = obj.status.clone().unwrap_or_default();
    let lookup = custom_role_lookup(ctx, &ns);
    let owner = owner_of(ctx, obj);
    let desired = desire_role_assignment(&obj.spec, &lookup, &owner).ok();
    if let Some(d) = &desired
        && let Err(e) = ctx.check_scopes(&ns, [d.scope.to_string().as_str()])?
    {
        ctx.event(obj, EventType::Warning, reason::SCOPE_NOT_ALLOWED, format!("left in Azure: {e}")).await;
        return Ok(Requeue::await_change());
    }
    // Status only hints where else to look; hints outside the namespace's scopes are not read.
    let mut owned = Vec::new();
    for id in parse_owned(&st) {
        if ctx.check_scopes(&ns, [id.scope.to_string().as_str()])?.is_ok() {
            owned.push(id);
        }
    }
    let req = AssignmentRequest {
        mode: Mode::Cleanup,
        desired,
        owner,
        others: ClusterWants::of(ctx).ok_or(ReconcileError::NotSynced)?,
        owned,
        deletion_policy: obj.spec.deletion_policy,
        allowed_roles: vec![],
    };
    let plan = engine::plan_assignment(&ctx.observer.get(), &req).await?;
    for f in &plan.findings {
        ctx.event(obj, EventType::Normal, f.reason.as_str(), format!("{}: {}", f.message, f.resource_ids.join(", ")))
            .await;
    }
    let applied = apply::apply(ctx.azure_for(&ns), &plan, ctx.settings.write_concurrency).await;
    ctx.report_writes(obj, KIND, &applied).await;
    if let Some(e) = applied.into_iter().find_map(|a| match a.outcome {
        Outcome::Failed(e) => Some(e),
        _ => None,
    }) {
        return Err(e.into());
    }
    Ok(Requeue::await_change())
}
