//! Role assignment planning: create, steady state, change (make before break), adoption,
//! cleanup with both deletion policies, least-privilege findings.

use iothub_access_operator::crd::{AssignmentScope, DeletionPolicy};
use iothub_access_operator::domain::naming::{Owner, tagged_description};
use iothub_access_operator::domain::{
    BuiltInRole, NewRoleAssignment, RoleAssignmentId, RoleDefinition, RoleDefinitionId, Scope,
};
use iothub_access_operator::plan::ownership::NoOthers;
use iothub_access_operator::plan::role_assignment::{AssignmentInput, plan};
use iothub_access_operator::plan::{Action, Finding, Mode, Plan, Reason, Severity};
use pretty_assertions::assert_eq;

use super::fixtures::*;

/// Plan with what status says this resource owns: the planner never takes it (status only hints
/// which scopes the engine reads; ownership is proven from Azure's descriptions), so each case
/// shows the plan is the same whatever status claims.
fn run(
    mode: Mode,
    d: Option<&iothub_access_operator::desire::DesiredAssignment>,
    _status_claims: &[RoleAssignmentId],
    policy: DeletionPolicy,
    observed: &[iothub_access_operator::domain::ObservedAssignment],
) -> Plan {
    let roles: Vec<RoleDefinition> = vec![];
    plan(&AssignmentInput {
        mode,
        desired: d,
        me: &me(),
        others: &NoOthers,
        deletion_policy: policy,
        observed,
        roles: &roles,
        allowed_roles: &[],
        role_made_for: None,
    })
}

/// A `definitionId` role: the planner knows only what Azure returned (`in_azure`).
fn run_definition_id(
    d: &iothub_access_operator::desire::DesiredAssignment,
    in_azure: Option<RoleDefinition>,
    allowed_roles: &[uuid::Uuid],
) -> Plan {
    let mut d = d.clone();
    d.role.definition = None;
    let roles: Vec<RoleDefinition> = in_azure.into_iter().collect();
    plan(&AssignmentInput {
        mode: Mode::Apply,
        desired: Some(&d),
        me: &me(),
        others: &NoOthers,
        deletion_policy: DeletionPolicy::Delete,
        observed: &[],
        roles: &roles,
        allowed_roles,
        role_made_for: None,
    })
}

fn custom_definition(guid: uuid::Uuid, actions: &[&str], data_actions: &[&str]) -> RoleDefinition {
    RoleDefinition {
        guid,
        role_name: "Made in the portal".into(),
        description: String::new(),
        role_type: iothub_access_operator::domain::RoleType::CustomRole,
        permissions: vec![iothub_access_operator::domain::Permission {
            actions: actions.iter().map(|s| s.to_string()).collect(),
            data_actions: data_actions.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }],
        assignable_scopes: vec![],
    }
}

#[test]
fn only_roles_within_iot_hub_data_access_are_granted_whatever_definition_id_names() {
    let base = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    let with_role = |guid: uuid::Uuid| {
        let mut d = base.clone();
        d.role.guid = guid;
        d
    };
    let refused = |p: &Plan| {
        assert_eq!(p.actions, vec![], "nothing is written for a role that is not grantable");
        assert_eq!(p.findings.len(), 1, "{p:?}");
        assert_eq!((p.findings[0].severity, p.findings[0].reason), (Severity::Blocker, Reason::RoleNotGrantable));
        p.findings[0].message.clone()
    };
    // Owner, by its built-in GUID: refused, naming what it grants.
    let owner = iothub_access_operator::domain::roles::builtin_by_name("Owner").unwrap().clone();
    let d = with_role(owner.guid);
    let m = refused(&run_definition_id(&d, Some(owner.clone()), &[]));
    assert!(m.contains("'Owner'") && m.contains("listkeys"), "{m}");
    // A custom role someone made in Azure is judged by its permissions.
    let guid = uuid::Uuid::from_u128(0xc057_0000_0000_4000_8000_0000_0000_0001);
    let writer =
        custom_definition(guid, &["Microsoft.Devices/IotHubs/write"], &["Microsoft.Devices/IotHubs/devices/read"]);
    let m = refused(&run_definition_id(&with_role(guid), Some(writer.clone()), &[]));
    assert!(m.contains("Microsoft.Devices/IotHubs/write"), "{m}");
    let data_only =
        custom_definition(guid, &["Microsoft.Devices/IotHubs/read"], &["Microsoft.Devices/IotHubs/twins/*"]);
    assert_eq!(run_definition_id(&with_role(guid), Some(data_only), &[]).actions, vec![create(&with_role(guid))]);
    // Unknown to Azure: refused (fail closed), never granted unchecked.
    let m = refused(&run_definition_id(&with_role(guid), None, &[]));
    assert!(m.contains("was not found"), "{m}");
    // The cluster admin may allow a role explicitly; nothing else widens it.
    assert_eq!(run_definition_id(&with_role(guid), Some(writer), &[guid]).actions, vec![create(&with_role(guid))]);
}

fn create(d: &iothub_access_operator::desire::DesiredAssignment) -> Action {
    let new = NewRoleAssignment {
        id: d.id(),
        role_definition_id: RoleDefinitionId::new(Scope::Subscription(SUB.into()), d.role.guid),
        principal_id: d.principal_id.clone(),
        principal_type: iothub_access_operator::crd::PrincipalType::ServicePrincipal,
        description: Some(tagged_description(d.description.as_deref(), &me())),
    };
    Action::CreateRoleAssignment(new)
}

#[test]
fn missing_assignment_is_created_under_its_derived_name() {
    let d = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    let p = run(Mode::Apply, Some(&d), &[], DeletionPolicy::Delete, &[]);
    assert_eq!(p.actions, vec![create(&d)]);
    assert_eq!(p.findings, vec![]);
    assert_eq!(d.id().scope, hub_id().scope());
}

#[test]
fn steady_state_plans_zero_actions() {
    let d = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    let other =
        desired_by(&assignment_spec(SYNC, BuiltInRole::IoTHubDataContributor), &Owner::new("test", "iot", "other"));
    let observed = [observed_of(&d), observed_of(&other)];
    let p = run(Mode::Apply, Some(&d), &[d.id()], DeletionPolicy::Delete, &observed);
    assert_eq!(p, Plan::default());
    // Also when status was lost (crash before status write): the derived name is recognised.
    assert_eq!(run(Mode::Apply, Some(&d), &[], DeletionPolicy::Delete, &observed), Plan::default());
}

#[test]
fn role_change_creates_the_new_assignment_then_deletes_the_old_owned_one() {
    let old = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    let new = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubTwinContributor));
    let p = run(Mode::Apply, Some(&new), &[old.id()], DeletionPolicy::Delete, &[observed_of(&old)]);
    assert_eq!(p.actions, vec![create(&new), Action::DeleteRoleAssignment { id: old.id() }]);
}

#[test]
fn principal_and_scope_changes_are_make_before_break_too() {
    let old = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    let mut spec = assignment_spec(SYNC, BuiltInRole::IoTHubDataReader);
    let new_principal = desired(&spec);
    let p = run(Mode::Apply, Some(&new_principal), &[old.id()], DeletionPolicy::Delete, &[observed_of(&old)]);
    assert_eq!(p.actions, vec![create(&new_principal), Action::DeleteRoleAssignment { id: old.id() }]);

    spec.scope = AssignmentScope::ResourceGroup;
    let new_scope = desired(&spec);
    assert_eq!(new_scope.scope, Scope::ResourceGroup { subscription_id: SUB.into(), resource_group: RG.into() });
    let p = run(Mode::Apply, Some(&new_scope), &[old.id()], DeletionPolicy::Delete, &[observed_of(&old)]);
    assert_eq!(p.actions, vec![create(&new_scope), Action::DeleteRoleAssignment { id: old.id() }]);
}

#[test]
fn old_owned_assignment_already_gone_is_not_deleted_again() {
    let old = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    let new = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubTwinContributor));
    let p = run(Mode::Apply, Some(&new), &[old.id()], DeletionPolicy::Delete, &[]);
    assert_eq!(p.actions, vec![create(&new)]);
}

#[test]
fn equal_assignment_under_another_name_is_adopted_not_duplicated() {
    let d = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    let existing = foreign(d.scope.clone(), d.role.guid, TELEMETRY, "05c5a614-a7d6-4502-b150-c2fb455033ff");
    let p = run(Mode::Apply, Some(&d), &[], DeletionPolicy::Delete, std::slice::from_ref(&existing));
    assert_eq!(p.actions, vec![]);
    assert_eq!(p.findings.len(), 1);
    assert_eq!(p.findings[0].reason, Reason::AdoptedExisting);
    assert_eq!(p.findings[0].resource_ids, vec![existing.id.to_string()]);
    // ...and cleanup never deletes it.
    let p = run(Mode::Cleanup, Some(&d), &[], DeletionPolicy::Delete, &[existing]);
    assert_eq!(p.actions, vec![]);
}

#[test]
fn case_differences_in_ids_do_not_cause_churn() {
    let d = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    let mut o = observed_of(&d);
    o.id.scope = Scope::parse(&d.scope.to_string().to_uppercase().replace("SUBSCRIPTIONS", "subscriptions")).unwrap();
    o.principal_id = TELEMETRY.to_uppercase();
    assert_eq!(run(Mode::Apply, Some(&d), &[], DeletionPolicy::Delete, &[o]), Plan::default());
}

#[test]
fn cleanup_deletes_only_owned_assignments_and_honours_orphan() {
    let d = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    let someone_elses = foreign(
        d.scope.clone(),
        BuiltInRole::IoTHubDataContributor.guid(),
        TELEMETRY,
        "11111111-2222-4333-8444-555555555555",
    );
    let observed = [observed_of(&d), someone_elses];
    let p = run(Mode::Cleanup, Some(&d), &[d.id()], DeletionPolicy::Delete, &observed);
    assert_eq!(p.actions, vec![Action::DeleteRoleAssignment { id: d.id() }]);

    let p = run(Mode::Cleanup, Some(&d), &[d.id()], DeletionPolicy::Orphan, &observed);
    assert_eq!(p.actions, vec![]);
    assert_eq!(p.findings[0].reason, Reason::Orphaned);
}

#[test]
fn cleanup_works_when_apply_never_ran_or_status_was_lost() {
    let d = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    // Apply never ran: nothing in Azure, nothing to do.
    assert_eq!(run(Mode::Cleanup, Some(&d), &[], DeletionPolicy::Delete, &[]), Plan::default());
    // Apply created it but crashed before writing status: the derived name finds it.
    let p = run(Mode::Cleanup, Some(&d), &[], DeletionPolicy::Delete, &[observed_of(&d)]);
    assert_eq!(p.actions, vec![Action::DeleteRoleAssignment { id: d.id() }]);
    // Invalid spec (no desire) but status lists what it owns.
    let p = run(Mode::Cleanup, None, &[d.id()], DeletionPolicy::Delete, &[observed_of(&d)]);
    assert_eq!(p.actions, vec![Action::DeleteRoleAssignment { id: d.id() }]);
}

#[test]
fn broader_scope_than_the_hub_is_reported() {
    let mut spec = assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader);
    spec.scope = AssignmentScope::Subscription;
    let d = desired(&spec);
    let p = run(Mode::Apply, Some(&d), &[], DeletionPolicy::Delete, &[]);
    assert_eq!(p.actions, vec![create(&d)]);
    assert_eq!(
        p.findings,
        vec![Finding::new(
            Severity::Warning,
            Reason::BroaderScopeThanHub,
            format!(
                "assigned at subscription scope /subscriptions/{SUB}: the principal gets the role on every hub there, not only on {HUB}; use scope: Hub unless that is intended"
            ),
            vec![format!("/subscriptions/{SUB}")],
        )]
    );
}

#[test]
fn principal_that_also_holds_listkeys_is_reported_with_role_and_assignment() {
    let d = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    let rg_owner = foreign(
        Scope::ResourceGroup { subscription_id: SUB.into(), resource_group: RG.into() },
        contributor(),
        TELEMETRY,
        "22222222-2222-4333-8444-555555555555",
    );
    // Another principal's Owner and this principal's Owner on an unrelated subscription do not count.
    let other_owner = foreign(hub_id().scope(), owner(), SYNC, "33333333-2222-4333-8444-555555555555");
    let elsewhere = foreign(
        Scope::Subscription("00000000-0000-0000-0000-000000000009".into()),
        owner(),
        TELEMETRY,
        "44444444-2222-4333-8444-555555555555",
    );
    let p = run(Mode::Apply, Some(&d), &[], DeletionPolicy::Delete, &[rg_owner.clone(), other_owner, elsewhere]);
    let lp: Vec<&Finding> = p.findings.iter().filter(|f| f.reason == Reason::PrincipalHoldsListKeys).collect();
    assert_eq!(lp.len(), 1, "{:?}", p.findings);
    assert!(lp[0].message.contains("'Contributor'"));
    assert_eq!(lp[0].resource_ids, vec![rg_owner.id.to_string()]);
}

#[test]
fn plans_are_deterministic_and_sorted() {
    let d = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubDataReader));
    let old1 = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubTwinContributor));
    let old2 = desired(&assignment_spec(TELEMETRY, BuiltInRole::IoTHubRegistryContributor));
    let a = run(
        Mode::Apply,
        Some(&d),
        &[old1.id(), old2.id()],
        DeletionPolicy::Delete,
        &[observed_of(&old2), observed_of(&old1)],
    );
    let b = run(
        Mode::Apply,
        Some(&d),
        &[old2.id(), old1.id()],
        DeletionPolicy::Delete,
        &[observed_of(&old1), observed_of(&old2)],
    );
    assert_eq!(a, b, "the order Azure lists things in does not change the plan");
    // Make before break: the create first, then the deletions in id order.
    let mut old_ids = vec![old1.id(), old2.id()];
    old_ids.sort_by_key(ToString::to_string);
    let mut want = vec![create(&d)];
    want.extend(old_ids.into_iter().map(|id| Action::DeleteRoleAssignment { id }));
    assert_eq!(a.actions, want);
}
