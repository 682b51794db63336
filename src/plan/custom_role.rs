//! Planning one `IotHubCustomRole`: create or update the definition (permissions, description,
//! assignable scopes); refuse a role name another definition holds (another namespace's, an
//! earlier version's, anyone's: never an update); delete only definitions whose GUID this
//! resource derives (status only hints where to look); never delete a definition that
//! assignments still use (a finding, not an action). Pure, no I/O.

use uuid::Uuid;

use super::{Action, Finding, Mode, Plan, Reason, Severity, Wrote};
use crate::crd::DeletionPolicy;
use crate::desire::DesiredCustomRole;
use crate::domain::naming::{Owner, legacy_definition_name};
use crate::domain::{ObservedAssignment, RoleDefinition, RoleDefinitionId, RoleType};

/// Everything the planner needs for one custom role resource.
pub struct CustomRoleInput<'a> {
    pub mode: Mode,
    /// The desired definition (in cleanup: the one the spec names, if the spec is valid).
    pub desired: Option<&'a DesiredCustomRole>,
    /// Who asks: only definitions whose GUID this identity derives are ever changed or deleted.
    pub me: &'a Owner,
    /// Definitions status says this resource created, each with the scope it lives at: a hint of
    /// where to look, proven against `me` before anything is deleted.
    pub owned: &'a [RoleDefinitionId],
    pub deletion_policy: DeletionPolicy,
    /// Custom role definitions Azure has that matter: the desired GUID, the owned ones, and
    /// those with the desired role name.
    pub observed: &'a [RoleDefinition],
    /// Role assignments that may use these definitions.
    pub assignments: &'a [ObservedAssignment],
}

fn same_definition(a: &RoleDefinition, d: &DesiredCustomRole) -> bool {
    let set = |v: &[String]| {
        v.iter().map(|s| s.trim_end_matches('/').to_ascii_lowercase()).collect::<std::collections::BTreeSet<_>>()
    };
    a.role_name == d.role_name
        && a.description == d.description
        && a.permissions.len() == 1
        && a.permissions[0].equivalent(&d.permission)
        && set(&a.assignable_scopes) == set(&d.assignable_scopes.iter().map(ToString::to_string).collect::<Vec<_>>())
}

fn users(assignments: &[ObservedAssignment], guid: Uuid) -> Vec<String> {
    assignments.iter().filter(|a| a.role_definition == guid).map(|a| a.id.to_string()).collect()
}

/// Whether planning may delete definitions (cleanup, or a leftover besides the desired one), so
/// the assignments that could use them must be read first.
pub fn may_delete(mode: Mode, owned: &[RoleDefinitionId], desired: Option<Uuid>, policy: DeletionPolicy) -> bool {
    policy == DeletionPolicy::Delete && (mode == Mode::Cleanup || owned.iter().any(|o| Some(o.guid) != desired))
}

/// What a custom role resource holds after its plan was written: the definition that is its
/// spec (when present or previously owned: a failed update leaves it in place, still ours) and
/// the leftovers it still owns (a delete that failed keeps one).
pub fn after_apply(
    desired: &RoleDefinitionId,
    owned: &[RoleDefinitionId],
    plan: &Plan,
    wrote: &[(Action, Wrote)],
) -> (Option<RoleDefinitionId>, Vec<RoleDefinitionId>) {
    let owned_before = owned.iter().any(|o| o.guid == desired.guid);
    let mut present = plan.blockers().next().is_none();
    let mut leftovers = owned.to_vec();
    for (action, outcome) in wrote {
        match (action, outcome) {
            (Action::PutRoleDefinition { .. }, Wrote::NotDone) => present = false,
            (Action::DeleteRoleDefinition { id, .. }, Wrote::Done) => leftovers.retain(|x| x.guid != id.guid),
            _ => {}
        }
    }
    leftovers.retain(|x| x.guid != desired.guid);
    ((present || owned_before).then(|| desired.clone()), leftovers)
}

/// Plan one custom role resource.
pub fn plan(input: &CustomRoleInput<'_>) -> Plan {
    let mut actions = Vec::new();
    let mut findings = Vec::new();
    let find = |guid: Uuid| input.observed.iter().find(|r| r.guid == guid && r.role_type == RoleType::CustomRole);
    // Status hints, kept only where the GUID is the one this resource derives.
    let mine = input.me.definition_name();
    let mut ours: Vec<RoleDefinitionId> = input.owned.iter().filter(|o| o.guid == mine).cloned().collect();
    if input.mode == Mode::Apply
        && let Some(d) = input.desired
    {
        match find(d.guid) {
            Some(existing) if same_definition(existing, d) => {}
            Some(_) => actions.push(Action::PutRoleDefinition {
                scope: d.scope.clone(),
                definition: d.definition(),
                create: false,
            }),
            None => {
                match input.observed.iter().find(|r| r.guid != d.guid && r.role_name.eq_ignore_ascii_case(&d.role_name))
                {
                    Some(taken) => {
                        let legacy = taken.guid == legacy_definition_name(&d.subscription_id, &d.role_name);
                        let whose = if legacy {
                            "made by an earlier version of this operator, whose names prove no owner: delete it in Azure (after moving its assignments) or choose another roleName".to_string()
                        } else {
                            "not created by this resource; role names are unique per tenant: choose another roleName or remove that role".to_string()
                        };
                        findings.push(Finding::new(
                            Severity::Blocker,
                            Reason::RoleNameTaken,
                            format!(
                                "a role named '{}' already exists in the tenant ({}), {whose}",
                                taken.role_name, taken.guid
                            ),
                            vec![taken.guid.to_string()],
                        ))
                    }
                    None => actions.push(Action::PutRoleDefinition {
                        scope: d.scope.clone(),
                        definition: d.definition(),
                        create: true,
                    }),
                }
            }
        }
        // Keep the desired one; anything else proven ours is a leftover.
        ours.retain(|o| o.guid != d.guid);
    } else if let Some(d) = input.desired {
        ours.push(d.id());
    }
    ours.sort_by_key(|o| o.guid);
    ours.dedup_by_key(|o| o.guid);
    if input.mode == Mode::Cleanup && input.deletion_policy == DeletionPolicy::Orphan {
        let present: Vec<String> = ours.iter().filter(|o| find(o.guid).is_some()).map(|o| o.guid.to_string()).collect();
        if !present.is_empty() {
            findings.push(Finding::new(
                Severity::Info,
                Reason::Orphaned,
                "deletionPolicy is Orphan: the role definition stays in Azure",
                present,
            ));
        }
        return Plan::new(actions, findings);
    }
    for id in ours {
        let Some(existing) = find(id.guid) else { continue };
        let used_by = users(input.assignments, id.guid);
        if used_by.is_empty() {
            actions.push(Action::DeleteRoleDefinition { id, role_name: existing.role_name.clone() });
        } else {
            let severity = if input.mode == Mode::Cleanup { Severity::Blocker } else { Severity::Warning };
            findings.push(Finding::new(
                severity,
                Reason::RoleDefinitionHasAssignments,
                format!(
                    "role '{}' is still used by {} role assignment(s); it is deleted once they are gone (delete the IotHubRoleAssignments that use it first)",
                    existing.role_name,
                    used_by.len()
                ),
                used_by,
            ));
        }
    }
    Plan::new(actions, findings)
}
