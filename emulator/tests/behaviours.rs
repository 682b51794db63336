//! One test per behaviour of the Azure REST contract the emulator reproduces, over real HTTP.

mod eventually;
mod support;

use std::time::{Duration, Instant};

use eventually::{DEADLINE, eventually};
use iothub_access_emulator::{Bucket, Faults, Principal, ReplicationDelay, Seed, ThrottleConfig};
use serde_json::{Value, json};
use support::*;

fn names(v: &Value) -> Vec<String> {
    v["value"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn b1_assignment_identity_conflicts_and_validation() {
    let t = start(|_| {}).await;
    let scope = hub_scope(HUB);
    let name = "11111111-0000-4000-8000-000000000001";
    let first = t.put(&ra_path(&scope, name), &ra_body(DATA_READER, SP, Some("ServicePrincipal"))).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.body["properties"]["scope"], scope);
    // Same name, same properties: success again; path matching is case-insensitive.
    let lower = scope.to_ascii_lowercase();
    let again = t.put(&ra_path(&lower, name), &ra_body(DATA_READER, SP, Some("ServicePrincipal"))).await;
    assert_eq!(again.status, 200);
    // Another name for the same scope, role and principal: 409 naming the existing one.
    let other = t.put(&ra_path(&scope, "22222222-0000-4000-8000-000000000002"), &ra_body(DATA_READER, SP, None)).await;
    assert_eq!(other.status, 409);
    assert_eq!(other.code(), "RoleAssignmentExists");
    assert_eq!(
        other.message(),
        "The role assignment already exists. The ID of the existing role assignment is 11111111000040008000000000000001."
    );
    // Same name, different principal: update not permitted. Names are global.
    let moved = t.put(&ra_path(&scope, name), &ra_body(DATA_READER, SP2, None)).await;
    assert_eq!((moved.status, moved.code().as_str()), (400, "RoleAssignmentUpdateNotPermitted"));
    assert_eq!(moved.message(), "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.");
    let elsewhere = t.put(&ra_path(&hub_scope(HUB_B), name), &ra_body(DATA_READER, SP, None)).await;
    assert_eq!(elsewhere.code(), "RoleAssignmentUpdateNotPermitted");
    // Unknown role, bad name, unknown principal.
    let no_role = t
        .put(
            &ra_path(&scope, "33333333-0000-4000-8000-000000000003"),
            &ra_body("99999999-0000-4000-8000-000000000009", SP, None),
        )
        .await;
    assert_eq!((no_role.status, no_role.code().as_str()), (400, "RoleDefinitionDoesNotExist"));
    let bad = t.put(&ra_path(&scope, "not-a-guid"), &ra_body(DATA_READER, SP, None)).await;
    assert_eq!(bad.status, 400);
    let ghost = "abcdef01-2345-4678-9abc-def012345678";
    let pnf = t
        .put(&ra_path(&scope, "44444444-0000-4000-8000-000000000004"), &ra_body(DATA_READER, ghost, Some("User")))
        .await;
    assert_eq!((pnf.status, pnf.code().as_str()), (400, "PrincipalNotFound"));
    assert!(
        pnf.message()
            .starts_with("Principal abcdef0123454678 9abcdef012345678 does not exist".replacen(" 9", "9", 1).as_str()),
        "{}",
        pnf.message()
    );
    assert!(pnf.message().contains(TENANT));
    // Get by id form; missing one 404.
    let got = t.get(&ra_path(&scope, name)).await;
    assert_eq!(got.body["properties"]["principalId"], SP);
    let missing = t.get(&ra_path(&scope, "55555555-0000-4000-8000-000000000005")).await;
    assert_eq!((missing.status, missing.code().as_str()), (404, "RoleAssignmentNotFound"));
    assert_eq!(t.emu.snapshot().role_assignments.len(), 3, "2 seeded + 1 created, nothing else");
}

#[tokio::test]
async fn b2_lists_inherit_from_above_and_filter() {
    let t = start(|_| {}).await;
    let rg_ra = "aaaaaaaa-0000-4000-8000-00000000000a";
    let hub_ra = "bbbbbbbb-0000-4000-8000-00000000000b";
    assert_eq!(t.put(&ra_path(&rg_scope(), rg_ra), &ra_body(DATA_READER, SP, None)).await.status, 201);
    assert_eq!(t.put(&ra_path(&hub_scope(HUB), hub_ra), &ra_body(DATA_READER, USER, None)).await.status, 201);
    let list = |scope: String, filter: &str| {
        let f = if filter.is_empty() { String::new() } else { format!("&$filter={filter}") };
        format!("{scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01{f}")
    };
    // No filter at the RG: management group + subscription above, RG, hub below.
    let all = t.get(&list(rg_scope(), "")).await;
    let mut n = names(&all.body);
    n.sort();
    let mut want = vec![MG_RA.to_string(), SEEDED_RA.to_string(), rg_ra.to_string(), hub_ra.to_string()];
    want.sort();
    assert_eq!(n, want);
    // atScope(): at and above only.
    let at = names(&t.get(&list(rg_scope(), "atScope()")).await.body);
    assert!(
        at.contains(&MG_RA.to_string()) && at.contains(&rg_ra.to_string()) && !at.contains(&hub_ra.to_string()),
        "{at:?}"
    );
    // principalId eq, in the three encodings.
    for f in [
        format!("principalId+eq+'{USER}'"),
        format!("principalId%20eq%20'{USER}'"),
        format!("principalId eq \"{USER}\""),
    ] {
        assert_eq!(names(&t.get(&list(sub_scope(), &f)).await.body), vec![hub_ra.to_string()], "{f}");
    }
    // assignedTo(user) includes the group's assignment; a group id is refused.
    let mut assigned = names(&t.get(&list(sub_scope(), &format!("assignedTo('{USER}')"))).await.body);
    assigned.sort();
    let mut want = vec![SEEDED_RA.to_string(), hub_ra.to_string()];
    want.sort();
    assert_eq!(assigned, want);
    let combo = names(&t.get(&list(rg_scope(), &format!("atScope()+and+assignedTo('{USER}')"))).await.body);
    assert_eq!(combo, vec![SEEDED_RA.to_string()]);
    assert_eq!(t.get(&list(sub_scope(), &format!("assignedTo('{GROUP}')"))).await.status, 400);
    let bad = t.get(&list(sub_scope(), "roleName eq 'x'")).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body["error"]["code"].is_string());
    // Subscription-qualified roleDefinitionId with scope; unqualified at management group scope.
    let hub_list = t.get(&list(hub_scope(HUB), "")).await;
    for a in hub_list.body["value"].as_array().unwrap() {
        let rid = a["properties"]["roleDefinitionId"].as_str().unwrap();
        if a["name"] == MG_RA {
            assert_eq!(rid, format!("/providers/Microsoft.Authorization/roleDefinitions/{READER}"));
        } else {
            assert!(
                rid.starts_with(&format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/")),
                "{rid}"
            );
        }
        assert!(a["properties"]["scope"].is_string());
    }
    // Provider-level list sees everything; a management group list sees the MG assignment and below.
    assert_eq!(
        names(&t.get("/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01").await.body).len(),
        4
    );
    let mg = names(&t.get(&list("/providers/Microsoft.Management/managementGroups/mg-iot".into(), "")).await.body);
    assert_eq!(mg.len(), 4, "{mg:?}");
}

#[tokio::test]
async fn b3_deletes_are_idempotent() {
    let t = start(|_| {}).await;
    let first = t.delete(&ra_path(&sub_scope(), SEEDED_RA)).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["name"], SEEDED_RA);
    let second = t.delete(&ra_path(&sub_scope(), SEEDED_RA)).await;
    assert_eq!(second.status, 204);
    assert_eq!(second.body, Value::Null);
    assert_eq!(t.delete(&rd_path(&sub_scope(), "12345678-0000-4000-8000-000000000000")).await.status, 204);
    assert_eq!(t.emu.stats().count_status("roleAssignments.delete", 200), 1);
    assert_eq!(t.emu.stats().writes(), 1, "only the first delete changed anything");
}

fn role_body(name: &str, scopes: &[String], data_actions: &[&str]) -> Value {
    json!({"properties": {"roleName": name, "description": "d", "type": "CustomRole", "assignableScopes": scopes,
        "permissions": [{"actions": [], "notActions": [], "dataActions": data_actions, "notDataActions": []}]}})
}

#[tokio::test]
async fn b4_custom_roles() {
    let t = start(|_| {}).await;
    let g1 = "c0000000-0000-4000-8000-000000000001";
    let g2 = "c0000000-0000-4000-8000-000000000002";
    let put = t
        .put(
            &rd_path(&sub_scope(), g1),
            &role_body("Registry Reader", &[sub_scope()], &["Microsoft.Devices/IotHubs/devices/read"]),
        )
        .await;
    assert_eq!(put.status, 201);
    for k in ["createdOn", "updatedOn", "createdBy", "updatedBy"] {
        assert!(put.body["properties"][k].is_string(), "{k}: {}", put.body);
    }
    assert_eq!(put.body["properties"]["type"], "CustomRole");
    // Update: 201 again.
    let upd = t
        .put(
            &rd_path(&sub_scope(), g1),
            &role_body("Registry Reader", &[sub_scope()], &["Microsoft.Devices/IotHubs/twins/read"]),
        )
        .await;
    assert_eq!(upd.status, 201);
    // Name unique in the tenant, case-insensitively, even in another subscription.
    let other_sub = format!("/subscriptions/{SUB2}");
    let dup =
        t.put(&rd_path(&other_sub, g2), &role_body("registry reader", std::slice::from_ref(&other_sub), &[])).await;
    assert_eq!((dup.status, dup.code().as_str()), (409, "RoleDefinitionWithSameNameExists"));
    // DataActions with a management-group assignable scope: refused.
    let mg = "/providers/Microsoft.Management/managementGroups/mg-iot".to_string();
    let mgr = t
        .put(&rd_path(&mg, g2), &role_body("MG role", std::slice::from_ref(&mg), &["Microsoft.Devices/IotHubs/*"]))
        .await;
    assert_eq!(mgr.status, 400);
    // An RG-only role.
    assert_eq!(t.put(&rd_path(&rg_scope(), g2), &role_body("RG role", &[rg_scope()], &[])).await.status, 201);
    let list = |scope: &str, filter: &str| {
        format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter={filter}")
    };
    let at_hub = t.get(&list(&hub_scope(HUB), "type+eq+'CustomRole'")).await;
    let mut n = names(&at_hub.body);
    n.sort();
    assert_eq!(n, vec![g1.to_string(), g2.to_string()], "roles assignable at or above the hub");
    let at_sub = names(&t.get(&list(&sub_scope(), "type eq 'CustomRole'")).await.body);
    assert_eq!(at_sub, vec![g1.to_string()], "the RG role is not applicable at the subscription");
    let by_name = t.get(&list(&hub_scope(HUB), "roleName%20eq%20'Registry%20Reader'")).await;
    assert_eq!(names(&by_name.body), vec![g1.to_string()]);
    let builtin = t.get(&list(&hub_scope(HUB), "roleName eq 'IoT Hub Data Reader'")).await;
    assert_eq!(builtin.body["value"][0]["properties"]["type"], "BuiltInRole");
    let builtins = names(&t.get(&list(&rg_scope(), "type eq 'BuiltInRole'")).await.body);
    assert_eq!(builtins.len(), 11, "all built-ins at every scope");
    let tenant = names(
        &t.get(
            "/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=type+eq+'CustomRole'",
        )
        .await
        .body,
    );
    assert_eq!(tenant.len(), 2);
    let tenant_get = t.get(&rd_path("", g1)).await;
    assert_eq!(tenant_get.status, 200);
    let builtin_get = t.get(&rd_path(&hub_scope(HUB), DATA_READER)).await;
    assert_eq!(builtin_get.body["properties"]["roleName"], "IoT Hub Data Reader");
    assert_eq!(
        t.get(&rd_path(&sub_scope(), "c0000000-0000-4000-8000-0000000000ff")).await.code(),
        "RoleDefinitionDoesNotExist"
    );
    // Delete refused while assigned.
    assert_eq!(
        t.put(&ra_path(&hub_scope(HUB), "d0000000-0000-4000-8000-000000000001"), &ra_body(g1, SP, None)).await.status,
        201
    );
    let refused = t.delete(&rd_path(&sub_scope(), g1)).await;
    assert_eq!((refused.status, refused.code().as_str()), (409, "RoleDefinitionHasAssignments"));
    assert_eq!(t.delete(&ra_path(&hub_scope(HUB), "d0000000-0000-4000-8000-000000000001")).await.status, 200);
    assert_eq!(t.delete(&rd_path(&sub_scope(), g1)).await.status, 200);
    assert!(t.delete(&rd_path(&sub_scope(), READER)).await.status >= 400, "built-ins cannot be deleted");
}

#[tokio::test]
async fn b5_replication_delay_then_success() {
    let t =
        start(|c| c.replication_delay = Some(ReplicationDelay { seconds: 0.5, even_with_principal_type: false })).await;
    let fresh = "f0000000-0000-4000-8000-000000000001";
    t.emu.add_principal(Principal {
        id: fresh.into(),
        principal_type: "ServicePrincipal".into(),
        ..Default::default()
    });
    let scope = hub_scope(HUB);
    let r = t.put(&ra_path(&scope, "f1000000-0000-4000-8000-000000000001"), &ra_body(DATA_READER, fresh, None)).await;
    assert_eq!(r.code(), "PrincipalNotFound", "not replicated yet and no principalType");
    let ok = t
        .put(
            &ra_path(&scope, "f1000000-0000-4000-8000-000000000001"),
            &ra_body(DATA_READER, fresh, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(ok.status, 201, "principalType skips the lookup");

    let strict =
        start(|c| c.replication_delay = Some(ReplicationDelay { seconds: 0.4, even_with_principal_type: true })).await;
    strict.emu.add_principal(Principal {
        id: fresh.into(),
        principal_type: "ServicePrincipal".into(),
        ..Default::default()
    });
    let name = "f2000000-0000-4000-8000-000000000002";
    let r = strict.put(&ra_path(&scope, name), &ra_body(DATA_READER, fresh, Some("ServicePrincipal"))).await;
    assert_eq!(r.code(), "PrincipalNotFound");
    // PrincipalNotFound until the delay has passed, then the same request goes through.
    let replicated = eventually("the new principal to replicate", DEADLINE, async || {
        let r = strict.put(&ra_path(&scope, name), &ra_body(DATA_READER, fresh, Some("ServicePrincipal"))).await;
        (r.code() != "PrincipalNotFound").then_some(r)
    })
    .await;
    assert_eq!(replicated.status, 201, "{}", replicated.body);
}

#[tokio::test]
async fn b6_hub_put_needs_if_match_and_runs_a_long_running_operation() {
    let t = start(|c| c.lro_running_polls = 2).await;
    let get = t.get(&hub_path(HUB)).await;
    let etag = get.body["etag"].as_str().unwrap().to_string();
    assert_eq!(get.header("etag").unwrap().trim_matches('"'), etag);
    let keys_before =
        t.send("POST", &format!("{}/listkeys?api-version=2023-06-30", hub_scope(HUB)), None, &[]).await.body;
    let mut body = get.body.clone();
    body["properties"]["disableLocalAuth"] = json!(true);
    // No If-Match on an existing hub, then a stale one: 412 in the Devices RP shape.
    let missing = t.put(&hub_path(HUB), &body).await;
    assert_eq!(missing.status, 412);
    let stale = t.send("PUT", &hub_path(HUB), Some(&body), &[("If-Match", "\"AAAAAAAAAAA=\"")]).await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.body["code"], json!(412001), "numeric code");
    assert_eq!(stale.body["httpStatusCode"], "PreconditionFailed");
    assert!(stale.message().starts_with("Invalid ETag supplied.") && stale.message().ends_with("errorcode: IH412001."));
    let hub_a = t.emu.snapshot().hubs.into_iter().find(|h| h.name == HUB).expect("hub-a");
    assert_eq!(hub_a.disable_local_auth, Some(false), "not applied");
    // The right etag: 201, async operation, transitional state.
    let put = t.send("PUT", &hub_path(HUB), Some(&body), &[("If-Match", &etag)]).await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(put.body["properties"]["provisioningState"], "Accepted");
    assert_ne!(put.body["etag"].as_str().unwrap(), etag, "every write changes the etag");
    let op = put.header("azure-asyncoperation").unwrap();
    assert!(
        op.starts_with(&format!(
            "{}/subscriptions/{SUB}/providers/Microsoft.Devices/locations/westeurope/operationResults/",
            t.base
        )),
        "{op}"
    );
    assert_eq!(put.header("retry-after").as_deref(), Some("1"), "never 0 while the operation runs");
    let during = t.get(&hub_path(HUB)).await;
    assert_eq!(during.body["properties"]["provisioningState"], "Accepted");
    assert_eq!(during.body["properties"]["disableLocalAuth"], true, "committed at PUT time");
    for want in ["Running", "Running", "Succeeded", "Succeeded"] {
        assert_eq!(t.get(&op).await.body["status"], want);
    }
    let after = t.get(&hub_path(HUB)).await;
    assert_eq!(after.body["properties"]["provisioningState"], "Succeeded");
    let keys_after =
        t.send("POST", &format!("{}/listkeys?api-version=2023-06-30", hub_scope(HUB)), None, &[]).await.body;
    assert_eq!(keys_before, keys_after, "a PUT without authorizationPolicies keeps the keys");
    // PATCH changes tags only.
    let patched = t
        .send(
            "PATCH",
            &hub_path(HUB),
            Some(&json!({"tags": {"env": "prod"}, "properties": {"disableLocalAuth": false}})),
            &[],
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["tags"]["env"], "prod");
    assert_eq!(patched.body["properties"]["disableLocalAuth"], true);
    // A new hub: no If-Match; needs an existing resource group.
    let new_body = json!({"location": "westeurope", "sku": {"name": "S1", "capacity": 1}, "properties": {}});
    let no_rg = t.put(&format!("/subscriptions/{SUB}/resourceGroups/rg-missing/providers/Microsoft.Devices/IotHubs/hub-new?api-version=2023-06-30"), &new_body).await;
    assert_eq!((no_rg.status, no_rg.message().as_str()), (404, "Resource group 'rg-missing' could not be found."));
    assert_eq!(no_rg.code(), "ResourceGroupNotFound");
    assert_eq!(t.put(&hub_path("hub-new"), &new_body).await.status, 201);
    let del = t.delete(&hub_path("hub-new")).await;
    assert_eq!(del.status, 202);
    assert!(del.header("azure-asyncoperation").is_some() && del.header("location").is_some());
    assert_eq!(t.delete(&hub_path("hub-new")).await.status, 204);
}

#[tokio::test]
async fn b7_hub_reads_lists_paging_and_not_found() {
    let t = start(|c| c.page_size = 1).await;
    let (items, pages) =
        t.list_all(&format!("/subscriptions/{SUB}/providers/Microsoft.Devices/IotHubs?api-version=2023-06-30")).await;
    assert_eq!((items.len(), pages), (2, 2));
    assert_eq!(items[0]["properties"]["hostName"], "hub-a.azure-devices.net");
    assert!(items.iter().all(|h| h["properties"].get("authorizationPolicies").is_none()));
    let (by_rg, _) =
        t.list_all(&format!("{}/providers/Microsoft.Devices/IotHubs?api-version=2023-06-30", rg_scope())).await;
    assert_eq!(by_rg.len(), 2);
    let missing = t.get(&hub_path("nope")).await;
    assert_eq!(missing.code(), "ResourceNotFound");
    assert_eq!(
        missing.message(),
        "The Resource 'Microsoft.Devices/IotHubs/nope' under resource group 'rg-iot' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    );
    // Role assignment lists page too, and the filter survives in nextLink.
    for (i, role) in [READER, DATA_READER, CONTRIBUTOR].iter().enumerate() {
        let name = format!("e000000{i}-0000-4000-8000-000000000000");
        assert_eq!(t.put(&ra_path(&hub_scope(HUB), &name), &ra_body(role, USER, None)).await.status, 201);
    }
    let (items, pages) = t
        .list_all(&format!("{}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId+eq+'{USER}'", hub_scope(HUB)))
        .await;
    assert_eq!((items.len(), pages), (3, 3));
}

#[tokio::test]
async fn b8_dps_links_by_api_version_and_cloud() {
    let t = start(|c| c.hub_host_suffix = "azure-devices.cn".into()).await;
    let path =
        |v: &str| format!("{}/providers/Microsoft.Devices/provisioningServices/dps-a?api-version={v}", rg_scope());
    let old = t.get(&path("2022-12-12")).await;
    assert_eq!(old.body["type"], "Microsoft.Devices/ProvisioningServices");
    let links = old.body["properties"]["iotHubs"].as_array().unwrap().clone();
    assert_eq!(links[0]["name"], "hub-a.azure-devices.cn");
    assert_eq!(
        links[0]["connectionString"],
        "HostName=hub-a.azure-devices.cn;SharedAccessKeyName=iothubowner;SharedAccessKey=****"
    );
    assert_eq!(links[0]["location"], "westeurope");
    assert!(links[0]["allocationWeight"].is_number() && links[0]["applyAllocationPolicy"].is_boolean());
    assert!(links[0].get("hostName").is_none() && links[0].get("authenticationType").is_none());
    assert_eq!(links[1]["name"], "hub-b.azure-devices.cn");
    assert!(links[1].get("connectionString").is_none(), "identity link: no connection string");
    let new = t.get(&path("2026-03-01-preview")).await;
    let l = &new.body["properties"]["iotHubs"];
    assert_eq!(l[0]["authenticationType"], "KeyBased");
    assert_eq!(l[0]["hostName"], "hub-a.azure-devices.cn");
    assert_eq!(l[1]["authenticationType"], "UserAssigned");
    assert!(l[1]["selectedUserAssignedIdentityResourceId"].is_string());
    // A PUT with a real connection string stores it; reads mask it.
    let body = json!({"location": "westeurope", "properties": {"iotHubs": [{"connectionString": "HostName=HUB-A.azure-devices.cn;SharedAccessKeyName=iothubowner;SharedAccessKey=c2VjcmV0", "location": "westeurope"}]}});
    let put = t.put(&path("2022-12-12"), &body).await;
    assert_eq!(put.status, 200);
    assert_eq!(
        put.body["properties"]["iotHubs"][0]["name"], "hub-a.azure-devices.cn",
        "host names match case-insensitively"
    );
    assert!(!put.body.to_string().contains("c2VjcmV0"), "the key is never returned");
    let (all, _) = t
        .list_all(&format!("{}/providers/Microsoft.Devices/provisioningServices?api-version=2022-12-12", rg_scope()))
        .await;
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn b9_error_envelopes_and_ratelimit_headers() {
    let t = start(|_| {}).await;
    let get = t.get(&hub_path(HUB)).await;
    assert!(get.header("x-ms-ratelimit-remaining-subscription-reads").is_some());
    assert!(get.header("x-ms-request-id").is_some());
    let put = t.put(&ra_path(&sub_scope(), "90000000-0000-4000-8000-000000000001"), &ra_body(READER, SP, None)).await;
    assert!(put.header("x-ms-ratelimit-remaining-subscription-writes").is_some());
    let del = t.delete(&ra_path(&sub_scope(), "90000000-0000-4000-8000-000000000001")).await;
    assert!(del.header("x-ms-ratelimit-remaining-subscription-deletes").is_some());
    let post = t.send("POST", &format!("{}/listkeys?api-version=2023-06-30", hub_scope(HUB)), None, &[]).await;
    assert!(post.header("x-ms-ratelimit-remaining-subscription-writes").is_some());
    let unknown_sub = t.get("/subscriptions/99999999-9999-4999-8999-999999999999/providers/Microsoft.Devices/IotHubs?api-version=2023-06-30").await;
    assert_eq!((unknown_sub.status, unknown_sub.code().as_str()), (404, "SubscriptionNotFound"));
    // Resource groups can be created through ARM, then used.
    let rg = t
        .put(
            &format!("/subscriptions/{SUB}/resourcegroups/rg-new?api-version=2021-04-01"),
            &json!({"location": "northeurope"}),
        )
        .await;
    assert_eq!(rg.status, 201);
    assert_eq!(rg.body["type"], "Microsoft.Resources/resourceGroups");
    let hub = t.put(&format!("/subscriptions/{SUB}/resourceGroups/rg-new/providers/Microsoft.Devices/IotHubs/hub-n?api-version=2023-06-30"), &json!({"location": "northeurope", "sku": "S1"})).await;
    assert_eq!(hub.status, 201);
}

#[tokio::test]
async fn b10_tokens_audiences_and_imds() {
    let t = start(|_| {}).await;
    // No token, wrong audience, expired, foreign signature.
    let anon = to_resp(t.http.get(t.url(&hub_path(HUB))).send().await.unwrap()).await;
    assert_eq!((anon.status, anon.code().as_str()), (401, "InvalidAuthenticationToken"));
    let iot = t.fetch_token("https://iothubs.azure.net/.default").await;
    let wrong = to_resp(t.http.get(t.url(&hub_path(HUB))).bearer_auth(&iot).send().await.unwrap()).await;
    assert_eq!((wrong.status, wrong.code().as_str()), (401, "InvalidAuthenticationTokenAudience"));
    let expired = t.emu.issue_token("https://management.azure.com/", CLIENT, -10);
    let exp = to_resp(t.http.get(t.url(&hub_path(HUB))).bearer_auth(&expired).send().await.unwrap()).await;
    assert_eq!((exp.status, exp.code().as_str()), (401, "ExpiredAuthenticationToken"));
    let other = start(|_| {}).await;
    let foreign = to_resp(t.http.get(t.url(&hub_path(HUB))).bearer_auth(&other.token).send().await.unwrap()).await;
    assert_eq!(foreign.status, 401, "another emulator's token");
    // Sovereign ARM audiences are accepted.
    let cn = t.fetch_token("https://management.chinacloudapi.cn/.default").await;
    assert_eq!(to_resp(t.http.get(t.url(&hub_path(HUB))).bearer_auth(&cn).send().await.unwrap()).await.status, 200);
    // Token endpoint: wrong secret, extra MSAL fields, federated assertion, malformed assertion.
    let bad = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("scope", "https://management.azure.com/.default"),
            ("client_secret", "nope"),
        ])
        .await;
    assert_eq!((bad.status, bad.body["error"].as_str()), (401, Some("invalid_client")));
    assert!(bad.body["error_description"].as_str().unwrap().starts_with("AADSTS7000215"));
    assert_eq!(bad.body["error_codes"][0], 7000215);
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(bad.body[k].is_string());
    }
    let msal = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("scope", "https://management.azure.com/.default"),
            ("client_secret", SECRET),
            ("client-request-id", "x"),
            ("x-client-SKU", "rust"),
        ])
        .await;
    assert_eq!(msal.status, 200);
    assert_eq!((msal.body["token_type"].as_str(), msal.body["expires_in"].as_u64()), (Some("Bearer"), Some(3599)));
    assert!(msal.body["ext_expires_in"].is_number());
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2ln";
    let wi = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("scope", "https://management.azure.com/.default"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", jwt),
        ])
        .await;
    assert_eq!(wi.status, 200, "{}", wi.body);
    let malformed = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("scope", "https://management.azure.com/.default"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", "not-a-jwt"),
        ])
        .await;
    assert_eq!((malformed.status, malformed.body["error"].as_str()), (400, Some("invalid_request")));
    // MSAL discovery.
    let disc =
        to_resp(t.http.get(format!("{}/common/discovery/instance?api-version=1.1", t.base)).send().await.unwrap())
            .await;
    assert!(disc.body["tenant_discovery_endpoint"].as_str().unwrap().starts_with(&t.base));
    let oidc =
        to_resp(t.http.get(format!("{}/{TENANT}/v2.0/.well-known/openid-configuration", t.base)).send().await.unwrap())
            .await;
    assert_eq!(oidc.body["token_endpoint"], format!("{}/{TENANT}/oauth2/v2.0/token", t.base));
    // IMDS.
    let imds = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/",
        t.base
    );
    let no_header = to_resp(t.http.get(&imds).send().await.unwrap()).await;
    assert_eq!((no_header.status, no_header.body["error"].as_str()), (400, Some("bad_request_102")));
    let ok = to_resp(t.http.get(&imds).header("Metadata", "true").send().await.unwrap()).await;
    assert_eq!(ok.status, 200);
    for k in ["expires_in", "expires_on", "not_before"] {
        assert!(ok.body[k].is_string(), "{k} is a string");
    }
    let mi = ok.body["access_token"].as_str().unwrap();
    assert_eq!(to_resp(t.http.get(t.url(&hub_path(HUB))).bearer_auth(mi).send().await.unwrap()).await.status, 200);
    assert!(t.emu.stats().count("token") >= 5 && t.emu.stats().count("imds") == 2);
}

#[tokio::test]
async fn throttling_buckets_refuse_with_retry_after_and_refill() {
    let t = start(|c| {
        c.throttle = Some(ThrottleConfig {
            reads: Bucket { capacity: 5.0, refill_per_sec: 1.0 },
            // One token a second: the four writes below meet an empty bucket unless they take a
            // whole second, and Retry-After is always 1.
            writes: Bucket { capacity: 3.0, refill_per_sec: 1.0 },
            deletes: None,
        })
    })
    .await;
    let (mut statuses, mut remaining) = (Vec::new(), Vec::new());
    for i in 0..3 {
        let r = t
            .put(
                &ra_path(&hub_scope(HUB), &format!("70000000-0000-4000-8000-00000000000{i}")),
                &ra_body(READER, SP, None),
            )
            .await;
        statuses.push(r.status);
        remaining.push(r.header("x-ms-ratelimit-remaining-subscription-writes").unwrap());
    }
    assert_eq!(statuses, [201, 409, 409], "the same role for the same principal again: RoleAssignmentExists");
    assert_eq!(remaining, ["2", "1", "0"], "a 409 takes its token like a 201");
    let name = "70000000-0000-4000-8000-0000000000ff";
    let refused = t.put(&ra_path(&hub_scope(HUB), name), &ra_body(DATA_READER, SP2, None)).await;
    let refused_at = tokio::time::Instant::now();
    assert_eq!((refused.status, refused.code().as_str()), (429, "SubscriptionRequestsThrottled"));
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    assert!(!t.emu.snapshot().role_assignments.iter().any(|a| a.name == name), "a throttled request is not processed");
    // Reads have their own bucket; the token endpoint is not throttled.
    let read = t.get(&hub_path(HUB)).await;
    assert_eq!(read.header("x-ms-ratelimit-remaining-subscription-reads").as_deref(), Some("4"));
    for _ in 0..5 {
        t.fetch_token("https://management.azure.com/.default").await;
    }
    // Retry-After is a promise: counted from the refusal (the bucket's last update is no later),
    // the bucket refills a whole token in that time, however slow this machine is.
    let retry_after = Duration::from_secs(refused.header("retry-after").unwrap().parse().unwrap());
    tokio::time::sleep_until(refused_at + retry_after).await;
    let later = t.put(&ra_path(&hub_scope(HUB), name), &ra_body(DATA_READER, SP2, None)).await;
    assert_eq!(later.status, 201, "refilled");
    assert_eq!(t.emu.stats().throttled(), 1);
    // Deletes share the writes bucket unless configured.
    t.emu.set_throttle(Some(ThrottleConfig {
        reads: Bucket { capacity: 5.0, refill_per_sec: 1.0 },
        writes: Bucket { capacity: 1.0, refill_per_sec: 0.1 },
        deletes: Some(Bucket { capacity: 2.0, refill_per_sec: 0.1 }),
    }));
    let d = t.delete(&ra_path(&hub_scope(HUB), name)).await;
    assert_eq!(d.header("x-ms-ratelimit-remaining-subscription-deletes").as_deref(), Some("1"));
    let w = t.put(&ra_path(&hub_scope(HUB), name), &ra_body(DATA_READER, SP2, None)).await;
    assert_eq!(w.status, 201);
    let w2 = t
        .put(&ra_path(&hub_scope(HUB), "70000000-0000-4000-8000-0000000000fe"), &ra_body(DATA_READER, SP2, None))
        .await;
    assert_eq!((w2.status, w2.header("retry-after").as_deref()), (429, Some("10")));
}

#[tokio::test]
async fn faults_errors_throttles_resets_and_timeouts() {
    let t = start(|_| {}).await;
    let scope = hub_scope(HUB);
    let exists = |name: &str| t.emu.snapshot().role_assignments.iter().any(|a| a.name == name);
    // 5xx: not processed.
    t.emu.set_faults(Faults { error_rate: 1.0, rng_seed: Some(1), ..Faults::default() });
    let n1 = "f0000000-0000-4000-8000-0000000000a1";
    let r = t.put(&ra_path(&scope, n1), &ra_body(READER, SP, None)).await;
    assert_eq!((r.status, r.code().as_str()), (500, "InternalServerError"), "the first roll of seed 1");
    assert!(r.body["error"]["code"].is_string());
    assert!(!exists(n1));
    // Injected 429.
    t.emu.set_faults(Faults { throttle_rate: 1.0, throttle_retry_after_secs: 3, ..Faults::default() });
    let r = t.put(&ra_path(&scope, n1), &ra_body(READER, SP, None)).await;
    assert_eq!(
        (r.status, r.header("retry-after").as_deref(), r.code().as_str()),
        (429, Some("3"), "SubscriptionRequestsThrottled")
    );
    assert!(!exists(n1));
    // Reset before processing: no answer, nothing written.
    t.emu.set_faults(Faults { reset_before_rate: 1.0, ..Faults::default() });
    assert!(t.try_send("PUT", &ra_path(&scope, n1), Some(&ra_body(READER, SP, None)), &[]).await.is_err());
    assert!(!exists(n1));
    // Reset after processing: no answer, but the write happened; the retry is idempotent.
    t.emu.set_faults(Faults { reset_after_rate: 1.0, ..Faults::default() });
    assert!(t.try_send("PUT", &ra_path(&scope, n1), Some(&ra_body(READER, SP, None)), &[]).await.is_err());
    assert!(exists(n1), "processed before the connection was dropped");
    t.emu.set_faults(Faults::default());
    assert_eq!(t.put(&ra_path(&scope, n1), &ra_body(READER, SP, None)).await.status, 200);
    // Timeout: held, then dropped, not processed.
    t.emu.set_faults(Faults { timeout_rate: 1.0, timeout_hold: Duration::from_millis(300), ..Faults::default() });
    let n2 = "f0000000-0000-4000-8000-0000000000a2";
    let started = Instant::now();
    assert!(t.try_send("PUT", &ra_path(&scope, n2), Some(&ra_body(READER, SP, None)), &[]).await.is_err());
    assert!(started.elapsed() >= Duration::from_millis(290));
    assert!(!exists(n2));
    // Latency, limited to some operations; the token endpoint is spared unless asked.
    t.emu.set_faults(Faults {
        latency: Duration::from_millis(200),
        error_rate: 1.0,
        only_operations: Some(vec!["iotHubs.get".into()]),
        ..Faults::default()
    });
    let started = Instant::now();
    assert!(t.get(&hub_path(HUB)).await.status >= 500);
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert_eq!(t.get(&ra_path(&scope, n1)).await.status, 200, "other operations are untouched");
    t.emu.set_faults(Faults { error_rate: 1.0, ..Faults::default() });
    t.fetch_token("https://management.azure.com/.default").await;
    t.emu.set_faults(Faults { error_rate: 1.0, include_token: true, ..Faults::default() });
    let tok = t.token_request(&[("grant_type", "client_credentials")]).await;
    assert!(tok.status >= 500);
    t.emu.set_faults(Faults::default());
    let stats = t.emu.stats();
    // 5xx, 429, reset before, reset after, timeout, the hub GET, the token request.
    assert_eq!(stats.faults_injected(), 7);
    assert_eq!(
        stats.count_status("roleAssignments.create", 0),
        2,
        "no answer and not processed: reset before, timeout"
    );
    assert_eq!(stats.count_status("roleAssignments.create", 201), 1, "reset after: processed, counted with its status");
}

#[tokio::test]
async fn faults_are_reproducible_with_a_seed() {
    let t = start(|_| {}).await;
    let run = || async {
        t.emu.set_faults(Faults { error_rate: 0.5, rng_seed: Some(42), ..Faults::default() });
        let mut out = Vec::new();
        for _ in 0..12 {
            out.push(t.get(&hub_path(HUB)).await.status);
        }
        out
    };
    let a = run().await;
    let b = run().await;
    assert_eq!(a, b);
    assert!(a.contains(&200) && a.iter().any(|s| *s >= 500), "{a:?}");
    let json: Faults =
        serde_json::from_str(r#"{"errorRate":0.1,"throttleRate":0.05,"latency":"20ms","timeoutHold":"1.5s"}"#).unwrap();
    assert_eq!(
        (json.latency, json.timeout_hold, json.error_rate),
        (Duration::from_millis(20), Duration::from_millis(1500), 0.1)
    );
}

#[tokio::test]
async fn persistence_round_trip() {
    for ext in ["yaml", "json"] {
        let dir = std::env::temp_dir().join(format!("emu-persist-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("state.{ext}"));
        let t = start(|c| c.persist_to = Some(file.clone())).await;
        let name = "a0000000-0000-4000-8000-0000000000a1";
        assert_eq!(t.put(&ra_path(&hub_scope(HUB), name), &ra_body(READER, SP, None)).await.status, 201);
        let etag = t.get(&hub_path(HUB)).await.body["etag"].clone();
        t.emu.with_state(|s| s.hub_mut(SUB, RG, HUB_B).unwrap().set_disable_local_auth(false));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(name));
        assert!(Seed::from_str_auto(&text).is_ok());
        t.emu.shutdown().await;
        // Restart from the file (the seed is ignored).
        let t2 =
            start_with("tenantId: 3c6f1d2e-8a4b-4f5c-9d7e-1a2b3c4d5e6f", |c| c.persist_to = Some(file.clone())).await;
        assert_eq!(t2.get(&ra_path(&hub_scope(HUB), name)).await.status, 200);
        assert_eq!(t2.get(&hub_path(HUB)).await.body["etag"], etag, "etags survive");
        assert_eq!(t2.get(&hub_path(HUB_B)).await.body["properties"]["disableLocalAuth"], false);
        let keys = t2.send("POST", &format!("{}/listkeys?api-version=2023-06-30", hub_scope(HUB)), None, &[]).await;
        assert_eq!(keys.body["value"].as_array().unwrap().len(), 5);
        t2.emu.shutdown().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test]
async fn tampering_bumps_etags_and_admin_api_works() {
    let t = start(|_| {}).await;
    let before = t.get(&hub_path(HUB)).await.body["etag"].clone();
    let removed = t.emu.with_state(|s| {
        s.hub_mut(SUB, RG, HUB).unwrap().set_disable_local_auth(true);
        s.remove_assignment(SEEDED_RA)
    });
    assert!(removed);
    let after = t.get(&hub_path(HUB)).await;
    assert_ne!(after.body["etag"], before);
    assert_eq!(after.body["properties"]["disableLocalAuth"], true);
    let unchanged = t.get(&hub_path(HUB_B)).await.body["etag"].clone();
    t.emu.with_state(|s| s.assignments().len());
    assert_eq!(t.get(&hub_path(HUB_B)).await.body["etag"], unchanged, "untouched hubs keep their etag");
    // Admin API (no auth).
    let admin = |p: &str| format!("{}/_emulator/{p}", t.base);
    let state = to_resp(t.http.get(admin("state")).send().await.unwrap()).await;
    assert_eq!(state.body["tenantId"], TENANT);
    let f = to_resp(t.http.put(admin("faults")).json(&json!({"errorRate": 1.0})).send().await.unwrap()).await;
    assert_eq!(f.status, 200);
    assert!(t.get(&hub_path(HUB)).await.status >= 500);
    to_resp(t.http.put(admin("faults")).json(&json!({})).send().await.unwrap()).await;
    let th = to_resp(t.http.put(admin("throttle")).json(&json!({"reads": {"capacity": 1.0, "refillPerSec": 0.01}, "writes": {"capacity": 1.0, "refillPerSec": 0.01}})).send().await.unwrap()).await;
    assert_eq!(th.status, 200);
    assert_eq!(t.get(&hub_path(HUB)).await.status, 200);
    assert_eq!(t.get(&hub_path(HUB)).await.status, 429);
    to_resp(t.http.put(admin("throttle")).json(&Value::Null).send().await.unwrap()).await;
    let p = to_resp(
        t.http
            .post(admin("principals"))
            .json(&json!({"id": "12121212-0000-4000-8000-000000000000", "type": "User"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, 201);
    assert_eq!(
        t.put(
            &ra_path(&sub_scope(), "12121212-0000-4000-8000-000000000001"),
            &ra_body(READER, "12121212-0000-4000-8000-000000000000", None)
        )
        .await
        .status,
        201
    );
    let stats = to_resp(t.http.get(admin("stats")).send().await.unwrap()).await;
    assert!(stats.body["requests"]["iotHubs.get"].is_object());
    assert_eq!(stats.body["throttled"], 1);
    assert_eq!(to_resp(t.http.post(admin("reset-stats")).send().await.unwrap()).await.status, 204);
    assert_eq!(t.emu.stats().total(), 0);
}
