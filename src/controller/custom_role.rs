//! Reconciling `IotHubCustomRole`: create or update the definition under the GUID this resource
//! derives (a rename updates it in place), refuse a role name another definition holds, and
//! refuse deletion while role assignments (in the cluster or in Azure) use the role.

use std::sync::Arc;

use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::Event as Finalizer;
use kube::{Api, ResourceExt};
use uuid::Uuid;

use super::status::{self, READY, reason};
use super::{Context, Kind, ReconcileError, done, finish, in_finalizer, key_of, owner_of, reconcile_mode};
use crate::apply::{self, Outcome};
use crate::crd::{IotHubCustomRole, IotHubCustomRoleStatus, ReconcileMode};
use crate::desire::desire_custom_role;
use crate::domain::Scope;
use crate::domain::ids::role_definition_id;
use crate::engine::{self, CustomRoleRequest};
use crate::plan::{Action, Mode, Severity};

const KIND: &str = <IotHubCustomRole as Kind>::KIND;
const DEFINITIONS: &str = "/providers/microsoft.authorization/roledefinitions/";

/// The controller's entry point for one object.
pub async fn reconcile(obj: Arc<IotHubCustomRole>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    let api: Api<IotHubCustomRole> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    in_finalizer(&api, obj, &ctx, |event| async {
        match event {
            Finalizer::Apply(o) => apply_one(&api, &o, &ctx).await,
            Finalizer::Cleanup(o) => cleanup(&api, &o, &ctx).await,
        }
    })
    .await
}

/// `{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}` -> (scope, guid).
pub fn parse_definition_id(id: &str) -> Option<(Scope, Uuid)> {
    let lower = id.to_ascii_lowercase();
    let at = lower.rfind(DEFINITIONS)?;
    let guid = Uuid::parse_str(&id[at + DEFINITIONS.len()..]).ok()?;
    let scope = if at == 0 { Scope::Root } else { Scope::parse(&id[..at]).ok()? };
    Some((scope, guid))
}

fn owned_of(st: &IotHubCustomRoleStatus) -> Vec<(Scope, Uuid)> {
    st.role_definition_id.iter().chain(&st.owned_role_definition_ids).filter_map(|s| parse_definition_id(s)).collect()
}

async fn apply_one(
    api: &Api<IotHubCustomRole>,
    obj: &IotHubCustomRole,
    ctx: &Context,
) -> Result<Requeue, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let (mode, mode_problem) = reconcile_mode(obj);
    if mode == ReconcileMode::Skip {
        return Ok(done(ctx, obj));
    }
    let mut st = obj.status.clone().unwrap_or_default();
    let desired = match desire_custom_role(&obj.spec, &owner_of(ctx, obj)) {
        Ok(d) => d,
        Err(errors) => {
            let msg = errors.to_string();
            if !status::already_told(&st.conditions, reason::INVALID_SPEC, Some(&msg)) {
                ctx.event(obj, EventType::Warning, reason::INVALID_SPEC, msg.clone()).await;
            }
            finish(api, obj, ctx, st, false, reason::INVALID_SPEC, &msg).await?;
            return Ok(done(ctx, obj));
        }
    };
    st.effective_data_actions = desired.definition().effective_data_actions().into_iter().map(str::to_string).collect();
    let sub_scope = format!("/subscriptions/{}", desired.subscription_id);
    let ids: Vec<&str> =
        std::iter::once(sub_scope.as_str()).chain(desired.assignable_scopes.iter().map(String::as_str)).collect();
    if let Err(e) = ctx.check_scopes(&ns, ids)? {
        if !status::already_told(&st.conditions, reason::SCOPE_NOT_ALLOWED, None) {
            ctx.event(obj, EventType::Warning, reason::SCOPE_NOT_ALLOWED, e.to_string()).await;
        }
        finish(api, obj, ctx, st, false, reason::SCOPE_NOT_ALLOWED, &e.to_string()).await?;
        return Ok(done(ctx, obj));
    }
    let owned = owned_of(&st);
    let req = CustomRoleRequest {
        mode: Mode::Apply,
        desired: Some(desired.clone()),
        owner: owner_of(ctx, obj),
        owned: owned.clone(),
        deletion_policy: obj.spec.deletion_policy,
    };
    let plan = match engine::plan_custom_role(&ctx.observer.get(), &req).await {
        Ok(p) => p,
        Err(e) => {
            let e = ReconcileError::from(e);
            finish(api, obj, ctx, st, false, e.reason(), &e.to_string()).await?;
            return Err(e);
        }
    };
    if mode != ReconcileMode::Manage {
        st.pending_actions = status::pending(&plan.actions);
        let (ready, why, msg) = status::observe_verdict(&plan, mode_problem);
        finish(api, obj, ctx, st, ready, &why, &msg).await?;
        return Ok(done(ctx, obj));
    }
    st.pending_actions.clear();
    let blocked = plan.blockers().next().is_some();
    for f in plan.blockers() {
        if !status::already_told(&st.conditions, f.reason.as_str(), None) {
            ctx.event(
                obj,
                EventType::Warning,
                f.reason.as_str(),
                format!("{} ({})", f.message, f.resource_ids.join(", ")),
            )
            .await;
        }
    }
    let drift = status::is_true(&st.conditions, READY)
        && st.observed_generation == obj.metadata.generation
        && plan.actions.iter().any(|a| matches!(a, Action::PutRoleDefinition { .. }));
    let applied = apply::apply(ctx.azure_for(&ns), &plan, ctx.settings.write_concurrency).await;
    ctx.report_writes(obj, KIND, &applied).await;
    if drift {
        ctx.drift_repaired(obj, "the role definition", &applied).await;
    }

    // A failed update leaves the definition in place: still ours if it was before.
    let owned_before = owned.iter().any(|(_, g)| *g == desired.guid);
    let mut owned_now = owned;
    let mut desired_present = !blocked;
    for a in &applied {
        match (&a.action, &a.outcome) {
            (Action::PutRoleDefinition { .. }, o) if !o.is_ok() => desired_present = false,
            (Action::DeleteRoleDefinition { guid, .. }, o) if o.is_ok() => owned_now.retain(|(_, g)| g != guid),
            _ => {}
        }
    }
    let desired_id = role_definition_id(Some(&desired.scope), desired.guid);
    owned_now.retain(|(_, g)| *g != desired.guid);
    st.role_definition_id = (desired_present || owned_before).then_some(desired_id);
    st.owned_role_definition_ids = owned_now.iter().map(|(s, g)| role_definition_id(Some(s), *g)).collect();

    if let Some(e) = applied.into_iter().find_map(|a| match a.outcome {
        Outcome::Failed(e) => Some(e),
        _ => None,
    }) {
        let e = ReconcileError::from(e);
        finish(api, obj, ctx, st, false, e.reason(), &e.to_string()).await?;
        return Err(e);
    }
    let (ready, why, msg) = if blocked {
        status::plan_verdict(&plan)
    } else {
        (true, reason::RECONCILED.to_string(), format!("role '{}' is defined as the spec says", desired.role_name))
    };
    finish(api, obj, ctx, st, ready, &why, &msg).await?;
    Ok(done(ctx, obj))
}

async fn cleanup(
    api: &Api<IotHubCustomRole>,
    obj: &IotHubCustomRole,
    ctx: &Context,
) -> Result<Requeue, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let (mode, _) = reconcile_mode(obj);
    if mode != ReconcileMode::Manage {
        ctx.metrics.forget(KIND, &key_of(obj));
        ctx.event(obj, EventType::Normal, "LeftInAzure", "not managed (reconcile annotation): Azure left as is".into())
            .await;
        return Ok(Requeue::await_change());
    }
    let mut st = obj.status.clone().unwrap_or_default();
    // Assignments in the cluster that still reference this role.
    let users: Vec<String> = ctx
        .assignments
        .state()
        .into_iter()
        .filter(|a| {
            a.namespace().as_deref() == Some(ns.as_str())
                && a.spec.role.custom_role_ref.as_ref().is_some_and(|r| r.name == name)
        })
        .map(|a| format!("IotHubRoleAssignment/{ns}/{}", a.name_any()))
        .collect();
    if !users.is_empty() {
        let msg = format!(
            "deletion refused: still referenced by {}; delete those first (the role is removed afterwards)",
            users.join(", ")
        );
        finish(api, obj, ctx, st, false, reason::IN_USE, &msg).await?;
        ctx.event(obj, EventType::Warning, "DeletionRefused", msg.clone()).await;
        return Err(ReconcileError::Refused(msg));
    }
    let owner = owner_of(ctx, obj);
    let desired = desire_custom_role(&obj.spec, &owner).ok();
    let owned = owned_of(&st);
    let req =
        CustomRoleRequest { mode: Mode::Cleanup, desired, owner, owned, deletion_policy: obj.spec.deletion_policy };
    let plan = engine::plan_custom_role(&ctx.observer.get(), &req).await?;
    if let Some(b) = plan.findings.iter().find(|f| f.severity == Severity::Blocker) {
        st.assignment_ids = b.resource_ids.clone();
        let msg = format!("deletion refused: {}", b.message);
        finish(api, obj, ctx, st, false, b.reason.as_str(), &msg).await?;
        ctx.event(obj, EventType::Warning, "DeletionRefused", format!("{msg} ({})", b.resource_ids.join(", "))).await;
        return Err(ReconcileError::Refused(msg));
    }
    let applied = apply::apply(ctx.azure_for(&ns), &plan, ctx.settings.write_concurrency).await;
    ctx.report_writes(obj, KIND, &applied).await;
    if let Some(e) = applied.into_iter().find_map(|a| match a.outcome {
        Outcome::Failed(e) => Some(e),
        _ => None,
    }) {
        return Err(e.into());
    }
    ctx.metrics.forget(KIND, &key_of(obj));
    Ok(Requeue::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_definition_ids_keep_the_scope_they_were_written_at() {
        let g = Uuid::parse_str("2d0b4c39-8f0e-5b51-9a0c-3f7f5d1c2b4a").unwrap();
        let rg = format!(
            "/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg/providers/Microsoft.Authorization/roleDefinitions/{g}"
        );
        let (scope, guid) = parse_definition_id(&rg).unwrap();
        assert_eq!(guid, g);
        assert_eq!(scope.to_string(), "/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg");
        assert_eq!(
            parse_definition_id(&format!("/providers/microsoft.authorization/roleDefinitions/{g}")),
            Some((Scope::Root, g))
        );
        assert_eq!(
            parse_definition_id("/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/not-a-guid"),
            None
        );
    }
}
