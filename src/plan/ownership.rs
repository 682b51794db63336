//! Who owns an Azure object, and what a resource may do with one it no longer wants. Ownership
//! is proven from Azure's own data and the resource's identity (see `domain::naming`), never taken
//! from status; and no grant is revoked while another managed resource still wants it (it is
//! left for that one: handed over). Pure, no I/O; the controller and the CLI supply [`Others`].

use uuid::Uuid;

use super::{Action, Plan, Reason};
use crate::apply::{Applied, Outcome};
use crate::domain::naming::{Owner, legacy_assignment_name};
use crate::domain::{ObservedAssignment, RoleAssignmentId, Scope};

/// What the operator can prove about an existing role assignment, from `me`'s point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Its name is the one `me` derives for it: `me` created it.
    Mine,
    /// This operator instance created it for another resource (the description's tag names it
    /// and the name proves it).
    MadeFor(Owner),
    /// Created by an earlier version of the operator (content-only name): proves nothing.
    Legacy,
    /// Not the operator's (made by hand, by another tool or another operator instance).
    Foreign,
}

/// The claim `me` can make on `a`.
pub fn claim(me: &Owner, a: &ObservedAssignment) -> Claim {
    let (scope, role, principal) = (&a.id.scope, a.role_definition, a.principal_id.as_str());
    if me.assignment_name(scope, role, principal) == a.id.name {
        return Claim::Mine;
    }
    if let Some(o) = a.description.as_deref().and_then(Owner::from_tag)
        && o.instance.eq_ignore_ascii_case(&me.instance)
        && o.assignment_name(scope, role, principal) == a.id.name
    {
        return Claim::MadeFor(o);
    }
    if legacy_assignment_name(scope, role, principal) == a.id.name { Claim::Legacy } else { Claim::Foreign }
}

/// The other live resources the operator manages, as far as it can see them.
pub trait Others {
    /// Another live resource (not `me`) that wants this grant, if any.
    fn wanting(&self, me: &Owner, scope: &Scope, role: Uuid, principal_id: &str) -> Option<Owner>;
    /// Does `owner` still exist? When it cannot be known (a namespace the operator does not
    /// watch), the answer is yes: fail closed.
    fn is_live(&self, owner: &Owner) -> bool;
}

/// No other resource (a table test's world, or a single manifest).
pub struct NoOthers;

impl Others for NoOthers {
    fn wanting(&self, _: &Owner, _: &Scope, _: Uuid, _: &str) -> Option<Owner> {
        None
    }
    fn is_live(&self, _: &Owner) -> bool {
        false
    }
}

/// One resource's want: (owner, scope, role definition, principal id).
pub type Want = (Owner, Scope, Uuid, String);

/// A fixed list of wants: for tests and for the CLI's manifests.
pub struct Wants(pub Vec<Want>);

impl Others for Wants {
    fn wanting(&self, me: &Owner, scope: &Scope, role: Uuid, principal_id: &str) -> Option<Owner> {
        self.0
            .iter()
            .find(|(o, s, r, p)| o != me && s == scope && *r == role && p.eq_ignore_ascii_case(principal_id))
            .map(|(o, ..)| o.clone())
    }
    fn is_live(&self, owner: &Owner) -> bool {
        self.0.iter().any(|(o, ..)| o == owner)
    }
}

/// What to do with an assignment `me` no longer wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// Proven `me`'s (or made for a resource that is gone and nobody wants it): delete.
    Delete,
    /// `me`'s, but another resource wants the same grant: leave it to that one.
    HandOver(Owner),
    /// Not `me`'s to delete.
    NotMine,
}

/// May `me` delete `a`? `taken_over` allows an assignment made for a resource that no longer
/// exists (only for the grant `me` itself wants or wanted).
pub fn release(me: &Owner, a: &ObservedAssignment, others: &dyn Others, taken_over: bool) -> Release {
    let proven = match claim(me, a) {
        Claim::Mine => true,
        Claim::MadeFor(o) => taken_over && !others.is_live(&o),
        Claim::Legacy | Claim::Foreign => false,
    };
    if !proven {
        return Release::NotMine;
    }
    match others.wanting(me, &a.id.scope, a.role_definition, &a.principal_id) {
        Some(o) => Release::HandOver(o),
        None => Release::Delete,
    }
}

/// What a role assignment resource holds after its plan was written: the assignments it owns
/// (a hint for the next reconcile, never an authority), the one it adopted, and the one that
/// grants its spec now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub owned: Vec<RoleAssignmentId>,
    pub adopted: Option<RoleAssignmentId>,
    pub assignment: Option<RoleAssignmentId>,
}

/// The assignment a finding of `reason` names.
pub fn named_by(plan: &Plan, reason: Reason) -> Option<RoleAssignmentId> {
    let finding = plan.findings.iter().find(|f| f.reason == reason)?;
    RoleAssignmentId::parse(finding.resource_ids.first()?).ok()
}

/// Ownership after `applied` (the outcomes of `plan`'s writes): `derived` is the name the
/// resource derives for its grant, `owned` what it held before. A refused plan creates nothing; a
/// failed create leaves ownership as it was; a grant made for a resource that is gone (taken
/// over) becomes this one's; an equal grant under another name is adopted, never owned; an
/// owned assignment stops being owned once its delete succeeded.
pub fn after_apply(plan: &Plan, derived: RoleAssignmentId, owned: &[RoleAssignmentId], applied: &[Applied]) -> Held {
    let desired_id = named_by(plan, Reason::TakenOver).unwrap_or(derived);
    let mut owned_now = owned.to_vec();
    let mut adopted = named_by(plan, Reason::AdoptedExisting);
    let mut present = adopted.is_none() && plan.blockers().next().is_none();
    for a in applied {
        match (&a.action, &a.outcome) {
            (Action::CreateRoleAssignment { .. }, Outcome::Done) => present = true,
            (Action::CreateRoleAssignment { .. }, Outcome::Adopted(id)) => {
                adopted = Some(id.clone());
                present = false;
            }
            (Action::CreateRoleAssignment { .. }, _) => present = false,
            (Action::DeleteRoleAssignment { id }, o) if o.is_ok() => owned_now.retain(|x| x != id),
            _ => {}
        }
    }
    if present && !owned_now.contains(&desired_id) {
        owned_now.push(desired_id.clone());
    }
    let assignment = adopted.clone().or_else(|| present.then_some(desired_id));
    Held { owned: owned_now, adopted, assignment }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RoleAssignmentId;
    use crate::domain::naming::tagged_description;

    const P: &str = "0b7e4f3a-9c1d-4e2b-8a6f-5d3c2b1a0f9e";

    fn scope() -> Scope {
        Scope::parse("/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg/providers/Microsoft.Devices/IotHubs/h").unwrap()
    }

    fn role() -> Uuid {
        Uuid::parse_str("b447c946-2db7-41ec-983d-d8bf3b1c77e3").unwrap()
    }

    fn made_by(owner: &Owner) -> ObservedAssignment {
        ObservedAssignment {
            id: RoleAssignmentId { scope: scope(), name: owner.assignment_name(&scope(), role(), P) },
            role_definition: role(),
            principal_id: P.into(),
            principal_type: Some("ServicePrincipal".into()),
            description: Some(tagged_description(None, owner)),
        }
    }

    fn want(o: &Owner) -> Want {
        (o.clone(), scope(), role(), P.into())
    }

    #[test]
    fn ownership_is_proven_by_the_name_never_by_a_tag_alone() {
        let a = Owner::new("c1", "team-a", "reader");
        let b = Owner::new("c1", "team-b", "copy");
        let mine = made_by(&a);
        assert_eq!(claim(&a, &mine), Claim::Mine);
        assert_eq!(claim(&b, &mine), Claim::MadeFor(a.clone()));
        // A forged tag naming team-a on b's grant proves nothing for team-a.
        let mut forged = made_by(&b);
        forged.description = Some(tagged_description(None, &a));
        assert_eq!(claim(&a, &forged), Claim::Foreign);
        // Another cluster's objects are never this instance's.
        assert_eq!(claim(&Owner::new("c2", "team-a", "reader"), &mine), Claim::Foreign);
        let mut legacy = made_by(&a);
        legacy.id.name = legacy_assignment_name(&scope(), role(), P);
        assert_eq!(claim(&a, &legacy), Claim::Legacy);
    }

    #[test]
    fn the_release_table() {
        let a = Owner::new("c1", "team-a", "reader");
        let b = Owner::new("c1", "team-b", "copy");
        let mine = made_by(&a);
        // (who releases, what others exist, taken over?, expected)
        let cases: Vec<(&Owner, Vec<Want>, bool, Release)> = vec![
            (&a, vec![], false, Release::Delete),
            (&a, vec![want(&b)], false, Release::HandOver(b.clone())),
            // b copied the grant: deleting b never touches a's grant.
            (&b, vec![want(&a)], true, Release::NotMine),
            (&b, vec![want(&a)], false, Release::NotMine),
            // a is gone and left the grant to b: b may delete it once nobody else wants it.
            (&b, vec![], true, Release::Delete),
            (&b, vec![], false, Release::NotMine),
        ];
        for (who, others, taken_over, expected) in cases {
            assert_eq!(release(who, &mine, &Wants(others.clone()), taken_over), expected, "{who} with {others:?}");
        }
        let mut foreign = mine.clone();
        foreign.id.name = Uuid::from_u128(7);
        assert_eq!(release(&a, &foreign, &NoOthers, true), Release::NotMine);
    }

    fn id(n: &str) -> RoleAssignmentId {
        RoleAssignmentId { scope: scope(), name: uuid::Uuid::parse_str(n).unwrap() }
    }

    fn create(i: &RoleAssignmentId) -> Action {
        Action::CreateRoleAssignment {
            id: i.clone(),
            role_definition_id: crate::domain::RoleDefinitionId::new(scope(), role()),
            principal_id: P.into(),
            principal_type: crate::crd::PrincipalType::User,
            description: None,
        }
    }

    fn finding(reason: Reason, severity: super::super::Severity, i: &RoleAssignmentId) -> super::super::Finding {
        super::super::Finding::new(severity, reason, "x", vec![i.to_string()])
    }

    #[test]
    fn what_a_resource_holds_after_its_writes() {
        use super::super::Severity::{Blocker, Info};
        let (mine, old, other) = (
            id("11111111-1111-4111-8111-111111111111"),
            id("22222222-2222-4222-8222-222222222222"),
            id("33333333-3333-4333-8333-333333333333"),
        );
        let plan = |actions: Vec<Action>, findings| Plan::new(actions, findings);
        let done = |a: Action, o: Outcome| Applied::new(a, o);
        let del = |i: &RoleAssignmentId| Action::DeleteRoleAssignment { id: i.clone() };
        let failed = || Outcome::Failed(crate::azure::AzureError::Transient { message: "x".into() });
        // (case, plan, owned before, applied, expected)
        type Row = (&'static str, Plan, Vec<RoleAssignmentId>, Vec<Applied>, Held);
        let table: Vec<Row> = vec![
            (
                "created",
                plan(vec![create(&mine)], vec![]),
                vec![],
                vec![done(create(&mine), Outcome::Done)],
                Held { owned: vec![mine.clone()], adopted: None, assignment: Some(mine.clone()) },
            ),
            (
                "steady state",
                plan(vec![], vec![]),
                vec![mine.clone()],
                vec![],
                Held { owned: vec![mine.clone()], adopted: None, assignment: Some(mine.clone()) },
            ),
            (
                "create failed",
                plan(vec![create(&mine)], vec![]),
                vec![],
                vec![done(create(&mine), failed())],
                Held { owned: vec![], adopted: None, assignment: None },
            ),
            (
                "refused",
                plan(vec![], vec![finding(Reason::RoleNotGrantable, Blocker, &mine)]),
                vec![],
                vec![],
                Held { owned: vec![], adopted: None, assignment: None },
            ),
            (
                "adopted on 409",
                plan(vec![create(&mine)], vec![]),
                vec![],
                vec![done(create(&mine), Outcome::Adopted(other.clone()))],
                Held { owned: vec![], adopted: Some(other.clone()), assignment: Some(other.clone()) },
            ),
            (
                "adopted, planned",
                plan(vec![], vec![finding(Reason::AdoptedExisting, Info, &other)]),
                vec![],
                vec![],
                Held { owned: vec![], adopted: Some(other.clone()), assignment: Some(other.clone()) },
            ),
            (
                "taken over",
                plan(vec![], vec![finding(Reason::TakenOver, Info, &other)]),
                vec![],
                vec![],
                Held { owned: vec![other.clone()], adopted: None, assignment: Some(other.clone()) },
            ),
            (
                "make before break",
                plan(vec![create(&mine), del(&old)], vec![]),
                vec![old.clone()],
                vec![done(create(&mine), Outcome::Done), done(del(&old), Outcome::Done)],
                Held { owned: vec![mine.clone()], adopted: None, assignment: Some(mine.clone()) },
            ),
            (
                "delete failed: still owned",
                plan(vec![create(&mine), del(&old)], vec![]),
                vec![old.clone()],
                vec![done(create(&mine), Outcome::Done), done(del(&old), failed())],
                Held { owned: vec![old.clone(), mine.clone()], adopted: None, assignment: Some(mine.clone()) },
            ),
        ];
        for (case, p, owned, applied, want) in table {
            assert_eq!(after_apply(&p, mine.clone(), &owned, &applied), want, "{case}");
        }
    }
}
