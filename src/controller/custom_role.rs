//! `IotHubCustomRole`'s steps for the driver: create or update the definition under the GUID this
//! resource derives (a rename updates it in place), refuse a role name another definition holds,
//! record what it holds after the writes (`plan::custom_role::after_apply`, pure); cleanup
//! refuses deletion while role assignments (in the cluster or in Azure) use the role.

use std::sync::Arc;

use async_trait::async_trait;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::driver::{self, Steps, Stop, Verdict, cleanup_apply, cleanup_managed, finish};
use super::plain_sources;
use super::{Context, ReconcileError, owner_of};
use crate::apply::Applied;
use crate::azure::AzureError;
use crate::crd::{IotHubCustomRole, IotHubCustomRoleStatus};
use crate::desire::DesiredCustomRole;
use crate::domain::RoleDefinitionId;
use crate::pipeline::Pipeline;
use crate::plan::{Action, Plan, Reason, Severity, custom_role};

/// The controller's entry point for one object.
pub async fn reconcile(obj: Arc<IotHubCustomRole>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    driver::reconcile(obj, ctx).await
}

/// The definitions status hints this resource made, kept only when each carries the GUID this
/// resource derives (the only definitions it can own) inside the namespace's allowed scopes
/// (`Context::owned_hints`).
fn owned_of(
    ctx: &Context,
    obj: &IotHubCustomRole,
    st: &IotHubCustomRoleStatus,
) -> Result<Vec<RoleDefinitionId>, ReconcileError> {
    let mine = owner_of(ctx, obj).definition_name();
    let hints = st.role_definition_id.iter().chain(&st.owned_role_definition_ids);
    ctx.owned_hints(
        &obj.namespace().unwrap_or_default(),
        hints,
        |s| RoleDefinitionId::parse(s).ok(),
        |id| &id.scope,
        |id| id.guid == mine,
    )
}

#[async_trait]
impl Steps for IotHubCustomRole {
    type Desired = DesiredCustomRole;
    /// The definitions status hinted at (proven by the planner, never trusted).
    type View = Vec<RoleDefinitionId>;
    const SUBJECT: &'static str = "the role definition";

    async fn desire(&self, ctx: &Context, st: &mut IotHubCustomRoleStatus) -> Result<DesiredCustomRole, Stop> {
        let d = Pipeline::desire(self, &plain_sources(ctx, self)).map_err(|e| Stop {
            reason: Reason::InvalidSpec,
            message: e.detail(),
            event: true,
            retry: None,
        })?;
        st.effective_data_actions = d.definition().effective_data_actions().into_iter().map(str::to_string).collect();
        Ok(d)
    }

    async fn plan(
        &self,
        ctx: &Context,
        desired: &DesiredCustomRole,
        st: &IotHubCustomRoleStatus,
    ) -> Result<(Plan, Vec<RoleDefinitionId>), AzureError> {
        let src = plain_sources(ctx, self);
        let owned = owned_of(ctx, self, st)
            .map_err(|e| AzureError::Withheld { reason: Reason::ScopesUnknown, message: e.to_string() })?;
        Pipeline::plan(self, &ctx.observer_for(self), &src, desired, owned).await
    }

    fn drifted(plan: &Plan) -> bool {
        plan.actions.iter().any(|a| matches!(a, Action::PutRoleDefinition { .. }))
    }

    async fn applied(
        &self,
        _ctx: &Context,
        st: &mut IotHubCustomRoleStatus,
        desired: &DesiredCustomRole,
        plan: &Plan,
        owned: &Vec<RoleDefinitionId>,
        applied: &[Applied],
    ) -> Verdict {
        let (definition, leftovers) =
            custom_role::after_apply(&desired.id(), owned, plan, &crate::apply::wrote(applied));
        st.role_definition_id = definition.map(|d| d.to_string());
        st.owned_role_definition_ids =
            leftovers.iter().take(crate::crd::common::MAX_OWNED_HINTS).map(ToString::to_string).collect();
        Verdict::of_plan(plan, format!("role '{}' is defined as the spec says", desired.role_name))
    }

    async fn cleanup(&self, api: &Api<Self>, ctx: &Context) -> Result<Requeue, ReconcileError> {
        cleanup(api, self, ctx).await
    }
}

async fn cleanup(
    api: &Api<IotHubCustomRole>,
    obj: &IotHubCustomRole,
    ctx: &Context,
) -> Result<Requeue, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    if !cleanup_managed(obj, ctx).await {
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
        finish(api, obj, ctx, st, false, Reason::InUse, &msg).await?;
        ctx.event(obj, EventType::Warning, Reason::DeletionRefused, msg.clone()).await;
        return Err(ReconcileError::Refused(msg));
    }
    let src = plain_sources(ctx, obj);
    let desired = Pipeline::desire(obj, &src).ok();
    let owned = owned_of(ctx, obj, &st)?;
    let subject = desired.as_ref().map(|d| d.id().to_string());
    let plan = driver::cleanup_plan(obj, ctx, &src, desired.as_ref(), owned, subject).await?;
    if let Some(b) = plan.findings.iter().find(|f| f.severity == Severity::Blocker) {
        st.assignment_ids = b.resource_ids.clone();
        let msg = format!("deletion refused: {}", b.message);
        finish(api, obj, ctx, st, false, b.reason, &msg).await?;
        ctx.event(obj, EventType::Warning, Reason::DeletionRefused, format!("{msg} ({})", b.resource_ids.join(", ")))
            .await;
        return Err(ReconcileError::Refused(msg));
    }
    cleanup_apply(obj, ctx, &plan).await
}
