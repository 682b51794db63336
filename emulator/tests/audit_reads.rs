//! What the exposure audit (issue 18) reads, over real HTTP: deny assignments (2022-04-01) and
//! role eligibility schedule instances (2020-10-01) with their filters, inheritance and paging,
//! shapes against the spec examples in tests/contract/ (sources in tests/contract/SOURCES.md);
//! deny assignments enforced by `enforceRbac`; management groups and entities; the 2025 built-in
//! roles; and the SDK findings: DPS api-version 2026-11-01, DPS creation as a long-running
//! operation, `Retry-After` never 0. The estate is tests/audit_estate.yaml.

mod support;

use iothub_access_emulator::{DenyPrincipal, Faults, Seed, State};
use serde_json::{Value, json};
use support::*;

const ESTATE: &str = include_str!("audit_estate.yaml");
const ARM: &str = "https://management.azure.com/";

const OWNER_U: &str = "a0000000-0000-4000-8000-000000000001";
const CI: &str = "a0000000-0000-4000-8000-000000000002";
const KEYS: &str = "a0000000-0000-4000-8000-000000000003";
const RITA: &str = "a0000000-0000-4000-8000-000000000004";
const ELI: &str = "a0000000-0000-4000-8000-000000000006";
const ADR_SP: &str = "a0000000-0000-4000-8000-000000000007";
const AIO_SP: &str = "a0000000-0000-4000-8000-000000000008";
const OPS: &str = "a0000000-0000-4000-8000-00000000000a";
const NOBODY: &str = "5e5e5e5e-0000-4000-8000-00000000a11d";

const DENY_KEYS: &str = "d0000000-0000-4000-8000-000000000001";
const DENY_HUB_B: &str = "d0000000-0000-4000-8000-000000000002";
const DENY_RG: &str = "d0000000-0000-4000-8000-000000000003";
const ELIGIBLE_ELI: &str = "e0000000-0000-4000-8000-000000000006";
const ELIGIBLE_OPS: &str = "e0000000-0000-4000-8000-00000000000a";

const ADR_ONBOARDING: &str = "547f7f0a-69c0-4807-bd9e-0321dfb66a84";
const AIO_ONBOARDING: &str = "7b7c71ed-33fa-4ed2-a91a-e56d5da260b5";
const EVERYONE: &str = "00000000-0000-0000-0000-000000000000";

fn enc(s: &str) -> String {
    s.replace(' ', "%20").replace('\'', "%27")
}

fn deny_list(scope: &str, filter: Option<&str>) -> String {
    let f = filter.map(|f| format!("&$filter={}", enc(f))).unwrap_or_default();
    format!("{scope}/providers/Microsoft.Authorization/denyAssignments?api-version=2022-04-01{f}")
}

fn deny_path(scope: &str, name: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/denyAssignments/{name}?api-version=2022-04-01")
}

fn pim_list(scope: &str, filter: Option<&str>) -> String {
    let f = filter.map(|f| format!("&$filter={}", enc(f))).unwrap_or_default();
    format!("{scope}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances?api-version=2020-10-01{f}")
}

fn names(body: &Value) -> Vec<String> {
    let mut n: Vec<String> =
        body["value"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap().to_string()).collect();
    n.sort();
    n
}

fn schedules(body: &Value) -> Vec<String> {
    let mut n: Vec<String> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["properties"]["roleEligibilityScheduleId"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    n.sort();
    n
}

fn hub_b() -> String {
    hub_scope(HUB_B)
}

fn with_rbac() -> String {
    let mut v: Value = serde_yaml::from_str(ESTATE).unwrap();
    v["enforceRbac"] = json!(true);
    serde_json::to_string(&v).unwrap()
}

/// The example's body with `pointer`'s key removed (what the emulator cannot know).
fn without(mut v: Value, pointer: &str, key: &str) -> Value {
    v.pointer_mut(pointer).and_then(Value::as_object_mut).expect(pointer).remove(key);
    v
}

#[tokio::test]
async fn deny_assignments_have_the_shape_of_the_spec_examples() {
    let t = start_with(ESTATE, |_| {}).await;
    let list = t.get(&deny_list(&sub_scope(), None)).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_shape(&list.body, &example("GetDenyAssignmentByScope.json", "200"), "listForScope");
    let by_name = t.get(&deny_path(&rg_scope(), DENY_KEYS)).await;
    assert_eq!(by_name.status, 200, "{}", by_name.body);
    assert_shape(&by_name.body, &example("GetDenyAssignmentByNameId.json", "200"), "get");
    assert_shape(&by_name.body, &example("GetDenyAssignmentById.json", "200"), "getById");

    // Every property as seeded; the zero GUID of type SystemDefined stands for everyone.
    let mut hub_b_deny = t.get(&deny_path(&hub_b(), DENY_HUB_B)).await.body;
    let props = hub_b_deny["properties"].as_object_mut().unwrap();
    assert!(props.remove("createdOn").is_some_and(|c| c.is_string()) && props.remove("updatedOn").is_some());
    assert_eq!(
        hub_b_deny,
        json!({
            "properties": {
                "denyAssignmentName": "Protect hub-b",
                "description": "Deployment stack deny settings (DenyWriteAndDelete).",
                "permissions": [{"actions": ["*/write", "*/delete"],
                                 "notActions": ["Microsoft.Devices/IotHubs/IotHubKeys/write"],
                                 "dataActions": [], "notDataActions": []}],
                "scope": hub_b(),
                "doNotApplyToChildScopes": false,
                "principals": [{"id": EVERYONE, "type": "SystemDefined"}],
                "excludePrincipals": [{"id": OWNER_U, "type": "User"}],
                "isSystemProtected": true
            },
            "id": format!("{}/providers/Microsoft.Authorization/denyAssignments/{DENY_HUB_B}", hub_b()),
            "type": "Microsoft.Authorization/denyAssignments",
            "name": DENY_HUB_B
        })
    );
    // A principal's type defaults to the directory's.
    let rg_lock = t.get(&deny_path(&rg_scope(), DENY_RG)).await.body;
    assert_eq!(rg_lock["properties"]["principals"], json!([{"id": RITA, "type": "User"}]));
    assert_eq!(rg_lock["properties"]["doNotApplyToChildScopes"], true);
    assert_eq!(rg_lock["properties"]["description"], "", "no description: an empty one");
}

#[tokio::test]
async fn deny_assignments_are_inherited_filtered_and_paged_as_the_spec_documents() {
    let t = start_with(ESTATE, |_| {}).await;
    let at = |scope: String, filter: Option<&'static str>| {
        let t = &t;
        async move {
            let r = t.get(&deny_list(&scope, filter)).await;
            assert_eq!(r.status, 200, "{scope} {filter:?}: {}", r.body);
            names(&r.body)
        }
    };
    // At and above the hub; the subscription sees those below it too; atScope(): at or above only.
    assert_eq!(at(hub_scope(HUB), None).await, [DENY_KEYS, DENY_RG]);
    assert_eq!(at(hub_b(), None).await, [DENY_KEYS, DENY_HUB_B, DENY_RG]);
    assert_eq!(at(sub_scope(), None).await, [DENY_KEYS, DENY_HUB_B, DENY_RG]);
    assert!(at(sub_scope(), Some("atScope()")).await.is_empty());
    assert_eq!(at(hub_b(), Some("atScope()")).await, [DENY_KEYS, DENY_HUB_B, DENY_RG]);
    // principalId: listed in `principals` (an excluded principal is not; everyone is the zero GUID).
    assert_eq!(at(sub_scope(), Some("principalId eq 'a0000000-0000-4000-8000-000000000002'")).await, [DENY_KEYS]);
    assert!(at(sub_scope(), Some("principalId eq 'a0000000-0000-4000-8000-000000000001'")).await.is_empty());
    assert_eq!(at(sub_scope(), Some("principalId eq '00000000-0000-0000-0000-000000000000'")).await, [DENY_HUB_B]);
    assert_eq!(
        at(hub_scope(HUB), Some("atScope() and principalId eq 'a0000000-0000-4000-8000-000000000002'")).await,
        [DENY_KEYS]
    );
    // gdprExportPrincipalId: principals or excludePrincipals, name and description only.
    let gdpr =
        t.get(&deny_list(&sub_scope(), Some("gdprExportPrincipalId eq 'a0000000-0000-4000-8000-000000000001'"))).await;
    assert_eq!(names(&gdpr.body), [DENY_HUB_B]);
    let props: Vec<&String> = gdpr.body["value"][0]["properties"].as_object().unwrap().keys().collect();
    assert_eq!(props, ["denyAssignmentName", "description"]);
    // denyAssignmentName: that name, at the scope (at or above it).
    assert_eq!(at(hub_b(), Some("denyAssignmentName eq 'Protect hub-b'")).await, [DENY_HUB_B]);
    assert!(at(sub_scope(), Some("denyAssignmentName eq 'Protect hub-b'")).await.is_empty());
    // Anything else: 400, as for role assignments.
    for bad in [
        "roleDefinitionId eq 'x'",
        "principalId eq 'a' and gdprExportPrincipalId eq 'b'",
        "assignedTo('a0000000-0000-4000-8000-000000000002')",
    ] {
        let r = t.get(&deny_list(&sub_scope(), Some(bad))).await;
        assert_eq!((r.status, r.code().as_str()), (400, "UnsupportedQuery"), "{bad}");
    }
    // Get: at exactly its scope; deny assignments are read-only in 2022-04-01.
    let elsewhere = t.get(&deny_path(&sub_scope(), DENY_KEYS)).await;
    assert_eq!((elsewhere.status, elsewhere.code().as_str()), (404, "DenyAssignmentNotFound"));
    let put = t.put(&deny_path(&rg_scope(), DENY_KEYS), &json!({"properties": {}})).await;
    assert_eq!(put.status, 405);
    let del = t.delete(&deny_path(&rg_scope(), DENY_KEYS)).await;
    assert_eq!(del.status, 405);
    assert_eq!(t.emu.snapshot().deny_assignments.len(), 3);

    // Pages of two, nextLink absolute.
    let paged = start_with(ESTATE, |c| c.page_size = 2).await;
    let (items, pages) = paged.list_all(&deny_list(&sub_scope(), None)).await;
    assert_eq!((items.len(), pages), (3, 2));
    let stats = paged.emu.stats();
    assert_eq!(stats.count_status("denyAssignments.list", 200), 2);
    assert_eq!(stats.reads(), 2, "deny assignment lists count as ARM reads");
}

#[tokio::test]
async fn eligibility_instances_have_the_shape_of_the_spec_examples() {
    let t = start_with(ESTATE, |c| {
        let e = c.seed.role_eligibilities.iter_mut().find(|e| e.name == ELIGIBLE_ELI).unwrap();
        e.end_date_time = Some("2099-06-30T00:00:00Z".into());
        e.condition = Some("@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:ContainerName] StringEqualsIgnoreCase 'foo_storage_container'".into());
        e.condition_version = Some("1.0".into());
    })
    .await;
    // The directory holds no e-mail addresses: the example's principal.email is not served.
    let list_example = without(
        example("GetRoleEligibilityScheduleInstancesByScope.json", "200"),
        "/value/0/properties/expandedProperties/principal",
        "email",
    );
    let list = t.get(&pim_list(&rg_scope(), Some(&format!("assignedTo('{ELI}')")))).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_shape(&list.body, &list_example, "listForScope");
    let eli = &list.body["value"][0];
    assert_eq!(
        eli["properties"].as_object().unwrap().iter().filter(|(k, _)| *k != "expandedProperties" && *k != "createdOn").map(|(k, v)| (k.clone(), v.clone())).collect::<serde_json::Map<_, _>>(),
        json!({
            "scope": rg_scope(),
            "roleDefinitionId": role_id("b24988ac-6180-42a0-ab88-20f7382dd24c"),
            "principalId": ELI,
            "principalType": "User",
            "status": "Provisioned",
            "roleEligibilityScheduleId": format!("{}/providers/Microsoft.Authorization/RoleEligibilitySchedules/{ELIGIBLE_ELI}", rg_scope()),
            "startDateTime": "2025-01-01T00:00:00Z",
            "endDateTime": "2099-06-30T00:00:00Z",
            "memberType": "Direct",
            "condition": "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:ContainerName] StringEqualsIgnoreCase 'foo_storage_container'",
            "conditionVersion": "1.0"
        })
        .as_object()
        .unwrap()
        .clone()
    );
    assert_eq!(
        eli["properties"]["expandedProperties"],
        json!({
            "scope": {"id": rg_scope(), "displayName": RG, "type": "resourcegroup"},
            "roleDefinition": {"id": role_id("b24988ac-6180-42a0-ab88-20f7382dd24c"), "displayName": "Contributor", "type": "BuiltInRole"},
            "principal": {"id": ELI, "displayName": "eli", "type": "User"}
        })
    );
    let instance = eli["name"].as_str().unwrap();
    assert_eq!(eli["type"], "Microsoft.Authorization/RoleEligibilityScheduleInstances");
    assert_eq!(
        eli["id"].as_str().unwrap(),
        format!("{}/providers/Microsoft.Authorization/RoleEligibilityScheduleInstances/{instance}", rg_scope())
    );
    // Get by name, also through the examples' scope alias.
    let get_example = without(
        example("GetRoleEligibilityScheduleInstanceByName.json", "200"),
        "/properties/expandedProperties/principal",
        "email",
    );
    let got = t
        .get(&format!(
            "{}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/{instance}?api-version=2020-10-01",
            rg_scope()
        ))
        .await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_shape(&got.body, &get_example, "get");
    assert_eq!(got.body["name"], instance);
    let alias = t
        .get(&pim_list(
            &format!("/providers/Microsoft.Subscription/subscriptions/{SUB}"),
            Some(&format!("assignedTo('{ELI}')")),
        ))
        .await;
    assert_eq!(alias.status, 200, "{}", alias.body);
    assert_eq!(schedules(&alias.body), [ELIGIBLE_ELI, ELIGIBLE_OPS]);
    assert!(
        alias.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| !v["properties"]["scope"].as_str().unwrap().contains("Microsoft.Subscription"))
    );
    let missing = t
        .get(&format!(
            "{}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/{instance}?api-version=2020-10-01",
            sub_scope()
        ))
        .await;
    assert_eq!(missing.status, 404, "an instance is found at its own scope only");
}

#[tokio::test]
async fn eligibility_instances_are_inherited_filtered_and_paged_as_the_spec_documents() {
    let mut t = start_with(ESTATE, |_| {}).await;
    let at = |scope: String, filter: Option<String>| {
        let t = &t;
        async move {
            let r = t.get(&pim_list(&scope, filter.as_deref())).await;
            assert_eq!(r.status, 200, "{scope} {filter:?}: {}", r.body);
            r.body
        }
    };
    // At, above and below; the expired eligibility (endDateTime 2020) is never listed.
    let hub = at(hub_scope(HUB), None).await;
    assert_eq!(schedules(&hub), [ELIGIBLE_ELI, ELIGIBLE_OPS]);
    assert!(hub["value"].as_array().unwrap().iter().all(|v| v["properties"]["memberType"] == "Inherited"));
    assert_eq!(schedules(&at(sub_scope(), None).await), [ELIGIBLE_ELI, ELIGIBLE_OPS]);
    assert_eq!(schedules(&at(sub_scope(), Some("atScope()".into())).await), [ELIGIBLE_OPS]);
    assert_eq!(schedules(&at(rg_scope(), Some("atScope()".into())).await), [ELIGIBLE_ELI, ELIGIBLE_OPS]);
    // principalId eq, quoted or not; the group's own eligibility is not the member's.
    for f in [format!("principalId eq {ELI}"), format!("principalId eq '{ELI}'")] {
        assert_eq!(schedules(&at(sub_scope(), Some(f)).await), [ELIGIBLE_ELI]);
    }
    assert!(schedules(&at(sub_scope(), Some(format!("principalId eq '{RITA}'"))).await).is_empty(), "expired");
    // assignedTo: the principal and its groups (memberType Group); asTarget(): the caller's.
    let assigned = at(rg_scope(), Some(format!("assignedTo('{ELI}')"))).await;
    let member: Vec<(&str, &str)> = assigned["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["properties"]["principalId"].as_str().unwrap(), v["properties"]["memberType"].as_str().unwrap()))
        .collect();
    assert_eq!(member, [(ELI, "Direct"), (OPS, "Group")]);
    assert_eq!(
        schedules(&at(rg_scope(), Some(format!("atScope() and assignedTo('{ELI}')"))).await),
        [ELIGIBLE_ELI, ELIGIBLE_OPS]
    );
    t.token = t.emu.issue_token(ARM, ELI, 3600);
    let target = t.get(&pim_list(&sub_scope(), Some("asTarget()"))).await;
    assert_eq!(schedules(&target.body), [ELIGIBLE_ELI, ELIGIBLE_OPS]);
    // The role of a management-group eligibility is named tenant-level.
    let ops = target.body["value"].as_array().unwrap().iter().find(|v| v["properties"]["principalId"] == OPS).unwrap();
    assert_eq!(
        ops["properties"]["roleDefinitionId"],
        "/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    );
    assert_eq!(ops["properties"]["endDateTime"], Value::Null, "permanently eligible");
    assert_eq!(ops["properties"]["principalType"], "Group", "the directory's type");
    assert_eq!(ops["properties"]["expandedProperties"]["scope"]["type"], "managementgroup");
    for bad in ["status eq 'Provisioned'", "principalId eq 'a' and assignedTo('b')", "atScopeAndBelow()"] {
        let r = t.get(&pim_list(&sub_scope(), Some(bad))).await;
        assert_eq!((r.status, r.code().as_str()), (400, "UnsupportedQuery"), "{bad}");
    }
    let paged = start_with(ESTATE, |c| c.page_size = 1).await;
    let (items, pages) = paged.list_all(&pim_list(&hub_scope(HUB), None)).await;
    assert_eq!((items.len(), pages), (2, 2));
}

#[tokio::test]
async fn a_deny_assignment_takes_an_action_from_a_principal_who_holds_it_through_a_role() {
    let mut t = start_with(&with_rbac(), |_| {}).await;
    let keys = |hub: &str| format!("{}/listkeys?api-version=2023-06-30", hub_scope(hub));
    let owner_keys = |hub: &str| format!("{}/IotHubKeys/iothubowner/listkeys?api-version=2023-06-30", hub_scope(hub));
    // Contributor at the resource group: reads and writes hubs, but listkeys is denied to it.
    t.token = t.emu.issue_token(ARM, CI, 3600);
    assert_eq!(t.get(&hub_path(HUB)).await.status, 200);
    let r = t.send("POST", &keys(HUB), None, &[]).await;
    assert_eq!((r.status, r.code().as_str()), (403, "DenyAssignmentAuthorizationFailed"), "{}", r.body);
    assert_eq!(
        r.message(),
        format!(
            "The client '{CI}' with object id '{CI}' has permission to perform action 'Microsoft.Devices/IotHubs/listkeys/action' on scope '{}/listkeys'; however, the access is denied because of the deny assignment with name 'Deny listkeys to CI' and Id 'd0000000000040008000000000000001' at scope '{}'.",
            hub_scope(HUB),
            rg_scope()
        )
    );
    let r = t.send("POST", &owner_keys(HUB), None, &[]).await;
    assert_eq!(r.code(), "DenyAssignmentAuthorizationFailed");
    assert_eq!(t.emu.stats().count_status("iotHubs.listkeys", 403), 2);
    // hub-b is protected from everyone's writes, the Contributor's too.
    let etag = t.get(&hub_path(HUB_B)).await.body["etag"].as_str().unwrap().to_string();
    let body = json!({"location": "westeurope", "sku": "S1", "properties": {"disableLocalAuth": true}});
    let r = t.send("PUT", &hub_path(HUB_B), Some(&body), &[("If-Match", &etag)]).await;
    assert_eq!((r.status, r.code().as_str()), (403, "DenyAssignmentAuthorizationFailed"));
    assert!(r.message().contains("'Protect hub-b'"), "{}", r.message());
    // ... but not hub-a, which no deny assignment protects from writes.
    let etag_a = t.get(&hub_path(HUB)).await.body["etag"].as_str().unwrap().to_string();
    let r = t.send("PUT", &hub_path(HUB), Some(&json!({"location": "westeurope"})), &[("If-Match", &etag_a)]).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // The custom listkeys role at the subscription: keys of both hubs.
    t.token = t.emu.issue_token(ARM, KEYS, 3600);
    assert_eq!(t.send("POST", &keys(HUB), None, &[]).await.status, 200);
    assert_eq!(t.send("POST", &keys(HUB_B), None, &[]).await.status, 200);

    // The Owner is excluded from hub-b's deny assignment: its write goes through.
    t.token = t.emu.issue_token(ARM, OWNER_U, 3600);
    let r = t.send("PUT", &hub_path(HUB_B), Some(&body), &[("If-Match", &etag)]).await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Azure Device Registry Onboarding (Microsoft.Devices/iothubs/*): keys, and writes where no
    // deny assignment stands.
    t.token = t.emu.issue_token(ARM, ADR_SP, 3600);
    assert_eq!(t.send("POST", &keys(HUB_B), None, &[]).await.status, 200);
    let etag = t.get(&hub_path(HUB_B)).await.body["etag"].as_str().unwrap().to_string();
    let r = t.send("PUT", &hub_path(HUB_B), Some(&body), &[("If-Match", &etag)]).await;
    assert_eq!(r.code(), "DenyAssignmentAuthorizationFailed");
    // Azure IoT Operations Onboarding (Microsoft.Authorization/*/write): grants, but no keys.
    t.token = t.emu.issue_token(ARM, AIO_SP, 3600);
    let r =
        t.put(&ra_path(&hub_scope(HUB), "f0000000-0000-4000-8000-000000000001"), &ra_body(DATA_READER, CI, None)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = t.send("POST", &keys(HUB), None, &[]).await;
    assert_eq!((r.status, r.code().as_str()), (403, "AuthorizationFailed"), "no role: the plain refusal");

    // Not applied to child scopes: the Reader cannot read the resource group, but its hubs.
    t.token = t.emu.issue_token(ARM, RITA, 3600);
    let r = t.get(&format!("{}?api-version=2021-04-01", rg_scope())).await;
    assert_eq!((r.status, r.code().as_str()), (403, "DenyAssignmentAuthorizationFailed"));
    assert_eq!(t.get(&hub_path(HUB)).await.status, 200);
    // Reading deny assignments and eligibilities takes their read actions (Reader: */read).
    assert_eq!(t.get(&deny_list(&sub_scope(), None)).await.status, 200);
    assert_eq!(t.get(&pim_list(&sub_scope(), None)).await.status, 200);
    t.token = t.emu.issue_token(ARM, NOBODY, 3600);
    for (path, action) in [
        (deny_list(&sub_scope(), None), "Microsoft.Authorization/denyAssignments/read"),
        (pim_list(&sub_scope(), None), "Microsoft.Authorization/roleEligibilityScheduleInstances/read"),
    ] {
        let r = t.get(&path).await;
        assert_eq!((r.status, r.code().as_str()), (403, "AuthorizationFailed"));
        assert!(r.message().contains(&format!("'{action}'")), "{}", r.message());
    }

    // An excluded group excludes its members.
    t.emu.with_state(|s| {
        s.deny_assignments
            .iter_mut()
            .find(|d| d.name == DENY_KEYS)
            .unwrap()
            .exclude_principals
            .push(DenyPrincipal { id: OPS.into(), principal_type: "Group".into() });
        s.directory.iter_mut().find(|d| d.principal.id == CI).unwrap().principal.member_of.push(OPS.into());
    });
    t.token = t.emu.issue_token(ARM, CI, 3600);
    assert_eq!(t.send("POST", &keys(HUB), None, &[]).await.status, 200);
}

#[tokio::test]
async fn the_2025_roles_are_built_in_with_their_published_permissions() {
    let t = start(|_| {}).await;
    let adr = t.get(&rd_path(&sub_scope(), ADR_ONBOARDING)).await;
    assert_eq!(adr.status, 200, "{}", adr.body);
    assert_eq!(adr.body["properties"]["roleName"], "Azure Device Registry Onboarding");
    assert_eq!(adr.body["properties"]["type"], "BuiltInRole");
    assert_eq!(
        adr.body["properties"]["permissions"],
        json!([{
            "actions": ["Microsoft.DeviceRegistry/namespaces/read", "Microsoft.DeviceRegistry/namespaces/write",
                        "Microsoft.DeviceRegistry/namespaces/delete", "Microsoft.DeviceRegistry/namespaces/credentials/*",
                        "Microsoft.DeviceRegistry/namespaces/credentials/policies/*", "Microsoft.Devices/iothubs/*",
                        "Microsoft.Devices/provisioningServices/*"],
            "notActions": [],
            "dataActions": ["Microsoft.Devices/provisioningServices/enrollments/*",
                            "Microsoft.Devices/provisioningServices/enrollmentGroups/*"],
            "notDataActions": []
        }])
    );
    let aio = t.get(&rd_path(&sub_scope(), AIO_ONBOARDING)).await;
    assert_eq!(aio.body["properties"]["roleName"], "Azure IoT Operations Onboarding");
    let actions = aio.body["properties"]["permissions"][0]["actions"].as_array().unwrap();
    assert!(actions.contains(&json!("Microsoft.Authorization/*/write")) && actions.len() == 10, "{actions:?}");
    let by_name = t
        .get(&format!(
            "{}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter={}",
            sub_scope(),
            enc("roleName eq 'Azure IoT Operations Onboarding'")
        ))
        .await;
    assert_eq!(names(&by_name.body), [AIO_ONBOARDING]);
}

#[tokio::test]
async fn seeded_eligibilities_and_deny_assignments_round_trip_and_are_checked() {
    let t = start_with(ESTATE, |_| {}).await;
    let snap = t.emu.snapshot();
    assert_eq!(snap.role_eligibilities.len(), 3);
    assert_eq!(snap.deny_assignments.len(), 3);
    let ops = snap.role_eligibilities.iter().find(|e| e.name == ELIGIBLE_OPS).unwrap();
    assert_eq!(ops.role_definition_id, "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "a full id is kept as its GUID");
    assert_eq!(ops.principal_type.as_deref(), Some("Group"));
    // The snapshot starts an identical emulator, in YAML and in JSON.
    let yaml = serde_yaml::to_string(&snap).unwrap();
    let again = Seed::from_str_auto(&yaml).unwrap();
    assert_eq!(again, snap);
    let state = State::from_seed(again, "azure-devices.net").unwrap();
    assert_eq!(state.to_seed(), snap);
    let json_text = serde_json::to_string(&snap).unwrap();
    assert!(json_text.contains("\"roleEligibilities\"") && json_text.contains("\"denyAssignments\""));
    assert!(json_text.contains("\"doNotApplyToChildScopes\":true") && json_text.contains("\"excludePrincipals\""));
    // A seed without them does not name them.
    assert!(!serde_json::to_string(&Seed::default()).unwrap().contains("denyAssignments"));
    // Persisted state comes back with them.
    let dir = std::env::temp_dir().join(format!("emu-audit-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.yaml");
    let persisted = start_with(ESTATE, |c| c.persist_to = Some(file.clone())).await;
    drop(persisted);
    let restored = Seed::from_path(&file).unwrap();
    assert_eq!(restored.deny_assignments.len(), 3);
    assert_eq!(restored.role_eligibilities.len(), 3);
    let _ = std::fs::remove_dir_all(&dir);

    // Seeds Azure would not hold are refused, naming the entry.
    let base: Value = serde_yaml::from_str(ESTATE).unwrap();
    for (pointer, value, needle) in [
        ("/denyAssignments/0/excludePrincipals", json!([{"id": EVERYONE, "type": "SystemDefined"}]), "SystemDefined"),
        ("/denyAssignments/0/denyAssignmentName", json!(""), "denyAssignmentName"),
        ("/denyAssignments/0/permissions", json!([{"notActions": ["*"]}]), "at least one action"),
        ("/denyAssignments/0/name", json!("not-a-guid"), "GUID"),
        ("/denyAssignments/1/denyAssignmentName", json!("Deny listkeys to CI"), "unique"),
        ("/denyAssignments/0/principals", json!([]), "principals"),
        ("/roleEligibilities/0/roleDefinitionId", json!("Contributor"), "roleDefinitionId"),
        ("/roleEligibilities/0/endDateTime", json!("tomorrow"), "endDateTime"),
    ] {
        let mut v = base.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        v.pointer_mut(parent).unwrap().as_object_mut().unwrap().insert(key.to_string(), value);
        // Make the second deny assignment share the first one's scope for the uniqueness case.
        if needle == "unique" {
            v["denyAssignments"][1]["scope"] = v["denyAssignments"][0]["scope"].clone();
        }
        let seed: Seed = serde_json::from_value(v).unwrap();
        let err = State::from_seed(seed, "azure-devices.net").unwrap_err();
        assert!(err.contains(needle), "{pointer}: {err}");
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}

#[tokio::test]
async fn management_groups_and_entities_tell_a_subscriptions_ancestry() {
    let t = start_with(ESTATE, |_| {}).await;
    let entities =
        t.send("POST", "/providers/Microsoft.Management/getEntities?api-version=2023-04-01", None, &[]).await;
    assert_eq!(entities.status, 200, "{}", entities.body);
    let value = entities.body["value"].as_array().unwrap();
    let sub = value.iter().find(|e| e["id"] == sub_scope()).expect("the subscription is an entity");
    assert_eq!(
        sub,
        &json!({"id": sub_scope(), "type": "/subscriptions", "name": SUB, "properties": {
            "tenantId": TENANT, "displayName": "iot-prod",
            "parent": {"id": "/providers/Microsoft.Management/managementGroups/mg-iot"},
            "permissions": "view", "inheritedPermissions": "view",
            "parentDisplayNameChain": ["Contoso", "IoT"], "parentNameChain": ["mg-root", "mg-iot"]}})
    );
    let mg_iot = value.iter().find(|e| e["name"] == "mg-iot").unwrap();
    // The example's nextLink is null; ARM leaves it out on the last page.
    let mut expected = example("GetEntities.json", "200");
    expected.as_object_mut().unwrap().remove("nextLink");
    assert_shape(&json!({"value": [mg_iot]}), &expected, "getEntities");
    assert_eq!(
        (mg_iot["properties"]["numberOfDescendants"].as_u64(), mg_iot["properties"]["numberOfChildren"].as_u64()),
        (Some(1), Some(1))
    );
    let root = value.iter().find(|e| e["name"] == "mg-root").unwrap();
    assert_eq!(root["properties"]["parent"], Value::Null, "a group without parent is a root");
    assert_eq!(root["properties"]["numberOfDescendants"], 2);
    let groups = t
        .send("POST", "/providers/Microsoft.Management/getEntities?api-version=2023-04-01&$view=GroupsOnly", None, &[])
        .await;
    assert_eq!(groups.body["value"].as_array().unwrap().len(), 2);
    let one = t
        .send(
            "POST",
            &format!(
                "/providers/Microsoft.Management/getEntities?api-version=2023-04-01&$filter={}",
                enc(&format!("name eq '{SUB}'"))
            ),
            None,
            &[],
        )
        .await;
    assert_eq!(one.body["value"].as_array().unwrap().len(), 1);
    let search = t
        .send(
            "POST",
            "/providers/Microsoft.Management/getEntities?api-version=2023-04-01&$search=ParentOnly",
            None,
            &[],
        )
        .await;
    assert_eq!(search.status, 400);

    // ManagementGroups_Get with the path, the ancestors and the children.
    let mg = t.get("/providers/Microsoft.Management/managementGroups/mg-iot?api-version=2023-04-01&$expand=path").await;
    assert_eq!(mg.status, 200, "{}", mg.body);
    assert_shape(&mg.body, &example("GetManagementGroupWithPath.json", "200"), "get with path");
    assert_eq!(mg.body["properties"]["details"]["path"], json!([{"name": "mg-root", "displayName": "Contoso"}]));
    let anc =
        t.get("/providers/Microsoft.Management/managementGroups/mg-iot?api-version=2023-04-01&$expand=ancestors").await;
    assert_eq!(anc.body["properties"]["details"]["managementGroupAncestors"], json!(["mg-root"]));
    assert_eq!(
        anc.body["properties"]["details"]["managementGroupAncestorsChain"],
        json!([{"name": "mg-root", "displayName": "Contoso"}])
    );
    let tree = t
        .get("/providers/Microsoft.Management/managementGroups/mg-root?api-version=2023-04-01&$expand=children&$recurse=true")
        .await;
    assert_eq!(
        tree.body["properties"]["children"],
        json!([{"type": "Microsoft.Management/managementGroups", "id": "/providers/Microsoft.Management/managementGroups/mg-iot",
                "name": "mg-iot", "displayName": "IoT",
                "children": [{"type": "/subscriptions", "id": sub_scope(), "name": SUB, "displayName": "iot-prod"}]}])
    );
    assert_eq!(t.get("/providers/Microsoft.Management/managementGroups/nope?api-version=2023-04-01").await.status, 404);

    // With RBAC, the entities the caller holds an assignment at, above or below.
    let mut rbac = start_with(&with_rbac(), |_| {}).await;
    rbac.token = rbac.emu.issue_token(ARM, OWNER_U, 3600);
    let seen = rbac.send("POST", "/providers/Microsoft.Management/getEntities?api-version=2023-04-01", None, &[]).await;
    let ids: Vec<&str> = seen.body["value"].as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(
        ids,
        ["mg-root", "mg-iot", SUB],
        "the Owner at mg-iot sees its group, the root above and the subscription"
    );
    rbac.token = rbac.emu.issue_token(ARM, NOBODY, 3600);
    let none = rbac.send("POST", "/providers/Microsoft.Management/getEntities?api-version=2023-04-01", None, &[]).await;
    assert_eq!((none.status, none.body["value"].as_array().map(Vec::len)), (200, Some(0)));
}

#[tokio::test]
async fn dps_2026_11_01_is_registered_listed_and_served_with_link_types() {
    let t = start(|_| {}).await;
    let devices = t.get(&format!("/subscriptions/{SUB}/providers/Microsoft.Devices?api-version=2021-04-01")).await;
    let dps = devices.body["resourceTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resourceType"] == "ProvisioningServices")
        .unwrap();
    let listed: Vec<String> =
        dps["apiVersions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(listed[0], "2026-11-01", "{listed:?}");
    // The operator's rule (src/azure/wire: the newest stable version reporting link types, from
    // 2026-08-01 on) picks 2026-11-01 from this list.
    let picked = listed.iter().filter(|v| !v.contains("preview") && v.as_str() >= "2026-08-01").max().cloned();
    assert_eq!(picked.as_deref(), Some("2026-11-01"));
    let get = t
        .get(&format!("{}/providers/Microsoft.Devices/provisioningServices/dps-a?api-version=2026-11-01", rg_scope()))
        .await;
    assert_eq!(get.status, 200, "{}", get.body);
    let links = get.body["properties"]["iotHubs"].as_array().unwrap();
    assert_eq!(links[1]["authenticationType"], "UserAssigned");
    assert_eq!(links[1]["hostName"], "hub-b.azure-devices.net");
    let list = t
        .get(&format!("/subscriptions/{SUB}/providers/Microsoft.Devices/provisioningServices?api-version=2026-11-01"))
        .await;
    assert_eq!(list.status, 200);
    let old = t
        .get(&format!("{}/providers/Microsoft.Devices/provisioningServices/dps-a?api-version=2026-10-01", rg_scope()))
        .await;
    assert_eq!((old.status, old.code().as_str()), (400, "NoRegisteredProviderFound"));
    assert!(old.message().contains("The supported api-versions are '2026-11-01, 2026-08-01"), "{}", old.message());
}

#[tokio::test]
async fn creating_a_dps_is_a_long_running_operation_as_the_spec_declares() {
    let t = start(|c| c.lro_running_polls = 2).await;
    let path = format!(
        "{}/providers/Microsoft.Devices/provisioningServices/myFirstProvisioningService?api-version=2026-11-01",
        rg_scope()
    );
    let body = example_param("2026-11-01_DPSCreate.json", "iotDpsDescription");
    let put = t.put(&path, &body).await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_shape(&put.body, &example("2026-11-01_DPSCreate.json", "201"), "create 2026-11-01");
    assert_eq!(put.body["properties"]["provisioningState"], "Accepted");
    let status_url = put.header("azure-asyncoperation").expect("Azure-AsyncOperation");
    let location = put.header("location").expect("Location");
    let retry: u64 = put.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!(retry >= 1);
    let base = format!(
        "{}{}/providers/Microsoft.Devices/provisioningServices/myFirstProvisioningService/operationresults/",
        t.base,
        rg_scope()
    );
    assert!(status_url.starts_with(&base) && status_url.ends_with("&asyncinfo"), "{status_url}");
    assert!(location.starts_with(&base) && location.contains("api-version=2026-11-01"), "{location}");
    assert_eq!(t.get(&path).await.body["properties"]["provisioningState"], "Accepted");
    // Location: 202 while it runs; the status monitor: Running, then Succeeded; Location: the resource.
    let first = t.get(&location).await;
    assert_eq!(first.status, 202);
    assert!(first.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    let running = t.get(&status_url).await;
    assert_eq!((running.status, running.body["status"].as_str()), (200, Some("Running")));
    assert!(running.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    let done = t.get(&status_url).await;
    assert_eq!(done.body, json!({"status": "Succeeded"}));
    assert_shape(&done.body, &example("DPSGetOperationResult.json", "200"), "operation result");
    let result = t.get(&location).await;
    assert_eq!(result.status, 200);
    assert_shape(&result.body, &example("2026-11-01_DPSCreate.json", "200"), "final state via location");
    assert_eq!(result.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(t.get(&path).await.body["properties"]["provisioningState"], "Succeeded");
    // An update answers 200, done; an unknown operation 404.
    let again = t.put(&path, &body).await;
    assert_eq!(again.status, 200);
    assert!(again.header("azure-asyncoperation").is_none() && again.header("location").is_none());
    assert_eq!(again.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(t.get(&format!("{base}nope?api-version=2026-11-01&asyncinfo")).await.status, 404);
    let stats = t.emu.stats();
    assert_eq!(stats.count("provisioningServices.operationResult"), 5);
}

#[tokio::test]
async fn retry_after_is_never_zero_while_an_operation_runs() {
    let t = start(|c| c.lro_retry_after_secs = 0).await;
    let etag = t.get(&hub_path(HUB)).await.body["etag"].as_str().unwrap().to_string();
    let put = t.send("PUT", &hub_path(HUB), Some(&json!({"location": "westeurope"})), &[("If-Match", &etag)]).await;
    assert_eq!((put.status, put.header("retry-after").as_deref()), (201, Some("1")));
    let op = t.get(&put.header("azure-asyncoperation").unwrap()).await;
    assert_eq!((op.body["status"].as_str(), op.header("retry-after").as_deref()), (Some("Running"), Some("1")));
    let del = t.delete(&hub_path(HUB_B)).await;
    assert_eq!((del.status, del.header("retry-after").as_deref()), (202, Some("1")));
    let dps = t
        .put(
            &format!("{}/providers/Microsoft.Devices/provisioningServices/dps-new?api-version=2026-11-01", rg_scope()),
            &json!({"location": "westeurope"}),
        )
        .await;
    assert_eq!((dps.status, dps.header("retry-after").as_deref()), (201, Some("1")));
    let dps_op = t.get(&dps.header("azure-asyncoperation").unwrap()).await;
    assert_eq!(dps_op.header("retry-after").as_deref(), Some("1"));
    // The default is 1; an injected 429 configured with 0 says 1 too.
    assert_eq!(iothub_access_emulator::EmulatorConfig::default().lro_retry_after_secs, 1);
    t.emu.set_faults(Faults { throttle_rate: 1.0, throttle_retry_after_secs: 0, ..Faults::default() });
    let throttled = t.get(&hub_path(HUB)).await;
    assert_eq!((throttled.status, throttled.header("retry-after").as_deref()), (429, Some("1")));
}

#[tokio::test]
async fn the_audit_estate_reads_in_one_list_per_scope() {
    let t = start_with(ESTATE, |_| {}).await;
    t.emu.reset_stats();
    let hub = hub_scope(HUB);
    let ra = t.get(&format!("{hub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01")).await;
    let mut held: Vec<(String, String, String)> = ra.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let p = &a["properties"];
            (
                p["principalId"].as_str().unwrap().to_string(),
                p["roleDefinitionId"].as_str().unwrap().rsplit('/').next().unwrap().to_string(),
                p["scope"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    held.sort();
    let mg_iot = "/providers/Microsoft.Management/managementGroups/mg-iot".to_string();
    let row = |p: &str, r: &str, s: String| (p.to_string(), r.to_string(), s);
    assert_eq!(
        held,
        vec![
            row(OWNER_U, "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", mg_iot),
            row(CI, "b24988ac-6180-42a0-ab88-20f7382dd24c", rg_scope()),
            row(KEYS, "c0000000-0000-4000-8000-0000000000c1", sub_scope()),
            row(RITA, "acdd72a7-3385-48ef-bd42-f606fba81ae7", sub_scope()),
            row("a0000000-0000-4000-8000-000000000005", "b447c946-2db7-41ec-983d-d8bf3b1c77e3", hub.clone()),
            row(ADR_SP, ADR_ONBOARDING, rg_scope()),
            row(AIO_SP, AIO_ONBOARDING, sub_scope()),
        ]
    );
    let eligible = t.get(&pim_list(&hub, None)).await;
    assert_eq!(schedules(&eligible.body), [ELIGIBLE_ELI, ELIGIBLE_OPS]);
    let denied = t.get(&deny_list(&hub, None)).await;
    assert_eq!(names(&denied.body), [DENY_KEYS, DENY_RG]);
    let custom = t.get(&rd_path(&sub_scope(), "c0000000-0000-4000-8000-0000000000c1")).await;
    assert_eq!(custom.body["properties"]["permissions"][0]["actions"][1], "Microsoft.Devices/IotHubs/listkeys/action");
    let stats = t.emu.stats();
    assert_eq!(stats.reads(), 4, "one list per kind at the hub's scope, one definition read");
}
