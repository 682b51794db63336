//! `audit` over real HTTP against a seeded estate: every path to a hub's keys, data plane and
//! grants, through active and eligible assignments at the hub and every scope above it, less what
//! deny assignments take away; judged from effective permissions, not role names.

#[path = "../support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::*;

const MG: &str = "mg-iot";
const OWNER_AT_MG: &str = "a0000000-0000-4000-8000-0000000000a1";
const OPS_CONTRIBUTORS: &str = "a0000000-0000-4000-8000-0000000000a2";
const KEY_READER: &str = "a0000000-0000-4000-8000-0000000000a3";
const READER_ONLY: &str = "a0000000-0000-4000-8000-0000000000a4";
const DATA_READER_SP: &str = "a0000000-0000-4000-8000-0000000000a5";
const ELIGIBLE_ADMIN: &str = "a0000000-0000-4000-8000-0000000000a6";
const ONBOARDING: &str = "a0000000-0000-4000-8000-0000000000a7";
const IOT_OPS: &str = "a0000000-0000-4000-8000-0000000000a8";
const KEY_ROLE: &str = "c0000000-0000-4000-8000-0000000000c1";
/// The 2025 built-ins (their published permissions: `data/builtin-roles.json`).
const DEVICE_REGISTRY_ONBOARDING: &str = "547f7f0a-69c0-4807-bd9e-0321dfb66a84";
const IOT_OPERATIONS_ONBOARDING: &str = "7b7c71ed-33fa-4ed2-a91a-e56d5da260b5";

fn seed() -> String {
    let sub = format!("/subscriptions/{SUB}");
    let rg = rg_scope();
    let hub = hub_scope(FACTORY_HUB);
    let mut v: Value = serde_yaml::from_str(DEMO_SEED).unwrap();
    v["managementGroups"] = json!([{"id": MG, "subscriptions": [SUB]}]);
    v["roleDefinitions"] = json!([
        {"name": KEY_ROLE, "roleName": "Hub key reader", "description": "listkeys", "assignableScopes": [sub],
         "permissions": [{"actions": ["Microsoft.Devices/IotHubs/listkeys/action", "Microsoft.Devices/IotHubs/read"]}]},
    ]);
    let ra = |n: u32, scope: &str, role: &str, p: &str, t: &str| json!({"name": format!("b0000000-0000-4000-8000-{n:012}"), "scope": scope, "roleDefinitionId": role, "principalId": p, "principalType": t});
    v["roleAssignments"] = json!([
        ra(
            1,
            &format!("/providers/Microsoft.Management/managementGroups/{MG}"),
            "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
            OWNER_AT_MG,
            "User"
        ),
        ra(2, &rg, "b24988ac-6180-42a0-ab88-20f7382dd24c", OPS_CONTRIBUTORS, "Group"),
        ra(3, &sub, KEY_ROLE, KEY_READER, "ServicePrincipal"),
        ra(4, &sub, "acdd72a7-3385-48ef-bd42-f606fba81ae7", READER_ONLY, "ServicePrincipal"),
        ra(5, &hub, "b447c946-2db7-41ec-983d-d8bf3b1c77e3", DATA_READER_SP, "ServicePrincipal"),
        ra(6, &rg, DEVICE_REGISTRY_ONBOARDING, ONBOARDING, "ServicePrincipal"),
        ra(7, &sub, IOT_OPERATIONS_ONBOARDING, IOT_OPS, "ServicePrincipal"),
        // On the other hub only: not a path to the factory hub.
        ra(8, &hub_scope(FLEET_HUB), "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", READER_ONLY, "ServicePrincipal"),
    ]);
    v["roleEligibilities"] = json!([
        {"scope": sub, "roleDefinitionId": "b24988ac-6180-42a0-ab88-20f7382dd24c", "principalId": ELIGIBLE_ADMIN, "principalType": "User"}
    ]);
    v["denyAssignments"] = json!([{
        "name": "d0000000-0000-4000-8000-0000000000d1", "denyAssignmentName": "no keys for the key reader",
        "scope": rg, "permissions": [{"actions": ["Microsoft.Devices/IotHubs/listkeys/action"]}],
        "principals": [{"id": KEY_READER, "type": "ServicePrincipal"}]
    }]);
    serde_json::to_string(&v).unwrap()
}

fn audit(url: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_iothub-access-operator"))
        .arg("audit")
        .args(args)
        .args(["--arm-endpoint", url, "--authority-host", url])
        .env("AZURE_TENANT_ID", TENANT)
        .env("AZURE_CLIENT_ID", CLIENT_ID)
        .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("the binary runs");
    eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn principal<'a>(hub: &'a Value, id: &str) -> Option<&'a Value> {
    hub["principals"].as_array().unwrap().iter().find(|p| p["principalId"] == id)
}

fn access(hub: &Value, id: &str) -> Vec<String> {
    principal(hub, id)
        .map_or(vec![], |p| p["access"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_path_to_a_hub_is_found_and_judged_by_what_it_grants() {
    let emu = emulator(&seed(), |_| {}).await;
    let hub_id = hub_scope(FACTORY_HUB);
    let out = audit(&emu.base_url(), &["--hub", &hub_id, "-o", "json", "--read-policies"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let hub = &doc["hubs"][0];
    assert_eq!(hub["id"].as_str().unwrap().to_ascii_lowercase(), hub_id.to_ascii_lowercase());
    assert_eq!(hub["sharedAccess"], "Allowed");
    let names: Vec<&str> =
        hub["sharedAccessPolicies"].as_array().unwrap().iter().map(|p| p["keyName"].as_str().unwrap()).collect();
    assert!(names.contains(&"iothubowner"), "{names:?}");
    assert!(!out.stdout.windows(10).any(|w| w == b"primaryKey"), "keys never reach the output");

    // Owner at the management group above the subscription: keys and grants.
    assert_eq!(access(hub, OWNER_AT_MG), ["keys", "grant"]);
    let path = &principal(hub, OWNER_AT_MG).unwrap()["paths"][0];
    assert_eq!((path["roleName"].as_str(), path["kind"].as_str()), (Some("Owner"), Some("active")));
    assert!(path["scope"].as_str().unwrap().ends_with(&format!("managementGroups/{MG}")));
    // A group's Contributor on the resource group: keys (through `*`), no grants (notActions).
    assert_eq!(access(hub, OPS_CONTRIBUTORS), ["keys"]);
    assert_eq!(principal(hub, OPS_CONTRIBUTORS).unwrap()["principalType"], "Group");
    // listkeys through a custom role, taken away by a deny assignment: nothing left, and why.
    let key_reader = principal(hub, KEY_READER).expect("listed with what denied it");
    assert_eq!(access(hub, KEY_READER), Vec::<String>::new());
    assert_eq!(key_reader["deniedBy"], json!(["no keys for the key reader"]));
    // A Reader reaches nothing here; the Owner it holds on another hub is no path to this one.
    assert!(principal(hub, READER_ONLY).is_none());
    // The data reader: the data plane, by area, and the role that covers it.
    let reader = principal(hub, DATA_READER_SP).unwrap();
    assert_eq!(access(hub, DATA_READER_SP), ["data"]);
    assert!(reader["dataAreas"].as_array().unwrap().contains(&json!("registry")));
    assert_eq!(reader["leastPrivilegedRole"], "IoT Hub Data Reader");
    // Eligible through PIM: marked so.
    assert_eq!(access(hub, ELIGIBLE_ADMIN), ["keys"]);
    assert_eq!(principal(hub, ELIGIBLE_ADMIN).unwrap()["paths"][0]["kind"], "eligible");
    // The 2025 roles, by what they grant: hubs/* reaches the keys; Authorization/*/write grants.
    assert_eq!(access(hub, ONBOARDING), ["keys"]);
    assert_eq!(access(hub, IOT_OPS), ["grant"]);

    // A bounded number of requests: one list per kind at the hub, one read per distinct role.
    let requests = doc["requests"].as_u64().unwrap();
    assert!(requests <= 14, "{requests} requests");

    // A CI gate: --fail-on keys exits 2 here; --fail-on data with only data readers too.
    let gate = audit(&emu.base_url(), &["--hub", &hub_id, "--fail-on", "keys"]);
    assert_eq!(gate.status.code(), Some(2));
    let table = String::from_utf8_lossy(&gate.stdout);
    assert!(table.contains("shared access: Allowed; policies: not read (--read-policies)"), "{table}");
    assert!(table.contains("their members are not expanded"), "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hubs_come_from_manifests_too_and_a_bad_hub_id_is_refused_naming_the_flag() {
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let out = audit(&emu.base_url(), &["-f", "examples", "-o", "markdown"]);
    assert_eq!(out.status.code(), Some(0));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("contoso-factory-hub") && md.contains("contoso-fleet-hub"), "{md}");
    assert!(md.contains("| Principal | Type | Access | Paths |"), "{md}");
    let bad = audit(&emu.base_url(), &["--hub", &rg_scope()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("--hub"));
}
