//! The gates on the wire: the Azure trait with every write and delete passed through the
//! [`Gate`] right before it is sent, on the exact canonical ids it touches (an assignment's scope,
//! a definition's scope and every assignable scope, a hub). In order: the allowed scopes of the
//! writing resource's namespace; the fence hook (with leader election: only the replica that
//! provably holds the Lease writes); for a role assignment, the role's definition read from Azure
//! right then, granted only when it holds nothing beyond IoT Hub data access (or the admin
//! allowed it). A refusal is [`AzureError::Withheld`] with its own reason, and nothing is sent.
//! Reads pass through. Does I/O only by delegating to the wrapped client and to the fence.

use crate::domain::{ObservedDeny, ObservedEligibility, ObservedPolicy};
use std::sync::Arc;

use async_trait::async_trait;

use super::Gate;
use crate::azure::{
    AssignmentFilter, Azure, AzureError, CreateOutcome, HubAccessChange, HubWrite, NewRoleAssignment,
    RoleDefinitionFilter,
};
use crate::domain::{
    HubId, ObservedAssignment, ObservedDeviceUpdate, ObservedDps, ObservedHub, RoleAssignmentId, RoleDefinition,
    RoleDefinitionId, Scope,
};
use crate::reason::Reason;

/// Decides, right before a write is sent, whether it may be (the fence hook).
#[async_trait]
pub trait WriteGate: Send + Sync {
    async fn allow(&self, ids: &[Scope]) -> Result<(), AzureError>;
}

/// The Azure trait with every write passed through the gate of one namespace.
pub struct GatedAzure {
    inner: Arc<dyn Azure>,
    gate: Gate,
    namespace: String,
}

impl GatedAzure {
    pub fn new(inner: Arc<dyn Azure>, gate: Gate, namespace: &str) -> GatedAzure {
        GatedAzure { inner, gate, namespace: namespace.to_string() }
    }

    async fn may_write(&self, ids: &[Scope]) -> Result<(), AzureError> {
        if let Err(refusal) = self.gate.check(&self.namespace, ids) {
            return Err(AzureError::Withheld {
                reason: refusal.reason,
                message: format!("refused by the operator's guardrail before sending: {}", refusal.message),
            });
        }
        match &self.gate.fence {
            Some(fence) => fence.allow(ids).await,
            None => Ok(()),
        }
    }

    /// The role a new assignment grants, read from Azure now (joined with a read of the last
    /// seconds), must hold nothing beyond IoT Hub data access, unless the admin allowed it.
    async fn may_grant(&self, new: &NewRoleAssignment) -> Result<(), AzureError> {
        let guid = new.role_definition_id.guid;
        if self.gate.allowed_roles.contains(&guid) {
            return Ok(());
        }
        let inner = self.inner.clone();
        let id = new.role_definition_id.clone();
        let definition =
            self.gate.definitions.get(guid, || async move { inner.get_role_definition(&id).await }).await?;
        let why = match definition {
            None => {
                format!("role definition {} was not found, so what it grants cannot be checked", new.role_definition_id)
            }
            Some(d) => match d.grantable() {
                Ok(()) => return Ok(()),
                Err(why) => why,
            },
        };
        Err(AzureError::Withheld {
            reason: Reason::RoleNotGrantable,
            message: format!("refused by the operator's role check before sending {}: {why}", new.id),
        })
    }
}

/// The canonical scopes a definition write touches; one that is not canonical refuses it.
fn definition_scopes(scope: &Scope, definition: &RoleDefinition) -> Result<Vec<Scope>, AzureError> {
    let mut ids = vec![scope.clone()];
    for s in &definition.assignable_scopes {
        ids.push(Scope::parse(s).map_err(|e| AzureError::Withheld {
            reason: Reason::ScopeNotAllowed,
            message: format!("refused by the operator's guardrail before sending: assignable scope {e}"),
        })?);
    }
    Ok(ids)
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
        self.may_write(std::slice::from_ref(&new.id.scope)).await?;
        self.may_grant(new).await?;
        self.inner.create_role_assignment(new).await
    }

    async fn delete_role_assignment(&self, id: &RoleAssignmentId) -> Result<bool, AzureError> {
        self.may_write(std::slice::from_ref(&id.scope)).await?;
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
        self.may_write(&definition_scopes(scope, definition)?).await?;
        self.inner.put_role_definition(scope, definition).await
    }

    async fn delete_role_definition(&self, id: &RoleDefinitionId) -> Result<bool, AzureError> {
        self.may_write(std::slice::from_ref(&id.scope)).await?;
        self.inner.delete_role_definition(id).await
    }

    async fn get_hub(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError> {
        self.inner.get_hub(hub).await
    }

    async fn set_hub_access(&self, hub: &HubId, change: &HubAccessChange) -> Result<HubWrite, AzureError> {
        self.may_write(&[hub.scope()]).await?;
        self.inner.set_hub_access(hub, change).await
    }

    async fn list_subscriptions(&self) -> Result<Vec<String>, AzureError> {
        self.inner.list_subscriptions().await
    }

    async fn list_deny_assignments(&self, scope: &Scope) -> Result<Vec<ObservedDeny>, AzureError> {
        self.inner.list_deny_assignments(scope).await
    }

    async fn list_role_eligibilities(&self, scope: &Scope) -> Result<Vec<ObservedEligibility>, AzureError> {
        self.inner.list_role_eligibilities(scope).await
    }

    async fn list_hub_policies(&self, hub: &HubId) -> Result<Vec<ObservedPolicy>, AzureError> {
        self.inner.list_hub_policies(hub).await
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
