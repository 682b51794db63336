//! Planning one `IotHubRoleAssignment`: create when missing, nothing in steady state, make the
//! new assignment before deleting the old one when principal, role or scope changed, adopt an
//! equal assignment that exists under another name, delete only what the resource provably owns
//! (and no other resource wants: `ownership`), and report least-privilege findings. Pure, no I/O.

use uuid::Uuid;

use super::ownership::{self, Claim, Others, Release};
use super::{Action, Finding, Mode, Plan, Reason, RoleCatalog, Severity};
use crate::crd::DeletionPolicy;
use crate::desire::DesiredAssignment;
use crate::domain::ObservedAssignment;
use crate::domain::ids::ScopeLevelName;
use crate::domain::naming::{Owner, tagged_description};

/// Everything the planner needs for one role assignment resource.
pub struct AssignmentInput<'a> {
    pub mode: Mode,
    /// What the spec asks for; in cleanup it names the assignment the spec would have created
    /// (so cleanup finds it even when status was never written), and may be `None` when the
    /// spec is invalid.
    pub desired: Option<&'a DesiredAssignment>,
    /// Who asks: the operator instance and this resource. What it may delete is proven from
    /// this identity and Azure's data (`ownership`), never from status.
    pub me: &'a Owner,
    /// The other resources the operator manages, and what they want.
    pub others: &'a dyn Others,
    pub deletion_policy: DeletionPolicy,
    /// Assignments Azure shows at the scopes involved (the desired scope with inheritance, the
    /// scopes status hints at). Other principals' assignments may be included; only those this
    /// resource can prove are its own are ever deleted.
    pub observed: &'a [ObservedAssignment],
    /// Role definitions: the desired role's when it is not known without Azure (a
    /// `definitionId`), and the principal's other roles for the least-privilege checks.
    pub roles: &'a dyn RoleCatalog,
    /// Roles the cluster admin allows beyond IoT Hub data access (`--allowed-role`).
    pub allowed_roles: &'a [Uuid],
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
    if let Some(refusal) = not_grantable(input, desired) {
        return Plan::new(vec![], vec![refusal]);
    }
    let me = input.me;
    let mut actions = Vec::new();
    let mut findings = Vec::new();
    let existing =
        input.observed.iter().find(|o| o.same_grant(&desired.scope, desired.role.guid, &desired.principal_id));
    match existing.map(|e| (e, ownership::claim(me, e))) {
        Some((_, Claim::Mine)) => {}
        Some((e, Claim::MadeFor(o))) if !input.others.is_live(&o) => findings.push(Finding::new(
            Severity::Info,
            Reason::TakenOver,
            format!("the assignment {} was made for {o}, which no longer exists; this resource now owns it", e.id),
            vec![e.id.to_string()],
        )),
        Some((e, claim)) => {
            let why = match claim {
                Claim::MadeFor(o) => format!("made for {o}, which still wants it"),
                Claim::Legacy => "made by an earlier version of this operator (its name proves no owner)".into(),
                _ => "not made by this operator".into(),
            };
            findings.push(Finding::new(
                Severity::Info,
                Reason::AdoptedExisting,
                format!(
                    "the same role assignment already exists as {} ({why}); it satisfies this resource and is never deleted by it",
                    e.id
                ),
                vec![e.id.to_string()],
            ))
        }
        None => actions.push(Action::CreateRoleAssignment {
            id: desired.id(),
            role_definition_id: desired.role_definition_id(),
            principal_id: desired.principal_id.clone(),
            principal_type: desired.principal_type,
            description: Some(tagged_description(desired.description.as_deref(), me)),
        }),
    }
    // What this resource made earlier for a grant it no longer wants (principal, role or scope
    // changed): deleted once the new one exists, unless another resource wants it.
    for o in input.observed {
        if existing.is_some_and(|e| e.id == o.id) {
            continue;
        }
        match ownership::release(me, o, input.others, false) {
            Release::Delete => actions.push(Action::DeleteRoleAssignment { id: o.id.clone() }),
            Release::HandOver(to) => findings.push(handed_over(o, &to)),
            Release::NotMine => {}
        }
    }
    findings.extend(least_privilege(input, desired));
    Plan::new(actions, findings)
}

fn handed_over(o: &ObservedAssignment, to: &Owner) -> Finding {
    Finding::new(
        Severity::Info,
        Reason::HandedOver,
        format!("{} is left in Azure: {to} wants the same grant", o.id),
        vec![o.id.to_string()],
    )
}

/// Only IoT Hub access is granted: the resolved definition must pass
/// [`RoleDefinition::grantable`](crate::domain::RoleDefinition::grantable) unless the admin
/// allowed the role; an unknown definition is refused too (fail closed). Nothing is created or
/// deleted then.
fn not_grantable(input: &AssignmentInput<'_>, desired: &DesiredAssignment) -> Option<Finding> {
    if input.allowed_roles.contains(&desired.role.guid) {
        return None;
    }
    let definition = desired.role.definition.clone().or_else(|| input.roles.role_definition(desired.role.guid));
    let why = match definition {
        None => format!(
            "role definition {} was not found: the operator grants only roles whose permissions it can check",
            desired.role.guid
        ),
        Some(d) => d.grantable().err()?,
    };
    Some(Finding::new(
        Severity::Blocker,
        Reason::RoleNotGrantable,
        format!(
            "{why}; this operator grants IoT Hub access only (the cluster admin can allow a role with --allowed-role)"
        ),
        vec![desired.role_definition_id().to_string()],
    ))
}

fn plan_cleanup(input: &AssignmentInput<'_>) -> Plan {
    let me = input.me;
    let mut present: Vec<&ObservedAssignment> = Vec::new();
    let mut findings = Vec::new();
    for o in input.observed {
        // The grant this resource wants may have been made for a resource that is gone.
        let taken_over = input.desired.is_some_and(|d| o.same_grant(&d.scope, d.role.guid, &d.principal_id));
        match ownership::release(me, o, input.others, taken_over) {
            Release::Delete => present.push(o),
            Release::HandOver(to) => findings.push(handed_over(o, &to)),
            Release::NotMine => {}
        }
    }
    if input.deletion_policy == DeletionPolicy::Orphan {
        if !present.is_empty() {
            findings.push(Finding::new(
                Severity::Info,
                Reason::Orphaned,
                "deletionPolicy is Orphan: the role assignment stays in Azure",
                present.iter().map(|o| o.id.to_string()).collect(),
            ));
        }
        return Plan::new(vec![], findings);
    }
    Plan::new(present.into_iter().map(|o| Action::DeleteRoleAssignment { id: o.id.clone() }).collect(), findings)
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
