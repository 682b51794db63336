//! The real `run` binary on the real API server with the emulator as Azure: what a user sees
//! after `kubectl apply -f examples/`.

use std::time::Duration;

use iothub_access_emulator::Faults;
use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::DeleteParams;

use super::*;

async fn events(client: &Client, ns: &str) -> Vec<(String, String)> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

fn telemetry_granted(emu: &iothub_access_emulator::EmulatorHandle) -> bool {
    emu.snapshot().role_assignments.iter().any(|a| a.principal_id == TELEMETRY_SP)
}

#[tokio::test(flavor = "multi_thread")]
async fn examples_become_ready_drift_is_repaired_the_dps_refusal_shows_and_deletion_cleans_up() {
    let Some((server, client, ns)) = setup("examples").await else { return };
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let op = Operator::start(server, &emu.base_url(), &ns, "examples", &["--resync-interval", "3s"]);

    apply(&client, &ns, &manifests(&["examples"])).await;
    kubectl_wait_ready(server, &client, &ns, 120).await;
    let snap = emu.snapshot();
    assert!(telemetry_granted(&emu), "the telemetry reader's grant exists in Azure");
    assert!(snap.role_definitions.iter().any(|d| d.role_name == "IoT Hub Device Registry Reader"));
    assert_eq!(snap.hubs.iter().find(|h| h.name == FLEET_HUB).unwrap().disable_local_auth, Some(true));
    let verdicts = kstatus(server, &objects(&client, &ns).await);
    assert_eq!(verdicts.len(), 5, "{verdicts:?}");
    assert!(verdicts.values().all(|s| s == "Current"), "kstatus: every Ready resource is Current: {verdicts:?}");

    // Someone deletes a grant in the portal: the resync puts it back and says so.
    let name = snap.role_assignments.iter().find(|a| a.principal_id == TELEMETRY_SP).unwrap().name.clone();
    assert!(emu.with_state(|s| s.remove_assignment(&name)));
    eventually("the grant recreated", 30, || async { telemetry_granted(&emu) }, |b| *b).await;
    eventually(
        "a DriftRepaired Event",
        15,
        || events(&client, &ns),
        |ev: &Vec<(String, String)>| ev.iter().any(|(r, _)| r == "DriftRepaired"),
    )
    .await;

    // Deny SAS on the DPS-linked hub: refused, with the reason in status, an Event, and kstatus Failed.
    apply(&client, &ns, &manifests(&["data/demo/deny-factory-hub.yaml"])).await;
    let api = Api::<IotHubSharedAccess>::namespaced(client.clone(), &ns);
    let refused = eventually(
        "the Deny on the DPS-linked hub refused",
        60,
        || async { serde_json::to_value(api.get("factory-hub-entra-only").await.expect("get")).unwrap() },
        |v: &Value| condition(v, "Ready").is_some_and(|c| c["reason"] == "DpsLinked"),
    )
    .await;
    assert_eq!(condition(&refused, "Ready").unwrap()["status"], "False");
    assert_eq!(condition(&refused, "Stalled").unwrap()["status"], "True");
    assert_ne!(
        emu.snapshot().hubs.iter().find(|h| h.name == FACTORY_HUB).unwrap().disable_local_auth,
        Some(true),
        "SAS still allowed on the DPS-linked hub"
    );
    let verdicts = kstatus(server, &[refused]);
    assert_eq!(verdicts["IotHubSharedAccess/factory-hub-entra-only"], "Failed", "{verdicts:?}");
    let ev = events(&client, &ns).await;
    assert!(ev.iter().any(|(r, m)| r == "DpsLinked" && m.contains("contoso-factory-dps")), "{ev:?}");

    // Deleting the resources: finalizers clean Azure up (owned only), then let the objects go.
    let dp = DeleteParams::default();
    let lp = ListParams::default();
    Api::<IotHubSharedAccess>::namespaced(client.clone(), &ns).delete_collection(&dp, &lp).await.unwrap();
    Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns).delete_collection(&dp, &lp).await.unwrap();
    Api::<IotHubCustomRole>::namespaced(client.clone(), &ns).delete_collection(&dp, &lp).await.unwrap();
    eventually("every resource gone", 60, || objects(&client, &ns), |v: &Vec<Value>| v.is_empty()).await;
    let snap = emu.snapshot();
    assert!(!telemetry_granted(&emu), "owned assignment deleted");
    assert!(!snap.role_definitions.iter().any(|d| d.role_name == "IoT Hub Device Registry Reader"));
    assert!(
        snap.role_assignments.iter().any(|a| a.name == "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"),
        "the legacy grant the operator never owned is untouched"
    );
    drop(op);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deny_refused_for_lock_out_goes_through_as_soon_as_a_role_assignment_is_ready() {
    let Some((server, client, ns)) = setup("unblock").await else { return };
    let emu = emulator(DEMO_SEED, |_| {}).await;
    // Neither the resync nor the interlock re-check comes in the test's time: only the watch
    // relation from role assignments to shared access can unblock the Deny.
    let args = ["--resync-interval", "10m", "--interlock-recheck", "10m"];
    let _op = Operator::start(server, &emu.base_url(), &ns, "unblock", &args);
    apply(&client, &ns, &manifests(&["examples/shared-access-deny-fleet-hub.yaml"])).await;
    let api = Api::<IotHubSharedAccess>::namespaced(client.clone(), &ns);
    let get = || async { serde_json::to_value(api.get("fleet-hub-entra-only").await.expect("get")).unwrap() };
    eventually("WouldLockOut", 60, get, |v: &Value| {
        condition(v, "Ready").is_some_and(|c| c["reason"] == "WouldLockOut")
    })
    .await;
    let started = std::time::Instant::now();
    apply(&client, &ns, &manifests(&["examples/role-assignment-operators.yaml"])).await;
    eventually("the Deny applied", 30, get, |v: &Value| ready(v)).await;
    println!("Deny applied {:.1} s after the role assignment was created", started.elapsed().as_secs_f64());
    assert_eq!(emu.snapshot().hubs.iter().find(|h| h.name == FLEET_HUB).unwrap().disable_local_auth, Some(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn kstatus_sees_in_progress_while_azure_is_slow_then_current() {
    let Some((server, client, ns)) = setup("progress").await else { return };
    // Every Azure request takes 1.5 s: the first reconcile is still running when we look.
    let emu =
        emulator(DEMO_SEED, |c| c.faults = Faults { latency: Duration::from_millis(1500), ..Faults::default() }).await;
    let _op = Operator::start(server, &emu.base_url(), &ns, "progress", &[]);
    apply(&client, &ns, &manifests(&["examples/role-assignment-telemetry-reader.yaml"])).await;
    let api = Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns);
    let name = "telemetry-processor-reader";
    let seen = eventually(
        "a status while the reconcile runs",
        30,
        || async { serde_json::to_value(api.get(name).await.expect("get")).unwrap() },
        |v: &Value| v["status"].is_object(),
    )
    .await;
    assert!(!telemetry_granted(&emu), "looked before the grant was written");
    let verdicts = kstatus(server, std::slice::from_ref(&seen));
    assert_eq!(verdicts[&format!("IotHubRoleAssignment/{name}")], "InProgress", "{seen:#}");
    assert_eq!(condition(&seen, "Reconciling").unwrap()["reason"], "Progressing");

    let done = eventually(
        "Ready",
        60,
        || async { serde_json::to_value(api.get(name).await.expect("get")).unwrap() },
        |v: &Value| ready(v),
    )
    .await;
    assert!(condition(&done, "Reconciling").is_none() && condition(&done, "Stalled").is_none(), "{done:#}");
    assert_eq!(kstatus(server, &[done])[&format!("IotHubRoleAssignment/{name}")], "Current");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_namespace_with_resources_in_it_finishes_and_revokes_its_grants() {
    let Some((server, client, ns)) = setup("nsdelete").await else { return };
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let _op = Operator::start(server, &emu.base_url(), &ns, "nsdelete", &[]);
    apply(&client, &ns, &manifests(&["examples/role-assignment-telemetry-reader.yaml"])).await;
    kubectl_wait_ready(server, &client, &ns, 60).await;
    assert!(telemetry_granted(&emu));

    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces.delete(&ns, &DeleteParams::default()).await.expect("namespace deletion accepted");
    eventually(
        "the namespace gone",
        90,
        || async { namespaces.get_opt(&ns).await.expect("get namespace").map(|n| n.status) },
        |n| n.is_none(),
    )
    .await;
    assert!(!telemetry_granted(&emu), "the grant was revoked before the namespace went away");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_while_azure_hangs_stops_within_the_shutdown_grace() {
    let Some((server, client, ns)) = setup("shutdown").await else { return };
    // Azure answers after a minute: the reconcile is in flight when the stop comes.
    let emu =
        emulator(DEMO_SEED, |c| c.faults = Faults { latency: Duration::from_secs(60), ..Faults::default() }).await;
    let mut op = Operator::start(server, &emu.base_url(), &ns, "shutdown", &["--request-timeout", "120"]);
    apply(&client, &ns, &manifests(&["examples/role-assignment-telemetry-reader.yaml"])).await;
    let api = Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns);
    eventually(
        "the reconcile under way",
        30,
        || async { serde_json::to_value(api.get("telemetry-processor-reader").await.expect("get")).unwrap() },
        |v: &Value| condition(v, "Reconciling").is_some(),
    )
    .await;
    op.signal("TERM");
    let stopped = std::time::Instant::now();
    while op.exited().is_none() {
        assert!(
            stopped.elapsed() < iothub_access_operator::controller::run::SHUTDOWN_GRACE + Duration::from_secs(5),
            "still running {:?} after SIGTERM:\n{}",
            stopped.elapsed(),
            op.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("stopped {:.1} s after SIGTERM with a reconcile in flight", stopped.elapsed().as_secs_f64());
}
