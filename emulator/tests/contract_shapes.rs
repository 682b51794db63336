//! The emulator's answers have the shapes (keys, JSON types, status codes) of the verbatim spec
//! examples in tests/contract/.

mod support;

use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn role_assignment_create_get_list_delete_match_the_examples() {
    let t = start(|_| {}).await;
    let name = "05c5a614-a7d6-4502-b150-c2fb455033ff";
    let created = t.put(&ra_path(&sub_scope(), name), &ra_body(DATA_READER, SP, Some("ServicePrincipal"))).await;
    assert_eq!(created.status, 201);
    assert_shape(&created.body, &example("RoleAssignments_CreateForSubscription.json", "201"), "create");

    let got = t.get(&ra_path(&sub_scope(), name)).await;
    assert_eq!(got.status, 200);
    assert_shape(&got.body, &example("RoleAssignments_Get.json", "200"), "get");

    let list = t
        .get(&format!("{}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01", sub_scope()))
        .await;
    assert_eq!(list.status, 200);
    assert_shape(&list.body, &example("RoleAssignments_ListForScope.json", "200"), "listForScope");

    // The RG list example returns the inherited subscription assignment next to the RG one.
    let rg_name = "96786e4b-dede-4c2e-8736-8ab911987f08";
    assert_eq!(t.put(&ra_path(&rg_scope(), rg_name), &ra_body(DATA_READER, SP, None)).await.status, 201);
    let rg_list = t
        .get(&format!("{}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01", rg_scope()))
        .await;
    assert_shape(&rg_list.body, &example("RoleAssignments_ListForResourceGroup.json", "200"), "listForRG");
    let names: Vec<&str> =
        rg_list.body["value"].as_array().unwrap().iter().filter_map(|v| v["name"].as_str()).collect();
    assert!(names.contains(&name) && names.contains(&rg_name), "{names:?}");

    let deleted = t.delete(&ra_path(&sub_scope(), name)).await;
    assert_eq!(deleted.status, 200);
    assert_shape(&deleted.body, &example("RoleAssignments_Delete.json", "200"), "delete");
    let again = t.delete(&ra_path(&sub_scope(), name)).await;
    assert_eq!(again.status, 204, "the example's second answer: already deleted");
}

#[tokio::test]
async fn role_definition_put_get_delete_match_the_examples() {
    let t = start(|_| {}).await;
    let guid = "6a1b7c4e-0000-4000-8000-00000000c0de";
    let body = json!({"name": guid, "properties": {
        "roleName": "Registry Reader", "description": "Reads devices", "type": "CustomRole",
        "assignableScopes": [sub_scope()],
        "permissions": [{"actions": ["Microsoft.Devices/IotHubs/read"], "notActions": [],
                          "dataActions": ["Microsoft.Devices/IotHubs/devices/read"], "notDataActions": []}]}});
    let put = t.put(&rd_path(&sub_scope(), guid), &body).await;
    assert_eq!(put.status, 201);
    assert_shape(&put.body, &example("PutRoleDefinition.json", "201"), "put");
    let get = t.get(&rd_path(&sub_scope(), guid)).await;
    assert_eq!(get.status, 200);
    assert_shape(&get.body, &example("GetRoleDefinitionById.json", "200"), "get");
    let del = t.delete(&rd_path(&sub_scope(), guid)).await;
    assert_eq!(del.status, 200);
    assert_shape(&del.body, &example("DeleteRoleDefinition.json", "200"), "delete");
    assert_eq!(t.delete(&rd_path(&sub_scope(), guid)).await.status, 204);
}

#[tokio::test]
async fn iothub_get_listkeys_and_create_match_the_examples() {
    let t = start(|_| {}).await;
    let get = t.get(&hub_path(HUB)).await;
    assert_eq!(get.status, 200);
    assert_shape(&get.body, &example("iothub_get.json", "200"), "get");
    assert!(get.body["properties"].get("authorizationPolicies").is_none(), "GET carries no keys");

    let keys = t.send("POST", &format!("{}/listkeys?api-version=2023-06-30", hub_scope(HUB)), None, &[]).await;
    assert_eq!(keys.status, 200);
    assert_shape(&keys.body, &example("iothub_listkeys.json", "200"), "listkeys");
    let names: Vec<&str> =
        keys.body["value"].as_array().unwrap().iter().filter_map(|p| p["keyName"].as_str()).collect();
    assert_eq!(names, ["iothubowner", "service", "device", "registryRead", "registryReadWrite"]);

    let mut body = example_param("2021-07-02_iothub_createOrUpdate.json", "iotHubDescription");
    body.as_object_mut().unwrap().remove("etag");
    let created = t.put(&hub_path("testHub"), &body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let mut expected = example("2021-07-02_iothub_createOrUpdate.json", "201");
    // The 201 example predates 2023-06-30; shapes compared for what it has.
    expected.as_object_mut().unwrap().remove("etag");
    assert_shape(&created.body, &expected, "createOrUpdate");
    assert_eq!(created.body["properties"]["hostName"], "testHub.azure-devices.net");
}

#[tokio::test]
async fn dps_get_list_and_identity_link_match_the_examples() {
    let t = start(|_| {}).await;
    let base = format!("{}/providers/Microsoft.Devices/provisioningServices", rg_scope());
    let get = t.get(&format!("{base}/dps-a?api-version=2022-12-12")).await;
    assert_eq!(get.status, 200);
    assert_shape(&get.body, &example("DPSGet.json", "200"), "get");
    let list = t
        .get(&format!("/subscriptions/{SUB}/providers/Microsoft.Devices/provisioningServices?api-version=2022-12-12"))
        .await;
    assert_eq!(list.status, 200);
    assert_shape(&list.body, &example("DPSListBySubscription.json", "200"), "list");

    let body = example_param("2026-08-01_DPSCreateWithIotHub.json", "iotDpsDescription");
    let put = t.put(&format!("{base}/myFirstProvisioningService?api-version=2026-08-01"), &body).await;
    assert_eq!(put.status, 201, "{}", put.body);
    let expected = example("2026-08-01_DPSCreateWithIotHub.json", "200");
    assert_shape(&put.body, &expected, "create 2026-08-01");
    assert_eq!(put.body["identity"]["type"], "SystemAssigned, UserAssigned");
    assert!(put.body["identity"]["principalId"].is_string(), "the ids Azure assigns are filled in");
    let link: &Value = &put.body["properties"]["iotHubs"][0];
    assert_eq!(link["name"], "myFirstIoTHub.azure-devices.net");
    assert_eq!(link["hostName"], "myFirstIoTHub.azure-devices.net");
    assert_eq!(link["authenticationType"], "UserAssigned");
    assert!(link.get("connectionString").is_none(), "identity links have no connection string");
}
