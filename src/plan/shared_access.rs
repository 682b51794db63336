//! Planning one `IotHubSharedAccess`: set the hub's access properties only when they differ.
//! Allow is never blocked. Deny is refused (a blocker finding with the offending ids, no action)
//! while a DPS links the hub by key, while the DPS check could not be completed (fail closed),
//! or while no principal holds an IoT Hub data role on the hub (lock-out). Pure, no I/O.
//!
//! Known blind spot: only DPS instances the operator can list are seen; a DPS in another
//! subscription or tenant can link the hub unnoticed.

use super::{Action, Finding, Plan, Reason, RoleCatalog, Severity};
use crate::desire::DesiredSharedAccess;
use crate::domain::{DpsObservation, ObservedAssignment, ObservedHub};

/// Everything the planner needs for one shared access resource.
pub struct SharedAccessInput<'a> {
    pub desired: &'a DesiredSharedAccess,
    /// The hub as Azure has it; `None` when it does not exist.
    pub hub: Option<&'a ObservedHub>,
    /// DPS instances and their links, or why they could not be listed.
    pub dps: &'a DpsObservation,
    /// Role assignments effective at the hub (at the hub and inherited from above).
    pub hub_assignments: &'a [ObservedAssignment],
    pub roles: &'a dyn RoleCatalog,
}

/// The DPS instances that link `hub` by shared access policy.
pub fn key_linked_dps(hub: &ObservedHub, dps: &DpsObservation) -> Vec<String> {
    match dps {
        DpsObservation::Complete(list) => list
            .iter()
            .filter(|d| d.links.iter().any(|l| l.is_key_based() && l.links(hub)))
            .map(|d| d.id.clone())
            .collect(),
        DpsObservation::Failed(_) => vec![],
    }
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

fn dps_linked_message(hub: &ObservedHub, ids: &[String], already_denied: bool) -> String {
    let base = format!(
        "{} DPS instance(s) link hub {} by shared access policy; DPS cannot use Entra ID for a key-based link, so without SAS every device provisioning through it fails with 'unauthorized'",
        ids.len(),
        hub.id.name
    );
    if already_denied {
        format!(
            "{base}. Shared access is already denied on the hub: relink the DPS with an identity (authenticationType SystemAssigned or UserAssigned) or allow SAS"
        )
    } else {
        format!(
            "{base}. Relink the DPS with an identity (authenticationType SystemAssigned or UserAssigned) or unlink it, then Deny is applied"
        )
    }
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
    let mut disable_local_auth = None;
    if d.disable_local_auth && !hub.disable_local_auth {
        let before = findings.len();
        match input.dps {
            DpsObservation::Failed(why) => findings.push(Finding::new(
                Severity::Blocker,
                Reason::DpsCheckFailed,
                format!(
                    "could not check which DPS instances link hub {} ({why}); Deny is refused until the check succeeds",
                    hub.id.name
                ),
                vec![],
            )),
            DpsObservation::Complete(_) => {
                let linked = key_linked_dps(hub, input.dps);
                if !linked.is_empty() {
                    findings.push(Finding::new(
                        Severity::Blocker,
                        Reason::DpsLinked,
                        dps_linked_message(hub, &linked, false),
                        linked,
                    ));
                }
            }
        }
        if data_role_holders(hub, input.hub_assignments, input.roles).is_empty() {
            findings.push(Finding::new(
                Severity::Blocker,
                Reason::WouldLockOut,
                format!(
                    "no principal holds an IoT Hub data role on hub {}: after Deny nobody could use its service APIs; assign one first (IotHubRoleAssignment)",
                    hub.id.name
                ),
                vec![hub.id.arm_id()],
            ));
        }
        if findings.len() == before {
            disable_local_auth = Some(true);
        }
    } else if !d.disable_local_auth && hub.disable_local_auth {
        disable_local_auth = Some(false);
    } else if d.disable_local_auth {
        let linked = key_linked_dps(hub, input.dps);
        if !linked.is_empty() {
            findings.push(Finding::new(
                Severity::Warning,
                Reason::DpsLinked,
                dps_linked_message(hub, &linked, true),
                linked,
            ));
        }
    }
    let differs = |want: Option<bool>, have: bool| want.filter(|w| *w != have);
    let disable_device_sas = differs(d.disable_device_sas, hub.disable_device_sas);
    let disable_module_sas = differs(d.disable_module_sas, hub.disable_module_sas);
    let mut actions = Vec::new();
    if disable_local_auth.is_some() || disable_device_sas.is_some() || disable_module_sas.is_some() {
        actions.push(Action::SetHubAccess {
            hub: hub.id.clone(),
            disable_local_auth,
            disable_device_sas,
            disable_module_sas,
        });
    }
    Plan::new(actions, findings)
}
