//! The exposure judge (`plan::exposure`), table by table: deny assignments for everyone with
//! exceptions, `notDataActions`, eligible paths, and the least-privileged role suggested.

use iothub_access_operator::domain::roles::builtin_by_name;
use iothub_access_operator::domain::{Access, Permission, RoleDefinition, RoleType};
use iothub_access_operator::plan::exposure::{Deny, Grantee, PathKind, Reach, judge};

use super::fixtures::hub_id;

const A: &str = "a0000000-0000-4000-8000-000000000001";
const B: &str = "a0000000-0000-4000-8000-000000000002";

fn role(name: &str, actions: &[&str], data: &[&str], not_data: &[&str]) -> RoleDefinition {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    RoleDefinition {
        guid: uuid::Uuid::new_v4(),
        role_name: name.into(),
        description: String::new(),
        role_type: RoleType::CustomRole,
        permissions: vec![Permission {
            actions: v(actions),
            data_actions: v(data),
            not_data_actions: v(not_data),
            ..Default::default()
        }],
        assignable_scopes: vec![],
    }
}

fn grantee(p: &str, role: RoleDefinition, kind: PathKind) -> Grantee {
    Grantee {
        principal_id: p.into(),
        principal_type: "ServicePrincipal".into(),
        scope: hub_id().scope().to_string(),
        role,
        kind,
        condition: None,
    }
}

#[test]
fn a_deny_for_everyone_spares_only_the_principals_it_excludes() {
    let owner = builtin_by_name("Owner").unwrap().clone();
    let deny = Deny {
        name: "stack".into(),
        permissions: vec![Permission {
            actions: vec!["Microsoft.Devices/*/listkeys/action".into(), "Microsoft.Devices/IotHubs/write".into()],
            ..Default::default()
        }],
        principals: vec![("00000000-0000-0000-0000-000000000000".into(), "SystemDefined".into())],
        exclude: vec![(A.into(), "ServicePrincipal".into())],
        conditional: false,
    };
    let e = judge(
        &hub_id().scope(),
        Access::Allow,
        None,
        &[grantee(A, owner.clone(), PathKind::Active), grantee(B, owner, PathKind::Active)],
        &[deny],
    );
    let a = e.principals.iter().find(|p| p.principal_id == A).unwrap();
    let b = e.principals.iter().find(|p| p.principal_id == B).unwrap();
    assert_eq!(a.access, [Reach::Keys, Reach::Grant]);
    assert!(a.denied_by.is_empty());
    assert_eq!(b.access, [Reach::Grant], "keys taken by the deny, grants kept");
    assert_eq!(b.denied_by, ["stack"]);
    assert_eq!(e.key_holders_while_allowed().len(), 1);
    let denied =
        judge(&hub_id().scope(), Access::Deny, None, &[grantee(A, role("k", &["*"], &[], &[]), PathKind::Active)], &[]);
    assert!(denied.key_holders_while_allowed().is_empty(), "keys matter only while shared access is allowed");
}

#[test]
fn data_actions_count_after_not_data_actions_and_the_least_privileged_role_is_named() {
    let all_but_twin_writes =
        role("most", &[], &["Microsoft.Devices/IotHubs/*"], &["Microsoft.Devices/IotHubs/twins/write"]);
    let registry = builtin_by_name("IoT Hub Registry Contributor").unwrap().clone();
    let one = role("one", &[], &["Microsoft.Devices/IotHubs/devices/read"], &[]);
    let e = judge(
        &hub_id().scope(),
        Access::Allow,
        None,
        &[
            grantee(A, registry, PathKind::Active),
            grantee(B, one, PathKind::Active),
            grantee("a0000000-0000-4000-8000-000000000003", all_but_twin_writes, PathKind::Eligible),
        ],
        &[],
    );
    let by = |id: &str| e.principals.iter().find(|p| p.principal_id == id).unwrap();
    assert_eq!(by(A).least_privileged_role.as_deref(), Some("IoT Hub Registry Contributor"));
    assert_eq!(by(A).data_areas, ["registry"]);
    assert_eq!(
        by(B).least_privileged_role.as_deref(),
        Some("a custom role of: Microsoft.Devices/IotHubs/devices/read"),
        "one action: a custom role of it, not a built-in that holds more"
    );
    let eligible = by("a0000000-0000-4000-8000-000000000003");
    assert_eq!(eligible.access, [Reach::Data]);
    assert_eq!(eligible.paths[0].kind, PathKind::Eligible);
    assert!(!eligible.data_areas.is_empty() && eligible.least_privileged_role.is_none(), "eligible: nothing held yet");
}

#[test]
fn a_deny_that_may_not_apply_is_shown_never_subtracted() {
    let owner = builtin_by_name("Owner").unwrap().clone();
    let keys = vec![Permission { actions: vec!["Microsoft.Devices/*".into()], ..Default::default() }];
    let everyone = vec![("00000000-0000-0000-0000-000000000000".to_string(), "SystemDefined".to_string())];
    let conditional = Deny {
        name: "conditional".into(),
        permissions: keys.clone(),
        principals: everyone.clone(),
        exclude: vec![],
        conditional: true,
    };
    let except_a_group = Deny {
        name: "except-group".into(),
        permissions: keys,
        principals: everyone,
        exclude: vec![("a0000000-0000-4000-8000-0000000000ff".into(), "Group".into())],
        conditional: false,
    };
    for d in [conditional, except_a_group] {
        let e = judge(
            &hub_id().scope(),
            Access::Allow,
            None,
            &[grantee(A, owner.clone(), PathKind::Active)],
            std::slice::from_ref(&d),
        );
        let a = &e.principals[0];
        assert_eq!(a.access, [Reach::Keys, Reach::Grant], "{}: not subtracted", d.name);
        assert_eq!(a.may_be_denied_by, std::slice::from_ref(&d.name));
        assert!(a.denied_by.is_empty());
    }
}
