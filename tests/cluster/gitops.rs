//! What a GitOps pipeline leans on, on the real API server with the emulator as Azure: asking
//! for a reconcile now (`iothubaccess.io/reconcile-requested-at`), and principals taken from a
//! ConfigMap another tool writes (`spec.principal.idFrom.configMapKeyRef`).

use kube::api::PatchParams;

use super::*;

const REQUESTED_AT: &str = "iothubaccess.io/reconcile-requested-at";

async fn annotate<K>(client: &Client, ns: &str, name: &str, token: &str)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let patch = json!({"metadata": {"annotations": {REQUESTED_AT: token}}});
    Api::<K>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reconcile_request_reads_azure_afresh_at_once_and_says_it_was_handled() {
    let Some((server, client, ns)) = setup("now").await else { return };
    let emu = emulator(DEMO_SEED, |_| {}).await;
    // Nothing would look at Azure again for ten minutes on its own.
    let _op = Operator::start(
        server,
        &emu.base_url(),
        &ns,
        "now",
        &["--resync-interval", "10m", "--interlock-recheck", "10m"],
    );
    apply(&client, &ns, &manifests(&["examples", "data/demo/deny-factory-hub.yaml"])).await;
    let api = Api::<IotHubSharedAccess>::namespaced(client.clone(), &ns);
    let get = || async { serde_json::to_value(api.get("factory-hub-entra-only").await.expect("get")).unwrap() };
    eventually("the Deny refused for the DPS link", 60, get, |v: &Value| {
        condition(v, "Ready").is_some_and(|c| c["reason"] == "DpsLinked")
    })
    .await;

    // The platform team moves the DPS to an identity link; the pipeline asks for a reconcile now.
    emu.with_state(|s| s.dps.iter_mut().for_each(|d| d.links.clear()));
    annotate::<IotHubSharedAccess>(&client, &ns, "factory-hub-entra-only", "dps-fixed-1").await;
    let done = eventually("the Deny written on fresh reads", 30, get, |v: &Value| {
        condition(v, "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await;
    assert_eq!(done["status"]["lastHandledReconcileAt"], "dps-fixed-1");
    assert_eq!(emu.snapshot().hubs.iter().find(|h| h.name == FACTORY_HUB).unwrap().disable_local_auth, Some(true));

    // Every kind says so the same way.
    annotate::<IotHubRoleAssignment>(&client, &ns, "telemetry-processor-reader", "t-1").await;
    let ras = Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns);
    eventually(
        "the request handled",
        30,
        || async { serde_json::to_value(ras.get("telemetry-processor-reader").await.unwrap()).unwrap() },
        |v: &Value| v["status"]["lastHandledReconcileAt"] == "t-1",
    )
    .await;
}

const DATA_READER: &str = "b447c946-2db7-41ec-983d-d8bf3b1c77e3";

/// The telemetry reader of `examples/`, named `name`, its principal read from ConfigMap
/// `identity` key `principalId` (or given, with `id`).
fn reader(name: &str, id: Option<&str>) -> Resource {
    let mut r = manifests(&["examples/role-assignment-telemetry-reader.yaml"]).remove(0);
    if let Resource::RoleAssignment(ra) = &mut r {
        ra.metadata.name = Some(name.into());
        ra.spec.principal = serde_json::from_value(match id {
            Some(id) => json!({"id": id, "type": "ServicePrincipal"}),
            None => json!({"idFrom": {"configMapKeyRef": {"name": "identity", "key": "principalId"}}, "type": "ServicePrincipal"}),
        })
        .unwrap();
    }
    r
}

async fn put_config_map(client: &Client, ns: &str, value: &str) {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "identity"}, "data": {"principalId": value}});
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), ns)
        .patch("identity", &PatchParams::apply("another-tool").force(), &Patch::Apply(&cm))
        .await
        .expect("ConfigMap written");
}

/// Principals holding the IoT Hub Data Reader role on the factory hub.
fn readers(emu: &iothub_access_emulator::EmulatorHandle) -> Vec<String> {
    let hub = hub_scope(FACTORY_HUB).to_ascii_lowercase();
    let mut v: Vec<String> = emu
        .snapshot()
        .role_assignments
        .iter()
        .filter(|a| a.scope.to_ascii_lowercase() == hub && a.role_definition_id == DATA_READER)
        .map(|a| a.principal_id.clone())
        .collect();
    v.sort();
    v
}

async fn ready_of(client: &Client, ns: &str, name: &str) -> Value {
    serde_json::to_value(Api::<IotHubRoleAssignment>::namespaced(client.clone(), ns).get(name).await.expect("get"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_principal_read_from_a_config_map_follows_it_as_it_appears_changes_and_goes() {
    let Some((server, client, ns)) = setup("byref").await else { return };
    let emu = emulator(DEMO_SEED, |_| {}).await;
    // No resync within the test: what happens, a watch made happen.
    let _op = Operator::start(server, &emu.base_url(), &ns, "byref", &["--resync-interval", "10m"]);
    apply(&client, &ns, &[reader("by-ref", None)]).await;

    // Not there yet: said so, in progress, nothing written.
    let v = eventually(
        "waiting for the ConfigMap",
        30,
        || ready_of(&client, &ns, "by-ref"),
        |v: &Value| condition(v, "Ready").is_some_and(|c| c["reason"] == "PrincipalRefNotFound"),
    )
    .await;
    let msg = condition(&v, "Ready").unwrap()["message"].as_str().unwrap().to_string();
    assert!(msg.contains(&format!("ConfigMap {ns}/identity")), "{msg}");
    assert_eq!(condition(&v, "Reconciling").unwrap()["status"], "True", "it may still appear");
    assert_eq!(readers(&emu), Vec::<String>::new());

    // Another tool writes it: granted within seconds.
    put_config_map(&client, &ns, TELEMETRY_SP).await;
    eventually(
        "granted once the ConfigMap is there",
        30,
        || async { readers(&emu) },
        |r: &Vec<String>| *r == [TELEMETRY_SP],
    )
    .await;
    eventually("Ready", 30, || ready_of(&client, &ns, "by-ref"), |v: &Value| ready(v)).await;

    // The value changes: the new principal gets the role, the old one loses it.
    put_config_map(&client, &ns, SYNC_SP).await;
    eventually("the grant follows the ConfigMap", 30, || async { readers(&emu) }, |r: &Vec<String>| *r == [SYNC_SP])
        .await;

    // A value that is not an object id: refused, naming the ConfigMap and key; Azure untouched.
    put_config_map(&client, &ns, "not-an-object-id").await;
    let v = eventually(
        "the bad value refused",
        30,
        || ready_of(&client, &ns, "by-ref"),
        |v: &Value| condition(v, "Ready").is_some_and(|c| c["reason"] == "InvalidSpec"),
    )
    .await;
    let msg = condition(&v, "Ready").unwrap()["message"].as_str().unwrap().to_string();
    assert!(msg.contains("identity") && msg.contains("principalId") && msg.contains("not an object id"), "{msg}");
    assert!(!msg.contains("not-an-object-id"), "the value is never repeated: {msg}");
    assert_eq!(readers(&emu), [SYNC_SP]);

    // The ConfigMap goes: waiting again, the grant kept until the resource itself goes.
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &ns)
        .delete("identity", &Default::default())
        .await
        .unwrap();
    eventually(
        "waiting again",
        30,
        || ready_of(&client, &ns, "by-ref"),
        |v: &Value| condition(v, "Ready").is_some_and(|c| c["reason"] == "PrincipalRefNotFound"),
    )
    .await;
    assert_eq!(readers(&emu), [SYNC_SP]);
    Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns).delete("by-ref", &Default::default()).await.unwrap();
    eventually("the grant it made removed with it", 30, || async { readers(&emu) }, |r: &Vec<String>| r.is_empty())
        .await;
}

/// Attack: a grant another resource still wants through a ConfigMap reference must survive the
/// deletion of the resource that made it (it is handed over, not revoked).
#[tokio::test(flavor = "multi_thread")]
async fn attack_deleting_the_maker_never_revokes_a_grant_another_resource_wants_through_a_reference() {
    let Some((server, client, ns)) = setup("byref-want").await else { return };
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let _op = Operator::start(server, &emu.base_url(), &ns, "byref-want", &["--resync-interval", "10m"]);
    apply(&client, &ns, &[reader("maker", Some(TELEMETRY_SP))]).await;
    eventually("the maker's grant", 30, || async { readers(&emu) }, |r: &Vec<String>| *r == [TELEMETRY_SP]).await;
    put_config_map(&client, &ns, TELEMETRY_SP).await;
    apply(&client, &ns, &[reader("by-ref", None)]).await;
    eventually("the reference Ready on the same grant", 30, || ready_of(&client, &ns, "by-ref"), |v: &Value| ready(v))
        .await;

    Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns).delete("maker", &Default::default()).await.unwrap();
    eventually(
        "the maker gone",
        30,
        || async { Api::<IotHubRoleAssignment>::namespaced(client.clone(), &ns).get_opt("maker").await.unwrap() },
        |o: &Option<IotHubRoleAssignment>| o.is_none(),
    )
    .await;
    assert_eq!(readers(&emu), [TELEMETRY_SP], "still wanted through the reference: handed over, not revoked");
    let v = ready_of(&client, &ns, "by-ref").await;
    assert!(ready(&v), "{v}");
}

/// `status.exposure`: who can reach the hub, with a Warning when someone new can reach its keys
/// while shared access is allowed.
#[tokio::test(flavor = "multi_thread")]
async fn the_shared_access_status_says_who_can_reach_the_keys_and_warns_of_a_new_one() {
    let Some((server, client, ns)) = setup("exposure").await else { return };
    let emu = emulator(DEMO_SEED, |_| {}).await;
    let _op = Operator::start(server, &emu.base_url(), &ns, "exposure", &["--resync-interval", "10m"]);
    // The Deny on the DPS-linked factory hub is refused: shared access stays allowed there.
    apply(&client, &ns, &manifests(&["examples", "data/demo/deny-factory-hub.yaml"])).await;
    let api = Api::<IotHubSharedAccess>::namespaced(client.clone(), &ns);
    let get = || async { serde_json::to_value(api.get("factory-hub-entra-only").await.expect("get")).unwrap() };
    let v = eventually("the exposure read", 60, get, |v: &Value| !v["status"]["exposure"].is_null()).await;
    let exposure = &v["status"]["exposure"];
    let holders: Vec<&str> = exposure["keyHolders"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
    assert_eq!(holders, [OPS_GROUP], "the legacy Contributor group reaches the keys: {exposure}");
    assert_eq!(exposure["keys"], 1);

    // Someone gets Owner on the resource group in the portal; the next look says so.
    emu.with_state(|s| {
        s.role_assignments.push(iothub_access_emulator::RoleAssignment {
            name: "0f000000-0000-4000-8000-0000000000f1".into(),
            scope: rg_scope(),
            role_definition_id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635".into(),
            principal_id: SYNC_SP.into(),
            principal_type: Some("ServicePrincipal".into()),
            ..Default::default()
        })
    });
    annotate::<IotHubSharedAccess>(&client, &ns, "factory-hub-entra-only", "look-again").await;
    let v = eventually("the new key holder", 30, get, |v: &Value| v["status"]["exposure"]["keys"] == 2).await;
    assert!(v["status"]["exposure"]["keyHolders"].as_array().unwrap().contains(&json!(SYNC_SP)));
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert!(
        events.iter().any(|e| e.reason.as_deref() == Some("KeyHolderAppeared")
            && e.message.as_deref().is_some_and(|m| m.contains(SYNC_SP) && m.contains(FACTORY_HUB))),
        "a Warning Event names the new key holder"
    );
}
