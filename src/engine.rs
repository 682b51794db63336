//! The engine: for one resource, decide what to observe, observe it through a shared
//! [`Observer`], and run the pure planner. Every front end (`plan`, `apply`, `demo`, the
//! controller) plans through these functions, so they all see Azure the same way.
//!
//! What each kind reads (each read is made once per observation pass, whatever the number of
//! resources needing it):
//! - role assignment: `atScope()` at the hub (which includes everything inherited from the
//!   resource group, subscription and management groups above), plus `atScope()` at a management
//!   group scope that may not be an ancestor of the hub, plus the scopes of owned assignments; a
//!   role definition GET only for custom roles the least-privilege check meets;
//! - custom role: a GET of the definition this resource derives (and of hinted ones), a `roleName eq`
//!   list only when the definition must be created, and in cleanup the assignments that use it;
//! - shared access: the hub; when Deny is wanted, what depends on its shared access (DPS and
//!   Device Update instances of every subscription the identity can list, one search shared by
//!   all hubs) and the assignments effective at the hub (lock-out and DPS identity checks), read
//!   as the interlock reads them ([`crate::observe::interlock_inputs`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::azure::AzureError;
use crate::crd::DeletionPolicy;
use crate::desire::{DesiredAssignment, DesiredCustomRole, DesiredSharedAccess};
use crate::domain::naming::Owner;
use crate::domain::{
    DependentsObservation, ObservedAssignment, ObservedHub, RoleAssignmentId, RoleDefinition, RoleDefinitionId, Scope,
};
use crate::observe::{InterlockInputs, Observer, interlock_inputs};
use crate::plan::ownership::{self, Others};
use crate::plan::{self, Mode, Plan};

/// One role assignment resource to plan.
#[derive(Clone)]
pub struct AssignmentRequest {
    pub mode: Mode,
    /// `None` when the spec is invalid (cleanup can still remove what is owned).
    pub desired: Option<DesiredAssignment>,
    /// This resource, under the operator instance: what it may delete is proven from it.
    pub owner: Owner,
    /// The other managed resources and what they want (never revoked under them).
    pub others: Arc<dyn Others + Send + Sync>,
    /// Assignments status says this resource made: only a hint of which scopes to read.
    pub owned: Vec<RoleAssignmentId>,
    pub deletion_policy: DeletionPolicy,
    /// Roles the cluster admin allows beyond IoT Hub data access (`--allowed-role`).
    pub allowed_roles: Vec<Uuid>,
    /// The `IotHubCustomRole` the desired role was made for, when it is one of this instance's.
    pub role_made_for: Option<Owner>,
}

/// A role assignment's plan, and which of the hinted assignments Azure's data proved this
/// resource's (observed, and named for it or handed over to it): what status may hint next time.
#[derive(Clone, Debug)]
pub struct AssignmentPlan {
    pub plan: Plan,
    pub proven: Vec<RoleAssignmentId>,
}

/// One custom role resource to plan.
#[derive(Clone, Debug)]
pub struct CustomRoleRequest {
    pub mode: Mode,
    pub desired: Option<DesiredCustomRole>,
    /// This resource, under the operator instance.
    pub owner: Owner,
    /// Definitions status says this resource created, with their scopes: a hint, proven first.
    pub owned: Vec<RoleDefinitionId>,
    pub deletion_policy: DeletionPolicy,
}

/// Append the assignments of `items` not in `out` yet (by id): linear, since a hub's list can
/// hold thousands.
fn push_unique(out: &mut Vec<ObservedAssignment>, items: Vec<ObservedAssignment>) {
    let mut seen: std::collections::HashSet<RoleAssignmentId> = out.iter().map(|o| o.id.clone()).collect();
    out.extend(items.into_iter().filter(|a| seen.insert(a.id.clone())));
}

/// Plan one `IotHubRoleAssignment`.
pub async fn plan_assignment(obs: &Observer, req: &AssignmentRequest) -> Result<AssignmentPlan, AzureError> {
    let mut scopes: Vec<Scope> = Vec::new();
    if let Some(d) = &req.desired {
        scopes.push(d.hub.scope());
        if d.scope.covers_hub(&d.hub) != Some(true) {
            scopes.push(d.scope.clone());
        }
    }
    for id in &req.owned {
        scopes.push(id.scope.clone());
    }
    if req.mode == Mode::Cleanup
        && let Some(d) = &req.desired
    {
        scopes.push(d.scope.clone());
    }
    let mut seen = BTreeSet::new();
    scopes.retain(|s| seen.insert(s.key()));
    let mut observed = Vec::new();
    for scope in &scopes {
        match obs.assignments_at(scope).await {
            Ok(list) => push_unique(&mut observed, list),
            // A scope that no longer exists holds no assignments.
            Err(AzureError::NotFound { .. }) if req.desired.as_ref().is_none_or(|d| d.hub.scope() != *scope) => {}
            Err(e) => return Err(e),
        }
    }
    let mut known: Vec<RoleDefinition> = Vec::new();
    if let Some(d) = &req.desired {
        if req.mode == Mode::Apply {
            // The role as Azure holds it, whatever the spec names (a custom role can be widened in
            // Azure; a `definitionId` is anything), on this pass's read (one per role, at most a
            // resync old): a grant in place whose role no longer passes is revoked. The gate reads
            // it again right before a create is sent (`gate::wire`), so that read is the fresh one;
            // only a `definitionId` not granted yet is read fresh here too, since the plan knows
            // nothing of it otherwise. A failed read fails the reconcile: never granted unchecked.
            let id = RoleDefinitionId::new(Scope::Subscription(d.hub.subscription_id.clone()), d.role.guid);
            let unknown = d.role.definition.is_none() && !observed.iter().any(|o| o.is(&d.grant()));
            let read = if unknown { obs.role_definition_fresh(&id).await? } else { obs.role_definition(&id).await? };
            known.extend(read);
        }
        let principal_roles: BTreeSet<Uuid> = observed
            .iter()
            .filter(|a| a.principal_id.eq_ignore_ascii_case(&d.principal_id) && a.role_definition != d.role.guid)
            .map(|a| a.role_definition)
            .collect();
        known.extend(obs.custom_roles(Some(&d.hub.subscription_id), principal_roles, false).await);
    }
    let plan = plan::role_assignment::plan(&plan::role_assignment::AssignmentInput {
        mode: req.mode,
        desired: req.desired.as_ref(),
        me: &req.owner,
        others: req.others.as_ref(),
        deletion_policy: req.deletion_policy,
        observed: &observed,
        roles: &known,
        allowed_roles: &req.allowed_roles,
        role_made_for: req.role_made_for.clone(),
    });
    let proven = req
        .owned
        .iter()
        .filter(|id| {
            observed.iter().any(|o| {
                o.id == **id
                    && (ownership::claim(&req.owner, o) == ownership::Claim::Mine
                        || ownership::may_take_over(&req.owner, o, req.others.as_ref()))
            })
        })
        .cloned()
        .collect();
    Ok(AssignmentPlan { plan, proven })
}

/// Plan one `IotHubCustomRole`.
pub async fn plan_custom_role(obs: &Observer, req: &CustomRoleRequest) -> Result<Plan, AzureError> {
    let mut observed: Vec<RoleDefinition> = Vec::new();
    let mut wanted: Vec<RoleDefinitionId> = req.owned.clone();
    if let Some(d) = &req.desired {
        wanted.push(d.id());
    }
    let mut seen = BTreeSet::new();
    wanted.retain(|o| seen.insert(o.guid));
    for id in &wanted {
        if let Some(def) = obs.role_definition(id).await? {
            observed.push(def);
        }
    }
    if req.mode == Mode::Apply
        && let Some(d) = &req.desired
        && !observed.iter().any(|r| r.guid == d.guid)
    {
        // About to create: is the name taken by another definition in the tenant?
        for def in obs.role_definitions_named(&d.subscription_id, &d.role_name).await? {
            if !observed.iter().any(|r| r.guid == def.guid) {
                observed.push(def);
            }
        }
    }
    let mut assignments = Vec::new();
    let desired_guid = req.desired.as_ref().map(|d| d.guid);
    if plan::custom_role::may_delete(req.mode, &req.owned, desired_guid, req.deletion_policy) {
        let mut subs: BTreeSet<String> = BTreeSet::new();
        for def in &observed {
            for s in &def.assignable_scopes {
                if let Ok(scope) = Scope::parse(s)
                    && let Some(sub) = scope.subscription_id()
                {
                    subs.insert(sub.to_ascii_lowercase());
                }
            }
        }
        if let Some(d) = &req.desired {
            subs.insert(d.subscription_id.to_ascii_lowercase());
        }
        for sub in subs {
            push_unique(&mut assignments, obs.assignments_all(&Scope::Subscription(sub)).await?);
        }
    }
    Ok(plan::custom_role::plan(&plan::custom_role::CustomRoleInput {
        mode: req.mode,
        desired: req.desired.as_ref(),
        me: &req.owner,
        owned: &req.owned,
        deletion_policy: req.deletion_policy,
        observed: &observed,
        assignments: &assignments,
    }))
}

/// What one `IotHubSharedAccess`'s plan was made from (returned with it, so nothing is read
/// twice).
#[derive(Clone, Debug)]
pub struct HubView {
    /// The hub as read; `None` when it does not exist.
    pub hub: Option<ObservedHub>,
    /// What depends on the hub's shared access (searched only when Deny is wanted).
    pub dependents: DependentsObservation,
}

/// Plan one `IotHubSharedAccess`.
pub async fn plan_shared_access(obs: &Observer, desired: &DesiredSharedAccess) -> Result<(Plan, HubView), AzureError> {
    let inputs = if desired.shared_access == crate::domain::Access::Deny {
        interlock_inputs(obs, &desired.hub, false).await?
    } else {
        // Allow is never blocked, so nothing else needs reading.
        InterlockInputs {
            hub: obs.hub(&desired.hub).await?,
            dependents: DependentsObservation::none(),
            assignments: vec![],
            roles: vec![],
        }
    };
    let plan = plan::shared_access::plan(&plan::shared_access::SharedAccessInput {
        desired,
        hub: inputs.hub.as_ref(),
        dependents: &inputs.dependents,
        hub_assignments: &inputs.assignments,
        roles: &inputs.roles,
    });
    Ok((plan, HubView { hub: inputs.hub, dependents: inputs.dependents }))
}
