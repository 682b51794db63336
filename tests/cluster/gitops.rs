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
