//! Custom role planning: create, steady state, update, rename, name collision, deletion blocked
//! by assignments, both deletion policies; and the desire step's expansion of operations.

use iothub_access_operator::crd::DeletionPolicy;
use iothub_access_operator::domain::{ObservedAssignment, RoleDefinition, RoleDefinitionId, Scope};
use iothub_access_operator::plan::custom_role::{CustomRoleInput, plan};
use iothub_access_operator::plan::{Action, Mode, Plan, Reason, Severity};
use pretty_assertions::assert_eq;
use uuid::Uuid;

use super::fixtures::*;

fn run(
    mode: Mode,
    d: Option<&iothub_access_operator::desire::DesiredCustomRole>,
    owned: &[RoleDefinitionId],
    policy: DeletionPolicy,
    observed: &[RoleDefinition],
    assignments: &[ObservedAssignment],
) -> Plan {
    plan(&CustomRoleInput { mode, desired: d, me: &me(), owned, deletion_policy: policy, observed, assignments })
}

fn sub_scope() -> Scope {
    Scope::Subscription(SUB.into())
}

#[test]
fn missing_role_is_created_then_steady_state_is_empty() {
    let d = desired_role(&custom_role_spec("Registry reader", &["Microsoft.Devices/IotHubs/devices/read"]));
    let p = run(Mode::Apply, Some(&d), &[], DeletionPolicy::Delete, &[], &[]);
    assert_eq!(
        p.actions,
        vec![Action::PutRoleDefinition { scope: sub_scope(), definition: d.definition(), create: true }]
    );
    let p = run(
        Mode::Apply,
        Some(&d),
        &[RoleDefinitionId::new(sub_scope(), d.guid)],
        DeletionPolicy::Delete,
        &[d.definition()],
        &[],
    );
    assert_eq!(p, Plan::default());
}

#[test]
fn changed_permissions_description_or_scopes_update_in_place() {
    let d = desired_role(&custom_role_spec("Registry reader", &["Microsoft.Devices/IotHubs/devices/read"]));
    let mut azure = d.definition();
    azure.permissions[0].data_actions.push("Microsoft.Devices/IotHubs/devices/write".into());
    let p = run(
        Mode::Apply,
        Some(&d),
        &[RoleDefinitionId::new(sub_scope(), d.guid)],
        DeletionPolicy::Delete,
        &[azure],
        &[],
    );
    assert_eq!(
        p.actions,
        vec![Action::PutRoleDefinition { scope: sub_scope(), definition: d.definition(), create: false }]
    );

    let mut azure = d.definition();
    azure.description = "edited in the portal".into();
    let p = run(Mode::Apply, Some(&d), &[], DeletionPolicy::Delete, &[azure], &[]);
    assert_eq!(p.actions.len(), 1);

    // Order and case of actions do not matter to Azure, so they do not cause an update.
    let mut azure = d.definition();
    azure.permissions[0].data_actions = vec!["microsoft.devices/iothubs/devices/read".into()];
    azure.assignable_scopes = vec![format!("/subscriptions/{}", SUB.to_uppercase())];
    assert_eq!(run(Mode::Apply, Some(&d), &[], DeletionPolicy::Delete, &[azure], &[]), Plan::default());
}

#[test]
fn role_name_held_by_another_definition_blocks_creation() {
    let d = desired_role(&custom_role_spec("Registry reader", &["Microsoft.Devices/IotHubs/devices/read"]));
    let mut theirs = d.definition();
    theirs.guid = Uuid::parse_str("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee").unwrap();
    theirs.role_name = "registry READER".into();
    let p = run(Mode::Apply, Some(&d), &[], DeletionPolicy::Delete, &[theirs], &[]);
    assert_eq!(p.actions, vec![]);
    assert_eq!(p.findings.len(), 1);
    assert_eq!((p.findings[0].severity, p.findings[0].reason), (Severity::Blocker, Reason::RoleNameTaken));
}

#[test]
fn a_rename_updates_the_same_definition_in_place() {
    let old = desired_role(&custom_role_spec("Registry reader", &["Microsoft.Devices/IotHubs/devices/read"]));
    let new = desired_role(&custom_role_spec("Device registry reader", &["Microsoft.Devices/IotHubs/devices/read"]));
    assert_eq!(old.guid, new.guid, "the GUID comes from the resource, not from its role name");
    let p = run(
        Mode::Apply,
        Some(&new),
        &[RoleDefinitionId::new(sub_scope(), old.guid)],
        DeletionPolicy::Delete,
        &[old.definition()],
        &[],
    );
    assert_eq!(
        p.actions,
        vec![Action::PutRoleDefinition { scope: sub_scope(), definition: new.definition(), create: false }]
    );
}

#[test]
fn a_forged_status_hint_never_deletes_another_definition() {
    let d = desired_role(&custom_role_spec("Registry reader", &["Microsoft.Devices/IotHubs/devices/read"]));
    // Status claims another team's definition (its GUID derives from another resource).
    let mut theirs =
        desired_role(&custom_role_spec("Their role", &["Microsoft.Devices/IotHubs/twins/read"])).definition();
    theirs.guid = iothub_access_operator::domain::naming::Owner::new("test", "team-b", "theirs").definition_name();
    let hint = [RoleDefinitionId::new(sub_scope(), theirs.guid)];
    let observed = [d.definition(), theirs.clone()];
    assert_eq!(run(Mode::Apply, Some(&d), &hint, DeletionPolicy::Delete, &observed, &[]), Plan::default());
    let p = run(Mode::Cleanup, Some(&d), &hint, DeletionPolicy::Delete, &observed, &[]);
    assert_eq!(p.actions, vec![Action::DeleteRoleDefinition { id: d.id(), role_name: d.role_name.clone() }]);
}

#[test]
fn a_definition_still_assigned_is_never_deleted() {
    let d = desired_role(&custom_role_spec("Registry reader", &["Microsoft.Devices/IotHubs/devices/read"]));
    let user = foreign(hub_id().scope(), d.guid, SYNC, "55555555-2222-4333-8444-555555555555");
    let p = run(
        Mode::Cleanup,
        Some(&d),
        &[RoleDefinitionId::new(sub_scope(), d.guid)],
        DeletionPolicy::Delete,
        &[d.definition()],
        std::slice::from_ref(&user),
    );
    assert_eq!(p.actions, vec![]);
    assert_eq!(p.findings.len(), 1);
    assert_eq!(
        (p.findings[0].severity, p.findings[0].reason),
        (Severity::Blocker, Reason::RoleDefinitionHasAssignments)
    );
    assert_eq!(p.findings[0].resource_ids, vec![user.id.to_string()]);
}

#[test]
fn cleanup_deletes_the_unused_definition_or_orphans_it() {
    let d = desired_role(&custom_role_spec("Registry reader", &["Microsoft.Devices/IotHubs/devices/read"]));
    let p = run(Mode::Cleanup, Some(&d), &[], DeletionPolicy::Delete, &[d.definition()], &[]);
    assert_eq!(
        p.actions,
        vec![Action::DeleteRoleDefinition {
            id: RoleDefinitionId::new(sub_scope(), d.guid),
            role_name: "Registry reader".into(),
        }]
    );
    let p = run(Mode::Cleanup, Some(&d), &[], DeletionPolicy::Orphan, &[d.definition()], &[]);
    assert_eq!(p.actions, vec![]);
    assert_eq!(p.findings[0].reason, Reason::Orphaned);
    // Never created: nothing to do.
    assert_eq!(run(Mode::Cleanup, Some(&d), &[], DeletionPolicy::Delete, &[], &[]), Plan::default());
}

/// Whether planning must read who uses the definitions: only when something may be deleted.
#[test]
fn definitions_may_be_deleted_only_on_cleanup_or_for_a_leftover_and_never_when_orphaned() {
    use iothub_access_operator::plan::custom_role::may_delete;
    let g = Uuid::new_v4();
    let id = |guid| RoleDefinitionId::new(sub_scope(), guid);
    let old = id(Uuid::new_v4());
    for (mode, owned, desired, policy, want, why) in [
        (Mode::Apply, vec![], Some(g), DeletionPolicy::Delete, false, "nothing owned"),
        (Mode::Apply, vec![id(g)], Some(g), DeletionPolicy::Delete, false, "owns only the desired one"),
        (Mode::Apply, vec![id(g), old.clone()], Some(g), DeletionPolicy::Delete, true, "a leftover (renamed role)"),
        (Mode::Apply, vec![old.clone()], None, DeletionPolicy::Delete, true, "owned, nothing desired"),
        (Mode::Cleanup, vec![], Some(g), DeletionPolicy::Delete, true, "cleanup"),
        (Mode::Cleanup, vec![id(g)], Some(g), DeletionPolicy::Orphan, false, "orphaned on cleanup"),
        (Mode::Apply, vec![old.clone()], Some(g), DeletionPolicy::Orphan, false, "orphaned leftover"),
    ] {
        assert_eq!(may_delete(mode, &owned, desired, policy), want, "{why}");
    }
}

/// What the resource holds after its writes: a failed create owns nothing, a failed update of
/// a definition it owned keeps it, a failed delete keeps the leftover.
#[test]
fn what_a_custom_role_owns_after_its_writes() {
    use iothub_access_operator::apply::{Applied, wrote};
    use iothub_access_operator::azure::AzureError;
    use iothub_access_operator::outcome::Outcome;
    use iothub_access_operator::plan::Finding;
    use iothub_access_operator::plan::custom_role::after_apply;
    let d = desired_role(&custom_role_spec("Registry reader", &["Microsoft.Devices/IotHubs/devices/read"]));
    let mine = RoleDefinitionId::new(sub_scope(), d.guid);
    let old = RoleDefinitionId::new(sub_scope(), Uuid::new_v4());
    let put = |create| Action::PutRoleDefinition { scope: sub_scope(), definition: d.definition(), create };
    let delete_old = Action::DeleteRoleDefinition { id: old.clone(), role_name: "Old name".into() };
    let failed = || Outcome::Failed(AzureError::Transient { message: "reset".into() });
    let ok = |action: &Action| wrote(&[Applied::new(action.clone(), Outcome::Done)]).remove(0);
    let bad = |action: &Action| wrote(&[Applied::new(action.clone(), failed())]).remove(0);
    let plan_of = |actions: Vec<Action>| Plan::new(actions, vec![]);
    let blocked = Plan::new(vec![], vec![Finding::new(Severity::Blocker, Reason::RoleNameTaken, "taken", vec![])]);

    let p = plan_of(vec![put(true)]);
    assert_eq!(after_apply(&mine, &[], &p, &[ok(&put(true))]), (Some(mine.clone()), vec![]), "created");
    assert_eq!(after_apply(&mine, &[], &p, &[bad(&put(true))]), (None, vec![]), "create failed: owns nothing");
    let p = plan_of(vec![put(false)]);
    assert_eq!(
        after_apply(&mine, std::slice::from_ref(&mine), &p, &[bad(&put(false))]),
        (Some(mine.clone()), vec![]),
        "a failed update leaves its own definition in place, still its"
    );
    assert_eq!(after_apply(&mine, &[], &blocked, &[]), (None, vec![]), "refused: nothing made");
    assert_eq!(
        after_apply(&mine, std::slice::from_ref(&mine), &plan_of(vec![]), &[]),
        (Some(mine.clone()), vec![]),
        "in sync"
    );
    let owned = [mine.clone(), old.clone()];
    let p = plan_of(vec![delete_old.clone()]);
    assert_eq!(after_apply(&mine, &owned, &p, &[ok(&delete_old)]), (Some(mine.clone()), vec![]), "leftover deleted");
    assert_eq!(
        after_apply(&mine, &owned, &p, &[bad(&delete_old)]),
        (Some(mine.clone()), vec![old.clone()]),
        "a failed delete keeps the leftover owned, to be deleted later"
    );
    let skipped = wrote(&[Applied::new(delete_old.clone(), Outcome::Skipped)]).remove(0);
    assert_eq!(after_apply(&mine, &owned, &p, &[skipped]), (Some(mine), vec![old]), "not attempted: still owned");
}
