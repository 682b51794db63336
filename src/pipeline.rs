//! One kind from spec to plan, the same for every front end: the controller's steps
//! (`controller/driver.rs`) and the CLI (`cli/reconcile.rs`: `plan`, `apply`, `demo`) hand over
//! what they know ([`Sources`]: the cluster's caches, or the manifests) and get the desired
//! state (naming the ARM ids the guardrail checks) and the plan with what was observed. A new
//! kind implements [`Pipeline`] once; each front end then only reports.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::azure::AzureError;
use crate::crd::{IotHubCustomRole, IotHubCustomRoleSpec, IotHubRoleAssignment, IotHubSharedAccess};
use crate::desire::{
    DesireError, DesiredAssignment, DesiredCustomRole, DesiredSharedAccess, Guarded, PrincipalLookup,
    desire_custom_role, desire_role_assignment, desire_shared_access, resolve_principal,
};
use crate::domain::naming::Owner;
use crate::domain::{RoleAssignmentId, RoleDefinitionId};
pub use crate::engine::HubView;
use crate::engine::{self, AssignmentRequest, CustomRoleRequest};
use crate::observe::Observer;
use crate::plan::ownership::Others;
use crate::plan::{Mode, Plan};

/// What a front end knows besides the resource itself.
pub struct Sources<'a> {
    /// This resource, under the operator instance.
    pub owner: Owner,
    /// The custom roles of the resource's namespace, by name (a `customRoleRef`).
    pub custom_roles: &'a (dyn Fn(&str) -> Option<IotHubCustomRoleSpec> + Send + Sync),
    /// What the other resources want (never revoked under them).
    pub others: Arc<dyn Others + Send + Sync>,
    /// Roles the cluster admin allows beyond IoT Hub data access (`--allowed-role`).
    pub allowed_roles: Vec<Uuid>,
    /// The `IotHubCustomRole` (of any namespace) whose derived definition GUID this is, if any.
    pub custom_role_owner: &'a (dyn Fn(Uuid) -> Option<Owner> + Send + Sync),
    /// What a `principal.idFrom` ConfigMap key holds (`desire::no_principal_refs`: none known).
    pub principals: PrincipalLookup<'a>,
}

/// No custom role of any namespace (a kind that grants nothing, or a test's world).
pub fn no_custom_role_owner(_: Uuid) -> Option<Owner> {
    None
}

/// One kind's way from spec to plan.
#[async_trait]
pub trait Pipeline: Send + Sync {
    /// The desired state the spec resolves to.
    type Desired: Guarded + Clone + Send + Sync;
    /// What status hints this resource owns (the controller reads it from status, proven by the
    /// planner; the CLI has no status and passes the default).
    type Owned: Default + Clone + Send + Sync;
    /// What the engine observed along with the plan.
    type View: Send + Sync;

    /// desire: the spec as desired state, or why not (bad fields name themselves).
    fn desire(&self, src: &Sources<'_>) -> Result<Self::Desired, DesireError>;

    /// observe + plan, through the engine (apply mode).
    async fn plan(
        &self,
        obs: &Observer,
        src: &Sources<'_>,
        desired: &Self::Desired,
        owned: Self::Owned,
    ) -> Result<(Plan, Self::View), AzureError>;

    /// observe + plan of a resource being deleted, through the engine (cleanup mode): what it
    /// owns is deleted, handed over or left, from the same [`Sources`] as [`plan`](Pipeline::plan).
    /// `desired` is `None` when the spec no longer resolves (what is owned is still found).
    async fn plan_cleanup(
        &self,
        obs: &Observer,
        src: &Sources<'_>,
        desired: Option<&Self::Desired>,
        owned: Self::Owned,
    ) -> Result<Plan, AzureError>;
}

/// The engine's request for a role assignment, the same in both modes.
fn assignment_request(
    ra: &IotHubRoleAssignment,
    src: &Sources<'_>,
    mode: Mode,
    desired: Option<&DesiredAssignment>,
    owned: Vec<RoleAssignmentId>,
) -> AssignmentRequest {
    AssignmentRequest {
        mode,
        desired: desired.cloned(),
        owner: src.owner.clone(),
        others: src.others.clone(),
        owned,
        deletion_policy: ra.spec.deletion_policy,
        allowed_roles: src.allowed_roles.clone(),
        // Only a `definitionId` can name another namespace's custom role (a `customRoleRef` is
        // this namespace's, a built-in nobody's): the cache is searched for that one alone.
        role_made_for: desired
            .filter(|d| d.role.definition.is_none())
            .and_then(|d| (src.custom_role_owner)(d.role.guid)),
    }
}

/// The engine's request for a custom role, the same in both modes.
fn custom_role_request(
    cr: &IotHubCustomRole,
    src: &Sources<'_>,
    mode: Mode,
    desired: Option<&DesiredCustomRole>,
    owned: Vec<RoleDefinitionId>,
) -> CustomRoleRequest {
    CustomRoleRequest {
        mode,
        desired: desired.cloned(),
        owner: src.owner.clone(),
        owned,
        deletion_policy: cr.spec.deletion_policy,
    }
}

#[async_trait]
impl Pipeline for IotHubRoleAssignment {
    type Desired = DesiredAssignment;
    type Owned = Vec<RoleAssignmentId>;
    /// The hinted assignments Azure's data proved this resource's.
    type View = Vec<RoleAssignmentId>;

    fn desire(&self, src: &Sources<'_>) -> Result<DesiredAssignment, DesireError> {
        let spec = resolve_principal(&self.spec, &src.owner.namespace, src.principals)?;
        desire_role_assignment(&spec, src.custom_roles, &src.owner)
    }

    async fn plan(
        &self,
        obs: &Observer,
        src: &Sources<'_>,
        desired: &DesiredAssignment,
        owned: Vec<RoleAssignmentId>,
    ) -> Result<(Plan, Vec<RoleAssignmentId>), AzureError> {
        let req = assignment_request(self, src, Mode::Apply, Some(desired), owned);
        let planned = engine::plan_assignment(obs, &req).await?;
        Ok((planned.plan, planned.proven))
    }

    async fn plan_cleanup(
        &self,
        obs: &Observer,
        src: &Sources<'_>,
        desired: Option<&DesiredAssignment>,
        owned: Vec<RoleAssignmentId>,
    ) -> Result<Plan, AzureError> {
        let req = assignment_request(self, src, Mode::Cleanup, desired, owned);
        Ok(engine::plan_assignment(obs, &req).await?.plan)
    }
}

#[async_trait]
impl Pipeline for IotHubCustomRole {
    type Desired = DesiredCustomRole;
    type Owned = Vec<RoleDefinitionId>;
    /// The definitions status hinted at.
    type View = Vec<RoleDefinitionId>;

    fn desire(&self, src: &Sources<'_>) -> Result<DesiredCustomRole, DesireError> {
        desire_custom_role(&self.spec, &src.owner).map_err(DesireError::Invalid)
    }

    async fn plan(
        &self,
        obs: &Observer,
        src: &Sources<'_>,
        desired: &DesiredCustomRole,
        owned: Vec<RoleDefinitionId>,
    ) -> Result<(Plan, Vec<RoleDefinitionId>), AzureError> {
        let req = custom_role_request(self, src, Mode::Apply, Some(desired), owned.clone());
        Ok((engine::plan_custom_role(obs, &req).await?, owned))
    }

    async fn plan_cleanup(
        &self,
        obs: &Observer,
        src: &Sources<'_>,
        desired: Option<&DesiredCustomRole>,
        owned: Vec<RoleDefinitionId>,
    ) -> Result<Plan, AzureError> {
        engine::plan_custom_role(obs, &custom_role_request(self, src, Mode::Cleanup, desired, owned)).await
    }
}

#[async_trait]
impl Pipeline for IotHubSharedAccess {
    type Desired = DesiredSharedAccess;
    type Owned = ();
    type View = HubView;

    fn desire(&self, _src: &Sources<'_>) -> Result<DesiredSharedAccess, DesireError> {
        desire_shared_access(&self.spec).map_err(DesireError::Invalid)
    }

    async fn plan(
        &self,
        obs: &Observer,
        _src: &Sources<'_>,
        desired: &DesiredSharedAccess,
        _owned: (),
    ) -> Result<(Plan, HubView), AzureError> {
        engine::plan_shared_access(obs, desired).await
    }

    /// Deleting an `IotHubSharedAccess` writes nothing: the hub stays as it is.
    async fn plan_cleanup(
        &self,
        _obs: &Observer,
        _src: &Sources<'_>,
        _desired: Option<&DesiredSharedAccess>,
        _owned: (),
    ) -> Result<Plan, AzureError> {
        Ok(Plan::default())
    }
}
