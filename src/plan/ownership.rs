//! Who owns an Azure object, and what a resource may do with one it no longer wants. Ownership
//! is proven from Azure's own data and the resource's identity (see `domain::naming`), never taken
//! from status; no grant is revoked while another managed resource still wants it (it is handed
//! over to that one, and the hand-over is written into the grant's tag); and a grant whose maker is
//! gone belongs only to the heir its tag names: one left without an heir (`deletionPolicy: Orphan`,
//! a resource deleted unmanaged or by force) is never taken over, only adopted. Pure, no I/O; the
//! controller and the CLI supply [`Others`].

use super::{Action, Plan, Reason, Wrote};
use crate::domain::naming::{Owner, Tag, legacy_assignment_name, with_tag};
use crate::domain::{Grant, NewRoleAssignment, ObservedAssignment, PrincipalType, RoleAssignmentId};

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
    let grant = a.grant();
    if me.assignment_name(&grant) == a.id.name {
        return Claim::Mine;
    }
    if let Some(o) = a.description.as_deref().and_then(Owner::from_tag)
        && o.instance.eq_ignore_ascii_case(&me.instance)
        && o.assignment_name(&grant) == a.id.name
    {
        return Claim::MadeFor(o);
    }
    if legacy_assignment_name(&grant) == a.id.name { Claim::Legacy } else { Claim::Foreign }
}

/// The resource `a`'s tag says it was handed over to, if any (proven only together with
/// [`Claim::MadeFor`]).
pub fn heir(a: &ObservedAssignment) -> Option<Owner> {
    a.description.as_deref().and_then(Tag::parse).and_then(|t| t.heir)
}

/// May `me` take `a` over: made for a resource that is gone, which handed it over to `me`?
pub fn may_take_over(me: &Owner, a: &ObservedAssignment, others: &dyn Others) -> bool {
    match claim(me, a) {
        Claim::MadeFor(o) => !others.is_live(&o) && heir(a).is_some_and(|h| h == *me),
        _ => false,
    }
}

/// The other live resources the operator manages, as far as it can see them.
pub trait Others {
    /// Another resource (not `me`) that wants `grant` now, if any: one that is managed, valid,
    /// and whose namespace may manage the grant's scope. When that cannot be known (a cache not
    /// synced), some resource is said to: fail closed.
    fn wanting(&self, me: &Owner, grant: &Grant) -> Option<Owner>;
    /// Does `owner` still exist? When it cannot be known (a namespace the operator does not
    /// watch), the answer is yes: fail closed.
    fn is_live(&self, owner: &Owner) -> bool;
}

/// No other resource (a table test's world, or a single manifest).
pub struct NoOthers;

impl Others for NoOthers {
    fn wanting(&self, _: &Owner, _: &Grant) -> Option<Owner> {
        None
    }
    fn is_live(&self, _: &Owner) -> bool {
        false
    }
}

/// One resource's want.
pub type Want = (Owner, Grant);

/// A fixed list of wants: for tests and for the CLI's manifests.
pub struct Wants(pub Vec<Want>);

impl Others for Wants {
    fn wanting(&self, me: &Owner, grant: &Grant) -> Option<Owner> {
        self.0.iter().find(|(o, g)| o != me && g == grant).map(|(o, _)| o.clone())
    }
    fn is_live(&self, owner: &Owner) -> bool {
        self.0.iter().any(|(o, _)| o == owner)
    }
}

/// What to do with an assignment `me` no longer wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// Proven `me`'s (or handed over to `me` by a resource that is gone) and nobody wants it:
    /// delete.
    Delete,
    /// `me`'s, but another resource wants the same grant: leave it to that one.
    HandOver(Owner),
    /// Not `me`'s to delete.
    NotMine,
}

/// May `me` delete `a`? `taken_over` allows an assignment handed over to `me` by a resource that
/// no longer exists (only for the grant `me` itself wants or wanted).
pub fn release(me: &Owner, a: &ObservedAssignment, others: &dyn Others, taken_over: bool) -> Release {
    let proven = match claim(me, a) {
        Claim::Mine => true,
        Claim::MadeFor(_) => taken_over && may_take_over(me, a, others),
        Claim::Legacy | Claim::Foreign => false,
    };
    if !proven {
        return Release::NotMine;
    }
    match others.wanting(me, &a.grant()) {
        Some(o) => Release::HandOver(o),
        None => Release::Delete,
    }
}

/// The write that hands `a` over to `heir`: the same assignment (a PUT on its name), its tag
/// naming the heir. The tag keeps naming the resource the name was derived for (the proof);
/// `None` when the tag says so already, or the principal's type is one a spec cannot name.
/// With `heir == maker` (a maker that wants its grant again) the tag names no heir any more, so
/// an earlier heir can never take it over.
pub fn hand_over(a: &ObservedAssignment, maker: &Owner, heir: &Owner) -> Option<Action> {
    // The tag names this heir already (no heir named: the maker keeps it).
    if self::heir(a).unwrap_or_else(|| maker.clone()) == *heir {
        return None;
    }
    let principal_type = a.principal_type.as_deref().and_then(PrincipalType::parse)?;
    // Handed back to its maker (it wants the grant again): the plain tag, naming no heir.
    let tag = if heir == maker { maker.tag() } else { maker.handed_over_tag(heir) };
    let description = with_tag(a.description.as_deref(), &tag);
    Some(Action::HandOverRoleAssignment {
        assignment: NewRoleAssignment::of(&a.grant(), a.id.name, principal_type, Some(description)),
        heir: heir.clone(),
    })
}

/// The resource whose name `a` carries (the maker a hand-over's tag must keep naming).
pub fn maker(me: &Owner, a: &ObservedAssignment) -> Option<Owner> {
    match claim(me, a) {
        Claim::Mine => Some(me.clone()),
        Claim::MadeFor(o) => Some(o),
        Claim::Legacy | Claim::Foreign => None,
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

/// Ownership after the writes of `plan` (`wrote`: each action with how it came out): `derived` is
/// the name the resource derives for its grant, `owned` what it held before and the planner
/// proved (observed in Azure, its own). A refused plan creates nothing; a failed create leaves
/// ownership as it was; a grant handed over to this resource by one that is gone (taken over)
/// becomes this one's; an equal grant under another name is adopted, never owned; an owned
/// assignment stops being owned once its delete succeeded, or once it was handed over.
pub fn after_apply(
    plan: &Plan,
    derived: RoleAssignmentId,
    owned: &[RoleAssignmentId],
    wrote: &[(Action, Wrote)],
) -> Held {
    let desired_id = named_by(plan, Reason::TakenOver).unwrap_or(derived);
    let mut owned_now = owned.to_vec();
    let mut adopted = named_by(plan, Reason::AdoptedExisting);
    let mut present = adopted.is_none() && plan.blockers().next().is_none();
    for (action, outcome) in wrote {
        match (action, outcome) {
            (Action::CreateRoleAssignment(_), Wrote::Done) => present = true,
            (Action::CreateRoleAssignment(_), Wrote::Adopted(id)) => {
                adopted = Some(id.clone());
                present = false;
            }
            (Action::CreateRoleAssignment(_), Wrote::NotDone) => present = false,
            (Action::DeleteRoleAssignment { id }, Wrote::Done) => owned_now.retain(|x| x != id),
            // Handed over: no longer this one's; handed back (the grant it wants): still its own.
            (Action::HandOverRoleAssignment { assignment, .. }, Wrote::Done) if assignment.id != desired_id => {
                owned_now.retain(|x| *x != assignment.id)
            }
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
    use uuid::Uuid;

    use super::*;
    use crate::domain::naming::tagged_description;
    use crate::domain::{RoleAssignmentId, Scope};

    const P: &str = "0b7e4f3a-9c1d-4e2b-8a6f-5d3c2b1a0f9e";

    fn scope() -> Scope {
        Scope::parse("/subscriptions/5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a/resourceGroups/rg/providers/Microsoft.Devices/IotHubs/h").unwrap()
    }

    fn role() -> Uuid {
        Uuid::parse_str("b447c946-2db7-41ec-983d-d8bf3b1c77e3").unwrap()
    }

    fn grant() -> Grant {
        Grant::new(scope(), role(), P)
    }

    fn made_by(owner: &Owner) -> ObservedAssignment {
        ObservedAssignment {
            id: RoleAssignmentId { scope: scope(), name: owner.assignment_name(&grant()) },
            role_definition: role(),
            principal_id: P.into(),
            principal_type: Some("ServicePrincipal".into()),
            description: Some(tagged_description(None, owner)),
            condition: None,
        }
    }

    fn handed_over(maker: &Owner, heir: &Owner) -> ObservedAssignment {
        let mut a = made_by(maker);
        a.description = Some(maker.handed_over_tag(heir));
        a
    }

    fn want(o: &Owner) -> Want {
        (o.clone(), grant())
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
        legacy.id.name = legacy_assignment_name(&grant());
        assert_eq!(claim(&a, &legacy), Claim::Legacy);
    }

    #[test]
    fn the_release_table() {
        let a = Owner::new("c1", "team-a", "reader");
        let b = Owner::new("c1", "team-b", "copy");
        let c = Owner::new("c1", "team-c", "other");
        let mine = made_by(&a);
        let to_b = handed_over(&a, &b);
        // (who releases, which grant, what others exist, taken over?, expected)
        let cases: Vec<(&Owner, &ObservedAssignment, Vec<Want>, bool, Release)> = vec![
            (&a, &mine, vec![], false, Release::Delete),
            (&a, &mine, vec![want(&b)], false, Release::HandOver(b.clone())),
            // b copied the grant: deleting b never touches a's grant.
            (&b, &mine, vec![want(&a)], true, Release::NotMine),
            (&b, &mine, vec![want(&a)], false, Release::NotMine),
            // a is gone and handed the grant over to b: b may delete it once nobody else wants it.
            (&b, &to_b, vec![], true, Release::Delete),
            (&b, &to_b, vec![], false, Release::NotMine),
            (&b, &to_b, vec![want(&c)], true, Release::HandOver(c.clone())),
            // a is gone and left it without an heir (orphaned, or deleted by force): nobody's.
            (&b, &mine, vec![], true, Release::NotMine),
            // Handed over to b, never to c.
            (&c, &to_b, vec![], true, Release::NotMine),
            // While a lives, the heir does not own it yet.
            (&b, &to_b, vec![want(&a)], true, Release::NotMine),
        ];
        for (who, grant, others, taken_over, expected) in cases {
            assert_eq!(release(who, grant, &Wants(others.clone()), taken_over), expected, "{who} with {others:?}");
        }
        let mut foreign = mine.clone();
        foreign.id.name = Uuid::from_u128(7);
        assert_eq!(release(&a, &foreign, &NoOthers, true), Release::NotMine);
    }

    #[test]
    fn a_hand_over_rewrites_only_the_tag_and_is_written_once() {
        let (a, b) = (Owner::new("c1", "team-a", "reader"), Owner::new("c1", "team-b", "copy"));
        let mut mine = made_by(&a);
        mine.description = Some(tagged_description(Some("telemetry"), &a));
        let Some(Action::HandOverRoleAssignment { assignment, heir }) = hand_over(&mine, &a, &b) else {
            panic!("a hand-over")
        };
        assert_eq!((assignment.id.clone(), heir), (mine.id.clone(), b.clone()));
        assert_eq!(
            assignment.description.as_deref(),
            Some("telemetry [managed by iothub-access-operator c1 team-a/reader for team-b/copy]")
        );
        let mut written = mine.clone();
        written.description = assignment.description;
        assert_eq!(hand_over(&written, &a, &b), None, "already handed over to b");
        assert_eq!(claim(&b, &written), Claim::MadeFor(a), "the name still proves the maker");
    }

    fn id(n: &str) -> RoleAssignmentId {
        RoleAssignmentId { scope: scope(), name: uuid::Uuid::parse_str(n).unwrap() }
    }

    fn create(i: &RoleAssignmentId) -> Action {
        Action::CreateRoleAssignment(NewRoleAssignment {
            id: i.clone(),
            role_definition_id: crate::domain::RoleDefinitionId::new(scope(), role()),
            principal_id: P.into(),
            principal_type: PrincipalType::User,
            description: None,
        })
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
        let done = |a: Action, o: Wrote| (a, o);
        let del = |i: &RoleAssignmentId| Action::DeleteRoleAssignment { id: i.clone() };
        let failed = || Wrote::NotDone;
        // (case, plan, owned before, applied, expected)
        type Row = (&'static str, Plan, Vec<RoleAssignmentId>, Vec<(Action, Wrote)>, Held);
        let table: Vec<Row> = vec![
            (
                "created",
                plan(vec![create(&mine)], vec![]),
                vec![],
                vec![done(create(&mine), Wrote::Done)],
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
                vec![done(create(&mine), Wrote::Adopted(other.clone()))],
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
                vec![done(create(&mine), Wrote::Done), done(del(&old), Wrote::Done)],
                Held { owned: vec![mine.clone()], adopted: None, assignment: Some(mine.clone()) },
            ),
            (
                "delete failed: still owned",
                plan(vec![create(&mine), del(&old)], vec![]),
                vec![old.clone()],
                vec![done(create(&mine), Wrote::Done), done(del(&old), failed())],
                Held { owned: vec![old.clone(), mine.clone()], adopted: None, assignment: Some(mine.clone()) },
            ),
        ];
        for (case, p, owned, applied, want) in table {
            assert_eq!(after_apply(&p, mine.clone(), &owned, &applied), want, "{case}");
        }
    }
}
