//! Gates on the wire: the Azure trait with every write and delete passed through a [`WriteGate`]
//! right before it is sent, with the exact ARM ids it touches (an assignment's scope, a
//! definition's scope and every assignable scope, a hub). Reads pass through. Two gates:
//! - [`ScopeGate`]: the guardrail of the reconciling resource's namespace, so that whatever the
//!   planner decided, nothing outside the namespace's allowed scopes is written;
//! - the leader [`Fence`](super::fence::Fence): only the replica that provably holds the Lease
//!   writes.
//!
//! Does I/O only by delegating to the wrapped client (and through the gates).

use std::sync::Arc;

use async_trait::async_trait;

use crate::azure::{
    AssignmentFilter, Azure, AzureError, CreateOutcome, HubAccessChange, HubWrite, NewRoleAssignment,
    RoleDefinitionFilter,
};
use crate::domain::{
    HubId, ObservedAssignment, ObservedDeviceUpdate, ObservedDps, ObservedHub, RoleAssignmentId, RoleDefinition,
    RoleDefinitionId, Scope,
};

/// Decides, right before a write is sent, whether it may be.
#[async_trait]
pub trait WriteGate: Send + Sync {
    async fn allow(&self, ids: &[String]) -> Result<(), AzureError>;
}

/// Whether a set of ARM ids may be written: `Err(why)` when not.
pub type ScopeCheck = Box<dyn Fn(&[String]) -> Result<(), String> + Send + Sync>;

/// The guardrail of one namespace: refuses ids outside its allowed scopes.
pub struct ScopeGate(pub ScopeCheck);

#[async_trait]
impl WriteGate for ScopeGate {
    async fn allow(&self, ids: &[String]) -> Result<(), AzureError> {
        (self.0)(ids).map_err(|why| AzureError::Forbidden {
            code: "ScopeNotAllowed".into(),
            message: format!("refused by the operator's guardrail before sending: {why}"),
        })
    }
}

/// The Azure trait with every write passed through a gate.
pub struct GatedAzure {
    inner: Arc<dyn Azure>,
    gate: Arc<dyn WriteGate>,
}

impl GatedAzure {
    pub fn new(inner: Arc<dyn Azure>, gate: Arc<dyn WriteGate>) -> GatedAzure {
        GatedAzure { inner, gate }
    }

    async fn may_write(&self, ids: Vec<String>) -> Result<(), AzureError> {
        self.gate.allow(&ids).await
    }
}

#[async_trait]
impl Azure for GatedAzure {
    async fn list_role_assignments(
        &self,
        scope: &Scope,
        filter: &AssignmentFilter,
    ) -> Result<Vec<ObservedAssignment>, AzureError> {
        self.inner.list_role_assignments(scope, filter).await
    }

    async fn create_role_assignment(&self, new: &NewRoleAssignment) -> Result<CreateOutcome, AzureError> {
        self.may_write(vec![new.id.scope.to_string()]).await?;
        self.inner.create_role_assignment(new).await
    }

    async fn delete_role_assignment(&self, id: &RoleAssignmentId) -> Result<bool, AzureError> {
        self.may_write(vec![id.scope.to_string()]).await?;
        self.inner.delete_role_assignment(id).await
    }

    async fn get_role_definition(&self, id: &RoleDefinitionId) -> Result<Option<RoleDefinition>, AzureError> {
        self.inner.get_role_definition(id).await
    }

    async fn list_role_definitions(
        &self,
        scope: &Scope,
        filter: &RoleDefinitionFilter,
    ) -> Result<Vec<RoleDefinition>, AzureError> {
        self.inner.list_role_definitions(scope, filter).await
    }

    async fn put_role_definition(&self, scope: &Scope, definition: &RoleDefinition) -> Result<(), AzureError> {
        let mut ids = vec![scope.to_string()];
        ids.extend(definition.assignable_scopes.iter().cloned());
        self.may_write(ids).await?;
        self.inner.put_role_definition(scope, definition).await
    }

    async fn delete_role_definition(&self, id: &RoleDefinitionId) -> Result<bool, AzureError> {
        self.may_write(vec![id.scope.to_string()]).await?;
        self.inner.delete_role_definition(id).await
    }

    async fn get_hub(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError> {
        self.inner.get_hub(hub).await
    }

    async fn set_hub_access(&self, hub: &HubId, change: &HubAccessChange) -> Result<HubWrite, AzureError> {
        self.may_write(vec![hub.arm_id()]).await?;
        self.inner.set_hub_access(hub, change).await
    }

    async fn list_subscriptions(&self) -> Result<Vec<String>, AzureError> {
        self.inner.list_subscriptions().await
    }

    async fn list_dps(&self, subscription_id: &str) -> Result<Vec<ObservedDps>, AzureError> {
        self.inner.list_dps(subscription_id).await
    }

    async fn list_device_update_instances(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<ObservedDeviceUpdate>, AzureError> {
        self.inner.list_device_update_instances(subscription_id).await
    }
}
