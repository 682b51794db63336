//! `IotHubRoleAssignment`'s steps for the driver: desire resolves the role (waiting for a
//! referenced `IotHubCustomRole` to be Ready), guard names the hub and the scope, plan runs the
//! engine, report records what the resource holds after the writes (`plan::ownership`, pure) so
//! cleanup deletes exactly that.

use std::sync::Arc;

use async_trait::async_trait;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::driver::{self, Steps, Stop, Verdict, cleanup_apply, cleanup_managed};
use super::sources;
use super::status::{self, LEAST_PRIVILEGE, READY};
use super::{Context, Kind as _, ReconcileError, custom_role_owner, key_of, wants};
use crate::apply::{self, Applied};
use crate::azure::AzureError;
use crate::crd::{IotHubCustomRole, IotHubCustomRoleSpec, IotHubRoleAssignment, IotHubRoleAssignmentStatus};
use crate::desire::{DesireError, DesiredAssignment, RefValue};
use crate::domain::RoleAssignmentId;
use crate::domain::ids::ScopeLevelName;
use crate::pipeline::Pipeline;
use crate::plan::{Action, Plan, Reason, ownership};
/// The controller's entry point for one object.
pub async fn reconcile(obj: Arc<IotHubRoleAssignment>, ctx: Arc<Context>) -> Result<Requeue, ReconcileError> {
    driver::reconcile(obj, ctx).await
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

/// The assignments status hints this resource made, kept only when each names an assignment of
/// the shape this kind makes (at a hub, resource group, subscription or management group) inside
/// the namespace's allowed scopes (`Context::owned_hints`).
fn parse_owned(
    ctx: &Context,
    ns: &str,
    status: &IotHubRoleAssignmentStatus,
) -> Result<Vec<RoleAssignmentId>, ReconcileError> {
    let shape = |id: &RoleAssignmentId| {
        matches!(
            id.scope.level(),
            ScopeLevelName::Hub
                | ScopeLevelName::ResourceGroup
                | ScopeLevelName::Subscription
                | ScopeLevelName::ManagementGroup
        )
    };
    ctx.owned_hints(ns, &status.owned_assignment_ids, |s| RoleAssignmentId::parse(s).ok(), |id| &id.scope, shape)
}

/// This instance's custom role owner of a definition GUID, from the controller's cache.
fn owner_of_role(ctx: &Context) -> impl Fn(uuid::Uuid) -> Option<crate::domain::naming::Owner> + Send + Sync + '_ {
    move |guid| custom_role_owner(&ctx.custom_roles, &ctx.settings.instance_id, guid)
}

/// What `principal.idFrom` reads now (fresh from the API server; remembered for the other
/// resources' wants). `Unknown` without a reference (nothing to read).
async fn read_principal(ctx: &Context, obj: &IotHubRoleAssignment) -> RefValue {
    let Some(from) = &obj.spec.principal.id_from else { return RefValue::Unknown };
    let r = &from.config_map_key_ref;
    ctx.principals.read(&ctx.client, &obj.namespace().unwrap_or_default(), &r.name, &r.key).await
}

/// The referenced keys as last read.
fn cached_principals(ctx: &Context) -> impl Fn(&str, &str, &str) -> RefValue + Send + Sync + '_ {
    move |ns, name, key| ctx.principals.lookup(ns, name, key)
}

fn fill_resolved(st: &mut IotHubRoleAssignmentStatus, d: &DesiredAssignment) {
    st.role_definition_id = Some(d.role_definition_id().to_string());
    st.role_name = Some(d.role.display_name());
    st.scope = Some(d.scope.to_string());
    st.effective_data_actions = d
        .role
        .definition
        .as_ref()
        .map(|def| def.effective_data_actions().into_iter().map(str::to_string).collect())
        .unwrap_or_default();
}

#[async_trait]
impl Steps for IotHubRoleAssignment {
    type Desired = DesiredAssignment;
    /// The assignments status hinted at (proven by the planner, never trusted).
    type View = Vec<RoleAssignmentId>;
    const SUBJECT: &'static str = "the role assignment";

    async fn desire(&self, ctx: &Context, st: &mut IotHubRoleAssignmentStatus) -> Result<DesiredAssignment, Stop> {
        let ns = self.namespace().unwrap_or_default();
        let lookup = custom_role_lookup(ctx, &ns);
        let roles = owner_of_role(ctx);
        let principal = read_principal(ctx, self).await;
        let principals = move |_: &str, _: &str, _: &str| principal.clone();
        let desired = match Pipeline::desire(self, &sources(ctx, self, &lookup, &roles, &principals)) {
            Ok(d) => d,
            Err(e @ (DesireError::PrincipalRefNotFound(_) | DesireError::PrincipalRefUnknown(_))) => {
                // Waiting for another tool to write it: the ConfigMap watch brings the resource
                // back as soon as it does; a failed read is tried again shortly.
                let unknown = matches!(e, DesireError::PrincipalRefUnknown(_));
                return Err(Stop {
                    reason: Reason::PrincipalRefNotFound,
                    message: e.to_string(),
                    event: !unknown,
                    retry: unknown.then_some(std::time::Duration::from_secs(10)),
                });
            }
            Err(DesireError::Invalid(errors)) => {
                return Err(Stop {
                    reason: Reason::InvalidSpec,
                    message: errors.to_string(),
                    event: true,
                    retry: None,
                });
            }
            Err(e) => {
                return Err(Stop {
                    reason: Reason::WaitingForCustomRole,
                    message: e.to_string(),
                    event: false,
                    retry: None,
                });
            }
        };
        fill_resolved(st, &desired);
        if let Some(r) = &self.spec.role.custom_role_ref
            && !custom_role_ready(ctx, &ns, &r.name)
        {
            let message = format!("waiting for IotHubCustomRole {ns}/{} to be Ready", r.name);
            return Err(Stop { reason: Reason::WaitingForCustomRole, message, event: false, retry: None });
        }
        Ok(desired)
    }

    async fn plan(
        &self,
        ctx: &Context,
        desired: &DesiredAssignment,
        st: &IotHubRoleAssignmentStatus,
    ) -> Result<(Plan, Vec<RoleAssignmentId>), AzureError> {
        let ns = self.namespace().unwrap_or_default();
        // Before the caches have synced, every grant counts as wanted by someone (nothing is
        // revoked: `ClusterWants::or_unknown`) and whose custom role a definition is comes from
        // Azure's own copy (its owner tag), so granting need not wait for them.
        let owned = parse_owned(ctx, &ns, st)
            .map_err(|e| AzureError::Withheld { reason: Reason::ScopesUnknown, message: e.to_string() })?;
        let lookup = custom_role_lookup(ctx, &ns);
        let roles = owner_of_role(ctx);
        let principals = cached_principals(ctx);
        let src = sources(ctx, self, &lookup, &roles, &principals);
        Pipeline::plan(self, &ctx.observer_for(self), &src, desired, owned).await
    }

    fn observed(
        &self,
        st: &mut IotHubRoleAssignmentStatus,
        _: &DesiredAssignment,
        plan: &Plan,
        _: &Vec<RoleAssignmentId>,
    ) {
        let (lp_ok, lp_reason, lp_msg) = status::least_privilege(plan);
        status::set_condition(
            &mut st.conditions,
            LEAST_PRIVILEGE,
            lp_ok,
            lp_reason.as_str(),
            &lp_msg,
            self.metadata.generation,
        );
        if let Some(adopted) = ownership::named_by(plan, Reason::AdoptedExisting) {
            st.assignment_id = Some(adopted.to_string());
        }
    }

    fn drifted(plan: &Plan) -> bool {
        plan.actions.iter().any(|a| matches!(a, Action::CreateRoleAssignment { .. }))
    }

    async fn applied(
        &self,
        ctx: &Context,
        st: &mut IotHubRoleAssignmentStatus,
        desired: &DesiredAssignment,
        plan: &Plan,
        owned: &Vec<RoleAssignmentId>,
        applied: &[Applied],
    ) -> Verdict {
        // A revoked grant is counted under the reason its role was refused for.
        let revoked = plan.findings.iter().any(|f| f.reason == Reason::GrantRevoked);
        let why = plan.blockers().map(|f| f.reason).find(|r| *r != Reason::GrantRevoked);
        for a in applied.iter().filter(|a| revoked && a.outcome.is_ok()) {
            if let (Action::DeleteRoleAssignment { .. }, Some(why)) = (&a.action, why) {
                ctx.metrics.grant_revoked(why);
            }
        }
        let held = ownership::after_apply(plan, desired.id(), owned, &apply::wrote(applied));
        // The grant the spec asks for first: past the schema's bound, the oldest leftovers go.
        let mut owned_now = held.owned.clone();
        owned_now.sort_by_key(|id| held.assignment.as_ref() != Some(id));
        owned_now.truncate(crate::crd::common::MAX_OWNED_HINTS);
        st.owned_assignment_ids = owned_now.iter().map(ToString::to_string).collect();
        st.adopted_assignment_id = held.adopted.as_ref().map(ToString::to_string);
        st.assignment_id = held.assignment.map(|a| a.to_string());
        Verdict::of_plan(plan, format!("{} holds the role", desired.principal_id))
    }

    async fn cleanup(&self, _api: &Api<Self>, ctx: &Context) -> Result<Requeue, ReconcileError> {
        cleanup(self, ctx).await
    }
}

async fn cleanup(obj: &IotHubRoleAssignment, ctx: &Context) -> Result<Requeue, ReconcileError> {
    let ns = obj.namespace().unwrap_or_default();
    if !cleanup_managed(obj, ctx).await {
        return Ok(Requeue::await_change());
    }
    let st = obj.status.clone().unwrap_or_default();
    let lookup = custom_role_lookup(ctx, &ns);
    let roles = owner_of_role(ctx);
    // The principal as it reads now; without it, status hints say what to remove.
    let principal = read_principal(ctx, obj).await;
    let principals = move |_: &str, _: &str, _: &str| principal.clone();
    let desired = Pipeline::desire(obj, &sources(ctx, obj, &lookup, &roles, &principals)).ok();
    if let Some(d) = &desired
        && let Err(e) = ctx.check_scopes(&ns, std::slice::from_ref(&d.scope))?
    {
        ctx.event(obj, EventType::Warning, Reason::ScopeNotAllowed, format!("left in Azure: {e}")).await;
        ctx.metrics.forget(IotHubRoleAssignment::KIND, &key_of(obj));
        return Ok(Requeue::await_change());
    }
    // Status only hints where else to look; hints outside the namespace's scopes are not read.
    let owned = parse_owned(ctx, &ns, &st)?;
    // Who else wants a grant is not known before the caches have synced: nothing is released.
    if !wants::synced(ctx) {
        return Err(ReconcileError::NotSynced);
    }
    // Nor while a principal reference that may ask for a grant here is being read again.
    let near: Vec<crate::domain::Scope> =
        desired.iter().map(|d| d.scope.clone()).chain(owned.iter().map(|id| id.scope.clone())).collect();
    if wants::unresolved_near(ctx, &near) {
        return Err(ReconcileError::NotSynced);
    }
    let src = sources(ctx, obj, &lookup, &roles, &principals);
    let subject = desired.as_ref().map(|d| d.id().to_string());
    let plan = driver::cleanup_plan(obj, ctx, &src, desired.as_ref(), owned, subject).await?;
    for f in &plan.findings {
        ctx.event(obj, EventType::Normal, f.reason, format!("{}: {}", f.message, f.resource_ids.join(", "))).await;
    }
    cleanup_apply(obj, ctx, &plan).await
}
