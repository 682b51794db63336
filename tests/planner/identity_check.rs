//! The operator's own identity judged by effective permissions (`plan::identity_check`): what it
//! holds beyond what `setup` prints, and what it lacks for the kinds in use.

use iothub_access_abac::constrain_roles_and_principal_types;
use iothub_access_operator::domain::roles::builtin_by_name;
use iothub_access_operator::domain::{BuiltInRole, Permission, PrincipalType, RoleDefinition, RoleType, Scope};
use iothub_access_operator::plan::identity_check::{Finding, FindingKind, Held, Needs, missing, over_privileged};

use super::fixtures::{RG, SUB, hub_id};

fn rg() -> Scope {
    Scope::parse(&format!("/subscriptions/{SUB}/resourceGroups/{RG}")).unwrap()
}

fn sub() -> Scope {
    Scope::Subscription(SUB.into())
}

fn builtin(name: &str) -> RoleDefinition {
    builtin_by_name(name).unwrap_or_else(|| panic!("{name} is a known built-in")).clone()
}

fn custom(name: &str, actions: &[&str]) -> RoleDefinition {
    RoleDefinition {
        guid: uuid::Uuid::new_v4(),
        role_name: name.into(),
        description: String::new(),
        role_type: RoleType::CustomRole,
        permissions: vec![Permission {
            actions: actions.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        }],
        assignable_scopes: vec![],
    }
}

fn held(scope: Scope, role: RoleDefinition, condition: Option<String>) -> Held {
    Held { scope, role, condition }
}

/// What `setup` prints for the RBAC Administrator: the IoT Hub data roles, to service principals.
fn setup_condition(types: &[&str]) -> String {
    let roles: Vec<String> = [
        BuiltInRole::IoTHubDataContributor,
        BuiltInRole::IoTHubDataReader,
        BuiltInRole::IoTHubRegistryContributor,
        BuiltInRole::IoTHubTwinContributor,
    ]
    .iter()
    .map(|r| r.guid().to_string())
    .collect();
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    constrain_roles_and_principal_types(&roles, types)
}

fn needs() -> Needs {
    Needs {
        allowed_scopes: vec![rg()],
        probe_role: Some(BuiltInRole::IoTHubDataReader.guid()),
        principal_types: vec![PrincipalType::ServicePrincipal],
        custom_roles: false,
        hub_scopes: vec![hub_id().scope()],
        search_subscriptions: vec![SUB.into()],
    }
}

fn kinds(f: &[Finding], kind: FindingKind) -> Vec<&str> {
    f.iter().filter(|x| x.kind == kind).map(|x| x.detail.as_str()).collect()
}

const RBAC_ADMIN: &str = "Role Based Access Control Administrator";

#[test]
fn what_setup_prints_holds_nothing_beyond_and_lacks_nothing() {
    let hub_writer = custom(
        "hub writer",
        &[
            "Microsoft.Devices/IotHubs/read",
            "Microsoft.Devices/IotHubs/write",
            "Microsoft.Devices/locations/operationresults/read",
        ],
    );
    let search =
        custom("search", &["Microsoft.Devices/provisioningServices/read", "Microsoft.DeviceUpdate/accounts/read"]);
    let all = vec![
        held(rg(), builtin(RBAC_ADMIN), Some(setup_condition(&["ServicePrincipal"]))),
        held(hub_id().scope(), hub_writer, None),
        held(sub(), search, None),
    ];
    assert_eq!(over_privileged(&all, &needs()), []);
    let reach = |s: &Scope| all.iter().filter(|h| h.scope.covers(s)).cloned().collect::<Vec<_>>();
    assert_eq!(missing(&reach, &needs()), []);
}

#[test]
fn an_identity_that_may_assign_owner_is_over_privileged_however_it_got_there() {
    let cases: Vec<(Held, &str)> = vec![
        (held(rg(), builtin(RBAC_ADMIN), None), "no delegation condition"),
        (
            held(
                rg(),
                builtin(RBAC_ADMIN),
                Some(
                    setup_condition(&["ServicePrincipal"])
                        .replace("GuidEquals {", "GuidEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, "),
                ),
            ),
            "its condition lets Owner through",
        ),
        (held(sub(), builtin("Owner"), None), "no delegation condition"),
        (held(Scope::Root, builtin("User Access Administrator"), None), "no delegation condition"),
    ];
    for (h, why) in cases {
        let f = over_privileged(std::slice::from_ref(&h), &needs());
        let over = kinds(&f, FindingKind::OverPrivileged);
        assert!(
            over.iter().any(|d| d.contains("may assign any role, Owner included") && d.contains(why)),
            "{}: {f:?}",
            h.role.role_name
        );
    }
    // A condition that does not parse here lets nothing through the probes, and is said so.
    let broken = held(rg(), builtin(RBAC_ADMIN), Some("@Request[nonsense".into()));
    let f = over_privileged(std::slice::from_ref(&broken), &needs());
    assert!(f.iter().all(|x| x.detail.contains("cannot judge")) && f.len() == 1, "{f:?}");
    let reach = |_: &Scope| vec![broken.clone()];
    let lacks = missing(&reach, &needs());
    assert!(
        kinds(&lacks, FindingKind::MissingPermission).iter().any(|d| d.contains("roleAssignments/write")),
        "{lacks:?}"
    );
}

#[test]
fn keys_writes_of_any_kind_and_hub_writes_beyond_the_managed_hubs_are_reported() {
    let f = over_privileged(&[held(sub(), builtin("Contributor"), None)], &needs());
    let over = kinds(&f, FindingKind::OverPrivileged).join("\n");
    assert!(over.contains("listkeys") && over.contains("writes resources of any kind"), "{over}");
    assert!(!over.contains("may assign any role"), "Contributor's notActions keep role assignments out: {over}");
    assert!(
        over.contains("beyond the hubs whose shared access is managed"),
        "at the subscription, not the hub: {over}"
    );

    // The hub writer at the hub is what is needed; role definition writes are not, without custom roles.
    let writer = custom("w", &["Microsoft.Devices/IotHubs/write", "Microsoft.Authorization/roleDefinitions/write"]);
    let f = over_privileged(&[held(hub_id().scope(), writer.clone(), None)], &needs());
    assert_eq!(kinds(&f, FindingKind::OverPrivileged).len(), 1, "{f:?}");
    assert!(f[0].detail.contains("role definitions"));
    let with_custom = Needs { custom_roles: true, ..needs() };
    assert_eq!(over_privileged(&[held(hub_id().scope(), writer, None)], &with_custom), []);
}

#[test]
fn what_the_kinds_in_use_need_is_named_where_it_is_missing() {
    // Only the conditioned RBAC Administrator, for service principals; users are asked for too.
    let admin = held(rg(), builtin(RBAC_ADMIN), Some(setup_condition(&["ServicePrincipal"])));
    let needs = Needs {
        principal_types: vec![PrincipalType::ServicePrincipal, PrincipalType::User],
        custom_roles: true,
        ..needs()
    };
    let reach = |s: &Scope| if admin.scope.covers(s) { vec![admin.clone()] } else { vec![] };
    let lacks = missing(&reach, &needs);
    let text = kinds(&lacks, FindingKind::MissingPermission).join("\n");
    assert!(text.contains("cannot be assigned or removed for a User"), "{text}");
    assert!(!text.contains("for a ServicePrincipal"), "{text}");
    assert!(text.contains("roleDefinitions/write"), "{text}");
    assert!(text.contains("Microsoft.Devices/IotHubs/write"), "{text}");
    assert!(text.contains("provisioningServices/read"), "the search subscription: {text}");
    // Nothing in use, nothing needed beyond the reads on the allowed scopes.
    let idle = Needs { allowed_scopes: vec![rg()], ..Needs::default() };
    assert_eq!(missing(&reach, &idle), []);
}

#[test]
fn a_condition_that_lets_other_powerful_roles_through_or_cannot_be_judged_is_reported() {
    // Microsoft's "allow most roles, but not Owner, User Access Administrator or RBAC
    // Administrator": Contributor, and any other role, still pass.
    let most = "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR \
        (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals \
        {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9, f58310d9-a9f6-439a-9e8d-f62e7b41a168})) AND \
        ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR \
        (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals \
        {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9, f58310d9-a9f6-439a-9e8d-f62e7b41a168}))";
    let f = over_privileged(&[held(rg(), builtin(RBAC_ADMIN), Some(most.into()))], &needs());
    let over = kinds(&f, FindingKind::OverPrivileged).join("\n");
    assert!(over.contains("may assign Contributor"), "{over}");
    assert!(!over.contains("Owner included"), "Owner itself is refused by it: {over}");

    // The setup condition widened with "or for this one principal": whoever that is, any role.
    let widened = format!(
        "({}) OR (@Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {{a0000000-0000-4000-8000-00000000bad1}})",
        setup_condition(&["ServicePrincipal"])
    );
    let f = over_privileged(&[held(rg(), builtin(RBAC_ADMIN), Some(widened))], &needs());
    let text = kinds(&f, FindingKind::OverPrivileged).join("\n");
    assert!(text.contains("cannot judge") && text.contains("PrincipalId"), "{text}");
}
