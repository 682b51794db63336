//! Shared access planning and the SAS interlock: Allow is never blocked; Deny is refused while a
//! DPS links the hub by key, while a DPS links it by an identity without a data role, while a
//! Device Update instance uses it, while the search failed, or while nobody holds a data role on
//! the hub; a denied hub with such a dependent is a blocker (not Ready), never an action.

use iothub_access_operator::crd::{Access, IotHubSharedAccessSpec};
use iothub_access_operator::desire::{self, DesiredSharedAccess};
use iothub_access_operator::domain::{
    BuiltInRole, Dependents, DependentsObservation as DpsObservation, DpsLink, LinkAuth, ManagedIdentity,
    ObservedAssignment, ObservedDeviceUpdate, ObservedDps, ObservedHub, RoleDefinition, Scope,
};
use iothub_access_operator::plan::shared_access::{
    HubWriteResult, SharedAccessInput, Tell, plan, reads_back, tells, verdict,
};
use iothub_access_operator::plan::{Action, Finding, Plan, Reason, Severity};
use pretty_assertions::assert_eq;

use super::fixtures::*;

fn want(policies: Access) -> DesiredSharedAccess {
    desire::desire_shared_access(&IotHubSharedAccessSpec {
        hub: hub_ref(),
        shared_access_policies: policies,
        device_sas: None,
        module_sas: None,
    })
    .unwrap()
}

fn reader_assignment() -> ObservedAssignment {
    foreign(hub_id().scope(), BuiltInRole::IoTHubDataReader.guid(), TELEMETRY, "66666666-2222-4333-8444-555555555555")
}

const DPS_ID: &str = "/subscriptions/0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e/resourceGroups/rg-platform/providers/Microsoft.Devices/provisioningServices/contoso-dps";
const DPS_MI: &str = "d1d1d1d1-2222-4333-8444-555555555555";
const UAI: &str = "/subscriptions/0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e/resourceGroups/rg-platform/providers/Microsoft.ManagedIdentity/userAssignedIdentities/dps-mi";

fn deps(dps: Vec<ObservedDps>, device_update: Vec<ObservedDeviceUpdate>) -> DpsObservation {
    DpsObservation::Complete(Dependents {
        dps,
        device_update,
        subscriptions: vec![SUB.into()],
        checked_at: "2026-11-30T08:00:00Z".into(),
    })
}

fn one_dps(links: Vec<DpsLink>, identity: Option<ManagedIdentity>) -> ObservedDps {
    ObservedDps { id: DPS_ID.into(), name: "contoso-dps".into(), links, identity, link_types_reported: true }
}

fn dps(links: Vec<DpsLink>) -> DpsObservation {
    deps(vec![one_dps(links, None)], vec![])
}

fn link(host: &str, auth: LinkAuth) -> DpsLink {
    DpsLink { hosts: vec![host.into()], auth }
}

fn key_link(host: &str) -> DpsLink {
    link(host, LinkAuth::Key)
}

fn system_identity() -> ManagedIdentity {
    ManagedIdentity { principal_id: Some(DPS_MI.into()), ..ManagedIdentity::default() }
}

fn run(
    d: &DesiredSharedAccess,
    hub: Option<&ObservedHub>,
    dps: &DpsObservation,
    assignments: &[ObservedAssignment],
) -> Plan {
    let roles: Vec<RoleDefinition> = vec![];
    plan(&SharedAccessInput { desired: d, hub, dependents: dps, hub_assignments: assignments, roles: &roles })
}

fn deny_action() -> Action {
    Action::SetHubAccess { hub: hub_id(), shared_access: Some(Access::Deny), device_sas: None, module_sas: None }
}

#[test]
fn deny_applies_when_nothing_blocks_it_and_steady_state_is_empty() {
    let h = hub(false);
    let p = run(&want(Access::Deny), Some(&h), &dps(vec![]), &[reader_assignment()]);
    assert_eq!(p, Plan { actions: vec![deny_action()], findings: vec![] });
    let h = hub(true);
    assert_eq!(run(&want(Access::Deny), Some(&h), &dps(vec![]), &[reader_assignment()]), Plan::default());
}

#[test]
fn deny_is_refused_while_a_dps_links_the_hub_by_key_in_any_spelling() {
    let h = hub(false);
    for link in [
        key_link("CONTOSO-FLEET-HUB.azure-devices.net"),
        key_link("contoso-fleet-hub.azure-devices.net."),
        // Hubs on the newer gateway: `az iot dps linked-hub create` links the device host name.
        key_link("contoso-fleet-hub.device.azure-devices.net"),
        key_link("contoso-fleet-hub.service.azure-devices.us"),
        DpsLink { hosts: vec!["other".into(), "contoso-fleet-hub.azure-devices.net".into()], auth: LinkAuth::Key },
    ] {
        let p = run(&want(Access::Deny), Some(&h), &dps(vec![link.clone()]), &[reader_assignment()]);
        assert_eq!(p.actions, vec![], "{link:?}");
        assert_eq!(p.findings.len(), 1);
        assert_eq!((p.findings[0].severity, p.findings[0].reason), (Severity::Blocker, Reason::DpsLinked));
        assert_eq!(p.findings[0].resource_ids, vec![DPS_ID.to_string()]);
        assert!(p.findings[0].message.contains("unauthorized"));
    }
}

#[test]
fn links_to_other_hubs_do_not_block() {
    let h = hub(false);
    let links = vec![
        key_link("contoso-fleet-hub-2.azure-devices.net"),
        key_link("other.azure-devices.net"),
        key_link("contoso-fleet-hub.example.com"),
        key_link("contoso-fleet-hub.device.example.com"),
    ];
    assert_eq!(run(&want(Access::Deny), Some(&h), &dps(links), &[reader_assignment()]).actions, vec![deny_action()]);
}

#[test]
fn every_host_name_azure_reports_for_the_hub_is_matched() {
    let mut h = hub(false);
    h.host_names = vec![
        "contoso-fleet-hub.azure-devices.net".into(),
        "gw2-contoso-fleet.devices.example.net".into(), // a device host name of another form
    ];
    let p = run(
        &want(Access::Deny),
        Some(&h),
        &dps(vec![key_link("GW2-contoso-fleet.devices.example.net")]),
        &[reader_assignment()],
    );
    assert_eq!(p.findings[0].reason, Reason::DpsLinked);
}

#[test]
fn an_identity_link_blocks_only_while_its_identity_cannot_register_devices_on_the_hub() {
    let h = hub(false);
    let contributor_for = |principal: &str, scope: Scope| {
        foreign(scope, BuiltInRole::IoTHubDataContributor.guid(), principal, "abababab-2222-4333-8444-555555555555")
    };
    let reader_for = |principal: &str| {
        foreign(
            hub_id().scope(),
            BuiltInRole::IoTHubDataReader.guid(),
            principal,
            "cdcdcdcd-2222-4333-8444-555555555555",
        )
    };
    let uai = ManagedIdentity {
        principal_id: None,
        user_assigned: [(UAI.to_ascii_lowercase(), Some(DPS_MI.to_string()))].into_iter().collect(),
    };
    let system = link("contoso-fleet-hub.azure-devices.net", LinkAuth::SystemAssigned);
    let user = link("contoso-fleet-hub.azure-devices.net", LinkAuth::UserAssigned(Some(UAI.into())));
    let rg = Scope::ResourceGroup { subscription_id: SUB.into(), resource_group: RG.into() };
    // (link, identity, assignments, refused?)
    let table: Vec<(DpsLink, Option<ManagedIdentity>, Vec<ObservedAssignment>, bool)> = vec![
        (system.clone(), Some(system_identity()), vec![reader_assignment()], true), // no role at all
        (system.clone(), Some(system_identity()), vec![reader_assignment(), reader_for(DPS_MI)], true), // read only
        (
            system.clone(),
            Some(system_identity()),
            vec![reader_assignment(), contributor_for(DPS_MI, hub_id().scope())],
            false,
        ),
        (system.clone(), Some(system_identity()), vec![contributor_for(DPS_MI, rg.clone())], false), // inherited
        (system.clone(), None, vec![reader_assignment(), contributor_for(DPS_MI, hub_id().scope())], true), // id unknown
        (user.clone(), Some(uai.clone()), vec![reader_assignment(), contributor_for(DPS_MI, hub_id().scope())], false),
        (
            user.clone(),
            Some(system_identity()),
            vec![reader_assignment(), contributor_for(DPS_MI, hub_id().scope())],
            true,
        ), // not that identity
        (
            link("contoso-fleet-hub.azure-devices.net", LinkAuth::UserAssigned(None)),
            Some(uai),
            vec![reader_assignment(), contributor_for(DPS_MI, hub_id().scope())],
            true,
        ),
        (link("other-hub.azure-devices.net", LinkAuth::SystemAssigned), None, vec![reader_assignment()], false), // not this hub
    ];
    for (i, (l, identity, assignments, refused)) in table.into_iter().enumerate() {
        let p = run(&want(Access::Deny), Some(&h), &deps(vec![one_dps(vec![l], identity)], vec![]), &assignments);
        if refused {
            assert_eq!(p.actions, vec![], "row {i}");
            assert_eq!(p.findings[0].reason, Reason::DpsIdentityLacksRole, "row {i}");
            assert!(p.findings[0].message.contains("IoT Hub Data Contributor"), "row {i}: names the role to grant");
            assert_eq!(p.findings[0].resource_ids, vec![DPS_ID.to_string()], "row {i}");
        } else {
            assert_eq!(p.actions, vec![deny_action()], "row {i}: {:?}", p.findings);
        }
    }
}

#[test]
fn a_device_update_instance_on_the_hub_blocks_deny_and_one_on_another_hub_does_not() {
    let h = hub(false);
    let du = |hub_id: String| ObservedDeviceUpdate {
        id: "/subscriptions/x/resourceGroups/rg/providers/Microsoft.DeviceUpdate/accounts/adu/instances/fleet".into(),
        hub_ids: vec![hub_id],
    };
    let p = run(
        &want(Access::Deny),
        Some(&h),
        &deps(vec![], vec![du(hub_id().arm_id().to_uppercase())]),
        &[reader_assignment()],
    );
    assert_eq!(p.actions, vec![]);
    assert_eq!((p.findings[0].severity, p.findings[0].reason), (Severity::Blocker, Reason::DeviceUpdateLinked));
    assert!(p.findings[0].message.contains("requires local authentication"));
    let other = hub_id().arm_id().replace(HUB, "contoso-other-hub");
    let p = run(&want(Access::Deny), Some(&h), &deps(vec![], vec![du(other)]), &[reader_assignment()]);
    assert_eq!(p.actions, vec![deny_action()]);
}

#[test]
fn deny_fails_closed_when_the_dps_check_could_not_complete() {
    let h = hub(false);
    let p = run(
        &want(Access::Deny),
        Some(&h),
        &DpsObservation::Failed("403 AuthorizationFailed".into()),
        &[reader_assignment()],
    );
    assert_eq!(p.actions, vec![]);
    assert_eq!((p.findings[0].severity, p.findings[0].reason), (Severity::Blocker, Reason::DpsCheckFailed));
    assert!(p.findings[0].message.contains("403 AuthorizationFailed"));
}

#[test]
fn deny_is_refused_when_nobody_would_keep_data_access() {
    let h = hub(false);
    // Reader is control plane only; Owner has no data actions: neither keeps service API access.
    let not_data = [
        foreign(hub_id().scope(), BuiltInRole::Reader.guid(), TELEMETRY, "77777777-2222-4333-8444-555555555555"),
        foreign(Scope::Subscription(SUB.into()), owner(), SYNC, "88888888-2222-4333-8444-555555555555"),
    ];
    let p = run(&want(Access::Deny), Some(&h), &dps(vec![]), &not_data);
    assert_eq!(p.actions, vec![]);
    assert_eq!((p.findings[0].severity, p.findings[0].reason), (Severity::Blocker, Reason::WouldLockOut));
    // A data role inherited from the resource group is enough.
    let inherited = foreign(
        Scope::ResourceGroup { subscription_id: SUB.into(), resource_group: RG.into() },
        BuiltInRole::IoTHubDataContributor.guid(),
        SYNC,
        "99999999-2222-4333-8444-555555555555",
    );
    assert_eq!(run(&want(Access::Deny), Some(&h), &dps(vec![]), &[inherited]).actions, vec![deny_action()]);
}

#[test]
fn every_blocker_is_reported_at_once() {
    let h = hub(false);
    let observed = deps(
        vec![one_dps(
            vec![
                key_link("contoso-fleet-hub.azure-devices.net"),
                link("contoso-fleet-hub.azure-devices.net", LinkAuth::SystemAssigned),
            ],
            Some(system_identity()),
        )],
        vec![ObservedDeviceUpdate { id: "/du".into(), hub_ids: vec![hub_id().arm_id()] }],
    );
    let p = run(&want(Access::Deny), Some(&h), &observed, &[]);
    let reasons: Vec<Reason> = p.findings.iter().map(|f| f.reason).collect();
    assert_eq!(
        reasons,
        vec![Reason::DpsLinked, Reason::DpsIdentityLacksRole, Reason::DeviceUpdateLinked, Reason::WouldLockOut]
    );
}

#[test]
fn allow_is_never_blocked() {
    let h = hub(true);
    let p = run(&want(Access::Allow), Some(&h), &DpsObservation::Failed("timeout".into()), &[]);
    assert_eq!(
        p.actions,
        vec![Action::SetHubAccess {
            hub: hub_id(),
            shared_access: Some(Access::Allow),
            device_sas: None,
            module_sas: None
        }]
    );
    assert_eq!(p.findings, vec![]);
}

#[test]
fn device_and_module_sas_change_only_when_set_and_different() {
    let mut h = hub(false);
    h.module_sas = Access::Deny;
    let d = desire::desire_shared_access(&IotHubSharedAccessSpec {
        hub: hub_ref(),
        shared_access_policies: Access::Allow,
        device_sas: Some(Access::Deny),
        module_sas: Some(Access::Deny),
    })
    .unwrap();
    let p = run(&d, Some(&h), &dps(vec![]), &[]);
    assert_eq!(
        p.actions,
        vec![Action::SetHubAccess {
            hub: hub_id(),
            shared_access: None,
            device_sas: Some(Access::Deny),
            module_sas: None
        }]
    );
}

#[test]
fn a_denied_hub_that_something_reaches_by_key_again_is_a_blocker_never_an_action() {
    let h = hub(true);
    let table = [
        (dps(vec![key_link("contoso-fleet-hub.azure-devices.net")]), Reason::DpsLinked, "already denied"),
        (DpsObservation::Failed("subscription s: 403".into()), Reason::DpsCheckFailed, "can no longer be checked"),
        (
            deps(vec![], vec![ObservedDeviceUpdate { id: "/du".into(), hub_ids: vec![hub_id().arm_id()] }]),
            Reason::DeviceUpdateLinked,
            "failing now",
        ),
    ];
    for (observed, reason, says) in table {
        let p = run(&want(Access::Deny), Some(&h), &observed, &[reader_assignment()]);
        assert_eq!(p.actions, vec![], "{reason}: SAS is never re-allowed by the operator");
        assert_eq!((p.findings[0].severity, p.findings[0].reason), (Severity::Blocker, reason));
        assert!(p.findings[0].message.contains(says), "{}", p.findings[0].message);
    }
    // Once denied, nobody left holding a data role is a lock-out: reported, never an action.
    let p = run(&want(Access::Deny), Some(&h), &dps(vec![]), &[]);
    assert_eq!(p.actions, vec![], "SAS is never re-allowed by the operator");
    assert_eq!((p.findings[0].severity, p.findings[0].reason), (Severity::Blocker, Reason::WouldLockOut));
    assert!(p.findings[0].message.contains("shared access is denied"), "{}", p.findings[0].message);
    assert_eq!(run(&want(Access::Deny), Some(&h), &dps(vec![]), &[reader_assignment()]), Plan::default());
}

#[test]
fn missing_hub_is_a_blocker() {
    let p = run(&want(Access::Allow), None, &dps(vec![]), &[]);
    assert_eq!(p.actions, vec![]);
    assert_eq!(p.findings[0].reason, Reason::HubNotFound);
}

fn blocker(reason: Reason, message: &str) -> Finding {
    Finding::new(Severity::Blocker, reason, message, vec![DPS_ID.into()])
}

/// One row of the report step's table: what the writes came to, and what the user sees.
struct Row {
    name: &'static str,
    desired: DesiredSharedAccess,
    plan_blockers: Vec<Finding>,
    writes: Vec<HubWriteResult>,
    /// The hub as read back after the writes.
    hub_after: Option<ObservedHub>,
    ready: bool,
    reason: Reason,
    /// Looked at again at the interlock's re-check interval.
    recheck: bool,
    says: &'static str,
    blockers: Vec<Reason>,
    tells: Vec<Tell>,
}

#[test]
fn the_verdict_after_the_hub_write_says_what_azure_holds_and_when_to_look_again() {
    let linked = blocker(Reason::DpsLinked, "1 DPS instance(s) link hub contoso-fleet-hub by shared access policy");
    let unchecked = blocker(Reason::DpsCheckFailed, "could not check what reaches hub contoso-fleet-hub by key (403)");
    let policy = HubWriteResult::PolicyDenied {
        action: deny_action().describe(),
        assignment: "deny-local-auth-off".into(),
        definition: "require-local-auth".into(),
        message: "Resource 'contoso-fleet-hub' was disallowed by policy.".into(),
    };
    let modify = "hub contoso-fleet-hub holds shared access policies Allow: a Modify policy set it";
    let rows = vec![
        Row {
            name: "policy denied: waits for the resync",
            desired: want(Access::Deny),
            plan_blockers: vec![],
            writes: vec![policy.clone()],
            hub_after: Some(hub(false)),
            ready: false,
            reason: Reason::PolicyDenied,
            recheck: false,
            says: "assignment deny-local-auth-off, definition require-local-auth: Resource 'contoso-fleet-hub' was disallowed",
            blockers: vec![],
            tells: vec![Tell::PolicyDenied(format!(
                "Azure Policy refused the hub write ({}): assignment deny-local-auth-off, definition require-local-auth: Resource 'contoso-fleet-hub' was disallowed by policy.",
                deny_action().describe()
            ))],
        },
        Row {
            name: "overridden, the interlock sees nothing broken",
            desired: want(Access::Deny),
            plan_blockers: vec![],
            writes: vec![HubWriteResult::Overridden(modify.into(), vec![])],
            hub_after: Some(hub(false)),
            ready: false,
            reason: Reason::OverriddenByPolicy,
            recheck: false,
            says: "a Modify policy set it",
            blockers: vec![],
            tells: vec![Tell::Count(vec![])],
        },
        Row {
            name: "overridden to Deny, with the interlock's blockers",
            desired: want(Access::Allow),
            plan_blockers: vec![],
            writes: vec![HubWriteResult::Overridden(modify.into(), vec![linked.clone()])],
            hub_after: Some(hub(true)),
            ready: false,
            reason: Reason::OverriddenByPolicy,
            recheck: false,
            says: "a Modify policy set it; the interlock reports: 1 DPS instance(s) link hub",
            blockers: vec![Reason::DpsLinked],
            tells: vec![Tell::Count(vec![linked.clone()])],
        },
        Row {
            name: "refused before the write: not read back, looked at again soon",
            desired: want(Access::Deny),
            plan_blockers: vec![],
            writes: vec![HubWriteResult::Refused(vec![linked.clone()])],
            hub_after: Some(hub(false)),
            ready: false,
            reason: Reason::DpsLinked,
            recheck: true,
            says: "link hub contoso-fleet-hub by shared access policy",
            blockers: vec![Reason::DpsLinked],
            tells: vec![Tell::Blockers { blockers: vec![linked.clone()], denied: false }],
        },
        Row {
            name: "denied already, but the check fails",
            desired: want(Access::Deny),
            plan_blockers: vec![],
            writes: vec![HubWriteResult::DeniedBut { written: false, blockers: vec![unchecked.clone()] }],
            hub_after: Some(hub(true)),
            ready: false,
            reason: Reason::DpsCheckFailed,
            recheck: true,
            says: "could not check what reaches hub",
            blockers: vec![Reason::DpsCheckFailed],
            tells: vec![Tell::Blockers { blockers: vec![unchecked.clone()], denied: true }],
        },
        Row {
            name: "denied by this write, but a DPS links it by key",
            desired: want(Access::Deny),
            plan_blockers: vec![],
            writes: vec![HubWriteResult::DeniedBut { written: true, blockers: vec![linked.clone()] }],
            hub_after: Some(hub(true)),
            ready: false,
            reason: Reason::DpsLinked,
            recheck: true,
            says: "by shared access policy",
            blockers: vec![Reason::DpsLinked],
            tells: vec![Tell::Count(vec![linked.clone()])],
        },
        Row {
            name: "reverted: a key link appeared during the write",
            desired: want(Access::Deny),
            plan_blockers: vec![],
            writes: vec![HubWriteResult::Reverted(vec![linked.clone()])],
            hub_after: Some(hub(false)),
            ready: false,
            reason: Reason::DpsLinked,
            recheck: true,
            says: "by shared access policy",
            blockers: vec![Reason::DpsLinked],
            tells: vec![Tell::Count(vec![linked.clone()])],
        },
        Row {
            name: "the plan's blockers, nothing written",
            desired: want(Access::Deny),
            plan_blockers: vec![linked.clone(), unchecked.clone()],
            writes: vec![],
            hub_after: None,
            ready: false,
            reason: Reason::DpsLinked,
            recheck: true,
            says: "by shared access policy; could not check",
            blockers: vec![Reason::DpsLinked, Reason::DpsCheckFailed],
            tells: vec![],
        },
        Row {
            name: "the hub read back holds something else: drifted",
            desired: want(Access::Deny),
            plan_blockers: vec![],
            writes: vec![HubWriteResult::Other],
            hub_after: Some(hub(false)),
            ready: false,
            reason: Reason::Drifted,
            recheck: true,
            says: "hub contoso-fleet-hub holds shared access policies Allow (the spec: Deny) after the write",
            blockers: vec![],
            tells: vec![],
        },
        Row {
            name: "Allow as the spec says: ready, no re-check",
            desired: want(Access::Allow),
            plan_blockers: vec![],
            writes: vec![HubWriteResult::Other],
            hub_after: Some(hub(false)),
            ready: true,
            reason: Reason::Reconciled,
            recheck: false,
            says: "match the spec",
            blockers: vec![],
            tells: vec![],
        },
        Row {
            name: "Deny as the spec says: ready, watched",
            desired: want(Access::Deny),
            plan_blockers: vec![],
            writes: vec![HubWriteResult::Other],
            hub_after: Some(hub(true)),
            ready: true,
            reason: Reason::Reconciled,
            recheck: true,
            says: "match the spec",
            blockers: vec![],
            tells: vec![],
        },
    ];
    for r in rows {
        let v = verdict(&r.desired, &r.plan_blockers, &r.writes, r.hub_after.as_ref());
        assert_eq!((v.ready, v.reason, v.recheck), (r.ready, r.reason, r.recheck), "{}: {}", r.name, v.message);
        assert!(v.message.contains(r.says), "{}: {}", r.name, v.message);
        assert_eq!(v.blockers.iter().map(|f| f.reason).collect::<Vec<_>>(), r.blockers, "{}", r.name);
        assert_eq!(tells(&r.writes), r.tells, "{}", r.name);
    }
}

#[test]
fn the_hub_is_read_back_only_when_a_write_was_attempted() {
    let refused = HubWriteResult::Refused(vec![]);
    assert!(!reads_back(&[]));
    assert!(!reads_back(&[refused.clone(), HubWriteResult::Skipped]));
    assert!(reads_back(&[refused, HubWriteResult::Other]));
    // Not read back: what the hub holds is not looked at.
    let v = verdict(&want(Access::Deny), &[], &[HubWriteResult::Skipped], Some(&hub(false)));
    assert_eq!((v.ready, v.reason), (true, Reason::Reconciled));
}

#[test]
fn drift_names_every_property_the_spec_sets_and_only_those() {
    let mut h = hub(true);
    h.module_sas = Access::Deny;
    let d = desire::desire_shared_access(&IotHubSharedAccessSpec {
        hub: hub_ref(),
        shared_access_policies: Access::Allow,
        device_sas: Some(Access::Deny),
        module_sas: None,
    })
    .unwrap();
    assert_eq!(
        iothub_access_operator::plan::shared_access::differs(&d, &h),
        vec!["shared access policies Deny (the spec: Allow)", "device SAS Allow (the spec: Deny)"]
    );
}

/// One owner per hub: the first created keeps it; the same second (or no creation time) cannot
/// be told apart, so nobody writes and no name chosen to sort first wins.
#[test]
fn a_hubs_shared_access_has_one_owner_and_a_tie_is_nobodys() {
    use iothub_access_operator::domain::naming::Owner;
    use iothub_access_operator::plan::shared_access::{Claimant, conflict};
    let at = |secs: i64| Some(jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap());
    let c = |ns: &str, name: &str, created| Claimant { owner: Owner::new("c1", ns, name), created };
    let (first, later, aaa_same_second) = (c("team-a", "fleet", at(0)), c("team-b", "x", at(5)), c("aaa", "a", at(0)));
    let hub = hub_id();
    assert_eq!(conflict(&first, &hub, std::slice::from_ref(&later)), None, "the first keeps the hub");
    let f = conflict(&later, &hub, std::slice::from_ref(&first)).expect("the later one is refused");
    assert_eq!((f.severity, f.reason), (Severity::Blocker, Reason::Conflict));
    assert!(f.message.contains("team-a/fleet") && f.message.contains("created first"), "{}", f.message);
    // Created in the same second: both refused, whatever the names.
    for (me, other) in [(&first, &aaa_same_second), (&aaa_same_second, &first)] {
        let f = conflict(me, &hub, std::slice::from_ref(other)).expect("a tie is refused on both sides");
        assert!(f.message.contains("same time") && f.message.contains(&other.owner.to_string()), "{}", f.message);
    }
    // No creation time (manifests): likewise.
    let (m1, m2) = (c("iot", "one", None), c("iot", "two", None));
    assert!(conflict(&m1, &hub, std::slice::from_ref(&m2)).is_some() && conflict(&m2, &hub, &[m1]).is_some());
    assert_eq!(conflict(&later, &hub, &[]), None, "alone: no conflict");
}
