//! `enforceRbac: true`: every ARM request authorized against the caller's role assignments (and
//! its groups'), with actions, notActions, wildcards, scopes up to management groups and `/`, and
//! role assignment delegation conditions; over real HTTP.

mod support;

use serde_json::{Value, json};
use support::*;

const OPERATOR: &str = "2b1a0f9e-8d7c-4b6a-9e5d-4c3b2a1f0e9d";
const ADMIN: &str = "ad000000-0000-4000-8000-0000000000ad";
const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
const RBAC_ADMIN: &str = "f58310d9-a9f6-439a-9e8d-f62e7b41a168";
const OWNER_RA: &str = "0a000000-0000-4000-8000-0000000000a1";
const ARM: &str = "https://management.azure.com/";

/// The documented "Constrain roles and principal types" condition: IoT Hub Data Reader, to
/// service principals only.
fn condition() -> String {
    format!(
        "((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/write'}})) OR \
         (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{DATA_READER}}} \
          AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAllValues:StringEqualsIgnoreCase {{'ServicePrincipal'}})) \
         AND \
         ((!(ActionMatches{{'Microsoft.Authorization/roleAssignments/delete'}})) OR \
         (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{DATA_READER}}} \
          AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAllValues:StringEqualsIgnoreCase {{'ServicePrincipal'}}))"
    )
}

fn seed() -> String {
    let mut v: Value = serde_yaml::from_str(SEED).unwrap();
    v["enforceRbac"] = json!(true);
    v["principals"].as_array_mut().unwrap().extend([
        json!({"id": OPERATOR, "type": "ServicePrincipal", "displayName": "operator"}),
        json!({"id": ADMIN, "type": "User", "displayName": "admin"}),
    ]);
    v["roleAssignments"].as_array_mut().unwrap().extend([
        json!({"name": "0a000000-0000-4000-8000-000000000001", "scope": rg_scope(), "roleDefinitionId": RBAC_ADMIN,
               "principalId": OPERATOR, "principalType": "ServicePrincipal",
               "condition": condition(), "conditionVersion": "2.0"}),
        json!({"name": "0a000000-0000-4000-8000-000000000002", "scope": "/", "roleDefinitionId": OWNER,
               "principalId": ADMIN, "principalType": "User"}),
        json!({"name": OWNER_RA, "scope": rg_scope(), "roleDefinitionId": OWNER,
               "principalId": SP, "principalType": "ServicePrincipal"}),
    ]);
    serde_json::to_string(&v).unwrap()
}

async fn as_(oid: &str) -> T {
    let mut t = start_with(&seed(), |_| {}).await;
    t.token = t.emu.issue_token(ARM, oid, 3600);
    t
}

fn denied(oid: &str, action: &str, scope: &str) -> String {
    format!(
        "The client '{oid}' with object id '{oid}' does not have authorization or an ABAC condition not fulfilled to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
    )
}

#[tokio::test]
async fn reads_follow_the_callers_assignments_and_its_groups_and_the_rest_is_a_plain_403() {
    let t = as_(OPERATOR).await;
    // RBAC Administrator on the resource group: `*/read` there, nothing elsewhere.
    assert_eq!(t.get(&hub_path(HUB)).await.status, 200);
    let other = format!("/subscriptions/{SUB2}/resourceGroups/rg-other?api-version=2021-04-01");
    let r = t.get(&other).await;
    assert_eq!((r.status, r.code().as_str()), (403, "AuthorizationFailed"));
    assert_eq!(
        r.message(),
        denied(
            OPERATOR,
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            &format!("/subscriptions/{SUB2}/resourceGroups/rg-other")
        )
    );
    // A hub write is not in the role: refused, the hub unchanged.
    let before = t.emu.snapshot().hubs.iter().find(|h| h.name == HUB).unwrap().etag.clone();
    let w = t.put(&hub_path(HUB), &json!({"location": "westeurope", "properties": {"disableLocalAuth": true}})).await;
    assert_eq!((w.status, w.code().as_str()), (403, "AuthorizationFailed"));
    assert_eq!(t.emu.snapshot().hubs.iter().find(|h| h.name == HUB).unwrap().etag, before);
    // Subscriptions: only the one the caller holds something in is listed.
    let (subs, _) = t.list_all("/subscriptions?api-version=2022-12-01").await;
    let ids: Vec<&str> = subs.iter().filter_map(|s| s["subscriptionId"].as_str()).collect();
    assert_eq!(ids, [SUB]);

    // A user reads through its group's Contributor on the subscription; Contributor's notActions
    // keep it from writing role assignments, but not from writing a hub.
    let mut t = t;
    t.token = t.emu.issue_token(ARM, USER, 3600);
    assert_eq!(t.get(&hub_path(HUB)).await.status, 200);
    let r = t
        .put(
            &ra_path(&hub_scope(HUB), "0b000000-0000-4000-8000-000000000001"),
            &ra_body(DATA_READER, SP, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (403, "AuthorizationFailed"));
    // A management group assignment reaches every subscription below it (Reader at mg-root).
    t.token = t.emu.issue_token(ARM, SP2, 3600);
    assert_eq!(t.get(&hub_path(HUB)).await.status, 200);
    assert_eq!(t.put(&hub_path(HUB), &json!({"location": "westeurope"})).await.status, 403);
}

#[tokio::test]
async fn the_delegation_condition_lets_through_only_the_roles_and_principal_types_it_lists() {
    let t = as_(OPERATOR).await;
    let scope = hub_scope(HUB);
    let name = |n: u32| format!("0c000000-0000-4000-8000-{n:012}");
    // Listed role, listed principal type: created.
    let ok = t.put(&ra_path(&scope, &name(1)), &ra_body(DATA_READER, SP, Some("ServicePrincipal"))).await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    // Owner, a user, or no principalType at all: a plain 403 that never names the condition.
    for (i, body) in [
        ra_body(OWNER, SP, Some("ServicePrincipal")),
        ra_body(DATA_READER, USER, Some("User")),
        ra_body(DATA_READER, SP, None),
    ]
    .iter()
    .enumerate()
    {
        let n = name(10 + i as u32);
        let r = t.put(&ra_path(&scope, &n), body).await;
        assert_eq!((r.status, r.code().as_str()), (403, "AuthorizationFailed"), "{body}");
        let at = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{n}");
        assert_eq!(r.message(), denied(OPERATOR, "Microsoft.Authorization/roleAssignments/write", &at));
    }
    let names: Vec<String> = t.emu.snapshot().role_assignments.iter().map(|a| a.name.clone()).collect();
    assert!(names.contains(&name(1)) && !names.iter().any(|n| n.starts_with("0c000000") && *n != name(1)));

    // Delete: an assignment of a listed role goes; an Owner assignment stays, whatever asks.
    assert_eq!(t.delete(&ra_path(&scope, &name(1))).await.status, 200);
    let r = t.delete(&ra_path(&rg_scope(), OWNER_RA)).await;
    assert_eq!((r.status, r.code().as_str()), (403, "AuthorizationFailed"));
    assert!(t.emu.snapshot().role_assignments.iter().any(|a| a.name == OWNER_RA));
    // Deleting what is not there is ARM's 204, condition or not.
    assert_eq!(t.delete(&ra_path(&scope, &name(99))).await.status, 204);
    // Outside the scope the role is assigned at, even a listed role is refused.
    let r = t
        .put(&ra_path(&format!("/subscriptions/{SUB}"), &name(2)), &ra_body(DATA_READER, SP, Some("ServicePrincipal")))
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn a_condition_azure_cannot_parse_is_refused_when_the_assignment_is_written_and_in_a_seed() {
    let t = as_(ADMIN).await;
    let scope = rg_scope();
    for (i, bad) in [
        "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionIdd] ForAnyOfAnyValues:GuidEquals {b447c946-2db7-41ec-983d-d8bf3b1c77e3}",
        "@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEqualz {b447c946-2db7-41ec-983d-d8bf3b1c77e3}",
        "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'}))",
    ]
    .iter()
    .enumerate()
    {
        let mut body = ra_body(DATA_READER, SP, Some("ServicePrincipal"));
        body["properties"]["condition"] = json!(bad);
        body["properties"]["conditionVersion"] = json!("2.0");
        let name = format!("0d000000-0000-4000-8000-{i:012}");
        let r = t.put(&ra_path(&scope, &name), &body).await;
        assert_eq!((r.status, r.code().as_str()), (400, "InvalidRoleAssignmentCondition"), "{bad}");
        assert_eq!(r.message(), "The given role assignment condition is invalid.");
        assert!(!t.emu.snapshot().role_assignments.iter().any(|a| a.name == name));
    }
    // Version 1.0 is refused too; a condition without a version is stored as 2.0.
    let mut body = ra_body(DATA_READER, SP, Some("ServicePrincipal"));
    body["properties"]["condition"] = json!(condition());
    body["properties"]["conditionVersion"] = json!("1.0");
    let r = t.put(&ra_path(&scope, "0d000000-0000-4000-8000-000000000010"), &body).await;
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidRoleAssignmentCondition"));
    body["properties"].as_object_mut().unwrap().remove("conditionVersion");
    let r = t.put(&ra_path(&scope, "0d000000-0000-4000-8000-000000000011"), &body).await;
    assert_eq!((r.status, r.body["properties"]["conditionVersion"].as_str()), (201, Some("2.0")));
    // The same text in a seed stops the emulator from starting, naming the assignment.
    let mut v: Value = serde_yaml::from_str(SEED).unwrap();
    v["roleAssignments"][0]["condition"] = json!("ActionMatches{'x'} AND");
    let seed: iothub_access_emulator::Seed = serde_json::from_value(v).unwrap();
    let err = iothub_access_emulator::State::from_seed(seed, "azure-devices.net").unwrap_err();
    assert!(err.contains(SEEDED_RA) && err.contains("condition"), "{err}");
}

#[tokio::test]
async fn without_enforce_rbac_every_authenticated_caller_may_do_anything() {
    let mut t = start(|_| {}).await;
    t.token = t.emu.issue_token(ARM, "5e5e5e5e-0000-4000-8000-00000000a11d", 3600);
    assert_eq!(t.get(&hub_path(HUB)).await.status, 200);
    let r = t.put(&ra_path(&rg_scope(), "0e000000-0000-4000-8000-000000000001"), &ra_body(OWNER, SP, None)).await;
    assert_eq!(r.status, 201);
}
