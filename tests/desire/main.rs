//! The `desire` step: specs to desired state, pure (what the admission rules also check; the
//! refusals are in `tests/admission` and `tests/invalid`). Shares the planner's fixtures.

#[allow(dead_code)]
#[path = "../planner/fixtures.rs"]
mod fixtures;

use iothub_access_operator::crd::{Access, IotHubSharedAccessSpec};
use iothub_access_operator::desire;
use iothub_access_operator::domain::catalog::Operation;
use iothub_access_operator::domain::naming::Owner;
use pretty_assertions::assert_eq;

use fixtures::*;
use iothub_access_operator::crd::{CustomRoleRef, IotHubRoleAssignmentSpec, RoleRef};
use iothub_access_operator::domain::BuiltInRole;

fn custom_role_ref_spec(principal: &str, name: &str) -> IotHubRoleAssignmentSpec {
    let mut s = assignment_spec(principal, BuiltInRole::Reader);
    s.role = RoleRef { custom_role_ref: Some(CustomRoleRef { name: name.into() }), ..Default::default() };
    s
}

#[test]
fn operations_expand_to_the_data_actions_they_need() {
    let mut spec = custom_role_spec("Bulk importer", &["microsoft.devices/iothubs/devices/READ"]);
    spec.operations = vec![Operation::BulkRegistryUpdate, Operation::TwinQuery];
    let d = desired_role(&spec);
    assert_eq!(
        d.permission.data_actions,
        vec![
            "Microsoft.Devices/IotHubs/devices/delete",
            "Microsoft.Devices/IotHubs/devices/read",
            "Microsoft.Devices/IotHubs/devices/write",
            "Microsoft.Devices/IotHubs/twins/read",
        ]
    );
    assert_eq!(d.assignable_scopes, vec![iothub_access_operator::domain::Scope::Subscription(SUB.into())]);
    assert_eq!(d.scope, iothub_access_operator::domain::Scope::Subscription(SUB.into()));
}

#[test]
fn custom_role_reference_resolves_to_the_derived_definition() {
    let role = custom_role_spec("IoT Hub Device Registry Reader", &["Microsoft.Devices/IotHubs/devices/read"]);
    let spec = custom_role_ref_spec(SYNC, "device-registry-reader");
    let lookup = |name: &str| (name == "device-registry-reader").then(|| role.clone());
    let d = desire::desire_role_assignment(&spec, &lookup, &me()).unwrap();
    let role_owner = Owner::new("test", "iot", "device-registry-reader");
    assert_eq!(d.role.guid, role_owner.definition_name(), "the IotHubCustomRole's own derived GUID");
    let missing = desire::desire_role_assignment(&spec, &|_| None, &me()).unwrap_err();
    assert!(missing.to_string().contains("no IotHubCustomRole named 'device-registry-reader'"));
}

#[test]
fn shared_access_deny_disables_local_auth_and_leaves_device_and_module_sas_unless_set() {
    let spec = |device_sas| IotHubSharedAccessSpec {
        hub: hub_ref(),
        shared_access_policies: Access::Deny,
        device_sas,
        module_sas: None,
    };
    let d = desire::desire_shared_access(&spec(None)).unwrap();
    assert_eq!((d.shared_access, d.device_sas, d.module_sas), (Access::Deny, None, None));
    assert_eq!(d.hub, hub_id());
    let d = desire::desire_shared_access(&spec(Some(Access::Allow))).unwrap();
    assert_eq!(d.device_sas, Some(Access::Allow));
}
