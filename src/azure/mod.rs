//! The only code that talks to Azure. The rest of the project sees the [`Azure`] trait, with
//! domain types in and out; [`arm::ArmClient`] implements it over HTTP for Azure Resource
//! Manager (and the local emulator, which speaks the same protocol). Retries, pacing and error
//! mapping happen here, once. Layers, bottom up: `http` (the request stack) and `sdk` (the
//! authorization SDK adapter), `arm` (the client and its shared helpers), then the requests:
//! `devices` (hubs, DPS, Device Update, subscriptions) and `roles` (role assignments and
//! definitions, and the trait implementation).

pub mod args;
pub mod arm;
mod audit;
pub mod credential;
mod devices;
pub mod error;
pub mod http;
pub mod pacing;
pub mod retry;
mod roles;
mod sdk;
pub mod wire;

use crate::domain::{ObservedDeny, ObservedEligibility, ObservedPolicy};
use async_trait::async_trait;

pub use error::AzureError;

pub use crate::domain::NewRoleAssignment;
use crate::domain::{
    Access, HubId, ObservedAssignment, ObservedDeviceUpdate, ObservedDps, ObservedHub, RoleAssignmentId,
    RoleDefinition, RoleDefinitionId, Scope,
};

/// `$filter` of a role assignment list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AssignmentFilter {
    /// At, above and below the scope.
    All,
    /// At the scope and inherited from above (`atScope()`).
    AtScope,
    /// That principal at, above and below the scope (`principalId eq '…'`).
    PrincipalId(String),
    /// That user or service principal and the groups it is a member of, transitively, at, above
    /// and below the scope (`assignedTo('…')`).
    AssignedTo(String),
    /// The same, at the scope and inherited from above only (`atScope() and assignedTo('…')`).
    AtScopeAssignedTo(String),
}

/// `$filter` of a role definition list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RoleDefinitionFilter {
    /// Custom roles visible at the scope (`type eq 'CustomRole'`).
    CustomRoles,
    /// The role with that display name (`roleName eq '…'`).
    RoleName(String),
}

/// What creating a role assignment did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Created (or it already existed under this very name: PUT is idempotent).
    Created,
    /// Azure answered `RoleAssignmentExists`: the same grant exists under another name.
    AlreadyExists { existing: RoleAssignmentId },
}

/// Hub access properties to change; `None` leaves one as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubAccessChange {
    pub shared_access: Option<Access>,
    pub device_sas: Option<Access>,
    pub module_sas: Option<Access>,
}

impl HubAccessChange {
    /// The properties `hub` holds differently from this change: (name, asked, held). Empty: the
    /// hub holds everything asked.
    pub fn differences(&self, hub: &ObservedHub) -> Vec<(&'static str, Access, Access)> {
        [
            ("shared access policies", self.shared_access, hub.shared_access),
            ("device SAS", self.device_sas, hub.device_sas),
            ("module SAS", self.module_sas, hub.module_sas),
        ]
        .into_iter()
        .filter_map(|(name, want, have)| want.filter(|w| *w != have).map(|w| (name, w, have)))
        .collect()
    }
}

/// What a hub write came to: the hub as Azure holds it afterwards, whether a PUT of this call
/// was accepted, and the hub that PUT replaced (`written: false`: nothing of this call is known
/// to have landed, `before` is the hub as last read).
#[derive(Clone, Debug)]
pub struct HubWrite {
    pub hub: ObservedHub,
    pub written: bool,
    pub before: ObservedHub,
}

/// Everything the operator asks of Azure. Implementations retry and pace internally; an error
/// returned here is final for this attempt.
#[async_trait]
pub trait Azure: Send + Sync {
    /// Role assignments at `scope` with ARM's inheritance rules for `filter`, all pages.
    async fn list_role_assignments(
        &self,
        scope: &Scope,
        filter: &AssignmentFilter,
    ) -> Result<Vec<ObservedAssignment>, AzureError>;

    /// Create a role assignment under its (client-chosen) name.
    async fn create_role_assignment(&self, new: &NewRoleAssignment) -> Result<CreateOutcome, AzureError>;

    /// Delete a role assignment; `Ok(false)` when it was already gone.
    async fn delete_role_assignment(&self, id: &RoleAssignmentId) -> Result<bool, AzureError>;

    /// A role definition by GUID, `None` when it does not exist.
    async fn get_role_definition(&self, id: &RoleDefinitionId) -> Result<Option<RoleDefinition>, AzureError>;

    /// Role definitions visible at `scope` (at and above), all pages.
    async fn list_role_definitions(
        &self,
        scope: &Scope,
        filter: &RoleDefinitionFilter,
    ) -> Result<Vec<RoleDefinition>, AzureError>;

    /// Create or update a custom role definition at `scope`.
    async fn put_role_definition(&self, scope: &Scope, definition: &RoleDefinition) -> Result<(), AzureError>;

    /// Delete a custom role definition; `Ok(false)` when it was already gone.
    async fn delete_role_definition(&self, id: &RoleDefinitionId) -> Result<bool, AzureError>;

    /// A hub's access properties, `None` when the hub does not exist.
    async fn get_hub(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError>;

    /// Change a hub's access properties (read, modify, write back with `If-Match`, wait for the
    /// long-running operation), returning the hub as Azure holds it afterwards (a policy may
    /// have changed what was written) and whether a PUT was sent at all.
    async fn set_hub_access(&self, hub: &HubId, change: &HubAccessChange) -> Result<HubWrite, AzureError>;

    /// The subscriptions the identity can list (lower-case ids).
    async fn list_subscriptions(&self) -> Result<Vec<String>, AzureError>;

    /// Every DPS instance of a subscription with its hub links, all pages.
    async fn list_dps(&self, subscription_id: &str) -> Result<Vec<ObservedDps>, AzureError>;

    /// Every Device Update instance of a subscription with the hubs it names, all pages.
    async fn list_device_update_instances(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<ObservedDeviceUpdate>, AzureError>;

    /// Deny assignments at, above and below `scope` (the exposure audit).
    async fn list_deny_assignments(&self, scope: &Scope) -> Result<Vec<ObservedDeny>, AzureError> {
        Err(not_here("deny assignments", scope))
    }

    /// Role eligibilities (PIM) at, above and below `scope` (the exposure audit).
    async fn list_role_eligibilities(&self, scope: &Scope) -> Result<Vec<ObservedEligibility>, AzureError> {
        Err(not_here("role eligibilities", scope))
    }

    /// A hub's shared access policy names and rights, never its keys (the exposure audit, when
    /// asked: Azure answers them only with the keys).
    async fn list_hub_policies(&self, hub: &HubId) -> Result<Vec<ObservedPolicy>, AzureError> {
        Err(not_here("shared access policies", &hub.scope()))
    }
}

fn not_here(what: &str, scope: &Scope) -> AzureError {
    AzureError::Invalid { code: "NotSupported".into(), message: format!("this client does not read {what} ({scope})") }
}
