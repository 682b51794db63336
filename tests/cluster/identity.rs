//! Least privilege enforced by Azure: the operator's identity holds exactly what
//! `iothub-access-operator setup -o json` prints, seeded into the emulator with `enforceRbac: true`
//! (every request authorized, delegation conditions evaluated). `examples/` converge as always; a
//! role the admin allowed on the operator by mistake is refused by Azure and reported, not
//! retried in a loop; an assignment of a role outside the condition cannot be deleted whatever
//! the operator decides; and the operator's self-check finds nothing to say, until the identity
//! is given Owner.

use std::process::Command;

use iothub_access_operator::azure::{Azure, AzureError};
use iothub_access_operator::domain::RoleAssignmentId;

use super::*;

const INSTANCE: &str = "least-privilege";
/// A custom role in Azure that writes hubs: grantable only through `--allowed-role`, and not in
/// the condition `setup` printed.
const LEGACY_ROLE: &str = "1e9ac000-0000-4000-8000-00000000abcd";
const LEGACY_GRANT: &str = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b";

/// `setup -o json` for `examples/` as they are applied to `ns`.
fn setup_document(ns: &str) -> Value {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("setup-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let text =
            std::fs::read_to_string(&path).unwrap().replace("namespace: iot-platform", &format!("namespace: {ns}"));
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_iothub-access-operator"))
        .args(["setup", "-o", "json", "--instance-id", INSTANCE, "--principal-id", CLIENT_ID])
        .args(["--allowed-scope", &format!("/subscriptions/{SUB}"), "--search-subscription", PLATFORM_SUB])
        .args(["-f", path_str(&dir)])
        .output()
        .expect("setup runs");
    assert!(out.status.success(), "setup: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("setup -o json is one JSON document")
}

/// The demo's Azure, RBAC enforced, the operator holding exactly `doc`, and a legacy custom role.
fn seed(doc: &Value) -> String {
    let mut seed: Value = serde_yaml::from_str(DEMO_SEED).unwrap();
    seed["enforceRbac"] = json!(true);
    let defs = seed["roleDefinitions"].as_array().cloned().unwrap_or_default();
    let mut defs: Vec<Value> =
        defs.into_iter().chain(doc["roleDefinitions"].as_array().unwrap().iter().cloned()).collect();
    defs.push(json!({
        "name": LEGACY_ROLE, "roleName": "Legacy hub operator", "description": "hub writes and registry reads",
        "assignableScopes": [format!("/subscriptions/{SUB}")],
        "permissions": [{"actions": ["Microsoft.Devices/IotHubs/read", "Microsoft.Devices/IotHubs/write"],
                         "dataActions": ["Microsoft.Devices/IotHubs/devices/read"]}],
    }));
    seed["roleDefinitions"] = json!(defs);
    let grants = seed["roleAssignments"].as_array_mut().unwrap();
    for a in doc["roleAssignments"].as_array().unwrap() {
        let mut a = a.clone();
        a.as_object_mut().unwrap().retain(|_, v| !v.is_null());
        grants.push(a);
    }
    serde_json::to_string(&seed).unwrap()
}

async fn ready_reason(client: &Client, ns: &str, name: &str) -> Option<(String, String)> {
    let v =
        serde_json::to_value(Api::<IotHubRoleAssignment>::namespaced(client.clone(), ns).get(name).await.ok()?).ok()?;
    let c = condition(&v, "Ready")?;
    Some((c["reason"].as_str()?.to_string(), c["message"].as_str()?.to_string()))
}

#[tokio::test(flavor = "multi_thread")]
async fn with_exactly_what_setup_prints_examples_converge_and_azure_refuses_everything_else() {
    let Some((server, client, ns)) = setup("least").await else { return };
    let doc = setup_document(&ns);
    let emu = emulator(&seed(&doc), |_| {}).await;
    let op = Operator::start(
        server,
        &emu.base_url(),
        &ns,
        "least",
        &["--instance-id", INSTANCE, "--allowed-role", LEGACY_ROLE, "--resync-interval", "10s"],
    );

    // Everything the examples need is in what setup printed.
    apply(&client, &ns, &manifests(&["examples"])).await;
    kubectl_wait_ready(server, &client, &ns, 120).await;
    assert!(emu.snapshot().role_assignments.iter().any(|a| a.principal_id == TELEMETRY_SP));
    assert_eq!(emu.snapshot().hubs.iter().find(|h| h.name == FLEET_HUB).unwrap().disable_local_auth, Some(true));
    let forbidden =
        |emu: &iothub_access_emulator::EmulatorHandle| emu.stats().count_status("roleAssignments.create", 403);
    assert_eq!(forbidden(&emu), 0, "no write the examples need was refused");
    // The self-check found nothing: the identity holds what the kinds in use need, nothing beyond.
    eventually(
        "the self-check's verdict in the log",
        30,
        || async { std::fs::read_to_string(&op.log).unwrap_or_default() },
        |log: &String| log.contains("holds what it needs and nothing beyond"),
    )
    .await;
    let log = std::fs::read_to_string(&op.log).unwrap();
    assert!(!log.contains("OverPrivileged") && !log.contains("MissingPermission"), "{}", op.log_tail());

    // (a) A role allowed on the operator (--allowed-role) but not in the condition: Azure says no,
    // the resource says why and what to do, and the operator waits for the resync to try again.
    let mut legacy = manifests(&["examples/role-assignment-registry-sync.yaml"]);
    if let Resource::RoleAssignment(ra) = &mut legacy[0] {
        ra.metadata.name = Some("legacy-operator".into());
        ra.spec.role = serde_json::from_value(json!({"definitionId": LEGACY_ROLE})).unwrap();
    }
    apply(&client, &ns, &legacy).await;
    let (_, message) = eventually(
        "the legacy grant refused by Azure",
        60,
        || async { ready_reason(&client, &ns, "legacy-operator").await.unwrap_or_default() },
        |(r, _): &(String, String)| r == "DelegationDenied",
    )
    .await;
    assert!(message.contains("delegation condition") && message.contains("iothub-access-operator setup"), "{message}");
    assert!(!emu.snapshot().role_assignments.iter().any(|a| a.role_definition_id == LEGACY_ROLE));
    let obj = serde_json::to_value(
        Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns).get("legacy-operator").await.unwrap(),
    )
    .unwrap();
    assert_eq!(condition(&obj, "Stalled").unwrap()["status"], "True", "only an admin can lift it");
    let retry = eventually(
        "the failed reconcile logged with its retry",
        30,
        || async {
            let log = std::fs::read_to_string(&op.log).unwrap_or_default();
            log.lines()
                .filter(|l| {
                    l.contains("reconcile failed") && l.contains("legacy-operator") && l.contains("Azure refused")
                })
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .map(|v| v["retry_in"].as_str().unwrap_or_default().to_string())
                .next_back()
        },
        |r: &Option<String>| r.is_some(),
    )
    .await;
    // Not before the resync (a backoff longer than it may stretch it): never in a loop.
    let secs: f64 = retry.as_deref().and_then(|r| r.strip_suffix('s')).and_then(|r| r.parse().ok()).unwrap_or(0.0);
    assert!(secs >= 10.0, "retried at the resync, not in a loop: {retry:?}");

    // (b) Whatever the operator decided, its identity cannot remove an assignment of a role the
    // condition does not list: the legacy Contributor grant stays.
    let azure = client_for(&emu);
    let id = RoleAssignmentId::parse(&format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{LEGACY_GRANT}",
        rg_scope()
    ))
    .unwrap();
    let err = azure.delete_role_assignment(&id).await.expect_err("Azure refuses");
    assert!(matches!(err, AzureError::AssignmentForbidden { verb: "delete", .. }), "{err:?}");
    assert!(emu.snapshot().role_assignments.iter().any(|a| a.name == LEGACY_GRANT));

    // Given Owner on the subscription, the identity is reported over-privileged at the next check.
    emu.with_state(|s| {
        s.role_assignments.push(iothub_access_emulator::RoleAssignment {
            name: "0e000000-0000-4000-8000-0000000000e1".into(),
            scope: format!("/subscriptions/{SUB}"),
            role_definition_id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635".into(),
            principal_id: CLIENT_ID.into(),
            principal_type: Some("ServicePrincipal".into()),
            ..Default::default()
        })
    });
    eventually(
        "OverPrivileged in the log after the next resync",
        60,
        || async { std::fs::read_to_string(&op.log).unwrap_or_default() },
        |log: &String| log.contains("OverPrivileged") && log.contains("Owner included"),
    )
    .await;
    drop(op);
}

fn client_for(emu: &iothub_access_emulator::EmulatorHandle) -> std::sync::Arc<dyn Azure> {
    client(emu)
}
