//! Test-only constructors for the three custom resources, in the style of controller-rs's
//! `fixtures.rs`: `Kind::test(name)` is a valid object as a tenant would apply it (in [`NS`], on a
//! hub in the demo's `SUB`/`RG`), and chainable modifiers say what is different about it, so a
//! test reads as the situation it sets up:
//!
//! ```ignore
//! IotHubRoleAssignment::test("ops").on_hub(FLEET_HUB).for_principal(OPS_GROUP, PrincipalType::Group).orphaned()
//! IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny().observed()
//! IotHubCustomRole::test("reader").in_namespace("team-b")
//! ```
//!
//! The types live in the operator crate, so the constructors are extension traits.

use iothub_access_operator::crd::common::RECONCILE_ANNOTATION;
use iothub_access_operator::crd::{
    Access, AssignmentScope, CustomRoleRef, DeletionPolicy, HubRef, IotHubCustomRole, IotHubCustomRoleSpec,
    IotHubRoleAssignment, IotHubRoleAssignmentSpec, IotHubSharedAccess, IotHubSharedAccessSpec, Principal,
    PrincipalType, RoleRef,
};
use iothub_access_operator::domain::BuiltInRole;
use kube::{Resource, ResourceExt};

use super::NS;
use super::support::{FACTORY_HUB, RG, SUB, TELEMETRY_SP};

/// The data action of [`IotHubCustomRole::test`]'s role.
const READ_DEVICES: &str = "Microsoft.Devices/IotHubs/devices/read";

/// A hub of the demo subscription and resource group.
fn hub(name: &str) -> HubRef {
    HubRef { subscription_id: SUB.into(), resource_group: RG.into(), name: name.into() }
}

/// `obj` in the test namespace.
fn in_test_namespace<K: Resource>(mut obj: K) -> K {
    obj.meta_mut().namespace = Some(NS.into());
    obj
}

/// Modifiers every kind has: where it lives and how it is reconciled.
pub trait ResourceFixture: Resource + Sized {
    /// In namespace `ns` instead of [`NS`].
    fn in_namespace(mut self, ns: &str) -> Self {
        self.meta_mut().namespace = Some(ns.into());
        self
    }

    /// Annotated `iothubaccess.io/reconcile: observe`: planned and reported, never written.
    fn observed(self) -> Self {
        self.reconcile_mode("observe")
    }

    /// Annotated `iothubaccess.io/reconcile: skip`: left alone.
    fn skipped(self) -> Self {
        self.reconcile_mode("skip")
    }

    /// Annotated `iothubaccess.io/reconcile: {mode}`.
    fn reconcile_mode(mut self, mode: &str) -> Self {
        self.annotations_mut().insert(RECONCILE_ANNOTATION.into(), mode.into());
        self
    }
}

impl<K: Resource> ResourceFixture for K {}

/// Builders of [`IotHubRoleAssignment`].
pub trait AssignmentFixture {
    /// `name` in [`NS`]: the service principal `TELEMETRY_SP` gets IoT Hub Data Reader on
    /// `FACTORY_HUB`, at hub scope, deleted from Azure with the resource.
    fn test(name: &str) -> Self;
    /// On hub `hub` (same subscription and resource group).
    fn on_hub(self, hub: &str) -> Self;
    /// For principal `id` of type `ty`.
    fn for_principal(self, id: &str, ty: PrincipalType) -> Self;
    /// The built-in role `role` (and no other role reference).
    fn built_in(self, role: BuiltInRole) -> Self;
    /// The `IotHubCustomRole` named `name` in the same namespace (and no other role reference).
    fn custom_role(self, name: &str) -> Self;
    /// The role definition with GUID `guid` (and no other role reference).
    fn definition_id(self, guid: &str) -> Self;
    /// Made at `scope`.
    fn at_scope(self, scope: AssignmentScope) -> Self;
    /// Made at management-group scope, on management group `id`.
    fn in_management_group(self, id: &str) -> Self;
    /// `deletionPolicy: Orphan`: the grant stays in Azure when the resource goes.
    fn orphaned(self) -> Self;
}

impl AssignmentFixture for IotHubRoleAssignment {
    fn test(name: &str) -> Self {
        in_test_namespace(IotHubRoleAssignment::new(
            name,
            IotHubRoleAssignmentSpec {
                hub: hub(FACTORY_HUB),
                principal: Principal::with_id(TELEMETRY_SP, PrincipalType::ServicePrincipal),
                role: RoleRef { built_in: Some(BuiltInRole::IoTHubDataReader), ..RoleRef::default() },
                scope: AssignmentScope::default(),
                management_group_id: None,
                description: None,
                deletion_policy: DeletionPolicy::default(),
            },
        ))
    }

    fn on_hub(mut self, name: &str) -> Self {
        self.spec.hub = hub(name);
        self
    }

    fn for_principal(mut self, id: &str, ty: PrincipalType) -> Self {
        self.spec.principal = Principal::with_id(id, ty);
        self
    }

    fn built_in(mut self, role: BuiltInRole) -> Self {
        self.spec.role = RoleRef { built_in: Some(role), ..RoleRef::default() };
        self
    }

    fn custom_role(mut self, name: &str) -> Self {
        self.spec.role = RoleRef { custom_role_ref: Some(CustomRoleRef { name: name.into() }), ..RoleRef::default() };
        self
    }

    fn definition_id(mut self, guid: &str) -> Self {
        self.spec.role = RoleRef { definition_id: Some(guid.into()), ..RoleRef::default() };
        self
    }

    fn at_scope(mut self, scope: AssignmentScope) -> Self {
        self.spec.scope = scope;
        self
    }

    fn in_management_group(mut self, id: &str) -> Self {
        self.spec.scope = AssignmentScope::ManagementGroup;
        self.spec.management_group_id = Some(id.into());
        self
    }

    fn orphaned(mut self) -> Self {
        self.spec.deletion_policy = DeletionPolicy::Orphan;
        self
    }
}

/// Builders of [`IotHubCustomRole`].
pub trait CustomRoleFixture {
    /// `name` in [`NS`]: the role `Registry Reader {name}` ("read devices") in `SUB`, with the one
    /// data action `Microsoft.Devices/IotHubs/devices/read`, deleted from Azure with the resource.
    fn test(name: &str) -> Self;
    /// Named `role_name` in Azure instead.
    fn role_name(self, role_name: &str) -> Self;
    /// With exactly these data actions.
    fn data_actions<S: Into<String>>(self, actions: impl IntoIterator<Item = S>) -> Self;
    /// Assignable at exactly these scopes.
    fn assignable_scopes<S: Into<String>>(self, scopes: impl IntoIterator<Item = S>) -> Self;
    /// `deletionPolicy: Orphan`: the definition stays in Azure when the resource goes.
    fn orphaned(self) -> Self;
}

impl CustomRoleFixture for IotHubCustomRole {
    fn test(name: &str) -> Self {
        in_test_namespace(IotHubCustomRole::new(
            name,
            IotHubCustomRoleSpec {
                role_name: format!("Registry Reader {name}"),
                description: "read devices".into(),
                subscription_id: SUB.into(),
                assignable_scopes: None,
                data_actions: vec![READ_DEVICES.into()],
                not_data_actions: vec![],
                operations: vec![],
                actions: vec![],
                not_actions: vec![],
                deletion_policy: DeletionPolicy::default(),
            },
        ))
    }

    fn role_name(mut self, role_name: &str) -> Self {
        self.spec.role_name = role_name.into();
        self
    }

    fn data_actions<S: Into<String>>(mut self, actions: impl IntoIterator<Item = S>) -> Self {
        self.spec.data_actions = actions.into_iter().map(Into::into).collect();
        self
    }

    fn assignable_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.spec.assignable_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    fn orphaned(mut self) -> Self {
        self.spec.deletion_policy = DeletionPolicy::Orphan;
        self
    }
}

/// Builders of [`IotHubSharedAccess`].
pub trait SharedAccessFixture {
    /// `name` in [`NS`]: shared access policies allowed on `FACTORY_HUB`, device and module SAS
    /// left as they are.
    fn test(name: &str) -> Self;
    /// On hub `hub` (same subscription and resource group).
    fn on_hub(self, hub: &str) -> Self;
    /// `sharedAccessPolicies: Allow`.
    fn allow(self) -> Self;
    /// `sharedAccessPolicies: Deny`.
    fn deny(self) -> Self;
    /// `deviceSas` set to `access` (`None`: left as it is).
    fn device_sas(self, access: impl Into<Option<Access>>) -> Self;
}

impl SharedAccessFixture for IotHubSharedAccess {
    fn test(name: &str) -> Self {
        in_test_namespace(IotHubSharedAccess::new(
            name,
            IotHubSharedAccessSpec {
                hub: hub(FACTORY_HUB),
                shared_access_policies: Access::Allow,
                device_sas: None,
                module_sas: None,
            },
        ))
    }

    fn on_hub(mut self, name: &str) -> Self {
        self.spec.hub = hub(name);
        self
    }

    fn allow(mut self) -> Self {
        self.spec.shared_access_policies = Access::Allow;
        self
    }

    fn deny(mut self) -> Self {
        self.spec.shared_access_policies = Access::Deny;
        self
    }

    fn device_sas(mut self, access: impl Into<Option<Access>>) -> Self {
        self.spec.device_sas = access.into();
        self
    }
}
