//! Planning one `IotHubRoleAssignment`: create when missing, nothing in steady state, make the
//! new assignment before deleting the old one when principal, role or scope changed, adopt an
//! equal assignment that exists under another name, delete only what the resource owns, and
//! report least-privilege findings. Pure, no I/O.

use super::{Action, Finding, Mode, Plan, Reason, RoleCatalog, Severity};
use crate::crd::DeletionPolicy;
use crate::desire::DesiredAssignment;
use crate::domain::ids::ScopeLevelName;
use crate::domain::{ObservedAssignment, RoleAssignmentId};

/// Everything the planner needs for one role assignment resource.
pub struct AssignmentInput<'a> {
    pub mode: Mode,
    /// What the spec asks for; in cleanup it names the assignment the spec would have created
    /// (so cleanup finds it even when status was never written), and may be `None` when the
    /// spec is invalid.
    pub desired: Option<&'a DesiredAssignment>,
    /// `status.ownedAssignmentIds`: assignments this resource created earlier.
    pub owned: &'a [RoleAssignmentId],
    pub deletion_policy: DeletionPolicy,
    /// Assignments Azure shows at the scopes involved (the desired scope with inheritance, the
    /// owned ids' scopes). Other principals' assignments may be included; they are ignored.
    pub observed: &'a [ObservedAssignment],
    /// Role definitions, for least-privilege checks.
    pub roles: &'a dyn RoleCatalog,
}

fn is_present(observed: &[ObservedAssignment], id: &RoleAssignmentId) -> bool {
    observed.iter().any(|o| o.id.scope == id.scope && o.id.name == id.name)
}

/// Plan one role assignment resource.
pub fn plan(input: &AssignmentInput<'_>) -> Plan {
    match input.mode {
        Mode::Apply => plan_apply(input),
        Mode::Cleanup => plan_cleanup(input),
    }
}

fn plan_apply(input: &AssignmentInput<'_>) -> Plan {
    let Some(desired) = input.desired else {
        return Plan::default();
    };
    let mut actions = Vec::new();
    let mut findings = Vec::new();
    let desired_id = desired.id();
    let existing =
        input.observed.iter().find(|o| o.same_grant(&desired.scope, desired.role.guid, &desired.principal_id));
    match existing {
        Some(e) if e.id.name == desired.name || input.owned.contains(&e.id) => {}
        Some(e) => findings.push(Finding::new(
            Severity::Info,
            Reason::AdoptedExisting,
            format!(
                "the same role assignment already exists as {}; it satisfies this resource and, not being created by it, is never deleted by it",
                e.id
            ),
            vec![e.id.to_string()],
        )),
        None => actions.push(Action::CreateRoleAssignment {
            id: desired_id.clone(),
            role_definition_id: desired.role_definition_id(),
            principal_id: desired.principal_id.clone(),
            principal_type: desired.principal_type,
            description: desired.description.clone(),
        }),
    }
    let satisfied_by = existing.map(|e| e.id.clone()).unwrap_or(desired_id);
    for old in input.owned {
        if *old != satisfied_by && is_present(input.observed, old) {
            actions.push(Action::DeleteRoleAssignment { id: old.clone() });
        }
    }
    findings.extend(least_privilege(input, desired));
    Plan::new(actions, findings)
}

fn plan_cleanup(input: &AssignmentInput<'_>) -> Plan {
    let mut ours: Vec<RoleAssignmentId> = input.owned.to_vec();
    if let Some(d) = input.desired {
        ours.push(d.id());
    }
    let present: Vec<RoleAssignmentId> = ours.into_iter().filter(|id| is_present(input.observed, id)).collect();
    if input.deletion_policy == DeletionPolicy::Orphan {
        let findings = if present.is_empty() {
            vec![]
        } else {
            vec![Finding::new(
                Severity::Info,
                Reason::Orphaned,
                "deletionPolicy is Orphan: the role assignment stays in Azure",
                present.iter().map(ToString::to_string).collect(),
            )]
        };
        return Plan::new(vec![], findings);
    }
    Plan::new(present.into_iter().map(|id| Action::DeleteRoleAssignment { id }).collect(), vec![])
}

fn least_privilege(input: &AssignmentInput<'_>, desired: &DesiredAssignment) -> Vec<Finding> {
    let mut findings = Vec::new();
    let level = desired.scope.level();
    if level != ScopeLevelName::Hub {
        findings.push(Finding::new(
            Severity::Warning,
            Reason::BroaderScopeThanHub,
            format!(
                "assigned at {level} scope {}: the principal gets the role on every hub there, not only on {}; use scope: Hub unless that is intended",
                desired.scope, desired.hub.name
            ),
            vec![desired.scope.to_string()],
        ));
    }
    if let Some(def) = &desired.role.definition
        && def.grants_listkeys()
    {
        findings.push(Finding::new(
            Severity::Warning,
            Reason::PrincipalHoldsListKeys,
            format!(
                "role '{}' grants Microsoft.Devices/iotHubs/listkeys/action: the principal can read every shared access key of the hub",
                def.role_name
            ),
            vec![],
        ));
    }
    for o in input.observed {
        let applies = o.id.scope.covers_hub(&desired.hub) != Some(false);
        if !applies
            || !o.principal_id.eq_ignore_ascii_case(&desired.principal_id)
            || o.role_definition == desired.role.guid
        {
            continue;
        }
        if let Some(def) = input.roles.role_definition(o.role_definition)
            && def.grants_listkeys()
        {
            findings.push(Finding::new(
                Severity::Warning,
                Reason::PrincipalHoldsListKeys,
                format!(
                    "the principal also holds '{}' (assignment {}), which grants Microsoft.Devices/iotHubs/listkeys/action: it can read every shared access key of the hub, so this data role is not its only access",
                    def.role_name, o.id
                ),
                vec![o.id.to_string()],
            ));
        }
    }
    findings
}
