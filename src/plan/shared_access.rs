//! Planning one `IotHubSharedAccess`, and the SAS interlock. Allow is never blocked; the hub's
//! access properties are set only when they differ. Deny is refused (a blocker finding with the
//! offending ids, no action) while anything still reaches the hub by key or breaks without it:
//! a DPS linked by key, a DPS linked by identity whose identity holds no role that lets it
//! register devices and write twins, a Device Update instance; while that search could not be
//! completed (fail closed); or while no principal holds an IoT Hub data role on the hub
//! (lock-out). Once shared access is denied, the same dependents keep the resource not Ready:
//! the operator reports, it never re-allows SAS on its own. Pure, no I/O.
//!
//! Blind spot (stated in status): only subscriptions the operator's identity can list are
//! searched; a DPS in another tenant can link the hub unnoticed.

use super::{Action, Finding, Plan, Reason, RoleCatalog, Severity};
use crate::desire::DesiredSharedAccess;
use crate::domain::naming::Owner;
use crate::domain::{
    Access, Dependents, DependentsObservation, HubId, LinkAuth, ObservedAssignment, ObservedDps, ObservedHub,
    roles::BuiltInRole,
};

/// Everything the planner needs for one shared access resource.
pub struct SharedAccessInput<'a> {
    pub desired: &'a DesiredSharedAccess,
    /// The hub as Azure has it; `None` when it does not exist.
    pub hub: Option<&'a ObservedHub>,
    /// What depends on the hub's shared access, or why the search failed.
    pub dependents: &'a DependentsObservation,
    /// Role assignments effective at the hub (at the hub and inherited from above).
    pub hub_assignments: &'a [ObservedAssignment],
    pub roles: &'a dyn RoleCatalog,
}

/// The data actions a DPS identity needs on a hub it is linked to by identity: register devices
/// and write their twins (IoT Hub Data Contributor has them; the documented alternative is a
/// custom role with the same).
pub const DPS_IDENTITY_NEEDS: &[&str] =
    &["Microsoft.Devices/IotHubs/devices/write", "Microsoft.Devices/IotHubs/twins/write"];

/// The DPS instances that link `hub` by shared access policy.
pub fn key_linked_dps(hub: &ObservedHub, deps: &Dependents) -> Vec<String> {
    deps.dps
        .iter()
        .filter(|d| d.links.iter().any(|l| l.auth == LinkAuth::Key && l.links(hub)))
        .map(|d| d.id.clone())
        .collect()
}

/// The Device Update instances that name `hub`.
pub fn device_update_on(hub: &ObservedHub, deps: &Dependents) -> Vec<String> {
    let id = hub.id.arm_id();
    deps.device_update
        .iter()
        .filter(|u| u.hub_ids.iter().any(|h| h.trim_end_matches('/').eq_ignore_ascii_case(&id)))
        .map(|u| u.id.clone())
        .collect()
}

/// Does `principal` hold, at a scope covering the hub, a role granting every action in `needs`?
fn holds(
    hub: &ObservedHub,
    assignments: &[ObservedAssignment],
    roles: &dyn RoleCatalog,
    principal: &str,
    needs: &[&str],
) -> bool {
    assignments
        .iter()
        .filter(|a| a.principal_id.eq_ignore_ascii_case(principal))
        .filter(|a| a.id.scope.covers_hub(&hub.id) != Some(false))
        .filter_map(|a| roles.role_definition(a.role_definition))
        .any(|d| needs.iter().all(|n| d.permissions.iter().any(|p| p.grants_data_action(n))))
}

/// DPS instances linked to `hub` by an identity that cannot register devices on it, with why.
fn identity_links_lacking(
    hub: &ObservedHub,
    dps: &ObservedDps,
    assignments: &[ObservedAssignment],
    roles: &dyn RoleCatalog,
) -> Option<String> {
    for l in dps.links.iter().filter(|l| l.auth != LinkAuth::Key && l.links(hub)) {
        let which = match &l.auth {
            LinkAuth::UserAssigned(Some(id)) => format!("user-assigned identity {id}"),
            LinkAuth::UserAssigned(None) => "a user-assigned identity it does not name".to_string(),
            _ => "its system-assigned identity".to_string(),
        };
        match dps.identity.as_ref().and_then(|i| i.principal_for(&l.auth)) {
            None => {
                return Some(format!(
                    "DPS {} links the hub with {which}, whose object id Azure does not report",
                    dps.name
                ));
            }
            Some(p) if !holds(hub, assignments, roles, &p, DPS_IDENTITY_NEEDS) => {
                return Some(format!(
                    "DPS {} links the hub with {which} (object id {p}), which holds no role on the hub that lets it register devices and write twins",
                    dps.name
                ));
            }
            Some(_) => {}
        }
    }
    None
}

/// Principals that hold an IoT Hub data role on the hub (lower-case ids, sorted).
pub fn data_role_holders(
    hub: &ObservedHub,
    assignments: &[ObservedAssignment],
    roles: &dyn RoleCatalog,
) -> Vec<String> {
    let mut out: Vec<String> = assignments
        .iter()
        .filter(|a| a.id.scope.covers_hub(&hub.id) != Some(false))
        .filter(|a| roles.role_definition(a.role_definition).is_some_and(|d| d.grants_iothub_data_access()))
        .map(|a| a.principal_id.to_ascii_lowercase())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What still reaches `hub` by key or breaks without it, as blockers. `denied`: shared access
/// is already denied (the findings then say what is broken now, not what Deny would break).
pub fn dependency_blockers(
    hub: &ObservedHub,
    dependents: &DependentsObservation,
    assignments: &[ObservedAssignment],
    roles: &dyn RoleCatalog,
    denied: bool,
) -> Vec<Finding> {
    let name = &hub.id.name;
    let deps = match dependents {
        DependentsObservation::Failed(why) => {
            let message = if denied {
                format!(
                    "shared access is denied on hub {name}, but what reaches it by key can no longer be checked ({why}); a DPS or Device Update instance linked since would be failing"
                )
            } else {
                format!(
                    "could not check what reaches hub {name} by key ({why}); Deny is refused until the check succeeds"
                )
            };
            return vec![Finding::new(Severity::Blocker, Reason::DpsCheckFailed, message, vec![])];
        }
        DependentsObservation::Complete(d) => d,
    };
    let mut out = Vec::new();
    let linked = key_linked_dps(hub, deps);
    if !linked.is_empty() {
        let base = format!(
            "{} DPS instance(s) link hub {name} by shared access policy; a key-based link cannot use Entra ID, so without SAS every device provisioning through it fails with 'unauthorized'",
            linked.len()
        );
        let tail = if denied {
            "Shared access is already denied on the hub: relink the DPS with an identity (authenticationType SystemAssigned or UserAssigned) or allow SAS"
        } else {
            "Relink the DPS with an identity (authenticationType SystemAssigned or UserAssigned) or unlink it, then Deny is applied"
        };
        out.push(Finding::new(Severity::Blocker, Reason::DpsLinked, format!("{base}. {tail}"), linked));
    }
    let contributor = BuiltInRole::IoTHubDataContributor;
    for d in &deps.dps {
        if let Some(why) = identity_links_lacking(hub, d, assignments, roles) {
            out.push(Finding::new(
                Severity::Blocker,
                Reason::DpsIdentityLacksRole,
                format!(
                    "{why}: provisioning through it fails. Grant that identity '{}' ({}) on hub {name} (an IotHubRoleAssignment), or a role with {}",
                    contributor.role_name(),
                    contributor.guid(),
                    DPS_IDENTITY_NEEDS.join(" and ")
                ),
                vec![d.id.clone()],
            ));
        }
    }
    let updates = device_update_on(hub, deps);
    if !updates.is_empty() {
        out.push(Finding::new(
            Severity::Blocker,
            Reason::DeviceUpdateLinked,
            format!(
                "{} Device Update instance(s) use hub {name}; Device Update requires local authentication on its hub, so Deny would break it. Remove the hub from the instance (or the instance) first{}",
                updates.len(),
                if denied { "; shared access is already denied, so it is failing now" } else { "" }
            ),
            updates,
        ));
    }
    out
}

/// The lock-out blocker, when nobody holds an IoT Hub data role on the hub. `denied`: shared
/// access is already denied, so nobody can use the hub's service APIs now.
pub fn lockout_blocker(
    hub: &ObservedHub,
    assignments: &[ObservedAssignment],
    roles: &dyn RoleCatalog,
    denied: bool,
) -> Option<Finding> {
    data_role_holders(hub, assignments, roles).is_empty().then(|| {
        let message = if denied {
            format!(
                "no principal holds an IoT Hub data role on hub {} and shared access is denied: nobody can use its service APIs; assign one (IotHubRoleAssignment) or allow SAS",
                hub.id.name
            )
        } else {
            format!(
                "no principal holds an IoT Hub data role on hub {}: after Deny nobody could use its service APIs; assign one first (IotHubRoleAssignment)",
                hub.id.name
            )
        };
        Finding::new(Severity::Blocker, Reason::WouldLockOut, message, vec![hub.id.arm_id()])
    })
}

/// What a Deny of `hub` breaks: what still needs SAS, or nobody left to use the hub. Before the
/// Deny (`denied: false`) they refuse it (empty: Deny may be written); once denied they are
/// reported, never Ready, and SAS is never re-allowed for them.
pub fn deny_blockers(
    hub: &ObservedHub,
    dependents: &DependentsObservation,
    assignments: &[ObservedAssignment],
    roles: &dyn RoleCatalog,
    denied: bool,
) -> Vec<Finding> {
    let mut out = dependency_blockers(hub, dependents, assignments, roles, denied);
    out.extend(lockout_blocker(hub, assignments, roles, denied));
    out
}

/// A resource asking to manage a hub's shared access (one that may: managed, valid, allowed on
/// the hub), and when it was created (`None` when not known, as for manifests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant {
    pub owner: Owner,
    pub created: Option<jiff::Timestamp>,
}

/// One hub's shared access has one owner: the claimant created first keeps the hub; for any
/// other, the `Conflict` blocker naming the keeper (nothing written). Claimants created in the
/// same second (the API server's resolution), or with no creation time (manifests), cannot be
/// told apart: none of them writes, each names the other, so no name chosen to sort first wins.
pub fn conflict(me: &Claimant, hub: &HubId, claimants: &[Claimant]) -> Option<Finding> {
    let key = |c: &Claimant| (c.created.is_none(), c.created);
    let all: Vec<&Claimant> = claimants.iter().chain(std::iter::once(me)).collect();
    let first = all.iter().map(|c| key(c)).min()?;
    let mut keepers: Vec<&Claimant> = all.into_iter().filter(|c| key(c) == first).collect();
    keepers.sort_by(|a, b| (&a.owner.namespace, &a.owner.name).cmp(&(&b.owner.namespace, &b.owner.name)));
    let others: Vec<String> = keepers.iter().filter(|c| c.owner != me.owner).map(|c| c.owner.to_string()).collect();
    let message = if keepers.len() == 1 && keepers[0].owner == me.owner {
        return None;
    } else if keepers.iter().any(|c| c.owner == me.owner) {
        format!(
            "the shared access of hub {} is also asked for by IotHubSharedAccess {}, created at the same time: which came first cannot be told, so neither writes; a hub's SAS has one owner: delete all but one",
            hub.name,
            others.join(", ")
        )
    } else {
        format!(
            "the shared access of hub {} is already managed by IotHubSharedAccess {} (created first): a hub's SAS has one owner, so this resource writes nothing; delete one of the two, or set what this one asks in that one",
            hub.name,
            others.join(", ")
        )
    };
    Some(Finding::new(Severity::Blocker, Reason::Conflict, message, vec![hub.arm_id()]))
}

/// Plan one shared access resource.
pub fn plan(input: &SharedAccessInput<'_>) -> Plan {
    let d = input.desired;
    let Some(hub) = input.hub else {
        return Plan::new(
            vec![],
            vec![Finding::new(
                Severity::Blocker,
                Reason::HubNotFound,
                format!(
                    "hub {} was not found in subscription {} resource group {}; check spec.hub",
                    d.hub.name, d.hub.subscription_id, d.hub.resource_group
                ),
                vec![d.hub.arm_id()],
            )],
        );
    };
    let mut findings = Vec::new();
    let mut shared_access = None;
    if d.shared_access == Access::Deny && hub.shared_access == Access::Allow {
        findings = deny_blockers(hub, input.dependents, input.hub_assignments, input.roles, false);
        if findings.is_empty() {
            shared_access = Some(Access::Deny);
        }
    } else if d.shared_access == Access::Allow && hub.shared_access == Access::Deny {
        shared_access = Some(Access::Allow);
    } else if d.shared_access == Access::Deny {
        findings = deny_blockers(hub, input.dependents, input.hub_assignments, input.roles, true);
    }
    let differs = |want: Option<Access>, have: Access| want.filter(|w| *w != have);
    let device_sas = differs(d.device_sas, hub.device_sas);
    let module_sas = differs(d.module_sas, hub.module_sas);
    let mut actions = Vec::new();
    if shared_access.is_some() || device_sas.is_some() || module_sas.is_some() {
        actions.push(Action::SetHubAccess { hub: hub.id.clone(), shared_access, device_sas, module_sas });
    }
    Plan::new(actions, findings)
}

/// What one hub write came to, as the report step needs it (the controller's translation of
/// `outcome::Outcome`, whose failures carry Azure errors the pure core does not know).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubWriteResult {
    /// Azure Policy refused the write (`action`: the write's description): permanent until the
    /// policy changes.
    PolicyDenied { action: String, assignment: String, definition: String, message: String },
    /// The interlock's fresh check refused the write; nothing was written.
    Refused(Vec<Finding>),
    /// Azure holds the Deny (`written` by this call, or found so), but these blockers remain.
    DeniedBut { written: bool, blockers: Vec<Finding> },
    /// Deny was written, then these appeared; shared access was allowed again.
    Reverted(Vec<Finding>),
    /// Written, but Azure holds something else (what it holds), with what the interlock finds
    /// that breaks when Azure holds shared access denied.
    Overridden(String, Vec<Finding>),
    /// Not attempted: an earlier phase failed.
    Skipped,
    /// Written, already so, or anything else (nothing to report here).
    Other,
}

/// What the controller tells about the writes (Events and the blocked metric), in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tell {
    /// The `PolicyDenied` Warning Event with this message, unless status already says so.
    PolicyDenied(String),
    /// The blocked metric for each blocker and a Warning Event for each not reported yet;
    /// `denied`: shared access is denied already (not a refused Deny).
    Blockers { blockers: Vec<Finding>, denied: bool },
    /// The blocked metric only: the write's own Event carries the blockers.
    Count(Vec<Finding>),
}

/// The `Ready` verdict after the hub writes, and what status shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedAccessVerdict {
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
    /// Look again at the interlock's re-check interval (`false`: at the next change or resync).
    pub recheck: bool,
    /// The blockers status lists.
    pub blockers: Vec<Finding>,
}

/// The message of a ready shared access resource.
pub const READY_MESSAGE: &str = "the hub's access settings match the spec";

fn policy_denied_message(action: &str, assignment: &str, definition: &str, message: &str) -> String {
    format!(
        "Azure Policy refused the hub write ({action}): assignment {assignment}, definition {definition}: {message}"
    )
}

/// The Events and metric counts the writes call for, in the order of the writes. Refusals
/// (nothing written) are told with their blockers; written ones only counted, their write's
/// Event carries them.
pub fn tells(writes: &[HubWriteResult]) -> Vec<Tell> {
    writes
        .iter()
        .filter_map(|w| match w {
            HubWriteResult::PolicyDenied { action, assignment, definition, message } => {
                Some(Tell::PolicyDenied(policy_denied_message(action, assignment, definition, message)))
            }
            HubWriteResult::Refused(found) => Some(Tell::Blockers { blockers: found.clone(), denied: false }),
            HubWriteResult::DeniedBut { written: false, blockers } => {
                Some(Tell::Blockers { blockers: blockers.clone(), denied: true })
            }
            HubWriteResult::Reverted(found)
            | HubWriteResult::DeniedBut { written: true, blockers: found }
            | HubWriteResult::Overridden(_, found) => Some(Tell::Count(found.clone())),
            HubWriteResult::Skipped | HubWriteResult::Other => None,
        })
        .collect()
}

/// Whether the hub is read back after the writes: when anything was attempted (not refused,
/// not skipped).
pub fn reads_back(writes: &[HubWriteResult]) -> bool {
    writes.iter().any(|w| !matches!(w, HubWriteResult::Refused(_) | HubWriteResult::Skipped))
}

/// The properties `hub` holds differently from what `desired` asks (unset ones are not asked).
pub fn differs(desired: &DesiredSharedAccess, hub: &ObservedHub) -> Vec<String> {
    [
        ("shared access policies", Some(desired.shared_access), hub.shared_access),
        ("device SAS", desired.device_sas, hub.device_sas),
        ("module SAS", desired.module_sas, hub.module_sas),
    ]
    .into_iter()
    .filter_map(|(name, want, have)| want.filter(|w| *w != have).map(|w| (name, w, have)))
    .map(|(name, w, have)| format!("{name} {} (the spec: {})", have.as_str(), w.as_str()))
    .collect()
}

/// The verdict after the hub writes: a policy's refusal or override (waits for the resync:
/// writing again would meet the policy again), else the last blockers the writes (or the plan)
/// report (looked at again soon: they depend on Azure), else a hub that holds something else
/// than the spec after the write (`Drifted`, looked at again soon), else Ready (a denied hub is
/// watched: a key link made later is reported within the re-check interval). `hub_after`: the
/// hub as the write read it back; only looked at when something was attempted ([`reads_back`]).
pub fn verdict(
    desired: &DesiredSharedAccess,
    plan_blockers: &[Finding],
    writes: &[HubWriteResult],
    hub_after: Option<&ObservedHub>,
) -> SharedAccessVerdict {
    let mut verdict: Option<(Reason, String)> = None;
    let mut blockers: Vec<Finding> = plan_blockers.to_vec();
    for w in writes {
        match w {
            HubWriteResult::PolicyDenied { action, assignment, definition, message } => {
                verdict = Some((Reason::PolicyDenied, policy_denied_message(action, assignment, definition, message)));
            }
            HubWriteResult::Refused(found)
            | HubWriteResult::DeniedBut { blockers: found, .. }
            | HubWriteResult::Reverted(found) => blockers = found.clone(),
            HubWriteResult::Overridden(what, found) => {
                // The interlock's fresh view of what Azure's state breaks, when it denies SAS.
                let interlock = if found.is_empty() {
                    String::new()
                } else {
                    blockers = found.clone();
                    format!("; the interlock reports: {}", super::messages(found))
                };
                verdict = Some((Reason::OverriddenByPolicy, format!("{what}{interlock}")));
            }
            HubWriteResult::Skipped | HubWriteResult::Other => {}
        }
    }
    if let Some(hub) = hub_after.filter(|_| reads_back(writes))
        && verdict.is_none()
        && blockers.is_empty()
    {
        let differs = differs(desired, hub);
        if !differs.is_empty() {
            verdict = Some((
                Reason::Drifted,
                format!("hub {} holds {} after the write; looked at again shortly", hub.id.name, differs.join(", ")),
            ));
        }
    }
    match (verdict, blockers.first()) {
        (Some((reason, message)), _) => {
            SharedAccessVerdict { ready: false, reason, message, recheck: reason == Reason::Drifted, blockers }
        }
        (None, Some(b)) => SharedAccessVerdict {
            ready: false,
            reason: b.reason,
            message: super::messages(&blockers),
            recheck: true,
            blockers,
        },
        (None, None) => SharedAccessVerdict {
            ready: true,
            reason: Reason::Reconciled,
            message: READY_MESSAGE.into(),
            recheck: desired.shared_access == Access::Deny,
            blockers,
        },
    }
}
