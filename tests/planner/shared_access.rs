//! Shared access planning: Allow is never blocked; Deny is refused while a DPS links the hub by
//! key, while the DPS check failed, or while nobody holds a data role on the hub.

use iothub_access_operator::crd::{Access, IotHubSharedAccessSpec};
use iothub_access_operator::desire::{self, DesiredSharedAccess};
use iothub_access_operator::domain::{
    BuiltInRole, DpsLink, DpsObservation, ObservedAssignment, ObservedDps, ObservedHub, RoleDefinition, Scope,
};
use iothub_access_operator::plan::shared_access::{SharedAccessInput, plan};
use iothub_access_operator::plan::{Action, Plan, Reason, Severity};
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

fn dps(links: Vec<DpsLink>) -> DpsObservation {
    DpsObservation::Complete(vec![ObservedDps {
        id: format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Devices/provisioningServices/contoso-dps"
        ),
        name: "contoso-dps".into(),
        links,
    }])
}

fn key_link(host: &str) -> DpsLink {
    DpsLink { name: Some(host.into()), connection_string_host: Some(host.into()), ..Default::default() }
}

fn run(
    d: &DesiredSharedAccess,
    hub: Option<&ObservedHub>,
    dps: &DpsObservation,
    assignments: &[ObservedAssignment],
) -> Plan {
    let roles: Vec<RoleDefinition> = vec![];
    plan(&SharedAccessInput { desired: d, hub, dps, hub_assignments: assignments, roles: &roles })
}

fn deny_action() -> Action {
    Action::SetHubAccess {
        hub: hub_id(),
        disable_local_auth: Some(true),
        disable_device_sas: None,
        disable_module_sas: None,
    }
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
        DpsLink { connection_string_host: Some("contoso-fleet-hub.azure-devices.net".into()), ..Default::default() },
        DpsLink {
            host_name: Some("contoso-fleet-hub.azure-devices.net".into()),
            authentication_type: Some("KeyBased".into()),
            ..Default::default()
        },
    ] {
        let p = run(&want(Access::Deny), Some(&h), &dps(vec![link.clone()]), &[reader_assignment()]);
        assert_eq!(p.actions, vec![], "{link:?}");
        assert_eq!(p.findings.len(), 1);
        assert_eq!((p.findings[0].severity, p.findings[0].reason), (Severity::Blocker, Reason::DpsLinked));
        assert_eq!(
            p.findings[0].resource_ids,
            vec![format!(
                "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Devices/provisioningServices/contoso-dps"
            )]
        );
        assert!(p.findings[0].message.contains("unauthorized"));
    }
}

#[test]
fn identity_links_and_links_to_other_hubs_do_not_block() {
    let h = hub(false);
    let links = vec![
        DpsLink {
            name: Some("contoso-fleet-hub.azure-devices.net".into()),
            authentication_type: Some("SystemAssigned".into()),
            ..Default::default()
        },
        DpsLink {
            name: Some("contoso-fleet-hub.azure-devices.net".into()),
            authentication_type: Some("UserAssigned".into()),
            ..Default::default()
        },
        key_link("contoso-fleet-hub-2.azure-devices.net"),
        key_link("other.azure-devices.net"),
    ];
    assert_eq!(run(&want(Access::Deny), Some(&h), &dps(links), &[reader_assignment()]).actions, vec![deny_action()]);
}

#[test]
fn sovereign_cloud_host_suffixes_match() {
    let mut h = hub(false);
    h.host_name = None; // Azure did not say: every cloud's suffix is considered.
    for suffix in ["azure-devices.cn", "azure-devices.us", "azure-devices.net"] {
        let p = run(
            &want(Access::Deny),
            Some(&h),
            &dps(vec![key_link(&format!("contoso-fleet-hub.{suffix}"))]),
            &[reader_assignment()],
        );
        assert_eq!(p.findings[0].reason, Reason::DpsLinked, "{suffix}");
    }
    h.host_name = Some("contoso-fleet-hub.azure-devices.cn".into());
    let p = run(
        &want(Access::Deny),
        Some(&h),
        &dps(vec![key_link("contoso-fleet-hub.azure-devices.cn")]),
        &[reader_assignment()],
    );
    assert_eq!(p.findings[0].reason, Reason::DpsLinked);
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
    let p = run(&want(Access::Deny), Some(&h), &dps(vec![key_link("contoso-fleet-hub.azure-devices.net")]), &[]);
    let reasons: Vec<Reason> = p.findings.iter().map(|f| f.reason).collect();
    assert_eq!(reasons, vec![Reason::DpsLinked, Reason::WouldLockOut]);
}

#[test]
fn allow_is_never_blocked() {
    let h = hub(true);
    let p = run(&want(Access::Allow), Some(&h), &DpsObservation::Failed("timeout".into()), &[]);
    assert_eq!(
        p.actions,
        vec![Action::SetHubAccess {
            hub: hub_id(),
            disable_local_auth: Some(false),
            disable_device_sas: None,
            disable_module_sas: None
        }]
    );
    assert_eq!(p.findings, vec![]);
}

#[test]
fn device_and_module_sas_change_only_when_set_and_different() {
    let mut h = hub(false);
    h.disable_module_sas = true;
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
            disable_local_auth: None,
            disable_device_sas: Some(true),
            disable_module_sas: None
        }]
    );
}

#[test]
fn already_denied_with_a_key_linked_dps_warns_without_acting() {
    let h = hub(true);
    let p = run(&want(Access::Deny), Some(&h), &dps(vec![key_link("contoso-fleet-hub.azure-devices.net")]), &[]);
    assert_eq!(p.actions, vec![]);
    assert_eq!((p.findings[0].severity, p.findings[0].reason), (Severity::Warning, Reason::DpsLinked));
}

#[test]
fn missing_hub_is_a_blocker() {
    let p = run(&want(Access::Allow), None, &dps(vec![]), &[]);
    assert_eq!(p.actions, vec![]);
    assert_eq!(p.findings[0].reason, Reason::HubNotFound);
}
