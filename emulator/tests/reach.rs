//! Subscriptions and their access, provider registrations and api-versions, DPS identity and
//! raw links, Device Update, and the seed round trip of all of them: over real HTTP.

mod support;

use iothub_access_emulator::{
    DeviceUpdateAccount, DeviceUpdateInstance, HubSeed, PolicyAssignment, PolicyEffect, Seed, State, Subscription,
    SubscriptionAccess,
};
use serde_json::{Value, json};
use support::*;

const SUB3: &str = "33333333-4444-4555-8666-777777777777";
const OID: &str = "5e5e5e5e-0000-4000-8000-00000000a11d";
const ARM: &str = "https://management.azure.com/";

fn admin(t: &T, p: &str) -> String {
    format!("{}/_emulator/{p}", t.base)
}

fn denied_message(action: &str, sub: &str) -> String {
    format!(
        "The client '{OID}' with object id '{OID}' does not have authorization to perform action '{action}' over scope '/subscriptions/{sub}' or the scope is invalid. If access was recently granted, please refresh your credentials."
    )
}

#[tokio::test]
async fn subscriptions_are_listed_and_forbidden_or_hidden_ones_refuse_every_request() {
    let mut t = start(|c| {
        c.page_size = 1;
        c.seed.subscriptions = vec![
            Subscription { subscription_id: SUB2.into(), display_name: Some("Other".into()), ..Default::default() },
            Subscription {
                subscription_id: SUB3.into(),
                access: Some(SubscriptionAccess::Hidden),
                ..Default::default()
            },
        ];
    })
    .await;
    t.token = t.emu.issue_token(ARM, OID, 3600);
    let (items, pages) = t.list_all("/subscriptions?api-version=2022-12-01").await;
    assert_eq!((items.len(), pages), (2, 2), "the hidden subscription is not listed: {items:?}");
    let sub = items.iter().find(|s| s["subscriptionId"] == SUB).expect("implied by the resource groups");
    assert_eq!(
        sub,
        &json!({"id": format!("/subscriptions/{SUB}"), "authorizationSource": "RoleBased", "managedByTenants": [],
                "subscriptionId": SUB, "tenantId": TENANT, "displayName": SUB, "state": "Enabled",
                "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                         "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"}})
    );
    assert!(items.iter().any(|s| s["subscriptionId"] == SUB2 && s["displayName"] == "Other"));

    // Forbidden through the admin API: reads and writes of every kind answer 403, nothing changes.
    let r = to_resp(
        t.http
            .put(admin(&t, &format!("subscriptions/{SUB}")))
            .json(&json!({"access": "Forbidden"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((r.status, r.body["access"].as_str()), (200, Some("Forbidden")));
    let hub = t.get(&hub_path(HUB)).await;
    assert_eq!((hub.status, hub.code().as_str()), (403, "AuthorizationFailed"));
    assert_eq!(hub.message(), denied_message("Microsoft.Devices/IotHubs/read", SUB));
    let dps = t
        .get(&format!("{}/providers/Microsoft.Devices/provisioningServices/dps-a?api-version=2022-12-12", rg_scope()))
        .await;
    assert_eq!(dps.message(), denied_message("Microsoft.Devices/provisioningServices/read", SUB));
    let name = "7a000000-0000-4000-8000-000000000001";
    let w = t.put(&ra_path(&hub_scope(HUB), name), &ra_body(READER, SP, None)).await;
    assert_eq!(w.message(), denied_message("Microsoft.Authorization/roleAssignments/write", SUB));
    assert!(!t.emu.snapshot().role_assignments.iter().any(|a| a.name == name));
    let keys = t.send("POST", &format!("{}/listkeys?api-version=2023-06-30", hub_scope(HUB)), None, &[]).await;
    assert_eq!(keys.message(), denied_message("Microsoft.Devices/IotHubs/listkeys/action", SUB));
    let stats = t.emu.stats();
    assert_eq!((stats.count_status("iotHubs.get", 403), stats.count_status("provisioningServices.get", 403)), (1, 1));
    let (listed, _) = t.list_all("/subscriptions?api-version=2022-12-01").await;
    assert!(listed.iter().any(|s| s["subscriptionId"] == SUB), "forbidden subscriptions are still listed");

    // Hidden: neither listed nor served; unknown subscriptions are still 404.
    let hidden = t.get(&format!("/subscriptions/{SUB3}/resourceGroups/rg?api-version=2021-04-01")).await;
    assert_eq!(hidden.message(), denied_message("Microsoft.Resources/subscriptions/resourceGroups/read", SUB3));
    let unknown = t.get("/subscriptions/99999999-9999-4999-8999-999999999999?api-version=2022-12-01").await;
    assert_eq!((unknown.status, unknown.code().as_str()), (404, "SubscriptionNotFound"));

    // Back to Read through the State; the admin route creates unknown subscriptions.
    t.emu.with_state(|s| s.set_subscription_access(SUB, SubscriptionAccess::Read));
    assert_eq!(t.get(&hub_path(HUB)).await.status, 200);
    let new_sub = "44444444-5555-4666-8777-888888888888";
    let r = to_resp(
        t.http
            .put(admin(&t, &format!("subscriptions/{new_sub}")))
            .json(&json!({"access": "Read"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    let got = t.get(&format!("/subscriptions/{new_sub}?api-version=2022-12-01")).await;
    assert_eq!((got.status, got.body["state"].as_str()), (200, Some("Enabled")));
    assert_eq!(t.emu.with_state(|s| s.subscription_access(SUB3)), Some(SubscriptionAccess::Hidden));
    assert!(t.emu.stats().count("subscriptions.list") >= 4);
}

#[tokio::test]
async fn provider_registrations_and_unsupported_api_versions() {
    let t = start(|_| {}).await;
    let devices = t.get(&format!("/subscriptions/{SUB}/providers/microsoft.devices?api-version=2021-04-01")).await;
    assert_eq!(devices.status, 200, "{}", devices.body);
    assert_eq!(devices.body["id"], format!("/subscriptions/{SUB}/providers/Microsoft.Devices"));
    assert_eq!(
        (devices.body["namespace"].as_str(), devices.body["registrationState"].as_str()),
        (Some("Microsoft.Devices"), Some("Registered"))
    );
    assert_eq!(devices.body["registrationPolicy"], "RegistrationRequired");
    let types = devices.body["resourceTypes"].as_array().unwrap();
    let hubs = types.iter().find(|r| r["resourceType"] == "IotHubs").unwrap();
    assert_eq!(
        hubs["apiVersions"],
        json!([
            "2026-03-01-preview",
            "2025-08-01-preview",
            "2023-06-30-preview",
            "2023-06-30",
            "2022-04-30-preview",
            "2021-07-02",
            "2021-07-01"
        ])
    );
    assert!(hubs["locations"].as_array().is_some_and(|l| !l.is_empty()));
    assert!(types.iter().any(|r| r["resourceType"] == "ProvisioningServices"));
    let adu = t.get(&format!("/subscriptions/{SUB}/providers/Microsoft.DeviceUpdate?api-version=2021-04-01")).await;
    let adu_types: Vec<&str> =
        adu.body["resourceTypes"].as_array().unwrap().iter().filter_map(|r| r["resourceType"].as_str()).collect();
    assert_eq!(adu_types, ["accounts", "accounts/instances"]);
    assert_eq!(adu.body["resourceTypes"][1]["apiVersions"], json!(["2023-07-01", "2022-10-01", "2022-04-01-preview"]));
    let nope = t.get(&format!("/subscriptions/{SUB}/providers/Microsoft.Nope?api-version=2021-04-01")).await;
    assert_eq!((nope.status, nope.code().as_str()), (404, "InvalidResourceNamespace"));
    assert_eq!(nope.message(), "The resource namespace 'Microsoft.Nope' is invalid.");
    assert_eq!(t.emu.stats().count_status("providers.get", 200), 2);

    // An api-version the type does not support: refused before the provider sees it.
    let old = t.get(&format!("{}?api-version=2018-04-01", hub_scope(HUB))).await;
    assert_eq!((old.status, old.code().as_str()), (400, "NoRegisteredProviderFound"));
    assert!(
        old.message().starts_with("No registered resource provider found for location 'global' and API version '2018-04-01' for type 'IotHubs'. The supported api-versions are '2026-03-01-preview, 2025-08-01-preview, 2023-06-30-preview, 2023-06-30, 2022-04-30-preview, 2021-07-02, 2021-07-01'. The supported locations are '"),
        "{}",
        old.message()
    );
    let put = t
        .put(
            &format!("{}?api-version=2017-07-01", hub_scope("hub-old")),
            &json!({"location": "West Europe", "sku": "S1"}),
        )
        .await;
    assert!(put.message().contains("for location 'westeurope' and API version '2017-07-01'"), "{}", put.message());
    assert!(t.emu.snapshot().hubs.iter().all(|h| h.name != "hub-old"));
    let dps = t
        .get(&format!("/subscriptions/{SUB}/providers/Microsoft.Devices/provisioningServices?api-version=2025-08-01"))
        .await;
    assert!(dps.message().contains("for type 'ProvisioningServices'"), "{}", dps.message());
    // A namespace not registered in the subscription: NotRegistered, and its resources 409.
    t.emu.with_state(|s| s.set_provider_registered(SUB, "Microsoft.DeviceUpdate", false));
    let adu = t.get(&format!("/subscriptions/{SUB}/providers/Microsoft.DeviceUpdate?api-version=2021-04-01")).await;
    assert_eq!(adu.body["registrationState"], "NotRegistered");
    let accounts =
        t.get(&format!("/subscriptions/{SUB}/providers/Microsoft.DeviceUpdate/accounts?api-version=2023-07-01")).await;
    assert_eq!((accounts.status, accounts.code().as_str()), (409, "MissingSubscriptionRegistration"));
    assert!(accounts.message().contains("namespace 'Microsoft.DeviceUpdate'"), "{}", accounts.message());
    t.emu.with_state(|s| s.set_provider_registered(SUB, "Microsoft.DeviceUpdate", true));
    let accounts =
        t.get(&format!("/subscriptions/{SUB}/providers/Microsoft.DeviceUpdate/accounts?api-version=2023-07-01")).await;
    assert_eq!(accounts.status, 200);
    // The list routes beside the provider route still answer.
    let list = t.get(&format!("/subscriptions/{SUB}/providers/Microsoft.Devices/IotHubs?api-version=2021-07-02")).await;
    assert_eq!(list.status, 200);

    // Configured lists replace the defaults; keys match case-insensitively.
    let custom = start(|c| {
        c.provider_api_versions.insert("microsoft.devices/iothubs".into(), vec!["2099-01-01".into()]);
        c.provider_api_versions.remove("Microsoft.Devices/IotHubs");
    })
    .await;
    assert_eq!(custom.get(&hub_path(HUB)).await.status, 400);
    assert_eq!(custom.get(&format!("{}?api-version=2099-01-01", hub_scope(HUB))).await.status, 200);
}

const DPS_SEED: &str = r#"
tenantId: 3c6f1d2e-8a4b-4f5c-9d7e-1a2b3c4d5e6f
clients: [{clientId: 2b1a0f9e-8d7c-4b6a-9e5d-4c3b2a1f0e9d, secret: test-secret}]
hubs:
  - {subscriptionId: a925f2f7-5c63-4b7b-8799-25a5f97bc3b2, resourceGroup: rg-iot, name: hub-a, location: westeurope}
provisioningServices:
  - subscriptionId: a925f2f7-5c63-4b7b-8799-25a5f97bc3b2
    resourceGroup: rg-iot
    name: dps-raw
    location: westeurope
    identity:
      type: SystemAssigned,UserAssigned
      principalId: 8d8d8d8d-0000-4000-8000-000000000001
      tenantId: 3c6f1d2e-8a4b-4f5c-9d7e-1a2b3c4d5e6f
      userAssignedIdentities:
        /subscriptions/a925f2f7-5c63-4b7b-8799-25a5f97bc3b2/resourceGroups/rg-iot/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi:
          principalId: 8d8d8d8d-0000-4000-8000-000000000002
          clientId: 8d8d8d8d-0000-4000-8000-000000000003
    rawIotHubs:
      - {name: hub-a.azure-devices.net}
"#;

#[tokio::test]
async fn dps_identity_and_raw_links_by_api_version() {
    let t = start_with(DPS_SEED, |_| {}).await;
    let path =
        |v: &str| format!("{}/providers/Microsoft.Devices/provisioningServices/dps-raw?api-version={v}", rg_scope());
    let old = t.get(&path("2022-12-12")).await;
    assert!(old.body.get("identity").is_none());
    assert_eq!(old.body["properties"]["iotHubs"], json!([{"name": "hub-a.azure-devices.net"}]), "verbatim");
    for v in ["2025-02-01-preview", "2026-04-01"] {
        assert!(t.get(&path(v)).await.body.get("identity").is_none(), "{v}");
    }
    for v in ["2026-03-01-preview", "2026-08-01"] {
        let new = t.get(&path(v)).await;
        assert_eq!(new.body["identity"]["principalId"], "8d8d8d8d-0000-4000-8000-000000000001", "{v}");
        assert_eq!(new.body["properties"]["iotHubs"], json!([{"name": "hub-a.azure-devices.net"}]));
    }
    // A PUT at the new shape stores the identity (ids Azure assigns filled in) and real links.
    let body = json!({"location": "westeurope", "identity": {"type": "SystemAssigned"},
        "properties": {"iotHubs": [{"hostName": "hub-a.azure-devices.net", "authenticationType": "SystemAssigned", "location": "westeurope"}]}});
    let put = t.put(&path("2026-08-01"), &body).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["identity"]["principalId"], "8d8d8d8d-0000-4000-8000-000000000001", "kept");
    assert_eq!(put.body["identity"]["tenantId"], TENANT);
    assert_eq!(put.body["properties"]["iotHubs"][0]["authenticationType"], "SystemAssigned");
    // 2025-02-01-preview and 2026-04-01 keep the old link shape.
    for v in ["2025-02-01-preview", "2026-04-01", "2022-12-12"] {
        let link = t.get(&path(v)).await.body["properties"]["iotHubs"][0].clone();
        assert_eq!(link["name"], "hub-a.azure-devices.net", "{v}");
        assert!(link.get("authenticationType").is_none() && link.get("hostName").is_none(), "{v}: {link}");
        assert!(link.get("connectionString").is_none(), "{v}: identity links have none");
    }
    // An older version's PUT leaves the identity alone.
    let old_put = json!({"location": "westeurope", "properties": {"iotHubs": []}});
    assert_eq!(t.put(&path("2022-12-12"), &old_put).await.status, 200);
    assert_eq!(t.get(&path("2026-08-01")).await.body["identity"]["type"], "SystemAssigned");
    let snap = t.emu.snapshot();
    assert!(snap.provisioning_services[0].raw_iot_hubs.is_none() && snap.provisioning_services[0].identity.is_some());
}

#[tokio::test]
async fn device_update_accounts_and_instances() {
    let hub_id = hub_scope(HUB);
    let t = start(|c| {
        c.page_size = 1;
        c.seed.device_update_accounts = vec![
            DeviceUpdateAccount {
                subscription_id: SUB.into(),
                resource_group: RG.into(),
                name: "adu-a".into(),
                location: "westeurope".into(),
                instances: vec![DeviceUpdateInstance {
                    name: "fleet".into(),
                    iot_hubs: vec![hub_scope(HUB)],
                    ..Default::default()
                }],
            },
            DeviceUpdateAccount {
                subscription_id: SUB.into(),
                resource_group: "rg-adu".into(),
                name: "adu-b".into(),
                location: "northeurope".into(),
                instances: vec![],
            },
        ];
    })
    .await;
    let (accounts, pages) = t
        .list_all(&format!("/subscriptions/{SUB}/providers/Microsoft.DeviceUpdate/accounts?api-version=2023-07-01"))
        .await;
    assert_eq!((accounts.len(), pages), (2, 2));
    assert_eq!(
        accounts[0],
        json!({"id": format!("{}/providers/Microsoft.DeviceUpdate/accounts/adu-a", rg_scope()), "name": "adu-a",
               "type": "Microsoft.DeviceUpdate/accounts", "location": "westeurope",
               "properties": {"provisioningState": "Succeeded", "hostName": "adu-a.api.adu.microsoft.com",
                              "publicNetworkAccess": "Enabled", "sku": "Standard"}})
    );
    let account = format!("{}/providers/Microsoft.DeviceUpdate/accounts/adu-a", rg_scope());
    let (instances, _) = t.list_all(&format!("{account}/instances?api-version=2023-07-01")).await;
    assert_eq!(
        instances,
        vec![json!({"id": format!("{account}/instances/fleet"), "name": "fleet",
                    "type": "Microsoft.DeviceUpdate/accounts/instances", "location": "westeurope",
                    "properties": {"provisioningState": "Succeeded", "accountName": "adu-a",
                                   "iotHubs": [{"resourceId": hub_id}], "enableDiagnostics": false}})]
    );
    let missing = t
        .get(&format!("{}/providers/Microsoft.DeviceUpdate/accounts/nope/instances?api-version=2023-07-01", rg_scope()))
        .await;
    assert_eq!((missing.status, missing.code().as_str()), (404, "ResourceNotFound"));
    // PUT: 201 created, 200 updated; the account must exist.
    let inst = |n: &str| format!("{account}/instances/{n}?api-version=2023-07-01");
    let body = json!({"location": "westeurope", "properties": {"iotHubs": [{"resourceId": hub_scope(HUB_B)}]}});
    let created = t.put(&inst("lab"), &body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["properties"]["iotHubs"][0]["resourceId"], hub_scope(HUB_B));
    assert_eq!(t.put(&inst("LAB"), &body).await.status, 200);
    let got = t.get(&inst("lab")).await;
    assert_eq!((got.status, got.body["name"].as_str()), (200, Some("lab")));
    let orphan = t
        .put(
            &format!(
                "{}/providers/Microsoft.DeviceUpdate/accounts/nope/instances/x?api-version=2023-07-01",
                rg_scope()
            ),
            &body,
        )
        .await;
    assert_eq!(orphan.status, 404);
    let stale = t.get(&format!("{account}/instances/fleet?api-version=2020-03-01-preview")).await;
    assert_eq!((stale.status, stale.code().as_str()), (400, "NoRegisteredProviderFound"));
    assert!(stale.message().contains("for type 'accounts/instances'"));
    // Added through the State.
    let added = t.emu.with_state(|s| {
        s.add_device_update_instance(
            SUB,
            RG,
            "adu-a",
            DeviceUpdateInstance { name: "portal".into(), ..Default::default() },
        )
    });
    assert_eq!(added, Ok(true));
    assert_eq!(t.get(&inst("portal")).await.status, 200);
    let stats = t.emu.stats();
    assert_eq!(stats.count("deviceUpdate.accounts.list"), 2);
    assert_eq!(stats.count_status("deviceUpdate.instances.list", 404), 1);
    assert_eq!(stats.count_status("deviceUpdate.instances.put", 201), 1);
    assert_eq!(stats.count_status("deviceUpdate.instances.get", 200), 2);
}

#[test]
fn every_new_seed_field_round_trips() {
    let mut seed = Seed::from_str_auto(DPS_SEED).unwrap();
    seed.hubs.push(HubSeed {
        subscription_id: SUB.into(),
        resource_group: RG.into(),
        name: "hub-gw".into(),
        location: "northeurope".into(),
        device_host_name: Some("hub-gw.device.azure-devices.net".into()),
        service_host_name: Some("hub-gw.service.azure-devices.net".into()),
        ..Default::default()
    });
    seed.subscriptions = vec![Subscription {
        subscription_id: SUB3.into(),
        display_name: Some("Hidden".into()),
        state: Some("Warned".into()),
        access: Some(SubscriptionAccess::Forbidden),
        not_registered: vec!["Microsoft.DeviceUpdate".into()],
    }];
    seed.policies = vec![PolicyAssignment {
        assignment_name: "modify-local-auth".into(),
        scope: rg_scope(),
        definition_name: "9f8ba900-a70f-486e-9ffc-faf907305376".into(),
        display_name: "Configure Azure IoT Hub to disable local authentication".into(),
        effect: PolicyEffect::Modify,
        property: "disableLocalAuth".into(),
        value: json!(true),
    }];
    seed.device_update_accounts = vec![DeviceUpdateAccount {
        subscription_id: SUB2.into(),
        resource_group: "rg-adu".into(),
        name: "adu".into(),
        location: "westeurope".into(),
        instances: vec![DeviceUpdateInstance {
            name: "i".into(),
            location: Some("northeurope".into()),
            iot_hubs: vec![hub_scope(HUB)],
        }],
    }];
    let first = State::from_seed(seed.clone(), "azure-devices.net").unwrap().to_seed();
    let text = serde_json::to_string(&first).unwrap();
    for k in [
        "deviceHostName",
        "rawIotHubs",
        "userAssignedIdentities",
        "deviceUpdateAccounts",
        "policies",
        "\"access\":\"Forbidden\"",
    ] {
        assert!(text.contains(k), "{k} in {text}");
    }
    let yaml = serde_yaml::to_string(&first).unwrap();
    let second = State::from_seed(Seed::from_str_auto(&yaml).unwrap(), "azure-devices.net").unwrap().to_seed();
    assert_eq!(first, second);
    assert_eq!(first.subscriptions, seed.subscriptions);
    assert_eq!(first.policies, seed.policies);
    assert_eq!(first.device_update_accounts, seed.device_update_accounts);
    let st = State::from_seed(first, "azure-devices.net").unwrap();
    assert_eq!(st.subscription_access(SUB2), Some(SubscriptionAccess::Read), "implied by the account");
    assert_eq!(st.subscription_access(SUB3), Some(SubscriptionAccess::Forbidden));
    let _: Value = serde_json::to_value(st.to_seed()).unwrap();
}
