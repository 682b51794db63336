//! The wire models against the shapes Azure answers with.

use super::*;

fn hub() -> HubId {
    HubId::new("s", "rg", "hub-a")
}

#[test]
fn a_hub_put_body_drops_every_read_only_property_and_keeps_the_rest() {
    let get = serde_json::json!({
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Devices/IotHubs/hub-a",
        "name": "hub-a", "type": "Microsoft.Devices/IotHubs", "location": "westeurope",
        "etag": "AAAA", "tags": {"team": "a"}, "systemData": {"createdAt": "x"},
        "sku": {"name": "S1", "tier": "Standard", "capacity": 1},
        "identity": {"type": "SystemAssigned", "principalId": "p", "tenantId": "t"},
        "properties": {
            "disableLocalAuth": false, "hostName": "hub-a.azure-devices.net",
            "deviceHostName": "hub-a.device.azure-devices.net", "serviceHostName": "hub-a.service.azure-devices.net",
            "state": "Active", "provisioningState": "Succeeded", "locations": [{"location": "westeurope"}],
            "minTlsVersion": "1.2", "routing": {"fallbackRoute": {"name": "$fallback"}},
            "eventHubEndpoints": {"events": {"retentionTimeInDays": 1, "partitionCount": 4,
                "partitionIds": ["0"], "path": "hub-a", "endpoint": "sb://x/"}}
        },
        "futureField": {"kept": true}
    });
    let mut body: HubBody = serde_json::from_value(get).unwrap();
    let seen = body.observed(&hub(), None);
    assert_eq!(seen.host_names.len(), 3);
    assert_eq!(seen.etag.as_deref(), Some("AAAA"));
    body.properties.disable_local_auth = Some(true);
    let put = serde_json::to_value(&body).unwrap();
    for gone in [
        "/id",
        "/name",
        "/type",
        "/systemData",
        "/sku/tier",
        "/identity/principalId",
        "/identity/tenantId",
        "/properties/hostName",
        "/properties/deviceHostName",
        "/properties/serviceHostName",
        "/properties/state",
        "/properties/provisioningState",
        "/properties/locations",
        "/properties/eventHubEndpoints/events/partitionIds",
        "/properties/eventHubEndpoints/events/path",
        "/properties/eventHubEndpoints/events/endpoint",
    ] {
        assert!(put.pointer(gone).is_none(), "{gone} must not be sent: {put}");
    }
    for kept in [
        "/etag",
        "/location",
        "/tags/team",
        "/sku/name",
        "/sku/capacity",
        "/identity/type",
        "/properties/minTlsVersion",
        "/properties/routing/fallbackRoute/name",
        "/properties/eventHubEndpoints/events/partitionCount",
        "/futureField/kept",
    ] {
        assert!(put.pointer(kept).is_some(), "{kept} must be kept: {put}");
    }
    assert_eq!(put.pointer("/properties/disableLocalAuth"), Some(&Value::Bool(true)));
}

fn dps(links: Value) -> DpsBody {
    serde_json::from_value(serde_json::json!({"id": "/d/dps-1", "name": "dps-1", "properties": {"iotHubs": links}}))
        .unwrap()
}

#[test]
fn dps_links_are_read_strictly() {
    let ok = dps(serde_json::json!([
        {"name": "hub-a.azure-devices.net", "connectionString": "HostName=hub-a.azure-devices.net;SharedAccessKeyName=x;SharedAccessKey=****", "location": "w"},
        {"hostName": "hub-b.device.azure-devices.net", "authenticationType": "SystemAssigned", "location": "w"},
        {"hostName": "hub-c.azure-devices.net", "authenticationType": "UserAssigned", "selectedUserAssignedIdentityResourceId": "/x/mi", "location": "w"}
    ]))
    .observed(true)
    .unwrap();
    assert_eq!(ok.links[0].auth, LinkAuth::Key);
    assert_eq!(ok.links[1].auth, LinkAuth::SystemAssigned);
    assert_eq!(ok.links[2].auth, LinkAuth::UserAssigned(Some("/x/mi".into())));
    // Read with an api-version that does not report link types: all count as key links.
    let old = dps(serde_json::json!([{"hostName": "h.azure-devices.net", "authenticationType": "SystemAssigned"}]))
        .observed(false)
        .unwrap();
    assert_eq!(old.links[0].auth, LinkAuth::Key);

    for (shape, says) in [
        (serde_json::json!([{"location": "w"}]), "names no hub"),
        (serde_json::json!([{"name": "", "connectionString": "SharedAccessKey=x"}]), "names no hub"),
        (
            serde_json::json!([{"name": "h.azure-devices.net", "authenticationType": "Certificate"}]),
            "unknown authenticationType 'Certificate'",
        ),
        (serde_json::json!([{"name": 7}]), "not understood"),
    ] {
        let e = dps(shape.clone()).observed(true).unwrap_err().to_string();
        assert!(e.contains(says), "{shape}: {e}");
    }
    // Not a list: the DPS body itself is not understood.
    let e =
        parse::<Page<DpsBody>>("DPS list", br#"{"value":[{"id":"i","name":"n","properties":{"iotHubs":{"a":1}}}]}"#)
            .unwrap_err()
            .to_string();
    assert!(e.contains("DPS list"), "{e}");
    // `null` is not a list either, for DPS links and Device Update hubs alike.
    let e = parse::<Page<DpsBody>>("DPS list", br#"{"value":[{"id":"i","name":"n","properties":{"iotHubs":null}}]}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("iotHubs"), "{e}");
    assert!(
        parse::<Page<DeviceUpdateInstance>>("instances", br#"{"value":[{"id":"i","properties":{"iotHubs":null}}]}"#)
            .is_err()
    );
    // No `value`: not an empty list.
    assert!(parse::<Page<DpsBody>>("DPS list", br#"{"items":[]}"#).is_err());
    assert!(parse::<Page<DpsBody>>("DPS list", br#"{"value":[{"name":"n","properties":{}}]}"#).is_err(), "no id");
    // No links at all (Microsoft's examples omit iotHubs then).
    let none =
        parse::<Page<DpsBody>>("DPS list", br#"{"value":[{"id":"i","name":"n","properties":{"state":"Active"}}]}"#)
            .unwrap();
    assert!(none.value.into_iter().next().unwrap().observed(true).unwrap().links.is_empty());
}

#[test]
fn api_versions_are_picked_from_what_the_provider_lists() {
    let listed = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        pick_dps_version(&listed(&["2022-12-12", "2026-08-01", "2026-03-01-preview", "2026-04-01"])).as_deref(),
        Some("2026-08-01")
    );
    assert_eq!(pick_dps_version(&listed(&["2022-12-12", "2026-04-01", "2026-03-01-preview"])), None);
    assert_eq!(
        pick_hub_version(&listed(&["2023-06-30", "2026-03-01-preview", "2025-08-01-preview"])).as_deref(),
        Some("2026-03-01-preview")
    );
    assert_eq!(
        pick_hub_version(&listed(&["2026-03-01-preview", "2026-03-01", "2023-06-30"])).as_deref(),
        Some("2026-03-01"),
        "a stable version beats the preview of the same day"
    );
    assert_eq!(pick_hub_version(&listed(&["2023-06-30", "2025-08-01-preview"])), None);
}

#[test]
fn a_value_azure_sent_never_reaches_the_error_text() {
    let body = br#"{"value":[{"id":"i","name":"n","properties":{"iotHubs":"HostName=h;SharedAccessKeyName=o;SharedAccessKey=c2VjcmV0"}}]}"#;
    let e = parse::<Page<DpsBody>>("DPS list", body).unwrap_err().to_string();
    assert!(e.contains("value[0].properties.iotHubs") && e.contains("invalid type"), "{e}");
    assert!(!e.contains("SharedAccessKey") && !e.contains("c2VjcmV0"), "{e}");
}
