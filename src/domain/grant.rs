//! The grant: who gets which role where, `(scope, role definition, principal)`. Azure holds at
//! most one role assignment per grant (without conditions), so this value is what naming derives
//! names from, what ownership compares, what the other resources want and what the planner asks
//! Azure to create. Pure, no I/O.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{RoleAssignmentId, RoleDefinitionId, Scope};

/// Kinds of principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
pub enum PrincipalType {
    User,
    Group,
    ServicePrincipal,
}

impl PrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::User => "User",
            PrincipalType::Group => "Group",
            PrincipalType::ServicePrincipal => "ServicePrincipal",
        }
    }

    /// From Azure's `principalType` (`None` for kinds a spec cannot name, e.g. `ForeignGroup`).
    pub fn parse(value: &str) -> Option<PrincipalType> {
        [PrincipalType::User, PrincipalType::Group, PrincipalType::ServicePrincipal]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(value))
    }
}

/// Who gets which role where.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Grant {
    pub scope: Scope,
    /// The role definition GUID (Azure's id form does not matter).
    pub role: Uuid,
    /// Lower-case object id.
    pub principal_id: String,
}

impl Grant {
    pub fn new(scope: Scope, role: Uuid, principal_id: &str) -> Grant {
        Grant { scope, role, principal_id: principal_id.trim().to_ascii_lowercase() }
    }

    /// The role definition id sent to Azure: subscription-qualified when the scope lies in a
    /// subscription, the tenant-level form otherwise (a management group).
    pub fn role_definition_id(&self) -> RoleDefinitionId {
        let sub = self.scope.subscription_id().map_or(Scope::Root, |s| Scope::Subscription(s.to_string()));
        RoleDefinitionId::new(sub, self.role)
    }
}

/// A role assignment to write: a new grant under the name its resource derives, or (the same
/// name, a PUT again) an existing one whose description changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRoleAssignment {
    pub id: RoleAssignmentId,
    pub role_definition_id: RoleDefinitionId,
    pub principal_id: String,
    pub principal_type: PrincipalType,
    pub description: Option<String>,
}

impl NewRoleAssignment {
    /// `grant` under the name `name`.
    pub fn of(grant: &Grant, name: Uuid, principal_type: PrincipalType, description: Option<String>) -> Self {
        NewRoleAssignment {
            id: RoleAssignmentId { scope: grant.scope.clone(), name },
            role_definition_id: grant.role_definition_id(),
            principal_id: grant.principal_id.clone(),
            principal_type,
            description,
        }
    }
}
