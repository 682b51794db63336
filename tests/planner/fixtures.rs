//! Builders for desired and observed state used by the planner tables.

use iothub_access_operator::crd::{
    AssignmentScope, DeletionPolicy, HubRef, IotHubCustomRoleSpec, IotHubRoleAssignmentSpec, Principal, PrincipalType,
    RoleRef,
};
use iothub_access_operator::desire::{self, DesiredAssignment, DesiredCustomRole};
use iothub_access_operator::domain::naming::Owner;
use iothub_access_operator::domain::{BuiltInRole, HubId, ObservedAssignment, ObservedHub, RoleAssignmentId, Scope};
use uuid::Uuid;

/// The resource every table plans for (operator instance "test", namespace "iot").
pub fn me() -> Owner {
    Owner::new("test", "iot", "planned")
}

pub const SUB: &str = "5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a";
pub const RG: &str = "rg-iot-prod";
pub const HUB: &str = "contoso-fleet-hub";
pub const TELEMETRY: &str = "0b7e4f3a-9c1d-4e2b-8a6f-5d3c2b1a0f9e";
pub const SYNC: &str = "7c2a9e1f-4b3d-4a5c-9e8f-1d2c3b4a5f6e";

pub fn hub_id() -> HubId {
    HubId::new(SUB, RG, HUB)
}

pub fn hub_ref() -> HubRef {
    HubRef { subscription_id: SUB.into(), resource_group: RG.into(), name: HUB.into() }
}

pub fn assignment_spec(principal: &str, role: BuiltInRole) -> IotHubRoleAssignmentSpec {
    IotHubRoleAssignmentSpec {
        hub: hub_ref(),
        principal: Principal::with_id(principal, PrincipalType::ServicePrincipal),
        role: RoleRef { built_in: Some(role), ..Default::default() },
        scope: AssignmentScope::Hub,
        management_group_id: None,
        description: None,
        deletion_policy: DeletionPolicy::Delete,
    }
}

/// What another resource (`owner`) asks for.
pub fn desired_by(spec: &IotHubRoleAssignmentSpec, owner: &Owner) -> DesiredAssignment {
    desire::desire_role_assignment(spec, &|_| None, owner).expect("valid spec")
}

pub fn desired(spec: &IotHubRoleAssignmentSpec) -> DesiredAssignment {
    desire::desire_role_assignment(spec, &|_| None, &me()).expect("valid spec")
}

pub fn custom_role_spec(name: &str, data_actions: &[&str]) -> IotHubCustomRoleSpec {
    IotHubCustomRoleSpec {
        role_name: name.into(),
        description: "test role".into(),
        subscription_id: SUB.into(),
        assignable_scopes: None,
        data_actions: data_actions.iter().map(|s| s.to_string()).collect(),
        not_data_actions: vec![],
        operations: vec![],
        actions: vec![],
        not_actions: vec![],
        deletion_policy: DeletionPolicy::Delete,
    }
}

pub fn desired_role(spec: &IotHubCustomRoleSpec) -> DesiredCustomRole {
    desire::desire_custom_role(spec, &me()).expect("valid spec")
}

/// What Azure lists for an assignment that `d` would create (same name).
pub fn observed_of(d: &DesiredAssignment) -> ObservedAssignment {
    ObservedAssignment {
        id: d.id(),
        role_definition: d.role.guid,
        principal_id: d.principal_id.clone(),
        principal_type: Some("ServicePrincipal".into()),
        description: None,
        condition: None,
    }
}

/// An assignment made outside the operator (random name).
pub fn foreign(scope: Scope, role: Uuid, principal: &str, name: &str) -> ObservedAssignment {
    ObservedAssignment {
        id: RoleAssignmentId { scope, name: Uuid::parse_str(name).unwrap() },
        role_definition: role,
        principal_id: principal.into(),
        principal_type: Some("ServicePrincipal".into()),
        description: None,
        condition: None,
    }
}

pub fn hub(disable_local_auth: bool) -> ObservedHub {
    ObservedHub {
        id: hub_id(),
        host_names: vec![format!("{HUB}.azure-devices.net")],
        location: "westeurope".into(),
        shared_access: iothub_access_operator::crd::Access::from_disabled(disable_local_auth),
        device_sas: iothub_access_operator::crd::Access::Allow,
        module_sas: iothub_access_operator::crd::Access::Allow,
        etag: Some("\"AAAAAAFD6M4=\"".into()),
    }
}

pub fn owner() -> Uuid {
    Uuid::parse_str("8e3af657-a8ff-443c-a75c-2fe8c4bcb635").unwrap()
}

pub fn contributor() -> Uuid {
    Uuid::parse_str("b24988ac-6180-42a0-ab88-20f7382dd24c").unwrap()
}
