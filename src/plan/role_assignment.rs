//! Planning one `IotHubRoleAssignment`: create when missing, nothing in steady state, make the
//! new assignment before deleting the old one when principal, role or scope changed, adopt an
//! equal assignment that exists under another name, delete only what the resource provably owns
//! (and no other resource wants: `ownership`, which hands it over instead), grant only a role whose
//! definition as Azure holds it passes (revoking a grant this resource made whose role no longer
//! does), and report least-privilege findings. Pure, no I/O.

use uuid::Uuid;

use super::ownership::{self, Claim, Others, Release};
use super::{Action, Finding, Mode, Plan, Reason, RoleCatalog, Severity};
use crate::crd::DeletionPolicy;
use crate::desire::DesiredAssignment;
use crate::domain::ids::ScopeLevelName;
use crate::domain::naming::{Owner, tagged_description};
use crate::domain::{NewRoleAssignment, ObservedAssignment};

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
    /// Role definitions as Azure holds them: the desired role's (read right before a grant,
    /// whatever the spec names), and the principal's other roles for the least-privilege checks.
    /// A desired role Azure does not hold yet (a custom role this same plan creates) is judged on
    /// its spec.
    pub roles: &'a dyn RoleCatalog,
    /// Roles the cluster admin allows beyond IoT Hub data access (`--allowed-role`).
    pub allowed_roles: &'a [Uuid],
    /// The `IotHubCustomRole` the desired role was made for, when it is one of this operator
    /// instance's: only that resource's namespace may grant it.
    pub role_made_for: Option<Owner>,
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
    let me = input.me;
    let grant = desired.grant();
    let existing = input.observed.iter().find(|o| o.is(&grant));
    if let Some(refusal) = not_grantable(input, desired) {
        // Nothing is granted; a grant this resource made for this role is revoked, not kept.
        let mut actions = Vec::new();
        let mut findings = vec![refusal];
        if let Some(e) = existing
            && (ownership::claim(me, e) == Claim::Mine || ownership::may_take_over(me, e, input.others))
        {
            actions.push(Action::DeleteRoleAssignment { id: e.id.clone() });
            findings.push(Finding::new(
                Severity::Blocker,
                Reason::GrantRevoked,
                format!(
                    "the role assignment {} this resource made is revoked: its role no longer passes the role check",
                    e.id
                ),
                vec![e.id.to_string()],
            ));
        }
        return Plan::new(actions, findings);
    }
    let mut actions = Vec::new();
    let mut findings = Vec::new();
    match existing.map(|e| (e, ownership::claim(me, e))) {
        Some((e, Claim::Mine)) => {
            // Handed over earlier and wanted again: taken back, so the heir its tag names can
            // never take it over (and delete it) once this resource is gone.
            if let Some(back) = ownership::hand_over(e, me, me) {
                actions.push(back);
            }
        }
        Some((e, Claim::MadeFor(o))) if ownership::may_take_over(me, e, input.others) => {
            findings.push(Finding::new(
                Severity::Info,
                Reason::TakenOver,
                format!(
                    "the assignment {} was made for {o}, which handed it over to this resource and no longer exists; this resource now owns it",
                    e.id
                ),
                vec![e.id.to_string()],
            ))
        }
        Some((e, claim)) => {
            let why = match claim {
                Claim::MadeFor(o) if input.others.is_live(&o) => format!("made for {o}, which still wants it"),
                Claim::MadeFor(o) => match ownership::heir(e) {
                    Some(h) => format!("made for {o}, which no longer exists and handed it over to {h}"),
                    None => format!(
                        "made for {o}, which no longer exists and left it without handing it over (orphaned, or deleted unmanaged): it belongs to nobody"
                    ),
                },
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
        None => actions.push(Action::CreateRoleAssignment(NewRoleAssignment::of(
            &grant,
            desired.name,
            desired.principal_type,
            Some(tagged_description(desired.description.as_deref(), me)),
        ))),
    }
    // What this resource made earlier for a grant it no longer wants (principal, role or scope
    // changed): deleted once the new one exists, or handed over to a resource that wants it.
    for o in input.observed {
        if existing.is_some_and(|e| e.id == o.id) {
            continue;
        }
        match ownership::release(me, o, input.others, false) {
            Release::Delete => actions.push(Action::DeleteRoleAssignment { id: o.id.clone() }),
            Release::HandOver(to) => hand_over(me, o, &to, &mut actions, &mut findings),
            Release::NotMine => {}
        }
    }
    findings.extend(least_privilege(input, desired));
    Plan::new(actions, findings)
}

/// Leave `o` to `to`: the write naming the heir (when not written yet) and the finding.
fn hand_over(me: &Owner, o: &ObservedAssignment, to: &Owner, actions: &mut Vec<Action>, findings: &mut Vec<Finding>) {
    if let Some(maker) = ownership::maker(me, o)
        && let Some(write) = ownership::hand_over(o, &maker, to)
    {
        actions.push(write);
    }
    findings.push(Finding::new(
        Severity::Info,
        Reason::HandedOver,
        format!("{} is left in Azure: {to} wants the same grant", o.id),
        vec![o.id.to_string()],
    ))
}

/// Only IoT Hub access is granted: the definition as Azure holds it (a role Azure does not hold
/// yet: its spec) must pass [`RoleDefinition::grantable`](crate::domain::RoleDefinition::grantable)
/// unless the admin allowed the role; an unknown definition is refused too (fail closed), and so is
/// a custom role another namespace's `IotHubCustomRole` made. Nothing is created then.
fn not_grantable(input: &AssignmentInput<'_>, desired: &DesiredAssignment) -> Option<Finding> {
    let definition = input.roles.role_definition(desired.role.guid).or_else(|| desired.role.definition.clone());
    if let Some(o) = input.role_made_for.clone().or_else(|| made_for(input.me, desired, definition.as_ref()))
        && !o.namespace.eq_ignore_ascii_case(&input.me.namespace)
    {
        return Some(Finding::new(
            Severity::Blocker,
            Reason::CustomRoleOfAnotherNamespace,
            format!(
                "role definition {} is the custom role of IotHubCustomRole {o}, made for namespace {}: only that namespace's resources may grant it; define an IotHubCustomRole in this namespace and reference it with customRoleRef",
                desired.role.guid, o.namespace
            ),
            vec![desired.role_definition_id().to_string()],
        ));
    }
    if input.allowed_roles.contains(&desired.role.guid) {
        return None;
    }
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

/// The `IotHubCustomRole` a definition was made for, proven from Azure's copy: its description's
/// tag names an owner of this operator instance whose derived GUID is the definition's own (a tag
/// naming anyone else cannot be forged into a definition of that GUID). Seen even when that
/// resource is gone (orphaned, deleted by force) or the cache has not seen it.
fn made_for(
    me: &Owner,
    desired: &DesiredAssignment,
    definition: Option<&crate::domain::RoleDefinition>,
) -> Option<Owner> {
    let o = Owner::from_tag(&definition?.description)?;
    (o.instance.eq_ignore_ascii_case(&me.instance) && o.definition_name() == desired.role.guid).then_some(o)
}

fn plan_cleanup(input: &AssignmentInput<'_>) -> Plan {
    let me = input.me;
    let mut present: Vec<&ObservedAssignment> = Vec::new();
    let mut actions = Vec::new();
    let mut findings = Vec::new();
    for o in input.observed {
        // The grant this resource wants may have been handed over to it by a resource that is gone.
        let taken_over = input.desired.is_some_and(|d| o.is(&d.grant()));
        match ownership::release(me, o, input.others, taken_over) {
            Release::Delete => present.push(o),
            Release::HandOver(to) => hand_over(me, o, &to, &mut actions, &mut findings),
            Release::NotMine => {}
        }
    }
    if input.deletion_policy == DeletionPolicy::Orphan {
        if !present.is_empty() {
            findings.push(Finding::new(
                Severity::Info,
                Reason::Orphaned,
                "deletionPolicy is Orphan: the role assignment stays in Azure, owned by nobody (no other resource takes it over)",
                present.iter().map(|o| o.id.to_string()).collect(),
            ));
        }
        return Plan::new(actions, findings);
    }
    actions.extend(present.into_iter().map(|o| Action::DeleteRoleAssignment { id: o.id.clone() }));
    Plan::new(actions, findings)
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
