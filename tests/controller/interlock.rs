//! The SAS interlock through the shared access reconciler (mocked Kubernetes API, emulator over
//! HTTP): reach across subscriptions, fail closed on a subscription that refuses the search, the
//! fresh check right before the write and the check right after it, a denied hub reached by key
//! again, identity links, Device Update, Azure Policy Deny and Modify, and the prompt re-check.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use iothub_access_emulator::{DpsLinkSeed, SubscriptionAccess};
use iothub_access_operator::azure::{
    AssignmentFilter, AzureError, CreateOutcome, HubAccessChange, HubWrite, NewRoleAssignment, RoleDefinitionFilter,
};
use iothub_access_operator::crd::Access;
use iothub_access_operator::domain::{
    HubId, ObservedAssignment, ObservedDeviceUpdate, ObservedDps, ObservedHub, RoleAssignmentId, RoleDefinition,
    RoleDefinitionId, Scope,
};

use super::*;

const DPS_MI: &str = "d1d1d1d1-2222-4333-8444-555555555555";

fn status(h: &H, name: &str) -> iothub_access_operator::crd::IotHubSharedAccessStatus {
    h.api.get::<IotHubSharedAccess>(NS, name).unwrap().status.unwrap()
}

fn fleet_denied_in_azure(h: &H) -> bool {
    h.emu.snapshot().hubs.into_iter().find(|x| x.name == FLEET_HUB).unwrap().disable_local_auth == Some(true)
}

/// The demo's DPS (platform subscription) also links the fleet hub by key.
fn link_fleet_by_key(emu: &EmulatorHandle) {
    emu.with_state(|s| {
        let d = s.dps.iter_mut().find(|d| d.name == "contoso-factory-dps").expect("demo DPS");
        d.links.push(DpsLinkSeed { hub: FLEET_HUB.into(), ..DpsLinkSeed::default() });
    });
}

#[tokio::test]
async fn a_dps_in_another_subscription_blocks_deny_and_status_says_where_the_operator_looked() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.api.put(&IotHubRoleAssignment::test("telemetry"));
    h.ra("telemetry").await.expect("reconciles");
    h.api.put(&IotHubSharedAccess::test("factory").deny());
    let next = h.sa("factory").await.expect("a refusal is a status, not an error");
    let st = status(&h, "factory");
    assert_eq!(h.ready(&st.conditions), ("False".into(), "DpsLinked".into()));
    assert!(
        st.blockers[0].resource_ids.iter().any(|id| id.contains(PLATFORM_SUB) && id.contains("contoso-factory-dps"))
    );
    let seen = st.interlock.expect("what was searched is in status");
    assert_eq!(seen.subscriptions, {
        let mut v = vec![SUB.to_string(), PLATFORM_SUB.to_string()];
        v.sort();
        v
    });
    assert_eq!((seen.provisioning_services, seen.device_update_instances, seen.failed), (1, 0, None));
    assert!(!seen.checked_at.is_empty());
    // What uses this hub, and how: the DPS in the platform subscription, by key.
    assert_eq!(seen.dependents.len(), 1, "{:?}", seen.dependents);
    assert!(seen.dependents[0].id.ends_with("/contoso-factory-dps"), "{:?}", seen.dependents);
    assert_eq!(seen.dependents[0].authentication, "KeyBased");
    assert_eq!(h.emu.stats().count("iotHubs.put"), 0, "the hub was not touched");
    assert_eq!(next, Action::requeue(Duration::from_secs(30)), "an Azure-only refusal is re-checked soon");
}

#[tokio::test]
async fn a_subscription_that_refuses_the_search_fails_closed_and_is_named() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    someone_holds_a_data_role_on_the_fleet_hub(&h).await;
    h.emu.with_state(|s| s.set_subscription_access(PLATFORM_SUB, SubscriptionAccess::Forbidden));
    h.ctx.observer.rotate();
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny());
    h.sa("fleet").await.expect("reconciles");
    let st = status(&h, "fleet");
    assert_eq!(h.ready(&st.conditions), ("False".into(), "DpsCheckFailed".into()));
    let failed = st.interlock.unwrap().failed.expect("the failure is in status");
    assert!(failed.contains(PLATFORM_SUB) && failed.contains("AuthorizationFailed"), "{failed}");
    assert!(!fleet_denied_in_azure(&h), "nothing written while the search is incomplete");

    // Access restored: the next check (no cluster change needed) applies Deny.
    h.emu.with_state(|s| s.set_subscription_access(PLATFORM_SUB, SubscriptionAccess::Read));
    h.ctx.observer.rotate();
    h.sa("fleet").await.expect("reconciles");
    assert_eq!(h.ready(&status(&h, "fleet").conditions), ("True".into(), "Reconciled".into()));
    assert!(fleet_denied_in_azure(&h));
}

#[tokio::test]
async fn a_key_link_made_after_the_plan_read_is_caught_by_the_fresh_check_before_the_write() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    someone_holds_a_data_role_on_the_fleet_hub(&h).await;
    h.ctx.observer.rotate();
    // The plan's view of dependents is a few seconds old; the link lands after it was read.
    let warm = h.ctx.observer.get().dependents(&[SUB]).await;
    assert!(matches!(warm, iothub_access_operator::domain::DependentsObservation::Complete(_)));
    link_fleet_by_key(&h.emu);
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny());
    h.sa("fleet").await.expect("reconciles");
    let st = status(&h, "fleet");
    assert_eq!(h.ready(&st.conditions), ("False".into(), "DpsLinked".into()));
    assert_eq!(h.emu.stats().count("iotHubs.put"), 0, "refused before anything was written");
    assert!(!fleet_denied_in_azure(&h));
    assert!(h.api.events().iter().any(|(r, n)| r == "DpsLinked" && n.starts_with("Deny refused")));
}

/// The operator's Azure client, with something happening in Azure right as the first hub write
/// is sent (after the fresh check passed): see [`DuringDeny`].
struct LinkDuringDeny {
    inner: Arc<dyn Azure>,
    emu: Arc<EmulatorHandle>,
    done: AtomicBool,
    what: DuringDeny,
}

#[async_trait]
impl Azure for LinkDuringDeny {
    async fn list_role_assignments(
        &self,
        s: &Scope,
        f: &AssignmentFilter,
    ) -> Result<Vec<ObservedAssignment>, AzureError> {
        self.inner.list_role_assignments(s, f).await
    }
    async fn create_role_assignment(&self, n: &NewRoleAssignment) -> Result<CreateOutcome, AzureError> {
        self.inner.create_role_assignment(n).await
    }
    async fn delete_role_assignment(&self, id: &RoleAssignmentId) -> Result<bool, AzureError> {
        self.inner.delete_role_assignment(id).await
    }
    async fn get_role_definition(&self, id: &RoleDefinitionId) -> Result<Option<RoleDefinition>, AzureError> {
        self.inner.get_role_definition(id).await
    }
    async fn list_role_definitions(
        &self,
        s: &Scope,
        f: &RoleDefinitionFilter,
    ) -> Result<Vec<RoleDefinition>, AzureError> {
        self.inner.list_role_definitions(s, f).await
    }
    async fn put_role_definition(&self, s: &Scope, d: &RoleDefinition) -> Result<(), AzureError> {
        self.inner.put_role_definition(s, d).await
    }
    async fn delete_role_definition(&self, id: &RoleDefinitionId) -> Result<bool, AzureError> {
        self.inner.delete_role_definition(id).await
    }
    async fn get_hub(&self, hub: &HubId) -> Result<Option<ObservedHub>, AzureError> {
        self.inner.get_hub(hub).await
    }
    async fn set_hub_access(&self, hub: &HubId, change: &HubAccessChange) -> Result<HubWrite, AzureError> {
        let deny = change.shared_access == Some(Access::Deny);
        let first = (deny || matches!(self.what, DuringDeny::DenyMeanwhile)) && !self.done.swap(true, Ordering::SeqCst);
        let someone_denies =
            || self.emu.with_state(|s| s.hub_mut(SUB, RG, FLEET_HUB).expect("hub").set_disable_local_auth(true));
        match self.what {
            _ if !first => {}
            DuringDeny::LinkByKey => link_fleet_by_key(&self.emu),
            DuringDeny::FailSearch => {}
            DuringDeny::DenyAndLinkByKey => {
                someone_denies();
                link_fleet_by_key(&self.emu);
            }
            DuringDeny::DenyMeanwhile => someone_denies(),
        }
        self.inner.set_hub_access(hub, change).await
    }
    async fn list_subscriptions(&self) -> Result<Vec<String>, AzureError> {
        if matches!(self.what, DuringDeny::FailSearch) && self.done.load(Ordering::SeqCst) {
            return Err(AzureError::Transient { message: "connection reset".into() });
        }
        self.inner.list_subscriptions().await
    }
    async fn list_dps(&self, sub: &str) -> Result<Vec<ObservedDps>, AzureError> {
        self.inner.list_dps(sub).await
    }
    async fn list_device_update_instances(&self, sub: &str) -> Result<Vec<ObservedDeviceUpdate>, AzureError> {
        self.inner.list_device_update_instances(sub).await
    }
}

/// What happens in Azure as the Deny write is sent.
#[derive(Clone, Copy)]
enum DuringDeny {
    /// A DPS links the hub by key.
    LinkByKey,
    /// The search for dependents fails from then on.
    FailSearch,
    /// Someone else denies shared access, and a DPS links the hub by key.
    DenyAndLinkByKey,
    /// Someone else denies shared access as any hub write is sent.
    DenyMeanwhile,
}

/// A harness whose Azure client does `what` when Deny is written, with a data role holder on the
/// fleet hub and a Deny of it applied to the cluster.
async fn deny_fleet_during(what: DuringDeny) -> H {
    let h = fleet_during(what).await;
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny());
    h
}

/// The harness of [`deny_fleet_during`] without the Deny.
async fn fleet_during(what: DuringDeny) -> H {
    let a = allowed();
    let h = H::with_azure(
        DEMO_SEED,
        &allowed_refs(&a),
        None,
        |_| {},
        |inner, emu| Arc::new(LinkDuringDeny { inner, emu, done: AtomicBool::new(false), what }),
    )
    .await;
    someone_holds_a_data_role_on_the_fleet_hub(&h).await;
    h
}

#[tokio::test]
async fn a_key_link_made_while_deny_is_written_puts_shared_access_back_and_is_reported() {
    let h = deny_fleet_during(DuringDeny::LinkByKey).await;
    // The same write also denies device SAS: putting the hub back as it was undoes that too.
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny().device_sas(Access::Deny));
    h.sa("fleet").await.expect("reconciles");
    let st = status(&h, "fleet");
    assert_eq!(h.ready(&st.conditions), ("False".into(), "DpsLinked".into()), "{:?}", st.conditions);
    assert!(!fleet_denied_in_azure(&h), "shared access is allowed again, as it was");
    // The revert put device SAS back too: the next pass (Deny still refused) writes the device
    // SAS change on its own, which it would not need if the revert had left it denied.
    let writes: Vec<String> = h.api.events().into_iter().filter(|(r, _)| r == "Written").map(|(_, n)| n).collect();
    assert!(
        writes.last().is_some_and(|n| n.starts_with("SetHubAccess") && n.ends_with(": device SAS Deny")),
        "{writes:?}"
    );
    assert_eq!(h.emu.stats().count("iotHubs.put"), 3, "Deny, the revert, device SAS alone");
    assert_eq!(st.shared_access_policies, Some(Access::Allow), "status says what Azure holds");
    assert!(
        h.api.events().iter().any(|(r, n)| r == "DenyReverted" && n.contains("allowed again")),
        "{:?}",
        h.api.events()
    );
}

#[tokio::test]
async fn a_hub_reached_by_key_after_deny_turns_not_ready_and_stays_denied() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    someone_holds_a_data_role_on_the_fleet_hub(&h).await;
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny());
    assert_eq!(
        h.sa("fleet").await.expect("reconciles"),
        Action::requeue(Duration::from_secs(30)),
        "a denied hub is watched at the re-check interval"
    );
    assert_eq!(h.ready(&status(&h, "fleet").conditions).0, "True");

    link_fleet_by_key(&h.emu);
    h.ctx.observer.rotate();
    let next = h.sa("fleet").await.expect("reconciles");
    let st = status(&h, "fleet");
    assert_eq!(h.ready(&st.conditions), ("False".into(), "DpsLinked".into()));
    assert!(st.blockers[0].message.contains("already denied"), "{}", st.blockers[0].message);
    assert!(fleet_denied_in_azure(&h), "the operator reports; it never re-allows SAS on its own");
    assert!(h.api.events().iter().any(|(r, n)| r == "DpsLinked" && n.starts_with("Shared access is denied, but")));
    assert_eq!(next, Action::requeue(Duration::from_secs(30)));
    let metrics = h.ctx.metrics.encode();
    assert!(metrics.contains(r#"iothub_access_shared_access_blocked_total{reason="DpsLinked"}"#), "{metrics}");
}

const IDENTITY_DPS: &str = r#"
  - subscriptionId: 2c9d8e7f-6a5b-4c3d-9e1f-0a1b2c3d4e5f
    resourceGroup: rg-platform-provisioning
    name: fleet-identity-dps
    location: westeurope
    identity: {type: SystemAssigned, principalId: d1d1d1d1-2222-4333-8444-555555555555, tenantId: 3c6f1d2e-8a4b-4f5c-9d7e-1a2b3c4d5e6f}
    links:
      - hub: contoso-fleet-hub
        authenticationType: SystemAssigned
"#;

#[tokio::test]
async fn an_identity_link_blocks_deny_until_the_dps_identity_holds_a_role_that_registers_devices() {
    let seed = DEMO_SEED.replace("provisioningServices:\n", &format!("provisioningServices:{IDENTITY_DPS}"));
    let a = allowed();
    let h = H::with_seed(&seed, &allowed_refs(&a), None, |c| c.accept_unknown_principals = true).await;
    someone_holds_a_data_role_on_the_fleet_hub(&h).await;
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny());
    h.sa("fleet").await.expect("reconciles");
    let st = status(&h, "fleet");
    assert_eq!(h.ready(&st.conditions), ("False".into(), "DpsIdentityLacksRole".into()));
    assert!(st.blockers[0].message.contains(DPS_MI) && st.blockers[0].message.contains("IoT Hub Data Contributor"));
    assert!(!fleet_denied_in_azure(&h));

    // The platform team grants the DPS identity the documented role: Deny goes through.
    h.api.put(
        &IotHubRoleAssignment::test("dps")
            .on_hub(FLEET_HUB)
            .for_principal(DPS_MI, PrincipalType::ServicePrincipal)
            .built_in(BuiltInRole::IoTHubDataContributor),
    );
    h.ra("dps").await.expect("reconciles");
    h.ctx.observer.rotate();
    h.sa("fleet").await.expect("reconciles");
    let st = status(&h, "fleet");
    assert_eq!(h.ready(&st.conditions), ("True".into(), "Reconciled".into()));
    assert!(fleet_denied_in_azure(&h));
    // Status still shows the identity link that Deny left working.
    let using = st.interlock.expect("searched").dependents;
    assert!(
        using.iter().any(|d| d.id.ends_with("/fleet-identity-dps") && d.authentication == "SystemAssigned"),
        "{using:?}"
    );
}

#[tokio::test]
async fn a_device_update_instance_on_the_hub_blocks_deny() {
    let du = format!(
        "deviceUpdateAccounts:\n  - {{subscriptionId: {PLATFORM_SUB}, resourceGroup: rg-platform-provisioning, name: contoso-adu, location: westeurope, instances: [{{name: fleet, iotHubs: [/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Devices/IotHubs/{FLEET_HUB}]}}]}}\n"
    );
    let a = allowed();
    let h = H::with_seed(&format!("{DEMO_SEED}\n{du}"), &allowed_refs(&a), None, |_| {}).await;
    someone_holds_a_data_role_on_the_fleet_hub(&h).await;
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny());
    h.sa("fleet").await.expect("reconciles");
    let st = status(&h, "fleet");
    assert_eq!(h.ready(&st.conditions), ("False".into(), "DeviceUpdateLinked".into()));
    assert!(st.blockers[0].resource_ids[0].ends_with("/accounts/contoso-adu/instances/fleet"), "{:?}", st.blockers);
    assert_eq!(st.interlock.unwrap().device_update_instances, 1);
    assert!(!fleet_denied_in_azure(&h));
}

fn policy(effect: &str) -> String {
    format!(
        "policies:\n  - {{assignmentName: iot-no-local-auth, scope: /subscriptions/{SUB}, definitionName: 672d56b3-23a7-4a3c-a233-b77ed7777518, displayName: 'Azure IoT Hub should have local authentication methods disabled for Service Apis', effect: {effect}, property: disableLocalAuth, value: true}}\n"
    )
}

#[tokio::test]
async fn a_policy_deny_is_reported_with_its_identifiers_and_not_retried_in_a_storm() {
    let a = allowed();
    let h = H::with_seed(&format!("{DEMO_SEED}\n{}", policy("Deny")), &allowed_refs(&a), None, |_| {}).await;
    h.emu.with_state(|s| s.hub_mut(SUB, RG, FLEET_HUB).expect("hub").set_disable_local_auth(true));
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).allow());
    let next = h.sa("fleet").await.expect("a policy refusal is a status, not an error to back off on");
    let st = status(&h, "fleet");
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "PolicyDenied"));
    assert!(ready.message.contains("policyAssignments/iot-no-local-auth"), "{}", ready.message);
    assert!(ready.message.contains("672d56b3-23a7-4a3c-a233-b77ed7777518"), "{}", ready.message);
    assert_eq!(next, Action::await_change(), "waits for the resync, no retry storm");
    let puts = h.emu.stats().count("iotHubs.put");
    h.sa("fleet").await.expect("reconciles");
    let events = h.api.events().iter().filter(|(r, _)| r == "PolicyDenied").count();
    assert_eq!(events, 1, "told once");
    assert_eq!(h.emu.stats().count("iotHubs.put"), puts + 1, "one write per reconcile, no retries inside");
}

#[tokio::test]
async fn a_modify_policy_that_overrides_the_write_is_reported_never_ready() {
    let a = allowed();
    let h = H::with_seed(&format!("{DEMO_SEED}\n{}", policy("Modify")), &allowed_refs(&a), None, |_| {}).await;
    h.emu.with_state(|s| s.hub_mut(SUB, RG, FLEET_HUB).expect("hub").set_disable_local_auth(true));
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).allow());
    h.sa("fleet").await.expect("reconciles");
    let st = status(&h, "fleet");
    assert_eq!(h.ready(&st.conditions), ("False".into(), "OverriddenByPolicy".into()));
    assert_eq!(st.shared_access_policies, Some(Access::Deny), "status says what Azure holds");
    assert!(
        h.api
            .events()
            .iter()
            .any(|(r, n)| r == "OverriddenByPolicy" && n.contains("shared access policies Deny (written: Allow)"))
    );
}

/// The headline case of the Modify policy: Allow written on a hub a DPS links by key, Azure
/// denies SAS anyway; the verdict carries the interlock's fresh view of what that breaks.
#[tokio::test]
async fn a_modify_policy_that_denies_a_dps_linked_hub_names_the_broken_dps() {
    let a = allowed();
    let h = H::with_seed(&format!("{DEMO_SEED}\n{}", policy("Modify")), &allowed_refs(&a), None, |_| {}).await;
    link_fleet_by_key(&h.emu);
    h.emu.with_state(|s| s.hub_mut(SUB, RG, FLEET_HUB).expect("hub").set_disable_local_auth(true));
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).allow());
    h.sa("fleet").await.expect("reconciles");
    let st = status(&h, "fleet");
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "OverriddenByPolicy"));
    assert!(
        ready.message.contains("the interlock reports") && ready.message.contains("contoso-fleet-hub"),
        "{}",
        ready.message
    );
    assert_eq!(st.blockers.first().map(|b| b.reason.as_str()), Some("DpsLinked"), "{:?}", st.blockers);
    assert!(st.blockers[0].resource_ids.iter().any(|id| id.ends_with("/contoso-factory-dps")), "{:?}", st.blockers);
}

#[tokio::test]
async fn a_hub_someone_else_denied_meanwhile_is_never_re_allowed_by_the_interlock() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    someone_holds_a_data_role_on_the_fleet_hub(&h).await;
    h.ctx.observer.rotate();
    // The plan's view (a moment old): SAS allowed, nothing linked.
    let obs = h.ctx.observer.get();
    obs.hub(&HubId::new(SUB, RG, FLEET_HUB)).await.unwrap();
    obs.dependents(&[SUB]).await;
    // Meanwhile someone denies SAS in the portal and a DPS links the hub by key.
    h.emu.with_state(|s| s.hub_mut(SUB, RG, FLEET_HUB).expect("hub").set_disable_local_auth(true));
    link_fleet_by_key(&h.emu);
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny());
    h.sa("fleet").await.expect("reconciles");
    assert!(fleet_denied_in_azure(&h), "the interlock only ever puts back a Deny it wrote");
    assert_eq!(h.emu.stats().count("iotHubs.put"), 0, "nothing was written");
    // What the fresh read saw is reported at once: never Ready for a hub a DPS reaches by key.
    let st = status(&h, "fleet");
    assert_eq!(h.ready(&st.conditions), ("False".into(), "DpsLinked".into()), "{:?}", st.conditions);
    assert!(st.blockers[0].message.contains("already denied"), "{}", st.blockers[0].message);
    assert!(h.api.events().iter().any(|(r, n)| r == "DpsLinked" && n.starts_with("Shared access is denied, but")));
    // The next check (fresh reads) reports the broken link, and still does not re-allow.
    h.ctx.observer.rotate();
    h.sa("fleet").await.expect("reconciles");
    assert_eq!(h.ready(&status(&h, "fleet").conditions), ("False".into(), "DpsLinked".into()));
    assert!(fleet_denied_in_azure(&h));
}

#[tokio::test]
async fn a_check_after_deny_that_cannot_complete_is_never_reported_ready() {
    let h = deny_fleet_during(DuringDeny::FailSearch).await;
    let next = h.sa("fleet").await.expect("reconciles");
    let st = status(&h, "fleet");
    assert_eq!(h.ready(&st.conditions), ("False".into(), "DpsCheckFailed".into()), "{:?}", st.conditions);
    assert!(st.blockers[0].message.contains("can no longer be checked"), "{}", st.blockers[0].message);
    assert!(fleet_denied_in_azure(&h), "Deny stays (only a key link that appeared puts SAS back)");
    assert_eq!(next, Action::requeue(Duration::from_secs(30)), "checked again soon");
    // One Warning Event for the write, whatever Ready said before: written, but unchecked.
    let told: Vec<String> = h.api.events().into_iter().filter(|(r, _)| r == "Written").map(|(_, n)| n).collect();
    let deny: Vec<&String> = told.iter().filter(|n| n.starts_with("SetHubAccess")).collect();
    assert_eq!(deny.len(), 1, "{:?}", h.api.events());
    assert!(deny[0].contains("written, but") && deny[0].contains("can no longer be checked"), "{}", deny[0]);
    assert!(!h.api.events().iter().any(|(r, _)| r == "DpsCheckFailed"), "not told twice: {:?}", h.api.events());
}

/// Someone else denies shared access between the fresh check and the write, and a DPS links the
/// hub by key: the write found nothing to do, so that Deny is not this operator's to undo. It is
/// reported (not Ready, the DPS named), never re-allowed.
#[tokio::test]
async fn a_deny_someone_else_wrote_in_the_window_is_never_put_back_even_when_a_key_link_appears() {
    // Alone, the write finds nothing to do; with a device SAS change it still sends a PUT, but
    // one that replaced a hub already denied: neither Deny is this operator's.
    for device_sas in [None, Some(Access::Deny)] {
        let h = deny_fleet_during(DuringDeny::DenyAndLinkByKey).await;
        h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).deny().device_sas(device_sas));
        h.sa("fleet").await.expect("reconciles");
        let st = status(&h, "fleet");
        assert_eq!(h.ready(&st.conditions), ("False".into(), "DpsLinked".into()), "{:?}", st.conditions);
        assert!(st.blockers[0].message.contains("already denied"), "{}", st.blockers[0].message);
        assert!(fleet_denied_in_azure(&h), "only a Deny this operator wrote is ever put back ({device_sas:?})");
        let puts = h.emu.stats().count("iotHubs.put");
        assert_eq!(puts, u64::from(device_sas.is_some()), "no undo, only the device SAS change ({device_sas:?})");
        assert!(!h.api.events().iter().any(|(r, _)| r == "DenyReverted"), "{:?}", h.api.events());
    }
}

/// The hub changes while the operator writes something else on it: Azure then holds what the
/// spec does not ask, and the resource says so (not Ready) and looks again soon.
#[tokio::test]
async fn a_hub_that_changed_while_it_was_written_is_not_ready_and_looked_at_again_soon() {
    let h = fleet_during(DuringDeny::DenyMeanwhile).await;
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).allow().device_sas(Access::Deny));
    // Reconcile until the pass that writes (the first one only adds the finalizer).
    let mut next = Action::await_change();
    for _ in 0..4 {
        h.sync();
        let obj = h.api.get::<IotHubSharedAccess>(NS, "fleet").unwrap();
        next = shared_access::reconcile(Arc::new(obj), h.ctx.clone()).await.expect("reconciles");
        if h.emu.stats().count("iotHubs.put") > 0 {
            break;
        }
    }
    let st = status(&h, "fleet");
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "Drifted"), "{}", ready.message);
    assert!(ready.message.contains("shared access policies Deny (the spec: Allow)"), "{}", ready.message);
    assert_eq!(st.shared_access_policies, Some(Access::Deny), "status says what Azure holds");
    assert_eq!(next, Action::requeue(Duration::from_secs(30)), "looked at again soon");
    // The next pass puts the hub back as the spec says.
    h.sa("fleet").await.expect("reconciles");
    assert_eq!(h.ready(&status(&h, "fleet").conditions), ("True".into(), "Reconciled".into()));
    assert!(!fleet_denied_in_azure(&h));
}

/// A hub write reads the hub back once; status is written from that read, not from another GET.
/// The reads of the reconcile that writes: the plan's, the write's own before its PUT, and the
/// read-back after it.
#[tokio::test]
async fn a_hub_write_reads_the_hub_back_once_and_status_uses_that_read() {
    let a = allowed();
    let h = H::new(&allowed_refs(&a), None).await;
    h.emu.with_state(|s| s.hub_mut(SUB, RG, FLEET_HUB).expect("hub").set_disable_local_auth(true));
    h.ctx.observer.rotate();
    let gets = h.emu.stats().count("iotHubs.get");
    h.api.put(&IotHubSharedAccess::test("fleet").on_hub(FLEET_HUB).allow());
    h.sa("fleet").await.expect("reconciles");
    let st = status(&h, "fleet");
    assert_eq!(h.ready(&st.conditions), ("True".into(), "Reconciled".into()));
    assert_eq!(st.shared_access_policies, Some(Access::Allow), "status says what Azure holds");
    assert_eq!(h.emu.stats().count("iotHubs.get") - gets, 3, "plan, before the PUT, after it: no fourth read");
}
