//! The real Azure client (`ArmClient`, through `azure_mgmt_authorization` and the typed IoT Hub /
//! DPS client) against the emulator over HTTP: the contract's behaviours as the operator sees
//! them, faults, throttling, credentials and clouds.

#[path = "../support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use iothub_access_emulator::{Bucket, Faults, ReplicationDelay, ThrottleConfig};
use iothub_access_operator::azure::{
    AssignmentFilter, Azure, AzureError, CreateOutcome, HubAccessChange, NewRoleAssignment, RoleDefinitionFilter,
};
use iothub_access_operator::crd::{Access, PrincipalType};
use iothub_access_operator::domain::{
    Cloud, DependentsObservation, Grant, HubId, LinkAuth, Permission, RoleAssignmentId, RoleDefinition,
    RoleDefinitionId, RoleType, Scope, naming,
};
use iothub_access_operator::observe::Observer;
use uuid::Uuid;

use support::*;

const READER: &str = "b447c946-2db7-41ec-983d-d8bf3b1c77e3";
const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";

fn hub(name: &str) -> HubId {
    HubId::new(SUB, RG, name)
}

/// Check `check` every 20 ms until it answers `Some`, and return that; panic naming `what` if
/// `deadline` passes first. For waiting on a delay's effect instead of racing it with a sleep.
/// (Not in `support`: the cluster tests' `eventually` is glob-imported beside it.)
async fn eventually<T>(what: &str, deadline: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < until, "still waiting after {deadline:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn new_assignment(scope: &Scope, principal: &str, role: &str) -> NewRoleAssignment {
    let guid = Uuid::parse_str(role).unwrap();
    NewRoleAssignment {
        id: RoleAssignmentId {
            scope: scope.clone(),
            name: naming::Owner::new("test", "iot", "client").assignment_name(&Grant::new(
                scope.clone(),
                guid,
                principal,
            )),
        },
        role_definition_id: RoleDefinitionId::new(Scope::Subscription(SUB.into()), guid),
        principal_id: principal.into(),
        principal_type: PrincipalType::ServicePrincipal,
        description: Some("test".into()),
    }
}

#[tokio::test]
async fn role_assignments_round_trip_with_idempotent_create_and_delete() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let c = client(&emu);
    let scope = hub(FACTORY_HUB).scope();
    let new = new_assignment(&scope, TELEMETRY_SP, READER);
    assert_eq!(c.create_role_assignment(&new).await.unwrap(), CreateOutcome::Created);
    assert_eq!(c.create_role_assignment(&new).await.unwrap(), CreateOutcome::Created, "PUT again is idempotent");

    let at = c.list_role_assignments(&scope, &AssignmentFilter::AtScope).await.unwrap();
    let mine: Vec<_> = at.iter().filter(|a| a.principal_id == TELEMETRY_SP).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].id, new.id);
    assert_eq!(mine[0].role_definition, Uuid::parse_str(READER).unwrap());
    assert!(
        at.iter()
            .any(|a| a.role_definition == Uuid::parse_str(CONTRIBUTOR).unwrap()
                && a.id.scope.level().to_string() != "hub"),
        "atScope() at the hub includes the Contributor inherited from the resource group: {at:?}"
    );

    assert!(c.delete_role_assignment(&new.id).await.unwrap(), "deleted (200)");
    assert!(!c.delete_role_assignment(&new.id).await.unwrap(), "already gone (204) is not an error");
    let at = c.list_role_assignments(&scope, &AssignmentFilter::AtScope).await.unwrap();
    assert!(at.iter().all(|a| a.principal_id != TELEMETRY_SP));
}

#[tokio::test]
async fn an_equal_assignment_under_another_name_is_reported_for_adoption() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let c = client(&emu);
    let scope = Scope::parse(&rg_scope()).unwrap();
    // The seed holds Contributor for the ops group at the resource group under a random name.
    let mut new = new_assignment(&scope, OPS_GROUP, CONTRIBUTOR);
    new.principal_type = PrincipalType::Group;
    match c.create_role_assignment(&new).await.unwrap() {
        CreateOutcome::AlreadyExists { existing } => {
            assert_eq!(existing.name.to_string(), "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b");
            assert_eq!(existing.scope, scope);
        }
        other => panic!("expected RoleAssignmentExists, got {other:?}"),
    }
    let all = c.list_role_assignments(&scope, &AssignmentFilter::PrincipalId(OPS_GROUP.into())).await.unwrap();
    assert_eq!(all.len(), 1, "nothing duplicated");
}

#[tokio::test]
async fn reusing_a_name_for_another_principal_is_refused() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let c = client(&emu);
    let scope = hub(FLEET_HUB).scope();
    let first = new_assignment(&scope, TELEMETRY_SP, READER);
    c.create_role_assignment(&first).await.unwrap();
    let mut clash = new_assignment(&scope, SYNC_SP, READER);
    clash.id = first.id.clone();
    match c.create_role_assignment(&clash).await {
        Err(AzureError::Invalid { code, .. }) => assert_eq!(code, "RoleAssignmentUpdateNotPermitted"),
        other => panic!("expected RoleAssignmentUpdateNotPermitted, got {other:?}"),
    }
}

#[tokio::test]
async fn custom_roles_are_unique_by_name_and_protected_while_assigned() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let c = client(&emu);
    let sub = Scope::Subscription(SUB.into());
    let def = |guid: Uuid| RoleDefinition {
        guid,
        role_name: "Registry Reader".into(),
        description: "read devices".into(),
        role_type: RoleType::CustomRole,
        permissions: vec![Permission {
            data_actions: vec!["Microsoft.Devices/IotHubs/devices/read".into()],
            ..Permission::default()
        }],
        assignable_scopes: vec![format!("/subscriptions/{SUB}")],
    };
    let guid = naming::Owner::new("test", "iot", "registry-reader").definition_name();
    c.put_role_definition(&sub, &def(guid)).await.unwrap();
    c.put_role_definition(&sub, &def(guid)).await.expect("update (PUT again) is fine");
    let got = c.get_role_definition(&RoleDefinitionId::new(sub.clone(), guid)).await.unwrap().expect("exists");
    assert_eq!(got.role_name, "Registry Reader");
    assert_eq!(got.permissions[0].data_actions, vec!["Microsoft.Devices/IotHubs/devices/read".to_string()]);
    let named = c.list_role_definitions(&sub, &RoleDefinitionFilter::RoleName("Registry Reader".into())).await.unwrap();
    assert_eq!(named.len(), 1);

    match c.put_role_definition(&sub, &def(Uuid::new_v4())).await {
        Err(AzureError::Conflict { code, .. }) => assert_eq!(code, "RoleDefinitionWithSameNameExists"),
        other => panic!("expected RoleDefinitionWithSameNameExists, got {other:?}"),
    }

    let scope = hub(FLEET_HUB).scope();
    let mut uses = new_assignment(&scope, SYNC_SP, &guid.to_string());
    uses.role_definition_id = RoleDefinitionId::new(sub.clone(), guid);
    c.create_role_assignment(&uses).await.unwrap();
    let err = c.delete_role_definition(&RoleDefinitionId::new(sub.clone(), guid)).await.expect_err("in use");
    assert!(err.to_string().contains("RoleDefinitionHasAssignments"), "{err}");
    c.delete_role_assignment(&uses.id).await.unwrap();
    assert!(c.delete_role_definition(&RoleDefinitionId::new(sub.clone(), guid)).await.unwrap());
    assert!(
        !c.delete_role_definition(&RoleDefinitionId::new(sub.clone(), guid)).await.unwrap(),
        "204 when already gone"
    );
    assert!(c.get_role_definition(&RoleDefinitionId::new(sub.clone(), guid)).await.unwrap().is_none());
}

#[tokio::test]
async fn hub_access_changes_go_through_if_match_and_the_long_running_operation() {
    let emu = emulator(DEMO_SEED, |c| c.lro_running_polls = 2).await;
    let c = client(&emu);
    let before = c.get_hub(&hub(FLEET_HUB)).await.unwrap().expect("hub");
    assert_eq!(before.shared_access, Access::Allow);
    assert_eq!(before.host_names, vec!["contoso-fleet-hub.azure-devices.net".to_string()]);
    let change =
        HubAccessChange { shared_access: Some(Access::Deny), device_sas: None, module_sas: Some(Access::Deny) };
    let after = c.set_hub_access(&hub(FLEET_HUB), &change).await.unwrap().hub;
    assert_eq!((after.shared_access, after.module_sas, after.device_sas), (Access::Deny, Access::Deny, Access::Allow));
    assert_ne!(after.etag, before.etag, "every write changes the etag");
    let stats = emu.stats();
    assert_eq!(stats.count_status("iotHubs.operationResult", 200), 3, "polled Running twice, then Succeeded");
    assert!(c.get_hub(&hub("no-such-hub")).await.unwrap().is_none(), "a missing hub is None, not an error");
}

#[tokio::test]
async fn a_stale_etag_is_re_read_and_retried_keeping_the_other_writer_s_change() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    emu.set_faults(Faults {
        latency: Duration::from_millis(400),
        only_operations: Some(vec!["iotHubs.put".into()]),
        ..Faults::default()
    });
    let c = client(&emu);
    let tamper = async {
        // Our GET has read the etag; the PUT that follows is held 400 ms by the latency.
        eventually("the client to read the hub", Duration::from_secs(10), async || {
            (emu.stats().count_status("iotHubs.get", 200) > 0).then_some(())
        })
        .await;
        // Another writer changes the hub while our PUT is on its way: our etag is stale.
        emu.with_state(|s| s.hub_mut(SUB, RG, FLEET_HUB).expect("hub").set_disable_device_sas(true));
    };
    let change = HubAccessChange { shared_access: Some(Access::Deny), ..HubAccessChange::default() };
    let fleet = hub(FLEET_HUB);
    let (written, ()) = tokio::join!(c.set_hub_access(&fleet, &change), tamper);
    let after = written.unwrap().hub;
    assert_eq!(emu.stats().count_status("iotHubs.put", 412), 1, "the stale etag was refused once");
    assert_eq!(after.shared_access, Access::Deny);
    assert_eq!(
        after.device_sas,
        Access::Deny,
        "the re-read kept the other writer's change (PUT replaces the whole hub)"
    );
}

#[tokio::test]
async fn dps_links_are_listed_across_pages() {
    let mut seed: serde_yaml::Value = serde_yaml::from_str(DEMO_SEED).unwrap();
    let dps = seed["provisioningServices"].as_sequence_mut().unwrap();
    for i in 0..4 {
        let mut extra = dps[0].clone();
        extra["name"] = format!("extra-dps-{i}").into();
        extra["links"] = serde_yaml::Value::Sequence(vec![]);
        dps.push(extra);
    }
    let emu = emulator(&serde_yaml::to_string(&seed).unwrap(), |c| c.page_size = 2).await;
    let c = client(&emu);
    let list = c.list_dps(PLATFORM_SUB).await.unwrap();
    assert_eq!(list.len(), 5, "all pages followed: {list:?}");
    assert!(emu.stats().count("provisioningServices.list") >= 3);
    let factory = list.iter().find(|d| d.id.contains("contoso-factory-dps")).unwrap();
    let obs = c.get_hub(&hub(FACTORY_HUB)).await.unwrap().unwrap();
    assert!(factory.links.iter().any(|l| l.auth == LinkAuth::Key && l.links(&obs)));
}

#[tokio::test]
async fn throttling_is_absorbed_and_paced() {
    let emu = emulator(DEMO_SEED, |c| {
        c.accept_unknown_principals = true;
        c.throttle = Some(ThrottleConfig {
            reads: Bucket { capacity: 100.0, refill_per_sec: 100.0 },
            writes: Bucket { capacity: 5.0, refill_per_sec: 40.0 },
            deletes: None,
        });
    })
    .await;
    let c = client(&emu);
    let scope = hub(FLEET_HUB).scope();
    let creates: Vec<_> = (0..30).map(|_| new_assignment(&scope, &Uuid::new_v4().to_string(), READER)).collect();
    let results = futures::future::join_all(creates.iter().map(|n| c.create_role_assignment(n))).await;
    assert!(results.iter().all(Result::is_ok), "no request failed for the user: {results:?}");
    let listed = c.list_role_assignments(&scope, &AssignmentFilter::AtScope).await.unwrap();
    for n in &creates {
        assert_eq!(listed.iter().filter(|a| a.id == n.id).count(), 1);
    }
}

#[tokio::test]
async fn transient_faults_and_lost_answers_lose_nothing_and_duplicate_nothing() {
    let emu = emulator(DEMO_SEED, |c| c.accept_unknown_principals = true).await;
    emu.set_faults(Faults {
        error_rate: 0.25,
        throttle_rate: 0.1,
        throttle_retry_after_secs: 0,
        reset_before_rate: 0.05,
        reset_after_rate: 0.1,
        rng_seed: Some(7),
        ..Faults::default()
    });
    let mut cfg = config(&emu, Cloud::AzurePublicCloud);
    cfg.retry.max_attempts = 12;
    let c = client_with(cfg);
    let scope = hub(FACTORY_HUB).scope();
    let creates: Vec<_> = (0..25).map(|_| new_assignment(&scope, &Uuid::new_v4().to_string(), READER)).collect();
    for n in &creates {
        let out = c.create_role_assignment(n).await.expect("retried until it worked");
        assert_eq!(out, CreateOutcome::Created, "a retried PUT of the same name is idempotent");
    }
    emu.set_faults(Faults::default());
    let snapshot = emu.snapshot();
    for n in &creates {
        let same: Vec<_> = snapshot.role_assignments.iter().filter(|a| a.principal_id == n.principal_id).collect();
        assert_eq!(same.len(), 1, "exactly one assignment for {}", n.principal_id);
    }
    assert!(emu.stats().faults_injected() > 0, "faults were injected");
}

#[tokio::test]
async fn principal_not_found_is_retried_while_replicating_then_reported_clearly() {
    let emu = emulator(DEMO_SEED, |c| {
        c.replication_delay = Some(ReplicationDelay { seconds: 0.6, even_with_principal_type: true });
    })
    .await;
    let c = client(&emu);
    let scope = hub(FACTORY_HUB).scope();
    // A principal registered just now: PrincipalNotFound for a while, then it works.
    let fresh = Uuid::new_v4().to_string();
    emu.add_principal(iothub_access_emulator::Principal {
        id: fresh.clone(),
        principal_type: "ServicePrincipal".into(),
        ..Default::default()
    });
    let out = c.create_role_assignment(&new_assignment(&scope, &fresh, READER)).await.unwrap();
    assert_eq!(out, CreateOutcome::Created);
    // A principal the directory does not know: reported once the bounded retry is spent.
    let unknown = Uuid::new_v4().to_string();
    let started = std::time::Instant::now();
    match c.create_role_assignment(&new_assignment(&scope, &unknown, READER)).await {
        Err(AzureError::PrincipalNotFound { message }) => assert!(!message.is_empty()),
        other => panic!("expected PrincipalNotFound, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10), "bounded by principal_not_found_timeout");
}

#[tokio::test]
async fn a_wrong_client_secret_is_a_clear_authentication_error() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let kind = iothub_access_operator::azure::credential::CredentialKind::ClientSecret {
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        secret: "wrong".into(),
    };
    let c = iothub_access_operator::azure::args::connect(config(&emu, Cloud::AzurePublicCloud), &kind).unwrap();
    match c.get_hub(&hub(FLEET_HUB)).await {
        Err(AzureError::Unauthenticated { message }) => {
            assert!(message.contains("invalid_client") && message.contains("AADSTS7000215"), "{message}");
            assert!(!message.contains("wrong"), "the secret is never echoed");
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

#[tokio::test]
async fn workload_identity_reads_the_rotating_token_file() {
    // Access tokens that live 2 s: the second request needs a new one, by then the kubelet has
    // rotated the projected service account token in the file.
    let emu = emulator(DEMO_SEED, |c| c.token_lifetime_secs = 2).await;
    let dir = std::env::temp_dir().join(format!("iothub-access-wi-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("azure-identity-token");
    let first = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmaXJzdCJ9.c2ln";
    let rotated = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyb3RhdGVkIn0.c2ln";
    std::fs::write(&file, first).unwrap();
    let kind = iothub_access_operator::azure::credential::CredentialKind::WorkloadIdentity {
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        token_file: file.clone(),
    };
    let c = iothub_access_operator::azure::args::connect(config(&emu, Cloud::AzurePublicCloud), &kind).unwrap();
    assert!(c.get_hub(&hub(FLEET_HUB)).await.unwrap().is_some());
    std::fs::write(&file, rotated).unwrap();
    // The first access token is kept for half its life; the first request after that needs a new one.
    eventually("a request to need a new access token", Duration::from_secs(10), async || {
        assert!(c.get_hub(&hub(FLEET_HUB)).await.unwrap().is_some());
        (emu.stats().federated_assertions.len() > 1).then_some(())
    })
    .await;
    assert_eq!(emu.stats().federated_assertions, vec![first.to_string(), rotated.to_string()]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn sovereign_clouds_use_their_audience_and_hub_suffix() {
    let emu = emulator(DEMO_SEED, |c| c.hub_host_suffix = "azure-devices.cn".into()).await;
    let c: Arc<dyn Azure> = client_with(config(&emu, Cloud::AzureChinaCloud));
    let h = c.get_hub(&hub(FACTORY_HUB)).await.unwrap().unwrap();
    assert_eq!(h.host_names, vec!["contoso-factory-hub.azure-devices.cn".to_string()]);
    // The DPS (in the platform subscription) names the .cn host: Deny is still refused.
    let obs = Observer::new(c.clone());
    match obs.dependents(&[SUB]).await {
        DependentsObservation::Complete(d) => {
            assert!(d.dps.iter().any(|x| x.links.iter().any(|l| l.links(&h))), "{d:?}")
        }
        DependentsObservation::Failed(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn identity_links_are_told_apart_only_with_an_api_version_the_provider_offers_that_reports_them() {
    let mut seed: serde_yaml::Value = serde_yaml::from_str(DEMO_SEED).unwrap();
    let dps = seed["provisioningServices"].as_sequence_mut().unwrap();
    let mut identity = dps[0].clone();
    identity["name"] = "fleet-identity-dps".into();
    identity["links"] = serde_yaml::from_str("[{hub: contoso-fleet-hub, authenticationType: SystemAssigned}]").unwrap();
    dps.push(identity);
    let seed = serde_yaml::to_string(&seed).unwrap();
    let auth_of = |list: Vec<iothub_access_operator::domain::ObservedDps>| {
        list.into_iter().find(|d| d.id.contains("fleet-identity-dps")).map(|d| d.links[0].auth.clone())
    };
    // The provider lists 2026-08-01 (stable, reports link types): picked at run time.
    let emu = emulator(&seed, |_| {}).await;
    assert_eq!(auth_of(client(&emu).list_dps(PLATFORM_SUB).await.unwrap()), Some(LinkAuth::SystemAssigned));
    assert!(
        emu.stats().count_status("provisioningServices.list", 200) == 1
            && emu.stats().count_status("provisioningServices.list", 400) == 0,
        "the list was made with a version the provider lists"
    );
    // An operator pinned to the old stable version cannot tell: fail closed, a key link.
    let mut cfg = config(&emu, Cloud::AzurePublicCloud);
    cfg.dps_api_version = Some("2022-12-12".into());
    assert_eq!(auth_of(client_with(cfg).list_dps(PLATFORM_SUB).await.unwrap()), Some(LinkAuth::Key));
    // A subscription whose provider lists no such version: the default, every link a key link.
    let old = emulator(&seed, |c| {
        c.provider_api_versions.insert(
            "Microsoft.Devices/ProvisioningServices".into(),
            vec!["2022-12-12".into(), "2026-04-01".into(), "2025-02-01-preview".into()],
        );
    })
    .await;
    assert_eq!(auth_of(client(&old).list_dps(PLATFORM_SUB).await.unwrap()), Some(LinkAuth::Key));
}

#[tokio::test]
async fn the_search_reaches_every_listed_subscription_across_pages_and_fails_closed_on_a_refusal() {
    const HIDDEN: &str = "9e9e9e9e-1111-4222-8333-444444444444";
    const EMPTY: &str = "8d8d8d8d-1111-4222-8333-444444444444";
    let seed = DEMO_SEED.replacen(
        "resourceGroups:\n",
        &format!("resourceGroups:\n  - {{subscriptionId: {HIDDEN}, name: rg-x, location: westeurope}}\n"),
        1,
    );
    let seed = format!(
        "{seed}\nsubscriptions:\n  - {{subscriptionId: {HIDDEN}, access: Hidden}}\n  - {{subscriptionId: {EMPTY}}}\n"
    );
    let emu = emulator(&seed, |c| c.page_size = 1).await;
    let c: Arc<dyn Azure> = client(&emu);
    let mut want = vec![SUB.to_string(), PLATFORM_SUB.to_string(), EMPTY.to_string()];
    want.sort();
    assert_eq!(c.list_subscriptions().await.unwrap(), want, "every page followed; the hidden one is not listed");
    assert!(emu.stats().count("subscriptions.list") >= 3);
    let obs = Observer::new(c.clone());
    match obs.dependents(&[SUB]).await {
        DependentsObservation::Complete(d) => {
            assert_eq!(d.subscriptions, want);
            assert_eq!(d.dps.len(), 1, "the DPS in the platform subscription is found: {d:?}");
        }
        DependentsObservation::Failed(e) => panic!("{e}"),
    }
    // The hub's own subscription is searched even if the list leaves it out.
    match Observer::new(c.clone()).dependents_fresh(&[HIDDEN]).await {
        DependentsObservation::Failed(e) => assert!(e.contains(HIDDEN) && e.contains("AuthorizationFailed"), "{e}"),
        DependentsObservation::Complete(d) => {
            panic!("a subscription that refuses the search cannot be complete: {d:?}")
        }
    }
    emu.with_state(|s| s.set_subscription_access(PLATFORM_SUB, iothub_access_emulator::SubscriptionAccess::Forbidden));
    match Observer::new(c.clone()).dependents(&[SUB]).await {
        DependentsObservation::Failed(e) => assert!(e.contains(PLATFORM_SUB), "{e}"),
        DependentsObservation::Complete(d) => panic!("{d:?}"),
    }
}

#[tokio::test]
async fn dps_answers_the_parser_does_not_understand_fail_the_search_naming_what() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let c = client(&emu);
    for (raw, says) in [
        (serde_json::json!([{"location": "westeurope"}]), "names no hub"),
        (
            serde_json::json!([{"hostName": "contoso-fleet-hub.azure-devices.net", "authenticationType": "Certificate"}]),
            "unknown authenticationType",
        ),
        (serde_json::json!([{"name": ["not", "a", "string"]}]), "not understood"),
    ] {
        emu.with_state(|s| s.dps.iter_mut().for_each(|d| d.raw_iot_hubs = Some(raw.as_array().unwrap().clone())));
        let e = c.list_dps(PLATFORM_SUB).await.expect_err("not understood is not 'no link'").to_string();
        assert!(e.contains(says) && e.contains("contoso-factory-dps"), "{raw}: {e}");
    }
}

#[tokio::test]
async fn hubs_are_read_with_their_device_and_service_host_names_when_the_provider_offers_them() {
    let seed = DEMO_SEED.replace(
        "    name: contoso-fleet-hub\n",
        "    name: contoso-fleet-hub\n    deviceHostName: contoso-fleet-hub.device.azure-devices.net\n    serviceHostName: contoso-fleet-hub.service.azure-devices.net\n",
    );
    assert_ne!(seed, DEMO_SEED);
    let emu = emulator(&seed, |_| {}).await;
    let h = client(&emu).get_hub(&hub(FLEET_HUB)).await.unwrap().unwrap();
    assert_eq!(h.host_names.len(), 3, "{:?}", h.host_names);
    assert!(h.has_host("CONTOSO-FLEET-HUB.device.azure-devices.net"));
    let mut old = config(&emu, Cloud::AzurePublicCloud);
    old.iothub_api_version = Some("2023-06-30".into());
    let h = client_with(old).get_hub(&hub(FLEET_HUB)).await.unwrap().unwrap();
    assert_eq!(h.host_names, vec!["contoso-fleet-hub.azure-devices.net".to_string()], "the flag overrides");
}

#[tokio::test]
async fn hub_writes_send_no_read_only_property_keep_the_rest_and_survive_the_short_404_window() {
    let emu = emulator(DEMO_SEED, |c| {
        c.reject_read_only_properties = true;
        // Longer than the operation's polls (Retry-After is at least 1 s, as ARM sends it).
        c.hub_not_found_after_local_auth_change = Duration::from_millis(4500);
    })
    .await;
    let c = client(&emu);
    let tags_before = emu.snapshot().hubs.into_iter().find(|x| x.name == FLEET_HUB).unwrap().tags;
    let change = HubAccessChange { shared_access: Some(Access::Deny), ..HubAccessChange::default() };
    let after = c
        .set_hub_access(&hub(FLEET_HUB), &change)
        .await
        .expect("a 404 right after the change is not a deleted hub")
        .hub;
    assert_eq!(after.shared_access, Access::Deny);
    let stats = emu.stats();
    assert!(stats.read_only_sent.is_empty(), "read-only properties sent: {:?}", stats.read_only_sent);
    assert!(stats.count_status("iotHubs.get", 404) >= 1, "the window was met: {:?}", stats.requests);
    let snap = emu.snapshot().hubs.into_iter().find(|x| x.name == FLEET_HUB).unwrap();
    assert_eq!(snap.tags, tags_before, "what the client does not name is kept");
    assert!(snap.properties.as_ref().is_some_and(|p| p.contains_key("eventHubEndpoints")), "{:?}", snap.properties);
    // A hub this client did not just change: 404 means gone.
    assert!(c.get_hub(&hub("no-such-hub")).await.unwrap().is_none());
}

#[tokio::test]
async fn device_update_instances_are_listed_with_their_hubs() {
    let hub_id = hub(FLEET_HUB).arm_id();
    let seed = format!(
        "{DEMO_SEED}\ndeviceUpdateAccounts:\n  - {{subscriptionId: {SUB}, resourceGroup: {RG}, name: adu-1, location: westeurope, instances: [{{name: fleet, iotHubs: [{hub_id}]}}, {{name: empty, iotHubs: []}}]}}\n"
    );
    let emu = emulator(&seed, |c| c.page_size = 1).await;
    let mut list = client(&emu).list_device_update_instances(SUB).await.unwrap();
    list.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(list.len(), 2);
    assert!(list[1].id.ends_with("/accounts/adu-1/instances/fleet"));
    assert_eq!(list[1].hub_ids, vec![hub_id]);
    assert!(client(&emu).list_device_update_instances(PLATFORM_SUB).await.unwrap().is_empty());
}

/// A fake ARM on loopback answering every request with `answer(its own base URL, the request
/// line)`: (status line, JSON body). Returns its base URL.
async fn fake_arm<F>(answer: F) -> String
where
    F: Fn(&str, &str) -> (&'static str, String) + Send + Sync + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let arm = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", arm.local_addr().unwrap());
    let answer = Arc::new(answer);
    let at = base.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = arm.accept().await {
            let (answer, at) = (answer.clone(), at.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let line = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_string();
                let (status, body) = answer(&at, &line);
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(format!("{head}{body}").as_bytes()).await;
            });
        }
    });
    base
}

/// The client with ARM at `arm_url` (tokens from the emulator), one attempt per request.
fn client_at_fake_arm(emu: &iothub_access_emulator::EmulatorHandle, arm_url: &str) -> Arc<dyn Azure> {
    let mut cfg = config(emu, Cloud::AzurePublicCloud);
    cfg.endpoints = iothub_access_operator::azure::credential::CloudEndpoints::new(
        Cloud::AzurePublicCloud,
        Some(arm_url),
        Some(&emu.base_url()),
    );
    cfg.retry.max_attempts = 1;
    cfg.dps_api_version = Some("2022-12-12".into());
    client_with(cfg)
}

/// An answer whose `nextLink` points outside the ARM endpoint (a compromised or spoofed page):
/// the bearer token is never sent there, by the typed client or through the authorization SDK.
#[tokio::test]
async fn attack_a_next_link_outside_arm_never_receives_the_token() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let thief = format!("http://{}", elsewhere.local_addr().unwrap());
    let stolen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = stolen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = elsewhere.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n{\"value\":[]}").await;
        }
    });
    // A fake ARM whose every list page says "more at the thief's".
    let next = format!("{thief}/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments?page=2");
    let arm_url = fake_arm(move |_, _| ("200 OK", format!(r#"{{"value":[],"nextLink":"{next}"}}"#))).await;
    let c = client_at_fake_arm(&emu, &arm_url);
    let sdk = c.list_role_assignments(&Scope::Subscription(SUB.into()), &AssignmentFilter::All).await;
    assert!(sdk.is_err(), "the SDK's list must not follow the link: {sdk:?}");
    let typed = c.list_dps(SUB).await;
    assert!(typed.unwrap_err().to_string().contains("outside the ARM endpoint"));
    assert_eq!(stolen.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing reached the other host");
}

/// A DPS list that breaks off after its first page (a page that fails, a `nextLink` that is not a
/// URL) is an error naming what happened, never a shorter list: one DPS seen on page one must not
/// stand for the subscription.
#[tokio::test]
async fn a_dps_list_that_breaks_off_after_its_first_page_is_an_error_not_a_shorter_list() {
    const BROKEN: &str = "1b1b1b1b-1111-4222-8333-444444444444";
    const GARBLED: &str = "2c2c2c2c-1111-4222-8333-444444444444";
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let arm_url = fake_arm(|base, line| {
        let dps = r#"{"id":"/subscriptions/x/resourceGroups/rg/providers/Microsoft.Devices/provisioningServices/d1","name":"d1","properties":{}}"#;
        if line.contains("page=2") {
            (
                "503 Service Unavailable",
                r#"{"error":{"code":"ServiceUnavailable","message":"try later"}}"#.to_string(),
            )
        } else if line.contains(BROKEN) {
            let next = format!(
                "{base}/subscriptions/{BROKEN}/providers/Microsoft.Devices/provisioningServices?api-version=2022-12-12&page=2"
            );
            ("200 OK", format!(r#"{{"value":[{dps}],"nextLink":"{next}"}}"#))
        } else {
            ("200 OK", format!(r#"{{"value":[{dps}],"nextLink":"http://[::1"}}"#))
        }
    })
    .await;
    let c = client_at_fake_arm(&emu, &arm_url);
    let broken = c.list_dps(BROKEN).await.expect_err("a failed second page fails the list").to_string();
    assert!(broken.contains("503") && broken.contains("ServiceUnavailable"), "{broken}");
    let garbled = c.list_dps(GARBLED).await.expect_err("an unusable nextLink fails the list").to_string();
    assert!(garbled.contains("nextLink") && garbled.contains("cannot be followed"), "{garbled}");
}

/// A subscription where Microsoft.DeviceUpdate is not registered holds no Device Update instance:
/// the search completes (its lists would answer 409), and the moment the provider is registered
/// and an instance uses the hub, the next fresh search sees it (nothing stale kept).
#[tokio::test]
async fn an_unregistered_provider_holds_nothing_and_registering_it_is_seen_at_once() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    emu.with_state(|s| s.set_provider_registered(PLATFORM_SUB, "Microsoft.DeviceUpdate", false));
    let c: Arc<dyn Azure> = client(&emu);
    let obs = Observer::new(c.clone());
    match obs.dependents_fresh(&[SUB]).await {
        DependentsObservation::Complete(d) => assert!(d.device_update.is_empty()),
        DependentsObservation::Failed(e) => panic!("not registered is not a failure: {e}"),
    }
    assert_eq!(emu.stats().count_status("deviceUpdate.accounts.list", 409), 0, "not even asked");
    emu.with_state(|s| {
        s.set_provider_registered(PLATFORM_SUB, "Microsoft.DeviceUpdate", true);
        s.add_device_update_account(iothub_access_emulator::DeviceUpdateAccount {
            subscription_id: PLATFORM_SUB.into(),
            resource_group: "rg-platform-provisioning".into(),
            name: "adu".into(),
            location: "westeurope".into(),
            instances: vec![iothub_access_emulator::DeviceUpdateInstance {
                name: "fleet".into(),
                location: None,
                iot_hubs: vec![hub(FLEET_HUB).arm_id()],
            }],
        });
    });
    match obs.dependents_fresh(&[SUB]).await {
        DependentsObservation::Complete(d) => assert_eq!(d.device_update.len(), 1, "{d:?}"),
        DependentsObservation::Failed(e) => panic!("{e}"),
    }
}

/// A fake ARM on loopback that keeps the request line of everything it receives and answers
/// each with `answer(its own base URL, the request line)`: (status line, extra headers, JSON
/// body). Each request is read whole (a PUT's body too); the connection closes after the answer.
async fn recording_fake_arm<F>(answer: F) -> (String, Arc<std::sync::Mutex<Vec<String>>>)
where
    F: Fn(&str, &str) -> (&'static str, Vec<(&'static str, String)>, String) + Send + Sync + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let arm = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", arm.local_addr().unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (answer, at, log) = (Arc::new(answer), base.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = arm.accept().await {
            let (answer, at, log) = (answer.clone(), at.clone(), log.clone());
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    req.extend_from_slice(&buf[..n]);
                    if let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if req.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let line = String::from_utf8_lossy(&req).lines().next().unwrap_or_default().to_string();
                log.lock().unwrap().push(line.clone());
                let (status, headers, body) = answer(&at, &line);
                let mut head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                let _ = s.write_all(format!("{head}\r\n{body}").as_bytes()).await;
            });
        }
    });
    (base, seen)
}

/// An attacker who controls a list page (a spoofed or compromised answer) keeps the `nextLink` at
/// the ARM endpoint, so the origin check passes, but points it at another subscription's path:
/// plainly, or through a dot segment the URL parser resolves. The DPS list fails naming the
/// nextLink (no shorter list, no skip token quoted), and the other path is never requested with
/// the token. A link to the list's own path in another case, with its skip token, is followed.
#[tokio::test]
async fn attack_a_next_link_to_another_subscription_at_arm_is_refused_and_never_requested() {
    const PLAIN: &str = "3d3d3d3d-1111-4222-8333-444444444444";
    const DOTTED: &str = "4e4e4e4e-1111-4222-8333-444444444444";
    const VICTIM: &str = "9f9f9f9f-1111-4222-8333-444444444444";
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let (arm_url, seen) = recording_fake_arm(|base, line| {
        let lower = line.to_ascii_lowercase();
        if !lower.contains("/provisioningservices") {
            let missing = r#"{"error":{"code":"NotFound","message":"no provider registration here"}}"#;
            return ("404 Not Found", vec![], missing.to_string());
        }
        let dps = r#"{"id":"/subscriptions/x/resourceGroups/rg/providers/Microsoft.Devices/provisioningServices/d1","name":"d1","properties":{}}"#;
        let list = "providers/Microsoft.Devices/provisioningServices?api-version=2022-12-12&$skipToken=SECRET-SKIP";
        let next = if lower.contains("skiptoken") {
            None
        } else if line.contains(PLAIN) {
            Some(format!("{base}/subscriptions/{VICTIM}/{list}"))
        } else if line.contains(DOTTED) {
            Some(format!("{base}/subscriptions/{DOTTED}/../{VICTIM}/{list}"))
        } else {
            Some(format!("{base}/SUBSCRIPTIONS/{SUB}/{}", list.replace("providers/Microsoft.Devices", "PROVIDERS/microsoft.devices")))
        };
        let next = next.map(|n| format!(r#","nextLink":"{n}""#)).unwrap_or_default();
        ("200 OK", vec![], format!(r#"{{"value":[{dps}]{next}}}"#))
    })
    .await;
    let c = client_at_fake_arm(&emu, &arm_url);
    for sub in [PLAIN, DOTTED] {
        let err = c.list_dps(sub).await.expect_err("a nextLink to another path fails the list").to_string();
        assert!(err.contains("nextLink") && err.contains("differs from the list's path"), "{err}");
        assert!(!err.contains("SECRET-SKIP"), "no token quoted: {err}");
    }
    assert_eq!(c.list_dps(SUB).await.unwrap().len(), 2, "the list's own path, in another case, is followed");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().any(|l| l.contains(PLAIN)) && seen.iter().any(|l| l.contains(DOTTED)), "{seen:?}");
    assert!(
        !seen.iter().any(|l| l.to_ascii_lowercase().contains(VICTIM)),
        "the other subscription's path was never requested: {seen:?}"
    );
    assert_eq!(seen.iter().filter(|l| l.contains("SECRET-SKIP")).count(), 1, "only the good link was followed");
}

/// An attacker who controls the answer to a hub PUT points its `Azure-AsyncOperation` URL at the
/// ARM endpoint but outside the hub's subscription: another subscription's operation, or one
/// reached through a dot segment (plain or percent-encoded) that the URL parser would resolve.
/// The hub write fails naming the URL's header and the URL is never polled with the token; a
/// canonical operation URL in the hub's subscription (base64 id with padding) is polled.
#[tokio::test]
async fn attack_an_async_operation_url_outside_the_hub_s_subscription_is_never_polled() {
    const VICTIM: &str = "9f9f9f9f-1111-4222-8333-444444444444";
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let (arm_url, seen) = recording_fake_arm(|base, line| {
        let op = "providers/Microsoft.Devices/locations/westeurope/operationResults/b3NfaWg=?api-version=2023-06-30";
        if line.contains("/operationResults/") {
            return ("200 OK", vec![], r#"{"status":"Succeeded"}"#.to_string());
        }
        let name = ["dotted-hub", "encoded-hub", "other-hub", "good-hub"]
            .into_iter()
            .find(|n| line.contains(&format!("/IotHubs/{n}?")))
            .unwrap_or("no-such-hub");
        if line.starts_with("PUT ") {
            let url = match name {
                "dotted-hub" => format!("{base}/subscriptions/{SUB}/../{VICTIM}/{op}"),
                "encoded-hub" => format!("{base}/subscriptions/{SUB}/%2e%2e/{VICTIM}/{op}"),
                "other-hub" => format!("{base}/subscriptions/{VICTIM}/{op}"),
                _ => format!("{base}/subscriptions/{SUB}/{op}"),
            };
            return ("201 Created", vec![("azure-asyncoperation", url), ("retry-after", "0".into())], "{}".into());
        }
        let hub = format!(
            r#"{{"id":"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Devices/IotHubs/{name}","name":"{name}","location":"westeurope","etag":"AAAA","properties":{{"disableLocalAuth":false}}}}"#
        );
        ("200 OK", vec![], hub)
    })
    .await;
    let mut cfg = config(&emu, Cloud::AzurePublicCloud);
    cfg.endpoints = iothub_access_operator::azure::credential::CloudEndpoints::new(
        Cloud::AzurePublicCloud,
        Some(&arm_url),
        Some(&emu.base_url()),
    );
    cfg.retry.max_attempts = 1;
    cfg.iothub_api_version = Some("2023-06-30".into());
    let c = client_with(cfg);
    let change = HubAccessChange { shared_access: Some(Access::Deny), ..HubAccessChange::default() };
    for name in ["dotted-hub", "encoded-hub", "other-hub"] {
        let err = c.set_hub_access(&hub(name), &change).await.expect_err(name).to_string();
        assert!(err.contains("Azure-AsyncOperation") && err.contains("not polling it"), "{name}: {err}");
    }
    assert!(c.set_hub_access(&hub("good-hub"), &change).await.unwrap().written, "the canonical URL is polled");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|l| l.starts_with("PUT ")).count(), 4, "every hub was written: {seen:?}");
    assert!(!seen.iter().any(|l| l.to_ascii_lowercase().contains(VICTIM)), "never polled elsewhere: {seen:?}");
    let polls: Vec<_> = seen.iter().filter(|l| l.contains("/operationResults/")).collect();
    assert_eq!(polls.len(), 1, "only the good hub's operation was polled: {polls:?}");
    assert!(polls[0].contains(&format!("/subscriptions/{SUB}/providers/")), "{polls:?}");
}
