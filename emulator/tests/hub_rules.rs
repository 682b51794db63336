//! Hub writes and reads: gateway v2 host names, read-only properties, the 404 window after a
//! local-auth change, Azure Policy (Deny, Modify): over real HTTP.

mod eventually;
mod support;

use std::time::Duration;

use eventually::{DEADLINE, eventually};
use iothub_access_emulator::{PolicyAssignment, PolicyEffect};
use serde_json::json;
use support::*;

fn admin(t: &T, p: &str) -> String {
    format!("{}/_emulator/{p}", t.base)
}

const GW_SEED: &str = r#"
tenantId: 3c6f1d2e-8a4b-4f5c-9d7e-1a2b3c4d5e6f
clients: [{clientId: 2b1a0f9e-8d7c-4b6a-9e5d-4c3b2a1f0e9d, secret: test-secret}]
hubs:
  - {subscriptionId: a925f2f7-5c63-4b7b-8799-25a5f97bc3b2, resourceGroup: rg-iot, name: hub-gw, location: northeurope,
     deviceHostName: hub-gw.device.azure-devices.net, serviceHostName: hub-gw.service.azure-devices.net}
provisioningServices:
  - subscriptionId: a925f2f7-5c63-4b7b-8799-25a5f97bc3b2
    resourceGroup: rg-iot
    name: dps-gw
    location: westeurope
    links:
      - {hub: HUB-GW.device.azure-devices.net}
      - {hub: hub-gw.service.azure-devices.net, authenticationType: SystemAssigned}
"#;

#[tokio::test]
async fn gateway_v2_hubs_show_their_host_names_from_2026_03_01() {
    let t = start_with(GW_SEED, |_| {}).await;
    let at = |v: &str| format!("{}?api-version={v}", hub_scope("hub-gw"));
    for v in ["2023-06-30", "2025-08-01-preview"] {
        let p = &t.get(&at(v)).await.body["properties"];
        assert!(p.get("deviceHostName").is_none() && p.get("serviceHostName").is_none(), "{v}: {p}");
        assert_eq!(p["hostName"], "hub-gw.azure-devices.net");
    }
    let new = t.get(&at("2026-03-01-preview")).await;
    assert_eq!(new.body["properties"]["deviceHostName"], "hub-gw.device.azure-devices.net");
    assert_eq!(new.body["properties"]["serviceHostName"], "hub-gw.service.azure-devices.net");
    let (listed, _) =
        t.list_all(&format!("{}/providers/Microsoft.Devices/IotHubs?api-version=2026-03-01-preview", rg_scope())).await;
    assert_eq!(listed[0]["properties"]["deviceHostName"], "hub-gw.device.azure-devices.net");
    // Read-only: a PUT cannot change them.
    let mut body = new.body.clone();
    body["properties"]["deviceHostName"] = json!("elsewhere.device.azure-devices.net");
    let etag = new.body["etag"].as_str().unwrap().to_string();
    let put = t.send("PUT", &at("2026-03-01-preview"), Some(&body), &[("If-Match", &etag)]).await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(put.body["properties"]["deviceHostName"], "hub-gw.device.azure-devices.net");
    assert_eq!(t.emu.snapshot().hubs[0].device_host_name.as_deref(), Some("hub-gw.device.azure-devices.net"));
    // DPS links naming the hub by its device or service host name resolve to it.
    let dps = t
        .get(&format!("{}/providers/Microsoft.Devices/provisioningServices/dps-gw?api-version=2026-08-01", rg_scope()))
        .await;
    let links = dps.body["properties"]["iotHubs"].as_array().unwrap();
    assert_eq!(links[0]["name"], "hub-gw.device.azure-devices.net");
    assert_eq!(links[0]["location"], "northeurope", "the hub's location");
    assert_eq!(
        links[0]["connectionString"],
        "HostName=hub-gw.device.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=****"
    );
    assert_eq!(
        (links[1]["hostName"].as_str(), links[1]["location"].as_str()),
        (Some("hub-gw.service.azure-devices.net"), Some("northeurope"))
    );
    let owner = t
        .send(
            "POST",
            &format!("{}/IotHubKeys/iothubowner/listkeys?api-version=2023-06-30", hub_scope("hub-gw")),
            None,
            &[],
        )
        .await;
    let key = owner.body["primaryKey"].as_str().unwrap().to_string();
    let stored = t.emu.snapshot().provisioning_services[0].links[0].connection_string.clone().unwrap();
    assert!(stored.ends_with(&key), "the link carries the hub's own key");
}

#[tokio::test]
async fn read_only_properties_are_counted_and_optionally_refused() {
    let t = start(|_| {}).await;
    let get = t.get(&hub_path(HUB)).await;
    let mut body = get.body.clone();
    body["identity"] = json!({"type": "SystemAssigned", "principalId": "p", "tenantId": TENANT});
    let etag = get.body["etag"].as_str().unwrap().to_string();
    assert_eq!(t.send("PUT", &hub_path(HUB), Some(&body), &[("If-Match", &etag)]).await.status, 201);
    let stats = t.emu.stats();
    for p in [
        "id",
        "name",
        "type",
        "systemData",
        "sku.tier",
        "identity.principalId",
        "identity.tenantId",
        "properties.provisioningState",
        "properties.state",
        "properties.hostName",
        "properties.locations",
        "properties.eventHubEndpoints.events.partitionIds",
        "properties.eventHubEndpoints.events.path",
        "properties.eventHubEndpoints.events.endpoint",
    ] {
        assert_eq!(stats.read_only_count(p), 1, "{p}: {:?}", stats.read_only_sent);
    }
    assert_eq!(stats.read_only_count("properties.deviceHostName"), 0);
    let admin_stats = to_resp(t.http.get(admin(&t, "stats")).send().await.unwrap()).await;
    assert_eq!(admin_stats.body["readOnlySent"]["properties.hostName"], 1);
    // A minimal body carries none.
    let minimal = json!({"location": "westeurope", "sku": {"name": "S1", "capacity": 1}, "properties": {}});
    assert_eq!(t.put(&hub_path("hub-min"), &minimal).await.status, 201);
    assert_eq!(t.emu.stats().read_only_sent.values().sum::<u64>(), 14);

    let strict = start(|c| c.reject_read_only_properties = true).await;
    let get = strict.get(&hub_path(HUB)).await;
    let etag = get.body["etag"].as_str().unwrap().to_string();
    let mut body = json!({"location": "westeurope", "sku": {"name": "S1", "tier": "Standard"},
                          "properties": {"disableLocalAuth": true, "hostName": "x", "state": "Active"}});
    let refused = strict.send("PUT", &hub_path(HUB), Some(&body), &[("If-Match", &etag)]).await;
    assert_eq!((refused.status, refused.code().as_str()), (400, "InvalidRequestContent"));
    assert_eq!(
        refused.message(),
        "The request content carried read-only properties: sku.tier, properties.state, properties.hostName."
    );
    let after = strict.get(&hub_path(HUB)).await;
    assert_eq!(
        (after.body["etag"].as_str(), after.body["properties"]["disableLocalAuth"].as_bool()),
        (Some(etag.as_str()), Some(false))
    );
    body["sku"] = json!({"name": "S1"});
    body["properties"] = json!({"disableLocalAuth": true});
    assert_eq!(strict.send("PUT", &hub_path(HUB), Some(&body), &[("If-Match", &etag)]).await.status, 201);
}

#[tokio::test]
async fn hub_answers_not_found_for_a_while_after_a_local_auth_change() {
    let t = start(|c| c.hub_not_found_after_local_auth_change = Duration::from_millis(400)).await;
    let put_flag = |hub: &'static str, v: bool| {
        let t = &t;
        async move {
            let get = t.get(&hub_path(hub)).await;
            let mut body = get.body.clone();
            body["properties"]["disableLocalAuth"] = json!(v);
            let etag = get.body["etag"].as_str().unwrap().to_string();
            t.send("PUT", &hub_path(hub), Some(&body), &[("If-Match", &etag)]).await.status
        }
    };
    assert_eq!(put_flag(HUB, true).await, 201);
    let gone = t.get(&hub_path(HUB)).await;
    assert_eq!((gone.status, gone.code().as_str()), (404, "ResourceNotFound"));
    assert_eq!(
        gone.message(),
        "The Resource 'Microsoft.Devices/IotHubs/hub-a' under resource group 'rg-iot' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    );
    assert!(
        t.emu.snapshot().hubs.iter().any(|h| h.name == HUB && h.disable_local_auth == Some(true)),
        "state unchanged"
    );
    // hub-b already has local auth disabled: a PUT keeping it so opens no window.
    assert_eq!(put_flag(HUB_B, true).await, 201);
    assert_eq!(t.get(&hub_path(HUB_B)).await.status, 200);
    // Not found until the window has passed, then found again with the change applied.
    let back = eventually("hub-a to be found again after its 404 window", DEADLINE, async || {
        let r = t.get(&hub_path(HUB)).await;
        (r.status != 404).then_some(r)
    })
    .await;
    assert_eq!((back.status, back.body["properties"]["disableLocalAuth"].as_bool()), (200, Some(true)));
}

fn deny_local_auth(scope: &str) -> PolicyAssignment {
    PolicyAssignment {
        assignment_name: "deny-local-auth".into(),
        scope: scope.into(),
        definition_name: "2d9dd6c3-3d8e-4b8c-9c27-6c9a9f2a1f11".into(),
        display_name: "IoT Hub should disable local authentication".into(),
        effect: PolicyEffect::Deny,
        property: "disableLocalAuth".into(),
        value: json!(true),
    }
}

#[tokio::test]
async fn policies_deny_and_modify_hub_writes() {
    let t = start(|c| c.seed.policies = vec![deny_local_auth(&rg_scope())]).await;
    let body = json!({"location": "westeurope", "sku": {"name": "S1", "capacity": 1}, "properties": {}});
    let denied = t.put(&hub_path("hub-new"), &body).await;
    let a_id = format!("{}/providers/Microsoft.Authorization/policyAssignments/deny-local-auth", rg_scope());
    let d_id = "/providers/Microsoft.Authorization/policyDefinitions/2d9dd6c3-3d8e-4b8c-9c27-6c9a9f2a1f11";
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.body,
        json!({"error": {
            "code": "RequestDisallowedByPolicy",
            "target": "hub-new",
            "message": format!("Resource 'hub-new' was disallowed by policy. Policy identifiers: '[{{\"policyAssignment\":{{\"name\":\"deny-local-auth\",\"id\":\"{a_id}\"}},\"policyDefinition\":{{\"name\":\"2d9dd6c3-3d8e-4b8c-9c27-6c9a9f2a1f11\",\"id\":\"{d_id}\",\"version\":\"1.0.0\"}}}}]'."),
            "additionalInfo": [{"type": "PolicyViolation", "info": {
                "policyDefinitionDisplayName": "IoT Hub should disable local authentication",
                "policyDefinitionId": d_id,
                "policyDefinitionName": "2d9dd6c3-3d8e-4b8c-9c27-6c9a9f2a1f11",
                "policyDefinitionEffect": "deny",
                "policyDefinitionVersion": "1.0.0",
                "policyAssignmentId": a_id,
                "policyAssignmentName": "deny-local-auth",
                "policyAssignmentScope": rg_scope(),
                "policyAssignmentParameters": {},
                "policyExemptionIds": []
            }}]
        }})
    );
    assert!(t.emu.snapshot().hubs.iter().all(|h| h.name != "hub-new"), "nothing changes");
    let mut ok = body.clone();
    ok["properties"]["disableLocalAuth"] = json!(true);
    assert_eq!(t.put(&hub_path("hub-new"), &ok).await.status, 201);
    // Out of scope: another resource group whose name starts the same.
    t.emu.with_state(|s| s.set_policies(vec![deny_local_auth(&format!("{}-x", rg_scope()))]));
    assert_eq!(t.put(&hub_path("hub-other"), &body).await.status, 201);

    // Modify (the built-in "Configure Azure IoT Hub to disable local authentication").
    let modify = json!([{"assignmentName": "configure-local-auth", "scope": hub_scope(HUB).to_uppercase(),
        "definitionName": "9f8ba900-a70f-486e-9ffc-faf907305376",
        "displayName": "Configure Azure IoT Hub to disable local authentication",
        "effect": "Modify", "property": "disableLocalAuth", "value": true}]);
    let r = to_resp(t.http.put(admin(&t, "policies")).json(&modify).send().await.unwrap()).await;
    assert_eq!(r.status, 200);
    let get = t.get(&hub_path(HUB)).await;
    let mut b = get.body.clone();
    b["properties"]["disableLocalAuth"] = json!(false);
    let etag = get.body["etag"].as_str().unwrap().to_string();
    let put =
        t.send("PUT", &format!("{}?api-version=2021-07-02", hub_scope(HUB)), Some(&b), &[("If-Match", &etag)]).await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(put.body["properties"]["disableLocalAuth"], true);
    assert_eq!(t.get(&hub_path(HUB)).await.body["properties"]["disableLocalAuth"], true);
    assert_eq!(t.emu.snapshot().policies[0].effect, PolicyEffect::Modify);
}
